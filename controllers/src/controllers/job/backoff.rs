//! Pod failure back-off (upstream's `backoff_utils.go`): after failures, a
//! Job waits 10 s, 20 s, 40 s, ... (capped at 10 minutes, upstream's
//! `MaxJobPodFailureBackOff`) from its last failure before creating the
//! next pod. A success resets the count. Per-index back-off
//! (`backoffLimitPerIndex`) counts an index's failures in its pods'
//! `batch.kubernetes.io/job-index-failure-count` annotation instead.

use std::time::Duration;

use crate::cached_pod::CachedPod;
use k8s_openapi::jiff::Timestamp;

/// The first delay after a failure.
pub const DEFAULT_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
/// The longest delay.
pub const MAX_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(600);

/// A Job's failures since its last success.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackoffRecord {
    pub failures_after_last_success: u32,
    pub last_failure_time: Option<Timestamp>,
}

/// When the pod finished: its containers' latest `finishedAt`, else when
/// it stopped being Ready, else its deletion, else its creation.
pub fn finish_time(pod: &CachedPod) -> Timestamp {
    let status = pod.status.as_ref();
    let from_containers = status
        .into_iter()
        .flat_map(|s| {
            s.container_statuses
                .iter()
                .flatten()
                .chain(s.init_container_statuses.iter().flatten())
        })
        .filter_map(|cs| cs.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max();
    if let Some(t) = from_containers {
        return t;
    }
    let ready_false = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready" && c.status == "False"))
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0);
    if let Some(t) = ready_false {
        return t;
    }
    if let Some(t) = pod.metadata.deletion_timestamp.as_ref() {
        return t.0;
    }
    pod.metadata
        .creation_timestamp
        .as_ref()
        .map_or(Timestamp::UNIX_EPOCH, |t| t.0)
}

impl BackoffRecord {
    /// The record after newly finished pods were counted.
    pub fn with_finished(&self, succeeded: &[&CachedPod], failed: &[&CachedPod]) -> BackoffRecord {
        let last_failure = failed.iter().map(|p| finish_time(p)).max();
        let last_success = succeeded.iter().map(|p| finish_time(p)).max();
        match (last_success, last_failure) {
            (None, None) => self.clone(),
            (None, Some(f)) => BackoffRecord {
                failures_after_last_success: self.failures_after_last_success
                    + u32::try_from(failed.len()).unwrap_or(u32::MAX),
                last_failure_time: Some(f),
            },
            (Some(_), None) => BackoffRecord::default(),
            (Some(s), Some(_)) => {
                let after: Vec<Timestamp> = failed.iter().map(|p| finish_time(p)).filter(|t| *t > s).collect();
                match after.iter().max() {
                    None => BackoffRecord::default(),
                    Some(f) => BackoffRecord {
                        failures_after_last_success: u32::try_from(after.len()).unwrap_or(u32::MAX),
                        last_failure_time: Some(*f),
                    },
                }
            }
        }
    }

    /// How long pod creation must still wait at `now`.
    pub fn remaining(&self, now: Timestamp) -> Duration {
        remaining_for_failures(self.failures_after_last_success, self.last_failure_time, now)
    }
}

/// The wait left at `now` after `failures` failures, the last at `last`.
pub fn remaining_for_failures(failures: u32, last: Option<Timestamp>, now: Timestamp) -> Duration {
    let Some(last) = last else {
        return Duration::ZERO;
    };
    if failures == 0 {
        return Duration::ZERO;
    }
    let mut delay = DEFAULT_POD_FAILURE_BACKOFF;
    for _ in 1..failures {
        delay = delay.saturating_mul(2);
        if delay >= MAX_POD_FAILURE_BACKOFF {
            delay = MAX_POD_FAILURE_BACKOFF;
            break;
        }
    }
    let elapsed = now.duration_since(last);
    let elapsed = Duration::try_from(elapsed).unwrap_or(Duration::ZERO);
    delay.saturating_sub(elapsed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn finished(phase: &str, at: &str) -> CachedPod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"phase": phase, "containerStatuses": [{"name": "c", "ready": false, "restartCount": 0,
                "image": "i", "imageID": "", "state": {"terminated": {"exitCode": 1, "finishedAt": at}}}]},
        }))
        .unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn delays_double_from_ten_seconds_and_cap_at_ten_minutes() {
        let last = ts("2024-01-01T00:00:00Z");
        for (failures, want) in [(0, 0), (1, 10), (2, 20), (3, 40), (6, 320), (7, 600), (30, 600)] {
            assert_eq!(
                remaining_for_failures(failures, Some(last), last),
                Duration::from_secs(want),
                "{failures}"
            );
        }
        assert_eq!(
            remaining_for_failures(2, Some(last), ts("2024-01-01T00:00:15Z")),
            Duration::from_secs(5)
        );
        assert_eq!(
            remaining_for_failures(2, Some(last), ts("2024-01-01T00:01:00Z")),
            Duration::ZERO
        );
    }

    #[test]
    fn successes_reset_the_failure_count() {
        let f1 = finished("Failed", "2024-01-01T00:00:10Z");
        let f2 = finished("Failed", "2024-01-01T00:00:30Z");
        let s = finished("Succeeded", "2024-01-01T00:00:20Z");
        let r = BackoffRecord::default().with_finished(&[], &[&f1]);
        assert_eq!(r.failures_after_last_success, 1);
        let r = r.with_finished(&[], &[&f2]);
        assert_eq!(r.failures_after_last_success, 2);
        assert_eq!(r.last_failure_time, Some(ts("2024-01-01T00:00:30Z")));
        // A success between two failures: only the later failure counts.
        let r = BackoffRecord::default().with_finished(&[&s], &[&f1, &f2]);
        assert_eq!(r.failures_after_last_success, 1);
        assert_eq!(r.with_finished(&[&s], &[]), BackoffRecord::default());
        assert_eq!(r.with_finished(&[], &[]), r);
    }
}
