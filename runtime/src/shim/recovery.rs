//! An attempt's files read by an agent that was not watching (it restarted, or the shim died):
//! [`observe`] sorts the attempt into starting, running, exited, never started or lost from
//! its exit file, pid file and owner lock ([`super::owner`]); [`remove_container`] clears what
//! a dead shim left of its container (processes in its cgroup, the cgroup, libcontainer's
//! state); [`settle_lost`] ends a container whose shim died without recording its exit and
//! records it as containerd does for a container whose task vanished (255, `Unknown`);
//! [`abandon_start`] stops a shim that never finishes starting its container.

use std::path::Path;
use std::time::SystemTime;

use nix::sys::signal::Signal;

use super::cgroup::{container_relative_path, parse_hierarchies};
use super::launch::{with_suffix, LOCK_SUFFIX};
use super::owner;
use super::status::{
    is_running, now_rfc3339, read_exit, read_pid_record, signal, write_atomic, ExitInfo,
    ExitReason, PidRecord, ProcessRef,
};

/// Exit code of a container whose exit was never recorded (containerd's `unknownExitCode`).
pub const UNKNOWN_EXIT_CODE: i32 = 255;

/// What an attempt's files say about its container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// A shim owns the attempt and has not reported a start yet: it is creating the
    /// container. `shim` is the owner if it recorded itself; `since` when it did (or when the
    /// spawner took the lock).
    Starting {
        shim: Option<ProcessRef>,
        since: Option<SystemTime>,
    },
    /// The container started and its shim is alive.
    Running(PidRecord),
    /// The exit file: the container ended (or failed to start: `StartError`, no `started_at`).
    Exited(ExitInfo),
    /// Nobody owns the attempt and its container never started: the spawner died before it
    /// forked a shim, or the shim died before the start. Nothing to adopt.
    NeverStarted,
    /// The container started, but its shim is gone without recording the exit.
    Lost(PidRecord),
}

/// Reads the attempt whose pid file is `pid_file` (its lock is `<pid_file>.lock`).
///
/// The lock is looked at before the pid file: once it is free no process writes the attempt's
/// files any more (only the agent starts shims), so what is read after that is final.
pub fn observe(pid_file: &Path, exit_file: &Path) -> Observed {
    if let Some(exit) = read_exit(exit_file) {
        return Observed::Exited(exit);
    }
    let lock = with_suffix(pid_file, LOCK_SUFFIX);
    let owned = owner::is_held(&lock);
    let record = read_pid_record(pid_file);
    // The shim may have recorded the exit and gone since the first look.
    if let Some(exit) = read_exit(exit_file) {
        return Observed::Exited(exit);
    }
    match record {
        // A shim of a version without the lock is alive but owns nothing: still running.
        Some(r) if owned || is_running(r.shim) => Observed::Running(r),
        Some(r) => Observed::Lost(r),
        None if owned => {
            let (shim, since) = owner::owner(&lock);
            Observed::Starting { shim, since }
        }
        None => Observed::NeverStarted,
    }
}

/// Removes what is left of container `id` once no shim owns it: kills the processes still in
/// its cgroup (`cgroups_path`, its `linux.cgroupsPath`), removes that cgroup from every
/// hierarchy and libcontainer's state directory `<state_root>/<id>`. Returns false while
/// something could not go yet (processes still dying): call again.
pub fn remove_container(state_root: &Path, id: &str, cgroups_path: &str) -> bool {
    if !clear_cgroup(cgroups_path) {
        return false;
    }
    let plain = !id.is_empty() && !id.starts_with('.') && !id.contains('/');
    if !plain {
        return true;
    }
    match std::fs::remove_dir_all(state_root.join(id)) {
        Ok(()) => true,
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// Ends a [`Observed::Lost`] container: kills its init if it still runs (nobody would log its
/// output or reap it), then, once its processes are gone and [`remove_container`] succeeded,
/// writes the exit file: exit code 255, reason `Unknown`. Returns None while that is not done
/// yet: call again.
pub fn settle_lost(
    record: &PidRecord,
    exit_file: &Path,
    state_root: &Path,
    id: &str,
    cgroups_path: &str,
) -> Option<ExitInfo> {
    if is_running(record.container) {
        let _ = signal(record.container, Signal::SIGKILL);
        if is_running(record.container) {
            return None;
        }
    }
    if !remove_container(state_root, id, cgroups_path) {
        return None;
    }
    let info = ExitInfo {
        exit_code: UNKNOWN_EXIT_CODE,
        signal: None,
        reason: ExitReason::Unknown,
        started_at: Some(record.started_at.clone()),
        finished_at: now_rfc3339(),
        message: None,
    };
    let json = serde_json::to_vec(&info).expect("ExitInfo serializes");
    write_atomic(exit_file, &json).ok()?;
    Some(info)
}

/// Gives up on a start that never finishes: kills the owning shim (when it recorded itself)
/// and whatever it created in the container's cgroup, which frees the owner lock; the attempt
/// then reads as [`Observed::NeverStarted`] (or exited, if the shim still recorded one).
pub fn abandon_start(shim: Option<ProcessRef>, cgroups_path: &str) {
    if let Some(shim) = shim {
        let _ = signal(shim, Signal::SIGKILL);
    }
    let _ = clear_cgroup(cgroups_path);
}

/// SIGKILLs the processes of cgroup `cgroups_path` in every hierarchy (thawing a frozen v1
/// cgroup first) and removes the cgroup. True once it exists nowhere. A cgroup that holds this
/// very process is never touched.
fn clear_cgroup(cgroups_path: &str) -> bool {
    let Some(relative) = container_relative_path(cgroups_path) else {
        return true;
    };
    let me = std::process::id() as i32;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut clear = true;
    for point in parse_hierarchies(&mountinfo) {
        let dir = point.join(&relative);
        let procs: Vec<i32> = match std::fs::read_to_string(dir.join("cgroup.procs")) {
            Ok(text) => text.lines().filter_map(|l| l.trim().parse().ok()).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(_) => Vec::new(),
        };
        if procs.contains(&me) {
            clear = false;
            continue;
        }
        let freezer = dir.join("freezer.state");
        if freezer.exists() {
            let _ = std::fs::write(&freezer, "THAWED");
        }
        for pid in procs {
            if let Some(p) = ProcessRef::current(pid) {
                let _ = signal(p, Signal::SIGKILL);
            }
        }
        match std::fs::remove_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => clear = false,
        }
    }
    clear
}
