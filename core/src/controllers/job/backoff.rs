//! The delay before a Job replaces failed pods (upstream's backoff_utils.go): per Job, the
//! number of failures since the last success and when the last one happened; the delay is the
//! base (10 s) doubled per further failure, capped (10 min), counted from that last failure.
//! Kept in memory, as upstream does.

use super::super::pods::parse_time;
use jiff::Timestamp;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Kubernetes' `DefaultJobPodFailureBackOff`.
pub const DEFAULT_BASE: Duration = Duration::from_secs(10);
/// Kubernetes' `MaxJobPodFailureBackOff`.
pub const DEFAULT_MAX: Duration = Duration::from_secs(600);

/// Failures since the last success of one Job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackoffRecord {
    pub failures_after_last_success: i32,
    pub last_failure: Option<Timestamp>,
}

/// The records of every Job, by key.
#[derive(Default)]
pub struct BackoffStore {
    records: Mutex<HashMap<String, BackoffRecord>>,
}

impl BackoffStore {
    /// The record after these newly finished pods (upstream's `newBackoffRecord`); it is saved
    /// with [`BackoffStore::update`] once the Job status recording them is written.
    pub fn new_record(
        &self,
        key: &str,
        succeeded: &[Arc<Value>],
        failed: &[Arc<Value>],
    ) -> BackoffRecord {
        let old = self
            .records
            .lock()
            .ok()
            .and_then(|r| r.get(key).cloned())
            .unwrap_or_default();
        next_record(old, succeeded, failed)
    }

    pub fn update(&self, key: &str, record: BackoffRecord) {
        if let Ok(mut r) = self.records.lock() {
            r.insert(key.to_string(), record);
        }
    }

    pub fn remove(&self, key: &str) {
        if let Ok(mut r) = self.records.lock() {
            r.remove(key);
        }
    }
}

fn next_record(
    mut rec: BackoffRecord,
    succeeded: &[Arc<Value>],
    failed: &[Arc<Value>],
) -> BackoffRecord {
    let mut failed_times: Vec<Timestamp> = failed.iter().map(|p| finished_time(p)).collect();
    failed_times.sort();
    let last_success = succeeded.iter().map(|p| finished_time(p)).max();
    match last_success {
        None => {
            if let Some(last) = failed_times.last() {
                rec.failures_after_last_success += i32::try_from(failed_times.len()).unwrap_or(0);
                rec.last_failure = Some(*last);
            }
        }
        Some(success) => {
            rec.failures_after_last_success = 0;
            rec.last_failure = None;
            for t in failed_times.iter().rev() {
                if *t <= success {
                    break;
                }
                if rec.last_failure.is_none() {
                    rec.last_failure = Some(*t);
                }
                rec.failures_after_last_success += 1;
            }
        }
    }
    rec
}

/// When a pod finished (upstream's `getFinishedTime`): its containers' latest `finishedAt`
/// when all have one, else its `Ready=False` transition, else its deletion time minus the
/// grace period, else its creation.
pub fn finished_time(pod: &Value) -> Timestamp {
    let ts = |v: Option<&Value>| v.and_then(Value::as_str).and_then(|s| s.parse().ok());
    if let Some(t) = containers_finished(pod) {
        return t;
    }
    let ready_false = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        })
        .filter(|c| c.get("status").and_then(Value::as_str) == Some("False"))
        .and_then(|c| ts(c.get("lastTransitionTime")));
    if let Some(t) = ready_false {
        return t;
    }
    if let Some(t) = ts(pod.pointer("/metadata/deletionTimestamp")) {
        let grace = pod
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        return t
            .checked_sub(jiff::SignedDuration::from_secs(grace))
            .unwrap_or(t);
    }
    pod.pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(parse_time)
        .and_then(|s| Timestamp::from_second(s).ok())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

fn containers_finished(pod: &Value) -> Option<Timestamp> {
    let statuses = pod.pointer("/status/containerStatuses")?.as_array()?;
    let mut latest: Option<Timestamp> = None;
    for cs in statuses {
        let t: Timestamp = cs
            .pointer("/state/terminated/finishedAt")?
            .as_str()?
            .parse()
            .ok()?;
        latest = Some(latest.map_or(t, |l| l.max(t)));
    }
    latest
}

/// How long to wait before creating replacement pods (upstream's
/// `getRemainingTimeForFailuresCount`): zero when the back-off has passed.
pub fn remaining(rec: &BackoffRecord, now: Timestamp, base: Duration, max: Duration) -> Duration {
    let Some(last) = rec.last_failure else {
        return Duration::ZERO;
    };
    if rec.failures_after_last_success <= 0 {
        return Duration::ZERO;
    }
    let mut backoff = base;
    for _ in 1..rec.failures_after_last_success {
        backoff = backoff.saturating_mul(2);
        if backoff >= max {
            backoff = max;
            break;
        }
    }
    let elapsed = Duration::try_from(now.duration_since(last)).unwrap_or(Duration::ZERO);
    backoff.saturating_sub(elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(finished: &str) -> Arc<Value> {
        Arc::new(
            json!({"metadata": {"creationTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"phase": "Failed", "containerStatuses": [
                {"name": "c", "state": {"terminated": {"exitCode": 1, "finishedAt": finished}}}]}}),
        )
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("ts")
    }

    #[test]
    fn finish_times() {
        assert_eq!(
            finished_time(&pod("2024-01-01T00:01:00Z")),
            ts("2024-01-01T00:01:00Z")
        );
        let ready_false = json!({"metadata": {"creationTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": "2024-01-01T00:02:00Z"}]}});
        assert_eq!(finished_time(&ready_false), ts("2024-01-01T00:02:00Z"));
        let deleted = json!({"metadata": {"creationTimestamp": "2024-01-01T00:00:00Z",
            "deletionTimestamp": "2024-01-01T00:03:30Z", "deletionGracePeriodSeconds": 30}});
        assert_eq!(finished_time(&deleted), ts("2024-01-01T00:03:00Z"));
        let fresh = json!({"metadata": {"creationTimestamp": "2024-01-01T00:00:00Z"}});
        assert_eq!(finished_time(&fresh), ts("2024-01-01T00:00:00Z"));
    }

    #[test]
    fn records_and_delays() {
        let store = BackoffStore::default();
        let r = store.new_record("ns/j", &[], &[pod("2024-01-01T00:01:00Z")]);
        assert_eq!(r.failures_after_last_success, 1);
        store.update("ns/j", r.clone());
        let base = Duration::from_secs(10);
        let max = Duration::from_secs(600);
        assert_eq!(
            remaining(&r, ts("2024-01-01T00:01:04Z"), base, max),
            Duration::from_secs(6)
        );
        assert_eq!(
            remaining(&r, ts("2024-01-01T00:01:30Z"), base, max),
            Duration::ZERO
        );
        let r = store.new_record(
            "ns/j",
            &[],
            &[pod("2024-01-01T00:02:00Z"), pod("2024-01-01T00:02:10Z")],
        );
        assert_eq!(r.failures_after_last_success, 3);
        assert_eq!(r.last_failure, Some(ts("2024-01-01T00:02:10Z")));
        // 10 s doubled twice.
        assert_eq!(
            remaining(&r, ts("2024-01-01T00:02:10Z"), base, max),
            Duration::from_secs(40)
        );
        let many = BackoffRecord {
            failures_after_last_success: 30,
            last_failure: Some(ts("2024-01-01T00:00:00Z")),
        };
        assert_eq!(remaining(&many, ts("2024-01-01T00:00:00Z"), base, max), max);
        // A success resets the count to the failures after it.
        let ok = Arc::new(
            json!({"status": {"phase": "Succeeded", "containerStatuses": [
            {"name": "c", "state": {"terminated": {"exitCode": 0, "finishedAt": "2024-01-01T00:03:00Z"}}}]}}),
        );
        let r = store.new_record(
            "ns/j",
            &[ok],
            &[pod("2024-01-01T00:02:30Z"), pod("2024-01-01T00:03:05Z")],
        );
        assert_eq!(r.failures_after_last_success, 1);
        assert_eq!(r.last_failure, Some(ts("2024-01-01T00:03:05Z")));
        store.remove("ns/j");
        assert_eq!(store.new_record("ns/j", &[], &[]), BackoffRecord::default());
    }
}
