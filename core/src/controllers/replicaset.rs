//! The ReplicaSet controller (kube-controller-manager's `replicaset`): keeps `spec.replicas`
//! active pods matching a ReplicaSet's selector, made from its template and controlled by it.
//! It adopts matching orphans and releases pods that stopped matching ([`super::claim`]),
//! creates missing pods in slow-start batches (1, 2, 4, …) and deletes surplus ones in
//! Kubernetes' order ([`super::ranking`]), then writes `status` (replicas, fullyLabeledReplicas,
//! readyReplicas, availableReplicas with `minReadySeconds`, observedGeneration, and a
//! `ReplicaFailure` condition while creating or deleting fails). Before a reconcile ends it
//! waits until the pod cache shows its own creations and deletions, so the next look never
//! acts twice on the same shortfall.

use super::claim::Claimer;
use super::events::{self, Recorder};
use super::informer::{split_key, Informer};
use super::pods::{self, controller_of, is_deleting, name_of, namespace_of, uid_of};
use super::queue::WorkQueue;
use super::ranking;
use super::{run_workers, Context, Requeue};
use crate::resources::Resource;
use crate::selectors::LabelSelector;
use crate::server::client::{resource, Change, LocalClient};
use crate::server::status::ApiError;
use crate::server::write::{now, Writer};
use futures_util::future::join_all;
use kubelite_storage::Revision;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The field manager of kube-controller-manager's writes.
pub const FIELD_MANAGER: &str = "kube-controller-manager";
const COMPONENT: &str = "replicaset-controller";
/// Most pods created or deleted by one reconcile (Kubernetes' `BurstReplicas`).
const BURST_REPLICAS: usize = 500;
/// Workers when the config says 0 (`--concurrent-replicaset-syncs`).
pub const DEFAULT_WORKERS: usize = 5;
/// How long a reconcile waits for the cache to show its own writes.
const CATCH_UP: Duration = Duration::from_secs(5);

struct Controller {
    client: LocalClient,
    writer: Writer,
    recorder: Recorder,
    replicasets: Arc<Informer>,
    pods: Arc<Informer>,
    rs_resource: &'static Resource,
    pod_resource: &'static Resource,
}

/// Registers the controller's informer handlers and workers.
pub fn register(ctx: &Context) {
    if let Err(e) = try_register(ctx) {
        tracing::error!(error = %e, "replicaset controller not started");
    }
}

fn try_register(ctx: &Context) -> Result<(), ApiError> {
    let replicasets = ctx.informer("apps", "v1", "replicasets")?;
    let pods = ctx.informer("", "v1", "pods")?;
    let client = ctx.client(FIELD_MANAGER);
    let ctl = Arc::new(Controller {
        recorder: Recorder::new(client.clone(), COMPONENT),
        writer: ctx.server.writer.clone(),
        client,
        replicasets: replicasets.clone(),
        pods: pods.clone(),
        rs_resource: resource("apps", "v1", "replicasets")?,
        pod_resource: resource("", "v1", "pods")?,
    });
    let queue = WorkQueue::new();
    {
        let queue = queue.clone();
        replicasets.on_change(move |change, rs, old| {
            if let (Change::Modified, Some(old)) = (change, old) {
                if uid_of(old) != uid_of(rs) {
                    queue.add(super::informer::key_of(old));
                }
            }
            queue.add(super::informer::key_of(rs));
        });
    }
    {
        let queue = queue.clone();
        let rss = replicasets.clone();
        pods.on_change(move |change, pod, old| pod_changed(&rss, &queue, change, pod, old));
    }
    let workers = match ctx.config.concurrent_replicaset_syncs {
        0 => DEFAULT_WORKERS,
        n => n,
    };
    run_workers("replicaset", queue, workers, move |key| {
        let ctl = ctl.clone();
        async move { ctl.sync(&key).await }
    });
    Ok(())
}

/// Which ReplicaSets a pod event concerns (Kubernetes' addPod/updatePod/deletePod).
fn pod_changed(
    rss: &Informer,
    queue: &WorkQueue,
    change: Change,
    pod: &Value,
    old: Option<&Value>,
) {
    let enqueue_owner = |p: &Value| {
        if let Some(rs) = resolve(rss, p) {
            queue.add(super::informer::key_of(&rs));
        }
    };
    let enqueue_matching = |p: &Value| {
        for rs in matching_replicasets(rss, p) {
            queue.add(super::informer::key_of(&rs));
        }
    };
    match (change, old) {
        (Change::Deleted, _) => enqueue_owner(pod),
        (Change::Added, _) | (Change::Modified, None) => {
            if is_deleting(pod) || controller_of(pod).is_some() {
                enqueue_owner(pod);
            } else {
                enqueue_matching(pod);
            }
        }
        (Change::Modified, Some(old)) => {
            let rv = |p: &Value| p.pointer("/metadata/resourceVersion").cloned();
            if rv(pod) == rv(old) {
                return;
            }
            let label_changed = pods::labels(pod) != pods::labels(old);
            if is_deleting(pod) {
                enqueue_owner(pod);
                if label_changed {
                    enqueue_owner(old);
                }
                return;
            }
            let ref_changed = controller_of(pod) != controller_of(old);
            if ref_changed && controller_of(old).is_some() {
                enqueue_owner(old);
            }
            if controller_of(pod).is_some() {
                if let Some(rs) = resolve(rss, pod) {
                    let key = super::informer::key_of(&rs);
                    let min_ready = min_ready_seconds(&rs);
                    if !pods::is_ready(old) && pods::is_ready(pod) && min_ready > 0 {
                        // Look again once it may have become available.
                        queue.add_after(
                            key.clone(),
                            Duration::from_secs(min_ready.unsigned_abs() + 1),
                        );
                    }
                    queue.add(key);
                }
                return;
            }
            if label_changed || ref_changed {
                enqueue_matching(pod);
            }
        }
    }
}

/// The ReplicaSet a pod's controllerRef points to, if it exists with that uid.
fn resolve(rss: &Informer, pod: &Value) -> Option<Arc<Value>> {
    let r = controller_of(pod)?;
    if r.get("kind").and_then(Value::as_str) != Some("ReplicaSet") {
        return None;
    }
    let name = r.get("name").and_then(Value::as_str)?;
    let rs = rss.get(Some(namespace_of(pod)), name)?;
    (Some(uid_of(&rs)) == r.get("uid").and_then(Value::as_str)).then_some(rs)
}

/// ReplicaSets of the pod's namespace whose (non-empty) selector matches its labels.
fn matching_replicasets(rss: &Informer, pod: &Value) -> Vec<Arc<Value>> {
    let labels = pods::labels(pod);
    rss.list(Some(namespace_of(pod)))
        .into_iter()
        .filter(|rs| {
            selector_of(rs)
                .is_ok_and(|s| !s.is_empty() && !s.matches_nothing() && s.matches(&labels))
        })
        .collect()
}

pub(crate) fn selector_of(obj: &Value) -> Result<LabelSelector, ApiError> {
    LabelSelector::from_label_selector_object(obj.pointer("/spec/selector").unwrap_or(&Value::Null))
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

fn min_ready_seconds(rs: &Value) -> i64 {
    rs.pointer("/spec/minReadySeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn spec_replicas(rs: &Value) -> i64 {
    rs.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0)
}

/// Waits until the first list of `inf` is in its cache.
pub(crate) async fn wait_synced(inf: &Informer) {
    while inf.revision() == 0 {
        inf.synced().await;
    }
}

/// Waits (at most [`CATCH_UP`]) until `done` holds for the cache of `inf`, re-checking on
/// every change it applies.
pub(crate) async fn wait_for(inf: &Informer, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + CATCH_UP;
    while !done() && Instant::now() < deadline {
        let next = inf.revision() + 1;
        let _ = tokio::time::timeout_at(deadline.into(), inf.caught_up(next)).await;
    }
}

/// The resourceVersion of a written object, as a revision.
pub(crate) fn revision_of(obj: &Value) -> Revision {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

impl Controller {
    async fn sync(&self, key: &str) -> Result<Requeue, ApiError> {
        wait_synced(&self.replicasets).await;
        wait_synced(&self.pods).await;
        let (ns, name) = split_key(key);
        let Some(rs) = self.replicasets.get(ns, name) else {
            return Ok(None);
        };
        let selector = match selector_of(&rs) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(replicaset = key, error = %e, "invalid selector");
                return Ok(None);
            }
        };
        let candidates: Vec<Arc<Value>> = self
            .pods
            .list(Some(namespace_of(&rs)))
            .into_iter()
            .filter(|p| pods::is_active(p))
            .collect();
        let claimer = Claimer {
            writer: &self.writer,
            manager: FIELD_MANAGER,
            owner: &rs,
            owner_resource: self.rs_resource,
            selector: &selector,
            resource: self.pod_resource,
        };
        let owned = claimer.claim(&candidates).await?;
        let managed = if is_deleting(&rs) {
            Ok(())
        } else {
            self.manage_replicas(&rs, &owned).await
        };
        let now_secs = pods::now_secs();
        let status = calculate_status(&rs, &owned, managed.as_ref().err(), now_secs, &now());
        self.write_status(&rs, status).await?;
        managed?;
        let min_ready = min_ready_seconds(&rs);
        Ok(owned
            .iter()
            .filter_map(|p| pods::until_available(p, min_ready, now_secs))
            .min()
            .map(|left| Duration::from_secs(left.unsigned_abs() + 1)))
    }

    /// Creates or deletes pods so that `owned` (active, claimed) reaches `spec.replicas`.
    async fn manage_replicas(&self, rs: &Value, owned: &[Arc<Value>]) -> Result<(), ApiError> {
        let want = usize::try_from(spec_replicas(rs)).unwrap_or(0);
        let have = owned.len();
        if have < want {
            self.create_pods(rs, (want - have).min(BURST_REPLICAS))
                .await
        } else if have > want {
            self.delete_pods(rs, owned, (have - want).min(BURST_REPLICAS))
                .await
        } else {
            Ok(())
        }
    }

    /// Slow start: batches of 1, 2, 4, … created concurrently; the first failing batch ends it.
    async fn create_pods(&self, rs: &Value, count: usize) -> Result<(), ApiError> {
        let template = rs
            .pointer("/spec/template")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let prefix = format!("{}-", name_of(rs));
        let ns = namespace_of(rs);
        let mut remaining = count;
        let mut batch = remaining.min(1);
        let mut newest: Revision = 0;
        let mut failure = None;
        while batch > 0 {
            let creates = (0..batch).map(|_| {
                let pod = pods::pod_from_template(&template, rs, None, &prefix);
                self.client.create(self.pod_resource, Some(ns), pod)
            });
            for res in join_all(creates).await {
                match res {
                    Ok(pod) => {
                        newest = newest.max(revision_of(&pod));
                        let msg = format!("Created pod: {}", name_of(&pod));
                        self.recorder
                            .record(rs, events::NORMAL, "SuccessfulCreate", &msg)
                            .await;
                    }
                    Err(e) if namespace_terminating(&e) => {}
                    Err(e) => {
                        let msg = format!("Error creating: {}", e.message);
                        self.recorder
                            .record(rs, events::WARNING, "FailedCreate", &msg)
                            .await;
                        failure.get_or_insert(e);
                    }
                }
            }
            if failure.is_some() {
                break;
            }
            remaining -= batch;
            batch = (2 * batch).min(remaining);
        }
        if newest > 0 {
            self.pods.caught_up(newest).await;
        }
        failure.map_or(Ok(()), Err)
    }

    /// Deletes the `count` pods Kubernetes would pick first, concurrently.
    async fn delete_pods(
        &self,
        rs: &Value,
        owned: &[Arc<Value>],
        count: usize,
    ) -> Result<(), ApiError> {
        let mut victims = owned.to_vec();
        if count < victims.len() {
            let related = self.related_pods(rs);
            let now_nanos = jiff::Timestamp::now().as_nanosecond();
            ranking::sort_for_deletion(&mut victims, &related, now_nanos);
        }
        victims.truncate(count);
        let ns = namespace_of(rs);
        let deletes = victims.iter().map(|p| {
            self.client
                .delete(self.pod_resource, Some(ns), name_of(p), None)
        });
        let mut failure = None;
        for (res, pod) in join_all(deletes).await.into_iter().zip(&victims) {
            match res {
                Ok(()) => {
                    let msg = format!("Deleted pod: {}", name_of(pod));
                    self.recorder
                        .record(rs, events::NORMAL, "SuccessfulDelete", &msg)
                        .await;
                }
                Err(e) if e.code == 404 => {}
                Err(e) => {
                    let msg = format!("Error deleting: {}", e.message);
                    self.recorder
                        .record(rs, events::WARNING, "FailedDelete", &msg)
                        .await;
                    failure.get_or_insert(e);
                }
            }
        }
        let pods = &self.pods;
        wait_for(pods, || {
            victims.iter().all(|v| {
                pods.get(Some(ns), name_of(v))
                    .is_none_or(|p| uid_of(&p) != uid_of(v) || is_deleting(&p))
            })
        })
        .await;
        failure.map_or(Ok(()), Err)
    }

    /// Pods of every ReplicaSet with the same controller as `rs` (for the colocation rank).
    fn related_pods(&self, rs: &Value) -> Vec<Arc<Value>> {
        let Some(owner) = controller_of(rs)
            .and_then(|r| r.get("uid"))
            .and_then(Value::as_str)
        else {
            return Vec::new();
        };
        let ns = namespace_of(rs);
        let all = self.pods.list(Some(ns));
        let mut out: Vec<Arc<Value>> = Vec::new();
        for sibling in self.replicasets.list(Some(ns)) {
            if !pods::is_controlled_by(&sibling, owner) {
                continue;
            }
            let Ok(sel) = selector_of(&sibling) else {
                continue;
            };
            for p in &all {
                if sel.matches(&pods::labels(p)) && !out.iter().any(|o| uid_of(o) == uid_of(p)) {
                    out.push(p.clone());
                }
            }
        }
        out
    }

    /// Writes `status` unless nothing changed; retries once on a conflict with a fresh read.
    async fn write_status(&self, rs: &Value, status: Value) -> Result<(), ApiError> {
        if !status_changed(rs, &status) {
            return Ok(());
        }
        let mut target = rs.clone();
        for attempt in 0..2 {
            let mut status = status.clone();
            if let Some(g) = target
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
            {
                status["observedGeneration"] = json!(g);
            }
            target["status"] = status;
            match self
                .client
                .update_status(self.rs_resource, target.clone())
                .await
            {
                Ok(written) => {
                    self.replicasets.caught_up(revision_of(&written)).await;
                    return Ok(());
                }
                Err(e) if e.code == 409 && attempt == 0 => {
                    let ns = Some(namespace_of(rs));
                    match self.client.get(self.rs_resource, ns, name_of(rs)).await? {
                        Some(fresh) if uid_of(&fresh) == uid_of(rs) => target = fresh,
                        _ => return Ok(()),
                    }
                }
                Err(e) if e.code == 404 => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn namespace_terminating(e: &ApiError) -> bool {
    e.code == 403 && e.message.contains("because it is being terminated")
}

/// The status a ReplicaSet should have with these owned pods (observedGeneration is set when
/// written). `now` is in seconds; `now_text` the same instant as RFC 3339.
fn calculate_status(
    rs: &Value,
    owned: &[Arc<Value>],
    manage_error: Option<&ApiError>,
    now: i64,
    now_text: &str,
) -> Value {
    let template_labels = rs
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let min_ready = min_ready_seconds(rs);
    let mut fully_labeled = 0i64;
    let mut ready = 0i64;
    let mut available = 0i64;
    for p in owned {
        let labels = pods::labels(p);
        if template_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
        {
            fully_labeled += 1;
        }
        if pods::is_ready(p) {
            ready += 1;
            if pods::is_available(p, min_ready, now) {
                available += 1;
            }
        }
    }
    let mut status: Map<String, Value> = rs
        .get("status")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut conditions: Vec<Value> = status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let is_failure = |c: &Value| c.get("type").and_then(Value::as_str) == Some("ReplicaFailure");
    let has_failure = conditions.iter().any(is_failure);
    match manage_error {
        Some(e) if !has_failure => {
            let want = spec_replicas(rs);
            let have = i64::try_from(owned.len()).unwrap_or(i64::MAX);
            let reason = match have.cmp(&want) {
                std::cmp::Ordering::Less => "FailedCreate",
                std::cmp::Ordering::Greater => "FailedDelete",
                std::cmp::Ordering::Equal => "",
            };
            conditions.push(json!({"type": "ReplicaFailure", "status": "True",
                "lastTransitionTime": now_text, "reason": reason, "message": e.message}));
        }
        None if has_failure => conditions.retain(|c| !is_failure(c)),
        _ => {}
    }
    if conditions.is_empty() {
        status.remove("conditions");
    } else {
        status.insert("conditions".into(), Value::Array(conditions));
    }
    status.insert(
        "replicas".into(),
        json!(i64::try_from(owned.len()).unwrap_or(0)),
    );
    for (field, n) in [
        ("fullyLabeledReplicas", fully_labeled),
        ("readyReplicas", ready),
        ("availableReplicas", available),
    ] {
        // omitempty, as Kubernetes serializes these counts
        if n == 0 {
            status.remove(field);
        } else {
            status.insert(field.into(), json!(n));
        }
    }
    Value::Object(status)
}

/// Whether `status` differs from what `rs` reports (counts, conditions, or a generation not
/// yet observed).
fn status_changed(rs: &Value, status: &Value) -> bool {
    let old = rs.get("status").cloned().unwrap_or_else(|| json!({}));
    let count = |s: &Value, f: &str| s.get(f).and_then(Value::as_i64).unwrap_or(0);
    let generation = rs
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    [
        "replicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
    ]
    .iter()
    .any(|f| count(&old, f) != count(status, f))
        || count(&old, "observedGeneration") != generation
        || old.get("conditions") != status.get("conditions")
        || old.get("replicas").is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ready: bool, labels: Value) -> Arc<Value> {
        let status = if ready { "True" } else { "False" };
        Arc::new(
            json!({"metadata": {"labels": labels}, "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": status, "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}),
        )
    }

    fn rs(min_ready: i64) -> Value {
        json!({"metadata": {"name": "rs", "generation": 2},
            "spec": {"replicas": 3, "minReadySeconds": min_ready,
                "template": {"metadata": {"labels": {"app": "a", "tier": "x"}}}},
            "status": {"replicas": 0, "observedGeneration": 1}})
    }

    #[test]
    fn status_counts() {
        let t0 = pods::parse_time("2026-01-01T00:00:00Z").unwrap();
        let pods = vec![
            pod(true, json!({"app": "a", "tier": "x"})),
            pod(true, json!({"app": "a"})),
            pod(false, json!({"app": "a", "tier": "x", "extra": "y"})),
        ];
        let s = calculate_status(&rs(10), &pods, None, t0 + 5, "now");
        assert_eq!(s["replicas"], 3);
        assert_eq!(s["fullyLabeledReplicas"], 2);
        assert_eq!(s["readyReplicas"], 2);
        assert!(s.get("availableReplicas").is_none(), "{s}");
        let later = calculate_status(&rs(10), &pods, None, t0 + 10, "now");
        assert_eq!(later["availableReplicas"], 2);
        assert!(status_changed(&rs(10), &later));
    }

    #[test]
    fn replica_failure_condition() {
        let err = ApiError::forbidden("pods \"x\" is forbidden: quota");
        let s = calculate_status(&rs(0), &[], Some(&err), 0, "2026-01-01T00:00:00Z");
        let c = &s["conditions"][0];
        assert_eq!(c["type"], "ReplicaFailure");
        assert_eq!(c["reason"], "FailedCreate");
        assert_eq!(c["message"], "pods \"x\" is forbidden: quota");
        let mut failing = rs(0);
        failing["status"] = s;
        let cleared = calculate_status(&failing, &[], None, 0, "later");
        assert!(cleared.get("conditions").is_none());
    }

    #[test]
    fn unchanged_status_is_not_written() {
        let mut r = rs(0);
        r["status"] = json!({"replicas": 0, "observedGeneration": 2});
        let s = calculate_status(&r, &[], None, 0, "now");
        assert!(!status_changed(&r, &s));
        r["metadata"]["generation"] = json!(3);
        assert!(status_changed(&r, &s));
    }
}
