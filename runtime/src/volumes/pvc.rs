//! `persistentVolumeClaim` volumes: the claim is resolved to its bound PersistentVolume and the
//! volume's `hostPath` (created if missing when its type says `DirectoryOrCreate`) or `local`
//! path (must exist) is used in place, like a hostPath, and never removed here (the volume's
//! provisioner or the admin owns the data).
//!
//! [`fetch_claims`] reads claims and volumes through the agent's API client before setup (a
//! claim still unbound is waited for a short while, since a `WaitForFirstConsumer` claim is
//! provisioned when its pod lands on the node); setup itself is synchronous and only looks at
//! what was fetched. Once a claim's volume was set up for a pod, its path is recorded under
//! `<pod_dir>/volumes/kubernetes.io~pvc/<volume>`: a claim that is later being deleted (kept by
//! its protection finalizer) does not take the volume away from the running pod, as in kubelet.

use super::error::VolumeError;
use super::{hostpath, VolumeSources};
use kubelite_core::server::client::{resource, Change, LocalClient};
use kubelite_core::server::status::ApiError;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::Instant;

/// How long [`fetch_claims`] waits for an unbound claim to be bound.
pub const CLAIM_WAIT: Duration = Duration::from_secs(2);

/// What the API says about one claim a pod uses.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// Bound to this PersistentVolume.
    Bound(Value),
    /// Not usable (yet): why, as kubelet says it.
    NotReady(String),
}

fn claim_names(pod: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(n) = v
            .pointer("/persistentVolumeClaim/claimName")
            .and_then(Value::as_str)
        {
            if !n.is_empty() && !out.iter().any(|x| x == n) {
                out.push(n.to_string());
            }
        }
    }
    out
}

fn unbound(pvc: &Value) -> bool {
    pvc.pointer("/status/phase").and_then(Value::as_str) != Some("Bound")
        || pvc
            .pointer("/spec/volumeName")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
}

/// The claims (and their volumes) the pod's volumes use, by claim name. An unbound claim is
/// watched for up to `wait` for its binding.
pub async fn fetch_claims(
    client: &LocalClient,
    pod: &Value,
    wait: Duration,
) -> Result<HashMap<String, Claim>, ApiError> {
    let ns = pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let deadline = Instant::now() + wait;
    let mut out = HashMap::new();
    for name in claim_names(pod) {
        let claim = fetch_one(client, ns, &name, deadline).await?;
        out.insert(name, claim);
    }
    Ok(out)
}

async fn fetch_one(
    client: &LocalClient,
    ns: &str,
    name: &str,
    deadline: Instant,
) -> Result<Claim, ApiError> {
    let pvc_r = resource("", "v1", "persistentvolumeclaims")?;
    let not_found = || {
        Claim::NotReady(format!("error processing PVC {ns}/{name}: failed to fetch PVC from API server: persistentvolumeclaims \"{name}\" not found"))
    };
    let Some(mut pvc) = client.get(pvc_r, Some(ns), name).await? else {
        return Ok(not_found());
    };
    if unbound(&pvc) && Instant::now() < deadline {
        let rv = pvc
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let selector = format!("metadata.name={name}");
        let mut w = client.watch(pvc_r, Some(ns), "", &selector, rv).await?;
        while unbound(&pvc) {
            match tokio::time::timeout_at(deadline, w.next()).await {
                Ok(Some((Change::Deleted, _))) => return Ok(not_found()),
                Ok(Some((_, obj))) => pvc = obj,
                Ok(None) | Err(_) => break,
            }
        }
    }
    resolve(client, ns, &pvc).await
}

/// kubelet's `getPVCExtractPV`: a claim not being deleted, bound to a volume whose claimRef
/// points back at it.
async fn resolve(client: &LocalClient, ns: &str, pvc: &Value) -> Result<Claim, ApiError> {
    let name = pvc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let why = |msg: String| {
        Ok(Claim::NotReady(format!(
            "error processing PVC {ns}/{name}: {msg}"
        )))
    };
    if pvc.pointer("/metadata/deletionTimestamp").is_some() {
        return why("PVC is being deleted".into());
    }
    if unbound(pvc) {
        return why("PVC is not bound".into());
    }
    let pv_name = pvc
        .pointer("/spec/volumeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let pv_r = resource("", "v1", "persistentvolumes")?;
    let Some(pv) = client.get(pv_r, None, pv_name).await? else {
        return why(format!("failed to fetch PV {pv_name} from API server: persistentvolumes \"{pv_name}\" not found"));
    };
    let Some(claim_ref) = pv.pointer("/spec/claimRef").filter(|r| r.is_object()) else {
        return why(format!("found PV object {pv_name} but it has a nil pv.Spec.ClaimRef indicating it is not yet bound to the claim"));
    };
    let ref_uid = claim_ref.get("uid").and_then(Value::as_str).unwrap_or("");
    let uid = pvc
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    if ref_uid != uid {
        return why(format!("found PV object {pv_name} but its pv.Spec.ClaimRef.UID {ref_uid} does not point to claim.UID {uid}"));
    }
    Ok(Claim::Bound(pv))
}

fn record_path(pod_dir: &Path, volume: &str) -> PathBuf {
    pod_dir
        .join("volumes")
        .join("kubernetes.io~pvc")
        .join(volume)
}

/// Sets up one `persistentVolumeClaim` volume; returns the host path and whether the
/// volume is read-only.
pub(crate) fn setup(
    pod_dir: &Path,
    volume: &str,
    source: &Value,
    src: &VolumeSources,
) -> Result<(PathBuf, bool), VolumeError> {
    let read_only = source
        .get("readOnly")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let claim = source
        .get("claimName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let record = record_path(pod_dir, volume);
    let pv = match src.claims.get(claim) {
        Some(Claim::Bound(pv)) => pv,
        other => {
            // Already set up for this pod: it keeps its volume.
            if let Ok(p) = std::fs::read_to_string(&record) {
                return Ok((PathBuf::from(p), read_only));
            }
            let msg = match other {
                Some(Claim::NotReady(m)) => m.clone(),
                _ => format!("persistentvolumeclaim \"{claim}\" not found"),
            };
            return Err(VolumeError::Claim(msg));
        }
    };
    let path = if let Some(hp) = pv.pointer("/spec/hostPath").filter(|h| h.is_object()) {
        hostpath::setup(hp)?
    } else if let Some(p) = pv.pointer("/spec/local/path").and_then(Value::as_str) {
        let path = PathBuf::from(p);
        if !path.is_dir() {
            return Err(VolumeError::HostPathMissing(p.to_string()));
        }
        path
    } else {
        let kind = pv
            .get("spec")
            .and_then(Value::as_object)
            .and_then(|s| {
                s.keys().find(|k| {
                    !matches!(
                        k.as_str(),
                        "accessModes"
                            | "capacity"
                            | "claimRef"
                            | "mountOptions"
                            | "nodeAffinity"
                            | "persistentVolumeReclaimPolicy"
                            | "storageClassName"
                            | "volumeMode"
                            | "volumeAttributesClassName"
                    )
                })
            })
            .cloned()
            .unwrap_or_else(|| "unknown".into());
        return Err(VolumeError::UnsupportedVolumeType(format!(
            "{kind} (PersistentVolume of claim {claim})"
        )));
    };
    if let Some(parent) = record.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| VolumeError::io(format!("mkdir {}", parent.display()), e))?;
    }
    let text = path.display().to_string();
    if std::fs::read_to_string(&record).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(&record, &text)
            .map_err(|e| VolumeError::io(format!("write {}", record.display()), e))?;
    }
    Ok((path, read_only))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn src(claims: Vec<(&str, Claim)>) -> VolumeSources {
        VolumeSources {
            claims: claims
                .into_iter()
                .map(|(n, c)| (n.to_string(), c))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn bound_claim_uses_the_volume_path_and_keeps_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let pod_dir = tmp.path().join("pod");
        let data = tmp.path().join("storage/pvc-1_default_data");
        let pv = json!({"spec": {"hostPath": {"path": data.display().to_string(), "type": "DirectoryOrCreate"},
            "claimRef": {"uid": "u"}}});
        let source = json!({"claimName": "data", "readOnly": true});
        let (path, ro) = setup(
            &pod_dir,
            "vol",
            &source,
            &src(vec![("data", Claim::Bound(pv))]),
        )
        .expect("setup");
        assert_eq!(path, data);
        assert!(ro);
        assert!(data.is_dir(), "DirectoryOrCreate made the directory");
        // The claim is being deleted now: the pod keeps what it had.
        let gone = src(vec![(
            "data",
            Claim::NotReady("PVC is being deleted".into()),
        )]);
        let (again, _) = setup(&pod_dir, "vol", &source, &gone).expect("kept");
        assert_eq!(again, data);
    }

    #[test]
    fn unusable_claims_fail_with_the_reason() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let source = json!({"claimName": "data"});
        let unbound = src(vec![(
            "data",
            Claim::NotReady("error processing PVC default/data: PVC is not bound".into()),
        )]);
        let err = setup(tmp.path(), "vol", &source, &unbound).expect_err("unbound");
        assert_eq!(
            err.to_string(),
            "error processing PVC default/data: PVC is not bound"
        );
        let err = setup(tmp.path(), "vol", &source, &src(vec![])).expect_err("missing");
        assert_eq!(err.to_string(), "persistentvolumeclaim \"data\" not found");
        let nfs =
            json!({"spec": {"nfs": {"server": "s", "path": "/"}, "capacity": {"storage": "1Gi"}}});
        let err = setup(
            tmp.path(),
            "vol",
            &source,
            &src(vec![("data", Claim::Bound(nfs))]),
        )
        .expect_err("nfs");
        assert!(err.to_string().contains("nfs"), "{err}");
    }

    #[test]
    fn claim_names_once_in_order() {
        let pod = json!({"spec": {"volumes": [
            {"name": "a", "persistentVolumeClaim": {"claimName": "x"}},
            {"name": "b", "persistentVolumeClaim": {"claimName": "y"}},
            {"name": "c", "persistentVolumeClaim": {"claimName": "x"}},
            {"name": "d", "emptyDir": {}}]}});
        assert_eq!(claim_names(&pod), vec!["x", "y"]);
    }
}
