//! The local-path provisioner (`rancher.io/local-path`, what k3s ships), in-process.
//!
//! Claims of a class with this provisioner are provisioned once (1) their first consumer is on
//! a node — a scheduled pod using the claim makes this controller record the node in
//! `volume.kubernetes.io/selected-node`, which Kubernetes' scheduler does before binding the
//! pod; provisioning here is triggered by the pod binding instead — and (2) the PV controller
//! asked this provisioner (`volume.kubernetes.io/storage-provisioner`). The volume is
//! `pvc-<claim uid>`: a `hostPath` (`DirectoryOrCreate`) at
//! `<storage>/pvc-<uid>_<namespace>_<claim>` (created here, mode 0777), capacity and access
//! modes of the claim, node affinity to the node's `kubernetes.io/hostname`, the class's
//! reclaim policy and a `claimRef` to the claim, so the PV controller binds the two. A
//! Released volume with policy Delete that this provisioner made has its directory removed and
//! is deleted. Paths outside the storage directory are never removed.

use super::*;
use crate::controllers::events::{Recorder, NORMAL, WARNING};
use crate::controllers::informer::{key_of, split_key, Informer};
use crate::controllers::pods::{is_active, is_deleting, name_of, namespace_of, uid_of};
use crate::controllers::queue::WorkQueue;
use crate::controllers::{run_workers, Requeue};
use crate::resources::Resource;
use crate::server::client::{resource, LocalClient};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Access modes a node-local directory can honour.
const SUPPORTED_MODES: [&str; 2] = ["ReadWriteOnce", "ReadWriteOncePod"];

struct Provisioner {
    client: LocalClient,
    recorder: Recorder,
    claims: Arc<Informer>,
    volumes: Arc<Informer>,
    classes: Arc<Informer>,
    pods: Arc<Informer>,
    nodes: Arc<Informer>,
    root: PathBuf,
    pvc_r: &'static Resource,
    pv_r: &'static Resource,
}

pub(super) fn register(ctx: &Context) -> Result<(), ApiError> {
    let client = ctx.client("local-path-provisioner");
    let root = ctx
        .config
        .local_storage_path
        .clone()
        .unwrap_or_else(|| PathBuf::from("/var/lib/kubelite/storage"));
    let p = Arc::new(Provisioner {
        recorder: Recorder::new(client.clone(), LOCAL_PATH_PROVISIONER),
        client,
        claims: ctx.informer("", "v1", "persistentvolumeclaims")?,
        volumes: ctx.informer("", "v1", "persistentvolumes")?,
        classes: ctx.informer("storage.k8s.io", "v1", "storageclasses")?,
        pods: ctx.informer("", "v1", "pods")?,
        nodes: ctx.informer("", "v1", "nodes")?,
        root,
        pvc_r: resource("", "v1", "persistentvolumeclaims")?,
        pv_r: resource("", "v1", "persistentvolumes")?,
    });
    let claim_queue = WorkQueue::new();
    let volume_queue = WorkQueue::new();
    {
        let q = claim_queue.clone();
        p.claims.on_change(move |_, pvc, _| {
            let unbound = pvc
                .pointer("/spec/volumeName")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            if unbound && !is_deleting(pvc) {
                q.add(key_of(pvc));
            }
        });
    }
    {
        let q = claim_queue.clone();
        p.pods.on_change(move |_, pod, _| {
            let scheduled = pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            if scheduled && is_active(pod) {
                let ns = namespace_of(pod);
                for c in claim_names(pod) {
                    q.add(format!("{ns}/{c}"));
                }
            }
        });
    }
    {
        let q = volume_queue.clone();
        p.volumes.on_change(move |_, pv, _| {
            if annotation(pv, ANN_PROVISIONED_BY) == Some(LOCAL_PATH_PROVISIONER)
                && phase_of(pv) == "Released"
            {
                q.add(key_of(pv));
            }
        });
    }
    let me = p.clone();
    run_workers("local-path-provisioner", claim_queue, 1, move |key| {
        let me = me.clone();
        async move { me.sync_claim(&key).await }
    });
    let me = p.clone();
    run_workers("local-path-deleter", volume_queue, 1, move |key| {
        let me = me.clone();
        async move { me.sync_volume(&key).await }
    });
    Ok(())
}

/// The directory of a claim's volume: `<root>/pvc-<uid>_<namespace>_<claim>`.
pub fn volume_dir(root: &Path, pv_name: &str, pvc: &Value) -> PathBuf {
    root.join(format!("{pv_name}_{}_{}", namespace_of(pvc), name_of(pvc)))
}

/// The PersistentVolume provisioned for `pvc` on `node` (the node's `kubernetes.io/hostname`).
pub fn volume_for(pvc: &Value, class: &Value, path: &Path, hostname: &str, node: &str) -> Value {
    let pv_name = format!("pvc-{}", uid_of(pvc));
    json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": pv_name, "annotations": {
            ANN_PROVISIONED_BY: LOCAL_PATH_PROVISIONER,
            "local.path.provisioner/selected-node": node,
        }},
        "spec": {
            "capacity": {"storage": pvc.pointer("/spec/resources/requests/storage").cloned().unwrap_or(json!("0"))},
            "accessModes": pvc.pointer("/spec/accessModes").cloned().unwrap_or(json!(["ReadWriteOnce"])),
            "persistentVolumeReclaimPolicy": class.get("reclaimPolicy").cloned().unwrap_or(json!("Delete")),
            "storageClassName": name_of(class),
            "volumeMode": "Filesystem",
            "hostPath": {"path": path.display().to_string(), "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [hostname]}]}]}},
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "namespace": namespace_of(pvc), "name": name_of(pvc), "uid": uid_of(pvc),
                "resourceVersion": pvc.pointer("/metadata/resourceVersion")},
        },
    })
}

impl Provisioner {
    async fn sync_claim(&self, key: &str) -> Result<Requeue, ApiError> {
        let (ns, name) = split_key(key);
        let Some(pvc) = self.claims.get(ns, name) else {
            return Ok(None);
        };
        let bound = pvc
            .pointer("/spec/volumeName")
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty());
        if bound || is_deleting(&pvc) {
            return Ok(None);
        }
        let Some(class) = self.classes.get(None, claim_class(&pvc)) else {
            return Ok(None);
        };
        if class.get("provisioner").and_then(Value::as_str) != Some(LOCAL_PATH_PROVISIONER) {
            return Ok(None);
        }
        let Some(node) = annotation(&pvc, ANN_SELECTED_NODE) else {
            return self.select_node(&pvc, &class).await;
        };
        if annotation(&pvc, ANN_STORAGE_PROVISIONER) != Some(LOCAL_PATH_PROVISIONER) {
            // The PV controller has not asked for a volume yet (it may find one to bind).
            return Ok(None);
        }
        let pv_name = format!("pvc-{}", uid_of(&pvc));
        if self.volumes.get(None, &pv_name).is_some() {
            return Ok(None);
        }
        self.provision(&pvc, &class, node, &pv_name).await
    }

    /// Records the node of the claim's first consumer (a scheduled pod using it).
    async fn select_node(&self, pvc: &Value, class: &Value) -> Result<Requeue, ApiError> {
        if class.get("volumeBindingMode").and_then(Value::as_str) != Some("WaitForFirstConsumer") {
            self.recorder
                .record(
                    pvc,
                    WARNING,
                    "ProvisioningFailed",
                    &format!("failed to provision volume with StorageClass \"{}\": configuration error, no node was specified", name_of(class)),
                )
                .await;
            return Ok(None);
        }
        let pods = self.pods.list(Some(namespace_of(pvc)));
        let consumer = pods_using_claim(&pods, name_of(pvc)).find(|p| is_active(p));
        let Some(node) = consumer
            .and_then(|p| p.pointer("/spec/nodeName"))
            .and_then(Value::as_str)
        else {
            return Ok(None);
        };
        let patch = json!({"metadata": {"annotations": {ANN_SELECTED_NODE: node}}});
        self.client
            .merge_patch(
                self.pvc_r,
                Some(namespace_of(pvc)),
                name_of(pvc),
                None,
                patch,
            )
            .await?;
        Ok(None)
    }

    async fn provision(
        &self,
        pvc: &Value,
        class: &Value,
        node: &str,
        pv_name: &str,
    ) -> Result<Requeue, ApiError> {
        let claim = format!("{}/{}", namespace_of(pvc), name_of(pvc));
        let modes: Vec<&str> = pvc
            .pointer("/spec/accessModes")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let fail = |why: String| {
            format!(
                "failed to provision volume with StorageClass \"{}\": {why}",
                name_of(class)
            )
        };
        if let Some(bad) = modes.iter().find(|m| !SUPPORTED_MODES.contains(m)) {
            let msg = fail(format!("NodePath only supports ReadWriteOnce and ReadWriteOncePod (1.22+) access modes, not {bad}"));
            self.recorder
                .record(pvc, WARNING, "ProvisioningFailed", &msg)
                .await;
            return Ok(None);
        }
        self.recorder
            .record(
                pvc,
                NORMAL,
                "Provisioning",
                &format!("External provisioner is provisioning volume for claim \"{claim}\""),
            )
            .await;
        let hostname = self
            .nodes
            .get(None, node)
            .and_then(|n| {
                n.pointer("/metadata/labels/kubernetes.io~1hostname")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| node.to_string());
        let dir = volume_dir(&self.root, pv_name, pvc);
        if let Err(e) = create_dir(&dir) {
            let msg = fail(format!("creating {}: {e}", dir.display()));
            self.recorder
                .record(pvc, WARNING, "ProvisioningFailed", &msg)
                .await;
            return Err(ApiError::internal(msg));
        }
        let pv = volume_for(pvc, class, &dir, &hostname, node);
        match self.client.create(self.pv_r, None, pv).await {
            Ok(_) => {}
            Err(e) if e.code == 409 => return Ok(None),
            Err(e) => {
                self.recorder
                    .record(pvc, WARNING, "ProvisioningFailed", &fail(e.message.clone()))
                    .await;
                return Err(e);
            }
        }
        self.recorder
            .record(
                pvc,
                NORMAL,
                "ProvisioningSucceeded",
                &format!("Successfully provisioned volume {pv_name}"),
            )
            .await;
        Ok(None)
    }

    /// Deletes a Released volume of this provisioner with reclaim policy Delete.
    async fn sync_volume(&self, name: &str) -> Result<Requeue, ApiError> {
        let Some(pv) = self.volumes.get(None, name) else {
            return Ok(None);
        };
        let policy = pv
            .pointer("/spec/persistentVolumeReclaimPolicy")
            .and_then(Value::as_str);
        if phase_of(&pv) != "Released"
            || policy != Some("Delete")
            || annotation(&pv, ANN_PROVISIONED_BY) != Some(LOCAL_PATH_PROVISIONER)
            || is_deleting(&pv)
        {
            return Ok(None);
        }
        let path = pv
            .pointer("/spec/hostPath/path")
            .or_else(|| pv.pointer("/spec/local/path"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if let Err(msg) = remove_dir(&self.root, Path::new(path)) {
            self.recorder
                .record(&pv, WARNING, "VolumeFailedDelete", &msg)
                .await;
            return Err(ApiError::internal(msg));
        }
        match self.client.delete(self.pv_r, None, name, None).await {
            Ok(()) => Ok(None),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// `mkdir -m 0777 -p`, as local-path's helper does.
fn create_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
}

/// Removes a volume directory, only when it lies directly in `root` (no `..`, no symlink
/// escape: the parent is resolved and compared).
fn remove_dir(root: &Path, path: &Path) -> Result<(), String> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let parent_ok = path.parent().is_some_and(|p| {
        let canon = |x: &Path| std::fs::canonicalize(x).unwrap_or_else(|_| x.to_path_buf());
        canon(p) == canon(root)
    });
    if name.is_empty() || name == "." || name == ".." || !parent_ok {
        return Err(format!(
            "refusing to delete {}: not a volume directory of {}",
            path.display(),
            root.display()
        ));
    }
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("removing {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provisioned_volume_shape() {
        let pvc = json!({"metadata": {"name": "data-web-0", "namespace": "default", "uid": "u-1", "resourceVersion": "5"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
        let class = json!({"metadata": {"name": "local-path"}, "reclaimPolicy": "Delete"});
        let root = Path::new("/data/storage");
        let dir = volume_dir(root, "pvc-u-1", &pvc);
        assert_eq!(dir, Path::new("/data/storage/pvc-u-1_default_data-web-0"));
        let pv = volume_for(&pvc, &class, &dir, "host-a", "node-a");
        assert_eq!(pv["metadata"]["name"], "pvc-u-1");
        assert_eq!(pv["spec"]["capacity"]["storage"], "1Gi");
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Delete");
        assert_eq!(pv["spec"]["storageClassName"], "local-path");
        assert_eq!(pv["spec"]["claimRef"]["uid"], "u-1");
        assert_eq!(
            pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
                ["values"],
            json!(["host-a"])
        );
        assert_eq!(
            pv["spec"]["hostPath"]["path"],
            "/data/storage/pvc-u-1_default_data-web-0"
        );
    }

    #[test]
    fn only_directories_in_the_root_are_removed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("storage");
        let vol = root.join("pvc-1_ns_c");
        std::fs::create_dir_all(vol.join("sub")).expect("mkdir");
        std::fs::write(vol.join("sub/f"), b"x").expect("write");
        let outside = tmp.path().join("other");
        std::fs::create_dir_all(&outside).expect("mkdir");
        assert!(remove_dir(&root, &outside).is_err());
        assert!(remove_dir(&root, &root.join("..")).is_err());
        assert!(remove_dir(&root, &root).is_err());
        assert!(outside.exists());
        remove_dir(&root, &vol).expect("remove");
        assert!(!vol.exists());
        remove_dir(&root, &vol).expect("idempotent");
    }
}
