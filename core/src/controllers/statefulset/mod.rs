//! The StatefulSet controller (`pkg/controller/statefulset`): pods with stable names
//! `<set>-<ordinal>`, hostnames and claims, created, replaced, updated and removed in order.
//!
//! One reconcile of a set: claim its ControllerRevisions and pods (adopting orphans its selector
//! and name match, releasing pods it no longer selects), find the current and update revisions
//! (creating or renumbering a revision when the template changed, with collision counting),
//! plan the pass ([`control::plan`]), carry it out (claims before their pod, events as
//! Kubernetes words them), write the status when it changed, and drop revisions beyond
//! `revisionHistoryLimit`. Modules: [`identity`] (names, labels, claims, predicates),
//! [`revision`], [`control`] (the plan), [`claims`] (retention policy), [`status`].

pub mod claims;
pub mod control;
pub mod identity;
pub mod revision;
pub mod status;

use super::claim::Claimer;
use super::events::{Recorder, NORMAL, WARNING};
use super::informer::{key_of, split_key, Informer};
use super::pods::{controller_of, is_deleting, name_of, namespace_of, now_secs, uid_of};
use super::queue::WorkQueue;
use super::{run_workers, Context, Requeue};
use crate::resources::Resource;
use crate::selectors::LabelSelector;
use crate::server::client::{resource, LocalClient};
use crate::server::status::ApiError;
use crate::server::write::DeleteOptions;
use control::Action;
use revision::UpdateRevision;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const MANAGER: &str = "statefulset-controller";

struct Controller {
    ctx: Context,
    client: LocalClient,
    recorder: Recorder,
    sets: Arc<Informer>,
    pods: Arc<Informer>,
    revisions: Arc<Informer>,
    claims: Arc<Informer>,
    set_r: &'static Resource,
    pod_r: &'static Resource,
    rev_r: &'static Resource,
    pvc_r: &'static Resource,
}

/// Registers the controller's informer handlers and workers.
pub fn register(ctx: &Context) {
    if let Err(e) = try_register(ctx) {
        tracing::error!(error = %e, "statefulset controller not started");
    }
}

fn try_register(ctx: &Context) -> Result<(), ApiError> {
    let client = ctx.client(MANAGER);
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        recorder: Recorder::new(client.clone(), MANAGER),
        client,
        sets: ctx.informer("apps", "v1", "statefulsets")?,
        pods: ctx.informer("", "v1", "pods")?,
        revisions: ctx.informer("apps", "v1", "controllerrevisions")?,
        claims: ctx.informer("", "v1", "persistentvolumeclaims")?,
        set_r: resource("apps", "v1", "statefulsets")?,
        pod_r: resource("", "v1", "pods")?,
        rev_r: resource("apps", "v1", "controllerrevisions")?,
        pvc_r: resource("", "v1", "persistentvolumeclaims")?,
    });
    let queue = WorkQueue::new();
    {
        let q = queue.clone();
        c.sets.on_change(move |_, set, _| q.add(key_of(set)));
    }
    // Pods and revisions wake their controlling set; orphans every set that could adopt them.
    for inf in [c.pods.clone(), c.revisions.clone()] {
        let (q, sets) = (queue.clone(), c.sets.clone());
        inf.on_change(move |_, obj, old| {
            let ns = namespace_of(obj);
            let owners: Vec<&Value> = [Some(obj), old]
                .into_iter()
                .flatten()
                .filter_map(controller_of)
                .collect();
            for r in &owners {
                if r.get("kind").and_then(Value::as_str) == Some("StatefulSet") {
                    if let Some(n) = r.get("name").and_then(Value::as_str) {
                        q.add(format!("{ns}/{n}"));
                    }
                }
            }
            if owners.is_empty() && !is_deleting(obj) {
                let labels = super::pods::labels(obj);
                for set in sets.list(Some(ns)) {
                    let selects = set
                        .pointer("/spec/selector")
                        .and_then(|s| LabelSelector::from_label_selector_object(s).ok())
                        .is_some_and(|s| !s.is_empty() && s.matches(&labels));
                    if selects {
                        q.add(key_of(&set));
                    }
                }
            }
        });
    }
    let me = c.clone();
    run_workers("statefulset", queue, 2, move |key| {
        let me = me.clone();
        async move { me.sync(&key).await }
    });
    Ok(())
}

impl Controller {
    async fn sync(&self, key: &str) -> Result<Requeue, ApiError> {
        let (ns, name) = split_key(key);
        let Some(set) = self.sets.get(ns, name) else {
            return Ok(None);
        };
        let ns = namespace_of(&set).to_string();
        let selector = match set
            .pointer("/spec/selector")
            .map(LabelSelector::from_label_selector_object)
        {
            Some(Ok(s)) if !s.is_empty() => s,
            _ => return Ok(None),
        };
        let writer = &self.ctx.server.writer;
        let claimer = |r: &'static Resource| Claimer {
            writer,
            manager: MANAGER,
            owner: &set,
            owner_resource: self.set_r,
            selector: &selector,
            resource: r,
        };
        let mut revisions = claimer(self.rev_r)
            .claim(&self.revisions.list(Some(&ns)))
            .await?;
        revision::sort(&mut revisions);
        let candidates: Vec<Arc<Value>> = self
            .pods
            .list(Some(&ns))
            .into_iter()
            .filter(|p| controller_of(p).is_some() || identity::is_member_of(&set, p))
            .collect();
        let pods = claimer(self.pod_r).claim(&candidates).await?;

        let mut collision_count = set
            .pointer("/status/collisionCount")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let update = self
            .update_revision(&set, &revisions, &mut collision_count)
            .await?;
        let current = set
            .pointer("/status/currentRevision")
            .and_then(Value::as_str)
            .and_then(|n| revision::find(&revisions, n))
            .cloned()
            .unwrap_or_else(|| update.clone());
        let (current_name, update_name) =
            (name_of(&current).to_string(), name_of(&update).to_string());
        let current_set = revision::apply(&set, &current);
        let update_set = revision::apply(&set, &update);
        let claims: HashMap<String, Arc<Value>> = self
            .claims
            .list(Some(&ns))
            .into_iter()
            .map(|c| (name_of(&c).to_string(), c))
            .collect();
        let now = now_secs();
        let plan = control::plan(&control::Inputs {
            set: &set,
            current_set: &current_set,
            update_set: &update_set,
            current_revision: &current_name,
            update_revision: &update_name,
            pods: &pods,
            claims: &claims,
            now,
        });
        let acted = self.execute(&set, &plan.actions, &claims).await;

        // Status from what the pods are now (the informer has caught up with our writes).
        let pods_now: Vec<Arc<Value>> = self
            .pods
            .list(Some(&ns))
            .into_iter()
            .filter(|p| super::pods::is_controlled_by(p, uid_of(&set)))
            .collect();
        let want = status::compute(
            &set,
            &pods_now,
            &status::Revisions {
                current: &current_name,
                update: &update_name,
                collision_count,
            },
            now,
        );
        if status::differs(&set, &want) {
            match self
                .client
                .merge_patch(
                    self.set_r,
                    Some(&ns),
                    name_of(&set),
                    Some("status"),
                    json!({ "status": want }),
                )
                .await
            {
                Ok(_) | Err(ApiError { code: 404, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.truncate_history(&set, &pods_now, &revisions, &current_name, &update_name)
            .await?;
        acted?;
        let min_ready = set
            .pointer("/spec/minReadySeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let replicas = identity::replicas_of(&set);
        let requeue = plan.requeue_secs.or_else(|| {
            (min_ready > 0
                && want.get("availableReplicas").and_then(Value::as_i64) != Some(replicas))
            .then_some(min_ready)
        });
        Ok(requeue.map(|s| Duration::from_secs(u64::try_from(s.max(1)).unwrap_or(1))))
    }

    /// `getStatefulSetRevisions`: the update revision, stored (created or renumbered) if new.
    async fn update_revision(
        &self,
        set: &Value,
        revisions: &[Arc<Value>],
        collision_count: &mut i64,
    ) -> Result<Arc<Value>, ApiError> {
        match revision::update_revision(set, revisions, *collision_count) {
            UpdateRevision::Latest(r) => Ok(r),
            UpdateRevision::Renumber(r, n) => {
                let v = self
                    .client
                    .merge_patch(
                        self.rev_r,
                        Some(namespace_of(&r)),
                        name_of(&r),
                        None,
                        json!({"revision": n}),
                    )
                    .await?;
                self.caught_up(&self.revisions, &v).await;
                Ok(Arc::new(v))
            }
            UpdateRevision::Create(_) => loop {
                let candidate =
                    revision::new_revision(set, revision::next_number(revisions), *collision_count);
                let ns = namespace_of(set);
                match self
                    .client
                    .create(self.rev_r, Some(ns), candidate.clone())
                    .await
                {
                    Ok(v) => {
                        self.caught_up(&self.revisions, &v).await;
                        return Ok(Arc::new(v));
                    }
                    Err(e) if e.reason == "AlreadyExists" => {
                        let existing = self
                            .client
                            .get(self.rev_r, Some(ns), name_of(&candidate))
                            .await?;
                        match existing {
                            Some(x) if revision::equal(&x, &candidate) => return Ok(Arc::new(x)),
                            Some(_) => *collision_count += 1,
                            None => {}
                        }
                        if *collision_count > 1000 {
                            return Err(ApiError::internal(
                                "too many ControllerRevision hash collisions",
                            ));
                        }
                    }
                    Err(e) => return Err(e),
                }
            },
        }
    }

    async fn caught_up(&self, inf: &Informer, obj: &Value) {
        if let Some(rv) = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
        {
            inf.caught_up(rv).await;
        }
    }

    /// Carries out the plan in order; the first failure stops it.
    async fn execute(
        &self,
        set: &Value,
        actions: &[Action],
        claims: &HashMap<String, Arc<Value>>,
    ) -> Result<(), ApiError> {
        for a in actions {
            match a {
                Action::CreatePod(pod) => self.create_pod(set, pod, claims).await?,
                Action::CreateClaims(pod) => self.create_claims(set, pod, claims).await?,
                Action::DeletePod(pod) => self.delete_pod(set, pod).await?,
                Action::UpdatePod(pod) => {
                    let res = self.client.update(self.pod_r, pod.clone()).await;
                    self.pod_event(set, "update", name_of(pod), res.as_ref().err())
                        .await;
                    let v = res?;
                    self.caught_up(&self.pods, &v).await;
                }
                Action::SetClaimOwners { claim, owners } => {
                    let patch = json!({"metadata": {"ownerReferences": owners,
                        "resourceVersion": claim.pointer("/metadata/resourceVersion")}});
                    match self
                        .client
                        .merge_patch(
                            self.pvc_r,
                            Some(namespace_of(claim)),
                            name_of(claim),
                            None,
                            patch,
                        )
                        .await
                    {
                        Ok(v) => self.caught_up(&self.claims, &v).await,
                        Err(e) if e.code == 404 => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(())
    }

    /// `CreateStatefulPod`: the claims, then the pod, then the claims' owners.
    async fn create_pod(
        &self,
        set: &Value,
        pod: &Value,
        claims: &HashMap<String, Arc<Value>>,
    ) -> Result<(), ApiError> {
        let name = name_of(pod).to_string();
        if let Err(e) = self.create_claims(set, pod, claims).await {
            self.pod_event(set, "create", &name, Some(&e)).await;
            return Err(e);
        }
        let res = self
            .client
            .create(self.pod_r, Some(namespace_of(set)), pod.clone())
            .await;
        match res {
            Ok(created) => {
                self.caught_up(&self.pods, &created).await;
                self.pod_event(set, "create", &name, None).await;
                // Claims made for this pod may now name it as their owner.
                let fresh: HashMap<String, Arc<Value>> = self
                    .claims
                    .list(Some(namespace_of(set)))
                    .into_iter()
                    .map(|c| (name_of(&c).to_string(), c))
                    .collect();
                for (claim, owners) in claims::owner_fixes(set, &created, &fresh) {
                    let patch = json!({"metadata": {"ownerReferences": owners}});
                    self.client
                        .merge_patch(
                            self.pvc_r,
                            Some(namespace_of(&claim)),
                            name_of(&claim),
                            None,
                            patch,
                        )
                        .await?;
                }
                Ok(())
            }
            Err(e) if e.reason == "AlreadyExists" => Err(e),
            Err(e) => {
                self.pod_event(set, "create", &name, Some(&e)).await;
                Err(e)
            }
        }
    }

    /// `createPersistentVolumeClaims`: the pod's claims that do not exist yet.
    async fn create_claims(
        &self,
        set: &Value,
        pod: &Value,
        claims: &HashMap<String, Arc<Value>>,
    ) -> Result<(), ApiError> {
        let Some(ordinal) = identity::ordinal_of(pod) else {
            return Ok(());
        };
        let mut errors = Vec::new();
        for (_, claim) in identity::claims_for(set, ordinal) {
            let cname = name_of(&claim).to_string();
            match claims.get(&cname) {
                Some(existing) if is_deleting(existing) => {
                    errors.push(format!("pvc {cname} is being deleted"));
                }
                Some(_) => {}
                None => match self
                    .client
                    .create(self.pvc_r, Some(namespace_of(set)), claim)
                    .await
                {
                    Ok(v) => {
                        self.caught_up(&self.claims, &v).await;
                        self.claim_event(set, &cname, name_of(pod), None).await;
                    }
                    Err(e) if e.reason == "AlreadyExists" => {}
                    Err(e) => {
                        self.claim_event(set, &cname, name_of(pod), Some(&e)).await;
                        errors.push(format!("failed to create PVC {cname}: {}", e.message));
                    }
                },
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::internal(errors.join(", ")))
        }
    }

    async fn delete_pod(&self, set: &Value, pod: &Value) -> Result<(), ApiError> {
        let opts = DeleteOptions {
            precondition_uid: Some(uid_of(pod).to_string()),
            ..Default::default()
        };
        let res = self
            .client
            .delete_with(self.pod_r, Some(namespace_of(pod)), name_of(pod), &opts)
            .await;
        match res {
            Ok(()) => {
                self.pod_event(set, "delete", name_of(pod), None).await;
                Ok(())
            }
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => {
                self.pod_event(set, "delete", name_of(pod), Some(&e)).await;
                Err(e)
            }
        }
    }

    /// `recordPodEvent`.
    async fn pod_event(&self, set: &Value, verb: &str, pod: &str, err: Option<&ApiError>) {
        let title = title(verb);
        let set_name = name_of(set);
        match err {
            None => {
                let msg = format!("{verb} Pod {pod} in StatefulSet {set_name} successful");
                self.recorder
                    .record(set, NORMAL, &format!("Successful{title}"), &msg)
                    .await;
            }
            Some(e) => {
                let msg = format!(
                    "{verb} Pod {pod} in StatefulSet {set_name} failed error: {}",
                    e.message
                );
                self.recorder
                    .record(set, WARNING, &format!("Failed{title}"), &msg)
                    .await;
            }
        }
    }

    /// `recordClaimEvent` for creations.
    async fn claim_event(&self, set: &Value, claim: &str, pod: &str, err: Option<&ApiError>) {
        let set_name = name_of(set);
        match err {
            None => {
                let msg =
                    format!("create Claim {claim} Pod {pod} in StatefulSet {set_name} success");
                self.recorder
                    .record(set, NORMAL, "SuccessfulCreate", &msg)
                    .await;
            }
            Some(e) => {
                let msg = format!(
                    "create Claim {claim} for Pod {pod} in StatefulSet {set_name} failed error: {}",
                    e.message
                );
                self.recorder
                    .record(set, WARNING, "FailedCreate", &msg)
                    .await;
            }
        }
    }

    /// `truncateHistory`.
    async fn truncate_history(
        &self,
        set: &Value,
        pods: &[Arc<Value>],
        revisions: &[Arc<Value>],
        current: &str,
        update: &str,
    ) -> Result<(), ApiError> {
        let mut live: Vec<&str> = vec![current, update];
        live.extend(pods.iter().map(|p| identity::revision_of(p)));
        let limit = set
            .pointer("/spec/revisionHistoryLimit")
            .and_then(Value::as_i64)
            .unwrap_or(10);
        for r in revision::to_delete(revisions, &live, limit) {
            match self
                .client
                .delete(self.rev_r, Some(namespace_of(r)), name_of(r), None)
                .await
            {
                Ok(()) | Err(ApiError { code: 404, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// `strings.Title` of a verb.
fn title(verb: &str) -> String {
    let mut c = verb.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
