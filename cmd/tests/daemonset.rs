//! DaemonSets through the real `kubectl`, on a cluster with the real node agent plus two fake
//! nodes (Node objects nobody runs): one pod per eligible node, placed by the scheduler;
//! nodeSelector and taints decide eligibility; a new node gets its pod; a rolling update
//! replaces the pod on the real node and `kubectl rollout status|history|undo` work.

mod common;

use common::{json, poll, Cluster};
use serde_json::Value;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(90);

fn node_name(c: &Cluster) -> String {
    format!("node-{}", c.port)
}

/// A fake node (the node lifecycle controller is off in these tests, so it stays Ready).
fn add_fake_node(c: &Cluster, name: &str, labels: &str, taints: &str) {
    c.add_fake_node(name, "4", "8Gi", labels, &format!(r#""taints": {taints}"#));
}

fn ds_manifest(name: &str, node_selector: &str, env: &str) -> String {
    format!(
        r#"{{"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {{"name": "{name}"}},
        "spec": {{"selector": {{"matchLabels": {{"app": "{name}"}}}},
          "updateStrategy": {{"type": "RollingUpdate", "rollingUpdate": {{"maxUnavailable": 1}}}},
          "template": {{"metadata": {{"labels": {{"app": "{name}"}}}},
            "spec": {{"nodeSelector": {node_selector}, "terminationGracePeriodSeconds": 1,
              "containers": [{{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                "env": [{{"name": "VERSION", "value": "{env}"}}]}}]}}}}}}}}"#
    )
}

/// Live (not deleting) pods of a DaemonSet: (pod name, node name, phase).
fn pods_of(c: &Cluster, app: &str) -> Vec<(String, String, String, Value)> {
    let list = json(&c.ok(&["get", "pods", "-l", &format!("app={app}"), "-o", "json"]));
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                p["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
                p["status"]["phase"].as_str().unwrap_or("").to_string(),
                p,
            )
        })
        .collect()
}

fn nodes_of(pods: &[(String, String, String, Value)]) -> Vec<String> {
    let mut n: Vec<String> = pods.iter().map(|p| p.1.clone()).collect();
    n.sort();
    n
}

#[test]
fn one_pod_per_eligible_node() {
    let c = Cluster::start_with_agent(&["--controllers=*,-nodelifecycle"]);
    let real = node_name(&c);
    poll("agent node registered", DEADLINE, || {
        c.kubectl(&["get", "node", &real])
            .status
            .success()
            .then_some(())
    });
    add_fake_node(&c, "edge-a", r#", "role": "edge""#, "[]");
    add_fake_node(
        &c,
        "tainted-b",
        r#", "role": "edge""#,
        r#"[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]"#,
    );
    c.ok_stdin(&["apply", "-f", "-"], &ds_manifest("everywhere", "{}", "1"));
    // The real node and edge-a; not the node whose taint the pods don't tolerate.
    let mut want = vec![real.clone(), "edge-a".to_string()];
    want.sort();
    poll("a pod bound on each eligible node", DEADLINE, || {
        let pods = pods_of(&c, "everywhere");
        (nodes_of(&pods) == want).then_some(())
    });
    poll("the pod on the real node runs", DEADLINE, || {
        pods_of(&c, "everywhere")
            .iter()
            .any(|p| p.1 == real && p.2 == "Running")
            .then_some(())
    });
    let ds = json(&c.ok(&["get", "ds", "everywhere", "-o", "json"]));
    assert_eq!(
        ds["status"]["desiredNumberScheduled"], 2,
        "{}",
        ds["status"]
    );
    // Daemon pods carry the tolerations every daemon pod gets and a node pin.
    let pods = pods_of(&c, "everywhere");
    let pod = &pods[0].3;
    let tols = pod["spec"]["tolerations"].to_string();
    assert!(tols.contains("node.kubernetes.io/unschedulable"), "{tols}");
    assert!(pod["spec"]["affinity"]
        .to_string()
        .contains("metadata.name"));
    assert!(pod["metadata"]["labels"]["controller-revision-hash"].is_string());

    // A new node gets its pod; a cordoned node keeps it (daemon pods tolerate unschedulable).
    add_fake_node(&c, "edge-c", "", "[]");
    c.ok(&["cordon", "edge-a"]);
    want.push("edge-c".to_string());
    want.sort();
    poll("the new node gets a pod", DEADLINE, || {
        (nodes_of(&pods_of(&c, "everywhere")) == want).then_some(())
    });

    // nodeSelector: only nodes labelled role=edge (edge-a; tainted-b's taint is not tolerated).
    c.ok_stdin(
        &["apply", "-f", "-"],
        &ds_manifest("edge-only", r#"{"role": "edge"}"#, "1"),
    );
    poll("only edge-a", DEADLINE, || {
        (nodes_of(&pods_of(&c, "edge-only")) == vec!["edge-a".to_string()]).then_some(())
    });
    // Label the real node: it becomes eligible.
    c.ok(&["label", "node", &real, "role=edge"]);
    let mut edge = vec![real.clone(), "edge-a".to_string()];
    edge.sort();
    poll("the relabelled node gets a pod", DEADLINE, || {
        (nodes_of(&pods_of(&c, "edge-only")) == edge).then_some(())
    });
    // Unlabel it: its pod goes.
    c.ok(&["label", "node", &real, "role-"]);
    poll(
        "pod removed from the node that no longer fits",
        DEADLINE,
        || (nodes_of(&pods_of(&c, "edge-only")) == vec!["edge-a".to_string()]).then_some(()),
    );
}

#[test]
fn rolling_update_history_and_undo() {
    let c = Cluster::start_with_agent(&["--controllers=*,-nodelifecycle"]);
    let real = node_name(&c);
    let selector = format!(r#"{{"kubernetes.io/hostname": "{real}"}}"#);
    poll("agent node registered", DEADLINE, || {
        c.kubectl(&["get", "node", &real])
            .status
            .success()
            .then_some(())
    });
    c.ok_stdin(&["apply", "-f", "-"], &ds_manifest("agent", &selector, "1"));
    let out = c.ok(&["rollout", "status", "ds/agent", "--timeout=90s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let first = pods_of(&c, "agent");
    assert_eq!(first.len(), 1);

    c.ok(&["set", "env", "ds/agent", "VERSION=2"]);
    let out = c.ok(&["rollout", "status", "ds/agent", "--timeout=90s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let second = poll("the pod replaced", DEADLINE, || {
        let p = pods_of(&c, "agent");
        (p.len() == 1 && p[0].0 != first[0].0 && p[0].2 == "Running").then_some(p)
    });
    assert!(second[0].3.to_string().contains(r#""value":"2""#));

    let history = c.ok(&["rollout", "history", "ds/agent"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");
    c.ok(&["rollout", "undo", "ds/agent"]);
    let ds = poll("template back to VERSION=1", DEADLINE, || {
        let ds = json(&c.ok(&["get", "ds", "agent", "-o", "json"]));
        ds["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"]
            .as_str()
            .is_some_and(|v| v == "1")
            .then_some(ds)
    });
    assert!(ds["metadata"]["generation"].as_i64() >= Some(3));
    let out = c.ok(&["rollout", "status", "ds/agent", "--timeout=90s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    poll("the pod runs the first template again", DEADLINE, || {
        let p = pods_of(&c, "agent");
        (p.len() == 1 && p[0].2 == "Running" && p[0].3.to_string().contains(r#""value":"1""#))
            .then_some(())
    });
    // Deleting the DaemonSet removes its pods and revisions (garbage collector).
    c.ok(&["delete", "ds", "agent"]);
    poll("pods gone", DEADLINE, || {
        pods_of(&c, "agent").is_empty().then_some(())
    });
}
