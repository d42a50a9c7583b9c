//! Tables of the core (v1) resources other than pods and events: nodes, namespaces,
//! configmaps, secrets, serviceaccounts, services, endpoints, persistent volumes and claims;
//! coordination.k8s.io leases and storage.k8s.io storage classes.

use super::{
    age, at, col, format_labels, int, list, map_len, name, object, quantity, string, wide, Col,
    AGE_COL, NAME_COL,
};
use jiff::Timestamp;
use serde_json::Value;

// --------------------------------------------------------------------------------------------- nodes

pub(super) const NODE_COLUMNS: &[Col] = &[
    NAME_COL,
    col("Status", "string", "The status of the node"),
    col("Roles", "string", "The roles of the node"),
    AGE_COL,
    col("Version", "string", "Kubelet Version reported by the node."),
    wide("Internal-IP", "string", "List of addresses reachable to the node."),
    wide("External-IP", "string", "List of addresses reachable to the node."),
    wide("OS-Image", "string", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."),
    wide("Kernel-Version", "string", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
    wide("Container-Runtime", "string", "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2)."),
];

const NODE_ROLE_PREFIX: &str = "node-role.kubernetes.io/";
const NODE_ROLE_LABEL: &str = "kubernetes.io/role";

pub(super) fn node_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    // The last Ready condition decides (the printer indexes conditions by type).
    let ready = list(o, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| string(c, &["type"]) == "Ready");
    let mut status: Vec<&str> = vec![match ready {
        Some(c) if string(c, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if at(o, &["spec", "unschedulable"]).and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled");
    }

    let mut roles: Vec<&str> = Vec::new();
    for (k, v) in object(o, &["metadata", "labels"]).into_iter().flatten() {
        if let Some(role) = k.strip_prefix(NODE_ROLE_PREFIX) {
            if !role.is_empty() {
                roles.push(role);
            }
        } else if k == NODE_ROLE_LABEL {
            if let Some(v) = v.as_str().filter(|v| !v.is_empty()) {
                roles.push(v);
            }
        }
    }
    roles.sort_unstable();
    roles.dedup();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };

    let address = |ty: &str| {
        list(o, &["status", "addresses"])
            .iter()
            .find(|a| string(a, &["type"]) == ty)
            .map_or("<none>".to_string(), |a| {
                string(a, &["address"]).to_string()
            })
    };
    let info = |field: &str| {
        let s = string(o, &["status", "nodeInfo", field]);
        if s.is_empty() {
            "<unknown>".to_string()
        } else {
            s.to_string()
        }
    };
    vec![
        name(o).into(),
        status.join(",").into(),
        roles.into(),
        age(o, now),
        string(o, &["status", "nodeInfo", "kubeletVersion"]).into(),
        address("InternalIP").into(),
        address("ExternalIP").into(),
        info("osImage").into(),
        info("kernelVersion").into(),
        info("containerRuntimeVersion").into(),
    ]
}

// --------------------------------------------------------------------------------------------- namespaces, config

pub(super) const NAMESPACE_COLUMNS: &[Col] = &[
    NAME_COL,
    col("Status", "string", "The status of the namespace"),
    AGE_COL,
];

pub(super) fn namespace_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(o).into(),
        string(o, &["status", "phase"]).into(),
        age(o, now),
    ]
}

pub(super) const CONFIGMAP_COLUMNS: &[Col] = &[
    NAME_COL,
    col("Data", "string", "Data contains the configuration data."),
    AGE_COL,
];

pub(super) fn configmap_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let n = map_len(o, &["data"]) + map_len(o, &["binaryData"]);
    vec![name(o).into(), (n as i64).into(), age(o, now)]
}

pub(super) const SECRET_COLUMNS: &[Col] = &[
    NAME_COL,
    col(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data.",
    ),
    col("Data", "string", "Data contains the secret data."),
    AGE_COL,
];

pub(super) fn secret_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(o).into(),
        string(o, &["type"]).into(),
        (map_len(o, &["data"]) as i64).into(),
        age(o, now),
    ]
}

pub(super) const SERVICEACCOUNT_COLUMNS: &[Col] = &[
    NAME_COL,
    col("Secrets", "string", "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."),
    AGE_COL,
];

pub(super) fn serviceaccount_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(o).into(),
        (list(o, &["secrets"]).len() as i64).into(),
        age(o, now),
    ]
}

pub(super) const LEASE_COLUMNS: &[Col] = &[
    NAME_COL,
    col(
        "Holder",
        "string",
        "holderIdentity contains the identity of the holder of a current lease.",
    ),
    AGE_COL,
];

pub(super) fn lease_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(o).into(),
        string(o, &["spec", "holderIdentity"]).into(),
        age(o, now),
    ]
}

// --------------------------------------------------------------------------------------------- services, endpoints

pub(super) const SERVICE_COLUMNS: &[Col] = &[
    NAME_COL,
    col("Type", "string", "type determines how the Service is exposed."),
    col("Cluster-IP", "string", "clusterIP is the IP address of the service and is usually assigned randomly."),
    col("External-IP", "string", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."),
    col("Port(s)", "string", "The list of ports that are exposed by this service."),
    AGE_COL,
    wide("Selector", "string", "Route service traffic to pods with label keys and values matching this selector."),
];

/// The load balancer's ingress points: IPs, else hostnames, sorted and de-duplicated.
fn load_balancer_ingress(o: &Value) -> Vec<String> {
    let mut out: Vec<String> = list(o, &["status", "loadBalancer", "ingress"])
        .iter()
        .filter_map(|i| {
            let ip = string(i, &["ip"]);
            let host = string(i, &["hostname"]);
            if !ip.is_empty() {
                Some(ip.to_string())
            } else if !host.is_empty() {
                Some(host.to_string())
            } else {
                None
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn service_external_ip(o: &Value, ty: &str) -> String {
    let external: Vec<&str> = list(o, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match ty {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".into()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let mut lb = load_balancer_ingress(o);
            if !external.is_empty() {
                lb.extend(external.iter().map(|s| s.to_string()));
                lb.join(",")
            } else if !lb.is_empty() {
                lb.join(",")
            } else {
                "<pending>".into()
            }
        }
        "ExternalName" => string(o, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".into(),
    }
}

pub(super) fn service_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let ty = match string(o, &["spec", "type"]) {
        "" => "ClusterIP",
        t => t,
    };
    // spec.clusterIP is authoritative over clusterIPs[0] (as the v1 -> internal conversion does).
    let mut cluster_ip = string(o, &["spec", "clusterIP"]);
    if cluster_ip.is_empty() {
        cluster_ip = list(o, &["spec", "clusterIPs"])
            .first()
            .and_then(Value::as_str)
            .unwrap_or("");
    }
    let cluster_ip = if cluster_ip.is_empty() {
        "<none>"
    } else {
        cluster_ip
    };
    let ports: Vec<String> = list(o, &["spec", "ports"])
        .iter()
        .map(|p| {
            let protocol = match string(p, &["protocol"]) {
                "" => "TCP",
                s => s,
            };
            let port = int(p, &["port"]);
            let node_port = int(p, &["nodePort"]);
            if node_port > 0 {
                format!("{port}:{node_port}/{protocol}")
            } else {
                format!("{port}/{protocol}")
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    vec![
        name(o).into(),
        ty.into(),
        cluster_ip.into(),
        service_external_ip(o, ty).into(),
        ports.into(),
        age(o, now),
        format_labels(object(o, &["spec", "selector"])).into(),
    ]
}

pub(super) const ENDPOINTS_COLUMNS: &[Col] = &[
    NAME_COL,
    col(
        "Endpoints",
        "string",
        "The set of all endpoints is the union of all subsets.",
    ),
    AGE_COL,
];

/// `net.JoinHostPort`.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `formatEndpoints` for all ports: up to three `ip:port`s, then `+ N more...`.
fn format_endpoints(o: &Value) -> String {
    let subsets = list(o, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 3;
    let mut shown: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addresses = list(ss, &["addresses"]);
        let ports = list(ss, &["ports"]);
        if ports.is_empty() {
            // Headless services without ports.
            count += addresses.len();
            for a in addresses {
                if shown.len() == MAX {
                    more = true;
                    break;
                }
                shown.push(string(a, &["ip"]).to_string());
            }
            continue;
        }
        for p in ports {
            count += addresses.len();
            for a in addresses {
                if shown.len() == MAX {
                    more = true;
                    break;
                }
                shown.push(join_host_port(string(a, &["ip"]), int(p, &["port"])));
            }
        }
    }
    let joined = shown.join(",");
    if more {
        format!("{joined} + {} more...", count.saturating_sub(MAX))
    } else {
        joined
    }
}

pub(super) fn endpoints_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(o).into(), format_endpoints(o).into(), age(o, now)]
}

// --------------------------------------------------------------------------------------------- storage

pub(super) const PV_COLUMNS: &[Col] = &[
    NAME_COL,
    col("Capacity", "string", "capacity is the description of the persistent volume's resources and capacity."),
    col("Access Modes", "string", "accessModes contains all ways the volume can be mounted."),
    col("Reclaim Policy", "string", "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim."),
    col("Status", "string", "phase indicates if a volume is available, bound to a claim, or released by a claim."),
    col("Claim", "string", "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim."),
    col("StorageClass", "string", "StorageClass of the pv"),
    col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
    col("Reason", "string", "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI."),
    AGE_COL,
    wide("VolumeMode", "string", "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state."),
];

pub(super) const PVC_COLUMNS: &[Col] = &[
    NAME_COL,
    col(
        "Status",
        "string",
        "phase represents the current phase of PersistentVolumeClaim.",
    ),
    col(
        "Volume",
        "string",
        "volumeName is the binding reference to the PersistentVolume backing this claim.",
    ),
    col(
        "Capacity",
        "string",
        "capacity represents the actual resources of the underlying volume.",
    ),
    col(
        "Access Modes",
        "string",
        "accessModes contains the actual access modes the volume backing the PVC has.",
    ),
    col("StorageClass", "string", "StorageClass of the pvc"),
    col(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pvc",
    ),
    AGE_COL,
    wide(
        "VolumeMode",
        "string",
        "volumeMode defines what type of volume is required by the claim.",
    ),
];

const BETA_STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// `GetAccessModesAsString`: RWO, ROX, RWX, RWOP in that order.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(m, _)| has(m))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The storage class: the beta annotation, else `spec.storageClassName`.
fn storage_class(o: &Value) -> String {
    if let Some(class) =
        object(o, &["metadata", "annotations"]).and_then(|a| a.get(BETA_STORAGE_CLASS_ANNOTATION))
    {
        return class.as_str().unwrap_or("").to_string();
    }
    string(o, &["spec", "storageClassName"]).to_string()
}

/// The phase, or `Terminating` while being deleted.
fn phase_or_terminating(o: &Value) -> String {
    if at(o, &["metadata", "deletionTimestamp"]).is_some() {
        "Terminating".into()
    } else {
        string(o, &["status", "phase"]).to_string()
    }
}

/// A string field, `<unset>` when absent.
fn or_unset(o: &Value, path: &[&str]) -> String {
    match at(o, path).and_then(Value::as_str) {
        Some(s) => s.to_string(),
        None => "<unset>".into(),
    }
}

pub(super) fn pv_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let claim = match object(o, &["spec", "claimRef"]) {
        Some(_) => format!(
            "{}/{}",
            string(o, &["spec", "claimRef", "namespace"]),
            string(o, &["spec", "claimRef", "name"])
        ),
        None => String::new(),
    };
    vec![
        name(o).into(),
        quantity(at(o, &["spec", "capacity", "storage"])).into(),
        access_modes(list(o, &["spec", "accessModes"])).into(),
        string(o, &["spec", "persistentVolumeReclaimPolicy"]).into(),
        phase_or_terminating(o).into(),
        claim.into(),
        storage_class(o).into(),
        or_unset(o, &["spec", "volumeAttributesClassName"]).into(),
        string(o, &["status", "reason"]).into(),
        age(o, now),
        or_unset(o, &["spec", "volumeMode"]).into(),
    ]
}

pub(super) fn pvc_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let volume = string(o, &["spec", "volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(at(o, &["status", "capacity", "storage"])),
            access_modes(list(o, &["status", "accessModes"])),
        )
    };
    vec![
        name(o).into(),
        phase_or_terminating(o).into(),
        volume.into(),
        capacity.into(),
        modes.into(),
        storage_class(o).into(),
        or_unset(o, &["spec", "volumeAttributesClassName"]).into(),
        age(o, now),
        or_unset(o, &["spec", "volumeMode"]).into(),
    ]
}

// --------------------------------------------------------------------------------------------- storage classes

pub(super) const STORAGECLASS_COLUMNS: &[Col] = &[
    NAME_COL,
    col(
        "Provisioner",
        "string",
        "Indicates the type of the provisioner.",
    ),
    col(
        "ReclaimPolicy",
        "string",
        "Indicates the type of the reclaim policy.",
    ),
    col(
        "VolumeBindingMode",
        "string",
        "Indicates when volume binding and dynamic provisioning should occur",
    ),
    col(
        "AllowVolumeExpansion",
        "string",
        "Indicates whether the storage class allow volume expand",
    ),
    AGE_COL,
];

/// `printStorageClass`: the default class is named `<name> (default)`.
pub(super) fn storageclass_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let default = [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|k| at(o, &["metadata", "annotations", k]).and_then(Value::as_str) == Some("true"));
    let mut n = name(o).to_string();
    if default {
        n.push_str(" (default)");
    }
    let or = |path: &[&str], d: &str| {
        let v = string(o, path);
        if v.is_empty() { d } else { v }.to_string()
    };
    vec![
        n.into(),
        string(o, &["provisioner"]).into(),
        or(&["reclaimPolicy"], "Delete").into(),
        or(&["volumeBindingMode"], "Immediate").into(),
        Value::Bool(
            at(o, &["allowVolumeExpansion"])
                .and_then(Value::as_bool)
                .unwrap_or(false),
        ),
        age(o, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ago, cells, column_names};
    use serde_json::{json, Value};

    fn arr(v: Value) -> Vec<Value> {
        v.as_array().unwrap().clone()
    }

    #[test]
    fn nodes() {
        let names: Vec<String> = column_names("", "nodes")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            [
                "Name",
                "Status",
                "Roles",
                "Age",
                "Version",
                "Internal-IP",
                "External-IP",
                "OS-Image",
                "Kernel-Version",
                "Container-Runtime"
            ]
        );
        let n = json!({"metadata":{"name":"node1","creationTimestamp":ago(3 * 86400),
                "labels":{"node-role.kubernetes.io/control-plane":"","node-role.kubernetes.io/worker":"","kubernetes.io/role":"master","x":"y"}},
            "spec":{},
            "status":{"conditions":[{"type":"MemoryPressure","status":"False"},{"type":"Ready","status":"True"}],
                "addresses":[{"type":"InternalIP","address":"10.0.0.1"},{"type":"Hostname","address":"node1"}],
                "nodeInfo":{"kubeletVersion":"v1.33.0","osImage":"Debian GNU/Linux 12 (bookworm)","kernelVersion":"6.1.0","containerRuntimeVersion":"containerd://1.7.0"}}});
        assert_eq!(
            cells("", "nodes", n.clone()),
            arr(json!([
                "node1",
                "Ready",
                "control-plane,master,worker",
                "3d",
                "v1.33.0",
                "10.0.0.1",
                "<none>",
                "Debian GNU/Linux 12 (bookworm)",
                "6.1.0",
                "containerd://1.7.0"
            ]))
        );
        let mut cordoned = n.clone();
        cordoned["spec"]["unschedulable"] = json!(true);
        assert_eq!(cells("", "nodes", cordoned)[1], "Ready,SchedulingDisabled");
        let mut not_ready = n;
        not_ready["status"]["conditions"][1]["status"] = json!("Unknown");
        assert_eq!(cells("", "nodes", not_ready)[1], "NotReady");
        // Nothing known: upstream's TestPrintNodeInternalIP shape.
        let bare = json!({"metadata":{"name":"foo2"},"status":{"addresses":[{"type":"ExternalIP","address":"1.1.1.1"}]}});
        assert_eq!(
            cells("", "nodes", bare),
            arr(json!([
                "foo2",
                "Unknown",
                "<none>",
                "<unknown>",
                "",
                "<none>",
                "1.1.1.1",
                "<unknown>",
                "<unknown>",
                "<unknown>"
            ]))
        );
    }

    #[test]
    fn namespaces_configmaps_secrets_serviceaccounts_leases() {
        let ns = json!({"metadata":{"name":"default","creationTimestamp":ago(70)},"status":{"phase":"Active"}});
        assert_eq!(
            cells("", "namespaces", ns),
            arr(json!(["default", "Active", "70s"]))
        );
        let mut ns = json!({"metadata":{"name":"gone","creationTimestamp":ago(7200)},"status":{"phase":"Terminating"}});
        assert_eq!(
            cells("", "namespaces", ns.clone()),
            arr(json!(["gone", "Terminating", "120m"]))
        );
        ns["status"] = json!({});
        assert_eq!(cells("", "namespaces", ns)[1], "");

        let cm = json!({"metadata":{"name":"kube-root-ca.crt","creationTimestamp":ago(86400)},"data":{"ca.crt":"x"},"binaryData":{"b":"AA=="}});
        assert_eq!(
            cells("", "configmaps", cm),
            arr(json!(["kube-root-ca.crt", 2, "24h"]))
        );
        let cm = json!({"metadata":{"name":"empty"}});
        assert_eq!(
            cells("", "configmaps", cm),
            arr(json!(["empty", 0, "<unknown>"]))
        );

        let s = json!({"metadata":{"name":"tls","creationTimestamp":ago(300)},"type":"kubernetes.io/tls","data":{"tls.crt":"","tls.key":""}});
        assert_eq!(
            cells("", "secrets", s),
            arr(json!(["tls", "kubernetes.io/tls", 2, "5m"]))
        );
        assert_eq!(
            column_names("", "secrets")
                .into_iter()
                .map(|(n, _)| n)
                .collect::<Vec<_>>(),
            ["Name", "Type", "Data", "Age"]
        );

        let sa = json!({"metadata":{"name":"default","creationTimestamp":ago(45)}});
        assert_eq!(
            cells("", "serviceaccounts", sa),
            arr(json!(["default", 0, "45s"]))
        );
        let sa = json!({"metadata":{"name":"builder"},"secrets":[{"name":"a"}]});
        assert_eq!(cells("", "serviceaccounts", sa)[1], 1);

        let l = json!({"metadata":{"name":"kube-scheduler","creationTimestamp":ago(600)},"spec":{"holderIdentity":"node1_abc"}});
        assert_eq!(
            cells("coordination.k8s.io", "leases", l),
            arr(json!(["kube-scheduler", "node1_abc", "10m"]))
        );
        let l = json!({"metadata":{"name":"free"},"spec":{}});
        assert_eq!(cells("coordination.k8s.io", "leases", l)[1], "");
    }

    #[test]
    fn services() {
        let names: Vec<(String, i64)> = column_names("", "services");
        assert_eq!(names.last().unwrap(), &("Selector".to_string(), 1));
        let svc = json!({"metadata":{"name":"kubernetes","creationTimestamp":ago(3600)},
            "spec":{"type":"ClusterIP","clusterIP":"10.96.0.1","clusterIPs":["10.96.0.1"],"ports":[{"name":"https","port":443,"protocol":"TCP","targetPort":6443}]}});
        assert_eq!(
            cells("", "services", svc),
            arr(json!([
                "kubernetes",
                "ClusterIP",
                "10.96.0.1",
                "<none>",
                "443/TCP",
                "60m",
                "<none>"
            ]))
        );
        let np = json!({"metadata":{"name":"web"},
            "spec":{"type":"NodePort","clusterIPs":["10.96.3.4"],"selector":{"app":"web","tier":"fe"},
                "ports":[{"port":80,"nodePort":30080,"protocol":"TCP"},{"port":53,"protocol":"UDP"}]}});
        assert_eq!(
            cells("", "services", np),
            arr(json!([
                "web",
                "NodePort",
                "10.96.3.4",
                "<none>",
                "80:30080/TCP,53/UDP",
                "<unknown>",
                "app=web,tier=fe"
            ]))
        );
        // Load balancers: pending, then sorted ingress points plus external IPs.
        let lb = json!({"metadata":{"name":"lb"},"spec":{"type":"LoadBalancer","clusterIP":"1.3.4.5","ports":[{"port":80,"protocol":"TCP"},{"port":8090,"protocol":"UDP"}]}});
        assert_eq!(cells("", "services", lb.clone())[3], "<pending>");
        let mut lb2 = lb.clone();
        lb2["status"] = json!({"loadBalancer":{"ingress":[{"ip":"3.4.5.6"},{"ip":"2.3.4.5"},{"hostname":"h.example"},{"ip":"5.6.7.8","hostname":"x"}]}});
        assert_eq!(
            cells("", "services", lb2.clone())[3],
            "2.3.4.5,3.4.5.6,5.6.7.8,h.example"
        );
        lb2["spec"]["externalIPs"] = json!(["9.9.9.9"]);
        assert_eq!(
            cells("", "services", lb2)[3],
            "2.3.4.5,3.4.5.6,5.6.7.8,h.example,9.9.9.9"
        );
        let en = json!({"metadata":{"name":"ext"},"spec":{"type":"ExternalName","externalName":"example.com"}});
        assert_eq!(
            cells("", "services", en)[1..5],
            [
                json!("ExternalName"),
                json!("<none>"),
                json!("example.com"),
                json!("<none>")
            ]
        );
        let headless = json!({"metadata":{"name":"h"},"spec":{"type":"ClusterIP","clusterIP":"None","externalIPs":["1.2.3.4","5.6.7.8"]}});
        assert_eq!(
            cells("", "services", headless)[2..4],
            [json!("None"), json!("1.2.3.4,5.6.7.8")]
        );
    }

    #[test]
    fn endpoints() {
        let ep = json!({"metadata":{"name":"kubernetes","creationTimestamp":ago(3600)},
            "subsets":[{"addresses":[{"ip":"10.0.0.1"}],"ports":[{"name":"https","port":6443,"protocol":"TCP"}]}]});
        assert_eq!(
            cells("", "endpoints", ep),
            arr(json!(["kubernetes", "10.0.0.1:6443", "60m"]))
        );
        let none = json!({"metadata":{"name":"x"}});
        assert_eq!(cells("", "endpoints", none)[1], "<none>");
        let many = json!({"metadata":{"name":"m"},"subsets":[
            {"addresses":[{"ip":"1.1.1.1"},{"ip":"2.2.2.2"}],"ports":[{"port":80},{"port":443}]},
            {"addresses":[{"ip":"fd00::1"}]}]});
        assert_eq!(
            cells("", "endpoints", many)[1],
            "1.1.1.1:80,2.2.2.2:80,1.1.1.1:443 + 2 more..."
        );
        let headless = json!({"metadata":{"name":"h"},"subsets":[{"addresses":[{"ip":"fd00::1"},{"ip":"10.1.1.1"}]}]});
        assert_eq!(cells("", "endpoints", headless)[1], "fd00::1,10.1.1.1");
        let v6 = json!({"metadata":{"name":"h"},"subsets":[{"addresses":[{"ip":"fd00::1"}],"ports":[{"port":53}]}]});
        assert_eq!(cells("", "endpoints", v6)[1], "[fd00::1]:53");
    }

    #[test]
    fn storage_classes() {
        let names: Vec<String> = column_names("storage.k8s.io", "storageclasses")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            [
                "Name",
                "Provisioner",
                "ReclaimPolicy",
                "VolumeBindingMode",
                "AllowVolumeExpansion",
                "Age"
            ]
        );
        let sc = json!({"metadata": {"name": "local-path", "creationTimestamp": ago(60),
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
        assert_eq!(
            cells("storage.k8s.io", "storageclasses", sc),
            arr(json!([
                "local-path (default)",
                "rancher.io/local-path",
                "Delete",
                "WaitForFirstConsumer",
                false,
                "60s"
            ]))
        );
    }

    #[test]
    fn persistent_volumes_and_claims() {
        let names: Vec<String> = column_names("", "persistentvolumes")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            [
                "Name",
                "Capacity",
                "Access Modes",
                "Reclaim Policy",
                "Status",
                "Claim",
                "StorageClass",
                "VolumeAttributesClass",
                "Reason",
                "Age",
                "VolumeMode"
            ]
        );
        let pv = json!({"metadata":{"name":"pv1","creationTimestamp":ago(600)},
            "spec":{"capacity":{"storage":"10Gi"},"accessModes":["ReadWriteMany","ReadWriteOnce"],"persistentVolumeReclaimPolicy":"Retain",
                "claimRef":{"namespace":"default","name":"data"},"storageClassName":"standard","volumeMode":"Filesystem"},
            "status":{"phase":"Bound"}});
        assert_eq!(
            cells("", "persistentvolumes", pv.clone()),
            arr(json!([
                "pv1",
                "10Gi",
                "RWO,RWX",
                "Retain",
                "Bound",
                "default/data",
                "standard",
                "<unset>",
                "",
                "10m",
                "Filesystem"
            ]))
        );
        let mut deleting = pv;
        deleting["metadata"]["deletionTimestamp"] = json!(ago(1));
        deleting["metadata"]["annotations"] =
            json!({"volume.beta.kubernetes.io/storage-class":"beta"});
        deleting["status"]["reason"] = json!("Oops");
        let c = cells("", "persistentvolumes", deleting);
        assert_eq!(
            (c[4].clone(), c[6].clone(), c[8].clone()),
            (json!("Terminating"), json!("beta"), json!("Oops"))
        );
        let bare = json!({"metadata":{"name":"b"}});
        assert_eq!(
            cells("", "persistentvolumes", bare),
            arr(json!([
                "b",
                "0",
                "",
                "",
                "",
                "",
                "",
                "<unset>",
                "",
                "<unknown>",
                "<unset>"
            ]))
        );

        let pvc = json!({"metadata":{"name":"data","creationTimestamp":ago(30)},
            "spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}},"storageClassName":"standard",
                "volumeMode":"Filesystem","volumeName":"pv1","volumeAttributesClassName":"gold"},
            "status":{"phase":"Bound","accessModes":["ReadWriteOnce","ReadWriteOncePod"],"capacity":{"storage":"10Gi"}}});
        assert_eq!(
            cells("", "persistentvolumeclaims", pvc),
            arr(json!([
                "data",
                "Bound",
                "pv1",
                "10Gi",
                "RWO,RWOP",
                "standard",
                "gold",
                "30s",
                "Filesystem"
            ]))
        );
        let pending = json!({"metadata":{"name":"p"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}},"status":{"phase":"Pending"}});
        assert_eq!(
            cells("", "persistentvolumeclaims", pending),
            arr(json!([
                "p",
                "Pending",
                "",
                "",
                "",
                "",
                "<unset>",
                "<unknown>",
                "<unset>"
            ]))
        );
    }
}
