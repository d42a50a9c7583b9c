//! The files a shim leaves for the agent (pid file, exit file), written atomically, and the
//! agent's view of a process through them: liveness and signalling that cannot hit an
//! unrelated process which reused the PID (the start time from `/proc/<pid>/stat` is recorded
//! next to every PID, and signals go through a pidfd checked against it).

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use super::ShimError;

/// A process identified by PID and start time (clock ticks since boot, field 22 of
/// `/proc/<pid>/stat`), so a recycled PID is never mistaken for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessRef {
    pub pid: i32,
    pub start_time: u64,
}

impl ProcessRef {
    /// The process `pid` as it is now (None if it does not exist).
    pub fn current(pid: i32) -> Option<ProcessRef> {
        let stat = read_stat(pid)?;
        Some(ProcessRef {
            pid,
            start_time: stat.start_time,
        })
    }
}

/// Contents of the pid file: the container's init process and the shim that owns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PidRecord {
    /// The container's init process (host PID namespace).
    pub container: ProcessRef,
    /// The shim process (reaps the init, writes the exit file).
    pub shim: ProcessRef,
    /// When the container was started (RFC 3339, UTC).
    pub started_at: String,
}

/// Why a container stopped, as Kubernetes reports it in `state.terminated.reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitReason {
    /// Exit code 0.
    Completed,
    /// Non-zero exit code or killed by a signal (not OOM).
    Error,
    /// The container's memory cgroup recorded an OOM kill.
    OOMKilled,
    /// The container could not be created or started (exit code 128, see `message`).
    StartError,
    /// The shim died without recording the exit (exit code 255): what containerd reports for
    /// a container whose task vanished.
    Unknown,
}

/// Contents of the exit file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitInfo {
    /// The exit status, or 128 + N when killed by signal N.
    pub exit_code: i32,
    /// The signal that killed the init, if any.
    pub signal: Option<i32>,
    pub reason: ExitReason,
    /// RFC 3339 (UTC); absent when the container never started.
    pub started_at: Option<String>,
    /// RFC 3339 (UTC).
    pub finished_at: String,
    /// Why the container could not start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ExitInfo {
    /// Kubernetes semantics for a reaped init: exit 0 → Completed, otherwise Error, and
    /// OOMKilled whenever the memory cgroup recorded an OOM kill; signal N → 128 + N.
    pub fn from_status(
        code: Option<i32>,
        signal: Option<i32>,
        oom_killed: bool,
        started_at: Option<String>,
        finished_at: String,
    ) -> ExitInfo {
        let exit_code = match (code, signal) {
            (_, Some(sig)) => 128 + sig,
            (Some(code), None) => code,
            (None, None) => 255,
        };
        let reason = if oom_killed {
            ExitReason::OOMKilled
        } else if exit_code == 0 {
            ExitReason::Completed
        } else {
            ExitReason::Error
        };
        ExitInfo {
            exit_code,
            signal,
            reason,
            started_at,
            finished_at,
            message: None,
        }
    }
}

/// The exit file's contents, if the shim has written it (None while running or if corrupt).
pub fn read_exit(exit_file: &Path) -> Option<ExitInfo> {
    serde_json::from_slice(&std::fs::read(exit_file).ok()?).ok()
}

/// The container init's PID from the pid file (None before the container started).
pub fn read_pid(pid_file: &Path) -> Option<i32> {
    read_pid_record(pid_file).map(|r| r.container.pid)
}

/// The whole pid file (container init and shim, with start times).
pub fn read_pid_record(pid_file: &Path) -> Option<PidRecord> {
    serde_json::from_slice(&std::fs::read(pid_file).ok()?).ok()
}

/// Whether `process` still exists, is not a zombie and is the same process (same start
/// time) — a recycled PID is not running.
pub fn is_running(process: ProcessRef) -> bool {
    match read_stat(process.pid) {
        Some(stat) => stat.start_time == process.start_time && !matches!(stat.state, 'Z' | 'X'),
        None => false,
    }
}

/// Sends `sig` to `process` unless it is gone (then Ok). Race-free against PID reuse: the
/// signal goes through a pidfd opened before the start time is compared.
pub fn signal(process: ProcessRef, sig: Signal) -> Result<(), ShimError> {
    let pidfd = match pidfd_open(process.pid) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(()),
        Err(e) => return Err(ShimError::io(format!("pidfd_open({})", process.pid))(e)),
    };
    match read_stat(process.pid) {
        Some(stat) if stat.start_time == process.start_time => {}
        _ => return Ok(()),
    }
    // SAFETY: plain syscall on a pidfd we own; a null siginfo means "like kill(2)".
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            return Err(ShimError::io(format!("signal {sig} to {}", process.pid))(e));
        }
    }
    Ok(())
}

/// `pidfd_open(2)`: a descriptor that refers to exactly this process, readable once it exits.
pub(crate) fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: plain syscall; the returned descriptor is new and owned by us.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

pub(crate) struct Stat {
    pub state: char,
    pub start_time: u64,
}

/// State and start time from `/proc/<pid>/stat`.
pub(crate) fn read_stat(pid: i32) -> Option<Stat> {
    if pid <= 0 {
        return None;
    }
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Fields after the command name (which may contain spaces and parentheses, hence the last
/// ')'): field 3 is the state, field 22 the start time.
pub(crate) fn parse_stat(stat: &str) -> Option<Stat> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // `fields` now starts at field 4; the start time is field 22.
    let start_time = fields.nth(22 - 4)?.parse().ok()?;
    Some(Stat { state, start_time })
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync,
/// rename, fsync of the directory. Readers see the old file, nothing, or the whole new file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir)?;
    let tmp = super::launch::with_suffix(path, &format!(".tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Now as RFC 3339 with nanoseconds, UTC (`2024-01-02T03:04:05.123456789Z`).
pub(crate) fn now_rfc3339() -> String {
    format!("{:.9}", jiff::Timestamp::now())
}
