//! Which PersistentVolume a claim binds to (Kubernetes' `FindMatchingVolume`): a volume
//! pre-bound to the claim (its `claimRef` names the claim) wins; otherwise the smallest
//! Available volume of the claim's class whose capacity, access modes, volume mode, labels
//! (the claim's selector) and node affinity (for a claim waiting for its first consumer, the
//! selected node) fit. Pure functions over JSON objects.

use super::{claim_class, pv_class, storage_of};
use crate::controllers::pods::labels;
use crate::controllers::pods::{is_deleting, name_of, namespace_of, uid_of};
use crate::controllers::scheduler::affinity::term_matches;
use crate::selectors::LabelSelector;
use crate::validation::quantity::Quantity;
use serde_json::Value;
use std::cmp::Ordering;
use std::sync::Arc;

/// The volume's `claimRef` names this claim (and its uid, when the ref has one).
pub fn is_bound_to_claim(pv: &Value, claim: &Value) -> bool {
    let Some(r) = pv.pointer("/spec/claimRef").filter(|r| r.is_object()) else {
        return false;
    };
    let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
    s("name") == name_of(claim)
        && s("namespace") == namespace_of(claim)
        && (s("uid").is_empty() || s("uid") == uid_of(claim))
}

/// The volume's required node affinity admits `node` (no affinity admits every node).
pub fn node_affinity_admits(pv: &Value, node: &Value) -> bool {
    let Some(terms) = pv
        .pointer("/spec/nodeAffinity/required/nodeSelectorTerms")
        .and_then(Value::as_array)
    else {
        return true;
    };
    let node_labels = labels(node);
    terms
        .iter()
        .any(|t| term_matches(t, name_of(node), &node_labels))
}

fn access_modes(obj: &Value) -> Vec<&str> {
    obj.pointer("/spec/accessModes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Every access mode the claim asks for is offered by the volume.
pub fn access_modes_fit(claim: &Value, pv: &Value) -> bool {
    let offered = access_modes(pv);
    access_modes(claim).iter().all(|m| offered.contains(m))
}

fn volume_mode(obj: &Value) -> &str {
    obj.pointer("/spec/volumeMode")
        .and_then(Value::as_str)
        .unwrap_or("Filesystem")
}

fn capacity(pv: &Value) -> Option<Quantity> {
    pv.pointer("/spec/capacity/storage")
        .and_then(Value::as_str)
        .and_then(Quantity::parse)
}

fn selector_admits(claim: &Value, pv: &Value) -> bool {
    let Some(sel) = claim.pointer("/spec/selector").filter(|s| !s.is_null()) else {
        return true;
    };
    LabelSelector::from_label_selector_object(sel)
        .is_ok_and(|s| s.matches(&crate::controllers::pods::labels(pv)))
}

/// The volume `claim` should bind to, if any. `node` is the node chosen for the claim's first
/// consumer (None while there is none); `delay_binding` says the claim's class waits for
/// one, in which case only a volume pre-bound to the claim is taken without a node.
pub fn find_matching_volume(
    claim: &Value,
    volumes: &[Arc<Value>],
    node: Option<&Value>,
    delay_binding: bool,
) -> Option<Arc<Value>> {
    let requested = storage_of(claim).unwrap_or_else(Quantity::zero);
    let class = claim_class(claim);
    let mut best: Option<(Arc<Value>, Quantity)> = None;
    for pv in volumes {
        let claimed = pv.pointer("/spec/claimRef").is_some_and(|r| r.is_object());
        if claimed && !is_bound_to_claim(pv, claim) {
            continue;
        }
        let Some(qty) = capacity(pv) else { continue };
        if qty.cmp_value(&requested) == Ordering::Less
            || volume_mode(pv) != volume_mode(claim)
            || is_deleting(pv)
        {
            continue;
        }
        let affinity_ok = node.is_none_or(|n| node_affinity_admits(pv, n));
        if is_bound_to_claim(pv, claim) {
            return affinity_ok.then(|| pv.clone());
        }
        if node.is_none() && delay_binding {
            continue;
        }
        let available = pv.pointer("/status/phase").and_then(Value::as_str) == Some("Available");
        if !available
            || !selector_admits(claim, pv)
            || pv_class(pv) != class
            || !affinity_ok
            || !access_modes_fit(claim, pv)
        {
            continue;
        }
        if best
            .as_ref()
            .is_none_or(|(_, q)| q.cmp_value(&qty) == Ordering::Greater)
        {
            best = Some((pv.clone(), qty));
        }
    }
    best.map(|(pv, _)| pv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claim(class: &str, size: &str) -> Value {
        json!({"metadata": {"name": "c", "namespace": "ns", "uid": "u1"},
            "spec": {"storageClassName": class, "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": size}}}})
    }

    fn pv(name: &str, class: &str, size: &str) -> Arc<Value> {
        Arc::new(
            json!({"metadata": {"name": name, "labels": {"tier": "fast"}},
            "spec": {"storageClassName": class, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
                "capacity": {"storage": size}, "hostPath": {"path": "/x"}},
            "status": {"phase": "Available"}}),
        )
    }

    #[test]
    fn smallest_fitting_volume_of_the_class() {
        let vols = vec![
            pv("big", "manual", "10Gi"),
            pv("small", "manual", "2Gi"),
            pv("tiny", "manual", "500Mi"),
            pv("other", "fast", "1Gi"),
        ];
        let got = find_matching_volume(&claim("manual", "1Gi"), &vols, None, false);
        assert_eq!(
            got.map(|v| name_of(&v).to_string()).as_deref(),
            Some("small")
        );
        assert!(find_matching_volume(&claim("manual", "20Gi"), &vols, None, false).is_none());
        assert!(find_matching_volume(&claim("none", "1Gi"), &vols, None, false).is_none());
    }

    #[test]
    fn pre_bound_volume_wins_and_foreign_claims_are_skipped() {
        let mut pre = (*pv("pre", "manual", "5Gi")).clone();
        pre["spec"]["claimRef"] = json!({"name": "c", "namespace": "ns"});
        pre["status"]["phase"] = json!("Pending");
        let mut foreign = (*pv("foreign", "manual", "1Gi")).clone();
        foreign["spec"]["claimRef"] = json!({"name": "other", "namespace": "ns"});
        let vols = vec![
            Arc::new(foreign),
            pv("small", "manual", "1Gi"),
            Arc::new(pre),
        ];
        let got = find_matching_volume(&claim("manual", "1Gi"), &vols, None, true);
        assert_eq!(got.map(|v| name_of(&v).to_string()).as_deref(), Some("pre"));
    }

    #[test]
    fn delayed_binding_needs_a_node_that_fits() {
        let mut local = (*pv("local", "manual", "1Gi")).clone();
        local["spec"]["nodeAffinity"] = json!({"required": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}});
        let vols = vec![Arc::new(local)];
        let n1 = json!({"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}});
        let n2 = json!({"metadata": {"name": "n2", "labels": {"kubernetes.io/hostname": "n2"}}});
        let c = claim("manual", "1Gi");
        assert!(find_matching_volume(&c, &vols, None, true).is_none());
        assert!(find_matching_volume(&c, &vols, Some(&n1), true).is_some());
        assert!(find_matching_volume(&c, &vols, Some(&n2), true).is_none());
    }

    #[test]
    fn selector_access_modes_and_mode() {
        let vols = vec![pv("v", "manual", "1Gi")];
        let mut c = claim("manual", "1Gi");
        c["spec"]["selector"] = json!({"matchLabels": {"tier": "slow"}});
        assert!(find_matching_volume(&c, &vols, None, false).is_none());
        let mut c = claim("manual", "1Gi");
        c["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        assert!(find_matching_volume(&c, &vols, None, false).is_none());
        let mut c = claim("manual", "1Gi");
        c["spec"]["volumeMode"] = json!("Block");
        assert!(find_matching_volume(&c, &vols, None, false).is_none());
    }
}
