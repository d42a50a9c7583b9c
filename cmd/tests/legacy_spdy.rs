//! End-to-end: kubectl's plain SPDY/3.1 paths (an HTTP/1.1 `Upgrade: SPDY/3.1`, no WebSocket):
//! `exec`/`attach` with kubectl 1.29 (SPDY only, `v5`/`v4.channel.k8s.io`), `port-forward` with
//! kubectl 1.30 (SPDY only, `portforward.k8s.io`), and kubectl 1.32 told to skip WebSockets.
//! Real containers on the server's own node agent (root required, as in CI).

mod common;

use common::{json, poll, Cluster};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

const START: Duration = Duration::from_secs(60);

/// A versioned kubectl shipped with the Cloud SDK.
fn versioned(version: &str) -> String {
    format!("/usr/lib/google-cloud-sdk/bin/kubectl.{version}")
}

/// `kubectl.<version> args…` against the cluster, with the harness's environment.
fn kubectl_v(c: &Cluster, version: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(versioned(version));
    cmd.args(args)
        .env("KUBECONFIG", c.kubeconfig())
        .env("HOME", c.data_dir())
        .env("KUBECACHEDIR", c.data_dir().join("kubecache"));
    cmd
}

/// Runs a command to its end with `stdin` (or none) and collects its output.
fn run(mut cmd: Command, stdin: Option<&[u8]>) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn kubectl");
    if let Some(input) = stdin {
        let mut w = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        // Written from a thread: kubectl's output may fill its pipe before all input is in.
        std::thread::spawn(move || {
            let _ = w.write_all(&input);
        });
    }
    child.wait_with_output().expect("kubectl output")
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
fn wait_container(c: &Cluster, name: &str, container: &str, state: &str) -> Value {
    poll(&format!("{name}/{container} {state}"), START, || {
        pod_json(c, name).filter(|p| container_state(p, container)[state].is_object())
    })
}

/// Runs `command` (a shell command line) under `script`, so kubectl has a terminal; stdin
/// stays open (and empty) until the command ends. None when `script` is not installed.
fn under_terminal(c: &Cluster, command: &str) -> Option<Output> {
    let has_script = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_script {
        eprintln!("skipping the tty checks: `script` (util-linux) is not installed");
        return None;
    }
    let mut child = Command::new("script")
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

const EXEC_PODS: &str = r#"
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
  - name: quick
    image: busybox
    command: ["sh", "-c", "exit 0"]
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
"#;

/// The exec checks every SPDY client must pass (`kubectl` is a prepared command maker).
fn exec_checks(kubectl: &dyn Fn(&[&str]) -> Command) {
    // stdout, stderr apart, and the exit status.
    let out = run(kubectl(&["exec", "box", "--", "echo", "hi"]), None);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(text(&out.stdout), "hi\n");
    let out = run(
        kubectl(&["exec", "box", "--", "sh", "-c", "echo out; echo err >&2"]),
        None,
    );
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(text(&out.stdout), "out\n");
    assert_eq!(text(&out.stderr), "err\n");

    // A non-zero exit: kubectl exits with it and says so.
    let out = run(kubectl(&["exec", "box", "--", "sh", "-c", "exit 3"]), None);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("command terminated with exit code 3"),
        "{}",
        show(&out)
    );

    // stdin to its end (the FIN on the stdin stream), more than a SPDY window each way.
    let out = run(
        kubectl(&["exec", "-i", "box", "--", "cat"]),
        Some(b"data\nmore\n"),
    );
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(text(&out.stdout), "data\nmore\n");
    let big: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    let out = run(
        kubectl(&["exec", "-i", "box", "--", "wc", "-c"]),
        Some(big.as_bytes()),
    );
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(text(&out.stdout).trim(), big.len().to_string());
    let out = run(
        kubectl(&["exec", "-i", "box", "--", "sh", "-c", "cat; echo done >&2"]),
        Some(big.as_bytes()),
    );
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        out.stdout == big.as_bytes(),
        "{} bytes back",
        out.stdout.len()
    );
    assert_eq!(text(&out.stderr), "done\n");
}

#[test]
fn exec_and_attach_over_spdy_with_kubectl_1_29() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(&["apply", "-f", "-"], EXEC_PODS);
    wait_container(&c, "box", "main", "running");
    wait_container(&c, "duo", "quick", "terminated");
    wait_container(&c, "att", "c", "running");
    let k = |args: &[&str]| kubectl_v(&c, "1.29", args);
    exec_checks(&k);

    // What the kubelet refuses before the upgrade is its plain-text answer.
    let out = run(k(&["exec", "duo", "-c", "quick", "--", "true"]), None);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        text(&out.stderr)
            .contains("error: unable to upgrade connection: container not found (\"quick\")"),
        "{}",
        show(&out)
    );
    // A process that cannot start: the status on the error stream.
    let out = run(k(&["exec", "box", "--", "/no/such/binary"]), None);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("/no/such/binary"),
        "{}",
        show(&out)
    );

    // A terminal: no stderr stream, the size on the resize stream.
    let script = format!(
        "stty cols 123 rows 45; {} exec -it box -- sh -c 'i=0; while [ \"$(stty size)\" != \"45 123\" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; stty size; tty; exit 4'",
        versioned("1.29")
    );
    if let Some(out) = under_terminal(&c, &script) {
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(4), "{}", show(&out));
        assert!(stdout.contains("45 123\r\n"), "{}", show(&out));
        assert!(stdout.contains("/dev/pts/"), "{}", show(&out));
    }

    // attach: the container's output from now on, and input to its stdin.
    let out = run(k(&["attach", "-i", "att"]), Some(b"one\nquit\n"));
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(text(&out.stdout), "got:one\ngot:quit\n", "{}", show(&out));
    assert!(
        text(&out.stderr).contains("err:one\nerr:quit\n"),
        "{}",
        show(&out)
    );
    let pod = wait_container(&c, "att", "c", "terminated");
    assert_eq!(container_state(&pod, "c")["terminated"]["exitCode"], 5);

    c.ok(&["delete", "pod", "--all", "--grace-period=0", "--force"]);
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn fetch(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to kubectl");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    // kubectl resets the local connection when the pod side failed.
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

const WEB_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: httpd
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo hello-through-spdy > /www/index.html && head -c 200000 /dev/zero | tr '\\0' x > /www/big && exec httpd -f -p 8080 -h /www"]
"#;

fn wait_running(c: &Cluster, name: &str) {
    poll(&format!("pod {name} Running"), START, || {
        pod_json(c, name).filter(|p| p["status"]["phase"] == "Running")
    });
}

/// A running `kubectl port-forward`: its stdout and stderr are read as they come (so kubectl
/// never blocks on them).
struct Forward {
    child: Child,
    port: u16,
    stderr: Arc<Mutex<String>>,
}

fn port_forward(mut cmd: Command, port: u16) -> Forward {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kubectl port-forward");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let collected = Arc::new(Mutex::new(String::new()));
    let sink = collected.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(mut s) = sink.lock() {
                s.push_str(&line);
                s.push('\n');
            }
        }
    });
    let mut f = Forward {
        child,
        port,
        stderr: collected,
    };
    match lines.recv_timeout(Duration::from_secs(30)) {
        Ok(line) if line.contains("Forwarding from 127.0.0.1") => f,
        other => panic!("no Forwarding line ({other:?}); stderr: {}", f.stop()),
    }
}

impl Forward {
    fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Stops kubectl; returns what it printed on stderr.
    fn stop(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr()
    }
}

/// Two fetches of the index and one large file through a forward to `web:8080`, then a
/// forward to a closed port that reports the failure.
fn port_forward_checks(kubectl: &dyn Fn(&[&str]) -> Command) {
    let port = free_port();
    let mut f = port_forward(
        kubectl(&["port-forward", "pod/web", &format!("{port}:8080")]),
        port,
    );
    // httpd is up once the pod is Running and the shell exec'd it: poll.
    for _ in 0..2 {
        let r = poll(
            "a response through port-forward",
            Duration::from_secs(20),
            || {
                let r = fetch(f.port);
                r.contains("200 OK").then_some(r)
            },
        );
        assert!(r.contains("hello-through-spdy"), "{r}");
    }
    let big = {
        let mut s = TcpStream::connect(("127.0.0.1", f.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"GET /big HTTP/1.0\r\n\r\n").unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    };
    let body_at = big
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .unwrap_or(big.len());
    assert_eq!(big.len() - body_at, 200_000, "{}", text(&big[..body_at]));
    assert!(big[body_at..].iter().all(|b| *b == b'x'));
    let err = f.stop();
    assert!(!err.contains("error"), "{err}");

    // Nothing listens on 9999: the failure comes back as text on the error stream.
    let port = free_port();
    let mut f = port_forward(
        kubectl(&["port-forward", "pod/web", &format!("{port}:9999")]),
        port,
    );
    let r = fetch(f.port);
    assert!(!r.contains("200 OK"), "{r}");
    poll("the forwarding error", Duration::from_secs(20), || {
        f.stderr()
            .contains("error forwarding port 9999")
            .then_some(())
    });
    f.stop();
}

#[test]
fn port_forward_over_spdy_with_kubectl_1_30() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(&["apply", "-f", "-"], WEB_POD);
    wait_running(&c, "web");
    port_forward_checks(&|args: &[&str]| kubectl_v(&c, "1.30", args));
    c.ok(&["delete", "pod", "--all", "--grace-period=0", "--force"]);
}

#[test]
fn kubectl_1_32_with_websockets_turned_off() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(&["apply", "-f", "-"], EXEC_PODS);
    c.ok_stdin(&["apply", "-f", "-"], WEB_POD);
    wait_container(&c, "box", "main", "running");
    wait_running(&c, "web");
    exec_checks(&|args: &[&str]| {
        let mut cmd = kubectl_v(&c, "1.32", args);
        cmd.env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false");
        cmd
    });
    port_forward_checks(&|args: &[&str]| {
        let mut cmd = kubectl_v(&c, "1.32", args);
        cmd.env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false");
        cmd
    });
    c.ok(&["delete", "pod", "--all", "--grace-period=0", "--force"]);
}
