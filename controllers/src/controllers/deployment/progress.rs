//! A Deployment's status and its Progressing and Available conditions
//! (upstream `calculateStatus`, `syncRolloutStatus`,
//! `checkPausedConditions`), with `progressDeadlineSeconds`.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::math::{d_replicas, max_unavailable, rs_replicas};

pub const PROGRESSING: &str = "Progressing";
pub const AVAILABLE: &str = "Available";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

pub const NEW_RS_REASON: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS_REASON: &str = "FoundNewReplicaSet";
pub const RS_UPDATED_REASON: &str = "ReplicaSetUpdated";
pub const NEW_RS_AVAILABLE_REASON: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT_REASON: &str = "ProgressDeadlineExceeded";
pub const PAUSED_REASON: &str = "DeploymentPaused";
pub const RESUMED_REASON: &str = "DeploymentResumed";
pub const FAILED_RS_CREATE_REASON: &str = "ReplicaSetCreateError";
pub const MIN_AVAILABLE_REASON: &str = "MinimumReplicasAvailable";
pub const MIN_UNAVAILABLE_REASON: &str = "MinimumReplicasUnavailable";

/// A condition stamped `now` (both times).
pub fn condition(type_: &str, status: &str, reason: &str, message: String, now: Timestamp) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

pub fn get_condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// Sets `cond` unless one with the same status and reason exists; keeps
/// the transition time when only the reason changes.
pub fn set_condition(status: &mut DeploymentStatus, mut cond: DeploymentCondition) {
    if let Some(current) = get_condition(status, &cond.type_) {
        if current.status == cond.status && current.reason == cond.reason {
            return;
        }
        if current.status == cond.status {
            cond.last_transition_time = current.last_transition_time.clone();
        }
    }
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    conditions.retain(|c| c.type_ != cond.type_);
    conditions.push(cond);
}

pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(c) = status.conditions.as_mut() {
        c.retain(|c| c.type_ != type_);
    }
}

/// Whether `progressDeadlineSeconds` is set (and not "forever").
pub fn has_progress_deadline(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .is_some_and(|s| s != i32::MAX)
}

fn sum(rss: &[&ReplicaSet], f: impl Fn(&ReplicaSet) -> Option<i32>) -> i32 {
    rss.iter().map(|rs| f(rs).unwrap_or(0)).sum()
}

/// The status from the ReplicaSets, keeping conditions and setting
/// Available.
pub fn calculate_status(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    now: Timestamp,
) -> DeploymentStatus {
    let available = sum(all, |rs| rs.status.as_ref().and_then(|s| s.available_replicas));
    let total = sum(all, |rs| Some(rs_replicas(rs)));
    let old = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(sum(all, |rs| rs.status.as_ref().map(|s| s.replicas))),
        updated_replicas: Some(
            new_rs
                .and_then(|rs| rs.status.as_ref())
                .map(|s| s.replicas)
                .unwrap_or(0),
        ),
        ready_replicas: Some(sum(all, |rs| rs.status.as_ref().and_then(|s| s.ready_replicas))),
        available_replicas: Some(available),
        unavailable_replicas: Some((total - available).max(0)),
        terminating_replicas: Some(sum(all, |rs| rs.status.as_ref().and_then(|s| s.terminating_replicas))),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
    };
    if available >= d_replicas(d) - max_unavailable(d) {
        set_condition(
            &mut status,
            condition(
                AVAILABLE,
                "True",
                MIN_AVAILABLE_REASON,
                "Deployment has minimum availability.".into(),
                now,
            ),
        );
    } else {
        set_condition(
            &mut status,
            condition(
                AVAILABLE,
                "False",
                MIN_UNAVAILABLE_REASON,
                "Deployment does not have minimum availability.".into(),
                now,
            ),
        );
    }
    status
}

/// Every replica is updated and available and the latest spec observed.
pub fn deployment_complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let replicas = d_replicas(d);
    status.updated_replicas == Some(replicas)
        && status.replicas == Some(replicas)
        && status.available_replicas == Some(replicas)
        && status.observed_generation >= d.metadata.generation
}

/// The rollout moved since the last status: more updated, ready or
/// available pods, or fewer old ones.
pub fn deployment_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let g = |v: Option<i32>| v.unwrap_or(0);
    let old_old = g(old.replicas) - g(old.updated_replicas);
    let new_old = g(new.replicas) - g(new.updated_replicas);
    g(new.updated_replicas) > g(old.updated_replicas)
        || new_old < old_old
        || g(new.ready_replicas) > g(old.ready_replicas)
        || g(new.available_replicas) > g(old.available_replicas)
}

/// The Progressing condition was last updated more than
/// `progressDeadlineSeconds` ago (and is not complete or already failed).
pub fn deployment_timed_out(d: &Deployment, status: &DeploymentStatus, now: Timestamp) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(cond) = get_condition(status, PROGRESSING) else {
        return false;
    };
    match cond.reason.as_deref() {
        Some(NEW_RS_AVAILABLE_REASON) => return false,
        Some(TIMED_OUT_REASON) => return true,
        _ => {}
    }
    let deadline = i64::from(d.spec.as_ref().and_then(|s| s.progress_deadline_seconds).unwrap_or(600));
    let Some(from) = cond.last_update_time.as_ref() else {
        return false;
    };
    from.0.as_second() + deadline < now.as_second()
}

/// The status a rollout step ends with (upstream `syncRolloutStatus`
/// without the write): Progressing per the rules above, ReplicaFailure
/// copied from the new ReplicaSet.
pub fn rollout_status(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    now: Timestamp,
) -> DeploymentStatus {
    let mut status = calculate_status(d, all, new_rs, now);
    if !has_progress_deadline(d) {
        remove_condition(&mut status, PROGRESSING);
    }
    let current = get_condition(&status, PROGRESSING).cloned();
    let complete_already = status.replicas == status.updated_replicas
        && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(NEW_RS_AVAILABLE_REASON);
    let name = d.metadata.name.clone().unwrap_or_default();
    let who = |what: &str| match new_rs {
        Some(rs) => format!("ReplicaSet {:?} {what}", rs.metadata.name.clone().unwrap_or_default()),
        None => format!("Deployment {name:?} {what}"),
    };
    if has_progress_deadline(d) && !complete_already {
        if deployment_complete(d, &status) {
            set_condition(
                &mut status,
                condition(
                    PROGRESSING,
                    "True",
                    NEW_RS_AVAILABLE_REASON,
                    who("has successfully progressed."),
                    now,
                ),
            );
        } else if deployment_progressing(d, &status) {
            let mut cond = condition(PROGRESSING, "True", RS_UPDATED_REASON, who("is progressing."), now);
            if let Some(c) = &current
                && c.status == "True"
            {
                cond.last_transition_time = c.last_transition_time.clone();
            }
            remove_condition(&mut status, PROGRESSING);
            set_condition(&mut status, cond);
        } else if deployment_timed_out(d, &status, now) {
            set_condition(
                &mut status,
                condition(
                    PROGRESSING,
                    "False",
                    TIMED_OUT_REASON,
                    who("has timed out progressing."),
                    now,
                ),
            );
        }
    }
    let failure = new_rs
        .and_then(|rs| rs.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == REPLICA_FAILURE).cloned());
    match failure {
        Some(f) => set_condition(
            &mut status,
            DeploymentCondition {
                type_: REPLICA_FAILURE.into(),
                status: f.status,
                reason: f.reason,
                message: f.message,
                last_update_time: f.last_transition_time.clone(),
                last_transition_time: f.last_transition_time,
            },
        ),
        None => remove_condition(&mut status, REPLICA_FAILURE),
    }
    if status.conditions.as_ref().is_some_and(Vec::is_empty) {
        status.conditions = None;
    }
    status
}

/// Seconds until a progressing Deployment times out, to requeue then
/// (upstream `requeueStuckDeployment`); `None` when not applicable.
pub fn stuck_requeue_after(d: &Deployment, status: &DeploymentStatus, now: Timestamp) -> Option<u64> {
    let cond = get_condition(status, PROGRESSING)?;
    if !has_progress_deadline(d) || deployment_complete(d, status) || cond.reason.as_deref() == Some(TIMED_OUT_REASON) {
        return None;
    }
    let deadline = i64::from(d.spec.as_ref().and_then(|s| s.progress_deadline_seconds)?);
    let updated = cond.last_update_time.as_ref()?.0.as_second();
    let after = updated + deadline - now.as_second();
    Some(u64::try_from(after.max(0)).unwrap_or(0) + 1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn d(status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": 2, "selector": {}, "template": {}, "progressDeadlineSeconds": 600,
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}},
            "status": status,
        }))
        .unwrap()
    }

    fn rs(replicas: i32, ready: i32) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web-abc"},
            "spec": {"replicas": replicas, "selector": {}},
            "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready},
        }))
        .unwrap()
    }

    fn cond<'a>(s: &'a DeploymentStatus, t: &str) -> (&'a str, &'a str, &'a str) {
        let c = get_condition(s, t).unwrap();
        (
            c.status.as_str(),
            c.reason.as_deref().unwrap(),
            c.message.as_deref().unwrap(),
        )
    }

    #[test]
    fn progressing_then_complete() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let new = rs(2, 1);
        let s = rollout_status(&d(json!({})), &[&new], Some(&new), now);
        assert_eq!(
            cond(&s, PROGRESSING),
            ("True", RS_UPDATED_REASON, "ReplicaSet \"web-abc\" is progressing.")
        );
        assert_eq!(
            cond(&s, AVAILABLE),
            (
                "False",
                MIN_UNAVAILABLE_REASON,
                "Deployment does not have minimum availability."
            )
        );
        assert_eq!(s.unavailable_replicas, Some(1));
        assert_eq!(s.observed_generation, Some(2));

        let done = rs(2, 2);
        let s = rollout_status(&d(serde_json::to_value(&s).unwrap()), &[&done], Some(&done), now);
        assert_eq!(
            cond(&s, PROGRESSING),
            (
                "True",
                NEW_RS_AVAILABLE_REASON,
                "ReplicaSet \"web-abc\" has successfully progressed."
            )
        );
        assert_eq!(cond(&s, AVAILABLE).0, "True");
        assert_eq!(stuck_requeue_after(&d(json!({})), &s, now), None);
    }

    #[test]
    fn no_progress_past_the_deadline_times_out() {
        let then: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let later: Timestamp = "2026-01-01T00:11:00Z".parse().unwrap();
        let new = rs(2, 1);
        let s = rollout_status(&d(json!({})), &[&new], Some(&new), then);
        let dep = d(serde_json::to_value(&s).unwrap());
        assert_eq!(stuck_requeue_after(&dep, &s, then), Some(601));
        let s = rollout_status(&dep, &[&new], Some(&new), later);
        assert_eq!(
            cond(&s, PROGRESSING),
            (
                "False",
                TIMED_OUT_REASON,
                "ReplicaSet \"web-abc\" has timed out progressing."
            )
        );
    }
}
