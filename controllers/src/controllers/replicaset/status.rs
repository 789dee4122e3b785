//! A ReplicaSet's status from its pods (upstream
//! `calculateStatus`): replicas, fullyLabeledReplicas, readyReplicas,
//! availableReplicas (ready for minReadySeconds), terminatingReplicas,
//! observedGeneration, and the ReplicaFailure condition.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::cached_pod::CachedPod;
use crate::controllers::pod_status::{is_available, is_ready};

/// The condition type set while pods cannot be created or deleted.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The new status. `manage_error` is the error of this sync's creations
/// or deletions, with `diff` = active pods - desired replicas.
pub fn calculate_status(
    rs: &ReplicaSet,
    pods: &[Arc<CachedPod>],
    terminating: usize,
    manage_error: Option<&str>,
    now: Timestamp,
) -> ReplicaSetStatus {
    let mut status = rs.status.clone().unwrap_or_default();
    let spec = rs.spec.as_ref();
    let template_labels = spec
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let min_ready = spec.and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let fully_labeled = pods
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.as_ref();
            template_labels
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        })
        .count();
    let ready = pods.iter().filter(|p| is_ready(p)).count();
    let available = pods.iter().filter(|p| is_available(p, min_ready, now)).count();
    let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
    let diff = count(pods.len()) - desired;
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let has_failure = conditions.iter().any(|c| c.type_ == REPLICA_FAILURE);
    match manage_error {
        Some(err) if !has_failure => conditions.push(ReplicaSetCondition {
            type_: REPLICA_FAILURE.into(),
            status: "True".into(),
            reason: Some(if diff < 0 { "FailedCreate" } else { "FailedDelete" }.into()),
            message: Some(err.to_string()),
            last_transition_time: Some(Time(now)),
        }),
        None if has_failure => conditions.retain(|c| c.type_ != REPLICA_FAILURE),
        _ => {}
    }
    if status.conditions.as_ref().is_some_and(Vec::is_empty) {
        status.conditions = None;
    }
    status.replicas = count(pods.len());
    status.fully_labeled_replicas = Some(count(fully_labeled));
    status.ready_replicas = Some(count(ready));
    status.available_replicas = Some(count(available));
    status.terminating_replicas = Some(count(terminating));
    status.observed_generation = rs.metadata.generation;
    status
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn pod(labels: serde_json::Value, ready_at: Option<&str>) -> Arc<CachedPod> {
        let conditions = match ready_at {
            Some(t) => json!([{"type": "Ready", "status": "True", "lastTransitionTime": t}]),
            None => json!([]),
        };
        Arc::new(
            serde_json::from_value(
                json!({"metadata": {"name": "p", "labels": labels}, "status": {"conditions": conditions}}),
            )
            .unwrap(),
        )
    }

    #[test]
    fn counts_and_failure_condition() {
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "rs", "generation": 4},
            "spec": {"replicas": 4, "minReadySeconds": 60, "selector": {"matchLabels": {"app": "a"}},
                     "template": {"metadata": {"labels": {"app": "a", "tier": "t"}}}},
        }))
        .unwrap();
        let now: Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
        let pods = [
            pod(json!({"app": "a", "tier": "t"}), Some("2026-01-01T11:00:00Z")),
            pod(json!({"app": "a", "tier": "t"}), Some("2026-01-01T11:59:30Z")),
            pod(json!({"app": "a"}), None),
        ];
        let s = calculate_status(&rs, &pods, 1, Some("quota exceeded"), now);
        assert_eq!(s.replicas, 3);
        assert_eq!(s.fully_labeled_replicas, Some(2));
        assert_eq!(s.ready_replicas, Some(2));
        assert_eq!(
            s.available_replicas,
            Some(1),
            "one pod is ready for less than minReadySeconds"
        );
        assert_eq!(s.terminating_replicas, Some(1));
        assert_eq!(s.observed_generation, Some(4));
        let cond = &s.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (cond.type_.as_str(), cond.reason.as_deref()),
            (REPLICA_FAILURE, Some("FailedCreate"))
        );

        let mut rs2 = rs.clone();
        rs2.status = Some(s);
        let s = calculate_status(&rs2, &pods, 0, None, now);
        assert_eq!(s.conditions, None, "the failure clears once a sync succeeds");
    }
}
