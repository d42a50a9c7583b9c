//! Strategic merge patch, driven by the schema's `x-kubernetes-patch-strategy` and
//! `x-kubernetes-patch-merge-key` extensions (the semantics of
//! `k8s.io/apimachinery/pkg/util/strategicpatch`, server side):
//!
//! - maps merge recursively, `null` deletes a key;
//! - lists with strategy `merge` and a merge key merge element by element on that key; list
//!   elements `{"$patch": "delete", <key>: v}` remove, an element `{"$patch": "replace"}` makes
//!   the rest of the patch list replace the whole list;
//! - lists of scalars with strategy `merge` form a union; `$deleteFromPrimitiveList/<field>`
//!   removes values;
//! - `$setElementOrder/<field>` orders the merged list; without it, patch elements keep their
//!   patch order and server-only elements are interleaved by their server order (upstream's
//!   `normalizeElementOrder`, which puts brand-new elements before the server's);
//! - `$patch: replace` / `$patch: delete` on a map replace / delete it; `$retainKeys` drops the
//!   keys it doesn't list;
//! - other lists (and anything the schema doesn't know) are replaced, as in JSON merge patch.
//!
//! Directives never remain in the result: values the patch introduces are themselves applied to
//! an empty value, which strips (and honours) their directives.

use super::{json_type_name, PatchError};
use crate::schema::{self, schema};
use serde_json::{Map, Value};
use std::collections::HashSet;

const DIRECTIVE_MARKER: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

type Object = Map<String, Value>;
/// An unresolved schema node (property, items or map-values node), `None` where unknown.
type Node = Option<&'static Value>;

/// The patch metadata of one field, read from its unresolved schema node.
#[derive(Clone, Copy)]
struct Field {
    node: Node,
    merge: bool,
    replace: bool,
    merge_key: Option<&'static str>,
}

impl Field {
    fn of(node: Node) -> Field {
        let strategies = node.map(schema::patch_strategies).unwrap_or_default();
        Field {
            node,
            merge: strategies.contains(&"merge"),
            replace: strategies.contains(&"replace"),
            merge_key: node.and_then(schema::patch_merge_key),
        }
    }

    /// The metadata of this list's elements.
    fn items(&self) -> Field {
        Field::of(self.node.and_then(|n| schema().items(n)))
    }
}

/// The schema node of `key` inside an object node: a declared property, else the map values.
fn child(node: Node, key: &str) -> Node {
    let node = node?;
    let s = schema();
    s.property(node, key).or_else(|| s.map_values(node))
}

/// Applies `patch` to `doc`, an object of schema definition `definition`.
pub(super) fn apply(doc: &Value, patch: &Value, definition: &str) -> Result<Value, PatchError> {
    let Value::Object(original) = doc else {
        return Err(PatchError::InvalidDocument);
    };
    let Value::Object(patch) = patch else {
        return Err(PatchError::PatchNotAnObject {
            found: json_type_name(patch),
        });
    };
    let node = schema().definition(definition);
    let merged = merge_map(original.clone(), patch, node)?;
    Ok(Value::Object(merged.unwrap_or_default()))
}

/// Merges `patch` into `original`. `None` means the map is deleted (`$patch: delete`).
fn merge_map(
    mut original: Object,
    patch: &Object,
    node: Node,
) -> Result<Option<Object>, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE_MARKER) {
        return match directive.as_str() {
            Some("replace") => {
                let rest: Object = patch
                    .iter()
                    .filter(|(k, _)| k.as_str() != DIRECTIVE_MARKER)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                merge_map(Object::new(), &rest, node)
            }
            Some("delete") => Ok(None),
            _ => Err(unknown_directive(directive, patch)),
        };
    }

    if let Some(retain) = patch.get(RETAIN_KEYS) {
        apply_retain_keys(&mut original, retain, patch)?;
    }

    let ordered = apply_set_element_orders(&mut original, patch, node)?;

    let mut deletions: Vec<(&str, &Vec<Value>)> = Vec::new();
    for (key, value) in patch {
        if key == RETAIN_KEYS
            || key.starts_with(SET_ELEMENT_ORDER)
            || ordered.contains(key.as_str())
        {
            continue;
        }
        if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            let field = extract_key(key, DELETE_FROM_PRIMITIVE_LIST)
                .ok_or(PatchError::BadPrimitiveListFormat)?;
            let values = value.as_array().ok_or(PatchError::BadPrimitiveListFormat)?;
            deletions.push((field, values));
            continue;
        }
        if value.is_null() {
            original.shift_remove(key);
            continue;
        }
        let field = Field::of(child(node, key));
        let merged = match (original.get_mut(key).map(Value::take), value) {
            (Some(Value::Object(o)), Value::Object(p)) if !field.replace => {
                merge_map(o, p, field.node)?.map(Value::Object)
            }
            (Some(Value::Array(o)), Value::Array(p)) => {
                Some(Value::Array(merge_list(o, p, &field)?))
            }
            (_, v) => fresh(v, &field)?,
        };
        match merged {
            Some(v) => {
                original.insert(key.clone(), v);
            }
            None => {
                original.shift_remove(key);
            }
        }
    }

    for (field, values) in deletions {
        if let Some(Value::Array(items)) = original.get_mut(field) {
            items.retain(|item| !values.iter().any(|d| values_equal(d, item)));
        }
    }
    Ok(Some(original))
}

/// A patch value applied where there is nothing: its directives are honoured and stripped.
fn fresh(value: &Value, field: &Field) -> Result<Option<Value>, PatchError> {
    Ok(match value {
        Value::Object(m) => merge_map(Object::new(), m, field.node)?.map(Value::Object),
        Value::Array(a) => Some(Value::Array(clean_list(a, field)?)),
        other => Some(other.clone()),
    })
}

/// A patch list taken as it is (replacing, or where the object had none): directive elements
/// of merge lists are dropped, and each element is cleaned.
fn clean_list(patch: &[Value], field: &Field) -> Result<Vec<Value>, PatchError> {
    let item = field.items();
    let mut out = Vec::with_capacity(patch.len());
    for element in patch {
        if field.merge {
            if let Some((directive, m)) = element
                .as_object()
                .and_then(|m| m.get(DIRECTIVE_MARKER).map(|d| (d, m)))
            {
                match directive.as_str() {
                    Some("delete") | Some("replace") => continue,
                    Some("merge") => return Err(PatchError::MergeListDirective),
                    _ => return Err(unknown_directive(directive, m)),
                }
            }
        }
        if let Some(v) = fresh(element, &item)? {
            out.push(v);
        }
    }
    Ok(out)
}

/// Merges a patch list into the object's list according to the field's strategy.
fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    field: &Field,
) -> Result<Vec<Value>, PatchError> {
    if !field.merge {
        return clean_list(patch, field);
    }
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    match element_kind(&original, patch)? {
        Kind::Scalar => merge_scalar_list(original, patch),
        Kind::Map => {
            let merge_key = field
                .merge_key
                .ok_or(PatchError::MissingMergeKeyDeclaration)?;
            merge_map_list(original, patch, merge_key, &field.items())
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Map,
    Scalar,
}

/// The one kind of element of a merge list (lists of lists and mixed lists are errors).
fn element_kind(original: &[Value], patch: &[Value]) -> Result<Kind, PatchError> {
    let mut kind = None;
    for v in original.iter().chain(patch) {
        let k = match v {
            Value::Object(_) => Kind::Map,
            Value::Array(_) => return Err(PatchError::ListOfLists),
            _ => Kind::Scalar,
        };
        match kind {
            None => kind = Some(k),
            Some(prev) if prev != k => {
                return Err(PatchError::MixedListElements(format!(
                    "[{} {}]",
                    go_fmt_list(original),
                    go_fmt_list(patch)
                )))
            }
            Some(_) => {}
        }
    }
    Ok(kind.unwrap_or(Kind::Scalar))
}

/// Union of two scalar lists without duplicates, then ordered like upstream.
fn merge_scalar_list(original: Vec<Value>, patch: &[Value]) -> Result<Vec<Value>, PatchError> {
    let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
    for v in original.iter().chain(patch) {
        if !merged.iter().any(|m| values_equal(m, v)) {
            merged.push(v.clone());
        }
    }
    let patch_keys = keys(patch, None)?;
    let server_keys = keys(&original, None)?;
    normalize_order(merged, &patch_keys, &server_keys, None)
}

/// Merges a list of maps on `merge_key`.
fn merge_map_list(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    item: &Field,
) -> Result<Vec<Value>, PatchError> {
    let mut plain: Vec<&Value> = Vec::with_capacity(patch.len());
    let mut replace = false;
    for element in patch {
        let m = as_map(element)?;
        let Some(directive) = m.get(DIRECTIVE_MARKER) else {
            plain.push(element);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let value = m.get(merge_key).ok_or_else(|| no_merge_key(m, merge_key))?;
                original.retain(|o| !merge_key_matches(o, merge_key, value));
            }
            Some("replace") => replace = true,
            Some("merge") => return Err(PatchError::MergeListDirective),
            _ => return Err(unknown_directive(directive, m)),
        }
    }

    if replace {
        let mut out = Vec::with_capacity(plain.len());
        for element in plain {
            let m = as_map(element)?;
            if !m.contains_key(merge_key) {
                return Err(no_merge_key(m, merge_key));
            }
            if let Some(v) = fresh(element, item)? {
                out.push(v);
            }
        }
        return Ok(out);
    }

    let server_keys: Vec<Value> = keys(&original, Some(merge_key))?
        .into_iter()
        .cloned()
        .collect();
    let mut merged = original;
    for element in &plain {
        let m = as_map(element)?;
        let value = m.get(merge_key).ok_or_else(|| no_merge_key(m, merge_key))?;
        match merged
            .iter()
            .position(|o| merge_key_matches(o, merge_key, value))
        {
            Some(i) => {
                let existing = match merged[i].take() {
                    Value::Object(o) => o,
                    _ => Object::new(),
                };
                match merge_map(existing, m, item.node)? {
                    Some(o) => merged[i] = Value::Object(o),
                    None => {
                        merged.remove(i);
                    }
                }
            }
            None => {
                if let Some(v) = fresh(element, item)? {
                    merged.push(v);
                }
            }
        }
    }
    let patch_keys = keys(plain.iter().copied(), Some(merge_key))?;
    let server_keys: Vec<&Value> = server_keys.iter().collect();
    normalize_order(merged, &patch_keys, &server_keys, Some(merge_key))
}

/// Processes every `$setElementOrder/<field>` of `patch`: merges that field's patch list (if
/// any) into `original` and orders the result. Returns the fields so handled.
fn apply_set_element_orders<'p>(
    original: &mut Object,
    patch: &'p Object,
    node: Node,
) -> Result<HashSet<&'p str>, PatchError> {
    let mut handled = HashSet::new();
    for (key, order) in patch {
        if !key.starts_with(SET_ELEMENT_ORDER) {
            continue;
        }
        let name =
            extract_key(key, SET_ELEMENT_ORDER).ok_or(PatchError::BadSetElementOrderFormat)?;
        let order = order
            .as_array()
            .ok_or(PatchError::BadSetElementOrderFormat)?;
        let field = Field::of(child(node, name));
        let merge_key = field.merge_key;

        let patch_list = match patch.get(name) {
            None => None,
            Some(Value::Array(a)) => Some(a.as_slice()),
            // An explicit null deletes the list; the main loop does that.
            Some(Value::Null) => continue,
            Some(other) => return Err(wrong_type("[]interface {}", other)),
        };
        let original_list = match original.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => return Err(wrong_type("[]interface {}", other)),
        };
        validate_set_order(patch_list.unwrap_or_default(), order, merge_key)?;

        let server_keys: Vec<Value> = match &original_list {
            Some(list) => keys(list, merge_key)?.into_iter().cloned().collect(),
            None => Vec::new(),
        };
        let merged = match (original_list, patch_list) {
            (Some(o), None) => o,
            (None, Some(p)) => clean_list(p, &field)?,
            (Some(o), Some(p)) => merge_list(o, p, &field)?,
            (None, None) => continue,
        };
        let order_keys = keys(order, merge_key)?;
        let server_keys: Vec<&Value> = server_keys.iter().collect();
        let ordered = normalize_order(merged, &order_keys, &server_keys, merge_key)?;
        original.insert(name.to_string(), Value::Array(ordered));
        handled.insert(name);
    }
    Ok(handled)
}

/// The patch list must be a subsequence of its `$setElementOrder` list (deletions and other
/// directive elements aside).
fn validate_set_order(
    patch: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<(), PatchError> {
    if order.is_empty() || patch.is_empty() {
        return Ok(());
    }
    let mut items: Vec<&Value> = Vec::with_capacity(patch.len());
    for element in patch {
        if merge_key.is_some()
            && as_map(element)?
                .get(DIRECTIVE_MARKER)
                .and_then(Value::as_str)
                == Some("delete")
        {
            continue;
        }
        items.push(element);
    }
    let has_directive = |v: &Value| {
        v.as_object()
            .is_some_and(|m| m.contains_key(DIRECTIVE_MARKER))
    };
    let (mut p, mut o) = (0, 0);
    while p < items.len() && o < order.len() {
        if has_directive(items[p]) {
            p += 1;
            continue;
        }
        if merge_key_value_equal(items[p], &order[o], merge_key)? {
            p += 1;
        }
        o += 1;
    }
    while p < items.len() && has_directive(items[p]) {
        p += 1;
    }
    if p < items.len() {
        return Err(PatchError::SetElementOrderMismatch {
            patch: go_fmt_list(patch),
            order: go_fmt_list(order),
        });
    }
    Ok(())
}

/// Upstream's partition + `normalizeElementOrder`: elements whose key is in `patch_keys` take
/// that order, the others ("server-only") take their order in `server_keys`; then the two runs
/// are interleaved: a server-only element goes first only when both it and the next patch
/// element are in the server list and it came earlier there.
fn normalize_order(
    merged: Vec<Value>,
    patch_keys: &[&Value],
    server_keys: &[&Value],
    merge_key: Option<&str>,
) -> Result<Vec<Value>, PatchError> {
    let total = merged.len();
    let mut patch_items: Vec<(usize, Option<usize>, Value)> = Vec::new();
    let mut server_only: Vec<(Option<usize>, Value)> = Vec::new();
    for item in merged {
        let (in_patch, in_server) = {
            let key = key_of(&item, merge_key)?;
            (position(patch_keys, key), position(server_keys, key))
        };
        match in_patch {
            Some(p) => patch_items.push((p, in_server, item)),
            None => server_only.push((in_server, item)),
        }
    }
    patch_items.sort_by_key(|(p, _, _)| *p);
    server_only.sort_by_key(|(s, _)| s.unwrap_or(usize::MAX));

    let mut out = Vec::with_capacity(total);
    let mut left = server_only.into_iter().peekable();
    let mut right = patch_items.into_iter().map(|(_, s, v)| (s, v)).peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((l, _)), Some((r, _))) => matches!((l, r), (Some(l), Some(r)) if l < r),
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some((_, v)) = next {
            out.push(v);
        }
    }
    Ok(out)
}

/// `$retainKeys`: every non-null field of the patch must be listed; unlisted fields of the
/// object are dropped.
fn apply_retain_keys(
    original: &mut Object,
    retain: &Value,
    patch: &Object,
) -> Result<(), PatchError> {
    let list = retain.as_array().ok_or(PatchError::BadRetainKeysFormat)?;
    let listed = |k: &str| list.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch {
        if v.is_null()
            || k == RETAIN_KEYS
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !listed(k) {
            return Err(PatchError::BadRetainKeysFormat);
        }
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// `"$setElementOrder/containers"` → `"containers"`.
fn extract_key<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    key.strip_prefix(prefix)?.strip_prefix('/')
}

fn as_map(v: &Value) -> Result<&Object, PatchError> {
    v.as_object()
        .ok_or_else(|| wrong_type("map[string]interface {}", v))
}

/// The ordering key of a list element: its merge-key value, or the element itself.
fn key_of<'a>(v: &'a Value, merge_key: Option<&str>) -> Result<&'a Value, PatchError> {
    match merge_key {
        None => Ok(v),
        Some(k) => {
            let m = as_map(v)?;
            m.get(k).ok_or_else(|| no_merge_key(m, k))
        }
    }
}

fn keys<'a>(
    items: impl IntoIterator<Item = &'a Value>,
    merge_key: Option<&str>,
) -> Result<Vec<&'a Value>, PatchError> {
    items.into_iter().map(|v| key_of(v, merge_key)).collect()
}

fn position(keys: &[&Value], key: &Value) -> Option<usize> {
    keys.iter().position(|k| values_equal(k, key))
}

fn merge_key_matches(element: &Value, merge_key: &str, value: &Value) -> bool {
    element
        .as_object()
        .and_then(|m| m.get(merge_key))
        .is_some_and(|v| values_equal(v, value))
}

fn merge_key_value_equal(
    a: &Value,
    b: &Value,
    merge_key: Option<&str>,
) -> Result<bool, PatchError> {
    Ok(values_equal(key_of(a, merge_key)?, key_of(b, merge_key)?))
}

/// JSON equality where `80` and `80.0` are the same number (Go decodes both to float64).
fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || matches!((x.as_f64(), y.as_f64()), (Some(p), Some(q)) if p == q)
        }
        _ => a == b,
    }
}

fn no_merge_key(m: &Object, key: &str) -> PatchError {
    PatchError::NoMergeKey {
        map: go_fmt_map(m),
        key: key.to_string(),
    }
}

fn unknown_directive(directive: &Value, m: &Object) -> PatchError {
    PatchError::UnknownDirective {
        directive: go_fmt(directive),
        map: go_fmt_map(m),
    }
}

fn wrong_type(expected: &'static str, actual: &Value) -> PatchError {
    PatchError::WrongType {
        expected,
        actual: go_type_name(actual),
    }
}

fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// A value as Go's `%v` prints decoded JSON (`map[k:v ...]` with sorted keys, `[a b]`).
fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        // Go prints whole float64s without a fraction.
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(a) => go_fmt_list(a),
        Value::Object(m) => go_fmt_map(m),
    }
}

fn go_fmt_list(items: &[Value]) -> String {
    let parts: Vec<String> = items.iter().map(go_fmt).collect();
    format!("[{}]", parts.join(" "))
}

fn go_fmt_map(m: &Object) -> String {
    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let parts: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{k}:{}", go_fmt(v)))
        .collect();
    format!("map[{}]", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::super::apply_strategic_merge_patch as smp;
    use super::*;
    use serde_json::json;

    const POD: &str = "io.k8s.api.core.v1.Pod";
    const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";

    fn pod() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "labels": {"app": "web"},
                "finalizers": ["a.example.com/one", "b.example.com/two"]
            },
            "spec": {
                "containers": [
                    {
                        "name": "main",
                        "image": "nginx:1.25",
                        "args": ["--a", "--b"],
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
                    },
                    {"name": "sidecar", "image": "busybox"}
                ],
                "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "x", "effect": "NoSchedule"}],
                "volumes": [{"name": "data", "emptyDir": {}}]
            },
            "status": {
                "phase": "Running",
                "conditions": [
                    {"type": "Ready", "status": "False"},
                    {"type": "PodScheduled", "status": "True"}
                ]
            }
        })
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "patch-demo-ctr", "image": "nginx"}]}
                }
            }
        })
    }

    fn names(list: &Value) -> Vec<String> {
        list.as_array()
            .map(|a| {
                a.iter()
                    .map(|c| c["name"].as_str().unwrap_or("?").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// No `$…` directive key anywhere.
    fn assert_no_directives(v: &Value) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    assert!(!k.starts_with('$'), "directive {k} left in output");
                    assert_no_directives(v);
                }
            }
            Value::Array(a) => a.iter().for_each(assert_no_directives),
            _ => {}
        }
    }

    #[test]
    fn kubectl_apply_body_on_pod_with_two_containers() {
        let patch = json!({
            "metadata": {
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"v1\"}\n"},
                "labels": {"tier": "web"}
            },
            "spec": {
                "$setElementOrder/containers": [{"name": "main"}],
                "containers": [{"image": "nginx:1.26", "name": "main"}]
            }
        });
        let out = smp(&pod(), &patch, POD).expect("applies");
        assert_no_directives(&out);
        assert_eq!(
            out["metadata"]["labels"],
            json!({"app": "web", "tier": "web"})
        );
        assert_eq!(
            out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
            "{\"apiVersion\":\"v1\"}\n"
        );
        let containers = &out["spec"]["containers"];
        assert_eq!(names(containers), ["main", "sidecar"]);
        assert_eq!(containers[0]["image"], "nginx:1.26");
        // The rest of the container is untouched.
        assert_eq!(containers[0]["args"], json!(["--a", "--b"]));
        assert_eq!(containers[0]["env"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            containers[1],
            json!({"name": "sidecar", "image": "busybox"})
        );
        // Unpatched parts are kept.
        assert_eq!(out["status"], pod()["status"]);
        assert_eq!(out["spec"]["tolerations"], pod()["spec"]["tolerations"]);
    }

    #[test]
    fn set_element_order_keeps_server_only_elements_in_server_position() {
        let mut doc = pod();
        doc["spec"]["containers"] = json!([
            {"name": "sidecar", "image": "busybox"},
            {"name": "main", "image": "nginx:1.25"}
        ]);
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "main"}],
            "containers": [{"name": "main", "image": "nginx:1.26"}]
        }});
        let out = smp(&doc, &patch, POD).expect("applies");
        assert_eq!(names(&out["spec"]["containers"]), ["sidecar", "main"]);
        assert_eq!(out["spec"]["containers"][1]["image"], "nginx:1.26");
    }

    #[test]
    fn set_element_order_reorders_and_adds() {
        let mut doc = pod();
        doc["spec"]["containers"] = json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]);
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "c"}, {"name": "new"}, {"name": "a"}, {"name": "b"}],
            "containers": [{"name": "new", "image": "x"}]
        }});
        let out = smp(&doc, &patch, POD).expect("applies");
        assert_eq!(names(&out["spec"]["containers"]), ["c", "new", "a", "b"]);

        // Order alone (no patch list) reorders the existing list.
        let patch = json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}, {"name": "c"}]}});
        let out = smp(&doc, &patch, POD).expect("applies");
        assert_eq!(names(&out["spec"]["containers"]), ["b", "a", "c"]);
    }

    #[test]
    fn set_element_order_for_primitive_list() {
        let patch = json!({"metadata": {
            "$setElementOrder/finalizers": ["c.example.com/three", "a.example.com/one", "b.example.com/two"],
            "finalizers": ["c.example.com/three"]
        }});
        let out = smp(&pod(), &patch, POD).expect("applies");
        assert_eq!(
            out["metadata"]["finalizers"],
            json!([
                "c.example.com/three",
                "a.example.com/one",
                "b.example.com/two"
            ])
        );
    }

    #[test]
    fn set_element_order_mismatch_is_an_error() {
        let mut doc = pod();
        doc["spec"]["containers"] = json!([{"name": "1"}, {"name": "3"}, {"name": "2"}]);
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "1"}, {"name": "2"}, {"name": "3"}],
            "containers": [{"name": "3", "image": "x"}, {"name": "1", "image": "y"}]
        }});
        let err = smp(&doc, &patch, POD).expect_err("mismatch");
        assert!(
            matches!(err, PatchError::SetElementOrderMismatch { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("doesn't match $setElementOrder list"),
            "{err}"
        );

        let patch = json!({"spec": {"$setElementOrder/containers": {"name": "1"}}});
        assert_eq!(
            smp(&doc, &patch, POD).expect_err("not a list"),
            PatchError::BadSetElementOrderFormat
        );
        let patch = json!({"spec": {"$setElementOrder": []}});
        assert_eq!(
            smp(&doc, &patch, POD).expect_err("no field"),
            PatchError::BadSetElementOrderFormat
        );
    }

    #[test]
    fn env_merges_by_name() {
        let patch = json!({"spec": {"containers": [{
            "name": "main",
            "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]
        }]}});
        let out = smp(&pod(), &patch, POD).expect("applies");
        let env = &out["spec"]["containers"][0]["env"];
        // Patch elements keep patch order; A (server only, before B on the server) comes first.
        assert_eq!(
            env,
            &json!([{"name": "A", "value": "1"}, {"name": "B", "value": "20"}, {"name": "C", "value": "3"}])
        );
        assert_eq!(names(&out["spec"]["containers"]), ["main", "sidecar"]);
    }

    #[test]
    fn env_value_from_replaces_value_with_null() {
        let patch = json!({"spec": {"containers": [{
            "name": "main",
            "env": [{"name": "A", "value": null, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
        }]}});
        let out = smp(&pod(), &patch, POD).expect("applies");
        assert_eq!(
            out["spec"]["containers"][0]["env"][0],
            json!({"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
        );
    }

    #[test]
    fn new_container_without_order_goes_first_like_upstream() {
        // The kubectl patch docs example: the added redis container is listed first.
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "patch-demo-ctr-2", "image": "redis"}
        ]}}}});
        let out = smp(&deployment(), &patch, DEPLOYMENT).expect("applies");
        let containers = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(names(containers), ["patch-demo-ctr-2", "patch-demo-ctr"]);
        assert_eq!(containers[1]["image"], "nginx");
    }

    #[test]
    fn delete_container_with_patch_delete() {
        let patch = json!({"spec": {"containers": [{"$patch": "delete", "name": "sidecar"}]}});
        let out = smp(&pod(), &patch, POD).expect("applies");
        assert_eq!(names(&out["spec"]["containers"]), ["main"]);
        assert_no_directives(&out);

        // Deleting something absent is a no-op.
        let patch = json!({"spec": {"containers": [{"$patch": "delete", "name": "nope"}]}});
        let out = smp(&pod(), &patch, POD).expect("applies");
        assert_eq!(names(&out["spec"]["containers"]), ["main", "sidecar"]);
    }

    #[test]
    fn delete_and_update_in_one_apply_patch() {
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "main"}],
            "containers": [{"name": "main", "image": "nginx:1.27"}, {"$patch": "delete", "name": "sidecar"}]
        }});
        let out = smp(&pod(), &patch, POD).expect("applies");
        assert_eq!(names(&out["spec"]["containers"]), ["main"]);
        assert_eq!(out["spec"]["containers"][0]["image"], "nginx:1.27");
    }

    #[test]
    fn replace_directive_in_list_replaces_whole_list() {
        let patch = json!({"spec": {"containers": [
            {"name": "only", "image": "alpine"},
            {"$patch": "replace"}
        ]}});
        let out = smp(&pod(), &patch, POD).expect("applies");
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "only", "image": "alpine"}])
        );
    }

    #[test]
    fn replace_directive_on_map() {
        let patch = json!({"metadata": {"labels": {"$patch": "replace", "new": "yes"}}});
        let out = smp(&pod(), &patch, POD).expect("applies");
        assert_eq!(out["metadata"]["labels"], json!({"new": "yes"}));
    }

    #[test]
    fn delete_directive_on_map() {
        let patch = json!({"spec": {"strategy": {"$patch": "delete"}}});
        let out = smp(&deployment(), &patch, DEPLOYMENT).expect("applies");
        assert!(out["spec"].get("strategy").is_none(), "{out}");
        assert_eq!(out["spec"]["replicas"], 2);

        // On a map the object doesn't have: nothing is added.
        let patch = json!({"spec": {"paused": true, "minReadySeconds": 5, "revisionHistoryLimit": {"$patch": "delete"}}});
        let out = smp(&deployment(), &patch, DEPLOYMENT).expect("applies");
        assert!(out["spec"].get("revisionHistoryLimit").is_none());
        assert_eq!(out["spec"]["paused"], true);
    }

    #[test]
    fn unknown_directive_is_an_error() {
        let patch = json!({"metadata": {"labels": {"$patch": "frobnicate"}}});
        let err = smp(&pod(), &patch, POD).expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "unknown patch type: frobnicate in map: map[$patch:frobnicate]"
        );
        let patch = json!({"spec": {"containers": [{"$patch": "merge", "name": "main"}]}});
        assert_eq!(
            smp(&pod(), &patch, POD).expect_err("merge"),
            PatchError::MergeListDirective
        );
    }

    #[test]
    fn finalizers_union_without_duplicates() {
        let patch =
            json!({"metadata": {"finalizers": ["b.example.com/two", "c.example.com/three"]}});
        let out = smp(&pod(), &patch, POD).expect("applies");
        let finalizers = out["metadata"]["finalizers"].as_array().expect("list");
        assert_eq!(finalizers.len(), 3);
        for f in [
            "a.example.com/one",
            "b.example.com/two",
            "c.example.com/three",
        ] {
            assert_eq!(finalizers.iter().filter(|v| *v == f).count(), 1, "{f}");
        }
        // Upstream order: server-only "a" keeps its place before "b", which precedes "c".
        assert_eq!(
            out["metadata"]["finalizers"],
            json!([
                "a.example.com/one",
                "b.example.com/two",
                "c.example.com/three"
            ])
        );

        // Adding to an absent list creates it.
        let mut doc = pod();
        if let Some(m) = doc["metadata"].as_object_mut() {
            m.remove("finalizers");
        }
        let patch = json!({"metadata": {"finalizers": ["x"]}});
        let out = smp(&doc, &patch, POD).expect("applies");
        assert_eq!(out["metadata"]["finalizers"], json!(["x"]));
    }

    #[test]
    fn delete_from_primitive_list() {
        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example.com/one", "nope"]}});
        let out = smp(&pod(), &patch, POD).expect("applies");
        assert_eq!(out["metadata"]["finalizers"], json!(["b.example.com/two"]));
        assert_no_directives(&out);

        // Together with an addition and an order, as kubectl apply sends it.
        let patch = json!({"metadata": {
            "$setElementOrder/finalizers": ["b.example.com/two", "c"],
            "$deleteFromPrimitiveList/finalizers": ["a.example.com/one"],
            "finalizers": ["c"]
        }});
        let out = smp(&pod(), &patch, POD).expect("applies");
        assert_eq!(
            out["metadata"]["finalizers"],
            json!(["b.example.com/two", "c"])
        );

        // On a list the object doesn't have: nothing is added.
        let patch = json!({"spec": {"containers": [{"name": "sidecar", "$deleteFromPrimitiveList/args": ["x"]}]}});
        let out = smp(&pod(), &patch, POD).expect("applies");
        assert_eq!(
            out["spec"]["containers"][1],
            json!({"name": "sidecar", "image": "busybox"})
        );

        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}});
        assert_eq!(
            smp(&pod(), &patch, POD).expect_err("bad"),
            PatchError::BadPrimitiveListFormat
        );
    }

    #[test]
    fn retain_keys_switches_rolling_update_to_recreate() {
        let patch = json!({"spec": {"strategy": {
            "$retainKeys": ["type"],
            "type": "Recreate",
            "rollingUpdate": null
        }}});
        let out = smp(&deployment(), &patch, DEPLOYMENT).expect("applies");
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_no_directives(&out);

        // The directive alone drops the unlisted keys.
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
        let out = smp(&deployment(), &patch, DEPLOYMENT).expect("applies");
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));

        // Plain null works too.
        let patch = json!({"spec": {"strategy": {"type": "Recreate", "rollingUpdate": null}}});
        let out = smp(&deployment(), &patch, DEPLOYMENT).expect("applies");
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));

        // A patched key missing from the list is an error.
        let patch =
            json!({"spec": {"strategy": {"$retainKeys": ["rollingUpdate"], "type": "Recreate"}}});
        let err = smp(&deployment(), &patch, DEPLOYMENT).expect_err("bad");
        assert_eq!(err, PatchError::BadRetainKeysFormat);
        assert_eq!(err.status_code(), 400);
    }

    #[test]
    fn retain_keys_on_volume_elements() {
        let patch = json!({"spec": {
            "$setElementOrder/volumes": [{"name": "data"}],
            "volumes": [{"$retainKeys": ["configMap", "name"], "name": "data", "configMap": {"name": "cm"}}]
        }});
        let out = smp(&pod(), &patch, POD).expect("applies");
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "data", "configMap": {"name": "cm"}}])
        );
    }

    #[test]
    fn rollout_restart_body_on_deployment() {
        let patch = json!({"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": "2025-05-01T10:00:00Z"
        }}}}});
        let out = smp(&deployment(), &patch, DEPLOYMENT).expect("applies");
        assert_eq!(
            out["spec"]["template"]["metadata"],
            json!({"labels": {"app": "web"}, "annotations": {"kubectl.kubernetes.io/restartedAt": "2025-05-01T10:00:00Z"}})
        );
        let mut expected = deployment();
        expected["spec"]["template"]["metadata"]["annotations"] =
            json!({"kubectl.kubernetes.io/restartedAt": "2025-05-01T10:00:00Z"});
        assert_eq!(out, expected);
    }

    #[test]
    fn scale_and_image_patches_on_deployment() {
        let patch = json!({"spec": {"replicas": 5, "template": {"spec": {"containers": [
            {"name": "patch-demo-ctr", "image": "nginx:1.27"}
        ]}}}});
        let out = smp(&deployment(), &patch, DEPLOYMENT).expect("applies");
        assert_eq!(out["spec"]["replicas"], 5);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "patch-demo-ctr", "image": "nginx:1.27"}])
        );
    }

    #[test]
    fn tolerations_and_args_are_replaced() {
        let patch = json!({"spec": {
            "tolerations": [{"effect": "NoSchedule", "key": "disktype", "value": "ssd"}],
            "containers": [{"name": "main", "args": ["--c"]}]
        }});
        let out = smp(&pod(), &patch, POD).expect("applies");
        assert_eq!(
            out["spec"]["tolerations"],
            json!([{"effect": "NoSchedule", "key": "disktype", "value": "ssd"}])
        );
        assert_eq!(out["spec"]["containers"][0]["args"], json!(["--c"]));
        assert_eq!(out["spec"]["containers"][0]["image"], "nginx:1.25");
    }

    #[test]
    fn ports_merge_on_container_port() {
        let patch = json!({"spec": {"containers": [{"name": "main", "ports": [
            {"containerPort": 80, "name": "http"},
            {"containerPort": 443, "name": "https"}
        ]}]}});
        let out = smp(&pod(), &patch, POD).expect("applies");
        assert_eq!(
            out["spec"]["containers"][0]["ports"],
            json!([
                {"containerPort": 80, "protocol": "TCP", "name": "http"},
                {"containerPort": 443, "name": "https"}
            ])
        );
        // 80.0 and 80 are the same merge key.
        let patch = json!({"spec": {"containers": [{"name": "main", "ports": [{"containerPort": 80.0, "hostPort": 8080}]}]}});
        let out = smp(&pod(), &patch, POD).expect("applies");
        assert_eq!(
            out["spec"]["containers"][0]["ports"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn status_conditions_merge_on_type() {
        let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let out = smp(&pod(), &patch, POD).expect("applies");
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}])
        );
        assert_eq!(out["status"]["phase"], "Running");
    }

    #[test]
    fn owner_references_merge_on_uid() {
        let mut doc = pod();
        doc["metadata"]["ownerReferences"] = json!([
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": true}
        ]);
        let patch = json!({"metadata": {"ownerReferences": [
            {"uid": "u1", "blockOwnerDeletion": true},
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": "u2"}
        ]}});
        let out = smp(&doc, &patch, POD).expect("applies");
        let refs = &out["metadata"]["ownerReferences"];
        assert_eq!(refs.as_array().map(Vec::len), Some(2));
        assert_eq!(refs[0]["uid"], "u1");
        assert_eq!(refs[0]["blockOwnerDeletion"], true);
        assert_eq!(refs[0]["name"], "rs");
        assert_eq!(refs[1]["uid"], "u2");
    }

    #[test]
    fn missing_merge_key_is_an_error() {
        let patch = json!({"spec": {"containers": [{"image": "httpd"}]}});
        let err = smp(&pod(), &patch, POD).expect_err("no merge key");
        assert_eq!(
            err.to_string(),
            "map: map[image:httpd] does not contain declared merge key: name"
        );
        assert_eq!(err.status_code(), 500);
        assert_eq!(err.reason(), "");

        let patch = json!({"spec": {"containers": [{"$patch": "delete", "image": "httpd"}]}});
        assert!(matches!(
            smp(&pod(), &patch, POD).expect_err("no merge key"),
            PatchError::NoMergeKey { .. }
        ));

        let patch = json!({"spec": {"$setElementOrder/containers": [{"image": "x"}], "containers": [{"name": "main"}]}});
        assert!(matches!(
            smp(&pod(), &patch, POD).expect_err("no merge key"),
            PatchError::NoMergeKey { .. }
        ));
    }

    #[test]
    fn mixed_and_nested_lists_are_errors() {
        let patch = json!({"spec": {"containers": ["main"]}});
        assert!(matches!(
            smp(&pod(), &patch, POD).expect_err("mixed"),
            PatchError::MixedListElements(_)
        ));
        let patch = json!({"metadata": {"finalizers": [["x"]]}});
        assert_eq!(
            smp(&pod(), &patch, POD).expect_err("nested"),
            PatchError::ListOfLists
        );
    }

    #[test]
    fn labels_null_deletes_and_order_is_kept() {
        let mut doc = pod();
        doc["metadata"]["labels"] = json!({"a": "1", "b": "2", "c": "3"});
        let patch = json!({"metadata": {"labels": {"a": null, "d": "4"}}});
        let out = smp(&doc, &patch, POD).expect("applies");
        let keys: Vec<&String> = out["metadata"]["labels"]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys, ["b", "c", "d"]);
        let patch = json!({"spec": {"tolerations": null}});
        let out = smp(&pod(), &patch, POD).expect("applies");
        assert!(out["spec"].get("tolerations").is_none());
    }

    #[test]
    fn directives_in_new_values_are_applied_and_stripped() {
        let mut doc = pod();
        if let Some(spec) = doc["spec"].as_object_mut() {
            spec.remove("volumes");
            spec.remove("initContainers");
        }
        let patch = json!({"spec": {
            "$setElementOrder/volumes": [{"name": "b"}, {"name": "a"}],
            "volumes": [
                {"name": "b", "emptyDir": {"$patch": "replace", "medium": "Memory"}},
                {"name": "a", "$retainKeys": ["name", "emptyDir"], "emptyDir": {}}
            ],
            "initContainers": [
                {"name": "init", "image": "busybox", "env": [{"name": "X", "value": "1"}, {"$patch": "delete", "name": "Y"}]},
                {"$patch": "replace"}
            ],
            "containers": [{"name": "brand-new", "image": "x", "$setElementOrder/env": [{"name": "Z"}], "env": [{"name": "Z", "value": "z"}]}]
        }});
        let out = smp(&doc, &patch, POD).expect("applies");
        assert_no_directives(&out);
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "b", "emptyDir": {"medium": "Memory"}}, {"name": "a", "emptyDir": {}}])
        );
        assert_eq!(
            out["spec"]["initContainers"],
            json!([{"name": "init", "image": "busybox", "env": [{"name": "X", "value": "1"}]}])
        );
        assert_eq!(
            names(&out["spec"]["containers"]),
            ["brand-new", "main", "sidecar"]
        );
        assert_eq!(
            out["spec"]["containers"][0]["env"],
            json!([{"name": "Z", "value": "z"}])
        );
    }

    #[test]
    fn unknown_definition_falls_back_to_merge_patch() {
        let doc = json!({
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w", "labels": {"a": "1"}},
            "spec": {"items": [{"name": "x", "v": 1}, {"name": "y", "v": 2}], "nested": {"k": "v", "drop": 1}}
        });
        let patch = json!({"metadata": {"labels": {"b": "2"}}, "spec": {
            "items": [{"name": "x", "v": 9}],
            "nested": {"drop": null, "added": true}
        }});
        let out = smp(&doc, &patch, "com.example.v1.Widget").expect("applies");
        let merged = super::super::apply_merge_patch(&doc, &patch).expect("merge");
        assert_eq!(out, merged);
        assert_eq!(out["spec"]["items"], json!([{"name": "x", "v": 9}]));
        assert_eq!(out["spec"]["nested"], json!({"k": "v", "added": true}));
        assert_eq!(out["metadata"]["labels"], json!({"a": "1", "b": "2"}));
    }

    #[test]
    fn unknown_field_of_known_type_merges_like_merge_patch() {
        let mut doc = pod();
        doc["spec"]["bogus"] = json!({"list": [1, 2], "keep": true});
        let patch = json!({"spec": {"bogus": {"list": [3]}}});
        let out = smp(&doc, &patch, POD).expect("applies");
        assert_eq!(out["spec"]["bogus"], json!({"list": [3], "keep": true}));
    }

    #[test]
    fn map_values_schema_is_followed() {
        // ConfigMap data is a map of strings: plain merge.
        let doc = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}});
        let patch = json!({"data": {"a": null, "c": "3"}});
        let out = smp(&doc, &patch, "io.k8s.api.core.v1.ConfigMap").expect("applies");
        assert_eq!(out["data"], json!({"b": "2", "c": "3"}));
        // Resource quantities (map values) replace.
        let patch = json!({"spec": {"containers": [{"name": "main", "resources": {"limits": {"cpu": "1"}}}]}});
        let out = smp(&pod(), &patch, POD).expect("applies");
        assert_eq!(
            out["spec"]["containers"][0]["resources"],
            json!({"limits": {"cpu": "1"}})
        );
    }

    #[test]
    fn top_level_directives_and_bad_input() {
        let out = smp(&pod(), &json!({"$patch": "delete"}), POD).expect("applies");
        assert_eq!(out, json!({}));
        let out = smp(&pod(), &json!({"$patch": "replace", "kind": "Pod"}), POD).expect("applies");
        assert_eq!(out, json!({"kind": "Pod"}));
        let err = smp(&pod(), &json!([{"op": "add"}]), POD).expect_err("array");
        assert_eq!(err.status_code(), 400);
        assert_eq!(
            err.to_string(),
            "json: cannot unmarshal array into Go value of type map[string]interface {}"
        );
        assert_eq!(
            smp(&json!([]), &json!({}), POD).expect_err("doc"),
            PatchError::InvalidDocument
        );
    }

    #[test]
    fn empty_patch_is_identity_and_input_untouched() {
        let doc = pod();
        assert_eq!(smp(&doc, &json!({}), POD).expect("applies"), doc);
        let patch = json!({"spec": {"containers": [{"$patch": "delete", "name": "main"}]}});
        let _ = smp(&doc, &patch, POD).expect("applies");
        assert_eq!(doc, pod());
    }

    #[test]
    fn type_change_replaces_value() {
        let patch = json!({"spec": {"containers": {"oops": true}}});
        let out = smp(&pod(), &patch, POD).expect("applies");
        assert_eq!(out["spec"]["containers"], json!({"oops": true}));
    }

    #[test]
    fn kubectl_apply_nested_orders_and_deletions() {
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "main"}, {"name": "sidecar"}],
            "containers": [{
                "name": "main",
                "$setElementOrder/env": [{"name": "B"}, {"name": "A"}],
                "env": [{"name": "B", "value": "22"}],
                "$setElementOrder/ports": [{"containerPort": 80}, {"containerPort": 9090}],
                "ports": [{"containerPort": 9090, "name": "metrics"}]
            }, {
                "name": "sidecar",
                "args": ["sleep", "infinity"]
            }]
        }});
        let out = smp(&pod(), &patch, POD).expect("applies");
        assert_no_directives(&out);
        let main = &out["spec"]["containers"][0];
        assert_eq!(
            main["env"],
            json!([{"name": "B", "value": "22"}, {"name": "A", "value": "1"}])
        );
        assert_eq!(
            main["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 9090, "name": "metrics"}])
        );
        assert_eq!(
            out["spec"]["containers"][1]["args"],
            json!(["sleep", "infinity"])
        );
    }

    #[test]
    fn service_ports_merge_on_port() {
        let doc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {
            "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
            "selector": {"app": "web"}
        }});
        let patch = json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}], "selector": {"tier": "fe"}}});
        let out = smp(&doc, &patch, "io.k8s.api.core.v1.Service").expect("applies");
        assert_eq!(
            out["spec"]["ports"],
            json!([{"port": 80, "targetPort": 9090, "protocol": "TCP"}])
        );
        assert_eq!(out["spec"]["selector"], json!({"app": "web", "tier": "fe"}));
    }

    #[test]
    fn go_formatting() {
        assert_eq!(
            go_fmt(&json!({"b": [1, 2.5, null], "a": {"x": true}, "c": 80.0})),
            "map[a:map[x:true] b:[1 2.5 <nil>] c:80]"
        );
    }
}
