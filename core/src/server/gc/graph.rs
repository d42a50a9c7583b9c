//! The garbage collector's in-memory dependency graph: every stored object by uid, with its
//! place in the store, its ownerReferences and its deletion state, plus the reverse index
//! owner uid → dependents. Only the metadata the collector needs is parsed and kept.

use crate::resources::{self, Resource};
use crate::server::objects;
use crate::server::write::{FINALIZER_FOREGROUND, FINALIZER_ORPHAN};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};

/// Where an object lives: its resource, namespace (None for cluster-scoped) and name.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Identity {
    pub resource: &'static Resource,
    pub namespace: Option<String>,
    pub name: String,
}

impl Identity {
    pub fn ns(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The store key of the object.
    pub fn key(&self) -> String {
        objects::key(self.resource, self.ns(), &self.name)
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.resource.plural, ns, self.name),
            None => write!(f, "{} {}", self.resource.plural, self.name),
        }
    }
}

/// One `metadata.ownerReferences` entry (the fields the collector uses).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct OwnerRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
    pub block_owner_deletion: Option<bool>,
}

impl OwnerRef {
    /// Whether a foreground deletion of the owner waits for this dependent.
    pub fn blocks(&self) -> bool {
        self.block_owner_deletion == Some(true)
    }
}

/// The metadata fields the collector reads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct Meta {
    pub name: String,
    pub namespace: Option<String>,
    pub uid: String,
    pub owner_references: Option<Vec<OwnerRef>>,
    pub deletion_timestamp: Option<String>,
    pub finalizers: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    metadata: Option<Meta>,
}

impl Meta {
    /// Parses stored bytes (only `metadata` is materialised).
    pub fn from_bytes(bytes: &[u8]) -> Result<Meta, serde_json::Error> {
        Ok(serde_json::from_slice::<Envelope>(bytes)?
            .metadata
            .unwrap_or_default())
    }

    pub fn owners(&self) -> &[OwnerRef] {
        self.owner_references.as_deref().unwrap_or_default()
    }

    pub fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|x| x == f)
    }

    pub fn deleting(&self) -> bool {
        self.deletion_timestamp.is_some()
    }
}

/// An object in the graph.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Node {
    pub id: Identity,
    pub owners: Vec<OwnerRef>,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// Carries the `orphan` finalizer.
    pub orphan: bool,
    /// Carries the `foregroundDeletion` finalizer.
    pub foreground: bool,
}

impl Node {
    /// Builds the node of an object of resource `r` from its stored bytes; None when the
    /// bytes do not parse or carry no uid.
    pub fn parse(r: &'static Resource, bytes: &[u8]) -> Option<(String, Node)> {
        let meta = Meta::from_bytes(bytes).ok()?;
        if meta.uid.is_empty() {
            return None;
        }
        let node = Node {
            id: Identity {
                resource: r,
                namespace: if r.namespaced {
                    meta.namespace.clone()
                } else {
                    None
                },
                name: meta.name.clone(),
            },
            owners: meta.owners().to_vec(),
            deleting: meta.deleting(),
            orphan: meta.has_finalizer(FINALIZER_ORPHAN),
            foreground: meta.has_finalizer(FINALIZER_FOREGROUND),
        };
        Some((meta.uid, node))
    }

    /// Waiting for its dependents to be deleted (foreground deletion in progress).
    pub fn deleting_dependents(&self) -> bool {
        self.deleting && self.foreground
    }

    /// Has a deletion the collector must finish (orphan or foreground).
    pub fn pending_gc_deletion(&self) -> bool {
        self.deleting && (self.orphan || self.foreground)
    }
}

/// Where an ownerReference of a dependent in `dependent_ns` points. None when it cannot be
/// resolved: an unknown kind, or a namespaced owner of a cluster-scoped dependent (invalid:
/// namespaced dependents may only have owners in their own namespace or cluster-scoped ones).
pub(super) fn resolve(r: &OwnerRef, dependent_ns: Option<&str>) -> Option<Identity> {
    let group = r.api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let resource = resources::find_kind(group, &r.kind).filter(|res| res.is_stored())?;
    let namespace = if resource.namespaced {
        Some(dependent_ns?.to_string())
    } else {
        None
    };
    Some(Identity {
        resource,
        namespace,
        name: r.name.clone(),
    })
}

/// What [`Graph::upsert`] replaced.
pub(super) struct Upserted {
    /// The previous version of the same object.
    pub previous: Option<Node>,
    /// A different object (other uid) that was at the same key, now gone.
    pub replaced: Option<(String, Node)>,
}

/// The dependency graph.
#[derive(Default)]
pub(super) struct Graph {
    nodes: HashMap<String, Node>,
    by_key: HashMap<String, String>,
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn uids(&self) -> impl Iterator<Item = &String> {
        self.nodes.keys()
    }

    /// Records the object at `key`.
    pub fn upsert(&mut self, key: String, uid: String, node: Node) -> Upserted {
        let replaced = match self.by_key.get(&key) {
            Some(old) if *old != uid => self.remove_key(&key),
            _ => None,
        };
        let previous = self.nodes.remove(&uid);
        if let Some(p) = &previous {
            self.unlink(&uid, &p.owners);
        }
        self.link(&uid, &node.owners);
        self.by_key.insert(key, uid.clone());
        self.nodes.insert(uid, node);
        Upserted { previous, replaced }
    }

    /// Forgets the object at `key` (deleted). Its own dependents stay indexed under its uid.
    pub fn remove_key(&mut self, key: &str) -> Option<(String, Node)> {
        let uid = self.by_key.remove(key)?;
        let node = self.nodes.remove(&uid)?;
        self.unlink(&uid, &node.owners);
        Some((uid, node))
    }

    fn link(&mut self, uid: &str, owners: &[OwnerRef]) {
        for o in owners {
            self.dependents
                .entry(o.uid.clone())
                .or_default()
                .insert(uid.to_string());
        }
    }

    fn unlink(&mut self, uid: &str, owners: &[OwnerRef]) {
        for o in owners {
            if let Some(set) = self.dependents.get_mut(&o.uid) {
                set.remove(uid);
                if set.is_empty() {
                    self.dependents.remove(&o.uid);
                }
            }
        }
    }

    /// Live objects that name `uid` in their ownerReferences.
    pub fn dependents(&self, uid: &str) -> Vec<String> {
        self.dependents
            .get(uid)
            .map(|set| {
                set.iter()
                    .filter(|d| self.nodes.contains_key(*d))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn has_dependents(&self, uid: &str) -> bool {
        self.dependents
            .get(uid)
            .is_some_and(|set| set.iter().any(|d| self.nodes.contains_key(d)))
    }

    /// Whether, as far as the graph knows, the object needs the collector: one of its owners
    /// is missing (no object at the reference's coordinates with the reference's uid) or is
    /// waiting for its dependents to be deleted. Objects being deleted are left alone.
    pub fn needs_attention(&self, uid: &str) -> bool {
        let Some(n) = self.nodes.get(uid) else {
            return false;
        };
        if n.deleting {
            return false;
        }
        n.owners.iter().any(|r| match resolve(r, n.id.ns()) {
            None => false,
            Some(owner) => match self.by_key.get(&owner.key()) {
                Some(u) if *u == r.uid => self.nodes.get(u).is_some_and(Node::deleting_dependents),
                _ => true,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn cm(name: &str, uid: &str, owners: Value) -> Vec<u8> {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": name, "namespace": "default", "uid": uid, "ownerReferences": owners}})
        .to_string()
        .into_bytes()
    }

    fn configmaps() -> &'static Resource {
        match resources::find("", "v1", "configmaps") {
            Some(r) => r,
            None => panic!("configmaps resource"),
        }
    }

    fn insert(g: &mut Graph, bytes: &[u8]) -> String {
        let r = configmaps();
        let Some((uid, node)) = Node::parse(r, bytes) else {
            panic!("unparsable node");
        };
        let key = node.id.key();
        g.upsert(key, uid.clone(), node);
        uid
    }

    #[test]
    fn dangling_and_solid_references() {
        let mut g = Graph::default();
        insert(&mut g, &cm("owner", "u-owner", json!(null)));
        let solid = insert(
            &mut g,
            &cm(
                "a",
                "u-a",
                json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "u-owner"}]),
            ),
        );
        let wrong_uid = insert(
            &mut g,
            &cm(
                "b",
                "u-b",
                json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "u-other"}]),
            ),
        );
        let unknown_kind = insert(
            &mut g,
            &cm(
                "c",
                "u-c",
                json!([{"apiVersion": "example.com/v1", "kind": "Thing", "name": "x", "uid": "u-x"}]),
            ),
        );
        assert!(!g.needs_attention(&solid));
        assert!(g.needs_attention(&wrong_uid));
        assert!(!g.needs_attention(&unknown_kind));
        assert_eq!(g.dependents("u-owner"), vec![solid.clone()]);
        let owner_key = objects::key(configmaps(), Some("default"), "owner");
        assert!(g.remove_key(&owner_key).is_some());
        assert!(g.needs_attention(&solid));
        // The index survives the owner's removal, so its dependents can be found.
        assert_eq!(g.dependents("u-owner"), vec![solid]);
    }

    #[test]
    fn namespaced_owner_of_cluster_scoped_dependent_is_unresolvable() {
        let r = OwnerRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "x".into(),
            uid: "u".into(),
            block_owner_deletion: None,
        };
        assert!(resolve(&r, None).is_none());
        let ns = OwnerRef {
            kind: "Namespace".into(),
            ..r.clone()
        };
        assert_eq!(
            resolve(&ns, Some("default")).map(|i| i.namespace),
            Some(None)
        );
    }
}
