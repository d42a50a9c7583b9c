//! Importing image archives: OCI image layout tarballs (`index.json`, `blobs/sha256/…`) and
//! `docker save` tarballs (`manifest.json` with `RepoTags`, layer tars), plain or gzip, possibly
//! inside one top-level directory.
//!
//! Two passes over the archive: the first records every member and keeps the small JSON ones
//! (indexes, manifests, configs) in memory, seeking past the rest when the archive is not
//! compressed; the plan then picks this platform's manifests, writes the verified JSON blobs and
//! lists the layer members missing from the store; the second pass, only if something is
//! missing, streams those members into the store. Importing an archive whose blobs are all
//! present reads nothing but headers and small files.
//!
//! Names: `io.containerd.image.name`; `org.opencontainers.image.ref.name` alone (a full
//! reference, or a bare name like umoci's `busybox`); a tag-only ref.name next to a containerd
//! name replaces that name's tag; `RepoTags` for docker-save. Everything is normalized; an
//! image without a name is stored by id.

use super::digest::Digest;
use super::reference::{self, Reference};
use super::spec::{self, Descriptor, Index, Parsed, Platform};
use super::store::ImageStore;
use super::ImageError;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use tar::EntryType;

/// Members up to this size that look like JSON are kept in memory by the first pass.
const MAX_CACHED_ENTRY: u64 = 8 << 20;
const MAX_CACHED_TOTAL: u64 = 256 << 20;
const MAX_LINK_HOPS: usize = 16;

/// An image found in an archive, its blobs now in the store.
pub(crate) struct Imported {
    pub names: Vec<String>,
    /// Its index or manifest digest.
    pub target: Digest,
}

#[derive(Debug, Clone)]
enum Member {
    File,
    /// A link, already resolved to an archive path.
    Link(String),
}

/// What the first pass learnt.
#[derive(Default)]
struct Scan {
    members: HashMap<String, Member>,
    cached: HashMap<String, Vec<u8>>,
    cached_total: u64,
}

impl Scan {
    /// The archive path of the file that `path` names, following links.
    fn resolve(&self, path: &str) -> Option<String> {
        let mut p = path.to_string();
        for _ in 0..MAX_LINK_HOPS {
            match self.members.get(&p)? {
                Member::File => return Some(p),
                Member::Link(t) => p = t.clone(),
            }
        }
        None
    }

    fn cached(&self, path: &str) -> Option<&[u8]> {
        self.resolve(path)
            .and_then(|p| self.cached.get(&p))
            .map(Vec::as_slice)
    }
}

/// `a/./b/../c` → `a/c`; leading `/` dropped.
fn norm(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

fn join(dir: &str, rel: &str) -> String {
    if rel.starts_with('/') || dir.is_empty() {
        norm(rel)
    } else {
        norm(&format!("{dir}/{rel}"))
    }
}

fn parent(p: &str) -> &str {
    p.rsplit_once('/').map_or("", |(a, _)| a)
}

/// Called for every member of the archive, in order.
trait Visitor {
    fn visit<R: Read>(
        &mut self,
        path: String,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), ImageError>;
}

struct Archive<'a> {
    path: &'a Path,
    gzip: bool,
}

impl Archive<'_> {
    fn err(&self, reason: impl Into<String>) -> ImageError {
        ImageError::InvalidArchive {
            archive: self.path.display().to_string(),
            reason: reason.into(),
        }
    }

    fn open(path: &Path) -> Result<Archive<'_>, ImageError> {
        let mut f =
            File::open(path).map_err(ImageError::io(format!("opening {}", path.display())))?;
        let mut head = [0u8; 4];
        let mut n = 0;
        while n < head.len() {
            match f.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ImageError::io(format!("reading {}", path.display()))(e)),
            }
        }
        let gzip = match spec::sniff_compression(&head[..n]) {
            spec::Compression::None => false,
            spec::Compression::Gzip => true,
            spec::Compression::Zstd => {
                return Err(ImageError::Unsupported(format!(
                    "{}: zstd-compressed archive",
                    path.display()
                )))
            }
        };
        Ok(Archive { path, gzip })
    }

    /// One pass over the members.
    fn walk(&self, v: &mut impl Visitor) -> Result<(), ImageError> {
        let ctx = || format!("reading {}", self.path.display());
        let mut f = File::open(self.path).map_err(ImageError::io(ctx()))?;
        f.seek(SeekFrom::Start(0)).map_err(ImageError::io(ctx()))?;
        if self.gzip {
            let r = flate2::bufread::MultiGzDecoder::new(BufReader::with_capacity(256 * 1024, f));
            let mut ar = tar::Archive::new(r);
            for e in ar.entries().map_err(ImageError::io(ctx()))? {
                let mut e = e.map_err(ImageError::io(ctx()))?;
                let path = norm(&String::from_utf8_lossy(&e.path_bytes()));
                v.visit(path, &mut e)?;
            }
        } else {
            let mut ar = tar::Archive::new(f);
            for e in ar.entries_with_seek().map_err(ImageError::io(ctx()))? {
                let mut e = e.map_err(ImageError::io(ctx()))?;
                let path = norm(&String::from_utf8_lossy(&e.path_bytes()));
                v.visit(path, &mut e)?;
            }
        }
        Ok(())
    }
}

/// First pass: members and small JSON files.
impl Visitor for Scan {
    fn visit<R: Read>(
        &mut self,
        path: String,
        e: &mut tar::Entry<'_, R>,
    ) -> Result<(), ImageError> {
        match e.header().entry_type() {
            EntryType::Regular | EntryType::Continuous => {
                let size = e.size();
                if size <= MAX_CACHED_ENTRY && self.cached_total + size <= MAX_CACHED_TOTAL {
                    let mut head = Vec::with_capacity(size.min(4096) as usize);
                    e.by_ref()
                        .take(size.min(4096))
                        .read_to_end(&mut head)
                        .map_err(ImageError::io(format!("reading {path}")))?;
                    let json_like = head
                        .iter()
                        .find(|b| !b.is_ascii_whitespace())
                        .is_some_and(|b| *b == b'{' || *b == b'[');
                    if json_like {
                        e.read_to_end(&mut head)
                            .map_err(ImageError::io(format!("reading {path}")))?;
                        self.cached_total += head.len() as u64;
                        self.cached.insert(path.clone(), head);
                    }
                }
                self.members.insert(path, Member::File);
            }
            EntryType::Symlink => {
                if let Some(t) = e.link_name_bytes() {
                    let t = join(parent(&path), &String::from_utf8_lossy(&t));
                    self.members.insert(path, Member::Link(t));
                }
            }
            EntryType::Link => {
                if let Some(t) = e.link_name_bytes() {
                    let t = norm(&String::from_utf8_lossy(&t));
                    self.members.insert(path, Member::Link(t));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A member to store in the second pass.
#[derive(Debug, Clone)]
enum Needed {
    /// An OCI blob: its digest is known and verified.
    Known(Digest),
    /// A docker-save layer tar: hashed while stored.
    Unknown,
}

/// Second pass: stores the needed members.
struct Fetch<'a> {
    store: &'a ImageStore,
    needed: &'a BTreeMap<String, Needed>,
    got: HashMap<String, Digest>,
}

impl Visitor for Fetch<'_> {
    fn visit<R: Read>(
        &mut self,
        path: String,
        e: &mut tar::Entry<'_, R>,
    ) -> Result<(), ImageError> {
        if !matches!(
            e.header().entry_type(),
            EntryType::Regular | EntryType::Continuous
        ) || self.got.contains_key(&path)
        {
            return Ok(());
        }
        let d = match self.needed.get(&path) {
            None => return Ok(()),
            Some(Needed::Known(d)) => {
                self.store.write_blob_locked(d, e)?;
                d.clone()
            }
            Some(Needed::Unknown) => self.store.store_blob_locked(e)?.0,
        };
        self.got.insert(path, d);
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

/// Where a docker-save layer's blob comes from.
enum LayerSource {
    Stored(Digest),
    Member(String),
}

struct DockerImage {
    names: Vec<String>,
    config: (Digest, u64),
    layers: Vec<LayerSource>,
}

struct Planner<'a> {
    archive: &'a Archive<'a>,
    store: &'a ImageStore,
    platform: &'a Platform,
    scan: &'a Scan,
    prefix: String,
    needed: BTreeMap<String, Needed>,
}

impl Planner<'_> {
    /// A JSON blob of an OCI layout: from the archive, or from the store if already there.
    fn json_blob(&self, d: &Digest) -> Result<Vec<u8>, ImageError> {
        let path = join(&self.prefix, &format!("blobs/sha256/{}", d.hex()));
        let bytes = match self.scan.cached(&path) {
            Some(b) => b.to_vec(),
            None if self.store.has(d) => self.store.read_json_blob(d)?,
            None => {
                return Err(self
                    .archive
                    .err(format!("blob {d} is missing (or too large)")))
            }
        };
        d.verify(&bytes)?;
        Ok(bytes)
    }

    /// Plans an OCI index or manifest: writes its JSON blobs, notes missing layers. `false`
    /// for something that is not a container image.
    fn plan_oci(&mut self, d: &Digest, depth: usize) -> Result<bool, ImageError> {
        if depth > 4 {
            return Err(self.archive.err(format!("{d}: indexes nested too deeply")));
        }
        let bytes = self.json_blob(d)?;
        match spec::parse_manifest_or_index(d, &bytes)? {
            Parsed::Index(idx) => {
                let child = spec::select_platform(&idx, self.platform).ok_or_else(|| {
                    ImageError::NoMatchingPlatform {
                        platform: self.platform.to_string(),
                        digest: d.to_string(),
                    }
                })?;
                let cd = Digest::parse(&child.digest)?;
                if !self.plan_oci(&cd, depth + 1)? {
                    return Ok(false);
                }
            }
            Parsed::Manifest(m) => {
                if !spec::is_image_manifest(&m) {
                    tracing::debug!(archive = %self.archive.path.display(), manifest = %d, "skipping an artifact that is not a container image");
                    return Ok(false);
                }
                let cd = Digest::parse(&m.config.digest)?;
                let cfg_bytes = self.json_blob(&cd)?;
                let cfg = spec::parse_config(&cd, &cfg_bytes)?;
                if cfg.diff_ids.len() != m.layers.len() {
                    return Err(self.archive.err(format!(
                        "{d}: {} layers but {} diff ids",
                        m.layers.len(),
                        cfg.diff_ids.len()
                    )));
                }
                self.store.write_blob_locked(&cd, &cfg_bytes[..])?;
                for l in &m.layers {
                    let ld = Digest::parse(&l.digest)?;
                    if self.store.has(&ld) {
                        continue;
                    }
                    let path = join(&self.prefix, &format!("blobs/sha256/{}", ld.hex()));
                    let member = self
                        .scan
                        .resolve(&path)
                        .ok_or_else(|| self.archive.err(format!("layer {ld} is missing")))?;
                    self.needed.insert(member, Needed::Known(ld));
                }
            }
        }
        self.store.write_blob_locked(d, &bytes[..])?;
        Ok(true)
    }

    fn oci(&mut self) -> Result<Vec<Imported>, ImageError> {
        let index_bytes = self
            .scan
            .cached(&join(&self.prefix, "index.json"))
            .ok_or_else(|| self.archive.err("index.json unreadable"))?;
        let index: Index = serde_json::from_slice(index_bytes)
            .map_err(|e| self.archive.err(format!("index.json: {e}")))?;
        let mut out = Vec::new();
        for desc in &index.manifests {
            if desc
                .platform
                .as_ref()
                .is_some_and(|p| !p.matches(self.platform))
            {
                continue;
            }
            let d = Digest::parse(&desc.digest)?;
            if self.plan_oci(&d, 0)? {
                out.push(Imported {
                    names: names_from_annotations(self.archive, desc.annotations.as_ref()),
                    target: d,
                });
            }
        }
        Ok(out)
    }

    fn docker(&mut self) -> Result<Vec<DockerImage>, ImageError> {
        let bytes = self
            .scan
            .cached(&join(&self.prefix, "manifest.json"))
            .ok_or_else(|| self.archive.err("manifest.json unreadable"))?;
        let entries: Vec<DockerEntry> = serde_json::from_slice(bytes)
            .map_err(|e| self.archive.err(format!("manifest.json: {e}")))?;
        let mut out = Vec::new();
        for entry in entries {
            let cfg_bytes = self
                .scan
                .cached(&join(&self.prefix, &entry.config))
                .ok_or_else(|| {
                    self.archive
                        .err(format!("config {} is missing", entry.config))
                })?;
            let cd = Digest::of(cfg_bytes);
            let cfg = spec::parse_config(&cd, cfg_bytes)?;
            if cfg.diff_ids.len() != entry.layers.len() {
                return Err(self.archive.err(format!(
                    "{}: {} layers but {} diff ids",
                    entry.config,
                    entry.layers.len(),
                    cfg.diff_ids.len()
                )));
            }
            self.store.write_blob_locked(&cd, cfg_bytes)?;
            let mut layers = Vec::new();
            for (l, diff_id) in entry.layers.iter().zip(&cfg.diff_ids) {
                let member = self
                    .scan
                    .resolve(&join(&self.prefix, l))
                    .ok_or_else(|| self.archive.err(format!("layer {l} is missing")))?;
                // Docker 25+ names layers by digest; older versions write uncompressed tars,
                // whose digest is the diff id.
                let blobs_dir = join(&self.prefix, "blobs/sha256");
                let known = member
                    .strip_prefix(blobs_dir.as_str())
                    .and_then(|h| h.strip_prefix('/'))
                    .and_then(Digest::from_hex);
                let source = match known {
                    Some(d) if self.store.has(&d) => LayerSource::Stored(d),
                    _ if self.store.has(diff_id) => LayerSource::Stored(diff_id.clone()),
                    Some(d) => {
                        self.needed.insert(member.clone(), Needed::Known(d));
                        LayerSource::Member(member)
                    }
                    None => {
                        self.needed.insert(member.clone(), Needed::Unknown);
                        LayerSource::Member(member)
                    }
                };
                layers.push(source);
            }
            let mut names = Vec::new();
            for t in entry.repo_tags.unwrap_or_default() {
                match reference::normalize_reference(&t) {
                    Ok(n) => names.push(n),
                    Err(e) => {
                        tracing::warn!(archive = %self.archive.path.display(), error = %e, "ignoring a RepoTags entry")
                    }
                }
            }
            out.push(DockerImage {
                names,
                config: (cd, cfg_bytes.len() as u64),
                layers,
            });
        }
        Ok(out)
    }
}

/// The image's names from an OCI index entry's annotations (see the module doc).
fn names_from_annotations(
    archive: &Archive<'_>,
    ann: Option<&BTreeMap<String, String>>,
) -> Vec<String> {
    let Some(a) = ann else { return Vec::new() };
    let full = a.get(spec::ANNOTATION_CONTAINERD_NAME);
    let refname = a.get(spec::ANNOTATION_REF_NAME);
    let name = match (full, refname) {
        (Some(f), Some(r)) if reference::valid_tag(r) && !r.contains(':') => {
            Reference::parse_normalized(f)
                .and_then(|p| reference::normalize_reference(&format!("{}:{r}", p.repository())))
        }
        (Some(f), _) => reference::normalize_reference(f),
        (None, Some(r)) => reference::normalize_reference(r),
        (None, None) => return Vec::new(),
    };
    match name {
        Ok(n) => vec![n],
        Err(e) => {
            tracing::warn!(archive = %archive.path.display(), error = %e, "ignoring an image name");
            Vec::new()
        }
    }
}

/// Imports the archive's images into `store` (whose shared lock the caller holds).
pub(crate) fn import(
    store: &ImageStore,
    path: &Path,
    platform: &Platform,
) -> Result<Vec<Imported>, ImageError> {
    let archive = Archive::open(path)?;
    let mut scan = Scan::default();
    archive.walk(&mut scan)?;
    // The layout's directory: where the shallowest index.json / manifest.json is.
    let marker = |name: &str| {
        scan.members
            .keys()
            .filter(|p| p.rsplit('/').next() == Some(name))
            .min_by_key(|p| (p.matches('/').count(), (*p).clone()))
            .cloned()
    };
    let (index, manifest) = (marker("index.json"), marker("manifest.json"));
    let depth = |p: &Option<String>| p.as_ref().map(|p| p.matches('/').count());
    let use_oci = match (depth(&index), depth(&manifest)) {
        (Some(i), Some(m)) => i <= m,
        (Some(_), None) => true,
        (None, Some(_)) => false,
        (None, None) => {
            return Err(archive.err(
                "neither index.json (OCI image layout) nor manifest.json (docker save) found",
            ))
        }
    };
    let prefix = parent(
        if use_oci {
            index.as_deref()
        } else {
            manifest.as_deref()
        }
        .unwrap_or(""),
    )
    .to_string();
    let mut planner = Planner {
        archive: &archive,
        store,
        platform,
        scan: &scan,
        prefix,
        needed: BTreeMap::new(),
    };
    let (oci, docker) = if use_oci {
        (planner.oci()?, Vec::new())
    } else {
        (Vec::new(), planner.docker()?)
    };
    let needed = std::mem::take(&mut planner.needed);
    let mut fetch = Fetch {
        store,
        needed: &needed,
        got: HashMap::new(),
    };
    if !needed.is_empty() {
        archive.walk(&mut fetch)?;
        if let Some(missing) = needed.keys().find(|k| !fetch.got.contains_key(*k)) {
            return Err(archive.err(format!("{missing} could not be read")));
        }
    }
    let mut out = oci;
    for img in docker {
        let mut layers = Vec::with_capacity(img.layers.len());
        for src in &img.layers {
            let d = match src {
                LayerSource::Stored(d) => d.clone(),
                LayerSource::Member(m) => fetch
                    .got
                    .get(m)
                    .cloned()
                    .ok_or_else(|| archive.err(format!("{m} could not be read")))?,
            };
            layers.push(layer_descriptor(store, &d)?);
        }
        let manifest = spec::Manifest {
            schema_version: 2,
            media_type: Some(spec::MT_OCI_MANIFEST.to_string()),
            config: Descriptor {
                media_type: spec::MT_OCI_CONFIG.to_string(),
                digest: img.config.0.to_string(),
                size: img.config.1,
                platform: None,
                annotations: None,
            },
            layers,
        };
        let bytes = serde_json::to_vec(&manifest).map_err(|e| archive.err(e.to_string()))?;
        let md = Digest::of(&bytes);
        store.write_blob_locked(&md, &bytes[..])?;
        out.push(Imported {
            names: img.names,
            target: md,
        });
    }
    if out.is_empty() {
        return Err(archive.err(format!("no container image for {platform}")));
    }
    Ok(out)
}

/// A layer descriptor for a stored blob; the media type comes from its first bytes.
fn layer_descriptor(store: &ImageStore, d: &Digest) -> Result<Descriptor, ImageError> {
    let path = store.blob_path(d);
    let ctx = format!("reading {}", path.display());
    let mut f = File::open(&path).map_err(ImageError::io(ctx.clone()))?;
    let size = f.metadata().map_err(ImageError::io(ctx.clone()))?.len();
    let mut head = Vec::with_capacity(4);
    f.by_ref()
        .take(4)
        .read_to_end(&mut head)
        .map_err(ImageError::io(ctx))?;
    Ok(Descriptor {
        media_type: spec::layer_media_type(spec::sniff_compression(&head)).to_string(),
        digest: d.to_string(),
        size,
        platform: None,
        annotations: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths() {
        assert_eq!(norm("./blobs/sha256/x"), "blobs/sha256/x");
        assert_eq!(norm("/a/./b/../c/"), "a/c");
        assert_eq!(join("abc", "../def/layer.tar"), "def/layer.tar");
        assert_eq!(join("", "x.json"), "x.json");
        assert_eq!(join("oci", "/index.json"), "index.json");
        assert_eq!(parent("a/b/c"), "a/b");
        assert_eq!(parent("c"), "");
    }
}
