//! Compaction: the SQL that deletes superseded versions and tombstones in revision chunks,
//! the retention policy (keep the last N revisions *and* the last T of history, whichever
//! is larger), and the background thread that asks the writer to compact periodically.
//!
//! The writer thread executes compactions (see `writer.rs`), so compaction never contends
//! with writes for SQLite's write lock; it interleaves its chunks with write batches.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::writer::{Msg, Shared};
use crate::{Result, Revision};

/// Deletes the rows made obsolete by the rows with ids in `(lo, hi]`: each such row's
/// predecessor (`prev_revision`, superseded by it), and the row itself if it is a tombstone.
/// Processing `(compact_progress, target]` chunk by chunk thus removes every version at or
/// below `target` that is superseded by a version at or below `target`, plus every
/// tombstone at or below `target` (whose predecessors all go with it).
pub(crate) fn delete_chunk(conn: &Connection, lo: Revision, hi: Revision) -> Result<usize> {
    let deleted = conn
        .prepare_cached(
            "DELETE FROM kine WHERE id IN (
                 SELECT prev_revision FROM kine WHERE id > ?1 AND id <= ?2 AND prev_revision > 0
                 UNION
                 SELECT id FROM kine WHERE id > ?1 AND id <= ?2 AND deleted != 0)",
        )?
        .execute([lo, hi])?;
    Ok(deleted)
}

/// Retention policy: compact to `min(current - keep_revisions, revision keep_window ago)`.
pub(crate) struct Policy {
    keep_revisions: i64,
    keep_window: Duration,
    /// (when, current revision then), oldest first.
    samples: VecDeque<(Instant, Revision)>,
}

impl Policy {
    pub(crate) fn new(keep_revisions: i64, keep_window: Duration) -> Self {
        Policy {
            keep_revisions: keep_revisions.max(0),
            keep_window,
            samples: VecDeque::new(),
        }
    }

    /// Records that `revision` was current at `now`.
    pub(crate) fn record(&mut self, now: Instant, revision: Revision) {
        self.samples.push_back((now, revision));
        // Keep only the newest sample that is already older than the window, and the rest.
        if let Some(cutoff) = now.checked_sub(self.keep_window) {
            while self.samples.len() >= 2 && self.samples[1].0 <= cutoff {
                self.samples.pop_front();
            }
        }
    }

    /// The revision to compact to now, if any. Revisions current less than `keep_window`
    /// ago, and the last `keep_revisions` revisions, are kept.
    pub(crate) fn target(&self, now: Instant, current: Revision) -> Option<Revision> {
        let by_count = current.saturating_sub(self.keep_revisions);
        let by_time = if self.keep_window.is_zero() {
            current
        } else {
            let cutoff = now.checked_sub(self.keep_window)?;
            self.samples
                .iter()
                .rev()
                .find(|(at, _)| *at <= cutoff)
                .map(|(_, rev)| *rev)?
        };
        let target = by_count.min(by_time);
        (target > 0).then_some(target)
    }
}

/// Handle on the background compactor thread; stopping it drops its writer sender.
pub(crate) struct Compactor {
    stop: Option<Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Compactor {
    pub(crate) fn spawn(
        interval: Duration,
        mut policy: Policy,
        shared: Arc<Shared>,
        writer: Sender<Msg>,
    ) -> std::io::Result<Self> {
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        policy.record(Instant::now(), shared.current.load(Ordering::Acquire));
        let handle = std::thread::Builder::new()
            .name("kubelite-storage-compactor".into())
            .spawn(move || loop {
                match stop_rx.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
                let now = Instant::now();
                let current = shared.current.load(Ordering::Acquire);
                policy.record(now, current);
                let Some(target) = policy.target(now, current) else {
                    continue;
                };
                if target <= shared.compacted.load(Ordering::Acquire) {
                    continue;
                }
                tracing::debug!(target, current, "requesting compaction");
                if writer
                    .send(Msg::Compact {
                        target,
                        reply: None,
                    })
                    .is_err()
                {
                    return;
                }
            })?;
        Ok(Compactor {
            stop: Some(stop_tx),
            handle: Some(handle),
        })
    }

    /// Stops the thread and waits for it.
    pub(crate) fn stop(&mut self) {
        self.stop.take();
        if let Some(handle) = self.handle.take() {
            if handle.join().is_err() {
                tracing::error!("compactor thread panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_keeps_the_larger_window() {
        let t0 = Instant::now();
        let mut p = Policy::new(100, Duration::from_secs(300));
        p.record(t0, 1000);
        // Younger than the window: nothing is old enough to compact.
        assert_eq!(p.target(t0 + Duration::from_secs(10), 5000), None);
        p.record(t0 + Duration::from_secs(60), 2000);
        p.record(t0 + Duration::from_secs(400), 9000);
        // 5 minutes ago (t=100s) the newest older sample is rev 2000 (t=60s): time keeps more.
        assert_eq!(p.target(t0 + Duration::from_secs(400), 9000), Some(2000));
        // With few writes the count window keeps more.
        assert_eq!(p.target(t0 + Duration::from_secs(400), 2050), Some(1950));
        // Old samples are pruned but the newest one beyond the window stays.
        p.record(t0 + Duration::from_secs(1000), 9500);
        assert_eq!(p.samples.front().map(|s| s.1), Some(9000));
    }

    #[test]
    fn zero_window_compacts_by_count_only() {
        let t0 = Instant::now();
        let p = Policy::new(10, Duration::ZERO);
        assert_eq!(p.target(t0, 50), Some(40));
        assert_eq!(p.target(t0, 5), None);
    }
}
