//! Container root filesystems: an overlayfs mount of an image's unpacked layers (read-only,
//! shared by every container) under a per-container upper and work directory.
//!
//! The kernel takes mount options in one page (4096 bytes here); with ~100-byte layer paths a
//! 40-layer image would not fit. When the absolute form is too long and the layers share a
//! parent directory (they do in the store), the mount is made from a helper thread that has
//! its own working directory (`unshare(CLONE_FS)`, then `chdir` to that parent) with relative
//! lowerdirs — the same trick containerd uses. If even that does not fit: a clear error.

use super::ImageError;
use nix::mount::{MntFlags, MsFlags};
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The most layers overlayfs stacks (`OVL_MAX_STACK`).
const OVL_MAX_STACK: usize = 500;

/// Mounts overlayfs at `target`: `layers` (lowest first, as in [`super::Image::layers`]) as
/// read-only lowerdirs, `upper` and `work` (created if missing; same filesystem) for the
/// container's writes. A layer listed twice is kept only at its topmost position (the result
/// is the same and overlayfs refuses duplicates).
pub fn mount_overlay(
    layers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), ImageError> {
    if layers.is_empty() {
        return Err(ImageError::Unsupported(
            "an overlay mount needs at least one layer".into(),
        ));
    }
    // Topmost first, duplicates dropped below their topmost occurrence.
    let mut lowers: Vec<PathBuf> = Vec::with_capacity(layers.len());
    for l in layers.iter().rev() {
        let l = absolute(l)?;
        if !lowers.contains(&l) {
            lowers.push(l);
        }
    }
    if lowers.len() > OVL_MAX_STACK {
        return Err(ImageError::Unsupported(format!(
            "{} layers (overlayfs stacks at most {OVL_MAX_STACK})",
            lowers.len()
        )));
    }
    let (upper, work, target) = (absolute(upper)?, absolute(work)?, absolute(target)?);
    for p in lowers.iter().chain([&upper, &work, &target]) {
        check_path(p)?;
    }
    for d in [&upper, &work, &target] {
        std::fs::create_dir_all(d).map_err(ImageError::io(format!("creating {}", d.display())))?;
    }
    let tail = format!(",upperdir={},workdir={}", upper.display(), work.display());
    let joined = |names: Vec<&OsStr>| {
        let parts: Vec<String> = names
            .iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        format!("lowerdir={}{tail}", parts.join(":"))
    };
    let limit = page_size() - 1;
    let data = joined(lowers.iter().map(|p| p.as_os_str()).collect());
    if data.len() <= limit {
        return mount(&target, &data);
    }
    // Relative lowerdirs from the layers' common parent.
    let parent = lowers[0].parent().map(Path::to_path_buf);
    let too_long = |len| ImageError::TooManyLayers {
        len,
        limit,
        layers: lowers.len(),
    };
    let Some(parent) = parent.filter(|p| lowers.iter().all(|l| l.parent() == Some(p.as_path())))
    else {
        return Err(too_long(data.len()));
    };
    let names: Vec<&OsStr> = lowers.iter().filter_map(|l| l.file_name()).collect();
    let rel = joined(names);
    if rel.len() > limit {
        return Err(too_long(rel.len()));
    }
    let target2 = target.clone();
    std::thread::scope(|s| {
        s.spawn(move || {
            // Only this thread's working directory changes.
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS).map_err(|e| {
                ImageError::Mount {
                    target: target2.clone(),
                    source: io::Error::from(e),
                }
            })?;
            std::env::set_current_dir(&parent)
                .map_err(ImageError::io(format!("chdir {}", parent.display())))?;
            mount(&target2, &rel)
        })
        .join()
        .unwrap_or_else(|_| {
            Err(ImageError::Mount {
                target: target.clone(),
                source: io::Error::other("mount thread panicked"),
            })
        })
    })
}

/// Unmounts `target`. Not mounted or absent is fine; a busy mount is detached lazily.
pub fn unmount(target: &Path) -> Result<(), ImageError> {
    let err = |e: nix::Error| ImageError::Mount {
        target: target.to_path_buf(),
        source: io::Error::from(e),
    };
    match nix::mount::umount2(target, MntFlags::empty()) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(nix::Error::EBUSY) => match nix::mount::umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
            Err(e) => Err(err(e)),
        },
        Err(e) => Err(err(e)),
    }
}

fn mount(target: &Path, data: &str) -> Result<(), ImageError> {
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data),
    )
    .map_err(|e| ImageError::Mount {
        target: target.to_path_buf(),
        source: io::Error::from(e),
    })
}

fn absolute(p: &Path) -> Result<PathBuf, ImageError> {
    std::path::absolute(p).map_err(ImageError::io(format!("resolving {}", p.display())))
}

/// Characters overlayfs' option parser treats specially are refused rather than escaped.
fn check_path(p: &Path) -> Result<(), ImageError> {
    let b = p.as_os_str().as_bytes();
    if !p.is_absolute()
        || b.iter()
            .any(|c| matches!(c, b',' | b':' | b'\\' | b'\n' | 0))
    {
        return Err(ImageError::InvalidMountPath(p.to_path_buf()));
    }
    if std::str::from_utf8(b).is_err() {
        return Err(ImageError::InvalidMountPath(p.to_path_buf()));
    }
    Ok(())
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory effects.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}
