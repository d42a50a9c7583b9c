//! A StatefulSet pod's stable identity and storage (`stateful_set_utils.go`): the name
//! `<set>-<ordinal>`, the labels `statefulset.kubernetes.io/pod-name`,
//! `apps.kubernetes.io/pod-index` and `controller-revision-hash`, hostname and subdomain, the
//! claims `<template>-<set>-<ordinal>` made from `volumeClaimTemplates` and the pod volumes
//! that use them, plus the pod predicates the controller decides on.

use crate::controllers::pods::{self, is_deleting, name_of, namespace_of};
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// `(parent, ordinal)` from a pod name `<parent>-<ordinal>`.
pub fn parent_and_ordinal(name: &str) -> Option<(&str, i64)> {
    let (parent, ord) = name.rsplit_once('-')?;
    if ord.is_empty() || !ord.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    ord.parse().ok().map(|o| (parent, o))
}

/// The pod's ordinal (None when its name has none).
pub fn ordinal_of(pod: &Value) -> Option<i64> {
    parent_and_ordinal(name_of(pod)).map(|(_, o)| o)
}

/// The pod's name says it belongs to `set` (`isMemberOf`).
pub fn is_member_of(set: &Value, pod: &Value) -> bool {
    parent_and_ordinal(name_of(pod)).is_some_and(|(p, _)| p == name_of(set))
}

pub fn pod_name(set: &Value, ordinal: i64) -> String {
    format!("{}-{ordinal}", name_of(set))
}

/// `spec.replicas` (default 1).
pub fn replicas_of(set: &Value) -> i64 {
    set.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0)
}

/// `spec.ordinals.start` (default 0).
pub fn start_ordinal(set: &Value) -> i64 {
    set.pointer("/spec/ordinals/start")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .max(0)
}

/// The ordinal lies in `[start, start + replicas)`.
pub fn in_ordinal_range(set: &Value, ordinal: i64) -> bool {
    let start = start_ordinal(set);
    ordinal >= start && ordinal < start + replicas_of(set)
}

fn claim_templates(set: &Value) -> &[Value] {
    set.pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// `<template>-<set>-<ordinal>`.
pub fn claim_name(set: &Value, template: &Value, ordinal: i64) -> String {
    format!("{}-{}-{ordinal}", name_of(template), name_of(set))
}

/// The claims of the pod at `ordinal`, as (template name, claim to create), in template order:
/// the template with its name, the set's namespace, and the selector's matchLabels added.
pub fn claims_for(set: &Value, ordinal: i64) -> Vec<(String, Value)> {
    let match_labels = set
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    claim_templates(set)
        .iter()
        .map(|t| {
            let mut claim = t.clone();
            if let Some(o) = claim.as_object_mut() {
                o.remove("status");
            }
            let mut meta = t
                .get("metadata")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let mut labels = meta
                .get("labels")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for (k, v) in &match_labels {
                labels.insert(k.clone(), v.clone());
            }
            meta.insert("name".into(), json!(claim_name(set, t, ordinal)));
            meta.insert("namespace".into(), json!(namespace_of(set)));
            if !labels.is_empty() {
                meta.insert("labels".into(), Value::Object(labels));
            }
            claim["metadata"] = Value::Object(meta);
            claim["apiVersion"] = json!("v1");
            claim["kind"] = json!("PersistentVolumeClaim");
            (name_of(t).to_string(), claim)
        })
        .collect()
}

/// `updateStorage`: one volume per claim template (replacing a pod volume of the same name).
pub fn update_storage(set: &Value, pod: &mut Value, ordinal: i64) {
    let claims = claims_for(set, ordinal);
    if claims.is_empty() {
        return;
    }
    let mut volumes: Vec<Value> = claims
        .iter()
        .map(|(tname, claim)| {
            json!({"name": tname, "persistentVolumeClaim": {"claimName": name_of(claim)}})
        })
        .collect();
    let current = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for v in current {
        let n = v.get("name").and_then(Value::as_str).unwrap_or("");
        if !claims.iter().any(|(t, _)| t == n) {
            volumes.push(v);
        }
    }
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("volumes".into(), Value::Array(volumes));
    }
}

fn labels_mut(pod: &mut Value) -> Option<&mut Map<String, Value>> {
    let meta = pod.get_mut("metadata")?.as_object_mut()?;
    if !meta.get("labels").is_some_and(Value::is_object) {
        meta.insert("labels".into(), json!({}));
    }
    meta.get_mut("labels")?.as_object_mut()
}

/// `updateIdentity`: name, namespace, and the pod-name and pod-index labels.
pub fn update_identity(set: &Value, pod: &mut Value, ordinal: i64) {
    let name = pod_name(set, ordinal);
    if let Some(meta) = pod.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("name".into(), json!(name));
        meta.insert("namespace".into(), json!(namespace_of(set)));
    }
    if let Some(labels) = labels_mut(pod) {
        labels.insert(POD_NAME_LABEL.into(), json!(name));
        labels.insert(POD_INDEX_LABEL.into(), json!(ordinal.to_string()));
    }
}

/// `identityMatches`.
pub fn identity_matches(set: &Value, pod: &Value) -> bool {
    let Some((parent, ordinal)) = parent_and_ordinal(name_of(pod)) else {
        return false;
    };
    let labels = pods::labels(pod);
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    parent == name_of(set)
        && namespace_of(pod) == namespace_of(set)
        && label(POD_NAME_LABEL) == Some(name_of(pod))
        && label(POD_INDEX_LABEL) == Some(ordinal.to_string().as_str())
}

/// `storageMatches`: every claim template has its volume naming the right claim.
pub fn storage_matches(set: &Value, pod: &Value) -> bool {
    let Some(ordinal) = ordinal_of(pod) else {
        return false;
    };
    let volumes = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    claim_templates(set).iter().all(|t| {
        let want = claim_name(set, t, ordinal);
        volumes.iter().any(|v| {
            v.get("name").and_then(Value::as_str) == Some(name_of(t))
                && v.pointer("/persistentVolumeClaim/claimName")
                    .and_then(Value::as_str)
                    == Some(want.as_str())
        })
    })
}

/// `newStatefulSetPod` + `setPodRevision`: the pod at `ordinal` from `set`'s template.
pub fn new_pod(set: &Value, ordinal: i64, revision: &str) -> Value {
    let template = set.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let name = pod_name(set, ordinal);
    let mut pod = pods::pod_from_template(&template, set, Some(&name), "");
    update_identity(set, &mut pod, ordinal);
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("hostname".into(), json!(name));
        let service = set
            .pointer("/spec/serviceName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !service.is_empty() {
            spec.insert("subdomain".into(), json!(service));
        }
    }
    update_storage(set, &mut pod, ordinal);
    if let Some(labels) = labels_mut(&mut pod) {
        labels.insert(REVISION_LABEL.into(), json!(revision));
    }
    pod
}

/// The pod's `controller-revision-hash` label.
pub fn revision_of(pod: &Value) -> &str {
    pod.pointer("/metadata/labels")
        .and_then(|l| l.get(REVISION_LABEL))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The pod object exists (it has a phase).
pub fn is_created(pod: &Value) -> bool {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .is_some_and(|p| !p.is_empty())
}

pub fn is_terminating(pod: &Value) -> bool {
    is_deleting(pod)
}

pub fn is_failed_or_succeeded(pod: &Value) -> bool {
    matches!(pods::phase(pod), "Failed" | "Succeeded")
}

pub fn is_pending(pod: &Value) -> bool {
    pod.pointer("/status/phase").and_then(Value::as_str) == Some("Pending")
}

/// Running, Ready and not terminating.
pub fn is_running_and_ready(pod: &Value) -> bool {
    pods::phase(pod) == "Running" && pods::is_ready(pod)
}

/// Running and available for `min_ready_seconds` at `now`.
pub fn is_running_and_available(pod: &Value, min_ready_seconds: i64, now: i64) -> bool {
    pods::phase(pod) == "Running" && pods::is_available(pod, min_ready_seconds, now)
}

/// Running, Ready and not terminating.
pub fn is_healthy(pod: &Value) -> bool {
    is_running_and_ready(pod) && !is_terminating(pod)
}

/// Owned pods sorted by ordinal (pods without an ordinal dropped).
pub fn by_ordinal(pods: &[Arc<Value>]) -> Vec<(i64, Arc<Value>)> {
    let mut out: Vec<(i64, Arc<Value>)> = pods
        .iter()
        .filter_map(|p| ordinal_of(p).map(|o| (o, p.clone())))
        .collect();
    out.sort_by_key(|(o, _)| *o);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn set() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "default", "uid": "s1"},
            "spec": {"replicas": 3, "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}],
                        "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cache", "emptyDir": {}}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data", "labels": {"tier": "db"}},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                    "status": {"phase": "Pending"}}]}})
    }

    #[test]
    fn names_and_ordinals() {
        assert_eq!(parent_and_ordinal("web-12"), Some(("web", 12)));
        assert_eq!(parent_and_ordinal("my-web-0"), Some(("my-web", 0)));
        assert_eq!(parent_and_ordinal("web"), None);
        assert_eq!(parent_and_ordinal("web-x"), None);
        assert_eq!(parent_and_ordinal("web-"), None);
        let s = set();
        assert!(is_member_of(&s, &json!({"metadata": {"name": "web-3"}})));
        assert!(!is_member_of(&s, &json!({"metadata": {"name": "webby-3"}})));
        assert!(in_ordinal_range(&s, 2) && !in_ordinal_range(&s, 3));
    }

    #[test]
    fn new_pod_identity_storage_and_revision() {
        let s = set();
        let p = new_pod(&s, 1, "web-abc");
        assert_eq!(p["metadata"]["name"], "web-1");
        assert_eq!(p["metadata"]["namespace"], "default");
        let l = &p["metadata"]["labels"];
        assert_eq!(l[POD_NAME_LABEL], "web-1");
        assert_eq!(l[POD_INDEX_LABEL], "1");
        assert_eq!(l[REVISION_LABEL], "web-abc");
        assert_eq!(l["app"], "web");
        assert_eq!(p["spec"]["hostname"], "web-1");
        assert_eq!(p["spec"]["subdomain"], "nginx");
        assert_eq!(
            p["spec"]["volumes"],
            json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data-web-1"}},
                {"name": "cache", "emptyDir": {}}])
        );
        assert_eq!(p["metadata"]["ownerReferences"][0]["uid"], "s1");
        assert!(identity_matches(&s, &p));
        assert!(storage_matches(&s, &p));
        let mut bad = p.clone();
        bad["metadata"]["labels"][POD_NAME_LABEL] = json!("x");
        assert!(!identity_matches(&s, &bad));
        update_identity(&s, &mut bad, 1);
        assert!(identity_matches(&s, &bad));
        let mut nostore = p.clone();
        nostore["spec"]["volumes"] = json!([]);
        assert!(!storage_matches(&s, &nostore));
    }

    #[test]
    fn claims_carry_selector_labels() {
        let claims = claims_for(&set(), 2);
        assert_eq!(claims.len(), 1);
        let (t, c) = &claims[0];
        assert_eq!(t, "data");
        assert_eq!(c["metadata"]["name"], "data-web-2");
        assert_eq!(c["metadata"]["namespace"], "default");
        assert_eq!(c["metadata"]["labels"], json!({"tier": "db", "app": "web"}));
        assert_eq!(c["kind"], "PersistentVolumeClaim");
        assert!(c.get("status").is_none());
    }
}
