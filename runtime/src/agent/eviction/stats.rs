//! What eviction measures on the machine: the signals (root memory cgroup and `/proc/meminfo`,
//! `statvfs` of the pod and image directories, PIDs in use) and each pod's usage: the working
//! set of its cgroup (`/kubelite/pod<uid>` under the memory controller, v1 or v2, as the
//! worker places containers), its threads, and the bytes and inodes of its volumes, container
//! writable layers and logs that live on the starved filesystem (walked without following
//! symlinks or leaving that filesystem, so memory-backed volumes never count as disk).

use super::{ContainerStats, Observation, Observations, PodStats, Signal};
use serde_json::Value;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The memory controller's root directory.
#[derive(Debug, Clone)]
struct MemoryRoot {
    dir: PathBuf,
    v2: bool,
}

/// The machine as eviction sees it.
#[derive(Debug, Clone)]
pub(super) struct Machine {
    pods_dir: PathBuf,
    images_dir: PathBuf,
    logs_dir: PathBuf,
    memory: Option<MemoryRoot>,
}

/// `Key: N kB` of `/proc/meminfo`, in bytes.
pub(super) fn meminfo_bytes(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        let kib: u64 = rest.split_whitespace().next()?.parse().ok()?;
        Some(kib.saturating_mul(1024))
    })
}

/// `key N` of a cgroup `memory.stat`.
pub(super) fn stat_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut w = l.split_ascii_whitespace();
        (w.next()? == key).then(|| w.next()?.parse().ok()).flatten()
    })
}

/// Threads in use: the total of `/proc/loadavg`'s `running/total` field.
pub(super) fn loadavg_threads(text: &str) -> Option<u64> {
    text.split_whitespace()
        .nth(3)?
        .split_once('/')?
        .1
        .parse()
        .ok()
}

/// `memory.available` = capacity − working set of the root cgroup. `root_usage` is the root's
/// usage (v1 `memory.usage_in_bytes`; None on v2, where `MemTotal − MemFree` stands in);
/// `inactive_file` comes from the root `memory.stat` (v1 `total_inactive_file`, v2
/// `inactive_file`), else `/proc/meminfo`'s `Inactive(file)`.
pub(super) fn memory_available(
    meminfo: &str,
    root_usage: Option<u64>,
    inactive_file: Option<u64>,
) -> Option<Observation> {
    let capacity = meminfo_bytes(meminfo, "MemTotal")?;
    let usage = match root_usage {
        Some(u) => u,
        None => capacity.saturating_sub(meminfo_bytes(meminfo, "MemFree")?),
    };
    let inactive = inactive_file
        .or_else(|| meminfo_bytes(meminfo, "Inactive(file)"))
        .unwrap_or(0);
    let working_set = usage.saturating_sub(inactive);
    let capacity = i64::try_from(capacity).unwrap_or(i64::MAX);
    let working_set = i64::try_from(working_set).unwrap_or(i64::MAX);
    Some(Observation {
        available: capacity - working_set,
        capacity,
    })
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn read_u64(path: &Path) -> Option<u64> {
    read(path)?.trim().parse().ok()
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Usage of one filesystem.
#[derive(Debug, Clone, Copy)]
struct FsStats {
    available: u64,
    capacity: u64,
    inodes_free: u64,
    inodes: u64,
}

fn fs_stats(path: &Path) -> Option<FsStats> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    Some(FsStats {
        available: s.blocks_available() * s.fragment_size(),
        capacity: s.blocks() * s.fragment_size(),
        inodes_free: s.files_free(),
        inodes: s.files(),
    })
}

/// Bytes (allocated blocks) and inodes below `path`, counting only what lives on device `dev`.
fn du(path: &Path, dev: u64) -> (u64, u64) {
    let Ok(md) = std::fs::symlink_metadata(path) else {
        return (0, 0);
    };
    if md.dev() != dev {
        return (0, 0);
    }
    let mut bytes = md.blocks().saturating_mul(512);
    let mut inodes = 1u64;
    if md.is_dir() {
        for e in std::fs::read_dir(path).into_iter().flatten().flatten() {
            let (b, i) = du(&e.path(), dev);
            bytes = bytes.saturating_add(b);
            inodes = inodes.saturating_add(i);
        }
    }
    (bytes, inodes)
}

/// Like [`du`] on the filesystem `path` itself is on.
fn du_here(path: &Path) -> u64 {
    std::fs::symlink_metadata(path)
        .map(|m| du(path, m.dev()).0)
        .unwrap_or(0)
}

/// Threads in a cgroup and its children.
fn threads(dir: &Path, v2: bool) -> u64 {
    let file = if v2 { "cgroup.threads" } else { "tasks" };
    let own = read(&dir.join(file))
        .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count() as u64)
        .unwrap_or(0);
    let children: u64 = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| threads(&e.path(), v2))
        .sum();
    own + children
}

/// One container's current attempt: (name, attempt dir, container id).
type AttemptRef = (String, PathBuf, String);

/// Every container attempt of a pod: (name, attempt dir, id, whether it is the current one).
fn attempts(pod_dir: &Path) -> Vec<(AttemptRef, bool)> {
    let mut out = Vec::new();
    for c in std::fs::read_dir(pod_dir.join("containers"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(name) = c.file_name().into_string() else {
            continue;
        };
        let mut numbered: Vec<(u32, PathBuf)> = std::fs::read_dir(c.path())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|a| Some((a.file_name().to_str()?.parse().ok()?, a.path())))
            .collect();
        numbered.sort();
        let last = numbered.len().saturating_sub(1);
        for (i, (_, dir)) in numbered.into_iter().enumerate() {
            let id = read(&dir.join("id"))
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            out.push(((name.clone(), dir, id), i == last));
        }
    }
    out
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

impl Machine {
    /// The machine for an agent whose data dir is `data_dir` (`<data-dir>/agent`).
    pub(super) fn new(data_dir: &Path) -> Machine {
        let mounts = read(Path::new("/proc/self/mountinfo"))
            .map(|t| crate::shim::cgroup::parse_mountinfo(&t))
            .unwrap_or_default();
        let memory = match (mounts.v1_memory, mounts.v2) {
            (Some(m), _) => Some(MemoryRoot {
                dir: m.point,
                v2: false,
            }),
            (None, Some(m))
                if read(&m.point.join("cgroup.controllers"))
                    .is_some_and(|c| c.split_whitespace().any(|w| w == "memory")) =>
            {
                Some(MemoryRoot {
                    dir: m.point,
                    v2: true,
                })
            }
            _ => None,
        };
        Machine {
            pods_dir: data_dir.join("pods"),
            images_dir: data_dir.join("images"),
            logs_dir: data_dir.join("logs"),
            memory,
        }
    }

    /// The pod directories' root (nodefs is its filesystem).
    pub(super) fn pods_dir(&self) -> &Path {
        &self.pods_dir
    }

    fn fs_dir(&self, signal: Signal) -> &Path {
        if signal.imagefs() {
            &self.images_dir
        } else {
            &self.pods_dir
        }
    }

    /// The device of the filesystem a disk signal is about.
    pub(super) fn device_of(&self, signal: Signal) -> Option<u64> {
        std::fs::metadata(self.fs_dir(signal)).ok().map(|m| m.dev())
    }

    /// Observes every signal it can.
    pub(super) fn observe(&self) -> Observations {
        let mut obs = Observations::new();
        if let Some(meminfo) = read(Path::new("/proc/meminfo")) {
            let (usage, inactive) = match &self.memory {
                Some(MemoryRoot { dir, v2: false }) => (
                    read_u64(&dir.join("memory.usage_in_bytes")),
                    read(&dir.join("memory.stat"))
                        .and_then(|t| stat_value(&t, "total_inactive_file")),
                ),
                Some(MemoryRoot { dir, v2: true }) => (
                    None,
                    read(&dir.join("memory.stat")).and_then(|t| stat_value(&t, "inactive_file")),
                ),
                None => (None, None),
            };
            if let Some(o) = memory_available(&meminfo, usage, inactive) {
                obs.insert(Signal::MemoryAvailable, o);
            }
        }
        for (bytes, inodes) in [
            (Signal::NodeFsAvailable, Signal::NodeFsInodesFree),
            (Signal::ImageFsAvailable, Signal::ImageFsInodesFree),
        ] {
            if let Some(fs) = fs_stats(self.fs_dir(bytes)) {
                obs.insert(
                    bytes,
                    Observation {
                        available: to_i64(fs.available),
                        capacity: to_i64(fs.capacity),
                    },
                );
                if fs.inodes > 0 {
                    obs.insert(
                        inodes,
                        Observation {
                            available: to_i64(fs.inodes_free),
                            capacity: to_i64(fs.inodes),
                        },
                    );
                }
            }
        }
        let max = [
            read_u64(Path::new("/proc/sys/kernel/pid_max")),
            read_u64(Path::new("/proc/sys/kernel/threads-max")),
        ]
        .into_iter()
        .flatten()
        .min();
        let running = read(Path::new("/proc/loadavg")).and_then(|t| loadavg_threads(&t));
        if let (Some(max), Some(running)) = (max, running) {
            obs.insert(
                Signal::PidAvailable,
                Observation {
                    available: to_i64(max) - to_i64(running),
                    capacity: to_i64(max),
                },
            );
        }
        obs
    }

    /// The working set of a memory cgroup (None when it does not exist).
    fn working_set(&self, relative: &Path) -> Option<u64> {
        let root = self.memory.as_ref()?;
        let dir = root.dir.join(relative);
        let (usage, key) = if root.v2 {
            ("memory.current", "inactive_file")
        } else {
            ("memory.usage_in_bytes", "total_inactive_file")
        };
        let usage = read_u64(&dir.join(usage))?;
        let inactive = read(&dir.join("memory.stat"))
            .and_then(|t| stat_value(&t, key))
            .unwrap_or(0);
        Some(usage.saturating_sub(inactive))
    }

    /// A pod's usage; disk usage counts what lives on device `starved` (the filesystem under
    /// pressure), or nothing when there is none.
    pub(super) fn pod_stats(&self, pod: &Value, starved: Option<u64>) -> PodStats {
        let uid = str_at(pod, "/metadata/uid");
        if uid.is_empty() || uid.contains('/') || uid.starts_with('.') {
            return PodStats::default();
        }
        let pod_dir = self.pods_dir.join(uid);
        let cgroup = Path::new("kubelite").join(format!("pod{uid}"));
        let logs = self.logs_dir.join(format!(
            "{}_{}_{uid}",
            str_at(pod, "/metadata/namespace"),
            str_at(pod, "/metadata/name")
        ));
        let attempts = attempts(&pod_dir);
        let mut stats = PodStats {
            memory: self.working_set(&cgroup).unwrap_or(0),
            processes: self
                .memory
                .as_ref()
                .map(|m| threads(&m.dir.join(&cgroup), m.v2))
                .unwrap_or(0),
            ..Default::default()
        };
        for ((name, dir, id), current) in &attempts {
            if !*current {
                continue;
            }
            let memory = (!id.is_empty())
                .then(|| self.working_set(&cgroup.join(id)))
                .flatten();
            stats.containers.push(ContainerStats {
                name: name.clone(),
                memory,
                ephemeral_storage: du_here(&dir.join("upper")) + du_here(&logs.join(name)),
            });
        }
        if let Some(dev) = starved {
            let mut parts = vec![pod_dir.join("volumes"), logs];
            for ((_, dir, _), _) in &attempts {
                parts.push(dir.join("upper"));
                parts.push(dir.join("work"));
            }
            for p in parts {
                let (b, i) = du(&p, dev);
                stats.disk = stats.disk.saturating_add(b);
                stats.inodes = stats.inodes.saturating_add(i);
            }
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str = "MemTotal:        1000000 kB\nMemFree:          200000 kB\n\
        MemAvailable:     700000 kB\nInactive(file):   300000 kB\n";

    #[test]
    fn parses_proc_and_cgroup_files() {
        assert_eq!(meminfo_bytes(MEMINFO, "MemTotal"), Some(1_024_000_000));
        assert_eq!(meminfo_bytes(MEMINFO, "Mem"), None);
        assert_eq!(meminfo_bytes(MEMINFO, "Inactive(file)"), Some(307_200_000));
        let stat = "cache 10\ninactive_file 5\ntotal_inactive_file 7\n";
        assert_eq!(stat_value(stat, "inactive_file"), Some(5));
        assert_eq!(stat_value(stat, "total_inactive_file"), Some(7));
        assert_eq!(stat_value(stat, "rss"), None);
        assert_eq!(loadavg_threads("0.52 0.58 0.59 3/1234 5678\n"), Some(1234));
        assert_eq!(loadavg_threads("garbage"), None);
    }

    #[test]
    fn memory_available_is_capacity_minus_working_set() {
        let total = 1_024_000_000i64;
        // v1: the root cgroup's usage minus its inactive file pages.
        let o = memory_available(MEMINFO, Some(600_000_000), Some(100_000_000)).expect("v1");
        assert_eq!(o.capacity, total);
        assert_eq!(o.available, total - 500_000_000);
        // v2: MemTotal - MemFree stands in for the usage; inactive_file from memory.stat.
        let o = memory_available(MEMINFO, None, Some(0)).expect("v2");
        assert_eq!(o.available, 204_800_000);
        // Without a memory.stat, /proc/meminfo's Inactive(file).
        let o = memory_available(MEMINFO, None, None).expect("no cgroup");
        assert_eq!(o.available, 204_800_000 + 307_200_000);
        // A working set above the capacity gives a negative available, as kubelet.
        let o = memory_available(MEMINFO, Some(2_000_000_000), None).expect("over");
        assert!(o.available < 0);
        assert!(memory_available("", None, None).is_none());
    }

    #[test]
    fn disk_usage_stays_on_its_filesystem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("a/b");
        std::fs::create_dir_all(&sub).expect("dirs");
        std::fs::write(sub.join("f"), vec![1u8; 64 * 1024]).expect("write");
        std::os::unix::fs::symlink("/usr", sub.join("link")).expect("symlink");
        let dev = std::fs::metadata(dir.path()).expect("stat").dev();
        let (bytes, inodes) = du(dir.path(), dev);
        assert!(bytes >= 64 * 1024, "{bytes}");
        // root, a, b, f, link (not followed)
        assert_eq!(inodes, 5);
        assert_eq!(du(dir.path(), dev.wrapping_add(1)), (0, 0));
        assert_eq!(du(&dir.path().join("missing"), dev), (0, 0));
    }

    #[test]
    fn pod_stats_read_the_worker_layout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path();
        let uid = "1234-abcd";
        let pod_dir = data.join("pods").join(uid);
        for n in ["0", "1"] {
            let a = pod_dir.join("containers/c").join(n);
            std::fs::create_dir_all(a.join("upper")).expect("attempt");
            std::fs::write(a.join("id"), format!("x-c-{n}")).expect("id");
            std::fs::write(a.join("upper/file"), vec![0u8; 8192]).expect("upper");
        }
        let vol = pod_dir.join("volumes/kubernetes.io~empty-dir/data");
        std::fs::create_dir_all(&vol).expect("volume");
        std::fs::write(vol.join("fill"), vec![0u8; 256 * 1024]).expect("fill");
        let logs = data.join("logs/ns_p_1234-abcd/c");
        std::fs::create_dir_all(&logs).expect("logs");
        std::fs::write(logs.join("1.log"), vec![b'x'; 4096]).expect("log");
        let m = Machine {
            pods_dir: data.join("pods"),
            images_dir: data.join("images"),
            logs_dir: data.join("logs"),
            memory: None,
        };
        let pod = serde_json::json!({"metadata": {"uid": uid, "namespace": "ns", "name": "p"}});
        let dev = m.device_of(Signal::NodeFsAvailable);
        assert!(dev.is_some());
        let s = m.pod_stats(&pod, dev);
        assert!(s.disk >= 256 * 1024 + 2 * 8192 + 4096, "{}", s.disk);
        assert!(s.inodes >= 8, "{}", s.inodes);
        assert_eq!(s.memory, 0);
        assert_eq!(s.containers.len(), 1, "only the current attempt");
        assert_eq!(s.containers[0].name, "c");
        assert_eq!(s.containers[0].memory, None);
        assert!(s.containers[0].ephemeral_storage >= 8192 + 4096);
        // Nothing counts without a starved filesystem.
        assert_eq!(m.pod_stats(&pod, None).disk, 0);
        let obs = m.observe();
        assert!(obs.contains_key(&Signal::MemoryAvailable));
        assert!(obs.contains_key(&Signal::NodeFsAvailable));
        assert!(obs.contains_key(&Signal::NodeFsInodesFree));
        assert!(
            !obs.contains_key(&Signal::ImageFsAvailable),
            "no images dir"
        );
    }
}
