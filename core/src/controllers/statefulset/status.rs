//! A StatefulSet's status (`updateStatus`, `completeRollingUpdate`, `inconsistentStatus`):
//! counts over the pods it owns — `replicas` (created), `readyReplicas`, `availableReplicas`,
//! `currentReplicas` and `updatedReplicas` (created, not terminating, at the current/update
//! revision) — the revisions, `observedGeneration` and `collisionCount`. A finished
//! RollingUpdate (all updated and ready) makes the update revision current. This is what
//! `kubectl rollout status sts/x` reads.

use super::identity::{
    is_created, is_running_and_available, is_running_and_ready, is_terminating, revision_of,
};
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub struct Revisions<'a> {
    pub current: &'a str,
    pub update: &'a str,
    pub collision_count: i64,
}

/// The status the set should have.
pub fn compute(set: &Value, pods: &[Arc<Value>], revs: &Revisions, now: i64) -> Value {
    let min_ready = set
        .pointer("/spec/minReadySeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let (mut replicas, mut ready, mut available, mut current, mut updated) = (0, 0, 0, 0, 0);
    for p in pods {
        if is_created(p) {
            replicas += 1;
        }
        if is_running_and_ready(p) {
            ready += 1;
            if is_running_and_available(p, min_ready, now) {
                available += 1;
            }
        }
        if is_created(p) && !is_terminating(p) {
            let r = revision_of(p);
            if r == revs.current {
                current += 1;
            }
            if r == revs.update {
                updated += 1;
            }
        }
    }
    let mut current_revision = revs.current.to_string();
    let rolling = set
        .pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        .unwrap_or("RollingUpdate")
        == "RollingUpdate";
    if rolling && updated == replicas && ready == replicas {
        current = updated;
        current_revision = revs.update.to_string();
    }
    let mut s = Map::new();
    s.insert(
        "observedGeneration".into(),
        set.pointer("/metadata/generation")
            .cloned()
            .unwrap_or(json!(0)),
    );
    s.insert("replicas".into(), json!(replicas));
    s.insert("readyReplicas".into(), json!(ready));
    s.insert("currentReplicas".into(), json!(current));
    s.insert("updatedReplicas".into(), json!(updated));
    s.insert("availableReplicas".into(), json!(available));
    s.insert("currentRevision".into(), json!(current_revision));
    s.insert("updateRevision".into(), json!(revs.update));
    s.insert("collisionCount".into(), json!(revs.collision_count));
    // Conditions are not computed by the controller; keep what others wrote.
    if let Some(c) = set.pointer("/status/conditions") {
        s.insert("conditions".into(), c.clone());
    }
    Value::Object(s)
}

/// The status differs from what the set carries (counts of 0 equal absent fields).
pub fn differs(set: &Value, want: &Value) -> bool {
    let have = set.get("status").cloned().unwrap_or(json!({}));
    let Some(w) = want.as_object() else {
        return false;
    };
    w.iter().any(|(k, v)| {
        let h = have.get(k).cloned().unwrap_or(Value::Null);
        let zero = v == &json!(0) || v == &json!("");
        !(h == *v || (zero && h.is_null()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::statefulset::identity::new_pod;

    fn set() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "default", "uid": "s1", "generation": 4},
            "spec": {"replicas": 2, "updateStrategy": {"type": "RollingUpdate"},
                "template": {"spec": {"containers": []}}}})
    }

    fn pod(ord: i64, rev: &str, ready: bool) -> Arc<Value> {
        let mut p = new_pod(&set(), ord, rev);
        p["status"] = json!({"phase": "Running", "conditions": [
            {"type": "Ready", "status": if ready {"True"} else {"False"}}]});
        Arc::new(p)
    }

    #[test]
    fn counts_and_rolling_update_completion() {
        let revs = Revisions {
            current: "r1",
            update: "r2",
            collision_count: 0,
        };
        let s = compute(&set(), &[pod(0, "r1", true), pod(1, "r2", false)], &revs, 0);
        assert_eq!(s["replicas"], 2);
        assert_eq!(s["readyReplicas"], 1);
        assert_eq!(s["availableReplicas"], 1);
        assert_eq!(s["currentReplicas"], 1);
        assert_eq!(s["updatedReplicas"], 1);
        assert_eq!(s["currentRevision"], "r1");
        assert_eq!(s["observedGeneration"], 4);
        let done = compute(&set(), &[pod(0, "r2", true), pod(1, "r2", true)], &revs, 0);
        assert_eq!(done["currentRevision"], "r2");
        assert_eq!(done["currentReplicas"], 2);
        let mut with = set();
        with["status"] = done.clone();
        assert!(!differs(&with, &done));
        assert!(differs(&with, &s));
    }
}
