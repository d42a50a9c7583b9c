//! `kubelite server`: flags, storage, API server, and a clean stop on SIGTERM/SIGINT.

use anyhow::Context;
use clap::Args;
use kubelite_core::server::{self, ServerConfig};
use kubelite_runtime::agent::eviction;
use kubelite_storage::{SqliteBackend, SqliteOptions};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// Directory for everything the server writes (database, certificates, kubeconfig).
    #[arg(long, default_value = "/var/lib/kubelite", env = "KUBELITE_DATA_DIR")]
    pub data_dir: PathBuf,
    /// HTTPS port of the API server.
    #[arg(long, default_value_t = 6443)]
    pub https_port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// Extra subject alternative names (host names or IPs) for the serving certificate.
    #[arg(long = "tls-san")]
    pub tls_san: Vec<String>,
    /// Also write the admin kubeconfig here.
    #[arg(long)]
    pub write_kubeconfig: Option<PathBuf>,
    /// Seconds between automatic compactions of the store (0 turns them off).
    #[arg(long, default_value_t = 60)]
    pub compaction_interval: u64,
    /// Compaction keeps at least this many recent revisions...
    #[arg(long, default_value_t = 1000)]
    pub compaction_keep_revisions: i64,
    /// ...and at least this many seconds of history, whichever is more.
    #[arg(long, default_value_t = 300)]
    pub compaction_keep_seconds: u64,
    /// Do not run the node agent in this process (control plane only).
    #[arg(long)]
    pub disable_agent: bool,
    /// Name of this node (default: the host name).
    #[arg(long, env = "KUBELITE_NODE_NAME")]
    pub node_name: Option<String>,
    /// Pod network of this node.
    #[arg(long, default_value = "10.42.0.0/24")]
    pub pod_cidr: String,
    /// Most pods this node runs.
    #[arg(long, default_value_t = 110)]
    pub max_pods: u32,
    /// Where runtime state that must not survive a reboot lives (namespaces, container state).
    #[arg(long, default_value = "/run/kubelite")]
    pub run_dir: PathBuf,
    /// Name of the pod network bridge.
    #[arg(long, default_value = "kubelite0")]
    pub bridge: String,
    /// Hard eviction thresholds, as kubelet's: `signal<quantity|percentage` pairs separated by
    /// commas (memory.available, nodefs.available, nodefs.inodesFree, imagefs.available,
    /// imagefs.inodesFree, pid.available); repeated flags merge; given at all, it replaces the
    /// defaults (an empty value turns eviction off). The disk defaults are 5% where the kubelet's
    /// are 10% (nodefs) and 15% (imagefs).
    /// [default: memory.available<100Mi,nodefs.available<5%,nodefs.inodesFree<5%,imagefs.available<5%,imagefs.inodesFree<5%]
    #[arg(long = "eviction-hard", value_name = "SIGNAL<VALUE,...")]
    pub eviction_hard: Vec<String>,
    /// How long a node pressure condition stays True after its eviction threshold was last met.
    #[arg(long, value_parser = crate::controller_flags::parse_duration, default_value = "5m0s")]
    pub eviction_pressure_transition_period: Duration,
    /// How often eviction signals are observed (kubelet's housekeeping interval).
    #[arg(long, value_parser = crate::controller_flags::parse_duration, default_value = "10s", hide = true)]
    pub eviction_interval: Duration,
    #[command(flatten)]
    pub controllers: crate::controller_flags::ControllerArgs,
}

fn eviction_config(args: &ServerArgs) -> anyhow::Result<eviction::EvictionConfig> {
    let hard = eviction::parse_thresholds(
        (!args.eviction_hard.is_empty()).then_some(args.eviction_hard.as_slice()),
    )
    .context("--eviction-hard")?;
    Ok(eviction::EvictionConfig {
        hard,
        interval: args.eviction_interval.max(Duration::from_millis(100)),
        pressure_transition: args.eviction_pressure_transition_period,
    })
}

pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(serve(args))
}

async fn serve(args: ServerArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let eviction = eviction_config(&args)?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let db_dir = args.data_dir.join("db");
    std::fs::create_dir_all(&db_dir).with_context(|| format!("creating {}", db_dir.display()))?;
    let mut opts = SqliteOptions::new(db_dir.join("state.db"));
    opts.compact_interval =
        (args.compaction_interval > 0).then(|| Duration::from_secs(args.compaction_interval));
    opts.keep_revisions = args.compaction_keep_revisions.max(0);
    opts.keep_window = Duration::from_secs(args.compaction_keep_seconds);
    let backend = SqliteBackend::open(opts)
        .with_context(|| format!("opening the store in {}", db_dir.display()))?;
    args.controllers.apply_admission_defaults();
    let running = server::start(
        ServerConfig {
            data_dir: args.data_dir.clone(),
            bind_address: args.bind_address,
            https_port: args.https_port,
            tls_sans: args.tls_san.clone(),
            write_kubeconfig: args.write_kubeconfig.clone(),
            controllers: args.controllers.config(),
        },
        backend,
    )
    .await
    .context("starting the API server")?;
    tracing::info!(
        address = %running.local_addr,
        kubeconfig = %running.kubeconfig_path.display(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "kubelite is ready"
    );
    if !args.disable_agent {
        let node_name = match &args.node_name {
            Some(n) => n.clone(),
            None => std::fs::read_to_string("/proc/sys/kernel/hostname")
                .context("reading the host name")?
                .trim()
                .to_lowercase(),
        };
        let cfg = kubelite_runtime::agent::AgentConfig {
            node_name,
            data_dir: args.data_dir.join("agent"),
            images_dir: args.data_dir.join("images"),
            run_dir: args.run_dir.clone(),
            pod_cidr: args
                .pod_cidr
                .parse()
                .with_context(|| format!("--pod-cidr {}", args.pod_cidr))?,
            bridge: args.bridge.clone(),
            max_pods: args.max_pods,
            exe: std::env::current_exe().context("locating the kubelite binary")?,
            eviction,
        };
        let client = kubelite_core::server::client::LocalClient::new(
            running.state.writer.clone(),
            "kubelet",
        );
        let _ = running
            .state
            .exec
            .set(kubelite_runtime::agent::exec::service(&cfg));
        let state = running.state.clone();
        kubelite_runtime::agent::start(cfg, client, move |node| {
            let _ = state.node.set(node);
        })
        .await
        .context("starting the node agent")?;
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "node agent started"
        );
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
    Ok(())
}
