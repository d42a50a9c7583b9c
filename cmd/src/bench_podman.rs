//! The peer in `kubelite bench --pods`: `podman kube play` of the same one-container pod,
//! timed in the same run, set up as shared/reference/peer-baselines.md describes. Everything
//! podman writes lives in a temporary directory of its own: `containers.conf` (runc, cgroupfs,
//! file events logger, `nofile=20000:20000`, temp/volume/network dirs), `storage.conf`
//! (overlay graphroot/runroot) and `registries.conf`, named through `CONTAINERS_CONF`,
//! `CONTAINERS_STORAGE_CONF` and `CONTAINERS_REGISTRIES_CONF` on each command (nothing in /etc
//! is touched). The image comes from the same archive the kubelite benchmark imports, copied in
//! with skopeo. podman 4.3 leaves empty pod cgroups behind: they are removed after each run.
//! When podman, skopeo or runc is missing (or podman fails) the phase is skipped and the
//! caller falls back to the documented figure, saying so.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::bench_procmem::{self as procmem, Mem};

/// The documented median of `podman kube play` of this pod (peer-baselines.md), used when
/// podman cannot be run here.
pub const DOCUMENTED_PLAY_MS: f64 = 207.0;

const IMAGE: &str = "localhost/busybox:test";
/// podman's default kube network would take 10.88.0.0/16, which the kubelite benchmark uses.
const SUBNET: &str = "10.89.0.0/24";
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// What the podman phase measured.
pub struct PodmanFigures {
    /// `kube play` wall time of each timed run, ms, sorted.
    pub play_ms: Vec<f64>,
    /// `kube down` wall time of each timed run, ms, sorted.
    pub down_ms: Vec<f64>,
    /// conmon processes of one running pod (infra + app container).
    pub conmons: usize,
    /// Their memory in all.
    pub conmon_mem: Mem,
    /// conmon plus the infra (pause) process of one pod.
    pub pod_overhead: Mem,
}

impl PodmanFigures {
    pub fn median_play(&self) -> f64 {
        median(&self.play_ms)
    }
}

fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Whether `name` is an executable on PATH.
fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// Runs the phase, or returns why it was skipped or failed (the benchmark goes on).
pub fn run(
    image_archive: &Path,
    pod: &serde_json::Value,
    runs: usize,
) -> anyhow::Result<Result<PodmanFigures, String>> {
    for tool in ["podman", "skopeo", "runc"] {
        if !on_path(tool) {
            return Ok(Err(format!("{tool} is not on PATH")));
        }
    }
    if runs == 0 {
        return Ok(Err("--podman-runs 0".into()));
    }
    let env = Podman::new()?;
    let result = env.bench(image_archive, pod, runs);
    env.clean_up();
    Ok(result.map_err(|e| format!("podman failed: {e:#}")))
}

struct Podman {
    dir: tempfile::TempDir,
    /// Pod IDs this run created (their cgroups are removed after each run).
    pod_ids: std::cell::RefCell<Vec<String>>,
}

impl Podman {
    fn new() -> anyhow::Result<Podman> {
        let dir = tempfile::Builder::new()
            .prefix("kubelite-podman-")
            .tempdir()?;
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("containers.conf"),
            format!(
                r#"[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d}/events.log"
tmp_dir = "{d}/tmp"
volume_path = "{d}/volumes"
static_dir = "{d}/static"

[network]
network_backend = "netavark"
network_config_dir = "{d}/networks"
default_subnet = "{SUBNET}"
"#
            ),
        )?;
        std::fs::write(
            dir.path().join("storage.conf"),
            format!("[storage]\ndriver = \"overlay\"\ngraphroot = \"{d}/graph\"\nrunroot = \"{d}/run\"\n"),
        )?;
        std::fs::write(
            dir.path().join("registries.conf"),
            "unqualified-search-registries = []\n\n[[registry]]\nlocation = \"127.0.0.1:5000\"\ninsecure = true\n",
        )?;
        Ok(Podman {
            dir,
            pod_ids: Default::default(),
        })
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        let d = self.dir.path();
        cmd.env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf"));
        cmd
    }

    /// Runs `program args`, failing on a non-zero exit; returns its wall time and output.
    fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<(Duration, Output)> {
        let mut cmd = self.command(program);
        cmd.args(args);
        let (took, out) = run_with_timeout(cmd, COMMAND_TIMEOUT)
            .with_context(|| format!("{program} {}", args.join(" ")))?;
        if !out.status.success() {
            bail!(
                "{program} {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok((took, out))
    }

    fn bench(
        &self,
        image_archive: &Path,
        pod: &serde_json::Value,
        runs: usize,
    ) -> anyhow::Result<PodmanFigures> {
        let source = self.image_source(image_archive)?;
        let dest = format!("containers-storage:{IMAGE}");
        self.run("skopeo", &["copy", "--quiet", &source, &dest])?;
        let mut pod = pod.clone();
        pod["spec"]["containers"][0]["image"] = IMAGE.into();
        let manifest = self.dir.path().join("pod.yaml");
        std::fs::write(&manifest, serde_json::to_vec_pretty(&pod)?)?;
        let manifest = manifest.display().to_string();

        // Warm-up: the first play also builds podman's pause image.
        self.play(&manifest)?;
        self.down(&manifest)?;
        let mut play_ms = Vec::new();
        let mut down_ms = Vec::new();
        let mut mem = None;
        for _ in 0..runs {
            play_ms.push(self.play(&manifest)?.as_secs_f64() * 1000.0);
            if mem.is_none() {
                mem = Some(self.pod_memory());
            }
            down_ms.push(self.down(&manifest)?.as_secs_f64() * 1000.0);
        }
        play_ms.sort_by(f64::total_cmp);
        down_ms.sort_by(f64::total_cmp);
        let (conmons, conmon_mem, pod_overhead) = mem.unwrap_or_default();
        Ok(PodmanFigures {
            play_ms,
            down_ms,
            conmons,
            conmon_mem,
            pod_overhead,
        })
    }

    /// `oci:DIR[:REF]` when the archive is an OCI layout tarball, `docker-archive:FILE` else.
    fn image_source(&self, archive: &Path) -> anyhow::Result<String> {
        let oci = self.dir.path().join("oci");
        std::fs::create_dir_all(&oci)?;
        let archive_s = archive.display().to_string();
        let oci_s = oci.display().to_string();
        self.run("tar", &["-xf", &archive_s, "-C", &oci_s])?;
        if !oci.join("oci-layout").exists() {
            return Ok(format!("docker-archive:{archive_s}"));
        }
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(oci.join("index.json"))?)
                .context("index.json of the OCI archive")?;
        let reference = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .map(|r| format!(":{r}"))
            .unwrap_or_default();
        Ok(format!("oci:{oci_s}{reference}"))
    }

    fn play(&self, manifest: &str) -> anyhow::Result<Duration> {
        let (took, out) = self.run("podman", &["kube", "play", manifest])?;
        // "Pod:\n<id>\nContainer:\n<id>\n"
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if line.trim() == "Pod:" {
                if let Some(id) = lines.next() {
                    self.pod_ids.borrow_mut().push(id.trim().to_string());
                }
            }
        }
        Ok(took)
    }

    fn down(&self, manifest: &str) -> anyhow::Result<Duration> {
        let (took, _) = self.run("podman", &["kube", "down", manifest])?;
        self.remove_pod_cgroups();
        Ok(took)
    }

    /// The conmon processes of the running pod (found by this run's directory in their
    /// command line) and, with them, the infra container's pause process (a conmon child
    /// named `catatonit`).
    fn pod_memory(&self) -> (usize, Mem, Mem) {
        let d = self.dir.path().display().to_string();
        let procs = procmem::processes();
        let conmons: Vec<u32> = procs
            .iter()
            .filter(|(_, cmd, _, name)| name == "conmon" && cmd.contains(&d))
            .map(|(pid, ..)| *pid)
            .collect();
        let mut overhead = conmons.clone();
        overhead.extend(
            procs
                .iter()
                .filter(|(_, _, ppid, name)| name == "catatonit" && conmons.contains(ppid))
                .map(|(pid, ..)| *pid),
        );
        (conmons.len(), Mem::sum(&conmons), Mem::sum(&overhead))
    }

    /// rmdir (deepest first) the cgroups of this run's pods in every hierarchy.
    fn remove_pod_cgroups(&self) {
        for (point, _) in procmem::cgroup_hierarchies() {
            for id in self.pod_ids.borrow().iter() {
                procmem::rmdir_cgroup_tree(&point.join("libpod_parent").join(id));
            }
        }
    }

    /// Removes whatever is left (pods, images), unmounts anything under the directory, drops
    /// the pod cgroups; the directory goes with `self`.
    fn clean_up(self) {
        let _ = self.run("podman", &["pod", "rm", "--all", "--force"]);
        let _ = self.run("podman", &["rmi", "--all", "--force"]);
        self.remove_pod_cgroups();
        let mut leftover: Vec<PathBuf> = procmem::mounts()
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| p.starts_with(self.dir.path()))
            .collect();
        leftover.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for p in leftover {
            if let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) {
                // SAFETY: a valid NUL-terminated path; umount2 has no other preconditions.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

/// Runs `cmd` (stdin closed, output captured) and returns its wall time; kills it after
/// `timeout`.
fn run_with_timeout(mut cmd: Command, timeout: Duration) -> anyhow::Result<(Duration, Output)> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t0 = Instant::now();
    let child = cmd.spawn()?;
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output();
        let _ = tx.send((t0.elapsed(), out));
    });
    match rx.recv_timeout(timeout) {
        Ok((took, out)) => {
            let _ = waiter.join();
            Ok((took, out?))
        }
        Err(_) => {
            // SAFETY: kill(2) on the child we spawned, which has not been reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = waiter.join();
            bail!("timed out after {timeout:?}")
        }
    }
}
