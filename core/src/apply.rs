//! Server-side apply and `metadata.managedFields` tracking.
//!
//! This module owns everything about field ownership, modelled on Kubernetes'
//! `sigs.k8s.io/structured-merge-diff` and `k8s.io/apimachinery/pkg/util/managedfields`:
//!
//! * field sets (`FieldsV1`): paths `f:<field>`, `k:{<list-map keys>}`, `v:<set value>`, `i:<index>`,
//!   their set algebra, serialization and parsing;
//! * schema-driven walks over `serde_json::Value` objects (via [`crate::schema`]): field-set extraction,
//!   comparison, merge (map lists merge per key, sets union, atomic lists/maps replace) and removal;
//! * [`apply`]: merge an applied configuration into the live object, detect conflicts with other
//!   managers, take ownership on force, prune fields the applier dropped from its configuration, and
//!   record the applier's `Apply` entry;
//! * [`track_update`]: after a create/update/patch, attribute changed fields to the writer's `Update`
//!   entry and take them away from the other managers.
//!
//! Reset fields: like the Kubernetes strategies' `GetResetFields`, writes to the main resource neither
//! own nor change `status` (apply drops `status` from the applied configuration, although callers
//! normally strip it already; the strategy resets it anyway), and writes to the `status` subresource
//! neither own nor change `spec`.
//!
//! System metadata (`metadata.uid`, `resourceVersion`, `creationTimestamp`, ...) is never tracked. The
//! object apply returns carries whatever the applied configuration said for those fields (for example a
//! `resourceVersion` precondition); the caller applies its usual create/update rules to the result.

use crate::schema::{self, Schema};
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The annotation kubectl's client-side apply keeps its last applied configuration in.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

const MAX_UPDATE_MANAGERS: usize = 10;
const ANCIENT_CHANGES_MANAGER: &str = "ancient-changes";
const BEFORE_FIRST_APPLY_MANAGER: &str = "before-first-apply";
/// The identifier of the in-flight operation of `track_update` (never a valid JSON identifier, so it
/// cannot collide with a decoded entry).
const CURRENT_OPERATION: &str = "\u{0}current-operation";

// ---------------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------------

/// One field another manager owns with a different value than the applied configuration asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name (`kubectl-client-side-apply`).
    pub manager: String,
    /// The field path as Kubernetes prints it: `.spec.replicas`,
    /// `.spec.template.spec.containers[name="main"].image`.
    pub field: String,
    /// The manager as Kubernetes prints it in messages: `"kubectl-client-side-apply" using apps/v1`
    /// for an `Update` entry, `"kubectl"` for an `Apply` entry, with ` with subresource "status"` when
    /// the entry belongs to a subresource.
    pub printed_manager: String,
}

/// Why an apply was refused.
#[derive(thiserror::Error, Debug)]
pub enum ApplyError {
    /// Fields owned by other managers would change (HTTP 409, reason `Conflict`).
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The applied configuration (or the live object's managedFields) cannot be processed.
    #[error("{0}")]
    Invalid(String),
}

impl ApplyError {
    /// The Status message, exactly as Kubernetes words it:
    /// `Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas`.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The Status `details.causes` for conflicts: `{"reason":"FieldManagerConflict","message":"conflict
    /// with \"m\" using v1","field":".spec.replicas"}` per conflict (empty for `Invalid`).
    pub fn causes(&self) -> Vec<Value> {
        match self {
            ApplyError::Conflicts(conflicts) => conflicts
                .iter()
                .map(|c| {
                    let mut m = Map::new();
                    m.insert("reason".into(), Value::from("FieldManagerConflict"));
                    m.insert(
                        "message".into(),
                        Value::from(format!("conflict with {}", c.printed_manager)),
                    );
                    m.insert("field".into(), Value::from(c.field.clone()));
                    Value::Object(m)
                })
                .collect(),
            ApplyError::Invalid(_) => Vec::new(),
        }
    }
}

fn conflicts_message(conflicts: &[Conflict]) -> String {
    if conflicts.len() == 1 {
        let c = &conflicts[0];
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.printed_manager, c.field
        );
    }
    // Grouped by manager; conflicts are already ordered by manager identifier.
    let mut lines: Vec<String> = Vec::new();
    let mut current: Option<&str> = None;
    for c in conflicts {
        if current != Some(c.printed_manager.as_str()) {
            lines.push(format!("conflicts with {}:", c.printed_manager));
            current = Some(c.printed_manager.as_str());
        }
        lines.push(format!("- {}", c.field));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// Server-side apply of `applied` (the full intent of `manager`) onto `live` (None = create) of the
/// main resource. Returns the new object with `metadata.managedFields` updated: the manager's `Apply`
/// entry holds exactly the fields of `applied`; fields taken over by force leave other managers' sets.
/// Fields this manager applied before and no longer applies, and that no other manager owns, are
/// removed from the object. A field of `applied` whose value differs from live and that another
/// manager owns is a conflict unless `force`; equal values are shared ownership, never conflicts.
///
/// `status` in `applied` is ignored (see the module docs). Like kube-apiserver, the manager `kubectl`
/// may take over fields recorded in the client-side apply annotation when they still match the live
/// object, and keeps that annotation in sync.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    api_version: &str,
    definition: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    apply_impl(
        live,
        applied,
        manager,
        api_version,
        definition,
        "",
        force,
        now,
    )
}

/// Server-side apply to a subresource (`status`, ...) of an existing object: like [`apply`], but the
/// entry records `subresource`, and for `status` the applied `spec` is ignored instead of `status`.
#[allow(clippy::too_many_arguments)]
pub fn apply_subresource(
    live: &Value,
    applied: &Value,
    manager: &str,
    api_version: &str,
    definition: &str,
    subresource: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    apply_impl(
        Some(live),
        applied,
        manager,
        api_version,
        definition,
        subresource,
        force,
        now,
    )
}

/// After a non-apply write (create/update/patch) by `manager`, records in `new.metadata.managedFields`
/// an `Update` entry covering the fields this write set or changed (on create: every field set), merged
/// into the manager's previous `Update` entry, and removes those fields (and removed ones) from the
/// other managers' sets. `subresource` (`status`, `scale`, ... or `""`) is stored in the entry.
///
/// As in Kubernetes, managedFields sent in `new` replace the stored ones for main-resource writes
/// (`[]` or `[{}]` clears them); an existing object without managedFields stays untracked until it
/// is applied to; and at most 10 `Update` entries are kept (older ones merge into `ancient-changes`).
pub fn track_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    definition: &str,
    subresource: &str,
    now: &str,
) {
    if !new.is_object() {
        return;
    }
    let requested = managed_fields_of(new).cloned();
    let mut managed = if !subresource.is_empty() {
        old.and_then(|o| decode_managed(managed_fields_of(o)).ok())
            .unwrap_or_default()
    } else if is_reset_managed_fields(requested.as_ref()) {
        Managed::default()
    } else {
        match decode_managed(requested.as_ref()) {
            Ok(m) if !m.entries.is_empty() => m,
            _ => old
                .and_then(|o| decode_managed(managed_fields_of(o)).ok())
                .unwrap_or_default(),
        }
    };
    remove_managed_fields(new);
    if managed.entries.is_empty() && old.is_some() {
        // An existing object nobody tracked: it stays untracked until the first apply.
        return;
    }
    let ctx = Ctx::new(definition);
    let old_obj = old.map(without_managed_fields);
    let ignored = reset_fields(subresource);
    track_into(
        &ctx,
        &mut managed,
        old_obj.as_ref(),
        new,
        manager,
        api_version,
        subresource,
        now,
        &ignored,
    );
    cap_update_managers(&mut managed);
    set_managed_fields(new, encode_managed(&managed));
}

// ---------------------------------------------------------------------------------------------------
// Values: ordering and equality (structured-merge-diff's value.Compare)
// ---------------------------------------------------------------------------------------------------

fn type_rank(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Null => 5,
    }
}

fn cmp_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x.cmp(&y)
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x.cmp(&y)
            } else {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.partial_cmp(&y).unwrap_or(Ordering::Equal)
            }
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (l, r) in x.iter().zip(y.iter()) {
                let c = cmp_values(l, r);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xk: Vec<&String> = x.keys().collect();
            let mut yk: Vec<&String> = y.keys().collect();
            xk.sort();
            yk.sort();
            for (l, r) in xk.iter().zip(yk.iter()) {
                let c = l.cmp(r);
                if c != Ordering::Equal {
                    return c;
                }
                if let (Some(lv), Some(rv)) = (x.get(l.as_str()), y.get(r.as_str())) {
                    let c = cmp_values(lv, rv);
                    if c != Ordering::Equal {
                        return c;
                    }
                }
            }
            xk.len().cmp(&yk.len())
        }
        _ => type_rank(a).cmp(&type_rank(b)),
    }
}

fn values_equal(a: &Value, b: &Value) -> bool {
    cmp_values(a, b) == Ordering::Equal
}

/// Go's `%q` for the strings Kubernetes prints in conflict messages.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// structured-merge-diff's `value.ToString`.
fn value_to_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => go_quote(s),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(value_to_string).collect::<Vec<_>>().join(",")
        ),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .filter_map(|k| {
                    m.get(k.as_str())
                        .map(|v| format!("{}={}", k, value_to_string(v)))
                })
                .collect();
            format!("{{{}}}", parts.join(";"))
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Paths and field sets
// ---------------------------------------------------------------------------------------------------

/// One step of a field path.
#[derive(Debug, Clone)]
enum PathElement {
    /// A struct field or map key: `f:name`.
    Field(String),
    /// An element of a map list by its key fields, sorted by name: `k:{"name":"main"}`.
    Key(Vec<(String, Value)>),
    /// An element of a set: `v:"value"`.
    Value(Value),
    /// An element by position: `i:0`.
    Index(i64),
}

impl PathElement {
    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `FieldsV1` key: `f:name`, `k:{"name":"main"}`, `v:"x"`, `i:0`.
    fn to_fields_key(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let mut m = Map::new();
                for (k, v) in fields {
                    m.insert(k.clone(), v.clone());
                }
                format!("k:{}", Value::Object(m))
            }
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `FieldsV1` key; `Ok(None)` for kinds this version does not know (skipped, as upstream).
    fn from_fields_key(key: &str) -> Result<Option<PathElement>, String> {
        if let Some(name) = key.strip_prefix("f:") {
            Ok(Some(PathElement::Field(name.to_string())))
        } else if let Some(json) = key.strip_prefix("v:") {
            serde_json::from_str(json)
                .map(|v| Some(PathElement::Value(v)))
                .map_err(|e| format!("parsing key as path element: {key}: {e}"))
        } else if let Some(json) = key.strip_prefix("k:") {
            match serde_json::from_str::<Value>(json) {
                Ok(Value::Object(m)) => {
                    let mut fields: Vec<(String, Value)> = m.into_iter().collect();
                    fields.sort_by(|a, b| a.0.cmp(&b.0));
                    Ok(Some(PathElement::Key(fields)))
                }
                Ok(_) => Err(format!(
                    "parsing key as path element: {key}: expected an object"
                )),
                Err(e) => Err(format!("parsing key as path element: {key}: {e}")),
            }
        } else if let Some(n) = key.strip_prefix("i:") {
            n.parse::<i64>()
                .map(|i| Some(PathElement::Index(i)))
                .map_err(|e| format!("parsing key as path element: {key}: {e}"))
        } else {
            Ok(None)
        }
    }
}

impl std::fmt::Display for PathElement {
    /// As Kubernetes prints paths: `.name`, `[name="main"]`, `[="value"]`, `[0]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{}={}", k, value_to_string(v)))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", value_to_string(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => a.len().cmp(&b.len()).then_with(|| {
                for ((an, av), (bn, bv)) in a.iter().zip(b.iter()) {
                    let c = an.cmp(bn).then_with(|| cmp_values(av, bv));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                Ordering::Equal
            }),
            (PathElement::Value(a), PathElement::Value(b)) => cmp_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

fn path_string(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

/// A set of field paths as a trie: `members` end here, `children` continue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(FieldSet::is_empty)
    }

    fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    #[cfg(test)]
    fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    fn difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            let rest = match other.children.get(pe) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            if !rest.is_empty() {
                children.insert(pe.clone(), rest);
            }
        }
        FieldSet { members, children }
    }

    fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let both = child.intersection(theirs);
                if !both.is_empty() {
                    children.insert(pe.clone(), both);
                }
            }
        }
        FieldSet { members, children }
    }

    /// Removes every path of `other` and everything below its members.
    fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if other.members.contains(pe) {
                continue;
            }
            let rest = match other.children.get(pe) {
                Some(theirs) => child.recursive_difference(theirs),
                None => child.clone(),
            };
            if !rest.is_empty() {
                children.insert(pe.clone(), rest);
            }
        }
        FieldSet { members, children }
    }

    /// Every path, members before children at each level, each in element order (upstream's order).
    fn paths(&self) -> Vec<Vec<PathElement>> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Vec<PathElement>>) {
        for pe in &self.members {
            let mut p = prefix.clone();
            p.push(pe.clone());
            out.push(p);
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// The `FieldsV1` JSON form.
    fn to_fields_v1(&self) -> Value {
        Value::Object(self.emit(false))
    }

    fn emit(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        if include_self && !self.is_empty() {
            out.insert(".".into(), Value::Object(Map::new()));
        }
        let mut members = self.members.iter().peekable();
        let mut children = self
            .children
            .iter()
            .filter(|(_, c)| !c.is_empty())
            .peekable();
        loop {
            let next_member = members.peek().copied();
            let next_child = children.peek().map(|(pe, c)| (*pe, *c));
            match (next_member, next_child) {
                (None, None) => break,
                (Some(m), None) => {
                    out.insert(m.to_fields_key(), Value::Object(Map::new()));
                    members.next();
                }
                (None, Some((pe, c))) => {
                    out.insert(pe.to_fields_key(), Value::Object(c.emit(false)));
                    children.next();
                }
                (Some(m), Some((pe, c))) => match m.cmp(pe) {
                    Ordering::Less => {
                        out.insert(m.to_fields_key(), Value::Object(Map::new()));
                        members.next();
                    }
                    Ordering::Greater => {
                        out.insert(pe.to_fields_key(), Value::Object(c.emit(false)));
                        children.next();
                    }
                    Ordering::Equal => {
                        out.insert(pe.to_fields_key(), Value::Object(c.emit(true)));
                        members.next();
                        children.next();
                    }
                },
            }
        }
        out
    }

    /// Parses the `FieldsV1` JSON form.
    fn from_fields_v1(v: &Value) -> Result<FieldSet, String> {
        let Value::Object(m) = v else {
            return Err("FieldsV1 must be a JSON object".into());
        };
        Ok(Self::read(m)?.0)
    }

    /// Reads one level: the set below, and whether the node itself is a member.
    fn read(m: &Map<String, Value>) -> Result<(FieldSet, bool), String> {
        let mut set = FieldSet::default();
        let mut is_member = false;
        let mut any_child = false;
        for (key, value) in m {
            if key == "." {
                is_member = true;
                continue;
            }
            let Some(pe) = PathElement::from_fields_key(key)? else {
                continue;
            };
            let Value::Object(inner) = value else {
                return Err(format!("FieldsV1 value of {key} must be a JSON object"));
            };
            any_child = true;
            let (grandchildren, child_is_member) = Self::read(inner)?;
            if child_is_member {
                set.members.insert(pe.clone());
            }
            if !grandchildren.is_empty() {
                set.children.insert(pe, grandchildren);
            }
        }
        if !any_child {
            is_member = true;
        }
        Ok((set, is_member))
    }
}

/// A set holding the given top-level fields.
fn top_level_set(fields: &[&str]) -> FieldSet {
    let mut s = FieldSet::default();
    for f in fields {
        s.insert(&[PathElement::Field((*f).to_string())]);
    }
    s
}

/// The fields never recorded in managedFields (upstream's stripMetaManager).
fn strip_set() -> FieldSet {
    let mut s = top_level_set(&["apiVersion", "kind", "metadata"]);
    for f in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        s.insert(&[
            PathElement::Field("metadata".into()),
            PathElement::Field(f.into()),
        ]);
    }
    s
}

/// The fields a write to `subresource` neither owns nor changes.
fn reset_fields(subresource: &str) -> FieldSet {
    match subresource {
        "" => top_level_set(&["status"]),
        "status" => top_level_set(&["spec"]),
        _ => FieldSet::default(),
    }
}

// ---------------------------------------------------------------------------------------------------
// Schema shapes
// ---------------------------------------------------------------------------------------------------

/// The type of a value: a schema node (unresolved, so its `x-kubernetes-*` extensions are visible), or
/// unknown (maps granular, lists atomic, like upstream's deduced type).
#[derive(Clone, Copy)]
enum Ty {
    Node(&'static Value),
    Deduced,
}

/// How a value is walked.
enum Shape {
    /// Scalars, atomic maps and lists, and values whose type contradicts the schema.
    Leaf,
    /// A granular map: a struct (`properties`) and/or a map (`additionalProperties`); `None` = unknown.
    Map(Option<&'static Value>),
    /// A granular (associative) list.
    List(ListShape),
}

struct ListShape {
    item: Ty,
    /// List-map keys; empty for a set.
    keys: Vec<&'static str>,
    /// Definition name of the items, for key defaults.
    item_def: Option<&'static str>,
}

enum SchemaShape {
    Map,
    List,
    Leaf,
    Unknown,
}

struct Ctx {
    schema: &'static Schema,
    root: Ty,
}

impl Ctx {
    fn new(definition: &str) -> Ctx {
        let schema = schema::schema();
        let root = schema.definition(definition).map_or(Ty::Deduced, Ty::Node);
        Ctx { schema, root }
    }

    fn schema_shape(&self, node: &'static Value) -> (SchemaShape, Shape) {
        let s = self.schema;
        let r = s.resolve(node);
        let types = schema::types(r);
        if types.contains(&"array") || r.get("items").is_some() {
            let item = r.get("items").map_or(Ty::Deduced, Ty::Node);
            let item_def = r.get("items").and_then(schema::ref_name);
            let list_type = schema::list_type(node).or_else(|| schema::list_type(r));
            let keys = match list_type {
                Some("map") => {
                    let mut keys = schema::list_map_keys(node);
                    if keys.is_empty() {
                        keys = schema::list_map_keys(r);
                    }
                    if keys.is_empty() {
                        return (SchemaShape::List, Shape::Leaf);
                    }
                    keys
                }
                Some("set") => Vec::new(),
                Some(_) => return (SchemaShape::List, Shape::Leaf),
                None => {
                    match schema::patch_merge_key(node).or_else(|| schema::patch_merge_key(r)) {
                        Some(k) => vec![k],
                        None => return (SchemaShape::List, Shape::Leaf),
                    }
                }
            };
            return (
                SchemaShape::List,
                Shape::List(ListShape {
                    item,
                    keys,
                    item_def,
                }),
            );
        }
        if types.contains(&"object")
            || r.get("properties").is_some()
            || r.get("additionalProperties").is_some()
        {
            if schema::map_type(node) == Some("atomic") || schema::map_type(r) == Some("atomic") {
                return (SchemaShape::Map, Shape::Leaf);
            }
            return (SchemaShape::Map, Shape::Map(Some(r)));
        }
        if !types.is_empty()
            || r.get("oneOf").is_some()
            || r.get("anyOf").is_some()
            || r.get("enum").is_some()
        {
            return (SchemaShape::Leaf, Shape::Leaf);
        }
        (SchemaShape::Unknown, Shape::Leaf)
    }

    /// The shape of the values at one position (all present, non-null values must agree with it).
    fn shape(&self, ty: Ty, values: &[Option<&Value>]) -> Shape {
        let present: Vec<&Value> = values
            .iter()
            .flatten()
            .copied()
            .filter(|v| !v.is_null())
            .collect();
        let (kind, shape) = match ty {
            Ty::Node(node) => self.schema_shape(node),
            Ty::Deduced => (SchemaShape::Unknown, Shape::Leaf),
        };
        match kind {
            SchemaShape::Map if present.iter().all(|v| v.is_object()) => shape,
            SchemaShape::List if present.iter().all(|v| v.is_array()) => shape,
            SchemaShape::Map | SchemaShape::List => Shape::Leaf,
            SchemaShape::Leaf => Shape::Leaf,
            SchemaShape::Unknown => {
                if !present.is_empty() && present.iter().all(|v| v.is_object()) {
                    Shape::Map(None)
                } else {
                    Shape::Leaf
                }
            }
        }
    }

    /// The type of entry `key` of a granular map, and whether it is a declared struct field.
    fn map_child(&self, node: Option<&'static Value>, key: &str) -> (Ty, bool) {
        let Some(r) = node else {
            return (Ty::Deduced, false);
        };
        if let Some(p) = r.get("properties").and_then(|p| p.get(key)) {
            return (Ty::Node(p), true);
        }
        match r.get("additionalProperties") {
            Some(ap) if ap.is_object() => (Ty::Node(ap), false),
            _ => (Ty::Deduced, false),
        }
    }
}

/// Defaults of list-map key fields (the OpenAPI `default`s upstream carries for them).
fn key_default(item_def: Option<&str>, key: &str) -> Option<Value> {
    match (item_def?, key) {
        ("io.k8s.api.core.v1.ContainerPort" | "io.k8s.api.core.v1.ServicePort", "protocol") => {
            Some(Value::from("TCP"))
        }
        _ => None,
    }
}

/// The path element of a list item.
fn item_pe(list: &ListShape, item: &Value) -> Result<PathElement, String> {
    if list.keys.is_empty() {
        return match item {
            Value::Object(_) => {
                Err("associative list without keys has an element that's a map type".into())
            }
            Value::Array(_) => Err("not supported: associative list with lists as elements".into()),
            Value::Null => {
                Err("associative list without keys has an element that's an explicit null".into())
            }
            v => Ok(PathElement::Value(v.clone())),
        };
    }
    let m = match item {
        Value::Object(m) => m,
        Value::Null => return Err("associative list with keys may not have a null element".into()),
        _ => return Err("associative list with keys may not have non-map elements".into()),
    };
    let mut fields = Vec::with_capacity(list.keys.len());
    for key in &list.keys {
        match m.get(*key) {
            Some(v) => fields.push(((*key).to_string(), v.clone())),
            None => match key_default(list.item_def, key) {
                Some(v) => fields.push(((*key).to_string(), v)),
                None => {
                    return Err(format!(
                        "associative list with keys has an element that omits key field {} (and doesn't have default value)",
                        go_quote(key)
                    ))
                }
            },
        }
    }
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(PathElement::Key(fields))
}

fn located(path: &[PathElement], msg: String) -> String {
    if path.is_empty() {
        msg
    } else {
        format!("{}: {}", path_string(path), msg)
    }
}

/// The items of a list with their path elements; invalid and duplicate items are errors when `strict`,
/// skipped otherwise.
fn list_items<'v>(
    list: &ListShape,
    items: &'v [Value],
    path: &[PathElement],
    strict: bool,
) -> Result<Vec<(PathElement, &'v Value)>, String> {
    let mut out: Vec<(PathElement, &Value)> = Vec::with_capacity(items.len());
    let mut seen = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        match item_pe(list, item) {
            Ok(pe) => {
                if seen.contains(&pe) {
                    if strict {
                        return Err(located(path, format!("duplicate entries for key {pe}")));
                    }
                    continue;
                }
                seen.insert(pe.clone());
                out.push((pe, item));
            }
            Err(e) if strict => return Err(located(path, format!("element {i}: {e}"))),
            Err(_) => {}
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------
// Typed walks: field set, comparison, merge, removal
// ---------------------------------------------------------------------------------------------------

/// The fields a value sets (upstream `ToFieldSet`): leaves, atomic maps/lists, list items, and entries
/// of maps that are not struct fields.
fn to_field_set(ctx: &Ctx, v: &Value, ty: Ty, strict: bool) -> Result<FieldSet, String> {
    let mut out = FieldSet::default();
    to_set_walk(ctx, v, ty, &mut Vec::new(), &mut out, strict)?;
    Ok(out)
}

fn to_set_walk(
    ctx: &Ctx,
    v: &Value,
    ty: Ty,
    path: &mut Vec<PathElement>,
    out: &mut FieldSet,
    strict: bool,
) -> Result<(), String> {
    match ctx.shape(ty, &[Some(v)]) {
        Shape::Leaf => out.insert(path),
        Shape::Map(node) => {
            if let Value::Object(m) = v {
                for (k, cv) in m {
                    let (cty, is_field) = ctx.map_child(node, k);
                    path.push(PathElement::Field(k.clone()));
                    to_set_walk(ctx, cv, cty, path, out, strict)?;
                    if !is_field {
                        out.insert(path);
                    }
                    path.pop();
                }
            }
        }
        Shape::List(list) => {
            if let Value::Array(items) = v {
                for (pe, item) in list_items(&list, items, path, strict)? {
                    path.push(pe);
                    to_set_walk(ctx, item, list.item, path, out, strict)?;
                    out.insert(path);
                    path.pop();
                }
            }
        }
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Comparison {
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
}

impl Comparison {
    fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }

    fn exclude(&mut self, ignored: &FieldSet) {
        if ignored.is_empty() {
            return;
        }
        self.added = self.added.recursive_difference(ignored);
        self.modified = self.modified.recursive_difference(ignored);
        self.removed = self.removed.recursive_difference(ignored);
    }
}

/// Compares `lhs` (None = nothing, i.e. create) with `rhs` (upstream `Compare`). A struct-typed
/// field of a struct that appears with content is not itself "added", only what it contains: Kubernetes
/// compares Go objects, where such (non-pointer) structs always exist.
fn compare(ctx: &Ctx, lhs: Option<&Value>, rhs: &Value, ty: Ty) -> Comparison {
    let mut c = Comparison::default();
    compare_walk(ctx, lhs, Some(rhs), ty, &mut Vec::new(), &mut c, true);
    c
}

fn compare_leaf(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    path: &[PathElement],
    c: &mut Comparison,
) {
    match (lhs, rhs) {
        (None, Some(_)) => c.added.insert(path),
        (Some(_), None) => c.removed.insert(path),
        (Some(l), Some(r)) if !values_equal(l, r) => c.modified.insert(path),
        _ => {}
    }
}

fn is_empty_collection(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

fn compare_walk(
    ctx: &Ctx,
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    ty: Ty,
    path: &mut Vec<PathElement>,
    c: &mut Comparison,
    struct_field: bool,
) {
    let mut is_struct = false;
    match ctx.shape(ty, &[lhs, rhs]) {
        Shape::Leaf => return compare_leaf(lhs, rhs, path, c),
        Shape::Map(node) => {
            if is_empty_collection(lhs) && is_empty_collection(rhs) {
                return compare_leaf(lhs, rhs, path, c);
            }
            is_struct = node.is_some_and(|n| n.get("properties").is_some());
            let lm = lhs.and_then(Value::as_object);
            let rm = rhs.and_then(Value::as_object);
            let mut visit = |k: &String, lv: Option<&Value>, rv: Option<&Value>| {
                let (cty, is_field) = ctx.map_child(node, k);
                path.push(PathElement::Field(k.clone()));
                compare_walk(ctx, lv, rv, cty, path, c, is_field);
                path.pop();
            };
            if let Some(lm) = lm {
                for (k, lv) in lm {
                    visit(k, Some(lv), rm.and_then(|m| m.get(k)));
                }
            }
            if let Some(rm) = rm {
                for (k, rv) in rm {
                    if lm.is_some_and(|m| m.contains_key(k)) {
                        continue;
                    }
                    visit(k, None, Some(rv));
                }
            }
        }
        Shape::List(list) => {
            if is_empty_collection(lhs) && is_empty_collection(rhs) {
                return compare_leaf(lhs, rhs, path, c);
            }
            let empty: Vec<Value> = Vec::new();
            let la = lhs.and_then(Value::as_array).unwrap_or(&empty);
            let ra = rhs.and_then(Value::as_array).unwrap_or(&empty);
            let litems = list_items(&list, la, path, false).unwrap_or_default();
            let ritems = list_items(&list, ra, path, false).unwrap_or_default();
            let rmap: BTreeMap<&PathElement, &Value> =
                ritems.iter().map(|(pe, v)| (pe, *v)).collect();
            let lmap: BTreeMap<&PathElement, &Value> =
                litems.iter().map(|(pe, v)| (pe, *v)).collect();
            for (pe, lv) in &litems {
                path.push(pe.clone());
                compare_walk(
                    ctx,
                    Some(lv),
                    rmap.get(pe).copied(),
                    list.item,
                    path,
                    c,
                    false,
                );
                path.pop();
            }
            for (pe, rv) in &ritems {
                if lmap.contains_key(pe) {
                    continue;
                }
                path.push(pe.clone());
                compare_walk(ctx, None, Some(rv), list.item, path, c, false);
                path.pop();
            }
        }
    }
    match (lhs, rhs) {
        (None, Some(_)) if !(struct_field && is_struct) => c.added.insert(path),
        (Some(_), None) => c.removed.insert(path),
        _ => {}
    }
}

/// Merges `rhs` (applied configuration) into `lhs` (live): leaves and atomic values from `rhs` win,
/// maps merge per key, map lists per key, sets by value. Key and item order follows upstream.
fn merge(ctx: &Ctx, lhs: Option<&Value>, rhs: Option<&Value>, ty: Ty) -> Option<Value> {
    match ctx.shape(ty, &[lhs, rhs]) {
        Shape::Leaf => rhs.or(lhs).cloned(),
        Shape::Map(node) => {
            if is_empty_collection(lhs) && is_empty_collection(rhs) {
                return rhs.or(lhs).cloned();
            }
            let lm = lhs.and_then(Value::as_object);
            let rm = rhs.and_then(Value::as_object);
            let mut out = Map::new();
            if let Some(lm) = lm {
                for (k, lv) in lm {
                    let (cty, _) = ctx.map_child(node, k);
                    if let Some(v) = merge(ctx, Some(lv), rm.and_then(|m| m.get(k)), cty) {
                        out.insert(k.clone(), v);
                    }
                }
            }
            if let Some(rm) = rm {
                for (k, rv) in rm {
                    if lm.is_some_and(|m| m.contains_key(k)) {
                        continue;
                    }
                    let (cty, _) = ctx.map_child(node, k);
                    if let Some(v) = merge(ctx, None, Some(rv), cty) {
                        out.insert(k.clone(), v);
                    }
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Shape::List(list) => {
            if is_empty_collection(lhs) && is_empty_collection(rhs) {
                return rhs.or(lhs).cloned();
            }
            let empty: Vec<Value> = Vec::new();
            let la = lhs.and_then(Value::as_array).unwrap_or(&empty);
            let ra = rhs.and_then(Value::as_array).unwrap_or(&empty);
            let out = merge_list(ctx, &list, la, ra);
            (!out.is_empty()).then_some(Value::Array(out))
        }
    }
}

/// Upstream's list merge: items of `rhs` keep their relative order, items only in `lhs` stay near
/// their old neighbours. Live items without a valid key are kept where they are.
fn merge_list(ctx: &Ctx, list: &ListShape, lhs: &[Value], rhs: &[Value]) -> Vec<Value> {
    // Live items: (path element or None when it has no valid/unique one, value).
    let mut seen = BTreeSet::new();
    let litems: Vec<(Option<PathElement>, &Value)> = lhs
        .iter()
        .map(|item| match item_pe(list, item) {
            Ok(pe) if seen.insert(pe.clone()) => (Some(pe), item),
            _ => (None, item),
        })
        .collect();
    let ritems = list_items(list, rhs, &[], false).unwrap_or_default();
    let lmap: BTreeMap<&PathElement, &Value> = litems
        .iter()
        .filter_map(|(pe, v)| pe.as_ref().map(|pe| (pe, *v)))
        .collect();
    let rmap: BTreeMap<&PathElement, &Value> = ritems.iter().map(|(pe, v)| (pe, *v)).collect();
    let mut shared: std::collections::VecDeque<&PathElement> = ritems
        .iter()
        .map(|(pe, _)| pe)
        .filter(|pe| lmap.contains_key(pe))
        .collect();
    let mut next_shared = shared.pop_front();
    let mut merged_rhs: BTreeSet<&PathElement> = BTreeSet::new();
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let (mut li, mut ri) = (0usize, 0usize);
    while li < litems.len() || ri < ritems.len() {
        if li < litems.len() && ri < ritems.len() {
            if let Some(pe) = &litems[li].0 {
                if *pe == ritems[ri].0 {
                    merged_rhs.insert(&ritems[ri].0);
                    out.extend(merge(
                        ctx,
                        Some(litems[li].1),
                        Some(ritems[ri].1),
                        list.item,
                    ));
                    li += 1;
                    ri += 1;
                    next_shared = shared.pop_front();
                    continue;
                }
                if rmap.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                    li += 1;
                    continue;
                }
            }
        }
        if li < litems.len() {
            match &litems[li].0 {
                None => {
                    out.push(litems[li].1.clone());
                    li += 1;
                    continue;
                }
                Some(pe) if !rmap.contains_key(pe) => {
                    out.extend(merge(ctx, Some(litems[li].1), None, list.item));
                    li += 1;
                    continue;
                }
                Some(pe) if merged_rhs.contains(pe) => {
                    li += 1;
                    continue;
                }
                Some(_) => {}
            }
        }
        if ri < ritems.len() {
            let pe = &ritems[ri].0;
            merged_rhs.insert(pe);
            out.extend(merge(
                ctx,
                lmap.get(pe).copied(),
                Some(ritems[ri].1),
                list.item,
            ));
            ri += 1;
            if next_shared.is_some_and(|n| n == pe) {
                next_shared = shared.pop_front();
            }
            continue;
        }
        // Only reachable with inconsistent input; never loop forever.
        li += 1;
    }
    out
}

/// Removes the paths of `set` from `v` (upstream `RemoveItems`); maps and lists left empty by the
/// removal disappear. `None` = nothing left.
fn remove_items(ctx: &Ctx, v: &Value, set: &FieldSet, ty: Ty) -> Option<Value> {
    match ctx.shape(ty, &[Some(v)]) {
        Shape::Leaf => match v {
            Value::Object(_) | Value::Array(_) => None,
            scalar => Some(scalar.clone()),
        },
        Shape::Map(node) => {
            let m = v.as_object().filter(|m| !m.is_empty())?;
            let mut out = Map::new();
            for (k, cv) in m {
                let pe = PathElement::Field(k.clone());
                if set.members.contains(&pe) {
                    continue;
                }
                match set.children.get(&pe) {
                    Some(sub) => {
                        let (cty, _) = ctx.map_child(node, k);
                        if let Some(nv) = remove_items(ctx, cv, sub, cty) {
                            out.insert(k.clone(), nv);
                        }
                    }
                    None => {
                        out.insert(k.clone(), cv.clone());
                    }
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Shape::List(list) => {
            let items = v.as_array().filter(|a| !a.is_empty())?;
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let Ok(pe) = item_pe(&list, item) else {
                    out.push(item.clone());
                    continue;
                };
                if set.members.contains(&pe) {
                    continue;
                }
                match set.children.get(&pe) {
                    Some(sub) => out.extend(remove_items(ctx, item, sub, list.item)),
                    None => out.push(item.clone()),
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
    }
}

fn remove_root(ctx: &Ctx, v: &Value, set: &FieldSet) -> Value {
    if set.is_empty() {
        return v.clone();
    }
    remove_items(ctx, v, set, ctx.root).unwrap_or_else(|| Value::Object(Map::new()))
}

/// Drops from `merged` the map entries the applied configuration set to `null` (Kubernetes' typed
/// objects drop them when converting back).
fn strip_applied_nulls(ctx: &Ctx, merged: &mut Value, applied: &Value, ty: Ty) {
    match ctx.shape(ty, &[Some(merged), Some(applied)]) {
        Shape::Leaf => {}
        Shape::Map(node) => {
            let (Some(mm), Some(am)) = (merged.as_object_mut(), applied.as_object()) else {
                return;
            };
            for (k, av) in am {
                if av.is_null() {
                    if mm.get(k).is_some_and(Value::is_null) {
                        mm.remove(k);
                    }
                } else if let Some(mv) = mm.get_mut(k) {
                    let (cty, _) = ctx.map_child(node, k);
                    strip_applied_nulls(ctx, mv, av, cty);
                }
            }
        }
        Shape::List(list) => {
            let (Some(ma), Some(aa)) = (merged.as_array_mut(), applied.as_array()) else {
                return;
            };
            let applied_items: BTreeMap<PathElement, &Value> = aa
                .iter()
                .filter_map(|item| item_pe(&list, item).ok().map(|pe| (pe, item)))
                .collect();
            for item in ma.iter_mut() {
                if let Ok(pe) = item_pe(&list, item) {
                    if let Some(av) = applied_items.get(&pe) {
                        strip_applied_nulls(ctx, item, av, list.item);
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// managedFields entries
// ---------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Operation {
    Apply,
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: Operation,
    api_version: String,
    subresource: String,
    time: Option<String>,
    set: FieldSet,
}

impl Entry {
    /// Upstream's manager identifier: the entry without time and fields, and without apiVersion for
    /// appliers, as JSON in `ManagedFieldsEntry` field order.
    fn identifier(&self) -> String {
        identifier(
            &self.manager,
            self.operation,
            &self.api_version,
            &self.subresource,
        )
    }

    /// As Kubernetes prints a manager in conflict messages.
    fn printed(&self) -> String {
        let mut out = go_quote(&self.manager);
        if !self.subresource.is_empty() {
            out.push_str(&format!(
                " with subresource {}",
                go_quote(&self.subresource)
            ));
        }
        if self.operation == Operation::Update {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        if !self.manager.is_empty() {
            m.insert("manager".into(), Value::from(self.manager.clone()));
        }
        m.insert("operation".into(), Value::from(self.operation.as_str()));
        m.insert("apiVersion".into(), Value::from(self.api_version.clone()));
        if let Some(t) = &self.time {
            m.insert("time".into(), Value::from(t.clone()));
        }
        m.insert("fieldsType".into(), Value::from("FieldsV1"));
        m.insert("fieldsV1".into(), self.set.to_fields_v1());
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), Value::from(self.subresource.clone()));
        }
        Value::Object(m)
    }
}

fn identifier(manager: &str, operation: Operation, api_version: &str, subresource: &str) -> String {
    let mut m = Map::new();
    if !manager.is_empty() {
        m.insert("manager".into(), Value::from(manager));
    }
    m.insert("operation".into(), Value::from(operation.as_str()));
    if operation == Operation::Update && !api_version.is_empty() {
        m.insert("apiVersion".into(), Value::from(api_version));
    }
    if !subresource.is_empty() {
        m.insert("subresource".into(), Value::from(subresource));
    }
    Value::Object(m).to_string()
}

/// The decoded managedFields, by manager identifier.
#[derive(Debug, Clone, Default)]
struct Managed {
    entries: BTreeMap<String, Entry>,
}

fn managed_fields_of(obj: &Value) -> Option<&Value> {
    obj.get("metadata")?
        .get("managedFields")
        .filter(|v| !v.is_null())
}

fn remove_managed_fields(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
}

fn without_managed_fields(obj: &Value) -> Value {
    let mut o = obj.clone();
    remove_managed_fields(&mut o);
    o
}

fn set_managed_fields(obj: &mut Value, encoded: Option<Value>) {
    match encoded {
        None => remove_managed_fields(obj),
        Some(list) => {
            if let Some(root) = obj.as_object_mut() {
                let meta = root
                    .entry("metadata")
                    .or_insert_with(|| Value::Object(Map::new()));
                if !meta.is_object() {
                    *meta = Value::Object(Map::new());
                }
                if let Some(meta) = meta.as_object_mut() {
                    meta.insert("managedFields".into(), list);
                }
            }
        }
    }
}

/// `[]` or `[{}]`: the client asks to clear managedFields.
fn is_reset_managed_fields(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Array(a)) if a.is_empty() => true,
        Some(Value::Array(a)) if a.len() == 1 => match &a[0] {
            Value::Object(m) => m.values().all(|v| match v {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                Value::Object(o) => o.is_empty(),
                _ => false,
            }),
            _ => false,
        },
        _ => false,
    }
}

fn decode_managed(v: Option<&Value>) -> Result<Managed, String> {
    let mut managed = Managed::default();
    let Some(v) = v else {
        return Ok(managed);
    };
    let Value::Array(items) = v else {
        return Err("managedFields must be a list".into());
    };
    for (i, item) in items.iter().enumerate() {
        let Value::Object(m) = item else {
            return Err(format!("managed fields entry {i} must be an object"));
        };
        let text = |key: &str| -> Result<String, String> {
            match m.get(key) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(format!(
                    "{key} of managed fields entry {i} must be a string"
                )),
            }
        };
        let operation = match text("operation")?.as_str() {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            _ => return Err("operation must be `Apply` or `Update`".into()),
        };
        let api_version = text("apiVersion")?;
        if api_version.is_empty() {
            return Err("apiVersion must not be empty".into());
        }
        match text("fieldsType")?.as_str() {
            "FieldsV1" => {}
            "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
            other => {
                return Err(format!(
                    "invalid fieldsType {} in managed fields entry {i}",
                    go_quote(other)
                ))
            }
        }
        let set = match m.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::default(),
            Some(f) => {
                FieldSet::from_fields_v1(f).map_err(|e| format!("error decoding set: {e}"))?
            }
        };
        let time = Some(text("time")?).filter(|t| !t.is_empty());
        let entry = Entry {
            manager: text("manager")?,
            operation,
            api_version,
            subresource: text("subresource")?,
            time,
            set,
        };
        managed.entries.insert(entry.identifier(), entry);
    }
    Ok(managed)
}

/// Seconds since the epoch of an RFC 3339 timestamp (0 when unparsable, like a missing time).
fn unix_seconds(t: &str) -> i64 {
    fn num(s: &str) -> Option<i64> {
        s.parse().ok()
    }
    let parse = || -> Option<i64> {
        let b = t.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        let (y, mo, d) = (num(t.get(0..4)?)?, num(t.get(5..7)?)?, num(t.get(8..10)?)?);
        let (h, mi, s) = (
            num(t.get(11..13)?)?,
            num(t.get(14..16)?)?,
            num(t.get(17..19)?)?,
        );
        let mut rest = t.get(19..)?;
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            rest = frac.get(digits..)?;
        }
        let offset = match rest {
            "Z" | "z" => 0,
            _ => {
                let sign = match rest.as_bytes().first()? {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return None,
                };
                sign * (num(rest.get(1..3)?)? * 3600 + num(rest.get(4..6)?)? * 60)
            }
        };
        // Days from the civil date (Howard Hinnant's algorithm).
        let y2 = if mo <= 2 { y - 1 } else { y };
        let era = y2.div_euclid(400);
        let yoe = y2 - era * 400;
        let mp = (mo + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Some(days * 86_400 + h * 3600 + mi * 60 + s - offset)
    };
    parse().unwrap_or(0)
}

/// managedFields in Kubernetes' order (Apply before Update, then by time, manager, apiVersion,
/// subresource); `None` when there are none.
fn encode_managed(managed: &Managed) -> Option<Value> {
    let mut entries: Vec<&Entry> = managed
        .entries
        .values()
        .filter(|e| !e.set.is_empty())
        .collect();
    if entries.is_empty() {
        return None;
    }
    entries.sort_by(|p, q| {
        p.operation
            .cmp(&q.operation)
            .then_with(|| {
                let ps = p.time.as_deref().map_or(0, unix_seconds);
                let qs = q.time.as_deref().map_or(0, unix_seconds);
                ps.cmp(&qs)
            })
            .then_with(|| p.manager.cmp(&q.manager))
            .then_with(|| p.api_version.cmp(&q.api_version))
            .then_with(|| p.subresource.cmp(&q.subresource))
    });
    Some(Value::Array(
        entries.into_iter().map(Entry::to_json).collect(),
    ))
}

/// Keeps at most `MAX_UPDATE_MANAGERS` Update entries by merging the oldest into per-version
/// `ancient-changes` entries.
fn cap_update_managers(managed: &mut Managed) {
    let mut updaters: Vec<(i64, String)> = managed
        .entries
        .iter()
        .filter(|(_, e)| e.operation == Operation::Update)
        .map(|(id, e)| (e.time.as_deref().map_or(0, unix_seconds), id.clone()))
        .collect();
    if updaters.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    updaters.sort();
    let mut length = updaters.len();
    let mut first_of_version: HashMap<String, String> = HashMap::new();
    for (_, id) in updaters {
        if length <= MAX_UPDATE_MANAGERS {
            break;
        }
        let Some(entry) = managed.entries.get(&id).cloned() else {
            continue;
        };
        let version = entry.api_version.clone();
        let bucket_id = identifier(ANCIENT_CHANGES_MANAGER, Operation::Update, &version, "");
        match first_of_version.get(&version) {
            Some(first) => {
                if !managed.entries.contains_key(&bucket_id) {
                    if let Some(first_entry) = managed.entries.remove(first) {
                        managed.entries.insert(
                            bucket_id.clone(),
                            Entry {
                                manager: ANCIENT_CHANGES_MANAGER.into(),
                                operation: Operation::Update,
                                api_version: version.clone(),
                                subresource: String::new(),
                                time: first_entry.time.clone(),
                                set: first_entry.set,
                            },
                        );
                    }
                }
                if id == bucket_id {
                    continue;
                }
                managed.entries.remove(&id);
                if let Some(bucket) = managed.entries.get_mut(&bucket_id) {
                    bucket.set = bucket.set.union(&entry.set);
                    bucket.time = entry.time.clone();
                }
                length -= 1;
            }
            None => {
                first_of_version.insert(version, id);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Ownership updates (upstream merge.Updater)
// ---------------------------------------------------------------------------------------------------

/// Compares old and new, and takes changed fields from every manager but `workflow`: fields another
/// manager owns that were added or modified are conflicts (an error unless `force`; with force they
/// leave that manager's set), removed fields leave every other set. Empty entries are dropped.
#[allow(clippy::too_many_arguments)]
fn update_managers(
    ctx: &Ctx,
    old: Option<&Value>,
    new: &Value,
    managed: &mut Managed,
    workflow: &str,
    force: bool,
    ignored: &FieldSet,
) -> Result<Comparison, Vec<Conflict>> {
    let mut cmp = compare(ctx, old, new, ctx.root);
    cmp.exclude(ignored);
    let changed = cmp.modified.union(&cmp.added);
    let mut conflicts: Vec<(String, FieldSet)> = Vec::new();
    for (id, entry) in &managed.entries {
        if id == workflow {
            continue;
        }
        let c = entry.set.intersection(&changed);
        if !c.is_empty() {
            conflicts.push((id.clone(), c));
        }
    }
    if !force && !conflicts.is_empty() {
        let mut out = Vec::new();
        for (id, set) in &conflicts {
            let Some(entry) = managed.entries.get(id) else {
                continue;
            };
            let printed = entry.printed();
            for path in set.paths() {
                out.push(Conflict {
                    manager: entry.manager.clone(),
                    field: path_string(&path),
                    printed_manager: printed.clone(),
                });
            }
        }
        return Err(out);
    }
    for (id, c) in &conflicts {
        if let Some(entry) = managed.entries.get_mut(id) {
            entry.set = entry.set.difference(c);
        }
    }
    if !cmp.removed.is_empty() {
        for (id, entry) in managed.entries.iter_mut() {
            if id != workflow {
                entry.set = entry.set.difference(&cmp.removed);
            }
        }
    }
    managed.entries.retain(|_, e| !e.set.is_empty());
    Ok(cmp)
}

/// Records a non-apply write of `new` (over `old`, None = create) by `manager` (upstream
/// managedFieldsUpdater + stripMeta + Updater.Update).
#[allow(clippy::too_many_arguments)]
fn track_into(
    ctx: &Ctx,
    managed: &mut Managed,
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    api_version: &str,
    subresource: &str,
    now: &str,
    ignored: &FieldSet,
) {
    let Ok(cmp) = update_managers(ctx, old, new, managed, CURRENT_OPERATION, true, ignored) else {
        return;
    };
    let set = cmp
        .modified
        .union(&cmp.added)
        .difference(&cmp.removed)
        .recursive_difference(ignored)
        .difference(&strip_set());
    if set.is_empty() {
        return;
    }
    let id = identifier(manager, Operation::Update, api_version, subresource);
    match managed.entries.get_mut(&id) {
        Some(prev) => {
            prev.set = prev.set.union(&set);
            prev.api_version = api_version.to_string();
            prev.time = Some(now.to_string());
        }
        None => {
            managed.entries.insert(
                id,
                Entry {
                    manager: manager.to_string(),
                    operation: Operation::Update,
                    api_version: api_version.to_string(),
                    subresource: subresource.to_string(),
                    time: Some(now.to_string()),
                    set,
                },
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Apply
// ---------------------------------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
fn apply_impl(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    api_version: &str,
    definition: &str,
    subresource: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    if !applied.is_object() {
        return Err(ApplyError::Invalid(
            "the applied configuration must be a JSON object".into(),
        ));
    }
    if managed_fields_of(applied).is_some() {
        return Err(ApplyError::Invalid(
            "metadata.managedFields must be nil".into(),
        ));
    }
    if let Some(v) = applied.get("apiVersion").and_then(Value::as_str) {
        if v != api_version {
            return Err(ApplyError::Invalid(format!(
                "Incorrect version specified in apply patch. Specified patch version: {v}, expected: {api_version}"
            )));
        }
    }
    let ctx = Ctx::new(definition);
    let ignored = reset_fields(subresource);
    let config = remove_root(&ctx, applied, &ignored);
    let config_set = to_field_set(&ctx, &config, ctx.root, true)
        .map_err(|e| ApplyError::Invalid(typed_patch_error(applied, api_version, &e)))?
        .recursive_difference(&ignored);

    let live_obj = live.map_or_else(|| Value::Object(Map::new()), without_managed_fields);
    let mut managed = decode_managed(live.and_then(managed_fields_of))
        .map_err(|e| ApplyError::Invalid(format!("failed to decode managed fields: {e}")))?;
    if managed.entries.is_empty() && live.is_some() {
        // Fields of an object nobody tracked belong to "before-first-apply".
        track_into(
            &ctx,
            &mut managed,
            None,
            &live_obj,
            BEFORE_FIRST_APPLY_MANAGER,
            api_version,
            subresource,
            now,
            &ignored,
        );
    }

    let run = |force: bool| {
        apply_core(
            &ctx,
            &live_obj,
            &config,
            &config_set,
            managed.clone(),
            manager,
            api_version,
            subresource,
            force,
            now,
            &ignored,
        )
    };
    let (mut result, managed) = match run(force) {
        Err(conflicts) if manager == "kubectl" => {
            // Upgrading from client-side apply: conflicts on fields the last-applied annotation
            // recorded (and that still match the live object) are taken over.
            match allowed_from_last_applied(&ctx, &live_obj, api_version) {
                Some(allowed) => {
                    let remaining: Vec<Conflict> = conflicts
                        .iter()
                        .filter(|c| !allowed.contains(&c.field))
                        .cloned()
                        .collect();
                    if remaining.is_empty() {
                        run(true).map_err(ApplyError::Conflicts)?
                    } else {
                        return Err(ApplyError::Conflicts(remaining));
                    }
                }
                None => return Err(ApplyError::Conflicts(conflicts)),
            }
        }
        other => other.map_err(ApplyError::Conflicts)?,
    };
    if manager == "kubectl" {
        sync_last_applied(&mut result, applied);
    }
    set_managed_fields(&mut result, encode_managed(&managed));
    Ok(result)
}

fn typed_patch_error(applied: &Value, api_version: &str, detail: &str) -> String {
    let meta = applied.get("metadata");
    let text = |k: &str| {
        meta.and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let kind = applied.get("kind").and_then(Value::as_str).unwrap_or("");
    // Go's GroupVersionKind.String(): "apps/v1, Kind=Deployment", "/v1, Kind=Pod".
    let group_version = if api_version.contains('/') {
        api_version.to_string()
    } else {
        format!("/{api_version}")
    };
    format!(
        "failed to create typed patch object ({}/{}; {}, Kind={}): {}",
        text("namespace"),
        text("name"),
        group_version,
        kind,
        detail
    )
}

/// One apply attempt (upstream Updater.Apply + stripMeta + managedFieldsUpdater).
#[allow(clippy::too_many_arguments)]
fn apply_core(
    ctx: &Ctx,
    live: &Value,
    config: &Value,
    config_set: &FieldSet,
    mut managed: Managed,
    manager: &str,
    api_version: &str,
    subresource: &str,
    force: bool,
    now: &str,
    ignored: &FieldSet,
) -> Result<(Value, Managed), Vec<Conflict>> {
    let merged =
        merge(ctx, Some(live), Some(config), ctx.root).unwrap_or_else(|| Value::Object(Map::new()));
    let id = identifier(manager, Operation::Apply, api_version, subresource);
    let previous = managed.entries.get(&id).cloned();
    managed.entries.insert(
        id.clone(),
        Entry {
            manager: manager.to_string(),
            operation: Operation::Apply,
            api_version: api_version.to_string(),
            subresource: subresource.to_string(),
            time: previous.as_ref().and_then(|p| p.time.clone()),
            set: config_set.clone(),
        },
    );
    let new_obj = prune(ctx, merged, &managed, previous.as_ref().map(|p| &p.set));
    let cmp = update_managers(ctx, Some(live), &new_obj, &mut managed, &id, force, ignored)?;
    let changed = !cmp.is_same();
    if let Some(entry) = managed.entries.get_mut(&id) {
        entry.set = entry.set.difference(&strip_set());
        if changed {
            entry.time = Some(now.to_string());
        }
    }
    managed.entries.retain(|_, e| !e.set.is_empty());
    let result = if changed {
        let mut out = new_obj;
        strip_applied_nulls(ctx, &mut out, config, ctx.root);
        out
    } else {
        live.clone()
    };
    Ok((result, managed))
}

/// Removes what the applier owned last time and no longer applies, unless someone else owns it
/// (upstream Updater.prune with addBackOwnedItems and addBackDanglingItems).
fn prune(ctx: &Ctx, merged: Value, managed: &Managed, last: Option<&FieldSet>) -> Value {
    let Some(last) = last.filter(|l| !l.is_empty()) else {
        return merged;
    };
    let lenient = |v: &Value| to_field_set(ctx, v, ctx.root, false).unwrap_or_default();
    let pruned = remove_root(ctx, &merged, last);
    let owned = managed
        .entries
        .values()
        .fold(FieldSet::default(), |acc, e| acc.union(&e.set));
    let merged_set = lenient(&merged);
    let pruned_set = lenient(&pruned);
    let pruned = remove_root(
        ctx,
        &merged,
        &merged_set.difference(&pruned_set.union(&owned)),
    );
    let pruned_set = lenient(&pruned);
    remove_root(
        ctx,
        &merged,
        &merged_set.difference(&pruned_set).intersection(last),
    )
}

/// The printed paths of the fields the client-side apply annotation recorded and that still match the
/// live object.
fn allowed_from_last_applied(ctx: &Ctx, live: &Value, api_version: &str) -> Option<Vec<String>> {
    let text = live
        .get("metadata")?
        .get("annotations")?
        .get(LAST_APPLIED_ANNOTATION)?
        .as_str()?;
    if text.is_empty() {
        return None;
    }
    let last: Value = serde_json::from_str(text).ok()?;
    if !last.is_object() || last.get("apiVersion").and_then(Value::as_str) != Some(api_version) {
        return None;
    }
    let set = to_field_set(ctx, &last, ctx.root, true).ok()?;
    let cmp = compare(ctx, Some(&last), live, ctx.root);
    let allowed = set
        .difference(&cmp.modified)
        .difference(&cmp.added)
        .difference(&cmp.removed);
    Some(allowed.paths().iter().map(|p| path_string(p)).collect())
}

/// JSON with object keys sorted (Go's encoding of `map[string]interface{}`).
fn sorted_json(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                if let Some(x) = m.get(k.as_str()) {
                    out.insert(k.clone(), sorted_json(x));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted_json).collect()),
        other => other.clone(),
    }
}

/// When `kubectl` applies server-side to an object carrying the client-side apply annotation, the
/// annotation becomes the applied configuration (so a later client-side apply computes right).
fn sync_last_applied(result: &mut Value, applied: &Value) {
    let has = result
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(LAST_APPLIED_ANNOTATION))
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if !has {
        return;
    }
    let mut config = applied.clone();
    if let Some(annotations) = config
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
    let encoded = format!("{}\n", sorted_json(&config));
    if let Some(annotations) = result
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        annotations.insert(LAST_APPLIED_ANNOTATION.into(), Value::from(encoded));
    }
}

// ---------------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DEPLOY: &str = "io.k8s.api.apps.v1.Deployment";
    const T1: &str = "2024-01-01T00:00:00Z";
    const T2: &str = "2024-01-01T00:01:00Z";
    const T3: &str = "2024-01-01T00:02:00Z";

    fn deployment(replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "main", "image": image}]}
                }
            }
        })
    }

    fn entries(obj: &Value) -> Vec<Value> {
        obj["metadata"]["managedFields"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
        obj["metadata"]["managedFields"]
            .as_array()?
            .iter()
            .find(|e| e["manager"] == manager && e["operation"] == operation)
    }

    fn f(name: &str) -> PathElement {
        PathElement::Field(name.into())
    }

    fn conflicts(r: Result<Value, ApplyError>) -> ApplyError {
        match r {
            Err(e @ ApplyError::Conflicts(_)) => e,
            other => panic!("expected conflicts, got {other:?}"),
        }
    }

    #[test]
    fn create_by_apply_records_the_applied_fields() {
        let cfg = deployment(3, "nginx:1");
        let out = apply(None, &cfg, "kubectl", "apps/v1", DEPLOY, false, T1).expect("apply");
        let mut expected = cfg.clone();
        remove_managed_fields(&mut expected);
        assert_eq!(without_managed_fields(&out), expected);
        let mf = entries(&out);
        assert_eq!(mf.len(), 1);
        assert_eq!(
            mf[0],
            json!({
                "manager": "kubectl",
                "operation": "Apply",
                "apiVersion": "apps/v1",
                "time": T1,
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {
                        "f:replicas": {},
                        "f:selector": {},
                        "f:template": {
                            "f:metadata": {"f:labels": {"f:app": {}}},
                            "f:spec": {"f:containers": {"k:{\"name\":\"main\"}": {".": {}, "f:image": {}, "f:name": {}}}}
                        }
                    }
                }
            })
        );
        // Key order of the serialized fieldsV1 follows Kubernetes ("." first, then sorted).
        let text = serde_json::to_string(&mf[0]["fieldsV1"]).expect("json");
        assert!(
            text.contains(r#""k:{\"name\":\"main\"}":{".":{},"f:image":{},"f:name":{}}"#),
            "{text}"
        );
    }

    #[test]
    fn reapply_with_changed_image_updates_object_and_time() {
        let live = apply(
            None,
            &deployment(3, "nginx:1"),
            "kubectl",
            "apps/v1",
            DEPLOY,
            false,
            T1,
        )
        .expect("create");
        let out = apply(
            Some(&live),
            &deployment(3, "nginx:2"),
            "kubectl",
            "apps/v1",
            DEPLOY,
            false,
            T2,
        )
        .expect("apply");
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:2"
        );
        let mf = entries(&out);
        assert_eq!(mf.len(), 1);
        assert_eq!(mf[0]["time"], T2);
        // A no-op apply keeps the object and the timestamp.
        let again = apply(
            Some(&out),
            &deployment(3, "nginx:2"),
            "kubectl",
            "apps/v1",
            DEPLOY,
            false,
            T3,
        )
        .expect("noop");
        assert_eq!(entries(&again)[0]["time"], T2);
        assert_eq!(without_managed_fields(&again), without_managed_fields(&out));
    }

    #[test]
    fn conflict_with_client_side_apply_manager_and_force() {
        let mut live = deployment(3, "nginx:1");
        track_update(
            None,
            &mut live,
            "kubectl-client-side-apply",
            "apps/v1",
            DEPLOY,
            "",
            T1,
        );
        let csa = entry(&live, "kubectl-client-side-apply", "Update").expect("csa entry");
        assert_eq!(
            csa["fieldsV1"]["f:metadata"],
            json!({"f:labels": {".": {}, "f:app": {}}})
        );
        assert!(csa["fieldsV1"]["f:spec"]["f:replicas"].is_object());

        let err = conflicts(apply(
            Some(&live),
            &deployment(5, "nginx:1"),
            "kubectl",
            "apps/v1",
            DEPLOY,
            false,
            T2,
        ));
        assert_eq!(
            err.message(),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
        );
        assert_eq!(
            err.causes(),
            vec![
                json!({"reason": "FieldManagerConflict", "message": "conflict with \"kubectl-client-side-apply\" using apps/v1", "field": ".spec.replicas"})
            ]
        );
        let ApplyError::Conflicts(list) = &err else {
            unreachable!()
        };
        assert_eq!(list[0].manager, "kubectl-client-side-apply");

        // Two conflicting fields: the plural form.
        let err = conflicts(apply(
            Some(&live),
            &deployment(5, "nginx:2"),
            "kubectl",
            "apps/v1",
            DEPLOY,
            false,
            T2,
        ));
        assert_eq!(
            err.message(),
            "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name=\"main\"].image"
        );

        // Force takes ownership away from the other manager.
        let out = apply(
            Some(&live),
            &deployment(5, "nginx:1"),
            "kubectl",
            "apps/v1",
            DEPLOY,
            true,
            T2,
        )
        .expect("force");
        assert_eq!(out["spec"]["replicas"], 5);
        let csa =
            entry(&out, "kubectl-client-side-apply", "Update").expect("csa still owns the rest");
        assert!(csa["fieldsV1"]["f:spec"].get("f:replicas").is_none());
        assert!(csa["fieldsV1"]["f:spec"]["f:template"].is_object());
        let mine = entry(&out, "kubectl", "Apply").expect("apply entry");
        assert!(mine["fieldsV1"]["f:spec"]["f:replicas"].is_object());
        // Apply entries come first.
        assert_eq!(entries(&out)[0]["operation"], "Apply");
    }

    #[test]
    fn equal_values_are_shared_not_conflicts() {
        let mut live = deployment(3, "nginx:1");
        track_update(
            None,
            &mut live,
            "kubectl-client-side-apply",
            "apps/v1",
            DEPLOY,
            "",
            T1,
        );
        let out = apply(
            Some(&live),
            &deployment(3, "nginx:1"),
            "kubectl",
            "apps/v1",
            DEPLOY,
            false,
            T2,
        )
        .expect("shared");
        let csa = entry(&out, "kubectl-client-side-apply", "Update").expect("csa");
        let mine = entry(&out, "kubectl", "Apply").expect("apply");
        assert!(csa["fieldsV1"]["f:spec"]["f:replicas"].is_object());
        assert!(mine["fieldsV1"]["f:spec"]["f:replicas"].is_object());
        // Nothing changed: the apply entry carries no time, like upstream.
        assert!(mine.get("time").is_none());
    }

    #[test]
    fn fields_dropped_from_the_config_are_removed() {
        let mut cfg = deployment(3, "nginx:1");
        cfg["metadata"]["labels"]["tier"] = json!("front");
        cfg["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .expect("containers")
            .push(json!({"name": "side", "image": "busybox"}));
        let live = apply(None, &cfg, "kubectl", "apps/v1", DEPLOY, false, T1).expect("create");
        let out = apply(
            Some(&live),
            &deployment(3, "nginx:1"),
            "kubectl",
            "apps/v1",
            DEPLOY,
            false,
            T2,
        )
        .expect("apply");
        assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
        let containers = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("containers");
        assert_eq!(containers.len(), 1);
        // Dropping replicas removes it too (nobody else owns it).
        let mut cfg = deployment(3, "nginx:1");
        cfg["spec"]
            .as_object_mut()
            .expect("spec")
            .remove("replicas");
        let out2 = apply(Some(&out), &cfg, "kubectl", "apps/v1", DEPLOY, false, T3).expect("apply");
        assert!(out2["spec"].get("replicas").is_none());
    }

    #[test]
    fn fields_owned_by_others_survive_pruning() {
        let live = apply(
            None,
            &deployment(3, "nginx:1"),
            "kubectl",
            "apps/v1",
            DEPLOY,
            false,
            T1,
        )
        .expect("create");
        // Another manager (an HPA) writes replicas.
        let mut scaled = live.clone();
        scaled["spec"]["replicas"] = json!(7);
        track_update(Some(&live), &mut scaled, "hpa", "apps/v1", DEPLOY, "", T2);
        let hpa = entry(&scaled, "hpa", "Update").expect("hpa");
        assert_eq!(hpa["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
        // kubectl's Apply entry lost replicas (the write changed it).
        let mine = entry(&scaled, "kubectl", "Apply").expect("apply");
        assert!(mine["fieldsV1"]["f:spec"].get("f:replicas").is_none());
        let mut cfg = deployment(3, "nginx:1");
        cfg["spec"]
            .as_object_mut()
            .expect("spec")
            .remove("replicas");
        let out =
            apply(Some(&scaled), &cfg, "kubectl", "apps/v1", DEPLOY, false, T3).expect("apply");
        assert_eq!(out["spec"]["replicas"], 7);
    }

    #[test]
    fn map_lists_merge_per_key_and_sets_union() {
        let mut live = deployment(1, "nginx:1");
        live["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .expect("containers")
            .push(json!({"name": "side", "image": "busybox"}));
        live["metadata"]["finalizers"] = json!(["a.example/x"]);
        track_update(None, &mut live, "creator", "apps/v1", DEPLOY, "", T1);
        let cfg = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "finalizers": ["b.example/y"]},
            "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:1", "ports": [{"containerPort": 80}]}]}}}
        });
        let out = apply(Some(&live), &cfg, "other", "apps/v1", DEPLOY, false, T2).expect("apply");
        let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("containers")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, vec!["main", "side"]);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 80}])
        );
        assert_eq!(
            out["metadata"]["finalizers"],
            json!(["a.example/x", "b.example/y"])
        );
        let mine = entry(&out, "other", "Apply").expect("apply");
        assert_eq!(
            mine["fieldsV1"]["f:metadata"],
            json!({"f:finalizers": {"v:\"b.example/y\"": {}}})
        );
        // The protocol key defaults to TCP.
        let c = &mine["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
            ["k:{\"name\":\"main\"}"];
        assert!(
            c["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"].is_object(),
            "{c}"
        );
    }

    #[test]
    fn track_update_on_create_and_update() {
        let mut obj = deployment(2, "nginx:1");
        obj["spec"]["strategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}});
        track_update(None, &mut obj, "kubectl-create", "apps/v1", DEPLOY, "", T1);
        let e = entry(&obj, "kubectl-create", "Update").expect("entry");
        assert_eq!(e["apiVersion"], "apps/v1");
        assert_eq!(e["time"], T1);
        assert!(e.get("subresource").is_none());
        // Struct fields of the zero object carry no "."; maps and list items do.
        let spec = &e["fieldsV1"]["f:spec"];
        assert!(spec.get(".").is_none());
        assert!(spec["f:strategy"].get(".").is_none());
        assert_eq!(spec["f:strategy"]["f:type"], json!({}));
        assert_eq!(
            spec["f:template"]["f:metadata"]["f:labels"],
            json!({".": {}, "f:app": {}})
        );
        assert!(e["fieldsV1"].get("f:apiVersion").is_none());
        assert!(e["fieldsV1"]["f:metadata"].get("f:name").is_none());

        // A later edit of the image by another manager moves the field.
        let old = obj.clone();
        obj["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        track_update(
            Some(&old),
            &mut obj,
            "kubectl-edit",
            "apps/v1",
            DEPLOY,
            "",
            T2,
        );
        let edit = entry(&obj, "kubectl-edit", "Update").expect("edit");
        assert_eq!(
            edit["fieldsV1"],
            json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"main\"}": {"f:image": {}}}}}}})
        );
        let create = entry(&obj, "kubectl-create", "Update").expect("create");
        let c = &create["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
            ["k:{\"name\":\"main\"}"];
        assert!(c.get("f:image").is_none());
        assert!(c.get("f:name").is_some());
        // Update entries are ordered by time.
        let mf = entries(&obj);
        assert_eq!(mf[0]["manager"], "kubectl-create");
        assert_eq!(mf[1]["manager"], "kubectl-edit");

        // A status write is recorded for the status subresource only.
        let old = obj.clone();
        obj["status"] = json!({"replicas": 2});
        track_update(
            Some(&old),
            &mut obj,
            "controller",
            "apps/v1",
            DEPLOY,
            "status",
            T3,
        );
        let st = entry(&obj, "controller", "Update").expect("status entry");
        assert_eq!(st["subresource"], "status");
        assert_eq!(st["fieldsV1"], json!({"f:status": {"f:replicas": {}}}));
        // A main-resource write never owns status.
        let old = obj.clone();
        obj["status"] = json!({"replicas": 3});
        track_update(Some(&old), &mut obj, "someone", "apps/v1", DEPLOY, "", T3);
        assert!(entry(&obj, "someone", "Update").is_none());
    }

    #[test]
    fn untracked_objects_and_resets() {
        // Existing object without managedFields: updates are not tracked.
        let old = deployment(1, "nginx:1");
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(2);
        track_update(Some(&old), &mut new, "x", "apps/v1", DEPLOY, "", T1);
        assert!(new["metadata"].get("managedFields").is_none());
        // ...but the first apply attributes them to before-first-apply.
        let err = conflicts(apply(
            Some(&new),
            &deployment(4, "nginx:1"),
            "kubectl",
            "apps/v1",
            DEPLOY,
            false,
            T2,
        ));
        assert!(
            err.message()
                .contains("\"before-first-apply\" using apps/v1: .spec.replicas"),
            "{}",
            err.message()
        );

        // managedFields: [{}] clears them.
        let mut tracked = deployment(1, "nginx:1");
        track_update(None, &mut tracked, "x", "apps/v1", DEPLOY, "", T1);
        let mut cleared = tracked.clone();
        cleared["metadata"]["managedFields"] = json!([{}]);
        track_update(Some(&tracked), &mut cleared, "y", "apps/v1", DEPLOY, "", T2);
        assert!(cleared["metadata"].get("managedFields").is_none());
    }

    #[test]
    fn last_applied_annotation_allows_kubectl_upgrade() {
        let mut live = deployment(3, "nginx:1");
        let last = sorted_json(&deployment(3, "nginx:1")).to_string();
        live["metadata"]["annotations"] = json!({ LAST_APPLIED_ANNOTATION: last });
        track_update(
            None,
            &mut live,
            "kubectl-client-side-apply",
            "apps/v1",
            DEPLOY,
            "",
            T1,
        );
        let out = apply(
            Some(&live),
            &deployment(5, "nginx:1"),
            "kubectl",
            "apps/v1",
            DEPLOY,
            false,
            T2,
        )
        .expect("upgrade");
        assert_eq!(out["spec"]["replicas"], 5);
        let ann = out["metadata"]["annotations"][LAST_APPLIED_ANNOTATION]
            .as_str()
            .expect("annotation");
        let parsed: Value = serde_json::from_str(ann).expect("json");
        assert_eq!(parsed["spec"]["replicas"], 5);
        // Another manager name gets the conflict.
        assert!(apply(
            Some(&live),
            &deployment(5, "nginx:1"),
            "other",
            "apps/v1",
            DEPLOY,
            false,
            T2
        )
        .is_err());
    }

    #[test]
    fn invalid_configurations() {
        let mut cfg = deployment(1, "nginx:1");
        cfg["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .expect("containers")
            .push(json!({"name": "main", "image": "x"}));
        let err = apply(None, &cfg, "m", "apps/v1", DEPLOY, false, T1).expect_err("duplicate");
        assert_eq!(
            err.message(),
            "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): .spec.template.spec.containers: duplicate entries for key [name=\"main\"]"
        );
        let mut cfg = deployment(1, "nginx:1");
        cfg["metadata"]["managedFields"] = json!([]);
        assert_eq!(
            apply(None, &cfg, "m", "apps/v1", DEPLOY, false, T1)
                .expect_err("mf")
                .message(),
            "metadata.managedFields must be nil"
        );
        let err = apply(
            None,
            &deployment(1, "x"),
            "m",
            "apps/v1beta1",
            DEPLOY,
            false,
            T1,
        )
        .expect_err("version");
        assert!(err
            .message()
            .starts_with("Incorrect version specified in apply patch."));
    }

    #[test]
    fn status_in_applied_config_is_ignored() {
        let mut cfg = deployment(1, "nginx:1");
        cfg["status"] = json!({"replicas": 9});
        let out = apply(None, &cfg, "m", "apps/v1", DEPLOY, false, T1).expect("apply");
        assert!(out.get("status").is_none());
        assert!(entries(&out)[0]["fieldsV1"].get("f:status").is_none());
        // Status apply to the status subresource owns status only.
        let live = out;
        let st = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 50}, "status": {"replicas": 1}});
        let out = apply_subresource(&live, &st, "ctl", "apps/v1", DEPLOY, "status", false, T2)
            .expect("status apply");
        assert_eq!(out["status"]["replicas"], 1);
        assert_eq!(out["spec"]["replicas"], 1);
        let e = entry(&out, "ctl", "Apply").expect("entry");
        assert_eq!(e["subresource"], "status");
        assert_eq!(e["fieldsV1"], json!({"f:status": {"f:replicas": {}}}));
    }

    #[test]
    fn nulls_in_config_remove_fields() {
        let live = apply(
            None,
            &deployment(3, "nginx:1"),
            "a",
            "apps/v1",
            DEPLOY,
            false,
            T1,
        )
        .expect("create");
        let mut cfg = deployment(3, "nginx:1");
        cfg["metadata"]["creationTimestamp"] = Value::Null;
        cfg["spec"]["template"]["metadata"]["creationTimestamp"] = Value::Null;
        let out = apply(Some(&live), &cfg, "a", "apps/v1", DEPLOY, false, T2).expect("apply");
        assert!(out["metadata"].get("creationTimestamp").is_none());
        assert!(out["spec"]["template"]["metadata"]
            .get("creationTimestamp")
            .is_none());
        let e = entry(&out, "a", "Apply").expect("entry");
        assert!(
            e["fieldsV1"]["f:spec"]["f:template"]["f:metadata"]["f:creationTimestamp"].is_object()
        );
    }

    #[test]
    fn fields_v1_round_trip_and_set_algebra() {
        let text = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}}}, "f:x": {"v:\"a\"": {}, "i:3": {}}}
        });
        let set = FieldSet::from_fields_v1(&text).expect("parse");
        assert_eq!(set.to_fields_v1(), text);
        assert!(set.has(&[f("metadata"), f("labels")]));
        assert!(set.has(&[f("metadata"), f("labels"), f("app")]));
        assert!(!set.has(&[f("metadata")]));
        let labels = top_level_set(&["metadata"]);
        assert_eq!(
            set.recursive_difference(&labels).to_fields_v1()["f:metadata"],
            Value::Null
        );
        let paths: Vec<String> = set.paths().iter().map(|p| path_string(p)).collect();
        assert_eq!(
            paths,
            vec![
                ".metadata.labels",
                ".metadata.labels.app",
                ".spec.ports[port=80,protocol=\"TCP\"]",
                ".spec.ports[port=80,protocol=\"TCP\"].port",
                ".spec.x[=\"a\"]",
                ".spec.x[3]",
            ]
        );
        assert!(FieldSet::from_fields_v1(&json!({"k:[1]": {}})).is_err());
    }

    #[test]
    fn update_managers_are_capped() {
        let mut obj =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}});
        track_update(
            None,
            &mut obj,
            "m0",
            "v1",
            "io.k8s.api.core.v1.ConfigMap",
            "",
            "2024-01-01T00:00:00Z",
        );
        for i in 1..=12 {
            let old = obj.clone();
            obj["data"][format!("k{i}")] = json!("v");
            let t = format!("2024-01-01T00:00:{i:02}Z");
            track_update(
                Some(&old),
                &mut obj,
                &format!("m{i}"),
                "v1",
                "io.k8s.api.core.v1.ConfigMap",
                "",
                &t,
            );
        }
        let mf = entries(&obj);
        assert_eq!(mf.len(), 10);
        let ancient = mf
            .iter()
            .find(|e| e["manager"] == ANCIENT_CHANGES_MANAGER)
            .expect("bucket");
        assert_eq!(
            ancient["fieldsV1"]["f:data"].as_object().map(Map::len),
            Some(4)
        );
    }

    #[test]
    fn several_managers_conflict_in_sorted_order() {
        let svc = "io.k8s.api.core.v1.Service";
        let base = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s", "labels": {"a": "1", "b": "1"}},
            "spec": {"ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}], "type": "ClusterIP"}
        });
        let mut live = base.clone();
        track_update(None, &mut live, "zeta", "v1", svc, "", T1);
        let old = live.clone();
        live["metadata"]["labels"]["b"] = json!("2");
        track_update(Some(&old), &mut live, "alpha", "v1", svc, "status", T2);
        // The config leaves out protocol: it defaults to TCP, so the port merges with the live one.
        let cfg = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s", "labels": {"a": "9", "b": "9"}},
            "spec": {"ports": [{"port": 80, "targetPort": 9090}]}
        });
        let err = conflicts(apply(Some(&live), &cfg, "me", "v1", svc, false, T3));
        assert_eq!(
            err.message(),
            "Apply failed with 3 conflicts: conflicts with \"alpha\" with subresource \"status\" using v1:\n- .metadata.labels.b\nconflicts with \"zeta\" using v1:\n- .metadata.labels.a\n- .spec.ports[port=80,protocol=\"TCP\"].targetPort"
        );
        let out = apply(Some(&live), &cfg, "me", "v1", svc, true, T3).expect("force");
        assert_eq!(
            out["spec"]["ports"],
            json!([{"port": 80, "targetPort": 9090, "protocol": "TCP"}])
        );
        assert!(
            entry(&out, "alpha", "Update").is_none(),
            "alpha lost its only field"
        );
    }

    #[test]
    fn shared_fields_stay_when_one_applier_drops_them() {
        let cfg = deployment(2, "nginx:1");
        let live = apply(None, &cfg, "a", "apps/v1", DEPLOY, false, T1).expect("a");
        let live = apply(Some(&live), &cfg, "b", "apps/v1", DEPLOY, false, T2).expect("b");
        let mut less = deployment(2, "nginx:1");
        less["metadata"]
            .as_object_mut()
            .expect("meta")
            .remove("labels");
        let out = apply(Some(&live), &less, "a", "apps/v1", DEPLOY, false, T3).expect("a again");
        assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
        let out = apply(Some(&out), &less, "b", "apps/v1", DEPLOY, false, T3).expect("b again");
        assert!(out["metadata"].get("labels").is_none());
    }

    #[test]
    fn list_order_follows_upstream_merge() {
        let pod = "io.k8s.api.core.v1.Pod";
        let live = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}]}]}});
        let mut live2 = live.clone();
        track_update(None, &mut live2, "creator", "v1", pod, "", T1);
        let cfg = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a", "env": [{"name": "C", "value": "30"}, {"name": "D", "value": "4"}, {"name": "A", "value": "1"}]}]}});
        let out = apply(Some(&live2), &cfg, "me", "v1", pod, true, T2).expect("apply");
        let env: Vec<(String, String)> = out["spec"]["containers"][0]["env"]
            .as_array()
            .expect("env")
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().unwrap_or("").to_string(),
                    e["value"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["B", "C", "D", "A"]);
        assert_eq!(env[1].1, "30");
    }

    #[test]
    fn unix_seconds_parses_rfc3339() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), 0);
        assert_eq!(unix_seconds("2024-01-01T00:00:00Z"), 1_704_067_200);
        assert_eq!(unix_seconds("2024-01-01T01:00:00.5+01:00"), 1_704_067_200);
        assert_eq!(unix_seconds("garbage"), 0);
    }
}
