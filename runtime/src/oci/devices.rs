//! The host's device nodes, as containerd's `oci.WithHostDevices` hands them to a privileged
//! container (`linux.devices`): every block and character device under `/dev`, recursively,
//! except the directories `pts`, `shm`, `fd`, `mqueue`, `.lxc`, `.lxd-mounts`, `.udev` and the
//! node `console`. Symlinks and other files are skipped (not followed); a node that vanishes
//! while being read is skipped too.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::SpecError;

/// Directories of `/dev` that hold no host devices for a container.
const SKIPPED_DIRS: [&str; 7] = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

/// The device nodes under `dir` (normally `/dev`), with their host paths (which are their
/// container paths too), sorted by path.
pub(crate) fn host_devices(dir: &Path) -> Result<Vec<LinuxDevice>, SpecError> {
    let mut out = Vec::new();
    walk(dir, &mut out)?;
    out.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<LinuxDevice>) -> Result<(), SpecError> {
    let err = |e: std::io::Error| SpecError::Oci(format!("reading {}: {e}", dir.display()));
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        let path = entry.path();
        let name = entry.file_name();
        let md = match std::fs::symlink_metadata(&path) {
            Ok(md) => md,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(err(e)),
        };
        let ft = md.file_type();
        if ft.is_dir() {
            if !SKIPPED_DIRS.iter().any(|s| name == *s) {
                walk(&path, out)?;
            }
            continue;
        }
        let typ = if ft.is_block_device() {
            LinuxDeviceType::B
        } else if ft.is_char_device() {
            LinuxDeviceType::C
        } else {
            continue;
        };
        if name == "console" {
            continue;
        }
        let rdev = md.rdev();
        let mut d = LinuxDevice::default();
        d.set_path(path);
        d.set_typ(typ);
        d.set_major(i64::from(libc::major(rdev)));
        d.set_minor(i64::from(libc::minor(rdev)));
        d.set_file_mode(Some(md.permissions().mode() & 0o7777));
        d.set_uid(Some(md.uid()));
        d.set_gid(Some(md.gid()));
        out.push(d);
    }
    Ok(())
}
