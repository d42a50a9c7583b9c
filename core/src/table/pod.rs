//! The pod table: Ready, the aggregate Status (`printPod`'s reason logic), Restarts with the
//! time of the last restart, and the wide IP / node / nominated node / readiness gate columns.

use super::{
    at, col, condition_true, int, list, name, object, opt_bool, parse_time, since, string, wide,
    Col, AGE_COL, NAME_COL,
};
use jiff::Timestamp;
use serde_json::{json, Value};

pub(super) const COLUMNS: &[Col] = &[
    NAME_COL,
    col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    col("Status", "string", "The aggregate status of the containers in this pod."),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE_COL,
    wide("IP", "string", "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."),
    wide("Node", "string", "NodeName indicates in which node this pod is scheduled."),
    wide("Nominated Node", "string", "nominatedNodeName is set only when this pod preempts other pods on the node."),
    wide("Readiness Gates", "string", "If specified, all readiness gates will be evaluated for pod readiness."),
];

/// `conditions` of the row: finished pods are marked `Completed`.
pub(super) fn row_conditions(pod: &Value) -> Option<Value> {
    match string(pod, &["status", "phase"]) {
        "Succeeded" => Some(
            json!([{"type":"Completed","status":"True","reason":"Succeeded","message":"The pod has completed successfully."}]),
        ),
        "Failed" => Some(
            json!([{"type":"Completed","status":"True","reason":"Failed","message":"The pod failed."}]),
        ),
        _ => None,
    }
}

/// The latest of `current` and a container status's `lastState.terminated.finishedAt`.
fn later_restart(current: Option<Timestamp>, status: &Value) -> Option<Timestamp> {
    if object(status, &["lastState", "terminated"]).is_none() {
        return current;
    }
    match (
        current,
        parse_time(at(status, &["lastState", "terminated", "finishedAt"])),
    ) {
        (Some(c), Some(f)) => Some(c.max(f)),
        (c, f) => c.or(f),
    }
}

/// `Signal:N` / `ExitCode:N` / the reason of a terminated state.
fn terminated_reason(t: &Value) -> String {
    let reason = string(t, &["reason"]);
    if !reason.is_empty() {
        return reason.to_string();
    }
    let signal = int(t, &["signal"]);
    if signal != 0 {
        format!("Signal:{signal}")
    } else {
        format!("ExitCode:{}", int(t, &["exitCode"]))
    }
}

pub(super) fn cells(pod: &Value, now: Timestamp) -> Vec<Value> {
    let containers = list(pod, &["spec", "containers"]);
    let init_containers = list(pod, &["spec", "initContainers"]);
    let conditions = list(pod, &["status", "conditions"]);
    let phase = string(pod, &["status", "phase"]);

    let mut reason = phase.to_string();
    let status_reason = string(pod, &["status", "reason"]);
    if !status_reason.is_empty() {
        reason = status_reason.to_string();
    }
    if conditions.iter().any(|c| {
        string(c, &["type"]) == "PodScheduled" && string(c, &["reason"]) == "SchedulingGated"
    }) {
        reason = "SchedulingGated".into();
    }

    // Sidecars (init containers with restartPolicy Always) count as containers.
    let sidecars: Vec<&str> = init_containers
        .iter()
        .filter(|c| string(c, &["restartPolicy"]) == "Always")
        .map(|c| string(c, &["name"]))
        .collect();
    let total = containers.len() + sidecars.len();
    let mut ready = 0usize;
    let mut restarts = 0i64;
    let mut sidecar_restarts = 0i64;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_sidecar_restart: Option<Timestamp> = None;

    let mut initializing = false;
    for (i, cs) in list(pod, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        restarts += int(cs, &["restartCount"]);
        last_restart = later_restart(last_restart, cs);
        let is_sidecar = sidecars.contains(&string(cs, &["name"]));
        if is_sidecar {
            sidecar_restarts += int(cs, &["restartCount"]);
            last_sidecar_restart = later_restart(last_sidecar_restart, cs);
        }
        let terminated = at(cs, &["state", "terminated"]);
        if terminated.is_some_and(|t| int(t, &["exitCode"]) == 0) {
            continue;
        }
        if is_sidecar && opt_bool(cs, &["started"]) == Some(true) {
            if opt_bool(cs, &["ready"]) == Some(true) {
                ready += 1;
            }
            continue;
        }
        let waiting_reason = string(cs, &["state", "waiting", "reason"]);
        reason = if let Some(t) = terminated {
            format!("Init:{}", terminated_reason(t))
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{}/{}", i, init_containers.len())
        };
        initializing = true;
        break;
    }

    if !initializing || condition_true(conditions, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for cs in list(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += int(cs, &["restartCount"]);
            last_restart = later_restart(last_restart, cs);
            let waiting_reason = string(cs, &["state", "waiting", "reason"]);
            let terminated = at(cs, &["state", "terminated"]);
            if object(cs, &["state", "waiting"]).is_some() && !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                reason = terminated_reason(t);
            } else if opt_bool(cs, &["ready"]) == Some(true)
                && object(cs, &["state", "running"]).is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        // A completed container beside a running one: the pod is still running.
        if reason == "Completed" && has_running {
            reason = if conditions
                .iter()
                .any(|c| string(c, &["type"]) == "Ready" && string(c, &["status"]) == "True")
            {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    let deleting = at(pod, &["metadata", "deletionTimestamp"]).is_some();
    if deleting && status_reason == "NodeLost" {
        reason = "Unknown".into();
    } else if deleting && phase != "Failed" && phase != "Succeeded" {
        reason = "Terminating".into();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };

    // status.podIP is authoritative over podIPs[0] (as the v1 -> internal conversion does).
    let mut ip = string(pod, &["status", "podIP"]);
    if ip.is_empty() {
        ip = list(pod, &["status", "podIPs"])
            .first()
            .map_or("", |p| string(p, &["ip"]));
    }
    let or_none = |s: &str| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s.to_string()
        }
    };
    let gates = list(pod, &["spec", "readinessGates"]);
    let gates_cell = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_count = gates
            .iter()
            .filter(|g| {
                let ty = string(g, &["conditionType"]);
                conditions
                    .iter()
                    .find(|c| string(c, &["type"]) == ty)
                    .is_some_and(|c| string(c, &["status"]) == "True")
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };

    vec![
        name(pod).into(),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts_cell.into(),
        super::age(pod, now),
        or_none(ip).into(),
        or_none(string(pod, &["spec", "nodeName"])).into(),
        or_none(string(pod, &["status", "nominatedNodeName"])).into(),
        gates_cell.into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ago, cells, column_names, now};
    use super::super::{row, IncludeObject};
    use crate::resources::find;
    use serde_json::{json, Value};

    /// The first five (non-wide) cells.
    fn short(pod: Value) -> Vec<Value> {
        cells("", "pods", pod)[..5].to_vec()
    }

    fn pod(n_containers: usize, status: Value) -> Value {
        let containers: Vec<Value> = (0..n_containers)
            .map(|i| json!({"name": format!("c{i}"), "image":"busybox"}))
            .collect();
        json!({"metadata":{"name":"p"},"spec":{"containers":containers},"status":status})
    }

    fn pod_with_init(init: Value, n_containers: usize, status: Value) -> Value {
        let mut p = pod(n_containers, status);
        p["spec"]["initContainers"] = init;
        p
    }

    #[test]
    fn columns() {
        let names: Vec<(String, i64)> = column_names("", "pods");
        let want = [
            ("Name", 0),
            ("Ready", 0),
            ("Status", 0),
            ("Restarts", 0),
            ("Age", 0),
            ("IP", 1),
            ("Node", 1),
            ("Nominated Node", 1),
            ("Readiness Gates", 1),
        ];
        assert_eq!(
            names,
            want.iter()
                .map(|(n, p)| (n.to_string(), *p))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn running_pod_full_row() {
        let p = json!({
            "metadata":{"name":"nginx","namespace":"default","creationTimestamp":ago(61 * 60)},
            "spec":{"nodeName":"node1","containers":[{"name":"a"},{"name":"b"}]},
            "status":{"phase":"Running","podIP":"10.244.0.5","podIPs":[{"ip":"10.244.0.5"}],
                "conditions":[{"type":"Ready","status":"True"}],
                "containerStatuses":[
                    {"name":"a","ready":true,"restartCount":1,"state":{"running":{"startedAt":ago(60)}},
                     "lastState":{"terminated":{"exitCode":1,"finishedAt":ago(5 * 60)}}},
                    {"name":"b","ready":true,"restartCount":0,"state":{"running":{}}}]}});
        assert_eq!(
            cells("", "pods", p),
            json!([
                "nginx",
                "2/2",
                "Running",
                "1 (5m ago)",
                "61m",
                "10.244.0.5",
                "node1",
                "<none>",
                "<none>"
            ])
            .as_array()
            .unwrap()
            .clone()
        );
    }

    #[test]
    fn upstream_status_cases() {
        // Name, ready count, restarts; a running container alone does not make the status.
        let p = pod(
            2,
            json!({"phase":"podPhase","containerStatuses":[
            {"ready":true,"restartCount":3,"state":{"running":{}}},{"restartCount":3}]}),
        );
        assert_eq!(
            short(p),
            json!(["p", "1/2", "podPhase", "6", "<unknown>"])
                .as_array()
                .unwrap()
                .clone()
        );
        // A waiting container's reason overrides the phase.
        let p = pod(
            2,
            json!({"phase":"podPhase","containerStatuses":[
            {"ready":true,"restartCount":3,"state":{"running":{}}},
            {"restartCount":3,"state":{"waiting":{"reason":"ContainerWaitingReason"}}}]}),
        );
        assert_eq!(short(p)[2], "ContainerWaitingReason");
        // The first container's reason wins (statuses are walked backwards).
        let p = pod(
            2,
            json!({"phase":"podPhase","containerStatuses":[
            {"restartCount":3,"state":{"waiting":{"reason":"ContainerWaitingReason"}}},
            {"restartCount":3,"state":{"terminated":{"reason":"ContainerTerminatedReason"}}}]}),
        );
        assert_eq!(
            short(p),
            json!(["p", "0/2", "ContainerWaitingReason", "6", "<unknown>"])
                .as_array()
                .unwrap()
                .clone()
        );
        // status.reason overrides the phase.
        let p = pod(
            2,
            json!({"phase":"podPhase","reason":"podReason","containerStatuses":[
            {"ready":true,"restartCount":3,"state":{"running":{}}},{"ready":true,"restartCount":3}]}),
        );
        assert_eq!(short(p)[1..3], [json!("1/2"), json!("podReason")]);
        // One completed, one running: NotReady without the Ready condition, Running with it.
        let status = json!({"phase":"Running","containerStatuses":[
            {"ready":true,"restartCount":3,"state":{"terminated":{"reason":"Completed","exitCode":0}}},
            {"ready":true,"restartCount":3,"state":{"running":{}}}]});
        assert_eq!(
            short(pod(2, status.clone()))[1..3],
            [json!("1/2"), json!("NotReady")]
        );
        let mut ready = status;
        ready["conditions"] = json!([{"type":"Ready","status":"True"}]);
        assert_eq!(short(pod(2, ready))[1..3], [json!("1/2"), json!("Running")]);
        // Scheduling gates.
        let p = pod(
            2,
            json!({"phase":"Pending","conditions":[{"type":"PodScheduled","status":"False","reason":"SchedulingGated"}]}),
        );
        assert_eq!(
            short(p),
            json!(["p", "0/2", "SchedulingGated", "0", "<unknown>"])
                .as_array()
                .unwrap()
                .clone()
        );
    }

    #[test]
    fn crash_loop_back_off() {
        let p = pod(
            1,
            json!({"phase":"Running","containerStatuses":[
            {"name":"c0","ready":false,"restartCount":5,
             "state":{"waiting":{"reason":"CrashLoopBackOff","message":"back-off 2m40s"}},
             "lastState":{"terminated":{"exitCode":1,"reason":"Error","finishedAt":ago(90)}}}]}),
        );
        assert_eq!(
            short(p)[1..4],
            [
                json!("0/1"),
                json!("CrashLoopBackOff"),
                json!("5 (90s ago)")
            ]
        );
    }

    #[test]
    fn container_creating_and_terminated_without_reason() {
        let p = pod(
            1,
            json!({"phase":"Pending","containerStatuses":[{"state":{"waiting":{"reason":"ContainerCreating"}}}]}),
        );
        assert_eq!(short(p)[2], "ContainerCreating");
        let p = pod(
            1,
            json!({"phase":"Running","containerStatuses":[{"state":{"terminated":{"exitCode":137,"signal":9}}}]}),
        );
        assert_eq!(short(p)[2], "Signal:9");
        let p = pod(
            1,
            json!({"phase":"Running","containerStatuses":[{"state":{"terminated":{"exitCode":1}}}]}),
        );
        assert_eq!(short(p)[2], "ExitCode:1");
        let p = pod(1, json!({"phase":"Pending"}));
        assert_eq!(short(p)[1..3], [json!("0/1"), json!("Pending")]);
    }

    #[test]
    fn init_containers() {
        // One init container running after restarts: Init:0/1, and its restarts count.
        let p = pod_with_init(
            json!([{"name":"i"}]),
            1,
            json!({"phase":"Pending",
            "initContainerStatuses":[{"name":"i","ready":false,"restartCount":3,"state":{"running":{}},
                "lastState":{"terminated":{"finishedAt":ago(10)}}}],
            "containerStatuses":[{"ready":false,"restartCount":0,"state":{"waiting":{}}}]}),
        );
        assert_eq!(
            short(p)[1..4],
            [json!("0/1"), json!("Init:0/1"), json!("3 (10s ago)")]
        );
        // Not started yet (PodInitializing is not a reason to show).
        let p = pod_with_init(
            json!([{"name":"i"}]),
            1,
            json!({"phase":"Pending",
            "initContainerStatuses":[{"name":"i","state":{"waiting":{"reason":"PodInitializing"}}}]}),
        );
        assert_eq!(short(p)[2], "Init:0/1");
        // The first finished, the second running: Init:1/2 with both restart counts.
        let p = pod_with_init(
            json!([{"name":"i1"},{"name":"i2"}]),
            1,
            json!({"phase":"Pending",
            "initContainerStatuses":[
                {"name":"i1","restartCount":2,"state":{"terminated":{"exitCode":0}},"lastState":{"terminated":{"finishedAt":ago(120)}}},
                {"name":"i2","restartCount":3,"state":{"running":{}},"lastState":{"terminated":{"finishedAt":ago(10)}}}],
            "containerStatuses":[{"state":{"waiting":{}}}]}),
        );
        assert_eq!(
            short(p)[1..4],
            [json!("0/1"), json!("Init:1/2"), json!("5 (10s ago)")]
        );
        // Init container crash looping / failing.
        let p = pod_with_init(
            json!([{"name":"i"}]),
            1,
            json!({"phase":"Pending",
            "initContainerStatuses":[{"name":"i","restartCount":4,"state":{"waiting":{"reason":"CrashLoopBackOff"}}}]}),
        );
        assert_eq!(short(p)[2..4], [json!("Init:CrashLoopBackOff"), json!("4")]);
        let p = pod_with_init(
            json!([{"name":"i"}]),
            1,
            json!({"phase":"Pending",
            "initContainerStatuses":[{"name":"i","state":{"terminated":{"exitCode":2,"reason":"Error"}}}]}),
        );
        assert_eq!(short(p)[2], "Init:Error");
        let p = pod_with_init(
            json!([{"name":"i"}]),
            1,
            json!({"phase":"Pending",
            "initContainerStatuses":[{"name":"i","state":{"terminated":{"exitCode":2}}}]}),
        );
        assert_eq!(short(p)[2], "Init:ExitCode:2");
        let p = pod_with_init(
            json!([{"name":"i"}]),
            1,
            json!({"phase":"Pending",
            "initContainerStatuses":[{"name":"i","state":{"terminated":{"exitCode":143,"signal":15}}}]}),
        );
        assert_eq!(short(p)[2], "Init:Signal:15");
        // Init done, the app container restarted: only its restarts count.
        let p = pod_with_init(
            json!([{"name":"i"}]),
            1,
            json!({"phase":"Running",
            "initContainerStatuses":[{"name":"i","restartCount":2,"state":{"terminated":{"exitCode":0}},
                "lastState":{"terminated":{"finishedAt":ago(120)}}}],
            "containerStatuses":[{"restartCount":4,"state":{"running":{}},"lastState":{"terminated":{"finishedAt":ago(20)}}}]}),
        );
        assert_eq!(
            short(p)[1..4],
            [json!("0/1"), json!("Running"), json!("4 (20s ago)")]
        );
    }

    #[test]
    fn sidecar_init_containers() {
        let init =
            json!([{"name":"s1","restartPolicy":"Always"},{"name":"s2","restartPolicy":"Always"}]);
        // The first sidecar running but not started.
        let p = pod_with_init(
            init.clone(),
            1,
            json!({"phase":"Pending",
            "initContainerStatuses":[
                {"name":"s1","restartCount":3,"started":false,"state":{"running":{}},"lastState":{"terminated":{"finishedAt":ago(10)}}},
                {"name":"s2","started":false,"state":{"waiting":{}}}],
            "containerStatuses":[{"state":{"waiting":{}}}],
            "conditions":[{"type":"Initialized","status":"False"}]}),
        );
        assert_eq!(
            short(p)[1..4],
            [json!("0/3"), json!("Init:0/2"), json!("3 (10s ago)")]
        );
        // The first started, the second not yet.
        let p = pod_with_init(
            init.clone(),
            1,
            json!({"phase":"Pending",
            "initContainerStatuses":[
                {"name":"s1","restartCount":3,"started":true,"state":{"running":{}},"lastState":{"terminated":{"finishedAt":ago(10)}}},
                {"name":"s2","started":false,"state":{"running":{}}}],
            "containerStatuses":[{"state":{"waiting":{}}}],
            "conditions":[{"type":"Initialized","status":"False"}]}),
        );
        assert_eq!(
            short(p)[1..4],
            [json!("0/3"), json!("Init:1/2"), json!("3 (10s ago)")]
        );
        // Both sidecars started and ready, the app running: sidecars count in Ready and Restarts.
        let p = pod_with_init(
            init,
            1,
            json!({"phase":"Running",
            "initContainerStatuses":[
                {"name":"s1","ready":true,"restartCount":3,"started":true,"state":{"running":{}},"lastState":{"terminated":{"finishedAt":ago(10)}}},
                {"name":"s2","ready":true,"started":true,"state":{"running":{}}}],
            "containerStatuses":[{"ready":true,"state":{"running":{}}}],
            "conditions":[{"type":"Initialized","status":"True"},{"type":"Ready","status":"True"}]}),
        );
        assert_eq!(
            short(p)[1..4],
            [json!("3/3"), json!("Running"), json!("3 (10s ago)")]
        );
    }

    #[test]
    fn completed_failed_and_row_conditions() {
        let r = find("", "v1", "pods").unwrap();
        let p = pod(
            1,
            json!({"phase":"Succeeded","containerStatuses":[{"state":{"terminated":{"reason":"Completed","exitCode":0}}}]}),
        );
        let rw = row(r, &p, IncludeObject::None, now());
        assert_eq!(
            rw["cells"].as_array().unwrap()[1..3],
            [json!("0/1"), json!("Completed")]
        );
        assert_eq!(
            rw["conditions"],
            json!([{"type":"Completed","status":"True","reason":"Succeeded","message":"The pod has completed successfully."}])
        );
        let p = pod(
            1,
            json!({"phase":"Failed","containerStatuses":[{"state":{"terminated":{"reason":"Error","exitCode":1}}}]}),
        );
        let rw = row(r, &p, IncludeObject::None, now());
        assert_eq!(rw["cells"][2], "Error");
        assert_eq!(rw["conditions"][0]["reason"], "Failed");
        let p = pod(1, json!({"phase":"Running"}));
        assert!(row(r, &p, IncludeObject::None, now())
            .get("conditions")
            .is_none());
    }

    #[test]
    fn terminating() {
        let mut p = pod(
            1,
            json!({"phase":"Running","containerStatuses":[{"state":{"running":{}}}]}),
        );
        p["metadata"]["deletionTimestamp"] = json!(ago(10));
        assert_eq!(short(p.clone())[2], "Terminating");
        let mut pending = pod(1, json!({"phase":"Pending"}));
        pending["metadata"]["deletionTimestamp"] = json!(ago(10));
        assert_eq!(short(pending)[2], "Terminating");
        // Finished pods keep their status while being deleted.
        let mut done = pod(
            1,
            json!({"phase":"Succeeded","containerStatuses":[{"state":{"terminated":{"reason":"Completed","exitCode":0}}}]}),
        );
        done["metadata"]["deletionTimestamp"] = json!(ago(10));
        assert_eq!(short(done)[2], "Completed");
        // Lost nodes show Unknown.
        p["status"]["reason"] = json!("NodeLost");
        assert_eq!(short(p)[2], "Unknown");
    }

    #[test]
    fn wide_columns() {
        let p = json!({"metadata":{"name":"p"},
            "spec":{"containers":[{"name":"c"}],"nodeName":"n1","readinessGates":[{"conditionType":"g1"},{"conditionType":"g2"}]},
            "status":{"phase":"Pending","podIPs":[{"ip":"fd00::5"}],"nominatedNodeName":"n2",
                "conditions":[{"type":"g1","status":"True"},{"type":"g2","status":"False"}]}});
        assert_eq!(
            cells("", "pods", p)[5..],
            [json!("fd00::5"), json!("n1"), json!("n2"), json!("1/2")]
        );
        let p = pod(1, json!({}));
        assert_eq!(
            cells("", "pods", p)[5..],
            [
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }
}
