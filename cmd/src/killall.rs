//! `kubelite killall`: stops every container this node runs and removes what the agent set up
//! (root filesystem and volume mounts, pod namespaces, the bridge, NAT rules), as k3s-killall.sh
//! does. Used to clean a machine, and by tests after each cluster.

use anyhow::Context;
use clap::Args;
use kubelite_runtime::network::{Network, NetworkConfig};
use kubelite_runtime::{images, shim, volumes};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct KillallArgs {
    #[arg(long, default_value = "/var/lib/kubelite")]
    pub data_dir: PathBuf,
    #[arg(long, default_value = "/run/kubelite")]
    pub run_dir: PathBuf,
    #[arg(long, default_value = "kubelite0")]
    pub bridge: String,
    #[arg(long, default_value = "10.42.0.0/24")]
    pub pod_cidr: String,
}

fn attempt_dirs(pods: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for pod in std::fs::read_dir(pods).into_iter().flatten().flatten() {
        for ctr in std::fs::read_dir(pod.path().join("containers"))
            .into_iter()
            .flatten()
            .flatten()
        {
            for attempt in std::fs::read_dir(ctr.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                out.push(attempt.path());
            }
        }
    }
    out
}

pub fn run(args: KillallArgs) -> anyhow::Result<()> {
    let pods = args.data_dir.join("agent/pods");
    let attempts = attempt_dirs(&pods);
    let mut shims = Vec::new();
    for a in &attempts {
        // A helper still creating its container (no pid record yet): kill it and whatever it
        // made in the container's cgroup.
        if let shim::Observed::Starting { shim: owner, .. } =
            shim::observe(&a.join("pid"), &a.join("exit.json"))
        {
            let id = std::fs::read_to_string(a.join("id")).unwrap_or_default();
            let uid = a
                .ancestors()
                .nth(3)
                .and_then(Path::file_name)
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !id.trim().is_empty() && !uid.is_empty() {
                shim::abandon_start(owner, &format!("/kubelite/pod{uid}/{}", id.trim()));
            }
        }
        if let Some(rec) = shim::read_pid_record(&a.join("pid")) {
            if shim::is_running(rec.container) {
                shim::signal(rec.container, shim::Signal::SIGKILL).ok();
            }
            shims.push(rec.shim);
        }
    }
    // The helpers record the exits and remove the containers, then end.
    let deadline = Instant::now() + Duration::from_secs(20);
    while shims.iter().any(|s| shim::is_running(*s)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for s in shims.iter().filter(|s| shim::is_running(**s)) {
        shim::signal(*s, shim::Signal::SIGKILL).ok();
    }
    for a in &attempts {
        images::rootfs::unmount(&a.join("rootfs")).ok();
    }
    for pod in std::fs::read_dir(&pods).into_iter().flatten().flatten() {
        if let Err(e) = volumes::teardown_pod_volumes(&pod.path()) {
            eprintln!("{}: {e}", pod.path().display());
        }
        // The helpers removed their containers' cgroups; the pod's parent cgroup is the
        // agent's to remove (as its teardown does).
        let uid = pod.file_name().to_string_lossy().into_owned();
        shim::remove_empty_cgroup(&format!("/kubelite/pod{uid}"));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let net = Network::new(NetworkConfig {
            bridge: args.bridge.clone(),
            pod_cidr: args
                .pod_cidr
                .parse()
                .with_context(|| format!("--pod-cidr {}", args.pod_cidr))?,
            state_dir: args.data_dir.join("agent/network"),
            run_dir: args.run_dir.clone(),
            masquerade: true,
        })
        .await?;
        net.destroy().await?;
        anyhow::Ok(())
    })?;
    Ok(())
}
