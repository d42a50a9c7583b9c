//! `fsGroup` ownership, as kubelet's `SetVolumeOwnership`: every file and directory of a volume
//! gets the pod's fsGroup as group (owner kept), `g+rw` (`g+r` for read-only volumes), and
//! directories also `g+x` and the setgid bit so new files inherit the group. Symlinks are
//! re-grouped but never chmod-ed (that would change their target), and the walk never follows
//! them nor leaves the volume's filesystem.

use super::error::VolumeError;
use nix::fcntl::AtFlags;
use nix::unistd::{fchownat, Gid};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

const RW_MASK: u32 = 0o660;
const RO_MASK: u32 = 0o440;
const EXEC_MASK: u32 = 0o110;
const SETGID: u32 = 0o2000;

/// Applies `gid` to `root` and everything below it.
pub(crate) fn apply_fs_group(root: &Path, gid: u32, read_only: bool) -> Result<(), VolumeError> {
    let md = std::fs::symlink_metadata(root)
        .map_err(|e| VolumeError::io(format!("stat {}", root.display()), e))?;
    walk(root, md.dev(), gid, read_only)
}

fn walk(path: &Path, dev: u64, gid: u32, read_only: bool) -> Result<(), VolumeError> {
    let md = std::fs::symlink_metadata(path)
        .map_err(|e| VolumeError::io(format!("stat {}", path.display()), e))?;
    fchownat(
        None,
        path,
        None,
        Some(Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| VolumeError::sys(format!("chown {}", path.display()), e))?;
    if md.file_type().is_symlink() {
        return Ok(());
    }
    let mut mask = if read_only { RO_MASK } else { RW_MASK };
    if md.is_dir() {
        mask |= EXEC_MASK | SETGID;
    }
    let mode = (md.mode() & 0o7777) | mask;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| VolumeError::io(format!("chmod {}", path.display()), e))?;
    if md.is_dir() && md.dev() == dev {
        let entries = std::fs::read_dir(path)
            .map_err(|e| VolumeError::io(format!("reading {}", path.display()), e))?;
        for entry in entries {
            let entry =
                entry.map_err(|e| VolumeError::io(format!("reading {}", path.display()), e))?;
            walk(&entry.path(), dev, gid, read_only)?;
        }
    }
    Ok(())
}
