//! Watch fan-out: the [`Hub`] the writer thread publishes committed events to, and the
//! [`Watcher`] stream a caller reads (replayed history first, then live events).
//!
//! Each subscriber has a bounded channel. Publishing never blocks: when a subscriber's
//! channel is full, the hub drops it (closes its channel), so the watcher yields what it has
//! buffered and then ends; its owner re-watches from the last revision it saw.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::mpsc;

use crate::{Event, Revision};

struct Subscriber {
    id: u64,
    prefix: String,
    tx: mpsc::Sender<Event>,
}

#[derive(Default)]
struct HubState {
    next_id: u64,
    subs: Vec<Subscriber>,
    closed: bool,
}

/// The live-event fan-out. Shared by the writer thread (publisher) and the watchers.
#[derive(Default)]
pub(crate) struct Hub {
    state: Mutex<HubState>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().expect("watch hub mutex poisoned")
    }

    /// Registers a subscriber for keys under `prefix`. Returns None once the hub is closed.
    pub(crate) fn subscribe(
        &self,
        prefix: &str,
        capacity: usize,
    ) -> Option<(u64, mpsc::Receiver<Event>)> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let mut state = self.lock();
        if state.closed {
            return None;
        }
        state.next_id += 1;
        let id = state.next_id;
        state.subs.push(Subscriber {
            id,
            prefix: prefix.to_owned(),
            tx,
        });
        Some((id, rx))
    }

    fn unsubscribe(&self, id: u64) {
        self.lock().subs.retain(|s| s.id != id);
    }

    /// Delivers `events` (in revision order) to every matching subscriber, dropping those
    /// whose channel is full or closed. Never blocks on a subscriber.
    pub(crate) fn publish(&self, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        let mut state = self.lock();
        for event in events {
            state.subs.retain(|sub| {
                if !event.kv.key.starts_with(sub.prefix.as_str()) {
                    return true;
                }
                match sub.tx.try_send(event.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::warn!(
                            watcher = sub.id,
                            prefix = %sub.prefix,
                            revision = event.kv.mod_revision,
                            "watcher fell behind; dropping it"
                        );
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            });
        }
    }

    /// Ends every watcher (after it has drained what it buffered) and refuses new ones.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.subs.clear();
    }

    #[cfg(test)]
    pub(crate) fn subscriber_count(&self) -> usize {
        self.lock().subs.len()
    }
}

/// The result of [`Watcher::try_next`].
#[derive(Debug)]
pub enum TryNext {
    /// The next event.
    Event(Event),
    /// Nothing buffered right now: the watcher has delivered every event published so far
    /// (so, with [`crate::Backend::current_revision`] read *before* this call, a bookmark at
    /// that revision is safe).
    Empty,
    /// The stream has ended (the watcher fell behind or the store closed).
    Closed,
}

/// A stream of [`Event`]s under a prefix with revision > the `from` it was opened at, in
/// revision order, without gaps or duplicates: the replayed history, then live events.
/// Dropping it unsubscribes.
pub struct Watcher {
    history: VecDeque<Event>,
    live: mpsc::Receiver<Event>,
    /// Revision of the last event handed out (or `from`): live events at or below it were
    /// already covered by the history replay and are skipped.
    last: Revision,
    hub: Weak<Hub>,
    id: u64,
}

impl Watcher {
    pub(crate) fn new(
        history: VecDeque<Event>,
        live: mpsc::Receiver<Event>,
        from: Revision,
        hub: &Arc<Hub>,
        id: u64,
    ) -> Self {
        Watcher {
            history,
            live,
            last: from,
            hub: Arc::downgrade(hub),
            id,
        }
    }

    pub(crate) fn set_history(&mut self, history: VecDeque<Event>) {
        self.history = history;
    }

    /// The next event; None when the stream has ended (fell behind, or the store closed).
    pub async fn next(&mut self) -> Option<Event> {
        if let Some(event) = self.history.pop_front() {
            self.last = event.kv.mod_revision;
            return Some(event);
        }
        loop {
            let event = self.live.recv().await?;
            if event.kv.mod_revision > self.last {
                self.last = event.kv.mod_revision;
                return Some(event);
            }
        }
    }

    /// The next event if one is ready, without waiting.
    pub fn try_next(&mut self) -> TryNext {
        if let Some(event) = self.history.pop_front() {
            self.last = event.kv.mod_revision;
            return TryNext::Event(event);
        }
        loop {
            match self.live.try_recv() {
                Ok(event) if event.kv.mod_revision > self.last => {
                    self.last = event.kv.mod_revision;
                    return TryNext::Event(event);
                }
                Ok(_) => continue,
                Err(mpsc::error::TryRecvError::Empty) => return TryNext::Empty,
                Err(mpsc::error::TryRecvError::Disconnected) => return TryNext::Closed,
            }
        }
    }

    /// Revision of the last event returned (the `from` of the watch before the first one).
    pub fn last_revision(&self) -> Revision {
        self.last
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.unsubscribe(self.id);
        }
    }
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("id", &self.id)
            .field("last", &self.last)
            .field("buffered_history", &self.history.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventKind, KeyValue};

    fn event(key: &str, rev: Revision) -> Event {
        Event {
            kind: EventKind::Create,
            kv: KeyValue {
                key: key.into(),
                value: Default::default(),
                create_revision: rev,
                mod_revision: rev,
            },
            prev: None,
        }
    }

    #[test]
    fn full_subscriber_is_dropped_and_dropping_a_watcher_unsubscribes() {
        let hub = Arc::new(Hub::default());
        let (slow_id, slow_rx) = hub.subscribe("/a/", 2).unwrap();
        let mut slow = Watcher::new(VecDeque::new(), slow_rx, 0, &hub, slow_id);
        let (other_id, other_rx) = hub.subscribe("/b/", 2).unwrap();
        let other = Watcher::new(VecDeque::new(), other_rx, 0, &hub, other_id);
        assert_eq!(hub.subscriber_count(), 2);

        hub.publish(&[event("/a/1", 1), event("/a/2", 2), event("/a/3", 3)]);
        // The third event did not fit: the slow watcher keeps its two, then ends.
        assert_eq!(hub.subscriber_count(), 1);
        assert!(matches!(slow.try_next(), TryNext::Event(e) if e.kv.mod_revision == 1));
        assert!(matches!(slow.try_next(), TryNext::Event(e) if e.kv.mod_revision == 2));
        assert!(matches!(slow.try_next(), TryNext::Closed));

        drop(other);
        assert_eq!(hub.subscriber_count(), 0);
        hub.close();
        assert!(hub.subscribe("/", 1).is_none());
    }
}
