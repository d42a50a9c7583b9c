//! apps/v1 and batch/v1 validation: Deployments, ReplicaSets, StatefulSets, DaemonSets,
//! ControllerRevisions, Jobs and CronJobs (`pkg/apis/apps/validation`,
//! `pkg/apis/batch/validation`), including selector immutability and the update rules.

use super::cron;
use super::meta::{
    as_selector, validate_label_selector, validate_object_meta, validate_object_meta_update,
    MetaRules, Selector,
};
use super::names::{is_dns1123_label, is_qualified_name, is_valid_percent, regex_error, NameRule};
use super::pod::validate_pod_template_spec;
use super::{
    arr, boolean, fld, go_int_or_string, go_label_selector, go_string_map, int, opt_str,
    semantic_eq, st, sub, Bad, Errs, FIELD_IMMUTABLE, IS_NEGATIVE,
};
use serde_json::{Map, Value};

pub(crate) fn validate_create(kind: &str, o: &Value, e: &mut Errs) {
    let spec = sub(o, "spec");
    match kind {
        "Deployment" => {
            validate_object_meta(o, MetaRules::core(true, NameRule::Dns1123Subdomain), e);
            validate_deployment_spec(spec, e);
        }
        "ReplicaSet" => {
            validate_object_meta(o, MetaRules::core(true, NameRule::Dns1123Subdomain), e);
            validate_replica_set_spec(spec, e);
        }
        "DaemonSet" => {
            validate_object_meta(o, MetaRules::core(true, NameRule::Dns1123Subdomain), e);
            validate_daemon_set_spec(spec, e);
        }
        "StatefulSet" => {
            validate_object_meta(o, MetaRules::core(true, NameRule::Dns1123Label), e);
            validate_stateful_set_spec(spec, e);
        }
        "ControllerRevision" => validate_controller_revision(o, e),
        "Job" => validate_job(o, e),
        "CronJob" => {
            validate_object_meta(o, MetaRules::core(true, NameRule::Dns1123Subdomain), e);
            validate_cron_job_spec(spec, None, e);
            let name = st(sub(o, "metadata"), "name");
            if name.len() > 52 {
                e.invalid(
                    "metadata.name",
                    Bad::s(name),
                    "must be no more than 52 characters",
                );
            }
        }
        _ => validate_object_meta(o, MetaRules::core(true, NameRule::Dns1123Subdomain), e),
    }
}

pub(crate) fn validate_update(kind: &str, old: &Value, new: &Value, e: &mut Errs) {
    let ns = sub(new, "spec");
    let os = sub(old, "spec");
    match kind {
        "Deployment" | "ReplicaSet" | "DaemonSet" => {
            validate_object_meta_update(old, new, true, e);
            match kind {
                "Deployment" => validate_deployment_spec(ns, e),
                "ReplicaSet" => validate_replica_set_spec(ns, e),
                _ => validate_daemon_set_spec(ns, e),
            }
            e.immutable(
                "spec.selector",
                fld(ns, "selector"),
                fld(os, "selector"),
                go_label_selector,
            );
        }
        "StatefulSet" => {
            validate_object_meta_update(old, new, true, e);
            validate_stateful_set_spec(ns, e);
            let mut a: Map<String, Value> = ns.as_object().cloned().unwrap_or_default();
            for key in [
                "replicas",
                "template",
                "updateStrategy",
                "minReadySeconds",
                "ordinals",
                "persistentVolumeClaimRetentionPolicy",
            ] {
                match fld(os, key) {
                    Some(v) => a.insert(key.into(), v.clone()),
                    None => a.remove(key),
                };
            }
            if !semantic_eq(Some(&Value::Object(a)), Some(os)) {
                e.forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                );
            }
        }
        "ControllerRevision" => {
            validate_object_meta_update(old, new, true, e);
            validate_controller_revision(new, e);
            e.immutable("data", fld(new, "data"), fld(old, "data"), |v| {
                Bad::Raw(v.map_or("null".into(), Value::to_string))
            });
        }
        "Job" => {
            validate_job(new, e);
            validate_object_meta_update(old, new, true, e);
            validate_job_spec_update(old, new, e);
        }
        "CronJob" => {
            validate_object_meta_update(old, new, true, e);
            validate_cron_job_spec(ns, Some(os), e);
        }
        _ => validate_object_meta_update(old, new, true, e),
    }
}

/// Status-subresource updates of apps and batch kinds: metadata rules and status counters.
pub(crate) fn validate_status_update(kind: &str, old: &Value, new: &Value, e: &mut Errs) {
    validate_object_meta_update(old, new, true, e);
    let status = sub(new, "status");
    let counters: &[&str] = match kind {
        "Deployment" => &[
            "observedGeneration",
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
            "collisionCount",
        ],
        "ReplicaSet" => &[
            "replicas",
            "fullyLabeledReplicas",
            "readyReplicas",
            "availableReplicas",
            "observedGeneration",
        ],
        "StatefulSet" => &[
            "replicas",
            "readyReplicas",
            "currentReplicas",
            "updatedReplicas",
            "availableReplicas",
            "observedGeneration",
            "collisionCount",
        ],
        "DaemonSet" => &[
            "currentNumberScheduled",
            "numberMisscheduled",
            "desiredNumberScheduled",
            "numberReady",
            "observedGeneration",
            "updatedNumberScheduled",
            "numberAvailable",
            "numberUnavailable",
            "collisionCount",
        ],
        "Job" => &["active", "succeeded", "failed", "ready", "terminating"],
        _ => &[],
    };
    for key in counters {
        e.nonnegative(&format!("status.{key}"), int(status, key));
    }
    if ["Deployment", "ReplicaSet", "StatefulSet"].contains(&kind) {
        let replicas = int(status, "replicas").unwrap_or(0);
        let keys: &[&str] = match kind {
            "Deployment" => &["updatedReplicas", "readyReplicas", "availableReplicas"],
            "ReplicaSet" => &["fullyLabeledReplicas", "readyReplicas", "availableReplicas"],
            _ => &[
                "readyReplicas",
                "currentReplicas",
                "updatedReplicas",
                "availableReplicas",
            ],
        };
        for key in keys {
            let v = int(status, key).unwrap_or(0);
            if v > replicas {
                e.invalid(
                    &format!("status.{key}"),
                    Bad::n(v),
                    "cannot be greater than status.replicas",
                );
            }
        }
        let (available, ready) = (
            int(status, "availableReplicas").unwrap_or(0),
            int(status, "readyReplicas").unwrap_or(0),
        );
        if available > ready {
            let detail = if kind == "StatefulSet" {
                "cannot be greater than status.readyReplicas"
            } else {
                "cannot be greater than readyReplicas"
            };
            e.invalid("status.availableReplicas", Bad::n(available), detail);
        }
    }
    if let (Some(n), Some(o)) = (
        int(status, "collisionCount").or(Some(0)),
        int(sub(old, "status"), "collisionCount"),
    ) {
        if n < o {
            e.invalid("status.collisionCount", Bad::n(n), "cannot be decremented");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shared pieces.

/// Required/validated/non-empty selector of Deployments, ReplicaSets and StatefulSets; returns
/// the converted selector (`None` when it does not convert).
fn required_selector(spec: &Value, what: &str, e: &mut Errs) -> Option<Selector> {
    let sel = fld(spec, "selector");
    match sel {
        None => e.required("spec.selector", ""),
        Some(s) => {
            validate_label_selector(Some(s), "spec.selector", e);
            if super::obj(s, "matchLabels").is_none_or(|m| m.is_empty())
                && arr(s, "matchExpressions").is_empty()
            {
                e.invalid(
                    "spec.selector",
                    go_label_selector(Some(s)),
                    &format!("empty selector is invalid for {what}"),
                );
            }
        }
    }
    as_selector(sel)
}

fn template_labels_match(template: &Value, sel: &Selector, path: &str, e: &mut Errs) {
    let labels = fld(sub(template, "metadata"), "labels");
    if !sel.is_empty() && !sel.matches(labels) {
        e.invalid(
            &format!("{path}.metadata.labels"),
            Bad::Raw(go_string_map(labels)),
            "`selector` does not match template `labels`",
        );
    }
}

/// `ValidatePodTemplateSpecForReplicaSet` (also used by Deployments).
fn validate_template_for_replica_set(template: &Value, sel: &Selector, e: &mut Errs) {
    let path = "spec.template";
    template_labels_match(template, sel, path, e);
    validate_pod_template_spec(template, path, e);
    always_restart_no_deadline(template, path, "ReplicaSet", e);
}

fn always_restart_no_deadline(template: &Value, path: &str, what: &str, e: &mut Errs) {
    let tspec = sub(template, "spec");
    let rp = st(tspec, "restartPolicy");
    if rp != "Always" {
        e.not_supported(
            &format!("{path}.spec.restartPolicy"),
            Bad::s(rp),
            &["Always"],
        );
    }
    if fld(tspec, "activeDeadlineSeconds").is_some() {
        e.forbidden(
            &format!("{path}.spec.activeDeadlineSeconds"),
            &format!("activeDeadlineSeconds in {what} is not Supported"),
        );
    }
}

fn int_or_percent_value(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::String(s)) => match s.strip_suffix('%') {
            Some(d) if is_valid_percent(s).is_empty() => d.parse().unwrap_or(0),
            _ => s.parse().unwrap_or(0),
        },
        Some(x) => super::as_int(x).unwrap_or(0),
        None => 0,
    }
}

fn validate_positive_int_or_percent(v: Option<&Value>, path: &str, e: &mut Errs) {
    match v {
        Some(Value::String(s)) => {
            for m in is_valid_percent(s) {
                e.invalid(path, go_int_or_string(v), &m);
            }
        }
        Some(x) => {
            let n = super::as_int(x).unwrap_or(0);
            if n < 0 {
                e.invalid(path, Bad::n(n), IS_NEGATIVE);
            }
        }
        None => {}
    }
}

fn not_more_than_100_percent(v: Option<&Value>, path: &str, e: &mut Errs) {
    if let Some(Value::String(s)) = v {
        if is_valid_percent(s).is_empty() && int_or_percent_value(v) > 100 {
            e.invalid(path, go_int_or_string(v), "must not be greater than 100%");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Deployments and ReplicaSets.

fn validate_deployment_spec(spec: &Value, e: &mut Errs) {
    e.nonnegative("spec.replicas", int(spec, "replicas"));
    match required_selector(spec, "deployment", e) {
        Some(sel) => validate_template_for_replica_set(sub(spec, "template"), &sel, e),
        None => e.invalid(
            "spec.selector",
            go_label_selector(fld(spec, "selector")),
            "invalid label selector",
        ),
    }
    let strategy = sub(spec, "strategy");
    match st(strategy, "type") {
        "Recreate" => {
            if fld(strategy, "rollingUpdate").is_some() {
                e.forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'");
            }
        }
        "RollingUpdate" => match fld(strategy, "rollingUpdate") {
            None => e.required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil"),
            Some(ru) => {
                let p = "spec.strategy.rollingUpdate";
                let mu = fld(ru, "maxUnavailable");
                let ms = fld(ru, "maxSurge");
                validate_positive_int_or_percent(mu, &format!("{p}.maxUnavailable"), e);
                validate_positive_int_or_percent(ms, &format!("{p}.maxSurge"), e);
                if int_or_percent_value(mu) == 0 && int_or_percent_value(ms) == 0 {
                    e.invalid(&format!("{p}.maxUnavailable"), go_int_or_string(mu), "may not be 0 when `maxSurge` is 0");
                }
                not_more_than_100_percent(mu, &format!("{p}.maxUnavailable"), e);
            }
        },
        t => e.not_supported(
            "spec.strategy",
            Bad::Raw(format!("apps.DeploymentStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}}", super::go_quote(t))),
            &["Recreate", "RollingUpdate"],
        ),
    }
    e.nonnegative("spec.minReadySeconds", int(spec, "minReadySeconds"));
    e.nonnegative(
        "spec.revisionHistoryLimit",
        int(spec, "revisionHistoryLimit"),
    );
    if let Some(pds) = int(spec, "progressDeadlineSeconds") {
        e.nonnegative("spec.progressDeadlineSeconds", Some(pds));
        if pds <= int(spec, "minReadySeconds").unwrap_or(0) {
            e.invalid(
                "spec.progressDeadlineSeconds",
                Bad::n(pds),
                "must be greater than minReadySeconds",
            );
        }
    }
}

fn validate_replica_set_spec(spec: &Value, e: &mut Errs) {
    e.nonnegative("spec.replicas", int(spec, "replicas"));
    e.nonnegative("spec.minReadySeconds", int(spec, "minReadySeconds"));
    match required_selector(spec, "deployment", e) {
        Some(sel) => validate_template_for_replica_set(sub(spec, "template"), &sel, e),
        None => e.invalid(
            "spec.selector",
            go_label_selector(fld(spec, "selector")),
            "invalid label selector",
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// DaemonSets.

fn validate_daemon_set_spec(spec: &Value, e: &mut Errs) {
    let sel = fld(spec, "selector");
    validate_label_selector(sel, "spec.selector", e);
    let template = sub(spec, "template");
    if let Some(s) = as_selector(sel) {
        let labels = fld(sub(template, "metadata"), "labels");
        if !s.matches(labels) {
            e.invalid(
                "spec.template.metadata.labels",
                Bad::Raw(go_string_map(labels)),
                "`selector` does not match template `labels`",
            );
        }
    }
    if let Some(s) = sel {
        if super::obj(s, "matchLabels").is_none_or(|m| m.is_empty())
            && arr(s, "matchExpressions").is_empty()
        {
            e.invalid(
                "spec.selector",
                go_label_selector(Some(s)),
                "empty selector is invalid for daemonset",
            );
        }
    }
    validate_pod_template_spec(template, "spec.template", e);
    always_restart_no_deadline(template, "spec.template", "DaemonSet", e);
    e.nonnegative("spec.minReadySeconds", int(spec, "minReadySeconds"));
    e.nonnegative("spec.templateGeneration", int(spec, "templateGeneration"));
    let us = sub(spec, "updateStrategy");
    let p = "spec.updateStrategy";
    match st(us, "type") {
        "OnDelete" => {}
        "RollingUpdate" => match fld(us, "rollingUpdate") {
            None => e.required(&format!("{p}.rollingUpdate"), ""),
            Some(ru) => {
                let rp = format!("{p}.rollingUpdate");
                let mu = fld(ru, "maxUnavailable");
                let ms = fld(ru, "maxSurge");
                validate_positive_int_or_percent(mu, &format!("{rp}.maxUnavailable"), e);
                validate_positive_int_or_percent(ms, &format!("{rp}.maxSurge"), e);
                not_more_than_100_percent(mu, &format!("{rp}.maxUnavailable"), e);
                not_more_than_100_percent(ms, &format!("{rp}.maxSurge"), e);
                let has_u = int_or_percent_value(mu) != 0;
                let has_s = int_or_percent_value(ms) != 0;
                if has_u && has_s {
                    e.invalid(&format!("{rp}.maxSurge"), go_int_or_string(ms), "may not be set when maxUnavailable is non-zero");
                } else if !has_u && !has_s {
                    e.required(&format!("{rp}.maxUnavailable"), "cannot be 0 when maxSurge is 0");
                }
            }
        },
        t => e.not_supported(
            p,
            Bad::Raw(format!("apps.DaemonSetUpdateStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}}", super::go_quote(t))),
            &["RollingUpdate", "OnDelete"],
        ),
    }
    e.nonnegative(
        "spec.revisionHistoryLimit",
        int(spec, "revisionHistoryLimit"),
    );
}

// ---------------------------------------------------------------------------------------------
// StatefulSets.

fn validate_stateful_set_spec(spec: &Value, e: &mut Errs) {
    match st(spec, "podManagementPolicy") {
        "" => e.required("spec.podManagementPolicy", ""),
        "OrderedReady" | "Parallel" => {}
        other => e.invalid(
            "spec.podManagementPolicy",
            Bad::s(other),
            "must be 'OrderedReady' or 'Parallel'",
        ),
    }
    let us = sub(spec, "updateStrategy");
    match st(us, "type") {
        "" => e.required("spec.updateStrategy", ""),
        "OnDelete" => {
            if let Some(ru) = fld(us, "rollingUpdate") {
                e.invalid(
                    "spec.updateStrategy.rollingUpdate",
                    Bad::Raw(ru.to_string()),
                    "only allowed for updateStrategy 'RollingUpdate'",
                );
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = fld(us, "rollingUpdate") {
                let p = "spec.updateStrategy.rollingUpdate";
                e.nonnegative(&format!("{p}.partition"), int(ru, "partition"));
                if let Some(mu) = fld(ru, "maxUnavailable") {
                    let mp = format!("{p}.maxUnavailable");
                    validate_positive_int_or_percent(Some(mu), &mp, e);
                    if int_or_percent_value(Some(mu)) == 0 {
                        e.invalid(&mp, go_int_or_string(Some(mu)), "cannot be 0");
                    }
                    not_more_than_100_percent(Some(mu), &mp, e);
                }
            }
        }
        _ => e.invalid(
            "spec.updateStrategy",
            Bad::Raw(us.to_string()),
            "must be 'RollingUpdate' or 'OnDelete'",
        ),
    }
    if let Some(pol) = fld(spec, "persistentVolumeClaimRetentionPolicy") {
        for key in ["whenDeleted", "whenScaled"] {
            let v = st(pol, key);
            if v != "Retain" && v != "Delete" {
                e.not_supported(
                    &format!("spec.persistentVolumeClaimRetentionPolicy.{key}"),
                    Bad::s(v),
                    &["Retain", "Delete"],
                );
            }
        }
    }
    e.nonnegative("spec.replicas", int(spec, "replicas"));
    e.nonnegative("spec.minReadySeconds", int(spec, "minReadySeconds"));
    if let Some(o) = fld(spec, "ordinals") {
        e.nonnegative("spec.ordinals.start", int(o, "start"));
    }
    let template = sub(spec, "template");
    match required_selector(spec, "statefulset", e) {
        None => e.invalid(
            "spec.selector",
            go_label_selector(fld(spec, "selector")),
            "",
        ),
        Some(sel) => {
            // Upstream validates only the template's labels and annotations here, not its pod spec.
            template_labels_match(template, &sel, "spec.template", e);
            let meta = sub(template, "metadata");
            super::meta::validate_labels(fld(meta, "labels"), "spec.template.labels", e);
            super::meta::validate_annotations(
                fld(meta, "annotations"),
                "spec.template.annotations",
                e,
            );
        }
    }
    always_restart_no_deadline(template, "spec.template", "StatefulSet", e);
}

// ---------------------------------------------------------------------------------------------
// ControllerRevisions.

fn validate_controller_revision(o: &Value, e: &mut Errs) {
    validate_object_meta(o, MetaRules::core(true, NameRule::Dns1123Subdomain), e);
    if fld(o, "data").is_none() {
        e.required("data", "data is mandatory");
    }
    e.nonnegative("revision", int(o, "revision"));
}

// ---------------------------------------------------------------------------------------------
// Jobs.

const LEGACY_UID: &str = "controller-uid";
const LEGACY_NAME: &str = "job-name";
const BATCH_UID: &str = "batch.kubernetes.io/controller-uid";
const BATCH_NAME: &str = "batch.kubernetes.io/job-name";

fn validate_has_label(meta: &Value, key: &str, expected: &str, e: &mut Errs) {
    let labels = fld(meta, "labels");
    match labels.and_then(|l| l.get(key)).and_then(Value::as_str) {
        None => e.required(
            &format!("spec.template.metadata.labels[{key}]"),
            &format!("must be '{expected}'"),
        ),
        Some(v) if v != expected => e.invalid(
            &format!("spec.template.metadata.labels[{key}]"),
            Bad::Raw(go_string_map(labels)),
            &format!("must be '{expected}'"),
        ),
        Some(_) => {}
    }
}

fn validate_generated_selector(job: &Value, e: &mut Errs) {
    let spec = sub(job, "spec");
    if boolean(spec, "manualSelector") == Some(true) {
        return;
    }
    let Some(sel) = fld(spec, "selector") else {
        return;
    };
    let meta = sub(job, "metadata");
    let uid = st(meta, "uid");
    if uid.is_empty() {
        // The server generates the uid (and the selector, see `defaults::job_selector_defaults`)
        // before validating; without a uid there is nothing generated to check.
        return;
    }
    let name = st(meta, "name");
    let tmeta = sub(sub(spec, "template"), "metadata");
    validate_has_label(tmeta, LEGACY_UID, uid, e);
    validate_has_label(tmeta, LEGACY_NAME, name, e);
    validate_has_label(tmeta, BATCH_UID, uid, e);
    validate_has_label(tmeta, BATCH_NAME, name, e);
    let expected =
        serde_json::json!({ BATCH_UID: uid, BATCH_NAME: name, LEGACY_UID: uid, LEGACY_NAME: name });
    if let Some(s) = as_selector(Some(sel)) {
        if !s.matches(Some(&expected)) {
            e.invalid(
                "spec.selector",
                go_label_selector(Some(sel)),
                "`selector` not auto-generated",
            );
        }
    }
}

fn validate_job(job: &Value, e: &mut Errs) {
    validate_object_meta(job, MetaRules::core(true, NameRule::Dns1123Subdomain), e);
    validate_generated_selector(job, e);
    let spec = sub(job, "spec");
    validate_job_spec(spec, "spec", e);
    if st(spec, "completionMode") == "Indexed" {
        if let Some(c) = int(spec, "completions").filter(|c| *c > 0) {
            let name = st(sub(job, "metadata"), "name");
            let host = format!("{name}-{}", c - 1);
            if !is_dns1123_label(&host).is_empty() {
                e.invalid(
                    "metadata.name",
                    Bad::s(name),
                    &format!("will not able to create pod with invalid DNS label: {host}"),
                );
            }
        }
    }
}

fn validate_job_spec(spec: &Value, path: &str, e: &mut Errs) {
    validate_job_spec_common(spec, path, e);
    let sel = fld(spec, "selector");
    match sel {
        None => e.required(&format!("{path}.selector"), ""),
        Some(s) => validate_label_selector(Some(s), &format!("{path}.selector"), e),
    }
    if let Some(s) = as_selector(sel) {
        let labels = fld(sub(sub(spec, "template"), "metadata"), "labels");
        if !s.matches(labels) {
            e.invalid(
                &format!("{path}.template.metadata.labels"),
                Bad::Raw(go_string_map(labels)),
                "`selector` does not match template `labels`",
            );
        }
    }
}

fn validate_domain_prefixed_path(v: &str, path: &str, e: &mut Errs) {
    if v.is_empty() {
        e.required(path, "");
        return;
    }
    let Some((host, rest)) = v
        .split_once('/')
        .filter(|(h, r)| !h.is_empty() && !r.is_empty())
    else {
        e.invalid(
            path,
            Bad::s(v),
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        );
        return;
    };
    e.invalid_each(path, host, super::names::is_dns1123_subdomain(host));
    let ok = rest
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/-._~%!$&'()*+,;=:".contains(c));
    if !ok {
        e.invalid(
            path,
            Bad::s(rest),
            &regex_error("Invalid path", "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+", &[]),
        );
    }
}

fn validate_job_spec_common(spec: &Value, path: &str, e: &mut Errs) {
    for key in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
    ] {
        e.nonnegative(&format!("{path}.{key}"), int(spec, key));
    }
    if let Some(m) = int(spec, "maxFailedIndexes") {
        e.nonnegative(&format!("{path}.maxFailedIndexes"), Some(m));
        if fld(spec, "backoffLimitPerIndex").is_none() {
            e.required(
                &format!("{path}.backoffLimitPerIndex"),
                "when maxFailedIndexes is specified",
            );
        }
    }
    if let Some(mb) = opt_str(spec, "managedBy") {
        validate_domain_prefixed_path(mb, &format!("{path}.managedBy"), e);
        if mb.len() > 63 {
            e.too_long_max_length(&format!("{path}.managedBy"), 63);
        }
    }
    let mode = opt_str(spec, "completionMode");
    if let Some(m) = mode {
        if m != "NonIndexed" && m != "Indexed" {
            e.not_supported(
                &format!("{path}.completionMode"),
                Bad::s(m),
                &["NonIndexed", "Indexed"],
            );
        }
        if m == "Indexed" {
            let completions = int(spec, "completions");
            if completions.is_none() {
                e.required(
                    &format!("{path}.completions"),
                    "when completion mode is Indexed",
                );
            }
            if let Some(p) = int(spec, "parallelism").filter(|p| *p > 100_000) {
                e.invalid(
                    &format!("{path}.parallelism"),
                    Bad::n(p),
                    "must be less than or equal to 100000 when completion mode is Indexed",
                );
            }
            let mfi = int(spec, "maxFailedIndexes");
            if let (Some(c), Some(m)) = (completions, mfi) {
                if m > c {
                    e.invalid(
                        &format!("{path}.maxFailedIndexes"),
                        Bad::n(m),
                        "must be less than or equal to completions",
                    );
                }
            }
            if let Some(m) = mfi.filter(|m| *m > 100_000) {
                e.invalid(
                    &format!("{path}.maxFailedIndexes"),
                    Bad::n(m),
                    "must be less than or equal to 100000",
                );
            }
        }
    }
    if mode.is_none_or(|m| m == "NonIndexed") {
        if let Some(b) = int(spec, "backoffLimitPerIndex") {
            e.invalid(
                &format!("{path}.backoffLimitPerIndex"),
                Bad::n(b),
                "requires indexed completion mode",
            );
        }
        if let Some(m) = int(spec, "maxFailedIndexes") {
            e.invalid(
                &format!("{path}.maxFailedIndexes"),
                Bad::n(m),
                "requires indexed completion mode",
            );
        }
    }
    let pfp = fld(spec, "podFailurePolicy");
    if let Some(p) = pfp {
        validate_pod_failure_policy(spec, p, &format!("{path}.podFailurePolicy"), e);
    }
    if let Some(sp) = fld(spec, "successPolicy") {
        let sp_path = format!("{path}.successPolicy");
        if mode != Some("Indexed") {
            e.invalid(
                &sp_path,
                Bad::Raw(sp.to_string()),
                "requires indexed completion mode",
            );
        } else {
            let rules = arr(sp, "rules");
            if rules.is_empty() {
                e.required(
                    &format!("{sp_path}.rules"),
                    "at least one rules must be specified when the successPolicy is specified",
                );
            }
            if rules.len() > 20 {
                e.too_many(&format!("{sp_path}.rules"), rules.len(), 20);
            }
            for (i, r) in rules.iter().enumerate() {
                let rp = format!("{sp_path}.rules[{i}]");
                if fld(r, "succeededCount").is_none() && fld(r, "succeededIndexes").is_none() {
                    e.required(
                        &rp,
                        "at least one of succeededCount or succeededIndexes must be specified",
                    );
                }
                if let Some(c) = int(r, "succeededCount") {
                    e.nonnegative(&format!("{rp}.succeededCount"), Some(c));
                    let completions = int(spec, "completions").unwrap_or(0);
                    if c > completions {
                        e.invalid(
                            &format!("{rp}.succeededCount"),
                            Bad::n(c),
                            &format!("must be less than or equal to {completions} (the number of specified completions)"),
                        );
                    }
                }
            }
        }
    }
    if let Some(rp) = opt_str(spec, "podReplacementPolicy") {
        let p = format!("{path}.podReplacementPolicy");
        if pfp.is_some() {
            if rp != "Failed" {
                e.not_supported(&p, Bad::s(rp), &["Failed"]);
            }
        } else if rp != "Failed" && rp != "TerminatingOrFailed" {
            e.not_supported(&p, Bad::s(rp), &["Failed", "TerminatingOrFailed"]);
        }
    }
    let template = sub(spec, "template");
    validate_pod_template_spec(template, &format!("{path}.template"), e);
    let rp = st(sub(template, "spec"), "restartPolicy");
    let rpp = format!("{path}.template.spec.restartPolicy");
    if rp == "Always" || rp.is_empty() {
        e.required(&rpp, "valid values: \"OnFailure\", \"Never\"");
    } else if rp != "OnFailure" && rp != "Never" {
        e.not_supported(&rpp, Bad::s(rp), &["OnFailure", "Never"]);
    } else if pfp.is_some() && rp != "Never" {
        e.invalid(
            &rpp,
            Bad::s(rp),
            "only \"Never\" is supported when podFailurePolicy is specified",
        );
    }
}

fn validate_pod_failure_policy(spec: &Value, pfp: &Value, path: &str, e: &mut Errs) {
    let rules = arr(pfp, "rules");
    let rules_path = format!("{path}.rules");
    if rules.len() > 20 {
        e.too_many(&rules_path, rules.len(), 20);
    }
    let tspec = sub(sub(spec, "template"), "spec");
    let names: Vec<&str> = arr(tspec, "containers")
        .iter()
        .chain(arr(tspec, "initContainers").iter())
        .map(|c| st(c, "name"))
        .collect();
    for (i, r) in rules.iter().enumerate() {
        let rp = format!("{rules_path}[{i}]");
        let ap = format!("{rp}.action");
        match st(r, "action") {
            "" => e.required(
                &ap,
                "valid values: [\"Count\" \"FailIndex\" \"FailJob\" \"Ignore\"]",
            ),
            "FailIndex" => {
                if fld(spec, "backoffLimitPerIndex").is_none() {
                    e.invalid(
                        &ap,
                        Bad::s("FailIndex"),
                        "requires the backoffLimitPerIndex to be set",
                    );
                }
            }
            "Count" | "FailJob" | "Ignore" => {}
            other => e.not_supported(
                &ap,
                Bad::s(other),
                &["Count", "FailIndex", "FailJob", "Ignore"],
            ),
        }
        let oec = fld(r, "onExitCodes");
        if let Some(oec) = oec {
            let op_path = format!("{rp}.onExitCodes.operator");
            let op = st(oec, "operator");
            match op {
                "" => e.required(&op_path, "valid values: [\"In\" \"NotIn\"]"),
                "In" | "NotIn" => {}
                other => e.not_supported(&op_path, Bad::s(other), &["In", "NotIn"]),
            }
            if let Some(cn) = opt_str(oec, "containerName") {
                if !names.contains(&cn) {
                    e.invalid(
                        &format!("{rp}.onExitCodes.containerName"),
                        Bad::s(cn),
                        "must be one of the container or initContainer names in the pod template",
                    );
                }
            }
            let values: Vec<i64> = arr(oec, "values")
                .iter()
                .filter_map(super::as_int)
                .collect();
            let vp = format!("{rp}.onExitCodes.values");
            if values.is_empty() {
                e.invalid(
                    &vp,
                    Bad::Raw("[]int32(nil)".into()),
                    "at least one value is required",
                );
            } else if values.len() > 255 {
                e.too_many(&vp, values.len(), 255);
            }
            let mut seen: Vec<i64> = Vec::new();
            let mut ordered = true;
            for (j, v) in values.iter().enumerate() {
                if op == "In" && *v == 0 {
                    e.invalid(
                        &format!("{vp}[{j}]"),
                        Bad::n(*v),
                        "must not be 0 for the In operator",
                    );
                }
                if seen.contains(v) {
                    e.duplicate(&format!("{vp}[{j}]"), Bad::n(*v));
                } else {
                    seen.push(*v);
                }
                if j > 0 && values[j - 1] > *v {
                    ordered = false;
                }
            }
            if !ordered {
                let list: Vec<String> = values.iter().map(i64::to_string).collect();
                e.invalid(
                    &vp,
                    Bad::Raw(format!("[]int32{{{}}}", list.join(", "))),
                    "must be ordered",
                );
            }
        }
        let opc = arr(r, "onPodConditions");
        if opc.len() > 20 {
            e.too_many(&format!("{rp}.onPodConditions"), opc.len(), 20);
        }
        for (j, c) in opc.iter().enumerate() {
            let cp = format!("{rp}.onPodConditions[{j}]");
            let t = st(c, "type");
            e.invalid_each(&format!("{cp}.type"), t, is_qualified_name(t));
            match st(c, "status") {
                "" => e.required(
                    &format!("{cp}.status"),
                    "valid values: [\"False\" \"True\" \"Unknown\"]",
                ),
                "False" | "True" | "Unknown" => {}
                other => e.not_supported(
                    &format!("{cp}.status"),
                    Bad::s(other),
                    &["False", "True", "Unknown"],
                ),
            }
        }
        if oec.is_some() && !opc.is_empty() {
            e.invalid_omit(
                &rp,
                "specifying both OnExitCodes and OnPodConditions is not supported",
            );
        }
        if oec.is_none() && opc.is_empty() {
            e.invalid_omit(
                &rp,
                "specifying one of OnExitCodes and OnPodConditions is required",
            );
        }
    }
}

fn validate_job_spec_update(old: &Value, new: &Value, e: &mut Errs) {
    let ns = sub(new, "spec");
    let os = sub(old, "spec");
    validate_job_spec(ns, "spec", e);
    // Completions: immutable, except for Indexed Jobs changing it together with parallelism.
    let indexed = st(ns, "completionMode") == "Indexed";
    if !indexed {
        e.immutable(
            "spec.completions",
            fld(ns, "completions"),
            fld(os, "completions"),
            int_or_null,
        );
    } else if !semantic_eq(fld(ns, "completions"), fld(os, "completions")) {
        if let Some(c) = int(ns, "completions") {
            if Some(c) != int(ns, "parallelism") {
                e.invalid(
                    "spec.completions",
                    Bad::n(c),
                    "can only be modified in tandem with spec.parallelism",
                );
            }
        }
    }
    e.immutable(
        "spec.selector",
        fld(ns, "selector"),
        fld(os, "selector"),
        go_label_selector,
    );
    // Template: immutable, except scheduling directives of a suspended Job that never started.
    let suspended_unstarted =
        boolean(os, "suspend") == Some(true) && fld(sub(old, "status"), "startTime").is_none();
    let nt = sub(ns, "template");
    let mut ot = sub(os, "template").clone();
    if suspended_unstarted {
        if let Some(m) = ot.as_object_mut() {
            let tmeta = m
                .entry("metadata")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(tm) = tmeta.as_object_mut() {
                for key in ["labels", "annotations"] {
                    match fld(sub(nt, "metadata"), key) {
                        Some(v) => tm.insert(key.into(), v.clone()),
                        None => tm.remove(key),
                    };
                }
            }
            let tspec = m.entry("spec").or_insert_with(|| Value::Object(Map::new()));
            if let Some(ts) = tspec.as_object_mut() {
                let new_spec = sub(nt, "spec");
                for key in ["nodeSelector", "tolerations", "schedulingGates"] {
                    match fld(new_spec, key) {
                        Some(v) => ts.insert(key.into(), v.clone()),
                        None => ts.remove(key),
                    };
                }
                let new_na = fld(sub(new_spec, "affinity"), "nodeAffinity").cloned();
                let aff = ts
                    .entry("affinity")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(a) = aff.as_object_mut() {
                    match new_na {
                        Some(na) => a.insert("nodeAffinity".into(), na),
                        None => a.remove("nodeAffinity"),
                    };
                }
                if ts
                    .get("affinity")
                    .and_then(Value::as_object)
                    .is_some_and(Map::is_empty)
                    && fld(new_spec, "affinity").is_none()
                {
                    ts.remove("affinity");
                }
            }
        }
    }
    if !semantic_eq(Some(nt), Some(&ot)) {
        e.invalid(
            "spec.template",
            Bad::Raw(format!("core.PodTemplateSpec{nt}")),
            FIELD_IMMUTABLE,
        );
    }
    for key in [
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ] {
        e.immutable(
            &format!("spec.{key}"),
            fld(ns, key),
            fld(os, key),
            |v| match v {
                Some(Value::String(s)) => Bad::Str(s.clone()),
                Some(Value::Number(n)) => Bad::Num(n.to_string()),
                None => Bad::Null,
                Some(other) => Bad::Raw(other.to_string()),
            },
        );
    }
}

fn int_or_null(v: Option<&Value>) -> Bad {
    v.and_then(super::as_int).map(Bad::n).unwrap_or(Bad::Null)
}

// ---------------------------------------------------------------------------------------------
// CronJobs.

fn validate_time_zone(tz: Option<&Value>, e: &mut Errs) {
    let Some(tz) = tz else {
        return;
    };
    let path = "spec.timeZone";
    let s = tz.as_str().unwrap_or("");
    if s.is_empty() {
        e.invalid(path, Bad::s(s), "timeZone must be nil or non-empty string");
        return;
    }
    for part in s.split('/') {
        let ok = part.len() <= 14
            && !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_+".contains(c));
        if part == "." || part == ".." || part.starts_with('-') || !ok {
            e.invalid(path, Bad::s(s), &format!("unknown time zone {s}"));
            return;
        }
    }
    if s.eq_ignore_ascii_case("local") {
        e.invalid(
            path,
            Bad::s(s),
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        );
    }
    if cron::load_location(s).is_none() {
        e.invalid(path, Bad::s(s), &format!("unknown time zone {s}"));
    }
}

fn validate_cron_job_spec(spec: &Value, old_spec: Option<&Value>, e: &mut Errs) {
    let schedule = st(spec, "schedule");
    if schedule.is_empty() {
        e.required("spec.schedule", "");
    } else {
        if let Err(m) = cron::parse_standard(schedule) {
            e.invalid("spec.schedule", Bad::s(schedule), &m);
        }
        let allow_tz = old_spec.is_some_and(|o| st(o, "schedule").contains("TZ"));
        if allow_tz && schedule.contains("TZ") && fld(spec, "timeZone").is_some() {
            e.invalid(
                "spec.schedule",
                Bad::s(schedule),
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            );
        } else if !allow_tz && schedule.contains("TZ") {
            e.invalid(
                "spec.schedule",
                Bad::s(schedule),
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            );
        }
    }
    e.nonnegative(
        "spec.startingDeadlineSeconds",
        int(spec, "startingDeadlineSeconds"),
    );
    if old_spec.is_none_or(|o| fld(o, "timeZone") != fld(spec, "timeZone")) {
        validate_time_zone(fld(spec, "timeZone"), e);
    }
    match st(spec, "concurrencyPolicy") {
        "Allow" | "Forbid" | "Replace" => {}
        "" => e.required("spec.concurrencyPolicy", ""),
        other => e.not_supported(
            "spec.concurrencyPolicy",
            Bad::s(other),
            &["Allow", "Forbid", "Replace"],
        ),
    }
    let jt = sub(spec, "jobTemplate");
    let jspec = sub(jt, "spec");
    super::meta::validate_template_labels_annotations(
        sub(jt, "metadata"),
        "spec.jobTemplate.metadata",
        e,
    );
    validate_job_spec_common(jspec, "spec.jobTemplate.spec", e);
    if let Some(sel) = fld(jspec, "selector") {
        e.invalid(
            "spec.jobTemplate.spec.selector",
            go_label_selector(Some(sel)),
            "`selector` will be auto-generated",
        );
    }
    if boolean(jspec, "manualSelector") == Some(true) {
        e.not_supported(
            "spec.jobTemplate.spec.manualSelector",
            Bad::Num("true".into()),
            &["nil", "false"],
        );
    }
    e.nonnegative(
        "spec.successfulJobsHistoryLimit",
        int(spec, "successfulJobsHistoryLimit"),
    );
    e.nonnegative(
        "spec.failedJobsHistoryLimit",
        int(spec, "failedJobsHistoryLimit"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container() -> Value {
        json!({"name": "c", "image": "nginx", "imagePullPolicy": "Always", "terminationMessagePolicy": "File",
               "terminationMessagePath": "/dev/termination-log", "resources": {}})
    }

    fn template(labels: Value, restart: &str) -> Value {
        json!({"metadata": {"labels": labels}, "spec": {"containers": [container()], "restartPolicy": restart,
               "dnsPolicy": "ClusterFirst", "terminationGracePeriodSeconds": 30, "securityContext": {},
               "schedulerName": "default-scheduler"}})
    }

    fn deployment(spec: Value) -> Value {
        json!({"metadata": {"name": "d", "namespace": "default"}, "spec": spec})
    }

    fn defaulted_deploy_spec() -> Value {
        json!({"replicas": 1, "selector": {"matchLabels": {"app": "x"}}, "template": template(json!({"app": "x"}), "Always"),
               "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
               "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600})
    }

    fn create(kind: &str, o: &Value) -> Vec<String> {
        let mut e = Errs::default();
        validate_create(kind, o, &mut e);
        e.list.iter().map(|c| c.error_string()).collect()
    }

    fn update(kind: &str, old: &Value, new: &Value) -> Vec<String> {
        let mut e = Errs::default();
        validate_update(kind, old, new, &mut e);
        e.list.iter().map(|c| c.error_string()).collect()
    }

    #[test]
    fn deployment_rules() {
        assert!(create("Deployment", &deployment(defaulted_deploy_spec())).is_empty());
        let mut s = defaulted_deploy_spec();
        s.as_object_mut().map(|m| m.remove("selector"));
        assert_eq!(create("Deployment", &deployment(s)), vec![
            "spec.selector: Required value",
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`",
        ]);
        let mut s = defaulted_deploy_spec();
        s["selector"] = json!({"matchLabels": {"app": "y"}});
        s["replicas"] = json!(-1);
        s["template"]["spec"]["restartPolicy"] = json!("Never");
        assert_eq!(create("Deployment", &deployment(s)), vec![
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`",
            "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
        ]);
        let mut s = defaulted_deploy_spec();
        s["template"]["spec"]["containers"] = json!([]);
        assert_eq!(
            create("Deployment", &deployment(s)),
            vec!["spec.template.spec.containers: Required value"]
        );
        let mut s = defaulted_deploy_spec();
        s["selector"] = json!({});
        assert_eq!(create("Deployment", &deployment(s)), vec![
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"
        ]);
    }

    #[test]
    fn deployment_selector_is_immutable() {
        let old = deployment(defaulted_deploy_spec());
        let mut new = old.clone();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "x", "tier": "web"}});
        new["spec"]["template"]["metadata"]["labels"] = json!({"app": "x", "tier": "web"});
        assert_eq!(update("Deployment", &old, &new), vec![
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"x\", \"tier\":\"web\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
        ]);
        let mut scaled = old.clone();
        scaled["spec"]["replicas"] = json!(3);
        assert!(update("Deployment", &old, &scaled).is_empty());
    }

    #[test]
    fn daemonset_and_statefulset() {
        let ds = json!({"metadata": {"name": "ds", "namespace": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": template(json!({"a": "b"}), "Always"),
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}, "revisionHistoryLimit": 10}});
        assert!(create("DaemonSet", &ds).is_empty());
        let mut bad = ds.clone();
        bad["spec"]["updateStrategy"]["rollingUpdate"] =
            json!({"maxUnavailable": 0, "maxSurge": 0});
        assert_eq!(create("DaemonSet", &bad), vec!["spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"]);

        let sts = json!({"metadata": {"name": "web", "namespace": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": template(json!({"a": "b"}), "Always"), "serviceName": "web", "replicas": 1,
            "podManagementPolicy": "OrderedReady", "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "revisionHistoryLimit": 10, "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"}}});
        assert!(create("StatefulSet", &sts).is_empty());
        let mut dotted = sts.clone();
        dotted["metadata"]["name"] = json!("a.b");
        assert_eq!(
            create("StatefulSet", &dotted),
            vec!["metadata.name: Invalid value: \"a.b\": must not contain dots"]
        );
        let mut changed = sts.clone();
        changed["spec"]["serviceName"] = json!("other");
        changed["spec"]["replicas"] = json!(5);
        assert_eq!(update("StatefulSet", &sts, &changed), vec![
            "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
        ]);
    }

    fn job(restart: &str) -> Value {
        json!({"metadata": {"name": "pi", "namespace": "d", "uid": "u1"}, "spec": {
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
            "template": template(json!({"batch.kubernetes.io/controller-uid": "u1", "batch.kubernetes.io/job-name": "pi",
                                        "controller-uid": "u1", "job-name": "pi"}), restart),
            "backoffLimit": 6, "completions": 1, "parallelism": 1, "completionMode": "NonIndexed", "suspend": false,
            "manualSelector": false, "podReplacementPolicy": "TerminatingOrFailed"}})
    }

    #[test]
    fn job_rules() {
        assert!(create("Job", &job("Never")).is_empty());
        assert_eq!(create("Job", &job("Always")), vec!["spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""]);
        let mut j = job("OnFailure");
        j["spec"]["parallelism"] = json!(-1);
        j["spec"]["backoffLimit"] = json!(-2);
        assert_eq!(
            create("Job", &j),
            vec![
                "spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
                "spec.backoffLimit: Invalid value: -2: must be greater than or equal to 0",
            ]
        );
        let old = job("Never");
        let mut new = old.clone();
        new["spec"]["completions"] = json!(3);
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl");
        let errs = update("Job", &old, &new);
        assert_eq!(
            errs[0],
            "spec.completions: Invalid value: 3: field is immutable"
        );
        assert!(errs[1].starts_with("spec.template: Invalid value: core.PodTemplateSpec"));
        assert!(errs[1].ends_with(": field is immutable"));
    }

    #[test]
    fn cronjob_rules() {
        let mut jt = json!({"spec": {"template": template(json!({}), "OnFailure")}});
        jt["spec"]["template"]["metadata"] = json!({});
        let cj = json!({"metadata": {"name": "c", "namespace": "d"}, "spec": {"schedule": "*/1 * * * *", "concurrencyPolicy": "Allow",
            "suspend": false, "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1, "jobTemplate": jt}});
        assert!(create("CronJob", &cj).is_empty());
        let mut bad = cj.clone();
        bad["spec"]["schedule"] = json!("61 * * * *");
        bad["spec"]["concurrencyPolicy"] = json!("Sometimes");
        bad["metadata"]["name"] = json!("x".repeat(53));
        assert_eq!(create("CronJob", &bad), vec![
            "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61",
            "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"",
            format!("metadata.name: Invalid value: \"{}\": must be no more than 52 characters", "x".repeat(53)).as_str(),
        ]);
        let mut no_sched = cj.clone();
        no_sched["spec"]["schedule"] = json!("");
        assert_eq!(
            create("CronJob", &no_sched),
            vec!["spec.schedule: Required value"]
        );
    }
}
