//! Safe `subPath` mounts, as kubelet's `subpath_linux.go`. A subPath must be relative and free of
//! `..`; a missing one is created (directories made one at a time with `mkdirat` under an fd
//! opened without following symlinks, mode copied from the volume root). The resolved subPath
//! must stay inside the volume; it is then opened component by component with `O_NOFOLLOW` and
//! that very inode is bind-mounted (via `/proc/self/fd/N`) onto
//! `<pod_dir>/volume-subpaths/<volume>/<container>/<index>`, which becomes the container mount's
//! source. A container swapping a directory for a symlink after the check can therefore not
//! redirect the mount. The bind is reused while it still shows the same inode (and replaced when
//! e.g. a configMap update moved the file).

use super::error::VolumeError;
use super::{mounts, PreparedVolume};
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fchmod, fstat, mkdirat, Mode, SFlag};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

/// Directory of subPath bind mounts inside the pod directory.
pub(crate) const SUBPATH_DIR: &str = "volume-subpaths";

/// Validates, creates if needed, and binds `sub` of `vol`; returns the path to mount from.
pub(crate) fn prepare(
    pod_dir: &Path,
    vol: &PreparedVolume,
    container: &str,
    index: usize,
    sub: &str,
) -> Result<PathBuf, VolumeError> {
    if sub.starts_with('/') {
        return Err(VolumeError::SubPathAbsolute(sub.to_string()));
    }
    if sub.split('/').any(|p| p == "..") {
        return Err(VolumeError::SubPathBacksteps(sub.to_string()));
    }
    for (what, name) in [("container", container), ("volume", vol.name.as_str())] {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(VolumeError::InvalidSpec(format!(
                "invalid {what} name {name:?}"
            )));
        }
    }
    let volume_path = &vol.host_path;
    let full = volume_path.join(sub);
    match std::fs::metadata(&full) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let perm = std::fs::metadata(volume_path)
                .map_err(|e| VolumeError::io(format!("stat {}", volume_path.display()), e))?
                .mode()
                & 0o7777;
            safe_make_dir(sub, volume_path, perm).map_err(|_| VolumeError::SubPathCreate {
                mount: vol.name.clone(),
                container: container.to_string(),
            })?;
        }
        // e.g. a symlink loop: let the resolution below report it.
        Err(_) => {}
    }
    bind(pod_dir, vol, container, index, &full)
}

fn resolve(p: &Path) -> Result<PathBuf, VolumeError> {
    p.canonicalize()
        .map_err(|e| VolumeError::io(format!("error resolving symlinks in {:?}", p), e))
}

fn bind(
    pod_dir: &Path,
    vol: &PreparedVolume,
    container: &str,
    index: usize,
    full: &Path,
) -> Result<PathBuf, VolumeError> {
    let volume_path = resolve(&vol.host_path)?;
    let path = resolve(full)?;
    if !path.starts_with(&volume_path) {
        return Err(VolumeError::SubPathEscape { path, volume_path });
    }
    let fd = safe_open(&path, &volume_path)?;
    let st = fstat(fd.as_raw_fd())
        .map_err(|e| VolumeError::sys(format!("stat {}", path.display()), e))?;
    let is_dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;

    let pod_dir = resolve(pod_dir)?;
    let parent = pod_dir.join(SUBPATH_DIR).join(&vol.name).join(container);
    let target = parent.join(index.to_string());
    if mounts::mount_at(&target)?.is_some() {
        match std::fs::symlink_metadata(&target) {
            Ok(md) if md.dev() == st.st_dev && md.ino() == st.st_ino => return Ok(target),
            _ => mounts::unmount(&target)?,
        }
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(&parent)
        .map_err(|e| VolumeError::io(format!("mkdir {}", parent.display()), e))?;
    prepare_target(&target, is_dir)?;
    let source = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    mounts::bind(&source, &target)?;
    Ok(target)
}

/// An empty directory or file of the right kind at `target` to bind onto.
fn prepare_target(target: &Path, is_dir: bool) -> Result<(), VolumeError> {
    let io = |what: &str, e| VolumeError::io(format!("{what} {}", target.display()), e);
    match std::fs::symlink_metadata(target) {
        Ok(md) if md.is_dir() == is_dir && !md.file_type().is_symlink() => return Ok(()),
        Ok(md) if md.is_dir() => std::fs::remove_dir(target).map_err(|e| io("removing", e))?,
        Ok(_) => std::fs::remove_file(target).map_err(|e| io("removing", e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("stat", e)),
    }
    if is_dir {
        std::fs::DirBuilder::new()
            .mode(0o750)
            .create(target)
            .map_err(|e| io("mkdir", e))
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .custom_flags(libc::O_NOFOLLOW)
            .open(target)
            .map(drop)
            .map_err(|e| io("creating", e))
    }
}

fn own(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn normal_components(p: &Path) -> Result<Vec<&std::ffi::OsStr>, VolumeError> {
    p.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(VolumeError::InvalidPath(format!(
                "unexpected component in {}",
                p.display()
            ))),
        })
        .collect()
}

/// Opens `path` (canonical, inside canonical `base`) one component at a time, refusing any
/// symlink met on the way (which would mean the tree changed since it was resolved).
fn safe_open(path: &Path, base: &Path) -> Result<OwnedFd, VolumeError> {
    let rel = path
        .strip_prefix(base)
        .map_err(|_| VolumeError::SubPathEscape {
            path: path.to_path_buf(),
            volume_path: base.to_path_buf(),
        })?;
    let mut fd = own(nix::fcntl::open(
        base,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| VolumeError::sys(format!("open {}", base.display()), e))?);
    let mut current = base.to_path_buf();
    for comp in normal_components(rel)? {
        current.push(comp);
        let child = openat(
            Some(fd.as_raw_fd()),
            comp,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| VolumeError::sys(format!("error opening subpath {}", current.display()), e))?;
        let child = own(child);
        let st = fstat(child.as_raw_fd())
            .map_err(|e| VolumeError::sys(format!("stat {}", current.display()), e))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK {
            return Err(VolumeError::SubPathEscape {
                path: current,
                volume_path: base.to_path_buf(),
            });
        }
        fd = child;
    }
    Ok(fd)
}

/// kubelet's `SafeMakeDir`: creates `sub` below `base` with mode `perm`, never through a
/// symlink leading out of `base`.
fn safe_make_dir(sub: &str, base: &Path, perm: u32) -> Result<(), VolumeError> {
    let real_base = resolve(base)?;
    let comps = normal_components(Path::new(sub))?;
    let mut existing = 0;
    while existing < comps.len() {
        let p: PathBuf = comps[..=existing]
            .iter()
            .fold(real_base.clone(), |acc, c| acc.join(c));
        if std::fs::symlink_metadata(&p).is_err() {
            break;
        }
        existing += 1;
    }
    let prefix: PathBuf = comps[..existing]
        .iter()
        .fold(real_base.clone(), |acc, c| acc.join(c));
    let resolved = resolve(&prefix)?;
    if !resolved.starts_with(&real_base) {
        return Err(VolumeError::SubPathEscape {
            path: resolved,
            volume_path: real_base,
        });
    }
    let mut fd = safe_open(&resolved, &real_base)?;
    let mode = Mode::from_bits_truncate(perm);
    for comp in &comps[existing..] {
        match mkdirat(Some(fd.as_raw_fd()), *comp, mode) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(VolumeError::sys(format!("mkdir {comp:?}"), e)),
        }
        let child = openat(
            Some(fd.as_raw_fd()),
            *comp,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| VolumeError::sys(format!("open {comp:?}"), e))?;
        let child = own(child);
        fchmod(child.as_raw_fd(), mode)
            .map_err(|e| VolumeError::sys(format!("chmod {comp:?}"), e))?;
        fd = child;
    }
    Ok(())
}
