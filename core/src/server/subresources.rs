//! Subresources with their own logic: `scale` (autoscaling/v1 Scale over a workload's
//! replicas), pod `binding` and `eviction`. The streaming pod subresources are the node
//! agent's: `log` goes through `node_streams`, `exec` and `attach` through `exec`;
//! `portforward` answers 501 until it lands.

use super::objects::Stored;
use super::status::{self, ApiError};
use super::write::{now, DeleteOptions, FieldValidation, WriteOptions, Writer};
use crate::patch::{self, PatchType};
use crate::resources::{self, Resource};
use crate::selectors::LabelSelector;
use serde_json::{json, Value};

/// The `Scale` view of a workload.
pub fn scale_of(r: &Resource, s: &Stored) -> Value {
    let o = &s.value;
    let selector = o
        .pointer("/spec/selector")
        .and_then(|sel| LabelSelector::from_label_selector_object(sel).ok())
        .map(|l| l.to_string())
        .unwrap_or_default();
    let mut meta = json!({
        "name": o.pointer("/metadata/name"),
        "uid": o.pointer("/metadata/uid"),
        "resourceVersion": s.revision.to_string(),
        "creationTimestamp": o.pointer("/metadata/creationTimestamp"),
    });
    if r.namespaced {
        meta["namespace"] = o
            .pointer("/metadata/namespace")
            .cloned()
            .unwrap_or(Value::Null);
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": o.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0)},
        "status": {
            "replicas": o.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        },
    })
}

/// GET/PUT/PATCH of `<workload>/scale`.
pub async fn scale(
    w: &Writer,
    r: &'static Resource,
    ns: Option<&str>,
    name: &str,
    change: Option<(Option<PatchType>, Value)>,
    opts: &WriteOptions,
) -> Result<(u16, Value), ApiError> {
    for _ in 0..8 {
        let current = w.objects.must_get(r, ns, name).await?;
        let view = scale_of(r, &current);
        let Some((pt, body)) = &change else {
            return Ok((200, view));
        };
        let wanted = match pt {
            None => body.clone(),
            Some(PatchType::Json) => patch::apply_json_patch(&view, body)
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
            Some(PatchType::Merge) => patch::apply_merge_patch(&view, body)
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
            Some(PatchType::Strategic | PatchType::Apply) => {
                patch::apply_strategic_merge_patch(&view, body, "io.k8s.api.autoscaling.v1.Scale")
                    .map_err(|e| ApiError::bad_request(e.to_string()))?
            }
        };
        let wanted = super::typed::roundtrip_kind("autoscaling", "Scale", wanted).map_err(|e| {
            ApiError::bad_request(format!(
                "Scale in version \"v1\" cannot be handled as a Scale: {e}"
            ))
        })?;
        if let Some(rv) = wanted
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            if rv != current.revision.to_string() {
                return Err(ApiError::stale(r, name));
            }
        }
        let replicas = wanted
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if replicas < 0 {
            return Err(ApiError::new(422, "Invalid", format!("Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0")));
        }
        let mut next = current.value.clone();
        next["spec"]["replicas"] = json!(replicas);
        let body = serde_json::to_vec(&next).unwrap_or_default();
        match w
            .update(
                r,
                ns,
                name,
                None,
                next,
                Some(&body),
                &WriteOptions {
                    field_validation: FieldValidation::Ignore,
                    ..opts.clone()
                },
            )
            .await
        {
            Err(e) if e.reason == "Conflict" => continue,
            Err(e) => return Err(e),
            Ok(done) => {
                let stored = Stored {
                    revision: done
                        .object
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0),
                    bytes: Default::default(),
                    value: done.object,
                };
                return Ok((200, scale_of(r, &stored)));
            }
        }
    }
    Err(ApiError::stale(r, name))
}

/// POST `pods/<name>/binding` (or `bindings`): assigns a pod to a node.
pub async fn bind(
    w: &Writer,
    ns: &str,
    pod_name: &str,
    binding: &Value,
) -> Result<(u16, Value), ApiError> {
    let pods =
        resources::find("", "v1", "pods").ok_or_else(|| ApiError::internal("no pods resource"))?;
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                422,
                "Invalid",
                format!("Binding.core \"{pod_name}\" is invalid: target.name: Required value"),
            )
        })?
        .to_string();
    for _ in 0..8 {
        let current = w.objects.must_get(pods, Some(ns), pod_name).await?;
        if current
            .value
            .pointer("/metadata/deletionTimestamp")
            .is_some()
        {
            return Err(ApiError::conflict(
                pods,
                pod_name,
                "pod is being deleted, cannot be assigned to a host",
            ));
        }
        if let Some(existing) = current
            .value
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            return Err(ApiError::conflict(
                pods,
                pod_name,
                &format!("pod {pod_name} is already assigned to node \"{existing}\""),
            ));
        }
        let mut next = current.value.clone();
        next["spec"]["nodeName"] = json!(node);
        let conds = next["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut conds: Vec<Value> = conds
            .into_iter()
            .filter(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"))
            .collect();
        conds.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now()}));
        next["status"]["conditions"] = json!(conds);
        match w.objects.update(pods, next, current.revision).await {
            Err(e) if e.reason == "Conflict" => continue,
            Err(e) => return Err(e),
            Ok(_) => return Ok((201, status::success(None))),
        }
    }
    Err(ApiError::stale(pods, pod_name))
}

/// POST `pods/<name>/eviction`: deletes the pod with the eviction's options (no disruption
/// budgets exist yet, so every eviction is allowed).
pub async fn evict(
    w: &Writer,
    ns: &str,
    pod_name: &str,
    eviction: &Value,
) -> Result<(u16, Value), ApiError> {
    let pods =
        resources::find("", "v1", "pods").ok_or_else(|| ApiError::internal("no pods resource"))?;
    let o = eviction.get("deleteOptions");
    let opts = DeleteOptions {
        grace_period_seconds: o
            .and_then(|o| o.get("gracePeriodSeconds"))
            .and_then(Value::as_i64),
        precondition_uid: o
            .and_then(|o| o.pointer("/preconditions/uid"))
            .and_then(Value::as_str)
            .map(str::to_string),
        precondition_rv: o
            .and_then(|o| o.pointer("/preconditions/resourceVersion"))
            .and_then(Value::as_str)
            .map(str::to_string),
        ..DeleteOptions::default()
    };
    w.delete(pods, Some(ns), pod_name, &opts).await?;
    Ok((201, status::success(None)))
}

/// The streaming pod subresources are the node agent's.
pub fn not_yet(sub: &str) -> ApiError {
    ApiError::not_implemented(format!(
        "pods/{sub} is served by the node agent, which this build does not run yet"
    ))
}
