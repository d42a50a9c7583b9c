//! This node's `Node` object and its heartbeat: registration with capacity, addresses and
//! nodeInfo read from the machine, the `Ready` condition, and a `Lease` in `kube-node-lease`
//! renewed every 10 s. The Node status itself is written only when something changed or every
//! 5 minutes (as kubelet's `nodeStatusReportFrequency`), so a quiet node writes almost nothing.
//! The MemoryPressure/DiskPressure/PIDPressure conditions follow what the eviction manager
//! publishes and are posted as soon as they change (the matching `NoSchedule` taints are the
//! node lifecycle controller's, as in Kubernetes).

use super::eviction::Pressure;
use super::AgentError;
use kubelite_core::server::client::{resource, LocalClient};
use kubelite_core::server::write::now;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::watch;

/// How often the Lease is renewed (kubelet: 10 s, with a 40 s lease duration).
pub const LEASE_RENEW: Duration = Duration::from_secs(10);
const LEASE_SECONDS: i64 = 40;
/// How often an unchanged Node status is re-posted.
const STATUS_REPORT: Duration = Duration::from_secs(300);

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn os_image() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:").map(str::to_string))
        })
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn disk_bytes(path: &std::path::Path) -> u64 {
    nix::sys::statvfs::statvfs(path)
        .map(|s| s.blocks() * s.fragment_size())
        .unwrap_or(0)
}

/// The first non-loopback IPv4 address of the machine.
pub fn internal_ip() -> Option<String> {
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    for a in addrs {
        if a.interface_name == "lo"
            || a.interface_name.starts_with("kubelite")
            || a.interface_name.starts_with("veth")
        {
            continue;
        }
        if let Some(sin) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
            let ip = sin.ip();
            if !ip.is_loopback() {
                return Some(ip.to_string());
            }
        }
    }
    None
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The machine-derived part of the Node status (everything but conditions' times).
pub fn node_status(cfg: &super::AgentConfig) -> Value {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem = format!("{}Ki", mem_total_kib());
    let disk = disk_bytes(&cfg.data_dir).to_string();
    let capacity = json!({"cpu": cpus.to_string(), "memory": mem, "pods": cfg.max_pods.to_string(), "ephemeral-storage": disk});
    let uname = nix::sys::utsname::uname().ok();
    let kernel = uname
        .as_ref()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut addresses = Vec::new();
    if let Some(ip) = internal_ip() {
        addresses.push(json!({"type": "InternalIP", "address": ip}));
    }
    addresses.push(json!({"type": "Hostname", "address": cfg.node_name}));
    json!({
        "capacity": capacity,
        "allocatable": capacity,
        "addresses": addresses,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
        "nodeInfo": {
            "machineID": read_trim("/etc/machine-id"),
            "systemUUID": read_trim("/sys/class/dmi/id/product_uuid"),
            "bootID": read_trim("/proc/sys/kernel/random/boot_id"),
            "kernelVersion": kernel,
            "osImage": os_image(),
            "containerRuntimeVersion": concat!("kubelite://", env!("CARGO_PKG_VERSION")),
            "kubeletVersion": concat!("v1.33.0+kubelite-", env!("CARGO_PKG_VERSION")),
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": arch(),
        },
    })
}

fn conditions(now: &str, previous: Option<&Value>, pressure: Pressure) -> Value {
    let memory = if pressure.memory {
        (
            "MemoryPressure",
            "True",
            "KubeletHasInsufficientMemory",
            "kubelet has insufficient memory available",
        )
    } else {
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        )
    };
    let disk = if pressure.disk {
        (
            "DiskPressure",
            "True",
            "KubeletHasDiskPressure",
            "kubelet has disk pressure",
        )
    } else {
        (
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        )
    };
    let pid = if pressure.pid {
        (
            "PIDPressure",
            "True",
            "KubeletHasInsufficientPID",
            "kubelet has insufficient PID available",
        )
    } else {
        (
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        )
    };
    let specs = [
        memory,
        disk,
        pid,
        (
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ];
    let prev = |t: &str| -> Option<&Value> {
        previous?
            .as_array()?
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(t))
    };
    Value::Array(
        specs
            .iter()
            .map(|(t, status, reason, message)| {
                let transition = prev(t)
                    .filter(|c| c.get("status").and_then(Value::as_str) == Some(status))
                    .and_then(|c| c.get("lastTransitionTime").cloned())
                    .unwrap_or_else(|| json!(now));
                json!({"type": t, "status": status, "lastHeartbeatTime": now, "lastTransitionTime": transition, "reason": reason, "message": message})
            })
            .collect(),
    )
}

/// Registers the Node (or refreshes it after a restart).
pub async fn register(client: &LocalClient, cfg: &super::AgentConfig) -> Result<(), AgentError> {
    register_with(client, cfg, Pressure::default()).await
}

async fn register_with(
    client: &LocalClient,
    cfg: &super::AgentConfig,
    pressure: Pressure,
) -> Result<(), AgentError> {
    let nodes = resource("", "v1", "nodes")?;
    let now = now();
    let mut status = node_status(cfg);
    let existing = client.get(nodes, None, &cfg.node_name).await?;
    status["conditions"] = conditions(
        &now,
        existing
            .as_ref()
            .and_then(|n| n.pointer("/status/conditions")),
        pressure,
    );
    let labels = json!({
        "kubernetes.io/hostname": cfg.node_name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch(),
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": arch(),
        "node-role.kubernetes.io/control-plane": "true",
    });
    match existing {
        None => {
            let node = json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": cfg.node_name, "labels": labels},
                "spec": {"podCIDR": cfg.pod_cidr.to_string(), "podCIDRs": [cfg.pod_cidr.to_string()]},
                "status": status});
            client.create(nodes, None, node).await?;
        }
        Some(mut node) => {
            if let Some(l) = node
                .pointer_mut("/metadata/labels")
                .and_then(Value::as_object_mut)
            {
                if let Some(want) = labels.as_object() {
                    for (k, v) in want {
                        l.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            } else {
                node["metadata"]["labels"] = labels;
            }
            node["spec"]["podCIDR"] = json!(cfg.pod_cidr.to_string());
            node["spec"]["podCIDRs"] = json!([cfg.pod_cidr.to_string()]);
            let node = client.update(nodes, node).await?;
            let mut with_status = node;
            with_status["status"] = status;
            client.update_status(nodes, with_status).await?;
        }
    }
    Ok(())
}

/// Renews the Lease forever and re-posts the Node status when it changes (at once for a
/// pressure change) or every 5 minutes.
pub async fn heartbeat(
    client: LocalClient,
    cfg: super::AgentConfig,
    mut pressure: watch::Receiver<Pressure>,
) {
    let mut last_status = node_status(&cfg);
    let mut last_pressure = Pressure::default();
    let mut pressure_open = true;
    let mut last_report = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(LEASE_RENEW);
    loop {
        let mut lease_due = false;
        tokio::select! {
            _ = tick.tick() => lease_due = true,
            changed = pressure.changed(), if pressure_open => {
                if changed.is_err() {
                    pressure_open = false;
                    continue;
                }
            }
        }
        if lease_due {
            if let Err(e) = renew_lease(&client, &cfg).await {
                tracing::warn!(error = %e, "renewing the node lease");
            }
        }
        let now_pressure = *pressure.borrow_and_update();
        let status = node_status(&cfg);
        // The node lifecycle controller marks a node Unknown when it heard nothing for its grace
        // period (e.g. the process was stopped); the kubelet compares with the stored Node, so
        // a node that is alive again says so at its next heartbeat, not five minutes later.
        let stored_not_ready = lease_due && !stored_ready(&client, &cfg).await;
        if status != last_status
            || now_pressure != last_pressure
            || stored_not_ready
            || last_report.elapsed() >= STATUS_REPORT
        {
            match post_status(&client, &cfg, status.clone(), now_pressure).await {
                Ok(()) => {
                    last_status = status;
                    last_pressure = now_pressure;
                    last_report = tokio::time::Instant::now();
                }
                Err(e) => tracing::warn!(error = %e, "posting node status"),
            }
        }
    }
}

/// True when the stored Node says Ready=True (false when it is missing or says otherwise).
async fn stored_ready(client: &LocalClient, cfg: &super::AgentConfig) -> bool {
    let Ok(nodes) = resource("", "v1", "nodes") else {
        return true;
    };
    match client.get(nodes, None, &cfg.node_name).await {
        Ok(Some(node)) => {
            node.pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|cs| {
                    cs.iter()
                        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
                })
                .and_then(|c| c.get("status"))
                .and_then(Value::as_str)
                == Some("True")
        }
        Ok(None) => false,
        Err(_) => true,
    }
}

async fn post_status(
    client: &LocalClient,
    cfg: &super::AgentConfig,
    mut status: Value,
    pressure: Pressure,
) -> Result<(), AgentError> {
    let nodes = resource("", "v1", "nodes")?;
    let Some(mut node) = client.get(nodes, None, &cfg.node_name).await? else {
        return register_with(client, cfg, pressure).await;
    };
    status["conditions"] = conditions(&now(), node.pointer("/status/conditions"), pressure);
    node["status"] = status;
    client.update_status(nodes, node).await?;
    Ok(())
}

/// Creates or renews `kube-node-lease/<node>`.
pub async fn renew_lease(client: &LocalClient, cfg: &super::AgentConfig) -> Result<(), AgentError> {
    let leases = resource("coordination.k8s.io", "v1", "leases")?;
    let now_micro = jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%S%.6fZ", jiff::Timestamp::now())
        .unwrap_or_default();
    match client
        .get(leases, Some("kube-node-lease"), &cfg.node_name)
        .await?
    {
        Some(mut lease) => {
            lease["spec"]["renewTime"] = json!(now_micro);
            lease["spec"]["holderIdentity"] = json!(cfg.node_name);
            client.update(leases, lease).await?;
        }
        None => {
            let nodes = resource("", "v1", "nodes")?;
            let owner = client.get(nodes, None, &cfg.node_name).await?;
            let mut meta = json!({"name": cfg.node_name, "namespace": "kube-node-lease"});
            if let Some(uid) = owner
                .as_ref()
                .and_then(|n| n.pointer("/metadata/uid"))
                .and_then(Value::as_str)
            {
                meta["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "Node", "name": cfg.node_name, "uid": uid}]);
            }
            let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": {"holderIdentity": cfg.node_name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": now_micro}});
            client
                .create(leases, Some("kube-node-lease"), lease)
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition<'a>(c: &'a Value, t: &str) -> &'a Value {
        c.as_array()
            .and_then(|a| a.iter().find(|c| c["type"] == t))
            .unwrap_or(&Value::Null)
    }

    #[test]
    fn pressure_conditions_use_kubelet_reasons() {
        let calm = conditions("t0", None, Pressure::default());
        assert_eq!(condition(&calm, "MemoryPressure")["status"], "False");
        assert_eq!(
            condition(&calm, "DiskPressure")["reason"],
            "KubeletHasNoDiskPressure"
        );
        let p = Pressure {
            memory: true,
            disk: true,
            pid: false,
        };
        let c = conditions("t1", Some(&calm), p);
        let mem = condition(&c, "MemoryPressure");
        assert_eq!(mem["status"], "True");
        assert_eq!(mem["reason"], "KubeletHasInsufficientMemory");
        assert_eq!(mem["lastTransitionTime"], "t1");
        let disk = condition(&c, "DiskPressure");
        assert_eq!(disk["reason"], "KubeletHasDiskPressure");
        assert_eq!(disk["message"], "kubelet has disk pressure");
        let pid = condition(&c, "PIDPressure");
        assert_eq!(pid["status"], "False");
        assert_eq!(pid["lastTransitionTime"], "t0", "unchanged keeps its time");
        assert_eq!(condition(&c, "Ready")["status"], "True");
    }
}
