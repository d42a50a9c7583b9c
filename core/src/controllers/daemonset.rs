//! The DaemonSet controller (pkg/controller/daemon): one pod per eligible node — the node
//! fits the template's `nodeSelector` and required node affinity, and its taints are tolerated
//! (the template's tolerations plus those every daemon pod gets). Pods go through the scheduler
//! pinned by node affinity on `metadata.name`, as Kubernetes does. Each template version is a
//! ControllerRevision (so `kubectl rollout history|undo ds` work); RollingUpdate replaces old
//! pods node by node within `maxUnavailable`, OnDelete only when a pod is deleted. Pods on
//! nodes that no longer fit, failed pods and duplicates are deleted.

use super::claim::Claimer;
use super::deployment::hash::compute_hash;
use super::events::{Recorder, NORMAL, WARNING};
use super::informer::{key_of, split_key, Informer};
use super::pods::{
    controller_of, is_available, is_controlled_by, is_deleting, is_ready, labels, name_of,
    namespace_of, now_secs, phase, pod_from_template, uid_of, until_available,
};
use super::queue::WorkQueue;
use super::scheduler::affinity::node_matches_pod;
use super::taints::{self, tolerates};
use super::{run_workers, Context, Requeue};
use crate::selectors::LabelSelector;
use crate::server::client::{resource, Change, LocalClient};
use crate::server::status::ApiError;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const MANAGER: &str = "daemon-set-controller";
const REVISION_HASH: &str = "controller-revision-hash";
const TEMPLATE_GENERATION: &str = "pod-template-generation";

/// Tolerations the DaemonSet controller adds to every daemon pod
/// (`util.AddOrUpdateDaemonPodTolerations`).
fn daemon_tolerations(host_network: bool) -> Vec<Value> {
    let mut t = vec![
        json!({"key": taints::NOT_READY, "operator": "Exists", "effect": "NoExecute"}),
        json!({"key": taints::UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}),
        json!({"key": taints::DISK_PRESSURE, "operator": "Exists", "effect": "NoSchedule"}),
        json!({"key": taints::MEMORY_PRESSURE, "operator": "Exists", "effect": "NoSchedule"}),
        json!({"key": taints::PID_PRESSURE, "operator": "Exists", "effect": "NoSchedule"}),
        json!({"key": taints::UNSCHEDULABLE, "operator": "Exists", "effect": "NoSchedule"}),
    ];
    if host_network {
        t.push(json!({"key": taints::NETWORK_UNAVAILABLE, "operator": "Exists", "effect": "NoSchedule"}));
    }
    t
}

/// The template's pod spec with the daemon tolerations added (those not already there).
fn daemon_pod_spec(template: &Value) -> Value {
    let mut spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
    let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    let mut tols: Vec<Value> = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for t in daemon_tolerations(host_network) {
        if !tols
            .iter()
            .any(|e| e.get("key") == t.get("key") && e.get("effect") == t.get("effect"))
        {
            tols.push(t);
        }
    }
    spec["tolerations"] = json!(tols);
    spec
}

/// `NodeShouldRunDaemonPod`: (should a new daemon pod go there, may an existing one stay).
/// A new pod needs every NoSchedule and NoExecute taint tolerated; an existing pod only the
/// NoExecute ones.
fn node_should_run(template: &Value, node: &Value) -> (bool, bool) {
    let spec = daemon_pod_spec(template);
    let node_labels = labels(node);
    if !node_matches_pod(&json!({"spec": spec}), name_of(node), &node_labels) {
        return (false, false);
    }
    let tols = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let tolerated = |effect: &str| {
        taints::taints(node).iter().all(|taint| {
            taint.get("effect").and_then(Value::as_str) != Some(effect)
                || tols.iter().any(|t| tolerates(t, taint))
        })
    };
    let stay = tolerated("NoExecute");
    (stay && tolerated("NoSchedule"), stay)
}

/// Pins a pod spec to a node by required node affinity on `metadata.name`
/// (`ReplaceDaemonSetPodNodeNameNodeAffinity`).
fn pin_to_node(spec: &mut Value, node: &str) {
    let field = json!({"key": "metadata.name", "operator": "In", "values": [node]});
    let path =
        "/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms";
    let terms: Vec<Value> = spec
        .pointer(path)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let terms: Vec<Value> = if terms.is_empty() {
        vec![json!({"matchFields": [field]})]
    } else {
        terms
            .into_iter()
            .map(|mut t| {
                t["matchFields"] = json!([field]);
                t
            })
            .collect()
    };
    if !spec.get("affinity").is_some_and(Value::is_object) {
        spec["affinity"] = json!({});
    }
    if !spec["affinity"]
        .get("nodeAffinity")
        .is_some_and(Value::is_object)
    {
        spec["affinity"]["nodeAffinity"] = json!({});
    }
    spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] =
        json!({"nodeSelectorTerms": terms});
}

/// The node a daemon pod is for: its nodeName, or the node its affinity pins it to.
fn pod_node(pod: &Value) -> Option<String> {
    if let Some(n) = pod.pointer("/spec/nodeName").and_then(Value::as_str) {
        if !n.is_empty() {
            return Some(n.to_string());
        }
    }
    let terms = pod
        .pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")?
        .as_array()?;
    terms.iter().find_map(|t| {
        t.get("matchFields")?.as_array()?.iter().find_map(|f| {
            (f.get("key").and_then(Value::as_str) == Some("metadata.name")
                && f.get("operator").and_then(Value::as_str) == Some("In"))
            .then(|| f.pointer("/values/0").and_then(Value::as_str))
            .flatten()
            .map(str::to_string)
        })
    })
}

/// The ControllerRevision data of a DaemonSet: a patch replacing its template (`getPatch`).
fn revision_data(ds: &Value) -> Value {
    let mut template = ds
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    template["$patch"] = json!("replace");
    json!({"spec": {"template": template}})
}

/// An int-or-percent against a total (percentages rounded up, as the DaemonSet does).
fn scaled(v: Option<&Value>, total: i64, default: i64) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(default),
        Some(Value::String(s)) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) => (p * total + 99) / 100,
            None => s.parse().unwrap_or(default),
        },
        _ => default,
    }
}

/// Registers the DaemonSet controller.
pub fn register(ctx: &Context) {
    let (Ok(dss), Ok(pods), Ok(nodes), Ok(revs)) = (
        ctx.informer("apps", "v1", "daemonsets"),
        ctx.informer("", "v1", "pods"),
        ctx.informer("", "v1", "nodes"),
        ctx.informer("apps", "v1", "controllerrevisions"),
    ) else {
        return;
    };
    let queue = WorkQueue::new();
    let q = queue.clone();
    dss.on_change(move |change, ds, _| {
        if change != Change::Deleted {
            q.add(key_of(ds));
        }
    });
    let q = queue.clone();
    pods.on_change(move |_, pod, old| {
        for p in [Some(pod), old].into_iter().flatten() {
            if let Some(r) = controller_of(p) {
                if r.get("kind").and_then(Value::as_str) == Some("DaemonSet") {
                    let name = r.get("name").and_then(Value::as_str).unwrap_or("");
                    q.add(format!("{}/{name}", namespace_of(p)));
                }
            }
        }
    });
    let q = queue.clone();
    let dss2 = dss.clone();
    nodes.on_change(move |_, _, _| {
        for ds in dss2.list(None) {
            q.add(key_of(&ds));
        }
    });
    let ctl = Arc::new(Controller {
        client: ctx.client(MANAGER),
        writer: ctx.server.writer.clone(),
        recorder: Recorder::new(ctx.client(MANAGER), "daemonset-controller"),
        dss,
        pods,
        nodes,
        revs,
    });
    run_workers(MANAGER, queue, 2, move |key| {
        let c = ctl.clone();
        async move { c.reconcile(&key).await }
    });
}

struct Controller {
    client: LocalClient,
    writer: crate::server::write::Writer,
    recorder: Recorder,
    dss: Arc<Informer>,
    pods: Arc<Informer>,
    nodes: Arc<Informer>,
    revs: Arc<Informer>,
}

impl Controller {
    async fn reconcile(&self, key: &str) -> Result<Requeue, ApiError> {
        for inf in [&self.dss, &self.pods, &self.nodes, &self.revs] {
            inf.synced().await;
        }
        let (ns, name) = split_key(key);
        let Some(ds) = self.dss.get(ns, name) else {
            return Ok(None);
        };
        if is_deleting(&ds) {
            return Ok(None);
        }
        let ns = namespace_of(&ds).to_string();
        let (hash, revision) = self.current_revision(&ds).await?;
        let selector = ds
            .pointer("/spec/selector")
            .map(LabelSelector::from_label_selector_object)
            .transpose()
            .map_err(|e| ApiError::internal(format!("daemonset selector: {e}")))?
            .unwrap_or_else(LabelSelector::nothing);
        // Own pods, adopted orphans that match, minus released ones (ControllerRefManager).
        let claimer = Claimer {
            writer: &self.writer,
            manager: MANAGER,
            owner: &ds,
            owner_resource: resource("apps", "v1", "daemonsets")?,
            selector: &selector,
            resource: resource("", "v1", "pods")?,
        };
        let mine = claimer.claim(&self.pods.list(Some(&ns))).await?;

        let template = ds.pointer("/spec/template").cloned().unwrap_or_default();
        let nodes = self.nodes.list(None);
        let mut by_node: BTreeMap<String, Vec<Arc<Value>>> = BTreeMap::new();
        for p in &mine {
            if let Some(n) = pod_node(p) {
                by_node.entry(n).or_default().push(p.clone());
            }
        }
        let min_ready = ds
            .pointer("/spec/minReadySeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let now = now_secs();
        let mut to_create: Vec<String> = Vec::new();
        let mut to_delete: Vec<Arc<Value>> = Vec::new();
        let mut wanted_nodes = 0i64;
        for node in &nodes {
            let node_name = name_of(node).to_string();
            let (run, stay) = node_should_run(&template, node);
            let pods_here: Vec<Arc<Value>> = by_node
                .remove(&node_name)
                .unwrap_or_default()
                .into_iter()
                .filter(|p| !is_deleting(p))
                .collect();
            if run || (stay && !pods_here.is_empty()) {
                wanted_nodes += 1;
                let (failed, mut live): (Vec<_>, Vec<_>) =
                    pods_here.into_iter().partition(|p| phase(p) == "Failed");
                if !failed.is_empty() {
                    self.recorder
                        .record(
                            &ds,
                            WARNING,
                            "FailedDaemonPod",
                            &format!(
                                "Found failed daemon pod {ns}/{} on node {node_name}, will try to kill it",
                                name_of(&failed[0])
                            ),
                        )
                        .await;
                    to_delete.extend(failed);
                }
                if live.is_empty() {
                    if run {
                        to_create.push(node_name);
                    }
                } else if live.len() > 1 {
                    // Keep the oldest; delete the rest.
                    live.sort_by(|a, b| {
                        let t = |p: &Value| {
                            p.pointer("/metadata/creationTimestamp")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string()
                        };
                        t(a).cmp(&t(b))
                    });
                    to_delete.extend(live.into_iter().skip(1));
                }
            } else {
                to_delete.extend(pods_here);
            }
        }
        // Pods for nodes that no longer exist.
        for (_, ps) in by_node {
            to_delete.extend(ps.into_iter().filter(|p| !is_deleting(p)));
        }

        // Rolling update: replace old pods within maxUnavailable.
        let strategy = ds
            .pointer("/spec/updateStrategy/type")
            .and_then(Value::as_str)
            .unwrap_or("RollingUpdate");
        if strategy == "RollingUpdate" {
            let max_unavailable = scaled(
                ds.pointer("/spec/updateStrategy/rollingUpdate/maxUnavailable"),
                wanted_nodes,
                1,
            )
            .max(1);
            let live: Vec<&Arc<Value>> = mine
                .iter()
                .filter(|p| !is_deleting(p) && !to_delete.iter().any(|d| uid_of(d) == uid_of(p)))
                .collect();
            let mut unavailable = to_create.len() as i64
                + live
                    .iter()
                    .filter(|p| !is_available(p, min_ready, now))
                    .count() as i64
                + mine.iter().filter(|p| is_deleting(p)).count() as i64;
            let old: Vec<&Arc<Value>> = live
                .iter()
                .copied()
                .filter(|p| labels(p).get(REVISION_HASH).and_then(Value::as_str) != Some(&hash))
                .collect();
            // Old pods that are unavailable anyway go first, then available ones within budget.
            for p in old.iter().filter(|p| !is_available(p, min_ready, now)) {
                to_delete.push((*p).clone());
            }
            for p in old.iter().filter(|p| is_available(p, min_ready, now)) {
                if unavailable >= max_unavailable {
                    break;
                }
                to_delete.push((*p).clone());
                unavailable += 1;
            }
        }

        let pods_r = resource("", "v1", "pods")?;
        let mut last_rv = 0i64;
        for node_name in &to_create {
            let mut pod = pod_from_template(&template, &ds, None, &format!("{name}-"));
            let mut spec = daemon_pod_spec(&template);
            pin_to_node(&mut spec, node_name);
            pod["spec"] = spec;
            pod["metadata"]["labels"][REVISION_HASH] = json!(hash);
            pod["metadata"]["labels"][TEMPLATE_GENERATION] = json!(ds
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1)
                .to_string());
            match self.client.create(pods_r, Some(&ns), pod).await {
                Ok(created) => {
                    last_rv = last_rv.max(rv_of(&created));
                    self.recorder
                        .record(
                            &ds,
                            NORMAL,
                            "SuccessfulCreate",
                            &format!("Created pod: {}", name_of(&created)),
                        )
                        .await;
                }
                Err(e) => {
                    self.recorder
                        .record(
                            &ds,
                            WARNING,
                            "FailedCreate",
                            &format!("Error creating: {e}"),
                        )
                        .await;
                    return Err(e);
                }
            }
        }
        for p in &to_delete {
            match self
                .client
                .delete(pods_r, Some(&ns), name_of(p), None)
                .await
            {
                Ok(()) => {
                    self.recorder
                        .record(
                            &ds,
                            NORMAL,
                            "SuccessfulDelete",
                            &format!("Deleted pod: {}", name_of(p)),
                        )
                        .await;
                }
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        // The next look must see these writes (or it would create or delete again).
        if last_rv > 0 {
            self.pods.caught_up(last_rv).await;
        }
        if !to_delete.is_empty() {
            let pods = &self.pods;
            super::replicaset::wait_for(pods, || {
                to_delete.iter().all(|p| {
                    pods.get(Some(&ns), name_of(p))
                        .is_none_or(|now| is_deleting(&now) || uid_of(&now) != uid_of(p))
                })
            })
            .await;
        }
        self.update_status(&ds, &hash, revision, min_ready).await
    }

    /// Finds or creates the ControllerRevision of the current template; returns its hash and
    /// revision number.
    async fn current_revision(&self, ds: &Value) -> Result<(String, i64), ApiError> {
        let revs_r = resource("apps", "v1", "controllerrevisions")?;
        let ns = namespace_of(ds);
        let uid = uid_of(ds);
        let data = revision_data(ds);
        let hash = compute_hash(
            &data,
            ds.pointer("/status/collisionCount")
                .and_then(Value::as_i64)
                .map(|c| c as i32),
        );
        let history: Vec<Arc<Value>> = self
            .revs
            .list(Some(ns))
            .into_iter()
            .filter(|r| is_controlled_by(r, uid))
            .collect();
        let max = history
            .iter()
            .filter_map(|r| r.get("revision").and_then(Value::as_i64))
            .max()
            .unwrap_or(0);
        if let Some(cur) = history.iter().find(|r| r.get("data") == Some(&data)) {
            let n = cur.get("revision").and_then(Value::as_i64).unwrap_or(0);
            if n < max {
                // Rolled back to an older template: it becomes the newest revision.
                let mut bumped = (**cur).clone();
                bumped["revision"] = json!(max + 1);
                self.client.update(revs_r, bumped).await?;
                return Ok((label_hash(cur).unwrap_or(hash), max + 1));
            }
            return Ok((label_hash(cur).unwrap_or(hash), n));
        }
        let name = format!("{}-{hash}", name_of(ds));
        let rev = json!({"apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {"name": name, "namespace": ns,
                "labels": {REVISION_HASH: hash},
                "ownerReferences": [super::pods::controller_ref(ds)]},
            "data": data, "revision": max + 1});
        // Keep the selector labels on the revision, as Kubernetes does.
        let mut rev = rev;
        if let Some(sel) = ds
            .pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object)
        {
            for (k, v) in sel {
                rev["metadata"]["labels"][k] = v.clone();
            }
        }
        match self.client.create(revs_r, Some(ns), rev).await {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
        Ok((hash, max + 1))
    }

    async fn update_status(
        &self,
        ds: &Value,
        hash: &str,
        _revision: i64,
        min_ready: i64,
    ) -> Result<Requeue, ApiError> {
        let uid = uid_of(ds);
        let ns = namespace_of(ds);
        let template = ds.pointer("/spec/template").cloned().unwrap_or_default();
        let now = now_secs();
        let mut desired = 0i64;
        let mut current = 0i64;
        let mut misscheduled = 0i64;
        let mut ready = 0i64;
        let mut available = 0i64;
        let mut updated = 0i64;
        let mut requeue: Option<i64> = None;
        let pods: Vec<Arc<Value>> = self
            .pods
            .list(Some(ns))
            .into_iter()
            .filter(|p| is_controlled_by(p, uid) && !is_deleting(p))
            .collect();
        for node in self.nodes.list(None) {
            let node_name = name_of(&node);
            let here: Vec<&Arc<Value>> = pods
                .iter()
                .filter(|p| pod_node(p).as_deref() == Some(node_name))
                .collect();
            let (new_ok, stay) = node_should_run(&template, &node);
            let run = new_ok || (stay && !here.is_empty());
            if run {
                desired += 1;
            }
            let Some(p) = here.first() else { continue };
            if !run {
                misscheduled += 1;
                continue;
            }
            current += 1;
            if labels(p).get(REVISION_HASH).and_then(Value::as_str) == Some(hash) {
                updated += 1;
            }
            if is_ready(p) {
                ready += 1;
            }
            if is_available(p, min_ready, now) {
                available += 1;
            } else if let Some(left) = until_available(p, min_ready, now) {
                requeue = Some(requeue.map_or(left, |r: i64| r.min(left)));
            }
        }
        let mut status = ds.get("status").cloned().unwrap_or_else(|| json!({}));
        let before = status.clone();
        for (k, v) in [
            ("desiredNumberScheduled", desired),
            ("currentNumberScheduled", current),
            ("numberMisscheduled", misscheduled),
            ("numberReady", ready),
            ("numberAvailable", available),
            ("updatedNumberScheduled", updated),
            ("numberUnavailable", (desired - available).max(0)),
        ] {
            status[k] = json!(v);
        }
        for k in [
            "numberAvailable",
            "numberUnavailable",
            "updatedNumberScheduled",
        ] {
            if status[k] == json!(0) {
                status.as_object_mut().map(|m| m.remove(k));
            }
        }
        status["observedGeneration"] = ds
            .pointer("/metadata/generation")
            .cloned()
            .unwrap_or(json!(1));
        if status != before {
            let mut with = ds.clone();
            with["status"] = status;
            let r = resource("apps", "v1", "daemonsets")?;
            self.client.update_status(r, with).await?;
        }
        Ok(requeue.map(|s| Duration::from_secs(s.max(1) as u64)))
    }
}

fn rv_of(obj: &Value) -> i64 {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn label_hash(rev: &Value) -> Option<String> {
    rev.pointer(&format!("/metadata/labels/{REVISION_HASH}"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, labels: Value, taints: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}})
    }

    #[test]
    fn eligibility() {
        let t = json!({"spec": {"nodeSelector": {"role": "edge"}, "containers": []}});
        assert!(node_should_run(&t, &node("a", json!({"role": "edge"}), json!([]))).0);
        assert!(!node_should_run(&t, &node("b", json!({"role": "core"}), json!([]))).0);
        let tainted = node(
            "c",
            json!({"role": "edge"}),
            json!([{"key": "dedicated", "effect": "NoSchedule"}]),
        );
        // A NoSchedule taint keeps new pods off but lets an existing one stay; NoExecute doesn't.
        assert_eq!(node_should_run(&t, &tainted), (false, true));
        let evicting = node(
            "e",
            json!({"role": "edge"}),
            json!([{"key": "dedicated", "effect": "NoExecute"}]),
        );
        assert_eq!(node_should_run(&t, &evicting), (false, false));
        // Daemon pods tolerate cordoned and unreachable nodes.
        let cordoned = node(
            "d",
            json!({"role": "edge"}),
            json!([
            {"key": taints::UNSCHEDULABLE, "effect": "NoSchedule"},
            {"key": taints::UNREACHABLE, "effect": "NoExecute"}]),
        );
        assert!(node_should_run(&t, &cordoned).0);
        let tolerant =
            json!({"spec": {"tolerations": [{"key": "dedicated", "operator": "Exists"}]}});
        assert!(
            node_should_run(
                &tolerant,
                &node(
                    "c",
                    json!({}),
                    json!([{"key": "dedicated", "effect": "NoSchedule"}])
                )
            )
            .0
        );
    }

    #[test]
    fn pinning() {
        let mut spec = json!({"containers": []});
        pin_to_node(&mut spec, "n1");
        let pod = json!({"spec": spec});
        assert_eq!(pod_node(&pod).as_deref(), Some("n1"));
        let mut with_terms = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "Exists"}]}]}}}});
        pin_to_node(&mut with_terms, "n2");
        let term = &with_terms["affinity"]["nodeAffinity"]
            ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0];
        assert_eq!(term["matchExpressions"][0]["key"], "zone");
        assert_eq!(term["matchFields"][0]["values"][0], "n2");
    }

    #[test]
    fn surge_math_and_revision_data() {
        assert_eq!(scaled(Some(&json!("10%")), 3, 1), 1);
        assert_eq!(scaled(Some(&json!("50%")), 3, 1), 2);
        assert_eq!(scaled(Some(&json!(2)), 3, 1), 2);
        assert_eq!(scaled(None, 3, 1), 1);
        let ds = json!({"spec": {"template": {"metadata": {"labels": {"a": "b"}}}}});
        assert_eq!(revision_data(&ds)["spec"]["template"]["$patch"], "replace");
    }
}
