//! Test harness: starts a real `kubelite server` (this package's binary) on its own data dir and
//! port, drives it with the real `kubectl`, and cleans up by PID when dropped.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running server under test.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    extra: Vec<String>,
}

/// The kubectl to drive (`KUBECTL` overrides; default the one on PATH).
pub fn kubectl_bin() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_string())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Polls `f` until it returns Some or the deadline passes.
pub fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

impl Cluster {
    pub fn start() -> Cluster {
        Self::start_with(&[])
    }

    /// Starts a control-plane-only server with extra `kubelite server` flags.
    pub fn start_with(extra: &[&str]) -> Cluster {
        let mut flags = vec!["--disable-agent".to_string()];
        flags.extend(extra.iter().map(|s| s.to_string()));
        Self::launch(flags)
    }

    /// Starts a server with its node agent, on a bridge and pod network of its own so
    /// clusters of parallel tests don't meet.
    pub fn start_with_agent(extra: &[&str]) -> Cluster {
        let port = free_port();
        let dir = tempfile::tempdir().expect("tempdir");
        let run = dir.path().join("run");
        // The agent imports archives from <data-dir>/images at start.
        let images = dir.path().join("images");
        std::fs::create_dir_all(&images).expect("images dir");
        std::fs::copy(busybox_archive(), images.join("busybox-oci.tar"))
            .expect("copy busybox image");
        let n = port as u32;
        let mut flags = vec![
            "--run-dir".to_string(),
            run.display().to_string(),
            "--bridge".to_string(),
            format!("klt{port}"),
            "--pod-cidr".to_string(),
            format!("10.{}.{}.0/24", 100 + (n / 256) % 100, n % 256),
            "--node-name".to_string(),
            format!("node-{port}"),
            // No node-pressure eviction from the shared machine's real disk and memory (a test
            // that wants it passes its own --eviction-hard, which merges with this empty one).
            "--eviction-hard=".to_string(),
        ];
        flags.extend(extra.iter().map(|s| s.to_string()));
        let mut c = Cluster {
            dir,
            port,
            child: None,
            extra: flags,
        };
        c.spawn();
        c
    }

    fn launch(extra: Vec<String>) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Cluster {
            dir,
            port: free_port(),
            child: None,
            extra,
        };
        c.spawn();
        c
    }

    /// Whether this cluster runs its node agent.
    pub fn is_agent(&self) -> bool {
        self.extra.iter().any(|a| a == "--run-dir")
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig.yaml")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).expect("running")
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_kubelite"))
            .args([
                "server",
                "--bind-address",
                "127.0.0.1",
                "--https-port",
                &self.port.to_string(),
                "--data-dir",
            ])
            .arg(self.dir.path())
            .args(&self.extra)
            .env("KUBELITE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn kubelite");
        self.child = Some(child);
        let port = self.port;
        poll("server /readyz", Duration::from_secs(30), || {
            let out = Command::new("curl")
                .args(["-sk", &format!("https://127.0.0.1:{port}/readyz")])
                .output()
                .ok()?;
            (out.stdout == b"ok").then_some(())
        });
    }

    /// SIGKILL the server and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start the server again on the same data dir and port.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Runs kubectl against this cluster.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_stdin(args, None)
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.kubectl_cmd(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn kubectl");
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// A kubectl command with this cluster's kubeconfig and a private cache.
    pub fn kubectl_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(kubectl_bin());
        cmd.args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("HOME", self.dir.path())
            .env("KUBECACHEDIR", self.dir.path().join("kubecache"));
        cmd
    }

    /// Runs kubectl and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl with a manifest on stdin (`-f -`) and asserts success.
    pub fn ok_stdin(&self, args: &[&str], manifest: &str) -> String {
        let out = self.kubectl_stdin(args, Some(manifest));
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl, asserts failure; returns stderr.
    pub fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.kubectl_stdin(args, stdin);
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded:\nstdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// The admin bearer token.
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tls/admin.token"))
            .expect("token")
            .trim()
            .to_string()
    }

    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("tls/ca.crt")).expect("ca")
    }

    pub fn base_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill9();
        if self.is_agent() {
            // Containers outlive the server (their helpers are detached): stop them and remove
            // the pod network, as `kubelite killall` does for users.
            let mut args: Vec<String> = vec![
                "killall".into(),
                "--data-dir".into(),
                self.dir.path().display().to_string(),
            ];
            for flag in ["--run-dir", "--bridge", "--pod-cidr"] {
                if let Some(i) = self.extra.iter().position(|a| a == flag) {
                    args.push(flag.into());
                    args.push(self.extra[i + 1].clone());
                }
            }
            let _ = Command::new(env!("CARGO_BIN_EXE_kubelite"))
                .args(&args)
                .status();
        }
    }
}

/// The busybox OCI archive built by `testdata/images/build-busybox.sh` (built on first use).
pub fn busybox_archive() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/images");
    let out = root.join("out/busybox-oci.tar");
    let status = Command::new("bash")
        .arg(root.join("build-busybox.sh"))
        .stdout(Stdio::null())
        .status()
        .expect("run build-busybox.sh");
    assert!(status.success(), "testdata/images/build-busybox.sh failed");
    out
}

impl Cluster {
    /// A raw HTTP request with the admin token through curl; returns (status, body).
    pub fn http(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&str>,
    ) -> (u16, String) {
        self.http_as(method, path, content_type, body, Some(&self.token()))
    }

    /// Like `http`, with the given bearer token (None = no credentials).
    pub fn http_as(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&str>,
        token: Option<&str>,
    ) -> (u16, String) {
        let ca = self.dir.path().join("tls/ca.crt");
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "30", "-X", method, "--cacert"])
            .arg(&ca)
            .args(["-w", "\n%{http_code}"]);
        if let Some(t) = token {
            cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
        }
        if let Some(ct) = content_type {
            cmd.args(["-H", &format!("Content-Type: {ct}")]);
        }
        if let Some(b) = body {
            cmd.args(["--data-binary", b]);
        }
        cmd.arg(format!("{}{}", self.base_url(), path));
        let out = cmd.output().expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// GET a watch stream until the server closes it (or `max_secs`), returning its lines.
    pub fn watch_lines(&self, path: &str, max_secs: u32) -> Vec<String> {
        let ca = self.dir.path().join("tls/ca.crt");
        let out = Command::new("curl")
            .args(["-sN", "--max-time", &max_secs.to_string(), "--cacert"])
            .arg(&ca)
            .args(["-H", &format!("Authorization: Bearer {}", self.token())])
            .arg(format!("{}{}", self.base_url(), path))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// Parses JSON or panics with the text.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The time now in UTC, formatted by `date -u` (e.g. `+%Y-%m-%dT%H:%M:%SZ`).
pub fn utc_now(format: &str) -> String {
    let out = Command::new("date")
        .args(["-u", format])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Cluster {
    /// Registers a Node that no kubelet runs (a "fake" node for the scheduler and controllers)
    /// and reports it Ready with this capacity. `labels` are extra JSON members of its labels
    /// (leading comma), `spec` JSON members of its spec.
    pub fn add_fake_node(&self, name: &str, cpu: &str, memory: &str, labels: &str, spec: &str) {
        self.ok_stdin(
            &["create", "-f", "-"],
            &format!(
                r#"{{"apiVersion": "v1", "kind": "Node", "metadata": {{"name": "{name}",
                "labels": {{"kubernetes.io/hostname": "{name}" {labels}}}}}, "spec": {{{spec}}}}}"#
            ),
        );
        self.report_fake_node_ready(name, cpu, memory);
    }

    /// Posts a fake node's status as its kubelet would: Ready, heartbeat now.
    pub fn report_fake_node_ready(&self, name: &str, cpu: &str, memory: &str) {
        let ts = utc_now("+%Y-%m-%dT%H:%M:%SZ");
        let status = format!(
            r#"{{"status": {{"capacity": {{"cpu": "{cpu}", "memory": "{memory}", "pods": "110"}},
            "allocatable": {{"cpu": "{cpu}", "memory": "{memory}", "pods": "110"}},
            "conditions": [{{"type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
            "lastHeartbeatTime": "{ts}", "lastTransitionTime": "{ts}"}}]}}}}"#
        );
        self.ok(&[
            "patch",
            "node",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &status,
        ]);
    }

    /// Renews a fake node's Lease in `kube-node-lease`, as its kubelet would.
    pub fn renew_fake_node_lease(&self, name: &str) {
        let lease = format!(
            r#"{{"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {{"name": "{name}", "namespace": "kube-node-lease"}},
            "spec": {{"holderIdentity": "{name}", "leaseDurationSeconds": 40, "renewTime": "{}"}}}}"#,
            utc_now("+%Y-%m-%dT%H:%M:%S.%6NZ")
        );
        self.ok_stdin(&["apply", "-f", "-"], &lease);
    }
}
