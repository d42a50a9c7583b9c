//! Pod status as Kubernetes reports it, computed from what the worker observed: container
//! states (waiting/running/terminated with exit codes and reasons), restart counts, last
//! states, the pod phase and the PodScheduled/Initialized/ContainersReady/Ready conditions.
//! Conditions the kubelet does not own (set by others, e.g. readiness gates) are kept, as
//! kubelet's status manager keeps them.

use serde_json::{json, Value};

/// One container state.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: String,
    },
    Terminated {
        exit_code: i64,
        signal: Option<i64>,
        reason: String,
        message: Option<String>,
        started_at: String,
        finished_at: String,
        container_id: String,
    },
}

impl State {
    pub fn to_json(&self) -> Value {
        match self {
            State::Waiting { reason, message } => {
                let mut w = json!({"reason": reason});
                if let Some(m) = message {
                    w["message"] = json!(m);
                }
                json!({"waiting": w})
            }
            State::Running { started_at } => json!({"running": {"startedAt": started_at}}),
            State::Terminated {
                exit_code,
                signal,
                reason,
                message,
                started_at,
                finished_at,
                container_id,
            } => {
                let mut t = json!({"exitCode": exit_code, "reason": reason, "startedAt": started_at, "finishedAt": finished_at, "containerID": container_id});
                if let Some(s) = signal {
                    t["signal"] = json!(s);
                }
                if let Some(m) = message {
                    t["message"] = json!(m);
                }
                json!({"terminated": t})
            }
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self, State::Running { .. })
    }
}

/// What the worker knows about one container.
#[derive(Debug, Clone)]
pub struct ContainerView {
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub container_id: String,
    pub state: State,
    pub last_state: Option<State>,
    pub restart_count: u32,
    pub ready: bool,
    /// Running and past its startup probe (if any).
    pub started: bool,
}

impl ContainerView {
    fn to_json(&self, init: bool) -> Value {
        let mut v = json!({
            "name": self.name,
            "state": self.state.to_json(),
            "lastState": self.last_state.as_ref().map(State::to_json).unwrap_or_else(|| json!({})),
            "ready": self.ready,
            "restartCount": self.restart_count,
            "image": self.image,
            "imageID": self.image_id,
        });
        if !self.container_id.is_empty() {
            v["containerID"] = json!(self.container_id);
        }
        if !init || self.state.is_running() {
            v["started"] = json!(self.started);
        }
        v
    }
}

fn condition(
    t: &str,
    ok: bool,
    reason: Option<&str>,
    previous: Option<&Value>,
    now: &str,
) -> Value {
    let status = if ok { "True" } else { "False" };
    let prev = previous.and_then(Value::as_array).and_then(|a| {
        a.iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(t))
    });
    let transition = prev
        .filter(|c| c.get("status").and_then(Value::as_str) == Some(status))
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(now));
    let mut c = json!({"type": t, "status": status, "lastProbeTime": null, "lastTransitionTime": transition});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    c
}

/// Everything a status is computed from.
pub struct StatusInput<'a> {
    pub pod: &'a Value,
    pub phase: &'a str,
    pub init: &'a [ContainerView],
    pub containers: &'a [ContainerView],
    pub pod_ip: Option<String>,
    pub host_ip: Option<String>,
    pub start_time: Option<String>,
    pub initialized: bool,
    pub reason: Option<String>,
    pub message: Option<String>,
    /// Conditions to add (or replace) besides the kubelet's own, e.g. `DisruptionTarget`.
    pub extra_conditions: Vec<Value>,
    pub now: &'a str,
}

/// Conditions the kubelet computes itself (`PodConditionsByKubelet`).
const KUBELET_CONDITIONS: [&str; 5] = [
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

/// The `DisruptionTarget` condition of a pod the kubelet terminates (reason
/// `TerminationByKubelet`), keeping its transition time when it was already True.
pub fn disruption_target(message: &str, pod: &Value, now: &str) -> Value {
    let mut c = condition(
        "DisruptionTarget",
        true,
        Some("TerminationByKubelet"),
        pod.pointer("/status/conditions"),
        now,
    );
    c["message"] = json!(message);
    c
}

/// The pod's `status`.
pub fn pod_status(i: &StatusInput) -> Value {
    let previous = i.pod.pointer("/status/conditions");
    let containers_ready = !i.containers.is_empty() && i.containers.iter().all(|c| c.ready);
    let terminal = matches!(i.phase, "Succeeded" | "Failed");
    let init_reason = (!i.initialized).then_some("ContainersNotInitialized");
    let ready_reason = if terminal {
        Some("PodCompleted")
    } else if !containers_ready {
        Some("ContainersNotReady")
    } else {
        None
    };
    let mut conditions = vec![
        condition(
            "PodReadyToStartContainers",
            i.pod_ip.is_some() || !terminal,
            None,
            previous,
            i.now,
        ),
        condition(
            "Initialized",
            i.initialized,
            if terminal && i.initialized {
                Some("PodCompleted")
            } else {
                init_reason
            },
            previous,
            i.now,
        ),
        condition(
            "Ready",
            containers_ready && !terminal,
            ready_reason,
            previous,
            i.now,
        ),
        condition(
            "ContainersReady",
            containers_ready && !terminal,
            ready_reason,
            previous,
            i.now,
        ),
        condition("PodScheduled", true, None, previous, i.now),
    ];
    let type_of = |c: &Value| {
        c.get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let extra_types: Vec<String> = i.extra_conditions.iter().map(type_of).collect();
    conditions.extend(
        previous
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|c| {
                let t = type_of(c);
                !KUBELET_CONDITIONS.contains(&t.as_str()) && !extra_types.contains(&t)
            })
            .cloned(),
    );
    conditions.extend(i.extra_conditions.iter().cloned());
    let mut s = json!({
        "phase": i.phase,
        "conditions": conditions,
        "qosClass": i.pod.pointer("/status/qosClass").cloned().unwrap_or_else(|| json!(crate::oci::qos_class(i.pod))),
    });
    if let Some(ip) = &i.host_ip {
        s["hostIP"] = json!(ip);
        s["hostIPs"] = json!([{"ip": ip}]);
    }
    if let Some(ip) = &i.pod_ip {
        s["podIP"] = json!(ip);
        s["podIPs"] = json!([{"ip": ip}]);
    }
    if let Some(t) = &i.start_time {
        s["startTime"] = json!(t);
    }
    if !i.init.is_empty() {
        s["initContainerStatuses"] = i.init.iter().map(|c| c.to_json(true)).collect();
    }
    s["containerStatuses"] = i.containers.iter().map(|c| c.to_json(false)).collect();
    if let Some(r) = &i.reason {
        s["reason"] = json!(r);
    }
    if let Some(m) = &i.message {
        s["message"] = json!(m);
    }
    s
}

/// Two statuses equal but for timestamps that only move with real changes.
pub fn same(a: &Value, b: &Value) -> bool {
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(pod: &'a Value, extra: Vec<Value>) -> StatusInput<'a> {
        StatusInput {
            pod,
            phase: "Failed",
            init: &[],
            containers: &[],
            pod_ip: None,
            host_ip: None,
            start_time: None,
            initialized: true,
            reason: Some("Evicted".into()),
            message: Some("low".into()),
            extra_conditions: extra,
            now: "t1",
        }
    }

    #[test]
    fn foreign_conditions_are_kept_and_extra_ones_added() {
        let pod = json!({"status": {"conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "t0"},
            {"type": "example.com/gate", "status": "True", "lastTransitionTime": "t0"},
            {"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet",
             "lastTransitionTime": "t0"}
        ]}});
        let dt = disruption_target("low", &pod, "t1");
        assert_eq!(
            dt["lastTransitionTime"], "t0",
            "already True keeps its time"
        );
        assert_eq!(dt["message"], "low");
        let s = pod_status(&input(&pod, vec![dt]));
        let types: Vec<&str> = s["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["type"].as_str())
            .collect();
        assert_eq!(
            types,
            [
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled",
                "example.com/gate",
                "DisruptionTarget"
            ]
        );
        assert_eq!(s["reason"], "Evicted");
        assert_eq!(s["message"], "low");
        let fresh = disruption_target("m", &json!({}), "t2");
        assert_eq!(fresh["status"], "True");
        assert_eq!(fresh["reason"], "TerminationByKubelet");
        assert_eq!(fresh["lastTransitionTime"], "t2");
    }
}
