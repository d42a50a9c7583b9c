//! kubelite-storage: a revisioned key-value log with watch, modelled on kine.
//!
//! Every create/update/delete appends a row; the row id is the cluster-wide revision
//! (Kubernetes `resourceVersion`). The store knows nothing of Kubernetes types: keys are
//! strings, values are opaque bytes. The [`Backend`] trait is the boundary the API server
//! uses, so a PostgreSQL backend can be added without touching it.

mod compact;
mod error;
mod read;
mod schema;
mod sqlite;
mod watch;
mod writer;

pub use error::{Error, Result};
pub use sqlite::{SqliteBackend, SqliteOptions};
pub use watch::{TryNext, Watcher};

use bytes::Bytes;

/// A cluster-wide revision: the id of a row in the log.
pub type Revision = i64;

/// Builds the value to store once the revision it will be stored at is known.
/// This lets the caller embed the revision (e.g. `metadata.resourceVersion`) in the bytes.
pub type ValueFn = Box<dyn FnOnce(Revision) -> Vec<u8> + Send>;

/// One version of one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// Revision at which the key was (last) created.
    pub create_revision: Revision,
    /// Revision of this version (the row id).
    pub mod_revision: Revision,
}

/// What happened to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Create,
    Update,
    Delete,
}

/// One change, as delivered to watchers. For `Delete`, `kv.value` is the tombstone value
/// (built by the deleter's [`ValueFn`]) and `kv.mod_revision` the deletion revision.
#[derive(Clone, Debug)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
    /// The version this change replaced (None for a create).
    pub prev: Option<KeyValue>,
}

/// The answer to a list.
#[derive(Clone, Debug)]
pub struct ListResult {
    pub kvs: Vec<KeyValue>,
    /// The revision the list was read at.
    pub revision: Revision,
    /// True when `limit` cut the list short.
    pub more: bool,
}

/// The store interface the API server uses.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Latest live version of `key` (None if absent or deleted).
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Live keys under `prefix` (byte-wise prefix), in key order, starting at `start`
    /// (inclusive; None = from the beginning of the prefix). `limit` 0 means no limit.
    /// `revision` None = latest; Some(r) = as the store was at r (Err(Compacted) if r is older
    /// than the compacted revision, Err(FutureRevision) if newer than current).
    async fn list(
        &self,
        prefix: &str,
        start: Option<&str>,
        limit: usize,
        revision: Option<Revision>,
    ) -> Result<ListResult>;

    /// Create `key`; Err(AlreadyExists) if it is live.
    async fn create(&self, key: &str, value: ValueFn) -> Result<KeyValue>;

    /// Replace `key` if its current mod_revision is `expected`; Err(Conflict) otherwise,
    /// Err(NotFound) if absent.
    async fn update(&self, key: &str, expected: Revision, value: ValueFn) -> Result<KeyValue>;

    /// Delete `key` (if `expected` is Some, only when its mod_revision matches). The tombstone
    /// value is built by `value`. Returns the tombstone.
    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
        value: ValueFn,
    ) -> Result<KeyValue>;

    /// Events for keys under `prefix` with revision > `from`: history first, then live.
    /// Err(Compacted) if `from` < compacted revision. A watcher that falls behind is dropped
    /// (its stream ends); the caller re-watches from the last revision it saw.
    async fn watch(&self, prefix: &str, from: Revision) -> Result<Watcher>;

    /// The latest committed revision.
    fn current_revision(&self) -> Revision;

    /// Revisions at or below this have been compacted away.
    fn compacted_revision(&self) -> Revision;

    /// Compact now: drop superseded versions and tombstones at or below `revision`.
    async fn compact(&self, revision: Revision) -> Result<()>;
}
