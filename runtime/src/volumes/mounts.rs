//! The mount table and the few mount operations volumes need: reading `/proc/self/mountinfo`,
//! mounting a tmpfs, bind-mounting a file descriptor's target, and detaching mounts without
//! following symlinks.

use super::error::VolumeError;
use nix::mount::{MntFlags, MsFlags};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone)]
pub(crate) struct MountPoint {
    pub(crate) path: PathBuf,
    pub(crate) fstype: String,
    /// Filesystem options (`rw,size=16384k`); only the tests look at them so far.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) super_options: String,
}

/// Every mount of this mount namespace, in mount order.
pub(crate) fn mount_table() -> Result<Vec<MountPoint>, VolumeError> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| VolumeError::io("reading /proc/self/mountinfo", e))?;
    Ok(parse_mountinfo(&text))
}

pub(crate) fn parse_mountinfo(text: &str) -> Vec<MountPoint> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        // id parent major:minor root mount-point options [optional...] - fstype source super
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if fields.len() < 5 || sep < 6 {
            continue;
        }
        out.push(MountPoint {
            path: PathBuf::from(unescape(fields[4])),
            fstype: fields.get(sep + 1).copied().unwrap_or("").to_string(),
            super_options: fields.get(sep + 3).copied().unwrap_or("").to_string(),
        });
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> OsString {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (u32::from(b[i + 1] - b'0') << 6)
                | (u32::from(b[i + 2] - b'0') << 3)
                | u32::from(b[i + 3] - b'0');
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    OsString::from_vec(out)
}

/// The topmost mount whose mount point is exactly `path` (already canonical).
pub(crate) fn mount_at(path: &Path) -> Result<Option<MountPoint>, VolumeError> {
    Ok(mount_table()?.into_iter().rev().find(|m| m.path == path))
}

/// Mount points at or below `root` (already canonical), deepest first.
pub(crate) fn mounts_below(root: &Path) -> Result<Vec<PathBuf>, VolumeError> {
    let mut v: Vec<PathBuf> = mount_table()?
        .into_iter()
        .filter(|m| m.path.starts_with(root))
        .map(|m| m.path)
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    v.dedup();
    Ok(v)
}

/// Mounts a tmpfs at `dir`, limited to `size` bytes if given (kubelet's memory emptyDir).
pub(crate) fn mount_tmpfs(dir: &Path, size: Option<u64>) -> Result<(), VolumeError> {
    let data = size.map(|s| format!("size={s}"));
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::empty(),
        data.as_deref(),
    )
    .map_err(|e| VolumeError::sys(format!("mounting tmpfs at {}", dir.display()), e))
}

/// Bind-mounts `source` (typically `/proc/self/fd/N`) onto `target`, non-recursively.
pub(crate) fn bind(source: &Path, target: &Path) -> Result<(), VolumeError> {
    nix::mount::mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| VolumeError::sys(format!("bind-mounting onto {}", target.display()), e))
}

/// Detaches the mount at `path` (lazily, so busy mounts go too), never following a symlink
/// that may have replaced the mount point.
pub(crate) fn unmount(path: &Path) -> Result<(), VolumeError> {
    match nix::mount::umount2(path, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(VolumeError::sys(
            format!("unmounting {}", path.display()),
            e,
        )),
    }
}

/// Unmounts everything at or below `root` (canonical), repeating for stacked mounts; errors if
/// anything is left.
pub(crate) fn unmount_all_below(root: &Path) -> Result<(), VolumeError> {
    // Each pass removes at least the top of every stack; stacks deeper than this are absurd.
    for _ in 0..32 {
        let mounts = mounts_below(root)?;
        if mounts.is_empty() {
            return Ok(());
        }
        for m in &mounts {
            unmount(m)?;
        }
    }
    if mounts_below(root)?.is_empty() {
        Ok(())
    } else {
        Err(VolumeError::StillMounted(root.to_path_buf()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_lines() {
        let text = "36 35 98:0 /mnt1 /mnt\\040dir rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n\
                    37 35 0:40 / /run/x rw shared:2 master:3 - tmpfs tmpfs rw,size=1024k\n\
                    garbage\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].path, PathBuf::from("/mnt dir"));
        assert_eq!(m[0].fstype, "ext3");
        assert_eq!(m[1].fstype, "tmpfs");
        assert_eq!(m[1].super_options, "rw,size=1024k");
    }
}
