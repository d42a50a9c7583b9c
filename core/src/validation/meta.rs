//! ObjectMeta validation on create and update (name, generateName, namespace, labels,
//! annotations, ownerReferences, finalizers, managedFields, immutable fields), label selectors
//! (validation and matching) — `apimachinery/pkg/api/validation/objectmeta.go` and
//! `apimachinery/pkg/apis/meta/v1/validation`.

use super::names::{is_qualified_name, is_valid_label_value, NameRule};
use super::{arr, fld, go_string_slice, go_time, int, obj, st, Bad, Errs, FIELD_IMMUTABLE};
use serde_json::Value;

const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;
const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

/// Which variant of ObjectMeta validation runs.
#[derive(Clone, Copy)]
pub(crate) struct MetaRules {
    pub namespaced: bool,
    pub name: NameRule,
    /// The core wrapper's extra check that unqualified finalizers are standard ones.
    pub kube_finalizers: bool,
}

impl MetaRules {
    pub(crate) fn core(namespaced: bool, name: NameRule) -> MetaRules {
        MetaRules {
            namespaced,
            name,
            kube_finalizers: true,
        }
    }
}

/// `ValidateLabels(labels, path)`: keys are qualified names, values label values.
pub(crate) fn validate_labels(labels: Option<&Value>, path: &str, e: &mut Errs) {
    let Some(m) = labels.and_then(Value::as_object) else {
        return;
    };
    for (k, v) in m {
        e.invalid_each(path, k, is_qualified_name(k));
        let v = v.as_str().unwrap_or("");
        e.invalid_each(path, v, is_valid_label_value(v));
    }
}

/// `ValidateAnnotations`: case-insensitive qualified-name keys, 256 KiB in total.
pub(crate) fn validate_annotations(annotations: Option<&Value>, path: &str, e: &mut Errs) {
    let Some(m) = annotations.and_then(Value::as_object) else {
        return;
    };
    let mut total = 0usize;
    for (k, v) in m {
        e.invalid_each(path, k, is_qualified_name(&k.to_lowercase()));
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        e.too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT);
    }
}

fn validate_owner_references(refs: &[Value], path: &str, e: &mut Errs) {
    let mut first_controller = String::new();
    for r in refs {
        let api_version = st(r, "apiVersion");
        let kind = st(r, "kind");
        let (group, version) = match api_version.matches('/').count() {
            0 => ("", api_version),
            1 => api_version.split_once('/').unwrap_or(("", "")),
            _ => ("", ""),
        };
        if version.is_empty() {
            e.invalid(
                &format!("{path}.apiVersion"),
                Bad::s(api_version),
                "version must not be empty",
            );
        }
        if kind.is_empty() {
            e.invalid(&format!("{path}.kind"), Bad::s(kind), "must not be empty");
        }
        if st(r, "name").is_empty() {
            e.invalid(&format!("{path}.name"), Bad::s(""), "must not be empty");
        }
        if st(r, "uid").is_empty() {
            e.invalid(&format!("{path}.uid"), Bad::s(""), "must not be empty");
        }
        if group.is_empty() && version == "v1" && kind == "Event" {
            e.invalid(
                path,
                Bad::Raw(r.to_string()),
                "/v1, Kind=Event is disallowed from being an owner",
            );
        }
        if fld(r, "controller").and_then(Value::as_bool) == Some(true) {
            let current = format!("{}/{}", kind, st(r, "name"));
            if first_controller.is_empty() {
                first_controller = current;
            } else {
                e.invalid(
                    path,
                    Bad::Raw(Value::Array(refs.to_vec()).to_string()),
                    &format!("Only one reference can have Controller set to true. Found \"true\" in references for {first_controller} and {current}"),
                );
            }
        }
    }
}

fn validate_finalizers(meta: &Value, e: &mut Errs, kube: bool) {
    let finalizers = arr(meta, "finalizers");
    let path = "metadata.finalizers";
    let mut orphan = false;
    let mut foreground = false;
    for f in finalizers {
        let f = f.as_str().unwrap_or("");
        e.invalid_each(path, f, is_qualified_name(f));
        orphan |= f == "orphan";
        foreground |= f == "foregroundDeletion";
    }
    if orphan && foreground {
        e.invalid(
            path,
            Bad::Raw(go_string_slice(fld(meta, "finalizers"))),
            "finalizer orphan and foregroundDeletion cannot be both set",
        );
    }
    if kube {
        for (i, f) in finalizers.iter().enumerate() {
            validate_kube_finalizer_name(f.as_str().unwrap_or(""), &format!("{path}[{i}]"), e);
        }
    }
}

/// The core check that an unqualified finalizer is a standard one.
pub(crate) fn validate_kube_finalizer_name(f: &str, path: &str, e: &mut Errs) {
    if !f.contains('/') && !STANDARD_FINALIZERS.contains(&f) {
        e.invalid(
            path,
            Bad::s(f),
            "name is neither a standard finalizer name nor is it fully qualified",
        );
    }
}

/// Namespace `spec.finalizers` entries: qualified names and standard-or-qualified.
pub(crate) fn validate_finalizer_name(f: &str, path: &str, e: &mut Errs) {
    e.invalid_each(path, f, is_qualified_name(f));
    validate_kube_finalizer_name(f, path, e);
}

fn validate_managed_fields(meta: &Value, e: &mut Errs) {
    for (i, m) in arr(meta, "managedFields").iter().enumerate() {
        let p = format!("metadata.managedFields[{i}]");
        let op = st(m, "operation");
        if op != "Apply" && op != "Update" {
            e.invalid(
                &format!("{p}.operation"),
                Bad::s(op),
                "must be `Apply` or `Update`",
            );
        }
        let ft = st(m, "fieldsType");
        if !ft.is_empty() && ft != "FieldsV1" {
            e.invalid(&format!("{p}.fieldsType"), Bad::s(ft), "must be `FieldsV1`");
        }
        let manager = st(m, "manager");
        if manager.len() > 128 {
            e.too_long(&format!("{p}.manager"), 128);
        }
        for (pos, c) in manager.char_indices() {
            if c.is_control() {
                e.invalid(
                    &format!("{p}.manager"),
                    Bad::s(manager),
                    &format!("invalid character U+{:04X} (at position {pos})", c as u32),
                );
            }
        }
        if st(m, "subresource").len() > 256 {
            e.too_long(&format!("{p}.subresource"), 256);
        }
    }
}

fn validate_common(meta: &Value, rules: MetaRules, e: &mut Errs) {
    let ns = st(meta, "namespace");
    if rules.namespaced {
        if ns.is_empty() {
            e.required("metadata.namespace", "");
        } else {
            e.invalid_each(
                "metadata.namespace",
                ns,
                NameRule::Dns1123Label.check(ns, false),
            );
        }
    } else if !ns.is_empty() {
        e.forbidden("metadata.namespace", "not allowed on this type");
    }
    e.nonnegative("metadata.generation", int(meta, "generation"));
    validate_labels(fld(meta, "labels"), "metadata.labels", e);
    validate_annotations(fld(meta, "annotations"), "metadata.annotations", e);
    validate_owner_references(arr(meta, "ownerReferences"), "metadata.ownerReferences", e);
    validate_finalizers(meta, e, rules.kube_finalizers);
    validate_managed_fields(meta, e);
}

/// `ValidateObjectMeta` for a new object (`obj` is the whole object).
pub(crate) fn validate_object_meta(object: &Value, rules: MetaRules, e: &mut Errs) {
    let meta = object
        .get("metadata")
        .filter(|m| m.is_object())
        .unwrap_or(&Value::Null);
    let generate_name = st(meta, "generateName");
    if !generate_name.is_empty() {
        e.invalid_each(
            "metadata.generateName",
            generate_name,
            rules.name.check(generate_name, true),
        );
    }
    let name = st(meta, "name");
    if name.is_empty() {
        e.required("metadata.name", "name or generateName is required");
    } else {
        e.invalid_each("metadata.name", name, rules.name.check(name, false));
    }
    validate_common(meta, rules, e);
}

/// `ValidateObjectMetaUpdate` (with the core finalizer-name check when `kube_finalizers`).
///
/// The `resourceVersion` "must be specified for an update" rule is left to the server, which
/// fills an unconditional update's resourceVersion before validating as Kubernetes does.
pub(crate) fn validate_object_meta_update(
    old: &Value,
    new: &Value,
    kube_finalizers: bool,
    e: &mut Errs,
) {
    let om = old
        .get("metadata")
        .filter(|m| m.is_object())
        .unwrap_or(&Value::Null);
    let nm = new
        .get("metadata")
        .filter(|m| m.is_object())
        .unwrap_or(&Value::Null);
    if fld(om, "deletionTimestamp").is_some() {
        let old_f: Vec<&str> = arr(om, "finalizers")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut extra: Vec<&str> = arr(nm, "finalizers")
            .iter()
            .filter_map(Value::as_str)
            .filter(|f| !old_f.contains(f))
            .collect();
        extra.sort_unstable();
        extra.dedup();
        if !extra.is_empty() {
            let list: Vec<String> = extra.iter().map(|f| super::go_quote(f)).collect();
            e.forbidden(
                "metadata.finalizers",
                &format!("no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}", list.join(", ")),
            );
        }
    }
    if let (Some(ng), Some(og)) = (int(nm, "generation"), int(om, "generation")) {
        if ng < og {
            e.invalid("metadata.generation", Bad::n(ng), "must not be decremented");
        }
    }
    for key in ["name", "namespace", "uid"] {
        let (n, o) = (st(nm, key), st(om, key));
        if n != o {
            e.invalid(&format!("metadata.{key}"), Bad::s(n), FIELD_IMMUTABLE);
        }
    }
    for key in ["creationTimestamp", "deletionTimestamp"] {
        let (n, o) = (fld(nm, key), fld(om, key));
        if n != o {
            let render = if key == "deletionTimestamp" && n.is_none() {
                Bad::Null
            } else {
                go_time(n)
            };
            e.invalid(&format!("metadata.{key}"), render, FIELD_IMMUTABLE);
        }
    }
    let (n, o) = (
        int(nm, "deletionGracePeriodSeconds"),
        int(om, "deletionGracePeriodSeconds"),
    );
    if n != o {
        e.invalid(
            "metadata.deletionGracePeriodSeconds",
            n.map(Bad::n).unwrap_or(Bad::Null),
            FIELD_IMMUTABLE,
        );
    }
    validate_labels(fld(nm, "labels"), "metadata.labels", e);
    validate_annotations(fld(nm, "annotations"), "metadata.annotations", e);
    validate_owner_references(arr(nm, "ownerReferences"), "metadata.ownerReferences", e);
    validate_managed_fields(nm, e);
    if kube_finalizers {
        for (i, f) in arr(nm, "finalizers").iter().enumerate() {
            validate_kube_finalizer_name(
                f.as_str().unwrap_or(""),
                &format!("metadata.finalizers[{i}]"),
                e,
            );
        }
    }
}

/// Embedded object metadata of templates (`ValidateTemplateObjectMeta`'s label/annotation part).
pub(crate) fn validate_template_labels_annotations(meta: &Value, path: &str, e: &mut Errs) {
    validate_labels(fld(meta, "labels"), &format!("{path}.labels"), e);
    validate_annotations(fld(meta, "annotations"), &format!("{path}.annotations"), e);
}

// ---------------------------------------------------------------------------------------------
// Label selectors.

/// `ValidateLabelSelector` (label values of `In`/`NotIn` checked strictly).
pub(crate) fn validate_label_selector(sel: Option<&Value>, path: &str, e: &mut Errs) {
    let Some(sel) = sel.filter(|s| s.is_object()) else {
        return;
    };
    validate_labels(fld(sel, "matchLabels"), &format!("{path}.matchLabels"), e);
    for (i, r) in arr(sel, "matchExpressions").iter().enumerate() {
        let p = format!("{path}.matchExpressions[{i}]");
        let values = arr(r, "values");
        match st(r, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    e.required(
                        &format!("{p}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    );
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    e.forbidden(
                        &format!("{p}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    );
                }
            }
            op => e.invalid(
                &format!("{p}.operator"),
                Bad::s(op),
                "not a valid selector operator",
            ),
        }
        let key = st(r, "key");
        e.invalid_each(&format!("{p}.key"), key, is_qualified_name(key));
        for (j, v) in values.iter().enumerate() {
            let v = v.as_str().unwrap_or("");
            e.invalid_each(&format!("{p}.values[{j}]"), v, is_valid_label_value(v));
        }
    }
}

/// What `metav1.LabelSelectorAsSelector` makes of a selector.
pub(crate) enum Selector {
    /// A nil selector: matches nothing and is not "empty".
    Nothing,
    /// `{}`: matches everything, `Empty()` is true.
    Everything,
    /// Requirements (key, operator, values).
    Reqs(Vec<(String, String, Vec<String>)>),
}

/// Converts a selector; `None` when it would not convert (bad operator, key or value).
pub(crate) fn as_selector(sel: Option<&Value>) -> Option<Selector> {
    let Some(sel) = sel.filter(|s| s.is_object()) else {
        return Some(Selector::Nothing);
    };
    let mut reqs = Vec::new();
    if let Some(m) = obj(sel, "matchLabels") {
        for (k, v) in m {
            let v = v.as_str().unwrap_or("").to_string();
            if !is_qualified_name(k).is_empty() || !is_valid_label_value(&v).is_empty() {
                return None;
            }
            reqs.push((k.clone(), "In".to_string(), vec![v]));
        }
    }
    for r in arr(sel, "matchExpressions") {
        let key = st(r, "key").to_string();
        let values: Vec<String> = arr(r, "values")
            .iter()
            .map(|v| v.as_str().unwrap_or("").to_string())
            .collect();
        let op = st(r, "operator").to_string();
        let ok = match op.as_str() {
            "In" | "NotIn" => !values.is_empty(),
            "Exists" | "DoesNotExist" => values.is_empty(),
            _ => false,
        };
        if !ok
            || !is_qualified_name(&key).is_empty()
            || values.iter().any(|v| !is_valid_label_value(v).is_empty())
        {
            return None;
        }
        reqs.push((key, op, values));
    }
    if reqs.is_empty() {
        Some(Selector::Everything)
    } else {
        Some(Selector::Reqs(reqs))
    }
}

impl Selector {
    /// `labels.Selector.Empty()`.
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Selector::Everything)
    }

    /// Whether the selector matches a label set.
    pub(crate) fn matches(&self, labels: Option<&Value>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        match self {
            Selector::Nothing => false,
            Selector::Everything => true,
            Selector::Reqs(reqs) => reqs.iter().all(|(k, op, vals)| match op.as_str() {
                "In" => get(k).is_some_and(|v| vals.iter().any(|x| x == v)),
                "NotIn" => get(k).is_none_or(|v| !vals.iter().any(|x| x == v)),
                "Exists" => get(k).is_some(),
                "DoesNotExist" => get(k).is_none(),
                _ => false,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta_errs(o: Value, rules: MetaRules) -> Vec<String> {
        let mut e = Errs::default();
        validate_object_meta(&o, rules, &mut e);
        e.list.iter().map(|c| c.error_string()).collect()
    }

    #[test]
    fn name_rules() {
        let r = MetaRules::core(true, NameRule::Dns1123Subdomain);
        assert_eq!(
            meta_errs(json!({"metadata": {"namespace": "default"}}), r),
            vec!["metadata.name: Required value: name or generateName is required"]
        );
        assert!(meta_errs(
            json!({"metadata": {"name": "a.b", "namespace": "default"}}),
            r
        )
        .is_empty());
        assert!(meta_errs(
            json!({"metadata": {"generateName": "web-", "name": "web-x1", "namespace": "d"}}),
            r
        )
        .is_empty());
        assert_eq!(
            meta_errs(json!({"metadata": {"name": "x"}}), r),
            vec!["metadata.namespace: Required value"]
        );
        let cluster = MetaRules::core(false, NameRule::Dns1123Label);
        assert_eq!(
            meta_errs(
                json!({"metadata": {"name": "a.b", "namespace": "x"}}),
                cluster
            ),
            vec![
                "metadata.name: Invalid value: \"a.b\": must not contain dots",
                "metadata.namespace: Forbidden: not allowed on this type"
            ]
        );
    }

    #[test]
    fn labels_annotations_finalizers_owners() {
        let r = MetaRules::core(true, NameRule::Dns1123Subdomain);
        let errs = meta_errs(
            json!({"metadata": {"name": "x", "namespace": "d",
                "labels": {"ok": "v", "bad key!": "v", "k": "-bad"},
                "annotations": {"Example.COM/Ok": "x", "/x": "y"},
                "finalizers": ["foo", "example.com/ok", "kubernetes"],
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "", "uid": "u"}]}}),
            r,
        );
        assert!(errs.iter().any(|m| m.starts_with(
            "metadata.labels: Invalid value: \"bad key!\": name part must consist of"
        )));
        assert!(errs.iter().any(|m| m.starts_with(
            "metadata.labels: Invalid value: \"-bad\": a valid label must be an empty string"
        )));
        assert!(errs.contains(
            &"metadata.annotations: Invalid value: \"/x\": prefix part must be non-empty"
                .to_string()
        ));
        assert!(errs.contains(&"metadata.finalizers[0]: Invalid value: \"foo\": name is neither a standard finalizer name nor is it fully qualified".to_string()));
        assert!(errs.contains(
            &"metadata.ownerReferences.name: Invalid value: \"\": must not be empty".to_string()
        ));
        assert_eq!(errs.len(), 5, "{errs:?}");
        let big = "x".repeat(300 * 1024);
        let errs = meta_errs(
            json!({"metadata": {"name": "x", "namespace": "d", "annotations": {"a": big}}}),
            r,
        );
        assert_eq!(
            errs,
            vec!["metadata.annotations: Too long: must have at most 262144 bytes"]
        );
    }

    #[test]
    fn update_immutables() {
        let old = json!({"metadata": {"name": "a", "namespace": "d", "uid": "1", "creationTimestamp": "2024-01-01T00:00:00Z"}});
        let new = json!({"metadata": {"name": "b", "namespace": "d", "uid": "2", "creationTimestamp": "2024-01-01T00:00:00Z"}});
        let mut e = Errs::default();
        validate_object_meta_update(&old, &new, true, &mut e);
        let msgs: Vec<String> = e.list.iter().map(|c| c.error_string()).collect();
        assert_eq!(
            msgs,
            vec![
                "metadata.name: Invalid value: \"b\": field is immutable",
                "metadata.uid: Invalid value: \"2\": field is immutable"
            ]
        );
    }

    #[test]
    fn selectors() {
        let s = as_selector(Some(
            &json!({"matchLabels": {"app": "x"}, "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]}),
        ));
        let Some(s) = s else { panic!("selector") };
        assert!(s.matches(Some(&json!({"app": "x"}))));
        assert!(!s.matches(Some(&json!({"app": "x", "tier": "db"}))));
        assert!(as_selector(Some(&json!({}))).is_some_and(|s| s.is_empty()));
        assert!(as_selector(None).is_some_and(|s| !s.is_empty() && !s.matches(Some(&json!({})))));
        assert!(as_selector(Some(
            &json!({"matchExpressions": [{"key": "a", "operator": "Bad"}]})
        ))
        .is_none());
        let mut e = Errs::default();
        validate_label_selector(
            Some(&json!({"matchExpressions": [{"key": "a", "operator": "In"}]})),
            "spec.selector",
            &mut e,
        );
        assert_eq!(e.list[0].error_string(), "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'");
    }
}
