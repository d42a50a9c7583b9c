//! Removing a pod's volumes: every mount at or below the pod directory (memory emptyDirs,
//! secret/projected tmpfs, subPath binds, anything else) is detached first, and only once the
//! mount table shows nothing left below it is the directory deleted. The deletion never follows
//! a symlink and refuses to cross into another filesystem, so host data (hostPath volumes live
//! outside the pod directory, and symlinks a container left behind point out of it) is never
//! touched.

use super::error::VolumeError;
use super::mounts;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// See [`super::teardown_pod_volumes`].
pub(crate) fn teardown(pod_dir: &Path) -> Result<(), VolumeError> {
    let md = match std::fs::symlink_metadata(pod_dir) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(VolumeError::io(format!("stat {}", pod_dir.display()), e)),
    };
    if !md.is_dir() {
        // A symlink (or file) in place of the pod directory: remove it, never its target.
        return std::fs::remove_file(pod_dir)
            .map_err(|e| VolumeError::io(format!("removing {}", pod_dir.display()), e));
    }
    let canonical = pod_dir
        .canonicalize()
        .map_err(|e| VolumeError::io(format!("resolving {}", pod_dir.display()), e))?;
    mounts::unmount_all_below(&canonical)?;
    if !mounts::mounts_below(&canonical)?.is_empty() {
        return Err(VolumeError::StillMounted(canonical));
    }
    let dev = std::fs::symlink_metadata(&canonical)
        .map_err(|e| VolumeError::io(format!("stat {}", canonical.display()), e))?
        .dev();
    remove_tree(&canonical, dev)
}

/// Deletes `dir` and its content without following symlinks or leaving device `dev`.
fn remove_tree(dir: &Path, dev: u64) -> Result<(), VolumeError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| VolumeError::io(format!("reading {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| VolumeError::io(format!("reading {}", dir.display()), e))?;
        let path = entry.path();
        let md = match std::fs::symlink_metadata(&path) {
            Ok(md) => md,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(VolumeError::io(format!("stat {}", path.display()), e)),
        };
        if md.is_dir() {
            if md.dev() != dev {
                return Err(VolumeError::StillMounted(path));
            }
            remove_tree(&path, dev)?;
        } else {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(VolumeError::io(format!("removing {}", path.display()), e)),
            }
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(VolumeError::io(format!("removing {}", dir.display()), e)),
    }
}

/// See [`super::cleanup_orphans`].
pub(crate) fn cleanup_orphans(
    pods_root: &Path,
    live_uids: &HashSet<String>,
) -> Result<Vec<String>, VolumeError> {
    let entries = match std::fs::read_dir(pods_root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(VolumeError::io(
                format!("reading {}", pods_root.display()),
                e,
            ))
        }
    };
    let mut removed = Vec::new();
    let mut errors = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| VolumeError::io(format!("reading {}", pods_root.display()), e))?;
        let Some(uid) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if !is_dir || live_uids.contains(&uid) {
            continue;
        }
        match teardown(&entry.path()) {
            Ok(()) => removed.push(uid),
            Err(e) => errors.push(e),
        }
    }
    removed.sort();
    match VolumeError::from_list(errors) {
        Some(e) => Err(e),
        None => Ok(removed),
    }
}
