//! A Deployment's status from its ReplicaSets (Kubernetes' `calculateStatus` and the
//! condition logic of `syncRolloutStatus` in progress.go): replica counts summed over the
//! ReplicaSets, `Available` from maxUnavailable, `Progressing` from progress since the last
//! status (NewReplicaSetAvailable, ReplicaSetUpdated, ProgressDeadlineExceeded),
//! `ReplicaFailure` promoted from the ReplicaSets, and when to look again for a deadline.

use super::util::{self, *};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::time::Duration;

/// `calculateStatus`: counts over `all` (old and new ReplicaSets), the Available condition.
pub fn calculate(
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    d: &Deployment,
    now: &Time,
) -> DeploymentStatus {
    let available = available_count(all);
    let total = replica_count(all);
    let unavailable = (total - available).max(0);
    let previous = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: Some(generation(d)),
        replicas: Some(actual_count(all)),
        updated_replicas: Some(actual_count(&new_rs.into_iter().collect::<Vec<_>>())),
        ready_replicas: Some(ready_count(all)),
        available_replicas: Some(available),
        unavailable_replicas: Some(unavailable),
        collision_count: previous.collision_count,
        conditions: previous.conditions.clone(),
        terminating_replicas: None,
    };
    if available >= replicas(d) - max_unavailable(d) {
        set_condition(
            &mut status,
            new_condition(
                AVAILABLE,
                "True",
                MIN_AVAILABLE,
                "Deployment has minimum availability.",
                now,
            ),
        );
    } else {
        set_condition(
            &mut status,
            new_condition(
                AVAILABLE,
                "False",
                MIN_UNAVAILABLE,
                "Deployment does not have minimum availability.",
                now,
            ),
        );
    }
    normalized(status)
}

/// The status `syncRolloutStatus` writes: [`calculate`] plus the Progressing condition (when
/// the Deployment has a progress deadline) and ReplicaFailure. `now_secs` is `now` in seconds.
pub fn rollout(
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    d: &Deployment,
    now: &Time,
) -> DeploymentStatus {
    let mut status = calculate(all, new_rs, d, now);
    if progress_deadline(d).is_none() {
        remove_condition(&mut status, PROGRESSING);
    }
    let previous = d.status.clone().unwrap_or_default();
    let current = util::condition(&previous, PROGRESSING);
    let complete_before = status.replicas == status.updated_replicas
        && current.is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE));
    let rs_name = new_rs.and_then(|r| r.metadata.name.as_deref());
    let d_name = d.metadata.name.as_deref().unwrap_or("");
    let about = |what: &str| match rs_name {
        Some(n) => format!("ReplicaSet \"{n}\" {what}"),
        None => format!("Deployment \"{d_name}\" {what}"),
    };
    if progress_deadline(d).is_some() && !complete_before {
        if deployment_complete(d, &status) {
            let c = new_condition(
                PROGRESSING,
                "True",
                NEW_RS_AVAILABLE,
                &about("has successfully progressed."),
                now,
            );
            set_condition(&mut status, c);
        } else if deployment_progressing(d, &status) {
            let mut c = new_condition(
                PROGRESSING,
                "True",
                RS_UPDATED,
                &about("is progressing."),
                now,
            );
            if let Some(cur) = current {
                if cur.status == "True" {
                    c.last_transition_time = cur.last_transition_time.clone();
                }
                remove_condition(&mut status, PROGRESSING);
            }
            set_condition(&mut status, c);
        } else if deployment_timed_out(d, &status, now.0.as_second()) {
            let c = new_condition(
                PROGRESSING,
                "False",
                TIMED_OUT,
                &about("has timed out progressing."),
                now,
            );
            set_condition(&mut status, c);
        }
    }
    match replica_failure(all, new_rs) {
        Some(c) => set_condition(&mut status, c),
        None => remove_condition(&mut status, REPLICA_FAILURE),
    }
    normalized(status)
}

/// The ReplicaFailure condition of the new ReplicaSet, else of any old one.
fn replica_failure(
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
) -> Option<DeploymentCondition> {
    let failure = |rs: &ReplicaSet| {
        rs.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == REPLICA_FAILURE)
            .map(|c| DeploymentCondition {
                type_: c.type_.clone(),
                status: c.status.clone(),
                last_transition_time: c.last_transition_time.clone(),
                last_update_time: c.last_transition_time.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
            })
    };
    new_rs
        .and_then(failure)
        .or_else(|| all.iter().find_map(|rs| failure(rs)))
}

/// When to look at a Deployment again to notice it missed its progress deadline
/// (`requeueStuckDeployment`); None when there is nothing to watch for.
pub fn requeue_stuck(
    d: &Deployment,
    new_status: &DeploymentStatus,
    now_secs: i64,
) -> Option<Duration> {
    let deadline = progress_deadline(d)?;
    let previous = d.status.clone().unwrap_or_default();
    let current = util::condition(&previous, PROGRESSING)?;
    if deployment_complete(d, new_status) || current.reason.as_deref() == Some(TIMED_OUT) {
        return None;
    }
    let updated = current.last_update_time.as_ref()?.0.as_second();
    let after = updated + i64::from(deadline) - now_secs;
    if after < 1 {
        return Some(Duration::from_secs(1));
    }
    Some(Duration::from_secs(after.unsigned_abs() + 1))
}

/// Zero counts omitted, as Kubernetes serializes them (`omitempty`), so statuses compare and
/// print alike.
pub fn normalized(mut s: DeploymentStatus) -> DeploymentStatus {
    let nz = |v: Option<i32>| v.filter(|n| *n != 0);
    s.replicas = nz(s.replicas);
    s.updated_replicas = nz(s.updated_replicas);
    s.ready_replicas = nz(s.ready_replicas);
    s.available_replicas = nz(s.available_replicas);
    s.unavailable_replicas = nz(s.unavailable_replicas);
    s.terminating_replicas = nz(s.terminating_replicas);
    s.observed_generation = s.observed_generation.filter(|g| *g != 0);
    if s.conditions.as_ref().is_some_and(Vec::is_empty) {
        s.conditions = None;
    }
    s
}

/// The status a Deployment reports now, normalized for comparison.
pub fn current(d: &Deployment) -> DeploymentStatus {
    normalized(d.status.clone().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, ReplicaSetSpec, ReplicaSetStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn at(s: i64) -> Time {
        Time(jiff::Timestamp::from_second(s).unwrap())
    }

    fn deployment(replicas: i32, generation: i64) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                generation: Some(generation),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                progress_deadline_seconds: Some(600),
                strategy: Some(Default::default()),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn rs(name: &str, replicas: i32, ready: i32) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                ..Default::default()
            }),
            status: Some(ReplicaSetStatus {
                replicas,
                ready_replicas: Some(ready),
                available_replicas: Some(ready),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn complete_rollout() {
        let mut d = deployment(3, 2);
        let new = rs("web-1", 3, 3);
        let s = rollout(&[&new], Some(&new), &d, &at(100));
        assert_eq!(s.replicas, Some(3));
        assert_eq!(s.updated_replicas, Some(3));
        assert_eq!(s.available_replicas, Some(3));
        assert_eq!(s.unavailable_replicas, None);
        assert_eq!(s.observed_generation, Some(2));
        let p = util::condition(&s, PROGRESSING).unwrap();
        assert_eq!(p.reason.as_deref(), Some(NEW_RS_AVAILABLE));
        assert_eq!(
            p.message.as_deref(),
            Some("ReplicaSet \"web-1\" has successfully progressed.")
        );
        assert_eq!(util::condition(&s, AVAILABLE).unwrap().status, "True");
        // Nothing new: the same status, no requeue.
        d.status = Some(s.clone());
        let again = rollout(&[&new], Some(&new), &d, &at(200));
        assert_eq!(again, s);
        assert_eq!(requeue_stuck(&d, &again, 200), None);
    }

    #[test]
    fn progress_and_deadline() {
        let mut d = deployment(3, 1);
        let old = rs("web-old", 3, 3);
        let new = rs("web-new", 1, 0);
        d.status = Some(DeploymentStatus {
            replicas: Some(3),
            available_replicas: Some(3),
            ready_replicas: Some(3),
            conditions: Some(vec![new_condition(
                PROGRESSING,
                "True",
                NEW_RS_CREATED,
                "x",
                &at(100),
            )]),
            ..Default::default()
        });
        let s = rollout(&[&old, &new], Some(&new), &d, &at(110));
        let p = util::condition(&s, PROGRESSING).unwrap();
        assert_eq!(p.reason.as_deref(), Some(RS_UPDATED));
        assert_eq!(p.last_transition_time, Some(at(100)));
        assert_eq!(p.last_update_time, Some(at(110)));
        // No progress for longer than the deadline: timed out.
        d.status = Some(s.clone());
        assert_eq!(requeue_stuck(&d, &s, 110), Some(Duration::from_secs(601)));
        let late = rollout(&[&old, &new], Some(&new), &d, &at(800));
        let p = util::condition(&late, PROGRESSING).unwrap();
        assert_eq!(
            (p.status.as_str(), p.reason.as_deref()),
            ("False", Some(TIMED_OUT))
        );
    }

    #[test]
    fn availability_follows_max_unavailable() {
        // Default strategy: 25% of 4 → 1 may be unavailable.
        let mut d = deployment(4, 1);
        if let Some(s) = d.spec.as_mut() {
            s.strategy = Some(k8s_openapi::api::apps::v1::DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(k8s_openapi::api::apps::v1::RollingUpdateDeployment {
                    max_surge: Some(
                        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(
                            "25%".into(),
                        ),
                    ),
                    max_unavailable: Some(
                        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(
                            "25%".into(),
                        ),
                    ),
                }),
            });
        }
        let three = rs("a", 4, 3);
        let s = calculate(&[&three], Some(&three), &d, &at(1));
        assert_eq!(util::condition(&s, AVAILABLE).unwrap().status, "True");
        assert_eq!(s.unavailable_replicas, Some(1));
        let two = rs("a", 4, 2);
        let s = calculate(&[&two], Some(&two), &d, &at(1));
        let c = util::condition(&s, AVAILABLE).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("False", Some(MIN_UNAVAILABLE))
        );
    }
}
