//! `persistentVolumeClaimRetentionPolicy` (StatefulSetAutoDeletePVC, on by default): what owns a
//! pod's claims, so the garbage collector deletes them when the policy says so.
//!
//! | whenScaled | whenDeleted | owner of the claim |
//! | --- | --- | --- |
//! | Retain | Retain | nobody (claims outlive everything) |
//! | Retain | Delete | the set |
//! | Delete | Retain | the pod, once it is scaled away (out of the ordinal range) |
//! | Delete | Delete | the set while in range, the pod once scaled away |
//!
//! The references are plain (non-controller) ownerReferences, as Kubernetes sets them. A claim
//! still owned by an earlier pod of the same name is stale: the new pod waits until the garbage
//! collector removed it.

use super::identity::{claims_for, in_ordinal_range, ordinal_of};
use crate::controllers::pods::{name_of, uid_of};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

fn policy(set: &Value) -> (&str, &str) {
    let p = |k: &str| {
        set.pointer(&format!("/spec/persistentVolumeClaimRetentionPolicy/{k}"))
            .and_then(Value::as_str)
            .unwrap_or("Retain")
    };
    (p("whenScaled"), p("whenDeleted"))
}

fn owner_ref(obj: &Value, api_version: &str, kind: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": name_of(obj), "uid": uid_of(obj)})
}

fn refs(claim: &Value) -> Vec<Value> {
    claim
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The claim has an ownerReference to a pod of this pod's name but another uid.
pub fn claim_is_stale(set: &Value, pod: &Value, claims: &HashMap<String, Arc<Value>>) -> bool {
    if policy(set).0 == "Retain" {
        return false;
    }
    let Some(ordinal) = ordinal_of(pod) else {
        return false;
    };
    claims_for(set, ordinal).iter().any(|(_, c)| {
        claims.get(name_of(c)).is_some_and(|existing| {
            refs(existing).iter().any(|r| {
                r.get("kind").and_then(Value::as_str) == Some("Pod")
                    && r.get("name").and_then(Value::as_str) == Some(name_of(pod))
                    && r.get("uid").and_then(Value::as_str) != Some(uid_of(pod))
            })
        })
    })
}

/// The ownerReferences `claim` should carry for `pod` of `set`.
pub fn wanted_owners(set: &Value, pod: &Value, claim: &Value) -> Vec<Value> {
    let (scaled, deleted) = policy(set);
    let scaled_down = !ordinal_of(pod).is_some_and(|o| in_ordinal_range(set, o));
    let (own_by_set, own_by_pod) = match (scaled, deleted) {
        ("Delete", "Delete") => (!scaled_down, scaled_down),
        ("Delete", _) => (false, scaled_down),
        (_, "Delete") => (true, false),
        _ => (false, false),
    };
    let (set_uid, pod_uid) = (uid_of(set), uid_of(pod));
    let mut out: Vec<Value> = refs(claim)
        .into_iter()
        .filter(|r| {
            let uid = r.get("uid").and_then(Value::as_str).unwrap_or("");
            uid != set_uid && uid != pod_uid
        })
        .collect();
    if own_by_set {
        out.push(owner_ref(set, "apps/v1", "StatefulSet"));
    }
    if own_by_pod {
        out.push(owner_ref(pod, "v1", "Pod"));
    }
    out
}

/// Claims of `pod` (an existing pod, with a uid) whose ownerReferences differ from the
/// policy's, with the references they should have.
pub fn owner_fixes(
    set: &Value,
    pod: &Value,
    claims: &HashMap<String, Arc<Value>>,
) -> Vec<(Arc<Value>, Value)> {
    if uid_of(pod).is_empty() || crate::controllers::pods::is_deleting(set) {
        return Vec::new();
    }
    let Some(ordinal) = ordinal_of(pod) else {
        return Vec::new();
    };
    let uid_set = |v: &[Value]| {
        let mut u: Vec<String> = v
            .iter()
            .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_string))
            .collect();
        u.sort();
        u
    };
    claims_for(set, ordinal)
        .iter()
        .filter_map(|(_, c)| claims.get(name_of(c)))
        .filter_map(|existing| {
            let want = wanted_owners(set, pod, existing);
            (uid_set(&want) != uid_set(&refs(existing))).then(|| (existing.clone(), json!(want)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::statefulset::identity::new_pod;

    fn set(scaled: &str, deleted: &str, replicas: i64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "default", "uid": "s1"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                "persistentVolumeClaimRetentionPolicy": {"whenScaled": scaled, "whenDeleted": deleted},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}]}})
    }

    fn world(s: &Value, ord: i64, pod_uid: &str) -> (Value, HashMap<String, Arc<Value>>) {
        let mut pod = new_pod(s, ord, "r");
        pod["metadata"]["uid"] = json!(pod_uid);
        let claims = claims_for(s, ord)
            .into_iter()
            .map(|(_, c)| (name_of(&c).to_string(), Arc::new(c)))
            .collect();
        (pod, claims)
    }

    fn owner_kinds(fixes: &[(Arc<Value>, Value)]) -> Vec<String> {
        fixes
            .iter()
            .flat_map(|(_, o)| o.as_array().cloned().unwrap_or_default())
            .filter_map(|r| r["kind"].as_str().map(str::to_string))
            .collect()
    }

    #[test]
    fn retain_retain_owns_nothing() {
        let s = set("Retain", "Retain", 1);
        let (pod, claims) = world(&s, 0, "p0");
        assert!(owner_fixes(&s, &pod, &claims).is_empty());
        assert!(!claim_is_stale(&s, &pod, &claims));
    }

    #[test]
    fn delete_policies_set_owners() {
        let s = set("Retain", "Delete", 1);
        let (pod, claims) = world(&s, 0, "p0");
        assert_eq!(
            owner_kinds(&owner_fixes(&s, &pod, &claims)),
            vec!["StatefulSet"]
        );
        let s = set("Delete", "Retain", 1);
        let (pod, claims) = world(&s, 0, "p0");
        assert!(
            owner_fixes(&s, &pod, &claims).is_empty(),
            "in range: no owner"
        );
        let (pod, claims) = world(&s, 3, "p3");
        assert_eq!(owner_kinds(&owner_fixes(&s, &pod, &claims)), vec!["Pod"]);
        let s = set("Delete", "Delete", 1);
        let (pod, claims) = world(&s, 3, "p3");
        assert_eq!(owner_kinds(&owner_fixes(&s, &pod, &claims)), vec!["Pod"]);
    }

    #[test]
    fn stale_claims_block_a_new_pod() {
        let s = set("Delete", "Retain", 1);
        let (pod, mut claims) = world(&s, 0, "");
        let mut c = (*claims["data-web-0"]).clone();
        c["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "v1", "kind": "Pod", "name": "web-0", "uid": "old"}]);
        claims.insert("data-web-0".into(), Arc::new(c));
        assert!(claim_is_stale(&s, &pod, &claims));
    }
}
