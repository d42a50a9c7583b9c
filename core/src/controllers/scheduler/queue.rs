//! The scheduling queue (kube-scheduler's PriorityQueue): pods waiting to be scheduled, taken
//! highest priority first, then oldest. A pod that could not be scheduled waits in the
//! unschedulable set until a cluster event that may help it (a node added or changed, a pod
//! deleted, …) moves it back, or at the latest after [`UNSCHEDULABLE_MAX`]; a pod that failed
//! waits out its back-off (1 s doubling to 10 s) before it is tried again.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// The longest a pod stays unschedulable without a retry.
pub const UNSCHEDULABLE_MAX: Duration = Duration::from_secs(60);

/// The order of the active queue: priority (highest first), creation time, arrival.
type SortKey = (Reverse<i64>, String, u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Active,
    Backoff,
    Unschedulable,
    InFlight,
}

#[derive(Debug)]
struct Entry {
    place: Place,
    sort: SortKey,
    attempts: u32,
    /// When the last attempt failed.
    failed_at: Option<Instant>,
    unschedulable_since: Option<Instant>,
    /// Plugins that rejected the pod in its last attempt (empty: any event may help).
    plugins: HashSet<&'static str>,
    /// An event that may help arrived while the pod was being scheduled.
    moved_in_flight: bool,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    active: BTreeSet<(SortKey, String)>,
    /// Keys waiting as unschedulable or being scheduled (what cluster events look at).
    waiting: HashSet<String>,
    seq: u64,
}

/// A cluster event, described by the plugins whose rejections it may lift.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    /// None: every pod may now fit (e.g. a node was added).
    pub plugins: Option<&'static [&'static str]>,
}

/// The queue of pods (by `namespace/name` key).
#[derive(Default)]
pub struct SchedulingQueue {
    state: Mutex<State>,
    /// Wakes the scheduling loop (something may be active).
    notify: Notify,
    /// Wakes the flusher (deadlines may have changed).
    replan: Notify,
}

fn backoff(attempts: u32) -> Duration {
    let mut d = BACKOFF_INITIAL;
    for _ in 1..attempts {
        d *= 2;
        if d >= BACKOFF_MAX {
            return BACKOFF_MAX;
        }
    }
    d
}

impl State {
    /// Moves an entry to `place`, keeping the active set and the waiting set in step.
    fn set_place(&mut self, key: &str, place: Place, now: Instant) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        if e.place == Place::Active && place != Place::Active {
            self.active.remove(&(e.sort.clone(), key.to_string()));
        }
        if place == Place::Active && e.place != Place::Active {
            self.active.insert((e.sort.clone(), key.to_string()));
        }
        e.unschedulable_since = (place == Place::Unschedulable).then_some(now);
        if place == Place::InFlight {
            e.moved_in_flight = false;
        }
        e.place = place;
        if matches!(place, Place::Unschedulable | Place::InFlight) {
            self.waiting.insert(key.to_string());
        } else {
            self.waiting.remove(key);
        }
    }

    fn backoff_over(e: &Entry, now: Instant) -> bool {
        e.failed_at.is_none_or(|t| t + backoff(e.attempts) <= now)
    }

    /// Moves a waiting pod on: to the active queue, or to back-off if it is still due.
    fn requeue(&mut self, key: &str, now: Instant) {
        let Some(e) = self.entries.get(key) else {
            return;
        };
        let place = if Self::backoff_over(e, now) {
            Place::Active
        } else {
            Place::Backoff
        };
        self.set_place(key, place, now);
    }

    /// Counts a failed attempt.
    fn failed(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        let e = self.entries.get_mut(key)?;
        e.attempts = e.attempts.saturating_add(1);
        e.failed_at = Some(now);
        Some(e)
    }
}

impl SchedulingQueue {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A pod to schedule appeared or changed. A new pod goes to the active queue; an
    /// unschedulable one is given another chance.
    pub fn add(&self, key: &str, priority: i64, created: &str) {
        let mut st = self.state();
        let now = Instant::now();
        let place = st.entries.get(key).map(|e| e.place);
        match place {
            None => {
                st.seq += 1;
                let sort = (Reverse(priority), created.to_string(), st.seq);
                st.entries.insert(
                    key.to_string(),
                    Entry {
                        place: Place::Backoff,
                        sort,
                        attempts: 0,
                        failed_at: None,
                        unschedulable_since: None,
                        plugins: HashSet::new(),
                        moved_in_flight: false,
                    },
                );
                st.set_place(key, Place::Active, now);
            }
            Some(Place::Unschedulable) => st.requeue(key, now),
            Some(Place::InFlight) => {
                if let Some(e) = st.entries.get_mut(key) {
                    e.moved_in_flight = true;
                }
            }
            Some(Place::Active | Place::Backoff) => {}
        }
        drop(st);
        self.wake();
    }

    /// The pod is gone, bound, or no longer ours.
    pub fn remove(&self, key: &str) {
        let mut st = self.state();
        if let Some(e) = st.entries.remove(key) {
            st.active.remove(&(e.sort, key.to_string()));
            st.waiting.remove(key);
        }
    }

    /// Takes the next pod to schedule (it stays known, "in flight", until `done`,
    /// `unschedulable` or `retry`).
    pub async fn pop(&self) -> String {
        loop {
            let notified = self.notify.notified();
            if let Some(k) = self.try_pop() {
                return k;
            }
            notified.await;
        }
    }

    fn try_pop(&self) -> Option<String> {
        let mut st = self.state();
        let (_, key) = st.active.first()?.clone();
        st.set_place(&key, Place::InFlight, Instant::now());
        Some(key)
    }

    /// The pod was bound (or dropped): forget it.
    pub fn done(&self, key: &str) {
        self.remove(key);
    }

    /// The pod did not fit: it waits for an event that may help (or, if one came while it was
    /// in flight, for its back-off). `plugins` are those that rejected it.
    pub fn unschedulable(&self, key: &str, plugins: HashSet<&'static str>) {
        let mut st = self.state();
        let now = Instant::now();
        let Some(e) = st.failed(key, now) else {
            return;
        };
        e.plugins = plugins;
        let place = if e.moved_in_flight {
            Place::Backoff
        } else {
            Place::Unschedulable
        };
        st.set_place(key, place, now);
        drop(st);
        self.wake();
    }

    /// The attempt failed for another reason (an API error): retry after the back-off.
    pub fn retry(&self, key: &str) {
        let mut st = self.state();
        let now = Instant::now();
        if st.failed(key, now).is_some() {
            st.set_place(key, Place::Backoff, now);
        }
        drop(st);
        self.wake();
    }

    /// A cluster event: unschedulable pods it may help are tried again (after their back-off).
    pub fn on_event(&self, ev: Event) {
        let mut st = self.state();
        if st.waiting.is_empty() {
            return;
        }
        let now = Instant::now();
        let helps = |e: &Entry| {
            ev.plugins
                .is_none_or(|ps| e.plugins.is_empty() || ps.iter().any(|p| e.plugins.contains(p)))
        };
        let mut moved = Vec::new();
        let State {
            entries, waiting, ..
        } = &mut *st;
        for k in waiting.iter() {
            let Some(e) = entries.get_mut(k) else {
                continue;
            };
            match e.place {
                Place::Unschedulable if helps(e) => moved.push(k.clone()),
                Place::InFlight => e.moved_in_flight = true,
                _ => {}
            }
        }
        let any = !moved.is_empty();
        for k in moved {
            st.requeue(&k, now);
        }
        drop(st);
        if any {
            self.wake();
        }
    }

    /// Moves pods whose back-off is over to the active queue, and pods unschedulable for longer
    /// than [`UNSCHEDULABLE_MAX`] back; returns when it next has something to do.
    pub fn flush(&self) -> Option<Instant> {
        let mut st = self.state();
        let now = Instant::now();
        let mut due = Vec::new();
        for (k, e) in &st.entries {
            let ready = match e.place {
                Place::Backoff => State::backoff_over(e, now),
                Place::Unschedulable => e
                    .unschedulable_since
                    .is_none_or(|t| t + UNSCHEDULABLE_MAX <= now),
                _ => false,
            };
            if ready {
                due.push(k.clone());
            }
        }
        let any = !due.is_empty();
        for k in due {
            st.requeue(&k, now);
        }
        let next = st
            .entries
            .values()
            .filter_map(|e| match e.place {
                Place::Backoff => e.failed_at.map(|t| t + backoff(e.attempts)),
                Place::Unschedulable => e.unschedulable_since.map(|t| t + UNSCHEDULABLE_MAX),
                _ => None,
            })
            .min();
        drop(st);
        if any {
            self.notify.notify_one();
        }
        next
    }

    fn wake(&self) {
        self.notify.notify_one();
        self.replan.notify_one();
    }

    /// Resolves when the queue changed in a way that may move the flusher's next deadline.
    pub fn replanned(&self) -> tokio::sync::futures::Notified<'_> {
        self.replan.notified()
    }

    /// Keys in the active queue.
    #[cfg(test)]
    pub fn active_len(&self) -> usize {
        self.state().active.len()
    }

    /// Whether the pod is waiting as unschedulable.
    #[cfg(test)]
    pub fn is_unschedulable(&self, key: &str) -> bool {
        self.state()
            .entries
            .get(key)
            .is_some_and(|e| e.place == Place::Unschedulable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(5), Duration::from_secs(10));
        assert_eq!(backoff(50), Duration::from_secs(10));
    }

    #[tokio::test]
    async fn priority_then_age() {
        let q = SchedulingQueue::new();
        q.add("d/late", 0, "2026-01-01T00:00:02Z");
        q.add("d/early", 0, "2026-01-01T00:00:01Z");
        q.add("d/vip", 1000, "2026-01-01T00:00:09Z");
        q.add("d/early", 0, "2026-01-01T00:00:01Z");
        assert_eq!(q.active_len(), 3);
        assert_eq!(q.pop().await, "d/vip");
        assert_eq!(q.pop().await, "d/early");
        assert_eq!(q.pop().await, "d/late");
    }

    #[tokio::test]
    async fn unschedulable_pods_wait_for_a_helpful_event() {
        let q = SchedulingQueue::new();
        q.add("d/p", 0, "t");
        assert_eq!(q.pop().await, "d/p");
        q.unschedulable("d/p", ["NodeResourcesFit"].into());
        assert!(q.is_unschedulable("d/p"));
        // A pod being added elsewhere does not free resources.
        q.on_event(Event {
            plugins: Some(&["InterPodAffinity"]),
        });
        assert!(q.is_unschedulable("d/p"));
        // A deleted pod may; the pod then waits out its 1 s back-off.
        q.on_event(Event {
            plugins: Some(&["NodeResourcesFit", "NodePorts"]),
        });
        assert!(!q.is_unschedulable("d/p"));
        assert_eq!(q.active_len(), 0);
        let next = q.flush().expect("a back-off deadline");
        assert!(next > Instant::now());
        let got = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Some(t) = q.flush() {
                    tokio::time::sleep_until(t.into()).await;
                }
                if q.active_len() > 0 {
                    return q.pop().await;
                }
            }
        })
        .await;
        assert_eq!(got.ok().as_deref(), Some("d/p"));
    }

    #[tokio::test]
    async fn an_event_during_the_attempt_means_back_off_not_unschedulable() {
        let q = SchedulingQueue::new();
        q.add("d/p", 0, "t");
        assert_eq!(q.pop().await, "d/p");
        q.on_event(Event { plugins: None });
        q.unschedulable("d/p", HashSet::new());
        assert!(!q.is_unschedulable("d/p"));
        q.remove("d/p");
        assert!(q.flush().is_none());
    }
}
