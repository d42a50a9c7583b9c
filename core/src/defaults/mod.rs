//! Defaulting of objects as Kubernetes v1.33 does it on create (the `SetDefaults_*` functions of
//! `pkg/apis/{core,apps,batch}/v1`, the declarative `+default`s, the parts of registry strategies
//! and admission plugins that fill fields in), plus the Job selector generation that needs the
//! object's uid. Defaults only fill what is unset; the few upstream overrides are noted.
//!
//! Submodule `pod` holds pod-spec, container, volume and pod-only (admission, status) defaults;
//! `storage` the StorageClass defaults and the storage admission plugins (default class, PVC/PV
//! protection finalizers).

mod pod;
pub mod storage;

use crate::resources::Resource;
use crate::validation::quantity::canonical_resource_value;
use serde_json::{json, Map, Value};

pub use pod::{default_pull_policy, set_default_toleration_seconds};

/// Fills in the defaults of a new (or replaced) object of `resource`'s kind.
///
/// Parts that only make sense on create are applied only while the field they depend on is
/// unset: a Pod's `status` (phase Pending, qosClass) and a Namespace's `kubernetes` finalizer
/// (added while `status` is absent and the namespace is not being deleted).
pub fn apply_defaults(resource: &Resource, obj: &mut Value) {
    if !obj.is_object() {
        return;
    }
    match (resource.group, resource.kind) {
        ("", "Pod") => pod::pod_defaults(obj),
        ("", "Service") => service_defaults(obj),
        ("", "Secret") => secret_defaults(obj),
        ("", "Namespace") => namespace_defaults(obj),
        ("", "PersistentVolumeClaim") => pvc_defaults(obj),
        ("", "PersistentVolume") => pv_defaults(obj),
        ("", "Node") => node_defaults(obj),
        ("", "Endpoints") => endpoints_defaults(obj),
        ("apps", "Deployment") => deployment_defaults(obj),
        ("apps", "ReplicaSet") => replica_set_defaults(obj),
        ("apps", "StatefulSet") => stateful_set_defaults(obj),
        ("apps", "DaemonSet") => daemon_set_defaults(obj),
        ("batch", "Job") => job_defaults(obj),
        ("batch", "CronJob") => cron_job_defaults(obj),
        ("storage.k8s.io", "StorageClass") => storage::storage_class_defaults(obj),
        _ => {}
    }
}

/// The selector and pod-template labels Kubernetes 1.33 generates for a Job (unless
/// `spec.manualSelector` is true): template labels `controller-uid`,
/// `batch.kubernetes.io/controller-uid` (= `uid`), `job-name`, `batch.kubernetes.io/job-name`
/// (= the Job's name), each only when absent, and `spec.selector.matchLabels`
/// `batch.kubernetes.io/controller-uid`. When the Job's own labels were defaulted from the template
/// (equal to them), they get the generated labels too, as upstream's shared map does.
pub fn job_selector_defaults(job: &mut Value, uid: &str) {
    let name = job
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Some(root) = job.as_object_mut() else {
        return;
    };
    let shared_labels = {
        let job_labels = root
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .filter(|l| !l.is_null());
        let template_labels = root
            .get("spec")
            .and_then(|s| s.get("template"))
            .and_then(|t| t.get("metadata"))
            .and_then(|m| m.get("labels"))
            .filter(|l| l.as_object().is_some_and(|o| !o.is_empty()));
        job_labels.is_some() && job_labels == template_labels
    };
    let Some(spec) = ensure_obj(root, "spec") else {
        return;
    };
    if spec.get("manualSelector").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let generated = [
        ("job-name", name.as_str()),
        ("batch.kubernetes.io/job-name", name.as_str()),
        ("controller-uid", uid),
        ("batch.kubernetes.io/controller-uid", uid),
    ];
    let mut final_labels = Map::new();
    if let Some(labels) = ensure_obj(spec, "template")
        .and_then(|t| ensure_obj(t, "metadata"))
        .and_then(|m| ensure_obj(m, "labels"))
    {
        for (k, v) in generated {
            labels.entry(k).or_insert_with(|| json!(v));
        }
        final_labels = labels.clone();
    }
    if let Some(ml) = ensure_obj(spec, "selector").and_then(|s| ensure_obj(s, "matchLabels")) {
        ml.entry("batch.kubernetes.io/controller-uid")
            .or_insert_with(|| json!(uid));
    }
    if shared_labels {
        if let Some(meta) = ensure_obj(root, "metadata") {
            meta.insert("labels".into(), Value::Object(final_labels));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// Sets `key` when it is absent or null.
pub(crate) fn set_default(m: &mut Map<String, Value>, key: &str, v: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), v);
    }
}

/// Sets `key` when it is absent, null or `""` (a Go string field's zero value).
pub(crate) fn set_if_unset_or_empty(m: &mut Map<String, Value>, key: &str, v: Value) {
    let empty = match m.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    };
    if empty {
        m.insert(key.to_string(), v);
    }
}

/// The object at `key`, created as `{}` when absent or null; `None` if it holds something else.
pub(crate) fn ensure_obj<'a>(
    m: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), Value::Object(Map::new()));
    }
    m.get_mut(key).and_then(Value::as_object_mut)
}

/// `SetDefaults_ResourceList`: values rounded up to milli precision and spelled canonically
/// (`0.5` → `500m`, `1024Mi` → `1Gi`); unparsable values are left for validation to report.
pub(crate) fn canonicalize_resource_list(list: &mut Map<String, Value>) {
    for v in list.values_mut() {
        let raw = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => continue,
        };
        if let Some(c) = canonical_resource_value(&raw) {
            *v = Value::String(c);
        }
    }
}

fn spec_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    obj.as_object_mut().and_then(|m| ensure_obj(m, "spec"))
}

fn status_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    obj.as_object_mut().and_then(|m| ensure_obj(m, "status"))
}

// ---------------------------------------------------------------------------------------------
// Core kinds.

fn service_defaults(obj: &mut Value) {
    let Some(spec) = spec_mut(obj) else {
        return;
    };
    set_if_unset_or_empty(spec, "sessionAffinity", json!("None"));
    match spec.get("sessionAffinity").and_then(Value::as_str) {
        // Upstream drops a config that cannot apply.
        Some("None") => {
            spec.remove("sessionAffinityConfig");
        }
        Some("ClientIP") => {
            let has_timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.get("clientIP"))
                .and_then(|c| c.get("timeoutSeconds"))
                .is_some_and(|t| !t.is_null());
            if !has_timeout {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    json!({"clientIP": {"timeoutSeconds": 10800}}),
                );
            }
        }
        _ => {}
    }
    set_if_unset_or_empty(spec, "type", json!("ClusterIP"));
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_if_unset_or_empty(p, "protocol", json!("TCP"));
            let unset = match p.get("targetPort") {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.is_empty(),
                Some(Value::Number(n)) => n.as_i64() == Some(0),
                _ => false,
            };
            if unset {
                let port = p.get("port").cloned().unwrap_or(json!(0));
                p.insert("targetPort".into(), port);
            }
        }
    }
    let has_external_ips = spec
        .get("externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let externally =
        ty == "LoadBalancer" || ty == "NodePort" || (ty == "ClusterIP" && has_external_ips);
    if externally {
        set_if_unset_or_empty(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if ["NodePort", "LoadBalancer", "ClusterIP"].contains(&ty.as_str()) {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if ty != "ExternalName" {
        // The service REST storage: clusterIPs follow clusterIP, IP families for a single-stack
        // IPv4 cluster.
        let cluster_ip = spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let has_ips = spec
            .get("clusterIPs")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if !cluster_ip.is_empty() && !has_ips {
            spec.insert("clusterIPs".into(), json!([cluster_ip]));
        }
        let headless = cluster_ip == "None";
        let no_selector = spec
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
        let policy = if headless && no_selector {
            "RequireDualStack"
        } else {
            "SingleStack"
        };
        set_default(spec, "ipFamilyPolicy", json!(policy));
        if spec
            .get("ipFamilies")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            let v6 = !headless && cluster_ip.contains(':');
            spec.insert(
                "ipFamilies".into(),
                json!([if v6 { "IPv6" } else { "IPv4" }]),
            );
        }
    }
    if let Some(status) = status_mut(obj) {
        set_default(status, "loadBalancer", json!({}));
    }
}

/// Standard base64 with padding.
fn b64_encode(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

fn secret_defaults(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    set_if_unset_or_empty(m, "type", json!("Opaque"));
    // The v1 conversion merges stringData into data (stringData wins) and never stores it.
    if let Some(Value::Object(string_data)) = m.remove("stringData") {
        if let Some(data) = ensure_obj(m, "data") {
            for (k, v) in string_data {
                let s = v.as_str().unwrap_or("");
                data.insert(k, json!(b64_encode(s.as_bytes())));
            }
        }
    }
}

fn namespace_defaults(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    let new = m.get("status").is_none_or(Value::is_null);
    let deleting = m
        .get("metadata")
        .and_then(|x| x.get("deletionTimestamp"))
        .is_some_and(|d| !d.is_null());
    if let Some(meta) = ensure_obj(m, "metadata") {
        let name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if !name.is_empty() {
            // Upstream always sets this label to the name.
            if let Some(labels) = ensure_obj(meta, "labels") {
                labels.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
    }
    if new && !deleting {
        if let Some(spec) = ensure_obj(m, "spec") {
            let fins = spec.entry("finalizers").or_insert_with(|| json!([]));
            if let Some(list) = fins.as_array_mut() {
                if !list.iter().any(|f| f.as_str() == Some("kubernetes")) {
                    list.push(json!("kubernetes"));
                }
            }
        }
    }
    if let Some(status) = ensure_obj(m, "status") {
        set_if_unset_or_empty(status, "phase", json!("Active"));
    }
}

/// `SetDefaults_PersistentVolumeClaimSpec` plus the resource lists' canonical form.
pub(crate) fn pvc_spec_defaults(spec: &mut Map<String, Value>) {
    set_default(spec, "volumeMode", json!("Filesystem"));
    if let Some(res) = spec.get_mut("resources").and_then(Value::as_object_mut) {
        for list in ["limits", "requests"] {
            if let Some(l) = res.get_mut(list).and_then(Value::as_object_mut) {
                canonicalize_resource_list(l);
            }
        }
    }
}

fn pvc_defaults(obj: &mut Value) {
    if let Some(spec) = spec_mut(obj) {
        pvc_spec_defaults(spec);
    }
    if let Some(status) = status_mut(obj) {
        set_if_unset_or_empty(status, "phase", json!("Pending"));
    }
}

fn pv_defaults(obj: &mut Value) {
    if let Some(spec) = spec_mut(obj) {
        set_if_unset_or_empty(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
        set_default(spec, "volumeMode", json!("Filesystem"));
        if let Some(c) = spec.get_mut("capacity").and_then(Value::as_object_mut) {
            canonicalize_resource_list(c);
        }
        if let Some(hp) = spec.get_mut("hostPath").and_then(Value::as_object_mut) {
            set_default(hp, "type", json!(""));
        }
    }
    if let Some(status) = status_mut(obj) {
        set_if_unset_or_empty(status, "phase", json!("Pending"));
    }
}

fn node_defaults(obj: &mut Value) {
    let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) else {
        return;
    };
    for list in ["capacity", "allocatable"] {
        if let Some(l) = status.get_mut(list).and_then(Value::as_object_mut) {
            canonicalize_resource_list(l);
        }
    }
    if status.get("allocatable").is_none_or(Value::is_null) {
        if let Some(cap) = status.get("capacity").filter(|c| c.is_object()).cloned() {
            status.insert("allocatable".into(), cap);
        }
    }
}

fn endpoints_defaults(obj: &mut Value) {
    if let Some(subsets) = obj.get_mut("subsets").and_then(Value::as_array_mut) {
        for ss in subsets.iter_mut() {
            if let Some(ports) = ss.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    set_if_unset_or_empty(p, "protocol", json!("TCP"));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// apps/v1.

fn template_of(spec: &mut Map<String, Value>) {
    if let Some(t) = spec.get_mut("template").filter(|t| t.is_object()) {
        pod::template_defaults(t);
    }
}

fn deployment_defaults(obj: &mut Value) {
    let Some(spec) = spec_mut(obj) else {
        return;
    };
    set_default(spec, "replicas", json!(1));
    if let Some(strategy) = ensure_obj(spec, "strategy") {
        set_if_unset_or_empty(strategy, "type", json!("RollingUpdate"));
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            if let Some(ru) = ensure_obj(strategy, "rollingUpdate") {
                set_default(ru, "maxUnavailable", json!("25%"));
                set_default(ru, "maxSurge", json!("25%"));
            }
        }
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    set_default(spec, "progressDeadlineSeconds", json!(600));
    template_of(spec);
}

fn replica_set_defaults(obj: &mut Value) {
    let Some(spec) = spec_mut(obj) else {
        return;
    };
    set_default(spec, "replicas", json!(1));
    template_of(spec);
}

fn daemon_set_defaults(obj: &mut Value) {
    let Some(spec) = spec_mut(obj) else {
        return;
    };
    if let Some(us) = ensure_obj(spec, "updateStrategy") {
        set_if_unset_or_empty(us, "type", json!("RollingUpdate"));
        if us.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            if let Some(ru) = ensure_obj(us, "rollingUpdate") {
                set_default(ru, "maxUnavailable", json!(1));
                set_default(ru, "maxSurge", json!(0));
            }
        }
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    template_of(spec);
}

fn stateful_set_defaults(obj: &mut Value) {
    let Some(spec) = spec_mut(obj) else {
        return;
    };
    set_if_unset_or_empty(spec, "podManagementPolicy", json!("OrderedReady"));
    if let Some(us) = ensure_obj(spec, "updateStrategy") {
        let unset = us
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty();
        if unset {
            us.insert("type".into(), json!("RollingUpdate"));
            set_default(us, "rollingUpdate", json!({}));
        }
        if us.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            if let Some(ru) = us.get_mut("rollingUpdate").and_then(Value::as_object_mut) {
                set_default(ru, "partition", json!(0));
            }
        }
    }
    if let Some(p) = ensure_obj(spec, "persistentVolumeClaimRetentionPolicy") {
        set_if_unset_or_empty(p, "whenDeleted", json!("Retain"));
        set_if_unset_or_empty(p, "whenScaled", json!("Retain"));
    }
    set_default(spec, "replicas", json!(1));
    set_default(spec, "revisionHistoryLimit", json!(10));
    template_of(spec);
    if let Some(vcts) = spec
        .get_mut("volumeClaimTemplates")
        .and_then(Value::as_array_mut)
    {
        for t in vcts.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(s) = ensure_obj(t, "spec") {
                pvc_spec_defaults(s);
            }
            if let Some(st) = ensure_obj(t, "status") {
                set_if_unset_or_empty(st, "phase", json!("Pending"));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// batch/v1.

fn pod_failure_policy_defaults(spec: &mut Map<String, Value>) {
    if let Some(rules) = spec
        .get_mut("podFailurePolicy")
        .and_then(|p| p.get_mut("rules"))
        .and_then(Value::as_array_mut)
    {
        for r in rules.iter_mut() {
            if let Some(conds) = r.get_mut("onPodConditions").and_then(Value::as_array_mut) {
                for c in conds.iter_mut().filter_map(Value::as_object_mut) {
                    set_if_unset_or_empty(c, "status", json!("True"));
                }
            }
        }
    }
}

fn job_defaults(obj: &mut Value) {
    let template_labels = obj
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    if let Some(labels) = template_labels {
        if let Some(meta) = ensure_obj(root, "metadata") {
            if meta
                .get("labels")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty)
            {
                meta.insert("labels".into(), labels);
            }
        }
    }
    let Some(spec) = ensure_obj(root, "spec") else {
        return;
    };
    let unset = |s: &Map<String, Value>, k: &str| s.get(k).is_none_or(Value::is_null);
    if unset(spec, "completions") && unset(spec, "parallelism") {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    set_default(spec, "parallelism", json!(1));
    let backoff = if unset(spec, "backoffLimitPerIndex") {
        6
    } else {
        2_147_483_647
    };
    set_default(spec, "backoffLimit", json!(backoff));
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    pod_failure_policy_defaults(spec);
    let replacement = if unset(spec, "podFailurePolicy") {
        "TerminatingOrFailed"
    } else {
        "Failed"
    };
    set_default(spec, "podReplacementPolicy", json!(replacement));
    set_default(spec, "manualSelector", json!(false));
    template_of(spec);
}

fn cron_job_defaults(obj: &mut Value) {
    let Some(spec) = spec_mut(obj) else {
        return;
    };
    set_if_unset_or_empty(spec, "concurrencyPolicy", json!("Allow"));
    set_default(spec, "suspend", json!(false));
    set_default(spec, "successfulJobsHistoryLimit", json!(3));
    set_default(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(jspec) = ensure_obj(spec, "jobTemplate").and_then(|jt| ensure_obj(jt, "spec")) {
        pod_failure_policy_defaults(jspec);
        template_of(jspec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::RESOURCES;

    fn res(group: &str, plural: &str) -> &'static Resource {
        RESOURCES
            .iter()
            .find(|r| r.group == group && r.plural == plural)
            .unwrap_or_else(|| panic!("no resource {group}/{plural}"))
    }

    fn defaulted(group: &str, plural: &str, mut v: Value) -> Value {
        apply_defaults(res(group, plural), &mut v);
        v
    }

    #[test]
    fn deployment() {
        let d = defaulted(
            "apps",
            "deployments",
            json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}}),
        );
        let s = &d["spec"];
        assert_eq!(s["replicas"], 1);
        assert_eq!(
            s["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(s["revisionHistoryLimit"], 10);
        assert_eq!(s["progressDeadlineSeconds"], 600);
        let ts = &s["template"]["spec"];
        assert_eq!(ts["restartPolicy"], "Always");
        assert_eq!(ts["containers"][0]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(ts["containers"][0]["resources"], json!({}));
        assert!(ts.get("enableServiceLinks").is_none());
        assert!(ts.get("tolerations").is_none());
        assert!(d.get("status").is_none());
        let r = defaulted(
            "apps",
            "deployments",
            json!({"spec": {"replicas": 0, "strategy": {"type": "Recreate"}}}),
        );
        assert_eq!(r["spec"]["replicas"], 0);
        assert_eq!(r["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn statefulset_daemonset_replicaset() {
        let s = defaulted(
            "apps",
            "statefulsets",
            json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}}),
        );
        let spec = &s["spec"];
        assert_eq!(spec["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            spec["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(
            spec["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(
            spec["volumeClaimTemplates"][0]["spec"]["volumeMode"],
            "Filesystem"
        );
        assert_eq!(
            spec["volumeClaimTemplates"][0]["status"],
            json!({"phase": "Pending"})
        );
        let ds = defaulted("apps", "daemonsets", json!({"spec": {}}));
        assert_eq!(
            ds["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
        let rs = defaulted("apps", "replicasets", json!({"spec": {}}));
        assert_eq!(rs["spec"]["replicas"], 1);
    }

    #[test]
    fn job_and_cronjob() {
        let j = defaulted(
            "batch",
            "jobs",
            json!({"metadata": {"name": "pi"}, "spec": {"template": {"metadata": {"labels": {"app": "pi"}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}}}),
        );
        let s = &j["spec"];
        for (k, v) in [
            ("completions", json!(1)),
            ("parallelism", json!(1)),
            ("backoffLimit", json!(6)),
            ("completionMode", json!("NonIndexed")),
            ("suspend", json!(false)),
            ("podReplacementPolicy", json!("TerminatingOrFailed")),
            ("manualSelector", json!(false)),
        ] {
            assert_eq!(s[k], v, "{k}");
        }
        assert_eq!(j["metadata"]["labels"], json!({"app": "pi"}));
        let mut j = j;
        job_selector_defaults(&mut j, "u-1");
        assert_eq!(
            j["spec"]["selector"],
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}})
        );
        assert_eq!(
            j["spec"]["template"]["metadata"]["labels"],
            json!({"app": "pi", "job-name": "pi", "batch.kubernetes.io/job-name": "pi",
            "controller-uid": "u-1", "batch.kubernetes.io/controller-uid": "u-1"})
        );
        assert_eq!(
            j["metadata"]["labels"],
            j["spec"]["template"]["metadata"]["labels"]
        );
        let p = defaulted("batch", "jobs", json!({"spec": {"parallelism": 3}}));
        assert!(p["spec"].get("completions").is_none());
        let mut manual = json!({"metadata": {"name": "m"}, "spec": {"manualSelector": true}});
        job_selector_defaults(&mut manual, "u");
        assert!(manual["spec"].get("selector").is_none());

        let c = defaulted(
            "batch",
            "cronjobs",
            json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}}}),
        );
        let s = &c["spec"];
        assert_eq!(s["concurrencyPolicy"], "Allow");
        assert_eq!(s["suspend"], false);
        assert_eq!(s["successfulJobsHistoryLimit"], 3);
        assert_eq!(s["failedJobsHistoryLimit"], 1);
        assert_eq!(
            s["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
            "ClusterFirst"
        );
        assert!(s["jobTemplate"]["spec"].get("backoffLimit").is_none());
    }

    #[test]
    fn service() {
        let s = defaulted(
            "",
            "services",
            json!({"spec": {"selector": {"app": "web"}, "ports": [{"port": 80}, {"port": 443, "targetPort": "https"}]}}),
        );
        let spec = &s["spec"];
        assert_eq!(spec["type"], "ClusterIP");
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(
            spec["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(spec["ports"][1]["targetPort"], "https");
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
        assert!(spec.get("externalTrafficPolicy").is_none());
        assert_eq!(s["status"], json!({"loadBalancer": {}}));
        let lb = defaulted(
            "",
            "services",
            json!({"spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.9", "ports": [{"port": 80}]}}),
        );
        assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
        assert_eq!(lb["spec"]["clusterIPs"], json!(["10.0.0.9"]));
        let headless = defaulted("", "services", json!({"spec": {"clusterIP": "None"}}));
        assert_eq!(headless["spec"]["ipFamilyPolicy"], "RequireDualStack");
        let ext = defaulted(
            "",
            "services",
            json!({"spec": {"type": "ExternalName", "externalName": "x.example.com"}}),
        );
        assert!(ext["spec"].get("ipFamilies").is_none());
        assert!(ext["spec"].get("internalTrafficPolicy").is_none());
    }

    #[test]
    fn secrets_namespaces_volumes() {
        let s = defaulted(
            "",
            "secrets",
            json!({"stringData": {"a": "hello"}, "data": {"b": "eA=="}}),
        );
        assert_eq!(s["type"], "Opaque");
        assert_eq!(s["data"], json!({"b": "eA==", "a": "aGVsbG8="}));
        assert!(s.get("stringData").is_none());
        assert_eq!(b64_encode(b"ab"), "YWI=");
        let ns = defaulted("", "namespaces", json!({"metadata": {"name": "dev"}}));
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(ns["status"]["phase"], "Active");
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "dev"
        );
        let finalized = defaulted(
            "",
            "namespaces",
            json!({"metadata": {"name": "dev"}, "spec": {"finalizers": []}, "status": {"phase": "Terminating"}}),
        );
        assert_eq!(finalized["spec"]["finalizers"], json!([]));
        let pvc = defaulted(
            "",
            "persistentvolumeclaims",
            json!({"spec": {"resources": {"requests": {"storage": "1024Mi"}}}}),
        );
        assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
        assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "1Gi");
        assert_eq!(pvc["status"]["phase"], "Pending");
        let pv = defaulted(
            "",
            "persistentvolumes",
            json!({"spec": {"hostPath": {"path": "/x"}}}),
        );
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(pv["spec"]["volumeMode"], "Filesystem");
        assert_eq!(pv["spec"]["hostPath"]["type"], "");
        let node = defaulted(
            "",
            "nodes",
            json!({"status": {"capacity": {"cpu": "4", "memory": "8Gi"}}}),
        );
        assert_eq!(
            node["status"]["allocatable"],
            json!({"cpu": "4", "memory": "8Gi"})
        );
    }

    #[test]
    fn defaulted_objects_validate() {
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]}});
        apply_defaults(res("", "pods"), &mut pod);
        assert_eq!(
            crate::validation::validate_create(res("", "pods"), &pod),
            vec![]
        );
        let mut d = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}});
        apply_defaults(res("apps", "deployments"), &mut d);
        assert_eq!(
            crate::validation::validate_create(res("apps", "deployments"), &d),
            vec![]
        );
        let mut j = json!({"metadata": {"name": "pi", "namespace": "default", "uid": "123"}, "spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}}});
        apply_defaults(res("batch", "jobs"), &mut j);
        job_selector_defaults(&mut j, "123");
        assert_eq!(
            crate::validation::validate_create(res("batch", "jobs"), &j),
            vec![]
        );
        let mut svc = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}});
        apply_defaults(res("", "services"), &mut svc);
        assert_eq!(
            crate::validation::validate_create(res("", "services"), &svc),
            vec![]
        );
        for r in RESOURCES {
            let mut v = json!({"metadata": {"name": "x"}, "spec": {"containers": 5, "template": []}, "status": 3});
            apply_defaults(r, &mut v);
            let mut w = json!([]);
            apply_defaults(r, &mut w);
        }
    }
}
