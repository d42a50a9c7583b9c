//! Semantic validation of objects on create and update, reproducing Kubernetes v1.33's
//! `pkg/apis/*/validation` rules and their exact field paths and messages, plus the
//! `errors.NewInvalid` message built from them.
//!
//! Objects are `serde_json::Value`s in Kubernetes JSON, already defaulted (see `crate::defaults`).
//! Submodules: `names` (string formats), `meta` (ObjectMeta), `pod` (pod specs and pod updates),
//! `workloads` (apps and batch), `kinds` (the other core, coordination, events and review kinds),
//! `quantity` (resource quantities) and `cron` (CronJob schedules).

pub mod cron;
mod kinds;
mod meta;
pub mod names;
mod pod;
pub mod quantity;
mod workloads;

use crate::resources::Resource;
use serde_json::{Map, Value};

pub use names::{
    inclusive_range_error, is_config_map_key, is_dns1035_label, is_dns1123_label,
    is_dns1123_subdomain, is_env_var_name, is_http_header_name, is_qualified_name,
    is_relaxed_env_var_name, is_valid_label_value, is_valid_path_segment_name, is_valid_percent,
    is_valid_port_name, is_valid_port_num, max_len_error, regex_error, NameRule,
};
pub use pod::compute_qos_class;

/// One field problem, as a `metav1.StatusCause`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`, `FieldValueDuplicate`,
    /// `FieldValueForbidden`, `FieldValueTooLong`, `FieldValueTooMany`, `FieldValueNotFound`.
    pub reason: &'static str,
    /// The field path, e.g. `spec.containers[0].image`.
    pub field: String,
    /// The error body, e.g. `Required value` or `Invalid value: "Foo": ...`.
    pub message: String,
}

impl Cause {
    /// `field: message`, as `field.Error.Error()` prints it.
    pub fn error_string(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

/// Validates an object being created.
pub fn validate_create(resource: &Resource, obj: &Value) -> Vec<Cause> {
    let mut e = Errs::default();
    match (resource.group, resource.kind) {
        ("", "Pod") => pod::validate_pod_create(obj, &mut e),
        ("apps", _) | ("batch", _) => workloads::validate_create(resource.kind, obj, &mut e),
        _ => kinds::validate_create(resource, obj, &mut e),
    }
    e.list
}

/// Validates an update from `old` to `new`, including the immutability rules.
pub fn validate_update(resource: &Resource, old: &Value, new: &Value) -> Vec<Cause> {
    let mut e = Errs::default();
    match (resource.group, resource.kind) {
        ("", "Pod") => pod::validate_pod_update(old, new, &mut e),
        ("apps", _) | ("batch", _) => workloads::validate_update(resource.kind, old, new, &mut e),
        _ => kinds::validate_update(resource, old, new, &mut e),
    }
    e.list
}

/// Validates an update made through a subresource with the rules Kubernetes applies there:
/// `status` (the kind's status-update validation: metadata immutables plus status checks),
/// Pod `ephemeralcontainers` (existing ephemeral containers may not change) and Pod `resize`
/// (only cpu/memory resources change). Other subresources (`scale`, `finalize`, ...) get
/// [`validate_update`]'s rules.
pub fn validate_subresource_update(
    resource: &Resource,
    subresource: &str,
    old: &Value,
    new: &Value,
) -> Vec<Cause> {
    let mut e = Errs::default();
    match (resource.group, resource.kind, subresource) {
        ("", "Pod", "status") => pod::validate_pod_status_update(old, new, &mut e),
        ("", "Pod", "ephemeralcontainers") => pod::validate_pod_ephemeral_update(old, new, &mut e),
        ("", "Pod", "resize") => pod::validate_pod_resize(old, new, &mut e),
        ("apps", kind, "status") | ("batch", kind, "status") => {
            workloads::validate_status_update(kind, old, new, &mut e)
        }
        (_, _, "status") => kinds::validate_status_update(resource, old, new, &mut e),
        _ => return validate_update(resource, old, new),
    }
    e.list
}

/// The kind as `errors.NewInvalid` qualifies it: `Pod`, `Deployment.apps`, `Lease.coordination.k8s.io`.
pub fn qualified_kind(resource: &Resource) -> String {
    if resource.group.is_empty() {
        resource.kind.to_string()
    } else {
        format!("{}.{}", resource.kind, resource.group)
    }
}

/// The message of `errors.NewInvalid`: `Pod "x" is invalid: spec.containers[0].image: Required value`,
/// or with several distinct errors `Pod "x" is invalid: [e1, e2]` (duplicates dropped).
///
/// Kubernetes qualifies the kind with its group (`Deployment.apps "x" is invalid`): pass
/// [`qualified_kind`]; a bare kind of a served non-core resource (`Deployment`) is qualified here
/// from the resource table (a kind served in several groups is taken as the first, e.g. core Event).
pub fn invalid_message(kind: &str, name: &str, causes: &[Cause]) -> String {
    let kind = if kind.contains('.') {
        kind.to_string()
    } else {
        crate::resources::RESOURCES
            .iter()
            .find(|r| r.kind == kind)
            .map_or_else(|| kind.to_string(), qualified_kind)
    };
    let mut seen: Vec<String> = Vec::new();
    for c in causes {
        let s = c.error_string();
        if !seen.contains(&s) {
            seen.push(s);
        }
    }
    let quoted = go_quote(name);
    match seen.len() {
        0 => format!("{kind} {quoted} is invalid"),
        1 => format!("{kind} {quoted} is invalid: {}", seen[0]),
        _ => format!("{kind} {quoted} is invalid: [{}]", seen.join(", ")),
    }
}

// ---------------------------------------------------------------------------------------------
// Error list and bad-value rendering.

/// A bad value, rendered as `field.Error.ErrorBody` renders Go values.
#[derive(Clone, Debug)]
pub(crate) enum Bad {
    /// A Go string: printed with `%q`.
    Str(String),
    /// A number or bool: printed as is.
    Num(String),
    /// A nil pointer: printed as `"null"`.
    Null,
    /// Pre-rendered (`%#v`-style Go syntax or a Stringer's output).
    Raw(String),
}

impl Bad {
    pub(crate) fn s(v: &str) -> Bad {
        Bad::Str(v.to_string())
    }

    pub(crate) fn n(v: i64) -> Bad {
        Bad::Num(v.to_string())
    }

    /// From a JSON value: strings quoted, numbers and bools plain, null `"null"`, others as JSON.
    pub(crate) fn json(v: Option<&Value>) -> Bad {
        match v {
            None | Some(Value::Null) => Bad::Null,
            Some(Value::String(s)) => Bad::Str(s.clone()),
            Some(Value::Number(n)) => Bad::Num(n.to_string()),
            Some(Value::Bool(b)) => Bad::Num(b.to_string()),
            Some(other) => Bad::Raw(other.to_string()),
        }
    }

    fn render(&self) -> String {
        match self {
            Bad::Str(s) => go_quote(s),
            Bad::Num(s) | Bad::Raw(s) => s.clone(),
            Bad::Null => "\"null\"".to_string(),
        }
    }
}

/// An accumulating `field.ErrorList`.
#[derive(Default, Debug)]
pub(crate) struct Errs {
    pub(crate) list: Vec<Cause>,
}

fn with_detail(mut s: String, detail: &str) -> String {
    if !detail.is_empty() {
        s.push_str(": ");
        s.push_str(detail);
    }
    s
}

impl Errs {
    fn push(&mut self, reason: &'static str, field: &str, message: String) {
        self.list.push(Cause {
            reason,
            field: field.to_string(),
            message,
        });
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn required(&mut self, field: &str, detail: &str) {
        self.push(
            "FieldValueRequired",
            field,
            with_detail("Required value".into(), detail),
        );
    }

    pub(crate) fn forbidden(&mut self, field: &str, detail: &str) {
        self.push(
            "FieldValueForbidden",
            field,
            with_detail("Forbidden".into(), detail),
        );
    }

    pub(crate) fn invalid(&mut self, field: &str, value: Bad, detail: &str) {
        self.push(
            "FieldValueInvalid",
            field,
            with_detail(format!("Invalid value: {}", value.render()), detail),
        );
    }

    /// `Invalid value` with the value omitted (`field.OmitValueType`).
    pub(crate) fn invalid_omit(&mut self, field: &str, detail: &str) {
        self.push(
            "FieldValueInvalid",
            field,
            with_detail("Invalid value".into(), detail),
        );
    }

    pub(crate) fn not_supported(&mut self, field: &str, value: Bad, valid: &[&str]) {
        let detail = if valid.is_empty() {
            String::new()
        } else {
            let q: Vec<String> = valid.iter().map(|v| go_quote(v)).collect();
            format!("supported values: {}", q.join(", "))
        };
        self.push(
            "FieldValueNotSupported",
            field,
            with_detail(format!("Unsupported value: {}", value.render()), &detail),
        );
    }

    pub(crate) fn duplicate(&mut self, field: &str, value: Bad) {
        self.push(
            "FieldValueDuplicate",
            field,
            format!("Duplicate value: {}", value.render()),
        );
    }

    pub(crate) fn duplicate_detail(&mut self, field: &str, value: Bad, detail: &str) {
        self.push(
            "FieldValueDuplicate",
            field,
            with_detail(format!("Duplicate value: {}", value.render()), detail),
        );
    }

    pub(crate) fn not_found(&mut self, field: &str, value: Bad) {
        self.push(
            "FieldValueNotFound",
            field,
            format!("Not found: {}", value.render()),
        );
    }

    pub(crate) fn not_found_detail(&mut self, field: &str, value: Bad, detail: &str) {
        self.push(
            "FieldValueNotFound",
            field,
            with_detail(format!("Not found: {}", value.render()), detail),
        );
    }

    pub(crate) fn too_long(&mut self, field: &str, max: usize) {
        self.push(
            "FieldValueTooLong",
            field,
            format!("Too long: must have at most {max} bytes"),
        );
    }

    /// `TooLongMaxLength`: `Too long: may not be longer than N`.
    pub(crate) fn too_long_max_length(&mut self, field: &str, max: usize) {
        self.push(
            "FieldValueTooLong",
            field,
            format!("Too long: may not be longer than {max}"),
        );
    }

    pub(crate) fn too_many(&mut self, field: &str, actual: usize, max: usize) {
        self.push(
            "FieldValueTooMany",
            field,
            format!("Too many: {actual}: must have at most {max} items"),
        );
    }

    /// Invalid for each message (`for _, msg := range f(v) { Invalid(path, v, msg) }`).
    pub(crate) fn invalid_each(&mut self, field: &str, value: &str, msgs: Vec<String>) {
        for m in msgs {
            self.invalid(field, Bad::s(value), &m);
        }
    }

    /// `ValidateNonnegativeField`.
    pub(crate) fn nonnegative(&mut self, field: &str, value: Option<i64>) {
        if let Some(v) = value {
            if v < 0 {
                self.invalid(field, Bad::n(v), IS_NEGATIVE);
            }
        }
    }

    /// `ValidateImmutableField` on JSON values (semantic equality: null, `[]` and `{}` collapse).
    pub(crate) fn immutable(
        &mut self,
        field: &str,
        new: Option<&Value>,
        old: Option<&Value>,
        render: impl Fn(Option<&Value>) -> Bad,
    ) {
        if !semantic_eq(new, old) {
            self.invalid(field, render(new), FIELD_IMMUTABLE);
        }
    }
}

/// `must be greater than or equal to 0`.
pub(crate) const IS_NEGATIVE: &str = "must be greater than or equal to 0";
/// `field is immutable`.
pub(crate) const FIELD_IMMUTABLE: &str = "field is immutable";

// ---------------------------------------------------------------------------------------------
// JSON access helpers (absent and null are the same).

pub(crate) fn fld<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

pub(crate) fn st<'a>(v: &'a Value, key: &str) -> &'a str {
    fld(v, key).and_then(Value::as_str).unwrap_or("")
}

pub(crate) fn opt_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    fld(v, key).and_then(Value::as_str)
}

pub(crate) fn as_int(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
            .map(|f| f as i64)
    })
}

pub(crate) fn int(v: &Value, key: &str) -> Option<i64> {
    fld(v, key).and_then(as_int)
}

pub(crate) fn boolean(v: &Value, key: &str) -> Option<bool> {
    fld(v, key).and_then(Value::as_bool)
}

pub(crate) fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    fld(v, key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub(crate) fn obj<'a>(v: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    fld(v, key).and_then(Value::as_object)
}

/// A `map[string]string` field as (key, value) pairs in document order.
pub(crate) fn string_map<'a>(v: &'a Value, key: &str) -> Vec<(&'a str, &'a str)> {
    obj(v, key)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default()
}

static NULL: Value = Value::Null;

/// The field or JSON null (for passing "maybe absent" sub-objects around).
pub(crate) fn sub<'a>(v: &'a Value, key: &str) -> &'a Value {
    fld(v, key).unwrap_or(&NULL)
}

/// Drops nulls and empty arrays, which Kubernetes' semantic equality treats as unset.
pub(crate) fn normalized(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Array(a) => {
            if a.is_empty() {
                None
            } else {
                Some(Value::Array(
                    a.iter()
                        .map(|x| normalized(x).unwrap_or(Value::Null))
                        .collect(),
                ))
            }
        }
        Value::Object(m) => {
            // An object stays distinguishable from nil (a set struct pointer), even when empty.
            Some(Value::Object(
                m.iter()
                    .filter_map(|(k, x)| normalized(x).map(|n| (k.clone(), n)))
                    .collect(),
            ))
        }
        other => Some(other.clone()),
    }
}

/// Semantic equality of two optional JSON values (nil == empty list; `{}` kept).
pub(crate) fn semantic_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    let na = a.and_then(normalized);
    let nb = b.and_then(normalized);
    na == nb
}

// ---------------------------------------------------------------------------------------------
// Go value rendering.

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if (0x80..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `%#v` of a `map[string]string`: `map[string]string{"a":"b"}` (keys sorted), nil for absent.
pub(crate) fn go_string_map(m: Option<&Value>) -> String {
    match m.and_then(Value::as_object) {
        None => "map[string]string(nil)".to_string(),
        Some(m) => {
            let mut pairs: Vec<(&String, String)> = m
                .iter()
                .map(|(k, v)| {
                    (
                        k,
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
                .collect();
            format!("map[string]string{{{}}}", inner.join(", "))
        }
    }
}

/// `%#v` of a `[]string`.
pub(crate) fn go_string_slice(v: Option<&Value>) -> String {
    match v.and_then(Value::as_array) {
        None => "[]string(nil)".to_string(),
        Some(a) => {
            let inner: Vec<String> = a
                .iter()
                .map(|x| {
                    go_quote(
                        x.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| x.to_string())
                            .as_str(),
                    )
                })
                .collect();
            format!("[]string{{{}}}", inner.join(", "))
        }
    }
}

/// `%#v` of a `metav1.LabelSelector` (what `spec.selector` immutability errors print).
pub(crate) fn go_label_selector(sel: Option<&Value>) -> Bad {
    let Some(sel) = sel.filter(|s| s.is_object()) else {
        return Bad::Null;
    };
    let labels = go_string_map(fld(sel, "matchLabels"));
    let exprs = match fld(sel, "matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(a) => {
            let items: Vec<String> = a
                .iter()
                .map(|r| {
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        go_quote(st(r, "key")),
                        go_quote(st(r, "operator")),
                        go_string_slice(fld(r, "values"))
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    Bad::Raw(format!(
        "v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{exprs}}}"
    ))
}

/// `%#v` of an `intstr.IntOrString`.
pub(crate) fn go_int_or_string(v: Option<&Value>) -> Bad {
    match v {
        Some(Value::String(s)) => Bad::Raw(format!(
            "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
            go_quote(s)
        )),
        Some(x) => {
            let n = as_int(x).unwrap_or(0);
            Bad::Raw(format!(
                "intstr.IntOrString{{Type:0, IntVal:{n}, StrVal:\"\"}}"
            ))
        }
        None => Bad::Raw("intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}".to_string()),
    }
}

/// A `metav1.Time` printed by its Stringer: `2024-01-02 03:04:05 +0000 UTC`.
pub(crate) fn go_time(v: Option<&Value>) -> Bad {
    let s = v.and_then(Value::as_str).unwrap_or("");
    if s.is_empty() {
        return Bad::Raw("0001-01-01 00:00:00 +0000 UTC".to_string());
    }
    match s.strip_suffix('Z').and_then(|t| t.split_once('T')) {
        Some((date, time)) => Bad::Raw(format!("{date} {time} +0000 UTC")),
        None => Bad::Raw(s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;
    use serde_json::json;

    pub(crate) fn res(group: &str, plural: &str) -> &'static Resource {
        resources::RESOURCES
            .iter()
            .find(|r| r.group == group && r.plural == plural)
            .unwrap_or_else(|| panic!("no resource {group}/{plural}"))
    }

    #[test]
    fn invalid_message_forms() {
        let one = vec![Cause {
            reason: "FieldValueRequired",
            field: "spec.containers[0].image".into(),
            message: "Required value".into(),
        }];
        assert_eq!(
            invalid_message("Pod", "x", &one),
            "Pod \"x\" is invalid: spec.containers[0].image: Required value"
        );
        let mut two = one.clone();
        two.push(one[0].clone());
        assert_eq!(
            invalid_message("Pod", "x", &two),
            "Pod \"x\" is invalid: spec.containers[0].image: Required value"
        );
        two.push(Cause {
            reason: "FieldValueRequired",
            field: "spec.selector".into(),
            message: "Required value".into(),
        });
        assert_eq!(
            invalid_message("Deployment.apps", "d", &two),
            "Deployment.apps \"d\" is invalid: [spec.containers[0].image: Required value, spec.selector: Required value]"
        );
        assert_eq!(invalid_message("Pod", "x", &[]), "Pod \"x\" is invalid");
        assert_eq!(
            invalid_message("Deployment", "d", &[]),
            "Deployment.apps \"d\" is invalid"
        );
        assert_eq!(
            invalid_message("Lease", "l", &[]),
            "Lease.coordination.k8s.io \"l\" is invalid"
        );
        assert_eq!(
            invalid_message("Widget", "w", &[]),
            "Widget \"w\" is invalid"
        );
        assert_eq!(
            qualified_kind(res("apps", "deployments")),
            "Deployment.apps"
        );
        assert_eq!(qualified_kind(res("", "pods")), "Pod");
    }

    #[test]
    fn go_rendering() {
        assert_eq!(go_quote("a\"b\n"), "\"a\\\"b\\n\"");
        assert_eq!(
            go_string_map(Some(&json!({"b": "2", "a": "1"}))),
            "map[string]string{\"a\":\"1\", \"b\":\"2\"}"
        );
        assert_eq!(go_string_map(None), "map[string]string(nil)");
        assert_eq!(
            go_label_selector(Some(&json!({"matchLabels": {"app": "x"}}))).render(),
            "v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"x\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
        );
        assert_eq!(
            go_int_or_string(Some(&json!("x"))).render(),
            "intstr.IntOrString{Type:1, IntVal:0, StrVal:\"x\"}"
        );
        assert_eq!(
            go_time(Some(&json!("2024-01-02T03:04:05Z"))).render(),
            "2024-01-02 03:04:05 +0000 UTC"
        );
        assert_eq!(Bad::Null.render(), "\"null\"");
    }

    #[test]
    fn semantic_equality() {
        assert!(semantic_eq(
            Some(&json!({"a": [], "b": null})),
            Some(&json!({}))
        ));
        assert!(semantic_eq(None, Some(&json!([]))));
        assert!(!semantic_eq(Some(&json!({"a": 1})), Some(&json!({"a": 2}))));
    }

    fn pod_with(spec_extra: serde_json::Value) -> Value {
        let mut spec = json!({"containers": [{"name": "app", "image": "nginx", "imagePullPolicy": "Always",
            "terminationMessagePolicy": "File", "terminationMessagePath": "/dev/termination-log", "resources": {}}],
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "terminationGracePeriodSeconds": 30});
        if let (Some(m), Some(extra)) = (spec.as_object_mut(), spec_extra.as_object()) {
            m.extend(extra.clone());
        }
        json!({"metadata": {"name": "p", "namespace": "default", "uid": "u"}, "spec": spec,
               "status": {"phase": "Pending", "qosClass": "BestEffort"}})
    }

    #[test]
    fn subresource_updates() {
        let pods = res("", "pods");
        let old = pod_with(json!({}));
        let dbg = json!({"name": "debugger", "image": "busybox", "imagePullPolicy": "Always", "terminationMessagePolicy": "File",
            "targetContainerName": "app", "resources": {}});
        let new = pod_with(json!({"ephemeralContainers": [dbg.clone()]}));
        assert_eq!(
            validate_subresource_update(pods, "ephemeralcontainers", &old, &new),
            vec![]
        );
        // Through the main resource the same change is a forbidden pod spec change.
        let main = validate_update(pods, &old, &new);
        assert_eq!(main.len(), 1);
        assert!(main[0]
            .message
            .starts_with("Forbidden: pod updates may not change fields other than"));
        let mut changed = dbg.clone();
        changed["image"] = json!("alpine");
        changed["ports"] = json!([{"containerPort": 80, "protocol": "TCP"}]);
        let newer = pod_with(json!({"ephemeralContainers": [changed]}));
        let errs: Vec<String> =
            validate_subresource_update(pods, "ephemeralcontainers", &new, &newer)
                .iter()
                .map(Cause::error_string)
                .collect();
        assert_eq!(errs[0], "spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container");
        assert!(errs[1].starts_with("spec.ephemeralContainers: Forbidden: existing ephemeral containers \"debugger\" may not be changed\n"));
        let gone = pod_with(json!({}));
        let errs: Vec<String> =
            validate_subresource_update(pods, "ephemeralcontainers", &new, &gone)
                .iter()
                .map(Cause::error_string)
                .collect();
        assert_eq!(errs, vec!["spec.ephemeralContainers: Forbidden: existing ephemeral containers \"debugger\" may not be removed\n"]);

        let mut running = old.clone();
        running["status"] = json!({"phase": "Running", "qosClass": "BestEffort", "podIP": "10.0.0.3", "podIPs": [{"ip": "10.0.0.3"}]});
        assert_eq!(
            validate_subresource_update(pods, "status", &old, &running),
            vec![]
        );
        running["status"]["qosClass"] = json!("Burstable");
        let errs: Vec<String> = validate_subresource_update(pods, "status", &old, &running)
            .iter()
            .map(Cause::error_string)
            .collect();
        assert_eq!(
            errs,
            vec!["status.qosClass: Invalid value: \"Burstable\": field is immutable"]
        );

        let ns = res("", "namespaces");
        let old_ns = json!({"metadata": {"name": "dev"}, "status": {"phase": "Active"}});
        let bad_ns = json!({"metadata": {"name": "dev"}, "status": {"phase": "Terminating"}});
        let errs: Vec<String> = validate_subresource_update(ns, "status", &old_ns, &bad_ns)
            .iter()
            .map(Cause::error_string)
            .collect();
        assert_eq!(errs, vec!["status.Phase: Invalid value: \"Terminating\": may only be 'Active' if `deletionTimestamp` is empty"]);

        let deploy = res("apps", "deployments");
        let d_old = json!({"metadata": {"name": "d", "namespace": "x"}, "status": {"replicas": 1}});
        let d_new = json!({"metadata": {"name": "d", "namespace": "x"}, "status": {"replicas": 1, "readyReplicas": 2, "availableReplicas": -1}});
        let errs: Vec<String> = validate_subresource_update(deploy, "status", &d_old, &d_new)
            .iter()
            .map(Cause::error_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "status.availableReplicas: Invalid value: -1: must be greater than or equal to 0",
                "status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas",
            ]
        );
    }

    #[test]
    fn every_stored_resource_validates_an_empty_object_without_panicking() {
        for r in resources::RESOURCES {
            let _ = validate_create(r, &json!({}));
            let _ = validate_create(r, &json!({"metadata": "x", "spec": 5, "status": []}));
            let _ = validate_update(r, &json!({}), &json!({"spec": {"containers": "x"}}));
        }
    }
}
