//! The TTL-after-finished controller (kube-controller-manager's `ttlafterfinished`): a finished
//! Job (`Complete` or `Failed`) with `spec.ttlSecondsAfterFinished` is deleted, with its pods
//! (foreground cascading deletion), once that many seconds have passed since the finishing
//! condition's transition. The TTL is checked again against a fresh read before deleting, so an
//! extended TTL is honoured.

use super::informer::{key_of, split_key, Informer};
use super::queue::WorkQueue;
use super::wakeups::Wakeups;
use super::{run_workers, Context, Requeue};
use crate::resources::Resource;
use crate::server::client::{resource, Change, LocalClient};
use crate::server::status::ApiError;
use crate::server::write::DeleteOptions;
use jiff::Timestamp;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

const MANAGER: &str = "ttl-after-finished-controller";

/// Registers the controller's handler and worker.
pub fn register(ctx: &Context) {
    let (Ok(jobs), Ok(jobs_res)) = (
        ctx.informer("batch", "v1", "jobs"),
        resource("batch", "v1", "jobs"),
    ) else {
        return;
    };
    let queue = WorkQueue::new();
    let q = queue.clone();
    jobs.on_change(move |change, job, _| {
        if change != Change::Deleted && job_needs_cleanup(job) && !deleting(job) {
            q.add(key_of(job));
        }
    });
    let c = Arc::new(Controller {
        client: ctx.client(MANAGER),
        jobs,
        jobs_res,
        wakeups: Wakeups::default(),
    });
    run_workers("ttl-after-finished", queue, 1, move |key| {
        let c = c.clone();
        async move { c.sync(&key).await }
    });
}

struct Controller {
    client: LocalClient,
    jobs: Arc<Informer>,
    jobs_res: &'static Resource,
    wakeups: Wakeups,
}

impl Controller {
    async fn sync(&self, key: &str) -> Result<Requeue, ApiError> {
        let requeue = self.check(key).await?;
        Ok(match requeue {
            Some(d) => self.wakeups.schedule(key, d),
            None => {
                self.wakeups.forget(key);
                None
            }
        })
    }

    async fn check(&self, key: &str) -> Result<Requeue, ApiError> {
        let (ns, name) = split_key(key);
        let Some(job) = self.jobs.get(ns, name) else {
            return Ok(None);
        };
        match time_left(&job, Timestamp::now()) {
            None => return Ok(None),
            Some(left) if !left.is_zero() => return Ok(Some(left)),
            Some(_) => {}
        }
        // The cached TTL may be stale: decide on the stored Job.
        let Some(fresh) = self.client.get(self.jobs_res, ns, name).await? else {
            return Ok(None);
        };
        match time_left(&fresh, Timestamp::now()) {
            None => return Ok(None),
            Some(left) if !left.is_zero() => return Ok(Some(left)),
            Some(_) => {}
        }
        let uid = fresh
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .map(str::to_string);
        let opts = DeleteOptions {
            propagation_policy: Some("Foreground".into()),
            precondition_uid: uid,
            ..Default::default()
        };
        tracing::debug!(job = key, "cleaning up finished job");
        match self
            .client
            .delete_with(self.jobs_res, ns, name, &opts)
            .await
        {
            Ok(()) => Ok(None),
            Err(e) if e.code == 404 || e.code == 409 => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn deleting(job: &Value) -> bool {
    job.pointer("/metadata/deletionTimestamp")
        .is_some_and(|d| !d.is_null())
}

/// A TTL is set and the Job is finished.
fn job_needs_cleanup(job: &Value) -> bool {
    job.pointer("/spec/ttlSecondsAfterFinished")
        .and_then(Value::as_i64)
        .is_some()
        && finish_time(job).is_some()
}

/// When the Job finished: the transition of its True `Complete` or `Failed` condition.
fn finish_time(job: &Value) -> Option<Timestamp> {
    job.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| {
            matches!(
                c.get("type").and_then(Value::as_str),
                Some("Complete" | "Failed")
            ) && c.get("status").and_then(Value::as_str) == Some("True")
        })?
        .get("lastTransitionTime")?
        .as_str()?
        .parse()
        .ok()
}

/// How long until the Job expires (zero once it has); None if it never does (no TTL, not
/// finished, or already being deleted).
fn time_left(job: &Value, now: Timestamp) -> Option<Duration> {
    if deleting(job) || !job_needs_cleanup(job) {
        return None;
    }
    let ttl = job
        .pointer("/spec/ttlSecondsAfterFinished")
        .and_then(Value::as_i64)?;
    let expire = finish_time(job)?
        .checked_add(jiff::SignedDuration::from_secs(ttl))
        .ok()?;
    Some(Duration::try_from(expire.duration_since(now)).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expiry() {
        let now: Timestamp = "2024-01-01T00:01:00Z".parse().expect("ts");
        let mut job = json!({"metadata": {"name": "j"}, "spec": {"ttlSecondsAfterFinished": 100},
            "status": {"conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"},
                {"type": "Complete", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}});
        assert_eq!(time_left(&job, now), Some(Duration::from_secs(40)));
        job["spec"]["ttlSecondsAfterFinished"] = json!(0);
        assert_eq!(time_left(&job, now), Some(Duration::ZERO));
        job["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:01:00Z");
        assert_eq!(time_left(&job, now), None);
        let running = json!({"metadata": {"name": "j"}, "spec": {"ttlSecondsAfterFinished": 0},
            "status": {"conditions": [{"type": "FailureTarget", "status": "True",
                "lastTransitionTime": "2024-01-01T00:00:00Z"}]}});
        assert_eq!(time_left(&running, now), None);
        let no_ttl = json!({"metadata": {"name": "j"}, "spec": {},
            "status": {"conditions": [{"type": "Failed", "status": "True",
                "lastTransitionTime": "2024-01-01T00:00:00Z"}]}});
        assert!(!job_needs_cleanup(&no_ttl));
    }
}
