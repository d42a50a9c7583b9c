//! Compute resources of a Pod: its QoS class (`ComputePodQOS`), kubelet's cgroup conversions
//! (`MilliCPUToShares`, `MilliCPUToQuota` with the 100 ms period, the memory limit) and the
//! OOM score adjustment by QoS class (`pkg/kubelet/qos/policy.go`).

use serde_json::Value;

use super::quantity::Quantity;
use super::SpecError;

/// Fewest CPU shares a cgroup gets (`MinShares`).
pub const MIN_SHARES: u64 = 2;
/// Most CPU shares a cgroup gets (`MaxShares`).
pub const MAX_SHARES: u64 = 262_144;
/// Shares of one CPU.
pub const SHARES_PER_CPU: i64 = 1024;
/// CFS period kubelet uses (100 ms, in µs).
pub const QUOTA_PERIOD: u64 = 100_000;
/// Smallest CFS quota (1 ms, in µs).
pub const MIN_QUOTA_PERIOD: i64 = 1000;

/// OOM score adjustment of Guaranteed (and node-critical) containers.
pub const GUARANTEED_OOM_SCORE_ADJ: i32 = -997;
/// OOM score adjustment of BestEffort containers.
pub const BEST_EFFORT_OOM_SCORE_ADJ: i32 = 1000;

/// kubelet's `MilliCPUToShares`: 1024 shares per CPU, at least 2 (also for no request), at
/// most 262144.
pub fn milli_cpu_to_shares(milli_cpu: i64) -> u64 {
    if milli_cpu <= 0 {
        return MIN_SHARES;
    }
    let shares = milli_cpu.saturating_mul(SHARES_PER_CPU) / 1000;
    u64::try_from(shares)
        .unwrap_or(MIN_SHARES)
        .clamp(MIN_SHARES, MAX_SHARES)
}

/// kubelet's `MilliCPUToQuota`: the CFS quota (µs) for a CPU limit over `period` µs; 0 for no
/// limit, at least 1 ms otherwise.
pub fn milli_cpu_to_quota(milli_cpu: i64, period: u64) -> i64 {
    if milli_cpu == 0 {
        return 0;
    }
    let quota = i128::from(milli_cpu) * i128::from(period) / 1000;
    i64::try_from(quota)
        .unwrap_or(i64::MAX)
        .max(MIN_QUOTA_PERIOD)
}

/// CPU and memory of one resource list (`requests` or `limits`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuMemory {
    /// `cpu`.
    pub cpu: Option<Quantity>,
    /// `memory`.
    pub memory: Option<Quantity>,
}

fn resource(c: &Value, list: &str, name: &str) -> Result<Option<Quantity>, SpecError> {
    match c.pointer(&format!("/resources/{list}/{name}")) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => Quantity::from_json(v)
            .map(Some)
            .ok_or_else(|| SpecError::Quantity {
                field: format!("resources.{list}.{name}"),
                value: match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
            }),
    }
}

/// The `(requests, limits)` of a container's CPU and memory, with the API server's
/// defaulting repeated (a missing request defaults to the limit).
pub fn container_resources(container: &Value) -> Result<(CpuMemory, CpuMemory), SpecError> {
    let limits = CpuMemory {
        cpu: resource(container, "limits", "cpu")?,
        memory: resource(container, "limits", "memory")?,
    };
    let requests = CpuMemory {
        cpu: resource(container, "requests", "cpu")?.or(limits.cpu),
        memory: resource(container, "requests", "memory")?.or(limits.memory),
    };
    Ok((requests, limits))
}

fn all_containers(pod: &Value) -> impl Iterator<Item = &Value> {
    ["/spec/containers", "/spec/initContainers"]
        .into_iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
}

/// The Pod's QoS class (`BestEffort`, `Burstable` or `Guaranteed`): `status.qosClass` when
/// set (kubelet's `GetPodQOS`), else computed from the CPU and memory of all containers and
/// init containers. Invalid quantities count as absent.
pub fn qos_class(pod: &Value) -> &'static str {
    match pod.pointer("/status/qosClass").and_then(Value::as_str) {
        Some("Guaranteed") => "Guaranteed",
        Some("Burstable") => "Burstable",
        Some("BestEffort") => "BestEffort",
        _ => compute_qos_class(pod),
    }
}

/// `ComputePodQOS` (without pod-level resources).
pub fn compute_qos_class(pod: &Value) -> &'static str {
    let mut requests: [Option<Quantity>; 2] = [None, None];
    let mut limits: [Option<Quantity>; 2] = [None, None];
    let mut guaranteed = true;
    for c in all_containers(pod) {
        let get = |list: &str, name: &str| resource(c, list, name).ok().flatten();
        let lim = [get("limits", "cpu"), get("limits", "memory")];
        let req = [
            get("requests", "cpu").or(lim[0]),
            get("requests", "memory").or(lim[1]),
        ];
        for i in 0..2 {
            if let Some(q) = req[i].filter(Quantity::is_positive) {
                requests[i] = Some(requests[i].unwrap_or_default().saturating_add(q));
            }
        }
        let mut found = [false, false];
        for i in 0..2 {
            if let Some(q) = lim[i].filter(Quantity::is_positive) {
                found[i] = true;
                limits[i] = Some(limits[i].unwrap_or_default().saturating_add(q));
            }
        }
        if !(found[0] && found[1]) {
            guaranteed = false;
        }
    }
    let count = |l: &[Option<Quantity>; 2]| l.iter().filter(|q| q.is_some()).count();
    if count(&requests) == 0 && count(&limits) == 0 {
        return "BestEffort";
    }
    if guaranteed {
        for i in 0..2 {
            if let Some(r) = requests[i] {
                if limits[i] != Some(r) {
                    guaranteed = false;
                }
            }
        }
    }
    if guaranteed && count(&requests) == count(&limits) {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// kubelet's `GetContainerOOMScoreAdjust` for a node with `memory_capacity` bytes:
/// Guaranteed and `system-node-critical` pods −997, BestEffort 1000, Burstable
/// `1000 − 1000 × memoryRequest / capacity` kept within 3…999 (restartable init containers —
/// sidecars — no higher than the smallest regular container).
pub fn oom_score_adj(pod: &Value, container: &Value, memory_capacity: u64) -> i32 {
    if pod
        .pointer("/spec/priorityClassName")
        .and_then(Value::as_str)
        == Some("system-node-critical")
    {
        return GUARANTEED_OOM_SCORE_ADJ;
    }
    match qos_class(pod) {
        "Guaranteed" => return GUARANTEED_OOM_SCORE_ADJ,
        "BestEffort" => return BEST_EFFORT_OOM_SCORE_ADJ,
        _ => {}
    }
    let capacity = i128::from(memory_capacity.max(1));
    let memory_request = |c: &Value| -> i128 {
        container_resources(c)
            .ok()
            .and_then(|(r, _)| r.memory)
            .map_or(0, |q| i128::from(q.value()))
    };
    let adj_for = |request: i128| 1000 - (1000 * request) / capacity;
    let mut adj = adj_for(memory_request(container));
    let is_sidecar = container.get("restartPolicy").and_then(Value::as_str) == Some("Always");
    if is_sidecar {
        let min_regular = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(memory_request)
            .min()
            .unwrap_or(0);
        if min_regular != 0 {
            adj = adj.min(adj_for(min_regular));
        }
    }
    let floor = i128::from(1000 + GUARANTEED_OOM_SCORE_ADJ);
    if adj < floor {
        return 1000 + GUARANTEED_OOM_SCORE_ADJ;
    }
    if adj == i128::from(BEST_EFFORT_OOM_SCORE_ADJ) {
        return BEST_EFFORT_OOM_SCORE_ADJ - 1;
    }
    i32::try_from(adj).unwrap_or(BEST_EFFORT_OOM_SCORE_ADJ - 1)
}
