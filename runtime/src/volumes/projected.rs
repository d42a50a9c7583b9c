//! Projected volumes: configMap, secret and downwardAPI sources merged into one payload (later
//! sources win on a path clash, as in kubelet), with the volume's `defaultMode`.
//! `serviceAccountToken` is written from `VolumeSources::service_account_token` when the caller
//! has one and is otherwise "not supported yet"; `clusterTrustBundle` and `podCertificate` are
//! not supported yet. Failures of all sources are reported together.

use super::atomic_writer::{FileProjection, Payload};
use super::error::VolumeError;
use super::keyed::{self, KeySelection};
use super::{downward, VolumeSources};
use serde_json::Value;

/// The merged files of a `projected` volume source.
pub(crate) fn payload(
    pod: &Value,
    source: &Value,
    default_mode: u32,
    src: &VolumeSources,
) -> Result<Payload, VolumeError> {
    let mut out = Payload::new();
    let mut errors = Vec::new();
    let sources = source
        .get("sources")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for s in sources {
        let part = if let Some(cm) = s.get("configMap") {
            let name = cm.get("name").and_then(Value::as_str).unwrap_or("");
            keyed::configmap_payload(
                src.configmaps.get(name),
                &KeySelection {
                    name,
                    items: super::items_of(cm),
                    default_mode,
                    optional: super::optional_of(cm),
                },
            )
        } else if let Some(sec) = s.get("secret") {
            let name = sec.get("name").and_then(Value::as_str).unwrap_or("");
            keyed::secret_payload(
                src.secrets.get(name),
                &KeySelection {
                    name,
                    items: super::items_of(sec),
                    default_mode,
                    optional: super::optional_of(sec),
                },
            )
        } else if let Some(d) = s.get("downwardAPI") {
            downward::payload(pod, super::items_of(d), default_mode, src)
        } else if let Some(t) = s.get("serviceAccountToken") {
            token_payload(t, default_mode, src)
        } else if s.get("clusterTrustBundle").is_some() {
            Err(VolumeError::ProjectionUnsupported("clusterTrustBundle"))
        } else if s.get("podCertificate").is_some() {
            Err(VolumeError::ProjectionUnsupported("podCertificate"))
        } else {
            Err(VolumeError::InvalidSpec(
                "projected volume source of an unknown kind".into(),
            ))
        };
        match part {
            Ok(p) => out.extend(p),
            Err(e) => errors.push(e),
        }
    }
    match VolumeError::from_list(errors) {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

fn token_payload(
    t: &Value,
    default_mode: u32,
    src: &VolumeSources,
) -> Result<Payload, VolumeError> {
    let Some(token) = &src.service_account_token else {
        return Err(VolumeError::ProjectionUnsupported("serviceAccountToken"));
    };
    let path = t.get("path").and_then(Value::as_str).unwrap_or("token");
    let mut p = Payload::new();
    p.insert(
        path.to_string(),
        FileProjection {
            data: token.as_bytes().to_vec(),
            mode: default_mode,
        },
    );
    Ok(p)
}
