//! End-to-end: `kubectl port-forward` (WebSocket tunnel carrying SPDY/3.1) to a pod running
//! as a real container on the server's own node agent (root required, as in CI).

mod common;

use common::{json, poll, Cluster};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

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

#[test]
fn port_forward_to_a_pod_over_websocket() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(&["apply", "-f", "-"], r#"
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: httpd
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo hello-through-port-forward > /www/index.html && exec httpd -f -p 8080 -h /www"]
"#);
    poll("pod web Running", Duration::from_secs(60), || {
        let out = c.kubectl(&["get", "pod", "web", "-o", "json"]);
        let pod = json(&String::from_utf8_lossy(&out.stdout));
        (out.status.success() && pod["status"]["phase"] == "Running").then_some(())
    });
    let port = free_port();
    let mapping = format!("{port}:8080");
    let mut child = c
        .kubectl_cmd(&["port-forward", "pod/web", &mapping])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kubectl port-forward");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) else {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "no Forwarding line; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    assert!(line.contains("Forwarding from 127.0.0.1"), "{line}");
    // The httpd server is up (the pod is Running, but the shell may not have exec'd yet).
    let mut results = Vec::new();
    for _ in 0..2 {
        let body = poll(
            "a response through port-forward",
            Duration::from_secs(20),
            || {
                let r = fetch(port);
                r.contains("200 OK").then_some(r)
            },
        );
        results.push(body);
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    for r in &results {
        assert!(
            r.contains("hello-through-port-forward"),
            "{r}\nkubectl stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Nothing listens on 9999: the failure comes back as text on the error stream.
    let port = free_port();
    let mapping = format!("{port}:9999");
    let mut child = c
        .kubectl_cmd(&["port-forward", "pod/web", &mapping])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kubectl port-forward");
    // Keep reading stdout: kubectl dies of SIGPIPE if its "Handling connection" line has
    // nowhere to go.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("Forwarding from"), "{first}");
    let rest = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stdout.read_to_string(&mut rest);
        rest
    });
    let r = fetch(port);
    assert!(!r.contains("200 OK"), "{r}");
    std::thread::sleep(Duration::from_millis(500));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let rest = rest.join().unwrap();
    assert!(
        err.contains("error forwarding port 9999"),
        "stderr: {err}\nstdout: {rest}"
    );

    // kubectl's plain SPDY path (1.30 and older, or with websockets off): tests/legacy_spdy.rs.
    c.ok(&["delete", "pod", "--all", "--grace-period=0", "--force"]);
}
