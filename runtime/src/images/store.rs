//! The image store proper (layout in the module doc of `images`): verified blobs, references in
//! `repositories.json`, layers unpacked lazily and once, leases, garbage collection, and the
//! rescanned airgap directory.
//!
//! Concurrency: every operation that reads or adds content holds the shared `lock`; garbage
//! collection holds it exclusively, so it never deletes a blob or layer that an import, a
//! commit or a resolve is using. Rewrites of `repositories.json` and of leases are serialized
//! by `refs.lock`. Both are `flock`s, so threads and processes (the server and
//! `kubelite image`) are treated alike. New content always appears by rename.

use super::archive;
use super::digest::{is_lower_hex, Digest, HashingReader};
use super::fsutil::{self, FileLock, TMP_PREFIX};
use super::reference::Reference;
use super::spec::{self, Parsed, Platform};
use super::unpack::unpack_layer;
use super::{Image, ImageError, ImageSummary};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// JSON blobs (manifests, indexes, configs) larger than this are refused.
const MAX_JSON_BLOB: u64 = 16 << 20;
/// Directory under `layers/` used as the lowerdir of an image without layers.
const EMPTY_LAYER: &str = "empty";
/// How deep indexes may nest.
const MAX_INDEX_DEPTH: usize = 4;

/// What a reference points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RefRecord {
    /// The digest the reference was given (an index or a manifest).
    pub target: String,
    /// The manifest for this platform (`target` unless that is an index).
    pub manifest: String,
    /// The config digest: the image id.
    pub config: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Repositories {
    #[serde(default)]
    images: BTreeMap<String, RefRecord>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Lease {
    owner: String,
    /// Names of directories under `layers/`.
    layers: BTreeSet<String>,
}

/// Identity of an archive file as `import_directory` last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    fn of(m: &fs::Metadata) -> Self {
        FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// Keeps garbage collection away while held: a registry puller holds one from its first
/// [`ImageStore::write_blob`] until [`ImageStore::commit_image`], so blobs written but not yet
/// referenced are not collected in between.
pub struct IngestGuard {
    _lock: FileLock,
}

/// The content-addressed image store. `Send + Sync`; safe for concurrent use by threads and
/// processes.
pub struct ImageStore {
    root: PathBuf,
    platform: Platform,
    /// `import_directory`'s memory: archive path → what it looked like when last imported.
    imports: Mutex<HashMap<PathBuf, FileStamp>>,
    /// One mutex per layer being unpacked in this process (another process may unpack the same
    /// layer at the same time; the rename decides, the loser's copy is discarded).
    unpacking: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Archives read by `import_archive` (tests check that rescans read nothing).
    archives_read: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `sha256:<64 hex>` or `<64 hex>`: a full image id.
fn full_id(s: &str) -> Option<String> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    Digest::from_hex(hex).map(|d| d.to_string())
}

fn is_id_key(k: &str) -> bool {
    k.strip_prefix("sha256:")
        .is_some_and(|h| Digest::from_hex(h).is_some())
}

impl ImageStore {
    /// Opens (creating) the store at `root` (`<data-dir>/agent/images`) and removes temporary
    /// files left by processes that died.
    pub fn open(root: &Path) -> Result<Self, ImageError> {
        let store = ImageStore {
            root: root.to_path_buf(),
            platform: Platform::host(),
            imports: Mutex::new(HashMap::new()),
            unpacking: Mutex::new(HashMap::new()),
            archives_read: AtomicUsize::new(0),
        };
        for d in [
            store.root.clone(),
            store.blobs_dir(),
            store.layers_dir(),
            store.layers_dir().join(EMPTY_LAYER),
            store.root.join("leases"),
        ] {
            fs::create_dir_all(&d).map_err(ImageError::io(format!("creating {}", d.display())))?;
        }
        for d in [
            store.root.clone(),
            store.blobs_dir(),
            store.layers_dir(),
            store.root.join("leases"),
        ] {
            store.remove_temps(&d, true)?;
        }
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    fn refs_path(&self) -> PathBuf {
        self.root.join("repositories.json")
    }

    pub(crate) fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blobs_dir().join(d.hex())
    }

    fn lease_path(&self, owner: &str) -> PathBuf {
        self.root
            .join("leases")
            .join(format!("{}.json", Digest::of(owner.as_bytes()).hex()))
    }

    fn lock_shared(&self) -> Result<FileLock, ImageError> {
        FileLock::shared(&self.root.join("lock"))
    }

    fn lock_exclusive(&self) -> Result<FileLock, ImageError> {
        FileLock::exclusive(&self.root.join("lock"))
    }

    /// Removes `.tmp-*` entries of `dir`; with `dead_only`, only those of dead processes.
    fn remove_temps(&self, dir: &Path, dead_only: bool) -> Result<(), ImageError> {
        let rd = fs::read_dir(dir).map_err(ImageError::io(format!("reading {}", dir.display())))?;
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with(TMP_PREFIX) {
                continue;
            }
            if dead_only && fsutil::temp_name_pid(&name).is_some_and(fsutil::pid_alive) {
                continue;
            }
            fsutil::remove_all(&e.path())
                .map_err(ImageError::io(format!("removing {}", e.path().display())))?;
        }
        Ok(())
    }

    // ---- blobs ----

    /// Whether the store has this blob (`sha256:<hex>`).
    pub fn has_blob(&self, digest: &str) -> Result<bool, ImageError> {
        Ok(self.has(&Digest::parse(digest)?))
    }

    pub(crate) fn has(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Takes the shared lock until the guard is dropped (see [`IngestGuard`]).
    pub fn ingest(&self) -> Result<IngestGuard, ImageError> {
        Ok(IngestGuard {
            _lock: self.lock_shared()?,
        })
    }

    /// Stores a blob, verifying that its content has `expected_digest`; returns its path. A
    /// blob already present is not read again.
    pub fn write_blob(
        &self,
        expected_digest: &str,
        reader: impl Read,
    ) -> Result<PathBuf, ImageError> {
        let d = Digest::parse(expected_digest)?;
        let _g = self.lock_shared()?;
        self.write_blob_locked(&d, reader)
    }

    /// [`Self::write_blob`] for callers holding the shared lock.
    pub(crate) fn write_blob_locked(
        &self,
        d: &Digest,
        reader: impl Read,
    ) -> Result<PathBuf, ImageError> {
        let path = self.blob_path(d);
        if path.is_file() {
            return Ok(path);
        }
        let (actual, _, tmp) = self.write_temp_blob(reader)?;
        if &actual != d {
            let _ = fs::remove_file(&tmp);
            return Err(ImageError::DigestMismatch {
                expected: d.to_string(),
                actual: actual.to_string(),
            });
        }
        self.install_blob(&tmp, &path)?;
        Ok(path)
    }

    /// Stores a blob whose digest is not known in advance.
    pub(crate) fn store_blob_locked(&self, reader: impl Read) -> Result<(Digest, u64), ImageError> {
        let (d, size, tmp) = self.write_temp_blob(reader)?;
        let path = self.blob_path(&d);
        if path.is_file() {
            let _ = fs::remove_file(&tmp);
        } else {
            self.install_blob(&tmp, &path)?;
        }
        Ok((d, size))
    }

    fn write_temp_blob(&self, reader: impl Read) -> Result<(Digest, u64, PathBuf), ImageError> {
        let tmp = self.blobs_dir().join(fsutil::temp_name());
        let res = (|| {
            let mut out = BufWriter::with_capacity(256 * 1024, File::create(&tmp)?);
            let mut hr = HashingReader::new(reader);
            io::copy(&mut hr, &mut out)?;
            let f = out.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
            hr.finish()
        })();
        match res {
            Ok((d, size)) => Ok((d, size, tmp)),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(ImageError::io("writing blob")(e))
            }
        }
    }

    fn install_blob(&self, tmp: &Path, path: &Path) -> Result<(), ImageError> {
        fs::rename(tmp, path).map_err(|e| {
            let _ = fs::remove_file(tmp);
            ImageError::io(format!("storing {}", path.display()))(e)
        })
    }

    /// Reads a (small) JSON blob.
    pub(crate) fn read_json_blob(&self, d: &Digest) -> Result<Vec<u8>, ImageError> {
        let path = self.blob_path(d);
        let f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ImageError::BlobNotFound(d.to_string()))
            }
            Err(e) => return Err(ImageError::io(format!("reading {}", path.display()))(e)),
        };
        let mut buf = Vec::new();
        f.take(MAX_JSON_BLOB + 1)
            .read_to_end(&mut buf)
            .map_err(ImageError::io(format!("reading {}", path.display())))?;
        if buf.len() as u64 > MAX_JSON_BLOB {
            return Err(ImageError::InvalidContent {
                what: "manifest",
                digest: d.to_string(),
                reason: "larger than 16 MiB".into(),
            });
        }
        Ok(buf)
    }

    fn read_manifest(&self, d: &Digest) -> Result<spec::Manifest, ImageError> {
        match spec::parse_manifest_or_index(d, &self.read_json_blob(d)?)? {
            Parsed::Manifest(m) => Ok(m),
            Parsed::Index(_) => Err(ImageError::InvalidContent {
                what: "manifest",
                digest: d.to_string(),
                reason: "is an index".into(),
            }),
        }
    }

    /// Follows `target` (through indexes, choosing this platform) to an image manifest whose
    /// config and layer blobs are all present.
    pub(crate) fn record_for(&self, target: &Digest) -> Result<RefRecord, ImageError> {
        let mut d = target.clone();
        for _ in 0..=MAX_INDEX_DEPTH {
            match spec::parse_manifest_or_index(&d, &self.read_json_blob(&d)?)? {
                Parsed::Index(idx) => {
                    let desc = spec::select_platform(&idx, &self.platform).ok_or_else(|| {
                        ImageError::NoMatchingPlatform {
                            platform: self.platform.to_string(),
                            digest: d.to_string(),
                        }
                    })?;
                    d = Digest::parse(&desc.digest)?;
                }
                Parsed::Manifest(m) => {
                    if !spec::is_image_manifest(&m) {
                        return Err(ImageError::Unsupported(format!(
                            "{d} is not a container image (config media type {})",
                            m.config.media_type
                        )));
                    }
                    let cd = Digest::parse(&m.config.digest)?;
                    let cfg = spec::parse_config(&cd, &self.read_json_blob(&cd)?)?;
                    if cfg.diff_ids.len() != m.layers.len() {
                        return Err(ImageError::InvalidContent {
                            what: "manifest",
                            digest: d.to_string(),
                            reason: format!(
                                "{} layers but {} diff ids in the config",
                                m.layers.len(),
                                cfg.diff_ids.len()
                            ),
                        });
                    }
                    for l in &m.layers {
                        let ld = Digest::parse(&l.digest)?;
                        if !self.has(&ld) {
                            return Err(ImageError::BlobNotFound(ld.to_string()));
                        }
                    }
                    return Ok(RefRecord {
                        target: target.to_string(),
                        manifest: d.to_string(),
                        config: cd.to_string(),
                    });
                }
            }
        }
        Err(ImageError::InvalidContent {
            what: "index",
            digest: target.to_string(),
            reason: "indexes nested too deeply".into(),
        })
    }

    // ---- references ----

    fn load_refs(&self) -> Result<Repositories, ImageError> {
        let path = self.refs_path();
        match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| ImageError::InvalidContent {
                what: "reference file",
                digest: path.display().to_string(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Repositories::default()),
            Err(e) => Err(ImageError::io(format!("reading {}", path.display()))(e)),
        }
    }

    fn update_refs<T>(
        &self,
        f: impl FnOnce(&mut Repositories) -> Result<T, ImageError>,
    ) -> Result<T, ImageError> {
        let _g = FileLock::exclusive(&self.root.join("refs.lock"))?;
        let mut repos = self.load_refs()?;
        let before = repos.clone();
        let out = f(&mut repos)?;
        if repos != before {
            let bytes =
                serde_json::to_vec_pretty(&repos).map_err(|e| ImageError::InvalidContent {
                    what: "reference file",
                    digest: self.refs_path().display().to_string(),
                    reason: e.to_string(),
                })?;
            fsutil::write_atomic(&self.refs_path(), &bytes)?;
        }
        Ok(out)
    }

    /// Points `names` (or, when empty, the image id) at `rec`. An image that loses its last
    /// name stays listed by id (like Docker's dangling images) until removed.
    fn insert_names(
        repos: &mut Repositories,
        names: &[String],
        rec: &RefRecord,
        out: &mut Vec<String>,
    ) {
        if names.is_empty() {
            let named = repos
                .images
                .iter()
                .any(|(k, r)| r.config == rec.config && !is_id_key(k));
            if !named {
                repos.images.insert(rec.config.clone(), rec.clone());
            }
            out.push(rec.config.clone());
            return;
        }
        for n in names {
            if let Some(old) = repos.images.insert(n.clone(), rec.clone()) {
                if old.config != rec.config
                    && !repos.images.values().any(|r| r.config == old.config)
                {
                    repos.images.insert(old.config.clone(), old);
                }
            }
            if !out.contains(n) {
                out.push(n.clone());
            }
        }
        repos.images.remove(&rec.config);
    }

    /// The keys of `repos` that `s` designates, and the name to show for them.
    fn matching(
        repos: &Repositories,
        s: &str,
    ) -> Result<Option<(String, Vec<String>)>, ImageError> {
        let by_config = |id: &str| -> Option<(String, Vec<String>)> {
            let keys: Vec<String> = repos
                .images
                .iter()
                .filter(|(_, r)| r.config == id)
                .map(|(k, _)| k.clone())
                .collect();
            let display = keys
                .iter()
                .find(|k| !is_id_key(k))
                .cloned()
                .unwrap_or_else(|| id.to_string());
            (!keys.is_empty()).then_some((display, keys))
        };
        let s = s.trim();
        if let Some(id) = full_id(s) {
            return Ok(by_config(&id));
        }
        if let Ok(r) = Reference::parse_normalized(s) {
            let norm = r.to_string();
            if repos.images.contains_key(&norm) {
                return Ok(Some((norm.clone(), vec![norm])));
            }
            if let Some(dg) = &r.digest {
                let repo = r.repository();
                let keys: Vec<String> = repos
                    .images
                    .iter()
                    .filter(|(k, rec)| {
                        (&rec.target == dg || &rec.manifest == dg)
                            && !is_id_key(k)
                            && Reference::parse_normalized(k)
                                .is_ok_and(|kr| kr.repository() == repo)
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                if !keys.is_empty() {
                    return Ok(Some((norm, keys)));
                }
            }
        }
        // A unique id prefix: at least 4 hex digits after `sha256:`, or 12 without.
        let (prefix, explicit) = match s.strip_prefix("sha256:") {
            Some(h) => (h, true),
            None => (s, false),
        };
        if is_lower_hex(prefix) && prefix.len() >= if explicit { 4 } else { 12 } {
            let ids: BTreeSet<&str> = repos
                .images
                .values()
                .map(|r| r.config.as_str())
                .filter(|c| {
                    c.strip_prefix("sha256:")
                        .is_some_and(|h| h.starts_with(prefix))
                })
                .collect();
            return match ids.len() {
                0 => Ok(None),
                1 => Ok(ids.first().and_then(|id| by_config(id))),
                _ => Err(ImageError::Ambiguous(s.to_string())),
            };
        }
        Ok(None)
    }

    // ---- images ----

    /// Imports an OCI image layout or `docker save` tarball (plain or gzip); returns the
    /// normalized references imported (ids for unnamed images). Importing again is a no-op.
    pub fn import_archive(&self, path: &Path) -> Result<Vec<String>, ImageError> {
        self.archives_read.fetch_add(1, Ordering::Relaxed);
        let _g = self.lock_shared()?;
        let imported = archive::import(self, path, &self.platform)?;
        let mut commits = Vec::with_capacity(imported.len());
        for img in imported {
            commits.push((img.names, self.record_for(&img.target)?));
        }
        fsutil::fsync_dir(&self.blobs_dir()).map_err(ImageError::io(format!(
            "syncing {}",
            self.blobs_dir().display()
        )))?;
        let mut out = Vec::new();
        self.update_refs(|repos| {
            for (names, rec) in &commits {
                Self::insert_names(repos, names, rec, &mut out);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Imports every `*.tar`, `*.tar.gz` and `*.tgz` of `dir` that changed (path, device, inode,
    /// size, mtime, ctime) since this store last looked; cheap to call every few seconds. A
    /// failing archive is logged and not retried until it changes. Returns the references
    /// imported by this call.
    pub fn import_directory(&self, dir: &Path) -> Result<Vec<String>, ImageError> {
        let mut seen_before = lock(&self.imports);
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ImageError::io(format!("reading {}", dir.display()))(e)),
        };
        let mut files = Vec::new();
        for e in rd {
            let e = e.map_err(ImageError::io(format!("reading {}", dir.display())))?;
            let name = e.file_name().to_string_lossy().to_ascii_lowercase();
            if name.starts_with('.')
                || !(name.ends_with(".tar") || name.ends_with(".tar.gz") || name.ends_with(".tgz"))
            {
                continue;
            }
            let path = e.path();
            if let Ok(m) = fs::metadata(&path) {
                if m.is_file() {
                    files.push((path, FileStamp::of(&m)));
                }
            }
        }
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = Vec::new();
        for (path, stamp) in &files {
            if seen_before.get(path) == Some(stamp) {
                continue;
            }
            match self.import_archive(path) {
                Ok(refs) => out.extend(refs),
                Err(e) => {
                    tracing::warn!(archive = %path.display(), error = %e, "cannot import image archive")
                }
            }
            seen_before.insert(path.clone(), *stamp);
        }
        seen_before.retain(|p, _| p.parent() != Some(dir) || files.iter().any(|(f, _)| f == p));
        Ok(out)
    }

    /// Finds an image by reference (any form `normalize_reference` accepts, with or without a
    /// digest), by id (`sha256:<hex>` or 64 hex digits) or by a unique id prefix (`sha256:` and
    /// at least 4 hex digits, or at least 12 hex digits). Unpacks missing layers.
    pub fn resolve(&self, reference: &str) -> Result<Option<Image>, ImageError> {
        let _g = self.lock_shared()?;
        self.resolve_locked(reference)
    }

    fn resolve_locked(&self, reference: &str) -> Result<Option<Image>, ImageError> {
        let repos = self.load_refs()?;
        let Some((display, keys)) = Self::matching(&repos, reference)? else {
            return Ok(None);
        };
        let Some(rec) = keys.first().and_then(|k| repos.images.get(k)) else {
            return Ok(None);
        };
        self.load_image(display, rec).map(Some)
    }

    fn load_image(&self, reference: String, rec: &RefRecord) -> Result<Image, ImageError> {
        let m = self.read_manifest(&Digest::parse(&rec.manifest)?)?;
        let cd = Digest::parse(&rec.config)?;
        let cfg = spec::parse_config(&cd, &self.read_json_blob(&cd)?)?;
        if cfg.diff_ids.len() != m.layers.len() {
            return Err(ImageError::InvalidContent {
                what: "manifest",
                digest: rec.manifest.clone(),
                reason: "layer count differs from the config's diff ids".into(),
            });
        }
        let mut layers = Vec::with_capacity(m.layers.len());
        for (desc, diff_id) in m.layers.iter().zip(&cfg.diff_ids) {
            layers.push(self.ensure_layer(&Digest::parse(&desc.digest)?, diff_id)?);
        }
        if layers.is_empty() {
            layers.push(self.layers_dir().join(EMPTY_LAYER));
        }
        Ok(Image {
            reference,
            id: rec.config.clone(),
            config: cfg.config,
            layers,
            size: m.config.size + m.layers.iter().map(|l| l.size).sum::<u64>(),
        })
    }

    /// The unpacked directory of a layer, unpacking it first if needed.
    fn ensure_layer(&self, blob: &Digest, diff_id: &Digest) -> Result<PathBuf, ImageError> {
        let dir = self.layers_dir().join(diff_id.hex());
        if dir.is_dir() {
            return Ok(dir);
        }
        let m = lock(&self.unpacking)
            .entry(diff_id.hex().to_string())
            .or_default()
            .clone();
        let _one = lock(&m);
        if dir.is_dir() {
            return Ok(dir);
        }
        let blob_path = self.blob_path(blob);
        if !blob_path.is_file() {
            return Err(ImageError::BlobNotFound(blob.to_string()));
        }
        let tmp = self.layers_dir().join(fsutil::temp_name());
        let res =
            unpack_layer(&blob_path, &tmp, diff_id).and_then(|()| match fs::rename(&tmp, &dir) {
                Ok(()) => Ok(()),
                // Another process unpacked it first.
                Err(_) if dir.is_dir() => Ok(()),
                Err(e) => Err(ImageError::io(format!("storing {}", dir.display()))(e)),
            });
        let _ = fsutil::remove_all(&tmp);
        res.map(|()| dir)
    }

    /// Every reference (ids for unnamed images), sorted.
    pub fn list(&self) -> Result<Vec<ImageSummary>, ImageError> {
        let _g = self.lock_shared()?;
        let repos = self.load_refs()?;
        let mut out = Vec::with_capacity(repos.images.len());
        for (k, rec) in &repos.images {
            let size = Digest::parse(&rec.manifest)
                .and_then(|d| self.read_manifest(&d))
                .map(|m| m.config.size + m.layers.iter().map(|l| l.size).sum::<u64>())
                .unwrap_or_else(|e| {
                    tracing::warn!(reference = %k, error = %e, "cannot read manifest");
                    0
                });
            out.push(ImageSummary {
                reference: k.clone(),
                id: rec.config.clone(),
                size,
            });
        }
        Ok(out)
    }

    /// Removes a reference (by id or id prefix: every reference of that image), then deletes
    /// blobs and unpacked layers nothing references any more — except layers held by a lease
    /// (containers using them keep running). Returns whether anything was removed.
    pub fn remove(&self, reference: &str) -> Result<bool, ImageError> {
        let _g = self.lock_exclusive()?;
        let removed = self.update_refs(|repos| {
            let Some((_, keys)) = Self::matching(repos, reference)? else {
                return Ok(false);
            };
            for k in keys {
                repos.images.remove(&k);
            }
            Ok(true)
        })?;
        if removed {
            self.collect_garbage(&HashSet::new())?;
        }
        Ok(removed)
    }

    /// Deletes unpacked layers (and blobs) that no image references, that no lease holds and
    /// that are not in `in_use` (layer directories, as in [`Image::layers`]). Returns the
    /// number of layer directories deleted.
    pub fn remove_unused_layers(&self, in_use: &HashSet<PathBuf>) -> Result<usize, ImageError> {
        let _g = self.lock_exclusive()?;
        self.collect_garbage(in_use).map(|(_, layers)| layers)
    }

    /// Marks what `d` (an index or manifest) needs: blobs, and the diff ids of its layers.
    fn mark(
        &self,
        d: &Digest,
        depth: usize,
        blobs: &mut HashSet<String>,
        layers: &mut HashSet<String>,
    ) -> Result<(), ImageError> {
        if depth > MAX_INDEX_DEPTH || !blobs.insert(d.hex().to_string()) {
            return Ok(());
        }
        match spec::parse_manifest_or_index(d, &self.read_json_blob(d)?)? {
            Parsed::Index(idx) => {
                for child in &idx.manifests {
                    if let Ok(cd) = Digest::parse(&child.digest) {
                        if self.has(&cd) {
                            self.mark(&cd, depth + 1, blobs, layers)?;
                        }
                    }
                }
            }
            Parsed::Manifest(m) => {
                for l in &m.layers {
                    blobs.insert(Digest::parse(&l.digest)?.hex().to_string());
                }
                let cd = Digest::parse(&m.config.digest)?;
                blobs.insert(cd.hex().to_string());
                if self.has(&cd) && spec::is_image_manifest(&m) {
                    for diff in spec::parse_config(&cd, &self.read_json_blob(&cd)?)?.diff_ids {
                        layers.insert(diff.hex().to_string());
                    }
                }
            }
        }
        Ok(())
    }

    fn read_leases(&self) -> Result<Vec<Lease>, ImageError> {
        let dir = self.root.join("leases");
        let mut out = Vec::new();
        let rd =
            fs::read_dir(&dir).map_err(ImageError::io(format!("reading {}", dir.display())))?;
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            let bytes = fs::read(e.path())
                .map_err(ImageError::io(format!("reading {}", e.path().display())))?;
            let lease: Lease =
                serde_json::from_slice(&bytes).map_err(|err| ImageError::InvalidContent {
                    what: "lease",
                    digest: e.path().display().to_string(),
                    reason: err.to_string(),
                })?;
            out.push(lease);
        }
        Ok(out)
    }

    /// Garbage collection, with the exclusive lock held. Returns (blobs, layers) deleted.
    fn collect_garbage(&self, in_use: &HashSet<PathBuf>) -> Result<(usize, usize), ImageError> {
        let repos = self.load_refs()?;
        let mut blobs = HashSet::new();
        let mut layers = HashSet::new();
        for (k, rec) in &repos.images {
            let marked = [&rec.target, &rec.manifest]
                .into_iter()
                .try_for_each(|d| self.mark(&Digest::parse(d)?, 0, &mut blobs, &mut layers))
                .and_then(|()| {
                    Digest::parse(&rec.config).map(|c| blobs.insert(c.hex().to_string()))
                });
            if let Err(e) = marked {
                // Without knowing everything that is referenced, delete nothing.
                tracing::warn!(reference = %k, error = %e, "image store: skipping garbage collection");
                return Ok((0, 0));
            }
        }
        for lease in self.read_leases()? {
            layers.extend(lease.layers);
        }
        for p in in_use {
            if let Some(n) = p.file_name() {
                layers.insert(n.to_string_lossy().into_owned());
            }
        }
        layers.insert(EMPTY_LAYER.to_string());
        self.remove_temps(&self.blobs_dir(), false)?;
        self.remove_temps(&self.layers_dir(), false)?;
        let sweep = |dir: &Path, keep: &HashSet<String>| -> Result<usize, ImageError> {
            let mut n = 0;
            let rd =
                fs::read_dir(dir).map_err(ImageError::io(format!("reading {}", dir.display())))?;
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if keep.contains(&name) {
                    continue;
                }
                // Out of sight first (atomic), then deleted.
                let gone = dir.join(fsutil::temp_name());
                fs::rename(e.path(), &gone)
                    .and_then(|()| fsutil::remove_all(&gone))
                    .map_err(ImageError::io(format!("removing {}", e.path().display())))?;
                n += 1;
            }
            Ok(n)
        };
        let b = sweep(&self.blobs_dir(), &blobs)?;
        let l = sweep(&self.layers_dir(), &layers)?;
        if b + l > 0 {
            tracing::info!(blobs = b, layers = l, "image store: garbage collected");
        }
        Ok((b, l))
    }

    // ---- leases ----

    /// Resolves `reference` and records that `owner` (a container) uses its layers, so that
    /// removing the image keeps them. Leases of one owner accumulate until [`Self::release`].
    pub fn lease(&self, owner: &str, reference: &str) -> Result<Option<Image>, ImageError> {
        let _g = self.lock_shared()?;
        let Some(image) = self.resolve_locked(reference)? else {
            return Ok(None);
        };
        let _r = FileLock::exclusive(&self.root.join("refs.lock"))?;
        let path = self.lease_path(owner);
        let mut lease = match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
            Err(_) => Lease::default(),
        };
        lease.owner = owner.to_string();
        for l in &image.layers {
            if let Some(n) = l.file_name() {
                lease.layers.insert(n.to_string_lossy().into_owned());
            }
        }
        let bytes = serde_json::to_vec(&lease).map_err(|e| ImageError::InvalidContent {
            what: "lease",
            digest: path.display().to_string(),
            reason: e.to_string(),
        })?;
        fsutil::write_atomic(&path, &bytes)?;
        Ok(Some(image))
    }

    /// Drops `owner`'s lease; returns whether it had one. The layers are deleted by the next
    /// garbage collection if nothing else needs them.
    pub fn release(&self, owner: &str) -> Result<bool, ImageError> {
        let _r = FileLock::exclusive(&self.root.join("refs.lock"))?;
        let path = self.lease_path(owner);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(ImageError::io(format!("removing {}", path.display()))(e)),
        }
    }

    /// The owners holding leases (to release those of containers that no longer exist).
    pub fn leases(&self) -> Result<Vec<String>, ImageError> {
        let mut owners: Vec<String> = self.read_leases()?.into_iter().map(|l| l.owner).collect();
        owners.sort();
        Ok(owners)
    }

    // ---- for a registry puller ----

    /// Points `reference` at `manifest_digest` (an image manifest, or an index from which this
    /// platform's manifest is chosen), whose config and layer blobs must be in the store. A
    /// digest in `reference` must be that digest.
    pub fn commit_image(&self, reference: &str, manifest_digest: &str) -> Result<(), ImageError> {
        let r = Reference::parse_normalized(reference)?;
        let d = Digest::parse(manifest_digest)?;
        let _g = self.lock_shared()?;
        let rec = self.record_for(&d)?;
        if let Some(rd) = &r.digest {
            if rd != &rec.target && rd != &rec.manifest {
                return Err(ImageError::DigestMismatch {
                    expected: rd.clone(),
                    actual: rec.target,
                });
            }
        }
        fsutil::fsync_dir(&self.blobs_dir()).map_err(ImageError::io(format!(
            "syncing {}",
            self.blobs_dir().display()
        )))?;
        self.update_refs(|repos| {
            Self::insert_names(repos, &[r.to_string()], &rec, &mut Vec::new());
            Ok(())
        })
    }

    /// How many archives `import_archive` has read (tests: rescans must read none).
    #[cfg(test)]
    pub(crate) fn archives_read(&self) -> usize {
        self.archives_read.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for ImageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageStore")
            .field("root", &self.root)
            .finish()
    }
}

const _: fn() = || {
    fn is<T: Send + Sync>() {}
    is::<ImageStore>();
};
