//! The storage object in-use protection controllers (`pvcprotection`, `pvprotection`): a claim
//! being deleted keeps its `kubernetes.io/pvc-protection` finalizer while a scheduled pod uses
//! it (checked against the store, not only the cache, before letting go); a volume being
//! deleted keeps `kubernetes.io/pv-protection` while it is Bound. Objects that predate the
//! admission plugin get the finalizer added.

use super::*;
use crate::controllers::informer::{key_of, split_key, Informer};
use crate::controllers::pods::{is_deleting, name_of, namespace_of};
use crate::controllers::queue::WorkQueue;
use crate::controllers::{run_workers, Requeue};
use crate::defaults::storage::{PVC_PROTECTION, PV_PROTECTION};
use crate::resources::Resource;
use crate::server::client::{resource, LocalClient};
use std::sync::Arc;

fn has_finalizer(obj: &Value, f: &str) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(f)))
}

/// A merge patch setting the finalizers to the current ones with `f` added or removed
/// (guarded by the resourceVersion, since merge patches replace lists).
fn finalizer_patch(obj: &Value, f: &str, add: bool) -> Value {
    let mut list: Vec<Value> = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    list.retain(|x| x.as_str() != Some(f));
    if add {
        list.push(json!(f));
    }
    json!({"metadata": {"finalizers": list,
        "resourceVersion": obj.pointer("/metadata/resourceVersion")}})
}

struct PvcProtection {
    client: LocalClient,
    claims: Arc<Informer>,
    pods: Arc<Informer>,
    pvc_r: &'static Resource,
    pod_r: &'static Resource,
}

pub(super) fn register_pvc(ctx: &Context) -> Result<(), ApiError> {
    let c = Arc::new(PvcProtection {
        client: ctx.client("persistentvolumeclaim-protection-controller"),
        claims: ctx.informer("", "v1", "persistentvolumeclaims")?,
        pods: ctx.informer("", "v1", "pods")?,
        pvc_r: resource("", "v1", "persistentvolumeclaims")?,
        pod_r: resource("", "v1", "pods")?,
    });
    let queue = WorkQueue::new();
    {
        let q = queue.clone();
        c.claims.on_change(move |_, pvc, _| {
            let wants = is_deleting(pvc) == has_finalizer(pvc, PVC_PROTECTION);
            if wants {
                q.add(key_of(pvc));
            }
        });
    }
    {
        // A pod that stops using a claim (deleted, unscheduled) may free it.
        let q = queue.clone();
        c.pods.on_change(move |_, pod, old| {
            let ns = namespace_of(pod);
            for claim in claim_names(pod)
                .into_iter()
                .chain(old.map(claim_names).unwrap_or_default())
            {
                q.add(format!("{ns}/{claim}"));
            }
        });
    }
    let me = c.clone();
    run_workers("pvc-protection", queue, 1, move |key| {
        let me = me.clone();
        async move { me.sync(&key).await }
    });
    Ok(())
}

impl PvcProtection {
    async fn sync(&self, key: &str) -> Result<Requeue, ApiError> {
        let (ns, name) = split_key(key);
        let Some(pvc) = self.claims.get(ns, name) else {
            return Ok(None);
        };
        let protected = has_finalizer(&pvc, PVC_PROTECTION);
        if !is_deleting(&pvc) {
            if !protected {
                self.patch(&pvc, finalizer_patch(&pvc, PVC_PROTECTION, true))
                    .await?;
            }
            return Ok(None);
        }
        if !protected {
            return Ok(None);
        }
        let ns = namespace_of(&pvc);
        let cached = self.pods.list(Some(ns));
        if pods_using_claim(&cached, name).next().is_some() {
            return Ok(None);
        }
        // The cache says unused: confirm with the store (a pod may have just been created).
        let (live, _) = self.client.list(self.pod_r, Some(ns), "", "").await?;
        let live: Vec<Arc<Value>> = live.into_iter().map(Arc::new).collect();
        if pods_using_claim(&live, name).next().is_some() {
            return Ok(None);
        }
        self.patch(&pvc, finalizer_patch(&pvc, PVC_PROTECTION, false))
            .await?;
        Ok(None)
    }

    async fn patch(&self, pvc: &Value, patch: Value) -> Result<(), ApiError> {
        match self
            .client
            .merge_patch(
                self.pvc_r,
                Some(namespace_of(pvc)),
                name_of(pvc),
                None,
                patch,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

struct PvProtection {
    client: LocalClient,
    volumes: Arc<Informer>,
    pv_r: &'static Resource,
}

pub(super) fn register_pv(ctx: &Context) -> Result<(), ApiError> {
    let c = Arc::new(PvProtection {
        client: ctx.client("persistentvolume-protection-controller"),
        volumes: ctx.informer("", "v1", "persistentvolumes")?,
        pv_r: resource("", "v1", "persistentvolumes")?,
    });
    let queue = WorkQueue::new();
    {
        let q = queue.clone();
        c.volumes.on_change(move |_, pv, _| {
            if is_deleting(pv) == has_finalizer(pv, PV_PROTECTION) {
                q.add(key_of(pv));
            }
        });
    }
    let me = c.clone();
    run_workers("pv-protection", queue, 1, move |key| {
        let me = me.clone();
        async move { me.sync(&key).await }
    });
    Ok(())
}

impl PvProtection {
    async fn sync(&self, name: &str) -> Result<Requeue, ApiError> {
        let Some(pv) = self.volumes.get(None, name) else {
            return Ok(None);
        };
        let protected = has_finalizer(&pv, PV_PROTECTION);
        let patch = match (is_deleting(&pv), protected) {
            (false, false) => finalizer_patch(&pv, PV_PROTECTION, true),
            (true, true) if phase_of(&pv) != "Bound" => finalizer_patch(&pv, PV_PROTECTION, false),
            _ => return Ok(None),
        };
        match self
            .client
            .merge_patch(self.pv_r, None, name, None, patch)
            .await
        {
            Ok(_) => Ok(None),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finalizer_patches_keep_other_finalizers() {
        let obj =
            json!({"metadata": {"resourceVersion": "7", "finalizers": ["a", PVC_PROTECTION]}});
        assert!(has_finalizer(&obj, PVC_PROTECTION));
        let p = finalizer_patch(&obj, PVC_PROTECTION, false);
        assert_eq!(p["metadata"]["finalizers"], json!(["a"]));
        assert_eq!(p["metadata"]["resourceVersion"], "7");
        let p = finalizer_patch(&json!({}), PV_PROTECTION, true);
        assert_eq!(p["metadata"]["finalizers"], json!([PV_PROTECTION]));
    }
}
