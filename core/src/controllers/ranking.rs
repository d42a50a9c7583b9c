//! Which pods a controller deletes first when it has too many (Kubernetes'
//! `ActivePodsWithRanks`, with the default feature gates `PodDeletionCost` and
//! `LogarithmicScaleDown` on): unassigned before assigned, Pending before Unknown before
//! Running, not ready before ready, lower `controller.kubernetes.io/pod-deletion-cost` first,
//! more related pods on the same node first, ready for a shorter time first, more container
//! restarts first, newer first; times compare on a log2 scale of their age, equal ranks by uid.

use super::pods::{is_active, is_ready, parse_time};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// The annotation that orders pods of one controller for deletion.
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// Sorts `pods` so that those to delete first come first. `related` are the active and
/// inactive pods of every sibling (same-owner) controller: a pod's rank is the number of
/// active related pods on its node. `now` is in nanoseconds since the epoch.
pub fn sort_for_deletion(pods: &mut [Arc<Value>], related: &[Arc<Value>], now_nanos: i128) {
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for p in related.iter().filter(|p| is_active(p)) {
        *on_node.entry(node_name(p)).or_default() += 1;
    }
    let mut ranked: Vec<(usize, Arc<Value>)> = pods
        .iter()
        .map(|p| (on_node.get(node_name(p)).copied().unwrap_or(0), p.clone()))
        .collect();
    // Insertion sort: Kubernetes' order is not always transitive (log-scale ties fall back to
    // uids), which `slice::sort_by` may reject; Go's sort tolerates it and so does this.
    for i in 1..ranked.len() {
        let mut j = i;
        while j > 0
            && less(
                &ranked[j].1,
                ranked[j].0,
                &ranked[j - 1].1,
                ranked[j - 1].0,
                now_nanos,
            )
        {
            ranked.swap(j, j - 1);
            j -= 1;
        }
    }
    for (slot, (_, p)) in pods.iter_mut().zip(ranked) {
        *slot = p;
    }
}

/// True when `a` should be deleted before `b`.
fn less(a: &Value, rank_a: usize, b: &Value, rank_b: usize, now: i128) -> bool {
    let (na, nb) = (node_name(a), node_name(b));
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return na.is_empty();
    }
    let (pa, pb) = (phase_ordinal(a), phase_ordinal(b));
    if pa != pb {
        return pa < pb;
    }
    if is_ready(a) != is_ready(b) {
        return !is_ready(a);
    }
    let (ca, cb) = (deletion_cost(a), deletion_cost(b));
    if ca != cb {
        return ca < cb;
    }
    if rank_a != rank_b {
        return rank_a > rank_b;
    }
    if is_ready(a) && is_ready(b) {
        let (ta, tb) = (ready_time(a), ready_time(b));
        if ta != tb {
            return compare_times(ta, tb, now, a, b);
        }
    }
    let (ra, rb) = (max_restarts(a), max_restarts(b));
    if ra != rb {
        return ra > rb;
    }
    let (ta, tb) = (created(a), created(b));
    if ta != tb {
        return compare_times(ta, tb, now, a, b);
    }
    false
}

/// Newer (or unknown) first, on a logarithmic scale of age; equal ranks by uid.
fn compare_times(ta: Option<i64>, tb: Option<i64>, now: i128, a: &Value, b: &Value) -> bool {
    match (ta, tb) {
        (None, _) | (_, None) => ta.is_none(),
        (Some(x), Some(y)) => {
            let diff = log_rank(x, now) - log_rank(y, now);
            if diff == 0 {
                return uid(a) < uid(b);
            }
            diff < 0
        }
    }
}

/// floor(log2(age in nanoseconds)), -1 when not in the past.
fn log_rank(secs: i64, now: i128) -> i64 {
    let age = now - i128::from(secs) * 1_000_000_000;
    if age <= 0 {
        return -1;
    }
    (age as f64).log2() as i64
}

fn node_name(p: &Value) -> &str {
    p.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn phase_ordinal(p: &Value) -> u8 {
    match p.pointer("/status/phase").and_then(Value::as_str) {
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 0,
    }
}

fn deletion_cost(p: &Value) -> i32 {
    p.pointer("/metadata/annotations")
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<i32>().ok())
        .unwrap_or(0)
}

fn ready_time(p: &Value) -> Option<i64> {
    p.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| {
            c.get("type").and_then(Value::as_str) == Some("Ready")
                && c.get("status").and_then(Value::as_str) == Some("True")
        })?
        .get("lastTransitionTime")?
        .as_str()
        .and_then(parse_time)
}

fn created(p: &Value) -> Option<i64> {
    p.pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(parse_time)
}

fn max_restarts(p: &Value) -> i64 {
    p.pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

fn uid(p: &Value) -> &str {
    p.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn ts(secs: i64) -> String {
        jiff::Timestamp::from_second(secs).unwrap().to_string()
    }

    fn pod(name: &str, node: &str, phase: &str, ready_since: Option<i64>, created: i64) -> Value {
        let mut p = json!({"metadata": {"name": name, "uid": format!("uid-{name}"),
            "creationTimestamp": ts(created)},
            "spec": {"nodeName": node}, "status": {"phase": phase}});
        if let Some(t) = ready_since {
            p["status"]["conditions"] =
                json!([{"type": "Ready", "status": "True", "lastTransitionTime": ts(t)}]);
        }
        p
    }

    fn order(pods: Vec<Value>) -> Vec<String> {
        let mut v: Vec<Arc<Value>> = pods.into_iter().map(Arc::new).collect();
        let related = v.clone();
        sort_for_deletion(&mut v, &related, i128::from(NOW) * 1_000_000_000);
        v.iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn kube_ranking() {
        let old = NOW - 100_000;
        // unassigned < assigned
        assert_eq!(
            order(vec![
                pod("a", "n1", "Running", Some(old), old),
                pod("b", "", "Pending", None, old)
            ]),
            ["b", "a"]
        );
        // Pending < Unknown < Running
        assert_eq!(
            order(vec![
                pod("run", "n1", "Running", None, old),
                pod("unk", "n1", "Unknown", None, old),
                pod("pend", "n1", "Pending", None, old),
            ]),
            ["pend", "unk", "run"]
        );
        // not ready < ready
        assert_eq!(
            order(vec![
                pod("r", "n1", "Running", Some(old), old),
                pod("nr", "n1", "Running", None, old)
            ]),
            ["nr", "r"]
        );
        // ready for a shorter time first (log scale: 10 s vs ~1 day differ)
        assert_eq!(
            order(vec![
                pod("long", "n1", "Running", Some(NOW - 86_400), old),
                pod("short", "n1", "Running", Some(NOW - 10), old),
            ]),
            ["short", "long"]
        );
        // newer first
        assert_eq!(
            order(vec![
                pod("older", "n1", "Running", None, NOW - 86_400),
                pod("newer", "n1", "Running", None, NOW - 10)
            ]),
            ["newer", "older"]
        );
        // same log rank: by uid
        assert_eq!(
            order(vec![
                pod("b", "n1", "Running", None, NOW - 1000),
                pod("a", "n1", "Running", None, NOW - 1001)
            ]),
            ["a", "b"]
        );
    }

    #[test]
    fn cost_restarts_and_colocation() {
        let old = NOW - 100_000;
        let mut cheap = pod("cheap", "n1", "Running", Some(old), old);
        cheap["metadata"]["annotations"] = json!({POD_DELETION_COST: "-5"});
        assert_eq!(
            order(vec![pod("x", "n1", "Running", Some(old), old), cheap]),
            ["cheap", "x"]
        );
        let mut crashy = pod("crashy", "n1", "Running", None, old);
        crashy["status"]["containerStatuses"] = json!([{"restartCount": 4}]);
        assert_eq!(
            order(vec![pod("calm", "n1", "Running", None, old), crashy]),
            ["crashy", "calm"]
        );
        // two pods on n1, one on n2: the doubled-up node's pods go first
        assert_eq!(
            order(vec![
                pod("solo", "n2", "Running", None, old),
                pod("d1", "n1", "Running", None, old),
                pod("d2", "n1", "Running", None, old),
            ])[2],
            "solo"
        );
    }
}
