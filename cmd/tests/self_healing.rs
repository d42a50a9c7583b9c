//! Self-healing across nodes and cascading deletion of a Deployment, through the real
//! `kubectl`: pods on a node that stops heartbeating are evicted once their toleration runs out
//! and their ReplicaSet replaces them on the healthy node, where they run; deleting a
//! Deployment with `--cascade=background|foreground|orphan` removes or keeps its ReplicaSets
//! and pods as Kubernetes does.

mod common;

use common::{json, poll, Cluster};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(90);

fn deployment(name: &str, replicas: u32) -> String {
    format!(
        r#"{{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {{"name": "{name}"}},
        "spec": {{"replicas": {replicas}, "selector": {{"matchLabels": {{"app": "{name}"}}}},
          "template": {{"metadata": {{"labels": {{"app": "{name}"}}}},
            "spec": {{"terminationGracePeriodSeconds": 1,
              "containers": [{{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}}]}}}}}}}}"#
    )
}

fn pods(c: &Cluster, app: &str) -> Vec<Value> {
    json(&c.ok(&["get", "pods", "-l", &format!("app={app}"), "-o", "json"]))["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn live(p: &Value) -> bool {
    p["metadata"]["deletionTimestamp"].is_null()
}

fn node_of(p: &Value) -> &str {
    p["spec"]["nodeName"].as_str().unwrap_or("")
}

/// The fake node's "kubelet": Ready status once, then a Lease renewal every 500 ms until told
/// to stop.
fn fake_kubelet(c: &Cluster, name: &str, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    c.add_fake_node(name, "8", "16Gi", "", "");
    let kubeconfig = c.kubeconfig();
    let name = name.to_string();
    let cache = c.data_dir().join("kubelet-cache");
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let lease = format!(
                r#"{{"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {{"name": "{name}", "namespace": "kube-node-lease"}},
                "spec": {{"holderIdentity": "{name}", "leaseDurationSeconds": 40,
                "renewTime": "{}"}}}}"#,
                common::utc_now("+%Y-%m-%dT%H:%M:%S.%6NZ")
            );
            let mut child = std::process::Command::new(common::kubectl_bin())
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .arg("--cache-dir")
                .arg(&cache)
                .args(["apply", "-f", "-"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("kubectl");
            {
                use std::io::Write;
                let _ = child
                    .stdin
                    .take()
                    .expect("stdin")
                    .write_all(lease.as_bytes());
            }
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(500));
        }
    })
}

#[test]
fn pods_of_a_silent_node_are_replaced_on_a_healthy_one() {
    let c = Cluster::start_with_agent(&[
        "--node-monitor-period",
        "200ms",
        "--node-monitor-grace-period",
        "3s",
        "--default-unreachable-toleration-seconds",
        "2",
        "--default-not-ready-toleration-seconds",
        "2",
    ]);
    let real = format!("node-{}", c.port);
    poll("agent node registered", DEADLINE, || {
        c.kubectl(&["get", "node", &real])
            .status
            .success()
            .then_some(())
    });
    // Every new pod goes to the fake node while the real one is cordoned.
    c.ok(&["cordon", &real]);
    let stop = Arc::new(AtomicBool::new(false));
    let kubelet = fake_kubelet(&c, "doomed", stop.clone());
    c.ok_stdin(&["apply", "-f", "-"], &deployment("web", 2));
    let first = poll("both pods bound to the fake node", DEADLINE, || {
        let ps = pods(&c, "web");
        (ps.len() == 2 && ps.iter().all(|p| node_of(p) == "doomed")).then_some(ps)
    });
    c.ok(&["uncordon", &real]);

    // The fake node's kubelet dies.
    stop.store(true, Ordering::Relaxed);
    let _ = kubelet.join();
    poll("node marked unreachable", DEADLINE, || {
        let n = json(&c.ok(&["get", "node", "doomed", "-o", "json"]));
        n["spec"]["taints"]
            .to_string()
            .contains("node.kubernetes.io/unreachable")
            .then_some(())
    });
    // Its pods are evicted after their 2 s toleration and replaced on the real node, where
    // they run.
    let replaced = poll("replacements running on the healthy node", DEADLINE, || {
        let ps: Vec<Value> = pods(&c, "web").into_iter().filter(live).collect();
        (ps.len() == 2
            && ps
                .iter()
                .all(|p| node_of(p) == real && p["status"]["phase"] == "Running"))
        .then_some(ps)
    });
    for old in &first {
        let name = old["metadata"]["name"].as_str().unwrap_or("");
        assert!(
            replaced.iter().all(|p| p["metadata"]["name"] != name),
            "{name} was replaced"
        );
        // Without a kubelet the evicted pod stays Terminating, as in Kubernetes.
        let out = c.kubectl(&["get", "pod", name, "-o", "json"]);
        if out.status.success() {
            let p = json(&String::from_utf8_lossy(&out.stdout));
            assert!(!live(&p), "{name} is being deleted");
        }
    }
    let d = json(&c.ok(&["get", "deploy", "web", "-o", "json"]));
    assert_eq!(d["status"]["availableReplicas"], 2, "{}", d["status"]);
}

fn replica_sets(c: &Cluster, app: &str) -> Vec<Value> {
    json(&c.ok(&["get", "rs", "-l", &format!("app={app}"), "-o", "json"]))["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn deleting_a_deployment_cascades_in_all_three_modes() {
    let c = Cluster::start_with_agent(&[]);
    for name in ["bg", "fg", "orphan"] {
        c.ok_stdin(&["apply", "-f", "-"], &deployment(name, 2));
    }
    for name in ["bg", "fg", "orphan"] {
        let out = c.ok(&[
            "rollout",
            "status",
            &format!("deploy/{name}"),
            "--timeout=90s",
        ]);
        assert!(out.contains("successfully rolled out"), "{out}");
    }

    // Background: the Deployment goes at once; the collector then removes RS and pods.
    c.ok(&[
        "delete",
        "deploy",
        "bg",
        "--cascade=background",
        "--wait=false",
    ]);
    poll("background: RS and pods gone", DEADLINE, || {
        (replica_sets(&c, "bg").is_empty() && pods(&c, "bg").is_empty()).then_some(())
    });

    // Foreground: the Deployment stays (with the foregroundDeletion finalizer) until its
    // dependents are gone, and kubectl waits for it.
    c.ok(&[
        "delete",
        "deploy",
        "fg",
        "--cascade=foreground",
        "--wait=false",
    ]);
    let d = json(&c.ok(&["get", "deploy", "fg", "-o", "json"]));
    assert!(
        d["metadata"]["finalizers"]
            .to_string()
            .contains("foregroundDeletion"),
        "{}",
        d["metadata"]
    );
    assert!(d["metadata"]["deletionTimestamp"].is_string());
    poll("foreground: deployment, RS and pods gone", DEADLINE, || {
        (!c.kubectl(&["get", "deploy", "fg"]).status.success()
            && replica_sets(&c, "fg").is_empty()
            && pods(&c, "fg").is_empty())
        .then_some(())
    });

    // Orphan: the Deployment goes; its ReplicaSet and pods stay, without owner references,
    // and the pods keep running.
    c.ok(&["delete", "deploy", "orphan", "--cascade=orphan"]);
    poll("orphan: deployment gone", DEADLINE, || {
        (!c.kubectl(&["get", "deploy", "orphan"]).status.success()).then_some(())
    });
    let rs = poll("orphan: RS released", DEADLINE, || {
        let rs = replica_sets(&c, "orphan");
        (rs.len() == 1
            && rs[0]["metadata"]["ownerReferences"]
                .as_array()
                .is_none_or(Vec::is_empty))
        .then_some(rs)
    });
    assert_eq!(rs[0]["status"]["replicas"], 2);
    let ps = pods(&c, "orphan");
    assert_eq!(ps.len(), 2);
    assert!(ps
        .iter()
        .all(|p| live(p) && p["status"]["phase"] == "Running"));
}
