//! Pod defaulting: `SetDefaults_PodSpec`/`SetDefaults_Pod` with the nested container, volume,
//! probe and handler defaults, what the ServiceAccount, DefaultTolerationSeconds and Priority
//! admission plugins add, and the status a new pod starts with (phase Pending, QoS class).

use super::{canonicalize_resource_list, ensure_obj, set_default, set_if_unset_or_empty};
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicI64, Ordering};

const VOLUME_SOURCE_KEYS: &[&str] = &[
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "quobyte",
    "downwardAPI",
    "fc",
    "flexVolume",
    "configMap",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "storageos",
    "projected",
    "scaleIO",
    "csi",
    "ephemeral",
    "image",
];

/// The DefaultTolerationSeconds admission plugin's settings (kube-apiserver's
/// `--default-not-ready-toleration-seconds` / `--default-unreachable-toleration-seconds`).
static DEFAULT_NOT_READY_TOLERATION: AtomicI64 = AtomicI64::new(300);
static DEFAULT_UNREACHABLE_TOLERATION: AtomicI64 = AtomicI64::new(300);

/// Sets the toleration seconds added to pods that do not tolerate the not-ready/unreachable
/// taints themselves (process-wide, set once at start).
pub fn set_default_toleration_seconds(not_ready: i64, unreachable: i64) {
    DEFAULT_NOT_READY_TOLERATION.store(not_ready, Ordering::Relaxed);
    DEFAULT_UNREACHABLE_TOLERATION.store(unreachable, Ordering::Relaxed);
}

/// The image pull policy Kubernetes picks for an image: `Always` for `:latest` or no tag (and no
/// digest), `IfNotPresent` otherwise (also for references that do not parse).
pub fn default_pull_policy(image: &str) -> &'static str {
    match image_tag(image) {
        Some(tag) if tag == "latest" => "Always",
        _ => "IfNotPresent",
    }
}

/// The tag `parsers.ParseImageName` reports: the explicit tag, `latest` when there is neither tag
/// nor digest, `""` with a digest only; `None` when the reference does not parse.
fn image_tag(image: &str) -> Option<String> {
    if image.is_empty() {
        return None;
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let (algo, hex) = d.split_once(':')?;
        if algo.is_empty() || hex.len() < 32 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
    }
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && (t.as_bytes()[0].is_ascii_alphanumeric() || t.as_bytes()[0] == b'_')
            && t.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-');
        if !ok {
            return None;
        }
    }
    let mut parts: Vec<&str> = repo.split('/').collect();
    if parts.len() > 1
        && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost")
    {
        let domain = parts.remove(0);
        if domain.is_empty()
            || !domain
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-' || c == b':')
        {
            return None;
        }
    }
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_' || b == b'-'
            })
            && c.as_bytes()[0].is_ascii_alphanumeric()
            && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
    };
    if parts.is_empty() || !parts.iter().all(|c| component_ok(c)) {
        return None;
    }
    match (tag, digest) {
        (Some(t), _) => Some(t.to_string()),
        (None, Some(_)) => Some(String::new()),
        (None, None) => Some("latest".to_string()),
    }
}

fn http_get_defaults(h: &mut Value) {
    if let Some(g) = h.get_mut("httpGet").and_then(Value::as_object_mut) {
        set_if_unset_or_empty(g, "path", json!("/"));
        set_if_unset_or_empty(g, "scheme", json!("HTTP"));
    }
}

fn probe_defaults(p: &mut Value) {
    http_get_defaults(p);
    if let Some(m) = p.as_object_mut() {
        for (k, v) in [
            ("timeoutSeconds", 1),
            ("periodSeconds", 10),
            ("successThreshold", 1),
            ("failureThreshold", 3),
        ] {
            if m.get(k).and_then(Value::as_i64).unwrap_or(0) == 0 {
                m.insert(k.into(), json!(v));
            }
        }
    }
}

fn field_ref_defaults(holder: &mut Value) {
    if let Some(fr) = holder.get_mut("fieldRef").and_then(Value::as_object_mut) {
        set_if_unset_or_empty(fr, "apiVersion", json!("v1"));
    }
}

/// `SetDefaults_Container` and the defaults of what a container holds.
fn container_defaults(c: &mut Value) {
    let Some(m) = c.as_object_mut() else {
        return;
    };
    if m.get("imagePullPolicy")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        let policy = default_pull_policy(m.get("image").and_then(Value::as_str).unwrap_or(""));
        m.insert("imagePullPolicy".into(), json!(policy));
    }
    set_if_unset_or_empty(m, "terminationMessagePath", json!("/dev/termination-log"));
    set_if_unset_or_empty(m, "terminationMessagePolicy", json!("File"));
    if let Some(res) = ensure_obj(m, "resources") {
        for list in ["limits", "requests"] {
            if let Some(l) = res.get_mut(list).and_then(Value::as_object_mut) {
                canonicalize_resource_list(l);
            }
        }
    }
    if let Some(ports) = m.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_if_unset_or_empty(p, "protocol", json!("TCP"));
        }
    }
    if let Some(env) = m.get_mut("env").and_then(Value::as_array_mut) {
        for ev in env.iter_mut() {
            if let Some(vf) = ev.get_mut("valueFrom") {
                field_ref_defaults(vf);
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = m.get_mut(probe).filter(|p| p.is_object()) {
            probe_defaults(p);
        }
    }
    if let Some(l) = m.get_mut("lifecycle").and_then(Value::as_object_mut) {
        for h in ["postStart", "preStop"] {
            if let Some(handler) = l.get_mut(h) {
                http_get_defaults(handler);
            }
        }
    }
}

fn volume_defaults(v: &mut Value) {
    let Some(m) = v.as_object_mut() else {
        return;
    };
    if !VOLUME_SOURCE_KEYS
        .iter()
        .any(|k| m.get(*k).is_some_and(|s| !s.is_null()))
    {
        m.insert("emptyDir".into(), json!({}));
    }
    for key in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = m.get_mut(key).and_then(Value::as_object_mut) {
            set_default(s, "defaultMode", json!(420));
        }
    }
    if let Some(items) = m
        .get_mut("downwardAPI")
        .and_then(|d| d.get_mut("items"))
        .and_then(Value::as_array_mut)
    {
        items.iter_mut().for_each(field_ref_defaults);
    }
    if let Some(sources) = m
        .get_mut("projected")
        .and_then(|p| p.get_mut("sources"))
        .and_then(Value::as_array_mut)
    {
        for s in sources.iter_mut() {
            if let Some(items) = s
                .get_mut("downwardAPI")
                .and_then(|d| d.get_mut("items"))
                .and_then(Value::as_array_mut)
            {
                items.iter_mut().for_each(field_ref_defaults);
            }
            if let Some(t) = s
                .get_mut("serviceAccountToken")
                .and_then(Value::as_object_mut)
            {
                set_default(t, "expirationSeconds", json!(3600));
            }
        }
    }
    if let Some(hp) = m.get_mut("hostPath").and_then(Value::as_object_mut) {
        set_default(hp, "type", json!(""));
    }
    if let Some(spec) = m
        .get_mut("ephemeral")
        .and_then(|e| e.get_mut("volumeClaimTemplate"))
        .and_then(|t| t.get_mut("spec"))
        .and_then(Value::as_object_mut)
    {
        super::pvc_spec_defaults(spec);
    }
}

/// `SetDefaults_PodSpec` and the nested defaults: what every pod spec (pod or template) gets.
pub(crate) fn pod_spec_defaults(spec: &mut Map<String, Value>) {
    set_if_unset_or_empty(spec, "dnsPolicy", json!("ClusterFirst"));
    set_if_unset_or_empty(spec, "restartPolicy", json!("Always"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_if_unset_or_empty(spec, "schedulerName", json!("default-scheduler"));
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(list) = spec.get_mut(key).and_then(Value::as_array_mut) {
            list.iter_mut().for_each(container_defaults);
        }
    }
    if let Some(vols) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        vols.iter_mut().for_each(volume_defaults);
    }
    if let Some(overhead) = spec.get_mut("overhead").and_then(Value::as_object_mut) {
        canonicalize_resource_list(overhead);
    }
}

/// A pod template (`{metadata, spec}`): pod spec defaults on `spec`.
pub(crate) fn template_defaults(template: &mut Value) {
    if let Some(t) = template.as_object_mut() {
        if let Some(spec) = ensure_obj(t, "spec") {
            pod_spec_defaults(spec);
        }
    }
}

fn not_ready_or_unreachable_tolerated(tolerations: &[Value], taint: &str) -> bool {
    tolerations.iter().any(|t| {
        let key = t.get("key").and_then(Value::as_str).unwrap_or("");
        let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
        (key == taint || key.is_empty()) && (effect == "NoExecute" || effect.is_empty())
    })
}

/// Everything a Pod gets on create: spec defaults, `SetDefaults_Pod`, admission plugins, status.
pub(crate) fn pod_defaults(pod: &mut Value) {
    let mirror = pod
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get("kubernetes.io/config.mirror"))
        .is_some();
    let Some(root) = pod.as_object_mut() else {
        return;
    };
    let Some(spec) = ensure_obj(root, "spec") else {
        return;
    };
    // SetDefaults_Pod: requests default to limits.
    for key in ["containers", "initContainers"] {
        if let Some(list) = spec.get_mut(key).and_then(Value::as_array_mut) {
            for c in list.iter_mut() {
                let Some(res) = c.get_mut("resources").and_then(Value::as_object_mut) else {
                    continue;
                };
                let Some(limits) = res.get("limits").and_then(Value::as_object).cloned() else {
                    continue;
                };
                if let Some(req) = ensure_obj(res, "requests") {
                    for (k, v) in limits {
                        req.entry(k).or_insert(v);
                    }
                }
            }
        }
    }
    pod_spec_defaults(spec);
    set_default(spec, "enableServiceLinks", json!(true));
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        for key in ["containers", "initContainers"] {
            if let Some(list) = spec.get_mut(key).and_then(Value::as_array_mut) {
                for p in list
                    .iter_mut()
                    .filter_map(|c| c.get_mut("ports"))
                    .filter_map(Value::as_array_mut)
                    .flatten()
                {
                    if let Some(pm) = p.as_object_mut() {
                        if pm.get("hostPort").and_then(Value::as_i64).unwrap_or(0) == 0 {
                            let cp = pm.get("containerPort").cloned().unwrap_or(json!(0));
                            pm.insert("hostPort".into(), cp);
                        }
                    }
                }
            }
        }
    }
    // ServiceAccount admission (without the token volume) and the v1 conversion's mirror field.
    let sa_name = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let sa_old = spec
        .get("serviceAccount")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let sa = if !sa_name.is_empty() {
        sa_name
    } else if !sa_old.is_empty() {
        sa_old
    } else if !mirror {
        "default".to_string()
    } else {
        String::new()
    };
    if !sa.is_empty() {
        spec.insert("serviceAccountName".into(), json!(sa));
        spec.insert("serviceAccount".into(), json!(sa));
    }
    // DefaultTolerationSeconds admission.
    let tolerations: Vec<Value> = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut added = tolerations.clone();
    for (taint, seconds) in [
        (
            "node.kubernetes.io/not-ready",
            &DEFAULT_NOT_READY_TOLERATION,
        ),
        (
            "node.kubernetes.io/unreachable",
            &DEFAULT_UNREACHABLE_TOLERATION,
        ),
    ] {
        if !not_ready_or_unreachable_tolerated(&tolerations, taint) {
            let seconds = seconds.load(Ordering::Relaxed);
            added.push(json!({"key": taint, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}));
        }
    }
    if added.len() != tolerations.len() {
        spec.insert("tolerations".into(), Value::Array(added));
    }
    // Priority admission (built-in classes; no global default class).
    if spec.get("priority").is_none_or(Value::is_null) {
        let priority = match spec
            .get("priorityClassName")
            .and_then(Value::as_str)
            .unwrap_or("")
        {
            "system-node-critical" => 2_000_001_000,
            "system-cluster-critical" => 2_000_000_000,
            _ => 0,
        };
        spec.insert("priority".into(), json!(priority));
    }
    set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    let qos = crate::validation::compute_qos_class(&Value::Object(spec.clone()));
    if let Some(status) = ensure_obj(root, "status") {
        set_if_unset_or_empty(status, "phase", json!("Pending"));
        set_if_unset_or_empty(status, "qosClass", json!(qos));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_by_tag() {
        assert_eq!(default_pull_policy("nginx"), "Always");
        assert_eq!(default_pull_policy("nginx:latest"), "Always");
        assert_eq!(default_pull_policy("nginx:1.25"), "IfNotPresent");
        assert_eq!(
            default_pull_policy("registry.local:5000/team/app"),
            "Always"
        );
        assert_eq!(
            default_pull_policy("registry.local:5000/team/app:v2"),
            "IfNotPresent"
        );
        assert_eq!(
            default_pull_policy(
                "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            ),
            "IfNotPresent"
        );
        assert_eq!(default_pull_policy("Nginx"), "IfNotPresent");
        assert_eq!(default_pull_policy(""), "IfNotPresent");
    }

    #[test]
    fn pod_gets_everything() {
        let mut pod = json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [
            {"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
             "resources": {"limits": {"cpu": "0.5", "memory": "1024Mi"}},
             "livenessProbe": {"httpGet": {"port": 80}}}],
            "volumes": [{"name": "v"}, {"name": "s", "secret": {"secretName": "x"}}]}});
        pod_defaults(&mut pod);
        let spec = &pod["spec"];
        let c = &spec["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(
            c["resources"]["limits"],
            json!({"cpu": "500m", "memory": "1Gi"})
        );
        assert_eq!(
            c["resources"]["requests"],
            json!({"cpu": "500m", "memory": "1Gi"})
        );
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
            "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(spec["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(spec["volumes"][1]["secret"]["defaultMode"], 420);
        for (k, v) in [
            ("restartPolicy", json!("Always")),
            ("terminationGracePeriodSeconds", json!(30)),
            ("dnsPolicy", json!("ClusterFirst")),
            ("securityContext", json!({})),
            ("schedulerName", json!("default-scheduler")),
            ("enableServiceLinks", json!(true)),
            ("priority", json!(0)),
            ("preemptionPolicy", json!("PreemptLowerPriority")),
            ("serviceAccountName", json!("default")),
            ("serviceAccount", json!("default")),
        ] {
            assert_eq!(spec[k], v, "{k}");
        }
        assert_eq!(
            spec["tolerations"],
            json!([
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}])
        );
        assert_eq!(
            pod["status"],
            json!({"phase": "Pending", "qosClass": "Guaranteed"})
        );
    }

    #[test]
    fn user_values_are_kept() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"restartPolicy": "Never", "serviceAccountName": "builder",
            "terminationGracePeriodSeconds": 5, "containers": [{"name": "c", "image": "nginx:1", "imagePullPolicy": "Never", "resources": {}}],
            "tolerations": [{"operator": "Exists"}], "priority": 7}});
        pod_defaults(&mut pod);
        let spec = &pod["spec"];
        assert_eq!(spec["restartPolicy"], "Never");
        assert_eq!(spec["terminationGracePeriodSeconds"], 5);
        assert_eq!(spec["containers"][0]["imagePullPolicy"], "Never");
        assert_eq!(spec["serviceAccount"], "builder");
        assert_eq!(spec["tolerations"], json!([{"operator": "Exists"}]));
        assert_eq!(spec["priority"], 7);
        assert_eq!(pod["status"]["qosClass"], "BestEffort");
    }
}
