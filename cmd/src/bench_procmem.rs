//! Process figures for the pod benchmarks, read from `/proc`: memory of one process (RSS from
//! `status`; PSS and USS from `smaps_rollup`, USS = private clean + private dirty), open file
//! descriptors, threads, finding processes by their command line, and the mount table
//! (`/proc/self/mountinfo`: mount points with their file system types, cgroup hierarchies).

/// Memory of one process or a group of processes, in KiB.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mem {
    pub rss: u64,
    pub pss: u64,
    pub uss: u64,
}

impl Mem {
    /// Memory of `pid` (None if it is gone or unreadable).
    pub fn of(pid: u32) -> Option<Mem> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
        let field = |name: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        Some(Mem {
            rss: rss_kib(pid).unwrap_or_else(|| field("Rss:")),
            pss: field("Pss:"),
            uss: field("Private_Clean:") + field("Private_Dirty:"),
        })
    }

    /// The sum over `pids` (processes that vanished count as zero).
    pub fn sum(pids: &[u32]) -> Mem {
        pids.iter()
            .filter_map(|p| Mem::of(*p))
            .fold(Mem::default(), |a, m| Mem {
                rss: a.rss + m.rss,
                pss: a.pss + m.pss,
                uss: a.uss + m.uss,
            })
    }

    /// "RSS x, PSS y, USS z MiB" divided by `n` (per process, per pod…).
    pub fn per(&self, n: usize) -> String {
        let n = n.max(1) as f64;
        format!(
            "RSS {:.2}, PSS {:.2}, USS {:.2} MiB",
            self.rss as f64 / 1024.0 / n,
            self.pss as f64 / 1024.0 / n,
            self.uss as f64 / 1024.0 / n
        )
    }
}

/// `VmRSS` of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// `VmRSS` of `pid`, in MiB (0 if unreadable).
pub fn rss_mib(pid: u32) -> f64 {
    rss_kib(pid).unwrap_or(0) as f64 / 1024.0
}

/// Open file descriptors of `pid`.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The open fds of `pid` by what they are: a path, or `socket`, `pipe`, `anon_inode:[…]`
/// without the inode number.
pub fn fd_kinds(pid: u32) -> std::collections::BTreeMap<String, usize> {
    let mut kinds = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(target) = std::fs::read_link(e.path()) else {
            continue;
        };
        let target = target.display().to_string();
        let kind = match target.split_once(":[") {
            Some((k, _)) if k == "socket" || k == "pipe" => k.to_string(),
            _ => target,
        };
        *kinds.entry(kind).or_insert(0) += 1;
    }
    kinds
}

/// Threads of `pid`.
pub fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Every process as (pid, NUL-separated command line, parent pid, `comm`).
pub fn processes() -> Vec<(u32, String, u32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        let ppid = field("PPid:").parse().unwrap_or(0);
        out.push((
            pid,
            String::from_utf8_lossy(&cmd).into_owned(),
            ppid,
            field("Name:"),
        ));
    }
    out
}

/// The `kubelite shim` helpers of the node agent whose data dir is `data_dir`.
pub fn shim_pids(data_dir: &str) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|(_, cmd, _, _)| cmd.contains("\0shim\0") && cmd.contains(data_dir))
        .map(|(pid, ..)| pid)
        .collect()
}

/// Every mount of this mount namespace as (mount point, file system type), escapes decoded.
pub fn mounts() -> Vec<(std::path::PathBuf, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let fstype = right.split(' ').next()?;
            Some((
                std::path::PathBuf::from(unescape(point)),
                fstype.to_string(),
            ))
        })
        .collect()
}

/// Mount points of the cgroup hierarchies: every v1 controller mount (`cgroup`) and the v2
/// one (`cgroup2`), as (point, is v2).
pub fn cgroup_hierarchies() -> Vec<(std::path::PathBuf, bool)> {
    mounts()
        .into_iter()
        .filter_map(|(point, fstype)| match fstype.as_str() {
            "cgroup" => Some((point, false)),
            "cgroup2" => Some((point, true)),
            _ => None,
        })
        .collect()
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

/// Removes the cgroup directory `dir` and everything below it, deepest first, with rmdir only
/// (a cgroup that still has processes stays). Returns how many directories were removed.
pub fn rmdir_cgroup_tree(dir: &std::path::Path) -> usize {
    let mut removed = 0;
    let children: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| e.path())
        .collect();
    for child in children {
        removed += rmdir_cgroup_tree(&child);
    }
    if std::fs::remove_dir(dir).is_ok() {
        removed += 1;
    }
    removed
}

/// Directories at and below `dir` (0 if it does not exist).
pub fn count_dirs(dir: &std::path::Path) -> usize {
    if !dir.is_dir() {
        return 0;
    }
    1 + std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| count_dirs(&e.path()))
        .sum::<usize>()
}
