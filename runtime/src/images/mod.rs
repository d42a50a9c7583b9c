//! The node's image store: content-addressed blobs, unpacked layers and named references under
//! `<data-dir>/agent/images`, filled from OCI image layout and `docker save` tarballs
//! (`kubelite image import`, or the airgap directory `<data-dir>/images/`) and, later, by a
//! registry puller (`write_blob` + `commit_image`).
//!
//! Layout under the store root:
//! ```text
//! lock                     flock: shared while importing/committing/resolving, exclusive for GC
//! refs.lock                flock: exclusive while repositories.json or a lease is rewritten
//! repositories.json        normalized reference (or id of an unnamed image) -> digests
//! blobs/sha256/<hex>       manifests, indexes, configs, layers; digests verified on write
//! layers/<diff-id hex>/    a layer unpacked once (overlay whiteouts), a read-only lowerdir
//! layers/empty/            the lowerdir of images without layers
//! leases/<hex>.json        layers held by a container (owner); GC never deletes them
//! ```
//! Every file appears by an atomic rename (temporary name first), so a crash never leaves a
//! half-written blob, layer or reference under its final name.
//!
//! In-use protection (the design choice): containers take a *lease* on their image's layers
//! ([`ImageStore::lease`], [`ImageStore::release`]); removing an image untags it and deletes
//! what no reference, lease or caller-provided in-use set
//! ([`ImageStore::remove_unused_layers`]) still needs — like containerd, `rm` of an image that
//! a running container uses succeeds and the container keeps its layers.

mod archive;
mod digest;
mod fsutil;
mod reference;
pub mod rootfs;
mod spec;
mod store;
mod unpack;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use reference::normalize_reference;
pub use store::{ImageStore, IngestGuard};

/// Everything that can go wrong in the image store, the archive importers, layer unpacking and
/// overlay mounts.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        reference: String,
        reason: &'static str,
    },
    #[error("invalid digest {0:?} (expected sha256:<64 lowercase hex digits>)")]
    InvalidDigest(String),
    #[error("content does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("{archive}: {reason}")]
    InvalidArchive { archive: String, reason: String },
    #[error("invalid {what} {digest}: {reason}")]
    InvalidContent {
        what: &'static str,
        digest: String,
        reason: String,
    },
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("{digest}: no manifest for platform {platform}")]
    NoMatchingPlatform { platform: String, digest: String },
    #[error("blob {0} is not in the image store")]
    BlobNotFound(String),
    #[error("{0:?} matches more than one image")]
    Ambiguous(String),
    #[error("unsafe path in layer {layer}: {path:?} ({reason})")]
    UnsafePath {
        layer: String,
        path: String,
        reason: &'static str,
    },
    #[error(
        "invalid overlay path {0:?}: must be absolute and free of ',', ':', '\\\\' and newlines"
    )]
    InvalidMountPath(PathBuf),
    #[error("overlay mount options are {len} bytes, more than the kernel's {limit}: too many layers ({layers})")]
    TooManyLayers {
        len: usize,
        limit: usize,
        layers: usize,
    },
    #[error("mounting overlay on {target:?}: {source}")]
    Mount {
        target: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ImageError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
        let context = context.into();
        move |source| ImageError::Io { context, source }
    }
}

/// The parts of an image's configuration (`config` in the OCI image config) a container needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `NAME=value` strings, in image order.
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    /// `80/tcp`-style keys, sorted.
    pub exposed_ports: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// An image ready to run: its configuration and its unpacked layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The normalized reference it was resolved by (its first name when resolved by id; the id
    /// when it has no name).
    pub reference: String,
    /// `sha256:<hex>` of the config blob (what Kubernetes shows as imageID).
    pub id: String,
    pub config: ImageConfig,
    /// Unpacked layer directories, lowest first (reverse the order for overlay's lowerdir;
    /// [`rootfs::mount_overlay`] takes this order). Shared read-only by every container.
    pub layers: Vec<PathBuf>,
    /// Bytes of the image's blobs in the store (config and layers as stored).
    pub size: u64,
}

/// One line of `kubelite image ls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    /// Normalized reference, or the id for an image without a name.
    pub reference: String,
    pub id: String,
    pub size: u64,
}
