//! The node lifecycle controller (kube-controller-manager's node lifecycle, taint-eviction and
//! pod GC duties): a node whose kubelet stops renewing its Lease and posting status for the grace
//! period (40 s) gets its conditions set to `Unknown`; nodes get the `not-ready`/`unreachable`
//! (NoSchedule + NoExecute) and condition taints (`memory-pressure`, `disk-pressure`,
//! `pid-pressure`, `network-unavailable`, `unschedulable`) that match their state, and lose them
//! when it recovers; pods on a node with NoExecute taints they do not tolerate are deleted (at
//! once, or after their `tolerationSeconds`), so their controllers replace them elsewhere; pods
//! bound to a node that no longer exists are deleted.

use super::events::{Recorder, NORMAL};
use super::informer::{key_of, split_key, Informer};
use super::pods::{name_of, namespace_of, now_secs, parse_time};
use super::queue::WorkQueue;
use super::taints::{self, NOT_READY, UNREACHABLE};
use super::{run_workers, Context, Requeue};
use crate::server::client::{resource, Change, LocalClient};
use crate::server::status::ApiError;
use crate::server::write::now;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MANAGER: &str = "node-lifecycle-controller";
/// How long a pod may stay bound to a node that does not exist before it is deleted.
const ORPHAN_QUARANTINE: Duration = Duration::from_secs(40);
const CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// Registers the monitor loop and the taint-eviction workers.
pub fn register(ctx: &Context) {
    let (Ok(nodes), Ok(leases), Ok(pods)) = (
        ctx.informer("", "v1", "nodes"),
        ctx.informer("coordination.k8s.io", "v1", "leases"),
        ctx.informer("", "v1", "pods"),
    ) else {
        return;
    };
    let client = ctx.client(MANAGER);
    let recorder = Recorder::new(client.clone(), "node-controller");
    let period = ctx
        .config
        .node_monitor_period
        .unwrap_or(Duration::from_secs(5));
    let grace = ctx
        .config
        .node_monitor_grace_period
        .unwrap_or(Duration::from_secs(40));

    let queue = WorkQueue::new();
    let q = queue.clone();
    pods.on_change(move |change, pod, _| {
        if change != Change::Deleted
            && pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty())
        {
            q.add(key_of(pod));
        }
    });
    let q = queue.clone();
    let pods_of = pods.clone();
    nodes.on_change(move |change, node, old| {
        // Pods look again when their node goes or its NoExecute taints change (pod changes
        // enqueue themselves).
        let changed =
            change == Change::Deleted || old.is_none_or(|o| no_execute(o) != no_execute(node));
        if changed {
            let name = name_of(node);
            for p in pods_of.list(None) {
                if p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(name) {
                    q.add(key_of(&p));
                }
            }
        }
    });

    let monitor = Monitor {
        nodes: nodes.clone(),
        leases,
        pods: pods.clone(),
        client: client.clone(),
        recorder: recorder.clone(),
        grace,
        health: HashMap::new(),
    };
    tokio::spawn(monitor.run(period));

    let eviction = Arc::new(Eviction {
        nodes,
        pods,
        client,
        recorder,
        missing_since: std::sync::Mutex::new(HashMap::new()),
    });
    run_workers(MANAGER, queue, 2, move |key| {
        let e = eviction.clone();
        async move { e.reconcile(&key).await }
    });
}

struct Health {
    /// The lease renew time and Ready heartbeat last seen: a change means the kubelet is alive.
    probe: (String, String),
    observed: Instant,
}

struct Monitor {
    nodes: Arc<Informer>,
    leases: Arc<Informer>,
    pods: Arc<Informer>,
    client: LocalClient,
    recorder: Recorder,
    grace: Duration,
    health: HashMap<String, Health>,
}

fn condition<'a>(node: &'a Value, kind: &str) -> Option<&'a Value> {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

fn condition_status<'a>(node: &'a Value, kind: &str) -> &'a str {
    condition(node, kind)
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn no_execute(node: &Value) -> Vec<&Value> {
    taints::taints(node)
        .iter()
        .filter(|t| t.get("effect").and_then(Value::as_str) == Some("NoExecute"))
        .collect()
}

/// The taints this controller wants on a node, from its conditions and spec.
fn desired_taints(node: &Value) -> Vec<(&'static str, &'static str)> {
    let mut want = Vec::new();
    match condition_status(node, "Ready") {
        "False" => {
            want.push((NOT_READY, "NoSchedule"));
            want.push((NOT_READY, "NoExecute"));
        }
        "Unknown" => {
            want.push((UNREACHABLE, "NoSchedule"));
            want.push((UNREACHABLE, "NoExecute"));
        }
        _ => {}
    }
    for (cond, key) in [
        ("MemoryPressure", taints::MEMORY_PRESSURE),
        ("DiskPressure", taints::DISK_PRESSURE),
        ("PIDPressure", taints::PID_PRESSURE),
        ("NetworkUnavailable", taints::NETWORK_UNAVAILABLE),
    ] {
        if condition_status(node, cond) == "True" {
            want.push((key, "NoSchedule"));
        }
    }
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        want.push((taints::UNSCHEDULABLE, "NoSchedule"));
    }
    want
}

const MANAGED: [&str; 7] = [
    NOT_READY,
    UNREACHABLE,
    taints::UNSCHEDULABLE,
    taints::MEMORY_PRESSURE,
    taints::DISK_PRESSURE,
    taints::PID_PRESSURE,
    taints::NETWORK_UNAVAILABLE,
];

/// The node's taints with the managed ones brought in line with `desired_taints`, or None when
/// nothing changes. Taints already present keep their `timeAdded`.
fn reconcile_taints(node: &Value) -> Option<Vec<Value>> {
    let current = taints::taints(node);
    let want = desired_taints(node);
    let has = |k: &str, e: &str| {
        current.iter().any(|t| {
            t.get("key").and_then(Value::as_str) == Some(k)
                && t.get("effect").and_then(Value::as_str) == Some(e)
        })
    };
    let mut out: Vec<Value> = current
        .iter()
        .filter(|t| {
            let k = t.get("key").and_then(Value::as_str).unwrap_or("");
            let e = t.get("effect").and_then(Value::as_str).unwrap_or("");
            !MANAGED.contains(&k) || want.contains(&(k, e))
        })
        .cloned()
        .collect();
    let mut changed = out.len() != current.len();
    for (k, e) in want {
        if !has(k, e) {
            let mut t = json!({"key": k, "effect": e});
            if e == "NoExecute" {
                t["timeAdded"] = json!(now());
            }
            out.push(t);
            changed = true;
        }
    }
    changed.then_some(out)
}

/// The node's conditions after its kubelet went silent: every known condition Unknown.
fn unknown_conditions(node: &Value, ts: &str) -> Vec<Value> {
    let mut conds: Vec<Value> = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for kind in CONDITIONS {
        match conds
            .iter_mut()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
        {
            Some(c) => {
                if c.get("status").and_then(Value::as_str) != Some("Unknown") {
                    c["status"] = json!("Unknown");
                    c["reason"] = json!("NodeStatusUnknown");
                    c["message"] = json!("Kubelet stopped posting node status.");
                    c["lastTransitionTime"] = json!(ts);
                }
            }
            None => conds.push(json!({"type": kind, "status": "Unknown",
                "reason": "NodeStatusNeverUpdated", "message": "Kubelet never posted node status.",
                "lastHeartbeatTime": node.pointer("/metadata/creationTimestamp").cloned().unwrap_or(json!(ts)),
                "lastTransitionTime": ts})),
        }
    }
    conds
}

impl Monitor {
    async fn run(mut self, period: Duration) {
        self.nodes.synced().await;
        self.leases.synced().await;
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let all = self.nodes.list(None);
            self.health
                .retain(|name, _| all.iter().any(|n| name_of(n) == name));
            for node in all {
                if let Err(e) = self.check(&node).await {
                    tracing::debug!(node = name_of(&node), error = %e, "node lifecycle");
                }
            }
        }
    }

    async fn check(&mut self, node: &Value) -> Result<(), ApiError> {
        let name = name_of(node).to_string();
        let renew = self
            .leases
            .get(Some("kube-node-lease"), &name)
            .and_then(|l| {
                l.pointer("/spec/renewTime")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default();
        let heartbeat = condition(node, "Ready")
            .and_then(|c| c.get("lastHeartbeatTime"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let probe = (renew, heartbeat);
        let h = self.health.entry(name.clone()).or_insert_with(|| Health {
            probe: probe.clone(),
            observed: Instant::now(),
        });
        if h.probe != probe {
            h.probe = probe;
            h.observed = Instant::now();
        }
        let stale = h.observed.elapsed() > self.grace;
        let nodes_r = resource("", "v1", "nodes")?;
        let mut node = node.clone();
        if stale && condition_status(&node, "Ready") != "Unknown" {
            let was_ready = condition_status(&node, "Ready") == "True";
            node["status"]["conditions"] = json!(unknown_conditions(&node, &now()));
            node = self.client.update_status(nodes_r, node).await?;
            tracing::info!(node = name, "node stopped posting status; marked Unknown");
            self.recorder
                .record(
                    &node,
                    NORMAL,
                    "NodeNotReady",
                    &format!("Node {name} status is now: NodeNotReady"),
                )
                .await;
            if was_ready {
                self.mark_pods_not_ready(&name).await;
            }
        }
        if let Some(new_taints) = reconcile_taints(&node) {
            node["spec"]["taints"] = json!(new_taints);
            self.client.update(nodes_r, node).await?;
        }
        Ok(())
    }

    /// Sets the Ready condition of every pod on the node to False (MarkPodsNotReady).
    async fn mark_pods_not_ready(&self, node: &str) {
        let Ok(pods_r) = resource("", "v1", "pods") else {
            return;
        };
        for pod in self.pods.list(None) {
            if pod.pointer("/spec/nodeName").and_then(Value::as_str) != Some(node) {
                continue;
            }
            let mut pod = (*pod).clone();
            let Some(conds) = pod
                .pointer_mut("/status/conditions")
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            let mut changed = false;
            for c in conds.iter_mut() {
                if c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) != Some("False")
                {
                    c["status"] = json!("False");
                    c["lastTransitionTime"] = json!(now());
                    changed = true;
                }
            }
            if changed {
                if let Err(e) = self.client.update_status(pods_r, pod).await {
                    tracing::debug!(error = %e, "marking pod not ready");
                }
            }
        }
    }
}

struct Eviction {
    nodes: Arc<Informer>,
    pods: Arc<Informer>,
    client: LocalClient,
    recorder: Recorder,
    /// Pods (by uid) first seen bound to a node that does not exist, and when.
    missing_since: std::sync::Mutex<HashMap<String, Instant>>,
}

/// When a pod must leave a node with these NoExecute taints: `Some(0)` now, `Some(n)` in n
/// seconds, None never (every taint tolerated forever, or no taint).
fn eviction_delay(pod: &Value, no_exec: &[&Value], now: i64) -> Option<i64> {
    let mut deadline: Option<i64> = None;
    for taint in no_exec {
        let tols = taints::tolerating(pod, taint);
        if tols.is_empty() {
            return Some(0);
        }
        // The shortest tolerationSeconds among the matching tolerations (none = forever).
        let secs = tols
            .iter()
            .filter_map(|t| t.get("tolerationSeconds").and_then(Value::as_i64))
            .min();
        let Some(secs) = secs else { continue };
        let added = taint
            .get("timeAdded")
            .and_then(Value::as_str)
            .and_then(parse_time)
            .unwrap_or(now);
        let at = added + secs.max(0);
        deadline = Some(deadline.map_or(at, |d| d.min(at)));
    }
    deadline.map(|d| (d - now).max(0))
}

impl Eviction {
    async fn reconcile(&self, key: &str) -> Result<Requeue, ApiError> {
        self.nodes.synced().await;
        let (ns, name) = split_key(key);
        let Some(pod) = self.pods.get(ns, name) else {
            return Ok(None);
        };
        if pod.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(None);
        }
        let Some(node_name) = pod.pointer("/spec/nodeName").and_then(Value::as_str) else {
            return Ok(None);
        };
        let pods_r = resource("", "v1", "pods")?;
        let uid = pod
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let Some(node) = self.nodes.get(None, node_name) else {
            // Pod GC: a pod bound to a node that has not existed for the whole quarantine,
            // confirmed with a fresh read, is deleted (with its uid as precondition).
            let first = {
                let mut m = self
                    .missing_since
                    .lock()
                    .map_err(|_| ApiError::internal("node lifecycle state poisoned"))?;
                m.retain(|_, t| t.elapsed() < ORPHAN_QUARANTINE * 10);
                *m.entry(uid.clone()).or_insert_with(Instant::now)
            };
            let waited = first.elapsed();
            if waited < ORPHAN_QUARANTINE {
                return Ok(Some(ORPHAN_QUARANTINE - waited));
            }
            let nodes_r = resource("", "v1", "nodes")?;
            if self.client.get(nodes_r, None, node_name).await?.is_some() {
                return Ok(None);
            }
            tracing::info!(
                pod = key,
                node = node_name,
                "deleting pod bound to a missing node"
            );
            let opts = crate::server::write::DeleteOptions {
                grace_period_seconds: Some(0),
                precondition_uid: Some(uid.clone()),
                ..Default::default()
            };
            if let Ok(mut m) = self.missing_since.lock() {
                m.remove(&uid);
            }
            return match self
                .client
                .delete_with(pods_r, Some(namespace_of(&pod)), name, &opts)
                .await
            {
                Err(e) if e.code != 404 && e.code != 409 => Err(e),
                _ => Ok(None),
            };
        };
        if let Ok(mut m) = self.missing_since.lock() {
            m.remove(&uid);
        }
        let no_exec = no_execute(&node);
        match eviction_delay(&pod, &no_exec, now_secs()) {
            None => Ok(None),
            Some(d) if d > 0 => Ok(Some(Duration::from_secs(d as u64))),
            Some(_) => {
                self.evict(&pod).await?;
                Ok(None)
            }
        }
    }

    async fn evict(&self, pod: &Value) -> Result<(), ApiError> {
        let pods_r = resource("", "v1", "pods")?;
        let ns = namespace_of(pod).to_string();
        let name = name_of(pod).to_string();
        // The condition goes on the freshest copy; a conflict means the pod moved on: read it
        // again (a few times) rather than lose the condition.
        let mut current = pod.clone();
        for _ in 0..3 {
            match self
                .client
                .update_status(pods_r, with_disruption_target(&current))
                .await
            {
                Err(e) if e.code == 409 => match self.client.get(pods_r, Some(&ns), &name).await {
                    Ok(Some(fresh)) => current = fresh,
                    _ => break,
                },
                Err(e) => {
                    tracing::debug!(error = %e, "adding DisruptionTarget");
                    break;
                }
                Ok(_) => break,
            }
        }
        self.recorder
            .record(
                pod,
                NORMAL,
                "TaintManagerEviction",
                &format!("Marking for deletion Pod {ns}/{name}"),
            )
            .await;
        tracing::info!(pod = %format!("{ns}/{name}"), "evicting pod from a NoExecute-tainted node");
        match self.client.delete(pods_r, Some(&ns), &name, None).await {
            Err(e) if e.code != 404 => Err(e),
            _ => Ok(()),
        }
    }
}

/// The pod with the taint manager's `DisruptionTarget` condition (replacing any earlier one).
fn with_disruption_target(pod: &Value) -> Value {
    let mut with = pod.clone();
    if !with.get("status").is_some_and(Value::is_object) {
        with["status"] = json!({});
    }
    let mut conds: Vec<Value> = with["status"]
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    conds.retain(|c| c.get("type").and_then(Value::as_str) != Some("DisruptionTarget"));
    conds.push(json!({"type": "DisruptionTarget", "status": "True",
        "reason": "DeletionByTaintManager",
        "message": "Taint manager: deleting due to NoExecute taint",
        "lastTransitionTime": now()}));
    with["status"]["conditions"] = json!(conds);
    with
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(ready: &str) -> Value {
        json!({"metadata": {"name": "n"}, "spec": {"taints": [{"key": "user", "effect": "NoSchedule"}]},
            "status": {"conditions": [{"type": "Ready", "status": ready, "lastHeartbeatTime": "2026-01-01T00:00:00Z"}]}})
    }

    #[test]
    fn taints_follow_conditions() {
        let t = reconcile_taints(&node("Unknown")).expect("changed");
        let keys: Vec<(&str, &str)> = t
            .iter()
            .map(|t| (t["key"].as_str().unwrap(), t["effect"].as_str().unwrap()))
            .collect();
        assert!(keys.contains(&("user", "NoSchedule")));
        assert!(keys.contains(&(UNREACHABLE, "NoSchedule")));
        assert!(keys.contains(&(UNREACHABLE, "NoExecute")));
        assert!(reconcile_taints(&node("True")).is_none());
        // Recovery removes the managed taints and keeps the user's.
        let mut recovered = node("True");
        recovered["spec"]["taints"] = json!(t);
        let t = reconcile_taints(&recovered).expect("changed");
        assert_eq!(t, vec![json!({"key": "user", "effect": "NoSchedule"})]);
        let mut cordoned = node("True");
        cordoned["spec"]["unschedulable"] = json!(true);
        let t = reconcile_taints(&cordoned).expect("changed");
        assert!(t.iter().any(|t| t["key"] == taints::UNSCHEDULABLE));
    }

    #[test]
    fn silent_node_conditions() {
        let c = unknown_conditions(&node("True"), "2026-01-01T00:01:00Z");
        let ready = c.iter().find(|c| c["type"] == "Ready").unwrap();
        assert_eq!(ready["status"], "Unknown");
        assert_eq!(ready["reason"], "NodeStatusUnknown");
        assert_eq!(ready["lastHeartbeatTime"], "2026-01-01T00:00:00Z");
        let mem = c.iter().find(|c| c["type"] == "MemoryPressure").unwrap();
        assert_eq!(mem["reason"], "NodeStatusNeverUpdated");
    }

    #[test]
    fn eviction_timing() {
        let t0 = parse_time("2026-01-01T00:00:00Z").unwrap();
        let taint =
            json!({"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z"});
        let tolerant = json!({"spec": {"tolerations": [
            {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]}});
        assert_eq!(eviction_delay(&tolerant, &[&taint], t0 + 100), Some(200));
        assert_eq!(eviction_delay(&tolerant, &[&taint], t0 + 400), Some(0));
        let forever = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        assert_eq!(eviction_delay(&forever, &[&taint], t0), None);
        let intolerant = json!({"spec": {}});
        assert_eq!(eviction_delay(&intolerant, &[&taint], t0), Some(0));
        assert_eq!(eviction_delay(&intolerant, &[], t0), None);
    }
}
