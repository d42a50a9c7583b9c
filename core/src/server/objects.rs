//! Objects in the store: the key layout (`/registry/<group>/<plural>/[<namespace>/]<name>`),
//! JSON encoding with `metadata.resourceVersion` set to the revision the store assigns, and the
//! CRUD calls the handlers use. Storage errors become API errors here.

use super::status::ApiError;
use crate::resources::Resource;
use bytes::Bytes;
use kubelite_storage::{Backend, Error as StoreError, KeyValue, Revision};
use serde_json::Value;
use std::sync::Arc;

/// The object store: a thin Kubernetes-aware layer over a [`Backend`].
#[derive(Clone)]
pub struct Objects {
    pub backend: Arc<dyn Backend>,
}

/// A stored object: its JSON bytes (as served) and parsed form.
#[derive(Clone, Debug)]
pub struct Stored {
    pub bytes: Bytes,
    pub value: Value,
    pub revision: Revision,
}

/// The key of one object.
pub fn key(r: &Resource, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if r.namespaced => format!("{}{}/{}", r.key_prefix(), ns, name),
        _ => format!("{}{}", r.key_prefix(), name),
    }
}

/// The key prefix of a list (one namespace or all).
pub fn prefix(r: &Resource, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if r.namespaced => format!("{}{}/", r.key_prefix(), ns),
        _ => r.key_prefix(),
    }
}

/// Sets `metadata.resourceVersion` and serializes.
pub fn encode(mut obj: Value, rev: Revision) -> Vec<u8> {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("resourceVersion".into(), Value::String(rev.to_string()));
    }
    serde_json::to_vec(&obj).unwrap_or_default()
}

/// Parses stored bytes.
pub fn decode(kv: &KeyValue) -> Result<Stored, ApiError> {
    let value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("corrupt object at {}: {e}", kv.key)))?;
    Ok(Stored {
        bytes: kv.value.clone(),
        value,
        revision: kv.mod_revision,
    })
}

/// `metadata.name` of an object ("" when absent).
pub fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.namespace` of an object.
pub fn namespace_of(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/namespace").and_then(Value::as_str)
}

impl Objects {
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Objects { backend }
    }

    pub async fn get(
        &self,
        r: &Resource,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Option<Stored>, ApiError> {
        match self.backend.get(&key(r, ns, name)).await? {
            Some(kv) => Ok(Some(decode(&kv)?)),
            None => Ok(None),
        }
    }

    /// Like `get`, but 404 when absent.
    pub async fn must_get(
        &self,
        r: &Resource,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Stored, ApiError> {
        self.get(r, ns, name)
            .await?
            .ok_or_else(|| ApiError::not_found(r, name))
    }

    pub async fn create(&self, r: &Resource, obj: Value) -> Result<Stored, ApiError> {
        let name = name_of(&obj).to_string();
        let k = key(r, namespace_of(&obj), &name);
        match self
            .backend
            .create(&k, Box::new(move |rev| encode(obj, rev)))
            .await
        {
            Ok(kv) => decode(&kv),
            Err(StoreError::AlreadyExists) => Err(ApiError::already_exists(r, &name)),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn update(
        &self,
        r: &Resource,
        obj: Value,
        expected: Revision,
    ) -> Result<Stored, ApiError> {
        let name = name_of(&obj).to_string();
        let k = key(r, namespace_of(&obj), &name);
        match self
            .backend
            .update(&k, expected, Box::new(move |rev| encode(obj, rev)))
            .await
        {
            Ok(kv) => decode(&kv),
            Err(StoreError::Conflict { .. }) => Err(ApiError::stale(r, &name)),
            Err(StoreError::NotFound) => Err(ApiError::not_found(r, &name)),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the object; `last` is the object as it is deleted (its tombstone carries the
    /// deletion revision as resourceVersion, as Kubernetes' DELETED events do).
    pub async fn delete(
        &self,
        r: &Resource,
        last: Value,
        expected: Option<Revision>,
    ) -> Result<Stored, ApiError> {
        let name = name_of(&last).to_string();
        let k = key(r, namespace_of(&last), &name);
        match self
            .backend
            .delete(&k, expected, Box::new(move |rev| encode(last, rev)))
            .await
        {
            Ok(kv) => decode(&kv),
            Err(StoreError::Conflict { .. }) => Err(ApiError::stale(r, &name)),
            Err(StoreError::NotFound) => Err(ApiError::not_found(r, &name)),
            Err(e) => Err(e.into()),
        }
    }
}
