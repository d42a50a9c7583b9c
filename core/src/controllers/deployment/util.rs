//! The arithmetic and bookkeeping of Deployments over their ReplicaSets (Kubernetes'
//! `deployment/util/deployment_util.go`): surge and unavailability from `intOrString`
//! percentages, how far the new ReplicaSet may grow, proportions for scaling mid-rollout,
//! revision and replica annotations, finding the new and old ReplicaSets, and conditions.
//! Pure functions over the typed objects; no I/O.

use super::hash::{equal_ignore_hash, POD_TEMPLATE_HASH};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::cmp::Ordering;
use std::collections::BTreeMap;

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
const DEPRECATED_ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
/// Longest `revision-history` annotation kept (characters).
pub const MAX_REV_HISTORY_CHARS: usize = 2000;

// Condition types and reasons.
pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";
pub const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";

// ---------------------------------------------------------------------------------------------
// Accessors (defaults as the API server applies them).

pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn set_rs_replicas(rs: &mut ReplicaSet, n: i32) {
    rs.spec.get_or_insert_with(Default::default).replicas = Some(n);
}

pub fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

fn rs_actual(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

fn rs_ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

pub fn is_rolling_update(d: &Deployment) -> bool {
    strategy_type(d) == "RollingUpdate"
}

pub fn strategy_type(d: &Deployment) -> &str {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
}

pub fn paused(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

pub fn min_ready_seconds(d: &Deployment) -> i32 {
    d.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

pub fn generation(d: &Deployment) -> i64 {
    d.metadata.generation.unwrap_or(0)
}

/// `progressDeadlineSeconds` unless unset or MaxInt32 (`HasProgressDeadline`).
pub fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .filter(|s| *s != i32::MAX)
}

/// `revisionHistoryLimit` unless unset or MaxInt32 (`HasRevisionHistoryLimit`).
pub fn revision_history_limit(d: &Deployment) -> Option<i32> {
    d.spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .filter(|s| *s != i32::MAX)
}

fn rolling_params(d: &Deployment) -> (Option<&IntOrString>, Option<&IntOrString>) {
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    (
        ru.and_then(|r| r.max_surge.as_ref()),
        ru.and_then(|r| r.max_unavailable.as_ref()),
    )
}

fn annotation<'a>(meta: &'a Option<BTreeMap<String, String>>, key: &str) -> Option<&'a str> {
    meta.as_ref()?.get(key).map(String::as_str)
}

// ---------------------------------------------------------------------------------------------
// Surge and unavailability.

/// `intstr.GetScaledValueFromIntOrPercent`: an int as is, `"N%"` of `total` rounded up or down.
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match v {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let Some(pct) = s.strip_suffix('%') else {
                return Err(
                    "invalid value for IntOrString: invalid type: string is not a percentage"
                        .to_string(),
                );
            };
            let pct: i64 = pct
                .parse()
                .map_err(|_| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            let exact = pct as f64 * f64::from(total) / 100.0;
            let v = if round_up {
                exact.ceil()
            } else {
                exact.floor()
            };
            Ok(v as i32)
        }
    }
}

/// `ResolveFenceposts`: (maxSurge rounded up, maxUnavailable rounded down); both resolving to
/// 0 makes unavailability 1.
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> (i32, i32) {
    let zero = IntOrString::Int(0);
    let surge = scaled_value(max_surge.unwrap_or(&zero), desired, true).unwrap_or(0);
    let mut unavailable =
        scaled_value(max_unavailable.unwrap_or(&zero), desired, false).unwrap_or(0);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

/// Most pods above `replicas` a rolling Deployment may run (0 for Recreate).
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling_update(d) {
        return 0;
    }
    let (s, u) = rolling_params(d);
    resolve_fenceposts(s, u, replicas(d)).0
}

/// Most pods below `replicas` a rolling Deployment may have unavailable (0 for Recreate).
pub fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling_update(d) || replicas(d) == 0 {
        return 0;
    }
    let (s, u) = rolling_params(d);
    resolve_fenceposts(s, u, replicas(d)).1.min(replicas(d))
}

/// `NewRSNewReplicas`: what the new ReplicaSet may be scaled to now.
pub fn new_rs_new_replicas(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: &ReplicaSet,
) -> Result<i32, String> {
    match strategy_type(d) {
        "RollingUpdate" => {
            let surge = rolling_params(d)
                .0
                .ok_or_else(|| "nil value for IntOrString".to_string())?;
            let surge = scaled_value(surge, replicas(d), true)?;
            let current = replica_count(all);
            let max_total = replicas(d) + surge;
            if current >= max_total {
                return Ok(rs_replicas(new_rs));
            }
            let up = (max_total - current).min(replicas(d) - rs_replicas(new_rs));
            Ok(rs_replicas(new_rs) + up)
        }
        "Recreate" => Ok(replicas(d)),
        t => Err(format!("deployment type {t} isn't supported")),
    }
}

/// The new ReplicaSet owns all desired replicas, believes so, and all are available.
pub fn is_saturated(d: &Deployment, rs: &ReplicaSet) -> bool {
    let Some(desired) =
        annotation(&rs.metadata.annotations, DESIRED_REPLICAS).and_then(|s| s.parse::<i32>().ok())
    else {
        return false;
    };
    rs_replicas(rs) == replicas(d) && desired == replicas(d) && rs_available(rs) == replicas(d)
}

pub fn replica_count(rss: &[&ReplicaSet]) -> i32 {
    rss.iter().map(|rs| rs_replicas(rs)).sum()
}

pub fn actual_count(rss: &[&ReplicaSet]) -> i32 {
    rss.iter().map(|rs| rs_actual(rs)).sum()
}

pub fn ready_count(rss: &[&ReplicaSet]) -> i32 {
    rss.iter().map(|rs| rs_ready(rs)).sum()
}

pub fn available_count(rss: &[&ReplicaSet]) -> i32 {
    rss.iter().map(|rs| rs_available(rs)).sum()
}

/// ReplicaSets with pods wanted (`FilterActiveReplicaSets`).
pub fn active<'a>(rss: &[&'a ReplicaSet]) -> Vec<&'a ReplicaSet> {
    rss.iter()
        .copied()
        .filter(|rs| rs_replicas(rs) > 0)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Proportional scaling.

/// `GetProportion`: how many replicas `rs` gets of `to_add` (negative when scaling down),
/// given `added` so far.
pub fn proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

fn fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    if replicas(d) == 0 {
        return -rs_replicas(rs);
    }
    let deployment_replicas = replicas(d) + max_surge(d);
    let annotated = annotation(&rs.metadata.annotations, MAX_REPLICAS)
        .and_then(|s| s.parse::<i32>().ok())
        .unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
    if annotated == 0 {
        return 0;
    }
    let size = f64::from(rs_replicas(rs)) * f64::from(deployment_replicas) / f64::from(annotated);
    round_to_i32(size) - rs_replicas(rs)
}

/// `integer.RoundToInt32`: half away from zero.
fn round_to_i32(a: f64) -> i32 {
    if a < 0.0 {
        (a - 0.5) as i32
    } else {
        (a + 0.5) as i32
    }
}

// ---------------------------------------------------------------------------------------------
// Ordering of ReplicaSets.

fn created(rs: &ReplicaSet) -> Option<i64> {
    rs.metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
}

fn name(rs: &ReplicaSet) -> &str {
    rs.metadata.name.as_deref().unwrap_or("")
}

/// Oldest first, names breaking ties (`ReplicaSetsByCreationTimestamp`).
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    created(a)
        .cmp(&created(b))
        .then_with(|| name(a).cmp(name(b)))
}

/// Largest first, older first among equals (`ReplicaSetsBySizeOlder`).
pub fn by_size_older(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_replicas(b)
        .cmp(&rs_replicas(a))
        .then_with(|| by_creation(a, b))
}

/// Largest first, newer first among equals (`ReplicaSetsBySizeNewer`).
pub fn by_size_newer(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_replicas(b)
        .cmp(&rs_replicas(a))
        .then_with(|| by_creation(b, a))
}

/// Lowest revision first, creation breaking ties (`ReplicaSetsByRevision`).
pub fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    match (revision(a), revision(b)) {
        (Some(x), Some(y)) if x != y => x.cmp(&y),
        _ => by_creation(a, b),
    }
}

// ---------------------------------------------------------------------------------------------
// New and old ReplicaSets.

fn template_json(t: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(t).unwrap_or_default()
}

/// The ReplicaSet whose template equals the Deployment's (the oldest if several).
pub fn find_new(d: &Deployment, rss: &[ReplicaSet]) -> Option<usize> {
    let want = template_json(&d.spec.as_ref().map(|s| &s.template));
    let mut idx: Vec<usize> = (0..rss.len()).collect();
    idx.sort_by(|&a, &b| by_creation(&rss[a], &rss[b]));
    idx.into_iter().find(|&i| {
        let t = template_json(&rss[i].spec.as_ref().and_then(|s| s.template.as_ref()));
        equal_ignore_hash(&t, &want)
    })
}

/// The ActiveOrLatest ReplicaSet of `FindActiveOrLatest`: the only active one, or the newest
/// when none is active; None when several are active.
pub fn find_active_or_latest<'a>(
    new_rs: Option<&'a ReplicaSet>,
    old: &[&'a ReplicaSet],
) -> Option<&'a ReplicaSet> {
    if new_rs.is_none() && old.is_empty() {
        return None;
    }
    let mut old: Vec<&ReplicaSet> = old.to_vec();
    old.sort_by(|a, b| by_creation(b, a));
    let mut all = old.clone();
    all.extend(new_rs);
    let active = active(&all);
    match active.len() {
        0 => new_rs.or_else(|| old.first().copied()),
        1 => Some(active[0]),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Revisions and annotations.

/// The `deployment.kubernetes.io/revision` of a ReplicaSet (0 when absent, None when invalid).
pub fn revision(rs: &ReplicaSet) -> Option<i64> {
    match annotation(&rs.metadata.annotations, REVISION) {
        None => Some(0),
        Some(v) => v.parse().ok(),
    }
}

pub fn max_revision(rss: &[&ReplicaSet]) -> i64 {
    rss.iter()
        .filter_map(|rs| revision(rs))
        .max()
        .unwrap_or(0)
        .max(0)
}

fn skip_copy(key: &str) -> bool {
    matches!(
        key,
        LAST_APPLIED
            | REVISION
            | REVISION_HISTORY
            | DESIRED_REPLICAS
            | MAX_REPLICAS
            | DEPRECATED_ROLLBACK_TO
    )
}

/// Copies the Deployment's annotations (but the controller's own and last-applied) to the
/// ReplicaSet; true when something changed.
fn copy_annotations(d: &Deployment, rs: &mut ReplicaSet) -> bool {
    let Some(src) = d.metadata.annotations.as_ref() else {
        return false;
    };
    let dst = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (k, v) in src {
        if skip_copy(k) || dst.get(k) == Some(v) {
            continue;
        }
        dst.insert(k.clone(), v.clone());
        changed = true;
    }
    changed
}

/// `SetNewReplicaSetAnnotations`: copies the Deployment's annotations, raises the revision to
/// `new_revision` (keeping the old ones in `revision-history` when rolling back to this one)
/// and, for a ReplicaSet about to be created, records desired and max replicas.
pub fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
) -> bool {
    let mut changed = copy_annotations(d, rs);
    let ann = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let old = ann.get(REVISION).cloned();
    let old_int = match old.as_deref() {
        None | Some("") => 0,
        Some(v) => match v.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return false,
        },
    };
    if old_int < new_revision {
        ann.insert(REVISION.into(), new_revision.to_string());
        changed = true;
    }
    if let (Some(old), true) = (old.as_deref(), old_int < new_revision) {
        let history = ann.get(REVISION_HISTORY).cloned().unwrap_or_default();
        if history.is_empty() {
            ann.insert(REVISION_HISTORY.into(), old.to_string());
        } else {
            let mut parts: Vec<&str> = history.split(',').collect();
            let mut total = history.len() + old.len() + 1;
            let mut start = 0;
            while total > MAX_REV_HISTORY_CHARS && start < parts.len() {
                total -= parts[start].len() + 1;
                start += 1;
            }
            if total <= MAX_REV_HISTORY_CHARS {
                parts = parts.split_off(start);
                parts.push(old);
                ann.insert(REVISION_HISTORY.into(), parts.join(","));
            }
        }
    }
    if !exists && set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)) {
        changed = true;
    }
    changed
}

/// Records desired and max replicas on a ReplicaSet; true when something changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let ann = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if ann.get(k) != Some(&v) {
            ann.insert(k.into(), v);
            changed = true;
        }
    }
    changed
}

pub fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    annotation(&rs.metadata.annotations, DESIRED_REPLICAS) != Some(desired.to_string().as_str())
        || annotation(&rs.metadata.annotations, MAX_REPLICAS) != Some(max.to_string().as_str())
}

pub fn desired_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation(&rs.metadata.annotations, DESIRED_REPLICAS).and_then(|s| s.parse().ok())
}

/// Sets the Deployment's revision annotation; true when it changed.
pub fn set_deployment_revision(d: &mut Deployment, revision: &str) -> bool {
    let ann = d.metadata.annotations.get_or_insert_with(BTreeMap::new);
    if ann.get(REVISION).map(String::as_str) == Some(revision) {
        return false;
    }
    ann.insert(REVISION.into(), revision.to_string());
    true
}

/// The ReplicaSet labels/selector key of a hash.
pub fn with_hash_label(
    labels: Option<&BTreeMap<String, String>>,
    hash: &str,
) -> BTreeMap<String, String> {
    let mut l = labels.cloned().unwrap_or_default();
    l.insert(POD_TEMPLATE_HASH.into(), hash.to_string());
    l
}

// ---------------------------------------------------------------------------------------------
// Conditions.

pub fn condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &Time,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    }
}

/// `SetDeploymentCondition`: no change when status and reason are the same; the transition
/// time is kept when only the reason changes; the condition moves to the end.
pub fn set_condition(status: &mut DeploymentStatus, mut c: DeploymentCondition) {
    if let Some(cur) = condition(status, &c.type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove_condition(status, &c.type_.clone());
    status.conditions.get_or_insert_with(Vec::new).push(c);
}

pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(cs) = status.conditions.as_mut() {
        cs.retain(|c| c.type_ != type_);
        if cs.is_empty() {
            status.conditions = None;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Progress.

fn st(status: &DeploymentStatus) -> (i32, i32, i32, i32, i64) {
    (
        status.replicas.unwrap_or(0),
        status.updated_replicas.unwrap_or(0),
        status.ready_replicas.unwrap_or(0),
        status.available_replicas.unwrap_or(0),
        status.observed_generation.unwrap_or(0),
    )
}

/// All desired replicas updated and available, no old ones, generation observed.
pub fn deployment_complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let (replicas_, updated, _, available, observed) = st(status);
    let want = replicas(d);
    updated == want && replicas_ == want && available == want && observed >= generation(d)
}

/// New pods scaled up, ready or available, or old ones scaled down, since `d.status`.
pub fn deployment_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let (o_rep, o_upd, o_ready, o_avail, _) = st(&old);
    let (n_rep, n_upd, n_ready, n_avail, _) = st(new);
    n_upd > o_upd || (n_rep - n_upd) < (o_rep - o_upd) || n_ready > o_ready || n_avail > o_avail
}

/// The Progressing condition was last updated more than `progressDeadlineSeconds` ago (or
/// already says so). `now` in seconds since the epoch.
pub fn deployment_timed_out(d: &Deployment, new: &DeploymentStatus, now: i64) -> bool {
    let Some(deadline) = progress_deadline(d) else {
        return false;
    };
    let Some(c) = condition(new, PROGRESSING) else {
        return false;
    };
    match c.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => return false,
        Some(TIMED_OUT) => return true,
        _ => {}
    }
    let Some(from) = c.last_update_time.as_ref().map(|t| t.0.as_second()) else {
        return false;
    };
    from + i64::from(deadline) < now
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{
        DeploymentSpec, DeploymentStrategy, ReplicaSetSpec, ReplicaSetStatus,
        RollingUpdateDeployment,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pct(s: &str) -> IntOrString {
        IntOrString::String(s.into())
    }

    fn deployment(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> Deployment {
        Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(surge),
                        max_unavailable: Some(unavailable),
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn rs(name: &str, replicas: i32, available: i32, created: i64) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(jiff::Timestamp::from_second(created).unwrap())),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                ..Default::default()
            }),
            status: Some(ReplicaSetStatus {
                replicas,
                available_replicas: Some(available),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn percentages_round_like_kubernetes() {
        // 25% of 10: surge rounds up to 3, unavailable down to 2.
        let d = deployment(10, pct("25%"), pct("25%"));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (3, 2));
        // 25% of 3: surge 1, unavailable 0.
        let d = deployment(3, pct("25%"), pct("25%"));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (1, 0));
        // Both resolving to 0: one may be unavailable.
        let d = deployment(2, pct("1%"), pct("0%"));
        assert_eq!(
            resolve_fenceposts(Some(&pct("0%")), Some(&pct("1%")), 2),
            (0, 1)
        );
        assert_eq!((max_surge(&d), max_unavailable(&d)), (1, 0));
        // Absolute values, unavailability capped at replicas.
        let d = deployment(2, IntOrString::Int(0), IntOrString::Int(5));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (0, 2));
        assert!(scaled_value(&pct("x"), 10, true).is_err());
        assert!(scaled_value(&IntOrString::String("3".into()), 10, true).is_err());
    }

    #[test]
    fn new_rs_growth_respects_surge() {
        // 3 replicas, maxSurge 1: an old RS at 3 lets the new one grow to 1.
        let d = deployment(3, IntOrString::Int(1), IntOrString::Int(0));
        let old = rs("old", 3, 3, 1);
        let new = rs("new", 0, 0, 2);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), Ok(1));
        let new1 = rs("new", 1, 0, 2);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new1], &new1), Ok(1));
        let old2 = rs("old", 2, 2, 1);
        assert_eq!(new_rs_new_replicas(&d, &[&old2, &new1], &new1), Ok(2));
        // Never beyond the desired count.
        let old0 = rs("old", 0, 0, 1);
        let new3 = rs("new", 2, 2, 2);
        assert_eq!(new_rs_new_replicas(&d, &[&old0, &new3], &new3), Ok(3));
    }

    #[test]
    fn proportions_when_scaled_mid_rollout() {
        // Deployment scaled from 10 (maxSurge 3 → max 13) to 20 (maxSurge 5 → 25) with old RS
        // at 8 and new at 5: 12 more to hand out, 8*25/13 ≈ 15.4 → +7, 5*25/13 ≈ 9.6 → +5.
        let mut d = deployment(20, pct("25%"), pct("25%"));
        let mut old = rs("old", 8, 8, 1);
        let mut new = rs("new", 5, 0, 2);
        for r in [&mut old, &mut new] {
            r.metadata.annotations = Some(BTreeMap::from([(MAX_REPLICAS.into(), "13".into())]));
        }
        d.status = Some(DeploymentStatus::default());
        assert_eq!(max_surge(&d), 5);
        let to_add = 25 - 13;
        let p_old = proportion(&old, &d, to_add, 0);
        let p_new = proportion(&new, &d, to_add, p_old);
        assert_eq!((p_old, p_new), (7, 5));
        // Scaling to zero takes everything.
        let zero = deployment(0, pct("25%"), pct("25%"));
        assert_eq!(proportion(&old, &zero, -13, 0), -8);
        assert_eq!(round_to_i32(2.5), 3);
        assert_eq!(round_to_i32(-2.5), -3);
    }

    #[test]
    fn active_or_latest_and_saturation() {
        let old = rs("old", 0, 0, 1);
        let new = rs("new", 0, 0, 2);
        assert_eq!(
            find_active_or_latest(Some(&new), &[&old]).and_then(|r| r.metadata.name.as_deref()),
            Some("new")
        );
        let old3 = rs("old", 3, 3, 1);
        assert_eq!(
            find_active_or_latest(Some(&new), &[&old3]).and_then(|r| r.metadata.name.as_deref()),
            Some("old")
        );
        let new1 = rs("new", 1, 0, 2);
        assert!(find_active_or_latest(Some(&new1), &[&old3]).is_none());
        let d = deployment(3, IntOrString::Int(1), IntOrString::Int(0));
        let mut sat = rs("new", 3, 3, 2);
        assert!(!is_saturated(&d, &sat));
        set_replicas_annotations(&mut sat, 3, 4);
        assert!(is_saturated(&d, &sat));
    }

    #[test]
    fn revision_annotations_and_history() {
        let d = Deployment {
            metadata: ObjectMeta {
                annotations: Some(BTreeMap::from([
                    ("kubernetes.io/change-cause".into(), "v2".into()),
                    (REVISION.into(), "9".into()),
                    (LAST_APPLIED.into(), "{}".into()),
                ])),
                ..Default::default()
            },
            ..deployment(3, IntOrString::Int(1), IntOrString::Int(0))
        };
        let mut r = rs("a", 0, 0, 1);
        assert!(set_new_rs_annotations(&d, &mut r, 1, false));
        let ann = r.metadata.annotations.clone().unwrap();
        assert_eq!(ann.get(REVISION).map(String::as_str), Some("1"));
        assert_eq!(
            ann.get("kubernetes.io/change-cause").map(String::as_str),
            Some("v2")
        );
        assert!(!ann.contains_key(LAST_APPLIED));
        assert_eq!(ann.get(DESIRED_REPLICAS).map(String::as_str), Some("3"));
        assert_eq!(ann.get(MAX_REPLICAS).map(String::as_str), Some("4"));
        // Rolled back to: revision 3, history keeps 1.
        assert!(set_new_rs_annotations(&d, &mut r, 3, true));
        let ann = r.metadata.annotations.clone().unwrap();
        assert_eq!(ann.get(REVISION).map(String::as_str), Some("3"));
        assert_eq!(ann.get(REVISION_HISTORY).map(String::as_str), Some("1"));
        assert!(set_new_rs_annotations(&d, &mut r, 5, true));
        assert_eq!(
            r.metadata
                .annotations
                .unwrap()
                .get(REVISION_HISTORY)
                .map(String::as_str),
            Some("1,3")
        );
    }

    #[test]
    fn conditions_keep_transition_time() {
        let t1 = Time(jiff::Timestamp::from_second(100).unwrap());
        let t2 = Time(jiff::Timestamp::from_second(200).unwrap());
        let mut s = DeploymentStatus::default();
        set_condition(
            &mut s,
            new_condition(PROGRESSING, "True", NEW_RS_CREATED, "a", &t1),
        );
        set_condition(
            &mut s,
            new_condition(AVAILABLE, "True", MIN_AVAILABLE, "b", &t1),
        );
        set_condition(
            &mut s,
            new_condition(PROGRESSING, "True", RS_UPDATED, "c", &t2),
        );
        let c = condition(&s, PROGRESSING).unwrap();
        assert_eq!(c.last_transition_time, Some(t1.clone()));
        assert_eq!(c.last_update_time, Some(t2.clone()));
        let types: Vec<&str> = s
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(types, [AVAILABLE, PROGRESSING]);
        // Same status and reason: untouched.
        set_condition(
            &mut s,
            new_condition(AVAILABLE, "True", MIN_AVAILABLE, "x", &t2),
        );
        assert_eq!(
            condition(&s, AVAILABLE).unwrap().message.as_deref(),
            Some("b")
        );
    }
}
