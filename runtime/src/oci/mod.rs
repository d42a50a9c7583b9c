//! The OCI runtime spec (`config.json`) of one container of a Pod, as kubelet + containerd's
//! CRI plugin would generate it, for libcontainer 0.7 to run.
//!
//! [`build_spec`] is a pure function of its input and of a few host facts ([`HostInfo`]); the
//! only files it reads are the container's `/etc/passwd` / `/etc/group` (user names) and, for
//! a privileged container, the host's `/dev`. What it reproduces:
//! - process: args ([`command_line_with_env`]), env (`PATH` default, `TERM` for a tty,
//!   `HOSTNAME`, image env, then the resolved Kubernetes env — later entries replace earlier
//!   ones in place), cwd, user ([`user::resolve_user`]), terminal, capabilities,
//!   `noNewPrivileges`, `oomScoreAdj`, rlimits;
//! - root (read-only with `readOnlyRootFilesystem`), mounts (containerd's defaults without
//!   `/run`, plus `/sys/fs/cgroup`, read-only unless privileged, then the caller's mounts
//!   sorted by depth; a caller mount replaces a default one with the same destination);
//! - linux: namespaces, cgroups path, resources (CPU shares/quota/period, memory limit,
//!   device rules), sysctls, masked/read-only paths, seccomp; annotations as CRI sets them.
//!
//! Privileged containers get every capability the agent has, no seccomp filter, no masked or
//! read-only paths, writable `/sys` and cgroups, every device (cgroup rule `a *:* rwm`) and
//! the host's device nodes ([`devices`]), as containerd's `WithPrivileged` +
//! `WithHostDevices`.
//!
//! Not covered: AppArmor and SELinux labels, `Localhost` seccomp profiles (an error), user
//! namespaces (`hostUsers: false`), hugepages, pod-level resources, and a shared PID namespace
//! (`shareProcessNamespace`): [`ContainerInput`] carries no PID namespace to join, so every
//! container gets its own.

mod command;
mod devices;
mod host;
mod quantity;
mod resources;
mod seccomp;
mod security;
mod user;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use oci_spec::runtime::PosixRlimit;
use oci_spec::runtime::{
    LinuxCapabilities, LinuxCpu, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory, LinuxNamespace,
    LinuxNamespaceType, LinuxResources, Mount, Process, Root, Spec, User,
};
use serde_json::Value;

pub use command::{command_line, command_line_with_env, expand_vars};
pub use host::{host_rlimits, nofile_rlimits, HostInfo, DEFAULT_NOFILE};
pub use quantity::Quantity;
pub use resources::{
    compute_qos_class, container_resources, milli_cpu_to_quota, milli_cpu_to_shares, oom_score_adj,
    qos_class, CpuMemory, QUOTA_PERIOD,
};
pub use seccomp::{default_profile as default_seccomp_profile, LIBCONTAINER_SWAPS_MASKED_EQ};
pub use security::{
    seccomp_choice, SeccompChoice, DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS,
    DEFAULT_READONLY_PATHS,
};
pub use user::{resolve_user, verify_run_as_non_root, ResolvedUser};

/// `PATH` when the image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything needed to build the spec of one container.
#[derive(Debug)]
pub struct ContainerInput<'a> {
    /// The Pod object (Kubernetes JSON).
    pub pod: &'a Value,
    /// The container entry (from `spec.containers` or `spec.initContainers`).
    pub container: &'a Value,
    /// The image configuration.
    pub image: &'a ImageConfigLite,
    /// Absolute path of the mounted root filesystem.
    pub rootfs: PathBuf,
    /// Network namespace to join; `None`: the host's with `hostNetwork`, else a new one.
    pub netns: Option<PathBuf>,
    /// IPC namespace to join; `None`: the host's with `hostIPC`, else a new one.
    pub ipcns: Option<PathBuf>,
    /// UTS namespace to join; `None`: the host's with `hostNetwork`, else a new one (which
    /// then gets `hostname`).
    pub utsns: Option<PathBuf>,
    /// The pod's hostname (`HOSTNAME` env; the UTS hostname when the UTS namespace is new).
    pub hostname: String,
    /// The resolved Kubernetes env, applied after the image env (same names override).
    pub env: Vec<(String, String)>,
    /// Volume mounts, `/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname`, the termination log.
    pub mounts: Vec<Mount>,
    /// `linux.cgroupsPath`, e.g. `/kubelite/pod<uid>/<container-id>`.
    pub cgroups_path: String,
    /// Whether a container without CPU request or limit gets kubelet's minimum of 2 CPU shares
    /// (`true`, as kubelet does) or keeps the cgroup default (`false`).
    pub pod_cgroup_shares_default: bool,
}

/// The parts of an OCI image config the spec needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfigLite {
    /// `ENTRYPOINT`.
    pub entrypoint: Vec<String>,
    /// `CMD`.
    pub cmd: Vec<String>,
    /// `ENV`, as `K=V`.
    pub env: Vec<String>,
    /// `WORKDIR`.
    pub working_dir: String,
    /// `USER` (`uid`, `name`, `uid:gid`, `name:group`, …).
    pub user: String,
}

/// Why a spec could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// `runAsNonRoot` is violated; the message is kubelet's.
    #[error("{0}")]
    RunAsNonRoot(String),
    /// Neither the container nor the image gives a command.
    #[error("no command specified")]
    NoCommand,
    /// The user or group cannot be resolved.
    #[error("{0}")]
    User(String),
    /// A resource quantity does not parse.
    #[error("invalid quantity {value:?} in {field}")]
    Quantity {
        /// Where, e.g. `resources.limits.cpu`.
        field: String,
        /// What was there.
        value: String,
    },
    /// A feature kubelite does not support yet.
    #[error("{0}")]
    Unsupported(String),
    /// An invalid container or pod field.
    #[error("invalid container spec: {0}")]
    Invalid(String),
    /// The spec could not be assembled.
    #[error("building OCI spec: {0}")]
    Oci(String),
}

/// A field of the container's `securityContext`.
pub(crate) fn ctr_sc<'a>(container: &'a Value, key: &str) -> Option<&'a Value> {
    container
        .get("securityContext")
        .and_then(|sc| sc.get(key))
        .filter(|v| !v.is_null())
}

/// A field of the container's `securityContext`, else of the pod's (`runAsUser`,
/// `runAsGroup`, `runAsNonRoot`, `seccompProfile`, …).
pub(crate) fn effective_sc<'a>(
    pod: &'a Value,
    container: &'a Value,
    key: &str,
) -> Option<&'a Value> {
    ctr_sc(container, key).or_else(|| {
        pod.pointer("/spec/securityContext")
            .and_then(|sc| sc.get(key))
            .filter(|v| !v.is_null())
    })
}

fn pod_flag(pod: &Value, key: &str) -> bool {
    pod.get("spec")
        .and_then(|s| s.get(key))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Builds the spec of `input` for this host ([`HostInfo::current`]).
pub fn build_spec(input: &ContainerInput) -> Result<Spec, SpecError> {
    build_spec_for_host(input, HostInfo::current())
}

/// Builds the spec of `input` for `host`.
pub fn build_spec_for_host(input: &ContainerInput, host: &HostInfo) -> Result<Spec, SpecError> {
    let pod = input.pod;
    let ctr = input.container;
    let privileged = security::is_privileged(ctr);
    let tty = ctr.get("tty").and_then(Value::as_bool).unwrap_or(false);
    let read_only_root = ctr_sc(ctr, "readOnlyRootFilesystem")
        .and_then(Value::as_bool)
        .unwrap_or(false);

    verify_run_as_non_root(pod, ctr, &input.image.user)?;
    let args = command_line_with_env(ctr, input.image, &input.env)?;
    let seccomp_choice = seccomp_choice(pod, ctr)?;
    let user = resolve_user(pod, ctr, input.image, &input.rootfs)?;
    let (requests, limits) = container_resources(ctr)?;

    // Process.
    let caps = security::capability_mask(ctr, privileged, host.capabilities);
    let cap_set = security::caps_of_mask(caps);
    let mut capabilities = LinuxCapabilities::default();
    capabilities.set_bounding(Some(cap_set.clone()));
    capabilities.set_effective(Some(cap_set.clone()));
    capabilities.set_permitted(Some(cap_set));
    capabilities.set_inheritable(Some(Default::default()));
    capabilities.set_ambient(Some(Default::default()));

    let mut process_user = User::default();
    process_user.set_uid(user.uid);
    process_user.set_gid(user.gid);
    process_user.set_additional_gids(Some(user.additional_gids.clone()));

    let cwd = [
        ctr.get("workingDir").and_then(Value::as_str).unwrap_or(""),
        input.image.working_dir.as_str(),
    ]
    .into_iter()
    .find(|d| !d.is_empty())
    .map_or_else(
        || "/".to_string(),
        |d| {
            if d.starts_with('/') {
                d.to_string()
            } else {
                format!("/{d}")
            }
        },
    );

    let mut oom = oom_score_adj(pod, ctr, host.memory_capacity);
    if let Some(floor) = host.oom_score_adj_floor {
        oom = oom.max(floor);
    }

    let mut process = Process::default();
    process.set_terminal(Some(tty));
    process.set_console_size(None);
    process.set_user(process_user);
    process.set_args(Some(args));
    process.set_env(Some(build_env(input, tty)));
    process.set_cwd(PathBuf::from(cwd));
    process.set_capabilities(Some(capabilities));
    process.set_rlimits(Some(nofile_rlimits(host.nofile_hard)));
    // Omitted when false, as containerd's JSON does: libcontainer 0.7 looks only at whether the
    // field is present, and with `Some(false)` it would install the seccomp filter after
    // dropping CAP_SYS_ADMIN and without no_new_privs, which the kernel refuses.
    process
        .set_no_new_privileges(security::no_new_privileges(ctr, privileged, caps).then_some(true));
    process.set_apparmor_profile(None);
    process.set_oom_score_adj(Some(oom));
    process.set_selinux_label(None);

    // Namespaces: pid, ipc, uts, mount, network, cgroup (containerd's order).
    let host_network = pod_flag(pod, "hostNetwork");
    let ns = |typ: LinuxNamespaceType, path: Option<&PathBuf>| {
        let mut n = LinuxNamespace::default();
        n.set_typ(typ);
        n.set_path(path.cloned());
        n
    };
    let mut namespaces = Vec::new();
    if !pod_flag(pod, "hostPID") {
        namespaces.push(ns(LinuxNamespaceType::Pid, None));
    }
    if input.ipcns.is_some() || !pod_flag(pod, "hostIPC") {
        namespaces.push(ns(LinuxNamespaceType::Ipc, input.ipcns.as_ref()));
    }
    let new_uts = input.utsns.is_none() && !host_network;
    if input.utsns.is_some() || !host_network {
        namespaces.push(ns(LinuxNamespaceType::Uts, input.utsns.as_ref()));
    }
    namespaces.push(ns(LinuxNamespaceType::Mount, None));
    if input.netns.is_some() || !host_network {
        namespaces.push(ns(LinuxNamespaceType::Network, input.netns.as_ref()));
    }
    // containerd: a cgroup namespace only with unified cgroups, never for privileged.
    if host.cgroup2_unified && !privileged {
        namespaces.push(ns(LinuxNamespaceType::Cgroup, None));
    }

    // Resources.
    let mut cpu = LinuxCpu::default();
    let cpu_request = requests.cpu.filter(|q| !q.is_zero());
    let cpu_limit = limits.cpu.filter(|q| !q.is_zero());
    if let Some(q) = cpu_request.or(cpu_limit) {
        cpu.set_shares(Some(milli_cpu_to_shares(q.milli_value())));
    } else if input.pod_cgroup_shares_default {
        cpu.set_shares(Some(milli_cpu_to_shares(0)));
    }
    cpu.set_period(Some(QUOTA_PERIOD));
    if let Some(q) = cpu_limit {
        cpu.set_quota(Some(milli_cpu_to_quota(q.milli_value(), QUOTA_PERIOD)));
    }
    let mut resources = LinuxResources::default();
    resources.set_cpu(Some(cpu));
    if let Some(limit) = limits.memory.map(|q| q.value()).filter(|v| *v > 0) {
        let mut memory = LinuxMemory::default();
        memory.set_limit(Some(limit));
        if host.swap_controller {
            memory.set_swap(Some(limit));
        }
        resources.set_memory(Some(memory));
    }
    resources.set_devices(Some(device_rules(privileged)));

    // Linux.
    let mut linux = oci_spec::runtime::Linux::default();
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);
    linux.set_namespaces(Some(namespaces));
    linux.set_resources(Some(resources));
    linux.set_cgroups_path(Some(PathBuf::from(&input.cgroups_path)));
    linux.set_devices(match (&host.dev_dir, privileged) {
        (Some(dir), true) => Some(devices::host_devices(dir)?),
        _ => None,
    });
    let unmasked = privileged || security::proc_unmasked(ctr);
    let strings = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    linux.set_masked_paths((!unmasked).then(|| strings(&DEFAULT_MASKED_PATHS)));
    linux.set_readonly_paths((!unmasked).then(|| strings(&DEFAULT_READONLY_PATHS)));
    linux.set_sysctl(sysctls(pod));
    linux.set_seccomp(match seccomp_choice {
        SeccompChoice::RuntimeDefault => Some(seccomp::default_profile(&host.arch, caps)?),
        SeccompChoice::Unconfined => None,
    });
    let mounts = build_mounts(input, privileged, read_only_root);
    linux.set_rootfs_propagation(rootfs_propagation(&mounts));

    let mut root = Root::default();
    root.set_path(input.rootfs.clone());
    root.set_readonly(Some(read_only_root));

    let mut spec = Spec::default();
    spec.set_version(oci_spec::runtime::VERSION.to_string());
    spec.set_root(Some(root));
    spec.set_mounts(Some(mounts));
    spec.set_process(Some(process));
    spec.set_hostname(new_uts.then(|| input.hostname.clone()));
    spec.set_domainname(None);
    spec.set_hooks(None);
    spec.set_annotations(Some(annotations(pod, ctr)));
    spec.set_linux(Some(linux));
    Ok(spec)
}

/// containerd's `replaceOrAppendEnvValues`: a `K=V` entry replaces an earlier `K` in place or
/// is appended; an entry without `=` removes `K`.
fn merge_env(env: &mut Vec<String>, overrides: impl IntoIterator<Item = String>) {
    for entry in overrides {
        let (key, set) = match entry.split_once('=') {
            Some((k, _)) => (k.to_string(), true),
            None => (entry.clone(), false),
        };
        let pos = env
            .iter()
            .position(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key);
        match (pos, set) {
            (Some(i), true) => env[i] = entry,
            (None, true) => env.push(entry),
            (Some(i), false) => {
                env.remove(i);
            }
            (None, false) => {}
        }
    }
}

/// The process env, in containerd's order: default `PATH`, `TERM=xterm` with a tty,
/// `HOSTNAME`, the image env, the Kubernetes env.
fn build_env(input: &ContainerInput, tty: bool) -> Vec<String> {
    let mut env = vec![format!("PATH={DEFAULT_PATH}")];
    if tty {
        env.push("TERM=xterm".to_string());
    }
    merge_env(&mut env, [format!("HOSTNAME={}", input.hostname)]);
    merge_env(&mut env, input.image.env.iter().cloned());
    merge_env(&mut env, input.env.iter().map(|(k, v)| format!("{k}={v}")));
    env
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dest));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(PathBuf::from(source)));
    m.set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    m
}

/// containerd's default mounts (minus `/run`, as CRI removes it) plus `/sys/fs/cgroup`;
/// `/sys` and the cgroup filesystem are writable only for privileged containers.
pub fn default_mounts(privileged: bool) -> Vec<Mount> {
    let rw = if privileged { "rw" } else { "ro" };
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", rw]),
        mount(
            CGROUP_DIR,
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", rw],
        ),
    ]
}

/// `path` without `.`/`..`/duplicate separators (lexically, like Go's `filepath.Clean`).
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Mounts as CRI's `WithMounts` orders them: the defaults not replaced by a caller mount (all
/// of `/dev/*` goes when the caller mounts `/dev`), then the caller's mounts stably sorted by
/// depth so that a parent never shadows a child. With a read-only root, the pod's
/// `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` are mounted read-only too.
///
/// libcontainer 0.7 ignores `ro` on a cgroup v1 mount (its tmpfs and every hierarchy end up
/// writable, so a container could raise its own limits), so for unprivileged containers the
/// cgroup mount is followed by [`cgroup_read_only`] — on every host, as it is harmless where
/// `ro` already works (cgroup v2).
fn build_mounts(input: &ContainerInput, privileged: bool, read_only_root: bool) -> Vec<Mount> {
    let supplied: Vec<PathBuf> = input
        .mounts
        .iter()
        .map(|m| clean(m.destination()))
        .collect();
    let dev_supplied = supplied.iter().any(|d| d == Path::new("/dev"));
    let mut mounts: Vec<Mount> = default_mounts(privileged)
        .into_iter()
        .filter(|m| {
            let d = clean(m.destination());
            let under_supplied_dev = dev_supplied && d.starts_with("/dev/");
            !supplied.contains(&d) && !under_supplied_dev
        })
        .collect();
    if !privileged {
        if let Some(i) = mounts
            .iter()
            .position(|m| m.destination() == Path::new(CGROUP_DIR))
        {
            mounts.insert(i + 1, cgroup_read_only(&input.rootfs));
        }
    }
    let mut extra = input.mounts.clone();
    extra.sort_by_key(|m| clean(m.destination()).components().count());
    for m in &mut extra {
        let dest = clean(m.destination());
        let etc_file = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]
            .iter()
            .any(|p| dest == Path::new(p));
        if read_only_root && etc_file && m.typ().as_deref() == Some("bind") {
            let mut opts = m.options().clone().unwrap_or_default();
            opts.retain(|o| o != "rw");
            if !opts.iter().any(|o| o == "ro") {
                opts.push("ro".to_string());
            }
            m.set_options(Some(opts));
        }
    }
    mounts.extend(extra);
    mounts
}

/// Where containers see their cgroups.
const CGROUP_DIR: &str = "/sys/fs/cgroup";

/// The container's own `/sys/fs/cgroup` tree (as just mounted under `rootfs`) bound over
/// itself recursively read-only, as runc leaves it.
fn cgroup_read_only(rootfs: &Path) -> Mount {
    let source = rootfs.join(CGROUP_DIR.trim_start_matches('/'));
    let mut m = mount(
        CGROUP_DIR,
        "bind",
        "",
        &["rbind", "rro", "nosuid", "noexec", "nodev"],
    );
    m.set_source(Some(source));
    m
}

/// `rshared` if a mount propagates both ways, `rslave` if one propagates from the host, as CRI
/// sets `linux.rootfsPropagation`.
fn rootfs_propagation(mounts: &[Mount]) -> Option<String> {
    let has = |opt: &str| {
        mounts
            .iter()
            .any(|m| m.options().iter().flatten().any(|o| o == opt))
    };
    if has("rshared") {
        Some("rshared".to_string())
    } else if has("rslave") {
        Some("rslave".to_string())
    } else {
        None
    }
}

fn device_rule(
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    allow: bool,
) -> LinuxDeviceCgroup {
    let mut d = LinuxDeviceCgroup::default();
    d.set_allow(allow);
    d.set_typ(Some(typ));
    d.set_major(major);
    d.set_minor(minor);
    d.set_access(Some("rwm".to_string()));
    d
}

/// Device cgroup rules: privileged containers may use every device; others none but
/// containerd's defaults (null, random, full, tty, zero, urandom, console, pts, ptmx, tun).
pub fn device_rules(privileged: bool) -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{A, C};
    if privileged {
        return vec![device_rule(A, None, None, true)];
    }
    let mut rules = vec![device_rule(A, None, None, false)];
    for (major, minor) in [
        (1, Some(3)),    // /dev/null
        (1, Some(8)),    // /dev/random
        (1, Some(7)),    // /dev/full
        (5, Some(0)),    // /dev/tty
        (1, Some(5)),    // /dev/zero
        (1, Some(9)),    // /dev/urandom
        (5, Some(1)),    // /dev/console
        (136, None),     // /dev/pts/*
        (5, Some(2)),    // /dev/ptmx
        (10, Some(200)), // /dev/net/tun
    ] {
        rules.push(device_rule(C, Some(major), minor, true));
    }
    rules
}

/// kubelet's `ConvertSysctlVariableToDotsSeparator`: a name whose first separator is `/` uses
/// `/` between components and `.` inside them; swap the two.
fn sysctl_name(name: &str) -> String {
    match name.find(['.', '/']) {
        Some(i) if name.as_bytes()[i] == b'/' => name
            .chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect(),
        _ => name.to_string(),
    }
}

/// The pod's `securityContext.sysctls` as `linux.sysctl`.
fn sysctls(pod: &Value) -> Option<HashMap<String, String>> {
    let map: HashMap<String, String> = pod
        .pointer("/spec/securityContext/sysctls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let name = s.get("name").and_then(Value::as_str)?;
            let value = s.get("value").and_then(Value::as_str).unwrap_or("");
            Some((sysctl_name(name), value.to_string()))
        })
        .collect();
    (!map.is_empty()).then_some(map)
}

/// The annotations containerd's CRI sets on a container spec.
fn annotations(pod: &Value, ctr: &Value) -> HashMap<String, String> {
    let s = |v: &Value, p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    HashMap::from([
        (
            "io.kubernetes.cri.container-type".to_string(),
            "container".to_string(),
        ),
        (
            "io.kubernetes.cri.container-name".to_string(),
            s(ctr, "/name"),
        ),
        ("io.kubernetes.cri.image-name".to_string(), s(ctr, "/image")),
        (
            "io.kubernetes.cri.sandbox-name".to_string(),
            s(pod, "/metadata/name"),
        ),
        (
            "io.kubernetes.cri.sandbox-namespace".to_string(),
            s(pod, "/metadata/namespace"),
        ),
        (
            "io.kubernetes.cri.sandbox-uid".to_string(),
            s(pod, "/metadata/uid"),
        ),
    ])
}
