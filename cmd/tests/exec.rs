//! End-to-end: `kubectl exec`, `kubectl cp` and `kubectl attach` against containers run by the
//! server's own node agent, over the WebSocket `v5.channel.k8s.io` protocol kubectl 1.30+
//! speaks (root required, as in CI).

mod common;

use common::{json, kubectl_bin, poll, Cluster};
use serde_json::Value;
use std::process::{Output, Stdio};
use std::time::Duration;

const START: Duration = Duration::from_secs(60);

fn pod_json(c: &Cluster, name: &str) -> Option<Value> {
    let out = c.kubectl(&["get", "pod", name, "-o", "json"]);
    out.status
        .success()
        .then(|| json(&String::from_utf8_lossy(&out.stdout)))
}

fn container_state(pod: &Value, name: &str) -> Value {
    pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == name))
        .map(|c| c["state"].clone())
        .unwrap_or(Value::Null)
}

/// Waits until `container` of pod `name` has the state `state` (running, terminated).
fn wait_container(c: &Cluster, name: &str, container: &str, state: &str) {
    poll(&format!("{name}/{container} {state}"), START, || {
        pod_json(c, name).filter(|p| container_state(p, container)[state].is_object())
    });
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(o: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    )
}

fn delete_pods(c: &Cluster) {
    c.ok(&["delete", "pod", "--all", "--grace-period=0", "--force"]);
}

const PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: box}
spec:
  containers:
  - name: main
    image: busybox
    command: ["sleep", "100000"]
---
apiVersion: v1
kind: Pod
metadata: {name: duo}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: ["sleep", "100000"]
    env: [{name: WHO, value: i-am-main}]
  - name: quick
    image: busybox
    command: ["sh", "-c", "exit 0"]
"#;

#[test]
fn exec_runs_commands_and_reports_like_kubernetes() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(&["apply", "-f", "-"], PODS);
    wait_container(&c, "box", "main", "running");
    wait_container(&c, "duo", "main", "running");
    wait_container(&c, "duo", "quick", "terminated");

    // stdout, and the exit status.
    let out = c.kubectl(&["exec", "box", "--", "echo", "hi"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(text(&out.stdout), "hi\n");

    // stdout and stderr stay apart.
    let out = c.kubectl(&["exec", "box", "--", "sh", "-c", "echo out; echo err >&2"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(text(&out.stdout), "out\n");
    assert_eq!(text(&out.stderr), "err\n");

    // A non-zero exit: kubectl exits with it and says so.
    let out = c.kubectl(&["exec", "box", "--", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("command terminated with exit code 3"),
        "{}",
        show(&out)
    );

    // stdin, to its end.
    let out = c.kubectl_stdin(&["exec", "-i", "box", "--", "cat"], Some("data\nmore\n"));
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(text(&out.stdout), "data\nmore\n");
    let big: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    let out = c.kubectl_stdin(&["exec", "-i", "box", "--", "wc", "-c"], Some(&big));
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(text(&out.stdout).trim(), big.len().to_string());

    // -c picks the container; without it kubectl defaults to the first and says so.
    let out = c.kubectl(&["exec", "duo", "-c", "main", "--", "sh", "-c", "echo $WHO"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(text(&out.stdout), "i-am-main\n");
    let out = c.kubectl(&["exec", "duo", "--", "sh", "-c", "echo $WHO"]);
    assert_eq!(text(&out.stdout), "i-am-main\n", "{}", show(&out));
    assert!(
        text(&out.stderr).contains("Defaulted container \"main\" out of: main, quick"),
        "{}",
        show(&out)
    );

    // A container that is not running: the kubelet's answer, through the error channel.
    let err = c.fails(&["exec", "duo", "-c", "quick", "--", "true"], None);
    assert!(
        err.contains(
            "error: Internal error occurred: unable to upgrade connection: container not found (\"quick\")"
        ),
        "{err}"
    );
    // A container the pod does not have, a pod that does not exist: the apiserver's answers.
    let err = c.fails(&["exec", "duo", "-c", "bogus", "--", "true"], None);
    assert!(
        err.contains("Error from server (BadRequest): container bogus is not valid for pod duo"),
        "{err}"
    );
    let err = c.fails(&["exec", "nope", "--", "true"], None);
    assert!(
        err.contains("Error from server (NotFound): pods \"nope\" not found"),
        "{err}"
    );
    // A process that cannot start.
    let err = c.fails(&["exec", "box", "--", "/no/such/binary"], None);
    assert!(
        err.contains("error executing command in container:") && err.contains("/no/such/binary"),
        "{err}"
    );

    // SPDY (kubectl's fallback, and the only path of 1.29 and older): tests/legacy_spdy.rs.

    // A client that goes away: exec_outlives_its_client_as_with_containerd.

    delete_pods(&c);
}

#[test]
fn kubectl_cp_copies_into_and_out_of_a_container() {
    let c = Cluster::start_with_agent(&[]);
    c.ok(&[
        "run",
        "box",
        "--image=busybox",
        "--restart=Never",
        "--",
        "sleep",
        "100000",
    ]);
    wait_container(&c, "box", "box", "running");
    let local = c.data_dir().join("cp");
    std::fs::create_dir_all(local.join("tree/sub")).unwrap();
    // Not text: every byte value, several times over, in a file larger than a frame.
    let blob: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(local.join("blob.bin"), &blob).unwrap();
    std::fs::write(local.join("tree/sub/leaf.txt"), "leaf\n").unwrap();
    let p = |name: &str| local.join(name).display().to_string();

    c.ok(&["cp", &p("blob.bin"), "box:/tmp/blob.bin"]);
    let size = c.ok(&["exec", "box", "--", "wc", "-c", "/tmp/blob.bin"]);
    assert!(size.starts_with(&blob.len().to_string()), "{size}");
    c.ok(&["cp", "box:/tmp/blob.bin", &p("back.bin")]);
    assert!(std::fs::read(local.join("back.bin")).unwrap() == blob);

    c.ok(&["cp", &p("tree"), "box:/tmp/tree"]);
    assert_eq!(
        c.ok(&["exec", "box", "--", "cat", "/tmp/tree/sub/leaf.txt"]),
        "leaf\n"
    );
    c.ok(&["cp", "box:/tmp/tree", &p("tree-back")]);
    assert_eq!(
        std::fs::read_to_string(local.join("tree-back/sub/leaf.txt")).unwrap(),
        "leaf\n"
    );
    delete_pods(&c);
}

/// Runs `command` (a shell command line) under `script`, so kubectl has a terminal; stdin
/// stays open (and empty) until the command ends. None when `script` is not installed.
fn under_terminal(c: &Cluster, command: &str) -> Option<Output> {
    let has_script = std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_script {
        eprintln!("skipping the tty checks: `script` (util-linux) is not installed");
        return None;
    }
    let mut child = std::process::Command::new("script")
        .args(["-qec", command, "/dev/null"])
        .env("KUBECONFIG", c.kubeconfig())
        .env("HOME", c.data_dir())
        .env("KUBECACHEDIR", c.data_dir().join("kubecache"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script");
    // Held open: at the end of its input `script` would type an end-of-file character.
    let stdin = child.stdin.take();
    let out = child.wait_with_output().expect("script output");
    drop(stdin);
    Some(out)
}

#[test]
fn tty_exec_and_attach() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: box}
spec:
  containers:
  - name: main
    image: busybox
    command: ["sleep", "100000"]
---
apiVersion: v1
kind: Pod
metadata: {name: att}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    stdin: true
    command: ["sh", "-c", "while read line; do echo got:$line; echo err:$line >&2; [ $line = quit ] && exit 5; done"]
"#,
    );
    wait_container(&c, "box", "main", "running");
    wait_container(&c, "att", "c", "running");

    // A terminal of the caller's size: the size arrives on the resize channel, soon after the
    // process started, so the process waits for it (bounded: it prints what it has then).
    let script = format!(
        "stty cols 123 rows 45; {} exec -it box -- sh -c 'i=0; while [ \"$(stty size)\" != \"45 123\" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; stty size; tty; exit 4'",
        kubectl_bin()
    );
    if let Some(out) = under_terminal(&c, &script) {
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(4), "{}", show(&out));
        assert!(stdout.contains("45 123\r\n"), "{}", show(&out));
        assert!(stdout.contains("/dev/pts/"), "{}", show(&out));
        assert!(
            stdout.contains("command terminated with exit code 4"),
            "{}",
            show(&out)
        );
    }

    // attach: the container's output from now on, and input to its stdin.
    let out = c.kubectl_stdin(&["attach", "-i", "att"], Some("one\nquit\n"));
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(text(&out.stdout), "got:one\ngot:quit\n", "{}", show(&out));
    assert!(
        text(&out.stderr).contains("err:one\nerr:quit\n"),
        "{}",
        show(&out)
    );
    let pod = poll("att terminated", START, || {
        pod_json(&c, "att").filter(|p| container_state(p, "c")["terminated"].is_object())
    });
    assert_eq!(container_state(&pod, "c")["terminated"]["exitCode"], 5);

    delete_pods(&c);
}

/// Reads `r` until what was read contains `marker`; returns it all.
fn read_until(r: &mut impl std::io::Read, marker: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !text(&seen).contains(marker) {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => panic!("output ended before {marker:?}: {:?}", text(&seen)),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    text(&seen)
}

/// The contents of `path` in pod `box` (empty if it does not exist).
fn file_in_box(c: &Cluster, path: &str) -> String {
    text(&c.kubectl(&["exec", "box", "--", "cat", path]).stdout)
}

/// kubelet + containerd: the CRI exec waits for its process whatever happens to the streams,
/// so a client that goes away does not kill it. The end of the session closes its stdin
/// (StdinOnce); without a tty it then runs on until it exits (its output going nowhere, without
/// SIGPIPE); with a tty the closed input closes the console, which hangs the terminal up
/// (SIGHUP).
#[test]
fn exec_outlives_its_client_as_with_containerd() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: box}
spec:
  containers:
  - name: main
    image: busybox
    command: ["sleep", "100000"]
"#,
    );
    wait_container(&c, "box", "main", "running");

    let script = "echo up; cat >/dev/null; echo stdin-closed > /tmp/left; \
                  until [ -e /tmp/go ]; do sleep 0.1; done; \
                  echo talking-to-nobody; echo exited > /tmp/left";
    let mut gone = c
        .kubectl_cmd(&["exec", "-i", "box", "--", "sh", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl");
    read_until(gone.stdout.as_mut().expect("stdout"), "up\n");
    let _ = gone.kill();
    let _ = gone.wait();
    poll("the abandoned exec's stdin closed", START, || {
        (file_in_box(&c, "/tmp/left") == "stdin-closed\n").then_some(())
    });
    c.ok(&["exec", "box", "--", "touch", "/tmp/go"]);
    poll("the abandoned exec ran to its end", START, || {
        (file_in_box(&c, "/tmp/left") == "exited\n").then_some(())
    });

    // With a tty: SIGHUP. Killing `script` hangs up kubectl's terminal, which ends kubectl.
    let has_script = std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if has_script {
        let command = format!(
            "{} exec -it box -- sh -c 'trap \"echo hup > /tmp/hup; exit 3\" HUP; echo ready; while :; do sleep 0.1; done'",
            kubectl_bin()
        );
        let mut term = std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("KUBECONFIG", c.kubeconfig())
            .env("HOME", c.data_dir())
            .env("KUBECACHEDIR", c.data_dir().join("kubecache"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("script");
        read_until(term.stdout.as_mut().expect("stdout"), "ready");
        let _ = term.kill();
        let _ = term.wait();
        poll("the abandoned terminal hung up", START, || {
            (file_in_box(&c, "/tmp/hup") == "hup\n").then_some(())
        });
    } else {
        eprintln!("skipping the tty check: `script` (util-linux) is not installed");
    }
    delete_pods(&c);
}
