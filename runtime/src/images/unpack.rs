//! Unpacking one layer blob (tar, plain or gzip) into a directory that overlayfs can use as a
//! lowerdir: whiteouts `.wh.<name>` become whiteout devices (char 0:0), `.wh..wh..opq` makes
//! its directory opaque (`trusted.overlay.opaque=y`); regular files, directories, symlinks,
//! hard links, devices and FIFOs keep their mode, numeric ownership (when root), xattrs and
//! mtimes. Paths are confined to the layer directory: `..` components are refused, absolute
//! paths are taken relative to the layer root, nothing is ever created through a symlink (a
//! parent that is not a real directory is refused), and hard links only point inside the layer.
//! The uncompressed stream is hashed and must match the layer's diff id.

use super::digest::{Digest, HashingReader};
use super::spec::{sniff_compression, Compression};
use super::ImageError;
use std::collections::HashSet;
use std::ffi::{CString, OsStr};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tar::EntryType;

/// Unpacks `blob` into the new directory `dest` (which must not exist) and checks that the
/// uncompressed tar has the digest `diff_id`. On error `dest` may be left partially written;
/// the caller unpacks into a temporary directory and renames it into place.
pub(crate) fn unpack_layer(blob: &Path, dest: &Path, diff_id: &Digest) -> Result<(), ImageError> {
    let ctx = || format!("unpacking layer {diff_id} from {}", blob.display());
    let file = File::open(blob).map_err(ImageError::io(ctx()))?;
    let mut buf = BufReader::with_capacity(256 * 1024, file);
    let compression = sniff_compression(buf.fill_buf().map_err(ImageError::io(ctx()))?);
    let decoded: Box<dyn Read> = match compression {
        Compression::None => Box::new(buf),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buf)),
        Compression::Zstd => {
            return Err(ImageError::Unsupported(format!(
                "layer {diff_id} is zstd-compressed"
            )))
        }
    };
    fs::create_dir(dest).map_err(ImageError::io(format!("creating {}", dest.display())))?;
    fs::set_permissions(dest, fs::Permissions::from_mode(0o755))
        .map_err(ImageError::io(format!("chmod {}", dest.display())))?;
    let mut hashing = HashingReader::new(decoded);
    let mut u = Unpacker {
        root: dest.to_path_buf(),
        layer: diff_id.to_string(),
        dirs: HashSet::new(),
        dir_times: Vec::new(),
        as_root: nix::unistd::geteuid().is_root(),
    };
    u.dirs.insert(PathBuf::new());
    {
        let mut archive = tar::Archive::new(&mut hashing);
        for entry in archive.entries().map_err(ImageError::io(ctx()))? {
            let mut entry = entry.map_err(ImageError::io(ctx()))?;
            u.apply(&mut entry)?;
        }
    }
    let (actual, _) = hashing.finish().map_err(ImageError::io(ctx()))?;
    if &actual != diff_id {
        return Err(ImageError::DigestMismatch {
            expected: diff_id.to_string(),
            actual: actual.to_string(),
        });
    }
    for (path, secs, nsec) in u.dir_times.iter().rev() {
        match set_times(path, *secs, *nsec) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(ImageError::io(format!(
                    "setting times of {}",
                    path.display()
                ))(e))
            }
            _ => {}
        }
    }
    Ok(())
}

struct Unpacker {
    root: PathBuf,
    layer: String,
    /// Relative paths known to be real directories (created or checked by us).
    dirs: HashSet<PathBuf>,
    /// Directory mtimes, applied last (creating children changes them).
    dir_times: Vec<(PathBuf, i64, i64)>,
    as_root: bool,
}

/// Metadata of an entry, read before its data.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: (i64, i64),
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Unpacker {
    fn unsafe_path(&self, path: &[u8], reason: &'static str) -> ImageError {
        ImageError::UnsafePath {
            layer: self.layer.clone(),
            path: String::from_utf8_lossy(path).into_owned(),
            reason,
        }
    }

    fn io(&self, what: &str, path: &Path) -> impl FnOnce(io::Error) -> ImageError {
        ImageError::io(format!(
            "layer {}: {what} {}",
            self.layer,
            path.strip_prefix(&self.root).unwrap_or(path).display()
        ))
    }

    /// Splits a tar path into components, refusing `..`; `.` and empty components (a leading
    /// `/`) are dropped.
    fn clean<'p>(&self, raw: &'p [u8]) -> Result<Vec<&'p OsStr>, ImageError> {
        let mut out = Vec::new();
        for c in raw.split(|b| *b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => return Err(self.unsafe_path(raw, "`..` component")),
                c if c.contains(&0) => return Err(self.unsafe_path(raw, "NUL byte in name")),
                c => out.push(OsStr::from_bytes(c)),
            }
        }
        Ok(out)
    }

    /// Makes every component of `rel` a real directory (creating missing ones), refusing to
    /// pass through a symlink or a non-directory.
    fn ensure_dir(&mut self, rel: &Path, raw: &[u8]) -> Result<(), ImageError> {
        let mut cur = PathBuf::new();
        for c in rel.components() {
            cur.push(c);
            if self.dirs.contains(&cur) {
                continue;
            }
            let full = self.root.join(&cur);
            match fs::symlink_metadata(&full) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(self.unsafe_path(raw, "a parent is a symlink or not a directory"))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&full).map_err(self.io("mkdir", &full))?;
                    fs::set_permissions(&full, fs::Permissions::from_mode(0o755))
                        .map_err(self.io("chmod", &full))?;
                }
                Err(e) => return Err(self.io("stat", &full)(e)),
            }
            self.dirs.insert(cur.clone());
        }
        Ok(())
    }

    /// Checks (without creating anything) that every component of `rel` is a real directory.
    fn check_dir(&self, rel: &Path, raw: &[u8]) -> Result<(), ImageError> {
        let mut cur = PathBuf::new();
        for c in rel.components() {
            cur.push(c);
            if self.dirs.contains(&cur) {
                continue;
            }
            match fs::symlink_metadata(self.root.join(&cur)) {
                Ok(m) if m.is_dir() => {}
                _ => return Err(self.unsafe_path(raw, "hard link target is not inside the layer")),
            }
        }
        Ok(())
    }

    /// Removes whatever is at `rel` (a directory with its contents).
    fn remove_existing(&mut self, rel: &Path) -> Result<(), ImageError> {
        let full = self.root.join(rel);
        match fs::symlink_metadata(&full) {
            Ok(m) if m.is_dir() => {
                fs::remove_dir_all(&full).map_err(self.io("removing", &full))?;
                self.dirs.retain(|d| !d.starts_with(rel));
            }
            Ok(_) => fs::remove_file(&full).map_err(self.io("removing", &full))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.io("stat", &full)(e)),
        }
        Ok(())
    }

    fn read_meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>) -> Result<Meta, ImageError> {
        let path = PathBuf::from(OsStr::from_bytes(&entry.path_bytes()));
        let h = entry.header();
        let bad_header = |_| self.unsafe_path(path.as_os_str().as_bytes(), "invalid tar header");
        let uid = h.uid().map_err(bad_header)?;
        let gid = h.gid().map_err(bad_header)?;
        let (uid, gid) = match (u32::try_from(uid), u32::try_from(gid)) {
            (Ok(u), Ok(g)) => (u, g),
            _ => return Err(self.unsafe_path(path.as_os_str().as_bytes(), "uid/gid out of range")),
        };
        let mode = h.mode().map_err(bad_header)? & 0o7777;
        let mut mtime = (i64::try_from(h.mtime().unwrap_or(0)).unwrap_or(0), 0i64);
        let mut xattrs = Vec::new();
        if let Some(exts) = entry
            .pax_extensions()
            .map_err(self.io("reading PAX header of", &path))?
        {
            for ext in exts {
                let ext = ext.map_err(self.io("reading PAX header of", &path))?;
                let Ok(key) = ext.key() else { continue };
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    // Overlay's own attributes come only from whiteout entries.
                    if !name.starts_with("trusted.overlay.") && !name.contains('\0') {
                        xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
                    }
                } else if key == "mtime" {
                    if let Some(t) = ext.value().ok().and_then(parse_pax_time) {
                        mtime = t;
                    }
                }
            }
        }
        Ok(Meta {
            uid,
            gid,
            mode,
            mtime,
            xattrs,
        })
    }

    /// Ownership, mode, xattrs (after chown, which clears file capabilities) and times.
    fn set_meta(&mut self, full: &Path, meta: &Meta, kind: EntryType) -> Result<(), ImageError> {
        if self.as_root {
            std::os::unix::fs::lchown(full, Some(meta.uid), Some(meta.gid))
                .map_err(self.io("chown", full))?;
        }
        if kind != EntryType::Symlink {
            fs::set_permissions(full, fs::Permissions::from_mode(meta.mode))
                .map_err(self.io("chmod", full))?;
        }
        for (name, value) in &meta.xattrs {
            if let Err(e) = lsetxattr(full, name, value) {
                tracing::warn!(layer = %self.layer, path = %full.display(), xattr = %name, error = %e, "cannot set xattr");
            }
        }
        if kind == EntryType::Directory {
            self.dir_times
                .push((full.to_path_buf(), meta.mtime.0, meta.mtime.1));
        } else {
            set_times(full, meta.mtime.0, meta.mtime.1)
                .map_err(self.io("setting times of", full))?;
        }
        Ok(())
    }

    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ImageError> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let raw = entry.path_bytes().into_owned();
        let comps = self.clean(&raw)?;
        let Some((name, parents)) = comps.split_last() else {
            // The layer root ("./").
            if kind == EntryType::Directory {
                let meta = self.read_meta(entry)?;
                let root = self.root.clone();
                self.set_meta(&root, &meta, kind)?;
            }
            return Ok(());
        };
        let parent_rel: PathBuf = parents.iter().collect();
        self.ensure_dir(&parent_rel, &raw)?;
        let parent = self.root.join(&parent_rel);

        if let Some(hidden) = name.as_bytes().strip_prefix(b".wh.") {
            if hidden == b".wh..opq" {
                lsetxattr(&parent, "trusted.overlay.opaque", b"y")
                    .map_err(self.io("marking opaque", &parent))?;
            } else if hidden.starts_with(b".wh.") {
                // Other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): nothing to do.
            } else if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(self.unsafe_path(&raw, "invalid whiteout"));
            } else {
                let rel = parent_rel.join(OsStr::from_bytes(hidden));
                self.remove_existing(&rel)?;
                let full = self.root.join(&rel);
                mknod(&full, libc::S_IFCHR, 0).map_err(self.io("creating whiteout", &full))?;
            }
            return Ok(());
        }

        let rel = parent_rel.join(name);
        let full = self.root.join(&rel);
        match kind {
            EntryType::Directory => {
                let meta = self.read_meta(entry)?;
                match fs::symlink_metadata(&full) {
                    Ok(m) if m.is_dir() => {}
                    other => {
                        if other.is_ok() {
                            self.remove_existing(&rel)?;
                        }
                        fs::create_dir(&full).map_err(self.io("mkdir", &full))?;
                    }
                }
                self.dirs.insert(rel);
                self.set_meta(&full, &meta, kind)
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let meta = self.read_meta(entry)?;
                self.remove_existing(&rel)?;
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(&full)
                    .map_err(self.io("creating", &full))?;
                io::copy(entry, &mut f).map_err(self.io("writing", &full))?;
                drop(f);
                self.set_meta(&full, &meta, kind)
            }
            EntryType::Symlink => {
                let meta = self.read_meta(entry)?;
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.unsafe_path(&raw, "symlink without target"))?
                    .into_owned();
                if target.contains(&0) {
                    return Err(self.unsafe_path(&raw, "NUL byte in symlink target"));
                }
                self.remove_existing(&rel)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &full)
                    .map_err(self.io("creating symlink", &full))?;
                self.set_meta(&full, &meta, kind)
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.unsafe_path(&raw, "hard link without target"))?
                    .into_owned();
                let tcomps = self.clean(&target)?;
                let Some((_, tparents)) = tcomps.split_last() else {
                    return Err(self.unsafe_path(&raw, "hard link to the layer root"));
                };
                self.check_dir(&tparents.iter().collect::<PathBuf>(), &target)?;
                let trel: PathBuf = tcomps.iter().collect();
                if trel == rel {
                    return Ok(());
                }
                let tfull = self.root.join(&trel);
                match fs::symlink_metadata(&tfull) {
                    Ok(m) if !m.is_dir() => {}
                    _ => {
                        return Err(
                            self.unsafe_path(&raw, "hard link target missing or a directory")
                        )
                    }
                }
                self.remove_existing(&rel)?;
                fs::hard_link(&tfull, &full).map_err(self.io("linking", &full))
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let meta = self.read_meta(entry)?;
                let h = entry.header();
                let dev = match kind {
                    EntryType::Fifo => 0,
                    _ => {
                        let major = h.device_major().ok().flatten().unwrap_or(0);
                        let minor = h.device_minor().ok().flatten().unwrap_or(0);
                        libc::makedev(major, minor)
                    }
                };
                let fmt = match kind {
                    EntryType::Char => libc::S_IFCHR,
                    EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                self.remove_existing(&rel)?;
                mknod(&full, fmt, dev).map_err(self.io("mknod", &full))?;
                self.set_meta(&full, &meta, kind)
            }
            other => {
                tracing::debug!(layer = %self.layer, path = %full.display(), kind = ?other, "skipping tar entry of unsupported type");
                Ok(())
            }
        }
    }
}

/// `1700000000.5` → (1700000000, 500000000).
fn parse_pax_time(s: &str) -> Option<(i64, i64)> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    if secs < 0 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nsec = 0i64;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nsec += i64::from(b - b'0') * 10i64.pow(8 - i as u32);
    }
    Some((secs, nsec))
}

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn mknod(p: &Path, fmt: libc::mode_t, dev: libc::dev_t) -> io::Result<()> {
    let c = cpath(p)?;
    // SAFETY: valid NUL-terminated path.
    check(unsafe { libc::mknod(c.as_ptr(), fmt | 0o600, dev) })?;
    if fmt == libc::S_IFCHR && dev == 0 {
        // Whiteouts are 0000 like Docker's (chmod does not follow: it is not a symlink).
        fs::set_permissions(p, fs::Permissions::from_mode(0o000))?;
    }
    Ok(())
}

fn lsetxattr(p: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let c = cpath(p)?;
    let n = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: valid NUL-terminated strings and a value buffer of the given length.
    check(unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

fn set_times(p: &Path, secs: i64, nsec: i64) -> io::Result<()> {
    let c = cpath(p)?;
    let ts = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: nsec as _,
    };
    let times = [ts, ts];
    // SAFETY: valid path and a two-element timespec array.
    check(unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

/// Whether `p` is an overlay whiteout (char device 0:0).
#[cfg(test)]
pub(crate) fn is_whiteout(p: &Path) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == 0)
}

/// The value of an xattr of `p` (not following symlinks).
#[cfg(test)]
pub(crate) fn lgetxattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let c = cpath(p).ok()?;
    let n = CString::new(name).ok()?;
    let mut buf = vec![0u8; 256];
    // SAFETY: valid strings and a buffer of the given length.
    let len =
        unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| {
        buf.truncate(len as usize);
        buf
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time("1700000000"), Some((1700000000, 0)));
        assert_eq!(
            parse_pax_time("1700000000.5"),
            Some((1700000000, 500_000_000))
        );
        assert_eq!(parse_pax_time("1.1234567891"), Some((1, 123_456_789)));
        assert_eq!(parse_pax_time("-1"), None);
        assert_eq!(parse_pax_time("x"), None);
    }
}
