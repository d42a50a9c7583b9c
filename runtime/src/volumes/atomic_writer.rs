//! Atomic projection of a set of files into a directory, as kubelet's `AtomicWriter` (configMap,
//! secret, downwardAPI and projected volumes).
//!
//! The real files live in a hidden timestamped directory (`..2024_05_01_10_00_00.Ab3xYz`);
//! `..data` is a symlink to it, and each user-visible top-level name is a symlink into `..data`
//! (`key -> ..data/key`). An update writes a complete new timestamped directory, points a fresh
//! `..data_tmp` symlink at it and renames that over `..data` (an atomic switch, which is what
//! inotify watchers of `..data` see), then adds/removes user-visible links and deletes the old
//! directory. A payload identical to what is on disk (content and mode) writes nothing.

use super::error::VolumeError;
use super::ownership;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const DATA_DIR: &str = "..data";
const NEW_DATA_DIR: &str = "..data_tmp";
const MAX_FILE_NAME: usize = 255;
const MAX_PATH: usize = 4096;

/// One file to project: its bytes and permission bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileProjection {
    pub(crate) data: Vec<u8>,
    pub(crate) mode: u32,
}

/// Relative path → file. Later insertions of the same path win (like kubelet's map).
pub(crate) type Payload = BTreeMap<String, FileProjection>;

/// Writes `payload` into `target` (which must exist). Returns whether anything changed.
/// `fs_group` is applied to the new data before it becomes visible.
pub(crate) fn write(
    target: &Path,
    payload: &Payload,
    fs_group: Option<u32>,
) -> Result<bool, VolumeError> {
    let payload = validate_payload(payload)?;
    let data_link = target.join(DATA_DIR);

    let old_ts = match std::fs::read_link(&data_link) {
        Ok(p) => Some(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(VolumeError::io(
                format!("readlink {}", data_link.display()),
                e,
            ))
        }
    };
    // Only a plain `..name` in the target directory counts as a data directory of ours.
    let old_ts = old_ts.and_then(|p| {
        let name = p.to_str()?.to_string();
        (name.starts_with("..") && !name.contains('/') && name != DATA_DIR).then_some(name)
    });

    let mut to_remove = BTreeSet::new();
    if let Some(old) = &old_ts {
        let old_path = target.join(old);
        to_remove = paths_to_remove(&payload, &old_path)?;
        let unchanged = !should_write(&payload, &old_path)?;
        if unchanged && to_remove.is_empty() && visible_links_present(target, &payload) {
            return Ok(false);
        }
    }

    let ts_dir = new_timestamp_dir(target)?;
    let ts_name = file_name(&ts_dir)?;
    let result = (|| {
        write_payload(&payload, &ts_dir)?;
        if let Some(gid) = fs_group {
            ownership::apply_fs_group(&ts_dir, gid, true)?;
        }
        let tmp_link = target.join(NEW_DATA_DIR);
        remove_if_exists(&tmp_link)?;
        std::os::unix::fs::symlink(&ts_name, &tmp_link)
            .map_err(|e| VolumeError::io(format!("symlink {}", tmp_link.display()), e))?;
        std::fs::rename(&tmp_link, &data_link).map_err(|e| {
            let _ = std::fs::remove_file(&tmp_link);
            VolumeError::io(
                format!("rename {} to {}", tmp_link.display(), data_link.display()),
                e,
            )
        })
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&ts_dir);
        return Err(e);
    }

    create_visible_links(target, &payload)?;
    for p in &to_remove {
        // Only top-level names are links of ours; deeper paths went with the old directory.
        if !p.contains('/') {
            remove_if_exists(&target.join(p))?;
        }
    }
    remove_stale_data_dirs(target, &ts_name)?;
    Ok(true)
}

/// Checks every path and returns the payload keyed by cleaned paths.
fn validate_payload(payload: &Payload) -> Result<Payload, VolumeError> {
    let mut clean = Payload::new();
    for (path, file) in payload {
        validate_path(path)?;
        clean.insert(clean_path(path), file.clone());
    }
    Ok(clean)
}

/// kubelet's `validatePath`: relative, no `..` element, not starting with `..`, bounded lengths.
pub(crate) fn validate_path(path: &str) -> Result<(), VolumeError> {
    if path.is_empty() {
        return Err(VolumeError::InvalidPath("must not be empty: \"\"".into()));
    }
    if path.starts_with('/') {
        return Err(VolumeError::InvalidPath(format!(
            "must be relative path: {path}"
        )));
    }
    if path.len() > MAX_PATH {
        return Err(VolumeError::InvalidPath(format!(
            "must be less than or equal to {MAX_PATH} characters"
        )));
    }
    let items: Vec<&str> = path.split('/').collect();
    for item in &items {
        if *item == ".." {
            return Err(VolumeError::InvalidPath(format!(
                "must not contain '..': {path}"
            )));
        }
        if item.len() > MAX_FILE_NAME {
            return Err(VolumeError::InvalidPath(format!(
                "filenames must be less than or equal to {MAX_FILE_NAME} characters"
            )));
        }
    }
    if items[0].starts_with("..") && items[0].len() > 2 {
        return Err(VolumeError::InvalidPath(format!(
            "must not start with '..': {path}"
        )));
    }
    let cleaned = clean_path(path);
    if cleaned.is_empty() || cleaned == "." {
        return Err(VolumeError::InvalidPath(format!(
            "must name a file: {path}"
        )));
    }
    Ok(())
}

/// `filepath.Clean` for relative paths without `..`: drops empty and `.` elements.
fn clean_path(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    parts.join("/")
}

/// Does any file differ (missing, content or mode) from the current data directory?
fn should_write(payload: &Payload, old_dir: &Path) -> Result<bool, VolumeError> {
    for (path, file) in payload {
        let full = old_dir.join(path);
        let md = match std::fs::symlink_metadata(&full) {
            Ok(md) => md,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(VolumeError::io(format!("stat {}", full.display()), e)),
        };
        if !md.is_file() || md.permissions().mode() & 0o7777 != file.mode {
            return Ok(true);
        }
        let on_disk = std::fs::read(&full)
            .map_err(|e| VolumeError::io(format!("reading {}", full.display()), e))?;
        if on_disk != file.data {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Paths in the old data directory that the new payload no longer has (its files and their
/// parent directories count as present).
fn paths_to_remove(payload: &Payload, old_dir: &Path) -> Result<BTreeSet<String>, VolumeError> {
    let mut existing = BTreeSet::new();
    match walk_relative(old_dir, old_dir, &mut existing) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(VolumeError::io(format!("walking {}", old_dir.display()), e)),
    }
    let mut wanted = BTreeSet::new();
    for path in payload.keys() {
        let mut p = path.as_str();
        loop {
            wanted.insert(p.to_string());
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => break,
            }
        }
    }
    Ok(existing.difference(&wanted).cloned().collect())
}

fn walk_relative(base: &Path, dir: &Path, out: &mut BTreeSet<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if let Ok(rel) = path.strip_prefix(base) {
            if let Some(s) = rel.to_str() {
                out.insert(s.to_string());
            }
        }
        if entry.file_type()?.is_dir() {
            walk_relative(base, &path, out)?;
        }
    }
    Ok(())
}

fn visible_links_present(target: &Path, payload: &Payload) -> bool {
    payload.keys().all(|p| {
        let top = p.split('/').next().unwrap_or(p);
        std::fs::symlink_metadata(target.join(top)).is_ok()
    })
}

/// `..YYYY_MM_DD_HH_MM_SS.XXXXXX`, mode 0755 whatever the umask.
fn new_timestamp_dir(target: &Path) -> Result<PathBuf, VolumeError> {
    let now = jiff::Timestamp::now()
        .strftime("..%Y_%m_%d_%H_%M_%S.")
        .to_string();
    let template = target.join(format!("{now}XXXXXX"));
    let dir = nix::unistd::mkdtemp(&template).map_err(|e| {
        VolumeError::sys(
            format!("creating a data directory in {}", target.display()),
            e,
        )
    })?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| VolumeError::io(format!("chmod {}", dir.display()), e))?;
    Ok(dir)
}

fn write_payload(payload: &Payload, dir: &Path) -> Result<(), VolumeError> {
    for (path, file) in payload {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            create_dirs(dir, parent)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(file.mode)
            .open(&full)
            .map_err(|e| VolumeError::io(format!("writing {}", full.display()), e))?;
        f.write_all(&file.data)
            .map_err(|e| VolumeError::io(format!("writing {}", full.display()), e))?;
        // The umask may have cleared bits of the requested mode.
        f.set_permissions(std::fs::Permissions::from_mode(file.mode))
            .map_err(|e| VolumeError::io(format!("chmod {}", full.display()), e))?;
    }
    Ok(())
}

/// `mkdir -p` of `dir` below `base`, each new directory 0755.
fn create_dirs(base: &Path, dir: &Path) -> Result<(), VolumeError> {
    if dir == base || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs(base, parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(VolumeError::io(format!("mkdir {}", dir.display()), e)),
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| VolumeError::io(format!("chmod {}", dir.display()), e))
}

fn create_visible_links(target: &Path, payload: &Payload) -> Result<(), VolumeError> {
    for path in payload.keys() {
        let top = path.split('/').next().unwrap_or(path);
        let visible = target.join(top);
        match std::fs::symlink_metadata(&visible) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::os::unix::fs::symlink(Path::new(DATA_DIR).join(top), &visible)
                    .map_err(|e| VolumeError::io(format!("symlink {}", visible.display()), e))?;
            }
            Err(e) => return Err(VolumeError::io(format!("stat {}", visible.display()), e)),
        }
    }
    Ok(())
}

/// Removes every timestamped directory but `keep` (the previous one, and leftovers of an
/// interrupted write).
fn remove_stale_data_dirs(target: &Path, keep: &str) -> Result<(), VolumeError> {
    let entries = std::fs::read_dir(target)
        .map_err(|e| VolumeError::io(format!("reading {}", target.display()), e))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == keep || name == DATA_DIR || name == NEW_DATA_DIR || !name.starts_with("..") {
            continue;
        }
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            std::fs::remove_dir_all(entry.path())
                .map_err(|e| VolumeError::io(format!("removing {}", entry.path().display()), e))?;
        }
    }
    Ok(())
}

fn remove_if_exists(path: &Path) -> Result<(), VolumeError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(VolumeError::io(format!("removing {}", path.display()), e)),
    }
}

fn file_name(p: &Path) -> Result<String, VolumeError> {
    p.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| VolumeError::InvalidPath(format!("bad data directory {}", p.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(data: &str, mode: u32) -> FileProjection {
        FileProjection {
            data: data.as_bytes().to_vec(),
            mode,
        }
    }

    #[test]
    fn validates_paths() {
        for bad in ["", "/abs", "a/../b", "..", "..foo", "../x"] {
            assert!(validate_path(bad).is_err(), "{bad}");
        }
        for good in ["a", "a/b", "a/..b", ".a", "a/./b"] {
            assert!(validate_path(good).is_ok(), "{good}");
        }
        let long = "x".repeat(256);
        assert!(validate_path(&long).is_err());
    }

    #[test]
    fn writes_updates_and_prunes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = dir.path();
        let mut p = Payload::new();
        p.insert("a".into(), file("1", 0o644));
        p.insert("sub/b".into(), file("2", 0o600));
        assert!(write(t, &p, None).expect("write"));
        let first = std::fs::read_link(t.join("..data")).expect("..data");
        assert_eq!(
            std::fs::read_link(t.join("a")).expect("a"),
            Path::new("..data/a")
        );
        assert_eq!(std::fs::read_to_string(t.join("sub/b")).expect("b"), "2");
        let md = std::fs::metadata(t.join("sub/b")).expect("md");
        assert_eq!(md.permissions().mode() & 0o7777, 0o600);

        // Same payload: nothing written.
        assert!(!write(t, &p, None).expect("write"));
        assert_eq!(std::fs::read_link(t.join("..data")).expect("..data"), first);

        // Mode change alone is an update.
        p.insert("a".into(), file("1", 0o400));
        assert!(write(t, &p, None).expect("write"));
        let second = std::fs::read_link(t.join("..data")).expect("..data");
        assert_ne!(first, second);
        assert!(!t.join(&first).exists(), "old data dir removed");

        // Removing a key removes its visible link.
        p.remove("sub/b");
        p.insert("c".into(), file("3", 0o644));
        assert!(write(t, &p, None).expect("write"));
        assert!(std::fs::symlink_metadata(t.join("sub")).is_err());
        assert_eq!(std::fs::read_to_string(t.join("c")).expect("c"), "3");
        assert!(!t.join("..data_tmp").exists());
        let hidden: Vec<_> = std::fs::read_dir(t)
            .expect("ls")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("..2"))
            .collect();
        assert_eq!(hidden.len(), 1, "exactly one timestamped dir");
    }
}
