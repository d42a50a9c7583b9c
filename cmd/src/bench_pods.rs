//! `kubelite bench --pods`: pod lifecycle figures with the node agent (root required): start
//! latency from POST to `Running` seen by a watch (100 pods one at a time, 100 at once),
//! delete-to-gone latency, and the server's RSS with 0 and 50 running pods.

use anyhow::{bail, Context};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

struct Server {
    child: Child,
    dir: tempfile::TempDir,
    exe: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
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
                "--bridge",
                "kltbench0",
                "--pod-cidr",
                "10.88.0.0/24",
            ])
            .status();
    }
}

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
        "spec": {"terminationGracePeriodSeconds": 5, "containers": [{"name": "main", "image": "busybox:latest",
            "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]}]}})
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)].as_secs_f64() * 1000.0
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// Sum of RSS of the `kubelite shim` processes of this data dir.
fn shims_rss_mib(data_dir: &str) -> (usize, f64) {
    let mut n = 0;
    let mut total = 0.0;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd);
        if cmd.contains("\0shim\0") && cmd.contains(data_dir) {
            n += 1;
            total += rss_mib(pid);
        }
    }
    (n, total)
}

pub async fn run(image_archive: &std::path::Path, count: usize) -> anyhow::Result<()> {
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
        .args([
            "server",
            "--bind-address",
            "127.0.0.1",
            "--https-port",
            &port.to_string(),
            "--data-dir",
            &d,
        ])
        .args([
            "--run-dir",
            &format!("{d}/run"),
            "--bridge",
            "kltbench0",
            "--pod-cidr",
            "10.88.0.0/24",
            "--node-name",
            "bench-node",
        ])
        .env("KUBELITE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let pid = child.id();
    let server = Server {
        child,
        dir,
        exe: exe.clone(),
    };
    let base = format!("https://127.0.0.1:{port}");
    let insecure = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()?;
    let t = Instant::now();
    while insecure
        .get(format!("{base}/readyz"))
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
    let token = std::fs::read_to_string(server.dir.path().join("tls/admin.token"))?
        .trim()
        .to_string();
    let ca = std::fs::read(server.dir.path().join("tls/ca.crt"))?;
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
        .build()?;
    // Wait for the node to be Ready.
    loop {
        let r = client
            .get(format!("{base}/api/v1/nodes/bench-node"))
            .send()
            .await?;
        if r.status().is_success() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("server RSS with agent, 0 pods: {:.1} MiB", rss_mib(pid));

    // One watch over all pods; it reports when each pod is first seen Running, and DELETED.
    let list: Value = client
        .get(format!("{base}/api/v1/namespaces/default/pods"))
        .send()
        .await?
        .json()
        .await?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let resp = client
        .get(format!(
            "{base}/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}"
        ))
        .send()
        .await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, &'static str, Instant)>();
    let watcher = tokio::spawn(async move {
        let mut stream = resp.bytes_stream();
        let mut buf = Vec::new();
        let mut running: HashMap<String, bool> = HashMap::new();
        while let Some(Ok(chunk)) = stream.next().await {
            buf.extend_from_slice(&chunk);
            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                let Ok(ev) = serde_json::from_slice::<Value>(&line) else {
                    continue;
                };
                let name = ev["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                if ev["type"] == "DELETED" {
                    let _ = tx.send((name, "gone", Instant::now()));
                } else if ev["object"]["status"]["phase"] == "Running"
                    && !running.get(&name).copied().unwrap_or(false)
                {
                    running.insert(name.clone(), true);
                    let _ = tx.send((name, "running", Instant::now()));
                }
            }
        }
    });
    let c = Arc::new((client, base));

    // One at a time.
    let mut start = Vec::new();
    let mut delete = Vec::new();
    for i in 0..count {
        let name = format!("seq-{i}");
        let t0 = Instant::now();
        let r =
            c.0.post(format!("{}/api/v1/namespaces/default/pods", c.1))
                .json(&pod(&name))
                .send()
                .await?;
        if r.status().as_u16() != 201 {
            bail!("create: {}", r.status());
        }
        let seen = wait_for(&mut rx, "running", 1).await?;
        start.push(seen.values().next().map(|t| *t - t0).unwrap_or_default());
        let t1 = Instant::now();
        c.0.delete(format!("{}/api/v1/namespaces/default/pods/{name}", c.1))
            .send()
            .await?;
        let gone = wait_for(&mut rx, "gone", 1).await?;
        delete.push(gone.values().next().map(|t| *t - t1).unwrap_or_default());
    }
    println!(
        "pod start, one at a time ({count} pods): p50 {:.1} ms, p99 {:.1} ms (POST to Running seen by a watch)",
        pct(&mut start, 0.5),
        pct(&mut start, 0.99)
    );
    println!(
        "pod delete to gone (grace period honoured, container exits on TERM): p50 {:.1} ms, p99 {:.1} ms",
        pct(&mut delete, 0.5),
        pct(&mut delete, 0.99)
    );

    // All at once.
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..count {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.0.post(format!("{}/api/v1/namespaces/default/pods", c.1))
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
    let seen = wait_for(&mut rx, "running", count).await?;
    let mut lat: Vec<Duration> = seen.values().map(|t| *t - t0).collect();
    let all = lat.iter().max().copied().unwrap_or_default();
    println!(
        "{count} pods created at once: all Running after {:.2} s (per pod p50 {:.0} ms, p99 {:.0} ms)",
        all.as_secs_f64(),
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );
    // RSS with 50 running pods: delete down to 50.
    for i in 50..count {
        c.0.delete(format!("{}/api/v1/namespaces/default/pods/par-{i}", c.1))
            .send()
            .await?;
    }
    if count > 50 {
        wait_for(&mut rx, "gone", count - 50).await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (n, shims) = shims_rss_mib(&server.dir.path().display().to_string());
    println!(
        "server RSS with {} running pods: {:.1} MiB; {n} container helpers: {:.1} MiB in all ({:.2} MiB each)",
        count.min(50),
        rss_mib(pid),
        shims,
        if n > 0 { shims / n as f64 } else { 0.0 }
    );
    println!("peer (documented in shared/reference/peer-baselines.md, not run here): podman kube play 1-container pod median 207 ms; ratio podman/kubelite p50 = {:.1}x", 207.0 / pct(&mut start, 0.5).max(0.001));
    watcher.abort();
    drop(server);
    Ok(())
}

type Rx = mpsc::UnboundedReceiver<(String, &'static str, Instant)>;

/// Waits for `n` distinct pods to reach `want` ("running" or "gone"); returns when each did.
async fn wait_for(
    rx: &mut Rx,
    want: &'static str,
    n: usize,
) -> anyhow::Result<HashMap<String, Instant>> {
    let mut seen: HashMap<String, Instant> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.len() < n {
        match tokio::time::timeout(
            deadline.saturating_duration_since(Instant::now()),
            rx.recv(),
        )
        .await
        {
            Ok(Some((name, what, at))) if what == want => {
                seen.insert(name, at);
            }
            Ok(Some(_)) => {}
            _ => bail!("timed out waiting for {want}: {} of {n}", seen.len()),
        }
    }
    Ok(seen)
}
