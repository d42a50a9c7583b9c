//! End-to-end: pods run as real containers on the server's own node agent, driven by the real
//! kubectl (root required, as in CI).

mod common;

use common::{json, poll, Cluster};
use serde_json::Value;
use std::time::Duration;

const START: Duration = Duration::from_secs(60);

fn pod_json(c: &Cluster, name: &str) -> Option<Value> {
    let out = c.kubectl(&["get", "pod", name, "-o", "json"]);
    out.status
        .success()
        .then(|| json(&String::from_utf8_lossy(&out.stdout)))
}

fn wait_phase(c: &Cluster, name: &str, phase: &str) -> Value {
    poll(&format!("pod {name} {phase}"), START, || {
        pod_json(c, name).filter(|p| p["status"]["phase"] == phase)
    })
}

fn container_status<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

#[test]
fn pods_run_and_reach_each_other_over_pod_ips() {
    let c = Cluster::start_with_agent(&[]);
    let nodes = c.ok(&["get", "nodes"]);
    assert!(nodes.contains("Ready"), "{nodes}");
    c.ok_stdin(&["apply", "-f", "-"], r#"
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: httpd
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 8080 -h /www"]
"#);
    let web = wait_phase(&c, "web", "Running");
    let ip = web["status"]["podIP"].as_str().expect("podIP").to_string();
    assert!(
        container_status(&web, "httpd")["state"]["running"].is_object(),
        "{web}"
    );
    assert_eq!(web["status"]["podIPs"][0]["ip"], ip.as_str());
    let client = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://$(WEB_IP):8080/ | grep -q hello-from-web && exit 0; sleep 0.5; done; exit 1"]
    env: [{{name: WEB_IP, value: "{ip}"}}]
"#
    );
    c.ok_stdin(&["apply", "-f", "-"], &client);
    let done = wait_phase(&c, "client", "Succeeded");
    let cs = container_status(&done, "c");
    assert_eq!(cs["state"]["terminated"]["exitCode"], 0, "{done}");
    assert_eq!(cs["state"]["terminated"]["reason"], "Completed");
    let table = c.ok(&["get", "pods"]);
    assert!(
        table.contains("Completed") && table.contains("Running"),
        "{table}"
    );
    c.ok(&["delete", "pod", "--all", "--grace-period=0", "--force"]);
}

#[test]
fn containers_of_a_pod_share_localhost_and_an_empty_dir() {
    let c = Cluster::start_with_agent(&[]);
    // The refresher replaces index.html atomically (a temporary file in the same directory,
    // then a rename), so the checker never reads a half-written page.
    c.ok_stdin(&["apply", "-f", "-"], r#"
apiVersion: v1
kind: Pod
metadata: {name: duo}
spec:
  volumes: [{name: shared, emptyDir: {}}]
  initContainers:
  - name: init
    image: busybox
    command: ["sh", "-c", "echo first > /shared/order"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  containers:
  - name: server
    image: busybox
    command: ["httpd", "-f", "-p", "8080", "-h", "/shared"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  - name: refresher
    image: busybox
    command: ["sh", "-c", "while true; do { cat /shared/order; echo fresh; } > /shared/.index.tmp && mv /shared/.index.tmp /shared/index.html; sleep 0.2; done"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  - name: checker
    image: busybox
    command: ["sh", "-c", "until wget -qO- http://localhost:8080/ | grep -q fresh; do sleep 0.2; done; wget -qO- http://localhost:8080/ | grep -q first"]
"#);
    // The pod restarts containers (restartPolicy Always), so the checker's finished run may be
    // its current state or, once restarted, its lastState.
    let finished = |p: &Value| -> Option<Value> {
        let cs = container_status(p, "checker");
        [&cs["state"]["terminated"], &cs["lastState"]["terminated"]]
            .into_iter()
            .find(|t| t.is_object())
            .cloned()
    };
    let pod = poll("checker finished", START, || {
        pod_json(&c, "duo").filter(|p| finished(p).is_some())
    });
    let done = finished(&pod).unwrap_or_default();
    assert_eq!(done["exitCode"], 0, "{pod}");
    let init = &pod["status"]["initContainerStatuses"][0];
    assert_eq!(init["state"]["terminated"]["reason"], "Completed", "{pod}");
    c.ok(&["delete", "pod", "duo", "--grace-period=0", "--force"]);
}

#[test]
fn restart_policies_and_restart_counts() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: always}
spec:
  restartPolicy: Always
  containers: [{name: c, image: busybox, command: ["sh", "-c", "exit 3"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: never}
spec:
  restartPolicy: Never
  containers: [{name: c, image: busybox, command: ["sh", "-c", "exit 3"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: onfailure}
spec:
  restartPolicy: OnFailure
  containers: [{name: c, image: busybox, command: ["sh", "-c", "exit 0"]}]
"#,
    );
    let never = wait_phase(&c, "never", "Failed");
    let cs = container_status(&never, "c");
    assert_eq!(
        (
            cs["restartCount"].as_i64(),
            cs["state"]["terminated"]["exitCode"].as_i64()
        ),
        (Some(0), Some(3)),
        "{never}"
    );
    assert_eq!(cs["state"]["terminated"]["reason"], "Error");
    let ok = wait_phase(&c, "onfailure", "Succeeded");
    assert_eq!(container_status(&ok, "c")["restartCount"], 0);
    let always = poll("always restarted and backing off", START, || {
        pod_json(&c, "always").filter(|p| {
            let cs = container_status(p, "c");
            cs["restartCount"].as_i64().unwrap_or(0) >= 1
                && cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        })
    });
    let cs = container_status(&always, "c");
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 3, "{always}");
    assert_eq!(always["status"]["phase"], "Running");
    let table = c.ok(&["get", "pod", "always"]);
    assert!(table.contains("CrashLoopBackOff"), "{table}");
    c.ok(&["delete", "pod", "--all", "--grace-period=0", "--force"]);
}

#[test]
fn graceful_deletion_waits_for_the_grace_period_then_kills() {
    let c = Cluster::start_with_agent(&[]);
    // `sleep` as PID 1 ignores TERM: only the KILL after the grace period ends it.
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 3
  containers: [{name: c, image: busybox, command: ["sleep", "3600"]}]
"#,
    );
    wait_phase(&c, "stubborn", "Running");
    c.ok(&["delete", "pod", "stubborn", "--wait=false"]);
    let pending = pod_json(&c, "stubborn").expect("still there right after the delete");
    assert!(pending["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(pending["metadata"]["deletionGracePeriodSeconds"], 3);
    poll("pod gone after its grace period", START, || {
        pod_json(&c, "stubborn").is_none().then_some(())
    });
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=stubborn",
    ]);
    assert!(events.contains("Killing"), "{events}");
    // Force deletion removes the object at once; the agent kills what remains.
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: forced}
spec:
  containers: [{name: c, image: busybox, command: ["sleep", "3600"]}]
"#,
    );
    wait_phase(&c, "forced", "Running");
    let out = c.kubectl(&["delete", "pod", "forced", "--grace-period=0", "--force"]);
    assert!(out.status.success());
    assert!(pod_json(&c, "forced").is_none());
    let pods_dir = c.data_dir().join("agent/pods");
    poll("forced pod cleaned up on the node", START, || {
        std::fs::read_dir(&pods_dir)
            .map(|d| d.count() == 0)
            .unwrap_or(true)
            .then_some(())
    });
}

#[test]
fn missing_image_reports_err_image_pull() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: noimage}
spec:
  containers: [{name: c, image: example.invalid/nothing:1.0}]
"#,
    );
    let p = poll("ErrImagePull", START, || {
        pod_json(&c, "noimage").filter(|p| {
            matches!(
                container_status(p, "c")["state"]["waiting"]["reason"].as_str(),
                Some("ErrImagePull" | "ImagePullBackOff")
            )
        })
    });
    assert!(container_status(&p, "c")["state"]["waiting"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("example.invalid/nothing:1.0"));
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=noimage",
    ]);
    assert!(
        events.contains("Failed") && events.contains("example.invalid/nothing:1.0"),
        "{events}"
    );
    c.ok(&["delete", "pod", "noimage", "--grace-period=0", "--force"]);
}

#[test]
fn pods_keep_running_across_a_kill_9_of_kubelite() {
    let mut c = Cluster::start_with_agent(&[]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: survivor}
spec:
  containers: [{name: c, image: busybox, command: ["sleep", "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: finisher}
spec:
  restartPolicy: Never
  containers: [{name: c, image: busybox, command: ["sh", "-c", "exit 7"]}]
"#,
    );
    let before = wait_phase(&c, "survivor", "Running");
    wait_phase(&c, "finisher", "Failed");
    let id = container_status(&before, "c")["containerID"].clone();
    c.restart();
    // Same container, not restarted; the finished pod keeps its exit code.
    let after = poll("survivor re-adopted", START, || {
        pod_json(&c, "survivor").filter(|p| p["status"]["phase"] == "Running")
    });
    let cs = container_status(&after, "c");
    assert_eq!(cs["containerID"], id, "{after}");
    assert_eq!(cs["restartCount"], 0);
    let fin = pod_json(&c, "finisher").expect("finisher");
    assert_eq!(
        container_status(&fin, "c")["state"]["terminated"]["exitCode"],
        7
    );
    // The re-adopted pod can still be deleted gracefully.
    c.ok(&["delete", "pod", "survivor", "--grace-period=1"]);
    assert!(pod_json(&c, "survivor").is_none());
}

#[test]
fn probes_drive_readiness_and_liveness_restarts() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(&["apply", "-f", "-"], r#"
apiVersion: v1
kind: Pod
metadata: {name: probed}
spec:
  containers:
  - name: web
    image: busybox
    command: ["sh", "-c", "mkdir -p /www; (sleep 1; echo ok > /www/index.html) & exec httpd -f -p 8080 -h /www"]
    readinessProbe:
      httpGet: {path: /index.html, port: 8080}
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata: {name: unhealthy}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
    livenessProbe:
      exec: {command: ["cat", "/nonexistent"]}
      periodSeconds: 1
      failureThreshold: 1
"#);
    let ready = poll("readiness probe makes the pod Ready", START, || {
        pod_json(&c, "probed").filter(|p| {
            p["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|x| x["type"] == "Ready" && x["status"] == "True")
            })
        })
    });
    assert_eq!(container_status(&ready, "web")["ready"], true);
    let restarted = poll("liveness failure restarts the container", START, || {
        pod_json(&c, "unhealthy").filter(|p| {
            container_status(p, "c")["restartCount"]
                .as_i64()
                .unwrap_or(0)
                >= 1
        })
    });
    assert_eq!(restarted["status"]["phase"], "Running");
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=unhealthy",
    ]);
    assert!(
        events.contains("Unhealthy") && events.contains("Liveness probe failed"),
        "{events}"
    );
    c.ok(&["delete", "pod", "--all", "--grace-period=0", "--force"]);
}

#[test]
fn oom_killed_container_is_reported() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "x=a; while true; do x=$x$x; done"]
    resources:
      limits: {memory: 16Mi}
"#,
    );
    let p = wait_phase(&c, "hog", "Failed");
    let t = &container_status(&p, "c")["state"]["terminated"];
    assert_eq!(t["reason"], "OOMKilled", "{p}");
    assert_eq!(t["exitCode"], 137);
    assert_eq!(p["status"]["qosClass"], "Burstable");
    c.ok(&["delete", "pod", "hog", "--grace-period=0", "--force"]);
}

#[test]
fn config_maps_secrets_downward_api_and_host_network() {
    let c = Cluster::start_with_agent(&[]);
    c.ok(&[
        "create",
        "configmap",
        "cfg",
        "--from-literal=greeting=hello",
    ]);
    c.ok(&[
        "create",
        "secret",
        "generic",
        "sec",
        "--from-literal=password=hunter2",
    ]);
    c.ok_stdin(&["apply", "-f", "-"], r#"
apiVersion: v1
kind: Pod
metadata: {name: reader, labels: {app: reader}}
spec:
  restartPolicy: Never
  volumes:
  - {name: cfg, configMap: {name: cfg}}
  - {name: sec, secret: {secretName: sec, defaultMode: 0400}}
  - name: info
    downwardAPI:
      items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]
  containers:
  - name: c
    image: busybox
    env:
    - {name: FROM_CM, valueFrom: {configMapKeyRef: {name: cfg, key: greeting}}}
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    command: ["sh", "-c", "test \"$(cat /cfg/greeting)\" = hello && test \"$(cat /sec/password)\" = hunter2 && grep -q 'app=\"reader\"' /info/labels && test \"$FROM_CM\" = hello && test \"$POD_NAME\" = reader && test \"$(hostname)\" = reader && ! touch /cfg/x"]
    volumeMounts:
    - {name: cfg, mountPath: /cfg}
    - {name: sec, mountPath: /sec}
    - {name: info, mountPath: /info}
---
apiVersion: v1
kind: Pod
metadata: {name: hostnet}
spec:
  hostNetwork: true
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "ip link show lo >/dev/null && test \"$(hostname)\" != hostnet"]
"#);
    let p = wait_phase(&c, "reader", "Succeeded");
    assert_eq!(
        container_status(&p, "c")["state"]["terminated"]["exitCode"],
        0
    );
    let h = poll("hostnet finished", START, || {
        pod_json(&c, "hostnet")
            .filter(|p| matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
    });
    assert_eq!(h["status"]["phase"], "Succeeded", "{h}");
    let node_ip = h["status"]["hostIP"].clone();
    assert_eq!(
        h["status"]["podIP"], node_ip,
        "a hostNetwork pod has the node's IP"
    );
    c.ok(&["delete", "pod", "--all", "--grace-period=0", "--force"]);
}

#[test]
fn nothing_leaks_across_create_delete_cycles() {
    let c = Cluster::start_with_agent(&[]);
    let bridge = format!("klt{}", c.port);
    for round in 0..3 {
        let mut manifest = String::new();
        for i in 0..10 {
            manifest.push_str(&format!(
                "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: cyc-{round}-{i}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers: [{{name: c, image: busybox, command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 0.1; done\"]}}]\n"
            ));
        }
        c.ok_stdin(&["apply", "-f", "-"], &manifest);
        for i in 0..10 {
            wait_phase(&c, &format!("cyc-{round}-{i}"), "Running");
        }
        c.ok(&["delete", "pods", "--all"]);
    }
    let data = c.data_dir().to_path_buf();
    poll("pod state removed from the node", START, || {
        let pods = std::fs::read_dir(data.join("agent/pods"))
            .map(|d| d.count())
            .unwrap_or(0);
        let ips = std::fs::read_dir(data.join("agent/network/ipam"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("10."))
                    .count()
            })
            .unwrap_or(0);
        let logs = std::fs::read_dir(data.join("agent/logs"))
            .map(|d| d.count())
            .unwrap_or(0);
        (pods == 0 && ips == 0 && logs == 0).then_some(())
    });
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let leaked: Vec<&str> = mounts
        .lines()
        .filter(|l| l.contains(&*data.to_string_lossy()) && l.contains("/agent/pods/"))
        .collect();
    assert!(leaked.is_empty(), "leaked mounts: {leaked:?}");
    let links = std::process::Command::new("ip")
        .args(["-o", "link", "show", "master", &bridge])
        .output()
        .expect("ip");
    assert!(
        String::from_utf8_lossy(&links.stdout).trim().is_empty(),
        "veths left on {bridge}: {}",
        String::from_utf8_lossy(&links.stdout)
    );
}

#[test]
fn termination_is_retried_after_an_agent_restart() {
    let mut c = Cluster::start_with_agent(&[]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: dying}
spec:
  terminationGracePeriodSeconds: 2
  containers: [{name: c, image: busybox, command: ["sleep", "3600"]}]
"#,
    );
    wait_phase(&c, "dying", "Running");
    c.ok(&["delete", "pod", "dying", "--wait=false"]);
    c.restart();
    // The restarted agent finds the pod terminating, sends TERM again, waits the grace period,
    // kills the container (sleep ignores TERM as PID 1) and removes the pod.
    poll("pod gone after the restart", START, || {
        pod_json(&c, "dying").is_none().then_some(())
    });
    let pods_dir = c.data_dir().join("agent/pods");
    poll("node state cleaned", START, || {
        std::fs::read_dir(&pods_dir)
            .map(|d| d.count() == 0)
            .unwrap_or(true)
            .then_some(())
    });
}

#[test]
fn sidecar_init_containers_run_alongside_and_stop_when_the_app_is_done() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(&["apply", "-f", "-"], r#"
apiVersion: v1
kind: Pod
metadata: {name: withsidecar}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 2
  initContainers:
  - name: side
    image: busybox
    restartPolicy: Always
    command: ["sh", "-c", "mkdir -p /www && echo from-sidecar > /www/index.html && exec httpd -f -p 8080 -h /www"]
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "until wget -qO- http://localhost:8080/ | grep -q from-sidecar; do sleep 0.2; done"]
"#);
    let p = wait_phase(&c, "withsidecar", "Succeeded");
    assert_eq!(
        container_status(&p, "app")["state"]["terminated"]["exitCode"],
        0,
        "{p}"
    );
    let side = &p["status"]["initContainerStatuses"][0];
    assert!(
        side["state"]["terminated"].is_object(),
        "the sidecar is stopped once the app is done: {p}"
    );
    c.ok(&[
        "delete",
        "pod",
        "withsidecar",
        "--grace-period=0",
        "--force",
    ]);
}
