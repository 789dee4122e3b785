//! One reconcile of a Job (upstream's `syncJob`): count newly finished
//! pods, decide whether the Job has failed or met its success criteria,
//! otherwise create or delete pods, then record the status and remove
//! finalizers ([`super::tracking`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition, UncountedTerminatedPods};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::backoff::BackoffRecord;
use super::conditions::{self as cond, new_condition};
use super::failure_policy::{PolicyAction, match_pod_failure_policy};
use super::indexes::{OrderedIntervals, valid_index};
use super::pod_template::{has_tracking_finalizer, index_failure_count};
use super::success_policy::match_success_policy;
use super::{
    JOB_CONTROLLER_MANAGER, JobController, completions, has_backoff_limit_per_index, is_indexed, is_pod_failed,
    is_suspended,
};
use crate::cached_pod::CachedPod;
use crate::controllers::events::{EventType, reference};
use crate::controllers::pod_status::{is_active, is_ready, is_terminating, phase};
use crate::error::Error;
use crate::informer::split_key;
use crate::runner::Action;

/// What one reconcile knows and decides.
pub struct SyncCtx {
    pub key: String,
    /// The working copy whose status is written.
    pub job: Job,
    /// Pods this Job controls.
    pub pods: Vec<Arc<CachedPod>>,
    pub active_pods: Vec<Arc<CachedPod>>,
    pub ready: i32,
    pub terminating: i32,
    /// `status.uncountedTerminatedPods` at the start of the sync.
    pub uncounted_succeeded: HashSet<String>,
    pub uncounted_failed: HashSet<String>,
    /// Pods whose finalizer removal was asked for and not yet seen.
    pub expected_rm_finalizers: HashSet<String>,
    pub succeeded: i32,
    pub failed: i32,
    pub new_backoff: BackoffRecord,
    /// Set once the Job is known to have failed or succeeded.
    pub finished_condition: Option<JobCondition>,
    pub prev_succeeded_indexes: OrderedIntervals,
    pub succeeded_indexes: OrderedIntervals,
    pub failed_indexes: Option<OrderedIntervals>,
    /// Per index, the failed pod whose finalizer stays until its
    /// replacement exists (it carries the index's failure count).
    pub delayed_per_index: HashMap<i32, Arc<CachedPod>>,
    pub now: Timestamp,
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Pods with the tracking finalizer, not yet counted, that pass `filter`
/// (and for Indexed Jobs have a valid index).
fn new_finished(cx: &SyncCtx, uncounted: &HashSet<String>, filter: impl Fn(&CachedPod) -> bool) -> Vec<Arc<CachedPod>> {
    let completions = completions(&cx.job).unwrap_or(0);
    cx.pods
        .iter()
        .filter(|p| {
            let uid = p.metadata.uid.as_deref().unwrap_or("");
            has_tracking_finalizer(p) && !uncounted.contains(uid) && !cx.expected_rm_finalizers.contains(uid)
        })
        .filter(|p| !is_indexed(&cx.job) || valid_index(p, completions).is_some())
        .filter(|p| filter(p))
        .cloned()
        .collect()
}

/// Whether `OnFailure` pods restarted their containers `backoffLimit`
/// times in total (upstream's `pastBackoffLimitOnFailure`).
pub fn past_backoff_limit_on_failure(job: &Job, pods: &[Arc<CachedPod>]) -> bool {
    let spec = job.spec.as_ref();
    let policy = spec
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.restart_policy.as_deref());
    if policy != Some("OnFailure") {
        return false;
    }
    let limit = spec.and_then(|s| s.backoff_limit).unwrap_or(6);
    let restarts: i32 = pods
        .iter()
        .filter(|p| matches!(phase(p), "Running" | "Pending"))
        .filter_map(|p| p.status.as_ref())
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .map(|c| c.restart_count)
        .sum();
    if limit == 0 { restarts > 0 } else { restarts >= limit }
}

/// When the Job's `activeDeadlineSeconds` runs out, if set and started.
pub fn deadline(job: &Job) -> Option<Timestamp> {
    let ads = job.spec.as_ref()?.active_deadline_seconds?;
    let start = job.status.as_ref()?.start_time.as_ref()?.0;
    Timestamp::from_second(start.as_second().saturating_add(ads)).ok()
}

/// Indexes that failed for good (backoffLimitPerIndex or a FailIndex
/// rule), added to those already recorded.
pub fn failed_indexes(job: &Job, pods: &[Arc<CachedPod>]) -> OrderedIntervals {
    let completions = completions(job).unwrap_or(0);
    let prev = job
        .status
        .as_ref()
        .and_then(|s| s.failed_indexes.as_deref())
        .map(|s| OrderedIntervals::parse(s, completions))
        .unwrap_or_default();
    let limit = job.spec.as_ref().and_then(|s| s.backoff_limit_per_index).unwrap_or(0);
    let policy = job.spec.as_ref().and_then(|s| s.pod_failure_policy.as_ref());
    let new = pods.iter().filter(|p| has_tracking_finalizer(p)).filter_map(|p| {
        let ix = valid_index(p, completions)?;
        if !is_pod_failed(p, job) {
            return None;
        }
        let m = match_pod_failure_policy(policy, p);
        let failed = m.action == Some(PolicyAction::FailIndex) || (m.count_failed && index_failure_count(p) >= limit);
        failed.then_some(ix)
    });
    prev.with_indexes(new)
}

impl JobController {
    pub async fn sync(&self, key: &str) -> Result<Action, Error> {
        let (ns, name) = split_key(key);
        let Some(shared) = self.jobs.get(ns, name) else {
            self.forget(key);
            return Ok(Action::Done);
        };
        let managed_by = shared.spec.as_ref().and_then(|s| s.managed_by.as_deref());
        if managed_by.is_some_and(|m| m != JOB_CONTROLLER_MANAGER) {
            return Ok(Action::Done);
        }
        if cond::is_finished(&shared) {
            self.backoff.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
            return Ok(Action::Done);
        }
        let mode = shared.spec.as_ref().and_then(|s| s.completion_mode.as_deref());
        if mode.is_some_and(|m| m != "NonIndexed" && m != "Indexed") {
            self.events.record(
                reference(shared.as_ref()),
                EventType::Warning,
                "UnknownCompletionMode",
                "Sync",
                "Skipped Job sync because completion mode is unknown".into(),
            );
            return Ok(Action::Done);
        }
        let mut job = (*shared).clone();
        let status = job.status.get_or_insert_with(Default::default);
        let uncounted = status
            .uncounted_terminated_pods
            .get_or_insert_with(UncountedTerminatedPods::default);
        let uncounted_succeeded: HashSet<String> = uncounted.succeeded.iter().flatten().cloned().collect();
        let uncounted_failed: HashSet<String> = uncounted.failed.iter().flatten().cloned().collect();

        // Expectations first: a pod created after this check is seen by
        // the next sync.
        let satisfied = self.expectations.satisfied(key);
        let pods = self.pods_for_job(&job).await?;
        let active_pods: Vec<Arc<CachedPod>> = pods.iter().filter(|p| is_active(p)).cloned().collect();
        let mut cx = SyncCtx {
            key: key.to_string(),
            ready: count(active_pods.iter().filter(|p| is_ready(p)).count()),
            terminating: count(pods.iter().filter(|p| is_terminating(p)).count()),
            active_pods,
            expected_rm_finalizers: self.finalizer_expectations.expected(key),
            uncounted_succeeded,
            uncounted_failed,
            succeeded: 0,
            failed: 0,
            new_backoff: BackoffRecord::default(),
            finished_condition: None,
            prev_succeeded_indexes: OrderedIntervals::default(),
            succeeded_indexes: OrderedIntervals::default(),
            failed_indexes: None,
            delayed_per_index: HashMap::new(),
            now: Timestamp::now(),
            pods,
            job,
        };
        let mut active = count(cx.active_pods.len());
        let policy = cx.job.spec.as_ref().and_then(|s| s.pod_failure_policy.clone());
        let (new_succeeded, new_failed) = {
            let job = &cx.job;
            let s = new_finished(&cx, &cx.uncounted_succeeded, |p| phase(p) == "Succeeded");
            let f = new_finished(&cx, &cx.uncounted_failed, |p| is_pod_failed(p, job));
            (s, f)
        };
        let status = cx.job.status.clone().unwrap_or_default();
        let counted_failures = new_failed
            .iter()
            .filter(|p| match_pod_failure_policy(policy.as_ref(), p).count_failed)
            .count();
        cx.succeeded = status.succeeded.unwrap_or(0) + count(new_succeeded.len()) + count(cx.uncounted_succeeded.len());
        cx.failed = status.failed.unwrap_or(0) + count(counted_failures) + count(cx.uncounted_failed.len());
        let succeeded_refs: Vec<&CachedPod> = new_succeeded.iter().map(|p| p.as_ref()).collect();
        let failed_refs: Vec<&CachedPod> = new_failed.iter().map(|p| p.as_ref()).collect();
        cx.new_backoff = self.backoff_record(key).with_finished(&succeeded_refs, &failed_refs);

        if status.start_time.is_none() && !is_suspended(&cx.job) {
            cx.job.status.get_or_insert_with(Default::default).start_time = Some(Time(cx.now));
        }
        let backoff_limit = cx.job.spec.as_ref().and_then(|s| s.backoff_limit).unwrap_or(6);
        let exceeds_backoff_limit = cx.failed > backoff_limit;
        cx.finished_condition = cond::find_true(&cx.job, cond::SUCCESS_CRITERIA_MET).cloned();
        if cx.finished_condition.is_none() {
            if let Some(target) = cond::find_true(&cx.job, cond::FAILURE_TARGET) {
                cx.finished_condition = Some(new_condition(
                    cond::FAILED,
                    "True",
                    target.reason.as_deref().unwrap_or(""),
                    target.message.as_deref().unwrap_or(""),
                    cx.now,
                ));
            } else if let Some(msg) = cx
                .pods
                .iter()
                .filter(|p| is_pod_failed(p, &cx.job))
                .find_map(|p| match_pod_failure_policy(policy.as_ref(), p).fail_job_message)
            {
                cx.finished_condition = Some(new_condition(
                    cond::FAILURE_TARGET,
                    "True",
                    cond::REASON_POD_FAILURE_POLICY,
                    &msg,
                    cx.now,
                ));
            }
        }
        if cx.finished_condition.is_none() {
            if exceeds_backoff_limit || past_backoff_limit_on_failure(&cx.job, &cx.pods) {
                cx.finished_condition = Some(failure(
                    cond::REASON_BACKOFF_LIMIT_EXCEEDED,
                    cond::MESSAGE_BACKOFF_LIMIT_EXCEEDED,
                    cx.now,
                ));
            } else if let Some(deadline) = deadline(&cx.job).filter(|_| !is_suspended(&cx.job)) {
                if cx.now >= deadline {
                    cx.finished_condition = Some(failure(
                        cond::REASON_DEADLINE_EXCEEDED,
                        cond::MESSAGE_DEADLINE_EXCEEDED,
                        cx.now,
                    ));
                } else {
                    let left = deadline.duration_since(cx.now);
                    let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
                    self.queue.add_after(key.to_string(), left);
                }
            }
        }

        if is_indexed(&cx.job) {
            let completions = completions(&cx.job).unwrap_or(0);
            let prev = cx
                .job
                .status
                .as_ref()
                .and_then(|s| s.completed_indexes.as_deref())
                .map(|s| OrderedIntervals::parse(s, completions))
                .unwrap_or_default();
            let new = cx
                .pods
                .iter()
                .filter(|p| has_tracking_finalizer(p) && phase(p) == "Succeeded")
                .filter_map(|p| valid_index(p, completions));
            cx.succeeded_indexes = prev.with_indexes(new);
            cx.prev_succeeded_indexes = prev;
            cx.succeeded = cx.succeeded_indexes.total();
            if has_backoff_limit_per_index(&cx.job) {
                let failed = failed_indexes(&cx.job, &cx.pods);
                if cx.finished_condition.is_none() {
                    let max = cx.job.spec.as_ref().and_then(|s| s.max_failed_indexes);
                    if max.is_some_and(|m| failed.total() > m) {
                        cx.finished_condition = Some(failure(
                            cond::REASON_MAX_FAILED_INDEXES_EXCEEDED,
                            cond::MESSAGE_MAX_FAILED_INDEXES_EXCEEDED,
                            cx.now,
                        ));
                    } else if failed.total() > 0 && failed.total() + cx.succeeded_indexes.total() >= completions {
                        cx.finished_condition = Some(failure(
                            cond::REASON_FAILED_INDEXES,
                            cond::MESSAGE_FAILED_INDEXES,
                            cx.now,
                        ));
                    }
                }
                cx.failed_indexes = Some(failed);
                cx.delayed_per_index = delayed_per_index(&cx);
            }
            if cx.finished_condition.is_none() {
                let sp = cx.job.spec.as_ref().and_then(|s| s.success_policy.as_ref());
                if let Some(msg) = match_success_policy(sp, completions, &cx.succeeded_indexes) {
                    cx.finished_condition = Some(new_condition(
                        cond::SUCCESS_CRITERIA_MET,
                        "True",
                        cond::REASON_SUCCESS_POLICY,
                        &msg,
                        cx.now,
                    ));
                }
            }
        }

        let mut manage_error = None;
        let mut suspend_changed = false;
        if cx.finished_condition.is_some() {
            // The Job is over: its remaining pods go.
            let pods = cx.active_pods.clone();
            let (deleted_ready, deleted, err) = self.delete_active_pods(&cx.job, &pods).await;
            if deleted != active || !satisfied {
                // Pods remain, or some may not be in the cache yet.
                cx.finished_condition = None;
            }
            active -= deleted;
            cx.terminating += deleted;
            cx.ready -= deleted_ready;
            manage_error = err;
        } else {
            let mut managed = false;
            if satisfied && cx.job.metadata.deletion_timestamp.is_none() {
                let (a, err) = self.manage_job(&mut cx).await;
                active = a;
                manage_error = err;
                managed = true;
            }
            let complete = match completions(&cx.job) {
                None => cx.succeeded > 0 && active == 0,
                Some(c) => cx.succeeded >= c && active == 0,
            };
            if complete {
                cx.finished_condition = Some(new_condition(
                    cond::SUCCESS_CRITERIA_MET,
                    "True",
                    cond::REASON_COMPLETIONS_REACHED,
                    cond::MESSAGE_COMPLETIONS_REACHED,
                    cx.now,
                ));
            } else if managed {
                let now = cx.now;
                let suspended = is_suspended(&cx.job);
                let status = cx.job.status.get_or_insert_with(Default::default);
                let conds = status.conditions.get_or_insert_with(Vec::new);
                if suspended {
                    if cond::ensure(conds, cond::SUSPENDED, "True", "JobSuspended", "Job suspended", now) {
                        suspend_changed = true;
                        self.event(&cx.job, EventType::Normal, "Suspended", "Job suspended");
                    }
                } else if cond::ensure(conds, cond::SUSPENDED, "False", "JobResumed", "Job resumed", now) {
                    suspend_changed = true;
                    // activeDeadlineSeconds counts from the resume.
                    status.start_time = Some(Time(now));
                    self.event(&cx.job, EventType::Normal, "Resumed", "Job resumed");
                }
            }
        }

        let status = cx.job.status.get_or_insert_with(Default::default);
        let needs_update = suspend_changed
            || status.active != Some(active)
            || status.ready != Some(cx.ready)
            || status.terminating != Some(cx.terminating);
        status.active = Some(active);
        status.ready = Some(cx.ready);
        status.terminating = Some(cx.terminating);
        self.track_status_and_remove_finalizers(&mut cx, needs_update)
            .await
            .map_err(|e| Error::other(format!("tracking status: {e}")))?;
        match manage_error {
            Some(e) => Err(e),
            None => Ok(Action::Done),
        }
    }

    pub(crate) fn event(&self, job: &Job, type_: EventType, reason: &str, note: impl Into<String>) {
        self.events.record(reference(job), type_, reason, "Sync", note.into());
    }
}

/// A failure: first the interim FailureTarget condition.
fn failure(reason: &str, message: &str, now: Timestamp) -> JobCondition {
    new_condition(cond::FAILURE_TARGET, "True", reason, message, now)
}

/// Per index, the newest pod if it failed and still holds its finalizer:
/// it stays until its replacement carries the failure count on.
fn delayed_per_index(cx: &SyncCtx) -> HashMap<i32, Arc<CachedPod>> {
    let completions = completions(&cx.job).unwrap_or(0);
    let mut newest: HashMap<i32, Arc<CachedPod>> = HashMap::new();
    for p in &cx.pods {
        let Some(ix) = valid_index(p, completions) else {
            continue;
        };
        let created = |p: &CachedPod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
        match newest.get(&ix) {
            Some(cur) if created(cur) >= created(p) => {}
            _ => {
                newest.insert(ix, p.clone());
            }
        }
    }
    let failed = cx.failed_indexes.clone().unwrap_or_default();
    newest
        .into_iter()
        .filter(|(ix, p)| {
            is_pod_failed(p, &cx.job) && has_tracking_finalizer(p) && !cx.succeeded_indexes.has(*ix) && !failed.has(*ix)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Arc<CachedPod> {
        Arc::new(serde_json::from_value(v).unwrap())
    }

    #[test]
    fn on_failure_restarts_count_against_the_backoff_limit() {
        let job = |limit: i32, policy: &str| -> Job {
            serde_json::from_value(json!({"metadata": {"name": "j"}, "spec": {"backoffLimit": limit,
                "template": {"spec": {"restartPolicy": policy, "containers": []}}}}))
            .unwrap()
        };
        let running = |restarts: i32| {
            pod(
                json!({"metadata": {"name": "p"}, "status": {"phase": "Running", "containerStatuses": [
                {"name": "c", "ready": true, "restartCount": restarts, "image": "i", "imageID": ""}]}}),
            )
        };
        assert!(past_backoff_limit_on_failure(
            &job(2, "OnFailure"),
            &[running(1), running(1)]
        ));
        assert!(!past_backoff_limit_on_failure(
            &job(3, "OnFailure"),
            &[running(1), running(1)]
        ));
        assert!(past_backoff_limit_on_failure(&job(0, "OnFailure"), &[running(1)]));
        assert!(!past_backoff_limit_on_failure(&job(0, "OnFailure"), &[running(0)]));
        assert!(!past_backoff_limit_on_failure(&job(1, "Never"), &[running(5)]));
    }

    #[test]
    fn indexes_fail_after_their_per_index_limit_or_a_fail_index_rule() {
        let job: Job = serde_json::from_value(json!({"metadata": {"name": "j"}, "spec": {
            "completions": 4, "completionMode": "Indexed", "backoffLimitPerIndex": 1,
            "podFailurePolicy": {"rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [9]}}]},
            "template": {"spec": {"containers": []}}}, "status": {"failedIndexes": "3"}}))
        .unwrap();
        let failed = |ix: i32, count: i32, code: i32| {
            pod(
                json!({"metadata": {"name": format!("p{ix}"), "finalizers": ["batch.kubernetes.io/job-tracking"],
                "annotations": {"batch.kubernetes.io/job-completion-index": ix.to_string(),
                                "batch.kubernetes.io/job-index-failure-count": count.to_string()}},
                "status": {"phase": "Failed", "containerStatuses": [{"name": "c", "ready": false, "restartCount": 0,
                    "image": "i", "imageID": "", "state": {"terminated": {"exitCode": code}}}]}}),
            )
        };
        // Index 0 failed once before (limit 1): failed now. Index 1 failed
        // for the first time: retried. Index 2 hit the FailIndex rule.
        let got = failed_indexes(&job, &[failed(0, 1, 1), failed(1, 0, 1), failed(2, 0, 9)]);
        assert_eq!(got.to_string(), "0,2,3");
    }

    #[test]
    fn deadlines_count_from_the_start_time() {
        let job: Job = serde_json::from_value(json!({"metadata": {"name": "j"},
            "spec": {"activeDeadlineSeconds": 30, "template": {}},
            "status": {"startTime": "2024-01-01T00:00:00Z"}}))
        .unwrap();
        assert_eq!(deadline(&job), Some("2024-01-01T00:00:30Z".parse().unwrap()));
    }
}
