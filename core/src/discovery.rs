//! API discovery documents, derived from the resource table (`resources.rs`).
//!
//! Two families are served, as a real kube-apiserver does:
//! - the legacy documents: `APIVersions` (`/api`), `APIGroupList` (`/apis`), `APIGroup`
//!   (`/apis/<group>`) and `APIResourceList` (`/api/v1`, `/apis/<group>/<version>`), where a
//!   subresource is an entry named `pods/log` and carries `group`/`version` only when its kind
//!   lives in another group-version (`deployments/scale` → `autoscaling/v1 Scale`);
//! - the aggregated `APIGroupDiscoveryList` (`apidiscovery.k8s.io/v2` and `v2beta1`) that
//!   kubectl 1.30+ asks for first on `/api` and `/apis`. kubectl only accepts it when the
//!   response `Content-Type` is exactly [`aggregated_content_type`]; [`negotiate_aggregated`]
//!   decides from the `Accept` header whether to serve it.
//!
//! Resources are listed sorted by name and verbs sorted, as the kube-apiserver registers them.
//! All functions are pure: the documents depend only on the static table.

use crate::resources::{self, Resource, Subresource};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The discovery API group of the aggregated documents.
pub const APIDISCOVERY_GROUP: &str = "apidiscovery.k8s.io";

/// The aggregated discovery versions served, in the server's order of preference.
pub const AGGREGATED_VERSIONS: [&str; 2] = ["v2", "v2beta1"];

/// `/api`: the `APIVersions` document of the legacy core group.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ]
    })
}

/// `/apis`: the `APIGroupList` of every named group.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = resources::groups()
        .into_iter()
        .map(|(group, versions)| group_body(group, &versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`: the `APIGroup` document, or `None` for a group that is not served.
pub fn api_group(group: &str) -> Option<Value> {
    let (name, versions) = resources::groups().into_iter().find(|(g, _)| *g == group)?;
    let mut doc = Map::new();
    doc.insert("kind".into(), json!("APIGroup"));
    doc.insert("apiVersion".into(), json!("v1"));
    if let Value::Object(body) = group_body(name, &versions) {
        doc.extend(body);
    }
    Some(Value::Object(doc))
}

fn group_version_for_discovery(group: &str, version: &str) -> Value {
    json!({"groupVersion": format!("{group}/{version}"), "version": version})
}

fn group_body(group: &str, versions: &[&str]) -> Value {
    let list: Vec<Value> = versions
        .iter()
        .map(|v| group_version_for_discovery(group, v))
        .collect();
    let preferred = versions
        .first()
        .map(|v| group_version_for_discovery(group, v))
        .unwrap_or(Value::Null);
    json!({"name": group, "versions": list, "preferredVersion": preferred})
}

/// `/api/v1` or `/apis/<group>/<version>`: the `APIResourceList` of one group-version, or
/// `None` when nothing is served there.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let entries = sorted_entries(group, version);
    if entries.is_empty() {
        return None;
    }
    let resources: Vec<Value> = entries
        .iter()
        .map(|e| legacy_entry(e, group, version))
        .collect();
    let mut doc = Map::new();
    doc.insert("kind".into(), json!("APIResourceList"));
    // The core group's list is written without apiVersion by the kube-apiserver.
    if !group.is_empty() {
        doc.insert("apiVersion".into(), json!("v1"));
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    doc.insert("groupVersion".into(), json!(group_version));
    doc.insert("resources".into(), Value::Array(resources));
    Some(Value::Object(doc))
}

/// A discovery entry: a resource or one of its subresources.
enum Entry {
    Resource(&'static Resource),
    Sub(&'static Resource, &'static Subresource),
}

impl Entry {
    fn name(&self) -> String {
        match self {
            Entry::Resource(r) => r.plural.to_string(),
            Entry::Sub(r, s) => format!("{}/{}", r.plural, s.name),
        }
    }
}

/// Resources and subresources of a group-version, sorted by name like the kube-apiserver.
fn sorted_entries(group: &str, version: &str) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    for r in resources::in_group_version(group, version) {
        entries.push(Entry::Resource(r));
        entries.extend(r.subresources.iter().map(|s| Entry::Sub(r, s)));
    }
    entries.sort_by_key(Entry::name);
    entries
}

fn sorted_verbs(verbs: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = verbs.iter().map(|s| s.to_string()).collect();
    v.sort();
    v.dedup();
    v
}

/// The group/version a subresource reports: empty when it is the containing group-version.
fn sub_group_version(s: &Subresource, group: &str, version: &str) -> (&'static str, &'static str) {
    if s.group == group && s.version == version {
        ("", "")
    } else {
        (s.group, s.version)
    }
}

fn legacy_entry(entry: &Entry, group: &str, version: &str) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(entry.name()));
    match entry {
        Entry::Resource(r) => {
            m.insert("singularName".into(), json!(r.singular));
            m.insert("namespaced".into(), json!(r.namespaced));
            m.insert("kind".into(), json!(r.kind));
            m.insert("verbs".into(), json!(sorted_verbs(r.verbs)));
            if !r.short_names.is_empty() {
                m.insert("shortNames".into(), json!(r.short_names));
            }
            if !r.categories.is_empty() {
                m.insert("categories".into(), json!(r.categories));
            }
            if let Some(hash) = storage_version_hash(r) {
                m.insert("storageVersionHash".into(), json!(hash));
            }
        }
        Entry::Sub(r, s) => {
            m.insert("singularName".into(), json!(""));
            m.insert("namespaced".into(), json!(r.namespaced));
            let (g, v) = sub_group_version(s, group, version);
            if !g.is_empty() || !v.is_empty() {
                m.insert("group".into(), json!(g));
                m.insert("version".into(), json!(v));
            }
            m.insert("kind".into(), json!(s.kind));
            m.insert("verbs".into(), json!(sorted_verbs(s.verbs)));
        }
    }
    Value::Object(m)
}

/// The `storageVersionHash` of a stored resource: base64 of the first 8 bytes of
/// sha256("<group>/<version>/<kind>") of the version it is stored as.
pub fn storage_version_hash(r: &Resource) -> Option<String> {
    if !r.is_stored() {
        return None;
    }
    // events.k8s.io/v1 Events are stored as core v1 Events.
    let (group, version, kind) = if r.group == "events.k8s.io" && r.kind == "Event" {
        ("", "v1", "Event")
    } else {
        (r.group, r.version, r.kind)
    };
    let digest = Sha256::digest(format!("{group}/{version}/{kind}").as_bytes());
    Some(base64::engine::general_purpose::STANDARD.encode(&digest[..8]))
}

/// The exact `Content-Type` of an aggregated discovery response (`v2` or `v2beta1`).
pub fn aggregated_content_type(version: &str) -> String {
    format!("application/json;g={APIDISCOVERY_GROUP};v={version};as=APIGroupDiscoveryList")
}

/// The aggregated `APIGroupDiscoveryList` for `/api` (`core = true`: one item, the core
/// group) or `/apis` (one item per named group). `version` is `v2` or `v2beta1`.
pub fn aggregated(core: bool, version: &str) -> Value {
    let items: Vec<Value> = if core {
        vec![discovery_group("", &["v1"])]
    } else {
        resources::groups()
            .into_iter()
            .map(|(group, versions)| discovery_group(group, &versions))
            .collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("{APIDISCOVERY_GROUP}/{version}"),
        "metadata": {},
        "items": items
    })
}

fn discovery_group(group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|version| {
            json!({
                "version": version,
                "resources": discovery_resources(group, version),
                "freshness": "Current"
            })
        })
        .collect();
    json!({
        "metadata": {"name": group, "creationTimestamp": null},
        "versions": versions
    })
}

fn response_kind(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

fn discovery_resources(group: &str, version: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for entry in sorted_entries(group, version) {
        let Entry::Resource(r) = entry else { continue };
        let mut m = Map::new();
        m.insert("resource".into(), json!(r.plural));
        m.insert("responseKind".into(), response_kind("", "", r.kind));
        m.insert(
            "scope".into(),
            json!(if r.namespaced {
                "Namespaced"
            } else {
                "Cluster"
            }),
        );
        m.insert("singularResource".into(), json!(r.singular));
        m.insert("verbs".into(), json!(sorted_verbs(r.verbs)));
        if !r.short_names.is_empty() {
            m.insert("shortNames".into(), json!(r.short_names));
        }
        if !r.categories.is_empty() {
            m.insert("categories".into(), json!(r.categories));
        }
        let mut subs: Vec<&Subresource> = r.subresources.iter().collect();
        subs.sort_by_key(|s| s.name);
        if !subs.is_empty() {
            let subs: Vec<Value> = subs
                .into_iter()
                .map(|s| {
                    let (g, v) = sub_group_version(s, group, version);
                    json!({
                        "subresource": s.name,
                        "responseKind": response_kind(g, v, s.kind),
                        "verbs": sorted_verbs(s.verbs)
                    })
                })
                .collect();
            m.insert("subresources".into(), Value::Array(subs));
        }
        out.push(Value::Object(m));
    }
    out
}

/// One media range of an `Accept` header.
struct MediaRange<'a> {
    mime: &'a str,
    params: Vec<(&'a str, &'a str)>,
    q: f32,
}

impl MediaRange<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

fn parse_accept(header: &str) -> Vec<MediaRange<'_>> {
    let mut ranges: Vec<MediaRange<'_>> = header
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';').map(str::trim);
            let mime = pieces.next().filter(|m| !m.is_empty())?;
            let mut params = Vec::new();
            let mut q = 1.0;
            for p in pieces {
                let Some((k, v)) = p.split_once('=') else {
                    continue;
                };
                let (k, v) = (k.trim(), v.trim().trim_matches('"'));
                if k.eq_ignore_ascii_case("q") {
                    q = v.parse().unwrap_or(0.0);
                } else {
                    params.push((k, v));
                }
            }
            Some(MediaRange { mime, params, q })
        })
        .collect();
    // Highest quality first; the sort is stable, so the client's order breaks ties.
    ranges.sort_by(|a, b| b.q.partial_cmp(&a.q).unwrap_or(std::cmp::Ordering::Equal));
    ranges
}

fn json_compatible(mime: &str) -> bool {
    ["application/json", "application/*", "*/*"]
        .iter()
        .any(|m| mime.eq_ignore_ascii_case(m))
}

/// Which aggregated discovery version an `Accept` header asks for: `Some("v2")`,
/// `Some("v2beta1")`, or `None` when the client's first acceptable choice is a plain document
/// (`application/json`, `*/*`) or it doesn't ask for aggregated discovery at all.
pub fn negotiate_aggregated(accept_header: &str) -> Option<&'static str> {
    for range in parse_accept(accept_header) {
        if range.q <= 0.0 || !json_compatible(range.mime) {
            continue;
        }
        match range.param("as") {
            Some("APIGroupDiscoveryList") => {
                if range.param("g") != Some(APIDISCOVERY_GROUP) {
                    continue;
                }
                let wanted = range.param("v");
                if let Some(v) = AGGREGATED_VERSIONS.iter().find(|v| Some(**v) == wanted) {
                    return Some(v);
                }
            }
            // Another conversion (e.g. `as=Table`) is not something discovery serves.
            Some(_) => continue,
            None => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECTL_ACCEPT: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";

    #[test]
    fn api_versions_shape() {
        let v = api_versions("10.0.0.1:6443");
        assert_eq!(v["kind"], "APIVersions");
        assert_eq!(v["versions"], json!(["v1"]));
        assert_eq!(
            v["serverAddressByClientCIDRs"][0]["clientCIDR"],
            "0.0.0.0/0"
        );
        assert_eq!(
            v["serverAddressByClientCIDRs"][0]["serverAddress"],
            "10.0.0.1:6443"
        );
    }

    #[test]
    fn group_list_has_apps_with_preferred_version() {
        let v = api_group_list();
        assert_eq!(v["kind"], "APIGroupList");
        assert_eq!(v["apiVersion"], "v1");
        let groups = v["groups"].as_array().expect("groups");
        let apps = groups.iter().find(|g| g["name"] == "apps").expect("apps");
        assert_eq!(
            apps["versions"],
            json!([{"groupVersion": "apps/v1", "version": "v1"}])
        );
        assert_eq!(
            apps["preferredVersion"],
            json!({"groupVersion": "apps/v1", "version": "v1"})
        );
        assert!(groups.iter().all(|g| g["name"] != ""));
        let g = api_group("batch").expect("batch");
        assert_eq!(g["kind"], "APIGroup");
        assert_eq!(g["name"], "batch");
        assert!(api_group("nope").is_none());
    }

    #[test]
    fn core_resource_list() {
        let v = api_resource_list("", "v1").expect("core");
        assert_eq!(v["kind"], "APIResourceList");
        assert!(v.get("apiVersion").is_none());
        assert_eq!(v["groupVersion"], "v1");
        let res = v["resources"].as_array().expect("resources");
        let names: Vec<&str> = res.iter().filter_map(|r| r["name"].as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        let pods = res.iter().find(|r| r["name"] == "pods").expect("pods");
        assert_eq!(pods["singularName"], "pod");
        assert_eq!(pods["namespaced"], true);
        assert_eq!(pods["kind"], "Pod");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        // The value a real v1.33 apiserver reports for pods.
        assert_eq!(pods["storageVersionHash"], "xPOwRZ+Yhw8=");
        let log = res
            .iter()
            .find(|r| r["name"] == "pods/log")
            .expect("pods/log");
        assert_eq!(log["singularName"], "");
        assert_eq!(log["kind"], "Pod");
        assert_eq!(log["verbs"], json!(["get"]));
        assert!(log.get("group").is_none());
        let evict = res
            .iter()
            .find(|r| r["name"] == "pods/eviction")
            .expect("eviction");
        assert_eq!(evict["group"], "policy");
        assert_eq!(evict["version"], "v1");
        assert_eq!(evict["kind"], "Eviction");
        let ns = res.iter().find(|r| r["name"] == "namespaces").expect("ns");
        assert_eq!(ns["namespaced"], false);
        let binding = res
            .iter()
            .find(|r| r["name"] == "bindings")
            .expect("bindings");
        assert!(binding.get("storageVersionHash").is_none());
    }

    #[test]
    fn apps_resource_list_scale_subresource() {
        let v = api_resource_list("apps", "v1").expect("apps");
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["groupVersion"], "apps/v1");
        let res = v["resources"].as_array().expect("resources");
        let scale = res
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .expect("scale");
        assert_eq!(
            scale,
            &json!({"name": "deployments/scale", "singularName": "", "namespaced": true,
                    "group": "autoscaling", "version": "v1", "kind": "Scale",
                    "verbs": ["get", "patch", "update"]})
        );
        let deploy = res
            .iter()
            .find(|r| r["name"] == "deployments")
            .expect("deployments");
        assert_eq!(deploy["storageVersionHash"], "8aSe+NMegvE=");
        assert_eq!(
            deploy["verbs"],
            json!([
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch"
            ])
        );
        assert!(api_resource_list("apps", "v2").is_none());
        assert!(api_resource_list("nope", "v1").is_none());
    }

    #[test]
    fn aggregated_core_and_groups() {
        let core = aggregated(true, "v2");
        assert_eq!(core["kind"], "APIGroupDiscoveryList");
        assert_eq!(core["apiVersion"], "apidiscovery.k8s.io/v2");
        assert_eq!(core["metadata"], json!({}));
        let items = core["items"].as_array().expect("items");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["metadata"]["name"], "");
        let v1 = &items[0]["versions"][0];
        assert_eq!(v1["version"], "v1");
        assert_eq!(v1["freshness"], "Current");
        let pods = v1["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["resource"] == "pods"))
            .expect("pods");
        assert_eq!(pods["scope"], "Namespaced");
        assert_eq!(pods["singularResource"], "pod");
        assert_eq!(
            pods["responseKind"],
            json!({"group": "", "version": "", "kind": "Pod"})
        );
        let subs = pods["subresources"].as_array().expect("subresources");
        let eviction = subs
            .iter()
            .find(|s| s["subresource"] == "eviction")
            .expect("eviction");
        assert_eq!(
            eviction["responseKind"],
            json!({"group": "policy", "version": "v1", "kind": "Eviction"})
        );
        assert!(v1["resources"]
            .as_array()
            .expect("r")
            .iter()
            .all(|r| !r["resource"].as_str().unwrap_or("/").contains('/')));

        let apis = aggregated(false, "v2beta1");
        assert_eq!(apis["apiVersion"], "apidiscovery.k8s.io/v2beta1");
        let apps = apis["items"]
            .as_array()
            .and_then(|i| i.iter().find(|g| g["metadata"]["name"] == "apps"))
            .expect("apps");
        let deploy = apps["versions"][0]["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["resource"] == "deployments"))
            .expect("deployments");
        assert_eq!(deploy["shortNames"], json!(["deploy"]));
        assert_eq!(deploy["categories"], json!(["all"]));
        assert_eq!(
            deploy["subresources"],
            json!([
                {"subresource": "scale",
                 "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
                 "verbs": ["get", "patch", "update"]},
                {"subresource": "status",
                 "responseKind": {"group": "", "version": "", "kind": "Deployment"},
                 "verbs": ["get", "patch", "update"]}
            ])
        );
        let nodes = core["items"][0]["versions"][0]["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["resource"] == "nodes"))
            .expect("nodes");
        assert_eq!(nodes["scope"], "Cluster");
    }

    #[test]
    fn content_type_is_exact() {
        assert_eq!(
            aggregated_content_type("v2"),
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        );
        assert_eq!(
            aggregated_content_type("v2beta1"),
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
        );
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate_aggregated(KUBECTL_ACCEPT), Some("v2"));
        // kubectl 1.27-1.29
        assert_eq!(
            negotiate_aggregated(
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
            ),
            Some("v2beta1")
        );
        assert_eq!(negotiate_aggregated("application/json"), None);
        assert_eq!(negotiate_aggregated("application/json, */*"), None);
        assert_eq!(negotiate_aggregated(""), None);
        // Plain JSON preferred over aggregated.
        assert_eq!(
            negotiate_aggregated("application/json,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"),
            None
        );
        // Quality values are honoured.
        assert_eq!(
            negotiate_aggregated(
                "application/json;q=0.5,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            ),
            Some("v2")
        );
        // Unknown versions and protobuf forms are skipped.
        assert_eq!(
            negotiate_aggregated(
                "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
            ),
            Some("v2beta1")
        );
        assert_eq!(
            negotiate_aggregated(
                "application/json; g=apidiscovery.k8s.io; v=v2; as=APIGroupDiscoveryList"
            ),
            Some("v2")
        );
    }
}
