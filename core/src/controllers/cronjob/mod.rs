//! The CronJob controller (kube-controller-manager's cronjob controller v2): at each scheduled
//! time it creates a Job from the template named `<cronjob>-<minutes since the epoch>` (the name
//! is the lock that keeps a run from being created twice), honours `suspend`,
//! `startingDeadlineSeconds` and the concurrency policy (Allow, Forbid, Replace), keeps
//! `status.active`, `lastScheduleTime` and `lastSuccessfulTime`, deletes finished Jobs beyond the
//! history limits, and requeues each CronJob for its next scheduled time (no polling).
//!
//! Submodule [`schedule`] computes the times.

pub mod schedule;

use super::events::{Recorder, NORMAL, WARNING};
use super::informer::{key_of, split_key, Informer};
use super::pods::{controller_of, controller_ref, is_controlled_by, uid_of};
use super::queue::WorkQueue;
use super::wakeups::Wakeups;
use super::{run_workers, Context, Requeue};
use crate::server::client::{resource, Change, LocalClient};
use crate::server::status::ApiError;
use crate::server::write::DeleteOptions;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schedule::{Missed, Schedule, Times};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;

const MANAGER: &str = "cronjob-controller";
const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// Registers the CronJob controller's handlers and workers.
pub fn register(ctx: &Context) {
    let (Ok(cronjobs), Ok(jobs)) = (
        ctx.informer("batch", "v1", "cronjobs"),
        ctx.informer("batch", "v1", "jobs"),
    ) else {
        return;
    };
    let client = ctx.client(MANAGER);
    let queue = WorkQueue::new();
    let local = TimeZone::system();

    // A Job's change wakes the CronJob controlling it (and the previous one, if it moved).
    let q = queue.clone();
    let cjs = cronjobs.clone();
    jobs.on_change(move |_, job, old| {
        for obj in std::iter::once(job).chain(old) {
            if let Some(key) = owning_cronjob(&cjs, obj) {
                q.add(key);
            }
        }
    });
    // A changed schedule is looked at when its next run is due; anything else at once.
    let q = queue.clone();
    let tz = local.clone();
    cronjobs.on_change(move |change, cj, old| {
        let key = key_of(cj);
        let spec = |o: &Value| {
            (
                o.pointer("/spec/schedule").cloned(),
                o.pointer("/spec/timeZone").cloned(),
            )
        };
        match old {
            Some(old) if change == Change::Modified && spec(old) != spec(cj) => {
                let Ok(typed) = serde_json::from_value::<CronJob>(cj.clone()) else {
                    return;
                };
                match Schedule::parse(&format_schedule(&typed).0, &tz) {
                    Ok(sched) => {
                        let wait = schedule::next_schedule_time_duration(
                            &times_of(&typed),
                            Timestamp::now(),
                            &sched,
                        );
                        if let Some(wait) = wait {
                            q.add_after(key, wait);
                        }
                    }
                    // The sync records the UnparseableSchedule event.
                    Err(_) => q.add(key),
                }
            }
            _ => q.add(key),
        }
    });

    let controller = Arc::new(Controller {
        recorder: Recorder::new(client.clone(), MANAGER),
        client,
        cronjobs,
        jobs,
        local,
        wakeups: Wakeups::default(),
    });
    run_workers("cronjob", queue, 2, move |key| {
        let c = controller.clone();
        async move { c.sync(&key).await }
    });
}

/// The key of the CronJob that controls `job`, if it is in the cache with that uid.
fn owning_cronjob(cronjobs: &Informer, job: &Value) -> Option<String> {
    let r = controller_of(job)?;
    if r.get("kind").and_then(Value::as_str) != Some("CronJob") {
        return None;
    }
    let name = r.get("name").and_then(Value::as_str)?;
    let ns = job.pointer("/metadata/namespace").and_then(Value::as_str);
    let cj = cronjobs.get(ns, name)?;
    (Some(uid_of(&cj)) == r.get("uid").and_then(Value::as_str)).then(|| key_of(&cj))
}

/// The schedule the controller parses (upstream's `formatSchedule`): a valid `timeZone` becomes
/// a `TZ=` prefix; a schedule already carrying `TZ` is used as is (and warned about, `true`).
fn format_schedule(cj: &CronJob) -> (String, bool) {
    let spec = cj.spec.as_ref();
    let sched = spec.map(|s| s.schedule.clone()).unwrap_or_default();
    if sched.contains("TZ") {
        return (sched, true);
    }
    match spec.and_then(|s| s.time_zone.as_deref()) {
        Some(tz) if schedule::load_location(tz).is_ok() => (format!("TZ={tz} {sched}"), false),
        _ => (sched, false),
    }
}

fn times_of(cj: &CronJob) -> Times {
    Times {
        created: cj
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .unwrap_or_else(Timestamp::now),
        last_schedule: cj
            .status
            .as_ref()
            .and_then(|s| s.last_schedule_time.as_ref())
            .map(|t| t.0),
        starting_deadline_seconds: cj.spec.as_ref().and_then(|s| s.starting_deadline_seconds),
    }
}

/// The finished condition of a Job (`Complete` or `Failed` with status True), if any.
fn finished_condition(job: &Value) -> Option<&str> {
    job.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .filter(|c| c.get("status").and_then(Value::as_str) == Some("True"))
        .filter_map(|c| c.get("type").and_then(Value::as_str))
        .find(|t| *t == "Complete" || *t == "Failed")
}

fn active_refs(cj: &CronJob) -> &[ObjectReference] {
    cj.status
        .as_ref()
        .and_then(|s| s.active.as_deref())
        .unwrap_or(&[])
}

fn in_active_list(cj: &CronJob, uid: &str) -> bool {
    active_refs(cj)
        .iter()
        .any(|r| r.uid.as_deref() == Some(uid))
}

fn status_mut(cj: &mut CronJob) -> &mut CronJobStatus {
    cj.status.get_or_insert_with(Default::default)
}

fn delete_from_active_list(cj: &mut CronJob, uid: &str) {
    let st = status_mut(cj);
    let kept: Vec<ObjectReference> = st
        .active
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.uid.as_deref() != Some(uid))
        .collect();
    st.active = (!kept.is_empty()).then_some(kept);
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

fn parse_ts(v: &Value, p: &str) -> Option<Timestamp> {
    v.pointer(p)?.as_str()?.parse().ok()
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

/// A reference to a Job for `status.active` (client-go's `GetReference`).
fn job_ref(job: &Value) -> ObjectReference {
    let s = |p: &str| Some(str_at(job, p).to_string()).filter(|s| !s.is_empty());
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: s("/metadata/name"),
        namespace: s("/metadata/namespace"),
        uid: s("/metadata/uid"),
        resource_version: s("/metadata/resourceVersion"),
        ..Default::default()
    }
}

/// Go's `time.RFC1123Z` in UTC.
fn rfc1123z(t: Timestamp) -> String {
    jiff::fmt::strtime::format("%a, %d %b %Y %H:%M:%S +0000", t).unwrap_or_default()
}

struct Controller {
    client: LocalClient,
    recorder: Recorder,
    cronjobs: Arc<Informer>,
    jobs: Arc<Informer>,
    local: TimeZone,
    wakeups: Wakeups,
}

/// What a sync of the schedule decided.
struct Outcome {
    requeue: Requeue,
    update_status: bool,
    error: Option<ApiError>,
}

impl Controller {
    async fn sync(&self, key: &str) -> Result<Requeue, ApiError> {
        let (ns, name) = split_key(key);
        let Some(raw) = self.cronjobs.get(ns, name) else {
            self.wakeups.forget(key);
            return Ok(None);
        };
        let mut cj: CronJob = serde_json::from_value((*raw).clone()).map_err(internal)?;
        let uid = uid_of(&raw).to_string();
        let jobs: Vec<Arc<Value>> = self
            .jobs
            .list(ns)
            .into_iter()
            .filter(|j| {
                // By uid: a CronJob re-created under the same name does not own the old one's
                // Jobs (the garbage collector removes those).
                controller_of(j).is_some_and(|r| {
                    r.get("kind").and_then(Value::as_str) == Some("CronJob")
                        && r.get("uid").and_then(Value::as_str) == Some(uid.as_str())
                })
            })
            .collect();
        let cleaned = self.cleanup_finished_jobs(&raw, &mut cj, &jobs).await;
        let out = self.sync_cronjob(&raw, &mut cj, &uid, &jobs).await;
        if let Some(e) = &out.error {
            tracing::debug!(cronjob = key, error = %e, "cronjob sync");
        }
        if cleaned || out.update_status {
            let r = resource("batch", "v1", "cronjobs")?;
            let written = self
                .client
                .update_status(r, serde_json::to_value(&cj).map_err(internal)?)
                .await?;
            if let Some(rv) = written
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
            {
                self.cronjobs.caught_up(rv).await;
            }
        }
        match (out.requeue, out.error) {
            (Some(d), _) => Ok(self.wakeups.schedule(key, d)),
            (None, Some(e)) => Err(e),
            (None, None) => Ok(None),
        }
    }

    /// Upstream's `syncCronJob`.
    async fn sync_cronjob(
        &self,
        raw: &Value,
        cj: &mut CronJob,
        uid: &str,
        jobs: &[Arc<Value>],
    ) -> Outcome {
        let now = Timestamp::now();
        let mut update = false;
        let done = |update: bool, requeue: Requeue| Outcome {
            requeue,
            update_status: update,
            error: None,
        };
        let failed = |update: bool, e: ApiError| Outcome {
            requeue: None,
            update_status: update,
            error: Some(e),
        };
        let (ns, name) = (
            str_at(raw, "/metadata/namespace"),
            str_at(raw, "/metadata/name"),
        );
        let Ok(jobs_res) = resource("batch", "v1", "jobs") else {
            return done(false, None);
        };

        let mut children = HashSet::new();
        for j in jobs {
            let juid = uid_of(j);
            let jname = str_at(j, "/metadata/name");
            children.insert(juid.to_string());
            let found = in_active_list(cj, juid);
            let finished = finished_condition(j);
            if !found && finished.is_none() {
                // Maybe our own status update is not in the cache yet: look at the stored one.
                let fresh = match self.fresh_cronjob(ns, name).await {
                    Ok(f) => f,
                    Err(e) => return failed(update, e),
                };
                if let Some(fresh) = fresh.filter(|f| in_active_list(f, juid)) {
                    *cj = fresh;
                    continue;
                }
                let msg =
                    format!("Saw a job that the controller did not create or forgot: {jname}");
                self.recorder
                    .record(raw, WARNING, "UnexpectedJob", &msg)
                    .await;
            } else if let (true, Some(cond)) = (found, finished) {
                delete_from_active_list(cj, juid);
                let msg = format!("Saw completed job: {jname}, status: {cond}");
                self.recorder
                    .record(raw, NORMAL, "SawCompletedJob", &msg)
                    .await;
                update = true;
            } else if finished == Some("Complete") {
                // Counted whether or not it is still listed as active.
                if let Some(done_at) = parse_ts(j, "/status/completionTime") {
                    let st = status_mut(cj);
                    if st
                        .last_successful_time
                        .as_ref()
                        .is_none_or(|t| done_at > t.0)
                    {
                        st.last_successful_time = Some(Time(done_at));
                        update = true;
                    }
                }
            }
        }

        // Active Jobs that no longer exist are dropped (checked against the store, not the cache).
        for r in active_refs(cj).to_vec() {
            let ruid = r.uid.clone().unwrap_or_default();
            if children.contains(&ruid) {
                continue;
            }
            let jname = r.name.clone().unwrap_or_default();
            let rns = r.namespace.clone().unwrap_or_else(|| ns.to_string());
            match self.client.get(jobs_res, Some(&rns), &jname).await {
                Ok(None) => {
                    let msg = format!("Active job went missing: {jname}");
                    self.recorder.record(raw, NORMAL, "MissingJob", &msg).await;
                    delete_from_active_list(cj, &ruid);
                    update = true;
                }
                Ok(Some(_)) => {}
                Err(e) => return failed(update, e),
            }
        }

        if cj.metadata.deletion_timestamp.is_some() {
            return done(update, None);
        }
        let spec = cj.spec.clone().unwrap_or_default();
        if let Some(tz) = spec.time_zone.as_deref() {
            if let Err(e) = schedule::load_location(tz) {
                let msg = format!("invalid timeZone: {tz:?}: {e}");
                self.recorder
                    .record(raw, WARNING, "UnknownTimeZone", &msg)
                    .await;
                return done(update, None);
            }
        }
        if spec.suspend == Some(true) {
            return done(update, None);
        }
        let (formatted, tz_in_schedule) = format_schedule(cj);
        if tz_in_schedule {
            let msg = format!("CRON_TZ or TZ used in schedule {:?} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details", spec.schedule);
            self.recorder
                .record(raw, WARNING, "UnsupportedSchedule", &msg)
                .await;
        }
        let sched = match Schedule::parse(&formatted, &self.local) {
            Ok(s) => s,
            Err(e) => {
                let msg = format!("unparseable schedule: {:?} : {e}", spec.schedule);
                self.recorder
                    .record(raw, WARNING, "UnparseableSchedule", &msg)
                    .await;
                return done(update, None);
            }
        };
        let times = times_of(cj);
        let next = |cj: &CronJob| schedule::next_schedule_time_duration(&times_of(cj), now, &sched);
        let scheduled = match schedule::next_schedule_time(&times, now, &sched) {
            Ok((scheduled, missed)) => {
                if missed == Missed::Many {
                    self.recorder
                        .record(raw, WARNING, "TooManyMissedTimes", "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew")
                        .await;
                }
                scheduled
            }
            Err(e) => {
                let msg = format!("invalid schedule: {} : {e}", spec.schedule);
                self.recorder
                    .record(raw, WARNING, "InvalidSchedule", &msg)
                    .await;
                return done(update, None);
            }
        };
        let Some(scheduled) = scheduled else {
            return done(update, next(cj));
        };
        let too_late = spec.starting_deadline_seconds.is_some_and(|sds| {
            scheduled
                .checked_add(jiff::SignedDuration::from_secs(sds))
                .is_ok_and(|deadline| deadline < now)
        });
        if too_late {
            let msg = format!(
                "Missed scheduled time to start a job: {}",
                rfc1123z(scheduled)
            );
            self.recorder
                .record(raw, WARNING, "MissSchedule", &msg)
                .await;
            return done(update, next(cj));
        }
        let job_name = schedule::job_name(name, scheduled);
        let already = active_refs(cj)
            .iter()
            .any(|r| r.name.as_deref() == Some(job_name.as_str()))
            || times.last_schedule == Some(scheduled);
        if already {
            return done(update, next(cj));
        }
        let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
        if policy == "Forbid" && !active_refs(cj).is_empty() {
            self.recorder
                .record(raw, NORMAL, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid")
                .await;
            return done(update, next(cj));
        }
        if policy == "Replace" {
            for r in active_refs(cj).to_vec() {
                let rname = r.name.clone().unwrap_or_default();
                let rns = r.namespace.clone().unwrap_or_else(|| ns.to_string());
                let job = match self.client.get(jobs_res, Some(&rns), &rname).await {
                    Ok(Some(j)) => j,
                    Ok(None) => {
                        let e = ApiError::not_found(jobs_res, &rname);
                        let msg = format!("Get job: {}", e.message);
                        self.recorder.record(raw, WARNING, "FailedGet", &msg).await;
                        return failed(update, e);
                    }
                    Err(e) => {
                        let msg = format!("Get job: {}", e.message);
                        self.recorder.record(raw, WARNING, "FailedGet", &msg).await;
                        return failed(update, e);
                    }
                };
                if !self.delete_job(raw, cj, &job).await {
                    let e = ApiError::internal(format!("could not replace job {rns}/{rname}"));
                    return failed(update, e);
                }
                update = true;
            }
        }

        let tz = spec
            .time_zone
            .as_deref()
            .and_then(|t| schedule::load_location(t).ok())
            .unwrap_or(TimeZone::UTC);
        let request = job_from_template(raw, &job_name, &schedule::rfc3339_in(scheduled, &tz));
        let created = match self.client.create(jobs_res, Some(ns), request).await {
            Ok(job) => {
                let msg = format!("Created job {job_name}");
                self.recorder
                    .record(raw, NORMAL, "SuccessfulCreate", &msg)
                    .await;
                job
            }
            Err(e) if e.code == 409 && e.reason == "AlreadyExists" => {
                // Created earlier but the status update was lost: record it now.
                let job = match self.client.get(jobs_res, Some(ns), &job_name).await {
                    Ok(Some(j)) => j,
                    Ok(None) => return done(update, next(cj)),
                    Err(e) => return failed(update, e),
                };
                if !is_controlled_by(&job, uid) || in_active_list(cj, uid_of(&job)) {
                    return done(update, None);
                }
                tracing::info!(cronjob = name, job = job_name, "job already exists");
                job
            }
            Err(e) if is_namespace_terminating(&e) => return failed(update, e),
            Err(e) => {
                let msg = format!("Error creating job: {}", e.message);
                self.recorder
                    .record(raw, WARNING, "FailedCreate", &msg)
                    .await;
                return failed(update, e);
            }
        };
        if let Some(rv) = created
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
        {
            self.jobs.caught_up(rv).await;
        }
        let st = status_mut(cj);
        st.active
            .get_or_insert_with(Vec::new)
            .push(job_ref(&created));
        st.last_schedule_time = Some(Time(scheduled));
        done(true, next(cj))
    }

    async fn fresh_cronjob(&self, ns: &str, name: &str) -> Result<Option<CronJob>, ApiError> {
        let r = resource("batch", "v1", "cronjobs")?;
        match self.client.get(r, Some(ns), name).await? {
            Some(v) => Ok(Some(serde_json::from_value(v).map_err(internal)?)),
            None => Ok(None),
        }
    }

    /// Deletes finished Jobs beyond the history limits, oldest first (upstream's
    /// `cleanupFinishedJobs`).
    async fn cleanup_finished_jobs(
        &self,
        raw: &Value,
        cj: &mut CronJob,
        jobs: &[Arc<Value>],
    ) -> bool {
        let spec = cj.spec.clone().unwrap_or_default();
        let (ok_limit, failed_limit) = (
            spec.successful_jobs_history_limit,
            spec.failed_jobs_history_limit,
        );
        if ok_limit.is_none() && failed_limit.is_none() {
            return false;
        }
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        for j in jobs {
            match finished_condition(j) {
                Some("Complete") => ok.push(j.clone()),
                Some("Failed") => failed.push(j.clone()),
                _ => {}
            }
        }
        let mut update = false;
        for (list, limit) in [(ok, ok_limit), (failed, failed_limit)] {
            if let Some(limit) = limit {
                update |= self.remove_oldest_jobs(raw, cj, list, limit).await;
            }
        }
        update
    }

    async fn remove_oldest_jobs(
        &self,
        raw: &Value,
        cj: &mut CronJob,
        mut jobs: Vec<Arc<Value>>,
        max: i32,
    ) -> bool {
        let excess = jobs.len().saturating_sub(usize::try_from(max).unwrap_or(0));
        if excess == 0 {
            return false;
        }
        // By start time (unstarted last), then name.
        jobs.sort_by(|a, b| {
            let (sa, sb) = (
                parse_ts(a, "/status/startTime"),
                parse_ts(b, "/status/startTime"),
            );
            match (sa, sb) {
                (Some(x), Some(y)) if x != y => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                _ => str_at(a, "/metadata/name").cmp(str_at(b, "/metadata/name")),
            }
        });
        let mut update = false;
        for j in jobs.iter().take(excess) {
            update |= self.delete_job(raw, cj, j).await;
        }
        update
    }

    /// Deletes a Job (its pods follow through the garbage collector) and drops it from
    /// `status.active` (upstream's `deleteJob`).
    async fn delete_job(&self, raw: &Value, cj: &mut CronJob, job: &Value) -> bool {
        let Ok(r) = resource("batch", "v1", "jobs") else {
            return false;
        };
        let name = str_at(job, "/metadata/name");
        let opts = DeleteOptions {
            propagation_policy: Some("Background".into()),
            ..Default::default()
        };
        let ns = job.pointer("/metadata/namespace").and_then(Value::as_str);
        match self.client.delete_with(r, ns, name, &opts).await {
            Ok(()) => {}
            Err(e) if e.code == 404 => {}
            Err(e) => {
                let msg = format!("Deleted job: {}", e.message);
                self.recorder
                    .record(raw, WARNING, "FailedDelete", &msg)
                    .await;
                return false;
            }
        }
        delete_from_active_list(cj, uid_of(job));
        let msg = format!("Deleted job {name}");
        self.recorder
            .record(raw, NORMAL, "SuccessfulDelete", &msg)
            .await;
        true
    }
}

fn is_namespace_terminating(e: &ApiError) -> bool {
    e.message.contains("because it is being terminated")
}

/// The Job of one scheduled run (upstream's `getJobFromTemplate2`).
fn job_from_template(cj: &Value, name: &str, scheduled: &str) -> Value {
    let jt = cj.pointer("/spec/jobTemplate").cloned().unwrap_or_default();
    let labels = jt
        .pointer("/metadata/labels")
        .filter(|l| l.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut annotations = jt
        .pointer("/metadata/annotations")
        .filter(|a| a.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    annotations[SCHEDULED_TIMESTAMP] = json!(scheduled);
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": str_at(cj, "/metadata/namespace"),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [controller_ref(cj)],
        },
        "spec": jt.get("spec").cloned().unwrap_or_else(|| json!({})),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_from_cronjob_template() {
        let cj = json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "hello", "namespace": "ns", "uid": "u1"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {
                "metadata": {"labels": {"app": "x"}, "annotations": {"a": "b"}},
                "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}}});
        let j = job_from_template(&cj, "hello-28575961", "2024-05-01T10:01:00Z");
        assert_eq!(j["metadata"]["name"], "hello-28575961");
        assert_eq!(j["metadata"]["labels"]["app"], "x");
        assert_eq!(j["metadata"]["annotations"]["a"], "b");
        assert_eq!(
            j["metadata"]["annotations"][SCHEDULED_TIMESTAMP],
            "2024-05-01T10:01:00Z"
        );
        assert!(is_controlled_by(&j, "u1"));
        assert_eq!(j["metadata"]["ownerReferences"][0]["kind"], "CronJob");
        assert_eq!(j["spec"]["template"]["spec"]["containers"][0]["name"], "c");
    }

    #[test]
    fn schedules_with_time_zones() {
        let mut cj: CronJob = serde_json::from_value(json!({
            "metadata": {"name": "x"},
            "spec": {"schedule": "0 1 * * *", "timeZone": "Europe/Paris",
                     "jobTemplate": {"spec": {"template": {}}}}}))
        .expect("cronjob");
        assert_eq!(format_schedule(&cj).0, "TZ=Europe/Paris 0 1 * * *");
        if let Some(s) = cj.spec.as_mut() {
            s.time_zone = Some("Nowhere/Special".into());
        }
        assert_eq!(format_schedule(&cj).0, "0 1 * * *");
        if let Some(s) = cj.spec.as_mut() {
            s.schedule = "CRON_TZ=UTC 0 1 * * *".into();
        }
        assert_eq!(format_schedule(&cj), ("CRON_TZ=UTC 0 1 * * *".into(), true));
        assert_eq!(
            rfc1123z("2024-05-01T10:01:00Z".parse().expect("ts")),
            "Wed, 01 May 2024 10:01:00 +0000"
        );
    }
}
