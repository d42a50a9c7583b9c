//! A container's memory cgroup: the directory libcontainer creates for it (the bundle's
//! `linux.cgroupsPath` under the memory controller's mount point, found in
//! `/proc/self/mountinfo`; v1 on hybrid hosts, v2 when that is where the controllers are).
//! It answers two questions once the init has exited: did the kernel OOM-kill something in it
//! (the `oom_kill` counter: `memory.oom_control` on v1, kernel ≥ 4.13; `memory.events` on v2),
//! and which processes are still left in it (without a PID namespace, background processes
//! outlive the init and must be killed before the cgroup can be removed).
//! It also removes a pod's parent cgroup once empty ([`remove_empty_cgroup`]), which
//! libcontainer creates for the containers' paths but never deletes.
//!
//! The path is computed as libcontainer computes it, never read from `/proc/<pid>/cgroup`: an
//! exited (zombie) init shows the root cgroup there, and the root must never be mistaken for
//! the container's.

use std::path::{Component, Path, PathBuf};

/// The memory cgroup directory of one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MemoryCgroup {
    pub(crate) dir: PathBuf,
    /// The cgroup's path inside its hierarchy, as `/proc/<pid>/cgroup` shows it.
    path: String,
    v2: bool,
    /// `memory.oom_control` (v1) or `memory.events` (v2).
    counter: &'static str,
}

impl MemoryCgroup {
    /// The memory cgroup libcontainer uses for container `id` with `cgroups_path` (the
    /// config's `linux.cgroupsPath`; libcontainer's default `:youki:<id>` when absent). None
    /// if there is no memory controller, or the path is empty or leaves its hierarchy (those
    /// would name a cgroup that is not the container's own).
    pub(crate) fn locate(cgroups_path: Option<&str>, id: &str) -> Option<MemoryCgroup> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let mounts = parse_mountinfo(&mountinfo);
        let default_path = format!(":youki:{id}");
        let relative = container_relative_path(cgroups_path.unwrap_or(&default_path))?;
        if let Some(mount) = &mounts.v1_memory {
            return Some(MemoryCgroup {
                dir: mount.point.join(&relative),
                path: format!("/{}", relative.display()),
                v2: false,
                counter: "memory.oom_control",
            });
        }
        match &mounts.v2 {
            // Only a v2 hierarchy that has controllers (not the empty one of a hybrid host).
            Some(mount) if mount.point.join("cgroup.controllers").exists() => Some(MemoryCgroup {
                dir: mount.point.join(&relative),
                path: format!("/{}", relative.display()),
                v2: true,
                counter: "memory.events",
            }),
            _ => None,
        }
    }

    /// Whether live process `pid` is in this cgroup (checked while the container's init runs,
    /// so the shim never acts on a cgroup the container is not in).
    pub(crate) fn holds(&self, pid: i32) -> bool {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
            return false;
        };
        let (v1, v2) = parse_proc_cgroup(&text);
        let found = if self.v2 { v2 } else { v1 };
        found.as_deref() == Some(self.path.as_str())
    }

    /// The current OOM-kill count (None if the cgroup is gone or has no `oom_kill` line).
    pub(crate) fn oom_kills(&self) -> Option<u64> {
        parse_oom_kill(&std::fs::read_to_string(self.dir.join(self.counter)).ok()?)
    }

    /// PIDs of the processes in the cgroup (empty if it is gone).
    pub(crate) fn procs(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

/// The `oom_kill N` line of `memory.oom_control` or `memory.events`.
pub(crate) fn parse_oom_kill(text: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut words = line.split_ascii_whitespace();
        (words.next()? == "oom_kill")
            .then(|| words.next()?.parse().ok())
            .flatten()
    })
}

/// Cgroup paths of the memory controller: (v1 `N:...memory...:/path`, v2 `0::/path`).
pub(crate) fn parse_proc_cgroup(text: &str) -> (Option<String>, Option<String>) {
    let mut v1 = None;
    let mut v2 = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            v2 = Some(path.to_owned());
        } else if controllers.split(',').any(|c| c == "memory") {
            v1 = Some(path.to_owned());
        }
    }
    (v1, v2)
}

/// `cgroups_path` relative to its hierarchy's root (leading '/' dropped), if it has at least
/// one component and no `..`.
pub(crate) fn container_relative_path(cgroups_path: &str) -> Option<PathBuf> {
    let path = Path::new(cgroups_path.trim_start_matches('/'));
    let mut relative = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(c) => relative.push(c),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!relative.as_os_str().is_empty()).then_some(relative)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CgroupMount {
    pub(crate) point: PathBuf,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct CgroupMounts {
    pub(crate) v1_memory: Option<CgroupMount>,
    pub(crate) v2: Option<CgroupMount>,
}

/// Finds the v1 memory controller's and the v2 hierarchy's mount points.
pub(crate) fn parse_mountinfo(text: &str) -> CgroupMounts {
    let mut mounts = CgroupMounts::default();
    for (point, fstype, options) in cgroup_mount_lines(text) {
        let mount = CgroupMount { point };
        match fstype {
            "cgroup" if options.split(',').any(|o| o == "memory") => {
                mounts.v1_memory.get_or_insert(mount);
            }
            "cgroup2" => {
                mounts.v2.get_or_insert(mount);
            }
            _ => {}
        }
    }
    mounts
}

/// Mount points of every cgroup hierarchy: each v1 controller mount and the v2 one.
pub(crate) fn parse_hierarchies(text: &str) -> Vec<PathBuf> {
    cgroup_mount_lines(text)
        .into_iter()
        .map(|(point, _, _)| point)
        .collect()
}

/// The cgroup mounts of mountinfo `text`: (mount point, `cgroup` or `cgroup2`, super options).
fn cgroup_mount_lines(text: &str) -> Vec<(PathBuf, &str, &str)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 5 || right.len() < 3 || !matches!(right[0], "cgroup" | "cgroup2") {
            continue;
        }
        out.push((PathBuf::from(unescape(left[4])), right[0], right[2]));
    }
    out
}

/// Removes cgroup `cgroups_path` (a `linux.cgroupsPath`-style path, e.g. a pod's
/// `/kubelite/pod<uid>`) from every hierarchy where it exists and is empty. libcontainer
/// creates the parents of a container's cgroup but deletes only the container's own, so the
/// agent removes a pod's parent once the pod's helpers are gone. rmdir only: a cgroup that
/// still has processes or children stays. Returns how many hierarchies still have it.
pub fn remove_empty_cgroup(cgroups_path: &str) -> usize {
    let Some(relative) = container_relative_path(cgroups_path) else {
        return 0;
    };
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    parse_hierarchies(&mountinfo)
        .into_iter()
        .map(|point| point.join(&relative))
        .filter(|dir| match std::fs::remove_dir(dir) {
            Ok(()) => false,
            Err(e) => e.kind() != std::io::ErrorKind::NotFound,
        })
        .count()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if let (b'\\', Some(d)) = (b[i], octal) {
            out.push(((d[0] - b'0') << 6) | ((d[1] - b'0') << 3) | (d[2] - b'0'));
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
