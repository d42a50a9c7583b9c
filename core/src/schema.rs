//! The Kubernetes v1.33 type definitions, carried as data (`core/data/`), and navigation over them.
//!
//! One schema drives the OpenAPI documents, strict field validation, strategic merge patch and
//! server-side apply. Nodes are `serde_json::Value`s in JSON Schema form; `$ref`s point at
//! `#/$defs/<name>`. Property and item nodes keep their `x-kubernetes-*` extensions, so callers
//! read list strategies from the *unresolved* node and follow `resolve` for the type.

use serde_json::{Map, Value};
use std::io::Read;
use std::sync::OnceLock;

const DEFINITIONS_GZ: &[u8] = include_bytes!("../data/kubernetes-v1.33-definitions.json.gz");
const REF_PREFIX: &str = "#/$defs/";

/// The loaded definitions.
pub struct Schema {
    defs: Map<String, Value>,
}

static SCHEMA: OnceLock<Schema> = OnceLock::new();

/// The process-wide schema (decompressed and parsed on first use).
pub fn schema() -> &'static Schema {
    SCHEMA.get_or_init(|| {
        let mut text = Vec::new();
        // The data is compiled into the binary; failing to read it is a build defect.
        flate2::read::GzDecoder::new(DEFINITIONS_GZ)
            .read_to_end(&mut text)
            .expect("embedded definitions are valid gzip");
        let mut doc: Value =
            serde_json::from_slice(&text).expect("embedded definitions are valid JSON");
        let defs = match doc.get_mut("$defs").map(Value::take) {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        Schema { defs }
    })
}

/// The definition name a `$ref` points at, e.g. `io.k8s.api.core.v1.Pod`.
pub fn ref_name(node: &Value) -> Option<&str> {
    node.get("$ref")?.as_str()?.strip_prefix(REF_PREFIX)
}

impl Schema {
    /// All definitions by name.
    pub fn definitions(&self) -> &Map<String, Value> {
        &self.defs
    }

    /// One definition by name (`io.k8s.api.core.v1.Pod`).
    pub fn definition(&self, name: &str) -> Option<&Value> {
        self.defs.get(name)
    }

    /// Follows `$ref` (also a single-element `allOf: [{$ref}]`) until a concrete node.
    pub fn resolve<'a>(&'a self, mut node: &'a Value) -> &'a Value {
        for _ in 0..16 {
            let target = ref_name(node).or_else(|| {
                node.get("allOf")
                    .and_then(Value::as_array)
                    .filter(|a| a.len() == 1)
                    .and_then(|a| ref_name(&a[0]))
            });
            match target.and_then(|n| self.defs.get(n)) {
                Some(next) => node = next,
                None => break,
            }
        }
        node
    }

    /// The (unresolved) schema of property `name` of an object node.
    pub fn property<'a>(&'a self, node: &'a Value, name: &str) -> Option<&'a Value> {
        self.resolve(node).get("properties")?.get(name)
    }

    /// The (unresolved) schema of the items of an array node.
    pub fn items<'a>(&'a self, node: &'a Value) -> Option<&'a Value> {
        self.resolve(node).get("items")
    }

    /// The (unresolved) schema of the values of a map node (`additionalProperties`).
    pub fn map_values<'a>(&'a self, node: &'a Value) -> Option<&'a Value> {
        match self.resolve(node).get("additionalProperties") {
            Some(v) if v.is_object() => Some(v),
            _ => None,
        }
    }

    /// The definition whose `x-kubernetes-group-version-kind` names this group/version/kind.
    pub fn definition_for_gvk(
        &self,
        group: &str,
        version: &str,
        kind: &str,
    ) -> Option<(&str, &Value)> {
        self.defs.iter().find_map(|(name, def)| {
            let gvks = def.get("x-kubernetes-group-version-kind")?.as_array()?;
            gvks.iter()
                .any(|g| {
                    g.get("group").and_then(Value::as_str) == Some(group)
                        && g.get("version").and_then(Value::as_str) == Some(version)
                        && g.get("kind").and_then(Value::as_str) == Some(kind)
                })
                .then_some((name.as_str(), def))
        })
    }
}

/// The JSON types a node admits (`type` may be a string or an array such as `["string","null"]`).
pub fn types(node: &Value) -> Vec<&str> {
    match node.get("type") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// `x-kubernetes-patch-strategy` split on commas (e.g. `merge`, `retainKeys`, `merge,retainKeys`).
pub fn patch_strategies(node: &Value) -> Vec<&str> {
    node.get("x-kubernetes-patch-strategy")
        .and_then(Value::as_str)
        .map(|s| s.split(',').map(str::trim).collect())
        .unwrap_or_default()
}

/// `x-kubernetes-patch-merge-key`.
pub fn patch_merge_key(node: &Value) -> Option<&str> {
    node.get("x-kubernetes-patch-merge-key")
        .and_then(Value::as_str)
}

/// `x-kubernetes-list-type` (`atomic`, `set`, `map`).
pub fn list_type(node: &Value) -> Option<&str> {
    node.get("x-kubernetes-list-type").and_then(Value::as_str)
}

/// `x-kubernetes-list-map-keys`.
pub fn list_map_keys(node: &Value) -> Vec<&str> {
    node.get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// `x-kubernetes-map-type` (`atomic`, `granular`).
pub fn map_type(node: &Value) -> Option<&str> {
    node.get("x-kubernetes-map-type").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_containers_merge_on_name() {
        let s = schema();
        let (name, pod) = s.definition_for_gvk("", "v1", "Pod").expect("Pod");
        assert_eq!(name, "io.k8s.api.core.v1.Pod");
        let spec = s.property(pod, "spec").expect("spec");
        let containers = s.property(spec, "containers").expect("containers");
        assert_eq!(patch_merge_key(containers), Some("name"));
        assert_eq!(patch_strategies(containers), vec!["merge"]);
        let container = s.items(containers).expect("items");
        assert!(s.property(container, "image").is_some());
        assert!(s.property(container, "bogus").is_none());
    }
}
