//! Pod networking for the node agent: one sandbox (network, IPC and UTS namespaces) per pod,
//! plugged into the node bridge (`kubelite0`) through a veth pair, with an address from a
//! persistent IPAM, a default route via the bridge, outbound NAT, and the per-pod `/etc` files.
//!
//! Layout on disk:
//! - `<state_dir>/ipam/<ip>`: one file per allocated address, containing the pod uid (survives
//!   restarts and reboots; see `ipam`).
//! - `<run_dir>/pods/<uid>/ns/{net,ipc,uts}`: the sandbox namespaces, pinned by bind mounts
//!   (`<run_dir>/pods` is a shared mount point; see `netns`).
//! - `<run_dir>/pods/<uid>/network.json`: the [`PodSandbox`], written last, so its presence
//!   (with live namespace mounts) means the sandbox is complete.
//!
//! Submodules: `netns` (namespaces, on throw-away threads), `link` (bridge, veth and
//! in-pod configuration over rtnetlink), `ipam`, `nftables` (masquerade over raw
//! nfnetlink), `iptables` (FORWARD ACCEPT for hosts whose policy is DROP, e.g. with Docker),
//! `etc` (`/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname`).
//!
//! Kubernetes semantics: containers of a pod join its sandbox namespaces, so they share
//! `localhost`, IPC and the hostname (the pod's hostname). A `hostNetwork: true` pod shares the
//! node's network *and* UTS namespaces (its hostname is the node's) but gets its own IPC
//! namespace; it has no pod address of its own (`status.podIP` is then the node's IP).

mod error;
mod etc;
mod ipam;
mod iptables;
mod link;
mod netns;
mod nftables;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File};
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

pub use error::NetworkError;
pub use etc::{
    hosts_content, pod_hostname, resolv_conf_content, write_etc_files, DnsConfig, DnsPolicy,
    EtcFiles,
};

use ipam::Ipam;
use link::Rtnl;
use netns::{NsMode, NsPaths};

/// Default node bridge.
pub const DEFAULT_BRIDGE: &str = "kubelite0";
/// Default pod CIDR of a node.
pub const DEFAULT_POD_CIDR: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(10, 42, 0, 0), 24);
/// Default directory for namespace bind mounts.
pub const DEFAULT_RUN_DIR: &str = "/run/kubelite";

const METADATA: &str = "network.json";

/// Node networking settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// Bridge the pods are plugged into (`kubelite0`).
    pub bridge: String,
    /// Pod CIDR of this node (`10.42.0.0/24`); `.1` is the gateway on the bridge.
    pub pod_cidr: Ipv4Net,
    /// Persistent state (IPAM files): `<data-dir>/agent/network`.
    pub state_dir: PathBuf,
    /// Volatile state (namespace bind mounts): `/run/kubelite`.
    pub run_dir: PathBuf,
    /// Masquerade pod traffic leaving the node.
    pub masquerade: bool,
}

impl NetworkConfig {
    /// The defaults for a node whose data directory is `data_dir`.
    pub fn with_data_dir(data_dir: &Path) -> NetworkConfig {
        NetworkConfig {
            bridge: DEFAULT_BRIDGE.to_string(),
            pod_cidr: DEFAULT_POD_CIDR,
            state_dir: data_dir.join("agent").join("network"),
            run_dir: PathBuf::from(DEFAULT_RUN_DIR),
            masquerade: true,
        }
    }
}

/// A pod's network sandbox: where its namespaces are pinned (for the OCI spec's
/// `linux.namespaces[].path`) and its address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodSandbox {
    pub pod_uid: String,
    pub netns_path: PathBuf,
    pub ipcns_path: PathBuf,
    pub utsns_path: PathBuf,
    /// The pod IP; `None` for `hostNetwork` pods.
    pub ip: Option<Ipv4Addr>,
    /// The bridge address, the pod's default gateway.
    pub gateway: Ipv4Addr,
    /// Host side of the veth pair; `None` for `hostNetwork` pods.
    pub host_veth: Option<String>,
}

impl PodSandbox {
    pub fn host_network(&self) -> bool {
        self.ip.is_none()
    }

    /// `status.podIPs[].ip` values (empty for `hostNetwork`: the caller reports the node IP).
    pub fn pod_ips(&self) -> Vec<String> {
        self.ip.iter().map(|ip| ip.to_string()).collect()
    }
}

/// The node's pod network. Operations on sandboxes are serialised.
pub struct Network {
    cfg: NetworkConfig,
    gateway: Ipv4Addr,
    /// The network namespace of the agent ("the host"), captured by [`Network::new`].
    host_ns: Arc<File>,
    rtnl: Rtnl,
    ipam: Ipam,
    lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network").field("cfg", &self.cfg).finish()
    }
}

fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Pod uids become path components and IPAM owners: accept what Kubernetes generates.
fn check_uid(uid: &str) -> Result<(), NetworkError> {
    let ok = !uid.is_empty()
        && uid.len() <= 128
        && !uid.starts_with('.')
        && uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(NetworkError::InvalidArgument(format!(
            "invalid pod uid {uid:?}"
        )))
    }
}

fn check_hostname(hostname: &str) -> Result<(), NetworkError> {
    if hostname.is_empty()
        || hostname.len() > 64
        || hostname
            .chars()
            .any(|c| c.is_whitespace() || c == '\0' || c == '/')
    {
        return Err(NetworkError::InvalidArgument(format!(
            "invalid hostname {hostname:?}"
        )));
    }
    Ok(())
}

impl Network {
    /// Sets up the node side (idempotent, safe on every agent start): the bridge up with the
    /// gateway address, `ip_forward=1`, the NAT table (or its removal when `masquerade` is off),
    /// FORWARD ACCEPT rules for the bridge in iptables if the host has iptables, and the shared
    /// mount point for namespace pins. The calling thread's network namespace is "the host".
    pub async fn new(cfg: NetworkConfig) -> Result<Network, NetworkError> {
        let mut cfg = cfg;
        if !valid_ifname(&cfg.bridge) {
            return Err(NetworkError::InvalidConfig(format!(
                "invalid bridge name {:?}",
                cfg.bridge
            )));
        }
        if cfg.state_dir.as_os_str().is_empty() || cfg.run_dir.as_os_str().is_empty() {
            return Err(NetworkError::InvalidConfig(
                "state_dir and run_dir must be set".into(),
            ));
        }
        cfg.pod_cidr = cfg.pod_cidr.trunc();
        let ipam = Ipam::open(&cfg.state_dir.join("ipam"), cfg.pod_cidr)?;
        let gateway = ipam.gateway();
        let host_ns = Arc::new(netns::open_ns(Path::new("/proc/thread-self/ns/net"))?);
        netns::ensure_shared_mount(&cfg.run_dir.join("pods"))?;
        let rtnl = Rtnl::connect()?;
        link::ensure_bridge(&rtnl.handle, &cfg.bridge, gateway, cfg.pod_cidr).await?;

        let (bridge, cidr, masquerade) = (cfg.bridge.clone(), cfg.pod_cidr, cfg.masquerade);
        let forward = netns::run_in_net(host_ns.clone(), move || {
            enable_ip_forward()?;
            let table = nftables::table_name(&bridge);
            if masquerade {
                nftables::install_masquerade(&table, cidr, &bridge)?;
            } else {
                nftables::remove_table(&table)?;
            }
            Ok(iptables::ensure_forward_accept(&bridge))
        })
        .await?;
        match forward {
            Ok(true) => {}
            Ok(false) => tracing::debug!("no iptables binary: FORWARD chain left alone"),
            // Only matters where the FORWARD policy is DROP; pods work elsewhere.
            Err(e) => tracing::warn!(error = %e, "could not add iptables FORWARD ACCEPT rules"),
        }
        tracing::info!(bridge = %cfg.bridge, cidr = %cfg.pod_cidr, "pod network ready");
        Ok(Network {
            cfg,
            gateway,
            host_ns,
            rtnl,
            ipam,
            lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The effective configuration (pod CIDR normalised).
    pub fn config(&self) -> &NetworkConfig {
        &self.cfg
    }

    /// The gateway address on the bridge.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    fn pod_dir(&self, uid: &str) -> PathBuf {
        self.cfg.run_dir.join("pods").join(uid)
    }

    fn ns_paths(&self, uid: &str) -> NsPaths {
        NsPaths::in_dir(&self.pod_dir(uid).join("ns"))
    }

    /// Creates the sandbox of a pod, or returns the existing one (idempotent: the same uid
    /// always gets its reserved IP back). `hostname` is set in the new UTS namespace; it is
    /// ignored with `host_network` (the pod shares the node's network and UTS namespaces).
    /// If creation fails, the namespaces and veth are removed again but the IP stays reserved
    /// for the uid until [`Network::remove_sandbox`] or [`Network::garbage_collect`].
    pub async fn create_sandbox(
        &self,
        pod_uid: &str,
        hostname: &str,
        host_network: bool,
    ) -> Result<PodSandbox, NetworkError> {
        check_uid(pod_uid)?;
        if !host_network {
            check_hostname(hostname)?;
        }
        let _guard = self.lock.lock().await;
        if let Some(existing) = self.load(pod_uid) {
            if existing.host_network() != host_network {
                return Err(NetworkError::InvalidArgument(format!(
                    "pod {pod_uid} already has a sandbox with hostNetwork={}",
                    existing.host_network()
                )));
            }
            return Ok(existing);
        }
        // Leftovers of an interrupted creation (crash): start over, keeping the IP.
        self.teardown(pod_uid, false).await?;

        let paths = self.ns_paths(pod_uid);
        let result = if host_network {
            netns::create(paths.clone(), NsMode::HostNetwork, self.host_ns.clone())
                .await
                .map(|()| None)
        } else {
            match self.ipam.allocate(pod_uid) {
                Ok(ip) => self.create_pod_network(pod_uid, hostname, ip, &paths).await,
                Err(e) => Err(e),
            }
        };
        let sandbox = match result {
            Ok(ip) => PodSandbox {
                pod_uid: pod_uid.to_string(),
                netns_path: paths.net.clone(),
                ipcns_path: paths.ipc.clone(),
                utsns_path: paths.uts.clone(),
                ip,
                gateway: self.gateway,
                host_veth: ip.map(|_| link::host_veth_name(pod_uid)),
            },
            Err(e) => {
                if let Err(cleanup) = self.teardown(pod_uid, false).await {
                    tracing::warn!(pod_uid, error = %cleanup, "cleaning up a failed sandbox");
                }
                return Err(e);
            }
        };
        if let Err(e) = self.store(&sandbox) {
            let _ = self.teardown(pod_uid, false).await;
            return Err(e);
        }
        tracing::debug!(pod_uid, ip = ?sandbox.ip, "sandbox created");
        Ok(sandbox)
    }

    async fn create_pod_network(
        &self,
        uid: &str,
        hostname: &str,
        ip: Ipv4Addr,
        paths: &NsPaths,
    ) -> Result<Option<Ipv4Addr>, NetworkError> {
        let mode = NsMode::Isolated {
            hostname: hostname.to_string(),
        };
        netns::create(paths.clone(), mode, self.host_ns.clone()).await?;
        let h = &self.rtnl.handle;
        // Re-ensured each time: cheap, and repairs a bridge deleted behind our back.
        let bridge =
            link::ensure_bridge(h, &self.cfg.bridge, self.gateway, self.cfg.pod_cidr).await?;
        let veth = link::host_veth_name(uid);
        link::delete_link(h, &veth).await?;
        let pod_ns = Arc::new(netns::open_ns(&paths.net)?);
        link::create_veth(h, &veth, bridge, &pod_ns).await?;
        let pod = Rtnl::connect_in(pod_ns).await?;
        link::configure_pod_side(
            &pod.handle,
            ip,
            self.cfg.pod_cidr.prefix_len(),
            self.gateway,
        )
        .await?;
        Ok(Some(ip))
    }

    /// Deletes the veth, unpins the namespaces and releases the IP of a pod. Idempotent.
    pub async fn remove_sandbox(&self, pod_uid: &str) -> Result<(), NetworkError> {
        check_uid(pod_uid)?;
        let _guard = self.lock.lock().await;
        self.teardown(pod_uid, true).await
    }

    /// Removes whatever exists of a sandbox; with `release_ip` also its IPAM reservation
    /// (last, so that an interrupted teardown still holds the IP for garbage collection).
    async fn teardown(&self, uid: &str, release_ip: bool) -> Result<(), NetworkError> {
        if check_uid(uid).is_ok() {
            let dir = self.pod_dir(uid);
            remove_file_if_exists(&dir.join(METADATA))?;
            link::delete_link(&self.rtnl.handle, &link::host_veth_name(uid)).await?;
            netns::remove(&self.ns_paths(uid))?;
            // Other parts of the agent may keep files there: only remove it when empty.
            let _ = fs::remove_dir(&dir);
        }
        if release_ip {
            self.ipam.release(uid)?;
        }
        Ok(())
    }

    /// The complete sandbox of a pod, rebuilt from the files (after an agent restart too);
    /// `None` if there is none or it is incomplete.
    pub async fn sandbox(&self, pod_uid: &str) -> Option<PodSandbox> {
        check_uid(pod_uid).ok()?;
        self.load(pod_uid)
    }

    fn load(&self, uid: &str) -> Option<PodSandbox> {
        let data = fs::read(self.pod_dir(uid).join(METADATA)).ok()?;
        let sandbox: PodSandbox = serde_json::from_slice(&data).ok()?;
        let paths = self.ns_paths(uid);
        if sandbox.pod_uid != uid
            || sandbox.netns_path != paths.net
            || sandbox.ipcns_path != paths.ipc
            || sandbox.utsns_path != paths.uts
            || !paths.all_mounted()
        {
            return None;
        }
        if let Some(ip) = sandbox.ip {
            if self.ipam.lookup(uid).ok()? != Some(ip) {
                return None;
            }
        }
        Some(sandbox)
    }

    fn store(&self, sandbox: &PodSandbox) -> Result<(), NetworkError> {
        let path = self.pod_dir(&sandbox.pod_uid).join(METADATA);
        let tmp = path.with_extension("json.tmp");
        let data = serde_json::to_vec_pretty(sandbox)
            .map_err(|e| NetworkError::io("encoding sandbox", io::Error::other(e)))?;
        fs::write(&tmp, data)
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(|e| NetworkError::io(format!("writing {}", path.display()), e))
    }

    /// Removes the sandboxes, IP reservations and veths of every pod not in `live_pod_uids`
    /// (after a crash, or pods deleted while the agent was down); returns the uids removed.
    /// Unknown veths on the bridge (no sandbox, no IP) are deleted too (and logged).
    pub async fn garbage_collect(
        &self,
        live_pod_uids: &HashSet<String>,
    ) -> Result<Vec<String>, NetworkError> {
        let _guard = self.lock.lock().await;
        let mut known = BTreeSet::new();
        match fs::read_dir(self.cfg.run_dir.join("pods")) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    let dir = entry.path();
                    if dir.join("ns").exists() || dir.join(METADATA).exists() {
                        known.insert(entry.file_name().to_string_lossy().into_owned());
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(NetworkError::io("listing sandboxes", e)),
        }
        known.extend(self.ipam.allocations()?.into_iter().map(|(_, owner)| owner));

        let mut removed = Vec::new();
        for uid in known {
            if live_pod_uids.contains(&uid) {
                continue;
            }
            self.teardown(&uid, true).await?;
            tracing::info!(pod_uid = %uid, "garbage-collected pod network");
            removed.push(uid);
        }

        let keep: HashSet<String> = live_pod_uids
            .iter()
            .map(|u| link::host_veth_name(u))
            .collect();
        if let Some(bridge) = link::get_link(&self.rtnl.handle, &self.cfg.bridge).await? {
            for l in link::all_links(&self.rtnl.handle).await? {
                let Some(name) = link::link_name(&l) else {
                    continue;
                };
                if link::link_controller(&l) == Some(bridge.header.index)
                    && name.starts_with(link::HOST_VETH_PREFIX)
                    && !keep.contains(name)
                {
                    let name = name.to_string();
                    link::delete_link(&self.rtnl.handle, &name).await?;
                    tracing::info!(link = %name, "deleted orphan veth");
                }
            }
        }
        Ok(removed)
    }

    /// Node teardown: removes every sandbox, the bridge, the NAT table, the FORWARD rules and
    /// the namespace mount point. `ip_forward` is left as it is.
    pub async fn destroy(&self) -> Result<(), NetworkError> {
        self.garbage_collect(&HashSet::new()).await?;
        let _guard = self.lock.lock().await;
        link::delete_link(&self.rtnl.handle, &self.cfg.bridge).await?;
        let bridge = self.cfg.bridge.clone();
        netns::run_in_net(self.host_ns.clone(), move || {
            nftables::remove_table(&nftables::table_name(&bridge))?;
            iptables::remove_forward_accept(&bridge)
        })
        .await?;
        netns::remove_shared_mount(&self.cfg.run_dir.join("pods"))
    }
}

fn remove_file_if_exists(path: &Path) -> Result<(), NetworkError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetworkError::io(format!("removing {}", path.display()), e)),
    }
}

/// `net.ipv4.ip_forward = 1` in the calling thread's network namespace.
fn enable_ip_forward() -> Result<(), NetworkError> {
    const PATH: &str = "/proc/sys/net/ipv4/ip_forward";
    let current = fs::read_to_string(PATH).map_err(|e| NetworkError::io(PATH, e))?;
    if current.trim() != "1" {
        fs::write(PATH, "1").map_err(|e| NetworkError::io(format!("writing {PATH}"), e))?;
    }
    Ok(())
}
