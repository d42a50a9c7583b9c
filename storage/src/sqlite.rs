//! [`SqliteBackend`]: the [`Backend`] on one SQLite file, and its [`SqliteOptions`].
//! It wires the pieces together: one writer thread (`writer.rs`), a pool of read
//! connections (`read.rs`), the watch hub (`watch.rs`) and the compactor (`compact.rs`),
//! and it owns their lifecycle (`close`, or drop).
//!
//! Durability: WAL mode with `synchronous=FULL` (see `schema.rs`): a write is acknowledged
//! only after its batch's commit has been fsynced, so it survives a crash or power loss.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{oneshot, Semaphore};

use crate::compact::{Compactor, Policy};
use crate::read::{self, ReadPool};
use crate::schema::{self, ConnConfig};
use crate::watch::{Hub, Watcher};
use crate::writer::{Msg, Shared, WriteOp, Writer, WriterConfig};
use crate::{Backend, Error, KeyValue, ListResult, Result, Revision, ValueFn};

/// How to open a [`SqliteBackend`]. Build with [`SqliteOptions::new`] and adjust fields.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// The database file (created with its parent directory if missing).
    pub path: PathBuf,
    /// How often the background compactor runs; None disables it (use `compact`).
    /// Default: 60 s.
    pub compact_interval: Option<Duration>,
    /// Automatic compaction keeps at least this many recent revisions. Default: 1000.
    pub keep_revisions: i64,
    /// ... and at least this much recent history, whichever keeps more. Default: 5 min.
    pub keep_window: Duration,
    /// Revisions deleted per compaction transaction (writes interleave). Default: 1000.
    pub compact_chunk: i64,
    /// SQLite busy timeout of every connection. Default: 5 s.
    pub busy_timeout: Duration,
    /// How long the post-compaction WAL checkpoint waits for readers. Default: 250 ms.
    pub checkpoint_timeout: Duration,
    /// Most write requests committed in one transaction. Default: 1024.
    pub max_batch: usize,
    /// Concurrent reads, each on its own pooled connection. Default: 4.
    pub read_connections: usize,
    /// Events buffered per watcher before it is dropped as too slow. Default: 1024.
    pub watch_buffer: usize,
    /// `PRAGMA journal_size_limit`: bytes of WAL kept on disk after a reset. Default: 64 MiB.
    pub journal_size_limit: i64,
    /// Page cache per connection, in KiB. Default: 16 MiB.
    pub cache_kib: i64,
}

impl SqliteOptions {
    /// The defaults for the database file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteOptions {
            path: path.into(),
            compact_interval: Some(Duration::from_secs(60)),
            keep_revisions: 1000,
            keep_window: Duration::from_secs(300),
            compact_chunk: 1000,
            busy_timeout: Duration::from_secs(5),
            checkpoint_timeout: Duration::from_millis(250),
            max_batch: 1024,
            read_connections: 4,
            watch_buffer: 1024,
            journal_size_limit: 64 << 20,
            cache_kib: 16 << 10,
        }
    }
}

/// A revisioned key-value log with watch on one SQLite database (kine's layout).
pub struct SqliteBackend {
    path: PathBuf,
    shared: Arc<Shared>,
    hub: Arc<Hub>,
    reads: Arc<ReadPool>,
    /// Bounds concurrent reads (and so blocking threads and open read connections).
    read_slots: Arc<Semaphore>,
    writer_tx: Mutex<Option<Sender<Msg>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    compactor: Mutex<Option<Compactor>>,
    watch_buffer: usize,
}

impl SqliteBackend {
    /// Opens (or creates) the database, starts the writer thread and, if configured, the
    /// background compactor. Needs no async runtime; the async methods need tokio.
    pub fn open(opts: SqliteOptions) -> Result<Arc<SqliteBackend>> {
        if let Some(dir) = opts.path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let cfg = ConnConfig {
            busy_timeout: opts.busy_timeout,
            journal_size_limit: opts.journal_size_limit,
            cache_kib: opts.cache_kib,
        };
        let conn = schema::open_writer(&opts.path, &cfg)?;
        let shared = Arc::new(Shared::default());
        let hub = Arc::new(Hub::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = Writer::new(
            conn,
            rx,
            shared.clone(),
            hub.clone(),
            WriterConfig {
                max_batch: opts.max_batch.max(1),
                compact_chunk: opts.compact_chunk,
                busy_timeout: opts.busy_timeout,
                checkpoint_timeout: opts.checkpoint_timeout,
            },
        )?;
        let handle = std::thread::Builder::new()
            .name("kubelite-storage-writer".into())
            .spawn(move || writer.run())?;
        let compactor = match opts.compact_interval {
            Some(interval) => Some(Compactor::spawn(
                interval,
                Policy::new(opts.keep_revisions, opts.keep_window),
                shared.clone(),
                tx.clone(),
            )?),
            None => None,
        };
        tracing::info!(
            path = %opts.path.display(),
            revision = shared.current.load(Ordering::Acquire),
            compacted = shared.compacted.load(Ordering::Acquire),
            "opened sqlite storage"
        );
        Ok(Arc::new(SqliteBackend {
            reads: Arc::new(ReadPool::new(opts.path.clone(), cfg, opts.read_connections)),
            read_slots: Arc::new(Semaphore::new(opts.read_connections.max(1))),
            path: opts.path,
            shared,
            hub,
            writer_tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
            compactor: Mutex::new(compactor),
            watch_buffer: opts.watch_buffer,
        }))
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Stops the compactor, lets the writer finish the requests already queued, closes the
    /// database and ends every watcher. Later calls fail with `Error::Closed`. Blocks until
    /// the writer thread has exited; called by drop.
    pub fn close(&self) {
        if let Some(mut compactor) = self
            .compactor
            .lock()
            .expect("compactor mutex poisoned")
            .take()
        {
            compactor.stop();
        }
        drop(
            self.writer_tx
                .lock()
                .expect("writer sender mutex poisoned")
                .take(),
        );
        if let Some(handle) = self
            .writer
            .lock()
            .expect("writer handle mutex poisoned")
            .take()
        {
            if handle.join().is_err() {
                tracing::error!("storage writer thread panicked");
            }
        }
        self.hub.close();
        self.read_slots.close();
        self.reads.clear();
    }

    fn send(&self, msg: Msg) -> Result<()> {
        let guard = self.writer_tx.lock().expect("writer sender mutex poisoned");
        let tx = guard.as_ref().ok_or(Error::Closed)?;
        tx.send(msg).map_err(|_| Error::Closed)
    }

    async fn write(&self, op: WriteOp) -> Result<KeyValue> {
        let (reply, rx) = oneshot::channel();
        self.send(Msg::Write { op, reply })?;
        rx.await.map_err(|_| Error::Closed)?
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut rusqlite::Connection) -> Result<T> + Send + 'static,
    {
        if self
            .writer_tx
            .lock()
            .expect("writer sender mutex poisoned")
            .is_none()
        {
            return Err(Error::Closed);
        }
        let slot = self
            .read_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Closed)?;
        let reads = self.reads.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            reads.with_conn(f)
        })
        .await
        .map_err(|e| Error::Internal(format!("read task failed: {e}")))?
    }
}

impl Drop for SqliteBackend {
    fn drop(&mut self) {
        self.close();
    }
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("path", &self.path)
            .field("current", &self.shared.current.load(Ordering::Relaxed))
            .field("compacted", &self.shared.compacted.load(Ordering::Relaxed))
            .finish()
    }
}

#[async_trait::async_trait]
impl Backend for SqliteBackend {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_owned();
        self.read(move |conn| read::get(conn, &key)).await
    }

    async fn list(
        &self,
        prefix: &str,
        start: Option<&str>,
        limit: usize,
        revision: Option<Revision>,
    ) -> Result<ListResult> {
        let prefix = prefix.to_owned();
        let start = start.map(str::to_owned);
        self.read(move |conn| read::list(conn, &prefix, start.as_deref(), limit, revision))
            .await
    }

    async fn create(&self, key: &str, value: ValueFn) -> Result<KeyValue> {
        self.write(WriteOp::Create {
            key: key.to_owned(),
            value,
        })
        .await
    }

    async fn update(&self, key: &str, expected: Revision, value: ValueFn) -> Result<KeyValue> {
        self.write(WriteOp::Update {
            key: key.to_owned(),
            expected,
            value,
        })
        .await
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
        value: ValueFn,
    ) -> Result<KeyValue> {
        self.write(WriteOp::Delete {
            key: key.to_owned(),
            expected,
            value,
        })
        .await
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<Watcher> {
        let compacted = self.compacted_revision();
        if from < compacted {
            return Err(Error::Compacted { compacted });
        }
        // Subscribe before reading history: every event committed after the history
        // snapshot is published after this point, so it reaches the live channel.
        let (id, live) = self
            .hub
            .subscribe(prefix, self.watch_buffer)
            .ok_or(Error::Closed)?;
        let mut watcher = Watcher::new(Default::default(), live, from, &self.hub, id);
        let prefix = prefix.to_owned();
        let history = self
            .read(move |conn| read::replay(conn, &prefix, from))
            .await?;
        watcher.set_history(history);
        Ok(watcher)
    }

    fn current_revision(&self) -> Revision {
        self.shared.current.load(Ordering::Acquire)
    }

    fn compacted_revision(&self) -> Revision {
        self.shared.compacted.load(Ordering::Acquire)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Msg::Compact {
            target: revision,
            reply: Some(reply),
        })?;
        rx.await.map_err(|_| Error::Closed)?
    }
}
