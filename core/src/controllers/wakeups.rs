//! Delayed looks at a key without duplicates: client-go's delaying queue keeps one pending
//! wake-up per key, while every sync of a Job or CronJob asks again for its next deadline (the
//! active deadline, the back-off, the next schedule). A key already due no later than asked is
//! not given another timer, so it is looked at once when the time comes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A pending wake-up this much later than asked still counts (the deadlines asked for are
/// computed from the wall clock at each sync, so the same one differs by a little).
const SLACK: Duration = Duration::from_millis(100);

#[derive(Default)]
pub struct Wakeups {
    pending: Mutex<HashMap<String, Instant>>,
}

impl Wakeups {
    /// The delay to requeue `key` with, or None when a wake-up at or before then is pending.
    pub fn schedule(&self, key: &str, after: Duration) -> Option<Duration> {
        let now = Instant::now();
        let at = now + after;
        let Ok(mut pending) = self.pending.lock() else {
            return Some(after);
        };
        match pending.get(key) {
            Some(t) if *t > now && *t <= at + SLACK => None,
            _ => {
                pending.insert(key.to_string(), at);
                Some(after)
            }
        }
    }

    /// Drops the record of a key whose object is gone.
    pub fn forget(&self, key: &str) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_timer_per_deadline() {
        let w = Wakeups::default();
        let s = Duration::from_secs;
        assert_eq!(w.schedule("a", s(10)), Some(s(10)));
        // Already due earlier: no new timer.
        assert_eq!(w.schedule("a", s(20)), None);
        // Nearly the same deadline: covered.
        assert_eq!(w.schedule("a", s(10) - Duration::from_millis(30)), None);
        // Earlier than pending: a new one.
        assert_eq!(w.schedule("a", s(5)), Some(s(5)));
        assert_eq!(w.schedule("b", s(20)), Some(s(20)));
        w.forget("a");
        assert_eq!(w.schedule("a", s(20)), Some(s(20)));
        // Past wake-ups do not count.
        assert_eq!(w.schedule("c", Duration::ZERO), Some(Duration::ZERO));
        assert_eq!(w.schedule("c", s(1)), Some(s(1)));
    }
}
