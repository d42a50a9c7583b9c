//! End-to-end: the Job, CronJob and TTL-after-finished controllers running real pods on the
//! server's node agent, driven by the real kubectl (root required, as in CI).

mod common;

use common::{json, poll, Cluster};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

fn get_json(c: &Cluster, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    json(&c.ok(&all))
}

fn job_pods(c: &Cluster, job: &str) -> Vec<Value> {
    let sel = format!("job-name={job}");
    get_json(c, &["get", "pods", "-l", &sel])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

/// `reason: message` of the Events about an object, oldest first.
fn events_of(c: &Cluster, kind: &str, name: &str) -> Vec<String> {
    let sel = format!("involvedObject.kind={kind},involvedObject.name={name}");
    let list = get_json(c, &["get", "events", "--field-selector", &sel]);
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{}: {}",
                e["reason"].as_str().unwrap_or(""),
                e["message"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// The resourceVersion of the pod collection now (a watch from it replays what follows).
fn pods_revision(c: &Cluster) -> String {
    // `kubectl get -o json` wraps lists in a client-side List without one: ask the API.
    let list = json(&c.ok(&["get", "--raw", "/api/v1/namespaces/default/pods"]));
    let rv = list["metadata"]["resourceVersion"].as_str().unwrap_or("");
    assert!(!rv.is_empty(), "{list}");
    rv.to_string()
}

/// Replays every change to a Job's pods since `rv` and returns the most pods that were active
/// (not finished, not being deleted) at the same time, and how many pods there were.
fn max_active_since(c: &Cluster, job: &str, rv: &str) -> (usize, usize) {
    let path = format!(
        "/api/v1/namespaces/default/pods?watch=1&resourceVersion={rv}&timeoutSeconds=2&labelSelector=job-name%3D{job}"
    );
    let mut active: HashMap<String, bool> = HashMap::new();
    let mut max = 0;
    for line in c.watch_lines(&path, 10) {
        let ev = json(&line);
        let pod = &ev["object"];
        let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
        if ev["type"] == "DELETED" {
            active.insert(name, false);
        } else {
            let finished = matches!(
                pod["status"]["phase"].as_str(),
                Some("Succeeded" | "Failed")
            );
            let deleting = !pod["metadata"]["deletionTimestamp"].is_null();
            active.insert(name, !finished && !deleting);
        }
        max = max.max(active.values().filter(|a| **a).count());
    }
    (max, active.len())
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SSZ` (days from the civil date, as in
/// Howard Hinnant's `days_from_civil`).
fn unix_seconds(s: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().expect("number");
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (hh, mm, ss) = (n(11..13), n(14..16), n(17..19));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hh * 3600 + mm * 60 + ss
}

#[test]
fn epoch_seconds_of_timestamps() {
    assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), 0);
    assert_eq!(unix_seconds("2024-05-01T10:01:00Z"), 28_575_961 * 60);
}

#[test]
fn jobs_run_completions_in_parallel_and_indexed() {
    let c = Cluster::start_with_agent(&[]);
    let rv = pods_revision(&c);
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: par}
spec:
  completions: 5
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: work
        image: busybox
        command: ["sh", "-c", "sleep 1"]
---
apiVersion: batch/v1
kind: Job
metadata: {name: idx}
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: work
        image: busybox
        command: ["sh", "-c", "echo index=$JOB_COMPLETION_INDEX host=$(hostname)"]
"#,
    );
    // The API server generated the selector and the pod template labels.
    let par = get_json(&c, &["get", "job", "par"]);
    let uid = par["metadata"]["uid"].as_str().expect("uid").to_string();
    assert_eq!(
        par["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        uid.as_str()
    );
    c.ok(&[
        "wait",
        "--for=condition=complete",
        "job/par",
        "job/idx",
        "--timeout=120s",
    ]);

    // Never more than `parallelism` pods at once, and all 5 completions from 5 pods.
    let (max_active, pods) = max_active_since(&c, "par", &rv);
    assert_eq!(max_active, 2, "most pods active at once");
    assert_eq!(pods, 5);
    let par = get_json(&c, &["get", "job", "par"]);
    let st = &par["status"];
    assert_eq!(st["succeeded"], 5, "{st}");
    assert!(st["failed"].is_null() && st["active"].is_null(), "{st}");
    assert_eq!(st["ready"], 0);
    assert_eq!(st["terminating"], 0);
    assert_eq!(st["uncountedTerminatedPods"], serde_json::json!({}));
    assert!(st["startTime"].is_string() && st["completionTime"].is_string());
    for kind in ["SuccessCriteriaMet", "Complete"] {
        let cond = condition(&par, kind).unwrap_or_else(|| panic!("{kind}: {st}"));
        assert_eq!(cond["status"], "True");
        assert_eq!(cond["reason"], "CompletionsReached");
        assert_eq!(cond["message"], "Reached expected number of succeeded pods");
    }
    for pod in job_pods(&c, "par") {
        let meta = &pod["metadata"];
        assert_eq!(
            meta["labels"]["batch.kubernetes.io/controller-uid"],
            uid.as_str()
        );
        assert_eq!(meta["labels"]["controller-uid"], uid.as_str());
        assert_eq!(meta["labels"]["batch.kubernetes.io/job-name"], "par");
        assert_eq!(meta["ownerReferences"][0]["kind"], "Job");
        assert_eq!(meta["ownerReferences"][0]["controller"], true);
        // Counted, so the tracking finalizer is gone.
        assert!(
            meta["finalizers"]
                .as_array()
                .is_none_or(|f| f.iter().all(|f| f != "batch.kubernetes.io/job-tracking")),
            "{meta}"
        );
        assert_eq!(pod["status"]["phase"], "Succeeded");
    }
    let events = events_of(&c, "Job", "par");
    assert_eq!(
        events
            .iter()
            .filter(|e| e.starts_with("SuccessfulCreate: Created pod: par-"))
            .count(),
        5,
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e == "Completed: Job completed"),
        "{events:?}"
    );
    let table = c.ok(&["get", "job", "par"]);
    assert!(
        table.contains("Complete") && table.contains("5/5"),
        "{table}"
    );

    // Indexed: one pod per index, each told its index.
    let idx = get_json(&c, &["get", "job", "idx"]);
    assert_eq!(
        idx["status"]["completedIndexes"], "0-2",
        "{}",
        idx["status"]
    );
    assert_eq!(idx["status"]["succeeded"], 3);
    let pods = job_pods(&c, "idx");
    assert_eq!(pods.len(), 3);
    let mut seen = Vec::new();
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().expect("name");
        let ix = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
            .as_str()
            .expect("index annotation")
            .to_string();
        assert_eq!(
            pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"],
            ix.as_str()
        );
        assert!(name.starts_with(&format!("idx-{ix}-")), "{name}");
        assert_eq!(pod["spec"]["hostname"], format!("idx-{ix}"));
        let logs = c.ok(&["logs", name]);
        // The container's hostname is spec.hostname (`<job>-<index>`), not the pod name.
        assert_eq!(logs.trim(), format!("index={ix} host=idx-{ix}"));
        seen.push(ix);
    }
    seen.sort();
    assert_eq!(seen, ["0", "1", "2"]);
}

#[test]
fn jobs_fail_after_backoff_limit_and_deadline_and_expire_after_ttl() {
    let c = Cluster::start_with_agent(&["--job-pod-failure-backoff=1s"]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: fails}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: work
        image: busybox
        command: ["sh", "-c", "exit 3"]
---
apiVersion: batch/v1
kind: Job
metadata: {name: slow}
spec:
  activeDeadlineSeconds: 2
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: work
        image: busybox
        command: ["sleep", "3600"]
---
apiVersion: batch/v1
kind: Job
metadata: {name: brief}
spec:
  ttlSecondsAfterFinished: 1
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: work
        image: busybox
        command: ["true"]
"#,
    );

    // backoffLimit 1: the first failure is retried (after the back-off), the second fails the Job.
    c.ok(&[
        "wait",
        "--for=condition=failed",
        "job/fails",
        "--timeout=120s",
    ]);
    let fails = get_json(&c, &["get", "job", "fails"]);
    let st = &fails["status"];
    assert_eq!(st["failed"], 2, "{st}");
    assert!(st["succeeded"].is_null(), "{st}");
    for kind in ["FailureTarget", "Failed"] {
        let cond = condition(&fails, kind).unwrap_or_else(|| panic!("{kind}: {st}"));
        assert_eq!(cond["reason"], "BackoffLimitExceeded");
        assert_eq!(
            cond["message"],
            "Job has reached the specified backoff limit"
        );
    }
    assert!(condition(&fails, "Complete").is_none());
    assert!(st["completionTime"].is_null());
    let pods = job_pods(&c, "fails");
    assert_eq!(pods.len(), 2);
    assert!(pods.iter().all(|p| p["status"]["phase"] == "Failed"));
    let events = events_of(&c, "Job", "fails");
    assert!(
        events
            .iter()
            .any(|e| e == "BackoffLimitExceeded: Job has reached the specified backoff limit"),
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.starts_with("SuccessfulCreate:"))
            .count(),
        2,
        "{events:?}"
    );

    // activeDeadlineSeconds: the running pod is deleted and the Job fails.
    c.ok(&[
        "wait",
        "--for=condition=failed",
        "job/slow",
        "--timeout=120s",
    ]);
    let slow = get_json(&c, &["get", "job", "slow"]);
    let failed = condition(&slow, "Failed").expect("Failed");
    assert_eq!(failed["reason"], "DeadlineExceeded");
    assert_eq!(
        failed["message"],
        "Job was active longer than specified deadline"
    );
    assert_eq!(slow["status"]["failed"], 1);
    assert_eq!(slow["status"]["terminating"], 0);
    poll("the slow job's pod gone", WAIT, || {
        job_pods(&c, "slow").is_empty().then_some(())
    });
    let events = events_of(&c, "Job", "slow");
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("SuccessfulDelete: Deleted pod: slow-")),
        "{events:?}"
    );

    // ttlSecondsAfterFinished: the finished Job and its pod are deleted.
    poll("the brief job deleted after its TTL", WAIT, || {
        let out = c.kubectl(&["get", "job", "brief"]);
        (!out.status.success()).then_some(())
    });
    poll("the brief job's pod deleted", WAIT, || {
        job_pods(&c, "brief").is_empty().then_some(())
    });
}

#[test]
fn cronjob_runs_on_schedule_and_keeps_history() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "* * * * *"
  successfulJobsHistoryLimit: 1
  jobTemplate:
    metadata:
      labels: {app: tick}
    spec:
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 1
          containers:
          - name: work
            image: busybox
            command: ["sh", "-c", "echo tick"]
"#,
    );
    // A manual run is a plain create of a Job owned by the CronJob.
    c.ok(&["create", "job", "manual", "--from=cronjob/tick"]);
    let manual = get_json(&c, &["get", "job", "manual"]);
    assert_eq!(manual["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    c.ok(&[
        "wait",
        "--for=condition=complete",
        "job/manual",
        "--timeout=120s",
    ]);

    // The first scheduled run (at most a minute away).
    let scheduled = poll("the first scheduled job", WAIT, || {
        let list = get_json(&c, &["get", "jobs", "-l", "app=tick"]);
        list["items"].as_array()?.iter().find_map(|j| {
            let name = j["metadata"]["name"].as_str()?;
            (name != "manual").then(|| name.to_string())
        })
    });
    let job = get_json(&c, &["get", "job", &scheduled]);
    let stamp = job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
        .as_str()
        .expect("scheduled timestamp")
        .to_string();
    // Named after the scheduled minute (since the epoch), stamped with it (UTC, no timeZone).
    assert!(stamp.ends_with(":00Z"), "{stamp}");
    assert_eq!(scheduled, format!("tick-{}", unix_seconds(&stamp) / 60));
    assert_eq!(job["metadata"]["ownerReferences"][0]["name"], "tick");
    c.ok(&[
        "wait",
        "--for=condition=complete",
        &format!("job/{scheduled}"),
        "--timeout=120s",
    ]);

    // Status follows; with a history of 1 the older successful Job (the manual one) goes.
    let cj = poll("the CronJob status after the run", WAIT, || {
        let cj = get_json(&c, &["get", "cronjob", "tick"]);
        let st = &cj["status"];
        let done = st["lastSuccessfulTime"].is_string() && st["active"].is_null();
        done.then_some(cj)
    });
    let last = cj["status"]["lastScheduleTime"].as_str().unwrap_or("");
    assert!(last >= stamp.as_str(), "{last} before {stamp}");
    poll("the manual job removed by the history limit", WAIT, || {
        let out = c.kubectl(&["get", "job", "manual"]);
        (!out.status.success()).then_some(())
    });
    let jobs = get_json(&c, &["get", "jobs", "-l", "app=tick"]);
    let names: Vec<&str> = jobs["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|j| j["metadata"]["name"].as_str())
        .collect();
    assert!(
        !names.is_empty() && names.iter().all(|n| n.starts_with("tick-")),
        "{names:?}"
    );
    let events = events_of(&c, "CronJob", "tick");
    for want in [
        format!("SuccessfulCreate: Created job {scheduled}"),
        "SuccessfulDelete: Deleted job manual".to_string(),
    ] {
        assert!(events.contains(&want), "{want} in {events:?}");
    }
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("SawCompletedJob: Saw completed job: tick-")),
        "{events:?}"
    );
    let table = c.ok(&["get", "cronjob", "tick"]);
    assert!(table.contains("* * * * *"), "{table}");
}
