//! `VolumeError`: every way setting up, mounting or removing pod volumes can fail. Messages are
//! worded as kubelet words them in events (`configmap "x" not found`, `hostPath type check
//! failed: /x is not a directory, it's a File`, ...); errors from `setup_pod_volumes` come wrapped
//! in [`VolumeError::SetUp`], which reads exactly like kubelet's `FailedMount` event message.

use std::path::PathBuf;

/// Errors of the volume manager.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A volume of the pod could not be set up; `source` is the bare reason.
    #[error("MountVolume.SetUp failed for volume \"{volume}\" : {source}")]
    SetUp {
        volume: String,
        #[source]
        source: Box<VolumeError>,
    },
    /// Several independent failures (projected and downwardAPI volumes collect them all).
    #[error("{}", aggregate(.0))]
    Multiple(Vec<VolumeError>),

    // --- API objects ---
    #[error("configmap \"{0}\" not found")]
    ConfigMapNotFound(String),
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    #[error("configmap references non-existent config key: {0}")]
    ConfigMapKeyMissing(String),
    #[error("secret references non-existent secret key: {0}")]
    SecretKeyMissing(String),
    #[error("{kind} \"{name}\" has invalid base64 data for key \"{key}\"")]
    InvalidData {
        kind: &'static str,
        name: String,
        key: String,
    },

    // --- hostPath ---
    #[error("invalid HostPath `{0}`: must not contain '..'")]
    HostPathBacksteps(String),
    #[error("hostPath {0} doesn't exist")]
    HostPathMissing(String),
    #[error("hostPath type check failed: {path} is not a {expected}, it's a {actual}")]
    HostPathTypeMismatch {
        path: String,
        expected: &'static str,
        actual: &'static str,
    },
    #[error(
        "hostPath type check failed, {path} is not a {expected}, unable to determine its type: \
         only recognise file, directory, socket, block device and character device"
    )]
    HostPathUnknownType {
        path: String,
        expected: &'static str,
    },
    #[error("{0} is an invalid volume type")]
    InvalidHostPathType(String),

    // --- downward API ---
    #[error("unsupported fieldPath: {0}")]
    UnsupportedFieldPath(String),
    #[error("unsupported container resource : {0}")]
    UnsupportedResource(String),
    #[error("container {0} not found")]
    ContainerNotFound(String),
    #[error("invalid quantity {value:?} for {what}")]
    InvalidQuantity { what: String, value: String },

    // --- volume types and media ---
    #[error("{0} projection is not supported yet")]
    ProjectionUnsupported(&'static str),
    #[error("volume type {0} is not supported yet")]
    UnsupportedVolumeType(String),
    /// A `persistentVolumeClaim` volume whose claim is not usable (not found, unbound, being
    /// deleted, or its volume does not point back at it).
    #[error("{0}")]
    Claim(String),
    #[error("unknown storage medium \"{0}\"")]
    UnknownMedium(String),
    #[error("invalid volume spec: {0}")]
    InvalidSpec(String),
    /// AtomicWriter path validation (`invalid path: must not contain '..': a/../b`).
    #[error("invalid path: {0}")]
    InvalidPath(String),

    // --- volumeMounts ---
    #[error("cannot find volume \"{volume}\" to mount into container \"{container}\"")]
    UnknownVolume { volume: String, container: String },
    #[error("error SubPath `{0}` must not be an absolute path")]
    SubPathAbsolute(String),
    #[error("unable to provision SubPath `{0}`: must not contain '..'")]
    SubPathBacksteps(String),
    #[error("missing value for {0}")]
    SubPathExprMissing(String),
    #[error("subpath \"{path}\" not within volume path \"{volume_path}\"")]
    SubPathEscape { path: PathBuf, volume_path: PathBuf },
    #[error("failed to create subPath directory for volumeMount \"{mount}\" of container \"{container}\"")]
    SubPathCreate { mount: String, container: String },
    #[error("invalid mount for container: {0}")]
    Oci(String),

    // --- system ---
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("refusing to remove {0}: something is still mounted below it")]
    StillMounted(PathBuf),
}

impl VolumeError {
    /// An I/O error with a description of what was being done (`mkdir /x`).
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        VolumeError::Io {
            context: context.into(),
            source,
        }
    }

    /// A nix error as an I/O error.
    pub(crate) fn sys(context: impl Into<String>, errno: nix::errno::Errno) -> Self {
        Self::io(context, std::io::Error::from(errno))
    }

    /// One error, or all of them the way kubelet's aggregate errors print (`[a, b]`).
    pub(crate) fn from_list(mut errors: Vec<VolumeError>) -> Option<Self> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(VolumeError::Multiple(errors)),
        }
    }
}

/// kubelet's `utilerrors.NewAggregate(...).Error()`: duplicates dropped, `[a, b]` for several.
fn aggregate(errors: &[VolumeError]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errors {
        let msg = e.to_string();
        if !seen.contains(&msg) {
            seen.push(msg);
        }
    }
    if seen.len() == 1 {
        return seen.remove(0);
    }
    format!("[{}]", seen.join(", "))
}
