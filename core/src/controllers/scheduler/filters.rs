//! The filter plugins of the default profile, in kube-scheduler's order (NodeUnschedulable,
//! NodeName, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit, PodTopologySpread,
//! InterPodAffinity): each
//! says whether a pod may run on a node and, if not, why, in the words kube-scheduler uses; and
//! the `FailedScheduling` message built from the reasons of every node.

use super::affinity::{self, AffinityTerm};
use super::cache::{NodeInfo, NodeView, PodInfo, TAINT_UNSCHEDULABLE};
use super::topology::SpreadState;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

pub const NODE_UNSCHEDULABLE: &str = "NodeUnschedulable";
pub const NODE_NAME: &str = "NodeName";
pub const TAINT_TOLERATION: &str = "TaintToleration";
pub const NODE_AFFINITY: &str = "NodeAffinity";
pub const NODE_PORTS: &str = "NodePorts";
pub const NODE_RESOURCES_FIT: &str = "NodeResourcesFit";
pub const INTER_POD_AFFINITY: &str = "InterPodAffinity";

pub const REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
pub const REASON_NODE_NAME: &str = "node(s) didn't match the requested node name";
pub const REASON_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
pub const REASON_NODE_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
pub const REASON_POD_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const REASON_POD_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const REASON_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

/// How final a rejection is: `Unresolvable` ones cannot be fixed by preempting pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unschedulable,
    Unresolvable,
}

/// Why a node was rejected, and by which plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub plugin: &'static str,
    pub code: Code,
    pub reasons: Vec<String>,
}

impl Status {
    fn new(plugin: &'static str, code: Code, reason: impl Into<String>) -> Status {
        Status {
            plugin,
            code,
            reasons: vec![reason.into()],
        }
    }
}

/// Labels of namespaces by name (for namespace selectors of affinity terms).
pub type NamespaceLabels<'a> = &'a dyn Fn(&str) -> Map<String, Value>;

type TopologyPair = (String, String);

/// What InterPodAffinity computes once per scheduling attempt (its PreFilter state).
#[derive(Debug, Clone, Default)]
pub struct InterPodState {
    /// Topology pairs of existing pods whose required anti-affinity terms match the pod.
    existing_anti: HashMap<TopologyPair, i64>,
    /// Topology pairs of existing pods matching all the pod's required affinity terms.
    affinity: HashMap<TopologyPair, i64>,
    /// Topology pairs of existing pods matching one of the pod's required anti-affinity terms.
    anti: HashMap<TopologyPair, i64>,
}

fn bump(m: &mut HashMap<TopologyPair, i64>, node: &NodeView, key: &str) {
    if let Some(v) = node.labels.get(key) {
        *m.entry((key.to_string(), v.as_str().unwrap_or("").to_string()))
            .or_insert(0) += 1;
    }
}

fn matches_all(terms: &[AffinityTerm], p: &PodInfo, ns_labels: &Map<String, Value>) -> bool {
    terms
        .iter()
        .all(|t| t.matches(&p.namespace, &p.labels, ns_labels))
}

impl InterPodState {
    /// Counts, over every pod on every node, what the pod's required (anti-)affinity needs.
    pub fn compute<'a>(
        pod: &PodInfo,
        nodes: impl Iterator<Item = &'a NodeInfo>,
        ns_labels: NamespaceLabels<'_>,
    ) -> InterPodState {
        let mut st = InterPodState::default();
        let own_ns_labels = ns_labels(&pod.namespace);
        let wants_affinity = !pod.affinity.required_affinity.is_empty();
        let wants_anti = !pod.affinity.required_anti_affinity.is_empty();
        let mut ns_cache: HashMap<String, Map<String, Value>> = HashMap::new();
        for n in nodes {
            let Some(view) = &n.node else { continue };
            for existing in n.pods.values() {
                for t in &existing.affinity.required_anti_affinity {
                    if t.matches(&pod.namespace, &pod.labels, &own_ns_labels) {
                        bump(&mut st.existing_anti, view, &t.topology_key);
                    }
                }
                if !wants_affinity && !wants_anti {
                    continue;
                }
                let their_ns = ns_cache
                    .entry(existing.namespace.clone())
                    .or_insert_with(|| ns_labels(&existing.namespace));
                if wants_affinity
                    && matches_all(&pod.affinity.required_affinity, existing, their_ns)
                {
                    for t in &pod.affinity.required_affinity {
                        bump(&mut st.affinity, view, &t.topology_key);
                    }
                }
                for t in &pod.affinity.required_anti_affinity {
                    if t.matches(&existing.namespace, &existing.labels, their_ns) {
                        bump(&mut st.anti, view, &t.topology_key);
                    }
                }
            }
        }
        st
    }
}

/// Everything a filter needs about the pod being scheduled.
pub struct Cycle<'a> {
    pub pod: &'a Value,
    pub info: &'a PodInfo,
    pub inter_pod: InterPodState,
    /// The pod's hard topology spread constraints, counted (None: it has none).
    pub spread: Option<SpreadState>,
    pub ns_labels: NamespaceLabels<'a>,
}

impl<'a> Cycle<'a> {
    /// The per-attempt state of the plugins (their PreFilter) over these nodes.
    pub fn new<'n>(
        pod: &'a Value,
        info: &'a PodInfo,
        nodes: impl Iterator<Item = &'n NodeInfo> + Clone,
        ns_labels: NamespaceLabels<'a>,
    ) -> Cycle<'a> {
        Cycle {
            pod,
            info,
            inter_pod: InterPodState::compute(info, nodes.clone(), ns_labels),
            spread: SpreadState::compute(pod, info, nodes),
            ns_labels,
        }
    }
}

fn node_unschedulable(c: &Cycle, node: &NodeView) -> Option<Status> {
    let tolerated = affinity::tolerated(
        affinity::tolerations(c.pod),
        &affinity::Taint::new(TAINT_UNSCHEDULABLE, "", "NoSchedule"),
    );
    (node.unschedulable && !tolerated)
        .then(|| Status::new(NODE_UNSCHEDULABLE, Code::Unresolvable, REASON_UNSCHEDULABLE))
}

fn node_name(c: &Cycle, node: &NodeView) -> Option<Status> {
    let want = c
        .pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    (!want.is_empty() && want != node.name)
        .then(|| Status::new(NODE_NAME, Code::Unresolvable, REASON_NODE_NAME))
}

fn taint_toleration(c: &Cycle, node: &NodeView) -> Option<Status> {
    let tolerations = affinity::tolerations(c.pod);
    let taint = node.taints.iter().find(|t| {
        (t.effect == "NoSchedule" || t.effect == "NoExecute")
            && !affinity::tolerated(tolerations, t)
    })?;
    Some(Status::new(
        TAINT_TOLERATION,
        Code::Unresolvable,
        format!(
            "node(s) had untolerated taint {{{}: {}}}",
            taint.key, taint.value
        ),
    ))
}

fn node_affinity(c: &Cycle, node: &NodeView) -> Option<Status> {
    (!affinity::node_matches_pod(c.pod, &node.name, &node.labels))
        .then(|| Status::new(NODE_AFFINITY, Code::Unresolvable, REASON_NODE_AFFINITY))
}

fn node_ports(c: &Cycle, n: &NodeInfo) -> Option<Status> {
    let clash = c
        .info
        .host_ports
        .iter()
        .any(|want| n.ports.iter().any(|used| used.conflicts(want)));
    clash.then(|| Status::new(NODE_PORTS, Code::Unschedulable, REASON_NODE_PORTS))
}

/// NodeResourcesFit: pod count, then CPU, memory, ephemeral storage, scalar resources. Always
/// resolvable in v1.33 (only v1.34 calls a request larger than the whole node unresolvable), so
/// preemption looks at such nodes too.
pub fn fit(pod: &PodInfo, n: &NodeInfo, node: &NodeView) -> Option<Status> {
    let mut reasons = Vec::new();
    if n.pods.len() as i64 + 1 > node.allocatable.pods {
        reasons.push("Too many pods".to_string());
    }
    let req = &pod.requests;
    if !req.is_zero() {
        let alloc = &node.allocatable.resources;
        let used = &n.requested;
        let mut check = |name: &str, want: i64, have: i64, used: i64| {
            if want > 0 && want > have.saturating_sub(used) {
                reasons.push(format!("Insufficient {name}"));
            }
        };
        check("cpu", req.milli_cpu, alloc.milli_cpu, used.milli_cpu);
        check("memory", req.memory, alloc.memory, used.memory);
        check(
            "ephemeral-storage",
            req.ephemeral_storage,
            alloc.ephemeral_storage,
            used.ephemeral_storage,
        );
        for (name, want) in &req.scalar {
            check(name, *want, alloc.scalar(name), used.scalar(name));
        }
    }
    (!reasons.is_empty()).then_some(Status {
        plugin: NODE_RESOURCES_FIT,
        code: Code::Unschedulable,
        reasons,
    })
}

fn inter_pod_affinity(c: &Cycle, node: &NodeView) -> Option<Status> {
    let st = &c.inter_pod;
    let value = |key: &str| -> Option<TopologyPair> {
        node.labels
            .get(key)
            .map(|v| (key.to_string(), v.as_str().unwrap_or("").to_string()))
    };
    // Required affinity: every term's topology must exist on the node and hold a matching pod,
    // unless no pod matches anywhere and the pod matches its own terms (the first of a group).
    let terms = &c.info.affinity.required_affinity;
    if !terms.is_empty() {
        let mut pods_exist = true;
        for t in terms {
            match value(&t.topology_key) {
                None => {
                    return Some(Status::new(
                        INTER_POD_AFFINITY,
                        Code::Unresolvable,
                        REASON_POD_AFFINITY,
                    ))
                }
                Some(tp) if st.affinity.get(&tp).copied().unwrap_or(0) <= 0 => pods_exist = false,
                Some(_) => {}
            }
        }
        if !pods_exist {
            let own = (c.ns_labels)(&c.info.namespace);
            if !(st.affinity.is_empty() && matches_all(terms, c.info, &own)) {
                return Some(Status::new(
                    INTER_POD_AFFINITY,
                    Code::Unresolvable,
                    REASON_POD_AFFINITY,
                ));
            }
        }
    }
    if !st.anti.is_empty() {
        for t in &c.info.affinity.required_anti_affinity {
            if value(&t.topology_key).is_some_and(|tp| st.anti.get(&tp).copied().unwrap_or(0) > 0) {
                return Some(Status::new(
                    INTER_POD_AFFINITY,
                    Code::Unschedulable,
                    REASON_POD_ANTI_AFFINITY,
                ));
            }
        }
    }
    if !st.existing_anti.is_empty() {
        let hit = node.labels.iter().any(|(k, v)| {
            st.existing_anti
                .get(&(k.clone(), v.as_str().unwrap_or("").to_string()))
                .copied()
                .unwrap_or(0)
                > 0
        });
        if hit {
            return Some(Status::new(
                INTER_POD_AFFINITY,
                Code::Unschedulable,
                REASON_EXISTING_ANTI_AFFINITY,
            ));
        }
    }
    None
}

/// Runs the filters in order; the first rejection is the node's status.
pub fn run(c: &Cycle, n: &NodeInfo) -> Result<(), Status> {
    let Some(node) = n.node.as_deref() else {
        return Err(Status::new(NODE_NAME, Code::Unresolvable, "node not found"));
    };
    let rejection = node_unschedulable(c, node)
        .or_else(|| node_name(c, node))
        .or_else(|| taint_toleration(c, node))
        .or_else(|| node_affinity(c, node))
        .or_else(|| node_ports(c, n))
        .or_else(|| fit(c.info, n, node))
        .or_else(|| c.spread.as_ref().and_then(|s| s.filter(c.info, node)))
        .or_else(|| inter_pod_affinity(c, node));
    match rejection {
        Some(s) => Err(s),
        None => Ok(()),
    }
}

/// `FitError.Error()`: "0/N nodes are available: <count> <reason>, …." with the
/// "<count> <reason>" strings sorted, then the preemption sentence if any.
pub fn fit_error_message(num_nodes: usize, statuses: &[Status], post_filter: &str) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in statuses {
        for r in &s.reasons {
            *counts.entry(r.as_str()).or_insert(0) += 1;
        }
    }
    let mut parts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    let mut msg = format!("0/{num_nodes} nodes are available:");
    if !parts.is_empty() {
        msg.push_str(&format!(" {}.", parts.join(", ")));
    }
    if !post_filter.is_empty() {
        msg.push_str(&format!(" {post_filter}."));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::scheduler::cache::Cache;
    use serde_json::json;

    fn node(name: &str, cpu: &str, mem: &str, extra: Value) -> Value {
        let mut n = json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {},
            "status": {"allocatable": {"cpu": cpu, "memory": mem, "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}]}});
        if let Some(o) = extra.as_object() {
            for (k, v) in o {
                match k.as_str() {
                    "labels" => {
                        for (lk, lv) in v.as_object().into_iter().flatten() {
                            n["metadata"]["labels"][lk] = lv.clone();
                        }
                    }
                    "allowedPods" => n["status"]["allocatable"]["pods"] = v.clone(),
                    _ => n["spec"][k] = v.clone(),
                }
            }
        }
        n
    }

    fn pod(name: &str, spec: Value) -> Value {
        let mut p = json!({"metadata": {"name": name, "namespace": "default", "uid": name,
            "labels": {}}, "spec": {"containers": [{"name": "c"}]}});
        if let Some(o) = spec.as_object() {
            for (k, v) in o {
                if k == "labels" {
                    p["metadata"]["labels"] = v.clone();
                } else {
                    p["spec"][k] = v.clone();
                }
            }
        }
        p
    }

    fn requests(cpu: &str, mem: &str) -> Value {
        json!([{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}}])
    }

    fn no_ns(_: &str) -> Map<String, Value> {
        Map::new()
    }

    fn check(cache: &Cache, p: &Value) -> Vec<(String, Result<(), Status>)> {
        let info = PodInfo::of(p);
        let c = Cycle::new(p, &info, cache.node_infos(), &no_ns);
        cache
            .node_infos()
            .map(|n| {
                (
                    n.node.as_ref().map(|v| v.name.clone()).unwrap_or_default(),
                    run(&c, n),
                )
            })
            .collect()
    }

    fn reasons(r: &Result<(), Status>) -> Vec<String> {
        r.as_ref()
            .err()
            .map(|s| s.reasons.clone())
            .unwrap_or_default()
    }

    #[test]
    fn resources_fit_and_pod_count() {
        let mut c = Cache::default();
        c.set_node(&node("small", "1", "1Gi", json!({"allowedPods": "1"})));
        c.set_node(&node("big", "4", "8Gi", json!({})));
        let p = pod("p", json!({"containers": requests("2", "2Gi")}));
        let got = check(&c, &p);
        assert_eq!(got[0].0, "big");
        assert!(got[0].1.is_ok());
        let s = got[1].1.as_ref().unwrap_err();
        assert_eq!(s.reasons, vec!["Insufficient cpu", "Insufficient memory"]);
        assert_eq!(s.code, Code::Unschedulable);
        // What is bound counts against allocatable; pods count against allocatable.pods.
        c.set_pod(&{
            let mut b = pod(
                "b",
                json!({"containers": requests("3", "1Gi"), "nodeName": "big"}),
            );
            b["spec"]["nodeName"] = json!("big");
            b
        });
        c.set_pod(&{
            let mut b = pod("s", json!({}));
            b["spec"]["nodeName"] = json!("small");
            b
        });
        let got = check(&c, &pod("q", json!({"containers": requests("2", "1Gi")})));
        let big = got[0].1.as_ref().unwrap_err();
        assert_eq!(big.reasons, vec!["Insufficient cpu"]);
        assert_eq!(big.code, Code::Unschedulable);
        assert_eq!(reasons(&got[1].1)[0], "Too many pods");
    }

    #[test]
    fn cordon_taints_selector_and_ports() {
        let mut c = Cache::default();
        c.set_node(&node("a", "4", "4Gi", json!({"unschedulable": true})));
        c.set_node(&node(
            "b",
            "4",
            "4Gi",
            json!({"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}),
        ));
        c.set_node(&node("c", "4", "4Gi", json!({"labels": {"disk": "ssd"}})));
        let got = check(&c, &pod("p", json!({"nodeSelector": {"disk": "hdd"}})));
        assert_eq!(reasons(&got[0].1), vec![REASON_UNSCHEDULABLE]);
        assert_eq!(
            reasons(&got[1].1),
            vec!["node(s) had untolerated taint {dedicated: gpu}"]
        );
        assert_eq!(reasons(&got[2].1), vec![REASON_NODE_AFFINITY]);
        let statuses: Vec<Status> = got.into_iter().filter_map(|(_, r)| r.err()).collect();
        assert_eq!(
            fit_error_message(3, &statuses, ""),
            "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, \
             1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) were unschedulable."
        );
        // Tolerations open cordoned and tainted nodes.
        let tol = json!([{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"},
            {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]);
        let got = check(&c, &pod("p", json!({"tolerations": tol})));
        assert!(got.iter().all(|(_, r)| r.is_ok()), "{got:?}");
        // Host ports.
        let mut used = pod(
            "u",
            json!({"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}),
        );
        used["spec"]["nodeName"] = json!("c");
        c.set_pod(&used);
        let want = pod(
            "w",
            json!({"tolerations": tol, "containers": [{"name": "c",
            "ports": [{"containerPort": 81, "hostPort": 8080, "hostIP": "127.0.0.1"}]}]}),
        );
        let got = check(&c, &want);
        assert!(got[0].1.is_ok() && got[1].1.is_ok());
        assert_eq!(reasons(&got[2].1), vec![REASON_NODE_PORTS]);
    }

    #[test]
    fn not_ready_node_is_tainted() {
        let mut c = Cache::default();
        let mut n = node("n", "1", "1Gi", json!({}));
        n["status"]["conditions"][0]["status"] = json!("False");
        c.set_node(&n);
        let got = check(&c, &pod("p", json!({})));
        assert_eq!(
            reasons(&got[0].1),
            vec!["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"]
        );
    }

    fn with_anti(name: &str, app: &str, key: &str) -> Value {
        pod(
            name,
            json!({"labels": {"app": app}, "affinity": {"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key}]}}}),
        )
    }

    #[test]
    fn pod_anti_affinity_by_hostname_and_zone() {
        let mut c = Cache::default();
        c.set_node(&node("a", "4", "4Gi", json!({"labels": {"zone": "z1"}})));
        c.set_node(&node("b", "4", "4Gi", json!({"labels": {"zone": "z1"}})));
        c.set_node(&node("c", "4", "4Gi", json!({"labels": {"zone": "z2"}})));
        let mut first = with_anti("w1", "web", "kubernetes.io/hostname");
        first["spec"]["nodeName"] = json!("a");
        c.set_pod(&first);
        let got = check(&c, &with_anti("w2", "web", "kubernetes.io/hostname"));
        assert_eq!(reasons(&got[0].1), vec![REASON_POD_ANTI_AFFINITY]);
        assert!(got[1].1.is_ok() && got[2].1.is_ok());
        // The existing pod's anti-affinity also keeps a plain matching pod away.
        let got = check(&c, &pod("plain", json!({"labels": {"app": "web"}})));
        assert_eq!(reasons(&got[0].1), vec![REASON_EXISTING_ANTI_AFFINITY]);
        // By zone: both nodes of z1 are out.
        let got = check(&c, &with_anti("z", "web", "zone"));
        assert!(
            got[0].1.is_err() && got[1].1.is_err() && got[2].1.is_ok(),
            "{got:?}"
        );
    }

    #[test]
    fn pod_affinity_needs_a_match_unless_first_of_its_group() {
        let mut c = Cache::default();
        c.set_node(&node("a", "4", "4Gi", json!({"labels": {"zone": "z1"}})));
        c.set_node(&node("b", "4", "4Gi", json!({"labels": {"zone": "z2"}})));
        let aff = |name: &str| {
            pod(
                name,
                json!({"labels": {"app": "db"}, "affinity": {"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}]}}}),
            )
        };
        // No db pod anywhere, and the pod matches its own term: any node.
        let got = check(&c, &aff("d1"));
        assert!(got.iter().all(|(_, r)| r.is_ok()));
        let mut d1 = aff("d1");
        d1["spec"]["nodeName"] = json!("b");
        c.set_pod(&d1);
        let got = check(&c, &aff("d2"));
        assert_eq!(reasons(&got[0].1), vec![REASON_POD_AFFINITY]);
        assert_eq!(got[0].1.as_ref().unwrap_err().code, Code::Unresolvable);
        assert!(got[1].1.is_ok());
    }

    #[test]
    fn message_sorts_count_and_reason_strings() {
        let s = |r: &str| Status::new(NODE_RESOURCES_FIT, Code::Unschedulable, r);
        let statuses = vec![
            s("Insufficient memory"),
            s(REASON_NODE_AFFINITY),
            s(REASON_NODE_AFFINITY),
            s("Insufficient cpu"),
        ];
        assert_eq!(
            fit_error_message(4, &statuses, "preemption: 0/4 nodes are available: 2 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."),
            "0/4 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 2 node(s) didn't \
             match Pod's node affinity/selector. preemption: 0/4 nodes are available: 2 No \
             preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.."
        );
    }
}
