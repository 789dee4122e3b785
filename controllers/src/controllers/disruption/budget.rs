//! The arithmetic of a PodDisruptionBudget's status, as upstream's
//! disruption controller computes it: desired healthy pods from
//! `minAvailable`/`maxUnavailable` (ints or percentages of the expected
//! pod count), healthy pods, the `disruptedPods` map pruned of pods that
//! are gone or whose eviction is older than the deletion timeout, and the
//! `DisruptionAllowed` condition.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::policy::v1::PodDisruptionBudgetStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use crate::cached_pod::CachedPod;
use crate::controllers::pod_status;

/// How long a pod recorded in `disruptedPods` is expected to take to be
/// deleted before the record is dropped (upstream's `DeletionTimeout`).
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(2 * 60);
/// The condition type on every PDB.
pub const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";
pub const SUFFICIENT_PODS: &str = "SufficientPods";
pub const INSUFFICIENT_PODS: &str = "InsufficientPods";
pub const SYNC_FAILED: &str = "SyncFailed";

/// `intstr.GetScaledValueFromIntOrPercent`: an int as is, `"N%"` of
/// `total`, rounded up or down.
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let pct: i64 = s
                .strip_suffix('%')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            let num = pct * i64::from(total);
            let v = if round_up {
                (num + 99).div_euclid(100)
            } else {
                num.div_euclid(100)
            };
            i32::try_from(v).map_err(|_| format!("invalid value for IntOrString: {s:?} out of range"))
        }
    }
}

/// Whether the budget needs the pods' controllers' scale to be computed
/// (`maxUnavailable`, or a percentage `minAvailable`).
pub fn needs_scale(min_available: Option<&IntOrString>, max_unavailable: Option<&IntOrString>) -> bool {
    max_unavailable.is_some() || matches!(min_available, Some(IntOrString::String(_)))
}

/// `(expectedPods, desiredHealthy)`; `expected_scale` is the summed scale
/// of the pods' controllers, used only when [`needs_scale`].
pub fn expected_and_desired(
    min_available: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    pod_count: i32,
    expected_scale: i32,
) -> Result<(i32, i32), String> {
    if let Some(max) = max_unavailable {
        let max = scaled_value(max, expected_scale, true)?;
        return Ok((expected_scale, (expected_scale - max).max(0)));
    }
    match min_available {
        Some(IntOrString::Int(min)) => Ok((pod_count, *min)),
        Some(min @ IntOrString::String(_)) => Ok((expected_scale, scaled_value(min, expected_scale, true)?)),
        None => Ok((0, 0)),
    }
}

/// The `disruptedPods` entries still in force at `now`, and when the
/// earliest of them expires (the budget must be synced again then).
pub fn prune_disrupted(
    recorded: &BTreeMap<String, Time>,
    pods: &[&CachedPod],
    now: Timestamp,
) -> (BTreeMap<String, Time>, Option<Timestamp>) {
    let mut kept = BTreeMap::new();
    let mut recheck: Option<Timestamp> = None;
    let timeout = k8s_openapi::jiff::SignedDuration::try_from(DELETION_TIMEOUT).unwrap_or_default();
    for (name, at) in recorded {
        let Some(pod) = pods.iter().find(|p| p.metadata.name.as_deref() == Some(name)) else {
            continue;
        };
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Ok(expires) = at.0.checked_add(timeout) else {
            continue;
        };
        if expires <= now {
            tracing::info!(pod = %name, "pod was expected to be deleted but it was not; dropping it from disruptedPods");
            continue;
        }
        recheck = Some(recheck.map_or(expires, |r| r.min(expires)));
        kept.insert(name.clone(), at.clone());
    }
    (kept, recheck)
}

/// Ready pods that are neither being deleted nor recently evicted.
pub fn count_healthy(pods: &[&CachedPod], disrupted: &BTreeMap<String, Time>) -> i32 {
    let n = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| !p.metadata.name.as_ref().is_some_and(|n| disrupted.contains_key(n)))
        .filter(|p| pod_status::is_ready(p))
        .count();
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Sets condition `cond` in `conditions`, keeping `lastTransitionTime` when
/// the status does not change (`meta.SetStatusCondition`).
pub fn set_condition(conditions: &mut Vec<Condition>, mut cond: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == cond.type_) {
        Some(existing) => {
            if existing.status == cond.status {
                cond.last_transition_time = existing.last_transition_time.clone();
            }
            *existing = cond;
        }
        None => conditions.push(cond),
    }
}

fn condition(status: bool, reason: &str, message: String, generation: i64, now: Timestamp) -> Condition {
    Condition {
        type_: DISRUPTION_ALLOWED.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: reason.into(),
        message,
        observed_generation: Some(generation),
        last_transition_time: Time(now),
    }
}

/// The status after a successful sync, from the previous one.
pub fn synced_status(
    old: Option<&PodDisruptionBudgetStatus>,
    generation: i64,
    current_healthy: i32,
    desired_healthy: i32,
    expected_pods: i32,
    disrupted: BTreeMap<String, Time>,
    now: Timestamp,
) -> PodDisruptionBudgetStatus {
    let mut allowed = current_healthy - desired_healthy;
    if expected_pods <= 0 || allowed <= 0 {
        allowed = 0;
    }
    let mut conditions = old.and_then(|s| s.conditions.clone()).unwrap_or_default();
    let cond = if allowed > 0 {
        condition(true, SUFFICIENT_PODS, String::new(), generation, now)
    } else {
        condition(false, INSUFFICIENT_PODS, String::new(), generation, now)
    };
    set_condition(&mut conditions, cond);
    PodDisruptionBudgetStatus {
        current_healthy: Some(current_healthy),
        desired_healthy: Some(desired_healthy),
        expected_pods: Some(expected_pods),
        disruptions_allowed: Some(allowed),
        disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
        observed_generation: Some(generation),
        conditions: Some(conditions),
    }
}

/// The fail-safe status when the sync failed: no disruption allowed, with
/// the error in the condition (upstream's `failSafe`).
pub fn fail_safe_status(
    old: Option<&PodDisruptionBudgetStatus>,
    generation: i64,
    error: &str,
    now: Timestamp,
) -> PodDisruptionBudgetStatus {
    let mut status = old.cloned().unwrap_or_default();
    status.disruptions_allowed = Some(0);
    status.observed_generation = Some(generation);
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    set_condition(
        conditions,
        condition(false, SYNC_FAILED, error.to_string(), generation, now),
    );
    status
}

/// Whether writing `new` over `old` changes anything (transition times of
/// unchanged conditions are kept by [`set_condition`], so equality works).
pub fn changed(old: Option<&PodDisruptionBudgetStatus>, new: &PodDisruptionBudgetStatus) -> bool {
    old != Some(new)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::cached_pod::CachedPodStatus;
    use k8s_openapi::api::core::v1::PodCondition;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn int(i: i32) -> IntOrString {
        IntOrString::Int(i)
    }
    fn pct(s: &str) -> IntOrString {
        IntOrString::String(s.into())
    }

    #[test]
    fn scaled_values_round_like_upstream() {
        assert_eq!(scaled_value(&int(3), 10, true), Ok(3));
        assert_eq!(scaled_value(&pct("50%"), 3, true), Ok(2));
        assert_eq!(scaled_value(&pct("50%"), 3, false), Ok(1));
        assert_eq!(scaled_value(&pct("100%"), 7, true), Ok(7));
        assert_eq!(scaled_value(&pct("0%"), 7, true), Ok(0));
        assert!(scaled_value(&pct("50"), 3, true).is_err());
        assert!(scaled_value(&pct("x%"), 3, true).is_err());
    }

    fn check(min: Option<IntOrString>, max: Option<IntOrString>, pods: i32, scale: i32, expected: (i32, i32)) {
        assert_eq!(
            expected_and_desired(min.as_ref(), max.as_ref(), pods, scale),
            Ok(expected),
            "min={min:?} max={max:?} pods={pods} scale={scale}"
        );
    }

    #[test]
    fn expected_and_desired_counts() {
        // minAvailable int: expected is the number of selected pods.
        check(Some(int(2)), None, 3, 5, (3, 2));
        // minAvailable percent: of the controllers' scale, rounded up.
        check(Some(pct("50%")), None, 3, 5, (5, 3));
        // maxUnavailable int and percent (rounded up), clamped at zero.
        check(None, Some(int(1)), 3, 3, (3, 2));
        check(None, Some(pct("34%")), 3, 3, (3, 1));
        check(None, Some(int(5)), 3, 3, (3, 0));
        check(None, None, 3, 3, (0, 0));
        assert!(needs_scale(None, Some(&int(1))));
        assert!(needs_scale(Some(&pct("10%")), None));
        assert!(!needs_scale(Some(&int(1)), None));
    }

    fn pod(name: &str, ready: bool, deleting: bool) -> CachedPod {
        CachedPod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                deletion_timestamp: deleting.then_some(Time(Timestamp::UNIX_EPOCH)),
                ..ObjectMeta::default()
            },
            status: Some(CachedPodStatus {
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..PodCondition::default()
                }]),
                ..CachedPodStatus::default()
            }),
            ..CachedPod::default()
        }
    }

    #[test]
    fn healthy_excludes_unready_deleting_and_disrupted() {
        let pods = [
            pod("a", true, false),
            pod("b", true, false),
            pod("c", false, false),
            pod("d", true, true),
        ];
        let refs: Vec<&CachedPod> = pods.iter().collect();
        assert_eq!(count_healthy(&refs, &BTreeMap::new()), 2);
        let disrupted = BTreeMap::from([("a".to_string(), Time(Timestamp::now()))]);
        assert_eq!(count_healthy(&refs, &disrupted), 1);
    }

    #[test]
    fn disrupted_pods_are_pruned() {
        let now = Timestamp::from_second(10_000).unwrap();
        let pods = [
            pod("fresh", true, false),
            pod("old", true, false),
            pod("deleting", true, true),
        ];
        let refs: Vec<&CachedPod> = pods.iter().collect();
        let recorded = BTreeMap::from([
            ("fresh".to_string(), Time(Timestamp::from_second(9_990).unwrap())),
            ("old".to_string(), Time(Timestamp::from_second(9_000).unwrap())),
            ("deleting".to_string(), Time(now)),
            ("gone".to_string(), Time(now)),
        ]);
        let (kept, recheck) = prune_disrupted(&recorded, &refs, now);
        assert_eq!(kept.keys().collect::<Vec<_>>(), vec!["fresh"]);
        assert_eq!(recheck, Some(Timestamp::from_second(10_110).unwrap()));
    }

    #[test]
    fn status_and_condition() {
        let now = Timestamp::from_second(100).unwrap();
        let s = synced_status(None, 3, 3, 2, 3, BTreeMap::new(), now);
        assert_eq!(s.disruptions_allowed, Some(1));
        assert_eq!(s.observed_generation, Some(3));
        let c = &s.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
            ("DisruptionAllowed", "True", "SufficientPods")
        );
        // Same outcome later: nothing changes, transition time kept.
        let later = Timestamp::from_second(200).unwrap();
        let again = synced_status(Some(&s), 3, 3, 2, 3, BTreeMap::new(), later);
        assert!(!changed(Some(&s), &again));
        // No expected pods: nothing allowed even if healthy exceeds desired.
        let none = synced_status(Some(&s), 3, 1, 0, 0, BTreeMap::new(), later);
        assert_eq!(none.disruptions_allowed, Some(0));
        let c = &none.conditions.as_ref().unwrap()[0];
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "InsufficientPods"));
        assert_eq!(c.last_transition_time, Time(later));
        let failed = fail_safe_status(Some(&s), 4, "found no controllers for pod \"x\"", later);
        assert_eq!(failed.disruptions_allowed, Some(0));
        assert_eq!(failed.current_healthy, Some(3));
        let c = &failed.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.reason.as_str(), c.message.as_str()),
            ("SyncFailed", "found no controllers for pod \"x\"")
        );
    }
}
