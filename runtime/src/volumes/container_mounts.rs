//! A container's `volumeMounts` as OCI bind mounts (kubelet's `makeMounts`): `rbind`, the
//! propagation (`None` → `rprivate`, `HostToContainer` → `rslave`, `Bidirectional` → `rshared`)
//! and `ro`/`rw` (read-only when asked or when the volume is: configMap, secret, downwardAPI and
//! projected always are). `subPath`/`subPathExpr` go through [`super::subpath`].

use super::error::VolumeError;
use super::{downward, subpath, PodVolumes, VolumeSources};
use oci_spec::runtime::{Mount, MountBuilder};
use serde_json::Value;
use std::collections::HashMap;

/// See [`super::container_mounts`].
pub(crate) fn build(
    pod: &Value,
    container: &Value,
    vols: &PodVolumes,
) -> Result<Vec<Mount>, VolumeError> {
    let container_name = container.get("name").and_then(Value::as_str).unwrap_or("");
    let mut env: Option<HashMap<String, String>> = None;
    let mut out = Vec::new();
    let mounts = container
        .get("volumeMounts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for (index, vm) in mounts.iter().enumerate() {
        let name = vm.get("name").and_then(Value::as_str).unwrap_or("");
        let vol = vols
            .volumes
            .get(name)
            .ok_or_else(|| VolumeError::UnknownVolume {
                volume: name.to_string(),
                container: container_name.to_string(),
            })?;
        let destination = vm.get("mountPath").and_then(Value::as_str).unwrap_or("");
        if destination.is_empty() {
            return Err(VolumeError::InvalidSpec(format!(
                "volumeMount {name:?} of container {container_name:?} has no mountPath"
            )));
        }
        let read_only =
            vm.get("readOnly").and_then(Value::as_bool).unwrap_or(false) || vol.read_only;

        let mut sub = vm
            .get("subPath")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(expr) = vm
            .get("subPathExpr")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            let env = env.get_or_insert_with(|| container_env(pod, container));
            sub = expand_subpath_expr(expr, env)?;
        }
        let source = if sub.is_empty() {
            vol.host_path.clone()
        } else {
            subpath::prepare(&vols.pod_dir, vol, container_name, index, &sub)?
        };

        let propagation = match vm.get("mountPropagation").and_then(Value::as_str) {
            None | Some("None") => "rprivate",
            Some("HostToContainer") => "rslave",
            Some("Bidirectional") => "rshared",
            Some(other) => {
                return Err(VolumeError::InvalidSpec(format!(
                    "invalid mountPropagation {other:?} for volumeMount {name:?}"
                )))
            }
        };
        let options = vec![
            "rbind".to_string(),
            propagation.to_string(),
            if read_only { "ro" } else { "rw" }.to_string(),
        ];
        let mount = MountBuilder::default()
            .destination(destination)
            .typ("bind")
            .source(source)
            .options(options)
            .build()
            .map_err(|e| VolumeError::Oci(e.to_string()))?;
        out.push(mount);
    }
    Ok(out)
}

/// kubelet's `ExpandContainerVolumeMounts`: every `$(VAR)` must resolve to a non-empty value.
pub(crate) fn expand_subpath_expr(
    expr: &str,
    env: &HashMap<String, String>,
) -> Result<String, VolumeError> {
    let mut missing: Vec<String> = Vec::new();
    let expanded = expand(expr, |key| match env.get(key) {
        Some(v) if !v.is_empty() => v.clone(),
        _ => {
            if !missing.iter().any(|m| m == key) {
                missing.push(key.to_string());
            }
            String::new()
        }
    });
    if missing.is_empty() {
        Ok(expanded)
    } else {
        missing.sort();
        Err(VolumeError::SubPathExprMissing(missing.join(", ")))
    }
}

/// The environment a subPathExpr can see: `value`s (with `$(VAR)` references to earlier
/// variables expanded) and `fieldRef`/`resourceFieldRef` values; configMap/secret key refs are
/// not resolved here.
fn container_env(pod: &Value, container: &Value) -> HashMap<String, String> {
    let src = VolumeSources::default();
    let mut env: HashMap<String, String> = HashMap::new();
    let list = container
        .get("env")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for e in list {
        let Some(name) = e.get("name").and_then(Value::as_str) else {
            continue;
        };
        let value = if let Some(v) = e.get("value").and_then(Value::as_str) {
            Some(expand(v, |k| {
                env.get(k).cloned().unwrap_or_else(|| format!("$({k})"))
            }))
        } else if let Some(fr) = e.pointer("/valueFrom/fieldRef") {
            let fp = fr.get("fieldPath").and_then(Value::as_str).unwrap_or("");
            downward::field_value(pod, fp, &src).ok()
        } else if let Some(rf) = e.pointer("/valueFrom/resourceFieldRef") {
            let mut rf = rf.clone();
            if rf
                .get("containerName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                rf["containerName"] = container.get("name").cloned().unwrap_or(Value::Null);
            }
            downward::resource_value(pod, &rf, &src).ok()
        } else {
            None
        };
        if let Some(v) = value {
            env.insert(name.to_string(), v);
        }
    }
    env
}

/// Kubernetes' `expansion.Expand`: `$(VAR)` → mapping, `$$` → `$`, anything else verbatim.
pub(crate) fn expand(input: &str, mut mapping: impl FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.chars().next() {
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('(') => match after.find(')') {
                Some(close) => {
                    out.push_str(&mapping(&after[1..close]));
                    rest = &after[close + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = &after[1..];
                }
            },
            Some(c) => {
                out.push('$');
                out.push(c);
                rest = &after[c.len_utf8()..];
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_like_kubernetes() {
        let env: HashMap<String, String> =
            [("A".to_string(), "x".to_string())].into_iter().collect();
        let map = |k: &str| env.get(k).cloned().unwrap_or_else(|| format!("$({k})"));
        assert_eq!(expand("$(A)/b", map), "x/b");
        assert_eq!(expand("$$(A)", map), "$(A)");
        assert_eq!(expand("$(B)", map), "$(B)");
        assert_eq!(expand("a$", map), "a$");
        assert_eq!(expand("$(A", map), "$(A");
        assert_eq!(expand("$x", map), "$x");
        assert_eq!(
            expand_subpath_expr("logs/$(A)", &env).expect("ok"),
            "logs/x"
        );
        assert_eq!(
            expand_subpath_expr("$(Z)/$(B)", &env)
                .expect_err("missing")
                .to_string(),
            "missing value for B, Z"
        );
    }
}
