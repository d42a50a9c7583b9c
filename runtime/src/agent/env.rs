//! A container's environment as Kubernetes builds it: `envFrom` (configMap/secret, with
//! prefixes) first, then `env` in order with `$(VAR)` references to earlier entries, and
//! `valueFrom` (configMapKeyRef, secretKeyRef, fieldRef, resourceFieldRef).

use base64::Engine;
use serde_json::Value;
use std::collections::HashMap;

/// The objects and facts env resolution reads.
pub struct EnvSources<'a> {
    pub configmaps: &'a HashMap<String, Value>,
    pub secrets: &'a HashMap<String, Value>,
    pub pod_ip: Option<&'a str>,
    pub node_name: &'a str,
    pub host_ip: Option<&'a str>,
}

fn secret_value(secret: &Value, key: &str) -> Option<String> {
    let b64 = secret
        .pointer(&format!(
            "/data/{}",
            key.replace('~', "~0").replace('/', "~1")
        ))?
        .as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

fn configmap_value(cm: &Value, key: &str) -> Option<String> {
    cm.get("data")?.get(key)?.as_str().map(str::to_string)
}

fn field_ref(pod: &Value, path: &str, src: &EnvSources) -> Option<String> {
    let s = |p: &str| pod.pointer(p).and_then(Value::as_str).map(str::to_string);
    match path {
        "metadata.name" => s("/metadata/name"),
        "metadata.namespace" => s("/metadata/namespace"),
        "metadata.uid" => s("/metadata/uid"),
        "spec.nodeName" => Some(src.node_name.to_string()),
        "spec.serviceAccountName" => s("/spec/serviceAccountName"),
        "status.podIP" => src.pod_ip.map(str::to_string),
        "status.podIPs" => src.pod_ip.map(str::to_string),
        "status.hostIP" | "status.hostIPs" => src.host_ip.map(str::to_string),
        p => {
            for (prefix, field) in [
                ("metadata.labels['", "labels"),
                ("metadata.annotations['", "annotations"),
            ] {
                if let Some(key) = p.strip_prefix(prefix).and_then(|k| k.strip_suffix("']")) {
                    return pod
                        .pointer(&format!("/metadata/{field}"))
                        .and_then(|m| m.get(key))
                        .and_then(Value::as_str)
                        .map(str::to_string);
                }
            }
            None
        }
    }
}

/// Resolves the env of `container` in `pod`. Errors name what is missing, as kubelet's
/// `CreateContainerConfigError` messages do.
pub fn resolve(
    pod: &Value,
    container: &Value,
    src: &EnvSources,
) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let set = |out: &mut Vec<(String, String)>, k: String, v: String| match out
        .iter_mut()
        .find(|(n, _)| *n == k)
    {
        Some(e) => e.1 = v,
        None => out.push((k, v)),
    };
    for from in container
        .get("envFrom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let prefix = from.get("prefix").and_then(Value::as_str).unwrap_or("");
        if let Some(r) = from.get("configMapRef") {
            let name = r.get("name").and_then(Value::as_str).unwrap_or("");
            let optional = r.get("optional").and_then(Value::as_bool).unwrap_or(false);
            match src.configmaps.get(name) {
                Some(cm) => {
                    for (k, v) in cm
                        .get("data")
                        .and_then(Value::as_object)
                        .into_iter()
                        .flatten()
                    {
                        set(
                            &mut out,
                            format!("{prefix}{k}"),
                            v.as_str().unwrap_or("").to_string(),
                        );
                    }
                }
                None if optional => {}
                None => return Err(format!("configmap \"{name}\" not found")),
            }
        }
        if let Some(r) = from.get("secretRef") {
            let name = r.get("name").and_then(Value::as_str).unwrap_or("");
            let optional = r.get("optional").and_then(Value::as_bool).unwrap_or(false);
            match src.secrets.get(name) {
                Some(s) => {
                    for k in s
                        .get("data")
                        .and_then(Value::as_object)
                        .into_iter()
                        .flatten()
                        .map(|(k, _)| k.clone())
                    {
                        let v = secret_value(s, &k).unwrap_or_default();
                        set(&mut out, format!("{prefix}{k}"), v);
                    }
                }
                None if optional => {}
                None => return Err(format!("secret \"{name}\" not found")),
            }
        }
    }
    for e in container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = e.get("name").and_then(Value::as_str) else {
            continue;
        };
        let value = if let Some(v) = e.get("value").and_then(Value::as_str) {
            crate::oci::expand_vars(v, &out)
        } else if let Some(vf) = e.get("valueFrom") {
            if let Some(r) = vf.get("configMapKeyRef") {
                let cm_name = r.get("name").and_then(Value::as_str).unwrap_or("");
                let key = r.get("key").and_then(Value::as_str).unwrap_or("");
                let optional = r.get("optional").and_then(Value::as_bool).unwrap_or(false);
                match src
                    .configmaps
                    .get(cm_name)
                    .map(|cm| configmap_value(cm, key))
                {
                    Some(Some(v)) => v,
                    _ if optional => continue,
                    Some(None) => {
                        return Err(format!(
                            "couldn't find key {key} in ConfigMap {}/{cm_name}",
                            ns(pod)
                        ))
                    }
                    None => return Err(format!("configmap \"{cm_name}\" not found")),
                }
            } else if let Some(r) = vf.get("secretKeyRef") {
                let s_name = r.get("name").and_then(Value::as_str).unwrap_or("");
                let key = r.get("key").and_then(Value::as_str).unwrap_or("");
                let optional = r.get("optional").and_then(Value::as_bool).unwrap_or(false);
                match src.secrets.get(s_name).map(|s| secret_value(s, key)) {
                    Some(Some(v)) => v,
                    _ if optional => continue,
                    Some(None) => {
                        return Err(format!(
                            "couldn't find key {key} in Secret {}/{s_name}",
                            ns(pod)
                        ))
                    }
                    None => return Err(format!("secret \"{s_name}\" not found")),
                }
            } else if let Some(r) = vf.get("fieldRef") {
                let path = r.get("fieldPath").and_then(Value::as_str).unwrap_or("");
                field_ref(pod, path, src).unwrap_or_default()
            } else if let Some(r) = vf.get("resourceFieldRef") {
                let res = r.get("resource").and_then(Value::as_str).unwrap_or("");
                let cname = r.get("containerName").and_then(Value::as_str);
                let c = match cname {
                    Some(n) => pod
                        .pointer("/spec/containers")
                        .and_then(Value::as_array)
                        .and_then(|cs| {
                            cs.iter()
                                .find(|c| c.get("name").and_then(Value::as_str) == Some(n))
                        })
                        .unwrap_or(container),
                    None => container,
                };
                let (section, key) = res.split_once('.').unwrap_or(("", ""));
                c.pointer(&format!("/resources/{section}/{key}"))
                    .and_then(Value::as_str)
                    .unwrap_or("0")
                    .to_string()
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        set(&mut out, name.to_string(), value);
    }
    Ok(out)
}

fn ns(pod: &Value) -> &str {
    pod.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn env_from_values_refs_and_fields() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"}}, "spec": {}});
        let c = json!({"name": "c",
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
        "env": [
            {"name": "A", "value": "1"},
            {"name": "B", "value": "$(A)-x"},
            {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
            {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        ]});
        let cms = HashMap::from([("cm".to_string(), json!({"data": {"k": "v"}}))]);
        let secrets = HashMap::from([("s".to_string(), json!({"data": {"pw": "aHVudGVyMg=="}}))]);
        let src = EnvSources {
            configmaps: &cms,
            secrets: &secrets,
            pod_ip: Some("10.42.0.5"),
            node_name: "n1",
            host_ip: None,
        };
        let env = resolve(&pod, &c, &src).expect("env");
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("CM_k"), Some("v"));
        assert_eq!(get("B"), Some("1-x"));
        assert_eq!(get("S"), Some("hunter2"));
        assert_eq!(get("N"), Some("p"));
        assert_eq!(get("L"), Some("web"));
        assert_eq!(get("IP"), Some("10.42.0.5"));
        let missing = json!({"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}]});
        assert_eq!(
            resolve(&pod, &missing, &src),
            Err("configmap \"nope\" not found".to_string())
        );
    }
}
