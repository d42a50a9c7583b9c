//! Persistent storage, as kube-controller-manager and k3s's local-path provisioner keep it:
//!
//! - [`binder`] (`persistentvolume-binder`): the PV controller. Binds claims to volumes (a
//!   volume pre-bound to the claim, else the smallest fitting Available one of its class),
//!   waits for the first consumer for `WaitForFirstConsumer` classes, asks the class's
//!   provisioner for a volume (`volume.kubernetes.io/storage-provisioner`), keeps phases
//!   (`Pending`/`Bound`/`Lost` claims, `Available`/`Bound`/`Released`/`Failed` volumes) and
//!   releases volumes whose claim is gone.
//! - [`provisioner`] (`local-path-provisioner`): `rancher.io/local-path`. When a pod using an
//!   unbound claim of its class is bound to a node it records the node on the claim
//!   (`volume.kubernetes.io/selected-node`, the scheduler's part in Kubernetes), then creates a
//!   `hostPath` volume `pvc-<claim uid>` at `<storage>/pvc-<uid>_<ns>_<claim>` with node
//!   affinity to that node; it deletes the directory and the volume once the volume is
//!   Released with reclaim policy `Delete`. kubelite's controllers and node agent share one
//!   machine, so the provisioner creates and removes the directories itself (local-path runs a
//!   helper pod on the node for that); it never touches a path outside its storage directory.
//! - [`protection`] (`persistentvolumeclaim-protection`, `persistentvolume-protection`): the
//!   `kubernetes.io/pvc-protection` finalizer stays while a scheduled pod uses the claim, the
//!   `kubernetes.io/pv-protection` one while the volume is Bound.
//!
//! The default StorageClass `local-path` is created at bootstrap ([`bootstrap`]); the admission
//! parts (default class, protection finalizers) live in `defaults::storage`.

pub mod binder;
pub mod matching;
pub mod protection;
pub mod provisioner;

use super::Context;
use crate::defaults::storage::IS_DEFAULT_CLASS;
use crate::resources;
use crate::server::status::ApiError;
use crate::server::write::{FieldValidation, WriteOptions};
use crate::server::ApiServer;
use crate::validation::quantity::Quantity;
use serde_json::{json, Value};

/// Controller names (`--controllers`).
pub const BINDER_CONTROLLER: &str = "persistentvolume-binder";
pub const PROVISIONER_CONTROLLER: &str = "local-path-provisioner";
pub const PVC_PROTECTION_CONTROLLER: &str = "persistentvolumeclaim-protection";
pub const PV_PROTECTION_CONTROLLER: &str = "persistentvolume-protection";

/// The provisioner name of the local-path StorageClass.
pub const LOCAL_PATH_PROVISIONER: &str = "rancher.io/local-path";
/// The default StorageClass created at bootstrap.
pub const LOCAL_PATH_CLASS: &str = "local-path";

/// The node a claim's first consumer was scheduled to.
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The provisioner asked to provision a claim (and its beta twin).
pub const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// Set on a claim once the controller finished binding it.
pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// Set on the side of a binding the controller (not the user) made.
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// The provisioner that created a volume.
pub const ANN_PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// A class without dynamic provisioning.
pub const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";

/// Registers the enabled storage controllers.
pub fn register(ctx: &Context) {
    let start = |name: &str, r: Result<(), ApiError>| {
        if let Err(e) = r {
            tracing::error!(controller = name, error = %e, "not started");
        }
    };
    if ctx.config.runs(BINDER_CONTROLLER) {
        start(BINDER_CONTROLLER, binder::register(ctx));
    }
    if ctx.config.runs(PROVISIONER_CONTROLLER) {
        start(PROVISIONER_CONTROLLER, provisioner::register(ctx));
    }
    if ctx.config.runs(PVC_PROTECTION_CONTROLLER) {
        start(PVC_PROTECTION_CONTROLLER, protection::register_pvc(ctx));
    }
    if ctx.config.runs(PV_PROTECTION_CONTROLLER) {
        start(PV_PROTECTION_CONTROLLER, protection::register_pv(ctx));
    }
}

/// The `local-path` StorageClass k3s ships (default class, `WaitForFirstConsumer`, reclaim
/// `Delete`), created when absent; an existing one is left as the user made it.
pub async fn bootstrap(server: &ApiServer) -> Result<(), ApiError> {
    let r = resources::find("storage.k8s.io", "v1", "storageclasses")
        .ok_or_else(|| ApiError::internal("no storageclasses resource"))?;
    if server
        .writer
        .objects
        .get(r, None, LOCAL_PATH_CLASS)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let class = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": LOCAL_PATH_CLASS, "annotations": {IS_DEFAULT_CLASS: "true"}},
        "provisioner": LOCAL_PATH_PROVISIONER, "volumeBindingMode": "WaitForFirstConsumer",
        "reclaimPolicy": "Delete"});
    let opts = WriteOptions {
        dry_run: false,
        field_manager: "kubelite".into(),
        field_validation: FieldValidation::Strict,
        force: false,
    };
    match server.writer.create(r, None, class, None, &opts).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// A claim's class: `spec.storageClassName`, else the beta annotation, else `""`.
pub fn claim_class(pvc: &Value) -> &str {
    if let Some(c) = pvc
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(crate::defaults::storage::BETA_STORAGE_CLASS))
        .and_then(Value::as_str)
    {
        return c;
    }
    pvc.pointer("/spec/storageClassName")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// A volume's class: `spec.storageClassName`, else the beta annotation, else `""`.
pub fn pv_class(pv: &Value) -> &str {
    claim_class(pv)
}

/// A claim's requested storage.
pub fn storage_of(pvc: &Value) -> Option<Quantity> {
    pvc.pointer("/spec/resources/requests/storage")
        .and_then(Value::as_str)
        .and_then(Quantity::parse)
}

/// Names of the claims a pod's volumes use (`persistentVolumeClaim.claimName`).
pub fn claim_names(pod: &Value) -> Vec<&str> {
    pod.pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.pointer("/persistentVolumeClaim/claimName"))
        .filter_map(Value::as_str)
        .filter(|n| !n.is_empty())
        .collect()
}

/// An annotation of an object.
pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// The phase in `status.phase`.
pub fn phase_of(obj: &Value) -> &str {
    obj.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The scheduled, unfinished pods of `ns` (from `pods`) that use claim `claim`.
pub fn pods_using_claim<'a>(
    pods: &'a [std::sync::Arc<Value>],
    claim: &'a str,
) -> impl Iterator<Item = &'a std::sync::Arc<Value>> + 'a {
    pods.iter().filter(move |p| {
        let scheduled = p
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        scheduled && claim_names(p).contains(&claim)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_helpers() {
        let pod = json!({"spec": {"nodeName": "n", "volumes": [
            {"name": "a", "persistentVolumeClaim": {"claimName": "data-web-0"}},
            {"name": "b", "emptyDir": {}}]}});
        assert_eq!(claim_names(&pod), vec!["data-web-0"]);
        let pods = vec![std::sync::Arc::new(pod)];
        assert_eq!(pods_using_claim(&pods, "data-web-0").count(), 1);
        assert_eq!(pods_using_claim(&pods, "other").count(), 0);
        let pvc = json!({"metadata": {"annotations": {"volume.beta.kubernetes.io/storage-class": "beta"}},
            "spec": {"storageClassName": "ga", "resources": {"requests": {"storage": "1Gi"}}}});
        assert_eq!(claim_class(&pvc), "beta");
        assert_eq!(claim_class(&json!({"spec": {}})), "");
        assert_eq!(
            storage_of(&pvc).map(|q| q.canonical()).as_deref(),
            Some("1Gi")
        );
    }
}
