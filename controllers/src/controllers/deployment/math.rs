//! The pure arithmetic of rollouts (upstream `deployment/util`):
//! maxSurge/maxUnavailable resolution, how far the new ReplicaSet may
//! grow, how far old ones may shrink, and proportional scaling of every
//! active ReplicaSet when a Deployment is resized mid-rollout.

use std::cmp::Ordering;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Annotation: the Deployment's replicas when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// Annotation: replicas + maxSurge when the ReplicaSet was last scaled.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";

/// `spec.replicas` of a ReplicaSet (0 when unset here, as upstream's
/// `*(rs.Spec.Replicas)` after defaulting).
pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

/// `spec.replicas` of a Deployment (defaulted to 1).
pub fn d_replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0)
}

/// An int-or-percent resolved against `total` (percentages rounded up or
/// down). Mirrors `intstr.GetScaledValueFromIntOrPercent`.
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let pct: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| "invalid value for IntOrString: invalid type: string is not a percentage".to_string())?;
            let scaled = pct * i64::from(total);
            let v = if round_up {
                (scaled + 99).div_euclid(100)
            } else {
                scaled.div_euclid(100)
            };
            i32::try_from(v).map_err(|_| format!("invalid value {s}"))
        }
    }
}

/// `(maxSurge, maxUnavailable)` against `desired`; both 0 becomes
/// unavailable 1 so a rollout can progress.
pub fn resolve_fenceposts(
    surge: Option<&IntOrString>,
    unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32), String> {
    let zero = IntOrString::Int(0);
    let surge = scaled_value(surge.unwrap_or(&zero), desired, true)?;
    let unavailable = scaled_value(unavailable.unwrap_or(&zero), desired, false)?;
    if surge == 0 && unavailable == 0 {
        return Ok((0, 1));
    }
    Ok((surge, unavailable))
}

/// Whether the Deployment uses the RollingUpdate strategy (the default).
pub fn is_rolling(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate")
}

fn fenceposts(d: &Deployment) -> (i32, i32) {
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let default = IntOrString::String("25%".into());
    let surge = ru.and_then(|r| r.max_surge.as_ref()).unwrap_or(&default);
    let unavailable = ru.and_then(|r| r.max_unavailable.as_ref()).unwrap_or(&default);
    resolve_fenceposts(Some(surge), Some(unavailable), d_replicas(d)).unwrap_or((0, 1))
}

/// The resolved maxSurge (0 for Recreate).
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling(d) {
        return 0;
    }
    fenceposts(d).0
}

/// The resolved maxUnavailable, at most `replicas` (0 for Recreate).
pub fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling(d) || d_replicas(d) == 0 {
        return 0;
    }
    fenceposts(d).1.min(d_replicas(d))
}

/// Sum of `spec.replicas` over ReplicaSets.
pub fn replica_count(rss: &[&ReplicaSet]) -> i32 {
    rss.iter().map(|rs| rs_replicas(rs)).sum()
}

/// How many replicas the new ReplicaSet should have now (upstream
/// `NewRSNewReplicas`): for RollingUpdate, grow up to replicas + maxSurge
/// pods in total; for Recreate, all of them.
pub fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new_rs_replicas: i32) -> i32 {
    let desired = d_replicas(d);
    if !is_rolling(d) {
        return desired;
    }
    if new_rs_replicas == desired {
        return new_rs_replicas;
    }
    let max_total = desired + max_surge(d);
    let current = replica_count(all);
    if current >= max_total {
        return new_rs_replicas;
    }
    let scale_up = (max_total - current).min(desired - new_rs_replicas);
    new_rs_replicas + scale_up
}

/// How many old replicas may be scaled down now without dropping below
/// replicas - maxUnavailable available pods, counting the new
/// ReplicaSet's unavailable pods as already missing.
pub fn max_scaled_down(d: &Deployment, all: &[&ReplicaSet], new_rs: Option<&ReplicaSet>) -> i32 {
    let min_available = d_replicas(d) - max_unavailable(d);
    let new_unavailable = new_rs.map(|rs| rs_replicas(rs) - rs_available(rs)).unwrap_or(0);
    replica_count(all) - min_available - new_unavailable
}

/// Older first (creation time, then name), upstream's
/// `ReplicaSetsByCreationTimestamp`.
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let ta = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let tb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
    ta.cmp(&tb).then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// Larger first, newer first among equals (`ReplicaSetsBySizeNewer`).
fn by_size_newer(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_replicas(b).cmp(&rs_replicas(a)).then_with(|| by_creation(b, a))
}

/// Larger first, older first among equals (`ReplicaSetsBySizeOlder`).
fn by_size_older(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_replicas(b).cmp(&rs_replicas(a)).then_with(|| by_creation(a, b))
}

fn annotation_i32(rs: &ReplicaSet, key: &str) -> Option<i32> {
    rs.metadata.annotations.as_ref()?.get(key)?.parse().ok()
}

/// The replicas each active ReplicaSet should have after the Deployment
/// was resized mid-rollout (upstream `scale` for RollingUpdate):
/// the difference between replicas + maxSurge and what all active
/// ReplicaSets have is shared in proportion to each one's size (as
/// recorded in its max-replicas annotation); the rounding leftover goes
/// to the largest. Returns `(name, new size)` for each of `active`.
pub fn proportional_sizes(d: &Deployment, active: &[&ReplicaSet]) -> Vec<(String, i32)> {
    let desired = d_replicas(d);
    let all_replicas = replica_count(active);
    let allowed = if desired > 0 { desired + max_surge(d) } else { 0 };
    let to_add = allowed - all_replicas;
    let mut sorted: Vec<&ReplicaSet> = active.to_vec();
    if to_add > 0 {
        sorted.sort_by(|a, b| by_size_newer(a, b));
    } else {
        sorted.sort_by(|a, b| by_size_older(a, b));
    }
    let status_replicas = d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let mut added = 0;
    let mut sizes: Vec<(String, i32)> = Vec::with_capacity(sorted.len());
    for rs in &sorted {
        let current = rs_replicas(rs);
        let mut proportion = 0;
        if to_add != 0 && current != 0 && to_add != added {
            let fraction = if desired == 0 {
                -current
            } else {
                let deployment_replicas = desired + max_surge(d);
                let annotated = annotation_i32(rs, MAX_REPLICAS).unwrap_or(status_replicas);
                if annotated == 0 {
                    0
                } else {
                    let new_size = f64::from(current) * f64::from(deployment_replicas) / f64::from(annotated);
                    (new_size.round() as i32) - current
                }
            };
            let allowed = to_add - added;
            proportion = if to_add > 0 {
                fraction.min(allowed)
            } else {
                fraction.max(allowed)
            };
        }
        added += proportion;
        sizes.push((rs.metadata.name.clone().unwrap_or_default(), current + proportion));
    }
    if let Some(first) = sizes.first_mut()
        && to_add != 0
    {
        first.1 = (first.1 + to_add - added).max(0);
    }
    sizes
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn deployment(
        replicas: i32,
        surge: serde_json::Value,
        unavailable: serde_json::Value,
        status_replicas: i32,
    ) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "d"},
            "spec": {"replicas": replicas, "selector": {}, "template": {},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}},
            "status": {"replicas": status_replicas},
        }))
        .unwrap()
    }

    fn rs(name: &str, replicas: i32, available: i32, created: &str, max_replicas: Option<i32>) -> ReplicaSet {
        let annotations = match max_replicas {
            Some(m) => json!({MAX_REPLICAS: m.to_string()}),
            None => json!({}),
        };
        serde_json::from_value(json!({
            "metadata": {"name": name, "creationTimestamp": created, "annotations": annotations},
            "spec": {"replicas": replicas, "selector": {}},
            "status": {"replicas": replicas, "availableReplicas": available},
        }))
        .unwrap()
    }

    #[test]
    fn fenceposts() {
        let check = |s: IntOrString, u: IntOrString, desired, expected| {
            assert_eq!(
                resolve_fenceposts(Some(&s), Some(&u), desired).unwrap(),
                expected,
                "{s:?} {u:?} {desired}"
            );
        };
        use IntOrString::{Int, String as S};
        check(S("25%".into()), S("25%".into()), 10, (3, 2));
        check(S("25%".into()), S("25%".into()), 3, (1, 0));
        check(Int(0), Int(0), 5, (0, 1));
        check(Int(2), S("50%".into()), 5, (2, 2));
        check(S("100%".into()), Int(0), 4, (4, 0));
        assert!(resolve_fenceposts(Some(&S("x".into())), None, 3).is_err());
    }

    #[test]
    fn rolling_step_math() {
        // 3 replicas, maxSurge 1, maxUnavailable 0: the new RS grows one
        // pod at a time, old ones shrink only as new pods become available.
        let d = deployment(3, json!(1), json!(0), 3);
        let old = rs("old", 3, 3, "2026-01-01T00:00:00Z", Some(4));
        let new0 = rs("new", 0, 0, "2026-01-02T00:00:00Z", Some(4));
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new0], 0), 1);
        let new1 = rs("new", 1, 0, "2026-01-02T00:00:00Z", Some(4));
        assert_eq!(
            new_rs_new_replicas(&d, &[&old, &new1], 1),
            1,
            "at replicas+maxSurge: wait"
        );
        assert_eq!(
            max_scaled_down(&d, &[&old, &new1], Some(&new1)),
            0,
            "new pod not available yet"
        );
        let new1a = rs("new", 1, 1, "2026-01-02T00:00:00Z", Some(4));
        assert_eq!(max_scaled_down(&d, &[&old, &new1a], Some(&new1a)), 1);
        // Recreate: everything at once.
        let mut r = d.clone();
        r.spec.as_mut().unwrap().strategy = serde_json::from_value(json!({"type": "Recreate"})).unwrap();
        assert_eq!(new_rs_new_replicas(&r, &[&old, &new0], 0), 3);
        assert_eq!((max_surge(&r), max_unavailable(&r)), (0, 0));
    }

    #[test]
    fn proportional_scaling_mid_rollout() {
        // Upstream's example: 10 replicas (maxSurge 3) split 8 old / 5 new
        // (13 = 10 + 3), scaled to 15 (+maxSurge 3 = 18): 5 more shared
        // 8:5 -> old gets 3, new gets 2.
        let mut d = deployment(15, json!(3), json!(2), 13);
        let old = rs("old", 8, 8, "2026-01-01T00:00:00Z", Some(13));
        let new = rs("new", 5, 0, "2026-01-02T00:00:00Z", Some(13));
        let sizes = proportional_sizes(&d, &[&old, &new]);
        let get = |n: &str| sizes.iter().find(|(name, _)| name == n).unwrap().1;
        assert_eq!((get("old"), get("new")), (11, 7));
        assert_eq!(get("old") + get("new"), 18);
        // Scaled down to 0: everything goes.
        d.spec.as_mut().unwrap().replicas = Some(0);
        let sizes = proportional_sizes(&d, &[&old, &new]);
        assert!(sizes.iter().all(|(_, n)| *n == 0), "{sizes:?}");
    }
}
