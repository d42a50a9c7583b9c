//! `kubelite bench --pods`: pod lifecycle figures with the node agent (root required): start
//! latency from POST to `Running` seen by a watch (100 pods one at a time, 100 at once),
//! delete-to-gone latency, the server's RSS with 0 and 50 running pods and the memory of the
//! container helpers (RSS, PSS, USS); `podman kube play` of the same pod in the same run
//! (`bench_podman`); with `--leak-cycles N`, the create/delete leak run (`bench_leak`).
//! This module owns the server under test ([`Bench`]): start, API calls, one pod watch.

use anyhow::{bail, Context};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use crate::bench::BenchArgs;
use crate::bench_podman::{self, PodmanFigures};
use crate::bench_procmem::{self as procmem, Mem};

const BRIDGE: &str = "kltbench0";
const POD_CIDR: &str = "10.88.0.0/24";
const NODE: &str = "bench-node";

/// The one-container pod of every phase (and of podman's).
pub fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
        "spec": {"terminationGracePeriodSeconds": 5, "containers": [{"name": "main", "image": "busybox:latest",
            "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]}]}})
}

/// What the watch reports about a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// First seen with phase Running.
    Running,
    /// DELETED.
    Gone,
}

type Rx = mpsc::UnboundedReceiver<(String, Event, Instant)>;

/// A `kubelite server` with its node agent on a temporary data dir, its own bridge and pod
/// CIDR, an API client and one watch over the pods of `default`.
pub struct Bench {
    child: Child,
    dir: tempfile::TempDir,
    exe: PathBuf,
    client: reqwest::Client,
    base: String,
    rx: Rx,
    watcher: tokio::task::JoinHandle<()>,
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.watcher.abort();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let d = self.dir.path().display().to_string();
        let _ = Command::new(&self.exe)
            .args([
                "killall",
                "--data-dir",
                &d,
                "--run-dir",
                &format!("{d}/run"),
            ])
            .args(["--bridge", BRIDGE, "--pod-cidr", POD_CIDR])
            .env("KUBELITE_LOG", "warn")
            .status();
    }
}

impl Bench {
    /// Starts the server (with `extra` flags), waits for `/readyz` and the Node, and opens
    /// the pod watch.
    pub async fn start(image_archive: &std::path::Path, extra: &[&str]) -> anyhow::Result<Bench> {
        let exe = std::env::current_exe()?;
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("images"))?;
        std::fs::copy(image_archive, dir.path().join("images/busybox.tar"))
            .with_context(|| format!("copying {}", image_archive.display()))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let d = dir.path().display().to_string();
        let child = Command::new(&exe)
            .args(["server", "--bind-address", "127.0.0.1"])
            .args(["--https-port", &port.to_string(), "--data-dir", &d])
            .args(["--run-dir", &format!("{d}/run"), "--bridge", BRIDGE])
            .args(["--pod-cidr", POD_CIDR, "--node-name", NODE])
            // No node-pressure eviction from the shared machine's disk and memory.
            .arg("--eviction-hard=")
            .args(extra)
            .env("KUBELITE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let base = format!("https://127.0.0.1:{port}");
        // Until the watch exists, a Bench without one (so Drop cleans up on early errors).
        let (_, rx) = mpsc::unbounded_channel();
        let mut bench = Bench {
            child,
            dir,
            exe,
            client: reqwest::Client::new(),
            base,
            rx,
            watcher: tokio::spawn(async {}),
        };
        let insecure = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()?;
        let t = Instant::now();
        while insecure
            .get(format!("{}/readyz", bench.base))
            .send()
            .await
            .map(|r| !r.status().is_success())
            .unwrap_or(true)
        {
            if t.elapsed() > Duration::from_secs(30) {
                bail!("server not ready");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let token = std::fs::read_to_string(bench.dir.path().join("tls/admin.token"))?
            .trim()
            .to_string();
        let ca = std::fs::read(bench.dir.path().join("tls/ca.crt"))?;
        bench.client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca)?)
            .default_headers({
                let mut h = reqwest::header::HeaderMap::new();
                h.insert(
                    reqwest::header::AUTHORIZATION,
                    format!("Bearer {token}").parse()?,
                );
                h
            })
            .build()?;
        let t = Instant::now();
        loop {
            let r = bench
                .client
                .get(format!("{}/api/v1/nodes/{NODE}", bench.base))
                .send()
                .await?;
            if r.status().is_success() {
                break;
            }
            if t.elapsed() > Duration::from_secs(60) {
                bail!("node {NODE} not registered");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        bench.rx = rx;
        bench.watcher = tokio::spawn(watch_pods(bench.client.clone(), bench.base.clone(), tx));
        Ok(bench)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn bridge(&self) -> &'static str {
        BRIDGE
    }

    /// Creates pod `name`; returns its UID.
    pub async fn create(&self, name: &str) -> anyhow::Result<String> {
        let r = self
            .client
            .post(format!("{}/api/v1/namespaces/default/pods", self.base))
            .json(&pod(name))
            .send()
            .await?;
        if r.status().as_u16() != 201 {
            bail!("create {name}: {}", r.status());
        }
        let created: Value = r.json().await?;
        Ok(created["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Deletes pod `name` (graceful).
    pub async fn delete(&self, name: &str) -> anyhow::Result<()> {
        let r = self
            .client
            .delete(format!(
                "{}/api/v1/namespaces/default/pods/{name}",
                self.base
            ))
            .send()
            .await?;
        if !r.status().is_success() && r.status().as_u16() != 404 {
            bail!("delete {name}: {}", r.status());
        }
        Ok(())
    }

    /// The next watch report, or None after `timeout`.
    pub async fn next_event(&mut self, timeout: Duration) -> Option<(String, Event, Instant)> {
        tokio::time::timeout(timeout, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// Waits for `n` distinct pods to reach `want`; returns when each did.
    async fn wait_for(
        &mut self,
        want: Event,
        n: usize,
    ) -> anyhow::Result<HashMap<String, Instant>> {
        let mut seen: HashMap<String, Instant> = HashMap::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while seen.len() < n {
            match self
                .next_event(deadline.saturating_duration_since(Instant::now()))
                .await
            {
                Some((name, what, at)) if what == want => {
                    seen.insert(name, at);
                }
                Some(_) => {}
                None => bail!("timed out waiting for {want:?}: {} of {n}", seen.len()),
            }
        }
        Ok(seen)
    }
}

/// One watch over the pods of `default` (re-opened from the last resourceVersion if the
/// server ends it); reports when each pod is first seen Running, and when it is DELETED.
async fn watch_pods(
    client: reqwest::Client,
    base: String,
    tx: mpsc::UnboundedSender<(String, Event, Instant)>,
) {
    let list: Option<Value> = match client
        .get(format!("{base}/api/v1/namespaces/default/pods"))
        .send()
        .await
    {
        Ok(r) => r.json().await.ok(),
        Err(_) => None,
    };
    let mut rv = list
        .as_ref()
        .and_then(|l| l["metadata"]["resourceVersion"].as_str())
        .unwrap_or("0")
        .to_string();
    let mut running: HashMap<String, bool> = HashMap::new();
    loop {
        let url = format!("{base}/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}");
        let Ok(resp) = client.get(url).send().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut stream = resp.bytes_stream();
        let mut buf = Vec::new();
        while let Some(Ok(chunk)) = stream.next().await {
            buf.extend_from_slice(&chunk);
            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                let Ok(ev) = serde_json::from_slice::<Value>(&line) else {
                    continue;
                };
                if let Some(v) = ev["object"]["metadata"]["resourceVersion"].as_str() {
                    rv = v.to_string();
                }
                let name = ev["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                if ev["type"] == "DELETED" {
                    running.remove(&name);
                    let _ = tx.send((name, Event::Gone, Instant::now()));
                } else if ev["object"]["status"]["phase"] == "Running"
                    && !running.get(&name).copied().unwrap_or(false)
                {
                    running.insert(name.clone(), true);
                    let _ = tx.send((name, Event::Running, Instant::now()));
                }
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)].as_secs_f64() * 1000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Runs the podman phase, the latency and memory phases and (with `--leak-cycles`) the leak
/// run; fails if the leak run found something that grew.
pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let archive = args.image_archive.clone();
    let runs = args.podman_runs;
    let podman = tokio::task::spawn_blocking(move || {
        bench_podman::run(&archive, &pod("bench-podman"), runs)
    })
    .await??;
    if let Ok(p) = &podman {
        println!(
            "podman kube play, same pod, {} runs after a warm-up: min {:.0} / median {:.0} / max {:.0} ms; kube down median {:.0} ms",
            p.play_ms.len(),
            p.play_ms.first().copied().unwrap_or(0.0),
            p.median_play(),
            p.play_ms.last().copied().unwrap_or(0.0),
            p.down_ms.get(p.down_ms.len() / 2).copied().unwrap_or(0.0),
        );
    }

    let mut p50 = None;
    if args.pod_count > 0 {
        let mut b = Bench::start(&args.image_archive, &[]).await?;
        // Let start-up work (image import, node status) finish before the idle figure.
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!(
            "server RSS with agent, 0 pods: {:.1} MiB",
            procmem::rss_mib(b.pid())
        );
        p50 = Some(latency_and_memory(&mut b, args.pod_count, &podman).await?);
    }
    match (&podman, p50) {
        (Ok(p), Some(ours)) => println!(
            "peer, same run: podman kube play median {:.0} ms vs kubelite one-at-a-time p50 {ours:.1} ms: kubelite/podman = {:.2} (podman is {:.1}x slower)",
            p.median_play(),
            ours / p.median_play().max(0.001),
            p.median_play() / ours.max(0.001)
        ),
        (Err(why), Some(ours)) => println!(
            "peer NOT run here ({why}); DOCUMENTED figure from shared/reference/peer-baselines.md: podman kube play median {:.0} ms; kubelite/podman = {:.2}",
            bench_podman::DOCUMENTED_PLAY_MS,
            ours / bench_podman::DOCUMENTED_PLAY_MS
        ),
        (Err(why), None) => println!("podman phase skipped: {why}"),
        (Ok(_), None) => {}
    }
    if args.leak_cycles > 0 {
        // A server of its own, whose store keeps little history: the SQLite page caches stop
        // growing with the store early, so what RSS does afterwards is the server's own.
        let mut b = Bench::start(&args.image_archive, crate::bench_leak::SERVER_FLAGS).await?;
        let clean = crate::bench_leak::run(&mut b, args.leak_cycles, args.leak_parallel).await?;
        if !clean {
            bail!("leak run: something grew after {} cycles", args.leak_cycles);
        }
    }
    Ok(())
}

/// Start and delete latencies, then memory with 50 running pods; returns the one-at-a-time
/// start p50 (ms).
async fn latency_and_memory(
    b: &mut Bench,
    count: usize,
    podman: &Result<PodmanFigures, String>,
) -> anyhow::Result<f64> {
    // One at a time.
    let mut start = Vec::new();
    let mut delete = Vec::new();
    for i in 0..count {
        let name = format!("seq-{i}");
        let t0 = Instant::now();
        b.create(&name).await?;
        let seen = b.wait_for(Event::Running, 1).await?;
        start.push(seen.values().next().map(|t| *t - t0).unwrap_or_default());
        let t1 = Instant::now();
        b.delete(&name).await?;
        let gone = b.wait_for(Event::Gone, 1).await?;
        delete.push(gone.values().next().map(|t| *t - t1).unwrap_or_default());
    }
    let p50 = pct(&mut start, 0.5);
    println!(
        "pod start, one at a time ({count} pods): p50 {p50:.1} ms, p99 {:.1} ms (POST to Running seen by a watch)",
        pct(&mut start, 0.99)
    );
    // A pod deleted the moment it is Running may get TERM before its shell has set the trap:
    // as PID 1 it ignores TERM then, and is killed when the 5 s grace period ends (as kubelet
    // would).
    let waited_grace = delete
        .iter()
        .filter(|d| **d >= Duration::from_millis(4500))
        .count();
    println!(
        "pod delete to gone (grace period honoured, container exits on TERM): p50 {:.1} ms, p99 {:.1} ms ({waited_grace} of {count} got TERM before the shell's trap and were killed after the 5 s grace)",
        pct(&mut delete, 0.5),
        pct(&mut delete, 0.99)
    );

    // All at once.
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..count {
        let (client, base) = (b.client.clone(), b.base.clone());
        tasks.push(tokio::spawn(async move {
            client
                .post(format!("{base}/api/v1/namespaces/default/pods"))
                .json(&pod(&format!("par-{i}")))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    for t in tasks {
        if t.await?? != 201 {
            bail!("parallel create failed");
        }
    }
    let seen = b.wait_for(Event::Running, count).await?;
    let mut lat: Vec<Duration> = seen.values().map(|t| *t - t0).collect();
    let all = lat.iter().max().copied().unwrap_or_default();
    println!(
        "{count} pods created at once: all Running after {:.2} s (per pod p50 {:.0} ms, p99 {:.0} ms)",
        all.as_secs_f64(),
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );
    // Memory with 50 running pods: delete down to 50.
    for i in 50..count {
        b.delete(&format!("par-{i}")).await?;
    }
    if count > 50 {
        b.wait_for(Event::Gone, count - 50).await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let shims = procmem::shim_pids(&b.data_dir().display().to_string());
    let mem = Mem::sum(&shims);
    println!(
        "server RSS with {} running pods: {:.1} MiB",
        count.min(50),
        procmem::rss_mib(b.pid())
    );
    println!(
        "{} container helpers (kubelite shim): per helper {}; in all RSS {:.1}, PSS {:.1}, USS {:.1} MiB",
        shims.len(),
        mem.per(shims.len()),
        mib(mem.rss),
        mib(mem.pss),
        mib(mem.uss)
    );
    match podman {
        Ok(p) if p.conmons > 0 => println!(
            "podman, same run, one pod: {} conmon: per conmon {}; conmon + pause per pod {}",
            p.conmons,
            p.conmon_mem.per(p.conmons),
            p.pod_overhead.per(1)
        ),
        Ok(_) => println!("podman: no conmon found while the pod ran"),
        Err(_) => println!(
            "podman (DOCUMENTED, not run here): conmon 2.4–2.5 MB RSS per container plus the pause container"
        ),
    }
    // Empty the node for what follows.
    for i in 0..count.min(50) {
        b.delete(&format!("par-{i}")).await?;
    }
    b.wait_for(Event::Gone, count.min(50)).await?;
    Ok(p50)
}
