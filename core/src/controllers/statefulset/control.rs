//! What one pass of the StatefulSet controller does (`updateStatefulSet` of
//! `stateful_set_control.go`), as a plan computed from the set, its revisions and its pods:
//!
//! 1. every ordinal in `[start, start+replicas)`: a Failed/Succeeded pod is deleted (to be
//!    recreated), a missing pod is created (claims first) at the current revision below the
//!    partition and the update revision otherwise, a Pending pod gets its missing claims, and a
//!    pod whose identity or storage drifted is updated. With `OrderedReady` the pass stops at
//!    the first pod it created, or that is terminating, not Running and Ready, or not yet
//!    available: the next ordinal waits for its predecessors;
//! 2. pods outside the range are deleted from the highest ordinal down; with `OrderedReady` one
//!    at a time, each after the previous is gone, and only while the rest is healthy;
//! 3. `RollingUpdate`: from the highest ordinal down to the partition, the first pod not at the
//!    update revision is deleted (it comes back at the update revision), one at a time, each
//!    after its successors are healthy again. `OnDelete` leaves that to the user.
//!
//! `Parallel` does steps 1 and 2 for all pods at once.

use super::claims;
use super::identity::*;
use crate::controllers::pods::{name_of, uid_of, until_available};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Everything a pass decides on.
pub struct Inputs<'a> {
    pub set: &'a Value,
    /// The set with the current revision's template (pods below the partition).
    pub current_set: &'a Value,
    /// The set with the update revision's template.
    pub update_set: &'a Value,
    pub current_revision: &'a str,
    pub update_revision: &'a str,
    /// The pods the set owns.
    pub pods: &'a [Arc<Value>],
    /// Claims of the set's namespace by name.
    pub claims: &'a HashMap<String, Arc<Value>>,
    /// Seconds since the epoch.
    pub now: i64,
}

/// One write the pass makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create the pod's missing claims, then the pod.
    CreatePod(Value),
    /// Create the missing claims of an existing (Pending) pod.
    CreateClaims(Arc<Value>),
    /// Delete a pod (with its uid as precondition).
    DeletePod(Arc<Value>),
    /// Replace a pod whose identity or storage drifted.
    UpdatePod(Value),
    /// Set a claim's ownerReferences as the retention policy wants.
    SetClaimOwners { claim: Arc<Value>, owners: Value },
}

/// The plan of one pass.
#[derive(Debug, Default)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// When to look again without any change (minReadySeconds).
    pub requeue_secs: Option<i64>,
}

fn min_ready_seconds(set: &Value) -> i64 {
    set.pointer("/spec/minReadySeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// `OrderedReady` (monotonic) unless `podManagementPolicy: Parallel`.
pub fn is_monotonic(set: &Value) -> bool {
    set.pointer("/spec/podManagementPolicy")
        .and_then(Value::as_str)
        != Some("Parallel")
}

fn strategy(set: &Value) -> &str {
    set.pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        .unwrap_or("RollingUpdate")
}

fn partition(set: &Value) -> Option<i64> {
    set.pointer("/spec/updateStrategy/rollingUpdate")
        .filter(|r| r.is_object())
        .map(|r| r.get("partition").and_then(Value::as_i64).unwrap_or(0))
}

/// `newVersionedStatefulSetPod`: below the partition, pods are made at the current revision.
fn new_versioned_pod(inp: &Inputs, ordinal: i64) -> Value {
    let start = start_ordinal(inp.set);
    let current_replicas = inp
        .set
        .pointer("/status/currentReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let rolling = strategy(inp.current_set) == "RollingUpdate";
    let at_current = match partition(inp.current_set) {
        None => rolling && ordinal < start + current_replicas,
        Some(p) => ordinal < start + p,
    };
    if at_current {
        new_pod(inp.current_set, ordinal, inp.current_revision)
    } else {
        new_pod(inp.update_set, ordinal, inp.update_revision)
    }
}

fn missing_claims(inp: &Inputs, ordinal: i64) -> bool {
    claims_for(inp.set, ordinal)
        .iter()
        .any(|(_, c)| !inp.claims.contains_key(name_of(c)))
}

/// The pass over `inp`.
pub fn plan(inp: &Inputs) -> Plan {
    let mut plan = Plan::default();
    if crate::controllers::pods::is_deleting(inp.set) {
        return plan;
    }
    let set = inp.set;
    let monotonic = is_monotonic(set);
    let min_ready = min_ready_seconds(set);
    let start = start_ordinal(set);
    let count = replicas_of(set);
    let mut replicas: Vec<Option<Arc<Value>>> = vec![None; usize::try_from(count).unwrap_or(0)];
    let mut condemned: Vec<(i64, Arc<Value>)> = Vec::new();
    for (ord, pod) in by_ordinal(inp.pods) {
        if in_ordinal_range(set, ord) {
            if let Some(slot) = usize::try_from(ord - start)
                .ok()
                .and_then(|i| replicas.get_mut(i))
            {
                *slot = Some(pod);
            }
        } else {
            condemned.push((ord, pod));
        }
    }
    condemned.reverse(); // highest ordinal first
    let first_unhealthy: Option<String> = replicas
        .iter()
        .map(|p| p.as_ref().map(|p| (uid_of(p).to_string(), is_healthy(p))))
        .chain(
            condemned
                .iter()
                .map(|(_, p)| Some((uid_of(p).to_string(), is_healthy(p)))),
        )
        .find(|p| p.as_ref().is_none_or(|(_, healthy)| !healthy))
        .flatten()
        .map(|(uid, _)| uid);

    // 1. the replicas, in ordinal order.
    let mut created: HashMap<i64, Value> = HashMap::new();
    let mut exit = false;
    for (i, slot) in replicas.iter().enumerate() {
        let ordinal = start + i as i64;
        let Some(pod) = slot else {
            let pod = new_versioned_pod(inp, ordinal);
            if claims::claim_is_stale(set, &pod, inp.claims) {
                if monotonic {
                    exit = true;
                    break;
                }
                continue;
            }
            created.insert(ordinal, pod.clone());
            plan.actions.push(Action::CreatePod(pod));
            if monotonic {
                exit = true;
                break;
            }
            continue;
        };
        if is_failed_or_succeeded(pod) {
            if !is_terminating(pod) {
                plan.actions.push(Action::DeletePod(pod.clone()));
            }
            if monotonic {
                exit = true;
                break;
            }
            continue;
        }
        if is_pending(pod) && missing_claims(inp, ordinal) {
            plan.actions.push(Action::CreateClaims(pod.clone()));
        }
        if monotonic && (is_terminating(pod) || !is_running_and_ready(pod)) {
            exit = true;
            break;
        }
        if monotonic && !is_running_and_available(pod, min_ready, inp.now) {
            plan.requeue_secs = until_available(pod, min_ready, inp.now);
            exit = true;
            break;
        }
        if !identity_matches(set, pod) || !storage_matches(set, pod) {
            let mut fixed = (**pod).clone();
            update_identity(set, &mut fixed, ordinal);
            if !storage_matches(set, &fixed) {
                update_storage(set, &mut fixed, ordinal);
            }
            plan.actions.push(Action::UpdatePod(fixed));
        }
    }
    // Claims follow the retention policy (ownerReferences to the set or the pod).
    for pod in inp.pods {
        for (claim, owners) in claims::owner_fixes(set, pod, inp.claims) {
            plan.actions.push(Action::SetClaimOwners { claim, owners });
        }
    }
    if exit {
        return plan;
    }

    // 2. the condemned, highest ordinal first.
    for (_, pod) in &condemned {
        if is_terminating(pod) {
            if monotonic {
                return plan;
            }
            continue;
        }
        let first = first_unhealthy.as_deref() == Some(uid_of(pod));
        if monotonic
            && !first
            && (!is_running_and_ready(pod) || !is_running_and_available(pod, min_ready, inp.now))
        {
            return plan;
        }
        plan.actions.push(Action::DeletePod(pod.clone()));
        if monotonic {
            return plan;
        }
    }

    // 3. rolling update, from the highest ordinal down to the partition.
    if strategy(set) != "RollingUpdate" {
        return plan;
    }
    let update_min = partition(set).unwrap_or(0).max(0);
    for idx in (0..replicas.len()).rev() {
        if (idx as i64) < update_min {
            break;
        }
        let ordinal = start + idx as i64;
        let (revision, terminating, healthy, pod) = match (&replicas[idx], created.get(&ordinal)) {
            (Some(p), _) => (
                revision_of(p).to_string(),
                is_terminating(p),
                is_healthy(p),
                Some(p),
            ),
            (None, Some(c)) => (revision_of(c).to_string(), false, false, None),
            (None, None) => return plan,
        };
        if revision != inp.update_revision && !terminating {
            if let Some(p) = pod {
                plan.actions.push(Action::DeletePod(p.clone()));
            }
            return plan;
        }
        if !healthy {
            return plan;
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(replicas: i64, policy: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "default", "uid": "s1"},
            "spec": {"replicas": replicas, "podManagementPolicy": policy, "serviceName": "web",
                "selector": {"matchLabels": {"app": "web"}},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}})
    }

    fn pod(set: &Value, ord: i64, rev: &str, phase: &str, ready: bool) -> Arc<Value> {
        let mut p = new_pod(set, ord, rev);
        p["metadata"]["uid"] = json!(format!("p{ord}"));
        p["status"] = json!({"phase": phase, "conditions": [
            {"type": "Ready", "status": if ready { "True" } else { "False" }}]});
        Arc::new(p)
    }

    fn claims(set: &Value, n: i64) -> HashMap<String, Arc<Value>> {
        (0..n)
            .flat_map(|o| claims_for(set, o))
            .map(|(_, c)| (name_of(&c).to_string(), Arc::new(c)))
            .collect()
    }

    fn run(set: &Value, pods: &[Arc<Value>], claims: &HashMap<String, Arc<Value>>) -> Vec<String> {
        let inp = Inputs {
            set,
            current_set: set,
            update_set: set,
            current_revision: "r1",
            update_revision: "r1",
            pods,
            claims,
            now: 0,
        };
        describe(&plan(&inp).actions)
    }

    fn describe(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                Action::CreatePod(p) => format!("create {}", name_of(p)),
                Action::CreateClaims(p) => format!("claims {}", name_of(p)),
                Action::DeletePod(p) => format!("delete {}", name_of(p)),
                Action::UpdatePod(p) => format!("update {}", name_of(p)),
                Action::SetClaimOwners { claim, .. } => format!("owners {}", name_of(claim)),
            })
            .collect()
    }

    #[test]
    fn ordered_ready_creates_one_at_a_time() {
        let s = set(3, "OrderedReady");
        let c = claims(&s, 3);
        assert_eq!(run(&s, &[], &c), vec!["create web-0"]);
        let p0 = pod(&s, 0, "r1", "Pending", false);
        assert!(run(&s, &[p0], &c).is_empty());
        let p0 = pod(&s, 0, "r1", "Running", false);
        assert!(run(&s, &[p0], &c).is_empty());
        let p0 = pod(&s, 0, "r1", "Running", true);
        assert_eq!(run(&s, std::slice::from_ref(&p0), &c), vec!["create web-1"]);
        let p1 = pod(&s, 1, "r1", "Running", true);
        assert_eq!(run(&s, &[p0, p1], &c), vec!["create web-2"]);
    }

    #[test]
    fn parallel_creates_all_at_once() {
        let s = set(3, "Parallel");
        assert_eq!(
            run(&s, &[], &HashMap::new()),
            vec!["create web-0", "create web-1", "create web-2"]
        );
    }

    #[test]
    fn ordered_scale_down_from_the_highest_ordinal() {
        let s = set(1, "OrderedReady");
        let c = claims(&s, 3);
        let p: Vec<Arc<Value>> = (0..3).map(|o| pod(&s, o, "r1", "Running", true)).collect();
        assert_eq!(run(&s, &p, &c), vec!["delete web-2"]);
        let mut terminating = (*p[2]).clone();
        terminating["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        let waiting = vec![p[0].clone(), p[1].clone(), Arc::new(terminating)];
        assert!(run(&s, &waiting, &c).is_empty());
        assert_eq!(run(&s, &p[..2], &c), vec!["delete web-1"]);
        // An unhealthy replica blocks scale-down.
        let sick = vec![pod(&s, 0, "r1", "Running", false), p[1].clone()];
        assert!(run(&s, &sick, &c).is_empty());
        // Parallel deletes all condemned at once.
        let par = set(1, "Parallel");
        assert_eq!(run(&par, &p, &c), vec!["delete web-2", "delete web-1"]);
    }

    #[test]
    fn failed_pods_are_deleted_and_missing_claims_created() {
        let s = set(2, "OrderedReady");
        let c = claims(&s, 2);
        let p0 = pod(&s, 0, "r1", "Failed", false);
        assert_eq!(run(&s, &[p0], &c), vec!["delete web-0"]);
        let p0 = pod(&s, 0, "r1", "Pending", false);
        assert_eq!(run(&s, &[p0], &HashMap::new()), vec!["claims web-0"]);
    }

    #[test]
    fn rolling_update_highest_first_and_partition() {
        let mut s = set(3, "OrderedReady");
        let c = claims(&s, 3);
        let old: Vec<Arc<Value>> = (0..3).map(|o| pod(&s, o, "r1", "Running", true)).collect();
        let inputs = |s: &Value, pods: &[Arc<Value>]| -> Vec<String> {
            let inp = Inputs {
                set: s,
                current_set: s,
                update_set: s,
                current_revision: "r1",
                update_revision: "r2",
                pods,
                claims: &c,
                now: 0,
            };
            describe(&plan(&inp).actions)
        };
        assert_eq!(inputs(&s, &old), vec!["delete web-2"]);
        let mut pods = old.clone();
        pods[2] = pod(&s, 2, "r2", "Running", false);
        assert!(
            inputs(&s, &pods).is_empty(),
            "waits for web-2 to be healthy"
        );
        pods[2] = pod(&s, 2, "r2", "Running", true);
        assert_eq!(inputs(&s, &pods), vec!["delete web-1"]);
        s["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(2);
        assert!(
            inputs(&s, &pods).is_empty(),
            "partition 2 keeps web-0 and web-1"
        );
        s["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
        assert!(inputs(&s, &old).is_empty());
    }

    #[test]
    fn new_pods_below_the_partition_use_the_current_revision() {
        let mut s = set(3, "Parallel");
        s["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(2);
        let mut upd = s.clone();
        upd["spec"]["template"]["spec"]["containers"][0]["image"] = json!("v2");
        let inp = Inputs {
            set: &upd,
            current_set: &s,
            update_set: &upd,
            current_revision: "r1",
            update_revision: "r2",
            pods: &[],
            claims: &HashMap::new(),
            now: 0,
        };
        let p = plan(&inp);
        let revs: Vec<(String, String)> = p
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::CreatePod(p) => Some((
                    name_of(p).to_string(),
                    p["spec"]["containers"][0]["image"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                )),
                _ => None,
            })
            .collect();
        assert_eq!(
            revs,
            vec![
                ("web-0".to_string(), "busybox".to_string()),
                ("web-1".to_string(), "busybox".to_string()),
                ("web-2".to_string(), "v2".to_string())
            ]
        );
    }

    #[test]
    fn drifted_identity_is_repaired() {
        let s = set(1, "OrderedReady");
        let c = claims(&s, 1);
        let mut p = (*pod(&s, 0, "r1", "Running", true)).clone();
        p["metadata"]["labels"][POD_NAME_LABEL] = json!("nope");
        assert_eq!(run(&s, &[Arc::new(p)], &c), vec!["update web-0"]);
    }
}
