//! Pod volumes, as kubelet sets them up: `emptyDir` (disk, or `medium: Memory` on a tmpfs),
//! `hostPath`, `configMap`, `secret`, `downwardAPI`, `projected` and `persistentVolumeClaim`
//! (the bound volume's hostPath or local path, see `pvc`), and the bind mounts a
//! container's `volumeMounts` become (with `subPath`/`subPathExpr`, `readOnly`, propagation).
//!
//! Layout (as kubelet's `/var/lib/kubelet/pods/<uid>`): `<pod_dir>/volumes/kubernetes.io~<plugin>/
//! <volume>` for everything but hostPath (used in place), `<pod_dir>/volume-subpaths/<volume>/
//! <container>/<index>` for subPath binds. A volume lives as long as the pod directory: setup is
//! idempotent (emptyDirs and their tmpfs are reused, so data survives container and agent
//! restarts; configMap/secret/downwardAPI/projected contents are refreshed atomically through a
//! `..data` symlink swap), and `teardown_pod_volumes` unmounts and removes it all.
//!
//! Secrets and projected volumes are written to a tmpfs (never to disk), like kubelet's wrapped
//! memory emptyDir; configMap and downwardAPI volumes live on disk. `fsGroup` is applied to
//! emptyDir, configMap, secret, downwardAPI and projected volumes (group, `g+rw`/`g+r`,
//! setgid directories). Not supported yet: hugepages emptyDirs, emptyDir `sizeLimit` on disk
//! (no eviction), projected `clusterTrustBundle`/`podCertificate`, projected
//! `serviceAccountToken` unless the caller passes a token, `recursiveReadOnly`, and every other
//! volume type (ephemeral, csi, image, nfs, ...; claims bound to such volumes).

mod atomic_writer;
mod container_mounts;
mod downward;
mod emptydir;
mod error;
mod hostpath;
mod keyed;
mod mounts;
mod ownership;
mod projected;
pub mod pvc;
mod subpath;
mod teardown;
#[cfg(test)]
mod tests;

pub use error::VolumeError;
pub use pvc::{fetch_claims, Claim, CLAIM_WAIT};

use keyed::KeySelection;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Mode of projected files when the source sets no `defaultMode` (0644).
pub const DEFAULT_MODE: u32 = 0o644;

/// Everything volumes need from the API, fetched by the caller before calling in. Objects absent
/// from the maps are taken as not found.
#[derive(Clone, Default)]
pub struct VolumeSources {
    /// ConfigMaps of the pod's namespace by name (full objects: `data`, `binaryData`).
    pub configmaps: HashMap<String, Value>,
    /// Secrets of the pod's namespace by name (full objects: base64 `data`).
    pub secrets: HashMap<String, Value>,
    /// The pod's IP (`status.podIP`); falls back to the pod's status.
    pub pod_ip: Option<String>,
    /// This node (`spec.nodeName` when the pod has none).
    pub node_name: String,
    /// Token for projected `serviceAccountToken` sources; `None` → "not supported yet" error.
    pub service_account_token: Option<String>,
    /// The node's IP (`status.hostIP`); falls back to the pod's status.
    pub host_ip: Option<String>,
    /// Node allocatable quantities by resource (`cpu`, `memory`, `ephemeral-storage`): the
    /// default of unset limits in `resourceFieldRef`, and the cap of memory emptyDirs.
    pub node_allocatable: HashMap<String, String>,
    /// The claims of `persistentVolumeClaim` volumes by claim name ([`fetch_claims`]).
    pub claims: HashMap<String, Claim>,
}

impl std::fmt::Debug for VolumeSources {
    /// Names only: secret data and tokens must not end up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut cms: Vec<&String> = self.configmaps.keys().collect();
        cms.sort();
        let mut secrets: Vec<&String> = self.secrets.keys().collect();
        secrets.sort();
        f.debug_struct("VolumeSources")
            .field("configmaps", &cms)
            .field("secrets", &secrets)
            .field("pod_ip", &self.pod_ip)
            .field("node_name", &self.node_name)
            .field(
                "service_account_token",
                &self.service_account_token.as_ref().map(|_| "<redacted>"),
            )
            .field("host_ip", &self.host_ip)
            .field("node_allocatable", &self.node_allocatable)
            .field("claims", &self.claims.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The volumes of one pod, set up.
#[derive(Debug, Clone)]
pub struct PodVolumes {
    pub pod_dir: PathBuf,
    /// By volume name.
    pub volumes: HashMap<String, PreparedVolume>,
}

/// One volume, ready to be bind-mounted into containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedVolume {
    pub name: String,
    /// What containers get: the volume directory (or the hostPath).
    pub host_path: PathBuf,
    /// Always mounted read-only (configMap, secret, downwardAPI, projected).
    pub read_only: bool,
    pub kind: VolumeKind,
}

/// The volume types supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeKind {
    /// `memory`: `medium: Memory`, a tmpfs.
    EmptyDir {
        memory: bool,
    },
    HostPath,
    ConfigMap,
    /// On a tmpfs.
    Secret,
    DownwardApi,
    /// On a tmpfs.
    Projected,
    /// The path of the claim's PersistentVolume, used in place.
    PersistentVolumeClaim,
}

/// Object names with whether every reference to them is optional.
pub type ObjectRefs = Vec<(String, bool)>;

/// ConfigMaps and secrets the pod's volumes (and projected sources) refer to, each once in
/// order of first mention, with whether every reference is optional. The caller fetches them
/// (from the pod's namespace) into [`VolumeSources`].
pub fn referenced_objects(pod: &Value) -> (ObjectRefs, ObjectRefs) {
    fn add(list: &mut ObjectRefs, name: Option<&str>, optional: bool) {
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return;
        };
        match list.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 &= optional,
            None => list.push((name.to_string(), optional)),
        }
    }
    let mut cms = Vec::new();
    let mut secrets = Vec::new();
    for v in volume_list(pod) {
        if let Some(cm) = v.get("configMap") {
            add(
                &mut cms,
                cm.get("name").and_then(Value::as_str),
                optional_of(cm),
            );
        }
        if let Some(s) = v.get("secret") {
            add(
                &mut secrets,
                s.get("secretName").and_then(Value::as_str),
                optional_of(s),
            );
        }
        let sources = v
            .pointer("/projected/sources")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for s in sources {
            if let Some(cm) = s.get("configMap") {
                add(
                    &mut cms,
                    cm.get("name").and_then(Value::as_str),
                    optional_of(cm),
                );
            }
            if let Some(sec) = s.get("secret") {
                add(
                    &mut secrets,
                    sec.get("name").and_then(Value::as_str),
                    optional_of(sec),
                );
            }
        }
    }
    (cms, secrets)
}

/// Sets up every volume of `pod` under `pod_dir` (`<data-dir>/agent/pods/<uid>`). Idempotent:
/// re-running for the same pod keeps emptyDirs (and their data) and refreshes configMap,
/// secret, downwardAPI and projected contents atomically. The first failing volume stops the
/// setup with [`VolumeError::SetUp`] (kubelet's `FailedMount` message); volumes before it stay.
pub fn setup_pod_volumes(
    pod: &Value,
    pod_dir: &Path,
    src: &VolumeSources,
) -> Result<PodVolumes, VolumeError> {
    let fs_group = pod
        .pointer("/spec/securityContext/fsGroup")
        .and_then(Value::as_u64)
        .and_then(|g| u32::try_from(g).ok());
    let mut volumes = HashMap::new();
    for v in volume_list(pod) {
        let name = v.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(VolumeError::InvalidSpec(format!(
                "invalid volume name {name:?}"
            )));
        }
        let prepared =
            setup_volume(pod, pod_dir, name, v, fs_group, src).map_err(|e| VolumeError::SetUp {
                volume: name.to_string(),
                source: Box::new(e),
            })?;
        volumes.insert(name.to_string(), prepared);
    }
    Ok(PodVolumes {
        pod_dir: pod_dir.to_path_buf(),
        volumes,
    })
}

/// The container's `volumeMounts` as OCI bind mounts (`rbind`, propagation, `ro`/`rw`). subPath
/// mounts are bind-mounted safely below the pod directory first (see the `subpath` module).
/// A mount of a volume the pod does not have is an error.
pub fn container_mounts(
    pod: &Value,
    container: &Value,
    vols: &PodVolumes,
) -> Result<Vec<oci_spec::runtime::Mount>, VolumeError> {
    container_mounts::build(pod, container, vols)
}

/// Unmounts everything at or below `pod_dir` (memory emptyDirs, secret/projected tmpfs, subPath
/// binds) and removes the directory, without following symlinks or crossing into other
/// filesystems (hostPath targets are never touched). Idempotent.
pub fn teardown_pod_volumes(pod_dir: &Path) -> Result<(), VolumeError> {
    teardown::teardown(pod_dir)
}

/// Tears down every pod directory in `pods_root` whose name is not a live pod UID; returns the
/// UIDs removed, sorted. All orphans are attempted; failures are reported together.
pub fn cleanup_orphans(
    pods_root: &Path,
    live_uids: &HashSet<String>,
) -> Result<Vec<String>, VolumeError> {
    teardown::cleanup_orphans(pods_root, live_uids)
}

const SOURCE_KINDS: [&str; 7] = [
    "emptyDir",
    "hostPath",
    "configMap",
    "secret",
    "downwardAPI",
    "projected",
    "persistentVolumeClaim",
];

fn setup_volume(
    pod: &Value,
    pod_dir: &Path,
    name: &str,
    v: &Value,
    fs_group: Option<u32>,
    src: &VolumeSources,
) -> Result<PreparedVolume, VolumeError> {
    let kind = match SOURCE_KINDS.iter().find(|k| v.get(**k).is_some()) {
        Some(k) => *k,
        None => match v
            .as_object()
            .and_then(|o| o.keys().find(|k| k.as_str() != "name"))
        {
            Some(other) => return Err(VolumeError::UnsupportedVolumeType(other.clone())),
            // No source at all defaults to an emptyDir, as in kubelet.
            None => "emptyDir",
        },
    };
    let source = v
        .get(kind)
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    let dir_of = |plugin: &str| pod_dir.join("volumes").join(plugin).join(name);
    let prepared = |host_path: PathBuf, read_only: bool, kind: VolumeKind| PreparedVolume {
        name: name.to_string(),
        host_path,
        read_only,
        kind,
    };
    let default_mode = mode_of(source.get("defaultMode")).unwrap_or(DEFAULT_MODE);
    match kind {
        "emptyDir" => {
            let dir = dir_of("kubernetes.io~empty-dir");
            let memory = emptydir::setup(pod, &dir, &source, fs_group, src)?;
            Ok(prepared(dir, false, VolumeKind::EmptyDir { memory }))
        }
        "hostPath" => Ok(prepared(
            hostpath::setup(&source)?,
            false,
            VolumeKind::HostPath,
        )),
        "configMap" => {
            let cm_name = source.get("name").and_then(Value::as_str).unwrap_or("");
            let payload = keyed::configmap_payload(
                src.configmaps.get(cm_name),
                &KeySelection {
                    name: cm_name,
                    items: items_of(&source),
                    default_mode,
                    optional: optional_of(&source),
                },
            )?;
            let dir = dir_of("kubernetes.io~configmap");
            write_atomic(&dir, &payload, None, fs_group)?;
            Ok(prepared(dir, true, VolumeKind::ConfigMap))
        }
        "secret" => {
            let secret_name = source
                .get("secretName")
                .and_then(Value::as_str)
                .unwrap_or("");
            let payload = keyed::secret_payload(
                src.secrets.get(secret_name),
                &KeySelection {
                    name: secret_name,
                    items: items_of(&source),
                    default_mode,
                    optional: optional_of(&source),
                },
            )?;
            let dir = dir_of("kubernetes.io~secret");
            let size = emptydir::memory_size(pod, None, src)?;
            write_atomic(&dir, &payload, Some(size), fs_group)?;
            Ok(prepared(dir, true, VolumeKind::Secret))
        }
        "persistentVolumeClaim" => {
            let (path, read_only) = pvc::setup(pod_dir, name, &source, src)?;
            Ok(prepared(path, read_only, VolumeKind::PersistentVolumeClaim))
        }
        "downwardAPI" => {
            let payload = downward::payload(pod, items_of(&source), default_mode, src)?;
            let dir = dir_of("kubernetes.io~downward-api");
            write_atomic(&dir, &payload, None, fs_group)?;
            Ok(prepared(dir, true, VolumeKind::DownwardApi))
        }
        _ => {
            let payload = projected::payload(pod, &source, default_mode, src)?;
            let dir = dir_of("kubernetes.io~projected");
            let size = emptydir::memory_size(pod, None, src)?;
            write_atomic(&dir, &payload, Some(size), fs_group)?;
            Ok(prepared(dir, true, VolumeKind::Projected))
        }
    }
}

/// The directory (on disk, or a tmpfs of `memory` size), then the payload.
fn write_atomic(
    dir: &Path,
    payload: &atomic_writer::Payload,
    memory: Option<Option<u64>>,
    fs_group: Option<u32>,
) -> Result<(), VolumeError> {
    match memory {
        Some(size) => {
            emptydir::ensure_tmpfs(dir, size, fs_group, true)?;
        }
        None => {
            if emptydir::ensure_dir(dir)? {
                if let Some(gid) = fs_group {
                    ownership::apply_fs_group(dir, gid, true)?;
                }
            }
        }
    }
    atomic_writer::write(dir, payload, fs_group)?;
    Ok(())
}

fn volume_list(pod: &Value) -> &[Value] {
    pod.pointer("/spec/volumes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A file mode from JSON (`420`), limited to permission bits.
pub(crate) fn mode_of(v: Option<&Value>) -> Option<u32> {
    v.and_then(Value::as_u64)
        .and_then(|m| u32::try_from(m).ok())
        .map(|m| m & 0o7777)
}

pub(crate) fn items_of(source: &Value) -> &[Value] {
    source
        .get("items")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub(crate) fn optional_of(source: &Value) -> bool {
    source
        .get("optional")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}
