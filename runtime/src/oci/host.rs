//! What the spec builder needs to know about the host (read once, then cached): the
//! architecture, the `RLIMIT_NOFILE` hard limit, the agent's own capabilities, the memory
//! capacity (for the Burstable OOM score), whether the cgroup v1 swap controller exists,
//! whether cgroups are unified (v2 only), where privileged containers' devices come from, and
//! how low an `oom_score_adj` may be set. The agent runs without `CAP_SYS_RESOURCE`, so
//! rlimits, capabilities and OOM scores are clamped to what the host grants: asking for more
//! would make container creation fail.

use std::path::PathBuf;
use std::sync::OnceLock;

use oci_spec::runtime::{PosixRlimit, PosixRlimitBuilder, PosixRlimitType};

use super::security::CAP_SYS_RESOURCE;

/// `RLIMIT_NOFILE` containers get (containerd under systemd's `LimitNOFILE=1048576`), capped at
/// the host's hard limit.
pub const DEFAULT_NOFILE: u64 = 1_048_576;

/// Facts about the host the spec is built for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    /// Rust `target_arch` name (`x86_64`, `aarch64`, …): picks the seccomp architectures.
    pub arch: String,
    /// Hard `RLIMIT_NOFILE` of this process (`u64::MAX` = unlimited).
    pub nofile_hard: u64,
    /// Effective capabilities of this process as a bit mask (bit n = capability number n);
    /// `None` = unknown, no clamping.
    pub capabilities: Option<u64>,
    /// Physical memory in bytes (`MemTotal`); 0 = unknown.
    pub memory_capacity: u64,
    /// Whether `memory.memsw.limit_in_bytes` exists (cgroup v1 swap accounting): then the
    /// memory+swap limit is set equal to the memory limit (no swap), as containerd does.
    pub swap_controller: bool,
    /// Lowest `oom_score_adj` a container may get (`None` = no limit). Without
    /// `CAP_SYS_RESOURCE` a process cannot go below its own score.
    pub oom_score_adj_floor: Option<i32>,
    /// Whether `/sys/fs/cgroup` is a cgroup v2 filesystem (unified mode). Containers get a
    /// cgroup namespace only then, as containerd does (not on v1 or hybrid hosts).
    pub cgroup2_unified: bool,
    /// Where the device nodes of privileged containers come from (`/dev`), read each time a
    /// privileged spec is built; `None`: privileged containers get only the default nodes.
    pub dev_dir: Option<PathBuf>,
}

impl HostInfo {
    /// The host this process runs on (detected once).
    pub fn current() -> &'static HostInfo {
        static HOST: OnceLock<HostInfo> = OnceLock::new();
        HOST.get_or_init(HostInfo::detect)
    }

    /// Reads the host facts (rlimit, `/proc/self/status`, `/proc/meminfo`,
    /// `/proc/self/oom_score_adj`, the cgroup v1 memory controller).
    pub fn detect() -> HostInfo {
        let capabilities = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| parse_cap_eff(&s));
        let has_sys_resource = capabilities.is_some_and(|c| c & (1 << CAP_SYS_RESOURCE) != 0);
        let oom_score_adj_floor = if has_sys_resource {
            None
        } else {
            Some(
                std::fs::read_to_string("/proc/self/oom_score_adj")
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0),
            )
        };
        HostInfo {
            arch: std::env::consts::ARCH.to_string(),
            nofile_hard: nofile_hard_limit(),
            capabilities,
            memory_capacity: std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|s| parse_mem_total(&s))
                .unwrap_or(0),
            swap_controller: std::path::Path::new(
                "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes",
            )
            .exists(),
            oom_score_adj_floor,
            cgroup2_unified: is_cgroup2("/sys/fs/cgroup"),
            dev_dir: Some(PathBuf::from("/dev")),
        }
    }

    /// A host that grants everything (all capabilities, unlimited rlimits, any OOM score) with
    /// unified cgroups: specs built for it are what containerd would produce as root with full
    /// privileges — except that privileged containers get no host devices (nothing is read
    /// from the machine).
    pub fn unrestricted(arch: &str, memory_capacity: u64) -> HostInfo {
        HostInfo {
            arch: arch.to_string(),
            nofile_hard: u64::MAX,
            capabilities: None,
            memory_capacity,
            swap_controller: false,
            oom_score_adj_floor: None,
            cgroup2_unified: true,
            dev_dir: None,
        }
    }
}

/// The container rlimits for this host: `RLIMIT_NOFILE` soft = hard =
/// min(1048576, host hard limit).
pub fn host_rlimits() -> Vec<PosixRlimit> {
    nofile_rlimits(HostInfo::current().nofile_hard)
}

/// The container rlimits for a host whose `RLIMIT_NOFILE` hard limit is `host_hard`: never
/// above it (raising a hard limit needs `CAP_SYS_RESOURCE`).
pub fn nofile_rlimits(host_hard: u64) -> Vec<PosixRlimit> {
    let n = DEFAULT_NOFILE.min(host_hard);
    let rlimit = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .hard(n)
        .soft(n)
        .build()
        .expect("every PosixRlimit field is set");
    vec![rlimit]
}

fn nofile_hard_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass, which lives for the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc != 0 {
        return DEFAULT_NOFILE;
    }
    if lim.rlim_max == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        lim.rlim_max
    }
}

/// Whether `path` is a cgroup2 filesystem (`statfs` magic `CGROUP2_SUPER_MAGIC`).
fn is_cgroup2(path: &str) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// The `CapEff:` mask of a `/proc/<pid>/status` text.
pub(crate) fn parse_cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
pub(crate) fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().next()?.parse().ok()?;
    kib.checked_mul(1024)
}
