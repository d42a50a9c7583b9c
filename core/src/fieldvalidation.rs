//! Server-side field validation (`?fieldValidation=Strict|Warn|Ignore`), driven by the schema.
//!
//! The kube-apiserver decodes request bodies with `sigs.k8s.io/json`'s strict mode, which reports,
//! in the order met, every field the Go type doesn't know and every key given twice, each with
//! its path (`spec.containers[0].bogusField`, `metadata.labels.app`). This module reproduces that
//! from the schema data:
//! - [`unknown_fields`] walks a decoded object (e.g. the result of a patch);
//! - [`duplicate_fields`] streams the raw JSON (serde_json keeps only the last duplicate);
//! - [`strict_violations`] does both in one streaming pass, in document order, exactly the list
//!   the apiserver reports;
//! - [`normalize`] canonicalizes what Kubernetes' decoders accept but typed structs don't
//!   (numbers at `Quantity` positions become strings);
//! - message helpers format the `Strict` error and the `Warn` warnings as kubectl prints them.
//!
//! Fields are known when the schema lists them under `properties`. Maps (`additionalProperties`)
//! accept any key; opaque values — `IntOrString`, `Quantity`, `RawExtension`, `FieldsV1`, free
//! objects without properties — accept anything and are not looked into, as their Go types
//! decode themselves. Top-level `apiVersion` and `kind` are always known.

use crate::schema::{self, Schema};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
/// The apiserver stops collecting strict errors after this many.
const MAX_VIOLATIONS: usize = 100;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum FieldValidationError {
    /// The named schema definition does not exist.
    #[error("unknown schema definition {0:?}")]
    UnknownDefinition(String),
    /// The request body is not valid JSON.
    #[error("invalid JSON: {0}")]
    InvalidJson(#[from] serde_json::Error),
}

/// One strict-decoding finding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Violation {
    /// A field the type doesn't have, by path.
    Unknown(String),
    /// A key given more than once in the same object, by path.
    Duplicate(String),
}

impl Violation {
    /// The field path.
    pub fn path(&self) -> &str {
        match self {
            Violation::Unknown(p) | Violation::Duplicate(p) => p,
        }
    }
}

impl fmt::Display for Violation {
    /// `unknown field "spec.x"` / `duplicate field "spec.replicas"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Unknown(p) => write!(f, "unknown field {}", go_quote(p)),
            Violation::Duplicate(p) => write!(f, "duplicate field {}", go_quote(p)),
        }
    }
}

/// Quotes like Go's `%q` (strconv.Quote) for the characters that can occur in field paths.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `unknown field "<path>"`: the warning text of `fieldValidation=Warn`.
pub fn unknown_field_message(path: &str) -> String {
    Violation::Unknown(path.to_string()).to_string()
}

/// `duplicate field "<path>"`.
pub fn duplicate_field_message(path: &str) -> String {
    Violation::Duplicate(path.to_string()).to_string()
}

/// `strict decoding error: unknown field "a", duplicate field "b"` (`fieldValidation=Strict`).
pub fn strict_error_message(violations: &[Violation]) -> String {
    let parts: Vec<String> = violations.iter().map(Violation::to_string).collect();
    format!("strict decoding error: {}", parts.join(", "))
}

/// The message of the 400 a create/update answers under `Strict`:
/// `Pod in version "v1" cannot be handled as a Pod: strict decoding error: ...`.
pub fn cannot_be_handled_message(kind: &str, version: &str, violations: &[Violation]) -> String {
    format!(
        "{kind} in version {} cannot be handled as a {kind}: {}",
        go_quote(version),
        strict_error_message(violations)
    )
}

/// The warning texts of `fieldValidation=Warn`, one per violation.
pub fn warnings(violations: &[Violation]) -> Vec<String> {
    violations.iter().map(Violation::to_string).collect()
}

/// A `Warning` response header value: `299 - "unknown field \"spec.x\""`.
pub fn warning_header_value(text: &str) -> String {
    format!("299 - {}", go_quote(text))
}

// ---------------------------------------------------------------------------------------------
// Schema shapes
// ---------------------------------------------------------------------------------------------

/// How a value at a schema position is decoded.
#[derive(Debug, Clone, Copy)]
enum Shape<'s> {
    /// A struct: only these properties are known.
    Struct(&'s Map<String, Value>),
    /// A map with values of this schema (`None`: anything).
    Map(Option<&'s Value>),
    /// A list of items of this schema (`None`: anything).
    Array(Option<&'s Value>),
    /// Decoded by its own type; not looked into.
    Opaque,
    /// No schema: look into everything for duplicate keys only.
    Untyped,
}

/// Whether following the `$ref` chain of `node` reaches `target`.
fn refers_to<'a>(s: &'a Schema, mut node: &'a Value, target: &str) -> bool {
    for _ in 0..16 {
        let name = schema::ref_name(node).or_else(|| {
            node.get("allOf")
                .and_then(Value::as_array)
                .filter(|a| a.len() == 1)
                .and_then(|a| schema::ref_name(&a[0]))
        });
        let Some(name) = name else { return false };
        if name == target {
            return true;
        }
        match s.definition(name) {
            Some(next) => node = next,
            None => return false,
        }
    }
    false
}

fn shape<'s>(s: &'s Schema, node: Option<&'s Value>) -> Shape<'s> {
    let Some(node) = node else {
        return Shape::Untyped;
    };
    if refers_to(s, node, INT_OR_STRING) || refers_to(s, node, QUANTITY) {
        return Shape::Opaque;
    }
    let r = s.resolve(node);
    if let Some(props) = r.get("properties").and_then(Value::as_object) {
        return Shape::Struct(props);
    }
    match r.get("additionalProperties") {
        Some(v @ Value::Object(_)) => return Shape::Map(Some(v)),
        Some(Value::Bool(true)) => return Shape::Map(None),
        _ => {}
    }
    if schema::types(r).contains(&"array") {
        return Shape::Array(r.get("items"));
    }
    Shape::Opaque
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Collected findings, deduplicated and capped like the apiserver's.
#[derive(Default)]
struct Findings {
    seen: HashSet<Violation>,
    list: Vec<Violation>,
}

impl Findings {
    fn add(&mut self, v: Violation) {
        if self.list.len() < MAX_VIOLATIONS && self.seen.insert(v.clone()) {
            self.list.push(v);
        }
    }
}

/// Whether a top-level key is always known (TypeMeta).
fn is_type_meta(path: &str, key: &str) -> bool {
    path.is_empty() && (key == "apiVersion" || key == "kind")
}

// ---------------------------------------------------------------------------------------------
// Unknown fields of a decoded value
// ---------------------------------------------------------------------------------------------

/// Paths of every field of `obj` the definition (`io.k8s.api.core.v1.Pod`) doesn't know, in the
/// object's order (`spec.containers[0].bogusField`). An unknown definition yields nothing.
pub fn unknown_fields(definition: &str, obj: &Value) -> Vec<String> {
    let s = schema::schema();
    let Some(def) = s.definition(definition) else {
        return Vec::new();
    };
    let mut findings = Findings::default();
    walk_unknown(s, Some(def), obj, "", &mut findings);
    findings
        .list
        .into_iter()
        .map(|v| v.path().to_string())
        .collect()
}

fn walk_unknown(s: &Schema, node: Option<&Value>, value: &Value, path: &str, out: &mut Findings) {
    match (shape(s, node), value) {
        (Shape::Struct(props), Value::Object(map)) => {
            for (key, v) in map {
                let p = child_path(path, key);
                match props.get(key) {
                    Some(prop) => walk_unknown(s, Some(prop), v, &p, out),
                    None if is_type_meta(path, key) => {}
                    None => out.add(Violation::Unknown(p)),
                }
            }
        }
        (Shape::Map(Some(values)), Value::Object(map)) => {
            for (key, v) in map {
                walk_unknown(s, Some(values), v, &child_path(path, key), out);
            }
        }
        (Shape::Array(items), Value::Array(list)) if items.is_some() => {
            for (i, v) in list.iter().enumerate() {
                walk_unknown(s, items, v, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming pass over the raw JSON (duplicates, and unknown fields in document order)
// ---------------------------------------------------------------------------------------------

struct Walk<'a, 's> {
    s: &'s Schema,
    shape: Shape<'s>,
    path: String,
    out: &'a RefCell<Findings>,
}

impl<'a, 's> Walk<'a, 's> {
    fn child(&self, node: Option<&'s Value>, path: String) -> Walk<'a, 's> {
        let shape = match self.shape {
            Shape::Untyped => Shape::Untyped,
            _ => match node {
                Some(_) => shape(self.s, node),
                None => Shape::Opaque,
            },
        };
        Walk {
            s: self.s,
            shape,
            path,
            out: self.out,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        match self.shape {
            // Opaque values are still parsed (to find the end) but not looked into.
            Shape::Opaque => deserializer.deserialize_ignored_any(IgnoredAny).map(|_| ()),
            _ => deserializer.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for Walk<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let items = match self.shape {
            Shape::Array(items) => items,
            Shape::Untyped => None,
            // A list where the type wants something else: a decode error, not ours to report.
            _ => {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                return Ok(());
            }
        };
        let mut i = 0usize;
        loop {
            let child = self.child(items, format!("{}[{i}]", self.path));
            if seq.next_element_seed(child)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if matches!(self.shape, Shape::Array(_)) {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = child_path(&self.path, &key);
            // A struct only tracks its own fields: a repeated unknown key is reported once, as
            // unknown (as Go's decoder does).
            let tracked = match self.shape {
                Shape::Struct(props) => props.contains_key(&key) || is_type_meta(&self.path, &key),
                _ => true,
            };
            if tracked && seen.contains(&key) {
                self.out
                    .borrow_mut()
                    .add(Violation::Duplicate(path.clone()));
            }
            let next = match self.shape {
                Shape::Struct(props) => match props.get(&key) {
                    Some(prop) => Some(self.child(Some(prop), path)),
                    None if is_type_meta(&self.path, &key) => None,
                    None => {
                        self.out.borrow_mut().add(Violation::Unknown(path));
                        None
                    }
                },
                Shape::Map(values) => Some(self.child(values, path)),
                Shape::Untyped => Some(self.child(None, path)),
                Shape::Array(_) | Shape::Opaque => None,
            };
            match next {
                Some(walk) => map.next_value_seed(walk)?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            seen.insert(key);
        }
        Ok(())
    }
}

fn stream(
    s: &Schema,
    shape: Shape<'_>,
    raw_json: &[u8],
) -> Result<Vec<Violation>, serde_json::Error> {
    let out = RefCell::new(Findings::default());
    let walk = Walk {
        s,
        shape,
        path: String::new(),
        out: &out,
    };
    let mut de = serde_json::Deserializer::from_slice(raw_json);
    walk.deserialize(&mut de)?;
    de.end()?;
    Ok(out.into_inner().list)
}

/// Paths of every key given twice in the same JSON object of `raw_json`, in document order
/// (`spec.replicas`, `metadata.labels.app`, `spec.containers[1].name`). Invalid JSON yields
/// the duplicates found before the error.
pub fn duplicate_fields(raw_json: &[u8]) -> Vec<String> {
    let out = RefCell::new(Findings::default());
    let walk = Walk {
        s: schema::schema(),
        shape: Shape::Untyped,
        path: String::new(),
        out: &out,
    };
    let mut de = serde_json::Deserializer::from_slice(raw_json);
    // A syntax error is reported by whoever decodes the body; keep what was found before it.
    let _ = walk.deserialize(&mut de);
    out.into_inner()
        .list
        .into_iter()
        .map(|v| v.path().to_string())
        .collect()
}

/// Unknown and duplicate fields of a request body against a definition, in one pass and in
/// document order — the list the apiserver's strict decoder reports.
pub fn strict_violations(
    definition: &str,
    raw_json: &[u8],
) -> Result<Vec<Violation>, FieldValidationError> {
    let s = schema::schema();
    let def = s
        .definition(definition)
        .ok_or_else(|| FieldValidationError::UnknownDefinition(definition.to_string()))?;
    Ok(stream(s, shape(s, Some(def)), raw_json)?)
}

// ---------------------------------------------------------------------------------------------
// Normalization
// ---------------------------------------------------------------------------------------------

/// Canonicalizes `obj` (of type `definition`) the way Kubernetes' decoders accept it before it is
/// decoded into typed structs: a JSON number at a `Quantity` position (`resources.limits.cpu: 1`,
/// `storage: 1.5`) becomes the string of that number (`"1"`, `"1.5"`). Unknown fields and
/// values of the wrong type are left alone.
pub fn normalize(definition: &str, obj: &mut Value) {
    let s = schema::schema();
    if let Some(def) = s.definition(definition) {
        normalize_node(s, def, obj);
    }
}

fn normalize_node(s: &Schema, node: &Value, value: &mut Value) {
    if refers_to(s, node, QUANTITY) {
        if let Value::Number(n) = value {
            *value = Value::String(number_text(n));
        }
        return;
    }
    match (shape(s, Some(node)), value) {
        (Shape::Struct(props), Value::Object(map)) => {
            for (key, v) in map.iter_mut() {
                if let Some(prop) = props.get(key) {
                    normalize_node(s, prop, v);
                }
            }
        }
        (Shape::Map(Some(values)), Value::Object(map)) => {
            for v in map.values_mut() {
                normalize_node(s, values, v);
            }
        }
        (Shape::Array(Some(items)), Value::Array(list)) => {
            for v in list.iter_mut() {
                normalize_node(s, items, v);
            }
        }
        _ => {}
    }
}

/// The decimal text of a JSON number: integers without a fraction (`1`, `2.0` → `"2"`), other
/// values in their shortest round-trip form (`1.5`, `0.25`).
fn number_text(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Some(f) => format!("{f}"),
        None => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const POD: &str = "io.k8s.api.core.v1.Pod";
    const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";

    fn pod_with(container_extra: Value) -> Value {
        let mut c = json!({"name": "main", "image": "nginx"});
        if let (Some(c), Value::Object(extra)) = (c.as_object_mut(), container_extra) {
            c.extend(extra);
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [c]}})
    }

    #[test]
    fn pod_bogus_container_field() {
        let pod = pod_with(json!({"bogusField": 1}));
        assert_eq!(
            unknown_fields(POD, &pod),
            vec!["spec.containers[0].bogusField"]
        );
        let raw = serde_json::to_vec(&pod).expect("json");
        let v = strict_violations(POD, &raw).expect("valid");
        assert_eq!(
            v,
            vec![Violation::Unknown("spec.containers[0].bogusField".into())]
        );
        assert_eq!(
            strict_error_message(&v),
            "strict decoding error: unknown field \"spec.containers[0].bogusField\""
        );
        assert_eq!(
            cannot_be_handled_message("Pod", "v1", &v),
            "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"spec.containers[0].bogusField\""
        );
        assert_eq!(
            warnings(&v),
            vec!["unknown field \"spec.containers[0].bogusField\""]
        );
        assert_eq!(
            warning_header_value(&warnings(&v)[0]),
            "299 - \"unknown field \\\"spec.containers[0].bogusField\\\"\""
        );
    }

    #[test]
    fn known_pod_is_clean() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"anything/goes": "x", "app": "demo"},
                         "annotations": {"a": "b"}, "creationTimestamp": null,
                         "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {"f:x": {}}}}]},
            "spec": {
                "containers": [{
                    "name": "main", "image": "nginx",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "resources": {"limits": {"cpu": 1, "memory": "1Gi"}},
                    "livenessProbe": {"httpGet": {"port": "http", "path": "/"}},
                    "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
                }],
                "nodeSelector": {"kubernetes.io/os": "linux"},
                "overhead": {"cpu": "10m"}
            },
            "status": {"phase": "Running"}
        });
        assert!(unknown_fields(POD, &pod).is_empty());
        let raw = serde_json::to_vec(&pod).expect("json");
        assert!(strict_violations(POD, &raw).expect("valid").is_empty());
    }

    #[test]
    fn deployment_bogus_field_deep_in_template() {
        let d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labelz": {"a": "b"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [
                        {"name": "a", "image": "x"},
                        {"name": "b", "image": "y", "securityContext": {"runAsUser": 1, "nope": true}}
                    ]}
                },
                "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}}
            }
        });
        assert_eq!(
            unknown_fields(DEPLOYMENT, &d),
            vec![
                "metadata.labelz",
                "spec.template.spec.containers[1].securityContext.nope"
            ]
        );
    }

    #[test]
    fn labels_and_opaque_values_accept_anything() {
        let d = json!({"metadata": {"name": "x", "labels": {"whatever": "1", "a.b/c": "2"}},
        "spec": {"template": {"spec": {"containers": [
            {"name": "c", "resources": {"limits": {"cpu": {"weird": 1}}},
             "ports": [{"containerPort": 1, "name": "p"}],
             "readinessProbe": {"tcpSocket": {"port": {"odd": 1}}}}
        ]}}}});
        assert!(unknown_fields(DEPLOYMENT, &d).is_empty());
        let cr = json!({"apiVersion": "apps/v1", "kind": "ControllerRevision",
                        "metadata": {"name": "r"}, "revision": 1, "data": {"any": {"thing": [1]}}});
        assert!(unknown_fields("io.k8s.api.apps.v1.ControllerRevision", &cr).is_empty());
        // apiVersion/kind are known even where the type has no TypeMeta.
        let spec = json!({"apiVersion": "v1", "kind": "x", "containers": [], "bogus": 1});
        assert_eq!(
            unknown_fields("io.k8s.api.core.v1.PodSpec", &spec),
            vec!["bogus"]
        );
        assert!(unknown_fields("no.such.Type", &spec).is_empty());
    }

    #[test]
    fn duplicate_key_detection() {
        let raw = br#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a","labels":{"app":"x","app":"y"}},
            "spec":{"replicas":2,"replicas":3,"template":{"spec":{"containers":[{"name":"c","image":"i","image":"j"}]}},
            "unknownField":"foo"}}"#;
        assert_eq!(
            duplicate_fields(raw),
            vec![
                "metadata.labels.app",
                "spec.replicas",
                "spec.template.spec.containers[0].image"
            ]
        );
        let v = strict_violations(DEPLOYMENT, raw).expect("valid");
        assert_eq!(
            v,
            vec![
                Violation::Duplicate("metadata.labels.app".into()),
                Violation::Duplicate("spec.replicas".into()),
                Violation::Duplicate("spec.template.spec.containers[0].image".into()),
                Violation::Unknown("spec.unknownField".into()),
            ]
        );
        assert_eq!(
            strict_error_message(&v[1..]),
            "strict decoding error: duplicate field \"spec.replicas\", duplicate field \"spec.template.spec.containers[0].image\", unknown field \"spec.unknownField\""
        );
        // A key repeated three times is reported once; top-level duplicates have bare names.
        assert_eq!(
            duplicate_fields(br#"{"a":1,"a":2,"a":3,"b":[{"x":1,"x":2}]}"#),
            vec!["a", "b[0].x"]
        );
        assert!(duplicate_fields(br#"{"a":{"b":1},"c":{"b":1}}"#).is_empty());
        assert!(duplicate_fields(b"[1,2,3]").is_empty());
        assert_eq!(duplicate_fields(br#"{"a":1,"a":2,"#), vec!["a"]);
    }

    #[test]
    fn strict_pass_does_not_look_into_unknown_or_opaque_values() {
        let raw = br#"{"apiVersion":"apps/v1","kind":"ControllerRevision","metadata":{"name":"r"},"revision":1,
            "data":{"x":1,"x":2},"extra":{"y":1,"y":2},"extra":3}"#;
        let v = strict_violations("io.k8s.api.apps.v1.ControllerRevision", raw).expect("valid");
        assert_eq!(v, vec![Violation::Unknown("extra".into())]);
    }

    #[test]
    fn strict_pass_errors() {
        assert!(matches!(
            strict_violations(POD, b"{\"spec\":"),
            Err(FieldValidationError::InvalidJson(_))
        ));
        assert!(matches!(
            strict_violations(POD, b"{} {}"),
            Err(FieldValidationError::InvalidJson(_))
        ));
        assert!(matches!(
            strict_violations("nope", b"{}"),
            Err(FieldValidationError::UnknownDefinition(_))
        ));
    }

    #[test]
    fn quantity_normalization() {
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"n": "1"}},
            "spec": {
                "containers": [{"name": "c", "image": "i",
                    "resources": {"limits": {"cpu": 1, "memory": "1Gi"}, "requests": {"cpu": 0.5, "storage": 1.5}},
                    "ports": [{"containerPort": 80}]}],
                "overhead": {"cpu": 2.0},
                "volumes": [{"name": "v", "emptyDir": {"sizeLimit": 1024}}]
            }
        });
        normalize(POD, &mut pod);
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["resources"]["limits"]["cpu"], "1");
        assert_eq!(c["resources"]["limits"]["memory"], "1Gi");
        assert_eq!(c["resources"]["requests"]["cpu"], "0.5");
        assert_eq!(c["resources"]["requests"]["storage"], "1.5");
        assert_eq!(c["ports"][0]["containerPort"], 80);
        assert_eq!(pod["spec"]["overhead"]["cpu"], "2");
        assert_eq!(pod["spec"]["volumes"][0]["emptyDir"]["sizeLimit"], "1024");

        let mut pvc = json!({"spec": {"resources": {"requests": {"storage": 10}}}});
        normalize("io.k8s.api.core.v1.PersistentVolumeClaim", &mut pvc);
        assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "10");

        let mut d = json!({"spec": {"template": {"spec": {"containers": [{"resources": {"limits": {"cpu": 0.25}}}]}}}});
        normalize(DEPLOYMENT, &mut d);
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"],
            "0.25"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(go_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(unknown_field_message("x"), "unknown field \"x\"");
        assert_eq!(duplicate_field_message("y"), "duplicate field \"y\"");
    }
}
