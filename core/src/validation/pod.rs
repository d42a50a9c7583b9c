//! Pod and pod-template validation (`ValidatePodCreate`, `ValidatePodSpec`, containers, volumes,
//! probes, resources, tolerations, affinity, DNS config, security context) and the pod update
//! rules (`ValidatePodUpdate`: only images, activeDeadlineSeconds, toleration additions and
//! scheduling-gate removals may change), plus the QoS class computation.

use super::meta::{validate_label_selector, validate_labels, validate_object_meta, MetaRules};
use super::names::{
    inclusive_range_error, is_config_map_key, is_dns1123_label, is_dns1123_subdomain,
    is_dns1123_subdomain_with_underscore, is_http_header_name, is_qualified_name,
    is_relaxed_env_var_name, is_valid_label_value, is_valid_port_name, is_valid_port_num,
    parse_ip_sloppy, NameRule, INVALID_IP_MSG,
};
use super::quantity::{Quantity, QUANTITY_FORMAT_ERR};
use super::{
    arr, boolean, fld, go_quote, int, obj, opt_str, semantic_eq, st, string_map, sub, Bad, Errs,
    IS_NEGATIVE,
};
use serde_json::{Map, Value};

const FILE_MODE_ERR: &str = "must be a number between 0 and 0777 (octal), both inclusive";
const MAX_INT32: i64 = 2147483647;

/// What the caller of `validate_pod_spec` knows.
#[derive(Clone, Copy)]
pub(crate) struct SpecOpts<'a> {
    /// The spec belongs to a Pod (not a template).
    pub is_pod: bool,
    /// The pod's name, for generic ephemeral volume checks.
    pub pod_name: Option<&'a str>,
}

struct Ctx<'a> {
    vols: Vec<(&'a str, &'a Value)>,
    claim_names: Vec<&'a str>,
    grace: Option<i64>,
    restart_policy: &'a str,
    host_users: bool,
}

impl Ctx<'_> {
    fn volume(&self, name: &str) -> Option<&Value> {
        self.vols.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
}

fn quantity_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Pods.

/// `ValidatePodCreate`.
pub(crate) fn validate_pod_create(pod: &Value, e: &mut Errs) {
    validate_pod_metadata_and_spec(pod, e);
    let spec = sub(pod, "spec");
    if !arr(spec, "ephemeralContainers").is_empty() {
        e.forbidden("spec.ephemeralContainers", "cannot be set on create");
    }
    if !st(spec, "nodeName").is_empty() && !arr(spec, "schedulingGates").is_empty() {
        e.forbidden(
            "spec.nodeName",
            "cannot be set until all schedulingGates have been cleared",
        );
    }
}

fn validate_pod_metadata_and_spec(pod: &Value, e: &mut Errs) {
    validate_object_meta(pod, MetaRules::core(true, NameRule::Dns1123Subdomain), e);
    let meta = sub(pod, "metadata");
    let spec = sub(pod, "spec");
    validate_pod_specific_annotations(meta, spec, e);
    let name = opt_str(meta, "name");
    validate_pod_spec(
        spec,
        "spec",
        SpecOpts {
            is_pod: true,
            pod_name: name,
        },
        e,
    );
    if st(spec, "serviceAccountName").is_empty() && st(spec, "serviceAccount").is_empty() {
        for (vi, v) in arr(spec, "volumes").iter().enumerate() {
            for (si, s) in arr(sub(v, "projected"), "sources").iter().enumerate() {
                if fld(s, "serviceAccountToken").is_some() {
                    e.forbidden(
                        &format!("spec.volumes[{vi}].projected.sources[{si}].serviceAccountToken"),
                        "must not be specified when serviceAccountName is not set",
                    );
                }
            }
        }
    }
    for key in ["containers", "initContainers"] {
        for (i, c) in arr(spec, key).iter().enumerate() {
            let image = st(c, "image");
            if image.len() != image.trim().len() {
                e.invalid(
                    &format!("spec.{key}[{i}].image"),
                    Bad::s(image),
                    "must not have leading or trailing whitespace",
                );
            }
        }
    }
}

fn validate_pod_specific_annotations(meta: &Value, spec: &Value, e: &mut Errs) {
    for (k, v) in string_map(meta, "annotations") {
        if k == "kubernetes.io/config.mirror" && st(spec, "nodeName").is_empty() {
            e.invalid(
                "metadata.annotations[kubernetes.io/config.mirror]",
                Bad::s(v),
                "must set spec.nodeName if mirror pod annotation is set",
            );
        }
        if k == "controller.kubernetes.io/pod-deletion-cost" && v.parse::<i32>().is_err() {
            e.invalid(
                "metadata.annotations[controller.kubernetes.io/pod-deletion-cost]",
                Bad::s(v),
                "must be a 32bit integer",
            );
        }
    }
}

/// `ValidatePodTemplateSpec` at `path` (e.g. `spec.template`).
pub(crate) fn validate_pod_template_spec(template: &Value, path: &str, e: &mut Errs) {
    let meta = sub(template, "metadata");
    validate_labels(fld(meta, "labels"), &format!("{path}.labels"), e);
    super::meta::validate_annotations(fld(meta, "annotations"), &format!("{path}.annotations"), e);
    let spec = sub(template, "spec");
    validate_pod_spec(
        spec,
        &format!("{path}.spec"),
        SpecOpts {
            is_pod: false,
            pod_name: None,
        },
        e,
    );
    if !arr(spec, "ephemeralContainers").is_empty() {
        e.forbidden(
            &format!("{path}.spec.ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        );
    }
}

/// `ValidatePodSpec`.
pub(crate) fn validate_pod_spec(spec: &Value, path: &str, opts: SpecOpts<'_>, e: &mut Errs) {
    if fld(spec, "terminationGracePeriodSeconds").is_none() {
        e.required(&format!("{path}.terminationGracePeriodSeconds"), "");
    }
    let sc = sub(spec, "securityContext");
    let host_users = boolean(spec, "hostUsers").unwrap_or(true);
    let vols = validate_volumes(
        arr(spec, "volumes"),
        opts.pod_name,
        &format!("{path}.volumes"),
        e,
    );
    let claim_names: Vec<&str> = arr(spec, "resourceClaims")
        .iter()
        .map(|c| st(c, "name"))
        .filter(|n| !n.is_empty())
        .collect();
    validate_pod_resource_claims(
        arr(spec, "resourceClaims"),
        &format!("{path}.resourceClaims"),
        e,
    );
    let ctx = Ctx {
        vols,
        claim_names,
        grace: int(spec, "terminationGracePeriodSeconds"),
        restart_policy: st(spec, "restartPolicy"),
        host_users,
    };
    validate_containers(spec, path, &ctx, e);
    validate_init_containers(spec, path, &ctx, e);
    validate_ephemeral_containers(spec, path, &ctx, e);
    validate_host_network_deps(spec, path, opts.is_pod, e);

    match st(spec, "restartPolicy") {
        "Always" | "OnFailure" | "Never" => {}
        "" => e.required(&format!("{path}.restartPolicy"), ""),
        other => e.not_supported(
            &format!("{path}.restartPolicy"),
            Bad::s(other),
            &["Always", "OnFailure", "Never"],
        ),
    }
    let dns_policy = st(spec, "dnsPolicy");
    match dns_policy {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => e.required(&format!("{path}.dnsPolicy"), ""),
        other => e.not_supported(
            &format!("{path}.dnsPolicy"),
            Bad::s(other),
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        ),
    }
    validate_labels(
        fld(spec, "nodeSelector"),
        &format!("{path}.nodeSelector"),
        e,
    );
    validate_pod_security_context(spec, sc, path, e);
    for (i, s) in arr(spec, "imagePullSecrets").iter().enumerate() {
        if s.as_object().is_some_and(|m| m.keys().any(|k| k != "name")) {
            e.invalid(
                &format!("{path}.imagePullSecrets[{i}]"),
                Bad::Raw(s.to_string()),
                "only name may be set",
            );
        }
    }
    if let Some(aff) = fld(spec, "affinity") {
        validate_affinity(aff, &format!("{path}.affinity"), e);
    }
    validate_dns_config(
        fld(spec, "dnsConfig"),
        dns_policy,
        &format!("{path}.dnsConfig"),
        e,
    );
    for (i, g) in arr(spec, "readinessGates").iter().enumerate() {
        let t = st(g, "conditionType");
        e.invalid_each(
            &format!("{path}.readinessGates[{i}].conditionType"),
            t,
            is_qualified_name(t),
        );
    }
    let mut seen_gates: Vec<&str> = Vec::new();
    for (i, g) in arr(spec, "schedulingGates").iter().enumerate() {
        let n = st(g, "name");
        let p = format!("{path}.schedulingGates[{i}]");
        e.invalid_each(&p, n, is_qualified_name(n));
        if seen_gates.contains(&n) {
            e.duplicate(&p, Bad::s(n));
        }
        seen_gates.push(n);
    }
    validate_topology_spread(
        arr(spec, "topologySpreadConstraints"),
        &format!("{path}.topologySpreadConstraints"),
        e,
    );
    if !host_users {
        if boolean(spec, "hostNetwork") == Some(true) {
            e.forbidden(
                &format!("{path}.hostNetwork"),
                "when `pod.Spec.HostUsers` is false",
            );
        }
        if boolean(spec, "hostPID") == Some(true) {
            e.forbidden(
                &format!("{path}.HostPID"),
                "when `pod.Spec.HostUsers` is false",
            );
        }
        if boolean(spec, "hostIPC") == Some(true) {
            e.forbidden(
                &format!("{path}.HostIPC"),
                "when `pod.Spec.HostUsers` is false",
            );
        }
    }
    let sa = st(spec, "serviceAccountName");
    if !sa.is_empty() {
        e.invalid_each(
            &format!("{path}.serviceAccountName"),
            sa,
            is_dns1123_subdomain(sa),
        );
    }
    let node = st(spec, "nodeName");
    if !node.is_empty() {
        e.invalid_each(
            &format!("{path}.nodeName"),
            node,
            is_dns1123_subdomain(node),
        );
    }
    if let Some(v) = int(spec, "activeDeadlineSeconds") {
        if !(1..=MAX_INT32).contains(&v) {
            e.invalid(
                &format!("{path}.activeDeadlineSeconds"),
                Bad::n(v),
                &inclusive_range_error(1, MAX_INT32),
            );
        }
    }
    for key in ["hostname", "subdomain"] {
        let v = st(spec, key);
        if !v.is_empty() {
            e.invalid_each(&format!("{path}.{key}"), v, is_dns1123_label(v));
        }
    }
    validate_tolerations(arr(spec, "tolerations"), &format!("{path}.tolerations"), e);
    for (i, h) in arr(spec, "hostAliases").iter().enumerate() {
        let ip = st(h, "ip");
        if parse_ip_sloppy(ip).is_none() {
            e.invalid(
                &format!("{path}.hostAliases[{i}].ip"),
                Bad::s(ip),
                INVALID_IP_MSG,
            );
        }
        for (j, hn) in arr(h, "hostnames").iter().enumerate() {
            let hn = hn.as_str().unwrap_or("");
            e.invalid_each(
                &format!("{path}.hostAliases[{i}].hostnames[{j}]"),
                hn,
                is_dns1123_subdomain(hn),
            );
        }
    }
    let pc = st(spec, "priorityClassName");
    if !pc.is_empty() {
        e.invalid_each(
            &format!("{path}.priorityClassName"),
            pc,
            is_dns1123_subdomain(pc),
        );
    }
    if let Some(rc) = opt_str(spec, "runtimeClassName") {
        e.invalid_each(
            &format!("{path}.runtimeClassName"),
            rc,
            is_dns1123_subdomain(rc),
        );
    }
    if let Some(pp) = opt_str(spec, "preemptionPolicy") {
        match pp {
            "PreemptLowerPriority" | "Never" => {}
            "" => e.required(&format!("{path}.preemptionPolicy"), ""),
            other => e.not_supported(
                &format!("{path}.preemptionPolicy"),
                Bad::s(other),
                &["PreemptLowerPriority", "Never"],
            ),
        }
    }
    if let Some(overhead) = fld(spec, "overhead") {
        let req = serde_json::json!({ "limits": overhead });
        validate_resource_requirements(&req, &[], &format!("{path}.overhead"), e);
    }
    if let Some(os) = fld(spec, "os") {
        let n = st(os, "name");
        if n.is_empty() {
            e.required(&format!("{path}.os.name"), "");
        } else if n != "linux" && n != "windows" {
            e.not_supported(&format!("{path}.os.name"), Bad::s(n), &["linux", "windows"]);
        }
    }
}

fn validate_pod_resource_claims(claims: &[Value], path: &str, e: &mut Errs) {
    let mut names: Vec<&str> = Vec::new();
    for (i, c) in claims.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let n = st(c, "name");
        if n.is_empty() {
            e.required(&format!("{p}.name"), "");
        } else if names.contains(&n) {
            e.duplicate(&format!("{p}.name"), Bad::s(n));
        } else {
            e.invalid_each(&format!("{p}.name"), n, is_dns1123_label(n));
            names.push(n);
        }
        let a = opt_str(c, "resourceClaimName");
        let b = opt_str(c, "resourceClaimTemplateName");
        if a.is_some() && b.is_some() {
            e.invalid(&p, Bad::Raw(c.to_string()), "at most one of `resourceClaimName` or `resourceClaimTemplateName` may be specified");
        }
        if a.is_none() && b.is_none() {
            e.invalid(
                &p,
                Bad::Raw(c.to_string()),
                "must specify one of: `resourceClaimName`, `resourceClaimTemplateName`",
            );
        }
        if let Some(a) = a {
            e.invalid_each(
                &format!("{p}.resourceClaimName"),
                a,
                is_dns1123_subdomain(a),
            );
        }
        if let Some(b) = b {
            e.invalid_each(
                &format!("{p}.resourceClaimTemplateName"),
                b,
                is_dns1123_subdomain(b),
            );
        }
    }
}

fn validate_host_network_deps(spec: &Value, path: &str, is_pod: bool, e: &mut Errs) {
    if boolean(spec, "hostNetwork") != Some(true) {
        return;
    }
    for (i, c) in arr(spec, "containers").iter().enumerate() {
        for (j, p) in arr(c, "ports").iter().enumerate() {
            let hp = int(p, "hostPort").unwrap_or(0);
            let cp = int(p, "containerPort").unwrap_or(0);
            if (is_pod || hp != 0) && hp != cp {
                e.invalid(
                    &format!("{path}.containers[{i}].ports[{j}].hostPort"),
                    Bad::n(hp),
                    "must match `containerPort` when `hostNetwork` is true",
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Containers.

fn validate_containers(spec: &Value, path: &str, ctx: &Ctx<'_>, e: &mut Errs) {
    let containers = arr(spec, "containers");
    let cpath = format!("{path}.containers");
    if containers.is_empty() {
        e.required(&cpath, "");
        return;
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let p = format!("{cpath}[{i}]");
        validate_container_common(c, &p, ctx, e);
        let n = st(c, "name");
        if names.contains(&n) {
            e.duplicate(&format!("{p}.name"), Bad::s(n));
        } else {
            names.push(n);
        }
        if let Some(l) = fld(c, "lifecycle") {
            validate_lifecycle(l, ctx.grace, &format!("{p}.lifecycle"), e);
        }
        validate_probe_kind(
            fld(c, "livenessProbe"),
            ProbeKind::Liveness,
            &format!("{p}.livenessProbe"),
            e,
        );
        validate_probe_kind(
            fld(c, "readinessProbe"),
            ProbeKind::Readiness,
            &format!("{p}.readinessProbe"),
            e,
        );
        validate_probe_kind(
            fld(c, "startupProbe"),
            ProbeKind::Startup,
            &format!("{p}.startupProbe"),
            e,
        );
        if fld(c, "restartPolicy").is_some() {
            e.forbidden(
                &format!("{p}.restartPolicy"),
                "may not be set for non-init containers",
            );
        }
    }
    check_host_port_conflicts(containers, &cpath, 0, e);
}

fn validate_init_containers(spec: &Value, path: &str, ctx: &Ctx<'_>, e: &mut Errs) {
    let mut names: Vec<&str> = arr(spec, "containers")
        .iter()
        .map(|c| st(c, "name"))
        .collect();
    let ipath = format!("{path}.initContainers");
    for (i, c) in arr(spec, "initContainers").iter().enumerate() {
        let p = format!("{ipath}[{i}]");
        validate_container_common(c, &p, ctx, e);
        let mut restart_always = false;
        if let Some(rp) = fld(c, "restartPolicy") {
            let rp = rp.as_str().unwrap_or("");
            if rp != "Always" {
                e.not_supported(&format!("{p}.restartPolicy"), Bad::s(rp), &["Always"]);
            }
            restart_always = rp == "Always";
        }
        let n = st(c, "name");
        if names.contains(&n) {
            e.duplicate(&format!("{p}.name"), Bad::s(n));
        } else if !n.is_empty() {
            names.push(n);
        }
        check_host_port_conflicts(std::slice::from_ref(c), &ipath, 0, e);
        if restart_always {
            if let Some(l) = fld(c, "lifecycle") {
                validate_lifecycle(l, ctx.grace, &format!("{p}.lifecycle"), e);
            }
            validate_probe_kind(
                fld(c, "livenessProbe"),
                ProbeKind::Liveness,
                &format!("{p}.livenessProbe"),
                e,
            );
            validate_probe_kind(
                fld(c, "readinessProbe"),
                ProbeKind::Readiness,
                &format!("{p}.readinessProbe"),
                e,
            );
            validate_probe_kind(
                fld(c, "startupProbe"),
                ProbeKind::Startup,
                &format!("{p}.startupProbe"),
                e,
            );
        } else {
            for key in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if fld(c, key).is_some() {
                    e.forbidden(
                        &format!("{p}.{key}"),
                        "may not be set for init containers without restartPolicy=Always",
                    );
                }
            }
        }
    }
}

const EPHEMERAL_FORBIDDEN: &[&str] = &[
    "ports",
    "resources",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "resizePolicy",
    "restartPolicy",
];

/// `validateEphemeralContainers`.
fn validate_ephemeral_containers(spec: &Value, path: &str, ctx: &Ctx<'_>, e: &mut Errs) {
    let eph = arr(spec, "ephemeralContainers");
    if eph.is_empty() {
        return;
    }
    let others: Vec<&str> = arr(spec, "containers")
        .iter()
        .chain(arr(spec, "initContainers").iter())
        .map(|c| st(c, "name"))
        .collect();
    let mut all = others.clone();
    for (i, c) in eph.iter().enumerate() {
        let p = format!("{path}.ephemeralContainers[{i}]");
        validate_container_common(c, &p, ctx, e);
        let image = st(c, "image");
        if image.len() != image.trim().len() {
            e.invalid(
                &format!("{p}.image"),
                Bad::s(image),
                "must not have leading or trailing whitespace",
            );
        }
        let name = st(c, "name");
        if all.contains(&name) {
            e.duplicate(&format!("{p}.name"), Bad::s(name));
        } else {
            all.push(name);
        }
        let target = st(c, "targetContainerName");
        if !target.is_empty() && !others.contains(&target) {
            e.not_found(&format!("{p}.targetContainerName"), Bad::s(target));
        }
        for key in EPHEMERAL_FORBIDDEN {
            let set = match fld(c, key) {
                None => false,
                Some(Value::Object(m)) => m
                    .values()
                    .any(|v| super::normalized(v).is_some_and(|n| n != Value::Object(Map::new()))),
                Some(Value::Array(a)) => !a.is_empty(),
                Some(_) => true,
            };
            if set {
                e.forbidden(
                    &format!("{p}.{key}"),
                    "cannot be set for an Ephemeral Container",
                );
            }
        }
        for (j, m) in arr(c, "volumeMounts").iter().enumerate() {
            for key in ["subPath", "subPathExpr"] {
                if !st(m, key).is_empty() {
                    e.forbidden(
                        &format!("{p}.volumeMounts[{j}].{key}"),
                        "cannot be set for an Ephemeral Container",
                    );
                }
            }
        }
    }
}

fn check_host_port_conflicts(containers: &[Value], path: &str, base: usize, e: &mut Errs) {
    let mut seen: Vec<String> = Vec::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, p) in arr(c, "ports").iter().enumerate() {
            let hp = int(p, "hostPort").unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let key = format!("{}/{}/{}", st(p, "protocol"), st(p, "hostIP"), hp);
            if seen.contains(&key) {
                e.duplicate(
                    &format!("{path}[{}].ports[{pi}].hostPort", ci + base),
                    Bad::Str(key),
                );
            } else {
                seen.push(key);
            }
        }
    }
}

fn validate_container_common(c: &Value, p: &str, ctx: &Ctx<'_>, e: &mut Errs) {
    let name = st(c, "name");
    if name.is_empty() {
        e.required(&format!("{p}.name"), "");
    } else {
        e.invalid_each(&format!("{p}.name"), name, is_dns1123_label(name));
    }
    if st(c, "image").is_empty() {
        e.required(&format!("{p}.image"), "");
    }
    match st(c, "terminationMessagePolicy") {
        "File" | "FallbackToLogsOnError" => {}
        "" => e.required(&format!("{p}.terminationMessagePolicy"), ""),
        other => e.not_supported(
            &format!("{p}.terminationMessagePolicy"),
            Bad::s(other),
            &["File", "FallbackToLogsOnError"],
        ),
    }
    validate_container_ports(arr(c, "ports"), &format!("{p}.ports"), e);
    validate_env(arr(c, "env"), &format!("{p}.env"), e);
    validate_env_from(arr(c, "envFrom"), &format!("{p}.envFrom"), e);
    let devices: Vec<(&str, &str)> = arr(c, "volumeDevices")
        .iter()
        .map(|d| (st(d, "name"), st(d, "devicePath")))
        .collect();
    let mounts: Vec<(&str, &str)> = arr(c, "volumeMounts")
        .iter()
        .map(|m| (st(m, "name"), st(m, "mountPath")))
        .collect();
    validate_volume_mounts(c, &devices, ctx, &format!("{p}.volumeMounts"), e);
    validate_volume_devices(
        arr(c, "volumeDevices"),
        &mounts,
        ctx,
        &format!("{p}.volumeDevices"),
        e,
    );
    match st(c, "imagePullPolicy") {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => e.required(&format!("{p}.imagePullPolicy"), ""),
        other => e.not_supported(
            &format!("{p}.imagePullPolicy"),
            Bad::s(other),
            &["Always", "IfNotPresent", "Never"],
        ),
    }
    validate_resource_requirements(
        sub(c, "resources"),
        &ctx.claim_names,
        &format!("{p}.resources"),
        e,
    );
    validate_resize_policy(
        arr(c, "resizePolicy"),
        ctx.restart_policy,
        &format!("{p}.resizePolicy"),
        e,
    );
    if let Some(sc) = fld(c, "securityContext") {
        validate_security_context(sc, ctx.host_users, &format!("{p}.securityContext"), e);
    }
}

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

fn validate_container_ports(ports: &[Value], path: &str, e: &mut Errs) {
    let mut names: Vec<&str> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let name = st(port, "name");
        if !name.is_empty() {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                e.invalid_each(&format!("{p}.name"), name, msgs);
            } else if names.contains(&name) {
                e.duplicate(&format!("{p}.name"), Bad::s(name));
            } else {
                names.push(name);
            }
        }
        let cp = int(port, "containerPort").unwrap_or(0);
        if cp == 0 {
            e.required(&format!("{p}.containerPort"), "");
        } else {
            for m in is_valid_port_num(cp) {
                e.invalid(&format!("{p}.containerPort"), Bad::n(cp), &m);
            }
        }
        let hp = int(port, "hostPort").unwrap_or(0);
        if hp != 0 {
            for m in is_valid_port_num(hp) {
                e.invalid(&format!("{p}.hostPort"), Bad::n(hp), &m);
            }
        }
        match st(port, "protocol") {
            "" => e.required(&format!("{p}.protocol"), ""),
            "TCP" | "UDP" | "SCTP" => {}
            other => e.not_supported(&format!("{p}.protocol"), Bad::s(other), PROTOCOLS),
        }
    }
}

const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
const VOLUME_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];
const CONVERTIBLE_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.serviceAccountName",
    "spec.schedulerName",
    "status.phase",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
const RESOURCE_FIELD_PATHS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

fn validate_object_field_selector(fs: &Value, expressions: &[&str], path: &str, e: &mut Errs) {
    let api_version = st(fs, "apiVersion");
    if api_version.is_empty() {
        e.required(&format!("{path}.apiVersion"), "");
        return;
    }
    let fp = st(fs, "fieldPath");
    if fp.is_empty() {
        e.required(&format!("{path}.fieldPath"), "");
        return;
    }
    // Subscripted metadata.labels['x'] / metadata.annotations['x'].
    let subscript = fp.find('[').and_then(|i| {
        let inner = fp[i + 1..].strip_suffix(']')?;
        let key = inner.strip_prefix('\'')?.strip_suffix('\'')?;
        Some((&fp[..i], key))
    });
    let base = subscript.map_or(fp, |(b, _)| b);
    if api_version != "v1" {
        e.invalid(
            &format!("{path}.fieldPath"),
            Bad::s(fp),
            &format!("error converting fieldPath: unsupported pod version: {api_version}"),
        );
        return;
    }
    if !CONVERTIBLE_FIELD_PATHS.contains(&base) {
        e.invalid(
            &format!("{path}.fieldPath"),
            Bad::s(fp),
            &format!("error converting fieldPath: field label not supported: {fp}"),
        );
        return;
    }
    if let Some((b, key)) = subscript {
        match b {
            "metadata.annotations" => {
                let k = key.to_lowercase();
                e.invalid_each(path, &k, is_qualified_name(&k));
            }
            "metadata.labels" => e.invalid_each(path, key, is_qualified_name(key)),
            other => e.invalid(path, Bad::s(other), "does not support subscript"),
        }
    } else if !expressions.contains(&fp) {
        e.not_supported(&format!("{path}.fieldPath"), Bad::s(fp), expressions);
    }
}

fn validate_resource_field_selector(fs: &Value, volume: bool, path: &str, e: &mut Errs) {
    let resource = st(fs, "resource");
    if volume && st(fs, "containerName").is_empty() {
        e.required(&format!("{path}.containerName"), "");
    } else if resource.is_empty() {
        e.required(&format!("{path}.resource"), "");
    } else if !RESOURCE_FIELD_PATHS.contains(&resource)
        && !resource.starts_with("requests.hugepages-")
        && !resource.starts_with("limits.hugepages-")
    {
        e.not_supported(
            &format!("{path}.resource"),
            Bad::s(resource),
            RESOURCE_FIELD_PATHS,
        );
    }
    if let Some(d) = fld(fs, "divisor") {
        let canon = Quantity::parse(&quantity_str(d))
            .map(|q| q.canonical())
            .unwrap_or_default();
        if canon != "0" && !canon.is_empty() {
            let mem = [
                "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei",
            ];
            let (ok, what) = match resource {
                "limits.cpu" | "requests.cpu" => (["1m", "1"].contains(&canon.as_str()), "only divisor's values 1m and 1 are supported with the cpu resource"),
                "limits.memory" | "requests.memory" => (mem.contains(&canon.as_str()), "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource"),
                "limits.ephemeral-storage" | "requests.ephemeral-storage" => (mem.contains(&canon.as_str()), "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the local ephemeral storage resource"),
                _ => (true, ""),
            };
            if !ok {
                e.invalid(&format!("{path}.divisor"), Bad::s(resource), what);
            }
        }
    }
}

fn validate_key_selector(s: &Value, path: &str, e: &mut Errs) {
    let name = st(s, "name");
    e.invalid_each(&format!("{path}.name"), name, is_dns1123_subdomain(name));
    let key = st(s, "key");
    if key.is_empty() {
        e.required(&format!("{path}.key"), "");
    } else {
        e.invalid_each(&format!("{path}.key"), key, is_config_map_key(key));
    }
}

fn validate_env(vars: &[Value], path: &str, e: &mut Errs) {
    for (i, ev) in vars.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let name = st(ev, "name");
        if name.is_empty() {
            e.required(&format!("{p}.name"), "");
        } else {
            e.invalid_each(&format!("{p}.name"), name, is_relaxed_env_var_name(name));
        }
        let Some(vf) = fld(ev, "valueFrom") else {
            continue;
        };
        let vp = format!("{p}.valueFrom");
        let mut n = 0;
        if let Some(fs) = fld(vf, "fieldRef") {
            n += 1;
            validate_object_field_selector(fs, ENV_FIELD_PATHS, &format!("{vp}.fieldRef"), e);
        }
        if let Some(rs) = fld(vf, "resourceFieldRef") {
            n += 1;
            validate_resource_field_selector(rs, false, &format!("{vp}.resourceFieldRef"), e);
        }
        if let Some(s) = fld(vf, "configMapKeyRef") {
            n += 1;
            validate_key_selector(s, &format!("{vp}.configMapKeyRef"), e);
        }
        if let Some(s) = fld(vf, "secretKeyRef") {
            n += 1;
            validate_key_selector(s, &format!("{vp}.secretKeyRef"), e);
        }
        if n == 0 {
            e.invalid(&vp, Bad::s(""), "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`");
        } else if !st(ev, "value").is_empty() {
            e.invalid(
                &vp,
                Bad::s(""),
                "may not be specified when `value` is not empty",
            );
        } else if n > 1 {
            e.invalid(
                &vp,
                Bad::s(""),
                "may not have more than one field specified at a time",
            );
        }
    }
}

fn validate_env_from(vars: &[Value], path: &str, e: &mut Errs) {
    for (i, ev) in vars.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let prefix = st(ev, "prefix");
        if !prefix.is_empty() {
            e.invalid_each(
                &format!("{p}.prefix"),
                prefix,
                is_relaxed_env_var_name(prefix),
            );
        }
        let mut n = 0;
        for key in ["configMapRef", "secretRef"] {
            if let Some(r) = fld(ev, key) {
                n += 1;
                let name = st(r, "name");
                if name.is_empty() {
                    e.required(&format!("{p}.{key}.name"), "");
                } else {
                    e.invalid_each(
                        &format!("{p}.{key}.name"),
                        name,
                        NameRule::Dns1123Subdomain.check(name, true),
                    );
                }
            }
        }
        if n == 0 {
            e.invalid(
                path,
                Bad::s(""),
                "must specify one of: `configMapRef` or `secretRef`",
            );
        } else if n > 1 {
            e.invalid(
                path,
                Bad::s(""),
                "may not have more than one field specified at a time",
            );
        }
    }
}

fn path_has_backsteps(p: &str) -> bool {
    p.replace('\\', "/").split('/').any(|x| x == "..")
}

fn validate_local_descending_path(target: &str, path: &str, e: &mut Errs) {
    if target.starts_with('/') {
        e.invalid(path, Bad::s(target), "must be a relative path");
    }
    if path_has_backsteps(target) {
        e.invalid(path, Bad::s(target), "must not contain '..'");
    }
}

fn validate_local_non_reserved_path(target: &str, path: &str, e: &mut Errs) {
    validate_local_descending_path(target, path, e);
    if target.starts_with("..") && !target.starts_with("../") {
        e.invalid(path, Bad::s(target), "must not start with '..'");
    }
}

fn validate_volume_mounts(
    c: &Value,
    devices: &[(&str, &str)],
    ctx: &Ctx<'_>,
    path: &str,
    e: &mut Errs,
) {
    let privileged = boolean(sub(c, "securityContext"), "privileged") == Some(true);
    let mut mount_points: Vec<&str> = Vec::new();
    for (i, m) in arr(c, "volumeMounts").iter().enumerate() {
        let p = format!("{path}[{i}]");
        let name = st(m, "name");
        let mount_path = st(m, "mountPath");
        if name.is_empty() {
            e.required(&format!("{p}.name"), "");
        }
        let vol = ctx.volume(name);
        if vol.is_none() {
            e.not_found(&format!("{p}.name"), Bad::s(name));
        }
        if mount_path.is_empty() {
            e.required(&format!("{p}.mountPath"), "");
        }
        if mount_points.contains(&mount_path) {
            e.invalid(
                &format!("{p}.mountPath"),
                Bad::s(mount_path),
                "must be unique",
            );
        }
        mount_points.push(mount_path);
        if devices.iter().any(|(n, _)| *n == name) {
            e.invalid(
                &format!("{p}.name"),
                Bad::s(name),
                "must not already exist in volumeDevices",
            );
        }
        if devices.iter().any(|(_, dp)| *dp == mount_path) {
            e.invalid(
                &format!("{p}.mountPath"),
                Bad::s(mount_path),
                "must not already exist as a path in volumeDevices",
            );
        }
        let sub_path = st(m, "subPath");
        let sub_expr = st(m, "subPathExpr");
        if vol.is_some_and(|v| fld(v, "image").is_some()) {
            if !sub_path.is_empty() {
                e.invalid(
                    &format!("{p}.subPath"),
                    Bad::s(sub_path),
                    "not allowed in image volume sources",
                );
            }
            if !sub_expr.is_empty() {
                e.invalid(
                    &format!("{p}.subPathExpr"),
                    Bad::s(sub_expr),
                    "not allowed in image volume sources",
                );
            }
        }
        if !sub_path.is_empty() {
            validate_local_descending_path(sub_path, &format!("{path}.subPath"), e);
        }
        if !sub_expr.is_empty() {
            if !sub_path.is_empty() {
                e.invalid(
                    &format!("{p}.subPathExpr"),
                    Bad::s(sub_expr),
                    "subPathExpr and subPath are mutually exclusive",
                );
            }
            validate_local_descending_path(sub_expr, &format!("{path}.subPathExpr"), e);
        }
        let prop = opt_str(m, "mountPropagation");
        if let Some(mp) = prop {
            let pp = format!("{path}.mountPropagation");
            if !["Bidirectional", "HostToContainer", "None"].contains(&mp) {
                e.not_supported(
                    &pp,
                    Bad::s(mp),
                    &["Bidirectional", "HostToContainer", "None"],
                );
            }
            if mp == "Bidirectional" && !privileged {
                e.forbidden(
                    &pp,
                    "Bidirectional mount propagation is available only to privileged containers",
                );
            }
        }
        if let Some(rro) = opt_str(m, "recursiveReadOnly") {
            let rp = format!("{path}.recursiveReadOnly");
            match rro {
                "Disabled" => {}
                "Enabled" | "IfPossible" => {
                    if boolean(m, "readOnly") != Some(true) {
                        e.forbidden(&rp, "may only be specified when readOnly is true");
                    }
                    if prop.is_some_and(|p| p != "None") {
                        e.forbidden(
                            &rp,
                            "may only be specified when mountPropagation is None or not specified",
                        );
                    }
                }
                other => {
                    e.not_supported(&rp, Bad::s(other), &["Disabled", "Enabled", "IfPossible"])
                }
            }
        }
    }
}

fn validate_volume_devices(
    devices: &[Value],
    mounts: &[(&str, &str)],
    ctx: &Ctx<'_>,
    path: &str,
    e: &mut Errs,
) {
    let mut paths: Vec<&str> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for (i, d) in devices.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let name = st(d, "name");
        let dev_path = st(d, "devicePath");
        let vol = ctx.volume(name);
        let is_pvc = vol.is_some_and(|v| {
            fld(v, "persistentVolumeClaim").is_some() || fld(v, "ephemeral").is_some()
        });
        if name.is_empty() {
            e.required(&format!("{p}.name"), "");
        }
        if names.contains(&name) {
            e.invalid(&format!("{p}.name"), Bad::s(name), "must be unique");
        }
        if vol.is_some() && !is_pvc {
            e.invalid(&format!("{p}.name"), Bad::s(name), "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode");
        }
        if vol.is_none() {
            e.not_found(&format!("{p}.name"), Bad::s(name));
        }
        if dev_path.is_empty() {
            e.required(&format!("{p}.devicePath"), "");
        }
        if paths.contains(&dev_path) {
            e.invalid(
                &format!("{p}.devicePath"),
                Bad::s(dev_path),
                "must be unique",
            );
        }
        if !dev_path.is_empty() && path_has_backsteps(dev_path) {
            e.invalid(
                &format!("{p}.devicePath"),
                Bad::s(dev_path),
                "can not contain backsteps ('..')",
            );
        } else {
            paths.push(dev_path);
        }
        if mounts.iter().any(|(n, _)| *n == name) {
            e.invalid(
                &format!("{p}.name"),
                Bad::s(name),
                "must not already exist in volumeMounts",
            );
        }
        if mounts.iter().any(|(_, mp)| *mp == dev_path) {
            e.invalid(
                &format!("{p}.devicePath"),
                Bad::s(dev_path),
                "must not already exist as a path in volumeMounts",
            );
        }
        if !name.is_empty() {
            names.push(name);
        }
    }
}

fn validate_resize_policy(policies: &[Value], restart_policy: &str, path: &str, e: &mut Errs) {
    let mut seen: Vec<&str> = Vec::new();
    for (i, p) in policies.iter().enumerate() {
        let rn = st(p, "resourceName");
        if seen.contains(&rn) {
            e.duplicate(&format!("{path}[{i}]"), Bad::s(rn));
        }
        seen.push(rn);
        match rn {
            "cpu" | "memory" => {}
            "" => e.required(path, ""),
            other => e.not_supported(path, Bad::s(other), &["cpu", "memory"]),
        }
        let rp = st(p, "restartPolicy");
        match rp {
            "NotRequired" | "RestartContainer" => {}
            "" => e.required(path, ""),
            other => e.not_supported(path, Bad::s(other), &["NotRequired", "RestartContainer"]),
        }
        if restart_policy == "Never" && rp != "NotRequired" {
            e.invalid(
                path,
                Bad::s(rp),
                "must be 'NotRequired' when `restartPolicy` is 'Never'",
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Resources.

const STANDARD_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "storage",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
];
const INTEGER_RESOURCES: &[&str] = &[
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
];

fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

fn is_extended_resource(name: &str) -> bool {
    !is_native_resource(name)
        && !name.starts_with("requests.")
        && is_qualified_name(&format!("requests.{name}")).is_empty()
}

fn overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !is_hugepages(name)
}

fn validate_container_resource_name(name: &str, path: &str, e: &mut Errs) {
    let before = e.len();
    e.invalid_each(path, name, is_qualified_name(name));
    if e.len() != before {
        return;
    }
    if !name.contains('/') {
        let standard = STANDARD_RESOURCES.contains(&name)
            || is_hugepages(name)
            || name.starts_with("requests.hugepages-");
        if !standard {
            e.invalid(
                path,
                Bad::s(name),
                "must be a standard resource type or fully qualified",
            );
        }
        if !(["cpu", "memory", "ephemeral-storage"].contains(&name) || is_hugepages(name)) {
            e.invalid(
                path,
                Bad::s(name),
                "must be a standard resource for containers",
            );
        }
    } else if !is_native_resource(name) && !is_extended_resource(name) {
        e.invalid(
            path,
            Bad::s(name),
            "doesn't follow extended resource name standard",
        );
    }
}

/// `ValidateResourceQuantityValue`; returns the parsed quantity.
pub(crate) fn validate_quantity_value(
    name: &str,
    v: &Value,
    path: &str,
    e: &mut Errs,
) -> Option<Quantity> {
    let raw = quantity_str(v);
    let Some(q) = Quantity::parse(&raw) else {
        e.invalid(path, Bad::Str(raw), QUANTITY_FORMAT_ERR);
        return None;
    };
    if q.is_negative() {
        e.invalid(path, Bad::Str(q.canonical()), IS_NEGATIVE);
    }
    if (INTEGER_RESOURCES.contains(&name) || is_extended_resource(name)) && !q.is_integer() {
        e.invalid(path, Bad::Raw(q.canonical()), "must be an integer");
    }
    Some(q)
}

fn validate_resource_requirements(req: &Value, claim_names: &[&str], path: &str, e: &mut Errs) {
    let lim_path = format!("{path}.limits");
    let req_path = format!("{path}.requests");
    let mut lim_cm = false;
    let mut req_cm = false;
    let mut lim_hp = false;
    let mut req_hp = false;
    let limits = obj(req, "limits");
    let mut parsed_limits: Vec<(&str, Option<Quantity>)> = Vec::new();
    if let Some(limits) = limits {
        for (name, v) in limits {
            let p = format!("{lim_path}[{name}]");
            validate_container_resource_name(name, &p, e);
            let q = validate_quantity_value(name, v, &p, e);
            if is_hugepages(name) {
                lim_hp = true;
            }
            if name == "cpu" || name == "memory" {
                lim_cm = true;
            }
            parsed_limits.push((name, q));
        }
    }
    if let Some(requests) = obj(req, "requests") {
        for (name, v) in requests {
            let p = format!("{req_path}[{name}]");
            validate_container_resource_name(name, &p, e);
            let q = validate_quantity_value(name, v, &p, e);
            match parsed_limits.iter().find(|(n, _)| *n == name.as_str()) {
                Some((_, lim)) => {
                    if let (Some(q), Some(lim)) = (q, lim) {
                        let ord = q.cmp_value(lim);
                        if ord != std::cmp::Ordering::Equal && !overcommit_allowed(name) {
                            e.invalid(
                                &req_path,
                                Bad::Str(q.canonical()),
                                &format!("must be equal to {name} limit of {}", lim.canonical()),
                            );
                        } else if ord == std::cmp::Ordering::Greater {
                            e.invalid(
                                &req_path,
                                Bad::Str(q.canonical()),
                                &format!(
                                    "must be less than or equal to {name} limit of {}",
                                    lim.canonical()
                                ),
                            );
                        }
                    }
                }
                None => {
                    if !overcommit_allowed(name) {
                        e.required(
                            &lim_path,
                            "Limit must be set for non overcommitable resources",
                        );
                    }
                }
            }
            if is_hugepages(name) {
                req_hp = true;
            }
            if name == "cpu" || name == "memory" {
                req_cm = true;
            }
        }
    }
    if !lim_cm && !req_cm && (req_hp || lim_hp) {
        e.forbidden(path, "HugePages require cpu or memory");
    }
    let mut names: Vec<String> = Vec::new();
    for (i, c) in arr(req, "claims").iter().enumerate() {
        let cp = format!("{path}.claims[{i}]");
        let name = st(c, "name");
        if name.is_empty() {
            e.required(&cp, "");
            continue;
        }
        if names.iter().any(|n| n == name) {
            e.duplicate(&cp, Bad::s(name));
        } else {
            let request = st(c, "request");
            let mut key = name.to_string();
            if !request.is_empty() {
                e.invalid_each(&format!("{cp}.request"), request, is_dns1123_label(request));
                key = format!("{name}/{request}");
            }
            if names.contains(&key) {
                e.duplicate(&cp, Bad::Str(key.clone()));
            } else if request.is_empty()
                && names
                    .iter()
                    .any(|k| k.split_once('/').is_some_and(|(n, _)| n == name))
            {
                e.duplicate(&cp, Bad::s(name));
            }
            names.push(key);
        }
        if !claim_names.contains(&name) {
            let detail = if claim_names.is_empty() {
                "must be one of the names in pod.spec.resourceClaims which is empty".to_string()
            } else {
                let mut sorted: Vec<&str> = claim_names.to_vec();
                sorted.sort_unstable();
                format!(
                    "must be one of the names in pod.spec.resourceClaims: {}",
                    sorted.join(", ")
                )
            };
            e.not_found_detail(&cp, Bad::s(name), &detail);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Probes and lifecycle handlers.

#[derive(PartialEq, Eq, Clone, Copy)]
enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

fn validate_port_num_or_name(port: Option<&Value>, path: &str, e: &mut Errs) {
    match port {
        Some(Value::String(s)) => e.invalid_each(path, s, is_valid_port_name(s)),
        other => {
            let n = other.and_then(super::as_int).unwrap_or(0);
            for m in is_valid_port_num(n) {
                e.invalid(path, Bad::n(n), &m);
            }
        }
    }
}

fn validate_handler(
    h: &Value,
    grace: Option<i64>,
    allow_sleep: bool,
    allow_grpc: bool,
    path: &str,
    e: &mut Errs,
) {
    let mut n = 0;
    let mut check = |key: &str, e: &mut Errs| -> bool {
        if fld(h, key).is_none() {
            return false;
        }
        if n > 0 {
            e.forbidden(
                &format!("{path}.{key}"),
                "may not specify more than 1 handler type",
            );
            return false;
        }
        n += 1;
        true
    };
    if check("exec", e) && arr(sub(h, "exec"), "command").is_empty() {
        e.required(&format!("{path}.exec.command"), "");
    }
    if check("httpGet", e) {
        let g = sub(h, "httpGet");
        let p = format!("{path}.httpGet");
        if st(g, "path").is_empty() {
            e.required(&format!("{p}.path"), "");
        }
        validate_port_num_or_name(fld(g, "port"), &format!("{p}.port"), e);
        let scheme = st(g, "scheme");
        if scheme != "HTTP" && scheme != "HTTPS" {
            e.not_supported(&format!("{p}.scheme"), Bad::s(scheme), &["HTTP", "HTTPS"]);
        }
        for hdr in arr(g, "httpHeaders") {
            let name = st(hdr, "name");
            e.invalid_each(&format!("{p}.httpHeaders"), name, is_http_header_name(name));
        }
    }
    if check("tcpSocket", e) {
        validate_port_num_or_name(
            fld(sub(h, "tcpSocket"), "port"),
            &format!("{path}.tcpSocket.port"),
            e,
        );
    }
    if allow_grpc && check("grpc", e) {
        validate_port_num_or_name(
            fld(sub(h, "grpc"), "port").or(Some(&Value::Null)),
            &format!("{path}.grpc.port"),
            e,
        );
    }
    if allow_sleep && check("sleep", e) {
        let secs = int(sub(h, "sleep"), "seconds").unwrap_or(0);
        if let Some(g) = grace {
            if secs < 0 || secs > g {
                e.invalid(
                    &format!("{path}.sleep"),
                    Bad::n(secs),
                    &format!(
                        "must be non-negative and less than terminationGracePeriodSeconds ({g})"
                    ),
                );
            }
        }
    }
    if n == 0 {
        e.required(path, "must specify a handler type");
    }
}

fn validate_lifecycle(l: &Value, grace: Option<i64>, path: &str, e: &mut Errs) {
    for key in ["postStart", "preStop"] {
        if let Some(h) = fld(l, key) {
            validate_handler(h, grace, true, false, &format!("{path}.{key}"), e);
        }
    }
}

fn validate_probe_kind(probe: Option<&Value>, kind: ProbeKind, path: &str, e: &mut Errs) {
    let Some(p) = probe else {
        return;
    };
    validate_handler(p, None, false, true, path, e);
    for key in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        e.nonnegative(&format!("{path}.{key}"), int(p, key));
    }
    if let Some(t) = int(p, "terminationGracePeriodSeconds") {
        if t <= 0 {
            e.invalid(
                &format!("{path}.terminationGracePeriodSeconds"),
                Bad::n(t),
                "must be greater than 0",
            );
        }
    }
    match kind {
        ProbeKind::Liveness | ProbeKind::Startup => {
            let s = int(p, "successThreshold").unwrap_or(0);
            if s != 1 {
                e.invalid(&format!("{path}.successThreshold"), Bad::n(s), "must be 1");
            }
        }
        ProbeKind::Readiness => {
            if let Some(t) = int(p, "terminationGracePeriodSeconds") {
                e.invalid(
                    &format!("{path}.terminationGracePeriodSeconds"),
                    Bad::n(t),
                    "must not be set for readinessProbes",
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Security contexts.

const MAX_ID: i64 = 0xffff_ffff;

fn validate_seccomp(sp: Option<&Value>, path: &str, e: &mut Errs) {
    let Some(sp) = sp else {
        return;
    };
    let t = st(sp, "type");
    match t {
        "Localhost" | "RuntimeDefault" | "Unconfined" => {}
        "" => e.required(
            &format!("{path}.type"),
            "type is required when seccompProfile is set",
        ),
        other => e.not_supported(
            &format!("{path}.type"),
            Bad::s(other),
            &["Localhost", "RuntimeDefault", "Unconfined"],
        ),
    }
    let lp = opt_str(sp, "localhostProfile");
    if t == "Localhost" {
        match lp {
            None => e.required(
                &format!("{path}.localhostProfile"),
                "must be set when seccomp type is Localhost",
            ),
            Some(lp) => validate_local_descending_path(lp, &format!("{path}.localhostProfile"), e),
        }
    } else if lp.is_some() {
        e.invalid(
            &format!("{path}.localhostProfile"),
            Bad::Raw(sp.to_string()),
            "can only be set when seccomp type is Localhost",
        );
    }
}

fn validate_apparmor(p: Option<&Value>, path: &str, e: &mut Errs) {
    let Some(p) = p else {
        return;
    };
    let lp = opt_str(p, "localhostProfile");
    match st(p, "type") {
        "Localhost" => match lp {
            None => e.required(
                &format!("{path}.localhostProfile"),
                "must be set when AppArmor type is Localhost",
            ),
            Some(l) => {
                if l.trim() != l {
                    e.invalid(
                        &format!("{path}.localhostProfile"),
                        Bad::s(l),
                        "must not be padded with whitespace",
                    );
                } else if l.is_empty() {
                    e.required(
                        &format!("{path}.localhostProfile"),
                        "must be set when AppArmor type is Localhost",
                    );
                }
                if l.len() > 4095 {
                    e.too_long(&format!("{path}.localhostProfile"), 4095);
                }
            }
        },
        "RuntimeDefault" | "Unconfined" => {
            if let Some(l) = lp {
                e.invalid(
                    &format!("{path}.localhostProfile"),
                    Bad::s(l),
                    "can only be set when AppArmor type is Localhost",
                );
            }
        }
        "" => e.required(
            &format!("{path}.type"),
            "type is required when appArmorProfile is set",
        ),
        other => e.not_supported(
            &format!("{path}.type"),
            Bad::s(other),
            &["Localhost", "RuntimeDefault", "Unconfined"],
        ),
    }
}

fn validate_id(v: Option<i64>, path: &str, e: &mut Errs) {
    if let Some(v) = v {
        if !(0..=MAX_ID).contains(&v) {
            e.invalid(path, Bad::n(v), &inclusive_range_error(0, MAX_ID));
        }
    }
}

fn validate_pod_security_context(spec: &Value, sc: &Value, spec_path: &str, e: &mut Errs) {
    let path = format!("{spec_path}.securityContext");
    if sc.is_object() {
        validate_id(int(sc, "fsGroup"), &format!("{path}.fsGroup"), e);
        validate_id(int(sc, "runAsUser"), &format!("{path}.runAsUser"), e);
        validate_id(int(sc, "runAsGroup"), &format!("{path}.runAsGroup"), e);
        for (i, g) in arr(sc, "supplementalGroups").iter().enumerate() {
            validate_id(
                super::as_int(g),
                &format!("{path}.supplementalGroups[{i}]"),
                e,
            );
        }
        let mut names: Vec<&str> = Vec::new();
        for (i, s) in arr(sc, "sysctls").iter().enumerate() {
            let n = st(s, "name");
            let p = format!("{path}.sysctls[{i}].name");
            if n.is_empty() {
                e.required(&p, "");
            } else if !sysctl_ok(n) {
                e.invalid(&p, Bad::s(n), "must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$");
            } else if names.contains(&n) {
                e.duplicate(&p, Bad::s(n));
            }
            names.push(n);
        }
        if let Some(p) = opt_str(sc, "fsGroupChangePolicy") {
            if p != "OnRootMismatch" && p != "Always" {
                e.not_supported(
                    &format!("{path}.fsGroupChangePolicy"),
                    Bad::s(p),
                    &["Always", "OnRootMismatch"],
                );
            }
        }
        validate_seccomp(
            fld(sc, "seccompProfile"),
            &format!("{path}.seccompProfile"),
            e,
        );
        validate_apparmor(
            fld(sc, "appArmorProfile"),
            &format!("{path}.appArmorProfile"),
            e,
        );
        if let Some(p) = opt_str(sc, "supplementalGroupsPolicy") {
            if p != "Merge" && p != "Strict" {
                e.not_supported(
                    &format!("{path}.supplementalGroupsPolicy"),
                    Bad::s(p),
                    &["Merge", "Strict"],
                );
            }
        }
        if let Some(p) = opt_str(sc, "seLinuxChangePolicy") {
            if p != "Recursive" && p != "MountOption" {
                e.not_supported(
                    &format!("{path}.seLinuxChangePolicy"),
                    Bad::s(p),
                    &["MountOption", "Recursive"],
                );
            }
        }
    }
    if boolean(spec, "shareProcessNamespace") == Some(true)
        && boolean(spec, "hostPID") == Some(true)
    {
        e.invalid(
            &format!("{path}.shareProcessNamespace"),
            Bad::Num("true".into()),
            "ShareProcessNamespace and HostPID cannot both be enabled",
        );
    }
}

fn sysctl_ok(n: &str) -> bool {
    if n.len() > 253 {
        return false;
    }
    n.split(['.', '/']).all(|seg| {
        let b = seg.as_bytes();
        !b.is_empty()
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
            && b.iter()
                .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
    })
}

fn validate_security_context(sc: &Value, host_users: bool, path: &str, e: &mut Errs) {
    validate_id(int(sc, "runAsUser"), &format!("{path}.runAsUser"), e);
    validate_id(int(sc, "runAsGroup"), &format!("{path}.runAsGroup"), e);
    if let Some(pm) = opt_str(sc, "procMount") {
        if pm != "Default" && pm != "Unmasked" {
            e.not_supported(
                &format!("{path}.procMount"),
                Bad::s(pm),
                &["Default", "Unmasked"],
            );
        }
        if host_users && pm == "Unmasked" {
            e.invalid(
                &format!("{path}.procMount"),
                Bad::s(pm),
                "`hostUsers` must be false to use `Unmasked`",
            );
        }
    }
    validate_seccomp(
        fld(sc, "seccompProfile"),
        &format!("{path}.seccompProfile"),
        e,
    );
    if boolean(sc, "allowPrivilegeEscalation") == Some(false) {
        if boolean(sc, "privileged") == Some(true) {
            e.invalid(
                path,
                Bad::Raw(sc.to_string()),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            );
        }
        if arr(sub(sc, "capabilities"), "add")
            .iter()
            .any(|c| c.as_str() == Some("CAP_SYS_ADMIN"))
        {
            e.invalid(path, Bad::Raw(sc.to_string()), "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN");
        }
    }
    validate_apparmor(
        fld(sc, "appArmorProfile"),
        &format!("{path}.appArmorProfile"),
        e,
    );
}

// ---------------------------------------------------------------------------------------------
// Scheduling: tolerations, affinity, topology spread, DNS.

/// `ValidateTolerations`.
pub(crate) fn validate_tolerations(tolerations: &[Value], path: &str, e: &mut Errs) {
    for (i, t) in tolerations.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let key = st(t, "key");
        let op = st(t, "operator");
        let effect = st(t, "effect");
        if !key.is_empty() {
            e.invalid_each(&format!("{p}.key"), key, is_qualified_name(key));
        }
        if key.is_empty() && op != "Exists" {
            e.invalid(
                &format!("{p}.operator"),
                Bad::s(op),
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            );
        }
        if fld(t, "tolerationSeconds").is_some() && effect != "NoExecute" {
            e.invalid(
                &format!("{p}.effect"),
                Bad::s(effect),
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            );
        }
        let value = st(t, "value");
        match op {
            "Equal" | "" => {
                let errs = is_valid_label_value(value);
                if !errs.is_empty() {
                    e.invalid(&format!("{p}.operator"), Bad::s(value), &errs.join(";"));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    e.invalid(
                        &format!("{p}.operator"),
                        Bad::s(value),
                        "value must be empty when `operator` is 'Exists'",
                    );
                }
            }
            other => e.not_supported(
                &format!("{p}.operator"),
                Bad::s(other),
                &["Equal", "Exists"],
            ),
        }
        if !effect.is_empty() {
            validate_taint_effect(effect, &format!("{p}.effect"), e);
        }
    }
}

/// `validateTaintEffect` for a non-empty effect.
pub(crate) fn validate_taint_effect(effect: &str, path: &str, e: &mut Errs) {
    if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect) {
        e.not_supported(
            path,
            Bad::s(effect),
            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
        );
    }
}

/// `ValidateNodeSelectorRequirement`.
pub(crate) fn validate_node_selector_requirement(
    r: &Value,
    check_values: bool,
    path: &str,
    e: &mut Errs,
) {
    let values = arr(r, "values");
    match st(r, "operator") {
        "In" | "NotIn" => {
            if values.is_empty() {
                e.required(
                    &format!("{path}.values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                );
            }
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                e.forbidden(
                    &format!("{path}.values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                );
            }
        }
        "Gt" | "Lt" => {
            if values.len() != 1 {
                e.required(
                    &format!("{path}.values"),
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                );
            }
        }
        op => e.invalid(
            &format!("{path}.operator"),
            Bad::s(op),
            "not a valid selector operator",
        ),
    }
    let key = st(r, "key");
    e.invalid_each(&format!("{path}.key"), key, is_qualified_name(key));
    if check_values {
        for (i, v) in values.iter().enumerate() {
            let v = v.as_str().unwrap_or("");
            e.invalid_each(&format!("{path}.values[{i}]"), v, is_valid_label_value(v));
        }
    }
}

/// `ValidateNodeSelectorTerm`.
pub(crate) fn validate_node_selector_term(
    term: &Value,
    check_values: bool,
    path: &str,
    e: &mut Errs,
) {
    for (j, r) in arr(term, "matchExpressions").iter().enumerate() {
        validate_node_selector_requirement(
            r,
            check_values,
            &format!("{path}.matchExpressions[{j}]"),
            e,
        );
    }
    for (j, r) in arr(term, "matchFields").iter().enumerate() {
        let p = format!("{path}.matchFields[{j}]");
        let values = arr(r, "values");
        match st(r, "operator") {
            "In" | "NotIn" => {
                if values.len() != 1 {
                    e.required(&format!("{p}.values"), "must be only one value when `operator` is 'In' or 'NotIn' for node field selector");
                }
            }
            op => e.invalid(
                &format!("{p}.operator"),
                Bad::s(op),
                "not a valid selector operator",
            ),
        }
        let key = st(r, "key");
        if key != "metadata.name" {
            e.invalid(
                &format!("{p}.key"),
                Bad::s(key),
                "not a valid field selector key",
            );
        } else {
            for (i, v) in values.iter().enumerate() {
                let v = v.as_str().unwrap_or("");
                e.invalid_each(&format!("{p}.values[{i}]"), v, is_dns1123_subdomain(v));
            }
        }
    }
}

/// `ValidateNodeSelector` (`nodeSelectorTerms` required).
pub(crate) fn validate_node_selector(ns: &Value, check_values: bool, path: &str, e: &mut Errs) {
    let terms = arr(ns, "nodeSelectorTerms");
    let tp = format!("{path}.nodeSelectorTerms");
    if terms.is_empty() {
        e.required(&tp, "must have at least one node selector term");
        return;
    }
    for (i, t) in terms.iter().enumerate() {
        validate_node_selector_term(t, check_values, &format!("{tp}[{i}]"), e);
    }
}

fn validate_pod_affinity_term(t: &Value, path: &str, e: &mut Errs) {
    validate_label_selector(fld(t, "labelSelector"), &format!("{path}.labelSelector"), e);
    validate_label_selector(
        fld(t, "namespaceSelector"),
        &format!("{path}.namespaceSelector"),
        e,
    );
    for n in arr(t, "namespaces") {
        let n = n.as_str().unwrap_or("");
        e.invalid_each(&format!("{path}.namespace"), n, is_dns1123_label(n));
    }
    for key in ["matchLabelKeys", "mismatchLabelKeys"] {
        let keys = arr(t, key);
        if keys.is_empty() {
            continue;
        }
        if fld(t, "labelSelector").is_none() {
            e.forbidden(
                &format!("{path}.{key}"),
                "must not be specified when labelSelector is not set",
            );
            continue;
        }
        for (i, k) in keys.iter().enumerate() {
            let k = k.as_str().unwrap_or("");
            e.invalid_each(&format!("{path}.{key}[{i}]"), k, is_qualified_name(k));
        }
    }
    let tk = st(t, "topologyKey");
    if tk.is_empty() {
        e.required(&format!("{path}.topologyKey"), "can not be empty");
    }
    e.invalid_each(&format!("{path}.topologyKey"), tk, is_qualified_name(tk));
}

fn validate_pod_affinity_kind(a: &Value, path: &str, e: &mut Errs) {
    for (i, t) in arr(a, "requiredDuringSchedulingIgnoredDuringExecution")
        .iter()
        .enumerate()
    {
        validate_pod_affinity_term(
            t,
            &format!("{path}.requiredDuringSchedulingIgnoredDuringExecution[{i}]"),
            e,
        );
    }
    for (i, w) in arr(a, "preferredDuringSchedulingIgnoredDuringExecution")
        .iter()
        .enumerate()
    {
        let p = format!("{path}.preferredDuringSchedulingIgnoredDuringExecution[{i}]");
        let weight = int(w, "weight").unwrap_or(0);
        if !(1..=100).contains(&weight) {
            e.invalid(
                &format!("{p}.weight"),
                Bad::n(weight),
                "must be in the range 1-100",
            );
        }
        validate_pod_affinity_term(
            sub(w, "podAffinityTerm"),
            &format!("{p}.podAffinityTerm"),
            e,
        );
    }
}

fn validate_affinity(aff: &Value, path: &str, e: &mut Errs) {
    if let Some(na) = fld(aff, "nodeAffinity") {
        let p = format!("{path}.nodeAffinity");
        if let Some(req) = fld(na, "requiredDuringSchedulingIgnoredDuringExecution") {
            validate_node_selector(
                req,
                true,
                &format!("{p}.requiredDuringSchedulingIgnoredDuringExecution"),
                e,
            );
        }
        for (i, t) in arr(na, "preferredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            let tp = format!("{p}.preferredDuringSchedulingIgnoredDuringExecution[{i}]");
            let weight = int(t, "weight").unwrap_or(0);
            if !(1..=100).contains(&weight) {
                e.invalid(
                    &format!("{tp}.weight"),
                    Bad::n(weight),
                    "must be in the range 1-100",
                );
            }
            validate_node_selector_term(
                sub(t, "preference"),
                false,
                &format!("{tp}.preference"),
                e,
            );
        }
    }
    if let Some(pa) = fld(aff, "podAffinity") {
        validate_pod_affinity_kind(pa, &format!("{path}.podAffinity"), e);
    }
    if let Some(pa) = fld(aff, "podAntiAffinity") {
        validate_pod_affinity_kind(pa, &format!("{path}.podAntiAffinity"), e);
    }
}

fn validate_topology_spread(constraints: &[Value], path: &str, e: &mut Errs) {
    for (i, c) in constraints.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let skew = int(c, "maxSkew").unwrap_or(0);
        if skew <= 0 {
            e.invalid(
                &format!("{p}.maxSkew"),
                Bad::n(skew),
                "must be greater than zero",
            );
        }
        let tk = st(c, "topologyKey");
        if tk.is_empty() {
            e.required(&format!("{p}.topologyKey"), "can not be empty");
        } else if let Some(m) = is_qualified_name(tk).into_iter().next() {
            e.invalid(&format!("{p}.topologyKey"), Bad::s(tk), &m);
        }
        let wu = st(c, "whenUnsatisfiable");
        if wu != "DoNotSchedule" && wu != "ScheduleAnyway" {
            e.not_supported(
                &format!("{p}.whenUnsatisfiable"),
                Bad::s(wu),
                &["DoNotSchedule", "ScheduleAnyway"],
            );
        }
        if constraints[i + 1..]
            .iter()
            .any(|o| st(o, "topologyKey") == tk && st(o, "whenUnsatisfiable") == wu)
        {
            e.duplicate(
                &format!("{p}.{{topologyKey, whenUnsatisfiable}}"),
                Bad::Str(format!("{{{tk}, {wu}}}")),
            );
        }
        if let Some(md) = int(c, "minDomains") {
            if wu != "DoNotSchedule" {
                e.invalid(
                    &format!("{p}.minDomains"),
                    Bad::n(md),
                    &format!(
                        "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {wu}"
                    ),
                );
            }
            if md <= 0 {
                e.invalid(
                    &format!("{p}.minDomains"),
                    Bad::n(md),
                    "must be greater than 0",
                );
            }
        }
        for key in ["nodeAffinityPolicy", "nodeTaintsPolicy"] {
            if let Some(v) = opt_str(c, key) {
                if v != "Honor" && v != "Ignore" {
                    e.not_supported(&format!("{p}.{key}"), Bad::s(v), &["Honor", "Ignore"]);
                }
            }
        }
        validate_label_selector(fld(c, "labelSelector"), &format!("{p}.labelSelector"), e);
        let keys = arr(c, "matchLabelKeys");
        if !keys.is_empty() {
            let sel = fld(c, "labelSelector");
            if sel.is_none() {
                e.forbidden(
                    &format!("{p}.matchLabelKeys"),
                    "must not be specified when labelSelector is not set",
                );
            }
            let mut sel_keys: Vec<&str> = sel
                .and_then(|s| s.get("matchLabels"))
                .and_then(Value::as_object)
                .map(|m| m.keys().map(String::as_str).collect())
                .unwrap_or_default();
            sel_keys.extend(
                sel.map(|s| arr(s, "matchExpressions"))
                    .unwrap_or(&[])
                    .iter()
                    .map(|x| st(x, "key")),
            );
            for (j, k) in keys.iter().enumerate() {
                let k = k.as_str().unwrap_or("");
                let kp = format!("{p}.matchLabelKeys[{j}]");
                e.invalid_each(&kp, k, is_qualified_name(k));
                if sel_keys.contains(&k) {
                    e.invalid(
                        &kp,
                        Bad::s(k),
                        "exists in both matchLabelKeys and labelSelector",
                    );
                }
            }
        }
    }
}

fn validate_dns_config(cfg: Option<&Value>, policy: &str, path: &str, e: &mut Errs) {
    if policy == "None" {
        match cfg {
            None => {
                e.required(path, "must provide `dnsConfig` when `dnsPolicy` is None");
                return;
            }
            Some(c) if arr(c, "nameservers").is_empty() => {
                e.required(
                    &format!("{path}.nameservers"),
                    "must provide at least one DNS nameserver when `dnsPolicy` is None",
                );
                return;
            }
            _ => {}
        }
    }
    let Some(c) = cfg else {
        return;
    };
    let ns = arr(c, "nameservers");
    if ns.len() > 3 {
        e.invalid(
            &format!("{path}.nameservers"),
            Bad::Raw(super::go_string_slice(fld(c, "nameservers"))),
            "must not have more than 3 nameservers",
        );
    }
    for (i, n) in ns.iter().enumerate() {
        let n = n.as_str().unwrap_or("");
        if parse_ip_sloppy(n).is_none() {
            e.invalid(
                &format!("{path}.nameservers[{i}]"),
                Bad::s(n),
                INVALID_IP_MSG,
            );
        }
    }
    let searches = arr(c, "searches");
    if searches.len() > 32 {
        e.invalid(
            &format!("{path}.searches"),
            Bad::Raw(super::go_string_slice(fld(c, "searches"))),
            "must not have more than 32 search paths",
        );
    }
    let joined: Vec<&str> = searches.iter().map(|s| s.as_str().unwrap_or("")).collect();
    if joined.join(" ").len() > 2048 {
        e.invalid(
            &format!("{path}.searches"),
            Bad::Raw(super::go_string_slice(fld(c, "searches"))),
            "must not have more than 2048 characters (including spaces) in the search list",
        );
    }
    for (i, s) in joined.iter().enumerate() {
        if *s != "." {
            let t = s.strip_suffix('.').unwrap_or(s);
            e.invalid_each(
                &format!("{path}.searches[{i}]"),
                t,
                is_dns1123_subdomain_with_underscore(t),
            );
        }
    }
    for (i, o) in arr(c, "options").iter().enumerate() {
        if st(o, "name").is_empty() {
            e.required(&format!("{path}.options[{i}]"), "must not be empty");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Volumes.

/// Volume source keys in upstream's order, with the path child name used in "more than 1" errors.
const VOLUME_SOURCES: &[(&str, &str)] = &[
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephFS"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
];

const HOST_PATH_TYPES: &[&str] = &[
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
];

fn validate_mode(v: Option<i64>, path: &str, e: &mut Errs) {
    if let Some(m) = v {
        if !(0..=0o777).contains(&m) {
            e.invalid(path, Bad::n(m), FILE_MODE_ERR);
        }
    }
}

fn validate_key_to_paths(items: &[Value], path: &str, e: &mut Errs) {
    for (i, kp) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if st(kp, "key").is_empty() {
            e.required(&format!("{p}.key"), "");
        }
        let target = st(kp, "path");
        if target.is_empty() {
            e.required(&format!("{p}.path"), "");
        }
        validate_local_non_reserved_path(target, &format!("{p}.path"), e);
        validate_mode(int(kp, "mode"), &format!("{p}.mode"), e);
    }
}

fn validate_downward_api_file(f: &Value, path: &str, e: &mut Errs) {
    let target = st(f, "path");
    if target.is_empty() {
        e.required(&format!("{path}.path"), "");
    }
    validate_local_non_reserved_path(target, &format!("{path}.path"), e);
    if let Some(fr) = fld(f, "fieldRef") {
        validate_object_field_selector(fr, VOLUME_FIELD_PATHS, &format!("{path}.fieldRef"), e);
        if fld(f, "resourceFieldRef").is_some() {
            e.invalid(
                path,
                Bad::s("resource"),
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            );
        }
    } else if let Some(rf) = fld(f, "resourceFieldRef") {
        validate_resource_field_selector(rf, true, &format!("{path}.resourceFieldRef"), e);
    } else {
        e.required(path, "one of fieldRef and resourceFieldRef is required");
    }
    validate_mode(int(f, "mode"), &format!("{path}.mode"), e);
}

fn validate_volume_source(
    v: &Value,
    path: &str,
    vol_name: &str,
    pod_name: Option<&str>,
    e: &mut Errs,
) {
    let mut count = 0;
    for (key, child) in VOLUME_SOURCES {
        let Some(src) = fld(v, key) else {
            continue;
        };
        if count > 0 {
            e.forbidden(
                &format!("{path}.{child}"),
                "may not specify more than 1 volume type",
            );
            continue;
        }
        count += 1;
        let p = format!("{path}.{key}");
        match *key {
            "emptyDir" => {
                if let Some(sl) = fld(src, "sizeLimit") {
                    if Quantity::parse(&quantity_str(sl)).is_some_and(|q| q.is_negative()) {
                        e.forbidden(
                            &format!("{p}.sizeLimit"),
                            "SizeLimit field must be a valid resource quantity",
                        );
                    }
                }
            }
            "hostPath" => {
                let hp = st(src, "path");
                if hp.is_empty() {
                    e.required(&format!("{p}.path"), "");
                } else {
                    if path_has_backsteps(hp) {
                        e.invalid(&format!("{p}.path"), Bad::s(hp), "must not contain '..'");
                    }
                    if let Some(t) = opt_str(src, "type") {
                        if !HOST_PATH_TYPES.contains(&t) {
                            e.not_supported(&format!("{p}.type"), Bad::s(t), HOST_PATH_TYPES);
                        }
                    }
                }
            }
            "gitRepo" => {
                if st(src, "repository").is_empty() {
                    e.required(&format!("{p}.repository"), "");
                }
                validate_local_descending_path(st(src, "directory"), &format!("{p}.directory"), e);
            }
            "secret" => {
                if st(src, "secretName").is_empty() {
                    e.required(&format!("{p}.secretName"), "");
                }
                validate_mode(int(src, "defaultMode"), &format!("{p}.defaultMode"), e);
                validate_key_to_paths(arr(src, "items"), &format!("{p}.items"), e);
            }
            "configMap" => {
                if st(src, "name").is_empty() {
                    e.required(&format!("{p}.name"), "");
                }
                validate_mode(int(src, "defaultMode"), &format!("{p}.defaultMode"), e);
                validate_key_to_paths(arr(src, "items"), &format!("{p}.items"), e);
            }
            "nfs" => {
                if st(src, "server").is_empty() {
                    e.required(&format!("{p}.server"), "");
                }
                let np = st(src, "path");
                if np.is_empty() {
                    e.required(&format!("{p}.path"), "");
                }
                if !np.starts_with('/') {
                    e.invalid(&format!("{p}.path"), Bad::s(np), "must be an absolute path");
                }
            }
            "persistentVolumeClaim" if st(src, "claimName").is_empty() => {
                e.required(&format!("{p}.claimName"), "");
            }
            "downwardAPI" => {
                validate_mode(int(src, "defaultMode"), &format!("{p}.defaultMode"), e);
                for f in arr(src, "items") {
                    validate_downward_api_file(f, &p, e);
                }
            }
            "projected" => {
                validate_mode(int(src, "defaultMode"), &format!("{p}.defaultMode"), e);
                validate_projection_sources(src, &p, e);
            }
            "csi" => {
                let d = st(src, "driver");
                if d.is_empty() {
                    e.required(&format!("{p}.driver"), "");
                }
                if d.len() > 63 {
                    e.too_long(&format!("{p}.driver"), 63);
                }
                e.invalid_each(
                    &format!("{p}.driver"),
                    d,
                    is_dns1123_subdomain(&d.to_lowercase()),
                );
            }
            "ephemeral" => match fld(src, "volumeClaimTemplate") {
                None => e.required(&format!("{p}.volumeClaimTemplate"), ""),
                Some(t) => {
                    let tp = format!("{p}.volumeClaimTemplate");
                    validate_template_object_meta(sub(t, "metadata"), &format!("{tp}.metadata"), e);
                    super::kinds::validate_pvc_spec(sub(t, "spec"), &format!("{tp}.spec"), e);
                    if let Some(pod) = pod_name.filter(|n| !n.is_empty()) {
                        if !vol_name.is_empty() {
                            let pvc = format!("{pod}-{vol_name}");
                            for m in is_dns1123_subdomain(&pvc) {
                                e.invalid(
                                    &format!("{path}.name"),
                                    Bad::s(vol_name),
                                    &format!("PVC name {}: {m}", go_quote(&pvc)),
                                );
                            }
                        }
                    }
                }
            },
            "image" => {
                if st(src, "reference").is_empty() {
                    e.required(&format!("{p}.reference"), "");
                }
                if let Some(pp) = opt_str(src, "pullPolicy") {
                    if !["Always", "IfNotPresent", "Never"].contains(&pp) {
                        e.not_supported(
                            &format!("{p}.pullPolicy"),
                            Bad::s(pp),
                            &["Always", "IfNotPresent", "Never"],
                        );
                    }
                }
            }
            _ => {}
        }
    }
    if count == 0 {
        e.required(path, "must specify a volume type");
    }
}

fn validate_template_object_meta(meta: &Value, path: &str, e: &mut Errs) {
    super::meta::validate_annotations(fld(meta, "annotations"), &format!("{path}.annotations"), e);
    validate_labels(fld(meta, "labels"), &format!("{path}.labels"), e);
    if let Some(m) = meta.as_object() {
        for k in m
            .keys()
            .filter(|k| !["labels", "annotations", "creationTimestamp"].contains(&k.as_str()))
        {
            if fld(meta, k).is_some() {
                e.forbidden(&format!("{path}.{k}"), "cannot be set");
            }
        }
    }
}

fn validate_projection_sources(src: &Value, path: &str, e: &mut Errs) {
    let mut all_paths: Vec<String> = Vec::new();
    for (i, s) in arr(src, "sources").iter().enumerate() {
        let sp = format!("{path}.sources[{i}]");
        let mut n = 0;
        for key in ["secret", "configMap"] {
            if let Some(x) = fld(s, key) {
                n += 1;
                let pp = format!("{sp}.{key}");
                if st(x, "name").is_empty() {
                    e.required(&format!("{pp}.name"), "");
                }
                validate_key_to_paths(arr(x, "items"), &format!("{pp}.items"), e);
                for kp in arr(x, "items") {
                    let p = st(kp, "path").to_string();
                    if !p.is_empty() {
                        if all_paths.contains(&p) {
                            e.invalid(path, Bad::s(st(x, "name")), "conflicting duplicate paths");
                        } else {
                            all_paths.push(p);
                        }
                    }
                }
            }
        }
        if let Some(d) = fld(s, "downwardAPI") {
            n += 1;
            for f in arr(d, "items") {
                validate_downward_api_file(f, &format!("{sp}.downwardAPI"), e);
                let p = st(f, "path").to_string();
                if !p.is_empty() {
                    if all_paths.contains(&p) {
                        e.invalid(path, Bad::Str(p), "conflicting duplicate paths");
                    } else {
                        all_paths.push(p);
                    }
                }
            }
        }
        if let Some(t) = fld(s, "serviceAccountToken") {
            n += 1;
            let tp = format!("{sp}.serviceAccountToken");
            let exp = int(t, "expirationSeconds").unwrap_or(3600);
            if exp < 600 {
                e.invalid(
                    &format!("{tp}.expirationSeconds"),
                    Bad::n(exp),
                    "may not specify a duration less than 10 minutes",
                );
            }
            if exp > 1 << 32 {
                e.invalid(
                    &format!("{tp}.expirationSeconds"),
                    Bad::n(exp),
                    "may not specify a duration larger than 2^32 seconds",
                );
            }
            let p = st(t, "path");
            if p.is_empty() {
                e.required(&format!("{path}.path"), "");
            } else {
                validate_local_non_reserved_path(p, &format!("{path}.path"), e);
            }
        }
        if let Some(c) = fld(s, "clusterTrustBundle") {
            n += 1;
            let cp = format!("{sp}.clusterTrustBundle");
            if st(c, "path").is_empty() {
                e.required(&format!("{cp}.path"), "");
            }
            match (opt_str(c, "name"), opt_str(c, "signerName")) {
                (Some(_), Some(_)) => e.invalid(
                    &cp,
                    Bad::Raw(c.to_string()),
                    "only one of name and signerName may be used",
                ),
                (None, None) => e.required(&cp, "either name or signerName must be specified"),
                _ => {}
            }
        }
        if n > 1 {
            e.forbidden(&sp, "may not specify more than 1 volume type per source");
        }
    }
}

/// `ValidateVolumes`: returns the volumes that validated (name, volume).
fn validate_volumes<'a>(
    volumes: &'a [Value],
    pod_name: Option<&str>,
    path: &str,
    e: &mut Errs,
) -> Vec<(&'a str, &'a Value)> {
    let mut ok: Vec<(&str, &Value)> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    let created_pvcs: Vec<String> = match pod_name.filter(|n| !n.is_empty()) {
        Some(pn) => volumes
            .iter()
            .filter(|v| fld(v, "ephemeral").is_some())
            .map(|v| format!("{pn}-{}", st(v, "name")))
            .collect(),
        None => Vec::new(),
    };
    for (i, v) in volumes.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let name = st(v, "name");
        let mut local = Errs::default();
        validate_volume_source(v, &p, name, pod_name, &mut local);
        if name.is_empty() {
            local.required(&format!("{p}.name"), "");
        } else {
            local.invalid_each(&format!("{p}.name"), name, is_dns1123_label(name));
        }
        if names.contains(&name) {
            local.duplicate(&format!("{p}.name"), Bad::s(name));
        }
        if local.list.is_empty() {
            names.push(name);
            ok.push((name, v));
        } else {
            e.list.extend(local.list);
        }
        if let Some(pvc) = fld(v, "persistentVolumeClaim") {
            let claim = st(pvc, "claimName");
            if created_pvcs.iter().any(|c| c == claim) {
                e.invalid(
                    &format!("{p}.persistentVolumeClaim.claimName"),
                    Bad::s(claim),
                    "must not reference a PVC that gets created for an ephemeral volume",
                );
            }
        }
    }
    ok
}

// ---------------------------------------------------------------------------------------------
// Pod updates.

const UPDATABLE_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

fn container_updates(new: &[Value], old: &[Value], path: &str, e: &mut Errs) -> bool {
    if new.len() != old.len() {
        e.forbidden(path, "pod updates may not add or remove containers");
        return true;
    }
    for (i, c) in new.iter().enumerate() {
        let image = st(c, "image");
        if image.is_empty() {
            e.required(&format!("{path}[{i}].image"), "");
        }
        if image.trim().len() != image.len() {
            e.invalid(
                &format!("{path}[{i}].image"),
                Bad::s(image),
                "must not have leading or trailing whitespace",
            );
        }
    }
    false
}

fn toleration_eq_ignoring_seconds(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("tolerationSeconds");
        }
        v
    };
    semantic_eq(Some(&strip(a)), Some(&strip(b)))
}

/// A readable listing of what differs between two JSON values (`path: old -> new`).
pub(crate) fn json_diff(path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<String>) {
    if semantic_eq(a, b) {
        return;
    }
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let mut keys: Vec<&String> = x.keys().collect();
            keys.extend(y.keys().filter(|k| !x.contains_key(*k)));
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                json_diff(&p, x.get(k), y.get(k), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) if x.len() == y.len() => {
            for (i, (xa, ya)) in x.iter().zip(y.iter()).enumerate() {
                json_diff(&format!("{path}[{i}]"), Some(xa), Some(ya), out);
            }
        }
        _ => {
            let show =
                |v: Option<&Value>| v.map_or_else(|| "<unset>".to_string(), Value::to_string);
            out.push(format!("- \t{path}: {}", show(a)));
            out.push(format!("+ \t{path}: {}", show(b)));
        }
    }
}

/// The `\n<diff>` suffix of upstream's "may not change" messages.
pub(crate) fn diff_text(kind: &str, old: &Value, new: &Value) -> String {
    let mut lines = Vec::new();
    json_diff("", Some(old), Some(new), &mut lines);
    format!("  {kind}{{\n{}\n  }}\n", lines.join("\n"))
}

/// `ValidatePodUpdate`.
pub(crate) fn validate_pod_update(old: &Value, new: &Value, e: &mut Errs) {
    super::meta::validate_object_meta_update(old, new, true, e);
    validate_pod_metadata_and_spec(new, e);
    let ns = sub(new, "spec");
    let os = sub(old, "spec");
    if container_updates(
        arr(ns, "containers"),
        arr(os, "containers"),
        "spec.containers",
        e,
    ) {
        return;
    }
    if container_updates(
        arr(ns, "initContainers"),
        arr(os, "initContainers"),
        "spec.initContainers",
        e,
    ) {
        return;
    }
    match (
        int(ns, "activeDeadlineSeconds"),
        int(os, "activeDeadlineSeconds"),
    ) {
        (Some(n), old_v) => {
            if !(0..=MAX_INT32).contains(&n) {
                e.invalid(
                    "spec.activeDeadlineSeconds",
                    Bad::n(n),
                    &inclusive_range_error(0, MAX_INT32),
                );
                return;
            }
            if let Some(o) = old_v {
                if o < n {
                    e.invalid(
                        "spec.activeDeadlineSeconds",
                        Bad::n(n),
                        "must be less than or equal to previous value",
                    );
                    return;
                }
            }
        }
        (None, Some(_)) => e.invalid(
            "spec.activeDeadlineSeconds",
            Bad::Null,
            "must not update from a positive integer to nil value",
        ),
        (None, None) => {}
    }
    let new_tol = arr(ns, "tolerations");
    let old_tol = arr(os, "tolerations");
    if old_tol
        .iter()
        .all(|o| new_tol.iter().any(|n| toleration_eq_ignoring_seconds(o, n)))
    {
        validate_tolerations(new_tol, "spec.tolerations", e);
    } else {
        e.forbidden(
            "spec.tolerations",
            "existing toleration can not be modified except its tolerationSeconds",
        );
    }
    let old_gates: Vec<&str> = arr(os, "schedulingGates")
        .iter()
        .map(|g| st(g, "name"))
        .collect();
    for (i, g) in arr(ns, "schedulingGates").iter().enumerate() {
        let n = st(g, "name");
        if !old_gates.contains(&n) {
            e.forbidden(
                &format!("spec.schedulingGates[{i}].name"),
                &format!("only deletion is allowed, but found new scheduling gate '{n}'"),
            );
        }
    }
    if semantic_eq(Some(ns), Some(os)) {
        return;
    }
    let mut munged: Map<String, Value> = ns.as_object().cloned().unwrap_or_default();
    for key in ["containers", "initContainers"] {
        if let Some(Value::Array(list)) = munged.get_mut(key) {
            for (i, c) in list.iter_mut().enumerate() {
                if let (Some(m), Some(old_c)) = (c.as_object_mut(), arr(os, key).get(i)) {
                    match fld(old_c, "image") {
                        Some(img) => m.insert("image".into(), img.clone()),
                        None => m.remove("image"),
                    };
                }
            }
        }
    }
    for key in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
        match fld(os, key) {
            Some(v) => munged.insert(key.into(), v.clone()),
            None => munged.remove(key),
        };
    }
    if let (Some(o), Some(1)) = (
        int(os, "terminationGracePeriodSeconds"),
        munged
            .get("terminationGracePeriodSeconds")
            .and_then(super::as_int),
    ) {
        if o < 0 {
            munged.insert("terminationGracePeriodSeconds".into(), Value::from(o));
        }
    }
    if !old_gates.is_empty() {
        // Gated pods may gain node selectors and node affinity.
        match fld(os, "nodeSelector") {
            Some(v) => munged.insert("nodeSelector".into(), v.clone()),
            None => munged.remove("nodeSelector"),
        };
        let old_na = fld(sub(os, "affinity"), "nodeAffinity").cloned();
        if let Some(Value::Object(aff)) = munged.get_mut("affinity") {
            match old_na {
                Some(na) => aff.insert("nodeAffinity".into(), na),
                None => aff.remove("nodeAffinity"),
            };
        }
        if munged
            .get("affinity")
            .and_then(Value::as_object)
            .is_some_and(|a| a.is_empty())
            && fld(os, "affinity").is_none()
        {
            munged.remove("affinity");
        }
    }
    let munged = Value::Object(munged);
    if !semantic_eq(Some(&munged), Some(os)) {
        e.forbidden(
            "spec",
            &format!(
                "pod updates may not change fields other than {UPDATABLE_FIELDS}\n{}",
                diff_text("core.PodSpec", os, &munged)
            ),
        );
    }
}

/// `ValidatePodEphemeralContainersUpdate` (the `ephemeralcontainers` subresource): existing
/// ephemeral containers may be neither removed nor changed.
pub(crate) fn validate_pod_ephemeral_update(old: &Value, new: &Value, e: &mut Errs) {
    super::meta::validate_object_meta_update(old, new, true, e);
    validate_pod_metadata_and_spec(new, e);
    let om = sub(old, "metadata");
    if string_map(om, "annotations")
        .iter()
        .any(|(k, _)| *k == "kubernetes.io/config.mirror")
    {
        e.list.clear();
        e.forbidden("", "static pods do not support ephemeral containers");
        return;
    }
    let new_list = arr(sub(new, "spec"), "ephemeralContainers");
    for oc in arr(sub(old, "spec"), "ephemeralContainers") {
        let name = st(oc, "name");
        match new_list.iter().find(|c| st(c, "name") == name) {
            None => e.forbidden(
                "spec.ephemeralContainers",
                &format!(
                    "existing ephemeral containers {} may not be removed\n",
                    go_quote(name)
                ),
            ),
            Some(nc) if !semantic_eq(Some(nc), Some(oc)) => e.forbidden(
                "spec.ephemeralContainers",
                &format!(
                    "existing ephemeral containers {} may not be changed\n{}",
                    go_quote(name),
                    diff_text("core.EphemeralContainer", oc, nc)
                ),
            ),
            Some(_) => {}
        }
    }
}

/// `ValidatePodStatusUpdate` (the `status` subresource), main rules.
pub(crate) fn validate_pod_status_update(old: &Value, new: &Value, e: &mut Errs) {
    super::meta::validate_object_meta_update(old, new, true, e);
    let status = sub(new, "status");
    for (i, c) in arr(status, "conditions").iter().enumerate() {
        let t = st(c, "type");
        if !["PodScheduled", "Ready", "Initialized"].contains(&t) {
            e.invalid_each(
                &format!("metadata.conditions[{i}].Type"),
                t,
                is_qualified_name(t),
            );
        }
    }
    if st(sub(new, "spec"), "nodeName") != st(sub(old, "spec"), "nodeName") {
        e.forbidden("status.nodeName", "may not be changed directly");
    }
    let nominated = st(status, "nominatedNodeName");
    if !nominated.is_empty() && nominated != st(sub(old, "status"), "nominatedNodeName") {
        e.invalid_each(
            "status.nominatedNodeName",
            nominated,
            is_dns1123_subdomain(nominated),
        );
    }
    let (nq, oq) = (st(status, "qosClass"), st(sub(old, "status"), "qosClass"));
    if nq != oq {
        e.invalid("status.qosClass", Bad::s(nq), super::FIELD_IMMUTABLE);
    }
    for key in ["podIPs", "hostIPs"] {
        let ips = arr(status, key);
        for (i, ip) in ips.iter().enumerate() {
            let ip = st(ip, "ip");
            if parse_ip_sloppy(ip).is_none() {
                e.invalid(&format!("status.{key}[{i}]"), Bad::s(ip), INVALID_IP_MSG);
            }
        }
        let mut seen: Vec<&str> = Vec::new();
        for (i, ip) in ips.iter().enumerate() {
            let ip = st(ip, "ip");
            if seen.contains(&ip) {
                e.duplicate(
                    &format!("status.{key}[{i}]"),
                    Bad::Raw(format!(
                        "core.{}{{IP:{}}}",
                        if key == "podIPs" { "PodIP" } else { "HostIP" },
                        go_quote(ip)
                    )),
                );
            }
            seen.push(ip);
        }
    }
    if let Some(first) = arr(status, "hostIPs").first() {
        if st(first, "ip") != st(status, "hostIP") {
            e.invalid(
                "status.hostIPs[0].ip",
                Bad::s(st(first, "ip")),
                "must be equal to `hostIP`",
            );
        }
    }
}

/// `ValidatePodResize` (the `resize` subresource): only container cpu/memory resources and
/// resize policies may change.
pub(crate) fn validate_pod_resize(old: &Value, new: &Value, e: &mut Errs) {
    super::meta::validate_object_meta_update(old, new, true, e);
    validate_pod_metadata_and_spec(new, e);
    let (ns, os) = (sub(new, "spec"), sub(old, "spec"));
    let strip = |spec: &Value| {
        let mut s = spec.clone();
        if let Some(list) = s.get_mut("containers").and_then(Value::as_array_mut) {
            for c in list.iter_mut().filter_map(Value::as_object_mut) {
                c.remove("resizePolicy");
                if let Some(res) = c.get_mut("resources").and_then(Value::as_object_mut) {
                    for l in ["limits", "requests"] {
                        if let Some(m) = res.get_mut(l).and_then(Value::as_object_mut) {
                            m.remove("cpu");
                            m.remove("memory");
                        }
                    }
                }
            }
        }
        s
    };
    if !semantic_eq(Some(&strip(ns)), Some(&strip(os))) {
        e.forbidden("spec", "only cpu and memory resources are mutable");
    }
}

// ---------------------------------------------------------------------------------------------
// QoS.

/// The QoS class (`BestEffort`, `Burstable`, `Guaranteed`) of a pod spec, by upstream's rules:
/// cpu and memory requests/limits of all init and regular containers.
pub fn compute_qos_class(spec: &Value) -> &'static str {
    let mut requests: Vec<(&str, Quantity)> = Vec::new();
    let mut limits: Vec<(&str, Quantity)> = Vec::new();
    let mut guaranteed = true;
    let add = |list: &mut Vec<(&'static str, Quantity)>, name: &'static str, q: Quantity| match list
        .iter_mut()
        .find(|(n, _)| *n == name)
    {
        Some((_, cur)) => *cur = cur.add(&q),
        None => list.push((name, q)),
    };
    let containers = arr(spec, "initContainers")
        .iter()
        .chain(arr(spec, "containers").iter());
    for c in containers {
        let res = sub(c, "resources");
        for name in ["cpu", "memory"] {
            if let Some(q) = obj(res, "requests")
                .and_then(|m| m.get(name))
                .and_then(|v| Quantity::parse(&quantity_str(v)))
            {
                if q.cmp_value(&Quantity::zero()) == std::cmp::Ordering::Greater {
                    add(&mut requests, name, q);
                }
            }
        }
        let mut found = 0;
        for name in ["cpu", "memory"] {
            if let Some(q) = obj(res, "limits")
                .and_then(|m| m.get(name))
                .and_then(|v| Quantity::parse(&quantity_str(v)))
            {
                if q.cmp_value(&Quantity::zero()) == std::cmp::Ordering::Greater {
                    found += 1;
                    add(&mut limits, name, q);
                }
            }
        }
        if found < 2 {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed {
        for (name, req) in &requests {
            match limits.iter().find(|(n, _)| n == name) {
                Some((_, lim)) if lim.cmp_value(req) == std::cmp::Ordering::Equal => {}
                _ => guaranteed = false,
            }
        }
    }
    if guaranteed && requests.len() == limits.len() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::super::Cause;
    use super::*;
    use serde_json::json;

    fn pod(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": spec})
    }

    fn defaulted_container(name: &str, image: &str) -> Value {
        json!({"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
               "terminationMessagePolicy": "File", "terminationMessagePath": "/dev/termination-log", "resources": {}})
    }

    fn base_spec(containers: Vec<Value>) -> Value {
        json!({"containers": containers, "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
               "terminationGracePeriodSeconds": 30, "securityContext": {}, "schedulerName": "default-scheduler"})
    }

    fn errs_create(p: &Value) -> Vec<String> {
        let mut e = Errs::default();
        validate_pod_create(p, &mut e);
        e.list.iter().map(|c| c.error_string()).collect()
    }

    #[test]
    fn valid_pod_passes() {
        assert_eq!(
            errs_create(&pod(base_spec(vec![defaulted_container("c", "nginx")]))),
            Vec::<String>::new()
        );
    }

    #[test]
    fn required_containers_and_image() {
        assert_eq!(
            errs_create(&pod(base_spec(vec![]))),
            vec!["spec.containers: Required value"]
        );
        assert_eq!(
            errs_create(&pod(base_spec(vec![defaulted_container("c", "")]))),
            vec!["spec.containers[0].image: Required value"]
        );
    }

    #[test]
    fn bad_pod_name() {
        let mut p = pod(base_spec(vec![defaulted_container("c", "nginx")]));
        p["metadata"]["name"] = json!("Foo_Bar");
        assert_eq!(errs_create(&p), vec![
            "metadata.name: Invalid value: \"Foo_Bar\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        ]);
    }

    #[test]
    fn container_names_ports_policies() {
        let mut c1 = defaulted_container("Web", "nginx");
        c1["ports"] = json!([{"containerPort": 70000, "protocol": "TCP"}, {"containerPort": 80, "protocol": "ICMP"}, {"protocol": "TCP"}]);
        c1["imagePullPolicy"] = json!("Sometimes");
        let c2 = defaulted_container("dup", "x");
        let c3 = defaulted_container("dup", "x");
        let mut spec = base_spec(vec![c1, c2, c3]);
        spec["restartPolicy"] = json!("Sometimes");
        spec["dnsPolicy"] = json!("Cluster");
        let errs = errs_create(&pod(spec));
        assert!(errs[0].starts_with(
            "spec.containers[0].name: Invalid value: \"Web\": a lowercase RFC 1123 label"
        ));
        assert!(errs.contains(&"spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive".into()));
        assert!(errs.contains(&"spec.containers[0].ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"".into()));
        assert!(errs.contains(&"spec.containers[0].ports[2].containerPort: Required value".into()));
        assert!(errs.contains(&"spec.containers[0].imagePullPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\"".into()));
        assert!(errs.contains(&"spec.containers[2].name: Duplicate value: \"dup\"".into()));
        assert!(errs.contains(&"spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"".into()));
        assert!(errs.contains(&"spec.dnsPolicy: Unsupported value: \"Cluster\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"".into()));
    }

    #[test]
    fn init_containers_and_duplicates() {
        let mut init = defaulted_container("c", "busybox");
        init["restartPolicy"] = json!("OnFailure");
        let mut spec = base_spec(vec![defaulted_container("c", "nginx")]);
        spec["initContainers"] = json!([init]);
        let errs = errs_create(&pod(spec));
        assert_eq!(errs, vec![
            "spec.initContainers[0].restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"",
            "spec.initContainers[0].name: Duplicate value: \"c\"",
        ]);
    }

    #[test]
    fn volumes_and_mounts() {
        let mut c = defaulted_container("c", "nginx");
        c["volumeMounts"] =
            json!([{"name": "data", "mountPath": "/d"}, {"name": "missing", "mountPath": "/d"}]);
        let mut spec = base_spec(vec![c]);
        spec["volumes"] = json!([{"name": "data", "emptyDir": {}}, {"name": "data", "emptyDir": {}}, {"name": "x", "emptyDir": {}, "hostPath": {"path": "/"}}]);
        let errs = errs_create(&pod(spec));
        assert_eq!(
            errs,
            vec![
            "spec.volumes[1].name: Duplicate value: \"data\"",
            "spec.volumes[2].hostPath: Forbidden: may not specify more than 1 volume type",
            "spec.containers[0].volumeMounts[1].name: Not found: \"missing\"",
            "spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/d\": must be unique",
        ]
        );
    }

    #[test]
    fn env_and_resources() {
        let mut c = defaulted_container("c", "nginx");
        c["env"] =
            json!([{"name": "A=B", "value": "x"}, {"name": ""}, {"name": "F", "valueFrom": {}}]);
        c["resources"] = json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "2", "memory": "-1"}});
        let errs = errs_create(&pod(base_spec(vec![c])));
        assert_eq!(errs, vec![
            "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
            "spec.containers[0].env[1].name: Required value",
            "spec.containers[0].env[2].valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
            "spec.containers[0].resources.requests[memory]: Invalid value: \"-1\": must be greater than or equal to 0",
        ]);
    }

    #[test]
    fn extended_resources_and_names() {
        let mut c = defaulted_container("c", "nginx");
        c["resources"] = json!({"requests": {"example.com/gpu": "1", "gpu": "1"}});
        let errs = errs_create(&pod(base_spec(vec![c])));
        assert_eq!(errs, vec![
            "spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources",
            "spec.containers[0].resources.requests[gpu]: Invalid value: \"gpu\": must be a standard resource type or fully qualified",
            "spec.containers[0].resources.requests[gpu]: Invalid value: \"gpu\": must be a standard resource for containers",
        ]);
    }

    #[test]
    fn tolerations_and_probes() {
        let mut c = defaulted_container("c", "nginx");
        c["livenessProbe"] = json!({"httpGet": {"path": "/", "port": 0, "scheme": "HTTP"}, "successThreshold": 2,
            "timeoutSeconds": 1, "periodSeconds": 10, "failureThreshold": 3});
        let mut spec = base_spec(vec![c]);
        spec["tolerations"] = json!([{"operator": "Equal", "value": "x"}, {"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}]);
        let errs = errs_create(&pod(spec));
        assert_eq!(errs, vec![
            "spec.containers[0].livenessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
            "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            "spec.tolerations[1].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
        ]);
    }

    #[test]
    fn pod_update_rules() {
        let old = pod(base_spec(vec![defaulted_container("c", "nginx:1")]));
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("nginx:2");
        new["spec"]["activeDeadlineSeconds"] = json!(30);
        new["spec"]["tolerations"] = json!([{"key": "a", "operator": "Exists"}]);
        let mut e = Errs::default();
        validate_pod_update(&old, &new, &mut e);
        assert!(e.list.is_empty(), "{:?}", e.list);

        let mut bad = old.clone();
        bad["spec"]["restartPolicy"] = json!("Never");
        let mut e = Errs::default();
        validate_pod_update(&old, &bad, &mut e);
        assert_eq!(e.list.len(), 1);
        assert_eq!(e.list[0].reason, "FieldValueForbidden");
        assert!(e.list[0].message.starts_with("Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"));
        assert!(e.list[0].message.contains("restartPolicy"));

        let mut more = old.clone();
        more["spec"]["containers"] = json!([
            defaulted_container("c", "nginx"),
            defaulted_container("d", "nginx")
        ]);
        let mut e = Errs::default();
        validate_pod_update(&old, &more, &mut e);
        assert_eq!(
            e.list.last().map(Cause::error_string),
            Some("spec.containers: Forbidden: pod updates may not add or remove containers".into())
        );

        let mut e = Errs::default();
        let mut renamed = old.clone();
        renamed["metadata"]["name"] = json!("q");
        validate_pod_update(&old, &renamed, &mut e);
        assert_eq!(
            e.list[0].error_string(),
            "metadata.name: Invalid value: \"q\": field is immutable"
        );
    }

    #[test]
    fn qos_classes() {
        let c = |res: Value| json!({"name": "c", "image": "x", "resources": res});
        assert_eq!(
            compute_qos_class(&json!({"containers": [c(json!({}))]})),
            "BestEffort"
        );
        assert_eq!(
            compute_qos_class(&json!({"containers": [c(json!({"requests": {"cpu": "100m"}}))]})),
            "Burstable"
        );
        assert_eq!(
            compute_qos_class(
                &json!({"containers": [c(json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m", "memory": "1Gi"}}))]})
            ),
            "Guaranteed"
        );
        assert_eq!(
            compute_qos_class(
                &json!({"containers": [c(json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}}))]})
            ),
            "Burstable"
        );
    }
}
