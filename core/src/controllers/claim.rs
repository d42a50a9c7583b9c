//! Claiming objects for a controller (Kubernetes' `ControllerRefManager`): of the candidates a
//! controller sees, it keeps those it controls and its selector still matches, adopts orphans
//! its selector matches (a strategic merge patch adding its controllerRef), and releases those
//! it controls that no longer match (a patch deleting its ownerReference by uid). Adoption first
//! re-reads the controller from the store, so a controller being deleted adopts nothing.

use super::pods::{controller_of, controller_ref, is_deleting, namespace_of, uid_of};
use crate::patch::PatchType;
use crate::resources::Resource;
use crate::selectors::LabelSelector;
use crate::server::status::ApiError;
use crate::server::write::{FieldValidation, WriteOptions, Writer};
use serde_json::{json, Value};
use std::sync::Arc;

/// The controller claiming, and what it claims.
pub struct Claimer<'a> {
    pub writer: &'a Writer,
    /// The field manager the patches are written as.
    pub manager: &'a str,
    /// The controller (with apiVersion, kind, metadata).
    pub owner: &'a Value,
    pub owner_resource: &'static Resource,
    pub selector: &'a LabelSelector,
    /// The resource of the claimed objects (pods, replicasets).
    pub resource: &'static Resource,
}

impl Claimer<'_> {
    /// Claims among `candidates` (all in the controller's namespace); returns the objects
    /// the controller now owns, adopted ones as patched.
    pub async fn claim(&self, candidates: &[Arc<Value>]) -> Result<Vec<Arc<Value>>, ApiError> {
        let mut owned = Vec::new();
        let mut can_adopt: Option<bool> = None;
        for obj in candidates {
            match decide(self.owner, self.selector, obj) {
                Decision::Keep => owned.push(obj.clone()),
                Decision::Skip => {}
                Decision::Release => match self.release(obj).await {
                    Ok(()) => {}
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                },
                Decision::Adopt => {
                    let allowed = match can_adopt {
                        Some(a) => a,
                        None => {
                            let a = self.recheck_owner().await?;
                            can_adopt = Some(a);
                            a
                        }
                    };
                    if !allowed {
                        continue;
                    }
                    match self.adopt(obj).await {
                        Ok(v) => owned.push(Arc::new(v)),
                        Err(e) if e.code == 404 => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(owned)
    }

    /// A fresh read of the controller: adoption only while it exists with the same uid and is
    /// not being deleted (Kubernetes' `RecheckDeletionTimestamp`).
    async fn recheck_owner(&self) -> Result<bool, ApiError> {
        let ns = Some(namespace_of(self.owner)).filter(|n| !n.is_empty());
        let name = super::pods::name_of(self.owner);
        let fresh = self
            .writer
            .objects
            .get(self.owner_resource, ns, name)
            .await?;
        Ok(fresh.is_some_and(|f| uid_of(&f.value) == uid_of(self.owner) && !is_deleting(&f.value)))
    }

    fn opts(&self) -> WriteOptions {
        WriteOptions {
            dry_run: false,
            field_manager: self.manager.to_string(),
            field_validation: FieldValidation::Strict,
            force: false,
        }
    }

    async fn patch(&self, obj: &Value, body: Value) -> Result<Value, ApiError> {
        let ns = Some(namespace_of(obj)).filter(|n| !n.is_empty());
        let name = super::pods::name_of(obj);
        Ok(self
            .writer
            .patch(
                self.resource,
                ns,
                name,
                None,
                PatchType::Strategic,
                body,
                None,
                &self.opts(),
            )
            .await?
            .object)
    }

    async fn adopt(&self, obj: &Value) -> Result<Value, ApiError> {
        let body = json!({"metadata": {
            "ownerReferences": [controller_ref(self.owner)],
            "uid": uid_of(obj),
        }});
        self.patch(obj, body).await
    }

    async fn release(&self, obj: &Value) -> Result<(), ApiError> {
        let body = json!({"metadata": {
            "ownerReferences": [{"$patch": "delete", "uid": uid_of(self.owner)}],
            "uid": uid_of(obj),
        }});
        self.patch(obj, body).await.map(|_| ())
    }
}

/// What claiming does with one candidate.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Keep,
    Skip,
    Release,
    Adopt,
}

fn decide(owner: &Value, selector: &LabelSelector, obj: &Value) -> Decision {
    let owner_uid = uid_of(owner);
    let matches = selector.matches(&super::pods::labels(obj));
    if let Some(r) = controller_of(obj) {
        if r.get("uid").and_then(Value::as_str) != Some(owner_uid) {
            return Decision::Skip;
        }
        if matches {
            return Decision::Keep;
        }
        if is_deleting(owner) {
            return Decision::Skip;
        }
        return Decision::Release;
    }
    if is_deleting(owner) || !matches || is_deleting(obj) {
        return Decision::Skip;
    }
    if namespace_of(owner) != namespace_of(obj) {
        return Decision::Skip;
    }
    Decision::Adopt
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(deleting: bool) -> Value {
        let mut o = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "rs", "namespace": "ns", "uid": "u1"}});
        if deleting {
            o["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        o
    }

    fn pod(labels: Value, owner_uid: Option<&str>) -> Value {
        let mut p =
            json!({"metadata": {"name": "p", "namespace": "ns", "uid": "p1", "labels": labels}});
        if let Some(u) = owner_uid {
            p["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "uid": u, "controller": true}]);
        }
        p
    }

    #[test]
    fn decisions() {
        let sel = LabelSelector::parse("app=web").unwrap();
        let o = owner(false);
        assert_eq!(
            decide(&o, &sel, &pod(json!({"app": "web"}), Some("u1"))),
            Decision::Keep
        );
        assert_eq!(
            decide(&o, &sel, &pod(json!({"app": "db"}), Some("u1"))),
            Decision::Release
        );
        assert_eq!(
            decide(&o, &sel, &pod(json!({"app": "web"}), Some("u2"))),
            Decision::Skip
        );
        assert_eq!(
            decide(&o, &sel, &pod(json!({"app": "web"}), None)),
            Decision::Adopt
        );
        assert_eq!(
            decide(&o, &sel, &pod(json!({"app": "db"}), None)),
            Decision::Skip
        );
        let mut deleting_pod = pod(json!({"app": "web"}), None);
        deleting_pod["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(decide(&o, &sel, &deleting_pod), Decision::Skip);
        let mut elsewhere = pod(json!({"app": "web"}), None);
        elsewhere["metadata"]["namespace"] = json!("other");
        assert_eq!(decide(&o, &sel, &elsewhere), Decision::Skip);
        // A controller being deleted neither adopts nor releases.
        let d = owner(true);
        assert_eq!(
            decide(&d, &sel, &pod(json!({"app": "web"}), None)),
            Decision::Skip
        );
        assert_eq!(
            decide(&d, &sel, &pod(json!({"app": "db"}), Some("u1"))),
            Decision::Skip
        );
        assert_eq!(
            decide(&d, &sel, &pod(json!({"app": "web"}), Some("u1"))),
            Decision::Keep
        );
    }
}
