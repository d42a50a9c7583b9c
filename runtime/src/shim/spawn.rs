//! Agent side of starting a shim, safe from a multi-threaded process: the launch is written
//! to a JSON file, `<exe> shim <file>` is started with `std::process::Command` (fork+exec;
//! the `pre_exec` hook only makes async-signal-safe system calls: setsid, fcntl, close_range),
//! the shim double-forks so it is neither the agent's child nor in its session, and the
//! agent blocks until the shim reports on a pipe that the container started (or why not).
//!
//! Protocol: the write end of a pipe is inherited (it and the attempt's owner lock, see
//! [`super::owner`]; every other descriptor above 2 is close-on-exec) and its number passed
//! in `KUBELITE_SHIM_STATUS_FD`. The shim writes a JSON line ([`Report`]) with its PID, then
//! one with the container's PID or the error, and closes it; EOF before the second line means
//! the shim died.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::launch::Launch;
use super::owner::{self, LOCK_FD_ENV};
use super::status::write_atomic;
use super::{sys, ShimError};

/// How long [`spawn`] waits for the shim to report that the container started.
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Environment variable naming the inherited status descriptor.
pub(crate) const STATUS_FD_ENV: &str = "KUBELITE_SHIM_STATUS_FD";

/// The shim's one-line answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Report {
    pub shim_pid: u32,
    #[serde(default)]
    pub pid: Option<i32>,
    #[serde(default)]
    pub error: Option<String>,
}

/// Starts a detached shim running `launch` (`<exe> shim <launch-file>`) and returns the
/// shim's PID once the container is started (its pid file is written by then). On failure
/// the exit file says `StartError` too, so an agent that restarted meanwhile learns it.
///
/// Blocks for the container's creation (milliseconds; at most [`START_TIMEOUT`]): call it
/// from a blocking thread (`tokio::task::spawn_blocking`), not an async task.
pub fn spawn(exe: &Path, launch: &Launch) -> Result<u32, ShimError> {
    spawn_observed(exe, launch, || {})
}

/// [`spawn`], calling `forked` once the shim process exists and before its report is read:
/// the point where a spawner may die while its shim goes on creating the container (a
/// fault-injection point for tests of agent restarts).
pub fn spawn_observed(
    exe: &Path,
    launch: &Launch,
    forked: impl FnOnce(),
) -> Result<u32, ShimError> {
    spawn_inner(
        launch,
        |launch_file| {
            let mut cmd = Command::new(exe);
            cmd.arg("shim").arg(launch_file);
            cmd
        },
        forked,
    )
}

/// [`spawn`] with the command line chosen by `make_command` (given the launch file).
#[cfg(test)]
pub(crate) fn spawn_with(
    launch: &Launch,
    make_command: impl FnOnce(&Path) -> Command,
) -> Result<u32, ShimError> {
    spawn_inner(launch, make_command, || {})
}

fn spawn_inner(
    launch: &Launch,
    make_command: impl FnOnce(&Path) -> Command,
    forked: impl FnOnce(),
) -> Result<u32, ShimError> {
    launch.validate()?;
    // Held from before the fork until the shim exits (the shim inherits it): a shim owns
    // this attempt, even if we die right after the fork.
    let lock = owner::acquire(&launch.lock_file(), &launch.id)?;
    // Results of an earlier run with the same paths must not be mistaken for this one's.
    for stale in [&launch.exit_file, &launch.pid_file] {
        match std::fs::remove_file(stale) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(ShimError::io(format!("remove {}", stale.display()))(e))
            }
            _ => {}
        }
    }
    let launch_file = launch.launch_file();
    let json = serde_json::to_vec_pretty(launch).expect("Launch serializes");
    write_atomic(&launch_file, &json)
        .map_err(ShimError::io(format!("write {}", launch_file.display())))?;

    let (read_end, write_end) = sys::pipe().map_err(ShimError::io("status pipe"))?;
    let status_fd: RawFd = write_end.as_raw_fd();
    let stderr = match &launch.shim_log {
        Some(path) => Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(ShimError::io(format!("open shim log {}", path.display())))?,
        ),
        None => Stdio::null(),
    };

    let lock_fd: RawFd = lock.as_raw_fd();
    let mut cmd = make_command(&launch_file);
    cmd.env(STATUS_FD_ENV, status_fd.to_string())
        .env(LOCK_FD_ENV, lock_fd.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .current_dir("/");
    // SAFETY: the hook runs between fork and exec in the child of a possibly multi-threaded
    // process, so it only makes async-signal-safe system calls and allocates nothing.
    unsafe {
        cmd.pre_exec(move || detach_in_child(&[status_fd, lock_fd]));
    }
    let mut child = cmd.spawn().map_err(ShimError::io("start shim process"))?;
    drop(write_end);
    // The shim holds the lock now (its copy of the descriptor).
    drop(lock);
    forked();
    // The shim forks at once and its first process exits: reap it (never leave a zombie).
    // ECHILD (an agent that ignores SIGCHLD has it reaped already) is no reason to fail.
    let first = match child.wait() {
        Ok(status) => status.to_string(),
        Err(e) => format!("not waited for: {e}"),
    };

    let deadline = Instant::now() + START_TIMEOUT;
    match read_report(read_end, deadline) {
        Ok(Some(report)) => match report.error {
            None => Ok(report.shim_pid),
            Some(message) => Err(ShimError::StartFailed {
                id: launch.id.clone(),
                message,
            }),
        },
        Ok(None) => Err(ShimError::NoReport {
            id: launch.id.clone(),
            detail: format!("first shim process {first}"),
        }),
        Err(ReadError::Timeout(shim_pid)) => Err(ShimError::Timeout {
            id: launch.id.clone(),
            shim_pid,
        }),
        Err(ReadError::Io(e)) => Err(ShimError::io("read shim status")(e)),
    }
}

/// In the forked child: new session (not killed with the agent's process group or
/// terminal), the descriptors in `keep` (status pipe, owner lock; all above 2) kept across
/// exec, every other descriptor above 2 closed on exec (descriptors other threads of the
/// agent opened without O_CLOEXEC included).
fn detach_in_child(keep: &[RawFd]) -> std::io::Result<()> {
    // SAFETY (whole function): raw async-signal-safe system calls on integers.
    unsafe {
        if libc::setsid() < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let cloexec_range = |first: RawFd, last: RawFd| {
            if first <= last {
                libc::syscall(
                    libc::SYS_close_range,
                    first as libc::c_uint,
                    last as libc::c_uint,
                    libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
                );
            }
        };
        cloexec_range(3, libc::c_int::MAX);
        for &fd in keep {
            if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

enum ReadError {
    /// Carries the shim PID if the shim said it before going quiet.
    Timeout(Option<u32>),
    Io(std::io::Error),
}

/// Reads report lines until a final one (container pid or error); Ok(None) on EOF before it.
fn read_report(read_end: OwnedFd, deadline: Instant) -> Result<Option<Report>, ReadError> {
    sys::set_nonblocking(read_end.as_raw_fd(), true).map_err(ReadError::Io)?;
    let mut file = std::fs::File::from(read_end);
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let mut shim_pid = None;
    loop {
        while let Some(nl) = data.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = data.drain(..=nl).collect();
            if let Ok(report) = serde_json::from_slice::<Report>(&line) {
                if report.pid.is_some() || report.error.is_some() {
                    return Ok(Some(report));
                }
                shim_pid = Some(report.shim_pid);
            }
        }
        match file.read(&mut buf) {
            Ok(0) => return Ok(None),
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                let ready = sys::wait_fd(file.as_raw_fd(), libc::POLLIN, Some(left))
                    .map_err(ReadError::Io)?;
                if !ready {
                    return Err(ReadError::Timeout(shim_pid));
                }
            }
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
}

/// The shim's end of the protocol.
pub(crate) struct StatusChannel {
    fd: Option<OwnedFd>,
}

impl StatusChannel {
    /// Takes the descriptor named in the environment (if any) and makes it close-on-exec so
    /// it never reaches the container.
    pub(crate) fn from_env() -> StatusChannel {
        let fd = std::env::var(STATUS_FD_ENV)
            .ok()
            .and_then(|v| v.parse::<RawFd>().ok())
            .filter(|&fd| fd > 2 && sys::set_cloexec(fd, true).is_ok())
            // SAFETY: the spawner passed us this descriptor for our exclusive use.
            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
        std::env::remove_var(STATUS_FD_ENV);
        StatusChannel { fd }
    }

    /// Says which process the shim is (so a spawner that times out can name it).
    pub(crate) fn hello(&mut self) {
        self.write(&Report {
            shim_pid: std::process::id(),
            pid: None,
            error: None,
        });
    }

    /// Sends the final report and closes the descriptor.
    pub(crate) fn finish(&mut self, pid: Result<i32, String>) {
        let (pid, error) = match pid {
            Ok(pid) => (Some(pid), None),
            Err(e) => (None, Some(e)),
        };
        self.write(&Report {
            shim_pid: std::process::id(),
            pid,
            error,
        });
        self.fd = None;
    }

    fn write(&mut self, report: &Report) {
        if let Some(fd) = &self.fd {
            let mut line = serde_json::to_vec(report).expect("Report serializes");
            line.push(b'\n');
            let _ = sys::write_all_fd(fd.as_raw_fd(), &line);
        }
    }
}
