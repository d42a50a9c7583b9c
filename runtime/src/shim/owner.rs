//! The owner lock of one container attempt: who, if anyone, is creating or running it.
//!
//! [`super::spawn`] takes an exclusive `flock` on `<pid_file>.lock` before it forks the shim;
//! the shim inherits that open file (and with it the lock) at the fork, keeps it across the
//! exec and its own double fork, and holds it until it exits. So the lock is held exactly
//! while some process may still write the attempt's pid or exit file — from the moment the
//! agent decided to start it, with no gap an agent crash could fall into — and a restarted
//! agent can tell "a shim is still creating this container" (held, no pid file yet) from
//! "nobody is, and nobody will" (free). The shim also writes its own identity into the file,
//! so a start that hangs can be abandoned.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::time::SystemTime;

use super::status::ProcessRef;
use super::{sys, ShimError};

/// Environment variable naming the inherited lock descriptor in the shim.
pub(crate) const LOCK_FD_ENV: &str = "KUBELITE_SHIM_LOCK_FD";

/// Takes the lock at `path` (created if missing) for a shim about to be spawned; fails with
/// [`ShimError::Owned`] if a live shim (or its spawner) holds it. The descriptor is
/// close-on-exec: only the spawn passes it on, on purpose.
pub(crate) fn acquire(path: &Path, id: &str) -> Result<OwnedFd, ShimError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(ShimError::io(format!("open {}", path.display())))?;
    let fd = OwnedFd::from(file);
    match try_lock(fd.as_raw_fd()) {
        Ok(true) => Ok(fd),
        Ok(false) => Err(ShimError::Owned { id: id.to_string() }),
        Err(e) => Err(ShimError::io(format!("lock {}", path.display()))(e)),
    }
}

/// Whether some process holds the lock at `path` (a missing file is not held).
pub(crate) fn is_held(path: &Path) -> bool {
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
    else {
        return false;
    };
    // Taken (then released as the file closes) means nobody else had it.
    matches!(try_lock(file.as_raw_fd()), Ok(false))
}

/// The shim that recorded itself as the owner, and when the lock file was last written.
pub(crate) fn owner(path: &Path) -> (Option<ProcessRef>, Option<SystemTime>) {
    let shim = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let since = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    (shim, since)
}

/// In the shim: takes the inherited lock descriptor named in the environment (if any), makes
/// it close-on-exec (it never reaches the container's program) and records this process as
/// the owner. The descriptor is deliberately never closed: the lock ends with the process.
pub(crate) fn hold_from_env() {
    let fd = std::env::var(LOCK_FD_ENV)
        .ok()
        .and_then(|v| v.parse::<RawFd>().ok())
        .filter(|&fd| fd > 2 && sys::set_cloexec(fd, true).is_ok());
    std::env::remove_var(LOCK_FD_ENV);
    let Some(fd) = fd else { return };
    // SAFETY: the spawner passed us this descriptor for our exclusive use.
    let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    if let Some(me) = ProcessRef::current(std::process::id() as i32) {
        let json = serde_json::to_vec(&me).expect("ProcessRef serializes");
        let _ = file.set_len(0).and_then(|()| file.write_all_at(&json, 0));
    }
    std::mem::forget(file);
}

/// `flock(LOCK_EX | LOCK_NB)`: Ok(true) when taken, Ok(false) when another open file holds it.
fn try_lock(fd: RawFd) -> std::io::Result<bool> {
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(e),
        }
    }
}
