//! Storage defaults: `SetDefaults_StorageClass` (reclaimPolicy `Delete`, volumeBindingMode
//! `Immediate`) and the two storage admission plugins that fill fields in on create:
//! `DefaultStorageClass` (a PVC without `storageClassName` gets the default class) and
//! `StorageObjectInUseProtection` (new PVCs and PVs get the `kubernetes.io/pvc-protection` /
//! `kubernetes.io/pv-protection` finalizers the protection controllers remove once unused).

use super::{ensure_obj, set_if_unset_or_empty};
use serde_json::{json, Value};

/// Annotation marking a StorageClass as the cluster default.
pub const IS_DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
/// The legacy annotation that names a PVC's class (a PVC carrying it is never defaulted).
pub const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";
/// Finalizer of PVCs in use by pods.
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
/// Finalizer of PVs bound to claims.
pub const PV_PROTECTION: &str = "kubernetes.io/pv-protection";

pub(super) fn storage_class_defaults(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    set_if_unset_or_empty(m, "reclaimPolicy", json!("Delete"));
    set_if_unset_or_empty(m, "volumeBindingMode", json!("Immediate"));
}

/// True when the class carries `is-default-class: "true"`.
pub fn is_default_class(class: &Value) -> bool {
    class
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(IS_DEFAULT_CLASS))
        .and_then(Value::as_str)
        == Some("true")
}

/// The default StorageClass among `classes`, as the admission plugin picks it since 1.28: of
/// the classes marked default, the newest (by creationTimestamp, then name).
pub fn pick_default_class(classes: &[Value]) -> Option<String> {
    let ts = |c: &Value| {
        c.pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let name = |c: &Value| {
        c.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    classes
        .iter()
        .filter(|c| is_default_class(c))
        .max_by(|a, b| ts(a).cmp(&ts(b)).then_with(|| name(b).cmp(&name(a))))
        .map(name)
}

/// `DefaultStorageClass` admission: a new PVC whose `storageClassName` is unset (absent or
/// null, not `""`) and that has no beta class annotation gets `default_class`.
pub fn default_storage_class(pvc: &mut Value, default_class: Option<&str>) {
    let Some(class) = default_class else {
        return;
    };
    let has_beta = pvc
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(BETA_STORAGE_CLASS))
        .is_some();
    let Some(spec) = pvc.as_object_mut().and_then(|m| ensure_obj(m, "spec")) else {
        return;
    };
    if has_beta || spec.get("storageClassName").is_some_and(|v| !v.is_null()) {
        return;
    }
    spec.insert("storageClassName".into(), json!(class));
}

/// `StorageObjectInUseProtection` admission: the protection finalizer of a new PVC or PV.
pub fn add_protection_finalizer(kind: &str, obj: &mut Value) {
    let finalizer = match kind {
        "PersistentVolumeClaim" => PVC_PROTECTION,
        "PersistentVolume" => PV_PROTECTION,
        _ => return,
    };
    let Some(meta) = obj.as_object_mut().and_then(|m| ensure_obj(m, "metadata")) else {
        return;
    };
    let list = meta.entry("finalizers").or_insert_with(|| json!([]));
    if list.is_null() {
        *list = json!([]);
    }
    if let Some(a) = list.as_array_mut() {
        if !a.iter().any(|f| f.as_str() == Some(finalizer)) {
            a.push(json!(finalizer));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, ts: &str, default: bool) -> Value {
        let mut c = json!({"metadata": {"name": name, "creationTimestamp": ts}});
        if default {
            c["metadata"]["annotations"] = json!({IS_DEFAULT_CLASS: "true"});
        }
        c
    }

    #[test]
    fn newest_default_class_wins() {
        let classes = [
            class("old", "2026-01-01T00:00:00Z", true),
            class("new", "2026-02-01T00:00:00Z", true),
            class("plain", "2026-03-01T00:00:00Z", false),
        ];
        assert_eq!(pick_default_class(&classes).as_deref(), Some("new"));
        assert_eq!(pick_default_class(&classes[2..]), None);
    }

    #[test]
    fn pvc_class_defaulting_only_when_unset() {
        let mut p = json!({"spec": {}});
        default_storage_class(&mut p, Some("local-path"));
        assert_eq!(p["spec"]["storageClassName"], "local-path");
        let mut empty = json!({"spec": {"storageClassName": ""}});
        default_storage_class(&mut empty, Some("local-path"));
        assert_eq!(empty["spec"]["storageClassName"], "");
        let mut beta = json!({"metadata": {"annotations": {BETA_STORAGE_CLASS: "x"}}, "spec": {}});
        default_storage_class(&mut beta, Some("local-path"));
        assert!(beta["spec"].get("storageClassName").is_none());
        let mut none = json!({"spec": {}});
        default_storage_class(&mut none, None);
        assert!(none["spec"].get("storageClassName").is_none());
    }

    #[test]
    fn protection_finalizers_once() {
        let mut p = json!({"metadata": {"finalizers": ["x"]}});
        add_protection_finalizer("PersistentVolumeClaim", &mut p);
        add_protection_finalizer("PersistentVolumeClaim", &mut p);
        assert_eq!(p["metadata"]["finalizers"], json!(["x", PVC_PROTECTION]));
        let mut v = json!({});
        add_protection_finalizer("PersistentVolume", &mut v);
        assert_eq!(v["metadata"]["finalizers"], json!([PV_PROTECTION]));
        let mut c = json!({});
        add_protection_finalizer("ConfigMap", &mut c);
        assert!(c.get("metadata").is_none());
    }

    #[test]
    fn class_defaults() {
        let mut c = json!({"provisioner": "p"});
        storage_class_defaults(&mut c);
        assert_eq!(c["reclaimPolicy"], "Delete");
        assert_eq!(c["volumeBindingMode"], "Immediate");
    }
}
