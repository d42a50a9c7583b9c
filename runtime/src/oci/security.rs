//! Security settings of a container as kubelet + containerd's CRI plugin derive them from the
//! security contexts: capabilities, privileged mode, `no_new_privs`, masked/read-only `/proc`
//! paths and the seccomp profile choice.

use oci_spec::runtime::{Capabilities, Capability};
use serde_json::Value;

use super::{ctr_sc, effective_sc, SpecError};

/// Capability number of `CAP_SYS_RESOURCE`.
pub(crate) const CAP_SYS_RESOURCE: u8 = 24;
/// Capability number of `CAP_SYS_ADMIN`.
pub(crate) const CAP_SYS_ADMIN: u8 = 21;

/// Every capability the kernel (5.9+) and oci-spec know: number, oci-spec value, name without
/// the `CAP_` prefix.
pub(crate) const CAPABILITIES: [(u8, Capability, &str); 41] = [
    (0, Capability::Chown, "CHOWN"),
    (1, Capability::DacOverride, "DAC_OVERRIDE"),
    (2, Capability::DacReadSearch, "DAC_READ_SEARCH"),
    (3, Capability::Fowner, "FOWNER"),
    (4, Capability::Fsetid, "FSETID"),
    (5, Capability::Kill, "KILL"),
    (6, Capability::Setgid, "SETGID"),
    (7, Capability::Setuid, "SETUID"),
    (8, Capability::Setpcap, "SETPCAP"),
    (9, Capability::LinuxImmutable, "LINUX_IMMUTABLE"),
    (10, Capability::NetBindService, "NET_BIND_SERVICE"),
    (11, Capability::NetBroadcast, "NET_BROADCAST"),
    (12, Capability::NetAdmin, "NET_ADMIN"),
    (13, Capability::NetRaw, "NET_RAW"),
    (14, Capability::IpcLock, "IPC_LOCK"),
    (15, Capability::IpcOwner, "IPC_OWNER"),
    (16, Capability::SysModule, "SYS_MODULE"),
    (17, Capability::SysRawio, "SYS_RAWIO"),
    (18, Capability::SysChroot, "SYS_CHROOT"),
    (19, Capability::SysPtrace, "SYS_PTRACE"),
    (20, Capability::SysPacct, "SYS_PACCT"),
    (21, Capability::SysAdmin, "SYS_ADMIN"),
    (22, Capability::SysBoot, "SYS_BOOT"),
    (23, Capability::SysNice, "SYS_NICE"),
    (24, Capability::SysResource, "SYS_RESOURCE"),
    (25, Capability::SysTime, "SYS_TIME"),
    (26, Capability::SysTtyConfig, "SYS_TTY_CONFIG"),
    (27, Capability::Mknod, "MKNOD"),
    (28, Capability::Lease, "LEASE"),
    (29, Capability::AuditWrite, "AUDIT_WRITE"),
    (30, Capability::AuditControl, "AUDIT_CONTROL"),
    (31, Capability::Setfcap, "SETFCAP"),
    (32, Capability::MacOverride, "MAC_OVERRIDE"),
    (33, Capability::MacAdmin, "MAC_ADMIN"),
    (34, Capability::Syslog, "SYSLOG"),
    (35, Capability::WakeAlarm, "WAKE_ALARM"),
    (36, Capability::BlockSuspend, "BLOCK_SUSPEND"),
    (37, Capability::AuditRead, "AUDIT_READ"),
    (38, Capability::Perfmon, "PERFMON"),
    (39, Capability::Bpf, "BPF"),
    (40, Capability::CheckpointRestore, "CHECKPOINT_RESTORE"),
];

/// Bits of every known capability.
pub(crate) const ALL_CAPS: u64 = (1 << 41) - 1;

/// The default capability set of a container (containerd's CRI default, as in containerd
/// 1.x and Docker): bounding = effective = permitted; inheritable and ambient empty.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Paths masked in `/proc` and `/sys` unless `procMount: Unmasked` (kubelet's defaults, kept
/// in sync with moby's).
pub const DEFAULT_MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths made read-only in `/proc` unless `procMount: Unmasked`.
pub const DEFAULT_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The capability bit of a name (`NET_ADMIN`, `CAP_NET_ADMIN`, any case).
pub(crate) fn cap_bit(name: &str) -> Option<u8> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    CAPABILITIES
        .iter()
        .find(|(_, _, n)| *n == bare)
        .map(|(bit, _, _)| *bit)
}

/// The oci-spec capability set of a mask.
pub(crate) fn caps_of_mask(mask: u64) -> Capabilities {
    CAPABILITIES
        .iter()
        .filter(|(bit, _, _)| mask & (1 << bit) != 0)
        .map(|(_, cap, _)| *cap)
        .collect()
}

fn mask_of_names<'a>(names: impl IntoIterator<Item = &'a str>) -> u64 {
    names
        .into_iter()
        .filter_map(cap_bit)
        .fold(0, |m, bit| m | (1 << bit))
}

/// Whether the container is privileged (`securityContext.privileged`, container only).
pub(crate) fn is_privileged(container: &Value) -> bool {
    ctr_sc(container, "privileged")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn cap_list<'a>(container: &'a Value, key: &str) -> Vec<&'a str> {
    ctr_sc(container, "capabilities")
        .and_then(|c| c.get(key))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// The capability mask of the container (bounding = effective = permitted), as containerd's
/// CRI computes it: privileged → every capability; otherwise the default set, then
/// `add: [ALL]` → every capability, `drop: [ALL]` → none, then the individual adds, then the
/// individual drops. Unknown names are ignored (as runc does). `host_caps` (the agent's own
/// capabilities) bounds the result: a capability the agent lacks cannot be granted, and asking
/// for it would make container creation fail.
pub(crate) fn capability_mask(container: &Value, privileged: bool, host_caps: Option<u64>) -> u64 {
    let all = host_caps.unwrap_or(ALL_CAPS) & ALL_CAPS;
    if privileged {
        return all;
    }
    let add = cap_list(container, "add");
    let drop = cap_list(container, "drop");
    let is_all = |s: &&str| s.eq_ignore_ascii_case("ALL");
    let mut mask = mask_of_names(DEFAULT_CAPABILITIES);
    if add.iter().any(is_all) {
        mask = ALL_CAPS;
    }
    if drop.iter().any(is_all) {
        mask = 0;
    }
    mask |= mask_of_names(add.iter().copied().filter(|s| !is_all(s)));
    mask &= !mask_of_names(drop.iter().copied().filter(|s| !is_all(s)));
    mask & all
}

/// `process.noNewPrivileges`: kubelet sets it only when `allowPrivilegeEscalation` is
/// explicitly false — which the API forbids together with `privileged` or `CAP_SYS_ADMIN`, and
/// which is ignored for them here too (escalation is always allowed then).
pub(crate) fn no_new_privileges(container: &Value, privileged: bool, caps: u64) -> bool {
    let allow = ctr_sc(container, "allowPrivilegeEscalation").and_then(Value::as_bool);
    allow == Some(false) && !privileged && caps & (1 << CAP_SYS_ADMIN) == 0
}

/// Whether `/proc` is unmasked (`securityContext.procMount: Unmasked`).
pub(crate) fn proc_unmasked(container: &Value) -> bool {
    ctr_sc(container, "procMount").and_then(Value::as_str) == Some("Unmasked")
}

/// The seccomp profile a container runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeccompChoice {
    /// No filter.
    Unconfined,
    /// The runtime's default profile.
    RuntimeDefault,
}

/// The effective seccomp profile: the container's `securityContext.seccompProfile`, else the
/// pod's, else `Unconfined` (kubelet's default without `--seccomp-default`). Privileged
/// containers are always unconfined. `Localhost` profiles are not supported yet.
pub fn seccomp_choice(pod: &Value, container: &Value) -> Result<SeccompChoice, SpecError> {
    if is_privileged(container) {
        return Ok(SeccompChoice::Unconfined);
    }
    let Some(profile) = effective_sc(pod, container, "seccompProfile") else {
        return Ok(SeccompChoice::Unconfined);
    };
    match profile.get("type").and_then(Value::as_str) {
        Some("RuntimeDefault") => Ok(SeccompChoice::RuntimeDefault),
        Some("Unconfined") | None => Ok(SeccompChoice::Unconfined),
        Some("Localhost") => Err(SpecError::Unsupported(format!(
            "seccomp profile type Localhost ({}) is not supported",
            profile
                .get("localhostProfile")
                .and_then(Value::as_str)
                .unwrap_or("")
        ))),
        Some(other) => Err(SpecError::Invalid(format!(
            "unknown seccomp profile type {other:?}"
        ))),
    }
}
