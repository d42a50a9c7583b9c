//! The Deployment controller (kube-controller-manager's `deployment`): a Deployment owns
//! ReplicaSets named `<name>-<pod-template-hash>`, one per pod template it has had. The one
//! whose template matches is the new ReplicaSet; a rollout (RollingUpdate within
//! maxSurge/maxUnavailable, or Recreate) moves the pods to it, never changing a pod in place.
//! Revisions (`deployment.kubernetes.io/revision`) record the order of templates, so
//! `kubectl rollout history|undo` work; `paused` stops rollouts but not scaling, which is
//! proportional when a rollout is under way; old ReplicaSets beyond `revisionHistoryLimit`
//! are deleted; the status carries counts and the Available/Progressing conditions that
//! `kubectl rollout status` waits on.
//!
//! [`sync`] is one reconcile and its writes, [`rolling`] and [`recreate`] the strategies,
//! [`status`] the status and conditions, [`util`] the arithmetic, [`hash`] the template hash.

pub mod hash;
mod recreate;
mod rolling;
pub mod status;
mod sync;
pub mod util;

use super::claim::Claimer;
use super::events::{self, Recorder};
use super::informer::{key_of, split_key, Informer};
use super::pods::{self, controller_of, is_deleting, namespace_of, uid_of};
use super::queue::WorkQueue;
use super::replicaset::{selector_of, wait_synced, FIELD_MANAGER};
use super::{run_workers, Context, Requeue};
use crate::resources::Resource;
use crate::server::client::{resource, Change, LocalClient};
use crate::server::status::ApiError;
use crate::server::write::Writer;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use recreate::PodMap;
use serde_json::Value;
use std::sync::Arc;
use sync::{decode, Sync};

const COMPONENT: &str = "deployment-controller";
/// Workers when the config says 0 (`--concurrent-deployment-syncs`).
pub const DEFAULT_WORKERS: usize = 5;

/// What every reconcile uses.
pub(crate) struct Controller {
    client: LocalClient,
    writer: Writer,
    recorder: Recorder,
    deployments: Arc<Informer>,
    replicasets: Arc<Informer>,
    pods: Arc<Informer>,
    d_res: &'static Resource,
    rs_res: &'static Resource,
}

/// Registers the controller's informer handlers and workers.
pub fn register(ctx: &Context) {
    if let Err(e) = try_register(ctx) {
        tracing::error!(error = %e, "deployment controller not started");
    }
}

fn try_register(ctx: &Context) -> Result<(), ApiError> {
    let deployments = ctx.informer("apps", "v1", "deployments")?;
    let replicasets = ctx.informer("apps", "v1", "replicasets")?;
    let pods = ctx.informer("", "v1", "pods")?;
    let client = ctx.client(FIELD_MANAGER);
    let ctl = Arc::new(Controller {
        recorder: Recorder::new(client.clone(), COMPONENT),
        writer: ctx.server.writer.clone(),
        client,
        deployments: deployments.clone(),
        replicasets: replicasets.clone(),
        pods: pods.clone(),
        d_res: resource("apps", "v1", "deployments")?,
        rs_res: resource("apps", "v1", "replicasets")?,
    });
    let queue = WorkQueue::new();
    {
        let queue = queue.clone();
        deployments.on_change(move |_, d, _| queue.add(key_of(d)));
    }
    {
        let queue = queue.clone();
        let ds = deployments.clone();
        replicasets.on_change(move |change, rs, old| rs_changed(&ds, &queue, change, rs, old));
    }
    {
        let queue = queue.clone();
        let ds = deployments.clone();
        let rss = replicasets.clone();
        pods.on_change(move |change, pod, _| {
            if change == Change::Deleted {
                pod_deleted(&ds, &rss, &queue, pod);
            }
        });
    }
    let workers = match ctx.config.concurrent_deployment_syncs {
        0 => DEFAULT_WORKERS,
        n => n,
    };
    run_workers("deployment", queue, workers, move |key| {
        let ctl = ctl.clone();
        async move { ctl.sync_deployment(&key).await }
    });
    Ok(())
}

/// The Deployment a controllerRef points to, if it exists with that uid.
fn resolve(ds: &Informer, ns: &str, r: &Value) -> Option<Arc<Value>> {
    if r.get("kind").and_then(Value::as_str) != Some("Deployment") {
        return None;
    }
    let d = ds.get(Some(ns), r.get("name").and_then(Value::as_str)?)?;
    (Some(uid_of(&d)) == r.get("uid").and_then(Value::as_str)).then_some(d)
}

/// Deployments of the ReplicaSet's namespace whose (non-empty) selector matches its labels.
fn matching_deployments(ds: &Informer, rs: &Value) -> Vec<Arc<Value>> {
    let labels = pods::labels(rs);
    if labels.is_empty() {
        return Vec::new();
    }
    ds.list(Some(namespace_of(rs)))
        .into_iter()
        .filter(|d| {
            selector_of(d)
                .is_ok_and(|s| !s.is_empty() && !s.matches_nothing() && s.matches(&labels))
        })
        .collect()
}

/// Which Deployments a ReplicaSet event concerns (addReplicaSet/updateReplicaSet/delete).
fn rs_changed(ds: &Informer, queue: &WorkQueue, change: Change, rs: &Value, old: Option<&Value>) {
    let ns = namespace_of(rs);
    let enqueue_owner = |obj: &Value| {
        if let Some(d) = controller_of(obj).and_then(|r| resolve(ds, ns, r)) {
            queue.add(key_of(&d));
        }
    };
    match (change, old) {
        (Change::Deleted, _) => enqueue_owner(rs),
        (Change::Modified, Some(old)) => {
            let rv = |o: &Value| o.pointer("/metadata/resourceVersion").cloned();
            if rv(rs) == rv(old) {
                return;
            }
            let ref_changed = controller_of(rs) != controller_of(old);
            if ref_changed && controller_of(old).is_some() {
                enqueue_owner(old);
            }
            if controller_of(rs).is_some() {
                enqueue_owner(rs);
                return;
            }
            if ref_changed || pods::labels(rs) != pods::labels(old) {
                for d in matching_deployments(ds, rs) {
                    queue.add(key_of(&d));
                }
            }
        }
        _ => {
            if controller_of(rs).is_some() || is_deleting(rs) {
                enqueue_owner(rs);
            } else {
                for d in matching_deployments(ds, rs) {
                    queue.add(key_of(&d));
                }
            }
        }
    }
}

/// A deleted pod wakes its Recreate Deployment (which waits for old pods to be gone).
fn pod_deleted(ds: &Informer, rss: &Informer, queue: &WorkQueue, pod: &Value) {
    let ns = namespace_of(pod);
    let Some(r) = controller_of(pod) else {
        return;
    };
    if r.get("kind").and_then(Value::as_str) != Some("ReplicaSet") {
        return;
    }
    let Some(rs) = r
        .get("name")
        .and_then(Value::as_str)
        .and_then(|n| rss.get(Some(ns), n))
        .filter(|rs| Some(uid_of(rs)) == r.get("uid").and_then(Value::as_str))
    else {
        return;
    };
    let Some(d) = controller_of(&rs).and_then(|r| resolve(ds, ns, r)) else {
        return;
    };
    if d.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate") {
        queue.add(key_of(&d));
    }
}

impl Controller {
    /// `syncDeployment`.
    async fn sync_deployment(&self, key: &str) -> Result<Requeue, ApiError> {
        wait_synced(&self.deployments).await;
        wait_synced(&self.replicasets).await;
        wait_synced(&self.pods).await;
        let (ns, name) = split_key(key);
        let Some(obj) = self.deployments.get(ns, name) else {
            return Ok(None);
        };
        let d: Deployment = decode(&obj)?;
        let mut s = Sync::new(self, d);
        let result = self.run(&mut s, &obj).await;
        // Let the caches show this reconcile's writes before the next one looks.
        if s.wrote_rs > 0 {
            self.replicasets.caught_up(s.wrote_rs).await;
        }
        if s.wrote_d > 0 {
            self.deployments.caught_up(s.wrote_d).await;
        }
        result.map(|()| s.requeue)
    }

    async fn run(&self, s: &mut Sync<'_>, obj: &Value) -> Result<(), ApiError> {
        let selector =
            s.d.spec
                .as_ref()
                .map(|sp| sp.selector.clone())
                .unwrap_or_default();
        if selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
            && selector
                .match_expressions
                .as_ref()
                .is_none_or(|e| e.is_empty())
        {
            s.event(
                events::WARNING,
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
            )
            .await;
            let mut st = status::current(&s.d);
            if st.observed_generation.unwrap_or(0) < util::generation(&s.d) {
                st.observed_generation = Some(util::generation(&s.d));
                s.write_status(st).await?;
            }
            return Ok(());
        }
        let mut rs_list = self.replica_sets_for(obj).await?;
        let pod_map = self.pod_map(obj, &rs_list);
        if s.d.metadata.deletion_timestamp.is_some() {
            let (new_rs, olds) = s.get_all(&mut rs_list, false).await?;
            return s.sync_status(new_rs.as_ref(), &olds).await;
        }
        s.check_paused_conditions().await?;
        if util::paused(&s.d) {
            return s.sync(&mut rs_list).await;
        }
        if s.is_scaling_event(&mut rs_list).await? {
            return s.sync(&mut rs_list).await;
        }
        match util::strategy_type(&s.d) {
            "Recreate" => s.rollout_recreate(&mut rs_list, &pod_map).await,
            "RollingUpdate" => s.rollout_rolling(&mut rs_list).await,
            t => Err(ApiError::internal(format!(
                "unexpected deployment strategy type: {t}"
            ))),
        }
    }

    /// `getReplicaSetsForDeployment`: the ReplicaSets of the namespace the Deployment owns
    /// after adopting matching orphans and releasing those that stopped matching.
    async fn replica_sets_for(&self, d: &Value) -> Result<Vec<ReplicaSet>, ApiError> {
        let selector = selector_of(d)?;
        let candidates = self.replicasets.list(Some(namespace_of(d)));
        let claimer = Claimer {
            writer: &self.writer,
            manager: FIELD_MANAGER,
            owner: d,
            owner_resource: self.d_res,
            selector: &selector,
            resource: self.rs_res,
        };
        claimer
            .claim(&candidates)
            .await?
            .iter()
            .map(|rs| decode(rs))
            .collect()
    }

    /// `getPodMapForDeployment`: the Deployment's pods (any phase) by ReplicaSet uid.
    fn pod_map(&self, d: &Value, rs_list: &[ReplicaSet]) -> PodMap {
        let mut map: PodMap = rs_list
            .iter()
            .filter_map(|rs| rs.metadata.uid.clone())
            .map(|uid| (uid, Vec::new()))
            .collect();
        let Ok(selector) = selector_of(d) else {
            return map;
        };
        for pod in self.pods.list(Some(namespace_of(d))) {
            if !selector.matches(&pods::labels(&pod)) {
                continue;
            }
            let Some(uid) = controller_of(&pod)
                .and_then(|r| r.get("uid"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            if let Some(list) = map.get_mut(uid) {
                list.push(pod.clone());
            }
        }
        map
    }
}
