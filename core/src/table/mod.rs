//! Server-side `Table` printing (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`): the
//! column definitions and per-object cells kubectl shows for `kubectl get`, matching what the
//! real kube-apiserver prints (its `pkg/printers/internalversion` handlers), plus the default
//! `Name`/`Created At` table for every other resource and apimachinery's `HumanDuration`.
//!
//! This module owns only the presentation: it reads stored objects as JSON and never mutates
//! them. One file per resource family: `pod.rs`, `core.rs` (nodes, namespaces, config, services,
//! storage, leases), `events.rs`, `apps.rs` and `batch.rs`. Cells are computed as with
//! `-o wide` (the server always fills every column; kubectl hides `priority` > 0 ones).

mod apps;
mod batch;
mod core;
mod events;
mod pod;

use crate::resources::Resource;
use jiff::Timestamp;
use serde_json::{json, Map, Value};

/// What each row carries in `object` (`?includeObject=`; default `Metadata`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No `object` in the rows.
    None,
    /// A `PartialObjectMetadata` holding the object's `metadata`.
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter; anything unknown or absent is `Metadata`.
    pub fn parse(s: Option<&str>) -> IncludeObject {
        match s {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

/// The column definitions of `resource`'s table:
/// `{"name","type","format","description","priority"}` each.
pub fn column_definitions(resource: &Resource) -> Vec<Value> {
    printer(resource)
        .columns()
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.ty,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            })
        })
        .collect()
}

/// One table row for `obj`: `{"cells":[...],"object":{...}}` (plus `conditions` for finished
/// pods, as the apiserver does).
pub fn row(resource: &Resource, obj: &Value, include: IncludeObject, now: Timestamp) -> Value {
    let p = printer(resource);
    let mut out = Map::new();
    out.insert("cells".into(), Value::Array(p.cells(obj, now)));
    if let Printer::Pod = p {
        if let Some(conditions) = pod::row_conditions(obj) {
            out.insert("conditions".into(), conditions);
        }
    }
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            let metadata = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
            out.insert(
                "object".into(),
                json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": metadata,
                }),
            );
        }
        IncludeObject::Object => {
            out.insert("object".into(), obj.clone());
        }
    }
    Value::Object(out)
}

/// A whole `meta.k8s.io/v1` `Table` for `objs`; `list_metadata` (the list's `resourceVersion`,
/// `continue`, ...) becomes the table's `metadata`.
pub fn table(
    resource: &Resource,
    objs: &[Value],
    include: IncludeObject,
    list_metadata: Value,
    now: Timestamp,
) -> Value {
    let metadata = if list_metadata.is_object() {
        list_metadata
    } else {
        json!({})
    };
    let rows: Vec<Value> = objs
        .iter()
        .map(|o| row(resource, o, include, now))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions(resource),
        "rows": rows,
    })
}

/// apimachinery's `duration.HumanDuration`: a succinct duration with ~2-3 significant figures
/// ("5s", "119s", "3m10s", "61m", "3h4m", "47h", "2d3h", "367d", "2y1d", "8y").
pub fn human_duration(d: std::time::Duration) -> String {
    human_nanos(d.as_nanos().min(i128::MAX as u128) as i128)
}

/// `HumanDuration` over a signed number of nanoseconds: more than a second in the future is
/// `<invalid>`, less is `0s` (clock skew tolerance).
fn human_nanos(nanos: i128) -> String {
    const SEC: i128 = 1_000_000_000;
    let seconds = nanos / SEC;
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{}h", hours / 24, h)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{}d", hours / 24 / 365, dy)
        };
    }
    format!("{}y", hours / 24 / 365)
}

// ---------------------------------------------------------------------------------------------
// Printers and columns
// ---------------------------------------------------------------------------------------------

/// Which printer a resource uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Printer {
    Pod,
    Node,
    Namespace,
    ConfigMap,
    Secret,
    ServiceAccount,
    Service,
    Endpoints,
    PersistentVolume,
    PersistentVolumeClaim,
    StorageClass,
    Event,
    EventV1,
    Lease,
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    ControllerRevision,
    Job,
    CronJob,
    Default,
}

fn printer(r: &Resource) -> Printer {
    match (r.group, r.plural) {
        ("", "pods") => Printer::Pod,
        ("", "nodes") => Printer::Node,
        ("", "namespaces") => Printer::Namespace,
        ("", "configmaps") => Printer::ConfigMap,
        ("", "secrets") => Printer::Secret,
        ("", "serviceaccounts") => Printer::ServiceAccount,
        ("", "services") => Printer::Service,
        ("", "endpoints") => Printer::Endpoints,
        ("", "persistentvolumes") => Printer::PersistentVolume,
        ("", "persistentvolumeclaims") => Printer::PersistentVolumeClaim,
        ("storage.k8s.io", "storageclasses") => Printer::StorageClass,
        ("", "events") => Printer::Event,
        ("events.k8s.io", "events") => Printer::EventV1,
        ("coordination.k8s.io", "leases") => Printer::Lease,
        ("apps", "deployments") => Printer::Deployment,
        ("apps", "replicasets") => Printer::ReplicaSet,
        ("apps", "statefulsets") => Printer::StatefulSet,
        ("apps", "daemonsets") => Printer::DaemonSet,
        ("apps", "controllerrevisions") => Printer::ControllerRevision,
        ("batch", "jobs") => Printer::Job,
        ("batch", "cronjobs") => Printer::CronJob,
        _ => Printer::Default,
    }
}

impl Printer {
    fn columns(self) -> &'static [Col] {
        match self {
            Printer::Pod => pod::COLUMNS,
            Printer::Node => core::NODE_COLUMNS,
            Printer::Namespace => core::NAMESPACE_COLUMNS,
            Printer::ConfigMap => core::CONFIGMAP_COLUMNS,
            Printer::Secret => core::SECRET_COLUMNS,
            Printer::ServiceAccount => core::SERVICEACCOUNT_COLUMNS,
            Printer::Service => core::SERVICE_COLUMNS,
            Printer::Endpoints => core::ENDPOINTS_COLUMNS,
            Printer::PersistentVolume => core::PV_COLUMNS,
            Printer::PersistentVolumeClaim => core::PVC_COLUMNS,
            Printer::StorageClass => core::STORAGECLASS_COLUMNS,
            Printer::Event | Printer::EventV1 => events::COLUMNS,
            Printer::Lease => core::LEASE_COLUMNS,
            Printer::Deployment => apps::DEPLOYMENT_COLUMNS,
            Printer::ReplicaSet => apps::REPLICASET_COLUMNS,
            Printer::StatefulSet => apps::STATEFULSET_COLUMNS,
            Printer::DaemonSet => apps::DAEMONSET_COLUMNS,
            Printer::ControllerRevision => apps::CONTROLLERREVISION_COLUMNS,
            Printer::Job => batch::JOB_COLUMNS,
            Printer::CronJob => batch::CRONJOB_COLUMNS,
            Printer::Default => DEFAULT_COLUMNS,
        }
    }

    fn cells(self, o: &Value, now: Timestamp) -> Vec<Value> {
        match self {
            Printer::Pod => pod::cells(o, now),
            Printer::Node => core::node_cells(o, now),
            Printer::Namespace => core::namespace_cells(o, now),
            Printer::ConfigMap => core::configmap_cells(o, now),
            Printer::Secret => core::secret_cells(o, now),
            Printer::ServiceAccount => core::serviceaccount_cells(o, now),
            Printer::Service => core::service_cells(o, now),
            Printer::Endpoints => core::endpoints_cells(o, now),
            Printer::PersistentVolume => core::pv_cells(o, now),
            Printer::PersistentVolumeClaim => core::pvc_cells(o, now),
            Printer::StorageClass => core::storageclass_cells(o, now),
            Printer::Event => events::core_cells(o, now),
            Printer::EventV1 => events::v1_cells(o, now),
            Printer::Lease => core::lease_cells(o, now),
            Printer::Deployment => apps::deployment_cells(o, now),
            Printer::ReplicaSet => apps::replicaset_cells(o, now),
            Printer::StatefulSet => apps::statefulset_cells(o, now),
            Printer::DaemonSet => apps::daemonset_cells(o, now),
            Printer::ControllerRevision => apps::controllerrevision_cells(o, now),
            Printer::Job => batch::job_cells(o, now),
            Printer::CronJob => batch::cronjob_cells(o, now),
            Printer::Default => default_cells(o),
        }
    }
}

/// One column definition.
#[derive(Debug, Clone, Copy)]
struct Col {
    name: &'static str,
    ty: &'static str,
    format: &'static str,
    description: &'static str,
    priority: u8,
}

/// A normal column.
const fn col(name: &'static str, ty: &'static str, description: &'static str) -> Col {
    Col {
        name,
        ty,
        format: "",
        description,
        priority: 0,
    }
}

/// A `-o wide` only column.
const fn wide(name: &'static str, ty: &'static str, description: &'static str) -> Col {
    Col {
        name,
        ty,
        format: "",
        description,
        priority: 1,
    }
}

/// The leading `Name` column.
const NAME_COL: Col = Col {
    name: "Name",
    ty: "string",
    format: "name",
    description: NAME_DESC,
    priority: 0,
};
/// The `Age` column.
const AGE_COL: Col = col("Age", "string", CREATION_DESC);

const NAME_DESC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATION_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const CONTAINERS_DESC: &str = "Names of each container in the template.";
const IMAGES_DESC: &str = "Images referenced by each container in the template.";

/// The apiserver's default table, for resources without a printer.
const DEFAULT_COLUMNS: &[Col] = &[
    NAME_COL,
    Col {
        name: "Created At",
        ty: "date",
        format: "",
        description: CREATION_DESC,
        priority: 0,
    },
];

fn default_cells(o: &Value) -> Vec<Value> {
    let created = parse_time(at(o, &["metadata", "creationTimestamp"])).unwrap_or(ZERO_TIME);
    vec![
        name(o).into(),
        created.strftime("%Y-%m-%dT%H:%M:%SZ").to_string().into(),
    ]
}

// ---------------------------------------------------------------------------------------------
// JSON access helpers (absent or mistyped fields read as Go zero values)
// ---------------------------------------------------------------------------------------------

/// The value at `path`, if present and not null.
fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for key in path {
        cur = cur.get(key)?;
    }
    if cur.is_null() {
        None
    } else {
        Some(cur)
    }
}

/// The string at `path`, `""` when absent.
fn string<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or("")
}

/// The integer at `path`, if present.
fn opt_int(v: &Value, path: &[&str]) -> Option<i64> {
    let x = at(v, path)?;
    x.as_i64()
        .or_else(|| x.as_u64().map(|u| u.min(i64::MAX as u64) as i64))
        .or_else(|| x.as_f64().map(|f| f as i64))
}

/// The integer at `path`, `0` when absent.
fn int(v: &Value, path: &[&str]) -> i64 {
    opt_int(v, path).unwrap_or(0)
}

/// The boolean at `path`, if present.
fn opt_bool(v: &Value, path: &[&str]) -> Option<bool> {
    at(v, path).and_then(Value::as_bool)
}

/// The array at `path`, empty when absent.
fn list<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The object at `path`, if present.
fn object<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    at(v, path).and_then(Value::as_object)
}

/// The number of entries of the map at `path`.
fn map_len(v: &Value, path: &[&str]) -> usize {
    object(v, path).map_or(0, Map::len)
}

/// `metadata.name`.
fn name(o: &Value) -> &str {
    string(o, &["metadata", "name"])
}

/// Go's zero `time.Time`, `0001-01-01T00:00:00Z`.
const ZERO_TIME: Timestamp = Timestamp::constant(-62_135_596_800, 0);

/// A `metav1.Time`/`MicroTime`; `None` when absent, unparsable or the zero time.
fn parse_time(v: Option<&Value>) -> Option<Timestamp> {
    let t: Timestamp = v?.as_str()?.parse().ok()?;
    if t == ZERO_TIME {
        None
    } else {
        Some(t)
    }
}

/// `translateTimestampSince`: the human duration since `t`, `<unknown>` for no time.
fn since(t: Option<Timestamp>, now: Timestamp) -> String {
    match t {
        Some(t) => human_nanos(now.as_nanosecond() - t.as_nanosecond()),
        None => "<unknown>".into(),
    }
}

/// The human duration between two times.
fn between(start: Timestamp, end: Timestamp) -> String {
    human_nanos(end.as_nanosecond() - start.as_nanosecond())
}

/// The `Age` cell.
fn age(o: &Value, now: Timestamp) -> Value {
    since(parse_time(at(o, &["metadata", "creationTimestamp"])), now).into()
}

/// A resource quantity as printed (`Quantity.String()`); `0` when absent.
fn quantity(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".into(),
    }
}

/// `labels.FormatLabels`: sorted `k=v` joined by `,`, `<none>` when empty.
fn format_labels(m: Option<&Map<String, Value>>) -> String {
    let mut pairs: Vec<(&str, &str)> = m
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
        .collect();
    if pairs.is_empty() {
        return "<none>".into();
    }
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `metav1.LabelSelectorAsSelector(sel).String()`: `""` for a nil or empty selector; `Err` for
/// an invalid one.
fn selector_string(sel: Option<&Value>) -> Result<String, ()> {
    let Some(sel) = sel else {
        return Ok(String::new());
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(ml) = object(sel, &["matchLabels"]) {
        for (k, v) in ml {
            reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
        }
    }
    for e in list(sel, &["matchExpressions"]) {
        let key = string(e, &["key"]);
        let mut values: Vec<&str> = list(e, &["values"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let text = match string(e, &["operator"]) {
            op @ ("In" | "NotIn") => {
                if values.is_empty() {
                    return Err(());
                }
                values.sort_unstable();
                let word = if op == "In" { "in" } else { "notin" };
                format!("{key} {word} ({})", values.join(","))
            }
            "Exists" if values.is_empty() => key.to_string(),
            "DoesNotExist" if values.is_empty() => format!("!{key}"),
            _ => return Err(()),
        };
        reqs.push((key.to_string(), text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(","))
}

/// `metav1.FormatLabelSelector`: `<none>` when it selects by nothing, `<error>` when invalid.
fn format_label_selector(sel: Option<&Value>) -> String {
    match selector_string(sel) {
        Ok(s) if s.is_empty() => "<none>".into(),
        Ok(s) => s,
        Err(()) => "<error>".into(),
    }
}

/// `layoutContainerCells`: container names and images, each joined by `,`.
fn layout_containers(containers: &[Value]) -> (Value, Value) {
    let names: Vec<&str> = containers.iter().map(|c| string(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| string(c, &["image"])).collect();
    (names.join(",").into(), images.join(",").into())
}

/// Whether the condition of `ty` in `conditions` is `True` (the first of that type decides).
fn condition_true(conditions: &[Value], ty: &str) -> bool {
    conditions
        .iter()
        .find(|c| string(c, &["type"]) == ty)
        .is_some_and(|c| string(c, &["status"]) == "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{find, RESOURCES};
    use std::time::Duration;

    pub(super) fn now() -> Timestamp {
        "2024-06-01T12:00:00Z".parse().unwrap()
    }

    /// A timestamp `secs` seconds before `now()`.
    pub(super) fn ago(secs: i64) -> String {
        Timestamp::new(now().as_second() - secs, 0)
            .unwrap()
            .to_string()
    }

    pub(super) fn cells(group: &str, plural: &str, obj: Value) -> Vec<Value> {
        let r = RESOURCES
            .iter()
            .find(|r| r.group == group && r.plural == plural)
            .unwrap();
        row(r, &obj, IncludeObject::None, now())["cells"]
            .as_array()
            .unwrap()
            .clone()
    }

    pub(super) fn column_names(group: &str, plural: &str) -> Vec<(String, i64)> {
        let r = RESOURCES
            .iter()
            .find(|r| r.group == group && r.plural == plural)
            .unwrap();
        column_definitions(r)
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["priority"].as_i64().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn human_duration_upstream_cases() {
        let h = |s: u64| human_duration(Duration::from_secs(s));
        const M: u64 = 60;
        const H: u64 = 3600;
        const D: u64 = 24 * H;
        assert_eq!(h(1), "1s");
        assert_eq!(h(70), "70s");
        assert_eq!(h(190), "3m10s");
        assert_eq!(h(70 * M), "70m");
        assert_eq!(h(47 * H), "47h");
        assert_eq!(h(49 * H), "2d1h");
        assert_eq!(h((8 * 24 + 2) * H), "8d");
        assert_eq!(h(367 * D), "367d");
        assert_eq!(h((365 * 2 * 24 + 25) * H), "2y1d");
        assert_eq!(h((365 * 8 * 24 + 2) * H), "8y");
    }

    #[test]
    fn human_duration_upstream_boundaries() {
        let ms = Duration::from_millis(1);
        let s = |n: u64| Duration::from_secs(n);
        const M: u64 = 60;
        const H: u64 = 3600;
        const D: u64 = 24 * H;
        const Y: u64 = 365 * D;
        let cases: &[(Duration, &str)] = &[
            (s(0), "0s"),
            (s(1) - ms, "0s"),
            (s(2 * M) - ms, "119s"),
            (s(2 * M), "2m"),
            (s(2 * M + 1), "2m1s"),
            (s(10 * M) - ms, "9m59s"),
            (s(10 * M), "10m"),
            (s(10 * M + 1), "10m"),
            (s(3 * H) - ms, "179m"),
            (s(3 * H), "3h"),
            (s(3 * H + M), "3h1m"),
            (s(8 * H) - ms, "7h59m"),
            (s(8 * H), "8h"),
            (s(8 * H + 59 * M), "8h"),
            (s(2 * D) - ms, "47h"),
            (s(2 * D), "2d"),
            (s(2 * D + H), "2d1h"),
            (s(8 * D) - ms, "7d23h"),
            (s(8 * D), "8d"),
            (s(8 * D + 23 * H), "8d"),
            (s(2 * Y) - ms, "729d"),
            (s(2 * Y), "2y"),
            (s(2 * Y + 23 * H), "2y"),
            (s(2 * Y + 23 * H + 59 * M), "2y"),
            (s(2 * Y + D) - ms, "2y"),
            (s(2 * Y + D), "2y1d"),
            (s(3 * Y), "3y"),
            (s(7 * Y), "7y"),
            (s(8 * Y) - ms, "7y364d"),
            (s(8 * Y), "8y"),
            (s(8 * Y + 364 * D), "8y"),
            (s(9 * Y), "9y"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(*d), *want, "{d:?}");
        }
        // Negative (clock skew): up to a second and a bit is "0s", beyond is invalid.
        assert_eq!(human_nanos(-2_000_000_000), "<invalid>");
        assert_eq!(human_nanos(-2_000_000_000 + 1), "0s");
    }

    #[test]
    fn include_object_parse() {
        assert_eq!(IncludeObject::parse(None), IncludeObject::Metadata);
        assert_eq!(
            IncludeObject::parse(Some("Metadata")),
            IncludeObject::Metadata
        );
        assert_eq!(IncludeObject::parse(Some("None")), IncludeObject::None);
        assert_eq!(IncludeObject::parse(Some("Object")), IncludeObject::Object);
        assert_eq!(IncludeObject::parse(Some("bogus")), IncludeObject::Metadata);
    }

    #[test]
    fn table_shape_and_row_objects() {
        let r = find("", "v1", "configmaps").unwrap();
        let cm = json!({"apiVersion":"v1","kind":"ConfigMap",
            "metadata":{"name":"c","namespace":"default","creationTimestamp":ago(61 * 60),"labels":{"a":"b"}},
            "data":{"x":"1"}});
        let t = table(
            r,
            std::slice::from_ref(&cm),
            IncludeObject::Metadata,
            json!({"resourceVersion":"7"}),
            now(),
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"], json!({"resourceVersion":"7"}));
        assert_eq!(t["columnDefinitions"][0]["name"], "Name");
        assert_eq!(t["columnDefinitions"][0]["format"], "name");
        assert_eq!(
            t["columnDefinitions"][1],
            json!({"name":"Data","type":"string","format":"","description":"Data contains the configuration data.","priority":0})
        );
        assert_eq!(t["rows"][0]["cells"], json!(["c", 1, "61m"]));
        assert_eq!(
            t["rows"][0]["object"],
            json!({"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":cm["metadata"].clone()})
        );
        let full = row(r, &cm, IncludeObject::Object, now());
        assert_eq!(full["object"], cm);
        let none = row(r, &cm, IncludeObject::None, now());
        assert!(none.get("object").is_none());
        let empty = table(r, &[], IncludeObject::Metadata, Value::Null, now());
        assert_eq!(empty["rows"], json!([]));
        assert_eq!(empty["metadata"], json!({}));
    }

    #[test]
    fn default_table_for_other_resources() {
        let r = find("authorization.k8s.io", "v1", "selfsubjectaccessreviews").unwrap();
        let defs = column_definitions(r);
        assert_eq!(defs.len(), 2);
        assert_eq!(defs[0]["name"], "Name");
        assert_eq!(defs[0]["format"], "name");
        assert_eq!(defs[1]["name"], "Created At");
        assert_eq!(defs[1]["type"], "date");
        let o = json!({"metadata":{"name":"x","creationTimestamp":"2024-05-01T10:11:12.345Z"}});
        assert_eq!(
            row(r, &o, IncludeObject::None, now())["cells"],
            json!(["x", "2024-05-01T10:11:12Z"])
        );
        let o = json!({"metadata":{"name":"y"}});
        assert_eq!(
            row(r, &o, IncludeObject::None, now())["cells"],
            json!(["y", "0001-01-01T00:00:00Z"])
        );
    }

    #[test]
    fn every_served_resource_has_matching_cells_and_columns() {
        let o = json!({"metadata":{"name":"n"}});
        for r in RESOURCES {
            let n = column_definitions(r).len();
            let cells = row(r, &o, IncludeObject::None, now())["cells"]
                .as_array()
                .unwrap()
                .len();
            assert_eq!(n, cells, "{}", r.plural);
            // Garbage never panics.
            for junk in [
                json!(null),
                json!(5),
                json!({"metadata":7,"spec":"x","status":[1]}),
            ] {
                let _ = row(r, &junk, IncludeObject::Metadata, now());
            }
        }
    }

    #[test]
    fn age_cells() {
        let o = |ts: Value| json!({"metadata":{"name":"n","creationTimestamp":ts}});
        assert_eq!(age(&o(json!(ago(5))), now()), "5s");
        assert_eq!(age(&o(json!(ago(3 * 3600 + 4 * 60))), now()), "3h4m");
        assert_eq!(age(&o(json!(ago(2 * 86400 + 3 * 3600))), now()), "2d3h");
        assert_eq!(age(&o(json!(ago(3 * 365 * 86400))), now()), "3y");
        assert_eq!(age(&o(Value::Null), now()), "<unknown>");
        assert_eq!(age(&o(json!("garbage")), now()), "<unknown>");
        assert_eq!(age(&json!({}), now()), "<unknown>");
        // In the future beyond the skew allowance.
        assert_eq!(age(&o(json!("2024-06-01T12:00:05Z")), now()), "<invalid>");
    }

    #[test]
    fn selectors_format_like_apimachinery() {
        assert_eq!(format_label_selector(None), "<none>");
        assert_eq!(format_label_selector(Some(&json!({}))), "<none>");
        let sel = json!({"matchLabels":{"b":"2","a":"1"},
            "matchExpressions":[{"key":"c","operator":"In","values":["z","y"]},
                                {"key":"aa","operator":"Exists"},
                                {"key":"d","operator":"DoesNotExist"},
                                {"key":"e","operator":"NotIn","values":["q"]}]});
        assert_eq!(
            format_label_selector(Some(&sel)),
            "a=1,aa,b=2,c in (y,z),!d,e notin (q)"
        );
        assert_eq!(
            format_label_selector(Some(
                &json!({"matchExpressions":[{"key":"k","operator":"Bad"}]})
            )),
            "<error>"
        );
        assert_eq!(selector_string(Some(&json!({}))), Ok(String::new()));
        assert_eq!(
            format_labels(object(&json!({"m":{"z":"1","a":"2"}}), &["m"])),
            "a=2,z=1"
        );
        assert_eq!(format_labels(None), "<none>");
    }
}
