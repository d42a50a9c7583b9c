//! What workload controllers share about the pods they own: owner references, the controller
//! of an object, a pod made from a template, and whether a pod is active, ready or available
//! (the definitions of Kubernetes' `controller_utils.go` and `podutil`).

use serde_json::{json, Map, Value};

/// An ownerReference to `owner` marking it as the managing controller (blockOwnerDeletion set,
/// as controllers do, so foreground deletion waits for the pods).
pub fn controller_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner.get("apiVersion").cloned().unwrap_or(Value::Null),
        "kind": owner.get("kind").cloned().unwrap_or(Value::Null),
        "name": owner.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
        "uid": owner.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// The ownerReference with `controller: true`, if any.
pub fn controller_of(obj: &Value) -> Option<&Value> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
}

/// True when `obj` is controlled by the object with this uid.
pub fn is_controlled_by(obj: &Value, owner_uid: &str) -> bool {
    controller_of(obj)
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
        == Some(owner_uid)
}

pub fn uid_of(obj: &Value) -> &str {
    obj.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn namespace_of(obj: &Value) -> &str {
    obj.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// A new Pod from a pod template: the template's labels, annotations and spec, owned by
/// `owner`, named `name` or generated from `generate_name`.
pub fn pod_from_template(
    template: &Value,
    owner: &Value,
    name: Option<&str>,
    generate_name: &str,
) -> Value {
    let mut meta = Map::new();
    match name {
        Some(n) => meta.insert("name".into(), json!(n)),
        None => meta.insert("generateName".into(), json!(generate_name)),
    };
    meta.insert("namespace".into(), json!(namespace_of(owner)));
    for field in ["labels", "annotations", "finalizers"] {
        if let Some(v) = template.pointer(&format!("/metadata/{field}")) {
            if !v.is_null() {
                meta.insert(field.into(), v.clone());
            }
        }
    }
    meta.insert("ownerReferences".into(), json!([controller_ref(owner)]));
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": Value::Object(meta),
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
    })
}

/// The pod's phase.
pub fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending")
}

/// Active = not finished and not being deleted (the ReplicaSet's count of pods).
pub fn is_active(pod: &Value) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && !is_deleting(pod)
}

/// The `Ready` condition's status is True.
pub fn is_ready(pod: &Value) -> bool {
    ready_condition(pod).is_some_and(|c| c.get("status").and_then(Value::as_str) == Some("True"))
}

fn ready_condition(pod: &Value) -> Option<&Value> {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
}

/// Ready for at least `min_ready_seconds` at `now` (seconds since the epoch).
pub fn is_available(pod: &Value, min_ready_seconds: i64, now: i64) -> bool {
    if !is_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    let since = ready_condition(pod)
        .and_then(|c| c.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .and_then(parse_time);
    since.is_some_and(|t| t + min_ready_seconds <= now)
}

/// Seconds until a ready pod becomes available (None when it is not ready or already is).
pub fn until_available(pod: &Value, min_ready_seconds: i64, now: i64) -> Option<i64> {
    if !is_ready(pod) || min_ready_seconds <= 0 {
        return None;
    }
    let since = ready_condition(pod)
        .and_then(|c| c.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .and_then(parse_time)?;
    let left = since + min_ready_seconds - now;
    (left > 0).then_some(left)
}

/// RFC 3339 time → seconds since the epoch.
pub fn parse_time(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// Seconds since the epoch now.
pub fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Labels of an object as a map.
pub fn labels(obj: &Value) -> Map<String, Value> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "rs", "namespace": "ns", "uid": "u1"}})
    }

    #[test]
    fn template_to_pod() {
        let t = json!({"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let p = pod_from_template(&t, &owner(), None, "rs-");
        assert_eq!(p["metadata"]["generateName"], "rs-");
        assert_eq!(p["metadata"]["namespace"], "ns");
        assert_eq!(p["metadata"]["labels"]["app"], "a");
        assert!(is_controlled_by(&p, "u1"));
        assert_eq!(
            p["metadata"]["ownerReferences"][0]["blockOwnerDeletion"],
            true
        );
        let named = pod_from_template(&t, &owner(), Some("web-0"), "");
        assert_eq!(named["metadata"]["name"], "web-0");
    }

    #[test]
    fn readiness_and_availability() {
        let p = json!({"status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
        let t0 = parse_time("2026-01-01T00:00:00Z").unwrap();
        assert!(is_ready(&p) && is_active(&p));
        assert!(is_available(&p, 0, t0));
        assert!(!is_available(&p, 10, t0 + 5));
        assert_eq!(until_available(&p, 10, t0 + 5), Some(5));
        assert!(is_available(&p, 10, t0 + 10));
        let done = json!({"status": {"phase": "Succeeded"}});
        assert!(!is_active(&done));
    }
}
