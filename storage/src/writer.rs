//! The single writer thread: it owns the only write connection, assigns revisions, checks
//! compare-and-swap conditions, group-commits batches of writes (one transaction and one
//! fsync for every request that queued up during the previous commit), publishes the
//! committed events to the watch hub in revision order, and runs compaction chunks in
//! between batches.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use crate::compact;
use crate::schema::{self, META_COMPACTED, META_COMPACT_PROGRESS};
use crate::watch::Hub;
use crate::{Error, Event, EventKind, KeyValue, Result, Revision, ValueFn};

/// Revisions visible to every thread.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Latest committed revision whose events were published to watchers.
    pub current: AtomicI64,
    /// Revisions at or below this may have been compacted away.
    pub compacted: AtomicI64,
}

pub(crate) enum WriteOp {
    Create {
        key: String,
        value: ValueFn,
    },
    Update {
        key: String,
        expected: Revision,
        value: ValueFn,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
        value: ValueFn,
    },
}

/// A request to the writer thread.
pub(crate) enum Msg {
    Write {
        op: WriteOp,
        reply: oneshot::Sender<Result<KeyValue>>,
    },
    Compact {
        target: Revision,
        reply: Option<oneshot::Sender<Result<()>>>,
    },
}

struct CompactJob {
    target: Revision,
    waiters: Vec<oneshot::Sender<Result<()>>>,
}

pub(crate) struct WriterConfig {
    pub max_batch: usize,
    pub compact_chunk: i64,
    pub busy_timeout: Duration,
    pub checkpoint_timeout: Duration,
}

pub(crate) struct Writer {
    conn: Connection,
    rx: Receiver<Msg>,
    shared: Arc<Shared>,
    hub: Arc<Hub>,
    cfg: WriterConfig,
    /// Last committed revision.
    last: Revision,
    /// Compaction has deleted everything it should up to here (persisted).
    progress: Revision,
    job: Option<CompactJob>,
}

/// The newest row of a key.
struct Latest {
    id: Revision,
    deleted: bool,
    create_revision: Revision,
    value: Bytes,
}

impl Writer {
    /// Loads the revisions from `conn` (the schema must exist) and publishes them to `shared`.
    pub(crate) fn new(
        conn: Connection,
        rx: Receiver<Msg>,
        shared: Arc<Shared>,
        hub: Arc<Hub>,
        cfg: WriterConfig,
    ) -> Result<Self> {
        let last = schema::current_revision(&conn)?;
        let compacted = schema::meta_get(&conn, META_COMPACTED)?;
        let progress = schema::meta_get(&conn, META_COMPACT_PROGRESS)?;
        shared.current.store(last, Ordering::Release);
        shared.compacted.store(compacted, Ordering::Release);
        // A compaction interrupted by a crash resumes where it stopped.
        let job = (progress < compacted).then(|| CompactJob {
            target: compacted,
            waiters: Vec::new(),
        });
        Ok(Writer {
            conn,
            rx,
            shared,
            hub,
            cfg,
            last,
            progress,
            job,
        })
    }

    /// The thread body: runs until every sender is gone, then closes the connection.
    pub(crate) fn run(mut self) {
        loop {
            let first = if self.job.is_some() {
                match self.rx.try_recv() {
                    Ok(msg) => Some(msg),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => break,
                }
            } else {
                match self.rx.recv() {
                    Ok(msg) => Some(msg),
                    Err(_) => break,
                }
            };
            let mut writes = Vec::new();
            if let Some(first) = first {
                let mut msgs = vec![first];
                while msgs.len() < self.cfg.max_batch {
                    match self.rx.try_recv() {
                        Ok(msg) => msgs.push(msg),
                        Err(_) => break,
                    }
                }
                for msg in msgs {
                    match msg {
                        Msg::Write { op, reply } => writes.push((op, reply)),
                        Msg::Compact { target, reply } => self.request_compaction(target, reply),
                    }
                }
            }
            if !writes.is_empty() {
                self.commit_batch(writes);
            }
            if self.job.is_some() {
                self.compact_step();
            }
        }
        tracing::debug!(revision = self.last, "storage writer thread exiting");
    }

    fn commit_batch(&mut self, writes: Vec<(WriteOp, oneshot::Sender<Result<KeyValue>>)>) {
        let (ops, replies): (Vec<_>, Vec<_>) = writes.into_iter().unzip();
        let outcome = self.apply_batch(ops);
        match outcome {
            Ok((results, events, last)) => {
                // Publish first, then advance current_revision: a reader of current_revision
                // can rely on every event up to it being in the watchers' channels.
                self.hub.publish(&events);
                self.last = last;
                self.shared.current.store(last, Ordering::Release);
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "storage write batch failed");
                match schema::current_revision(&self.conn) {
                    Ok(rev) => self.last = self.last.max(rev),
                    Err(e) => tracing::error!(error = %e, "cannot reload revision"),
                }
                for reply in replies {
                    let _ = reply.send(Err(err.duplicate()));
                }
            }
        }
    }

    /// Applies every op in one transaction. Per-op failures (CAS, not found, a panicking
    /// ValueFn, a failed statement) only fail that op; Err means the whole batch failed.
    #[allow(clippy::type_complexity)]
    fn apply_batch(
        &mut self,
        ops: Vec<WriteOp>,
    ) -> Result<(Vec<Result<KeyValue>>, Vec<Event>, Revision)> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut next = self.last;
        let mut results = Vec::with_capacity(ops.len());
        let mut events = Vec::with_capacity(ops.len());
        for op in ops {
            match apply_op(&tx, op, next + 1) {
                Ok(event) => {
                    next = event.kv.mod_revision;
                    results.push(Ok(event.kv.clone()));
                    events.push(event);
                }
                Err(err) => {
                    if tx.is_autocommit() {
                        // SQLite rolled the whole transaction back (e.g. disk full).
                        return Err(err);
                    }
                    results.push(Err(err));
                }
            }
        }
        if events.is_empty() {
            tx.rollback()?;
        } else {
            tx.commit()?;
        }
        Ok((results, events, next))
    }

    fn request_compaction(&mut self, target: Revision, reply: Option<oneshot::Sender<Result<()>>>) {
        if target > self.last {
            if let Some(reply) = reply {
                let _ = reply.send(Err(Error::FutureRevision { current: self.last }));
            }
            return;
        }
        let compacted = self.shared.compacted.load(Ordering::Acquire);
        if target > compacted {
            // Persist the new compacted revision before deleting anything: from now on reads
            // below it fail, so the chunked deletes never expose a half-compacted state.
            if let Err(err) = schema::meta_set(&self.conn, META_COMPACTED, target) {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(err));
                }
                return;
            }
            self.shared.compacted.store(target, Ordering::Release);
        }
        let compacted = compacted.max(target);
        match &mut self.job {
            Some(job) => {
                job.target = job.target.max(compacted);
                job.waiters.extend(reply);
            }
            None if self.progress < compacted => {
                self.job = Some(CompactJob {
                    target: compacted,
                    waiters: reply.into_iter().collect(),
                });
            }
            None => {
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(()));
                }
            }
        }
    }

    /// Deletes one chunk of obsolete rows; finishes the job (checkpoint, replies) at the end.
    fn compact_step(&mut self) {
        let Some(target) = self.job.as_ref().map(|job| job.target) else {
            return;
        };
        let lo = self.progress;
        let hi = target.min(lo.saturating_add(self.cfg.compact_chunk.max(1)));
        let step = (|| -> Result<usize> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let deleted = compact::delete_chunk(&tx, lo, hi)?;
            schema::meta_set(&tx, META_COMPACT_PROGRESS, hi)?;
            tx.commit()?;
            Ok(deleted)
        })();
        match step {
            Ok(deleted) => {
                tracing::trace!(lo, hi, deleted, "compacted chunk");
                self.progress = hi;
                if hi >= target {
                    self.checkpoint();
                    tracing::debug!(revision = target, "compaction done");
                    if let Some(job) = self.job.take() {
                        for waiter in job.waiters {
                            let _ = waiter.send(Ok(()));
                        }
                    }
                }
            }
            Err(err) => {
                tracing::error!(error = %err, lo, hi, "compaction failed");
                if let Some(job) = self.job.take() {
                    for waiter in job.waiters {
                        let _ = waiter.send(Err(err.duplicate()));
                    }
                }
            }
        }
    }

    /// Moves the WAL into the database file and truncates it. It waits for readers only up
    /// to `checkpoint_timeout` (writers are blocked meanwhile); if readers still hold old
    /// snapshots it gives up, and the WAL is reset by a later checkpoint (automatic or next
    /// compaction), with `journal_size_limit` capping what stays on disk.
    fn checkpoint(&mut self) {
        if let Err(err) = self.conn.busy_timeout(self.cfg.checkpoint_timeout) {
            tracing::warn!(error = %err, "cannot set checkpoint busy timeout");
        }
        let result = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            });
        match result {
            Ok((0, _, _)) => tracing::debug!("WAL checkpointed and truncated"),
            Ok((_, log, done)) => {
                tracing::debug!(log, done, "WAL checkpoint incomplete (readers active)")
            }
            Err(err) => tracing::warn!(error = %err, "WAL checkpoint failed"),
        }
        if let Err(err) = self.conn.busy_timeout(self.cfg.busy_timeout) {
            tracing::warn!(error = %err, "cannot restore busy timeout");
        }
    }
}

fn latest(conn: &Connection, key: &str) -> Result<Option<Latest>> {
    let latest = conn
        .prepare_cached(
            "SELECT id, deleted, create_revision, value FROM kine
             WHERE name = ?1 ORDER BY id DESC LIMIT 1",
        )?
        .query_row([key], |row| {
            let value = match row.get_ref(3)? {
                rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => {
                    Bytes::copy_from_slice(b)
                }
                _ => Bytes::new(),
            };
            Ok(Latest {
                id: row.get(0)?,
                deleted: row.get::<_, Option<i64>>(1)?.unwrap_or(0) != 0,
                create_revision: row.get::<_, Option<i64>>(2)?.unwrap_or(0),
                value,
            })
        })
        .optional()?;
    Ok(latest)
}

fn build_value(value: ValueFn, rev: Revision) -> Result<Bytes> {
    std::panic::catch_unwind(AssertUnwindSafe(move || value(rev)))
        .map(Bytes::from)
        .map_err(|_| Error::Internal("the value function panicked".into()))
}

#[allow(clippy::too_many_arguments)]
fn insert(
    conn: &Connection,
    id: Revision,
    key: &str,
    created: bool,
    deleted: bool,
    create_revision: Revision,
    prev_revision: Revision,
    value: &[u8],
    old_value: Option<&[u8]>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO kine (id, name, created, deleted, create_revision, prev_revision, value, old_value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(rusqlite::params![
        id,
        key,
        created as i64,
        deleted as i64,
        create_revision,
        prev_revision,
        value,
        old_value
    ])?;
    Ok(())
}

/// Checks the op's condition against the key's newest row and appends its row at `rev`.
fn apply_op(conn: &Connection, op: WriteOp, rev: Revision) -> Result<Event> {
    match op {
        WriteOp::Create { key, value } => {
            let latest = latest(conn, &key)?;
            let prev_revision = match &latest {
                Some(l) if !l.deleted => return Err(Error::AlreadyExists),
                Some(l) => l.id,
                None => 0,
            };
            let value = build_value(value, rev)?;
            insert(
                conn,
                rev,
                &key,
                true,
                false,
                rev,
                prev_revision,
                &value,
                None,
            )?;
            Ok(Event {
                kind: EventKind::Create,
                kv: KeyValue {
                    key,
                    value,
                    create_revision: rev,
                    mod_revision: rev,
                },
                prev: None,
            })
        }
        WriteOp::Update {
            key,
            expected,
            value,
        } => change(conn, key, Some(expected), value, rev, EventKind::Update),
        WriteOp::Delete {
            key,
            expected,
            value,
        } => change(conn, key, expected, value, rev, EventKind::Delete),
    }
}

/// Update or delete (tombstone) of a live key.
fn change(
    conn: &Connection,
    key: String,
    expected: Option<Revision>,
    value: ValueFn,
    rev: Revision,
    kind: EventKind,
) -> Result<Event> {
    let prev = match latest(conn, &key)? {
        Some(l) if !l.deleted => l,
        _ => return Err(Error::NotFound),
    };
    if let Some(expected) = expected {
        if prev.id != expected {
            return Err(Error::Conflict { current: prev.id });
        }
    }
    let value = build_value(value, rev)?;
    insert(
        conn,
        rev,
        &key,
        false,
        kind == EventKind::Delete,
        prev.create_revision,
        prev.id,
        &value,
        Some(&prev.value),
    )?;
    Ok(Event {
        kind,
        kv: KeyValue {
            key: key.clone(),
            value,
            create_revision: prev.create_revision,
            mod_revision: rev,
        },
        prev: Some(KeyValue {
            key,
            value: prev.value,
            create_revision: prev.create_revision,
            mod_revision: prev.id,
        }),
    })
}
