//! `kubelite bench`: starts a fresh server (this binary, as a child process, on a temporary
//! data dir) and prints what it measures: cold start to `/readyz`, idle RSS, pod creates/s with
//! p50/p99 latency from concurrent clients, LIST latency of many pods, and watch event delivery
//! latency to many watchers.

use anyhow::{bail, Context};
use clap::Args;
use futures_util::StreamExt;
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Pods created in the create benchmark.
    #[arg(long = "create-pods", default_value_t = 2000)]
    pub create_pods: usize,
    /// Concurrent clients for creates.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Pods in store for the LIST benchmark.
    #[arg(long, default_value_t = 10000)]
    pub list_pods: usize,
    /// Watchers for the watch latency benchmark.
    #[arg(long, default_value_t = 100)]
    pub watchers: usize,
    /// Events sent to the watchers.
    #[arg(long, default_value_t = 20)]
    pub watch_events: usize,
    /// Run the pod lifecycle benchmark instead (node agent; root; needs an image archive).
    #[arg(long)]
    pub pods: bool,
    /// Run the workload-controller benchmark instead (node agent; root; needs an image archive
    /// and kubectl on PATH): a Deployment to Available, its rolling update, and the control plane
    /// at rest with many pods in store.
    #[arg(long)]
    pub controllers: bool,
    /// Replicas of the Deployment in `--controllers`.
    #[arg(long, default_value_t = 100)]
    pub deployment_replicas: usize,
    /// Pods in store for the at-rest figure of `--controllers`.
    #[arg(long, default_value_t = 1000)]
    pub at_rest_pods: usize,
    /// Image archive (busybox) for `--pods`.
    #[arg(long, default_value = "testdata/images/out/busybox-oci.tar")]
    pub image_archive: std::path::PathBuf,
    /// Pods per phase of `--pods` (0 skips the latency and memory phases).
    #[arg(long, default_value_t = 100)]
    pub pod_count: usize,
    /// Timed `podman kube play` runs of the same pod in `--pods` (0 skips podman).
    #[arg(long, default_value_t = 10)]
    pub podman_runs: usize,
    /// With `--pods`: create and delete this many pods, then check that nothing leaked.
    #[arg(long, default_value_t = 0)]
    pub leak_cycles: usize,
    /// Pods in flight at once during the leak run.
    #[arg(long, default_value_t = 10)]
    pub leak_parallel: usize,
}

struct ServerProcess {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS")
}

fn pod(ns: &str, name: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": {"app": "bench", "tier": "web"}},
        "spec": {"containers": [{"name": "main", "image": "busybox:latest", "command": ["sleep", "3600"],
            "ports": [{"containerPort": 8080}], "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}})
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.controllers {
        return crate::bench_controllers::run(
            &args.image_archive,
            args.deployment_replicas,
            args.at_rest_pods,
        );
    }
    if args.pods {
        let _ = rustls::crypto::ring::default_provider().install_default();
        return rt.block_on(crate::bench_pods::run(&args));
    }
    rt.block_on(bench(args))
}

async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let exe = std::env::current_exe()?;
    let insecure = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()?;
    let start = Instant::now();
    let child = Command::new(&exe)
        .args([
            "server",
            "--https-port",
            &port.to_string(),
            "--bind-address",
            "127.0.0.1",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("KUBELITE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let pid = child.id();
    let server = ServerProcess { child, _dir: dir };
    let base = format!("https://127.0.0.1:{port}");
    loop {
        if let Ok(r) = insecure.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!("server did not become ready in 30 s");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let ready = start.elapsed();
    println!("cold start to /readyz OK: {:.1} ms", ms(ready));

    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "idle RSS after start: {:.1} MiB",
        rss_kib(pid)? as f64 / 1024.0
    );

    let token = std::fs::read_to_string(server._dir.path().join("tls/admin.token"))?
        .trim()
        .to_string();
    let ca = std::fs::read(server._dir.path().join("tls/ca.crt"))?;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca)?)
        .default_headers({
            let mut h = reqwest::header::HeaderMap::new();
            h.insert(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {token}").parse()?,
            );
            h
        })
        .pool_max_idle_per_host(64)
        .build()?;
    let c = Arc::new((client, base.clone()));

    for ns in ["bench", "bench-list", "bench-watch"] {
        let r =
            c.0.post(format!("{base}/api/v1/namespaces"))
                .json(&json!({"metadata": {"name": ns}}))
                .send()
                .await?;
        if !r.status().is_success() {
            bail!("creating namespace {ns}: {}", r.status());
        }
    }

    // Creates.
    let per_client = args.create_pods.div_ceil(args.clients.max(1));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..args.clients {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let body = pod("bench", &format!("p-{w}-{i}"));
                let t = Instant::now();
                let r =
                    c.0.post(format!("{}/api/v1/namespaces/bench/pods", c.1))
                        .json(&body)
                        .send()
                        .await?;
                let status = r.status();
                let _ = r.bytes().await?;
                if status.as_u16() != 201 {
                    bail!("create returned {status}");
                }
                lat.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let elapsed = t0.elapsed();
    lat.sort();
    println!(
        "pod creates: {} with {} clients in {:.2} s = {:.0} creates/s; latency p50 {:.2} ms, p99 {:.2} ms",
        lat.len(),
        args.clients,
        elapsed.as_secs_f64(),
        lat.len() as f64 / elapsed.as_secs_f64(),
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99))
    );

    // Fill up to list_pods in total and time LIST of all pods.
    let missing = args.list_pods.saturating_sub(lat.len());
    let mut tasks = Vec::new();
    let per = missing.div_ceil(args.clients.max(1));
    for w in 0..args.clients {
        let c = c.clone();
        let n = per.min(missing.saturating_sub(w * per));
        tasks.push(tokio::spawn(async move {
            for i in 0..n {
                let r =
                    c.0.post(format!("{}/api/v1/namespaces/bench-list/pods", c.1))
                        .json(&pod("bench-list", &format!("l-{w}-{i}")))
                        .send()
                        .await?;
                if r.status().as_u16() != 201 {
                    bail!("create returned {}", r.status());
                }
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let mut list_lat = Vec::new();
    let mut count = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let bytes =
            c.0.get(format!("{base}/api/v1/pods"))
                .send()
                .await?
                .bytes()
                .await?;
        list_lat.push(t.elapsed());
        let v: serde_json::Value = serde_json::from_slice(&bytes)?;
        count = v["items"].as_array().map(Vec::len).unwrap_or(0);
    }
    list_lat.sort();
    println!(
        "LIST all pods ({count} items, JSON): median {:.1} ms, min {:.1} ms, max {:.1} ms; RSS now {:.1} MiB",
        ms(percentile(&list_lat, 0.5)),
        ms(list_lat[0]),
        ms(list_lat[list_lat.len() - 1]),
        rss_kib(pid)? as f64 / 1024.0
    );

    // Watch latency.
    let rv = {
        let v: serde_json::Value =
            c.0.get(format!("{base}/api/v1/namespaces/bench-watch/configmaps"))
                .send()
                .await?
                .json()
                .await?;
        v["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("0")
            .to_string()
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let mut watchers = Vec::new();
    for _ in 0..args.watchers {
        let c = c.clone();
        let tx = tx.clone();
        let rv = rv.clone();
        let resp =
            c.0.get(format!(
                "{}/api/v1/namespaces/bench-watch/configmaps?watch=true&resourceVersion={rv}",
                c.1
            ))
            .send()
            .await?;
        watchers.push(tokio::spawn(async move {
            let mut stream = resp.bytes_stream();
            let mut buf = Vec::new();
            while let Some(Ok(chunk)) = stream.next().await {
                buf.extend_from_slice(&chunk);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line) {
                        if let Some(n) = v["object"]["metadata"]["name"].as_str() {
                            let _ = tx.send((n.to_string(), Instant::now()));
                        }
                    }
                }
            }
        }));
    }
    drop(tx);
    let mut sent = Vec::new();
    let mut deliveries = Vec::new();
    for i in 0..args.watch_events {
        let name = format!("w-{i}");
        let t = Instant::now();
        sent.push((name.clone(), t));
        let r =
            c.0.post(format!("{base}/api/v1/namespaces/bench-watch/configmaps"))
                .json(&json!({"metadata": {"name": name}, "data": {"k": "v"}}))
                .send()
                .await?;
        if r.status().as_u16() != 201 {
            bail!("configmap create returned {}", r.status());
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = 0;
        while got < args.watchers {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some((n, at))) => {
                    if let Some((_, t0)) = sent.iter().find(|(s, _)| *s == n) {
                        deliveries.push(at - *t0);
                    }
                    if n == name {
                        got += 1;
                    }
                }
                _ => bail!(
                    "watch events missing: got {got} of {} for {name}",
                    args.watchers
                ),
            }
        }
    }
    for w in watchers {
        w.abort();
    }
    deliveries.sort();
    println!(
        "watch delivery to {} watchers ({} events, {} deliveries): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (from create sent to event parsed)",
        args.watchers,
        args.watch_events,
        deliveries.len(),
        ms(percentile(&deliveries, 0.5)),
        ms(percentile(&deliveries, 0.99)),
        ms(deliveries.last().copied().unwrap_or_default())
    );
    drop(server);
    Ok(())
}
