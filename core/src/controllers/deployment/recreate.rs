//! The Recreate strategy (Kubernetes' recreate.go): scale every old ReplicaSet to 0, wait
//! until none of their pods is left (terminating ones included), only then create or scale
//! up the new ReplicaSet.

use super::sync::Sync;
use super::util::*;
use crate::controllers::pods;
use crate::server::status::ApiError;
use k8s_openapi::api::apps::v1::ReplicaSet;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Pods by the uid of the ReplicaSet controlling them.
pub(super) type PodMap = HashMap<String, Vec<Arc<Value>>>;

impl Sync<'_> {
    /// `rolloutRecreate`.
    pub async fn rollout_recreate(
        &mut self,
        rs_list: &mut Vec<ReplicaSet>,
        pod_map: &PodMap,
    ) -> Result<(), ApiError> {
        let (mut new_rs, mut olds) = self.get_all(rs_list, false).await?;
        let mut scaled_down = false;
        for old in olds.iter_mut() {
            if rs_replicas(old) == 0 {
                continue;
            }
            let (scaled, written) = self.scale_and_record(old, 0).await?;
            if scaled {
                *old = written;
                scaled_down = true;
            }
        }
        if scaled_down || old_pods_running(new_rs.as_ref(), &olds, pod_map) {
            return self.sync_rollout_status(new_rs.as_ref(), &olds).await;
        }
        if new_rs.is_none() {
            (new_rs, olds) = self.get_all(rs_list, true).await?;
        }
        if let Some(rs) = new_rs.clone() {
            let want = replicas(&self.d);
            self.scale_and_record(&rs, want).await?;
        }
        let current = self.d.status.clone().unwrap_or_default();
        if deployment_complete(&self.d, &current) {
            self.cleanup(&olds).await?;
        }
        self.sync_rollout_status(new_rs.as_ref(), &olds).await
    }
}

/// Old ReplicaSets still report pods, or a pod of one of them is not finished.
fn old_pods_running(new_rs: Option<&ReplicaSet>, olds: &[ReplicaSet], pod_map: &PodMap) -> bool {
    let olds: Vec<&ReplicaSet> = olds.iter().collect();
    if actual_count(&olds) > 0 {
        return true;
    }
    let new_uid = new_rs.and_then(|r| r.metadata.uid.as_deref());
    pod_map.iter().any(|(uid, pods)| {
        Some(uid.as_str()) != new_uid
            && pods
                .iter()
                .any(|p| !matches!(pods::phase(p), "Succeeded" | "Failed"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde_json::json;

    fn rs(uid: &str) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                uid: Some(uid.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn waits_for_old_pods() {
        let new = rs("new");
        let old = rs("old");
        let mut map = PodMap::new();
        map.insert(
            "new".into(),
            vec![Arc::new(json!({"status": {"phase": "Running"}}))],
        );
        assert!(!old_pods_running(
            Some(&new),
            std::slice::from_ref(&old),
            &map
        ));
        map.insert(
            "old".into(),
            vec![Arc::new(json!({"status": {"phase": "Succeeded"}}))],
        );
        assert!(!old_pods_running(
            Some(&new),
            std::slice::from_ref(&old),
            &map
        ));
        map.insert(
            "old".into(),
            vec![Arc::new(
                json!({"metadata": {"deletionTimestamp": "x"}, "status": {"phase": "Running"}}),
            )],
        );
        assert!(old_pods_running(
            Some(&new),
            std::slice::from_ref(&old),
            &map
        ));
    }
}
