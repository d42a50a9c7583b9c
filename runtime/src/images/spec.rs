//! The OCI / Docker image formats the store reads: descriptors, indexes (manifest lists),
//! manifests and image configs, parsed leniently (Docker's configs have `null`s and extra
//! fields), media types, and the choice of the host platform's manifest in an index.

use super::digest::Digest;
use super::{ImageConfig, ImageError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub(crate) const MT_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const MT_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const MT_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const MT_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const MT_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const MT_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub(crate) const MT_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub(crate) const MT_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub(crate) const MT_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

pub(crate) const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub(crate) const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of this machine (Go's GOARCH names).
    pub(crate) fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "powerpc64" => ("ppc64", None),
            "riscv64" => ("riscv64", None),
            "s390x" => ("s390x", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform {
            architecture: architecture.to_string(),
            os: "linux".to_string(),
            variant: variant.map(str::to_string),
        }
    }

    pub(crate) fn matches(&self, other: &Platform) -> bool {
        self.os == other.os && self.architecture == other.architecture
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Index {
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// A manifest-like blob: an image manifest or an index.
pub(crate) enum Parsed {
    Index(Index),
    Manifest(Manifest),
}

fn bad(what: &'static str, digest: &Digest, reason: impl ToString) -> ImageError {
    ImageError::InvalidContent {
        what,
        digest: digest.to_string(),
        reason: reason.to_string(),
    }
}

/// Tells an index from a manifest by media type or, when absent, by shape.
pub(crate) fn parse_manifest_or_index(digest: &Digest, bytes: &[u8]) -> Result<Parsed, ImageError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad("manifest", digest, e))?;
    if v.get("schemaVersion").and_then(Value::as_u64) == Some(1) {
        return Err(ImageError::Unsupported(format!(
            "{digest}: Docker image manifest schema 1"
        )));
    }
    let mt = v.get("mediaType").and_then(Value::as_str).unwrap_or("");
    let is_index = match mt {
        MT_OCI_INDEX | MT_DOCKER_LIST => true,
        MT_OCI_MANIFEST | MT_DOCKER_MANIFEST => false,
        _ => v.get("manifests").is_some_and(Value::is_array) && v.get("config").is_none(),
    };
    if is_index {
        serde_json::from_value(v)
            .map(Parsed::Index)
            .map_err(|e| bad("index", digest, e))
    } else {
        serde_json::from_value(v)
            .map(Parsed::Manifest)
            .map_err(|e| bad("manifest", digest, e))
    }
}

/// Whether a manifest describes a container image (not a signature, SBOM or other artifact).
pub(crate) fn is_image_manifest(m: &Manifest) -> bool {
    matches!(
        m.config.media_type.as_str(),
        MT_OCI_CONFIG | MT_DOCKER_CONFIG | ""
    )
}

/// Picks the manifest for `platform` from an index: an exact match (with variant) first, then
/// os/architecture, then an entry without platform if it is the only candidate.
pub(crate) fn select_platform<'a>(index: &'a Index, platform: &Platform) -> Option<&'a Descriptor> {
    let candidates: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| {
            !matches!(
                d.annotations
                    .as_ref()
                    .and_then(|a| a.get("vnd.docker.reference.type"))
                    .map(String::as_str),
                Some("attestation-manifest")
            )
        })
        .collect();
    let matching: Vec<&Descriptor> = candidates
        .iter()
        .copied()
        .filter(|d| d.platform.as_ref().is_some_and(|dp| dp.matches(platform)))
        .collect();
    matching
        .iter()
        .copied()
        .find(|d| {
            let v = d.platform.as_ref().and_then(|p| p.variant.as_deref());
            v.is_none() || v == platform.variant.as_deref()
        })
        .or_else(|| matching.first().copied())
        .or_else(|| {
            let unplatformed: Vec<_> = candidates.iter().filter(|d| d.platform.is_none()).collect();
            (unplatformed.len() == 1).then(|| *unplatformed[0])
        })
}

/// What the store needs from an image config.
pub(crate) struct ParsedConfig {
    pub config: ImageConfig,
    pub diff_ids: Vec<Digest>,
}

fn strings(v: Option<&Value>) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or("not a string".to_string())
            })
            .collect(),
        // Docker once allowed a plain string here.
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(_) => Err("not a list of strings".to_string()),
    }
}

fn string(v: Option<&Value>) -> Result<String, String> {
    match v {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err("not a string".to_string()),
    }
}

/// Parses an image config (OCI or Docker), validating `rootfs.diff_ids`.
pub(crate) fn parse_config(digest: &Digest, bytes: &[u8]) -> Result<ParsedConfig, ImageError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad("image config", digest, e))?;
    if !v.is_object() {
        return Err(bad("image config", digest, "not a JSON object"));
    }
    let c = v.get("config").filter(|c| c.is_object());
    let field = |name: &str| c.and_then(|c| c.get(name));
    let wrap = |name: &'static str| {
        move |e: String| bad("image config", digest, format!("config.{name}: {e}"))
    };
    let mut exposed_ports: Vec<String> = match field("ExposedPorts") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => m.keys().cloned().collect(),
        Some(_) => return Err(wrap("ExposedPorts")("not an object".into())),
    };
    exposed_ports.sort();
    let mut labels = BTreeMap::new();
    match field("Labels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                labels.insert(k.clone(), string(Some(v)).map_err(wrap("Labels"))?);
            }
        }
        Some(_) => return Err(wrap("Labels")("not an object".into())),
    }
    let config = ImageConfig {
        entrypoint: strings(field("Entrypoint")).map_err(wrap("Entrypoint"))?,
        cmd: strings(field("Cmd")).map_err(wrap("Cmd"))?,
        env: strings(field("Env")).map_err(wrap("Env"))?,
        working_dir: string(field("WorkingDir")).map_err(wrap("WorkingDir"))?,
        user: string(field("User")).map_err(wrap("User"))?,
        exposed_ports,
        labels,
    };
    let rootfs = v
        .get("rootfs")
        .ok_or_else(|| bad("image config", digest, "no rootfs"))?;
    if rootfs.get("type").and_then(Value::as_str) != Some("layers") {
        return Err(bad("image config", digest, "rootfs.type is not \"layers\""));
    }
    let diff_ids = match rootfs.get("diff_ids") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .ok_or_else(|| bad("image config", digest, "diff_id is not a string"))
                    .and_then(Digest::parse)
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("image config", digest, "rootfs.diff_ids is not a list")),
    };
    Ok(ParsedConfig { config, diff_ids })
}

/// Layer compression, from the first bytes of the blob (media types are not trusted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

pub(crate) fn sniff_compression(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

pub(crate) fn layer_media_type(c: Compression) -> &'static str {
    match c {
        Compression::None => MT_OCI_LAYER,
        Compression::Gzip => MT_OCI_LAYER_GZIP,
        Compression::Zstd => MT_OCI_LAYER_ZSTD,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(arch: &str, variant: Option<&str>, n: u8) -> Descriptor {
        Descriptor {
            media_type: MT_OCI_MANIFEST.into(),
            digest: format!("sha256:{}", format!("{n:02x}").repeat(32)),
            size: 1,
            platform: Some(Platform {
                architecture: arch.into(),
                os: "linux".into(),
                variant: variant.map(Into::into),
            }),
            annotations: None,
        }
    }

    #[test]
    fn platform_selection() {
        let arm64 = Platform {
            architecture: "arm64".into(),
            os: "linux".into(),
            variant: Some("v8".into()),
        };
        let idx = Index {
            manifests: vec![
                desc("arm", Some("v6"), 1),
                desc("amd64", None, 2),
                desc("arm64", Some("v8"), 3),
                desc("arm", Some("v7"), 4),
            ],
        };
        let amd64 = Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            variant: None,
        };
        assert!(select_platform(&idx, &amd64)
            .unwrap()
            .digest
            .contains("0202"));
        assert!(select_platform(&idx, &arm64)
            .unwrap()
            .digest
            .contains("0303"));
        let arm7 = Platform {
            architecture: "arm".into(),
            os: "linux".into(),
            variant: Some("v7".into()),
        };
        assert!(select_platform(&idx, &arm7)
            .unwrap()
            .digest
            .contains("0404"));
        let s390 = Platform {
            architecture: "s390x".into(),
            os: "linux".into(),
            variant: None,
        };
        assert!(select_platform(&idx, &s390).is_none());
        assert_eq!(Platform::host().os, "linux");
    }

    #[test]
    fn docker_config_with_nulls() {
        let cfg = br#"{"architecture":"amd64","os":"linux","config":{"Env":null,"Cmd":["sh"],
            "Entrypoint":null,"ExposedPorts":{"80/tcp":{},"53/udp":{}},"Labels":{"a":"b"},
            "User":"1000:1000","WorkingDir":"/w"},"container_config":{},
            "rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]}}"#;
        let p = parse_config(&Digest::of(cfg), cfg).unwrap();
        assert_eq!(p.config.cmd, vec!["sh"]);
        assert!(p.config.env.is_empty());
        assert_eq!(p.config.exposed_ports, vec!["53/udp", "80/tcp"]);
        assert_eq!(p.config.user, "1000:1000");
        assert_eq!(p.config.working_dir, "/w");
        assert_eq!(p.config.labels.get("a").map(String::as_str), Some("b"));
        assert_eq!(p.diff_ids.len(), 1);
        let bad_cfg = br#"{"rootfs":{"type":"layers","diff_ids":["sha256:zz"]}}"#;
        assert!(parse_config(&Digest::of(bad_cfg), bad_cfg).is_err());
        let no_cfg = br#"{"rootfs":{"type":"layers"}}"#;
        assert_eq!(
            parse_config(&Digest::of(no_cfg), no_cfg).unwrap().config,
            ImageConfig::default()
        );
    }
}
