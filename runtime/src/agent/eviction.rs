//! Node-pressure eviction, as kubelet's eviction manager (`pkg/kubelet/eviction`): the signals
//! (`memory.available`, `nodefs.available`, `nodefs.inodesFree`, `imagefs.available`,
//! `imagefs.inodesFree`, `pid.available`), hard thresholds in the `--eviction-hard` syntax with
//! kubelet's defaults, which thresholds are met, the node conditions they raise (kept for the
//! pressure transition period), the ranking of pods to evict and the status message of an
//! evicted pod. Everything here is a pure function over observed numbers; `stats` reads them
//! from the machine and `manager` runs the loop that evicts.
//!
//! Signals are measured as kubelet does: `memory.available` is the memory capacity
//! (`MemTotal`) minus the working set of the root memory cgroup (usage minus inactive file
//! pages; on cgroup v2, whose root has no usage file, `MemTotal − MemFree` is the usage, as
//! runc's `rootStatsFromMeminfo`); `nodefs` is the filesystem of the pod directories
//! (`<data-dir>/agent/pods`: emptyDirs and container writable layers), `imagefs` the one of
//! the image store (the same filesystem unless mounted apart, then both report the same
//! numbers, as kubelet without a dedicated image filesystem).

mod manager;
mod stats;

pub use manager::{run, EvictRequest};

use crate::oci::Quantity;
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// kubelite's default hard thresholds. The kubelet's `DefaultEvictionHard` is
/// `nodefs.available<10%` and `imagefs.available<15%`; kubelite keeps pods, images and logs on
/// one filesystem (the data dir) of dev machines and edge boxes whose big disks would otherwise
/// hold back tens of gigabytes, so both disk signals trigger at 5% (the kubelet's values are one
/// `--eviction-hard` away). Memory and inodes are the kubelet's.
pub const DEFAULT_EVICTION_HARD: &str = "memory.available<100Mi,nodefs.available<5%,\
nodefs.inodesFree<5%,imagefs.available<5%,imagefs.inodesFree<5%";
/// kubelet's `evictionPressureTransitionPeriod` default.
pub const DEFAULT_PRESSURE_TRANSITION: Duration = Duration::from_secs(300);
/// kubelet's housekeeping (eviction monitoring) interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// `system-node-critical` and above are never evicted (`IsCriticalPodBasedOnPriority`).
pub const SYSTEM_CRITICAL_PRIORITY: i64 = 2_000_000_000;
/// The status reason of an evicted pod.
pub const REASON: &str = "Evicted";

/// What went wrong reading eviction settings.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EvictionError {
    #[error("unsupported eviction signal {0}")]
    UnsupportedSignal(String),
    #[error("malformed pair {0:?}, expect string<string")]
    Malformed(String),
    #[error("eviction threshold {signal}: {message}")]
    InvalidValue { signal: String, message: String },
}

/// An eviction signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    MemoryAvailable,
    NodeFsAvailable,
    NodeFsInodesFree,
    ImageFsAvailable,
    ImageFsInodesFree,
    PidAvailable,
}

/// What an eviction reclaims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Memory,
    EphemeralStorage,
    Inodes,
    Pids,
}

impl Resource {
    /// The resource name in messages (`v1.ResourceName`, kubelet's internal `inodes`/`pids`).
    pub fn name(self) -> &'static str {
        match self {
            Resource::Memory => "memory",
            Resource::EphemeralStorage => "ephemeral-storage",
            Resource::Inodes => "inodes",
            Resource::Pids => "pids",
        }
    }
}

/// A node condition eviction signals raise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Condition {
    MemoryPressure,
    DiskPressure,
    PidPressure,
}

impl Signal {
    pub const ALL: [Signal; 6] = [
        Signal::MemoryAvailable,
        Signal::NodeFsAvailable,
        Signal::NodeFsInodesFree,
        Signal::ImageFsAvailable,
        Signal::ImageFsInodesFree,
        Signal::PidAvailable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory.available",
            Signal::NodeFsAvailable => "nodefs.available",
            Signal::NodeFsInodesFree => "nodefs.inodesFree",
            Signal::ImageFsAvailable => "imagefs.available",
            Signal::ImageFsInodesFree => "imagefs.inodesFree",
            Signal::PidAvailable => "pid.available",
        }
    }

    fn parse(s: &str) -> Result<Signal, EvictionError> {
        Signal::ALL
            .into_iter()
            .find(|sig| sig.name() == s)
            .ok_or_else(|| EvictionError::UnsupportedSignal(s.to_string()))
    }

    /// `signalToResource`.
    pub fn resource(self) -> Resource {
        match self {
            Signal::MemoryAvailable => Resource::Memory,
            Signal::NodeFsAvailable | Signal::ImageFsAvailable => Resource::EphemeralStorage,
            Signal::NodeFsInodesFree | Signal::ImageFsInodesFree => Resource::Inodes,
            Signal::PidAvailable => Resource::Pids,
        }
    }

    /// `signalToNodeCondition`.
    pub fn condition(self) -> Condition {
        match self {
            Signal::MemoryAvailable => Condition::MemoryPressure,
            Signal::PidAvailable => Condition::PidPressure,
            _ => Condition::DiskPressure,
        }
    }

    /// Whether the signal is about the image filesystem.
    pub fn imagefs(self) -> bool {
        matches!(self, Signal::ImageFsAvailable | Signal::ImageFsInodesFree)
    }
}

/// A threshold's value: an absolute quantity or a share of the capacity.
#[derive(Debug, Clone, PartialEq)]
pub enum ThresholdValue {
    /// Whole units, and whether the quantity was written with a binary suffix (how it prints).
    Quantity { value: i64, binary: bool },
    /// A fraction of the capacity (0..=1), kept as kubelet's `float32`.
    Percentage(f32),
}

/// A hard eviction threshold: the signal is met when what is available falls below the value.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub signal: Signal,
    pub value: ThresholdValue,
}

impl Threshold {
    /// `GetThresholdQuantity`: the threshold in units for a capacity, and how it prints.
    pub fn quantity(&self, capacity: i64) -> (i64, String) {
        match &self.value {
            ThresholdValue::Quantity { value, binary } => {
                (*value, format_quantity(*value, *binary))
            }
            ThresholdValue::Percentage(p) => {
                let v = (capacity as f64 * f64::from(*p)) as i64;
                (v, format_quantity(v, true))
            }
        }
    }
}

/// Parses `--eviction-hard` values (kubelet's `<`-separated map: `signal<value` pairs separated
/// by commas; several values merge, a later pair for the same signal wins). `0%` and `100%`
/// turn a signal off. An empty list gives no thresholds; `None` gives kubelet's defaults.
pub fn parse_thresholds<S: AsRef<str>>(
    values: Option<&[S]>,
) -> Result<Vec<Threshold>, EvictionError> {
    let owned;
    let values: Vec<&str> = match values {
        Some(v) => v.iter().map(AsRef::as_ref).collect(),
        None => {
            owned = [DEFAULT_EVICTION_HARD];
            owned.to_vec()
        }
    };
    let mut by_signal: Vec<(Signal, String)> = Vec::new();
    for value in values {
        for pair in value.split(',') {
            if pair.is_empty() {
                continue;
            }
            let (k, v) = pair
                .split_once('<')
                .ok_or_else(|| EvictionError::Malformed(pair.to_string()))?;
            let signal = Signal::parse(k.trim())?;
            by_signal.retain(|(s, _)| *s != signal);
            by_signal.push((signal, v.trim().to_string()));
        }
    }
    let mut out = Vec::new();
    for signal in Signal::ALL {
        let Some((_, v)) = by_signal.iter().find(|(s, _)| *s == signal) else {
            continue;
        };
        if let Some(t) = parse_threshold(signal, v)? {
            out.push(t);
        }
    }
    Ok(out)
}

fn parse_threshold(signal: Signal, v: &str) -> Result<Option<Threshold>, EvictionError> {
    let invalid = |message: String| EvictionError::InvalidValue {
        signal: signal.name().to_string(),
        message,
    };
    if let Some(p) = v.strip_suffix('%') {
        if v == "0%" || v == "100%" {
            return Ok(None);
        }
        let pct: f32 = p
            .parse()
            .map_err(|_| invalid(format!("invalid percentage {v:?}")))?;
        let fraction = pct / 100.0;
        if !(0.0..=1.0).contains(&fraction) {
            return Err(invalid(format!("percentage must be within 0%..100%: {v}")));
        }
        return Ok(Some(Threshold {
            signal,
            value: ThresholdValue::Percentage(fraction),
        }));
    }
    let q = Quantity::parse(v).ok_or_else(|| invalid(format!("invalid quantity {v:?}")))?;
    if !q.is_positive() {
        return Err(invalid(format!("must be positive: {v}")));
    }
    Ok(Some(Threshold {
        signal,
        value: ThresholdValue::Quantity {
            value: q.value(),
            binary: v.ends_with('i'),
        },
    }))
}

/// Eviction settings of the agent.
#[derive(Debug, Clone)]
pub struct EvictionConfig {
    /// Hard thresholds (grace period 0).
    pub hard: Vec<Threshold>,
    /// How often signals are observed.
    pub interval: Duration,
    /// How long a pressure condition stays True after its threshold was last met.
    pub pressure_transition: Duration,
}

impl Default for EvictionConfig {
    fn default() -> Self {
        EvictionConfig {
            hard: parse_thresholds::<&str>(None).unwrap_or_default(),
            interval: DEFAULT_INTERVAL,
            pressure_transition: DEFAULT_PRESSURE_TRANSITION,
        }
    }
}

/// Which pressure conditions of the Node are True.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    pub memory: bool,
    pub disk: bool,
    pub pid: bool,
}

/// What a signal observed: available and capacity, in the signal's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub available: i64,
    pub capacity: i64,
}

/// The observations of one pass.
pub type Observations = HashMap<Signal, Observation>;

/// `thresholdsMet`: thresholds whose quantity is above what is available.
pub fn thresholds_met(thresholds: &[Threshold], obs: &Observations) -> Vec<Threshold> {
    thresholds
        .iter()
        .filter(|t| {
            obs.get(&t.signal)
                .is_some_and(|o| t.quantity(o.capacity).0 > o.available)
        })
        .cloned()
        .collect()
}

/// The threshold to reclaim for (`byEvictionPriority`): memory first, then in signal order.
pub fn threshold_to_reclaim(met: &[Threshold]) -> Option<&Threshold> {
    met.iter()
        .find(|t| t.signal == Signal::MemoryAvailable)
        .or_else(|| met.first())
}

/// Keeps when each pressure condition was last met, so a condition stays True for the
/// transition period after its signal recovered (no flapping).
#[derive(Debug, Default)]
pub struct PressureClock {
    last_met: HashMap<Condition, Instant>,
}

impl PressureClock {
    /// Records the thresholds met at `now`; returns the conditions that are True.
    pub fn update(&mut self, met: &[Threshold], now: Instant, period: Duration) -> Pressure {
        for t in met {
            self.last_met.insert(t.signal.condition(), now);
        }
        let on = |c: Condition| {
            self.last_met.get(&c).is_some_and(|at| {
                met.iter().any(|t| t.signal.condition() == c) || now.duration_since(*at) < period
            })
        };
        Pressure {
            memory: on(Condition::MemoryPressure),
            disk: on(Condition::DiskPressure),
            pid: on(Condition::PidPressure),
        }
    }
}

/// Usage of one container (for the eviction message).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerStats {
    pub name: String,
    /// Working set in bytes (None when its cgroup is not there).
    pub memory: Option<u64>,
    /// Writable layer plus logs, in bytes.
    pub ephemeral_storage: u64,
}

/// Usage of one pod, as its ranking and message need it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodStats {
    /// Working set of the pod's cgroup, bytes.
    pub memory: u64,
    /// Bytes used on the starved filesystem (volumes, writable layers, logs that live there).
    pub disk: u64,
    /// Inodes used on the starved filesystem.
    pub inodes: u64,
    /// Processes (threads) in the pod's cgroup.
    pub processes: u64,
    pub containers: Vec<ContainerStats>,
}

impl PodStats {
    fn usage(&self, r: Resource) -> i64 {
        let v = match r {
            Resource::Memory => self.memory,
            Resource::EphemeralStorage => self.disk,
            Resource::Inodes => self.inodes,
            Resource::Pids => self.processes,
        };
        i64::try_from(v).unwrap_or(i64::MAX)
    }
}

/// Whether a toleration list tolerates the `key:NoSchedule` taint (no value).
fn tolerates(pod: &Value, key: &str) -> bool {
    pod.pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|t| {
            let s = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("");
            let effect_ok = s("effect").is_empty() || s("effect") == "NoSchedule";
            let key_ok = s("key") == key || (s("key").is_empty() && s("operator") == "Exists");
            let value_ok = s("operator") == "Exists" || s("value").is_empty();
            effect_ok && key_ok && value_ok
        })
}

/// kubelet's eviction admission (`managerImpl.Admit`): under pressure a new pod is rejected
/// (None admits it) with kubelet's message, unless it is critical; under memory pressure alone
/// only BestEffort pods that do not tolerate the memory-pressure taint are.
pub fn admit(pod: &Value, pressure: Pressure) -> Option<String> {
    let conditions: Vec<&str> = [
        (pressure.memory, "MemoryPressure"),
        (pressure.disk, "DiskPressure"),
        (pressure.pid, "PIDPressure"),
    ]
    .into_iter()
    .filter_map(|(on, c)| on.then_some(c))
    .collect();
    if conditions.is_empty() || is_critical(pod) {
        return None;
    }
    if conditions == ["MemoryPressure"]
        && (crate::oci::qos_class(pod) != "BestEffort"
            || tolerates(pod, "node.kubernetes.io/memory-pressure"))
    {
        return None;
    }
    Some(format!(
        "The node had condition: [{}]. ",
        conditions.join(" ")
    ))
}

/// The pod's priority (`spec.priority`, 0 when unset).
pub fn priority(pod: &Value) -> i64 {
    pod.pointer("/spec/priority")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// kubelet's `IsCriticalPod`: static and mirror pods, and priority `system-node-critical`+.
pub fn is_critical(pod: &Value) -> bool {
    let ann = |k: &str| {
        pod.pointer("/metadata/annotations")
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
    };
    let static_pod = ann("kubernetes.io/config.source").is_some_and(|s| s != "api");
    static_pod
        || ann("kubernetes.io/config.mirror").is_some()
        || priority(pod) >= SYSTEM_CRITICAL_PRIORITY
}

fn request_of(c: &Value, name: &str) -> Option<Quantity> {
    ["requests", "limits"].into_iter().find_map(|list| {
        c.pointer(&format!("/resources/{list}/{name}"))
            .and_then(Quantity::from_json)
    })
}

/// `GetResourceRequestQuantity` for memory/ephemeral-storage (whole units): the containers'
/// requests (the limit when no request is set, as the API defaults) plus the sidecars', or an
/// init container's (plus the sidecars started before it) when that is more; plus overhead.
pub fn pod_request(pod: &Value, name: &str) -> i64 {
    let list = |p: &str| {
        pod.pointer(p)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let req = |c: &Value| request_of(c, name).map(|q| q.value()).unwrap_or(0);
    let mut sum: i64 = list("/spec/containers").iter().map(req).sum();
    let mut sidecars: i64 = 0;
    let mut init_max: i64 = 0;
    for c in list("/spec/initContainers") {
        if c.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
            sidecars = sidecars.saturating_add(req(&c));
            init_max = init_max.max(sidecars);
        } else {
            init_max = init_max.max(sidecars.saturating_add(req(&c)));
        }
    }
    sum = sum.saturating_add(sidecars).max(init_max);
    let overhead = pod
        .pointer(&format!("/spec/overhead/{name}"))
        .and_then(Quantity::from_json)
        .map(|q| q.value())
        .unwrap_or(0);
    sum.saturating_add(overhead)
}

/// A pod that may be evicted, with its usage.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub pod: Value,
    pub stats: PodStats,
}

/// `cmpBool`: true first.
fn true_first(a: bool, b: bool) -> Ordering {
    b.cmp(&a)
}

/// Orders candidates for eviction, first to evict first: for memory (`rankMemoryPressure`)
/// and disk (`rankDiskPressureFunc`), pods whose usage exceeds their request, then lower
/// priority, then larger usage above the request; for PIDs (`rankPIDPressure`), lower
/// priority then more processes.
pub fn rank(resource: Resource, candidates: &mut [Candidate]) {
    let request_name = match resource {
        Resource::Memory => "memory",
        Resource::EphemeralStorage => "ephemeral-storage",
        Resource::Inodes => "inodes",
        Resource::Pids => "pids",
    };
    let exceeds = |c: &Candidate| c.stats.usage(resource) > pod_request(&c.pod, request_name);
    // kubelet subtracts the ephemeral-storage request for inodes too.
    let above = |c: &Candidate| {
        let req = match resource {
            Resource::Memory => pod_request(&c.pod, "memory"),
            _ => pod_request(&c.pod, "ephemeral-storage"),
        };
        c.stats.usage(resource).saturating_sub(req)
    };
    candidates.sort_by(|a, b| match resource {
        Resource::Pids => priority(&a.pod)
            .cmp(&priority(&b.pod))
            .then_with(|| b.stats.processes.cmp(&a.stats.processes)),
        _ => true_first(exceeds(a), exceeds(b))
            .then_with(|| priority(&a.pod).cmp(&priority(&b.pod)))
            .then_with(|| above(b).cmp(&above(a))),
    });
}

/// `evictionMessage`: "The node was low on resource: memory. Threshold quantity: 100Mi,
/// available: 80Mi. Container c was using 50Mi, request is 0, has larger consumption of
/// memory. " (each sentence ends with a space, as kubelet's).
pub fn eviction_message(
    resource: Resource,
    pod: &Value,
    stats: &PodStats,
    threshold: Option<(&str, i64)>,
) -> String {
    let name = resource.name();
    let mut msg = format!("The node was low on resource: {name}. ");
    if let Some((quantity, available)) = threshold {
        let available = match resource {
            Resource::Memory | Resource::EphemeralStorage => format_quantity(available, true),
            _ => format_quantity(available, false),
        };
        msg.push_str(&format!(
            "Threshold quantity: {quantity}, available: {available}. "
        ));
    }
    let specs: Vec<Value> = ["/spec/containers", "/spec/initContainers"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .cloned()
        .collect();
    for cs in &stats.containers {
        let Some(spec) = specs
            .iter()
            .find(|c| c.get("name").and_then(Value::as_str) == Some(cs.name.as_str()))
        else {
            continue;
        };
        let usage = match resource {
            Resource::Memory => cs.memory,
            Resource::EphemeralStorage => Some(cs.ephemeral_storage),
            _ => None,
        };
        let Some(usage) = usage.map(|u| i64::try_from(u).unwrap_or(i64::MAX)) else {
            continue;
        };
        let request = spec
            .pointer(&format!("/resources/requests/{name}"))
            .and_then(Value::as_str)
            .and_then(|s| Quantity::parse(s).map(|q| (q.value(), s.ends_with('i'))));
        let (req, req_text) = match request {
            Some((v, binary)) => (v, format_quantity(v, binary)),
            None => (0, "0".to_string()),
        };
        if usage > req {
            msg.push_str(&format!(
                "Container {} was using {}, request is {req_text}, has larger consumption of {name}. ",
                cs.name,
                format_quantity(usage, true)
            ));
        }
    }
    msg
}

/// A whole quantity as Kubernetes prints it canonically: binary (`Ki`…`Ei`, the largest suffix
/// that divides it; below 1024 in decimal) or decimal SI (`k`…`E`).
pub fn format_quantity(value: i64, binary: bool) -> String {
    if value == 0 {
        return "0".into();
    }
    let magnitude = value.unsigned_abs();
    let sign = if value < 0 { "-" } else { "" };
    if binary && magnitude >= 1024 {
        let suffixes = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
        let mut n = magnitude;
        let mut i = 0;
        while i + 1 < suffixes.len() && n.is_multiple_of(1024) {
            n /= 1024;
            i += 1;
        }
        return format!("{sign}{n}{}", suffixes[i]);
    }
    let suffixes = ["", "k", "M", "G", "T", "P", "E"];
    let mut n = magnitude;
    let mut i = 0;
    while i + 1 < suffixes.len() && n.is_multiple_of(1000) {
        n /= 1000;
        i += 1;
    }
    format!("{sign}{n}{}", suffixes[i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> Vec<Threshold> {
        parse_thresholds(Some(&[s])).expect("thresholds")
    }

    #[test]
    fn parses_kubelet_syntax_and_defaults() {
        let d = parse_thresholds::<&str>(None).expect("defaults");
        let names: Vec<&str> = d.iter().map(|t| t.signal.name()).collect();
        assert_eq!(
            names,
            [
                "memory.available",
                "nodefs.available",
                "nodefs.inodesFree",
                "imagefs.available",
                "imagefs.inodesFree"
            ]
        );
        assert_eq!(
            d[0].value,
            ThresholdValue::Quantity {
                value: 100 << 20,
                binary: true
            }
        );
        // kubelite's disk defaults are 5% (the kubelet's are 10% and 15%).
        assert_eq!(d[1].value, ThresholdValue::Percentage(0.05));
        assert_eq!(d[3].value, ThresholdValue::Percentage(0.05));

        let v = t(" memory.available < 500Mi ,nodefs.available<10%");
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].quantity(0), (500 << 20, "500Mi".to_string()));
        // A later pair for the same signal wins; several values merge; 0% / 100% turn off.
        let v = parse_thresholds(Some(&[
            "nodefs.available<1Gi",
            "nodefs.available<2Gi,imagefs.available<0%",
            "",
        ]))
        .expect("merged");
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].quantity(0).1, "2Gi");
        assert!(parse_thresholds(Some(&[""])).expect("empty").is_empty());

        assert_eq!(
            parse_thresholds(Some(&["memory.free<1Gi"])),
            Err(EvictionError::UnsupportedSignal("memory.free".into()))
        );
        assert!(matches!(
            parse_thresholds(Some(&["memory.available=1Gi"])),
            Err(EvictionError::Malformed(_))
        ));
        assert!(parse_thresholds(Some(&["memory.available<0"])).is_err());
        assert!(parse_thresholds(Some(&["memory.available<-1Mi"])).is_err());
        assert!(parse_thresholds(Some(&["memory.available<101%"])).is_err());
        assert!(parse_thresholds(Some(&["memory.available<abc"])).is_err());
    }

    #[test]
    fn percentages_use_float32_like_kubelet() {
        let v = t("nodefs.available<10%");
        // float32(0.1) is slightly above 0.1, and the product is truncated.
        assert_eq!(v[0].quantity(1000).0, 100);
        assert_eq!(v[0].quantity(268_435_456).0, 26_843_546);
        assert_eq!(v[0].quantity(1 << 30).1, "107374184");
    }

    #[test]
    fn quantities_print_canonically() {
        assert_eq!(format_quantity(0, true), "0");
        assert_eq!(format_quantity(100 << 20, true), "100Mi");
        assert_eq!(format_quantity(80 * 1024 * 1024 + 1, true), "83886081");
        assert_eq!(format_quantity(1536, true), "1536");
        assert_eq!(format_quantity(1000, true), "1k");
        assert_eq!(format_quantity(1000 * 1024, true), "1000Ki");
        assert_eq!(format_quantity(3 << 30, true), "3Gi");
        assert_eq!(format_quantity(1_500_000_000, false), "1500M");
        assert_eq!(format_quantity(123, false), "123");
        assert_eq!(format_quantity(-2048, true), "-2Ki");
    }

    fn obs(signal: Signal, available: i64, capacity: i64) -> Observations {
        HashMap::from([(
            signal,
            Observation {
                available,
                capacity,
            },
        )])
    }

    #[test]
    fn thresholds_are_met_below_the_quantity() {
        let th = t("memory.available<100Mi,nodefs.available<10%");
        let o = obs(Signal::MemoryAvailable, 100 << 20, 1 << 30);
        assert!(thresholds_met(&th, &o).is_empty(), "equal is not below");
        let o = obs(Signal::MemoryAvailable, (100 << 20) - 1, 1 << 30);
        assert_eq!(thresholds_met(&th, &o).len(), 1);
        let mut o = obs(Signal::NodeFsAvailable, 99, 1000);
        o.insert(
            Signal::MemoryAvailable,
            Observation {
                available: 1,
                capacity: 1 << 30,
            },
        );
        let met = thresholds_met(&th, &o);
        assert_eq!(met.len(), 2);
        assert_eq!(
            threshold_to_reclaim(&met).map(|t| t.signal),
            Some(Signal::MemoryAvailable)
        );
        // No observation, no threshold met.
        assert!(thresholds_met(&th, &HashMap::new()).is_empty());
    }

    #[test]
    fn pressure_stays_for_the_transition_period() {
        let th = t("nodefs.available<10%");
        let mut clock = PressureClock::default();
        let t0 = Instant::now();
        let period = Duration::from_secs(300);
        assert_eq!(clock.update(&[], t0, period), Pressure::default());
        let p = clock.update(&th, t0, period);
        assert!(p.disk && !p.memory && !p.pid);
        assert!(
            clock
                .update(&[], t0 + Duration::from_secs(299), period)
                .disk
        );
        assert!(
            !clock
                .update(&[], t0 + Duration::from_secs(300), period)
                .disk
        );
        // Met now is True even with no transition period.
        assert!(clock.update(&th, t0, Duration::ZERO).disk);
        let mem = t("memory.available<1Mi");
        let p = clock.update(&mem, t0 + Duration::from_secs(400), period);
        assert!(p.memory && !p.disk);
    }

    fn pod(name: &str, qos: &str, prio: Option<i64>) -> Value {
        let resources = match qos {
            "Guaranteed" => json!({"requests": {"cpu": "100m", "memory": "64Mi"},
                "limits": {"cpu": "100m", "memory": "64Mi"}}),
            "Burstable" => json!({"requests": {"memory": "32Mi"}}),
            _ => json!({}),
        };
        let mut p = json!({"metadata": {"name": name, "uid": name},
            "spec": {"containers": [{"name": "c", "resources": resources}]}});
        if let Some(v) = prio {
            p["spec"]["priority"] = json!(v);
        }
        p
    }

    fn cand(p: Value, memory: u64, disk: u64) -> Candidate {
        Candidate {
            pod: p,
            stats: PodStats {
                memory,
                disk,
                ..Default::default()
            },
        }
    }

    fn order(c: &[Candidate]) -> Vec<&str> {
        c.iter()
            .map(|c| c.pod["metadata"]["name"].as_str().unwrap_or(""))
            .collect()
    }

    #[test]
    fn memory_ranking_is_best_effort_then_burstable_over_requests_then_guaranteed() {
        let mi = 1 << 20;
        let mut c = vec![
            cand(pod("guaranteed", "Guaranteed", None), 60 * mi, 0),
            cand(pod("burstable-under", "Burstable", None), 10 * mi, 0),
            cand(pod("burstable-over", "Burstable", None), 40 * mi, 0),
            cand(pod("besteffort-small", "BestEffort", None), mi, 0),
            cand(pod("besteffort-big", "BestEffort", None), 20 * mi, 0),
        ];
        rank(Resource::Memory, &mut c);
        assert_eq!(
            order(&c),
            [
                "besteffort-big",   // 20Mi over its request of 0
                "burstable-over",   // 8Mi over
                "besteffort-small", // 1Mi over
                "guaranteed",       // within its request: 4Mi below
                "burstable-under",  // 22Mi below
            ]
        );
        // Among pods over their requests, lower priority goes first.
        let mut c = vec![
            cand(pod("low-big", "BestEffort", Some(10)), 100 * mi, 0),
            cand(pod("lower-small", "BestEffort", Some(-5)), mi, 0),
        ];
        rank(Resource::Memory, &mut c);
        assert_eq!(order(&c), ["lower-small", "low-big"]);
    }

    #[test]
    fn disk_ranking_uses_ephemeral_storage_requests() {
        let mut with_request = pod("requested", "BestEffort", None);
        with_request["spec"]["containers"][0]["resources"] =
            json!({"requests": {"ephemeral-storage": "1Gi"}});
        let mut c = vec![
            cand(with_request, 0, 512 << 20),
            cand(pod("small", "Guaranteed", None), 0, 1 << 20),
            cand(pod("idle", "Guaranteed", None), 0, 0),
        ];
        rank(Resource::EphemeralStorage, &mut c);
        // "requested" is 512Mi below its request, "idle" at 0 above it.
        assert_eq!(order(&c), ["small", "idle", "requested"]);
    }

    #[test]
    fn pid_ranking_is_priority_then_processes() {
        let mut a = cand(pod("a", "BestEffort", None), 0, 0);
        a.stats.processes = 3;
        let mut b = cand(pod("b", "BestEffort", None), 0, 0);
        b.stats.processes = 30;
        let mut c = cand(pod("c", "BestEffort", Some(-1)), 0, 0);
        c.stats.processes = 1;
        let mut v = vec![a, b, c];
        rank(Resource::Pids, &mut v);
        assert_eq!(order(&v), ["c", "b", "a"]);
    }

    #[test]
    fn pod_requests_follow_kubelet() {
        let p = json!({"spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"memory": "100Mi"}}},
                {"name": "b", "resources": {"limits": {"memory": "50Mi"}}}
            ],
            "initContainers": [
                {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"memory": "10Mi"}}},
                {"name": "big", "resources": {"requests": {"memory": "500Mi"}}}
            ],
            "overhead": {"memory": "1Mi"}
        }});
        // max(100 + 50 + 10, 10 + 500) + 1
        assert_eq!(pod_request(&p, "memory"), 511 << 20);
        assert_eq!(pod_request(&p, "ephemeral-storage"), 0);
    }

    #[test]
    fn critical_pods() {
        assert!(!is_critical(&pod("p", "BestEffort", Some(1_000_000_000))));
        assert!(is_critical(&pod("p", "BestEffort", Some(2_000_000_000))));
        assert!(is_critical(&pod("p", "BestEffort", Some(2_000_001_000))));
        let mut m = pod("m", "BestEffort", None);
        m["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "x"});
        assert!(is_critical(&m));
        let mut s = pod("s", "BestEffort", None);
        s["metadata"]["annotations"] = json!({"kubernetes.io/config.source": "file"});
        assert!(is_critical(&s));
        s["metadata"]["annotations"] = json!({"kubernetes.io/config.source": "api"});
        assert!(!is_critical(&s));
    }

    #[test]
    fn admission_under_pressure() {
        let disk = Pressure {
            disk: true,
            ..Default::default()
        };
        let memory = Pressure {
            memory: true,
            ..Default::default()
        };
        let guaranteed = pod("g", "Guaranteed", None);
        let best_effort = pod("b", "BestEffort", None);
        assert_eq!(admit(&best_effort, Pressure::default()), None);
        assert_eq!(
            admit(&guaranteed, disk).as_deref(),
            Some("The node had condition: [DiskPressure]. ")
        );
        assert_eq!(admit(&guaranteed, memory), None);
        assert_eq!(
            admit(&best_effort, memory).as_deref(),
            Some("The node had condition: [MemoryPressure]. ")
        );
        let mut tolerant = best_effort.clone();
        tolerant["spec"]["tolerations"] = json!([{"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"}]);
        assert_eq!(admit(&tolerant, memory), None);
        assert!(admit(&tolerant, disk).is_some());
        let both = Pressure {
            memory: true,
            disk: true,
            pid: false,
        };
        assert_eq!(
            admit(&guaranteed, both).as_deref(),
            Some("The node had condition: [MemoryPressure DiskPressure]. ")
        );
        assert_eq!(
            admit(&pod("c", "BestEffort", Some(2_000_000_000)), both),
            None
        );
    }

    #[test]
    fn messages_use_kubelet_wording() {
        let mut p = pod("p", "Burstable", None);
        p["spec"]["containers"]
            .as_array_mut()
            .expect("containers")
            .push(json!({"name": "quiet"}));
        let stats = PodStats {
            memory: 60 << 20,
            containers: vec![
                ContainerStats {
                    name: "c".into(),
                    memory: Some(50 << 20),
                    ephemeral_storage: 4096,
                },
                ContainerStats {
                    name: "quiet".into(),
                    memory: Some(0),
                    ephemeral_storage: 0,
                },
            ],
            ..Default::default()
        };
        let th = t("memory.available<100Mi");
        let (_, q) = th[0].quantity(1 << 30);
        assert_eq!(
            eviction_message(Resource::Memory, &p, &stats, Some((&q, 80 << 20))),
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 80Mi. \
             Container c was using 50Mi, request is 32Mi, has larger consumption of memory. "
        );
        assert_eq!(
            eviction_message(
                Resource::EphemeralStorage,
                &p,
                &stats,
                Some(("128Mi", 1000))
            ),
            "The node was low on resource: ephemeral-storage. Threshold quantity: 128Mi, \
             available: 1k. Container c was using 4Ki, request is 0, has larger consumption of \
             ephemeral-storage. "
        );
        assert_eq!(
            eviction_message(Resource::Inodes, &p, &stats, Some(("5k", 4000))),
            "The node was low on resource: inodes. Threshold quantity: 5k, available: 4k. "
        );
        assert_eq!(
            eviction_message(Resource::Memory, &p, &PodStats::default(), None),
            "The node was low on resource: memory. "
        );
    }
}
