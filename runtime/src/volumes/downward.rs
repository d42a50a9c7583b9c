//! The downward API: pod fields (`fieldRef`) and container resources (`resourceFieldRef`) as
//! file contents, for `downwardAPI` volumes, projected `downwardAPI` sources and the fieldRef env
//! vars used by `subPathExpr`. Maps are printed like kubelet's `fieldpath.FormatMap`: one
//! `key="value"` line per entry, keys sorted, values quoted as Go's `%q`.

use super::atomic_writer::{FileProjection, Payload};
use super::error::VolumeError;
use super::VolumeSources;
use crate::oci::Quantity;
use serde_json::Value;

/// Builds the files of a list of `DownwardAPIVolumeFile` items. Every failing item is reported.
pub(crate) fn payload(
    pod: &Value,
    items: &[Value],
    default_mode: u32,
    src: &VolumeSources,
) -> Result<Payload, VolumeError> {
    let mut errors = Vec::new();
    let mut out = Payload::new();
    for item in items {
        let Some(path) = item.get("path").and_then(Value::as_str) else {
            errors.push(VolumeError::InvalidSpec(
                "downwardAPI item without path".into(),
            ));
            continue;
        };
        let mode = super::mode_of(item.get("mode")).unwrap_or(default_mode);
        let value = if let Some(fr) = item.get("fieldRef") {
            let fp = fr.get("fieldPath").and_then(Value::as_str).unwrap_or("");
            field_value(pod, fp, src)
        } else if let Some(rf) = item.get("resourceFieldRef") {
            resource_value(pod, rf, src)
        } else {
            Err(VolumeError::InvalidSpec(format!(
                "downwardAPI item {path:?} has neither fieldRef nor resourceFieldRef"
            )))
        };
        match value {
            Ok(v) => {
                out.insert(
                    path.to_string(),
                    FileProjection {
                        data: v.into_bytes(),
                        mode,
                    },
                );
            }
            Err(e) => errors.push(e),
        }
    }
    match VolumeError::from_list(errors) {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// `fieldpath.ExtractFieldPathAsString` plus the env-only fields (node name, service account,
/// pod and host IPs).
pub(crate) fn field_value(
    pod: &Value,
    field_path: &str,
    src: &VolumeSources,
) -> Result<String, VolumeError> {
    let meta = pod.get("metadata");
    let str_at = |v: Option<&Value>, key: &str| -> String {
        v.and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    if let Some((map, key)) = subscript(field_path) {
        let m = match map {
            "metadata.labels" => meta.and_then(|m| m.get("labels")),
            "metadata.annotations" => meta.and_then(|m| m.get("annotations")),
            _ => return Err(VolumeError::UnsupportedFieldPath(field_path.to_string())),
        };
        return Ok(str_at(m, key));
    }
    let status = pod.get("status");
    let spec = pod.get("spec");
    Ok(match field_path {
        "metadata.name" => str_at(meta, "name"),
        "metadata.namespace" => str_at(meta, "namespace"),
        "metadata.uid" => str_at(meta, "uid"),
        "metadata.labels" => format_map(meta.and_then(|m| m.get("labels"))),
        "metadata.annotations" => format_map(meta.and_then(|m| m.get("annotations"))),
        "spec.nodeName" => {
            let n = str_at(spec, "nodeName");
            if n.is_empty() {
                src.node_name.clone()
            } else {
                n
            }
        }
        "spec.serviceAccountName" => str_at(spec, "serviceAccountName"),
        "status.podIP" => src
            .pod_ip
            .clone()
            .unwrap_or_else(|| str_at(status, "podIP")),
        "status.podIPs" => match &src.pod_ip {
            Some(ip) => ip.clone(),
            None => ips(status.and_then(|s| s.get("podIPs"))),
        },
        "status.hostIP" => src
            .host_ip
            .clone()
            .unwrap_or_else(|| str_at(status, "hostIP")),
        "status.hostIPs" => match &src.host_ip {
            Some(ip) => ip.clone(),
            None => ips(status.and_then(|s| s.get("hostIPs"))),
        },
        _ => return Err(VolumeError::UnsupportedFieldPath(field_path.to_string())),
    })
}

fn ips(list: Option<&Value>) -> String {
    list.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.get("ip").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// `metadata.labels['key']` → (`metadata.labels`, `key`).
fn subscript(path: &str) -> Option<(&str, &str)> {
    let body = path.strip_suffix("']")?;
    let (map, key) = body.split_once("['")?;
    Some((map, key))
}

/// `fieldpath.FormatMap`: `key="value"` lines in key order, without a final newline.
pub(crate) fn format_map(m: Option<&Value>) -> String {
    let Some(obj) = m.and_then(Value::as_object) else {
        return String::new();
    };
    let mut entries: Vec<(&String, &str)> = obj
        .iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or("")))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
        .iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Go's `strconv.Quote` (`%q`): printable characters as is, the usual escapes, others as
/// `\xNN`, `\uNNNN` or `\UNNNNNNNN`.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            ' ' => out.push(' '),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() || c.is_whitespace() => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `ExtractResourceValueByContainerNameAndNodeAllocatable`: a container's request or limit
/// divided by `divisor` (default 1), rounded up; unset limits (cpu, memory, ephemeral-storage)
/// fall back to node allocatable.
pub(crate) fn resource_value(
    pod: &Value,
    rf: &Value,
    src: &VolumeSources,
) -> Result<String, VolumeError> {
    let container_name = rf
        .get("containerName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let resource = rf.get("resource").and_then(Value::as_str).unwrap_or("");
    let container = find_container(pod, container_name)
        .ok_or_else(|| VolumeError::ContainerNotFound(container_name.to_string()))?;
    let (section, name) = resource
        .split_once('.')
        .ok_or_else(|| VolumeError::UnsupportedResource(resource.to_string()))?;
    let supported = matches!(section, "limits" | "requests")
        && (matches!(name, "cpu" | "memory" | "ephemeral-storage")
            || name.starts_with("hugepages-"));
    if !supported {
        return Err(VolumeError::UnsupportedResource(resource.to_string()));
    }
    let parse = |what: &str, v: &str| {
        Quantity::parse(v).ok_or_else(|| VolumeError::InvalidQuantity {
            what: what.to_string(),
            value: v.to_string(),
        })
    };
    let declared = container
        .get("resources")
        .and_then(|r| r.get(section))
        .and_then(|m| m.get(name))
        .and_then(Value::as_str);
    let mut amount = match declared {
        Some(v) => parse(resource, v)?,
        None => parse(resource, "0")?,
    };
    let defaults_to_allocatable = matches!(name, "cpu" | "memory" | "ephemeral-storage");
    if section == "limits" && defaults_to_allocatable && amount.is_zero() {
        if let Some(v) = src.node_allocatable.get(name) {
            amount = parse(&format!("node allocatable {name}"), v)?;
        }
    }
    let divisor = match rf.get("divisor").and_then(divisor_str) {
        Some(d) => parse("divisor", &d)?,
        None => parse("divisor", "1")?,
    };
    let divisor = if divisor.is_zero() {
        parse("divisor", "1")?
    } else {
        divisor
    };
    let (n, d) = if name == "cpu" {
        (
            i128::from(amount.milli_value()),
            i128::from(divisor.milli_value()),
        )
    } else {
        (i128::from(amount.value()), i128::from(divisor.value()))
    };
    if d <= 0 {
        return Err(VolumeError::InvalidQuantity {
            what: "divisor".into(),
            value: rf.get("divisor").map(|v| v.to_string()).unwrap_or_default(),
        });
    }
    Ok(ceil_div(n, d).to_string())
}

/// A divisor may arrive as a string (`"1m"`) or, from hand-written JSON, a number.
fn divisor_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn find_container<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    let spec = pod.get("spec")?;
    ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
}

/// Division rounding towards positive infinity (`d` > 0).
pub(crate) fn ceil_div(n: i128, d: i128) -> i128 {
    let q = n.div_euclid(d);
    if n.rem_euclid(d) == 0 {
        q
    } else {
        q + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("plain"), "\"plain\"");
        assert_eq!(go_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(go_quote("l1\nl2\t"), "\"l1\\nl2\\t\"");
        assert_eq!(go_quote("\u{1}\u{7f}"), "\"\\x01\\x7f\"");
        assert_eq!(go_quote("é日本"), "\"é日本\"");
        assert_eq!(go_quote("\u{a0}"), "\"\\u00a0\"");
    }

    #[test]
    fn formats_maps_sorted() {
        let m = json!({"b": "2", "a.b": "x", "a": "1"});
        assert_eq!(format_map(Some(&m)), "a=\"1\"\na.b=\"x\"\nb=\"2\"");
        assert_eq!(format_map(None), "");
    }

    #[test]
    fn resources_with_divisors_and_allocatable() {
        let pod = json!({"spec": {"containers": [{"name": "c", "resources": {
            "limits": {"memory": "128Mi"}, "requests": {"cpu": "250m", "memory": "64Mi"}}}]}});
        let mut src = VolumeSources::default();
        src.node_allocatable.insert("cpu".into(), "4".into());
        let rv = |r: &str, d: Option<&str>| {
            let mut rf = json!({"containerName": "c", "resource": r});
            if let Some(d) = d {
                rf["divisor"] = json!(d);
            }
            resource_value(&pod, &rf, &src)
        };
        assert_eq!(rv("requests.cpu", None).expect("cpu"), "1");
        assert_eq!(rv("requests.cpu", Some("1m")).expect("cpu"), "250");
        assert_eq!(rv("limits.cpu", None).expect("cpu"), "4");
        assert_eq!(rv("limits.memory", Some("1Mi")).expect("mem"), "128");
        assert_eq!(rv("requests.memory", Some("0")).expect("mem"), "67108864");
        assert_eq!(rv("limits.ephemeral-storage", None).expect("eph"), "0");
        assert_eq!(
            rv("limits.gpu", None).expect_err("gpu").to_string(),
            "unsupported container resource : limits.gpu"
        );
        let rf = json!({"containerName": "nope", "resource": "limits.cpu"});
        assert_eq!(
            resource_value(&pod, &rf, &src)
                .expect_err("no container")
                .to_string(),
            "container nope not found"
        );
    }
}
