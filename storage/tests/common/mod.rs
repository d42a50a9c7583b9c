//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kubelite_storage::{SqliteBackend, SqliteOptions, ValueFn};

/// Options for a test database: no background compaction unless a test asks for it.
pub fn options(dir: &Path) -> SqliteOptions {
    let mut opts = SqliteOptions::new(dir.join("state.db"));
    opts.compact_interval = None;
    opts
}

pub fn open(dir: &Path) -> Arc<SqliteBackend> {
    SqliteBackend::open(options(dir)).expect("open test database")
}

/// A value function storing `text`.
pub fn val(text: &str) -> ValueFn {
    let text = text.to_owned();
    Box::new(move |_| text.into_bytes())
}

/// A value function storing `text@<revision>`, proving the revision is known up front.
pub fn val_rev(text: &str) -> ValueFn {
    let text = text.to_owned();
    Box::new(move |rev| format!("{text}@{rev}").into_bytes())
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Size of the database file plus its WAL.
pub fn db_size(path: &Path) -> u64 {
    let wal = path.with_file_name(format!(
        "{}-wal",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("state.db")
    ));
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    size(path) + size(&wal)
}
