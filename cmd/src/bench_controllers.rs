//! `kubelite bench --controllers`: the workload controllers and scheduler measured from the
//! outside, with the real `kubectl`: a Deployment of N replicas from `kubectl apply` to fully
//! Available (real containers on the node agent), a rolling update of it, and the control
//! plane's CPU and memory at rest with 1,000 pods in store (a Deployment spread by the scheduler
//! over fake nodes, so no container runs and only the controllers are measured).

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `kubelite server` child on a temporary data dir.
struct Server {
    child: Child,
    dir: tempfile::TempDir,
    bridge: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let run = self.dir.path().join("run");
        let _ = Command::new(std::env::current_exe().unwrap_or_default())
            .args(["killall", "--data-dir"])
            .arg(self.dir.path())
            .arg("--run-dir")
            .arg(&run)
            .args(["--bridge", &self.bridge, "--pod-cidr", POD_CIDR])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

const POD_CIDR: &str = "10.233.7.0/24";

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Server {
    fn start(image_archive: Option<&Path>, extra: &[&str]) -> anyhow::Result<Server> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args(["server", "--bind-address", "127.0.0.1", "--https-port"])
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(dir.path());
        match image_archive {
            Some(archive) => {
                let images = dir.path().join("images");
                std::fs::create_dir_all(&images)?;
                std::fs::copy(archive, images.join("busybox-oci.tar"))
                    .with_context(|| format!("copying {}", archive.display()))?;
                cmd.arg("--run-dir")
                    .arg(dir.path().join("run"))
                    .args(["--bridge", &format!("kbc{port}")])
                    .args(["--pod-cidr", POD_CIDR])
                    .args(["--max-pods", "200", "--node-name", "bench-node"]);
            }
            None => {
                cmd.arg("--disable-agent");
            }
        }
        cmd.args(extra)
            .env("KUBELITE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = cmd.spawn()?;
        let s = Server {
            child,
            dir,
            bridge: format!("kbc{port}"),
        };
        let t0 = Instant::now();
        while !s.kubeconfig().exists() || s.kubectl(&["get", "--raw", "/readyz"]).is_err() {
            if t0.elapsed() > Duration::from_secs(30) {
                bail!("server not ready in 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(s)
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig.yaml")
    }

    fn kubectl_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--cache-dir")
            .arg(self.dir.path().join("kubectl-cache"))
            .args(args);
        c
    }

    fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.kubectl_cmd(args).stdin(Stdio::null()).output()?;
        if !out.status.success() {
            bail!(
                "kubectl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn apply(&self, manifest: &str) -> anyhow::Result<()> {
        use std::io::Write;
        let mut child = self
            .kubectl_cmd(&["apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(manifest.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("kubectl apply: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn deployment(name: &str, replicas: usize, version: &str) -> String {
    format!(
        r#"{{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {{"name": "{name}"}},
        "spec": {{"replicas": {replicas}, "selector": {{"matchLabels": {{"app": "{name}"}}}},
          "strategy": {{"type": "RollingUpdate", "rollingUpdate": {{"maxSurge": "25%", "maxUnavailable": "25%"}}}},
          "template": {{"metadata": {{"labels": {{"app": "{name}"}}}},
            "spec": {{"terminationGracePeriodSeconds": 0,
              "containers": [{{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                "env": [{{"name": "VERSION", "value": "{version}"}}],
                "resources": {{"requests": {{"cpu": "1m", "memory": "1Mi"}}}}}}]}}}}}}}}"#
    )
}

/// CPU time (user + system, in clock ticks) of a process.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = f.get(11).and_then(|s| s.parse().ok()).unwrap_or(0);
    let stime: u64 = f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok(utime + stime)
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// CPU use of a process over a window, as a percentage of one core.
fn cpu_percent(pid: u32, window: Duration) -> anyhow::Result<f64> {
    let hz = 100.0; // USER_HZ on Linux
    let t0 = cpu_ticks(pid)?;
    std::thread::sleep(window);
    let t1 = cpu_ticks(pid)?;
    Ok((t1 - t0) as f64 / hz / window.as_secs_f64() * 100.0)
}

pub fn run(image_archive: &Path, replicas: usize, at_rest_pods: usize) -> anyhow::Result<()> {
    // 1. A Deployment of `replicas` real pods: apply → Available; then a rolling update.
    {
        let s = Server::start(Some(image_archive), &[])?;
        let t0 = Instant::now();
        s.apply(&deployment("bench", replicas, "1"))?;
        s.kubectl(&["rollout", "status", "deployment/bench", "--timeout=600s"])?;
        let available = t0.elapsed();
        println!(
            "deployment of {replicas} replicas, kubectl apply → fully Available: {:.2} s",
            available.as_secs_f64()
        );
        std::thread::sleep(Duration::from_secs(5));
        let cpu = cpu_percent(s.pid(), Duration::from_secs(20))?;
        println!(
            "at rest with {replicas} running pods: server (API + controllers + agent) CPU {cpu:.2}% of a core, RSS {:.1} MiB",
            rss_mib(s.pid())
        );
        let t0 = Instant::now();
        s.kubectl(&["set", "env", "deployment/bench", "VERSION=2"])?;
        s.kubectl(&["rollout", "status", "deployment/bench", "--timeout=600s"])?;
        println!(
            "rolling update of {replicas} replicas (maxSurge 25%, maxUnavailable 25%), set env → rollout complete: {:.2} s",
            t0.elapsed().as_secs_f64()
        );
    }
    // 2. Control plane at rest with `at_rest_pods` pods in store, spread over fake nodes.
    {
        let s = Server::start(None, &["--controllers=*,-nodelifecycle"])?;
        let nodes = at_rest_pods.div_ceil(100).max(1);
        for i in 0..nodes {
            s.apply(&format!(
                r#"{{"apiVersion": "v1", "kind": "Node", "metadata": {{"name": "fake-{i}",
                    "labels": {{"kubernetes.io/hostname": "fake-{i}"}}}}}}"#
            ))?;
            s.kubectl(&[
                "patch",
                "node",
                &format!("fake-{i}"),
                "--subresource=status",
                "--type=merge",
                "-p",
                r#"{"status": {"capacity": {"cpu": "64", "memory": "256Gi", "pods": "110"},
                    "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "110"},
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "message": "ready", "lastHeartbeatTime": "2026-01-01T00:00:00Z",
                    "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}"#,
            ])?;
        }
        let t0 = Instant::now();
        s.apply(&deployment("rest", at_rest_pods, "1"))?;
        loop {
            let out = s.kubectl(&[
                "get",
                "pods",
                "-o",
                "jsonpath={range .items[*]}{.spec.nodeName}{\"\\n\"}{end}",
            ])?;
            let bound = out.lines().filter(|l| !l.trim().is_empty()).count();
            if bound >= at_rest_pods {
                break;
            }
            if t0.elapsed() > Duration::from_secs(600) {
                bail!("only {bound} of {at_rest_pods} pods bound after 600 s");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        println!(
            "{at_rest_pods} pods created by the ReplicaSet and bound by the scheduler over {nodes} fake nodes: {:.2} s",
            t0.elapsed().as_secs_f64()
        );
        std::thread::sleep(Duration::from_secs(5));
        let cpu = cpu_percent(s.pid(), Duration::from_secs(30))?;
        println!(
            "control plane at rest with {at_rest_pods} pods in store: CPU {cpu:.2}% of a core over 30 s, RSS {:.1} MiB",
            rss_mib(s.pid())
        );
    }
    Ok(())
}
