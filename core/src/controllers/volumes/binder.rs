//! The PersistentVolume controller (`pkg/controller/volume/persistentvolume`, the binder half):
//! one queue of claims, one of volumes.
//!
//! A claim without `pv.kubernetes.io/bind-completed` is bound to the volume
//! [`find_matching_volume`] picks (for a `WaitForFirstConsumer` class only once the first
//! consumer's node is known from `volume.kubernetes.io/selected-node`), or handed to its class's
//! provisioner (`volume.kubernetes.io/storage-provisioner`, event `ExternalProvisioning`), or
//! left Pending with the event Kubernetes gives (`WaitForFirstConsumer`, `FailedBinding`,
//! `ProvisioningFailed`). Binding writes both sides: the volume's `claimRef` and phase Bound,
//! the claim's `volumeName`, annotations and status (phase, capacity, access modes). A bound
//! claim whose volume vanished or belongs to another claim becomes Lost. A volume whose claim
//! is gone becomes Released and is reclaimed per its policy: Retain keeps it; Delete of a
//! provisioned volume is its provisioner's job; anything else fails as in Kubernetes (no
//! in-tree deleter or recycler).

use super::matching::{find_matching_volume, is_bound_to_claim};
use super::*;
use crate::controllers::events::{Recorder, NORMAL, WARNING};
use crate::controllers::informer::{key_of, split_key, Informer};
use crate::controllers::pods::{name_of, namespace_of, uid_of};
use crate::controllers::queue::WorkQueue;
use crate::controllers::{run_workers, Requeue};
use crate::resources::Resource;
use crate::server::client::{resource, Change, LocalClient};
use crate::server::write::now;
use std::sync::Arc;
use std::time::Duration;

/// How often unbound claims and volumes are looked at again (`--pvclaimbinder-sync-period`).
const RESYNC: Duration = Duration::from_secs(15);

struct Binder {
    client: LocalClient,
    recorder: Recorder,
    claims: Arc<Informer>,
    volumes: Arc<Informer>,
    classes: Arc<Informer>,
    nodes: Arc<Informer>,
    claim_queue: WorkQueue,
    pvc_r: &'static Resource,
    pv_r: &'static Resource,
}

pub(super) fn register(ctx: &Context) -> Result<(), ApiError> {
    let client = ctx.client("persistentvolume-binder-controller");
    let b = Arc::new(Binder {
        recorder: Recorder::new(client.clone(), "persistentvolume-controller"),
        client,
        claims: ctx.informer("", "v1", "persistentvolumeclaims")?,
        volumes: ctx.informer("", "v1", "persistentvolumes")?,
        classes: ctx.informer("storage.k8s.io", "v1", "storageclasses")?,
        nodes: ctx.informer("", "v1", "nodes")?,
        claim_queue: WorkQueue::new(),
        pvc_r: resource("", "v1", "persistentvolumeclaims")?,
        pv_r: resource("", "v1", "persistentvolumes")?,
    });
    let volume_queue = WorkQueue::new();
    {
        let (cq, vq) = (b.claim_queue.clone(), volume_queue.clone());
        b.claims.on_change(move |change, pvc, _| {
            cq.add(key_of(pvc));
            if change == Change::Deleted {
                if let Some(v) = pvc.pointer("/spec/volumeName").and_then(Value::as_str) {
                    vq.add(v);
                }
            }
        });
    }
    {
        let (cq, vq) = (b.claim_queue.clone(), volume_queue.clone());
        b.volumes.on_change(move |_, pv, _| {
            vq.add(key_of(pv));
            if let Some(r) = pv.pointer("/spec/claimRef").filter(|r| r.is_object()) {
                let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
                cq.add(format!("{}/{}", s("namespace"), s("name")));
            }
        });
    }
    {
        // A new class may unblock claims waiting for it.
        let (cq, claims) = (b.claim_queue.clone(), b.claims.clone());
        b.classes.on_change(move |change, class, _| {
            if change == Change::Deleted {
                return;
            }
            for c in claims.list(None) {
                if claim_class(&c) == name_of(class) && phase_of(&c) != "Bound" {
                    cq.add(key_of(&c));
                }
            }
        });
    }
    let me = b.clone();
    run_workers(
        "persistentvolume-binder-claims",
        b.claim_queue.clone(),
        2,
        move |key| {
            let me = me.clone();
            async move { me.sync_claim(&key).await }
        },
    );
    let me = b.clone();
    run_workers(
        "persistentvolume-binder-volumes",
        volume_queue,
        2,
        move |key| {
            let me = me.clone();
            async move { me.sync_volume(&key).await }
        },
    );
    Ok(())
}

impl Binder {
    async fn sync_claim(&self, key: &str) -> Result<Requeue, ApiError> {
        let (ns, name) = split_key(key);
        let Some(pvc) = self.claims.get(ns, name) else {
            return Ok(None);
        };
        if annotation(&pvc, ANN_BIND_COMPLETED).is_none() {
            self.sync_unbound_claim(&pvc).await
        } else {
            self.sync_bound_claim(&pvc).await
        }
    }

    async fn sync_unbound_claim(&self, pvc: &Value) -> Result<Requeue, ApiError> {
        let volume_name = pvc
            .pointer("/spec/volumeName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !volume_name.is_empty() {
            // The user asked for a particular volume.
            let Some(pv) = self.volumes.get(None, volume_name) else {
                self.claim_phase(pvc, "Pending").await?;
                return Ok(Some(RESYNC));
            };
            let claim_ref_set = pv.pointer("/spec/claimRef").is_some_and(|r| r.is_object());
            if !claim_ref_set || is_bound_to_claim(&pv, pvc) {
                self.bind(&pv, pvc).await?;
                return Ok(None);
            }
            self.recorder
                .record(
                    pvc,
                    WARNING,
                    "FailedBinding",
                    &format!("volume \"{volume_name}\" already bound to a different claim."),
                )
                .await;
            self.claim_phase(pvc, "Pending").await?;
            return Ok(Some(RESYNC));
        }
        let class_name = claim_class(pvc);
        let class = (!class_name.is_empty())
            .then(|| self.classes.get(None, class_name))
            .flatten();
        let delay = class.as_ref().is_some_and(|c| {
            c.get("volumeBindingMode").and_then(Value::as_str) == Some("WaitForFirstConsumer")
        });
        let node = annotation(pvc, ANN_SELECTED_NODE).map(|n| {
            self.nodes
                .get(None, n)
                .map(|v| (*v).clone())
                .unwrap_or_else(
                    || json!({"metadata": {"name": n, "labels": {"kubernetes.io/hostname": n}}}),
                )
        });
        let volumes = self.volumes.list(None);
        if let Some(pv) = find_matching_volume(pvc, &volumes, node.as_ref(), delay) {
            self.bind(&pv, pvc).await?;
            return Ok(None);
        }
        self.claim_phase(pvc, "Pending").await?;
        if delay && node.is_none() {
            self.recorder
                .record(
                    pvc,
                    NORMAL,
                    "WaitForFirstConsumer",
                    "waiting for first consumer to be created before binding",
                )
                .await;
            return Ok(None);
        }
        let provisioner = class
            .as_ref()
            .and_then(|c| c.get("provisioner"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if class_name.is_empty() {
            self.recorder
                .record(
                    pvc,
                    NORMAL,
                    "FailedBinding",
                    "no persistent volumes available for this claim and no storage class is set",
                )
                .await;
        } else if class.is_none() {
            self.recorder
                .record(
                    pvc,
                    WARNING,
                    "ProvisioningFailed",
                    &format!("storageclass.storage.k8s.io \"{class_name}\" not found"),
                )
                .await;
        } else if provisioner == NO_PROVISIONER || provisioner.is_empty() {
            self.recorder
                .record(
                    pvc,
                    NORMAL,
                    "FailedBinding",
                    "no persistent volumes available for this claim and no storage class is set",
                )
                .await;
        } else {
            self.ask_provisioner(pvc, provisioner).await?;
        }
        Ok(Some(RESYNC))
    }

    /// Marks the claim for its class's (external) provisioner.
    async fn ask_provisioner(&self, pvc: &Value, provisioner: &str) -> Result<(), ApiError> {
        if annotation(pvc, ANN_STORAGE_PROVISIONER) != Some(provisioner) {
            let patch = json!({"metadata": {"annotations": {
                ANN_STORAGE_PROVISIONER: provisioner,
                ANN_BETA_STORAGE_PROVISIONER: provisioner,
            }}});
            self.client
                .merge_patch(
                    self.pvc_r,
                    Some(namespace_of(pvc)),
                    name_of(pvc),
                    None,
                    patch,
                )
                .await?;
        }
        self.recorder
            .record(
                pvc,
                NORMAL,
                "ExternalProvisioning",
                &format!("Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that your external provisioner is running and correctly registered."),
            )
            .await;
        Ok(())
    }

    async fn sync_bound_claim(&self, pvc: &Value) -> Result<Requeue, ApiError> {
        let volume_name = pvc
            .pointer("/spec/volumeName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if volume_name.is_empty() {
            return self
                .claim_lost(
                    pvc,
                    "ClaimLost",
                    "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!",
                )
                .await;
        }
        let Some(pv) = self.volumes.get(None, volume_name) else {
            return self
                .claim_lost(
                    pvc,
                    "ClaimLost",
                    "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
                )
                .await;
        };
        let claim_ref_set = pv.pointer("/spec/claimRef").is_some_and(|r| r.is_object());
        if !claim_ref_set || is_bound_to_claim(&pv, pvc) {
            self.bind(&pv, pvc).await?;
            return Ok(None);
        }
        self.claim_lost(
            pvc,
            "ClaimMisbound",
            "Two claims are bound to the same volume, this one is bound incorrectly",
        )
        .await
    }

    async fn claim_lost(&self, pvc: &Value, reason: &str, msg: &str) -> Result<Requeue, ApiError> {
        if phase_of(pvc) != "Lost" {
            self.recorder.record(pvc, WARNING, reason, msg).await;
            self.claim_phase(pvc, "Lost").await?;
        }
        Ok(None)
    }

    async fn claim_phase(&self, pvc: &Value, phase: &str) -> Result<(), ApiError> {
        if phase_of(pvc) == phase {
            return Ok(());
        }
        self.client
            .merge_patch(
                self.pvc_r,
                Some(namespace_of(pvc)),
                name_of(pvc),
                Some("status"),
                json!({"status": {"phase": phase}}),
            )
            .await
            .map(|_| ())
    }

    /// Binds `pv` and `pvc` to each other; each step writes only what is missing.
    async fn bind(&self, pv: &Value, pvc: &Value) -> Result<(), ApiError> {
        let pv_name = name_of(pv);
        let ns = namespace_of(pvc);
        let full_ref = pv
            .pointer("/spec/claimRef/uid")
            .and_then(Value::as_str)
            .is_some_and(|u| u == uid_of(pvc));
        let mut pv_now = pv.clone();
        if !full_ref {
            let patch = json!({
                "metadata": {
                    "resourceVersion": pv.pointer("/metadata/resourceVersion"),
                    "annotations": {ANN_BOUND_BY_CONTROLLER: "yes"},
                },
                "spec": {"claimRef": {
                    "kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": ns,
                    "name": name_of(pvc), "uid": uid_of(pvc),
                    "resourceVersion": pvc.pointer("/metadata/resourceVersion"),
                }},
            });
            pv_now = self
                .client
                .merge_patch(self.pv_r, None, pv_name, None, patch)
                .await?;
        }
        if phase_of(&pv_now) != "Bound" {
            self.client
                .merge_patch(
                    self.pv_r,
                    None,
                    pv_name,
                    Some("status"),
                    json!({"status": {"phase": "Bound", "lastPhaseTransitionTime": now()}}),
                )
                .await?;
        }
        let mut annotations = serde_json::Map::new();
        let mut spec = serde_json::Map::new();
        let current_volume = pvc
            .pointer("/spec/volumeName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if current_volume != pv_name {
            spec.insert("volumeName".into(), json!(pv_name));
            annotations.insert(ANN_BOUND_BY_CONTROLLER.into(), json!("yes"));
        }
        if annotation(pvc, ANN_BIND_COMPLETED) != Some("yes") {
            annotations.insert(ANN_BIND_COMPLETED.into(), json!("yes"));
        }
        if !spec.is_empty() || !annotations.is_empty() {
            let mut patch = json!({"metadata": {
                "resourceVersion": pvc.pointer("/metadata/resourceVersion"),
                "annotations": annotations,
            }});
            if !spec.is_empty() {
                patch["spec"] = Value::Object(spec);
            }
            self.client
                .merge_patch(self.pvc_r, Some(ns), name_of(pvc), None, patch)
                .await?;
        }
        let want = json!({
            "phase": "Bound",
            "accessModes": pv_now.pointer("/spec/accessModes").cloned().unwrap_or(json!([])),
            "capacity": pv_now.pointer("/spec/capacity").cloned().unwrap_or(json!({})),
        });
        let status = pvc.get("status").cloned().unwrap_or(json!({}));
        let differs = ["phase", "accessModes", "capacity"]
            .iter()
            .any(|k| status.get(*k) != want.get(*k));
        if differs {
            self.client
                .merge_patch(
                    self.pvc_r,
                    Some(ns),
                    name_of(pvc),
                    Some("status"),
                    json!({ "status": want }),
                )
                .await?;
        }
        Ok(())
    }

    async fn sync_volume(&self, name: &str) -> Result<Requeue, ApiError> {
        let Some(pv) = self.volumes.get(None, name) else {
            return Ok(None);
        };
        let claim_ref = pv.pointer("/spec/claimRef").filter(|r| r.is_object());
        let Some(r) = claim_ref else {
            self.volume_phase(&pv, "Available", None).await?;
            return Ok(None);
        };
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
        let (ns, claim_name, ref_uid) = (s("namespace"), s("name"), s("uid"));
        if ref_uid.is_empty() {
            // Pre-bound by the user: the claim's sync binds it.
            self.volume_phase(&pv, "Available", None).await?;
            self.claim_queue.add(format!("{ns}/{claim_name}"));
            return Ok(None);
        }
        let cached = self.claims.get(Some(ns), claim_name);
        let claim = match cached {
            Some(c) if uid_of(&c) == ref_uid => Some((*c).clone()),
            // The cache may be behind: ask the store before releasing anything.
            _ => self
                .client
                .get(self.pvc_r, Some(ns), claim_name)
                .await?
                .filter(|c| uid_of(c) == ref_uid),
        };
        let Some(claim) = claim else {
            return self.release(&pv).await;
        };
        let claim_volume = claim
            .pointer("/spec/volumeName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if claim_volume.is_empty() || claim_volume == name {
            if claim_volume == name {
                self.volume_phase(&pv, "Bound", None).await?;
            }
            self.claim_queue.add(format!("{ns}/{claim_name}"));
            return Ok(None);
        }
        // The claim is bound to another volume: undo a binding the controller made.
        if annotation(&pv, ANN_BOUND_BY_CONTROLLER) == Some("yes") {
            let patch = json!({"metadata": {"resourceVersion": pv.pointer("/metadata/resourceVersion"),
                "annotations": {ANN_BOUND_BY_CONTROLLER: null}}, "spec": {"claimRef": null}});
            self.client
                .merge_patch(self.pv_r, None, name, None, patch)
                .await?;
        }
        Ok(None)
    }

    /// The claim of a bound volume is gone: Released, then reclaimed per policy.
    async fn release(&self, pv: &Value) -> Result<Requeue, ApiError> {
        let phase = phase_of(pv);
        if phase == "Failed" {
            return Ok(None);
        }
        if phase != "Released" {
            self.volume_phase(pv, "Released", None).await?;
        }
        let policy = pv
            .pointer("/spec/persistentVolumeReclaimPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Retain");
        match policy {
            "Delete" if annotation(pv, ANN_PROVISIONED_BY).is_some() => {
                // Deleting is the provisioner's job.
            }
            "Delete" => {
                let msg = format!("error getting deleter volume plugin for volume \"{}\": no deletable volume plugin matched", name_of(pv));
                self.recorder
                    .record(pv, WARNING, "VolumeFailedDelete", &msg)
                    .await;
                self.volume_phase(pv, "Failed", Some(&msg)).await?;
            }
            "Recycle" => {
                let msg = "No recycler plugin found for the volume!";
                self.recorder
                    .record(pv, WARNING, "VolumeFailedRecycle", msg)
                    .await;
                self.volume_phase(pv, "Failed", Some(msg)).await?;
            }
            _ => {}
        }
        Ok(None)
    }

    async fn volume_phase(
        &self,
        pv: &Value,
        phase: &str,
        message: Option<&str>,
    ) -> Result<(), ApiError> {
        if phase_of(pv) == phase {
            return Ok(());
        }
        let mut status = json!({"phase": phase, "lastPhaseTransitionTime": now()});
        if let Some(m) = message {
            status["message"] = json!(m);
        }
        self.client
            .merge_patch(
                self.pv_r,
                None,
                name_of(pv),
                Some("status"),
                json!({ "status": status }),
            )
            .await
            .map(|_| ())
    }
}
