//! The scheduler (kube-scheduler's default profile, in-process): binds every pending pod that
//! asks for `default-scheduler` to a node through the `binding` subresource.
//!
//! One loop takes pods from the [`queue`] (priority, then age), runs the [`filters`] on every
//! node against the [`cache`] of nodes and bound pods (including pods it has just bound, the
//! "assumed" ones), [`score`]s the feasible nodes and binds the pod to the best (ties at random).
//! A pod no node fits gets a `FailedScheduling` event and `PodScheduled=False`/`Unschedulable`
//! with the message kube-scheduler writes ("0/3 nodes are available: …"), may preempt
//! lower-priority pods ([`preemption`]), and waits until a node or pod change that may help it
//! (or a periodic flush) puts it back in the queue.

pub mod affinity;
pub mod cache;
pub mod filters;
pub mod preemption;
pub mod queue;
pub mod resources;
pub mod score;
pub mod topology;

use super::events::{Recorder, NORMAL, WARNING};
use super::informer::{key_of, split_key, Informer};
use super::pods::{is_deleting, name_of, namespace_of, phase, uid_of};
use super::Context;
use crate::resources::Resource;
use crate::server::client::{resource, Change, LocalClient};
use crate::server::status::ApiError;
use crate::server::write::now;
use cache::{Cache, NodeInfo, NodeView, PodInfo};
use filters::{Cycle, Status};
use preemption::Candidate;
use queue::{Event, SchedulingQueue};
use rand::Rng;
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// The scheduler name pods ask for (`spec.schedulerName`).
pub const SCHEDULER_NAME: &str = "default-scheduler";
/// The field manager of its writes.
const MANAGER: &str = "kube-scheduler";
/// The message when there is no node at all (`ErrNoNodesAvailable`).
pub const NO_NODES: &str = "no nodes available to schedule pods";

const ASSIGNED_POD_ADD: Event = Event {
    plugins: Some(&[filters::INTER_POD_AFFINITY, topology::POD_TOPOLOGY_SPREAD]),
};
const ASSIGNED_POD_UPDATE: Event = ASSIGNED_POD_ADD;
const ASSIGNED_POD_DELETE: Event = Event {
    plugins: Some(&[
        filters::NODE_RESOURCES_FIT,
        filters::NODE_PORTS,
        filters::INTER_POD_AFFINITY,
        topology::POD_TOPOLOGY_SPREAD,
    ]),
};
const NODE_ADD: Event = Event { plugins: None };

/// Whether the pod is bound to a node.
fn is_assigned(pod: &Value) -> bool {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty())
}

fn is_terminal(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// A pending pod this scheduler is to place: asks for it, not finished, not being deleted, not
/// held by scheduling gates.
fn is_ours(pod: &Value) -> bool {
    let scheduler = pod
        .pointer("/spec/schedulerName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(SCHEDULER_NAME);
    let gated = pod
        .pointer("/spec/schedulingGates")
        .and_then(Value::as_array)
        .is_some_and(|g| !g.is_empty());
    scheduler == SCHEDULER_NAME
        && !is_assigned(pod)
        && !is_terminal(pod)
        && !is_deleting(pod)
        && !gated
}

/// Whether an update changed more than the status (`isPodUpdated`): only such updates give an
/// unschedulable pod another try.
fn pod_updated(old: &Value, new: &Value) -> bool {
    ["/metadata/labels", "/metadata/annotations", "/spec"]
        .iter()
        .any(|p| old.pointer(p) != new.pointer(p))
}

/// Longest event/condition message (`validation.NoteLengthLimit`); longer ones are cut with
/// " ..." as kube-scheduler's `truncateMessage` does.
const MESSAGE_LIMIT: usize = 1024;

fn truncate_message(message: String) -> String {
    if message.len() <= MESSAGE_LIMIT {
        return message;
    }
    let mut end = MESSAGE_LIMIT - " ...".len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} ...", &message[..end])
}

/// What one scheduling attempt decided.
enum Decision {
    Bind(String),
    Unschedulable {
        message: String,
        plugins: HashSet<&'static str>,
        preempt: Option<Candidate>,
    },
}

struct Scheduler {
    pods: Arc<Informer>,
    nodes: Arc<Informer>,
    namespaces: Arc<Informer>,
    pods_resource: &'static Resource,
    cache: Mutex<Cache>,
    queue: SchedulingQueue,
    client: LocalClient,
    recorder: Recorder,
}

/// Registers the scheduler's informer handlers and starts its loop.
pub fn register(ctx: &Context) {
    match Scheduler::new(ctx) {
        Ok(s) => s.start(),
        Err(e) => tracing::error!(error = %e, "scheduler not started"),
    }
}

impl Scheduler {
    fn new(ctx: &Context) -> Result<Arc<Scheduler>, ApiError> {
        let client = ctx.client(MANAGER);
        Ok(Arc::new(Scheduler {
            pods: ctx.informer("", "v1", "pods")?,
            nodes: ctx.informer("", "v1", "nodes")?,
            namespaces: ctx.informer("", "v1", "namespaces")?,
            pods_resource: resource("", "v1", "pods")?,
            cache: Mutex::new(Cache::default()),
            queue: SchedulingQueue::new(),
            recorder: Recorder::new(client.clone(), SCHEDULER_NAME),
            client,
        }))
    }

    fn start(self: Arc<Self>) {
        let me = self.clone();
        self.pods
            .on_change(move |change, pod, old| me.on_pod(change, pod, old));
        let me = self.clone();
        self.nodes
            .on_change(move |change, node, old| me.on_node(change, node, old));
        let me = self.clone();
        self.namespaces.on_change(move |change, ns, old| {
            if change == Change::Modified
                && old.is_some_and(|o| {
                    o.pointer("/metadata/labels") != ns.pointer("/metadata/labels")
                })
            {
                me.queue.on_event(Event {
                    plugins: Some(&[filters::INTER_POD_AFFINITY]),
                });
            }
        });
        tokio::spawn(self.clone().flusher());
        tokio::spawn(self.run());
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ---- informer events -------------------------------------------------------------------

    fn on_pod(&self, change: Change, pod: &Value, old: Option<&Value>) {
        let key = key_of(pod);
        let uid = uid_of(pod).to_string();
        if is_assigned(pod) {
            // The scheduler's view of bound pods leaves out finished ones (as its informer's
            // field selector does).
            let live = change != Change::Deleted && !is_terminal(pod);
            let was_live =
                change != Change::Added && old.is_some_and(|o| is_assigned(o) && !is_terminal(o));
            {
                let mut cache = self.cache();
                cache.unnominate(&uid);
                if live {
                    cache.set_pod(pod);
                } else {
                    cache.remove_pod(&uid);
                }
            }
            self.queue.remove(&key);
            if !live {
                if was_live || change == Change::Deleted {
                    self.queue.on_event(ASSIGNED_POD_DELETE);
                }
            } else if !was_live {
                self.queue.on_event(ASSIGNED_POD_ADD);
            } else if old
                .is_some_and(|o| o.pointer("/metadata/labels") != pod.pointer("/metadata/labels"))
            {
                self.queue.on_event(ASSIGNED_POD_UPDATE);
            }
            return;
        }
        if change == Change::Deleted || !is_ours(pod) {
            self.cache().unnominate(&uid);
            self.queue.remove(&key);
            return;
        }
        let nominated = pod
            .pointer("/status/nominatedNodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty());
        {
            let mut cache = self.cache();
            match nominated {
                Some(n) => cache.nominate(PodInfo::of(pod), n),
                None => cache.unnominate(&uid),
            }
        }
        if change == Change::Modified && old.is_some_and(|o| is_ours(o) && !pod_updated(o, pod)) {
            return;
        }
        let created = pod
            .pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
            .unwrap_or("");
        self.queue.add(&key, cache::priority_of(pod), created);
    }

    fn on_node(&self, change: Change, node: &Value, old: Option<&Value>) {
        let name = name_of(node).to_string();
        if change == Change::Deleted {
            self.cache().remove_node(&name);
            return;
        }
        self.cache().set_node(node);
        let Some(old) = old.filter(|_| change == Change::Modified) else {
            self.queue.on_event(NODE_ADD);
            return;
        };
        let (a, b) = (NodeView::of(old), NodeView::of(node));
        if a.labels != b.labels {
            self.queue.on_event(Event {
                plugins: Some(&[
                    filters::NODE_AFFINITY,
                    filters::INTER_POD_AFFINITY,
                    topology::POD_TOPOLOGY_SPREAD,
                ]),
            });
        }
        if a.taints != b.taints {
            self.queue.on_event(Event {
                plugins: Some(&[filters::TAINT_TOLERATION, topology::POD_TOPOLOGY_SPREAD]),
            });
        }
        if a.unschedulable != b.unschedulable {
            self.queue.on_event(Event {
                plugins: Some(&[filters::NODE_UNSCHEDULABLE]),
            });
        }
        if a.allocatable != b.allocatable {
            self.queue.on_event(Event {
                plugins: Some(&[filters::NODE_RESOURCES_FIT]),
            });
        }
    }

    // ---- the scheduling loop -----------------------------------------------------------------

    async fn run(self: Arc<Self>) {
        self.pods.synced().await;
        self.nodes.synced().await;
        self.namespaces.synced().await;
        loop {
            let key = self.queue.pop().await;
            self.clone().schedule_one(&key);
            // A long queue must not hold this worker thread.
            tokio::task::yield_now().await;
        }
    }

    /// Moves pods whose back-off ended, or that waited too long, back to the active queue.
    async fn flusher(self: Arc<Self>) {
        loop {
            let replanned = self.queue.replanned();
            match self.queue.flush() {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at.into()) => {}
                        _ = replanned => {}
                    }
                }
                None => replanned.await,
            }
        }
    }

    fn namespace_labels(&self, ns: &str) -> Map<String, Value> {
        self.namespaces
            .get(None, ns)
            .map(|n| resources::labels_of(&n))
            .unwrap_or_default()
    }

    /// One scheduling attempt for the pod under `key`.
    fn schedule_one(self: Arc<Self>, key: &str) {
        let (ns, name) = split_key(key);
        let Some(pod) = self.pods.get(ns, name) else {
            self.queue.done(key);
            return;
        };
        if !is_ours(&pod) {
            self.queue.done(key);
            return;
        }
        let info = PodInfo::of(&pod);
        let decision = {
            let mut cache = self.cache();
            if cache.has_pod(&info.uid) {
                // Bound a moment ago; the informer has not caught up yet.
                self.queue.done(key);
                return;
            }
            let ns_labels = |ns: &str| self.namespace_labels(ns);
            let d = decide(&pod, &info, &cache, &ns_labels);
            match &d {
                Decision::Bind(node) => cache.assume(info.clone(), node),
                Decision::Unschedulable {
                    preempt: Some(c), ..
                } => cache.nominate(info.clone(), &c.node),
                Decision::Unschedulable { .. } => {}
            }
            d
        };
        match decision {
            Decision::Bind(node) => {
                self.queue.done(key);
                tokio::spawn(self.bind(pod, info, node));
            }
            Decision::Unschedulable {
                message,
                plugins,
                preempt,
            } => {
                tracing::debug!(pod = key, %message, "unschedulable");
                self.queue.unschedulable(key, plugins);
                tokio::spawn(self.failed(pod, truncate_message(message), preempt));
            }
        }
    }

    /// Binds an assumed pod; on failure forgets it and tries again later.
    async fn bind(self: Arc<Self>, pod: Arc<Value>, info: PodInfo, node: String) {
        match self.client.bind(&info.namespace, &info.name, &node).await {
            Ok(()) => {
                let msg = format!(
                    "Successfully assigned {}/{} to {node}",
                    info.namespace, info.name
                );
                self.recorder.record(&pod, NORMAL, "Scheduled", &msg).await;
            }
            Err(e) => {
                self.cache().forget(&info.uid);
                self.queue.on_event(ASSIGNED_POD_DELETE);
                if e.code == 404 || (e.code == 409 && e.message.contains("already assigned")) {
                    return;
                }
                tracing::warn!(pod = %key_of(&pod), node, error = %e, "binding failed");
                let key = key_of(&pod);
                self.queue.add(&key, info.priority, &info.created);
                self.queue.retry(&key);
                let msg = format!("Binding rejected: {}", e.message);
                self.recorder
                    .record(&pod, WARNING, "FailedScheduling", &msg)
                    .await;
                self.set_unschedulable(&pod, "SchedulerError", &msg, None)
                    .await;
            }
        }
    }

    /// Reports a pod no node fits: preempts if that helps, records `FailedScheduling`, sets
    /// `PodScheduled=False` (and `nominatedNodeName` after a preemption).
    async fn failed(self: Arc<Self>, pod: Arc<Value>, message: String, preempt: Option<Candidate>) {
        let nominated = match preempt {
            Some(c) => {
                self.preempt(&pod, &c).await;
                Some(c.node)
            }
            None => None,
        };
        self.recorder
            .record(&pod, WARNING, "FailedScheduling", &message)
            .await;
        self.set_unschedulable(&pod, "Unschedulable", &message, nominated.as_deref())
            .await;
    }

    /// Deletes the victims of a preemption (marking each with a `DisruptionTarget` condition
    /// and a `Preempted` event).
    async fn preempt(&self, pod: &Value, c: &Candidate) {
        for v in &c.victims {
            let Some(victim) = self.pods.get(Some(&v.namespace), &v.name) else {
                continue;
            };
            if uid_of(&victim) != v.uid || is_deleting(&victim) {
                continue;
            }
            let condition = json!({"type": "DisruptionTarget", "status": "True",
                "reason": "PreemptionByScheduler",
                "message": format!("{SCHEDULER_NAME}: preempting to accommodate a higher priority pod"),
                "lastProbeTime": null, "lastTransitionTime": now()});
            let _ = self
                .put_condition(&v.namespace, &v.name, &v.uid, condition, None)
                .await;
            match self
                .client
                .delete(self.pods_resource, Some(&v.namespace), &v.name, None)
                .await
            {
                Ok(()) | Err(ApiError { code: 404, .. }) => {}
                Err(e) => {
                    tracing::warn!(pod = %v.name, error = %e, "preempting");
                    continue;
                }
            }
            let msg = format!("Preempted by pod {} on node {}", uid_of(pod), c.node);
            self.recorder
                .record(&victim, NORMAL, "Preempted", &msg)
                .await;
        }
    }

    /// Sets `PodScheduled=False` with this reason and message (only when that changes it).
    async fn set_unschedulable(
        &self,
        pod: &Value,
        reason: &str,
        message: &str,
        nominated: Option<&str>,
    ) {
        let condition = json!({"type": "PodScheduled", "status": "False", "reason": reason,
            "message": message, "lastProbeTime": null, "lastTransitionTime": now()});
        if let Err(e) = self
            .put_condition(
                namespace_of(pod),
                name_of(pod),
                uid_of(pod),
                condition,
                nominated,
            )
            .await
        {
            tracing::debug!(pod = %key_of(pod), error = %e, "updating PodScheduled");
        }
    }

    /// Writes one pod condition through `pods/status` unless it is already so (its
    /// `lastTransitionTime` kept when the status stays the same), retrying on conflicts.
    async fn put_condition(
        &self,
        ns: &str,
        name: &str,
        uid: &str,
        condition: Value,
        nominated: Option<&str>,
    ) -> Result<(), ApiError> {
        for _ in 0..5 {
            let Some(mut cur) = self.client.get(self.pods_resource, Some(ns), name).await? else {
                return Ok(());
            };
            if uid_of(&cur) != uid || (condition["type"] == "PodScheduled" && !is_ours(&cur)) {
                return Ok(());
            }
            let Some(next) = with_condition(&cur, &condition, nominated) else {
                return Ok(());
            };
            cur["status"] = next;
            match self.client.update_status(self.pods_resource, cur).await {
                Err(e) if e.code == 409 => continue,
                other => return other.map(|_| ()),
            }
        }
        Ok(())
    }
}

/// The pod's status with `condition` set (and `nominatedNodeName`), or None if nothing changes.
fn with_condition(pod: &Value, condition: &Value, nominated: Option<&str>) -> Option<Value> {
    let mut status = pod.get("status").cloned().unwrap_or_else(|| json!({}));
    let mut conds: Vec<Value> = status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let same = |a: &Value, k: &str| a.get(k) == condition.get(k);
    let mut changed = false;
    match conds.iter_mut().find(|c| same(c, "type")) {
        Some(c) if same(c, "status") && same(c, "reason") && same(c, "message") => {}
        Some(c) => {
            let mut next = condition.clone();
            if same(c, "status") {
                if let Some(t) = c.get("lastTransitionTime") {
                    next["lastTransitionTime"] = t.clone();
                }
            }
            *c = next;
            changed = true;
        }
        None => {
            conds.push(condition.clone());
            changed = true;
        }
    }
    if let Some(n) = nominated {
        if status.get("nominatedNodeName").and_then(Value::as_str) != Some(n) {
            status["nominatedNodeName"] = json!(n);
            changed = true;
        }
    }
    if !changed {
        return None;
    }
    status["conditions"] = Value::Array(conds);
    Some(status)
}

/// One scheduling decision over the cache (pure: no I/O).
fn decide(
    pod: &Value,
    info: &PodInfo,
    cache: &Cache,
    ns_labels: filters::NamespaceLabels<'_>,
) -> Decision {
    // Pods nominated to a node (after preempting there) with at least this pod's priority hold
    // their room.
    let nodes: Vec<Cow<'_, NodeInfo>> = cache
        .node_infos()
        .map(|n| {
            let name = n.node.as_ref().map(|v| v.name.as_str()).unwrap_or("");
            let held: Vec<Arc<PodInfo>> = cache
                .nominated_on(name)
                .filter(|p| p.uid != info.uid && p.priority >= info.priority)
                .collect();
            if held.is_empty() {
                Cow::Borrowed(n)
            } else {
                let mut n = n.clone();
                for p in held {
                    n.add_pod(p);
                }
                Cow::Owned(n)
            }
        })
        .collect();
    if nodes.is_empty() {
        return Decision::Unschedulable {
            message: NO_NODES.to_string(),
            plugins: HashSet::new(),
            preempt: None,
        };
    }
    let cycle = Cycle::new(pod, info, nodes.iter().map(|n| n.as_ref()), ns_labels);
    let mut feasible: Vec<&NodeInfo> = Vec::new();
    let mut rejected: Vec<(String, Status)> = Vec::new();
    for n in &nodes {
        match filters::run(&cycle, n) {
            Ok(()) => feasible.push(n),
            Err(s) => rejected.push((
                n.node.as_ref().map(|v| v.name.clone()).unwrap_or_default(),
                s,
            )),
        }
    }
    let name_of_node = |n: &NodeInfo| n.node.as_ref().map(|v| v.name.clone()).unwrap_or_default();
    match feasible.as_slice() {
        [] => {
            let plugins = rejected.iter().map(|(_, s)| s.plugin).collect();
            let outcome = preemption::evaluate(pod, info, cache, &rejected, ns_labels);
            let statuses: Vec<Status> = rejected.into_iter().map(|(_, s)| s).collect();
            let (post, preempt) = match outcome {
                preemption::Outcome::Preempt(c) => (String::new(), Some(c)),
                preemption::Outcome::NotHelpful(m) => (m, None),
            };
            Decision::Unschedulable {
                message: filters::fit_error_message(nodes.len(), &statuses, &post),
                plugins,
                preempt,
            }
        }
        [only] => Decision::Bind(name_of_node(only)),
        many => {
            let scores = score::score(pod, info, many, nodes.iter().map(|n| n.as_ref()), ns_labels);
            let mut rng = rand::rng();
            let i = score::select_host(&scores, |n| rng.random_range(0..n)).unwrap_or(0);
            Decision::Bind(name_of_node(many[i]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, cpu: &str) -> Value {
        json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"allocatable": {"cpu": cpu, "memory": "1Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}]}})
    }

    fn pod(name: &str, cpu: &str, priority: i64) -> Value {
        json!({"metadata": {"name": name, "namespace": "d", "uid": name},
            "spec": {"priority": priority,
                "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}})
    }

    fn no_ns(_: &str) -> Map<String, Value> {
        Map::new()
    }

    fn decide_for(cache: &Cache, p: &Value) -> Decision {
        decide(p, &PodInfo::of(p), cache, &no_ns)
    }

    #[test]
    fn no_nodes_at_all() {
        let c = Cache::default();
        match decide_for(&c, &pod("p", "1", 0)) {
            Decision::Unschedulable { message, .. } => assert_eq!(message, NO_NODES),
            Decision::Bind(n) => panic!("bound to {n}"),
        }
    }

    #[test]
    fn insufficient_memory_message_and_spread() {
        let mut c = Cache::default();
        c.set_node(&node("a", "1"));
        let mut p = pod("p", "100m", 0);
        p["spec"]["containers"][0]["resources"]["requests"]["memory"] = json!("2Gi");
        match decide_for(&c, &p) {
            Decision::Unschedulable {
                message, plugins, ..
            } => {
                assert_eq!(
                    message,
                    "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are \
                     available: 1 No preemption victims found for incoming pod.."
                );
                assert!(plugins.contains(filters::NODE_RESOURCES_FIT));
            }
            Decision::Bind(n) => panic!("bound to {n}"),
        }
        // Two equal nodes: the second pod goes where the first is not.
        c.set_node(&node("b", "1"));
        let first = pod("x", "500m", 0);
        let Decision::Bind(n1) = decide_for(&c, &first) else {
            panic!("unschedulable")
        };
        c.assume(PodInfo::of(&first), &n1);
        let Decision::Bind(n2) = decide_for(&c, &pod("y", "500m", 0)) else {
            panic!("unschedulable")
        };
        assert_ne!(n1, n2);
    }

    #[test]
    fn preemption_nominates_and_holds_room() {
        let mut c = Cache::default();
        c.set_node(&node("a", "1"));
        let mut low = pod("low", "1", 0);
        low["spec"]["nodeName"] = json!("a");
        c.set_pod(&low);
        let high = pod("high", "1", 10);
        match decide_for(&c, &high) {
            Decision::Unschedulable {
                message,
                preempt: Some(cand),
                ..
            } => {
                assert_eq!(message, "0/1 nodes are available: 1 Insufficient cpu.");
                assert_eq!(cand.node, "a");
                assert_eq!(cand.victims[0].name, "low");
            }
            _ => panic!("expected a preemption"),
        }
        // Once the victim is gone, the nominated pod's room is kept from lower priorities.
        c.remove_pod("low");
        c.nominate(PodInfo::of(&high), "a");
        assert!(matches!(
            decide_for(&c, &pod("other", "1", 0)),
            Decision::Unschedulable { .. }
        ));
        assert!(matches!(decide_for(&c, &high), Decision::Bind(n) if n == "a"));
    }

    #[test]
    fn condition_written_only_when_it_changes() {
        let cond = json!({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "m1", "lastProbeTime": null, "lastTransitionTime": "T2"});
        let pod = json!({"status": {"phase": "Pending"}});
        let s = with_condition(&pod, &cond, None).expect("changed");
        assert_eq!(s["conditions"][0]["message"], "m1");
        let pod = json!({"status": s});
        assert!(with_condition(&pod, &cond, None).is_none());
        let mut c2 = cond.clone();
        c2["message"] = json!("m2");
        c2["lastTransitionTime"] = json!("T3");
        let s = with_condition(&pod, &c2, Some("n1")).expect("changed");
        assert_eq!(s["conditions"][0]["message"], "m2");
        assert_eq!(s["conditions"][0]["lastTransitionTime"], "T2");
        assert_eq!(s["nominatedNodeName"], "n1");
    }

    #[test]
    fn long_messages_are_truncated() {
        let short = "0/1 nodes are available".to_string();
        assert_eq!(truncate_message(short.clone()), short);
        let long = "é".repeat(600);
        let t = truncate_message(long);
        assert!(
            t.len() <= MESSAGE_LIMIT && t.ends_with(" ..."),
            "{}",
            t.len()
        );
    }

    #[test]
    fn which_pods_are_ours() {
        assert!(is_ours(&json!({"spec": {}})));
        assert!(is_ours(
            &json!({"spec": {"schedulerName": "default-scheduler"}})
        ));
        assert!(!is_ours(&json!({"spec": {"schedulerName": "other"}})));
        assert!(!is_ours(&json!({"spec": {"nodeName": "n"}})));
        assert!(!is_ours(
            &json!({"spec": {}, "status": {"phase": "Succeeded"}})
        ));
        assert!(!is_ours(
            &json!({"metadata": {"deletionTimestamp": "x"}, "spec": {}})
        ));
        assert!(!is_ours(
            &json!({"spec": {"schedulingGates": [{"name": "g"}]}})
        ));
    }
}
