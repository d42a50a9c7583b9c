//! The garbage collector (Kubernetes' `garbagecollector` controller, in-process) and the
//! Event TTL ([`events`]).
//!
//! The collector keeps a dependency graph (`graph.rs`) of every stored object: it lists every
//! stored resource at one revision, then follows a single store watch on `/registry/` from
//! there (re-watching from the last revision seen when the watch ends, re-listing when that
//! revision has been compacted). Graph changes queue tasks, worked one at a time with the
//! events delivered meanwhile applied in between; each task is decided from the *latest*
//! stored state (the graph only says where to look):
//!
//! - an object whose owners are all gone (no object at the reference's coordinates, or one
//!   with another uid) is deleted: Background, or as its own `orphan`/`foregroundDeletion`
//!   finalizer says; one that also has a live owner only loses the dangling references;
//! - a dependent of an owner being deleted in the foreground is deleted (Foreground when it
//!   has dependents itself, as upstream does); the owner's `foregroundDeletion` finalizer is
//!   removed once no dependent with `blockOwnerDeletion: true` is left;
//! - an owner being deleted with `orphan` has its reference removed from every dependent
//!   (one task each), then loses the `orphan` finalizer.
//!
//! Removing an object's last finalizer makes the write path delete it. Every write goes
//! through the [`Writer`] (field manager `kubelite-gc`) with resourceVersion preconditions;
//! conflicts and failures are retried with backoff. The collector only wakes for store
//! events and due retries; at start (and after a re-list) it queues every interrupted
//! orphan/foreground deletion and every dependent of a missing owner.

pub mod events;
mod graph;

use super::objects::{self, Stored};
use super::status::ApiError;
use super::write::{
    DeleteOptions, FieldValidation, WriteOptions, Writer, FINALIZER_FOREGROUND, FINALIZER_ORPHAN,
};
use super::ApiServer;
use crate::patch::PatchType;
use crate::resources::{Resource, RESOURCES};
use graph::{Graph, Identity, Meta, Node, OwnerRef};
use kubelite_storage::{Error as StoreError, Event, EventKind, Revision, TryNext, Watcher};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Field manager of the collector's writes.
pub const FIELD_MANAGER: &str = "kubelite-gc";
/// Default Event TTL (kube-apiserver `--event-ttl`).
pub const DEFAULT_EVENT_TTL: Duration = Duration::from_secs(60 * 60);
/// Default period of the Event TTL sweep.
pub const DEFAULT_EVENT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// The store prefix the collector watches.
const REGISTRY_PREFIX: &str = "/registry/";
/// Objects read per list page while building the graph.
const LIST_PAGE: usize = 500;
/// Read-modify-write attempts of one patch before giving the item back to the queue.
const WRITE_ATTEMPTS: usize = 8;
/// First and longest delay before a failed item is retried.
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(300);

/// Tunables of [`spawn_with`].
#[derive(Debug, Clone)]
pub struct GcConfig {
    /// Events whose last activity is older than this are deleted.
    pub event_ttl: Duration,
    /// How often expired Events are looked for.
    pub event_sweep_interval: Duration,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            event_ttl: DEFAULT_EVENT_TTL,
            event_sweep_interval: DEFAULT_EVENT_SWEEP_INTERVAL,
        }
    }
}

/// Starts the garbage collector and the Event TTL sweep with the defaults.
pub fn spawn(server: Arc<ApiServer>) {
    spawn_with(server, GcConfig::default());
}

/// Starts the garbage collector and the Event TTL sweep (one task each).
pub fn spawn_with(server: Arc<ApiServer>, cfg: GcConfig) {
    let writer = server.writer.clone();
    tokio::spawn(Collector::new(writer.clone()).run());
    tokio::spawn(events::run(writer, cfg.event_ttl, cfg.event_sweep_interval));
}

/// Exponential backoff.
struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            next: min,
            min,
            max,
        }
    }

    fn step(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    fn reset(&mut self) {
        self.next = self.min;
    }
}

/// How one ownerReference stands, judged from the store.
enum OwnerState {
    /// The owner exists with the referenced uid.
    Solid,
    /// No object at the reference's coordinates, or one with another uid.
    Dangling,
    /// The owner exists and is being deleted in the foreground.
    Waiting,
    /// The reference cannot be resolved (unknown kind, namespaced owner of a cluster-scoped
    /// object): the collector does not judge it, and it keeps the dependent alive.
    Unknown,
}

/// One unit of work.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Task {
    /// Decide what the object with this uid needs (see the module documentation).
    Object(String),
    /// Remove the reference to `owner` from `dependent` (orphan deletion of `owner`).
    Unlink { dependent: String, owner: String },
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Task::Object(uid) => write!(f, "object {uid}"),
            Task::Unlink { dependent, owner } => {
                write!(f, "reference from {dependent} to {owner}")
            }
        }
    }
}

struct Collector {
    writer: Writer,
    /// Key prefix → resource, for every stored resource.
    prefixes: Vec<(String, &'static Resource)>,
    graph: Graph,
    queue: VecDeque<Task>,
    queued: HashSet<Task>,
    /// Failed tasks and when to try them again.
    retry_at: HashMap<Task, Instant>,
    /// Consecutive failures per task.
    failures: HashMap<Task, u32>,
}

impl Collector {
    fn new(writer: Writer) -> Self {
        Collector {
            writer,
            prefixes: RESOURCES
                .iter()
                .filter(|r| r.is_stored())
                .map(|r| (r.key_prefix(), r))
                .collect(),
            graph: Graph::default(),
            queue: VecDeque::new(),
            queued: HashSet::new(),
            retry_at: HashMap::new(),
            failures: HashMap::new(),
        }
    }

    fn write_options() -> WriteOptions {
        WriteOptions {
            dry_run: false,
            field_manager: FIELD_MANAGER.into(),
            field_validation: FieldValidation::Ignore,
            force: false,
        }
    }

    fn resource_of(&self, key: &str) -> Option<&'static Resource> {
        self.prefixes
            .iter()
            .find(|(p, _)| key.starts_with(p.as_str()))
            .map(|(_, r)| *r)
    }

    /// Lists, follows the watch, and re-lists when it must; never returns.
    async fn run(mut self) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        loop {
            let rev = match self.relist().await {
                Ok(rev) => rev,
                Err(e) => {
                    tracing::warn!(error = %e, "garbage collector: listing the store failed");
                    tokio::time::sleep(backoff.step()).await;
                    continue;
                }
            };
            backoff.reset();
            tracing::debug!(
                objects = self.graph.len(),
                revision = rev,
                queued = self.queue.len(),
                "garbage collector: graph built"
            );
            self.follow(rev).await;
        }
    }

    /// Rebuilds the graph from a list of every stored resource at one revision, and queues
    /// whatever is pending (interrupted orphan/foreground deletions, dependents of missing
    /// owners). Returns the list revision.
    async fn relist(&mut self) -> Result<Revision, StoreError> {
        let backend = self.writer.objects.backend.clone();
        let mut graph = Graph::default();
        let mut at: Option<Revision> = None;
        for (prefix, r) in &self.prefixes {
            let mut start: Option<String> = None;
            loop {
                let page = backend
                    .list(prefix, start.as_deref(), LIST_PAGE, at)
                    .await?;
                at = Some(page.revision);
                for kv in &page.kvs {
                    if let Some((uid, node)) = Node::parse(r, &kv.value) {
                        graph.upsert(kv.key.clone(), uid, node);
                    }
                }
                match page.kvs.last() {
                    Some(kv) if page.more => start = Some(format!("{}\0", kv.key)),
                    _ => break,
                }
            }
        }
        self.graph = graph;
        self.queue.clear();
        self.queued.clear();
        self.retry_at.clear();
        self.failures.clear();
        let pending: Vec<String> = self
            .graph
            .uids()
            .filter(|uid| {
                self.graph.needs_attention(uid)
                    || self.graph.get(uid).is_some_and(Node::pending_gc_deletion)
            })
            .cloned()
            .collect();
        for uid in pending {
            self.enqueue(Task::Object(uid));
        }
        Ok(at.unwrap_or_else(|| backend.current_revision()))
    }

    /// Follows the store from `from`, re-watching from the last revision seen whenever the
    /// watch ends. Returns when the revision to resume from has been compacted.
    async fn follow(&mut self, mut from: Revision) {
        let backend = self.writer.objects.backend.clone();
        let mut quiet_ends = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        loop {
            let mut watcher = match backend.watch(REGISTRY_PREFIX, from).await {
                Ok(w) => w,
                Err(StoreError::Compacted { .. }) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "garbage collector: watch failed");
                    tokio::time::sleep(quiet_ends.step()).await;
                    continue;
                }
            };
            let delivered = self.drive(&mut watcher).await;
            from = watcher.last_revision();
            drop(watcher);
            if delivered {
                quiet_ends.reset();
            } else {
                // A watch that ends without delivering anything (store closing): don't spin.
                tokio::time::sleep(quiet_ends.step()).await;
            }
        }
    }

    /// Applies watch events to the graph and works the queue, one item at a time with the
    /// events delivered meanwhile taken in between (so the watch never falls behind because
    /// of the collector's own writes), until the watch ends. Returns whether the watch
    /// delivered any event.
    async fn drive(&mut self, watcher: &mut Watcher) -> bool {
        let mut delivered = false;
        loop {
            loop {
                match watcher.try_next() {
                    TryNext::Event(e) => {
                        delivered = true;
                        self.observe(&e);
                    }
                    TryNext::Empty => break,
                    TryNext::Closed => return delivered,
                }
            }
            self.promote_due_retries();
            if let Some(task) = self.queue.pop_front() {
                self.queued.remove(&task);
                self.work_on(task).await;
                continue;
            }
            let wake = self.retry_at.values().min().copied();
            tokio::select! {
                ev = watcher.next() => match ev {
                    Some(e) => {
                        delivered = true;
                        self.observe(&e);
                    }
                    None => return delivered,
                },
                _ = sleep_until(wake) => {}
            }
        }
    }

    fn enqueue(&mut self, task: Task) {
        if self.queued.insert(task.clone()) {
            self.queue.push_back(task);
        }
    }

    fn enqueue_object(&mut self, uid: &str) {
        self.enqueue(Task::Object(uid.to_string()));
    }

    fn promote_due_retries(&mut self) {
        let now = Instant::now();
        let due: Vec<Task> = self
            .retry_at
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(task, _)| task.clone())
            .collect();
        for task in due {
            self.retry_at.remove(&task);
            self.enqueue(task);
        }
    }

    /// Updates the graph with one store event and queues what it affects.
    fn observe(&mut self, e: &Event) {
        let Some(r) = self.resource_of(&e.kv.key) else {
            return;
        };
        if e.kind == EventKind::Delete {
            if let Some((uid, node)) = self.graph.remove_key(&e.kv.key) {
                self.on_gone(&uid, &node);
            }
            return;
        }
        let Some((uid, node)) = Node::parse(r, &e.kv.value) else {
            return;
        };
        let up = self.graph.upsert(e.kv.key.clone(), uid.clone(), node);
        if let Some((old_uid, old)) = &up.replaced {
            self.on_gone(old_uid, old);
        }
        self.on_changed(&uid, up.previous.as_ref());
    }

    /// An object is gone: its dependents may now be orphans, and an owner waiting for its
    /// dependents (foreground or orphan deletion) may be done.
    fn on_gone(&mut self, uid: &str, node: &Node) {
        for d in self.graph.dependents(uid) {
            self.enqueue(Task::Object(d));
        }
        self.wake_pending_owners(&node.owners);
    }

    /// Queues the owners among `owners` whose foreground or orphan deletion is in progress.
    fn wake_pending_owners(&mut self, owners: &[OwnerRef]) {
        let pending: Vec<String> = owners
            .iter()
            .filter(|o| {
                self.graph
                    .get(&o.uid)
                    .is_some_and(Node::pending_gc_deletion)
            })
            .map(|o| o.uid.clone())
            .collect();
        for o in pending {
            self.enqueue(Task::Object(o));
        }
    }

    /// An object was created or updated.
    fn on_changed(&mut self, uid: &str, previous: Option<&Node>) {
        let Some(node) = self.graph.get(uid).cloned() else {
            return;
        };
        let state = |n: &Node| (n.deleting, n.orphan, n.foreground);
        let state_changed = previous.is_none_or(|p| state(p) != state(&node));
        if node.pending_gc_deletion() && state_changed {
            self.enqueue_object(uid);
        }
        let refs_changed = previous.is_none_or(|p| p.owners != node.owners);
        if refs_changed {
            if self.graph.needs_attention(uid) {
                self.enqueue_object(uid);
            }
            if let Some(p) = previous {
                self.wake_pending_owners(&p.owners);
            }
            self.wake_pending_owners(&node.owners);
        }
    }

    /// Carries out one task; a failure schedules a retry with exponential backoff.
    async fn work_on(&mut self, task: Task) {
        let done = match &task {
            Task::Object(uid) => self.process(uid).await,
            Task::Unlink { dependent, owner } => self.unlink(dependent, owner).await,
        };
        match done {
            Ok(more) => {
                self.failures.remove(&task);
                for m in more {
                    self.enqueue(m);
                }
            }
            Err(e) => {
                let n = self.failures.entry(task.clone()).or_insert(0);
                *n = n.saturating_add(1);
                let delay = RETRY_MIN
                    .saturating_mul(1u32 << (*n - 1).min(16))
                    .min(RETRY_MAX);
                if e.code == 409 {
                    tracing::debug!(%task, error = %e, "garbage collector: conflict, retrying");
                } else {
                    tracing::warn!(%task, error = %e, retry_in = ?delay, "garbage collector: task failed");
                }
                self.retry_at.insert(task, Instant::now() + delay);
            }
        }
    }

    /// Decides and acts on one object from its latest stored state. Returns more tasks.
    async fn process(&self, uid: &str) -> Result<Vec<Task>, ApiError> {
        let Some(node) = self.graph.get(uid) else {
            return Ok(Vec::new());
        };
        let id = node.id.clone();
        let Some(latest) = self.fetch(&id, uid).await? else {
            // Gone or replaced: its delete event drives what follows.
            return Ok(Vec::new());
        };
        let meta = meta_of(&latest)?;
        if meta.deleting() {
            if meta.has_finalizer(FINALIZER_ORPHAN) {
                return self.orphan_dependents(uid, &id).await;
            }
            if meta.has_finalizer(FINALIZER_FOREGROUND) {
                return self.delete_dependents(uid, &id).await;
            }
            return Ok(Vec::new());
        }
        if meta.owners().is_empty() {
            return Ok(Vec::new());
        }
        self.collect(uid, &id, &latest, &meta).await?;
        Ok(Vec::new())
    }

    /// The object at `id` if it is still the one with `uid`.
    async fn fetch(&self, id: &Identity, uid: &str) -> Result<Option<Stored>, ApiError> {
        let Some(s) = self
            .writer
            .objects
            .get(id.resource, id.ns(), &id.name)
            .await?
        else {
            return Ok(None);
        };
        Ok((meta_of(&s)?.uid == uid).then_some(s))
    }

    async fn owner_state(
        &self,
        r: &OwnerRef,
        dependent: &Identity,
    ) -> Result<OwnerState, ApiError> {
        let Some(owner) = graph::resolve(r, dependent.ns()) else {
            return Ok(OwnerState::Unknown);
        };
        let Some(s) = self
            .writer
            .objects
            .get(owner.resource, owner.ns(), &owner.name)
            .await?
        else {
            return Ok(OwnerState::Dangling);
        };
        let m = meta_of(&s)?;
        Ok(if m.uid != r.uid {
            OwnerState::Dangling
        } else if m.deleting() && m.has_finalizer(FINALIZER_FOREGROUND) {
            OwnerState::Waiting
        } else {
            OwnerState::Solid
        })
    }

    /// Deletes a dependent without a live owner, or removes its references to missing and
    /// foreground-deleting owners when it has a live one.
    async fn collect(
        &self,
        uid: &str,
        id: &Identity,
        latest: &Stored,
        meta: &Meta,
    ) -> Result<(), ApiError> {
        let mut solid = false;
        let mut dangling: Vec<String> = Vec::new();
        let mut waiting: Vec<String> = Vec::new();
        for r in meta.owners() {
            match self.owner_state(r, id).await? {
                OwnerState::Solid | OwnerState::Unknown => solid = true,
                OwnerState::Dangling => dangling.push(r.uid.clone()),
                OwnerState::Waiting => waiting.push(r.uid.clone()),
            }
        }
        if solid {
            if dangling.is_empty() && waiting.is_empty() {
                return Ok(());
            }
            tracing::debug!(object = %id, ?dangling, ?waiting, "garbage collector: removing owner references");
            dangling.extend(waiting);
            self.remove_owner_refs(uid, id, &dangling).await?;
            return Ok(());
        }
        if !waiting.is_empty() && self.graph.has_dependents(uid) {
            // Its own dependents go first (Foreground). Break a possible cycle of foreground
            // deletions by making its references non-blocking, as upstream does.
            let mut rv = Some(latest.revision);
            let cycle = self
                .graph
                .dependents(uid)
                .iter()
                .any(|d| self.graph.get(d).is_some_and(Node::deleting_dependents));
            if cycle {
                rv = self.unblock_owner_refs(uid, id).await?;
                if rv.is_none() {
                    return Ok(());
                }
            }
            tracing::debug!(object = %id, "garbage collector: deleting (Foreground)");
            return self.delete(uid, id, rv, "Foreground").await;
        }
        let policy = if meta.has_finalizer(FINALIZER_ORPHAN) {
            "Orphan"
        } else if meta.has_finalizer(FINALIZER_FOREGROUND) {
            "Foreground"
        } else {
            "Background"
        };
        tracing::debug!(object = %id, policy, "garbage collector: deleting object without owners");
        self.delete(uid, id, Some(latest.revision), policy).await
    }

    /// DELETE with uid and resourceVersion preconditions; a missing object is fine.
    async fn delete(
        &self,
        uid: &str,
        id: &Identity,
        rv: Option<Revision>,
        policy: &str,
    ) -> Result<(), ApiError> {
        let opts = DeleteOptions {
            propagation_policy: Some(policy.to_string()),
            precondition_uid: Some(uid.to_string()),
            precondition_rv: rv.map(|r| r.to_string()),
            ..Default::default()
        };
        match self
            .writer
            .delete(id.resource, id.ns(), &id.name, &opts)
            .await
        {
            Ok(_) | Err(ApiError { code: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A foreground deletion: queues the dependents, and removes `foregroundDeletion` once
    /// no dependent blocks the owner.
    async fn delete_dependents(&self, uid: &str, id: &Identity) -> Result<Vec<Task>, ApiError> {
        let deps = self.graph.dependents(uid);
        let blocking = deps.iter().any(|d| {
            self.graph
                .get(d)
                .is_some_and(|n| n.owners.iter().any(|o| o.uid == uid && o.blocks()))
        });
        if !blocking {
            tracing::debug!(object = %id, "garbage collector: foreground deletion done");
            self.remove_finalizer(uid, id, FINALIZER_FOREGROUND).await?;
        }
        Ok(deps
            .into_iter()
            .filter(|d| self.graph.get(d).is_some_and(|n| !n.deleting))
            .map(Task::Object)
            .collect())
    }

    /// An orphan deletion: while dependents still reference the owner, queues the removal of
    /// each reference (their updates bring the owner back here); then removes the `orphan`
    /// finalizer.
    async fn orphan_dependents(&self, uid: &str, id: &Identity) -> Result<Vec<Task>, ApiError> {
        let deps = self.graph.dependents(uid);
        if !deps.is_empty() {
            return Ok(deps
                .into_iter()
                .map(|dependent| Task::Unlink {
                    dependent,
                    owner: uid.to_string(),
                })
                .collect());
        }
        tracing::debug!(object = %id, "garbage collector: dependents orphaned");
        self.remove_finalizer(uid, id, FINALIZER_ORPHAN).await?;
        Ok(Vec::new())
    }

    /// Removes `dependent`'s reference to `owner`.
    async fn unlink(&self, dependent: &str, owner: &str) -> Result<Vec<Task>, ApiError> {
        if let Some(dep) = self.graph.get(dependent) {
            let id = dep.id.clone();
            self.remove_owner_refs(dependent, &id, &[owner.to_string()])
                .await?;
        }
        Ok(Vec::new())
    }

    /// Merge-patches the object (if it is still `uid`) with what `change` derives from its
    /// current value, with the resourceVersion read as precondition; retried on conflict.
    /// `change` returns None when there is nothing to do. Returns the revision written (or
    /// current), None when the object is gone.
    async fn patch_with(
        &self,
        uid: &str,
        id: &Identity,
        change: impl Fn(&Value) -> Option<Value>,
    ) -> Result<Option<Revision>, ApiError> {
        for _ in 0..WRITE_ATTEMPTS {
            let Some(cur) = self.fetch(id, uid).await? else {
                return Ok(None);
            };
            let Some(mut meta_patch) = change(&cur.value) else {
                return Ok(Some(cur.revision));
            };
            meta_patch["resourceVersion"] = json!(cur.revision.to_string());
            let body = json!({ "metadata": meta_patch });
            match self
                .writer
                .patch(
                    id.resource,
                    id.ns(),
                    &id.name,
                    None,
                    PatchType::Merge,
                    body,
                    None,
                    &Self::write_options(),
                )
                .await
            {
                Ok(w) => {
                    return Ok(w
                        .object
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse().ok()))
                }
                Err(ApiError { code: 404, .. }) => return Ok(None),
                Err(ApiError { code: 409, .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ApiError::stale(id.resource, &id.name))
    }

    /// Removes the ownerReferences to `owners` (by uid).
    async fn remove_owner_refs(
        &self,
        uid: &str,
        id: &Identity,
        owners: &[String],
    ) -> Result<Option<Revision>, ApiError> {
        self.patch_with(uid, id, |v| {
            let refs = v.pointer("/metadata/ownerReferences")?.as_array()?;
            let kept: Vec<Value> = refs
                .iter()
                .filter(|r| {
                    !r.get("uid")
                        .and_then(Value::as_str)
                        .is_some_and(|u| owners.iter().any(|o| o == u))
                })
                .cloned()
                .collect();
            if kept.len() == refs.len() {
                return None;
            }
            let list = if kept.is_empty() {
                Value::Null
            } else {
                Value::Array(kept)
            };
            Some(json!({ "ownerReferences": list }))
        })
        .await
    }

    /// Sets `blockOwnerDeletion: false` on every blocking ownerReference.
    async fn unblock_owner_refs(
        &self,
        uid: &str,
        id: &Identity,
    ) -> Result<Option<Revision>, ApiError> {
        self.patch_with(uid, id, |v| {
            let refs = v.pointer("/metadata/ownerReferences")?.as_array()?;
            if !refs
                .iter()
                .any(|r| r.get("blockOwnerDeletion") == Some(&Value::Bool(true)))
            {
                return None;
            }
            let refs: Vec<Value> = refs
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    if r.get("blockOwnerDeletion") == Some(&Value::Bool(true)) {
                        r["blockOwnerDeletion"] = Value::Bool(false);
                    }
                    r
                })
                .collect();
            Some(json!({ "ownerReferences": refs }))
        })
        .await
    }

    /// Removes one finalizer; the write path deletes the object when it was the last one of
    /// a pending deletion.
    async fn remove_finalizer(
        &self,
        uid: &str,
        id: &Identity,
        finalizer: &str,
    ) -> Result<(), ApiError> {
        self.patch_with(uid, id, |v| {
            let list = v.pointer("/metadata/finalizers")?.as_array()?;
            if !list.iter().any(|f| f == finalizer) {
                return None;
            }
            let kept: Vec<Value> = list.iter().filter(|f| *f != finalizer).cloned().collect();
            let list = if kept.is_empty() {
                Value::Null
            } else {
                Value::Array(kept)
            };
            Some(json!({ "finalizers": list }))
        })
        .await
        .map(|_| ())
    }
}

fn meta_of(s: &Stored) -> Result<Meta, ApiError> {
    Meta::from_bytes(&s.bytes).map_err(|e| {
        ApiError::internal(format!(
            "corrupt object {}: {e}",
            objects::name_of(&s.value)
        ))
    })
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
