//! Validation of the remaining served kinds: Namespace, Node, Service, Endpoints, ConfigMap,
//! Secret, ServiceAccount, PersistentVolume(Claim), Binding, Event (core/v1 and events.k8s.io/v1),
//! Lease, the authorization reviews, and a generic ObjectMeta-only fallback.

use super::meta::{
    validate_finalizer_name, validate_label_selector, validate_labels, validate_object_meta,
    validate_object_meta_update, MetaRules,
};
use super::names::{
    is_config_map_key, is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_cidr,
    is_valid_label_value, is_valid_port_name, is_valid_port_num, parse_ip_sloppy, NameRule,
    INVALID_CIDR_MSG, INVALID_IP_MSG,
};
use super::pod::{
    diff_text, validate_node_selector, validate_quantity_value, validate_taint_effect,
};
use super::quantity::Quantity;
use super::{
    arr, boolean, fld, go_quote, int, obj, opt_str, semantic_eq, st, string_map, sub, Bad, Errs,
    FIELD_IMMUTABLE,
};
use crate::resources::Resource;
use serde_json::{Map, Value};

const MAX_SECRET_SIZE: usize = 1024 * 1024;

pub(crate) fn validate_create(r: &Resource, o: &Value, e: &mut Errs) {
    match (r.group, r.kind) {
        ("", "Namespace") => validate_namespace(o, e),
        ("", "Node") => validate_node(o, e),
        ("", "Service") => validate_service(o, e),
        ("", "Endpoints") => validate_endpoints(o, e),
        ("", "ConfigMap") => validate_config_map(o, e),
        ("", "Secret") => validate_secret(o, e),
        ("", "ServiceAccount") => {
            validate_object_meta(o, MetaRules::core(true, NameRule::Dns1123Subdomain), e)
        }
        ("", "PersistentVolume") => validate_pv(o, e),
        ("", "PersistentVolumeClaim") => validate_pvc(o, e),
        ("", "Binding") => validate_binding(o, e),
        ("", "Event") => validate_core_event(o, e),
        ("storage.k8s.io", "StorageClass") => validate_storage_class(o, e),
        ("events.k8s.io", "Event") => validate_events_event(o, e),
        ("coordination.k8s.io", "Lease") => {
            validate_object_meta(
                o,
                MetaRules {
                    namespaced: true,
                    name: NameRule::Dns1123Subdomain,
                    kube_finalizers: false,
                },
                e,
            );
            validate_lease_spec(sub(o, "spec"), e);
        }
        ("authorization.k8s.io", "SubjectAccessReview") => {
            validate_access_review(sub(o, "spec"), true, e)
        }
        ("authorization.k8s.io", "SelfSubjectAccessReview") => {
            validate_access_review(sub(o, "spec"), false, e)
        }
        ("authorization.k8s.io", _) | ("authentication.k8s.io", _) => {}
        _ => validate_object_meta(
            o,
            MetaRules::core(r.namespaced, NameRule::Dns1123Subdomain),
            e,
        ),
    }
}

pub(crate) fn validate_update(r: &Resource, old: &Value, new: &Value, e: &mut Errs) {
    match (r.group, r.kind) {
        ("", "Namespace") => validate_object_meta_update(old, new, true, e),
        ("", "Node") => validate_node_update(old, new, e),
        ("", "Service") => validate_service_update(old, new, e),
        ("", "Endpoints") => {
            validate_object_meta_update(old, new, true, e);
            validate_endpoints(new, e);
        }
        ("", "ConfigMap") => validate_config_map_update(old, new, e),
        ("", "Secret") => validate_secret_update(old, new, e),
        ("", "ServiceAccount") => {
            validate_object_meta_update(old, new, true, e);
            validate_object_meta(new, MetaRules::core(true, NameRule::Dns1123Subdomain), e);
        }
        ("", "PersistentVolume") => validate_pv_update(old, new, e),
        ("", "PersistentVolumeClaim") => validate_pvc_update(old, new, e),
        ("", "Event") => legacy_validate_event(new, &CORE_EVENT, e),
        ("storage.k8s.io", "StorageClass") => validate_storage_class_update(old, new, e),
        ("events.k8s.io", "Event") => validate_events_event_update(old, new, e),
        ("coordination.k8s.io", "Lease") => {
            validate_object_meta_update(old, new, false, e);
            validate_lease_spec(sub(new, "spec"), e);
        }
        ("authorization.k8s.io", _) | ("authentication.k8s.io", _) | ("", "Binding") => {
            validate_create(r, new, e)
        }
        _ => validate_object_meta_update(old, new, true, e),
    }
}

/// Status-subresource updates of the core, coordination and events kinds.
pub(crate) fn validate_status_update(r: &Resource, old: &Value, new: &Value, e: &mut Errs) {
    match (r.group, r.kind) {
        ("", "Node") => validate_node_update(old, new, e),
        ("", "Namespace") => {
            validate_object_meta_update(old, new, true, e);
            let phase = st(sub(new, "status"), "phase");
            if fld(sub(new, "metadata"), "deletionTimestamp").is_none() {
                if phase != "Active" {
                    e.invalid(
                        "status.Phase",
                        Bad::s(phase),
                        "may only be 'Active' if `deletionTimestamp` is empty",
                    );
                }
            } else if phase != "Terminating" {
                e.invalid(
                    "status.Phase",
                    Bad::s(phase),
                    "may only be 'Terminating' if `deletionTimestamp` is not empty",
                );
            }
        }
        ("", "Service") => {
            validate_object_meta_update(old, new, true, e);
            let lb = sub(sub(new, "status"), "loadBalancer");
            for (i, ing) in arr(lb, "ingress").iter().enumerate() {
                if let Some(ip) = opt_str(ing, "ip").filter(|ip| !ip.is_empty()) {
                    if parse_ip_sloppy(ip).is_none() {
                        e.invalid(
                            &format!("status.loadBalancer.ingress[{i}].ip"),
                            Bad::s(ip),
                            "must be a valid IP address",
                        );
                    }
                }
                if let Some(h) = opt_str(ing, "hostname").filter(|h| !h.is_empty()) {
                    e.invalid_each(
                        &format!("status.loadBalancer.ingress[{i}].hostname"),
                        h,
                        is_dns1123_subdomain(h),
                    );
                    if parse_ip_sloppy(h).is_some() {
                        e.invalid(
                            &format!("status.loadBalancer.ingress[{i}].hostname"),
                            Bad::s(h),
                            "must be a DNS name, not an IP address",
                        );
                    }
                }
            }
        }
        _ => validate_object_meta_update(old, new, true, e),
    }
}

// ---------------------------------------------------------------------------------------------
// Namespaces and nodes.

fn validate_namespace(o: &Value, e: &mut Errs) {
    validate_object_meta(o, MetaRules::core(false, NameRule::Dns1123Label), e);
    for f in arr(sub(o, "spec"), "finalizers") {
        validate_finalizer_name(f.as_str().unwrap_or(""), "spec.finalizers", e);
    }
}

fn validate_taints(taints: &[Value], path: &str, e: &mut Errs) {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for (i, t) in taints.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let key = st(t, "key");
        e.invalid_each(&format!("{p}.key"), key, is_qualified_name(key));
        let value = st(t, "value");
        let errs = is_valid_label_value(value);
        if !errs.is_empty() {
            e.invalid(&format!("{p}.value"), Bad::s(value), &errs.join(";"));
        }
        let effect = st(t, "effect");
        if effect.is_empty() {
            e.required(&format!("{p}.effect"), "");
        } else {
            validate_taint_effect(effect, &format!("{p}.effect"), e);
        }
        if seen.contains(&(key, effect)) {
            let added = fld(t, "timeAdded").map_or("<nil>".to_string(), |v| {
                v.as_str().unwrap_or("").to_string()
            });
            e.duplicate_detail(
                &p,
                Bad::Raw(format!(
                    "core.Taint{{Key:{}, Value:{}, Effect:{}, TimeAdded:{added}}}",
                    go_quote(key),
                    go_quote(value),
                    go_quote(effect)
                )),
                "taints must be unique by key and effect pair",
            );
            continue;
        }
        seen.push((key, effect));
    }
}

fn validate_node_resources(node: &Value, e: &mut Errs) {
    let status = sub(node, "status");
    for list in ["capacity", "allocatable"] {
        if let Some(m) = obj(status, list) {
            for (k, v) in m {
                validate_quantity_value(k, v, &format!("status.{list}.{k}"), e);
            }
        }
    }
}

fn validate_node(o: &Value, e: &mut Errs) {
    validate_object_meta(o, MetaRules::core(false, NameRule::Dns1123Subdomain), e);
    let spec = sub(o, "spec");
    validate_taints(arr(spec, "taints"), "metadata.taints", e);
    validate_node_resources(o, e);
    let cidrs = arr(spec, "podCIDRs");
    for (i, c) in cidrs.iter().enumerate() {
        let c = c.as_str().unwrap_or("");
        if !is_valid_cidr(c) {
            e.invalid(&format!("spec.podCIDRs[{i}]"), Bad::s(c), INVALID_CIDR_MSG);
        }
    }
    if cidrs.len() > 1 {
        let v4 = cidrs
            .iter()
            .filter(|c| {
                c.as_str()
                    .and_then(|s| s.split('/').next())
                    .and_then(parse_ip_sloppy)
                    .is_some_and(|ip| ip.is_ipv4())
            })
            .count();
        if cidrs.len() > 2 || v4 != 1 {
            e.invalid(
                "spec.podCIDRs",
                Bad::Raw(super::go_string_slice(fld(spec, "podCIDRs"))),
                "may specify no more than one CIDR for each IP family",
            );
        }
        let mut seen: Vec<&str> = Vec::new();
        for (i, c) in cidrs.iter().enumerate() {
            let c = c.as_str().unwrap_or("");
            if seen.contains(&c) {
                e.duplicate(&format!("spec.podCIDRs[{i}]"), Bad::s(c));
            }
            seen.push(c);
        }
    }
}

fn validate_node_update(old: &Value, new: &Value, e: &mut Errs) {
    validate_object_meta_update(old, new, true, e);
    validate_node_resources(new, e);
    let mut seen: Vec<&Value> = Vec::new();
    for (i, a) in arr(sub(new, "status"), "addresses").iter().enumerate() {
        if seen.contains(&a) {
            e.duplicate(
                &format!("status.addresses[{i}]"),
                Bad::Raw(format!(
                    "core.NodeAddress{{Type:{}, Address:{}}}",
                    go_quote(st(a, "type")),
                    go_quote(st(a, "address"))
                )),
            );
        }
        seen.push(a);
    }
    let (ns, os) = (sub(new, "spec"), sub(old, "spec"));
    let old_cidrs = arr(os, "podCIDRs");
    if !old_cidrs.is_empty() && old_cidrs != arr(ns, "podCIDRs") {
        let n = arr(ns, "podCIDRs");
        let count = if old_cidrs.len() != n.len() {
            1
        } else {
            old_cidrs.iter().zip(n).filter(|(a, b)| a != b).count()
        };
        for _ in 0..count {
            e.forbidden(
                "spec.podCIDRs",
                "node updates may not change podCIDR except from \"\" to valid",
            );
        }
    }
    let old_pid = st(os, "providerID");
    if !old_pid.is_empty() && old_pid != st(ns, "providerID") {
        e.forbidden(
            "spec.providerID",
            "node updates may not change providerID except from \"\" to valid",
        );
    }
    validate_taints(arr(ns, "taints"), "metadata.taints", e);
    if st(ns, "externalID") != st(os, "externalID") {
        e.forbidden("spec.externalID", "may not be updated");
    }
}

// ---------------------------------------------------------------------------------------------
// Services.

fn is_headless(spec: &Value) -> bool {
    let ips = arr(spec, "clusterIPs");
    ips.len() == 1 && ips[0].as_str() == Some("None")
}

fn service_port_key(p: &Value) -> String {
    format!(
        "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
        go_quote(st(p, "protocol")),
        int(p, "port").unwrap_or(0)
    )
}

fn validate_service_port(
    sp: &Value,
    require_name: bool,
    names: &mut Vec<String>,
    path: &str,
    e: &mut Errs,
) {
    let name = st(sp, "name");
    if require_name && name.is_empty() {
        e.required(&format!("{path}.name"), "");
    } else if !name.is_empty() {
        e.invalid_each(&format!("{path}.name"), name, is_dns1123_label(name));
        if names.iter().any(|n| n == name) {
            e.duplicate(&format!("{path}.name"), Bad::s(name));
        } else {
            names.push(name.to_string());
        }
    }
    let port = int(sp, "port").unwrap_or(0);
    for m in is_valid_port_num(port) {
        e.invalid(&format!("{path}.port"), Bad::n(port), &m);
    }
    match st(sp, "protocol") {
        "" => e.required(&format!("{path}.protocol"), ""),
        "TCP" | "UDP" | "SCTP" => {}
        other => e.not_supported(
            &format!("{path}.protocol"),
            Bad::s(other),
            &["SCTP", "TCP", "UDP"],
        ),
    }
    match fld(sp, "targetPort") {
        Some(Value::String(s)) => {
            e.invalid_each(&format!("{path}.targetPort"), s, is_valid_port_name(s))
        }
        other => {
            let n = other.and_then(super::as_int).unwrap_or(0);
            for m in is_valid_port_num(n) {
                e.invalid(&format!("{path}.targetPort"), Bad::n(n), &m);
            }
        }
    }
    if let Some(ap) = opt_str(sp, "appProtocol") {
        e.invalid_each(&format!("{path}.appProtocol"), ap, is_qualified_name(ap));
    }
}

fn validate_cluster_ips_related(spec: &Value, e: &mut Errs) {
    if st(spec, "type") == "ExternalName" {
        return;
    }
    let cip = st(spec, "clusterIP");
    let cips = arr(spec, "clusterIPs");
    let cips_raw = || Bad::Raw(super::go_string_slice(fld(spec, "clusterIPs")));
    if !cip.is_empty() {
        if cips.is_empty() {
            e.required("spec.clusterIPs", "");
        } else if cips[0].as_str() != Some(cip) {
            e.invalid(
                "spec.clusterIPs",
                cips_raw(),
                "first value must match `clusterIP`",
            );
        }
    } else if !cips.is_empty() {
        e.invalid(
            "spec.clusterIPs",
            cips_raw(),
            "must be empty when `clusterIP` is not specified",
        );
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, f) in arr(spec, "ipFamilies").iter().enumerate() {
        let f = f.as_str().unwrap_or("");
        if f != "IPv4" && f != "IPv6" {
            e.not_supported(
                &format!("spec.ipFamilies[{i}]"),
                Bad::s(f),
                &["IPv4", "IPv6"],
            );
        }
        if seen.contains(&f) {
            e.duplicate(&format!("spec.ipFamilies[{i}]"), Bad::s(f));
        }
        seen.push(f);
    }
    if let Some(p) = opt_str(spec, "ipFamilyPolicy") {
        if !["PreferDualStack", "RequireDualStack", "SingleStack"].contains(&p) {
            e.not_supported(
                "spec.ipFamilyPolicy",
                Bad::s(p),
                &["PreferDualStack", "RequireDualStack", "SingleStack"],
            );
        }
    }
    let mut invalid_ips = false;
    for (i, ip) in cips.iter().enumerate() {
        let ip = ip.as_str().unwrap_or("");
        if i == 0 && ip == "None" {
            if cips.len() > 1 {
                invalid_ips = true;
                e.invalid(
                    "spec.clusterIPs",
                    cips_raw(),
                    "'None' must be the first and only value",
                );
            }
            continue;
        }
        if parse_ip_sloppy(ip).is_none() {
            invalid_ips = true;
            e.invalid(&format!("spec.clusterIPs[{i}]"), Bad::s(ip), INVALID_IP_MSG);
        }
    }
    if cips.len() > 2 {
        e.invalid(
            "spec.clusterIPs",
            cips_raw(),
            "may only hold up to 2 values",
        );
    }
    if invalid_ips {
        return;
    }
    let parsed: Vec<Option<std::net::IpAddr>> = cips
        .iter()
        .map(|c| c.as_str().and_then(parse_ip_sloppy))
        .collect();
    if cips.len() > 1 {
        let v4 = parsed
            .iter()
            .filter(|p| p.is_some_and(|ip| ip.is_ipv4()))
            .count();
        if v4 != 1 || cips.len() != 2 {
            e.invalid(
                "spec.clusterIPs",
                cips_raw(),
                "may specify no more than one IP for each IP family",
            );
        }
    }
    if !is_headless(spec) {
        for (i, (ip, fam)) in cips.iter().zip(arr(spec, "ipFamilies")).enumerate() {
            let is_v6 = parsed
                .get(i)
                .copied()
                .flatten()
                .is_some_and(|p| p.is_ipv6());
            let fam = fam.as_str().unwrap_or("");
            let ip = ip.as_str().unwrap_or("");
            if fam == "IPv4" && is_v6 {
                e.invalid(
                    &format!("spec.clusterIPs[{i}]"),
                    Bad::s(ip),
                    &format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                );
            }
            if fam == "IPv6" && !is_v6 {
                e.invalid(
                    &format!("spec.clusterIPs[{i}]"),
                    Bad::s(ip),
                    &format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                );
            }
        }
    }
}

fn validate_service(o: &Value, e: &mut Errs) {
    validate_object_meta(o, MetaRules::core(true, NameRule::Dns1035Label), e);
    let annotations = string_map(sub(o, "metadata"), "annotations");
    let hints = annotations
        .iter()
        .find(|(k, _)| *k == "service.kubernetes.io/topology-aware-hints")
        .map(|(_, v)| *v);
    let mode = annotations
        .iter()
        .find(|(k, _)| *k == "service.kubernetes.io/topology-mode")
        .map(|(_, v)| *v);
    if let (Some(h), Some(m)) = (hints, mode) {
        if h != m {
            e.invalid(
                "metadata.annotations[service.kubernetes.io/topology-mode]",
                Bad::s(m),
                "must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified",
            );
        }
    }
    let spec = sub(o, "spec");
    let ty = st(spec, "type");
    let ports = arr(spec, "ports");
    let headless = is_headless(spec);
    if ports.is_empty() && !headless && ty != "ExternalName" {
        e.required("spec.ports", "");
    }
    match ty {
        "LoadBalancer" | "NodePort" if headless => {
            e.invalid(
                "spec.clusterIPs[0]",
                Bad::s("None"),
                &format!("may not be set to 'None' for {ty} services"),
            );
        }
        "ExternalName" => {
            if !arr(spec, "clusterIPs").is_empty() {
                e.forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                );
            }
            if !arr(spec, "ipFamilies").is_empty() {
                e.forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                );
            }
            if fld(spec, "ipFamilyPolicy").is_some() {
                e.forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                );
            }
            let cname = st(spec, "externalName");
            let cname = cname.strip_suffix('.').unwrap_or(cname);
            if cname.is_empty() {
                e.required("spec.externalName", "");
            } else {
                e.invalid_each("spec.externalName", cname, is_dns1123_subdomain(cname));
            }
        }
        _ => {}
    }
    let mut names = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        validate_service_port(
            p,
            ports.len() > 1,
            &mut names,
            &format!("spec.ports[{i}]"),
            e,
        );
    }
    if fld(spec, "selector").is_some() {
        validate_labels(fld(spec, "selector"), "spec.selector", e);
    }
    let affinity = st(spec, "sessionAffinity");
    match affinity {
        "" => e.required("spec.sessionAffinity", ""),
        "ClientIP" | "None" => {}
        other => e.not_supported("spec.sessionAffinity", Bad::s(other), &["ClientIP", "None"]),
    }
    let cfg = fld(spec, "sessionAffinityConfig");
    if affinity == "ClientIP" {
        let detail = "when session affinity type is ClientIP";
        match cfg {
            None => e.required("spec.sessionAffinityConfig", detail),
            Some(c) => match fld(c, "clientIP") {
                None => e.required("spec.sessionAffinityConfig.clientIP", detail),
                Some(ci) => match int(ci, "timeoutSeconds") {
                    None => {
                        e.required("spec.sessionAffinityConfig.clientIP.timeoutSeconds", detail)
                    }
                    Some(t) => {
                        if t <= 0 || t > 86400 {
                            e.invalid(
                                "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                                Bad::n(t),
                                "must be greater than 0 and less than 86400",
                            );
                        }
                    }
                },
            },
        }
    } else if affinity == "None" && cfg.is_some() {
        e.forbidden(
            "spec.sessionAffinityConfig",
            "must not be set when session affinity is None",
        );
    }
    validate_cluster_ips_related(spec, e);
    for (i, ip) in arr(spec, "externalIPs").iter().enumerate() {
        let ip = ip.as_str().unwrap_or("");
        let p = format!("spec.externalIPs[{i}]");
        match parse_ip_sloppy(ip) {
            None => e.invalid(&p, Bad::s(ip), INVALID_IP_MSG),
            Some(addr) => validate_non_special_ip(ip, addr, &p, e),
        }
    }
    match ty {
        "" => e.required("spec.type", ""),
        "ClusterIP" | "ExternalName" | "LoadBalancer" | "NodePort" => {}
        other => e.not_supported(
            "spec.type",
            Bad::s(other),
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ),
    }
    if ty == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if int(p, "nodePort").unwrap_or(0) != 0 {
                e.forbidden(
                    &format!("spec.ports[{i}].nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                );
            }
        }
    }
    let mut node_ports: Vec<(&str, i64)> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let np = int(p, "nodePort").unwrap_or(0);
        if np == 0 {
            continue;
        }
        let key = (st(p, "protocol"), np);
        if node_ports.contains(&key) {
            e.duplicate(&format!("spec.ports[{i}].nodePort"), Bad::n(np));
        }
        node_ports.push(key);
    }
    let mut seen_ports: Vec<(&str, i64)> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let key = (st(p, "protocol"), int(p, "port").unwrap_or(0));
        if seen_ports.contains(&key) {
            e.duplicate(&format!("spec.ports[{i}]"), Bad::Raw(service_port_key(p)));
        }
        seen_ports.push(key);
    }
    let ranges = arr(spec, "loadBalancerSourceRanges");
    if !ranges.is_empty() {
        if ty != "LoadBalancer" {
            e.forbidden(
                "spec.LoadBalancerSourceRanges",
                "may only be used when `type` is 'LoadBalancer'",
            );
        }
        for (i, r) in ranges.iter().enumerate() {
            let r = r.as_str().unwrap_or("").trim();
            if !is_valid_cidr(r) {
                e.invalid(
                    &format!("spec.LoadBalancerSourceRanges[{i}]"),
                    Bad::s(r),
                    INVALID_CIDR_MSG,
                );
            }
        }
    }
    if fld(spec, "allocateLoadBalancerNodePorts").is_some() && ty != "LoadBalancer" {
        e.forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        );
    }
    if ty == "LoadBalancer" && fld(spec, "allocateLoadBalancerNodePorts").is_none() {
        e.required("allocateLoadBalancerNodePorts", "");
    }
    if let Some(lbc) = opt_str(spec, "loadBalancerClass") {
        if ty != "LoadBalancer" {
            e.forbidden(
                "spec.loadBalancerClass",
                "may only be used when `type` is 'LoadBalancer'",
            );
        } else {
            e.invalid_each("spec.loadBalancerClass", lbc, is_qualified_name(lbc));
        }
    }
    let externally = ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP" && !arr(spec, "externalIPs").is_empty());
    let etp = st(spec, "externalTrafficPolicy");
    if !externally {
        if !etp.is_empty() {
            e.invalid(
                "spec.externalTrafficPolicy",
                Bad::s(etp),
                "may only be set for externally-accessible services",
            );
        }
    } else if etp.is_empty() {
        e.required("spec.externalTrafficPolicy", "");
    } else if etp != "Cluster" && etp != "Local" {
        e.not_supported(
            "spec.externalTrafficPolicy",
            Bad::s(etp),
            &["Cluster", "Local"],
        );
    }
    let needs_hc = ty == "LoadBalancer" && etp == "Local";
    let hc = int(spec, "healthCheckNodePort").unwrap_or(0);
    if !needs_hc && hc != 0 {
        e.invalid(
            "spec.healthCheckNodePort",
            Bad::n(hc),
            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
        );
    } else if needs_hc && hc != 0 {
        for m in is_valid_port_num(hc) {
            e.invalid("spec.healthCheckNodePort", Bad::n(hc), &m);
        }
    }
    match opt_str(spec, "internalTrafficPolicy") {
        None => {
            if ["NodePort", "LoadBalancer", "ClusterIP"].contains(&ty) {
                e.required("spec.internalTrafficPolicy", "");
            }
        }
        Some(p) if p != "Cluster" && p != "Local" => e.not_supported(
            "spec.internalTrafficPolicy",
            Bad::s(p),
            &["Cluster", "Local"],
        ),
        Some(_) => {}
    }
    if let Some(td) = opt_str(spec, "trafficDistribution") {
        if td != "PreferClose" {
            e.not_supported("spec.trafficDistribution", Bad::s(td), &["PreferClose"]);
        }
    }
}

fn validate_non_special_ip(ip: &str, addr: std::net::IpAddr, path: &str, e: &mut Errs) {
    if addr.is_unspecified() {
        e.invalid(path, Bad::s(ip), &format!("may not be unspecified ({ip})"));
    }
    if addr.is_loopback() {
        e.invalid(
            path,
            Bad::s(ip),
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        );
    }
    let link_local_unicast = match addr {
        std::net::IpAddr::V4(v4) => v4.is_link_local(),
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local_unicast {
        e.invalid(
            path,
            Bad::s(ip),
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        );
    }
    let link_local_multicast = match addr {
        std::net::IpAddr::V4(v4) => {
            v4.octets()[0] == 224 && v4.octets()[1] == 0 && v4.octets()[2] == 0
        }
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xff0f) == 0xff02,
    };
    if link_local_multicast {
        e.invalid(
            path,
            Bad::s(ip),
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        );
    }
}

fn validate_service_update(old: &Value, new: &Value, e: &mut Errs) {
    validate_object_meta_update(old, new, true, e);
    let (ns, os) = (sub(new, "spec"), sub(old, "spec"));
    let external = st(ns, "type") == "ExternalName" || st(os, "type") == "ExternalName";
    let new_ips = arr(ns, "clusterIPs");
    let old_ips = arr(os, "clusterIPs");
    // A request that carries no clusterIPs gets the allocated ones from the server; skip then.
    if !(external || new_ips.is_empty() || is_headless(ns) && is_headless(os)) {
        let raw = || Bad::Raw(super::go_string_slice(fld(ns, "clusterIPs")));
        if old_ips.len() == new_ips.len() {
            for (i, ip) in old_ips.iter().enumerate() {
                if Some(ip) != new_ips.get(i) {
                    e.invalid(
                        &format!("spec.clusterIPs[{i}]"),
                        raw(),
                        "may not change once set",
                    );
                }
            }
        } else if old_ips.len() > new_ips.len() {
            if new_ips.first() != old_ips.first() {
                e.invalid("spec.clusterIPs[0]", raw(), "may not change once set");
            }
            if new_ips.len() == 1 && st(ns, "ipFamilyPolicy") != "SingleStack" {
                e.invalid(
                    "spec.ipFamilyPolicy",
                    Bad::json(fld(ns, "ipFamilyPolicy")),
                    "must be set to 'SingleStack' when releasing the secondary clusterIP",
                );
            }
        } else if !old_ips.is_empty() && new_ips.first() != old_ips.first() {
            e.invalid("spec.clusterIPs[0]", raw(), "may not change once set");
        }
    }
    let new_fam = arr(ns, "ipFamilies");
    let old_fam = arr(os, "ipFamilies");
    if !external && !new_fam.is_empty() && is_headless(ns) == is_headless(os) && !is_headless(ns) {
        let raw = || Bad::Raw(super::go_string_slice(fld(ns, "ipFamilies")));
        if old_fam.len() == new_fam.len() {
            if old_fam.iter().zip(new_fam).any(|(a, b)| a != b) {
                e.invalid("spec.ipFamilies[0]", raw(), "may not change once set");
            }
        } else if !old_fam.is_empty() && new_fam.first() != old_fam.first() {
            e.invalid("spec.ipFamilies[0]", raw(), "may not change once set");
        }
    }
    if st(os, "type") == "LoadBalancer"
        && st(ns, "type") == "LoadBalancer"
        && fld(os, "loadBalancerClass") != fld(ns, "loadBalancerClass")
    {
        e.invalid(
            "spec.loadBalancerClass",
            Bad::json(fld(ns, "loadBalancerClass")),
            "may not change once set",
        );
    }
    let needs =
        |s: &Value| st(s, "type") == "LoadBalancer" && st(s, "externalTrafficPolicy") == "Local";
    if needs(os)
        && needs(ns)
        && int(ns, "healthCheckNodePort") != int(os, "healthCheckNodePort")
        && int(ns, "healthCheckNodePort").is_some()
    {
        e.forbidden("spec.healthCheckNodePort", "field is immutable");
    }
    validate_service(new, e);
}

fn validate_endpoints(o: &Value, e: &mut Errs) {
    validate_object_meta(o, MetaRules::core(true, NameRule::Dns1123Subdomain), e);
    for (i, ss) in arr(o, "subsets").iter().enumerate() {
        let p = format!("subsets[{i}]");
        if arr(ss, "addresses").is_empty() && arr(ss, "notReadyAddresses").is_empty() {
            e.required(&p, "must specify `addresses` or `notReadyAddresses`");
        }
        for key in ["addresses", "notReadyAddresses"] {
            for (j, a) in arr(ss, key).iter().enumerate() {
                let ap = format!("{p}.{key}[{j}]");
                let ip = st(a, "ip");
                let parsed = parse_ip_sloppy(ip);
                if parsed.is_none() {
                    e.invalid(&format!("{ap}.ip"), Bad::s(ip), INVALID_IP_MSG);
                }
                let host = st(a, "hostname");
                if !host.is_empty() {
                    e.invalid_each(&format!("{ap}.hostname"), host, is_dns1123_label(host));
                }
                if let Some(n) = opt_str(a, "nodeName") {
                    e.invalid_each(&format!("{ap}.nodeName"), n, is_dns1123_subdomain(n));
                }
                match parsed {
                    None => e.invalid(
                        &format!("{ap}.ip"),
                        Bad::s(ip),
                        "must be a valid IP address",
                    ),
                    Some(addr) => validate_non_special_ip(ip, addr, &format!("{ap}.ip"), e),
                }
            }
        }
        let ports = arr(ss, "ports");
        for (j, port) in ports.iter().enumerate() {
            let pp = format!("{p}.ports[{j}]");
            let name = st(port, "name");
            if ports.len() > 1 && name.is_empty() {
                e.required(&format!("{pp}.name"), "");
            } else if !name.is_empty() {
                e.invalid_each(&format!("{pp}.name"), name, is_dns1123_label(name));
            }
            let n = int(port, "port").unwrap_or(0);
            for m in is_valid_port_num(n) {
                e.invalid(&format!("{pp}.port"), Bad::n(n), &m);
            }
            match st(port, "protocol") {
                "" => e.required(&format!("{pp}.protocol"), ""),
                "TCP" | "UDP" | "SCTP" => {}
                other => e.not_supported(
                    &format!("{pp}.protocol"),
                    Bad::s(other),
                    &["SCTP", "TCP", "UDP"],
                ),
            }
            if let Some(ap) = opt_str(port, "appProtocol") {
                e.invalid_each(&format!("{pp}.appProtocol"), ap, is_qualified_name(ap));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ConfigMaps and Secrets.

/// Length of base64-decoded data (standard alphabet, padded or not).
fn b64_decoded_len(s: &str) -> usize {
    let t = s.trim_end_matches('=');
    t.len() * 3 / 4
}

/// Decodes standard base64 (`None` on bad input).
pub(crate) fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b'\r' | b'\n' => continue,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn validate_config_map(o: &Value, e: &mut Errs) {
    validate_object_meta(o, MetaRules::core(true, NameRule::Dns1123Subdomain), e);
    let binary = obj(o, "binaryData");
    let mut total = 0usize;
    if let Some(data) = obj(o, "data") {
        for (k, v) in data {
            e.invalid_each(&format!("data[{k}]"), k, is_config_map_key(k));
            if binary.is_some_and(|b| b.contains_key(k)) {
                e.invalid(
                    &format!("data[{k}]"),
                    Bad::s(k),
                    "duplicate of key present in binaryData",
                );
            }
            total += v.as_str().map_or(0, str::len);
        }
    }
    if let Some(b) = binary {
        for (k, v) in b {
            e.invalid_each(&format!("binaryData[{k}]"), k, is_config_map_key(k));
            total += b64_decoded_len(v.as_str().unwrap_or(""));
        }
    }
    if total > MAX_SECRET_SIZE {
        e.too_long("", MAX_SECRET_SIZE);
    }
}

fn immutable_data_checks(old: &Value, new: &Value, keys: &[&str], e: &mut Errs) {
    if boolean(old, "immutable") != Some(true) {
        return;
    }
    if boolean(new, "immutable") != Some(true) {
        e.forbidden("immutable", "field is immutable when `immutable` is set");
    }
    for key in keys {
        if !semantic_eq(fld(new, key), fld(old, key)) {
            e.forbidden(key, "field is immutable when `immutable` is set");
        }
    }
}

fn validate_config_map_update(old: &Value, new: &Value, e: &mut Errs) {
    validate_object_meta_update(old, new, true, e);
    immutable_data_checks(old, new, &["data", "binaryData"], e);
    validate_config_map(new, e);
}

fn validate_secret(o: &Value, e: &mut Errs) {
    validate_object_meta(o, MetaRules::core(true, NameRule::Dns1123Subdomain), e);
    let data = obj(o, "data");
    let mut total = 0usize;
    if let Some(d) = data {
        for (k, v) in d {
            e.invalid_each(&format!("data[{k}]"), k, is_config_map_key(k));
            total += b64_decoded_len(v.as_str().unwrap_or(""));
        }
    }
    if total > MAX_SECRET_SIZE {
        e.too_long("data", MAX_SECRET_SIZE);
    }
    let has = |k: &str| data.is_some_and(|d| d.contains_key(k));
    let decoded = |k: &str| {
        data.and_then(|d| d.get(k))
            .and_then(Value::as_str)
            .and_then(b64_decode)
    };
    match st(o, "type") {
        "kubernetes.io/service-account-token" => {
            let sa = string_map(sub(o, "metadata"), "annotations");
            if sa
                .iter()
                .find(|(k, _)| *k == "kubernetes.io/service-account.name")
                .is_none_or(|(_, v)| v.is_empty())
            {
                e.required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                );
            }
        }
        "kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson" => {
            let key = if st(o, "type") == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            if !has(key) {
                e.required(&format!("data[{key}]"), "");
            } else if let Err(err) = decoded(key).map_or(Ok(()), |b| {
                serde_json::from_slice::<Map<String, Value>>(&b).map(|_| ())
            }) {
                e.invalid(
                    &format!("data[{key}]"),
                    Bad::s("<secret contents redacted>"),
                    &err.to_string(),
                );
            }
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            e.required("data[username]", "");
            e.required("data[password]", "");
        }
        "kubernetes.io/ssh-auth" if decoded("ssh-privatekey").is_none_or(|b| b.is_empty()) => {
            e.required("data[ssh-privatekey]", "");
        }
        "kubernetes.io/tls" => {
            if !has("tls.crt") {
                e.required("data[tls.crt]", "");
            }
            if !has("tls.key") {
                e.required("data[tls.key]", "");
            }
        }
        _ => {}
    }
}

fn validate_secret_update(old: &Value, new: &Value, e: &mut Errs) {
    validate_object_meta_update(old, new, true, e);
    let (nt, ot) = (st(new, "type"), st(old, "type"));
    if nt != ot {
        e.invalid("type", Bad::s(nt), FIELD_IMMUTABLE);
    }
    immutable_data_checks(old, new, &["data"], e);
    validate_secret(new, e);
}

// ---------------------------------------------------------------------------------------------
// PersistentVolumes and claims.

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];
const PV_SOURCES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "glusterfs",
    "flocker",
    "nfs",
    "rbd",
    "quobyte",
    "cephfs",
    "iscsi",
    "cinder",
    "fc",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];

fn validate_access_modes(spec: &Value, required_detail: &str, path: &str, e: &mut Errs) {
    let modes = arr(spec, "accessModes");
    if modes.is_empty() {
        e.required(&format!("{path}.accessModes"), required_detail);
    }
    let (mut rwop, mut other) = (false, false);
    for m in modes {
        let m = m.as_str().unwrap_or("");
        if !ACCESS_MODES.contains(&m) {
            e.not_supported(&format!("{path}.accessModes"), Bad::s(m), ACCESS_MODES);
        }
        if m == "ReadWriteOncePod" {
            rwop = true;
        } else if ACCESS_MODES.contains(&m) {
            other = true;
        }
    }
    if rwop && other {
        e.forbidden(
            &format!("{path}.accessModes"),
            "may not use ReadWriteOncePod with other access modes",
        );
    }
}

fn validate_data_source(ds: &Value, path: &str, with_namespace: bool, e: &mut Errs) {
    if st(ds, "name").is_empty() {
        e.required(&format!("{path}.name"), "");
    }
    let kind = st(ds, "kind");
    if kind.is_empty() {
        e.required(&format!("{path}.kind"), "");
    }
    let group = st(ds, "apiGroup");
    if group.is_empty() && kind != "PersistentVolumeClaim" {
        e.invalid(
            path,
            Bad::s(kind),
            "must be 'PersistentVolumeClaim' when referencing the default apiGroup",
        );
    }
    if !group.is_empty() {
        e.invalid_each(
            &format!("{path}.apiGroup"),
            group,
            is_dns1123_subdomain(group),
        );
    }
    if with_namespace {
        if let Some(ns) = opt_str(ds, "namespace").filter(|n| !n.is_empty()) {
            e.invalid_each(&format!("{path}.namespace"), ns, is_dns1123_label(ns));
        }
    }
}

/// `ValidatePersistentVolumeClaimSpec`.
pub(crate) fn validate_pvc_spec(spec: &Value, path: &str, e: &mut Errs) {
    validate_access_modes(spec, "at least 1 access mode is required", path, e);
    if let Some(sel) = fld(spec, "selector") {
        validate_label_selector(Some(sel), &format!("{path}.selector"), e);
    }
    let storage_path = format!("{path}.resources[storage]");
    match obj(sub(spec, "resources"), "requests").and_then(|r| r.get("storage")) {
        None => e.required(&storage_path, ""),
        Some(v) => {
            let raw = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            match Quantity::parse(&raw) {
                Some(q) if q.cmp_value(&Quantity::zero()) != std::cmp::Ordering::Greater => {
                    e.invalid(
                        &storage_path,
                        Bad::Str(q.canonical()),
                        "must be greater than zero",
                    );
                }
                _ => {
                    validate_quantity_value("storage", v, &storage_path, e);
                }
            }
        }
    }
    if let Some(sc) = opt_str(spec, "storageClassName").filter(|s| !s.is_empty()) {
        e.invalid_each(
            &format!("{path}.storageClassName"),
            sc,
            is_dns1123_subdomain(sc),
        );
    }
    if let Some(vm) = opt_str(spec, "volumeMode") {
        if vm != "Block" && vm != "Filesystem" {
            e.not_supported(
                &format!("{path}.volumeMode"),
                Bad::s(vm),
                &["Block", "Filesystem"],
            );
        }
    }
    let ds = fld(spec, "dataSource");
    let dsr = fld(spec, "dataSourceRef");
    if let Some(d) = ds {
        validate_data_source(d, &format!("{path}.dataSource"), false, e);
    }
    if let Some(d) = dsr {
        validate_data_source(d, &format!("{path}.dataSourceRef"), true, e);
    }
    if let (Some(d), Some(r)) = (ds, dsr) {
        let ref_ns = opt_str(r, "namespace").filter(|n| !n.is_empty());
        if ref_ns.is_some() {
            e.invalid(
                path,
                Bad::Raw(format!("{path}.dataSource")),
                "may not be specified when dataSourceRef.namespace is specified",
            );
        } else if fld(d, "apiGroup") != fld(r, "apiGroup")
            || st(d, "kind") != st(r, "kind")
            || st(d, "name") != st(r, "name")
        {
            e.invalid(
                path,
                Bad::Raw(format!("{path}.dataSource")),
                "must match dataSourceRef",
            );
        }
    }
    if let Some(vac) = opt_str(spec, "volumeAttributesClassName").filter(|s| !s.is_empty()) {
        e.invalid_each(
            &format!("{path}.volumeAttributesClassName"),
            vac,
            is_dns1123_subdomain(vac),
        );
    }
}

fn validate_pvc(o: &Value, e: &mut Errs) {
    validate_object_meta(o, MetaRules::core(true, NameRule::Dns1123Subdomain), e);
    validate_pvc_spec(sub(o, "spec"), "spec", e);
}

fn storage_request(spec: &Value) -> Option<Quantity> {
    obj(sub(spec, "resources"), "requests")
        .and_then(|r| r.get("storage"))
        .and_then(|v| Quantity::parse(&v.as_str().map_or_else(|| v.to_string(), str::to_string)))
}

fn validate_pvc_update(old: &Value, new: &Value, e: &mut Errs) {
    validate_object_meta_update(old, new, true, e);
    validate_pvc(new, e);
    let ns = sub(new, "spec");
    let os = sub(old, "spec");
    let mut nc: Map<String, Value> = ns.as_object().cloned().unwrap_or_default();
    let mut oc: Map<String, Value> = os.as_object().cloned().unwrap_or_default();
    if st(os, "volumeName").is_empty() {
        match fld(ns, "volumeName") {
            Some(v) => oc.insert("volumeName".into(), v.clone()),
            None => oc.remove("volumeName"),
        };
    }
    if fld(os, "storageClassName").is_none() && fld(ns, "storageClassName").is_some() {
        let beta = string_map(sub(old, "metadata"), "annotations")
            .into_iter()
            .find(|(k, _)| *k == "volume.beta.kubernetes.io/storage-class")
            .map(|(_, v)| v);
        if beta.is_none_or(|b| Some(b) == opt_str(ns, "storageClassName")) {
            nc.remove("storageClassName");
        }
    }
    let phase = opt_str(sub(new, "status"), "phase")
        .or_else(|| opt_str(sub(old, "status"), "phase"))
        .unwrap_or("");
    if phase == "Bound" {
        if let Some(old_storage) = obj(sub(os, "resources"), "requests")
            .and_then(|r| r.get("storage"))
            .cloned()
        {
            if let Some(Value::Object(res)) = nc.get_mut("resources") {
                if let Some(Value::Object(req)) = res.get_mut("requests") {
                    req.insert("storage".into(), old_storage);
                }
            }
        }
        if nc.contains_key("volumeAttributesClassName") {
            match fld(os, "volumeAttributesClassName") {
                Some(v) => nc.insert("volumeAttributesClassName".into(), v.clone()),
                None => nc.remove("volumeAttributesClassName"),
            };
        }
    }
    let (nc, oc) = (Value::Object(nc), Value::Object(oc));
    if !semantic_eq(Some(&nc), Some(&oc)) {
        e.forbidden(
            "spec",
            &format!(
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n{}",
                diff_text("core.PersistentVolumeClaimSpec", &oc, &nc)
            ),
        );
    }
    if let (Some(n), Some(o)) = (storage_request(ns), storage_request(os)) {
        if n.cmp_value(&o) == std::cmp::Ordering::Less {
            let status = obj(sub(old, "status"), "capacity")
                .and_then(|c| c.get("storage"))
                .and_then(|v| {
                    Quantity::parse(&v.as_str().map_or_else(|| v.to_string(), str::to_string))
                })
                .unwrap_or_else(Quantity::zero);
            if n.cmp_value(&status) != std::cmp::Ordering::Greater {
                e.forbidden(
                    "spec.resources.requests.storage",
                    "field can not be less than status.capacity",
                );
            }
        }
    }
    if !semantic_eq(fld(ns, "volumeMode"), fld(os, "volumeMode")) {
        e.invalid(
            "volumeMode",
            Bad::json(fld(ns, "volumeMode")),
            FIELD_IMMUTABLE,
        );
    }
}

fn validate_pv(o: &Value, e: &mut Errs) {
    validate_object_meta(o, MetaRules::core(false, NameRule::Dns1123Subdomain), e);
    let spec = sub(o, "spec");
    validate_access_modes(spec, "", "spec", e);
    let capacity = obj(spec, "capacity");
    if capacity.is_none_or(Map::is_empty) {
        e.required("spec.capacity", "");
    }
    if capacity.is_none_or(|c| !c.contains_key("storage") || c.len() > 1) {
        e.not_supported(
            "spec.capacity",
            Bad::Raw(capacity.map_or("core.ResourceList(nil)".into(), |c| {
                Value::Object(c.clone()).to_string()
            })),
            &["storage"],
        );
    }
    if let Some(c) = capacity {
        for (k, v) in c {
            let p = format!("spec.capacity[{k}]");
            let raw = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            match Quantity::parse(&raw) {
                None => e.invalid(&p, Bad::Str(raw), super::quantity::QUANTITY_FORMAT_ERR),
                Some(q) => {
                    if q.is_negative() {
                        e.invalid(
                            &p,
                            Bad::Raw(q.canonical()),
                            "must be a valid resource quantity",
                        );
                    }
                    if q.cmp_value(&Quantity::zero()) != std::cmp::Ordering::Greater {
                        e.invalid(&p, Bad::Str(q.canonical()), "must be greater than zero");
                    }
                }
            }
        }
    }
    if let Some(p) = opt_str(spec, "persistentVolumeReclaimPolicy").filter(|p| !p.is_empty()) {
        if !["Delete", "Recycle", "Retain"].contains(&p) {
            e.not_supported(
                "spec.persistentVolumeReclaimPolicy",
                Bad::s(p),
                &["Delete", "Recycle", "Retain"],
            );
        }
    }
    let mut affinity_specified = false;
    if let Some(na) = fld(spec, "nodeAffinity") {
        affinity_specified = true;
        match fld(na, "required") {
            Some(req) => validate_node_selector(req, true, "spec.nodeAffinity.required", e),
            None => e.required(
                "spec.nodeAffinity.required",
                "must specify required node constraints",
            ),
        }
    }
    let mut count = 0;
    for key in PV_SOURCES {
        let Some(src) = fld(spec, key) else {
            continue;
        };
        if count > 0 && *key != "flexVolume" {
            e.forbidden(
                &format!("spec.{}", if *key == "cephfs" { "cephFS" } else { key }),
                "may not specify more than 1 volume type",
            );
            continue;
        }
        count += 1;
        let p = format!("spec.{key}");
        match *key {
            "hostPath" | "local" => {
                let hp = st(src, "path");
                if hp.is_empty() {
                    e.required(&format!("{p}.path"), "");
                } else {
                    if hp.replace('\\', "/").split('/').any(|x| x == "..") {
                        e.invalid(&format!("{p}.path"), Bad::s(hp), "must not contain '..'");
                    }
                    if *key == "local" && !affinity_specified {
                        e.required("spec.nodeAffinity", "Local volume requires node affinity");
                    }
                }
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
                if st(src, "volumeHandle").is_empty() {
                    e.required(&format!("{p}.volumeHandle"), "");
                }
            }
            _ => {}
        }
    }
    if count == 0 {
        e.required("spec", "must specify a volume type");
    }
    let hp_root = fld(spec, "hostPath").is_some_and(|h| {
        st(h, "path").trim_end_matches('/').is_empty() && !st(h, "path").is_empty()
    });
    if hp_root && st(spec, "persistentVolumeReclaimPolicy") == "Recycle" {
        e.forbidden(
            "spec.persistentVolumeReclaimPolicy",
            "may not be 'recycle' for a hostPath mount of '/'",
        );
    }
    if let Some(sc) = opt_str(spec, "storageClassName").filter(|s| !s.is_empty()) {
        e.invalid_each("spec.storageClassName", sc, is_dns1123_subdomain(sc));
    }
    if let Some(vm) = opt_str(spec, "volumeMode") {
        if vm != "Block" && vm != "Filesystem" {
            e.not_supported("spec.volumeMode", Bad::s(vm), &["Block", "Filesystem"]);
        }
    }
}

fn pv_source(spec: &Value) -> Value {
    let mut m = Map::new();
    for key in PV_SOURCES {
        if let Some(v) = fld(spec, key) {
            m.insert((*key).to_string(), v.clone());
        }
    }
    Value::Object(m)
}

fn validate_pv_update(old: &Value, new: &Value, e: &mut Errs) {
    validate_pv(new, e);
    validate_object_meta_update(old, new, true, e);
    let (ns, os) = (sub(new, "spec"), sub(old, "spec"));
    let mut nsrc = pv_source(ns);
    let osrc = pv_source(os);
    // Adding a CSI controllerExpandSecretRef is allowed.
    if fld(sub(os, "csi"), "controllerExpandSecretRef").is_none() {
        if let Some(csi) = nsrc.get_mut("csi").and_then(Value::as_object_mut) {
            csi.remove("controllerExpandSecretRef");
        }
    }
    if !semantic_eq(Some(&nsrc), Some(&osrc)) {
        e.forbidden(
            "spec.persistentvolumesource",
            &format!(
                "spec.persistentvolumesource is immutable after creation\n{}",
                diff_text("core.PersistentVolumeSource", &osrc, &nsrc)
            ),
        );
    }
    if !semantic_eq(fld(ns, "volumeMode"), fld(os, "volumeMode")) {
        e.invalid(
            "volumeMode",
            Bad::json(fld(ns, "volumeMode")),
            FIELD_IMMUTABLE,
        );
    }
    if fld(os, "nodeAffinity").is_some()
        && !semantic_eq(fld(ns, "nodeAffinity"), fld(os, "nodeAffinity"))
    {
        e.invalid(
            "nodeAffinity",
            Bad::Raw(fld(ns, "nodeAffinity").map_or("null".into(), Value::to_string)),
            "field is immutable, except for updating from beta label to GA",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Storage classes.

/// `ValidateStorageClass` (provisioner, reclaim policy, binding mode; parameters and topologies
/// are not checked).
fn validate_storage_class(o: &Value, e: &mut Errs) {
    validate_object_meta(o, MetaRules::core(false, NameRule::Dns1123Subdomain), e);
    let provisioner = st(o, "provisioner");
    if provisioner.is_empty() {
        e.required("provisioner", "");
    } else {
        let lower = provisioner.to_lowercase();
        e.invalid_each("provisioner", &lower, is_qualified_name(&lower));
    }
    if let Some(p) = opt_str(o, "reclaimPolicy") {
        if !["Delete", "Retain"].contains(&p) {
            e.not_supported("reclaimPolicy", Bad::s(p), &["Delete", "Retain"]);
        }
    }
    if let Some(m) = opt_str(o, "volumeBindingMode") {
        if !["Immediate", "WaitForFirstConsumer"].contains(&m) {
            e.not_supported(
                "volumeBindingMode",
                Bad::s(m),
                &["Immediate", "WaitForFirstConsumer"],
            );
        }
    }
}

/// `ValidateStorageClassUpdate`: parameters, provisioner, reclaim policy and binding mode are
/// fixed at creation.
fn validate_storage_class_update(old: &Value, new: &Value, e: &mut Errs) {
    validate_object_meta_update(old, new, true, e);
    validate_storage_class(new, e);
    for f in ["parameters", "provisioner", "reclaimPolicy"] {
        if !semantic_eq(fld(new, f), fld(old, f)) {
            e.forbidden(f, &format!("updates to {f} are forbidden."));
        }
    }
    e.immutable(
        "volumeBindingMode",
        fld(new, "volumeBindingMode"),
        fld(old, "volumeBindingMode"),
        Bad::json,
    );
}

// ---------------------------------------------------------------------------------------------
// Bindings, leases and reviews.

fn validate_binding(o: &Value, e: &mut Errs) {
    let target = sub(o, "target");
    let kind = st(target, "kind");
    if !kind.is_empty() && kind != "Node" {
        e.not_supported("target.kind", Bad::s(kind), &["Node", "<empty>"]);
    }
    if st(target, "name").is_empty() {
        e.required("target.name", "");
    }
}

fn validate_lease_spec(spec: &Value, e: &mut Errs) {
    if let Some(d) = int(spec, "leaseDurationSeconds") {
        if d <= 0 {
            e.invalid(
                "spec.leaseDurationSeconds",
                Bad::n(d),
                "must be greater than 0",
            );
        }
    }
    if let Some(t) = int(spec, "leaseTransitions") {
        if t < 0 {
            e.invalid(
                "spec.leaseTransitions",
                Bad::n(t),
                "must be greater than or equal to 0",
            );
        }
    }
    if let Some(s) = opt_str(spec, "strategy") {
        if s.contains('/') {
            e.invalid_each("spec.strategy.strategy", s, is_qualified_name(s));
        } else if s != "OldestEmulationVersion" {
            e.not_supported(
                "spec.strategy.strategy",
                Bad::s(s),
                &["OldestEmulationVersion"],
            );
        }
    }
    if opt_str(spec, "preferredHolder").is_some_and(|p| !p.is_empty())
        && opt_str(spec, "strategy").is_none_or(str::is_empty)
    {
        e.forbidden(
            "spec.preferredHolder",
            "may only be specified if `strategy` is defined",
        );
    }
}

fn validate_access_review(spec: &Value, needs_subject: bool, e: &mut Errs) {
    let ra = fld(spec, "resourceAttributes");
    let nra = fld(spec, "nonResourceAttributes");
    if ra.is_some() && nra.is_some() {
        e.invalid(
            "spec.nonResourceAttributes",
            Bad::Raw(nra.map_or(String::new(), Value::to_string)),
            "cannot be specified in combination with resourceAttributes",
        );
    }
    if ra.is_none() && nra.is_none() {
        e.invalid(
            "spec.resourceAttributes",
            Bad::Null,
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        );
    }
    if needs_subject && st(spec, "user").is_empty() && arr(spec, "groups").is_empty() {
        e.invalid(
            "spec.user",
            Bad::s(""),
            "at least one of user or group must be specified",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Events.

/// Field names of an Event in its API group (core/v1 vs events.k8s.io/v1).
struct EventFields {
    involved: &'static str,
    message: &'static str,
    source: &'static str,
    first: &'static str,
    last: &'static str,
    count: &'static str,
    reporting_controller: &'static str,
}

const CORE_EVENT: EventFields = EventFields {
    involved: "involvedObject",
    message: "message",
    source: "source",
    first: "firstTimestamp",
    last: "lastTimestamp",
    count: "count",
    reporting_controller: "reportingComponent",
};
const EVENTS_EVENT: EventFields = EventFields {
    involved: "regarding",
    message: "note",
    source: "deprecatedSource",
    first: "deprecatedFirstTimestamp",
    last: "deprecatedLastTimestamp",
    count: "deprecatedCount",
    reporting_controller: "reportingController",
};

fn legacy_validate_event(ev: &Value, f: &EventFields, e: &mut Errs) {
    let ns = st(sub(ev, "metadata"), "namespace");
    let involved_ns = st(sub(ev, f.involved), "namespace");
    if fld(ev, "eventTime").is_none() {
        if involved_ns.is_empty() {
            if !ns.is_empty() && ns != "default" {
                e.invalid(
                    "involvedObject.namespace",
                    Bad::s(involved_ns),
                    "does not match event.namespace",
                );
            }
        } else if ns != involved_ns {
            e.invalid(
                "involvedObject.namespace",
                Bad::s(involved_ns),
                "does not match event.namespace",
            );
        }
    } else {
        if involved_ns.is_empty() && ns != "default" && ns != "kube-system" {
            e.invalid(
                "involvedObject.namespace",
                Bad::s(involved_ns),
                "does not match event.namespace",
            );
        }
        let rc = st(ev, f.reporting_controller);
        if rc.is_empty() {
            e.required("reportingController", "");
        }
        e.invalid_each("reportingController", rc, is_qualified_name(rc));
        for (key, path, limit) in [
            ("reportingInstance", "reportingInstance", 128),
            ("action", "action", 128),
            ("reason", "reason", 128),
        ] {
            let v = st(ev, key);
            if v.is_empty() {
                e.required(path, "");
            }
            if v.len() > limit {
                e.invalid(
                    path,
                    Bad::s(""),
                    &format!("can have at most {limit} characters"),
                );
            }
        }
        if st(ev, f.message).len() > 1024 {
            e.invalid("message", Bad::s(""), "can have at most 1024 characters");
        }
    }
    e.invalid_each("namespace", ns, is_dns1123_subdomain(ns));
}

fn validate_core_event(ev: &Value, e: &mut Errs) {
    let name = st(sub(ev, "metadata"), "name");
    if name.is_empty() && st(sub(ev, "metadata"), "generateName").is_empty() {
        e.required("metadata.name", "name or generateName is required");
    } else if !name.is_empty() {
        e.invalid_each(
            "metadata.name",
            name,
            NameRule::PathSegment.check(name, false),
        );
    }
    legacy_validate_event(ev, &CORE_EVENT, e);
}

fn validate_event_series(ev: &Value, e: &mut Errs) {
    if let Some(s) = fld(ev, "series") {
        if int(s, "count").unwrap_or(0) < 2 {
            e.invalid("series.count", Bad::s(""), "should be at least 2");
        }
        if fld(s, "lastObservedTime").is_none() {
            e.required("series.lastObservedTime", "");
        }
    }
}

fn validate_events_event(ev: &Value, e: &mut Errs) {
    let f = &EVENTS_EVENT;
    legacy_validate_event(ev, f, e);
    validate_object_meta(ev, MetaRules::core(true, NameRule::Dns1123Subdomain), e);
    validate_event_series(ev, e);
    if fld(ev, "eventTime").is_none() {
        e.required("eventTime", "");
    }
    let t = st(ev, "type");
    if t != "Normal" && t != "Warning" {
        e.invalid("type", Bad::s(""), &format!("has invalid value: {t}"));
    }
    if fld(ev, f.first).is_some() {
        e.invalid("firstTimestamp", Bad::s(""), "needs to be unset");
    }
    if fld(ev, f.last).is_some() {
        e.invalid("lastTimestamp", Bad::s(""), "needs to be unset");
    }
    if int(ev, f.count).unwrap_or(0) != 0 {
        e.invalid("count", Bad::s(""), "needs to be unset");
    }
    let src = sub(ev, f.source);
    if !st(src, "component").is_empty() || !st(src, "host").is_empty() {
        e.invalid("source", Bad::s(""), "needs to be unset");
    }
}

fn validate_events_event_update(old: &Value, new: &Value, e: &mut Errs) {
    let f = &EVENTS_EVENT;
    legacy_validate_event(new, f, e);
    validate_object_meta_update(old, new, true, e);
    if !semantic_eq(fld(new, "series"), fld(old, "series")) {
        validate_event_series(new, e);
    }
    let fields: [(&str, &str); 14] = [
        (f.involved, "involvedObject"),
        ("reason", "reason"),
        (f.message, "message"),
        (f.source, "source"),
        (f.first, "firstTimestamp"),
        (f.last, "lastTimestamp"),
        (f.count, "count"),
        ("reason", "reason"),
        ("type", "type"),
        ("eventTime", "eventTime"),
        ("action", "action"),
        ("related", "related"),
        (f.reporting_controller, "reportingController"),
        ("reportingInstance", "reportingInstance"),
    ];
    for (key, path) in fields {
        e.immutable(path, fld(new, key), fld(old, key), Bad::json);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::res;
    use super::super::{validate_create, validate_update};
    use serde_json::{json, Value};

    fn create(group: &str, plural: &str, o: &Value) -> Vec<String> {
        validate_create(res(group, plural), o)
            .iter()
            .map(|c| c.error_string())
            .collect()
    }

    fn update(group: &str, plural: &str, old: &Value, new: &Value) -> Vec<String> {
        validate_update(res(group, plural), old, new)
            .iter()
            .map(|c| c.error_string())
            .collect()
    }

    fn svc(spec: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec})
    }

    fn defaulted_svc_spec() -> Value {
        json!({"type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
               "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"], "selector": {"app": "web"},
               "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]})
    }

    #[test]
    fn namespaces() {
        assert!(create(
            "",
            "namespaces",
            &json!({"metadata": {"name": "dev"}, "spec": {"finalizers": ["kubernetes"]}})
        )
        .is_empty());
        assert_eq!(
            create("", "namespaces", &json!({"metadata": {"name": "Dev"}})),
            vec!["metadata.name: Invalid value: \"Dev\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]
        );
    }

    #[test]
    fn services() {
        assert!(create("", "services", &svc(defaulted_svc_spec())).is_empty());
        let mut s = defaulted_svc_spec();
        s["type"] = json!("Weird");
        s["ports"] = json!([{"port": 0, "protocol": "TCP", "targetPort": 80}, {"name": "b", "port": 80, "protocol": "HTTP", "targetPort": 80}]);
        let errs = create("", "services", &svc(s));
        assert_eq!(errs, vec![
            "spec.ports[0].name: Required value",
            "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.ports[1].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            "spec.type: Unsupported value: \"Weird\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
        ]);
        let mut dotted = svc(defaulted_svc_spec());
        dotted["metadata"]["name"] = json!("1web");
        assert!(create("", "services", &dotted)[0].starts_with(
            "metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of"
        ));
        let mut noports = defaulted_svc_spec();
        noports["ports"] = json!([]);
        assert_eq!(
            create("", "services", &svc(noports)),
            vec!["spec.ports: Required value"]
        );
    }

    #[test]
    fn service_cluster_ip_is_immutable() {
        let mut a = defaulted_svc_spec();
        a["clusterIP"] = json!("10.0.0.5");
        a["clusterIPs"] = json!(["10.0.0.5"]);
        let mut b = a.clone();
        b["clusterIP"] = json!("10.0.0.6");
        b["clusterIPs"] = json!(["10.0.0.6"]);
        assert_eq!(update("", "services", &svc(a), &svc(b)), vec!["spec.clusterIPs[0]: Invalid value: []string{\"10.0.0.6\"}: may not change once set"]);
    }

    #[test]
    fn config_maps_and_secrets() {
        let cm = json!({"metadata": {"name": "c", "namespace": "d"}, "data": {"ok.key": "v", "bad key": "v"}});
        assert_eq!(create("", "configmaps", &cm), vec![
            "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
        ]);
        let old = json!({"metadata": {"name": "c", "namespace": "d"}, "immutable": true, "data": {"a": "1"}});
        let mut new = old.clone();
        new["data"]["a"] = json!("2");
        assert_eq!(
            update("", "configmaps", &old, &new),
            vec!["data: Forbidden: field is immutable when `immutable` is set"]
        );
        let s = json!({"metadata": {"name": "s", "namespace": "d"}, "type": "Opaque", "data": {"a": "YQ=="}});
        assert!(create("", "secrets", &s).is_empty());
        let mut t = s.clone();
        t["type"] = json!("kubernetes.io/tls");
        assert_eq!(
            update("", "secrets", &s, &t),
            vec![
                "type: Invalid value: \"kubernetes.io/tls\": field is immutable",
                "data[tls.crt]: Required value",
                "data[tls.key]: Required value",
            ]
        );
        let bad_json = json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "e30="}});
        assert!(create("", "secrets", &bad_json).is_empty());
    }

    #[test]
    fn pvcs_and_pvs() {
        let pvc = json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Filesystem"}});
        assert!(create("", "persistentvolumeclaims", &pvc).is_empty());
        let bad = json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"resources": {}}});
        assert_eq!(
            create("", "persistentvolumeclaims", &bad),
            vec![
                "spec.accessModes: Required value: at least 1 access mode is required",
                "spec.resources[storage]: Required value",
            ]
        );
        let mut changed = pvc.clone();
        changed["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        let errs = update("", "persistentvolumeclaims", &pvc, &changed);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n"));
        let pv = json!({"metadata": {"name": "pv1"}, "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"},
            "hostPath": {"path": "/data", "type": ""}, "persistentVolumeReclaimPolicy": "Retain", "volumeMode": "Filesystem"}});
        assert!(create("", "persistentvolumes", &pv).is_empty());
        let nosrc = json!({"metadata": {"name": "pv1"}, "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}}});
        assert_eq!(
            create("", "persistentvolumes", &nosrc),
            vec!["spec: Required value: must specify a volume type"]
        );
    }

    #[test]
    fn nodes_leases_events_bindings() {
        assert!(create("", "nodes", &json!({"metadata": {"name": "n1"}, "spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}})).is_empty());
        assert_eq!(
            create("", "nodes", &json!({"metadata": {"name": "n1"}, "spec": {"taints": [{"key": "a", "effect": "Sometimes"}]}})),
            vec!["metadata.taints[0].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""]
        );
        assert_eq!(
            create(
                "coordination.k8s.io",
                "leases",
                &json!({"metadata": {"name": "l", "namespace": "d"}, "spec": {"leaseDurationSeconds": 0}})
            ),
            vec!["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]
        );
        let ev = json!({"metadata": {"name": "x.17a", "namespace": "default"}, "involvedObject": {"kind": "Pod", "namespace": "other"}, "reason": "r"});
        assert_eq!(create("", "events", &ev), vec!["involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"]);
        assert_eq!(
            create(
                "",
                "bindings",
                &json!({"metadata": {"name": "p"}, "target": {"kind": "Pod"}})
            ),
            vec![
                "target.kind: Unsupported value: \"Pod\": supported values: \"Node\", \"<empty>\"",
                "target.name: Required value",
            ]
        );
        let ev2 = json!({"metadata": {"name": "e", "namespace": "default"}, "eventTime": "2024-01-01T00:00:00.000000Z",
            "reportingController": "kubelet", "reportingInstance": "n1", "action": "Pulling", "reason": "Pulling", "type": "Normal",
            "regarding": {"kind": "Pod", "namespace": "default"}});
        assert!(create("events.k8s.io", "events", &ev2).is_empty());
    }

    #[test]
    fn storage_classes() {
        let sc = json!({"metadata": {"name": "local-path"}, "provisioner": "rancher.io/local-path",
            "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer"});
        assert!(create("storage.k8s.io", "storageclasses", &sc).is_empty());
        let bad = json!({"metadata": {"name": "x"}, "reclaimPolicy": "Recycle", "volumeBindingMode": "Later"});
        assert_eq!(
            create("storage.k8s.io", "storageclasses", &bad),
            vec![
                "provisioner: Required value",
                "reclaimPolicy: Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\"",
                "volumeBindingMode: Unsupported value: \"Later\": supported values: \"Immediate\", \"WaitForFirstConsumer\"",
            ]
        );
        let mut changed = sc.clone();
        changed["provisioner"] = json!("other.io/x");
        changed["volumeBindingMode"] = json!("Immediate");
        assert_eq!(
            update("storage.k8s.io", "storageclasses", &sc, &changed),
            vec![
                "provisioner: Forbidden: updates to provisioner are forbidden.",
                "volumeBindingMode: Invalid value: \"Immediate\": field is immutable",
            ]
        );
    }
}
