//! The in-process API client: how components living in the server process (the node agent,
//! later the scheduler and controllers) read and write objects. Every call goes through the same
//! API layer as HTTP requests (validation, defaulting, optimistic concurrency, managedFields,
//! finalizers, watch filtering); nothing here touches the store directly except to stream the
//! watch events that the API layer would stream.

use super::objects::{self, Objects};
use super::query::Query;
use super::read::{self, Selectors};
use super::status::ApiError;
use super::subresources;
use super::write::{DeleteOptions, FieldValidation, WriteOptions, Writer};
use crate::patch::PatchType;
use crate::resources::{self, Resource};
use kubelite_storage::{EventKind, Revision, Watcher};
use serde_json::Value;

/// What a watch event says happened to an object (as seen through the selectors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Modified,
    Deleted,
}

/// A watch through the API layer's selector semantics.
pub struct ObjectWatch {
    watcher: Watcher,
    sel: Selectors,
}

impl ObjectWatch {
    /// The next change; None when the stream ended (re-list and watch again).
    pub async fn next(&mut self) -> Option<(Change, Value)> {
        self.next_at().await.map(|(change, obj, _)| (change, obj))
    }

    /// The next change with the revision it happened at (for a deletion, the deletion's
    /// revision, which the object's own `resourceVersion` does not carry).
    pub async fn next_at(&mut self) -> Option<(Change, Value, Revision)> {
        loop {
            let ev = self.watcher.next().await?;
            if let Some((change, obj)) = classify(&self.sel, &ev) {
                return Some((change, obj, ev.kv.mod_revision));
            }
        }
    }
}

impl Change {
    /// The watch event type on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "ADDED",
            Change::Modified => "MODIFIED",
            Change::Deleted => "DELETED",
        }
    }
}

/// What a store event means to a watcher with these selectors: objects entering the selection
/// are ADDED, leaving it DELETED (as Kubernetes' watch cache filters); None if not its business.
pub fn classify(sel: &Selectors, ev: &kubelite_storage::Event) -> Option<(Change, Value)> {
    let new = objects::decode(&ev.kv).ok()?;
    let old_match = ev
        .prev
        .as_ref()
        .and_then(|p| objects::decode(p).ok())
        .is_some_and(|p| sel.matches(&p.value));
    let new_match = sel.matches(&new.value);
    let change = match ev.kind {
        EventKind::Create if new_match => Change::Added,
        EventKind::Update if old_match && new_match => Change::Modified,
        EventKind::Update if new_match => Change::Added,
        EventKind::Update if old_match => Change::Deleted,
        EventKind::Delete if old_match || new_match => Change::Deleted,
        _ => return None,
    };
    Some((change, new.value))
}

/// A client bound to one field manager.
#[derive(Clone)]
pub struct LocalClient {
    writer: Writer,
    manager: String,
}

/// Looks a resource up by its plural in the given group/version (`("", "v1", "pods")`).
pub fn resource(group: &str, version: &str, plural: &str) -> Result<&'static Resource, ApiError> {
    resources::find(group, version, plural)
        .ok_or_else(|| ApiError::internal(format!("unknown resource {group}/{version}/{plural}")))
}

impl LocalClient {
    pub fn new(writer: Writer, manager: impl Into<String>) -> Self {
        LocalClient {
            writer,
            manager: manager.into(),
        }
    }

    fn opts(&self) -> WriteOptions {
        WriteOptions {
            dry_run: false,
            field_manager: self.manager.clone(),
            field_validation: FieldValidation::Strict,
            force: false,
        }
    }

    fn objects(&self) -> &Objects {
        &self.writer.objects
    }

    pub fn current_revision(&self) -> Revision {
        self.objects().backend.current_revision()
    }

    pub async fn get(
        &self,
        r: &Resource,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ApiError> {
        Ok(self.objects().get(r, ns, name).await?.map(|s| s.value))
    }

    /// Lists with label/field selectors (query-string syntax); returns the items and the
    /// revision to watch from.
    pub async fn list(
        &self,
        r: &Resource,
        ns: Option<&str>,
        label_selector: &str,
        field_selector: &str,
    ) -> Result<(Vec<Value>, Revision), ApiError> {
        let q = selector_query(label_selector, field_selector);
        let sel = Selectors::parse(r, &q)?;
        let listed = read::list_items(self.objects(), r, ns, &Query::default(), &sel).await?;
        let items = listed
            .items
            .iter()
            .filter_map(|kv| objects::decode(kv).ok().map(|s| s.value))
            .collect();
        Ok((items, listed.revision))
    }

    /// Watches changes after `from` (Err with code 410 when `from` was compacted).
    pub async fn watch(
        &self,
        r: &Resource,
        ns: Option<&str>,
        label_selector: &str,
        field_selector: &str,
        from: Revision,
    ) -> Result<ObjectWatch, ApiError> {
        let q = selector_query(label_selector, field_selector);
        let sel = Selectors::parse(r, &q)?;
        let watcher = self
            .objects()
            .backend
            .watch(&objects::prefix(r, ns), from)
            .await
            .map_err(|e| match e {
                kubelite_storage::Error::Compacted { compacted } => {
                    ApiError::expired(format!("too old resource version: {from} ({compacted})"))
                }
                other => other.into(),
            })?;
        Ok(ObjectWatch { watcher, sel })
    }

    pub async fn create(
        &self,
        r: &Resource,
        ns: Option<&str>,
        obj: Value,
    ) -> Result<Value, ApiError> {
        Ok(self
            .writer
            .create(r, ns, obj, None, &self.opts())
            .await?
            .object)
    }

    /// PUT of the whole object (conflicts when its resourceVersion is stale).
    pub async fn update(&self, r: &Resource, obj: Value) -> Result<Value, ApiError> {
        let name = objects::name_of(&obj).to_string();
        let ns = objects::namespace_of(&obj).map(str::to_string);
        Ok(self
            .writer
            .update(r, ns.as_deref(), &name, None, obj, None, &self.opts())
            .await?
            .object)
    }

    /// PUT of `status` (conflicts when its resourceVersion is stale).
    pub async fn update_status(&self, r: &Resource, obj: Value) -> Result<Value, ApiError> {
        let name = objects::name_of(&obj).to_string();
        let ns = objects::namespace_of(&obj).map(str::to_string);
        Ok(self
            .writer
            .update(
                r,
                ns.as_deref(),
                &name,
                Some("status"),
                obj,
                None,
                &self.opts(),
            )
            .await?
            .object)
    }

    /// A merge patch (of the object or a subresource such as "status").
    pub async fn merge_patch(
        &self,
        r: &Resource,
        ns: Option<&str>,
        name: &str,
        sub: Option<&str>,
        patch: Value,
    ) -> Result<Value, ApiError> {
        Ok(self
            .writer
            .patch(
                r,
                ns,
                name,
                sub,
                PatchType::Merge,
                patch,
                None,
                &self.opts(),
            )
            .await?
            .object)
    }

    pub async fn delete(
        &self,
        r: &Resource,
        ns: Option<&str>,
        name: &str,
        grace: Option<i64>,
    ) -> Result<(), ApiError> {
        let opts = DeleteOptions {
            grace_period_seconds: grace,
            ..Default::default()
        };
        self.writer.delete(r, ns, name, &opts).await.map(|_| ())
    }

    /// Deletes with full options (preconditions, propagation policy, grace period).
    pub async fn delete_with(
        &self,
        r: &Resource,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<(), ApiError> {
        self.writer.delete(r, ns, name, opts).await.map(|_| ())
    }

    /// The field manager this client writes as.
    pub fn manager(&self) -> &str {
        &self.manager
    }

    /// Binds a pod to a node (the `binding` subresource).
    pub async fn bind(&self, ns: &str, pod: &str, node: &str) -> Result<(), ApiError> {
        let binding = serde_json::json!({"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": pod, "namespace": ns}, "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
        subresources::bind(&self.writer, ns, pod, &binding)
            .await
            .map(|_| ())
    }
}

fn selector_query(label: &str, field: &str) -> Query {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    Query::parse(Some(&format!(
        "labelSelector={}&fieldSelector={}",
        enc(label),
        enc(field)
    )))
}
