//! Key → file payloads of configMaps and secrets (kubelet's `MakePayload`): all keys, or only
//! the `items` (key, path, mode), `defaultMode` for the rest; configMap `binaryData` and secret
//! `data` are base64-decoded. A missing object or key is an error unless the source is optional.

use super::atomic_writer::{FileProjection, Payload};
use super::error::VolumeError;
use base64::Engine;
use serde_json::Value;

/// What a volume source asks of one object.
pub(crate) struct KeySelection<'a> {
    /// Object name (`name` of a configMap source, `secretName`/`name` of a secret source).
    pub(crate) name: &'a str,
    pub(crate) items: &'a [Value],
    pub(crate) default_mode: u32,
    pub(crate) optional: bool,
}

/// The files of a configMap source. `object` is `None` when it does not exist.
pub(crate) fn configmap_payload(
    object: Option<&Value>,
    sel: &KeySelection<'_>,
) -> Result<Payload, VolumeError> {
    let Some(cm) = object else {
        return if sel.optional {
            Ok(Payload::new())
        } else {
            Err(VolumeError::ConfigMapNotFound(sel.name.to_string()))
        };
    };
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(data) = cm.get("data").and_then(Value::as_object) {
        for (k, v) in data {
            entries.push((k.clone(), v.as_str().unwrap_or("").as_bytes().to_vec()));
        }
    }
    if let Some(data) = cm.get("binaryData").and_then(Value::as_object) {
        for (k, v) in data {
            entries.push((k.clone(), decode("configmap", sel.name, k, v)?));
        }
    }
    select(entries, sel, VolumeError::ConfigMapKeyMissing)
}

/// The files of a secret source. `object` is `None` when it does not exist.
pub(crate) fn secret_payload(
    object: Option<&Value>,
    sel: &KeySelection<'_>,
) -> Result<Payload, VolumeError> {
    let Some(secret) = object else {
        return if sel.optional {
            Ok(Payload::new())
        } else {
            Err(VolumeError::SecretNotFound(sel.name.to_string()))
        };
    };
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(data) = secret.get("data").and_then(Value::as_object) {
        for (k, v) in data {
            entries.push((k.clone(), decode("secret", sel.name, k, v)?));
        }
    }
    select(entries, sel, VolumeError::SecretKeyMissing)
}

fn decode(kind: &'static str, name: &str, key: &str, v: &Value) -> Result<Vec<u8>, VolumeError> {
    let s = v.as_str().unwrap_or("");
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| VolumeError::InvalidData {
            kind,
            name: name.to_string(),
            key: key.to_string(),
        })
}

fn select(
    entries: Vec<(String, Vec<u8>)>,
    sel: &KeySelection<'_>,
    missing: fn(String) -> VolumeError,
) -> Result<Payload, VolumeError> {
    let mut out = Payload::new();
    if sel.items.is_empty() {
        for (k, data) in entries {
            out.insert(
                k,
                FileProjection {
                    data,
                    mode: sel.default_mode,
                },
            );
        }
        return Ok(out);
    }
    for item in sel.items {
        let key = item.get("key").and_then(Value::as_str).unwrap_or("");
        let Some((_, data)) = entries.iter().find(|(k, _)| k == key) else {
            if sel.optional {
                continue;
            }
            return Err(missing(key.to_string()));
        };
        let path = item
            .get("path")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
            .unwrap_or(key);
        let mode = super::mode_of(item.get("mode")).unwrap_or(sel.default_mode);
        out.insert(
            path.to_string(),
            FileProjection {
                data: data.clone(),
                mode,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel<'a>(items: &'a [Value], optional: bool) -> KeySelection<'a> {
        KeySelection {
            name: "cfg",
            items,
            default_mode: 0o644,
            optional,
        }
    }

    #[test]
    fn configmap_keys_items_and_binary() {
        let cm = json!({"data": {"a": "A", "b": "B"}, "binaryData": {"bin": "AAEC"}});
        let p = configmap_payload(Some(&cm), &sel(&[], false)).expect("all keys");
        assert_eq!(p.len(), 3);
        assert_eq!(p["bin"].data, vec![0, 1, 2]);
        let items = [json!({"key": "a", "path": "dir/x", "mode": 0o400})];
        let p = configmap_payload(Some(&cm), &sel(&items, false)).expect("items");
        assert_eq!(p.len(), 1);
        assert_eq!(p["dir/x"].mode, 0o400);
        let items = [json!({"key": "zz", "path": "z"})];
        let e = configmap_payload(Some(&cm), &sel(&items, false)).expect_err("missing key");
        assert_eq!(
            e.to_string(),
            "configmap references non-existent config key: zz"
        );
        assert!(configmap_payload(Some(&cm), &sel(&items, true))
            .expect("optional")
            .is_empty());
        let e = configmap_payload(None, &sel(&[], false)).expect_err("missing");
        assert_eq!(e.to_string(), "configmap \"cfg\" not found");
    }

    #[test]
    fn secret_decodes_and_rejects_garbage() {
        let s = json!({"data": {"pw": "aHVudGVyMg=="}});
        let p = secret_payload(Some(&s), &sel(&[], false)).expect("secret");
        assert_eq!(p["pw"].data, b"hunter2");
        let bad = json!({"data": {"pw": "!!"}});
        assert!(secret_payload(Some(&bad), &sel(&[], false)).is_err());
        let items = [json!({"key": "nope", "path": "n"})];
        let e = secret_payload(Some(&s), &sel(&items, false)).expect_err("missing key");
        assert_eq!(
            e.to_string(),
            "secret references non-existent secret key: nope"
        );
    }
}
