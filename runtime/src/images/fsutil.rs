//! Filesystem helpers of the store: advisory locks (`flock`) that work between threads and
//! processes alike, atomic file replacement, temporary names that identify their writer.

use super::ImageError;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Prefix of every temporary name in the store; garbage collection removes them.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

/// An `flock` held until dropped. Each guard opens its own file description, so two threads of
/// one process exclude each other exactly as two processes do.
pub(crate) struct FileLock {
    _file: File,
}

impl FileLock {
    pub(crate) fn shared(path: &Path) -> Result<Self, ImageError> {
        Self::lock(path, libc::LOCK_SH)
    }

    pub(crate) fn exclusive(path: &Path) -> Result<Self, ImageError> {
        Self::lock(path, libc::LOCK_EX)
    }

    fn lock(path: &Path, op: libc::c_int) -> Result<Self, ImageError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(ImageError::io(format!("opening {}", path.display())))?;
        loop {
            // SAFETY: flock on a file descriptor we own; no memory is passed.
            if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
                return Ok(FileLock { _file: file });
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(ImageError::io(format!("locking {}", path.display()))(e));
            }
        }
    }
}

/// A name no other writer uses: `.tmp-<pid>-<counter>`.
pub(crate) fn temp_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{TMP_PREFIX}{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The writer pid of a temporary name.
pub(crate) fn temp_name_pid(name: &str) -> Option<i32> {
    name.strip_prefix(TMP_PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// Whether a process with this pid exists.
pub(crate) fn pid_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH))
}

/// fsyncs a directory (makes the renames in it durable).
pub(crate) fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `path` with `bytes` atomically and durably (temporary file, fsync, rename, fsync of
/// the directory).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(temp_name());
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        fsync_dir(dir)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(ImageError::io(format!("writing {}", path.display())))
}

/// Removes a file or a directory tree (never following symlinks); absent is fine.
pub(crate) fn remove_all(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
    .or_else(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            Ok(())
        } else {
            Err(e)
        }
    })
}
