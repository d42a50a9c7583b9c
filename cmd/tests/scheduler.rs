//! The scheduler through the real `kubectl`: on a control plane with fake nodes (Node objects
//! created and given a Ready status by the test, as a kubelet would), pods are spread by least
//! allocated resources, follow node selectors, avoid taints they don't tolerate, cordoned nodes,
//! nodes holding their anti-affinity peers and nodes whose host port is taken; a pod that fits
//! nowhere stays Pending with `PodScheduled=False`/`Unschedulable` and kube-scheduler's message
//! and event, and is bound as soon as a node that fits appears. Pods with a node name or another
//! scheduler are left alone. With the real agent, a pod lands on the agent's node and runs.

mod common;

use common::{json, poll, Cluster};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

/// A control plane without the node lifecycle controller: the fake nodes renew no Lease, and
/// must stay Ready however long the test takes.
fn control_plane() -> Cluster {
    Cluster::start_with(&["--controllers=-nodelifecycle"])
}

/// Registers a fake node and reports it Ready with this allocatable, as a kubelet would.
fn add_node(c: &Cluster, name: &str, cpu: &str, memory: &str, labels: &str, spec: &str) {
    c.add_fake_node(name, cpu, memory, labels, spec);
}

/// A pod manifest: `spec` is extra JSON members of the pod spec (leading comma included), the
/// container asks for `cpu`/`memory` and has `ports`.
fn pod(name: &str, labels: &str, cpu: &str, memory: &str, ports: &str, spec: &str) -> String {
    format!(
        r#"{{"apiVersion": "v1", "kind": "Pod",
            "metadata": {{"name": "{name}", "labels": {{{labels}}}}},
            "spec": {{"containers": [{{"name": "c", "image": "busybox", "ports": [{ports}],
                "resources": {{"requests": {{"cpu": "{cpu}", "memory": "{memory}"}}}}}}] {spec}}}}}"#
    )
}

fn create(c: &Cluster, manifest: &str) {
    c.ok_stdin(&["create", "-f", "-"], manifest);
}

fn pod_json(c: &Cluster, name: &str) -> Option<Value> {
    let out = c.kubectl(&["get", "pod", name, "-o", "json"]);
    out.status
        .success()
        .then(|| json(&String::from_utf8_lossy(&out.stdout)))
}

fn node_of(c: &Cluster, name: &str) -> Option<String> {
    pod_json(c, name)
        .and_then(|p| p["spec"]["nodeName"].as_str().map(str::to_string))
        .filter(|n| !n.is_empty())
}

/// Waits until the pod is bound; returns its node.
fn wait_bound(c: &Cluster, name: &str) -> String {
    poll(&format!("pod {name} bound"), DEADLINE, || node_of(c, name))
}

fn pod_scheduled(p: &Value) -> Option<Value> {
    p.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled"))
        .cloned()
}

/// Waits until the pod is marked unschedulable with this message; returns the condition.
fn wait_unschedulable(c: &Cluster, name: &str, message: &str) -> Value {
    let cond = poll(&format!("pod {name} unschedulable"), DEADLINE, || {
        pod_json(c, name)
            .and_then(|p| pod_scheduled(&p))
            .filter(|c| c["status"] == "False" && c["message"] == message)
    });
    assert_eq!(cond["reason"], "Unschedulable", "{cond}");
    assert!(node_of(c, name).is_none());
    cond
}

/// Events about a pod as (reason, message, source component).
fn events_of(c: &Cluster, name: &str) -> Vec<(String, String, String)> {
    let list = json(&c.ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={name}"),
        "-o",
        "json",
    ]));
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|e| {
                    let s = |p: &str| {
                        e.pointer(p)
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string()
                    };
                    (s("/reason"), s("/message"), s("/source/component"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn count_by_node(c: &Cluster, names: &[&str]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for n in names {
        *m.entry(wait_bound(c, n)).or_insert(0) += 1;
    }
    m
}

#[test]
fn spreads_by_least_allocated_follows_node_selectors_and_leaves_others_alone() {
    let c = control_plane();
    add_node(&c, "n1", "2", "4Gi", "", "");
    add_node(&c, "n2", "2", "4Gi", r#", "disk": "ssd""#, "");
    // Pods owned elsewhere: one already bound to n1 (which counts against n1), one asking for
    // another scheduler.
    create(
        &c,
        &pod("pinned", "", "500m", "128Mi", "", r#", "nodeName": "n1""#),
    );
    create(
        &c,
        &pod(
            "other",
            "",
            "100m",
            "64Mi",
            "",
            r#", "schedulerName": "my-scheduler""#,
        ),
    );
    // Five equal pods: with the pinned one on n1, least-allocated spreading puts the first on
    // n2, then alternates: two on n1, three on n2.
    let names: Vec<String> = (0..5).map(|i| format!("web-{i}")).collect();
    for n in &names {
        create(&c, &pod(n, r#""app": "web""#, "500m", "128Mi", "", ""));
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let counts = count_by_node(&c, &refs);
    assert_eq!(counts.get("n1"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("n2"), Some(&3), "{counts:?}");
    let node = wait_bound(&c, "web-0");
    let want = format!("Successfully assigned default/web-0 to {node}");
    poll("Scheduled event", DEADLINE, || {
        events_of(&c, "web-0")
            .iter()
            .any(|(r, m, s)| r == "Scheduled" && m == &want && s == "default-scheduler")
            .then_some(())
    });
    // The scheduler set PodScheduled through the binding.
    let p = pod_json(&c, "web-0").expect("pod");
    assert_eq!(pod_scheduled(&p).expect("condition")["status"], "True");

    // nodeSelector: only n2 has disk=ssd; nothing has disk=nvme.
    create(
        &c,
        &pod(
            "fast",
            "",
            "100m",
            "64Mi",
            "",
            r#", "nodeSelector": {"disk": "ssd"}"#,
        ),
    );
    assert_eq!(wait_bound(&c, "fast"), "n2");
    create(
        &c,
        &pod(
            "faster",
            "",
            "100m",
            "64Mi",
            "",
            r#", "nodeSelector": {"disk": "nvme"}"#,
        ),
    );
    wait_unschedulable(
        &c,
        "faster",
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. \
         preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling..",
    );
    // Required node affinity works the same way.
    create(
        &c,
        &pod(
            "affine",
            "",
            "100m",
            "64Mi",
            "",
            r#", "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                {"nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/hostname",
                "operator": "In", "values": ["n1"]}]}]}}}"#,
        ),
    );
    assert_eq!(wait_bound(&c, "affine"), "n1");

    // The pinned pod and the other scheduler's pod were never touched by this scheduler.
    assert_eq!(node_of(&c, "pinned").as_deref(), Some("n1"));
    assert!(events_of(&c, "pinned").is_empty());
    let other = pod_json(&c, "other").expect("pod");
    assert!(node_of(&c, "other").is_none());
    assert!(pod_scheduled(&other).is_none(), "{other}");
    assert!(events_of(&c, "other").is_empty());
}

#[test]
fn unschedulable_pod_waits_for_a_node_that_fits() {
    let c = control_plane();
    add_node(&c, "small", "2", "1Gi", "", "");
    create(&c, &pod("big", "", "100m", "2Gi", "", ""));
    let message = "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are \
                   available: 1 No preemption victims found for incoming pod..";
    let cond = wait_unschedulable(&c, "big", message);
    assert!(cond["lastTransitionTime"].is_string(), "{cond}");
    let p = pod_json(&c, "big").expect("pod");
    assert_eq!(p["status"]["phase"], "Pending");
    // kubectl describe shows the event, as with kube-scheduler.
    let d = poll("FailedScheduling in describe", DEADLINE, || {
        let d = c.ok(&["describe", "pod", "big"]);
        d.contains("FailedScheduling").then_some(d)
    });
    assert!(
        d.contains("Warning")
            && d.contains("default-scheduler")
            && d.contains("0/1 nodes are available: 1 Insufficient memory."),
        "{d}"
    );
    let table = c.ok(&["get", "pod", "big"]);
    assert!(table.contains("Pending"), "{table}");
    // A node with room appears: the pod is bound to it without anyone touching the pod.
    add_node(&c, "large", "4", "8Gi", "", "");
    assert_eq!(wait_bound(&c, "big"), "large");
    let ev = poll("Scheduled event", DEADLINE, || {
        let ev = events_of(&c, "big");
        ev.iter()
            .any(|(r, m, _)| r == "Scheduled" && m == "Successfully assigned default/big to large")
            .then_some(ev)
    });
    assert!(
        ev.iter()
            .any(|(r, m, _)| r == "FailedScheduling" && m == message),
        "{ev:?}"
    );
    let p = pod_json(&c, "big").expect("pod");
    assert_eq!(pod_scheduled(&p).expect("condition")["status"], "True");
    // What is bound counts: the large node has 6Gi left, so a 7Gi pod fits nowhere.
    create(&c, &pod("bigger", "", "100m", "7Gi", "", ""));
    wait_unschedulable(
        &c,
        "bigger",
        "0/2 nodes are available: 2 Insufficient memory. preemption: 0/2 nodes are available: \
         2 No preemption victims found for incoming pod..",
    );
    // Deleting the pod that holds the memory frees it.
    c.ok(&["delete", "pod", "big", "--grace-period=0", "--force"]);
    assert_eq!(wait_bound(&c, "bigger"), "large");
}

#[test]
fn taints_and_cordoned_nodes_are_avoided() {
    let c = control_plane();
    add_node(
        &c,
        "gpu",
        "4",
        "8Gi",
        "",
        r#""taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]"#,
    );
    create(&c, &pod("plain", "", "100m", "64Mi", "", ""));
    wait_unschedulable(
        &c,
        "plain",
        "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}. preemption: \
         0/1 nodes are available: 1 Preemption is not helpful for scheduling..",
    );
    create(
        &c,
        &pod(
            "tolerant",
            "",
            "100m",
            "64Mi",
            "",
            r#", "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu",
                "effect": "NoSchedule"}]"#,
        ),
    );
    assert_eq!(wait_bound(&c, "tolerant"), "gpu");
    // A second, untainted node: the waiting pod goes there.
    add_node(&c, "cpu", "4", "8Gi", "", "");
    assert_eq!(wait_bound(&c, "plain"), "cpu");

    // Cordoned: avoided, and the message says so.
    c.ok(&["cordon", "cpu"]);
    create(&c, &pod("late", "", "100m", "64Mi", "", ""));
    wait_unschedulable(
        &c,
        "late",
        "0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) \
         were unschedulable. preemption: 0/2 nodes are available: 2 Preemption is not helpful \
         for scheduling..",
    );
    // Uncordoning is a node change that lets the pod in.
    c.ok(&["uncordon", "cpu"]);
    assert_eq!(wait_bound(&c, "late"), "cpu");
}

#[test]
fn pod_anti_affinity_by_hostname_and_host_ports() {
    let c = control_plane();
    add_node(&c, "a", "4", "8Gi", "", "");
    add_node(&c, "b", "4", "8Gi", "", "");
    let anti = r#", "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
        [{"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}"#;
    for i in 0..3 {
        create(
            &c,
            &pod(
                &format!("db-{i}"),
                r#""app": "db""#,
                "100m",
                "64Mi",
                "",
                anti,
            ),
        );
    }
    // Two of them land on different nodes; the third has nowhere to go.
    let (bound, waiting): (Vec<String>, Vec<String>) = poll("two db pods bound", DEADLINE, || {
        let names = ["db-0", "db-1", "db-2"];
        let bound: Vec<String> = names
            .iter()
            .filter(|n| node_of(&c, n).is_some())
            .map(|n| n.to_string())
            .collect();
        (bound.len() == 2).then(|| {
            let waiting = names
                .iter()
                .filter(|n| !bound.contains(&n.to_string()))
                .map(|n| n.to_string())
                .collect();
            (bound.clone(), waiting)
        })
    });
    let nodes: Vec<String> = bound.iter().map(|n| wait_bound(&c, n)).collect();
    assert_ne!(nodes[0], nodes[1]);
    wait_unschedulable(
        &c,
        &waiting[0],
        "0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules. preemption: \
         0/2 nodes are available: 2 No preemption victims found for incoming pod..",
    );
    // Deleting one makes room on its node.
    c.ok(&["delete", "pod", &bound[0], "--grace-period=0", "--force"]);
    assert_eq!(wait_bound(&c, &waiting[0]), nodes[0]);

    // Host ports: 8080/TCP on every node is taken after two pods; a third waits, another port
    // and the same port over UDP still fit.
    let port = |p: u16, proto: &str| {
        format!(r#"{{"containerPort": 80, "hostPort": {p}, "protocol": "{proto}"}}"#)
    };
    for i in 0..3 {
        create(
            &c,
            &pod(
                &format!("hp-{i}"),
                "",
                "100m",
                "64Mi",
                &port(8080, "TCP"),
                "",
            ),
        );
    }
    let hp_bound = poll("two host-port pods bound", DEADLINE, || {
        let b: Vec<&str> = ["hp-0", "hp-1", "hp-2"]
            .into_iter()
            .filter(|n| node_of(&c, n).is_some())
            .collect();
        (b.len() == 2).then_some(b)
    });
    let hp_waiting = ["hp-0", "hp-1", "hp-2"]
        .into_iter()
        .find(|n| !hp_bound.contains(n))
        .expect("one waits");
    assert_ne!(wait_bound(&c, hp_bound[0]), wait_bound(&c, hp_bound[1]));
    wait_unschedulable(
        &c,
        hp_waiting,
        "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports. \
         preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod..",
    );
    create(
        &c,
        &pod("hp-other", "", "100m", "64Mi", &port(8081, "TCP"), ""),
    );
    wait_bound(&c, "hp-other");
    create(
        &c,
        &pod("hp-udp", "", "100m", "64Mi", &port(8080, "UDP"), ""),
    );
    wait_bound(&c, "hp-udp");
}

#[test]
fn pod_is_scheduled_to_the_agent_node_and_runs() {
    let c = Cluster::start_with_agent(&[]);
    let node = format!("node-{}", c.port);
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: sleeper}
spec:
  containers:
  - name: c
    image: busybox
    command: ["sleep", "3600"]
    resources:
      requests: {cpu: 10m, memory: 16Mi}
"#,
    );
    assert_eq!(wait_bound(&c, "sleeper"), node);
    poll("sleeper Running", DEADLINE, || {
        pod_json(&c, "sleeper").filter(|p| p["status"]["phase"] == "Running")
    });
    let want = format!("Successfully assigned default/sleeper to {node}");
    poll("Scheduled event", DEADLINE, || {
        events_of(&c, "sleeper")
            .iter()
            .any(|(r, m, s)| r == "Scheduled" && m == &want && s == "default-scheduler")
            .then_some(())
    });
}
