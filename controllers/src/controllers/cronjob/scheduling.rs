//! The pure decisions of the CronJob controller: which scheduled time is
//! due, when to look again, the Job to create for a time, and which
//! finished Jobs fall out of the history limits.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::jiff::tz::TimeZone;

use crate::controllers::controller_ref::new_controller_ref;
use crate::controllers::job::conditions::{COMPLETE, find_true, is_finished};
use rkube_cron::Schedule;

/// The annotation recording a Job's scheduled time.
pub const SCHEDULED_TIMESTAMP_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Past this many missed times a warning is recorded.
pub const TOO_MANY_MISSED: i64 = 100;
/// Added to the next activation before looking again.
pub const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);

/// The outcome of looking for a missed activation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    /// Where the search started (last schedule, creation or deadline).
    pub earliest: Timestamp,
    /// The latest activation not after `now`, if any.
    pub most_recent: Option<Timestamp>,
    /// About how many activations were missed.
    pub missed: i64,
}

/// Upstream's `mostRecentScheduleTime`.
pub fn most_recent_schedule_time(
    cj: &CronJob,
    now: Timestamp,
    schedule: &Schedule,
    tz: &TimeZone,
    include_starting_deadline: bool,
) -> Result<Unmet, String> {
    let mut earliest = cj
        .status
        .as_ref()
        .and_then(|s| s.last_schedule_time.as_ref())
        .or(cj.metadata.creation_timestamp.as_ref())
        .map_or(now, |t| t.0);
    if include_starting_deadline
        && let Some(sds) = cj.spec.starting_deadline_seconds
        && let Ok(deadline) = Timestamp::from_second(now.as_second().saturating_sub(sds))
        && deadline > earliest
    {
        earliest = deadline;
    }
    let none = |earliest| Unmet {
        earliest,
        most_recent: None,
        missed: 0,
    };
    let Some(t1) = schedule.next(earliest, tz) else {
        return Ok(none(earliest));
    };
    if now < t1 {
        return Ok(none(earliest));
    }
    let Some(t2) = schedule.next(t1, tz) else {
        return Ok(Unmet {
            earliest,
            most_recent: Some(t1),
            missed: 1,
        });
    };
    if now < t2 {
        return Ok(Unmet {
            earliest,
            most_recent: Some(t1),
            missed: 1,
        });
    }
    let between = t2.as_second() - t1.as_second();
    if between < 1 {
        return Err("time difference between two schedules is less than 1 second".into());
    }
    let missed = (now.as_second() - t1.as_second()) / between + 1;
    // Walk the real activations from about two intervals before the
    // estimate (irregular schedules), so the result is a real activation.
    let estimate = t1.as_second() + (missed - 1) * between;
    let mut t = if missed > 3 {
        Timestamp::from_second(estimate - 2 * between)
            .ok()
            .and_then(|s| schedule.next(s, tz))
            .unwrap_or(t1)
    } else {
        t1
    };
    if t > now {
        t = t1;
    }
    while let Some(n) = schedule.next(t, tz) {
        if n > now {
            break;
        }
        t = n;
    }
    Ok(Unmet {
        earliest,
        most_recent: Some(t),
        missed,
    })
}

/// How long until the activation after the most recent one (plus
/// [`NEXT_SCHEDULE_DELTA`]); upstream's `nextScheduleTimeDuration`.
pub fn next_schedule_duration(cj: &CronJob, now: Timestamp, schedule: &Schedule, tz: &TimeZone) -> Option<Duration> {
    let unmet = most_recent_schedule_time(cj, now, schedule, tz, false).ok()?;
    let from = unmet.most_recent.unwrap_or(unmet.earliest);
    let next = schedule.next(from, tz)?;
    let wait = next.duration_since(now);
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO) + NEXT_SCHEDULE_DELTA)
}

/// `<cronjob>-<scheduled time in minutes since the epoch>`.
pub fn job_name(cj_name: &str, scheduled: Timestamp) -> String {
    format!("{cj_name}-{}", scheduled.as_second().div_euclid(60))
}

/// The Job for the activation at `scheduled` (upstream's
/// `getJobFromTemplate2`).
pub fn job_from_template(cj: &CronJob, scheduled: Timestamp, tz: &TimeZone) -> Job {
    let name = cj.metadata.name.clone().unwrap_or_default();
    let template = cj.spec.job_template.clone();
    let meta = template.metadata.unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP_ANNOTATION.into(),
        scheduled
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
            .replace("+00:00", "Z"),
    );
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(&name, scheduled)),
            namespace: cj.metadata.namespace.clone(),
            labels: meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![new_controller_ref(&cj.metadata, "batch/v1", "CronJob")]),
            ..ObjectMeta::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// Finished Jobs beyond the history limits, oldest first: successful
/// ones past `successfulJobsHistoryLimit`, failed ones past
/// `failedJobsHistoryLimit` (ordered by start time, unstarted last).
pub fn jobs_past_history_limits(cj: &CronJob, jobs: &[Arc<Job>]) -> Vec<Arc<Job>> {
    let spec = &cj.spec;
    let mut out = Vec::new();
    for (succeeded, limit) in [
        (true, spec.successful_jobs_history_limit),
        (false, spec.failed_jobs_history_limit),
    ] {
        let Some(limit) = limit else { continue };
        let mut finished: Vec<Arc<Job>> = jobs
            .iter()
            .filter(|j| is_finished(j) && (find_true(j, COMPLETE).is_some()) == succeeded)
            .cloned()
            .collect();
        finished.sort_by(|a, b| {
            let start = |j: &Job| j.status.as_ref().and_then(|s| s.start_time.as_ref()).map(|t| t.0);
            match (start(a), start(b)) {
                (Some(x), Some(y)) if x != y => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                _ => a.metadata.name.cmp(&b.metadata.name),
            }
        });
        let keep = usize::try_from(limit).unwrap_or(0);
        let excess = finished.len().saturating_sub(keep);
        out.extend(finished.into_iter().take(excess));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use rkube_cron::parse;
    use serde_json::json;

    fn cj(extra_spec: serde_json::Value, status: serde_json::Value) -> CronJob {
        let mut spec = json!({"schedule": "*/5 * * * *", "jobTemplate": {"metadata": {"labels": {"l": "v"}},
            "spec": {"template": {"spec": {"containers": []}}}}});
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra_spec.as_object()) {
            s.extend(e.clone());
        }
        serde_json::from_value(json!({"metadata": {"name": "cj", "namespace": "ns", "uid": "u",
            "creationTimestamp": "2024-01-01T00:00:00Z"}, "spec": spec, "status": status}))
        .unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn sched() -> Schedule {
        parse("*/5 * * * *").unwrap().0
    }

    #[test]
    fn most_recent_unmet_times() {
        let tz = TimeZone::UTC;
        let c = cj(json!({}), json!({}));
        let u = most_recent_schedule_time(&c, ts("2024-01-01T00:03:00Z"), &sched(), &tz, true).unwrap();
        assert_eq!((u.most_recent, u.missed), (None, 0));
        let u = most_recent_schedule_time(&c, ts("2024-01-01T00:07:00Z"), &sched(), &tz, true).unwrap();
        assert_eq!((u.most_recent, u.missed), (Some(ts("2024-01-01T00:05:00Z")), 1));
        let u = most_recent_schedule_time(&c, ts("2024-01-01T01:01:00Z"), &sched(), &tz, true).unwrap();
        assert_eq!((u.most_recent, u.missed), (Some(ts("2024-01-01T01:00:00Z")), 12));
        // Already scheduled at 01:00: nothing unmet until 01:05.
        let c = cj(json!({}), json!({"lastScheduleTime": "2024-01-01T01:00:00Z"}));
        let u = most_recent_schedule_time(&c, ts("2024-01-01T01:04:59Z"), &sched(), &tz, true).unwrap();
        assert_eq!(u.most_recent, None);
        let d = next_schedule_duration(&c, ts("2024-01-01T01:04:00Z"), &sched(), &tz).unwrap();
        assert_eq!(d, Duration::from_secs(60) + NEXT_SCHEDULE_DELTA);
        // startingDeadlineSeconds moves the search start forward.
        let c = cj(json!({"startingDeadlineSeconds": 60}), json!({}));
        let u = most_recent_schedule_time(&c, ts("2024-01-01T01:03:00Z"), &sched(), &tz, true).unwrap();
        assert_eq!(u.most_recent, None);
        // Irregular schedules land on a real activation.
        let weekdays = parse("0 9 * * 1-5").unwrap().0;
        let c = cj(json!({}), json!({}));
        let u = most_recent_schedule_time(&c, ts("2024-03-03T12:00:00Z"), &weekdays, &tz, true).unwrap();
        assert_eq!(u.most_recent, Some(ts("2024-03-01T09:00:00Z")));
    }

    #[test]
    fn jobs_are_named_and_annotated_by_schedule_time() {
        let c = cj(json!({}), json!({}));
        let j = job_from_template(&c, ts("2024-01-01T00:05:00Z"), &TimeZone::UTC);
        assert_eq!(j.metadata.name.as_deref(), Some("cj-28401125"));
        assert_eq!(
            j.metadata.annotations.as_ref().unwrap()[SCHEDULED_TIMESTAMP_ANNOTATION],
            "2024-01-01T00:05:00Z"
        );
        assert_eq!(j.metadata.labels.as_ref().unwrap()["l"], "v");
        let owner = &j.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("CronJob", Some(true)));
    }

    #[test]
    fn history_limits_delete_the_oldest() {
        let c = cj(
            json!({"successfulJobsHistoryLimit": 1, "failedJobsHistoryLimit": 0}),
            json!({}),
        );
        let job = |name: &str, start: &str, cond: &str| {
            Arc::new(
                serde_json::from_value::<Job>(json!({"metadata": {"name": name},
                    "status": {"startTime": start, "conditions": [{"type": cond, "status": "True"}]}}))
                .unwrap(),
            )
        };
        let jobs = vec![
            job("s2", "2024-01-01T00:10:00Z", "Complete"),
            job("s1", "2024-01-01T00:05:00Z", "Complete"),
            job("f1", "2024-01-01T00:07:00Z", "Failed"),
            job("running", "2024-01-01T00:07:00Z", "Suspended"),
        ];
        let names: Vec<String> = jobs_past_history_limits(&c, &jobs)
            .iter()
            .map(|j| j.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, vec!["s1", "f1"]);
    }
}
