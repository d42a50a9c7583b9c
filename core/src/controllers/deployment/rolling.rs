//! The RollingUpdate strategy (Kubernetes' rolling.go): grow the new ReplicaSet as far as
//! maxSurge allows, shrink old ones as far as maxUnavailable allows (unhealthy replicas
//! first, oldest ReplicaSets first), one step per reconcile, until only the new one is left.

use super::sync::Sync;
use super::util::*;
use crate::server::status::ApiError;
use k8s_openapi::api::apps::v1::ReplicaSet;

impl Sync<'_> {
    /// `rolloutRolling`.
    pub async fn rollout_rolling(&mut self, rs_list: &mut Vec<ReplicaSet>) -> Result<(), ApiError> {
        let (new_rs, olds) = self.get_all(rs_list, true).await?;
        let Some(new_rs) = new_rs else {
            return Ok(());
        };
        if self.reconcile_new(&new_rs, &olds).await? {
            return self.sync_rollout_status(Some(&new_rs), &olds).await;
        }
        if self.reconcile_olds(&new_rs, &olds).await {
            return self.sync_rollout_status(Some(&new_rs), &olds).await;
        }
        let current = self.d.status.clone().unwrap_or_default();
        if deployment_complete(&self.d, &current) {
            self.cleanup(&olds).await?;
        }
        self.sync_rollout_status(Some(&new_rs), &olds).await
    }

    /// `reconcileNewReplicaSet`: scale the new ReplicaSet up (within maxSurge) or down (to
    /// the desired count).
    async fn reconcile_new(
        &mut self,
        new_rs: &ReplicaSet,
        olds: &[ReplicaSet],
    ) -> Result<bool, ApiError> {
        let want = replicas(&self.d);
        let have = rs_replicas(new_rs);
        if have == want {
            return Ok(false);
        }
        if have > want {
            return Ok(self.scale_and_record(new_rs, want).await?.0);
        }
        let mut all: Vec<&ReplicaSet> = olds.iter().collect();
        all.push(new_rs);
        let count = new_rs_new_replicas(&self.d, &all, new_rs).map_err(ApiError::internal)?;
        Ok(self.scale_and_record(new_rs, count).await?.0)
    }

    /// `reconcileOldReplicaSets`: how far old ReplicaSets may shrink without going below
    /// `replicas - maxUnavailable` available pods, counting the new ReplicaSet's unavailable
    /// pods against it. Errors end the step quietly, as in Kubernetes.
    async fn reconcile_olds(&mut self, new_rs: &ReplicaSet, olds: &[ReplicaSet]) -> bool {
        let active_olds: Vec<ReplicaSet> = olds
            .iter()
            .filter(|rs| rs_replicas(rs) > 0)
            .cloned()
            .collect();
        if active_olds.is_empty() {
            return false;
        }
        let mut all: Vec<&ReplicaSet> = olds.iter().collect();
        all.push(new_rs);
        let all_pods = replica_count(&all);
        let min_available = replicas(&self.d) - max_unavailable(&self.d);
        let new_unavailable = rs_replicas(new_rs) - rs_available(new_rs);
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return false;
        }
        let Ok((olds_after, cleaned)) = self.cleanup_unhealthy(active_olds, max_scaled_down).await
        else {
            return false;
        };
        let Ok(scaled) = self.scale_down_olds(new_rs, olds_after).await else {
            return false;
        };
        cleaned + scaled > 0
    }

    /// `cleanupUnhealthyReplicas`: drop replicas that are not available from old
    /// ReplicaSets (oldest first), at most `max`.
    async fn cleanup_unhealthy(
        &mut self,
        mut olds: Vec<ReplicaSet>,
        max: i32,
    ) -> Result<(Vec<ReplicaSet>, i32), ApiError> {
        olds.sort_by(by_creation);
        let mut total = 0;
        for rs in olds.iter_mut() {
            if total >= max {
                break;
            }
            let (want, available) = (rs_replicas(rs), rs_available(rs));
            if want == 0 || want == available {
                continue;
            }
            let down = (max - total).min(want - available);
            let (_, written) = self.scale_and_record(rs, want - down).await?;
            *rs = written;
            total += down;
        }
        Ok((olds, total))
    }

    /// `scaleDownOldReplicaSetsForRollingUpdate`: shrink old ReplicaSets (oldest first) by
    /// the available pods beyond `replicas - maxUnavailable`.
    async fn scale_down_olds(
        &mut self,
        new_rs: &ReplicaSet,
        mut olds: Vec<ReplicaSet>,
    ) -> Result<i32, ApiError> {
        let min_available = replicas(&self.d) - max_unavailable(&self.d);
        let mut all: Vec<&ReplicaSet> = olds.iter().collect();
        all.push(new_rs);
        let available = available_count(&all);
        if available <= min_available {
            return Ok(0);
        }
        olds.sort_by(by_creation);
        let target = available - min_available;
        let mut total = 0;
        for rs in &olds {
            if total >= target {
                break;
            }
            if rs_replicas(rs) == 0 {
                continue;
            }
            let down = rs_replicas(rs).min(target - total);
            self.scale_and_record(rs, rs_replicas(rs) - down).await?;
            total += down;
        }
        Ok(total)
    }
}
