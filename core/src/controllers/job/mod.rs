//! The Job controller (kube-controller-manager's job controller, v1.33 behaviour): runs
//! `min(parallelism, remaining completions)` pods from the template, each carrying the
//! `batch.kubernetes.io/job-tracking` finalizer so a finished pod is counted exactly once even
//! if it is deleted early (finished pods go to `status.uncountedTerminatedPods`, lose their
//! finalizer, then move to the `succeeded`/`failed` counters); replaces failed pods after an
//! exponential back-off; fails the Job past `backoffLimit` or `activeDeadlineSeconds` or on a
//! `FailJob` pod failure policy rule (interim `FailureTarget`, then `Failed` once its pods are
//! gone); completes it when enough pods succeeded (interim `SuccessCriteriaMet`, then
//! `Complete`); handles suspension, Indexed completion (per-index pods, `completedIndexes`,
//! success policies) and removes the finalizer of pods whose Job is gone or finished.
//!
//! Submodules: [`status`] (conditions, pod classes, status bookkeeping), [`indexed`],
//! [`backoff`], [`failure_policy`], [`super::wakeups`] (one delayed look per key, shared with the
//! CronJob and TTL controllers).

pub mod backoff;
pub mod failure_policy;
pub mod indexed;
pub mod status;

use super::events::{Recorder, NORMAL, WARNING};
use super::informer::{key_of, split_key, Informer};
use super::pods::{controller_of, is_controlled_by, is_ready, name_of, phase, pod_from_template};
use super::queue::WorkQueue;
use super::{run_workers, Context, Requeue};
use crate::resources::Resource;
use crate::server::client::{resource, Change, LocalClient};
use crate::server::status::ApiError;
use backoff::{BackoffRecord, BackoffStore};
use failure_policy::match_pod_failure_policy;
use futures_util::future::join_all;
use indexed::{completion_index, Intervals};
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kubelite_storage::Revision;
use serde_json::{json, Value};
use status::{
    has_tracking_finalizer, is_indexed, is_pod_failed, is_suspended, new_condition, spec,
    status_mut, true_condition, uid, COMPLETE, FAILED, FAILURE_TARGET, SUCCESS_CRITERIA_MET,
    SUSPENDED, TRACKING_FINALIZER,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MANAGER: &str = "job-controller";
/// The `spec.managedBy` value meaning this controller (any other value: leave the Job alone).
const MANAGED_BY: &str = "kubernetes.io/job-controller";
/// Most pods listed in `uncountedTerminatedPods` at once.
const MAX_UNCOUNTED_PODS: usize = 500;
/// Most pods created or deleted in one sync.
const MAX_POD_CREATE_DELETE_PER_SYNC: usize = 500;
/// The shortest delay of a delayed sync (upstream's `syncJobBatchPeriod`).
const SYNC_BATCH: Duration = Duration::from_secs(1);
/// Longest wait for the pod cache to show this controller's deletions.
const DELETE_CACHE_WAIT: Duration = Duration::from_secs(1);
const COMPLETIONS_REACHED: &str = "CompletionsReached";
const COMPLETIONS_REACHED_MESSAGE: &str = "Reached expected number of succeeded pods";

/// Registers the Job controller's handlers and workers.
pub fn register(ctx: &Context) {
    let (Ok(jobs), Ok(pods), Ok(jobs_res), Ok(pods_res)) = (
        ctx.informer("batch", "v1", "jobs"),
        ctx.informer("", "v1", "pods"),
        resource("batch", "v1", "jobs"),
        resource("", "v1", "pods"),
    ) else {
        return;
    };
    let client = ctx.client(MANAGER);
    let c = Arc::new(Controller {
        recorder: Recorder::new(client.clone(), MANAGER),
        client,
        jobs: jobs.clone(),
        pods: pods.clone(),
        jobs_res,
        pods_res,
        queue: WorkQueue::new(),
        orphans: WorkQueue::new(),
        backoff: BackoffStore::default(),
        expected_removals: Mutex::new(HashMap::new()),
        wakeups: super::wakeups::Wakeups::default(),
        backoff_base: ctx
            .config
            .job_pod_failure_backoff
            .unwrap_or(backoff::DEFAULT_BASE),
        backoff_max: ctx
            .config
            .job_pod_failure_backoff_max
            .unwrap_or(backoff::DEFAULT_MAX),
    });
    let h = c.clone();
    jobs.on_change(move |change, job, old| h.job_changed(change, job, old));
    let h = c.clone();
    pods.on_change(move |change, pod, old| h.pod_changed(change, pod, old));
    let w = c.clone();
    run_workers("job", c.queue.clone(), 4, move |key| {
        let w = w.clone();
        async move { w.sync(&key).await }
    });
    let w = c.clone();
    run_workers("job-orphan-pods", c.orphans.clone(), 1, move |key| {
        let w = w.clone();
        async move { w.sync_orphan(&key).await.map(|()| None) }
    });
}

/// Whether a Job object (as JSON) is finished.
fn finished_value(job: &Value) -> bool {
    job.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                matches!(
                    c.get("type").and_then(Value::as_str),
                    Some(COMPLETE | FAILED)
                ) && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

fn managed_elsewhere(job: &Value) -> bool {
    job.pointer("/spec/managedBy")
        .and_then(Value::as_str)
        .is_some_and(|m| m != MANAGED_BY)
}

fn revision_of(obj: &Value) -> Option<Revision> {
    obj.pointer("/metadata/resourceVersion")?
        .as_str()?
        .parse()
        .ok()
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

fn i32_of(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn namespace_terminating(e: &ApiError) -> bool {
    e.code == 403 && e.message.contains("because it is being terminated")
}

struct Controller {
    client: LocalClient,
    recorder: Recorder,
    jobs: Arc<Informer>,
    pods: Arc<Informer>,
    jobs_res: &'static Resource,
    pods_res: &'static Resource,
    queue: WorkQueue,
    /// Pods whose tracking finalizer must go because their Job is gone or finished.
    orphans: WorkQueue,
    backoff: BackoffStore,
    backoff_base: Duration,
    backoff_max: Duration,
    /// Per Job key, the pods whose finalizer this controller removed but whose update the
    /// cache has not shown yet (upstream's `finalizerExpectations`): they count as counted.
    expected_removals: Mutex<HashMap<String, HashSet<String>>>,
    wakeups: super::wakeups::Wakeups,
}

/// Everything one sync of a Job works with (upstream's `syncJobCtx`).
struct SyncCtx {
    key: String,
    job: Job,
    raw: Arc<Value>,
    pods: Vec<Arc<Value>>,
    active_pods: Vec<Arc<Value>>,
    finished: Option<JobCondition>,
    succeeded: i32,
    failed: i32,
    prev_succeeded_indexes: Intervals,
    succeeded_indexes: Intervals,
    new_backoff: BackoffRecord,
    uncounted_succeeded: HashSet<String>,
    uncounted_failed: HashSet<String>,
    /// Pods whose finalizer removal is not seen in the cache yet.
    expected_removals: HashSet<String>,
    terminating: i32,
    ready: i32,
    requeue: Requeue,
}

impl SyncCtx {
    fn requeue_after(&mut self, d: Duration) {
        self.requeue = Some(self.requeue.map_or(d, |r| r.min(d)));
    }

    fn completions(&self) -> i64 {
        i64::from(spec(&self.job).completions.unwrap_or(0))
    }

    /// The pod still carries the finalizer (as far as this controller knows).
    fn tracked(&self, pod: &Value) -> bool {
        has_tracking_finalizer(pod) && !self.expected_removals.contains(uid(pod))
    }

    /// A valid completion index of this Job.
    fn valid_index(&self, pod: &Value) -> Option<i64> {
        completion_index(pod).filter(|ix| *ix < self.completions())
    }
}

impl Controller {
    // -----------------------------------------------------------------------------------------
    // Event handlers.

    fn job_changed(&self, change: Change, job: &Value, old: Option<&Value>) {
        self.queue.add(key_of(job));
        // When it goes or just finished (or is first seen finished, e.g. after a restart); not
        // on every later event of a finished Job, which would scan the namespace's pods each time.
        let just_finished = finished_value(job) && !old.is_some_and(finished_value);
        if change == Change::Deleted || just_finished {
            self.cleanup_pod_finalizers(job);
        }
    }

    /// Queues the pods of a gone or finished Job that still carry the finalizer.
    fn cleanup_pod_finalizers(&self, job: &Value) {
        let ns = job.pointer("/metadata/namespace").and_then(Value::as_str);
        let uid = super::pods::uid_of(job);
        for p in self.pods.list(ns) {
            if is_controlled_by(&p, uid) && has_tracking_finalizer(&p) {
                self.orphans.add(key_of(&p));
            }
        }
    }

    /// The Job controlling a pod, from the cache (name and uid must match).
    fn job_of(&self, pod: &Value) -> Option<Arc<Value>> {
        let r = controller_of(pod)?;
        if r.get("kind").and_then(Value::as_str) != Some("Job") {
            return None;
        }
        let ns = pod.pointer("/metadata/namespace").and_then(Value::as_str);
        let job = self.jobs.get(ns, r.get("name").and_then(Value::as_str)?)?;
        (Some(super::pods::uid_of(&job)) == r.get("uid").and_then(Value::as_str)).then_some(job)
    }

    fn pod_changed(&self, change: Change, pod: &Value, old: Option<&Value>) {
        let mut keys = Vec::new();
        for p in std::iter::once(pod).chain(old) {
            if let Some(job) = self.job_of(p) {
                let k = key_of(&job);
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        for k in keys {
            self.queue.add(k);
        }
        if change == Change::Deleted || !has_tracking_finalizer(pod) {
            self.removal_observed(pod);
        }
        if change != Change::Deleted && has_tracking_finalizer(pod) {
            let orphaned = match self.job_of(pod) {
                None => true,
                Some(job) => finished_value(&job),
            };
            if orphaned {
                self.orphans.add(key_of(pod));
            }
        }
    }

    async fn synced(&self) {
        self.jobs.synced().await;
        self.pods.synced().await;
    }

    fn expected_removals_of(&self, key: &str) -> HashSet<String> {
        self.expected_removals
            .lock()
            .ok()
            .and_then(|m| m.get(key).cloned())
            .unwrap_or_default()
    }

    fn expect_removals(&self, key: &str, uids: impl IntoIterator<Item = String>) {
        if let Ok(mut m) = self.expected_removals.lock() {
            m.entry(key.to_string()).or_default().extend(uids);
        }
    }

    fn forget_removal(&self, key: &str, pod_uid: &str) {
        if let Ok(mut m) = self.expected_removals.lock() {
            if let Some(set) = m.get_mut(key) {
                set.remove(pod_uid);
                if set.is_empty() {
                    m.remove(key);
                }
            }
        }
    }

    /// The cache shows a pod without its finalizer (or gone): no longer expected.
    fn removal_observed(&self, pod: &Value) {
        let Some(r) = controller_of(pod) else {
            return;
        };
        let (Some(ns), Some(name)) = (
            pod.pointer("/metadata/namespace").and_then(Value::as_str),
            r.get("name").and_then(Value::as_str),
        ) else {
            return;
        };
        self.forget_removal(&format!("{ns}/{name}"), uid(pod));
    }

    // -----------------------------------------------------------------------------------------
    // Orphan pods.

    /// Removes the tracking finalizer of a pod whose Job is gone or finished (upstream's
    /// `syncOrphanPod`).
    async fn sync_orphan(&self, key: &str) -> Result<(), ApiError> {
        self.synced().await;
        let (ns, name) = split_key(key);
        let Some(pod) = self.pods.get(ns, name) else {
            return Ok(());
        };
        if let Some(r) = controller_of(&pod) {
            if r.get("kind").and_then(Value::as_str) != Some("Job")
                || r.get("apiVersion").and_then(Value::as_str) != Some("batch/v1")
            {
                return Ok(());
            }
            // Not trusting a cache miss: the Job may just not be seen yet.
            let job = match self.job_of(&pod) {
                Some(job) => Some((*job).clone()),
                None => {
                    let name = r.get("name").and_then(Value::as_str).unwrap_or("");
                    self.client.get(self.jobs_res, ns, name).await?.filter(|j| {
                        Some(super::pods::uid_of(j)) == r.get("uid").and_then(Value::as_str)
                    })
                }
            };
            if let Some(job) = job {
                if managed_elsewhere(&job) || !finished_value(&job) {
                    return Ok(());
                }
            }
        }
        match self.remove_finalizer(&pod).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    // -----------------------------------------------------------------------------------------
    // The sync.

    /// Upstream's `syncJob`.
    async fn sync(&self, key: &str) -> Result<Requeue, ApiError> {
        self.synced().await;
        let (ns, name) = split_key(key);
        let Some(raw) = self.jobs.get(ns, name) else {
            self.backoff.remove(key);
            if let Ok(mut m) = self.expected_removals.lock() {
                m.remove(key);
            }
            self.wakeups.forget(key);
            return Ok(None);
        };
        if managed_elsewhere(&raw) {
            return Ok(None);
        }
        let mut job: Job = serde_json::from_value((*raw).clone()).map_err(internal)?;
        if status::is_finished(&job) {
            self.backoff.remove(key);
            return Ok(None);
        }
        let js = spec(&job);
        if let Some(mode) = js.completion_mode.as_deref() {
            if mode != "NonIndexed" && mode != "Indexed" {
                self.recorder
                    .record(
                        &raw,
                        WARNING,
                        "UnknownCompletionMode",
                        "Skipped Job sync because completion mode is unknown",
                    )
                    .await;
                return Ok(None);
            }
        }
        status_mut(&mut job)
            .uncounted_terminated_pods
            .get_or_insert_with(Default::default);
        let st = status_mut(&mut job).clone();
        let uncounted = st.uncounted_terminated_pods.clone().unwrap_or_default();

        let job_uid = super::pods::uid_of(&raw).to_string();
        let pods: Vec<Arc<Value>> = self
            .pods
            .list(ns)
            .into_iter()
            .filter(|p| is_controlled_by(p, &job_uid))
            .collect();
        let active_pods: Vec<Arc<Value>> = pods
            .iter()
            .filter(|p| status::is_active(p))
            .cloned()
            .collect();
        let mut cx = SyncCtx {
            key: key.to_string(),
            ready: i32_of(active_pods.iter().filter(|p| is_ready(p)).count()),
            terminating: i32_of(pods.iter().filter(|p| status::is_terminating(p)).count()),
            uncounted_succeeded: uncounted
                .succeeded
                .unwrap_or_default()
                .into_iter()
                .collect(),
            uncounted_failed: uncounted.failed.unwrap_or_default().into_iter().collect(),
            expected_removals: self.expected_removals_of(key),
            job,
            raw: raw.clone(),
            pods,
            active_pods,
            finished: None,
            succeeded: 0,
            failed: 0,
            prev_succeeded_indexes: Intervals::default(),
            succeeded_indexes: Intervals::default(),
            new_backoff: BackoffRecord::default(),
            requeue: None,
        };
        let mut active = i32_of(cx.active_pods.len());
        let (new_succeeded, new_failed) = self.new_finished_pods(&cx);
        let ignored = new_failed
            .iter()
            .filter(|p| !match_pod_failure_policy(js.pod_failure_policy.as_ref(), p).count)
            .count();
        cx.succeeded = st.succeeded.unwrap_or(0)
            + i32_of(new_succeeded.len())
            + i32_of(cx.uncounted_succeeded.len());
        cx.failed = st.failed.unwrap_or(0)
            + i32_of(new_failed.len() - ignored)
            + i32_of(cx.uncounted_failed.len());

        // First start (not while suspended).
        if st.start_time.is_none() && !is_suspended(&cx.job) {
            status_mut(&mut cx.job).start_time = Some(Time(Timestamp::now()));
        }
        cx.new_backoff = self.backoff.new_record(key, &new_succeeded, &new_failed);

        let exceeds_backoff = cx.failed > js.backoff_limit.unwrap_or(6);
        cx.finished = true_condition(&cx.job, SUCCESS_CRITERIA_MET).cloned();
        if cx.finished.is_none() {
            if let Some(target) = true_condition(&cx.job, FAILURE_TARGET) {
                cx.finished = Some(failed_from_target(target));
            } else if let Some(msg) = self.fail_job_message(&cx) {
                cx.finished = Some(new_condition(
                    FAILURE_TARGET,
                    "True",
                    "PodFailurePolicy",
                    &msg,
                ));
            }
        }
        if cx.finished.is_none() {
            if exceeds_backoff || status::past_backoff_limit_on_failure(&cx.job, &cx.pods) {
                cx.finished = Some(new_condition(
                    FAILURE_TARGET,
                    "True",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                ));
            } else if let Some(left) = deadline_left(&cx.job) {
                if left.is_zero() {
                    cx.finished = Some(new_condition(
                        FAILURE_TARGET,
                        "True",
                        "DeadlineExceeded",
                        "Job was active longer than specified deadline",
                    ));
                } else {
                    cx.requeue_after(left);
                }
            }
        }
        if is_indexed(&cx.job) {
            let (prev, now) = self.succeeded_indexes(&cx);
            cx.prev_succeeded_indexes = prev;
            cx.succeeded_indexes = now;
            cx.succeeded = i32::try_from(cx.succeeded_indexes.total()).unwrap_or(i32::MAX);
            if cx.finished.is_none() {
                if let Some(msg) = indexed::match_success_policy(
                    js.success_policy.as_ref(),
                    cx.completions(),
                    &cx.succeeded_indexes,
                ) {
                    cx.finished = Some(new_condition(
                        SUCCESS_CRITERIA_MET,
                        "True",
                        "SuccessPolicy",
                        &msg,
                    ));
                }
            }
        }

        let mut suspend_changed = false;
        let mut manage_error = None;
        if cx.finished.is_some() {
            // Finishing: the remaining active pods go (their finalizers are removed below).
            let pods = cx.active_pods.clone();
            let (deleted_ready, deleted, err) = self.delete_pods(&cx.raw, &pods, false).await;
            if deleted != active {
                cx.finished = None;
            }
            active -= deleted;
            cx.terminating += deleted;
            cx.ready -= deleted_ready;
            manage_error = err;
        } else {
            let mut managed = false;
            if cx.job.metadata.deletion_timestamp.is_none() {
                let (a, err) = self.manage_job(&mut cx).await;
                active = a;
                manage_error = err;
                managed = true;
            }
            let complete = match js.completions {
                None => cx.succeeded > 0 && active == 0,
                Some(n) => cx.succeeded >= n && active == 0,
            };
            if complete {
                cx.finished = Some(new_condition(
                    SUCCESS_CRITERIA_MET,
                    "True",
                    COMPLETIONS_REACHED,
                    COMPLETIONS_REACHED_MESSAGE,
                ));
            } else if managed {
                if is_suspended(&cx.job) {
                    if status::ensure_condition(
                        &mut cx.job,
                        SUSPENDED,
                        "True",
                        "JobSuspended",
                        "Job suspended",
                    ) {
                        suspend_changed = true;
                        self.recorder
                            .record(&cx.raw, NORMAL, "Suspended", "Job suspended")
                            .await;
                    }
                } else if status::ensure_condition(
                    &mut cx.job,
                    SUSPENDED,
                    "False",
                    "JobResumed",
                    "Job resumed",
                ) {
                    suspend_changed = true;
                    self.recorder
                        .record(&cx.raw, NORMAL, "Resumed", "Job resumed")
                        .await;
                    // The active deadline counts from the resumption.
                    status_mut(&mut cx.job).start_time = Some(Time(Timestamp::now()));
                }
            }
        }

        let needs_update = suspend_changed
            || active != st.active.unwrap_or(0)
            || Some(cx.ready) != st.ready
            || Some(cx.terminating) != st.terminating;
        {
            let (ready, terminating) = (cx.ready, cx.terminating);
            let s = status_mut(&mut cx.job);
            s.active = Some(active);
            s.ready = Some(ready);
            s.terminating = Some(terminating);
        }
        self.track_status_and_remove_finalizers(&mut cx, needs_update)
            .await?;
        match manage_error {
            Some(e) => Err(e),
            None => Ok(cx.requeue.and_then(|d| self.wakeups.schedule(key, d))),
        }
    }

    /// Pods newly succeeded and failed, not yet counted in the status (upstream's
    /// `getNewFinishedPods`): they still carry the finalizer, are not listed as uncounted and,
    /// for Indexed Jobs, have a valid index.
    fn new_finished_pods(&self, cx: &SyncCtx) -> (Vec<Arc<Value>>, Vec<Arc<Value>>) {
        let valid = |p: &Value, uncounted: &HashSet<String>| {
            cx.tracked(p)
                && !uncounted.contains(uid(p))
                && (!is_indexed(&cx.job) || cx.valid_index(p).is_some())
        };
        let succeeded = cx
            .pods
            .iter()
            .filter(|p| valid(p, &cx.uncounted_succeeded) && phase(p) == "Succeeded")
            .cloned()
            .collect();
        let failed = cx
            .pods
            .iter()
            .filter(|p| valid(p, &cx.uncounted_failed) && is_pod_failed(p, &cx.job))
            .cloned()
            .collect();
        (succeeded, failed)
    }

    /// The failure message of the first failed pod matching a `FailJob` rule.
    fn fail_job_message(&self, cx: &SyncCtx) -> Option<String> {
        let policy = cx.job.spec.as_ref()?.pod_failure_policy.as_ref()?;
        cx.pods
            .iter()
            .filter(|p| is_pod_failed(p, &cx.job))
            .find_map(|p| match_pod_failure_policy(Some(policy), p).fail_job)
    }

    /// `status.completedIndexes` before and after the pods that succeeded since.
    fn succeeded_indexes(&self, cx: &SyncCtx) -> (Intervals, Intervals) {
        let completions = cx.completions();
        let prev = Intervals::parse(
            cx.job
                .status
                .as_ref()
                .and_then(|s| s.completed_indexes.as_deref())
                .unwrap_or(""),
            completions,
        );
        let mut new: Vec<i64> = cx
            .pods
            .iter()
            .filter(|p| phase(p) == "Succeeded" && has_tracking_finalizer(p))
            .filter_map(|p| cx.valid_index(p))
            .collect();
        new.sort_unstable();
        new.dedup();
        let now = prev.with_ordered_indexes(&new);
        (prev, now)
    }

    // -----------------------------------------------------------------------------------------
    // Pods.

    /// Creates or deletes pods towards the wanted number of active ones (upstream's
    /// `manageJob`). Returns the number of active pods and the first error.
    async fn manage_job(&self, cx: &mut SyncCtx) -> (i32, Option<ApiError>) {
        let js = spec(&cx.job);
        let active = i32_of(cx.active_pods.len());
        let parallelism = js.parallelism.unwrap_or(1);
        if is_suspended(&cx.job) {
            let pods = self.pods_for_removal(cx, cx.active_pods.len());
            let (removed_ready, removed, err) = self.delete_pods(&cx.raw, &pods, true).await;
            cx.terminating += removed;
            cx.ready -= removed_ready;
            return (active - removed, err);
        }
        let want = match js.completions {
            None if cx.succeeded > 0 => active,
            None => parallelism,
            Some(n) => (n - cx.succeeded).clamp(0, parallelism.max(0)),
        };
        let rm_at_least = usize::try_from(active - want).unwrap_or(0);
        let mut to_delete = self.pods_for_removal(cx, rm_at_least);
        to_delete.truncate(MAX_POD_CREATE_DELETE_PER_SYNC);
        if !to_delete.is_empty() {
            // Deletions and creations never happen in the same sync.
            let (removed_ready, removed, err) = self.delete_pods(&cx.raw, &to_delete, true).await;
            cx.terminating += removed;
            cx.ready -= removed_ready;
            return (active - removed, err);
        }
        let terminating = if status::only_replace_failed_pods(&cx.job) {
            cx.terminating
        } else {
            0
        };
        let diff = want - terminating - active;
        if diff <= 0 {
            return (active, None);
        }
        let wait = backoff::remaining(
            &cx.new_backoff,
            Timestamp::now(),
            self.backoff_base,
            self.backoff_max,
        );
        if !wait.is_zero() {
            cx.requeue_after(wait.max(SYNC_BATCH));
            return (active, None);
        }
        let mut count = usize::try_from(diff)
            .unwrap_or(0)
            .min(MAX_POD_CREATE_DELETE_PER_SYNC);
        let mut indexes: Vec<Option<i64>> = vec![None; count];
        let mut template = cx
            .raw
            .pointer("/spec/template")
            .cloned()
            .unwrap_or_else(|| json!({}));
        if is_indexed(&cx.job) {
            let non_pending = cx.succeeded_indexes.clone();
            let mut taken = indexed::indexes_of(&cx.active_pods);
            if status::only_replace_failed_pods(&cx.job) {
                let terminating: Vec<Arc<Value>> = cx
                    .pods
                    .iter()
                    .filter(|p| status::is_terminating(p))
                    .cloned()
                    .collect();
                taken.extend(indexed::indexes_of(&terminating));
            }
            let pending =
                indexed::first_pending_indexes(&non_pending, &taken, count, cx.completions());
            count = pending.len();
            indexes = pending.into_iter().map(Some).collect();
            indexed::add_index_env(&mut template);
        }
        add_tracking_finalizer(&mut template);

        let mut created_total = 0;
        let mut first_error = None;
        let mut max_rev: Revision = 0;
        let mut next = 0;
        let mut batch = count.min(1);
        while next < count {
            let batch_indexes = &indexes[next..next + batch];
            let creates = batch_indexes.iter().map(|ix| {
                let mut t = template.clone();
                let generate = match ix {
                    Some(ix) => {
                        indexed::add_index(&mut t, name_of(&cx.raw), *ix);
                        indexed::generate_name(name_of(&cx.raw), *ix)
                    }
                    None => format!("{}-", name_of(&cx.raw)),
                };
                let pod = pod_from_template(&t, &cx.raw, None, &generate);
                let ns = cx
                    .raw
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("default")
                    .to_string();
                async move { self.client.create(self.pods_res, Some(&ns), pod).await }
            });
            let results = join_all(creates).await;
            let mut failed_in_batch = false;
            for r in results {
                match r {
                    Ok(pod) => {
                        created_total += 1;
                        max_rev = max_rev.max(revision_of(&pod).unwrap_or(0));
                        let msg = format!("Created pod: {}", name_of(&pod));
                        self.recorder
                            .record(&cx.raw, NORMAL, "SuccessfulCreate", &msg)
                            .await;
                    }
                    // The namespace is going away: nothing more can be created.
                    Err(e) if namespace_terminating(&e) => {}
                    Err(e) => {
                        failed_in_batch = true;
                        let msg = format!("Error creating: {}", e.message);
                        self.recorder
                            .record(&cx.raw, WARNING, "FailedCreate", &msg)
                            .await;
                        first_error.get_or_insert(e);
                    }
                }
            }
            next += batch;
            // Slow start: stop at the first failing batch, double the batch otherwise.
            if failed_in_batch {
                break;
            }
            batch = (batch * 2).min(count - next);
        }
        if max_rev > 0 {
            self.pods.caught_up(max_rev).await;
        }
        (active + created_total, first_error)
    }

    /// Active pods to delete: for Indexed Jobs, those without a valid or with a repeated index,
    /// then the least advanced ones until `rm_at_least` (upstream's `activePodsForRemoval`).
    fn pods_for_removal(&self, cx: &SyncCtx, rm_at_least: usize) -> Vec<Arc<Value>> {
        let (mut rm, mut left) = if is_indexed(&cx.job) {
            indexed::duplicated_index_pods(&cx.active_pods, cx.completions())
        } else {
            (Vec::new(), cx.active_pods.clone())
        };
        if rm.len() < rm_at_least {
            status::sort_active_pods(&mut left);
            let more = (rm_at_least - rm.len()).min(left.len());
            rm.extend(left.into_iter().take(more));
        }
        rm
    }

    /// Deletes pods (after removing their finalizer when `remove_finalizer`); returns how many
    /// ready pods and how many pods were deleted, and the first error.
    async fn delete_pods(
        &self,
        job: &Value,
        pods: &[Arc<Value>],
        remove_finalizer: bool,
    ) -> (i32, i32, Option<ApiError>) {
        let deletes = pods.iter().map(|p| async move {
            if remove_finalizer {
                match self.remove_finalizer(p).await {
                    Ok(_) => {}
                    Err(e) if e.code == 404 => return (p, Ok(())),
                    Err(e) => return (p, Err(e)),
                }
            }
            let ns = p.pointer("/metadata/namespace").and_then(Value::as_str);
            let r = self
                .client
                .delete(self.pods_res, ns, name_of(p), None)
                .await;
            (p, r)
        });
        let results = join_all(deletes).await;
        // A DELETE does not say its revision: the store's, right after, bounds it.
        let rev = self.client.current_revision();
        let mut deleted = 0;
        let mut deleted_ready = 0;
        let mut first_error = None;
        for (p, r) in results {
            match r {
                Ok(()) => {
                    let msg = format!("Deleted pod: {}", name_of(p));
                    self.recorder
                        .record(job, NORMAL, "SuccessfulDelete", &msg)
                        .await;
                }
                Err(e) if e.code == 404 => {}
                Err(e) => {
                    let msg = format!("Error deleting: {}", e.message);
                    self.recorder
                        .record(job, WARNING, "FailedDelete", &msg)
                        .await;
                    first_error.get_or_insert(e);
                    continue;
                }
            }
            deleted += 1;
            if is_ready(p) {
                deleted_ready += 1;
            }
        }
        if !pods.is_empty() {
            // Other writes may share that revision range, so the wait is bounded; a stale look
            // at a deleted pod only deletes it again.
            let _ = tokio::time::timeout(DELETE_CACHE_WAIT, self.pods.caught_up(rev)).await;
        }
        (deleted_ready, deleted, first_error)
    }

    /// Removes the tracking finalizer of a pod (a merge patch conditional on the version it
    /// read, re-read on conflict); returns the revision of the change, if one was made.
    async fn remove_finalizer(&self, pod: &Value) -> Result<Option<Revision>, ApiError> {
        let mut current = pod.clone();
        for _ in 0..5 {
            if !has_tracking_finalizer(&current) {
                return Ok(None);
            }
            let rest: Vec<Value> = current
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .map(|f| {
                    f.iter()
                        .filter(|v| v.as_str() != Some(TRACKING_FINALIZER))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            let patch = json!({"metadata": {"finalizers": rest,
                "resourceVersion": current.pointer("/metadata/resourceVersion")}});
            let ns = current
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_string);
            let name = name_of(&current).to_string();
            match self
                .client
                .merge_patch(self.pods_res, ns.as_deref(), &name, None, patch)
                .await
            {
                // The written (or, when it was the last finalizer of a deleted pod, the
                // deleted) object carries the revision of the change.
                Ok(written) => return Ok(revision_of(&written)),
                Err(e) if e.code == 409 => {
                    match self.client.get(self.pods_res, ns.as_deref(), &name).await? {
                        Some(fresh) if uid(&fresh) == uid(pod) => current = fresh,
                        _ => return Ok(None),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(ApiError::conflict(
            self.pods_res,
            name_of(pod),
            "the object has been modified; please apply your changes to the latest version and try again",
        ))
    }

    // -----------------------------------------------------------------------------------------
    // Status.

    /// Counts finished pods through `uncountedTerminatedPods`, removes their finalizers, moves
    /// them to the counters and adds the finished condition once nothing is left to count or
    /// terminate (upstream's `trackJobStatusAndRemoveFinalizers`).
    async fn track_status_and_remove_finalizers(
        &self,
        cx: &mut SyncCtx,
        mut needs_flush: bool,
    ) -> Result<(), ApiError> {
        let indexed = is_indexed(&cx.job);
        if indexed {
            cx.pods.sort_by_key(|p| completion_index(p).unwrap_or(-1));
        }
        let mut with_finalizer: HashSet<String> = cx
            .pods
            .iter()
            .filter(|p| cx.tracked(p))
            .map(|p| uid(p).to_string())
            .collect();
        if status::clean_uncounted(status_mut(&mut cx.job), &with_finalizer) {
            needs_flush = true;
        }
        let policy = spec(&cx.job).pod_failure_policy;
        let scm_finished = cx
            .finished
            .as_ref()
            .is_some_and(|c| c.type_ == SUCCESS_CRITERIA_MET);
        let mut to_remove: Vec<Arc<Value>> = Vec::new();
        let mut new_indexes: Vec<i64> = Vec::new();
        let mut reached_max = false;
        for pod in cx.pods.clone() {
            // Pods without the finalizer were counted by an earlier sync.
            if !cx.tracked(&pod) {
                continue;
            }
            let failed = is_pod_failed(&pod, &cx.job);
            let removable = cx.job.metadata.deletion_timestamp.is_some()
                || cx.finished.is_some()
                || phase(&pod) == "Succeeded"
                || failed;
            if !removable {
                continue;
            }
            to_remove.push(pod.clone());
            let pod_uid = uid(&pod).to_string();
            let ix = cx.valid_index(&pod);
            let succeeded = phase(&pod) == "Succeeded" && !cx.uncounted_failed.contains(&pod_uid);
            if succeeded && indexed {
                if let Some(ix) = ix.filter(|ix| !cx.prev_succeeded_indexes.has(*ix)) {
                    new_indexes.push(ix);
                    needs_flush = true;
                }
            }
            let new_success = succeeded && !indexed && !cx.uncounted_succeeded.contains(&pod_uid);
            // Once the Job is finishing, every pod that did not succeed counts as failed.
            let new_failure = !succeeded
                && (failed || (cx.finished.is_some() && !scm_finished))
                && !cx.uncounted_failed.contains(&pod_uid)
                && (!indexed || ix.is_some())
                && (policy.is_none() || match_pod_failure_policy(policy.as_ref(), &pod).count);
            let uncounted = status_mut(&mut cx.job)
                .uncounted_terminated_pods
                .get_or_insert_with(Default::default);
            if new_success {
                needs_flush = true;
                uncounted
                    .succeeded
                    .get_or_insert_with(Vec::new)
                    .push(pod_uid);
            } else if new_failure {
                needs_flush = true;
                uncounted.failed.get_or_insert_with(Vec::new).push(pod_uid);
            }
            let listed = uncounted.succeeded.as_ref().map_or(0, Vec::len)
                + uncounted.failed.as_ref().map_or(0, Vec::len);
            if new_indexes.len() + listed >= MAX_UNCOUNTED_PODS {
                // Big Jobs are counted over several syncs.
                reached_max = true;
                break;
            }
        }
        if indexed {
            new_indexes.sort_unstable();
            new_indexes.dedup();
            cx.succeeded_indexes = cx.succeeded_indexes.with_ordered_indexes(&new_indexes);
            let text = cx.succeeded_indexes.to_string();
            let total = i32::try_from(cx.succeeded_indexes.total()).unwrap_or(i32::MAX);
            let s = status_mut(&mut cx.job);
            if s.completed_indexes.as_deref().unwrap_or("") != text {
                needs_flush = true;
            }
            s.succeeded = Some(total);
            s.completed_indexes = Some(text);
        }
        // The interim conditions are written before the finalizers go; the final ones after.
        if let Some(target) = cx.finished.clone() {
            if target.type_ == FAILURE_TARGET {
                status_mut(&mut cx.job)
                    .conditions
                    .get_or_insert_with(Vec::new)
                    .push(target.clone());
                needs_flush = true;
                cx.finished = Some(failed_from_target(&target));
            } else if target.type_ == SUCCESS_CRITERIA_MET {
                if true_condition(&cx.job, SUCCESS_CRITERIA_MET).is_none() {
                    status_mut(&mut cx.job)
                        .conditions
                        .get_or_insert_with(Vec::new)
                        .push(target.clone());
                    needs_flush = true;
                }
                cx.finished = Some(new_condition(
                    COMPLETE,
                    "True",
                    target.reason.as_deref().unwrap_or(""),
                    target.message.as_deref().unwrap_or(""),
                ));
            }
        }
        needs_flush = self
            .flush_and_remove_finalizers(cx, &to_remove, &mut with_finalizer, needs_flush)
            .await?;
        let finished = !reached_max && self.enact_finished(cx);
        if finished {
            needs_flush = true;
        }
        if needs_flush {
            self.write_status(cx).await?;
            if finished {
                self.record_finished(cx).await;
            }
        }
        Ok(())
    }

    /// Writes the status listing the newly finished pods (and interim conditions), removes the
    /// finalizers of `to_remove`, and moves the pods whose finalizer is gone to the counters
    /// (upstream's `flushUncountedAndRemoveFinalizers`). Returns whether the status still
    /// needs writing.
    async fn flush_and_remove_finalizers(
        &self,
        cx: &mut SyncCtx,
        to_remove: &[Arc<Value>],
        with_finalizer: &mut HashSet<String>,
        mut needs_flush: bool,
    ) -> Result<bool, ApiError> {
        if needs_flush {
            self.write_status(cx).await?;
            self.backoff.update(&cx.key, cx.new_backoff.clone());
            needs_flush = false;
        }
        let mut error = None;
        if !to_remove.is_empty() {
            self.expect_removals(&cx.key, to_remove.iter().map(|p| uid(p).to_string()));
            let removals = to_remove.iter().map(|p| async move {
                match self.remove_finalizer(p).await {
                    Ok(rev) => (p, Ok(rev)),
                    Err(e) if e.code == 404 => (p, Ok(None)),
                    Err(e) => (p, Err(e)),
                }
            });
            let mut max_rev: Revision = 0;
            for (p, r) in join_all(removals).await {
                match r {
                    Ok(rev) => {
                        with_finalizer.remove(uid(p));
                        max_rev = max_rev.max(rev.unwrap_or(0));
                    }
                    Err(e) => {
                        // No update will come for it.
                        self.forget_removal(&cx.key, uid(p));
                        error.get_or_insert(e);
                    }
                }
            }
            if max_rev > 0 {
                self.pods.caught_up(max_rev).await;
            }
        }
        if status::clean_uncounted(status_mut(&mut cx.job), with_finalizer) {
            needs_flush = true;
        }
        if let Some(e) = error {
            if needs_flush {
                self.write_status(cx).await?;
            }
            return Err(e);
        }
        Ok(needs_flush)
    }

    /// Adds the final condition once no pod is left uncounted or terminating (upstream's
    /// `enactJobFinished`).
    fn enact_finished(&self, cx: &mut SyncCtx) -> bool {
        let Some(cond) = cx.finished.clone() else {
            return false;
        };
        let uncounted = cx
            .job
            .status
            .as_ref()
            .and_then(|s| s.uncounted_terminated_pods.as_ref())
            .map_or(0, |u| {
                u.succeeded.as_ref().map_or(0, Vec::len) + u.failed.as_ref().map_or(0, Vec::len)
            });
        if uncounted > 0 || cx.terminating > 0 {
            return false;
        }
        status::ensure_condition(
            &mut cx.job,
            &cond.type_,
            &cond.status,
            cond.reason.as_deref().unwrap_or(""),
            cond.message.as_deref().unwrap_or(""),
        );
        if cond.type_ == COMPLETE {
            status_mut(&mut cx.job).completion_time = cond.last_transition_time.clone();
        }
        true
    }

    async fn record_finished(&self, cx: &SyncCtx) {
        let Some(cond) = &cx.finished else {
            return;
        };
        if cond.type_ == COMPLETE {
            let completions = spec(&cx.job).completions;
            let succeeded = cx
                .job
                .status
                .as_ref()
                .and_then(|s| s.succeeded)
                .unwrap_or(0);
            if completions.is_some_and(|n| succeeded > n) {
                self.recorder
                    .record(
                        &cx.raw,
                        WARNING,
                        "TooManySucceededPods",
                        "Too many succeeded pods running after completion count reached",
                    )
                    .await;
            }
            self.recorder
                .record(&cx.raw, NORMAL, "Completed", "Job completed")
                .await;
        } else {
            self.recorder
                .record(
                    &cx.raw,
                    WARNING,
                    cond.reason.as_deref().unwrap_or(""),
                    cond.message.as_deref().unwrap_or(""),
                )
                .await;
        }
    }

    /// PUT of the Job's status (conflicts when the cached Job was stale); the written Job
    /// replaces the one in the context and the cache is given time to see it.
    async fn write_status(&self, cx: &mut SyncCtx) -> Result<(), ApiError> {
        let mut job = cx.job.clone();
        job.status = job.status.map(status::normalized);
        let body = serde_json::to_value(&job).map_err(internal)?;
        let written = self.client.update_status(self.jobs_res, body).await?;
        if let Some(rev) = revision_of(&written) {
            self.jobs.caught_up(rev).await;
        }
        cx.job = serde_json::from_value(written).map_err(internal)?;
        Ok(())
    }
}

/// The `Failed` condition a `FailureTarget` turns into.
fn failed_from_target(target: &JobCondition) -> JobCondition {
    new_condition(
        FAILED,
        "True",
        target.reason.as_deref().unwrap_or(""),
        target.message.as_deref().unwrap_or(""),
    )
}

/// Time left before `activeDeadlineSeconds` (zero once past); None without a deadline, start
/// time, or while suspended.
fn deadline_left(job: &Job) -> Option<Duration> {
    let ads = job.spec.as_ref()?.active_deadline_seconds?;
    if is_suspended(job) {
        return None;
    }
    let start = job.status.as_ref()?.start_time.as_ref()?.0;
    let elapsed = Duration::try_from(Timestamp::now().duration_since(start)).unwrap_or_default();
    Some(Duration::from_secs(u64::try_from(ads).unwrap_or(0)).saturating_sub(elapsed))
}

fn add_tracking_finalizer(template: &mut Value) {
    let Some(t) = template.as_object_mut() else {
        return;
    };
    let meta = t.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    let fins = &mut meta["finalizers"];
    if !fins.is_array() {
        *fins = json!([]);
    }
    if let Some(list) = fins.as_array_mut() {
        if !list.iter().any(|f| f.as_str() == Some(TRACKING_FINALIZER)) {
            list.push(json!(TRACKING_FINALIZER));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finalizer_added_once() {
        let mut t = json!({"metadata": {"labels": {"a": "b"}}, "spec": {}});
        add_tracking_finalizer(&mut t);
        add_tracking_finalizer(&mut t);
        assert_eq!(t["metadata"]["finalizers"], json!([TRACKING_FINALIZER]));
        let mut bare = json!({});
        add_tracking_finalizer(&mut bare);
        assert_eq!(bare["metadata"]["finalizers"], json!([TRACKING_FINALIZER]));
    }

    #[test]
    fn deadlines() {
        let mut job: Job = serde_json::from_value(json!({"metadata": {"name": "j"},
            "spec": {"activeDeadlineSeconds": 10, "template": {}}}))
        .expect("job");
        assert_eq!(deadline_left(&job), None);
        status_mut(&mut job).start_time = Some(Time(
            Timestamp::now()
                .checked_sub(jiff::SignedDuration::from_secs(20))
                .expect("ts"),
        ));
        assert_eq!(deadline_left(&job), Some(Duration::ZERO));
        status_mut(&mut job).start_time = Some(Time(Timestamp::now()));
        assert!(deadline_left(&job).is_some_and(|d| d > Duration::from_secs(8)));
        if let Some(s) = job.spec.as_mut() {
            s.suspend = Some(true);
        }
        assert_eq!(deadline_left(&job), None);
        let target = new_condition(FAILURE_TARGET, "True", "DeadlineExceeded", "m");
        let failed = failed_from_target(&target);
        assert_eq!(failed.type_, FAILED);
        assert_eq!(failed.reason.as_deref(), Some("DeadlineExceeded"));
    }
}
