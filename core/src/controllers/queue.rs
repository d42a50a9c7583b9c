//! The work queue of a controller (client-go's rate-limited work queue): keys, not events. A key
//! added several times before a worker takes it is processed once; a key added while it is being
//! processed is processed again afterwards (never by two workers at once); failures come back
//! with a per-key exponential back-off; `add_after` schedules a later look (e.g. minReadySeconds).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

#[derive(Default)]
struct State {
    queue: VecDeque<String>,
    /// Keys waiting to be processed (in `queue`, or re-added while processing).
    dirty: HashSet<String>,
    processing: HashSet<String>,
    failures: HashMap<String, u32>,
}

/// A deduplicating queue of object keys.
#[derive(Clone, Default)]
pub struct WorkQueue {
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
}

impl WorkQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a key (no-op if it is already waiting).
    pub fn add(&self, key: impl Into<String>) {
        let key = key.into();
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        if !st.dirty.insert(key.clone()) {
            return;
        }
        if !st.processing.contains(&key) {
            st.queue.push_back(key);
            drop(st);
            self.notify.notify_one();
        }
    }

    /// Queues a key after a delay.
    pub fn add_after(&self, key: impl Into<String>, delay: Duration) {
        let key = key.into();
        if delay.is_zero() {
            self.add(key);
            return;
        }
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(key);
        });
    }

    /// Queues a key again after its failure back-off (5 ms doubling to 5 min).
    pub fn add_rate_limited(&self, key: impl Into<String>) {
        let key = key.into();
        let n = match self.state.lock() {
            Ok(mut st) => {
                let n = st.failures.entry(key.clone()).or_insert(0);
                *n = n.saturating_add(1);
                *n
            }
            Err(_) => return,
        };
        let delay = BACKOFF_MIN
            .saturating_mul(
                1u32.checked_shl(n.saturating_sub(1).min(20))
                    .unwrap_or(u32::MAX),
            )
            .min(BACKOFF_MAX);
        self.add_after(key, delay);
    }

    /// Clears the failure count of a key (after a success).
    pub fn forget(&self, key: &str) {
        if let Ok(mut st) = self.state.lock() {
            st.failures.remove(key);
        }
    }

    /// Takes the next key; the caller must call [`WorkQueue::done`] with it.
    pub async fn next(&self) -> String {
        loop {
            let notified = self.notify.notified();
            if let Ok(mut st) = self.state.lock() {
                if let Some(key) = st.queue.pop_front() {
                    st.dirty.remove(&key);
                    st.processing.insert(key.clone());
                    return key;
                }
            }
            notified.await;
        }
    }

    /// Marks a key processed; if it was added meanwhile it goes back in the queue.
    pub fn done(&self, key: &str) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        st.processing.remove(key);
        if st.dirty.contains(key) {
            st.queue.push_back(key.to_string());
            drop(st);
            self.notify.notify_one();
        }
    }

    /// Keys waiting (for tests and metrics).
    pub fn len(&self) -> usize {
        self.state.lock().map(|s| s.queue.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dedups_and_requeues_while_processing() {
        let q = WorkQueue::new();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        let k = q.next().await;
        assert_eq!(k, "a");
        q.add("a"); // while processing: not handed out twice
        assert_eq!(q.next().await, "b");
        assert!(q.is_empty());
        q.done("a");
        assert_eq!(q.next().await, "a");
        q.done("a");
        q.done("b");
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn delayed_and_rate_limited() {
        let q = WorkQueue::new();
        q.add_after("x", Duration::from_millis(20));
        assert!(q.is_empty());
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), q.next())
                .await
                .ok(),
            Some("x".to_string())
        );
        q.done("x");
        q.add_rate_limited("y");
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), q.next())
                .await
                .ok(),
            Some("y".to_string())
        );
    }
}
