//! Which pods to delete first when scaling down (upstream
//! `ActivePodsWithRanks`): unscheduled before scheduled, Pending before
//! Unknown before Running, not ready before ready, lower
//! `controller.kubernetes.io/pod-deletion-cost` first, pods doubled up on
//! a node with related pods first, ready more recently first, more
//! container restarts first, created more recently first. Times are
//! compared in logarithmic buckets of their age (LogarithmicScaleDown, GA
//! since 1.31), ties broken by uid.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;

use crate::cached_pod::CachedPod;
use crate::controllers::pod_status::{phase, ready_since};

/// The annotation whose integer value orders deletion (lower first).
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

fn node(pod: &CachedPod) -> &str {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("")
}

fn phase_rank(pod: &CachedPod) -> u8 {
    match phase(pod) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

fn deletion_cost(pod: &CachedPod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn max_restarts(pod: &CachedPod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().map(|c| c.restart_count).max())
        .unwrap_or(0)
}

/// floor(log2(age in ns)), or -1 when not in the past.
fn log_rank(t: Timestamp, now: Timestamp) -> i64 {
    let nanos = now.as_nanosecond() - t.as_nanosecond();
    if nanos <= 0 {
        return -1;
    }
    // i128 of a positive value: 127 - leading zeros is floor(log2).
    127 - i64::from(nanos.leading_zeros())
}

/// `Less` for two times where "newer" and "missing" delete first.
fn newer_first(a: Option<Timestamp>, b: Option<Timestamp>, now: Timestamp, a_uid: &str, b_uid: &str) -> Option<bool> {
    match (a, b) {
        (None, None) => None,
        (None, Some(_)) => Some(true),
        (Some(_), None) => Some(false),
        (Some(a), Some(b)) if a == b => None,
        (Some(a), Some(b)) => {
            let diff = log_rank(a, now) - log_rank(b, now);
            if diff == 0 { Some(a_uid < b_uid) } else { Some(diff < 0) }
        }
    }
}

/// Whether pod `a` (with `rank_a` related pods on its node) should be
/// deleted before `b`.
fn less(a: &CachedPod, rank_a: usize, b: &CachedPod, rank_b: usize, now: Timestamp) -> bool {
    let (na, nb) = (node(a), node(b));
    if na.is_empty() != nb.is_empty() {
        return na.is_empty();
    }
    if phase_rank(a) != phase_rank(b) {
        return phase_rank(a) < phase_rank(b);
    }
    let (ra, rb) = (ready_since(a), ready_since(b));
    if ra.is_some() != rb.is_some() {
        return ra.is_none();
    }
    if deletion_cost(a) != deletion_cost(b) {
        return deletion_cost(a) < deletion_cost(b);
    }
    if rank_a != rank_b {
        return rank_a > rank_b;
    }
    let (ua, ub) = (
        a.metadata.uid.as_deref().unwrap_or(""),
        b.metadata.uid.as_deref().unwrap_or(""),
    );
    if let (Some(ta), Some(tb)) = (ra, rb)
        && let Some(r) = newer_first(ta, tb, now, ua, ub)
    {
        return r;
    }
    if max_restarts(a) != max_restarts(b) {
        return max_restarts(a) > max_restarts(b);
    }
    let ca = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let cb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
    newer_first(ca, cb, now, ua, ub).unwrap_or(false)
}

/// The `count` pods of `pods` to delete first. `related` are the active
/// pods of the same controller family (siblings under one Deployment),
/// used to rank pods doubled up on one node.
pub fn pods_to_delete(
    pods: &[Arc<CachedPod>],
    related: &[Arc<CachedPod>],
    count: usize,
    now: Timestamp,
) -> Vec<Arc<CachedPod>> {
    if count >= pods.len() {
        return pods.to_vec();
    }
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for p in related {
        let n = node(p);
        if !n.is_empty() {
            *per_node.entry(n).or_default() += 1;
        }
    }
    let mut ranked: Vec<(usize, &Arc<CachedPod>)> = pods
        .iter()
        .map(|p| (per_node.get(node(p)).copied().unwrap_or(0), p))
        .collect();
    ranked.sort_by(|(ra, a), (rb, b)| {
        if less(a, *ra, b, *rb, now) {
            Ordering::Less
        } else if less(b, *rb, a, *ra, now) {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    });
    ranked.into_iter().take(count).map(|(_, p)| p.clone()).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    const NOW: &str = "2026-01-01T12:00:00Z";

    fn pod(name: &str, node: &str, phase: &str, ready_at: Option<&str>, created: &str) -> Arc<CachedPod> {
        let conditions = match ready_at {
            Some(t) => json!([{"type": "Ready", "status": "True", "lastTransitionTime": t}]),
            None => json!([{"type": "Ready", "status": "False"}]),
        };
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "uid": format!("uid-{name}"), "creationTimestamp": created},
                "spec": {"nodeName": node, "containers": []},
                "status": {"phase": phase, "conditions": conditions},
            }))
            .unwrap(),
        )
    }

    fn check(pods: &[Arc<CachedPod>], expected_order: &[&str]) {
        let now: Timestamp = NOW.parse().unwrap();
        let got: Vec<String> = pods_to_delete(pods, pods, pods.len() - 1, now)
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(got, expected_order[..expected_order.len() - 1]);
    }

    #[test]
    fn unscheduled_pending_not_ready_first() {
        let t = "2026-01-01T10:00:00Z";
        check(
            &[
                pod("running-ready", "n1", "Running", Some(t), t),
                pod("unscheduled", "", "Pending", None, t),
                pod("running-not-ready", "n2", "Running", None, t),
                pod("pending", "n3", "Pending", None, t),
            ],
            &["unscheduled", "pending", "running-not-ready", "running-ready"],
        );
    }

    #[test]
    fn doubled_up_then_newer_first() {
        let old = "2025-12-01T00:00:00Z";
        let new = "2026-01-01T11:59:00Z";
        check(
            &[
                pod("alone-old", "n1", "Running", Some(old), old),
                pod("alone-new", "n2", "Running", Some(new), new),
                pod("double-a", "n3", "Running", Some(old), old),
                pod("double-b", "n3", "Running", Some(old), old),
            ],
            &["double-a", "double-b", "alone-new", "alone-old"],
        );
    }

    #[test]
    fn deletion_cost_wins_over_age() {
        let old = "2025-12-01T00:00:00Z";
        let new = "2026-01-01T11:59:00Z";
        let mut cheap = (*pod("old-cheap", "n1", "Running", Some(old), old)).clone();
        cheap.metadata.annotations = Some([(POD_DELETION_COST.to_string(), "-5".to_string())].into());
        check(
            &[pod("new", "n2", "Running", Some(new), new), Arc::new(cheap)],
            &["old-cheap", "new"],
        );
    }

    #[test]
    fn deleting_all_returns_all() {
        let t = "2026-01-01T10:00:00Z";
        let pods = [pod("a", "", "Pending", None, t)];
        assert_eq!(pods_to_delete(&pods, &pods, 3, NOW.parse().unwrap()).len(), 1);
    }
}
