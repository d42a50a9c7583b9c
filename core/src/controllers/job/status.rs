//! What the Job controller reads off Jobs and their pods, and how it writes Job conditions:
//! finished/interim conditions (`Complete`, `Failed`, `SuccessCriteriaMet`, `FailureTarget`,
//! `Suspended`), the tracking finalizer, which pods count as active, terminating or failed,
//! `uncountedTerminatedPods` bookkeeping, the order in which active pods are removed, and the
//! status as written (Go's `omitempty` counters).

use super::super::pods::{is_deleting, is_ready, phase};
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, JobStatus, UncountedTerminatedPods};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;

/// The finalizer that keeps a finished pod until the Job has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";

pub const COMPLETE: &str = "Complete";
pub const FAILED: &str = "Failed";
pub const SUCCESS_CRITERIA_MET: &str = "SuccessCriteriaMet";
pub const FAILURE_TARGET: &str = "FailureTarget";
pub const SUSPENDED: &str = "Suspended";

pub fn spec(job: &Job) -> JobSpec {
    job.spec.clone().unwrap_or_default()
}

pub fn status_mut(job: &mut Job) -> &mut JobStatus {
    job.status.get_or_insert_with(Default::default)
}

pub fn conditions(job: &Job) -> &[JobCondition] {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or(&[])
}

pub fn new_condition(kind: &str, status: &str, reason: &str, message: &str) -> JobCondition {
    let now = Time(Timestamp::now());
    JobCondition {
        type_: kind.into(),
        status: status.into(),
        reason: Some(reason.to_string()).filter(|r| !r.is_empty()),
        message: Some(message.to_string()).filter(|m| !m.is_empty()),
        last_probe_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

/// The condition of this type with status True, if any.
pub fn true_condition<'a>(job: &'a Job, kind: &str) -> Option<&'a JobCondition> {
    conditions(job)
        .iter()
        .find(|c| c.type_ == kind && c.status == "True")
}

/// Finished = a `Complete` or `Failed` condition that is True (upstream's `IsJobFinished`).
pub fn is_finished(job: &Job) -> bool {
    conditions(job)
        .iter()
        .any(|c| (c.type_ == COMPLETE || c.type_ == FAILED) && c.status == "True")
}

/// Sets a condition (upstream's `ensureJobConditionStatus`): an existing one of that type is
/// replaced when status, reason or message differ; a missing one is added unless False.
/// Returns whether anything changed.
pub fn ensure_condition(
    job: &mut Job,
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
) -> bool {
    let list = status_mut(job).conditions.get_or_insert_with(Vec::new);
    if let Some(c) = list.iter_mut().find(|c| c.type_ == kind) {
        let same = c.status == status
            && c.reason.as_deref().unwrap_or("") == reason
            && c.message.as_deref().unwrap_or("") == message;
        if same {
            return false;
        }
        *c = new_condition(kind, status, reason, message);
        return true;
    }
    if status != "False" {
        list.push(new_condition(kind, status, reason, message));
        return true;
    }
    false
}

pub fn is_suspended(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.suspend) == Some(true)
}

pub fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

/// Failed pods only are replaced (not terminating ones): `podReplacementPolicy: Failed`, or
/// any pod failure policy (upstream's `onlyReplaceFailedPods`).
pub fn only_replace_failed_pods(job: &Job) -> bool {
    let s = job.spec.as_ref();
    s.and_then(|s| s.pod_replacement_policy.as_deref()) == Some("Failed")
        || s.is_some_and(|s| s.pod_failure_policy.is_some())
}

pub fn has_tracking_finalizer(pod: &Value) -> bool {
    pod.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|v| v.as_str() == Some(TRACKING_FINALIZER)))
}

pub fn uid(pod: &Value) -> &str {
    pod.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Not finished and not being deleted (`controller.FilterActivePods`).
pub fn is_active(pod: &Value) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && !is_deleting(pod)
}

/// Being deleted but not finished (`controller.CountTerminatingPods`).
pub fn is_terminating(pod: &Value) -> bool {
    is_deleting(pod) && !matches!(phase(pod), "Succeeded" | "Failed")
}

/// A failure for the Job: phase Failed, or (unless only failed pods are replaced) deleted
/// before it succeeded (upstream's `isPodFailed`).
pub fn is_pod_failed(pod: &Value, job: &Job) -> bool {
    if phase(pod) == "Failed" {
        return true;
    }
    if only_replace_failed_pods(job) {
        return false;
    }
    is_deleting(pod) && phase(pod) != "Succeeded"
}

/// Pods with `restartPolicy: OnFailure` restarted, in total, `backoffLimit` times or more
/// (any restart when the limit is 0) (upstream's `pastBackoffLimitOnFailure`).
pub fn past_backoff_limit_on_failure(job: &Job, pods: &[Arc<Value>]) -> bool {
    let s = spec(job);
    let restart = s
        .template
        .spec
        .as_ref()
        .and_then(|p| p.restart_policy.as_deref());
    if restart != Some("OnFailure") {
        return false;
    }
    let mut restarts = 0i64;
    for p in pods {
        if !matches!(phase(p), "Running" | "Pending") {
            continue;
        }
        for list in ["initContainerStatuses", "containerStatuses"] {
            for c in p
                .pointer(&format!("/status/{list}"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                restarts += c.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
            }
        }
    }
    let limit = i64::from(s.backoff_limit.unwrap_or(6));
    if limit == 0 {
        return restarts > 0;
    }
    restarts >= limit
}

/// Drops from `uncountedTerminatedPods` the pods whose finalizer is gone and adds them to the
/// counters (upstream's `cleanUncountedPodsWithoutFinalizers`). Returns whether it changed.
pub fn clean_uncounted(status: &mut JobStatus, with_finalizer: &HashSet<String>) -> bool {
    let uncounted = status
        .uncounted_terminated_pods
        .get_or_insert_with(UncountedTerminatedPods::default);
    let mut changed = false;
    let mut moved = |list: &mut Option<Vec<String>>| -> i32 {
        let Some(uids) = list.as_mut() else {
            return 0;
        };
        let before = uids.len();
        uids.retain(|u| with_finalizer.contains(u));
        let gone = before - uids.len();
        if uids.is_empty() {
            *list = None;
        }
        if gone > 0 {
            changed = true;
        }
        i32::try_from(gone).unwrap_or(i32::MAX)
    };
    let succeeded = moved(&mut uncounted.succeeded);
    let failed = moved(&mut uncounted.failed);
    if succeeded > 0 {
        status.succeeded = Some(status.succeeded.unwrap_or(0) + succeeded);
    }
    if failed > 0 {
        status.failed = Some(status.failed.unwrap_or(0) + failed);
    }
    changed
}

/// Sorts pods so the ones to remove first come first (`controller.ActivePods`): unscheduled
/// before scheduled, Pending before Unknown before Running, not ready before ready, ready for
/// less time first, more restarts first, newer first.
pub fn sort_active_pods(pods: &mut [Arc<Value>]) {
    pods.sort_by(|a, b| compare_for_removal(a, b));
}

fn compare_for_removal(a: &Value, b: &Value) -> Ordering {
    let node = |p: &Value| {
        p.pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty())
    };
    let phase_rank = |p: &Value| match phase(p) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    };
    let ready_since = |p: &Value| {
        p.pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
            })
            .and_then(|c| c.get("lastTransitionTime"))
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<Timestamp>().ok())
    };
    let restarts = |p: &Value| {
        p.pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    };
    let created = |p: &Value| {
        p.pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<Timestamp>().ok())
    };
    node(a)
        .cmp(&node(b))
        .then(phase_rank(a).cmp(&phase_rank(b)))
        .then(is_ready(a).cmp(&is_ready(b)))
        .then_with(|| {
            if is_ready(a) && is_ready(b) {
                // Ready more recently (less time) first.
                ready_since(b).cmp(&ready_since(a))
            } else {
                Ordering::Equal
            }
        })
        .then(restarts(b).cmp(&restarts(a)))
        .then(created(b).cmp(&created(a)))
}

/// The status as Kubernetes writes it: `active`, `succeeded`, `failed` and `completedIndexes`
/// are omitted when zero/empty; `ready`, `terminating` and `uncountedTerminatedPods` stay.
pub fn normalized(mut status: JobStatus) -> JobStatus {
    for counter in [
        &mut status.active,
        &mut status.succeeded,
        &mut status.failed,
    ] {
        if *counter == Some(0) {
            *counter = None;
        }
    }
    if status.completed_indexes.as_deref() == Some("") {
        status.completed_indexes = None;
    }
    status
        .uncounted_terminated_pods
        .get_or_insert_with(UncountedTerminatedPods::default);
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(v: Value) -> Job {
        serde_json::from_value(v).expect("job")
    }

    #[test]
    fn conditions_are_ensured() {
        let mut j = job(json!({"metadata": {"name": "j"}, "spec": {"template": {}}}));
        assert!(!ensure_condition(
            &mut j,
            SUSPENDED,
            "False",
            "JobResumed",
            "Job resumed"
        ));
        assert!(ensure_condition(
            &mut j,
            SUSPENDED,
            "True",
            "JobSuspended",
            "Job suspended"
        ));
        assert!(!ensure_condition(
            &mut j,
            SUSPENDED,
            "True",
            "JobSuspended",
            "Job suspended"
        ));
        assert!(ensure_condition(
            &mut j,
            SUSPENDED,
            "False",
            "JobResumed",
            "Job resumed"
        ));
        assert_eq!(conditions(&j).len(), 1);
        assert!(!is_finished(&j));
        assert!(ensure_condition(
            &mut j,
            COMPLETE,
            "True",
            "CompletionsReached",
            "m"
        ));
        assert!(is_finished(&j));
        assert!(true_condition(&j, COMPLETE).is_some());
    }

    #[test]
    fn pod_classes() {
        let j = job(json!({"metadata": {"name": "j"}, "spec": {"template": {}}}));
        let running = json!({"status": {"phase": "Running"}});
        let deleting = json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"phase": "Running"}});
        let failed = json!({"status": {"phase": "Failed"}});
        assert!(is_active(&running) && !is_pod_failed(&running, &j));
        assert!(!is_active(&deleting) && is_terminating(&deleting));
        assert!(is_pod_failed(&deleting, &j));
        assert!(is_pod_failed(&failed, &j) && !is_terminating(&failed));
        let only_failed = job(json!({"metadata": {"name": "j"},
            "spec": {"podReplacementPolicy": "Failed", "template": {}}}));
        assert!(!is_pod_failed(&deleting, &only_failed));
    }

    #[test]
    fn uncounted_cleanup() {
        let mut st: JobStatus = serde_json::from_value(json!({"succeeded": 2,
            "uncountedTerminatedPods": {"succeeded": ["a", "b"], "failed": ["c"]}}))
        .expect("status");
        let with: HashSet<String> = ["b".to_string()].into_iter().collect();
        assert!(clean_uncounted(&mut st, &with));
        assert_eq!(st.succeeded, Some(3));
        assert_eq!(st.failed, Some(1));
        let u = st.uncounted_terminated_pods.clone().unwrap_or_default();
        assert_eq!(u.succeeded, Some(vec!["b".to_string()]));
        assert_eq!(u.failed, None);
        assert!(!clean_uncounted(&mut st, &with));
        let v = serde_json::to_value(normalized(JobStatus {
            active: Some(0),
            ready: Some(0),
            ..Default::default()
        }))
        .expect("json");
        assert_eq!(v, json!({"ready": 0, "uncountedTerminatedPods": {}}));
    }

    #[test]
    fn removal_order() {
        let mut pods: Vec<Arc<Value>> = vec![
            Arc::new(
                json!({"metadata": {"name": "running"}, "spec": {"nodeName": "n"}, "status": {"phase": "Running"}}),
            ),
            Arc::new(
                json!({"metadata": {"name": "unscheduled"}, "spec": {}, "status": {"phase": "Pending"}}),
            ),
            Arc::new(
                json!({"metadata": {"name": "pending"}, "spec": {"nodeName": "n"}, "status": {"phase": "Pending"}}),
            ),
        ];
        sort_active_pods(&mut pods);
        let names: Vec<&str> = pods
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(names, vec!["unscheduled", "pending", "running"]);
    }
}
