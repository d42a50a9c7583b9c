//! The score plugins of the default profile and their weights: TaintToleration (3, fewer
//! untolerated PreferNoSchedule taints), NodeAffinity (2, preferred terms), NodeResourcesFit
//! (1, least allocated CPU and memory with the non-zero defaults), NodeResourcesBalancedAllocation
//! (1, CPU and memory used in the same proportion) and InterPodAffinity (2, preferred terms of
//! the pod and of existing pods). Each plugin scores 0–100 after normalising; the node with the
//! highest weighted sum wins, ties broken at random.

use super::affinity;
use super::cache::{NodeInfo, NodeView, PodInfo};
use super::filters::NamespaceLabels;
use super::resources::Resources;
use serde_json::{Map, Value};
use std::collections::HashMap;

pub const MAX_NODE_SCORE: i64 = 100;

const WEIGHT_TAINT_TOLERATION: i64 = 3;
const WEIGHT_NODE_AFFINITY: i64 = 2;
const WEIGHT_FIT: i64 = 1;
const WEIGHT_BALANCED: i64 = 1;
const WEIGHT_INTER_POD_AFFINITY: i64 = 2;
/// Weight of an existing pod's required affinity term matching the incoming pod.
const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

/// `DefaultNormalizeScore`: scales to 0–100 by the maximum (reversed: fewer is better).
fn normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = MAX_NODE_SCORE * *s / max;
        *s = if reverse { MAX_NODE_SCORE - v } else { v };
    }
}

fn prefer_no_schedule_count(pod: &Value, node: &NodeView) -> i64 {
    let tolerations: Vec<&Value> = affinity::tolerations(pod)
        .iter()
        .filter(|t| {
            matches!(
                t.get("effect").and_then(Value::as_str).unwrap_or(""),
                "" | "PreferNoSchedule"
            )
        })
        .collect();
    node.taints
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule")
        .filter(|t| !tolerations.iter().any(|tol| affinity::tolerates(tol, t)))
        .count() as i64
}

fn least_requested(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

/// LeastAllocated over CPU and memory (weight 1 each), with non-zero requests.
pub fn least_allocated(pod: &PodInfo, n: &NodeInfo, node: &NodeView) -> i64 {
    let alloc = &node.allocatable.resources;
    let pairs = [
        (
            n.non_zero.milli_cpu + pod.non_zero.milli_cpu,
            alloc.milli_cpu,
        ),
        (n.non_zero.memory + pod.non_zero.memory, alloc.memory),
    ];
    let (mut sum, mut weights) = (0, 0);
    for (req, cap) in pairs {
        if cap == 0 {
            continue;
        }
        sum += least_requested(req, cap);
        weights += 1;
    }
    if weights == 0 {
        0
    } else {
        sum / weights
    }
}

/// BalancedAllocation over CPU and memory with actual requests: 100 × (1 − the standard
/// deviation of the used fractions). Best-effort pods are not scored by it.
pub fn balanced_allocation(pod: &PodInfo, n: &NodeInfo, node: &NodeView) -> i64 {
    let r: &Resources = &pod.requests;
    if r.milli_cpu == 0 && r.memory == 0 {
        return 0;
    }
    let alloc = &node.allocatable.resources;
    let mut fractions = Vec::new();
    for (req, cap) in [
        (n.requested.milli_cpu + r.milli_cpu, alloc.milli_cpu),
        (n.requested.memory + r.memory, alloc.memory),
    ] {
        if cap == 0 {
            continue;
        }
        fractions.push((req as f64 / cap as f64).min(1.0));
    }
    let std = match fractions.as_slice() {
        [a, b] => ((a - b) / 2.0).abs(),
        _ => 0.0,
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

type TopologyScores = HashMap<String, HashMap<String, i64>>;

fn add_term(
    scores: &mut TopologyScores,
    term: &affinity::AffinityTerm,
    weight: i64,
    target: (&str, &Map<String, Value>, &Map<String, Value>),
    node: &NodeView,
) {
    let (ns, labels, ns_labels) = target;
    if !term.matches(ns, labels, ns_labels) {
        return;
    }
    if let Some(v) = node.labels.get(&term.topology_key) {
        *scores
            .entry(term.topology_key.clone())
            .or_default()
            .entry(v.as_str().unwrap_or("").to_string())
            .or_insert(0) += weight;
    }
}

/// InterPodAffinity's per-topology sums over every pod on every node (its PreScore).
fn inter_pod_topology_scores<'a>(
    pod: &PodInfo,
    nodes: impl Iterator<Item = &'a NodeInfo>,
    ns_labels: NamespaceLabels<'_>,
) -> TopologyScores {
    let mut scores = TopologyScores::new();
    let own_ns_labels = ns_labels(&pod.namespace);
    let mut ns_cache: HashMap<String, Map<String, Value>> = HashMap::new();
    let incoming = (pod.namespace.as_str(), &pod.labels, &own_ns_labels);
    for n in nodes {
        let Some(view) = n.node.as_deref() else {
            continue;
        };
        if view.labels.is_empty() {
            continue;
        }
        for existing in n.pods.values() {
            if !pod.affinity.has_preferred() && existing.affinity.is_empty() {
                continue;
            }
            let their_ns = ns_cache
                .entry(existing.namespace.clone())
                .or_insert_with(|| ns_labels(&existing.namespace));
            let target = (existing.namespace.as_str(), &existing.labels, &*their_ns);
            for t in &pod.affinity.preferred_affinity {
                add_term(&mut scores, t, t.weight, target, view);
            }
            for t in &pod.affinity.preferred_anti_affinity {
                add_term(&mut scores, t, -t.weight, target, view);
            }
            for t in &existing.affinity.required_affinity {
                add_term(&mut scores, t, HARD_POD_AFFINITY_WEIGHT, incoming, view);
            }
            for t in &existing.affinity.preferred_affinity {
                add_term(&mut scores, t, t.weight, incoming, view);
            }
            for t in &existing.affinity.preferred_anti_affinity {
                add_term(&mut scores, t, -t.weight, incoming, view);
            }
        }
    }
    scores
}

/// The weighted total score of each feasible node (in the order given).
pub fn score<'a>(
    pod: &Value,
    info: &PodInfo,
    feasible: &[&NodeInfo],
    all: impl Iterator<Item = &'a NodeInfo>,
    ns_labels: NamespaceLabels<'_>,
) -> Vec<i64> {
    let views: Vec<&NodeView> = feasible.iter().filter_map(|n| n.node.as_deref()).collect();
    if views.len() != feasible.len() {
        return vec![0; feasible.len()];
    }
    let mut taints: Vec<i64> = views
        .iter()
        .map(|v| prefer_no_schedule_count(pod, v))
        .collect();
    normalize(&mut taints, true);
    let mut node_aff: Vec<i64> = views
        .iter()
        .map(|v| affinity::preferred_node_affinity_score(pod, &v.name, &v.labels))
        .collect();
    normalize(&mut node_aff, false);
    let topo = inter_pod_topology_scores(info, all, ns_labels);
    let mut inter: Vec<i64> = views
        .iter()
        .map(|v| {
            v.labels
                .iter()
                .filter_map(|(k, val)| topo.get(k)?.get(val.as_str().unwrap_or("")).copied())
                .sum()
        })
        .collect();
    if topo.is_empty() {
        inter.iter_mut().for_each(|s| *s = 0);
    } else {
        let min = inter.iter().copied().min().unwrap_or(0);
        let max = inter.iter().copied().max().unwrap_or(0);
        for s in inter.iter_mut() {
            *s = if max > min {
                (MAX_NODE_SCORE as f64 * ((*s - min) as f64 / (max - min) as f64)) as i64
            } else {
                0
            };
        }
    }
    feasible
        .iter()
        .zip(&views)
        .enumerate()
        .map(|(i, (n, v))| {
            WEIGHT_TAINT_TOLERATION * taints[i]
                + WEIGHT_NODE_AFFINITY * node_aff[i]
                + WEIGHT_FIT * least_allocated(info, n, v)
                + WEIGHT_BALANCED * balanced_allocation(info, n, v)
                + WEIGHT_INTER_POD_AFFINITY * inter[i]
        })
        .collect()
}

/// The index of a highest score; ties are broken uniformly at random (reservoir sampling, as
/// `selectHost` does). `pick(n)` returns a number in `0..n`.
pub fn select_host(scores: &[i64], mut pick: impl FnMut(usize) -> usize) -> Option<usize> {
    let mut best: Option<(usize, i64)> = None;
    let mut ties = 0usize;
    for (i, s) in scores.iter().copied().enumerate() {
        match best {
            Some((_, b)) if s < b => {}
            Some((_, b)) if s == b => {
                ties += 1;
                if pick(ties) == 0 {
                    best = Some((i, s));
                }
            }
            _ => {
                best = Some((i, s));
                ties = 1;
            }
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::scheduler::cache::Cache;
    use serde_json::json;

    fn node(name: &str, cpu: &str, mem: &str, labels: Value, taints: Value) -> Value {
        let mut l = json!({"kubernetes.io/hostname": name});
        for (k, v) in labels.as_object().into_iter().flatten() {
            l[k] = v.clone();
        }
        json!({"metadata": {"name": name, "labels": l}, "spec": {"taints": taints},
            "status": {"allocatable": {"cpu": cpu, "memory": mem, "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}]}})
    }

    fn pod(name: &str, node: &str, cpu: &str, mem: &str, extra: Value) -> Value {
        let mut p = json!({"metadata": {"name": name, "namespace": "d", "uid": name, "labels": {}},
            "spec": {"nodeName": node, "containers": [{"name": "c",
                "resources": {"requests": {"cpu": cpu, "memory": mem}}}]}});
        for (k, v) in extra.as_object().into_iter().flatten() {
            if k == "labels" {
                p["metadata"]["labels"] = v.clone();
            } else {
                p["spec"][k] = v.clone();
            }
        }
        p
    }

    fn no_ns(_: &str) -> Map<String, Value> {
        Map::new()
    }

    fn scores(c: &Cache, p: &Value) -> Vec<(String, i64)> {
        let info = PodInfo::of(p);
        let feasible: Vec<&NodeInfo> = c.node_infos().collect();
        let s = score(p, &info, &feasible, c.node_infos(), &no_ns);
        feasible
            .iter()
            .zip(s)
            .map(|(n, s)| {
                (
                    n.node.as_ref().map(|v| v.name.clone()).unwrap_or_default(),
                    s,
                )
            })
            .collect()
    }

    #[test]
    fn least_allocated_prefers_the_emptier_node() {
        let mut c = Cache::default();
        c.set_node(&node("a", "2", "4Gi", json!({}), json!([])));
        c.set_node(&node("b", "2", "4Gi", json!({}), json!([])));
        c.set_pod(&pod("x", "a", "1", "1Gi", json!({})));
        let s = scores(&c, &pod("p", "", "500m", "512Mi", json!({})));
        assert!(s[1].1 > s[0].1, "{s:?}");
        let info = PodInfo::of(&pod("p", "", "500m", "512Mi", json!({})));
        let a = &c.nodes["a"];
        // cpu: (2000-1500)*100/2000 = 25; memory: (4Gi-1.5Gi)*100/4Gi = 62 → 43.
        assert_eq!(least_allocated(&info, a, a.node.as_deref().unwrap()), 43);
    }

    #[test]
    fn balanced_allocation_score() {
        let mut c = Cache::default();
        c.set_node(&node("a", "4", "4Gi", json!({}), json!([])));
        let a = &c.nodes["a"];
        let v = a.node.as_deref().unwrap();
        // cpu 50%, memory 25%: std 0.125 → 87.
        let info = PodInfo::of(&pod("p", "", "2", "1Gi", json!({})));
        assert_eq!(balanced_allocation(&info, a, v), 87);
        let best_effort = PodInfo::of(
            &json!({"metadata": {"name": "b"}, "spec": {"containers": [{"name": "c"}]}}),
        );
        assert_eq!(balanced_allocation(&best_effort, a, v), 0);
    }

    #[test]
    fn preferences_taints_and_node_affinity() {
        let mut c = Cache::default();
        c.set_node(&node(
            "a",
            "2",
            "4Gi",
            json!({"zone": "z1"}),
            json!([{"key": "k", "value": "v", "effect": "PreferNoSchedule"}]),
        ));
        c.set_node(&node("b", "2", "4Gi", json!({"zone": "z2"}), json!([])));
        let s = scores(&c, &pod("p", "", "100m", "100Mi", json!({})));
        assert_eq!(s[0].1 + 300, s[1].1, "{s:?}");
        let s = scores(
            &c,
            &pod(
                "p",
                "",
                "100m",
                "100Mi",
                json!({"affinity": {"nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "preference":
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]}}]}}}),
            ),
        );
        assert_eq!(s[0].1 - 200 + 300, s[1].1, "{s:?}");
    }

    #[test]
    fn preferred_pod_affinity_and_anti_affinity() {
        let mut c = Cache::default();
        c.set_node(&node("a", "2", "4Gi", json!({}), json!([])));
        c.set_node(&node("b", "2", "4Gi", json!({}), json!([])));
        c.set_pod(&pod(
            "db",
            "a",
            "100m",
            "100Mi",
            json!({"labels": {"app": "db"}}),
        ));
        let term = |kind: &str| {
            json!({"affinity": {kind: {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "db"}},
             "topologyKey": "kubernetes.io/hostname"}}]}}})
        };
        let s = scores(&c, &pod("p", "", "100m", "100Mi", term("podAffinity")));
        assert!(s[0].1 > s[1].1, "{s:?}");
        let s = scores(&c, &pod("p", "", "100m", "100Mi", term("podAntiAffinity")));
        assert!(s[0].1 < s[1].1, "{s:?}");
    }

    #[test]
    fn ties_are_broken_by_the_picker() {
        assert_eq!(select_host(&[1, 5, 3, 5], |_| 1), Some(1));
        assert_eq!(select_host(&[1, 5, 3, 5], |_| 0), Some(3));
        assert_eq!(select_host(&[], |_| 0), None);
        let mut n = [0; 2];
        for i in 0..100 {
            let got = select_host(&[7, 7], |k| i % k).unwrap();
            n[got] += 1;
        }
        assert!(n[0] > 0 && n[1] > 0);
    }

    #[test]
    fn normalization() {
        let mut s = vec![0, 2, 4];
        normalize(&mut s, false);
        assert_eq!(s, vec![0, 50, 100]);
        let mut s = vec![0, 2, 4];
        normalize(&mut s, true);
        assert_eq!(s, vec![100, 50, 0]);
        let mut s = vec![0, 0];
        normalize(&mut s, true);
        assert_eq!(s, vec![100, 100]);
    }
}
