//! Decoding into the `k8s-openapi` types: every object written through the API is decoded into
//! its Kubernetes type and encoded back, so what is stored and served is Kubernetes JSON (types
//! checked, fields in their canonical form). A type error becomes the 400 kubectl users know:
//! `Pod in version "v1" cannot be handled as a Pod: ...`.

use crate::resources::Resource;
use k8s_openapi::api;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

fn rt<T: DeserializeOwned + Serialize>(v: Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(v).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

/// Round-trips `obj` through the Kubernetes type of (group, kind). Kinds without a typed
/// mapping are returned unchanged.
pub fn roundtrip_kind(group: &str, kind: &str, obj: Value) -> Result<Value, String> {
    match (group, kind) {
        ("", "Pod") => rt::<api::core::v1::Pod>(obj),
        ("", "Namespace") => rt::<api::core::v1::Namespace>(obj),
        ("", "Node") => rt::<api::core::v1::Node>(obj),
        ("", "Event") => rt::<api::core::v1::Event>(obj),
        ("", "ConfigMap") => rt::<api::core::v1::ConfigMap>(obj),
        ("", "Secret") => rt::<api::core::v1::Secret>(obj),
        ("", "ServiceAccount") => rt::<api::core::v1::ServiceAccount>(obj),
        ("", "Service") => rt::<api::core::v1::Service>(obj),
        ("", "Endpoints") => rt::<api::core::v1::Endpoints>(obj),
        ("", "PersistentVolume") => rt::<api::core::v1::PersistentVolume>(obj),
        ("", "PersistentVolumeClaim") => rt::<api::core::v1::PersistentVolumeClaim>(obj),
        ("", "Binding") => rt::<api::core::v1::Binding>(obj),
        ("apps", "Deployment") => rt::<api::apps::v1::Deployment>(obj),
        ("apps", "ReplicaSet") => rt::<api::apps::v1::ReplicaSet>(obj),
        ("apps", "StatefulSet") => rt::<api::apps::v1::StatefulSet>(obj),
        ("apps", "DaemonSet") => rt::<api::apps::v1::DaemonSet>(obj),
        ("apps", "ControllerRevision") => rt::<api::apps::v1::ControllerRevision>(obj),
        ("batch", "Job") => rt::<api::batch::v1::Job>(obj),
        ("batch", "CronJob") => rt::<api::batch::v1::CronJob>(obj),
        ("coordination.k8s.io", "Lease") => rt::<api::coordination::v1::Lease>(obj),
        ("events.k8s.io", "Event") => rt::<api::events::v1::Event>(obj),
        ("storage.k8s.io", "StorageClass") => rt::<api::storage::v1::StorageClass>(obj),
        ("autoscaling", "Scale") => rt::<api::autoscaling::v1::Scale>(obj),
        ("policy", "Eviction") => rt::<api::policy::v1::Eviction>(obj),
        ("authentication.k8s.io", "TokenRequest") => {
            rt::<api::authentication::v1::TokenRequest>(obj)
        }
        ("authentication.k8s.io", "SelfSubjectReview") => {
            rt::<api::authentication::v1::SelfSubjectReview>(obj)
        }
        ("authentication.k8s.io", "TokenReview") => rt::<api::authentication::v1::TokenReview>(obj),
        ("authorization.k8s.io", "SelfSubjectAccessReview") => {
            rt::<api::authorization::v1::SelfSubjectAccessReview>(obj)
        }
        ("authorization.k8s.io", "SelfSubjectRulesReview") => {
            rt::<api::authorization::v1::SelfSubjectRulesReview>(obj)
        }
        ("authorization.k8s.io", "SubjectAccessReview") => {
            rt::<api::authorization::v1::SubjectAccessReview>(obj)
        }
        _ => Ok(obj),
    }
}

/// Round-trips an object of `resource`.
pub fn roundtrip(resource: &Resource, obj: Value) -> Result<Value, String> {
    roundtrip_kind(resource.group, resource.kind, obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn type_errors_are_reported() {
        let bad = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"},"spec":{"containers":"nope"}});
        assert!(roundtrip_kind("", "Pod", bad).is_err());
        let ok =
            json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"a":"b"}});
        assert_eq!(
            roundtrip_kind("", "ConfigMap", ok.clone()).expect("ok")["data"],
            ok["data"]
        );
    }
}
