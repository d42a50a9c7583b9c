//! The node agent: registers this node, keeps its lease, and runs one worker per pod bound
//! here (binding is the scheduler's job, `kubelite_core::controllers::scheduler`). Workers are
//! level-triggered: each compares the pod it is given with what is on disk and running, and
//! acts. The eviction manager watches memory and disk and evicts pods when the node runs low.

mod env;
pub mod eviction;
pub mod exec;
mod hooks;
mod logs;
mod node;
mod pods;
mod probes;
mod process;
mod status;
mod worker;

use ipnet::Ipv4Net;
use kubelite_core::server::client::LocalClient;
use kubelite_core::server::node_streams::NodeStreams;
use kubelite_core::server::status::ApiError;
use std::path::PathBuf;
use std::sync::Arc;

/// Errors of the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("API: {0}")]
    Api(#[from] ApiError),
    #[error("images: {0}")]
    Image(#[from] crate::images::ImageError),
    #[error("network: {0}")]
    Network(#[from] crate::network::NetworkError),
    #[error("volumes: {0}")]
    Volume(#[from] crate::volumes::VolumeError),
    #[error("container spec: {0}")]
    Spec(#[from] crate::oci::SpecError),
    #[error("container helper: {0}")]
    Shim(#[from] crate::shim::ShimError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// Where and how the agent runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub node_name: String,
    /// `<data-dir>/agent`: pod dirs, images, network state, logs.
    pub data_dir: PathBuf,
    /// `<data-dir>/images`: archives imported automatically (airgap).
    pub images_dir: PathBuf,
    /// Runtime state that must not outlive a reboot (namespaces, libcontainer state).
    pub run_dir: PathBuf,
    pub pod_cidr: Ipv4Net,
    /// Name of the pod network bridge (`kubelite0`).
    pub bridge: String,
    pub max_pods: u32,
    /// The kubelite binary, started as each container's helper process.
    pub exe: PathBuf,
    /// Node-pressure eviction: hard thresholds, interval, pressure transition period.
    pub eviction: eviction::EvictionConfig,
}

/// Starts the agent's tasks. Returns once the node is registered. `register` receives what
/// the agent serves through the API server (pod logs).
pub async fn start(
    cfg: AgentConfig,
    client: LocalClient,
    register: impl FnOnce(Arc<dyn NodeStreams>),
) -> Result<(), AgentError> {
    for d in [&cfg.data_dir, &cfg.run_dir] {
        std::fs::create_dir_all(d).map_err(|source| AgentError::Io {
            path: d.clone(),
            source,
        })?;
    }
    register(Arc::new(logs::NodeLogs::new(&cfg)));
    node::register(&client, &cfg).await?;
    node::renew_lease(&client, &cfg).await?;
    let (pressure_tx, pressure_rx) = tokio::sync::watch::channel(eviction::Pressure::default());
    tokio::spawn(node::heartbeat(client.clone(), cfg.clone(), pressure_rx));
    let manager =
        pods::PodManager::new(cfg.clone(), client.clone(), pressure_tx.subscribe()).await?;
    let evictions = manager.evictions();
    tokio::spawn(manager.run());
    tokio::spawn(eviction::run(cfg, client, pressure_tx, evictions));
    Ok(())
}
