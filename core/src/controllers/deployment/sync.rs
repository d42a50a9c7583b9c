//! One reconcile of one Deployment and the writes it makes (Kubernetes' sync.go): finding or
//! creating the new ReplicaSet with the next revision, scaling ReplicaSets with events,
//! proportional scaling when the Deployment is resized mid-rollout or while paused, cleaning
//! up old ReplicaSets beyond `revisionHistoryLimit`, and writing the Deployment's status.
//! Every write continues from the object it returned, and the revisions written are kept so
//! the reconcile can wait for the caches to show them before it ends.

use super::hash::{compute_hash, equal_ignore_hash, POD_TEMPLATE_HASH};
use super::status;
use super::util::{self, *};
use super::Controller;
use crate::controllers::events;
use crate::controllers::pods::now_secs;
use crate::controllers::replicaset::revision_of;
use crate::server::status::ApiError;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kubelite_storage::Revision;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::time::Duration;

/// The state of one reconcile.
pub(super) struct Sync<'a> {
    pub ctl: &'a Controller,
    /// The Deployment as last read or written.
    pub d: Deployment,
    /// Newest revisions written to ReplicaSets and to the Deployment.
    pub wrote_rs: Revision,
    pub wrote_d: Revision,
    /// Look again after this long (progress deadline).
    pub requeue: Option<Duration>,
    /// The revision annotation changed and is not written yet.
    revision_dirty: bool,
}

pub(super) fn decode<T: DeserializeOwned>(v: &Value) -> Result<T, ApiError> {
    serde_json::from_value(v.clone()).map_err(|e| ApiError::internal(format!("decoding: {e}")))
}

fn encode(v: &impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::internal(format!("encoding: {e}")))
}

pub(super) fn now_time() -> Time {
    Time(jiff::Timestamp::from_second(now_secs()).unwrap_or_default())
}

fn rs_name(rs: &ReplicaSet) -> &str {
    rs.metadata.name.as_deref().unwrap_or("")
}

fn refs(rss: &[ReplicaSet]) -> Vec<&ReplicaSet> {
    rss.iter().collect()
}

impl<'a> Sync<'a> {
    pub fn new(ctl: &'a Controller, d: Deployment) -> Self {
        Sync {
            ctl,
            d,
            wrote_rs: 0,
            wrote_d: 0,
            requeue: None,
            revision_dirty: false,
        }
    }

    fn namespace(&self) -> String {
        self.d.metadata.namespace.clone().unwrap_or_default()
    }

    pub fn name(&self) -> String {
        self.d.metadata.name.clone().unwrap_or_default()
    }

    pub async fn event(&self, kind: &str, reason: &str, message: &str) {
        if let Ok(v) = encode(&self.d) {
            self.ctl.recorder.record(&v, kind, reason, message).await;
        }
    }

    // -----------------------------------------------------------------------------------------
    // Writes.

    /// PUT of a ReplicaSet; returns it as stored.
    async fn update_rs(&mut self, rs: &ReplicaSet) -> Result<ReplicaSet, ApiError> {
        let written = self.ctl.client.update(self.ctl.rs_res, encode(rs)?).await?;
        self.wrote_rs = self.wrote_rs.max(revision_of(&written));
        decode(&written)
    }

    /// Writes the Deployment's status (and its revision annotation if that changed, as
    /// Kubernetes does through the status subresource).
    pub async fn write_status(&mut self, status: DeploymentStatus) -> Result<(), ApiError> {
        if self.revision_dirty {
            let revision = self
                .d
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION))
                .cloned();
            let patch = json!({"metadata": {
                "resourceVersion": self.d.metadata.resource_version,
                "annotations": {REVISION: revision},
            }});
            let ns = self.namespace();
            let written = self
                .ctl
                .client
                .merge_patch(self.ctl.d_res, Some(&ns), &self.name(), None, patch)
                .await?;
            self.wrote_d = self.wrote_d.max(revision_of(&written));
            self.d = decode(&written)?;
            self.revision_dirty = false;
        }
        let mut obj = self.d.clone();
        obj.status = Some(status);
        let written = self
            .ctl
            .client
            .update_status(self.ctl.d_res, encode(&obj)?)
            .await?;
        self.wrote_d = self.wrote_d.max(revision_of(&written));
        self.d = decode(&written)?;
        Ok(())
    }

    fn set_revision(&mut self, revision: &str) -> bool {
        let changed = set_deployment_revision(&mut self.d, revision);
        self.revision_dirty |= changed;
        changed
    }

    // -----------------------------------------------------------------------------------------
    // New and old ReplicaSets.

    /// `getAllReplicaSetsAndSyncRevision`: the new ReplicaSet (created when `create` and
    /// missing) and the old ones; updates revisions, annotations and minReadySeconds on the
    /// way. `rs_list` is kept current with what was written.
    pub async fn get_all(
        &mut self,
        rs_list: &mut Vec<ReplicaSet>,
        create: bool,
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>), ApiError> {
        let new_idx = find_new(&self.d, rs_list);
        let olds: Vec<ReplicaSet> = rs_list
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != new_idx)
            .map(|(_, rs)| rs.clone())
            .collect();
        let new_revision = max_revision(&refs(&olds)) + 1;
        if let Some(i) = new_idx {
            let mut rs = rs_list[i].clone();
            let annotations_changed = set_new_rs_annotations(&self.d, &mut rs, new_revision, true);
            let min_ready = min_ready_seconds(&self.d);
            let rs_min_ready = rs
                .spec
                .as_ref()
                .and_then(|s| s.min_ready_seconds)
                .unwrap_or(0);
            if annotations_changed || rs_min_ready != min_ready {
                rs.spec
                    .get_or_insert_with(Default::default)
                    .min_ready_seconds = Some(min_ready).filter(|m| *m != 0);
                let written = self.update_rs(&rs).await?;
                rs_list[i] = written.clone();
                return Ok((Some(written), olds));
            }
            let rs_revision = rs
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION))
                .cloned()
                .unwrap_or_default();
            let mut needs_update = self.set_revision(&rs_revision);
            let mut st = status::current(&self.d);
            if progress_deadline(&self.d).is_some() && util::condition(&st, PROGRESSING).is_none() {
                let msg = format!("Found new replica set \"{}\"", rs_name(&rs));
                set_condition(
                    &mut st,
                    new_condition(PROGRESSING, "True", FOUND_NEW_RS, &msg, &now_time()),
                );
                needs_update = true;
            }
            if needs_update {
                self.write_status(st).await?;
            }
            return Ok((Some(rs), olds));
        }
        if !create {
            return Ok((None, olds));
        }
        let created = self.create_new_rs(rs_list, &olds, new_revision).await?;
        Ok((Some(created), olds))
    }

    async fn create_new_rs(
        &mut self,
        rs_list: &mut Vec<ReplicaSet>,
        olds: &[ReplicaSet],
        new_revision: i64,
    ) -> Result<ReplicaSet, ApiError> {
        let spec = self.d.spec.clone().unwrap_or_default();
        let collision_count = self.d.status.as_ref().and_then(|s| s.collision_count);
        let hash = compute_hash(&encode(&spec.template)?, collision_count);
        let mut template = spec.template.clone();
        let meta = template.metadata.get_or_insert_with(Default::default);
        let labels = with_hash_label(meta.labels.as_ref(), &hash);
        meta.labels = Some(labels.clone());
        let mut selector = spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(Default::default)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let name = format!("{}-{}", self.name(), hash);
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.namespace()),
                labels: Some(labels),
                owner_references: Some(vec![OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "Deployment".into(),
                    name: self.name(),
                    uid: self.d.metadata.uid.clone().unwrap_or_default(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: Some(min_ready_seconds(&self.d)).filter(|m| *m != 0),
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let mut all = refs(olds);
        all.push(&rs);
        let count = new_rs_new_replicas(&self.d, &all, &rs).map_err(ApiError::internal)?;
        set_rs_replicas(&mut rs, count);
        set_new_rs_annotations(&self.d, &mut rs, new_revision, false);
        let ns = self.namespace();
        let mut already_exists = false;
        let created = match self
            .ctl
            .client
            .create(self.ctl.rs_res, Some(&ns), encode(&rs)?)
            .await
        {
            Ok(v) => {
                self.wrote_rs = self.wrote_rs.max(revision_of(&v));
                decode::<ReplicaSet>(&v)?
            }
            Err(e) if e.reason == "AlreadyExists" => {
                already_exists = true;
                let existing = self
                    .ctl
                    .replicasets
                    .get(Some(&ns), &name)
                    .ok_or_else(|| e.clone())?;
                let existing: ReplicaSet = decode(&existing)?;
                let ours = existing
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|r| {
                        r.controller == Some(true) && Some(&r.uid) == self.d.metadata.uid.as_ref()
                    });
                let same = equal_ignore_hash(
                    &encode(&existing.spec.as_ref().and_then(|s| s.template.as_ref()))?,
                    &encode(&spec.template)?,
                );
                if !(ours && same) {
                    // A hash collision: bump collisionCount and try again with a new name.
                    let mut st = status::current(&self.d);
                    st.collision_count = Some(collision_count.unwrap_or(0) + 1);
                    self.write_status(st).await?;
                    return Err(e);
                }
                existing
            }
            Err(e) if e.code == 403 && e.message.contains("being terminated") => return Err(e),
            Err(e) => {
                let msg = format!("Failed to create new replica set \"{name}\": {}", e.message);
                if progress_deadline(&self.d).is_some() {
                    let mut st = status::current(&self.d);
                    set_condition(
                        &mut st,
                        new_condition(PROGRESSING, "False", FAILED_RS_CREATE, &msg, &now_time()),
                    );
                    let _ = self.write_status(st).await;
                }
                self.event(events::WARNING, FAILED_RS_CREATE, &msg).await;
                return Err(e);
            }
        };
        if !already_exists && count > 0 {
            let msg = format!("Scaled up replica set {name} from 0 to {count}");
            self.event(events::NORMAL, "ScalingReplicaSet", &msg).await;
        }
        let mut needs_update = self.set_revision(&new_revision.to_string());
        let mut st = status::current(&self.d);
        if !already_exists && progress_deadline(&self.d).is_some() {
            let msg = format!("Created new replica set \"{name}\"");
            set_condition(
                &mut st,
                new_condition(PROGRESSING, "True", NEW_RS_CREATED, &msg, &now_time()),
            );
            needs_update = true;
        }
        if needs_update {
            self.write_status(st).await?;
        }
        if !rs_list
            .iter()
            .any(|r| r.metadata.uid == created.metadata.uid)
        {
            rs_list.push(created.clone());
        }
        Ok(created)
    }

    // -----------------------------------------------------------------------------------------
    // Scaling.

    /// Scales a ReplicaSet, recording `ScalingReplicaSet`; returns whether its size changed
    /// and the ReplicaSet as it is now.
    pub async fn scale_and_record(
        &mut self,
        rs: &ReplicaSet,
        new_scale: i32,
    ) -> Result<(bool, ReplicaSet), ApiError> {
        if rs_replicas(rs) == new_scale {
            return Ok((false, rs.clone()));
        }
        let op = if rs_replicas(rs) < new_scale {
            "up"
        } else {
            "down"
        };
        self.scale_rs(rs, new_scale, op).await
    }

    /// Sets a ReplicaSet's size and replica annotations when either is off.
    async fn scale_rs(
        &mut self,
        rs: &ReplicaSet,
        new_scale: i32,
        op: &str,
    ) -> Result<(bool, ReplicaSet), ApiError> {
        let size_changes = rs_replicas(rs) != new_scale;
        let desired = replicas(&self.d);
        let max = desired + max_surge(&self.d);
        if !size_changes && !replicas_annotations_need_update(rs, desired, max) {
            return Ok((false, rs.clone()));
        }
        let old_scale = rs_replicas(rs);
        let mut copy = rs.clone();
        set_rs_replicas(&mut copy, new_scale);
        set_replicas_annotations(&mut copy, desired, max);
        let written = self.update_rs(&copy).await?;
        if size_changes {
            let msg = format!(
                "Scaled {op} replica set {} from {old_scale} to {new_scale}",
                rs_name(&written)
            );
            self.event(events::NORMAL, "ScalingReplicaSet", &msg).await;
        }
        Ok((size_changes, written))
    }

    /// `scale`: a resize outside a rollout (or while paused). One active ReplicaSet takes the
    /// whole size; a saturated new one leaves the old ones at 0; otherwise a rolling
    /// Deployment hands the difference out in proportion to the ReplicaSets' sizes.
    pub async fn scale(
        &mut self,
        new_rs: Option<&ReplicaSet>,
        olds: &[ReplicaSet],
    ) -> Result<(), ApiError> {
        let want = replicas(&self.d);
        if let Some(rs) = find_active_or_latest(new_rs, &refs(olds)) {
            if rs_replicas(rs) != want {
                let rs = rs.clone();
                self.scale_and_record(&rs, want).await?;
            }
            return Ok(());
        }
        if new_rs.is_some_and(|n| is_saturated(&self.d, n)) {
            for old in active(&refs(olds)) {
                let old = old.clone();
                self.scale_and_record(&old, 0).await?;
            }
            return Ok(());
        }
        if !is_rolling_update(&self.d) {
            return Ok(());
        }
        let mut all: Vec<ReplicaSet> = active(&refs(olds)).into_iter().cloned().collect();
        if let Some(n) = new_rs.filter(|n| rs_replicas(n) > 0) {
            all.push(n.clone());
        }
        let current = replica_count(&refs(&all));
        let allowed = if want > 0 {
            want + max_surge(&self.d)
        } else {
            0
        };
        let to_add = allowed - current;
        let op = match to_add.cmp(&0) {
            std::cmp::Ordering::Greater => {
                all.sort_by(by_size_newer);
                "up"
            }
            std::cmp::Ordering::Less => {
                all.sort_by(by_size_older);
                "down"
            }
            std::cmp::Ordering::Equal => "",
        };
        let mut added = 0;
        let mut sizes: Vec<i32> = Vec::with_capacity(all.len());
        for rs in &all {
            if to_add != 0 {
                let p = proportion(rs, &self.d, to_add, added);
                sizes.push(rs_replicas(rs) + p);
                added += p;
            } else {
                sizes.push(rs_replicas(rs));
            }
        }
        for (i, rs) in all.iter().enumerate() {
            if i == 0 && to_add != 0 {
                sizes[0] = (sizes[0] + to_add - added).max(0);
            }
            self.scale_rs(rs, sizes[i], op).await?;
        }
        Ok(())
    }

    /// `sync`: scaling and (while paused) cleanup, then the status.
    pub async fn sync(&mut self, rs_list: &mut Vec<ReplicaSet>) -> Result<(), ApiError> {
        let (new_rs, olds) = self.get_all(rs_list, false).await?;
        self.scale(new_rs.as_ref(), &olds).await?;
        if paused(&self.d) {
            self.cleanup(&olds).await?;
        }
        self.sync_status(new_rs.as_ref(), &olds).await
    }

    /// Deletes the oldest ReplicaSets with no pods beyond `revisionHistoryLimit`.
    pub async fn cleanup(&mut self, olds: &[ReplicaSet]) -> Result<(), ApiError> {
        let Some(limit) = revision_history_limit(&self.d) else {
            return Ok(());
        };
        let mut cleanable: Vec<&ReplicaSet> = olds
            .iter()
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        let excess = cleanable.len() as i64 - i64::from(limit);
        if excess <= 0 {
            return Ok(());
        }
        cleanable.sort_by(|a, b| by_revision(a, b));
        let ns = self.namespace();
        for rs in cleanable.into_iter().take(excess as usize) {
            let st = rs.status.clone().unwrap_or_default();
            let unobserved =
                rs.metadata.generation.unwrap_or(0) > st.observed_generation.unwrap_or(0);
            if st.replicas != 0 || rs_replicas(rs) != 0 || unobserved {
                continue;
            }
            match self
                .ctl
                .client
                .delete(self.ctl.rs_res, Some(&ns), rs_name(rs), None)
                .await
            {
                Ok(()) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Status.

    /// `syncDeploymentStatus`: counts and Available, written when they changed.
    pub async fn sync_status(
        &mut self,
        new_rs: Option<&ReplicaSet>,
        olds: &[ReplicaSet],
    ) -> Result<(), ApiError> {
        let mut all = refs(olds);
        all.extend(new_rs);
        let st = status::calculate(&all, new_rs, &self.d, &now_time());
        if st == status::current(&self.d) && !self.revision_dirty {
            return Ok(());
        }
        self.write_status(st).await
    }

    /// `syncRolloutStatus`: also the Progressing and ReplicaFailure conditions; when nothing
    /// changed, schedules the look at the progress deadline.
    pub async fn sync_rollout_status(
        &mut self,
        new_rs: Option<&ReplicaSet>,
        olds: &[ReplicaSet],
    ) -> Result<(), ApiError> {
        let mut all = refs(olds);
        all.extend(new_rs);
        let now = now_time();
        let st = status::rollout(&all, new_rs, &self.d, &now);
        if st == status::current(&self.d) && !self.revision_dirty {
            self.requeue = status::requeue_stuck(&self.d, &st, now.0.as_second());
            return Ok(());
        }
        self.write_status(st).await
    }

    /// `checkPausedConditions`: Progressing Unknown with DeploymentPaused / DeploymentResumed,
    /// so the time spent paused never counts against the deadline.
    pub async fn check_paused_conditions(&mut self) -> Result<(), ApiError> {
        if progress_deadline(&self.d).is_none() {
            return Ok(());
        }
        let mut st = status::current(&self.d);
        let reason = util::condition(&st, PROGRESSING).and_then(|c| c.reason.clone());
        if reason.as_deref() == Some(TIMED_OUT) {
            return Ok(());
        }
        let paused_cond = reason.as_deref() == Some(PAUSED);
        let now = now_time();
        let c = if paused(&self.d) && !paused_cond {
            new_condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused", &now)
        } else if !paused(&self.d) && paused_cond {
            new_condition(
                PROGRESSING,
                "Unknown",
                RESUMED,
                "Deployment is resumed",
                &now,
            )
        } else {
            return Ok(());
        };
        set_condition(&mut st, c);
        self.write_status(st).await
    }

    /// `isScalingEvent`: an active ReplicaSet was sized for another replica count.
    pub async fn is_scaling_event(
        &mut self,
        rs_list: &mut Vec<ReplicaSet>,
    ) -> Result<bool, ApiError> {
        let (new_rs, olds) = self.get_all(rs_list, false).await?;
        let mut all = refs(&olds);
        all.extend(new_rs.as_ref());
        let want = replicas(&self.d);
        Ok(active(&all)
            .iter()
            .filter_map(|rs| desired_replicas_annotation(rs))
            .any(|desired| desired != want))
    }
}
