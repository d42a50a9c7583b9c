//! `kubectl logs` against a server running its node agent (needs root: pods run as real
//! containers): exact output, `--tail`, `--timestamps`, `--since`, `--limit-bytes`, `-c` and the
//! default-container annotation, `--all-containers`, `--previous` after restarts, `-f` that
//! streams lines written after it started and ends by itself when the container exits, a log
//! that was rotated, and the apiserver's and kubelet's errors (as Status objects).

mod common;

use common::{poll, Cluster};
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long pods may take to get where a step needs them.
const DEADLINE: Duration = Duration::from_secs(90);

/// PIDs of `kubelite shim` processes working for this data directory.
fn shims_of(data_dir: &Path) -> Vec<u32> {
    let needle = data_dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.get(1).map(String::as_str) == Some("shim")
            && args.iter().any(|a| a.contains(&needle))
        {
            found.push(pid);
        }
    }
    found
}

/// Force-deletes every pod and waits until they, their container helpers and their state on
/// the node (pod directories, torn down last) are gone.
fn delete_pods(c: &Cluster) {
    c.ok(&["delete", "pod", "--all", "--grace-period=0", "--force"]);
    let pods_dir = c.data_dir().join("agent/pods");
    poll("pods and their containers to be gone", DEADLINE, || {
        let out = c.kubectl(&["get", "pods", "-o", "name"]);
        let left_on_disk = std::fs::read_dir(&pods_dir).map_or(0, |d| d.count());
        (out.status.success()
            && out.stdout.is_empty()
            && shims_of(c.data_dir()).is_empty()
            && left_on_disk == 0)
            .then_some(())
    });
}

fn get_pod(c: &Cluster, name: &str) -> Value {
    common::json(&c.ok(&["get", "pod", name, "-o", "json"]))
}

/// The status of container `ctr` (init or app), if reported.
fn ctr_status(pod: &Value, ctr: &str) -> Option<Value> {
    ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|f| {
            pod.pointer(&format!("/status/{f}"))
                .and_then(Value::as_array)
        })
        .flatten()
        .find(|s| s["name"] == ctr)
        .cloned()
}

/// Waits until container `ctr` of pod `name` satisfies `f`; returns its status.
fn wait_ctr(c: &Cluster, name: &str, ctr: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    poll(&format!("{name}/{ctr}: {what}"), DEADLINE, || {
        ctr_status(&get_pod(c, name), ctr).filter(|s| f(s))
    })
}

fn terminated(s: &Value) -> bool {
    s.pointer("/state/terminated").is_some()
}

fn running(s: &Value) -> bool {
    s.pointer("/state/running").is_some()
}

/// `kubectl logs <args>`: stdout, asserting success.
fn logs(c: &Cluster, args: &[&str]) -> String {
    let mut all = vec!["logs"];
    all.extend_from_slice(args);
    c.ok(&all)
}

/// `kubectl logs <args>` that must fail: stderr.
fn logs_fail(c: &Cluster, args: &[&str]) -> String {
    let mut all = vec!["logs"];
    all.extend_from_slice(args);
    c.fails(&all, None)
}

const PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: two
  annotations:
    kubectl.kubernetes.io/default-container: b
spec:
  restartPolicy: Never
  containers:
  - name: a
    image: busybox:test
    command: ["sh", "-c", "echo one; echo two; echo three; printf last"]
  - name: b
    image: busybox:test
    command: ["sh", "-c", "echo to-stderr >&2"]
---
apiVersion: v1
kind: Pod
metadata:
  name: restarts
spec:
  restartPolicy: Always
  volumes:
  - name: data
    emptyDir: {}
  containers:
  - name: r
    image: busybox:test
    volumeMounts:
    - name: data
      mountPath: /data
    command: ["sh", "-c", "n=$(cat /data/n 2>/dev/null || echo 0); echo \"run $n\"; echo $((n+1)) > /data/n; if [ $n -ge 1 ]; then exec sleep 3600; fi; exit 1"]
---
apiVersion: v1
kind: Pod
metadata:
  name: crash
spec:
  restartPolicy: Always
  containers:
  - name: c
    image: busybox:test
    command: ["sh", "-c", "echo run; exit 1"]
---
apiVersion: v1
kind: Pod
metadata:
  name: missing
spec:
  containers:
  - name: m
    image: busybox:not-in-the-store
---
apiVersion: v1
kind: Pod
metadata:
  name: initwait
spec:
  initContainers:
  - name: i
    image: busybox:test
    command: ["sleep", "3600"]
  containers:
  - name: app
    image: busybox:test
---
apiVersion: v1
kind: Pod
metadata:
  name: big
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox:test
    command: ["sh", "-c", "s=$(head -c 1000 /dev/zero | tr '\\0' x); seq 1 12000 | sed \"s/$/ $s/\""]
"#;

fn ticker(go_dir: &Path) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: ticker
spec:
  restartPolicy: Never
  volumes:
  - name: go
    hostPath:
      path: {}
  containers:
  - name: t
    image: busybox:test
    volumeMounts:
    - name: go
      mountPath: /go
    command: ["sh", "-c", "echo waiting; while [ ! -e /go/go ]; do sleep 0.05; done; for i in 1 2 3 4 5 6 7 8 9 10; do echo tick $i; sleep 0.2; done"]
"#,
        go_dir.display()
    )
}

#[test]
fn kubectl_logs() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: running pods needs root");
        return;
    }
    // The harness puts the busybox image in <data-dir>/images before the agent starts.
    let cluster = Cluster::start_with_agent(&[]);
    let c = &cluster;
    let go_dir = c.data_dir().join("go");
    std::fs::create_dir_all(&go_dir).unwrap();
    c.ok_stdin(&["apply", "-f", "-"], PODS);
    c.ok_stdin(&["apply", "-f", "-"], &ticker(&go_dir));

    // A pod bound to a node that does not exist: the apiserver cannot reach its kubelet.
    c.ok(&[
        "run",
        "elsewhere",
        "--image=busybox:test",
        "--overrides",
        r#"{"spec":{"nodeName":"elsewhere"}}"#,
    ]);
    assert_eq!(
        logs_fail(c, &["elsewhere"]),
        "Error from server (NotFound): nodes \"elsewhere\" not found\n"
    );

    // --- Exact output, options, containers.
    wait_ctr(c, "two", "a", "terminated", terminated);
    wait_ctr(c, "two", "b", "terminated", terminated);
    // The annotation picks b; its stderr is in the log like stdout.
    assert_eq!(logs(c, &["two"]), "to-stderr\n");
    assert_eq!(logs(c, &["two", "-c", "a"]), "one\ntwo\nthree\nlast");
    assert_eq!(logs(c, &["two", "-c", "a", "--tail=2"]), "three\nlast");
    assert_eq!(logs(c, &["two", "-c", "a", "--tail=0"]), "");
    assert_eq!(logs(c, &["two", "-c", "a", "--limit-bytes=6"]), "one\ntw");
    assert_eq!(
        logs(c, &["two", "-c", "a", "--since=1h"]),
        "one\ntwo\nthree\nlast"
    );
    assert_eq!(
        logs(c, &["two", "-c", "a", "--since-time=2099-01-01T00:00:00Z"]),
        ""
    );
    // kubectl keeps the per-container requests in a Go map, so the containers come in either order.
    let all = logs(c, &["two", "--all-containers"]);
    assert!(
        all == "one\ntwo\nthree\nlastto-stderr\n" || all == "to-stderr\none\ntwo\nthree\nlast",
        "{all:?}"
    );
    let stamped = logs(c, &["two", "-c", "a", "--timestamps"]);
    let mut last_ts = String::new();
    let texts: Vec<&str> = stamped
        .split('\n')
        .map(|l| {
            let (ts, text) = l.split_once(' ').unwrap_or_else(|| panic!("{stamped}"));
            // RFC 3339 with nine fraction digits in UTC, as kubelet writes them.
            let b = ts.as_bytes();
            assert!(
                b.len() == 30
                    && b[10] == b'T'
                    && b[19] == b'.'
                    && b[29] == b'Z'
                    && b[20..29].iter().all(u8::is_ascii_digit),
                "timestamp {ts:?} in {stamped:?}"
            );
            assert!(*ts >= *last_ts, "timestamps out of order: {stamped}");
            last_ts = ts.to_string();
            text
        })
        .collect();
    assert_eq!(texts, ["one", "two", "three", "last"]);

    // --- Errors, as the apiserver and kubelet word them.
    let err = logs_fail(c, &["two", "-c", "zz"]);
    assert_eq!(err, "error: container zz is not valid for pod two\n");
    let err = logs_fail(c, &["two", "-c", "a", "--previous"]);
    assert_eq!(
        err,
        "Error from server (BadRequest): previous terminated container \"a\" in pod \"two\" not found\n"
    );
    let base = "/api/v1/namespaces/default/pods/two/log";
    for (query, code, message) in [
        ("", 400, "a container name must be specified for pod two, choose one of: [a b]"),
        ("?container=zz", 400, "container zz is not valid for pod two"),
        (
            "?container=a&tailLines=-1",
            422,
            "PodLogOptions \"two\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0",
        ),
        (
            "?container=a&limitBytes=0",
            422,
            "PodLogOptions \"two\" is invalid: limitBytes: Invalid value: 0: must be greater than 0",
        ),
        (
            "?container=a&sinceSeconds=-5",
            422,
            "PodLogOptions \"two\" is invalid: sinceSeconds: Invalid value: -5: must be greater than 0",
        ),
        (
            "?container=a&sinceSeconds=5&sinceTime=2024-01-01T00:00:00Z",
            422,
            "PodLogOptions \"two\" is invalid: : Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified",
        ),
    ] {
        let (got, body) = c.http("GET", &format!("{base}{query}"), None, None);
        let status = common::json(&body);
        assert_eq!(
            (got, status["kind"].as_str(), status["message"].as_str()),
            (code, Some("Status"), Some(message)),
            "{query}: {body}"
        );
    }
    let s = wait_ctr(c, "missing", "m", "waiting on its image", |s| {
        s.pointer("/state/waiting/reason")
            .and_then(Value::as_str)
            .is_some_and(|r| r == "ErrImagePull" || r == "ImagePullBackOff")
    });
    let err = logs_fail(c, &["missing"]);
    let why = |r: &str| {
        format!("Error from server (BadRequest): container \"m\" in pod \"missing\" is waiting to start: {r}\n")
    };
    assert!(
        err == why("image can't be pulled") || err == why("trying and failing to pull image"),
        "{err} (status {s})"
    );
    wait_ctr(c, "initwait", "i", "running", running);
    let reason = wait_ctr(c, "initwait", "app", "waiting", |s| {
        s.pointer("/state/waiting/reason").is_some()
    })["state"]["waiting"]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        logs_fail(c, &["initwait", "-c", "app"]),
        format!("Error from server (BadRequest): container \"app\" in pod \"initwait\" is waiting to start: {reason}\n")
    );
    assert_eq!(logs(c, &["initwait", "-c", "i"]), "");

    // --- Restarts: the current attempt and --previous.
    wait_ctr(c, "restarts", "r", "running again after a restart", |s| {
        s["restartCount"].as_i64() >= Some(1) && running(s)
    });
    assert_eq!(logs(c, &["restarts"]), "run 1\n");
    assert_eq!(logs(c, &["restarts", "--previous"]), "run 0\n");
    wait_ctr(c, "crash", "c", "restarted", |s| {
        s["restartCount"].as_i64() >= Some(1)
            && s.pointer("/lastState/terminated/containerID").is_some()
    });
    assert_eq!(logs(c, &["crash", "--previous"]), "run\n");

    // --- A rotated log: 12,000 lines of ~1 KB go past the 10 MiB rotation size.
    wait_ctr(c, "big", "c", "terminated", terminated);
    let uid = get_pod(c, "big")["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let log_dir = c.data_dir().join(format!("agent/logs/default_big_{uid}/c"));
    let files: Vec<String> = std::fs::read_dir(&log_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.iter().any(|f| f.starts_with("0.log.")),
        "no rotated file in {files:?}"
    );
    let xs = "x".repeat(1000);
    let all = logs(c, &["big"]);
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 12000);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(*l, format!("{} {xs}", i + 1), "line {}", i + 1);
    }
    assert_eq!(
        logs(c, &["big", "--tail=2"]),
        format!("11999 {xs}\n12000 {xs}\n")
    );
    assert_eq!(logs(c, &["big", "-f", "--tail=1"]), format!("12000 {xs}\n"));

    // --- Follow: lines written after `logs -f` started arrive, and it ends by itself.
    wait_ctr(c, "ticker", "t", "running", running);
    poll("ticker's first line", DEADLINE, || {
        (logs(c, &["ticker"]) == "waiting\n").then_some(())
    });
    let mut child = c
        .kubectl_cmd(&["logs", "-f", "ticker"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl logs -f");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let seen = seen.clone();
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    poll("logs -f to print what was there", DEADLINE, || {
        (seen.lock().unwrap().as_slice() == b"waiting\n").then_some(())
    });
    assert!(child.try_wait().unwrap().is_none(), "logs -f ended early");
    std::fs::write(go_dir.join("go"), "").unwrap();
    let status = poll("logs -f to end by itself", DEADLINE, || {
        child.try_wait().unwrap()
    });
    reader.join().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "logs -f: {status}: {stderr}");
    let expected: String = std::iter::once("waiting\n".to_string())
        .chain((1..=10).map(|i| format!("tick {i}\n")))
        .collect();
    assert_eq!(String::from_utf8_lossy(&seen.lock().unwrap()), expected);

    // --- Clean up: pods and their containers (helpers outlive the server otherwise).
    delete_pods(c);
}
