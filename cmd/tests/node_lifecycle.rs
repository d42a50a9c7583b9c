//! The node lifecycle controller through the real `kubectl`, on a control plane with fake
//! nodes (Node objects whose "kubelet" is the test): a node that stops renewing its Lease turns
//! `Ready=Unknown` and gets the unreachable taints; its pods are deleted once their toleration
//! runs out, pods tolerating the taint forever stay; when the node reports again the taints go;
//! a cordoned node gets the unschedulable taint; pods bound to a node that does not exist are
//! deleted.

mod common;

use common::{json, poll, Cluster};
use serde_json::Value;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

/// Registers a fake node reporting Ready, as a kubelet would.
fn add_node(c: &Cluster, name: &str) {
    c.add_fake_node(name, "4", "8Gi", "", "");
}

fn report_ready(c: &Cluster, name: &str) {
    c.report_fake_node_ready(name, "4", "8Gi");
}

fn renew_lease(c: &Cluster, name: &str) {
    c.renew_fake_node_lease(name);
}

fn node(c: &Cluster, name: &str) -> Value {
    json(&c.ok(&["get", "node", name, "-o", "json"]))
}

fn ready_status(n: &Value) -> String {
    n.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("")
        .to_string()
}

fn taint_keys(n: &Value) -> Vec<String> {
    n.pointer("/spec/taints")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    format!(
                        "{}:{}",
                        t["key"].as_str().unwrap_or(""),
                        t["effect"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pod_on(name: &str, node: &str, tolerations: &str) -> String {
    format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "{name}"}},
            "spec": {{"nodeName": "{node}", "tolerations": {tolerations},
            "containers": [{{"name": "c", "image": "busybox"}}]}}}}"#
    )
}

fn pod_json(c: &Cluster, name: &str) -> Option<Value> {
    let out = c.kubectl(&["get", "pod", name, "-o", "json"]);
    out.status
        .success()
        .then(|| json(&String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn silent_node_is_tainted_and_its_pods_evicted_after_their_toleration() {
    let c = Cluster::start_with(&[
        "--node-monitor-period",
        "200ms",
        "--node-monitor-grace-period",
        "3s",
        "--default-unreachable-toleration-seconds",
        "2",
        "--default-not-ready-toleration-seconds",
        "2",
    ]);
    add_node(&c, "silent");
    renew_lease(&c, "silent");
    // Defaulted tolerations (2 s here) and one that tolerates the taint forever.
    c.ok_stdin(&["create", "-f", "-"], &pod_on("short", "silent", "[]"));
    c.ok_stdin(
        &["create", "-f", "-"],
        &pod_on(
            "forever",
            "silent",
            r#"[{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}]"#,
        ),
    );
    let short = pod_json(&c, "short").expect("pod");
    let tol = short["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        tol.iter()
            .any(|t| t["key"] == "node.kubernetes.io/unreachable" && t["tolerationSeconds"] == 2),
        "defaulted toleration seconds follow the flag: {tol:?}"
    );

    // No more heartbeats: Unknown + unreachable taints.
    let n = poll("node marked Unknown", DEADLINE, || {
        let n = node(&c, "silent");
        (ready_status(&n) == "Unknown").then_some(n)
    });
    let ready = n["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready").cloned())
        .expect("Ready");
    assert_eq!(ready["reason"], "NodeStatusUnknown");
    assert_eq!(ready["message"], "Kubelet stopped posting node status.");
    let n = poll("unreachable taints", DEADLINE, || {
        let n = node(&c, "silent");
        let keys = taint_keys(&n);
        (keys.contains(&"node.kubernetes.io/unreachable:NoExecute".to_string())
            && keys.contains(&"node.kubernetes.io/unreachable:NoSchedule".to_string()))
        .then_some(n)
    });
    assert!(n["spec"]["taints"]
        .as_array()
        .expect("taints")
        .iter()
        .any(|t| t["effect"] == "NoExecute" && t["timeAdded"].is_string()));

    // The pod with the 2 s toleration is deleted (no kubelet: it stays Terminating, as in
    // Kubernetes), with the DisruptionTarget condition and an event.
    let p = poll("pod marked for deletion", DEADLINE, || {
        pod_json(&c, "short").filter(|p| p["metadata"]["deletionTimestamp"].is_string())
    });
    let conds = p["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        conds
            .iter()
            .any(|c| c["type"] == "DisruptionTarget" && c["reason"] == "DeletionByTaintManager"),
        "{conds:?}"
    );
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=short",
        "-o",
        "json",
    ]);
    assert!(events.contains("TaintManagerEviction"), "{events}");
    // The pod tolerating forever stays.
    let forever = pod_json(&c, "forever").expect("pod stays");
    assert!(forever["metadata"]["deletionTimestamp"].is_null());

    // The node reports again: Ready and the taints are gone.
    renew_lease(&c, "silent");
    report_ready(&c, "silent");
    poll("taints removed", DEADLINE, || {
        let n = node(&c, "silent");
        (ready_status(&n) == "True" && taint_keys(&n).is_empty()).then_some(())
    });
}

#[test]
fn cordon_taints_and_orphans_are_collected() {
    let c = Cluster::start_with(&["--node-monitor-period", "200ms"]);
    add_node(&c, "n1");
    renew_lease(&c, "n1");
    c.ok(&["cordon", "n1"]);
    poll("unschedulable taint", DEADLINE, || {
        taint_keys(&node(&c, "n1"))
            .contains(&"node.kubernetes.io/unschedulable:NoSchedule".to_string())
            .then_some(())
    });
    c.ok(&["uncordon", "n1"]);
    poll("unschedulable taint removed", DEADLINE, || {
        taint_keys(&node(&c, "n1")).is_empty().then_some(())
    });
    // A pod bound to a node that does not exist is deleted after the quarantine (40 s).
    c.ok_stdin(
        &["create", "-f", "-"],
        &pod_on("orphan", "no-such-node", "[]"),
    );
    poll("orphan pod deleted", Duration::from_secs(90), || {
        pod_json(&c, "orphan").is_none().then_some(())
    });
}
