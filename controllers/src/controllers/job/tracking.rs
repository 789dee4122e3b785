//! Counting finished pods exactly once (upstream's
//! `trackJobStatusAndRemoveFinalizers`): a finished pod's uid is first
//! written to `status.uncountedTerminatedPods` (or, for Indexed Jobs, its
//! index to `completedIndexes`), then its tracking finalizer is removed,
//! then the uid moves into `succeeded`/`failed`. A crash between steps
//! repeats a step, never a count. The terminal condition is set only when
//! nothing is uncounted and no pod is terminating.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::future::join_all;
use k8s_openapi::api::batch::v1::{Job, JobStatus, UncountedTerminatedPods};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, PostParams};

use super::conditions::{self as cond, new_condition};
use super::failure_policy::match_pod_failure_policy;
use super::indexes::{completion_index, valid_index};
use super::manage::remove_tracking_finalizer;
use super::pod_template::has_tracking_finalizer;
use super::sync::SyncCtx;
use super::{JobController, completions, has_backoff_limit_per_index, is_indexed, is_pod_failed};
use crate::cached_pod::CachedPod;
use crate::controllers::events::EventType;
use crate::controllers::pod_status::phase;
use crate::error::Error;

/// At most this many uids wait in `uncountedTerminatedPods` (keeps the
/// status small and one big Job from starving others).
pub const MAX_UNCOUNTED_PODS: usize = 500;

/// Per Job key, the pods whose finalizer removal was sent but not yet
/// seen by the informer.
#[derive(Debug, Default)]
pub struct FinalizerExpectations {
    map: Mutex<HashMap<String, HashSet<String>>>,
}

impl FinalizerExpectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashSet<String>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn expect_removed(&self, key: &str, uids: impl IntoIterator<Item = String>) {
        self.lock().entry(key.to_string()).or_default().extend(uids);
    }

    pub fn removal_observed(&self, key: &str, uid: &str) {
        let mut m = self.lock();
        if let Some(set) = m.get_mut(key) {
            set.remove(uid);
            if set.is_empty() {
                m.remove(key);
            }
        }
    }

    pub fn expected(&self, key: &str) -> HashSet<String> {
        self.lock().get(key).cloned().unwrap_or_default()
    }

    pub fn delete(&self, key: &str) {
        self.lock().remove(key);
    }
}

/// Moves uids no longer holding a finalizer from the uncounted lists into
/// the counters; returns whether anything changed.
pub fn clean_uncounted(status: &mut JobStatus, with_finalizer: &HashSet<String>) -> bool {
    let uncounted = status
        .uncounted_terminated_pods
        .get_or_insert_with(UncountedTerminatedPods::default);
    let mut changed = false;
    for (list, counter) in [
        (&mut uncounted.succeeded, &mut status.succeeded),
        (&mut uncounted.failed, &mut status.failed),
    ] {
        let before = list.as_ref().map_or(0, Vec::len);
        let kept: Vec<String> = list
            .iter()
            .flatten()
            .filter(|u| with_finalizer.contains(*u))
            .cloned()
            .collect();
        if kept.len() != before {
            changed = true;
            let moved = i32::try_from(before - kept.len()).unwrap_or(i32::MAX);
            *counter = Some(counter.unwrap_or(0).saturating_add(moved));
        }
        *list = (!kept.is_empty()).then_some(kept);
    }
    changed
}

fn uncounted_len(status: &JobStatus) -> usize {
    status.uncounted_terminated_pods.as_ref().map_or(0, |u| {
        u.succeeded.as_ref().map_or(0, Vec::len) + u.failed.as_ref().map_or(0, Vec::len)
    })
}

fn is_success_criteria(c: &Option<k8s_openapi::api::batch::v1::JobCondition>) -> bool {
    c.as_ref().is_some_and(|c| c.type_ == cond::SUCCESS_CRITERIA_MET)
}

/// Whether the pod's finalizer may go now: the Job is deleted or over,
/// the pod succeeded, or it failed and is not the pod whose failure count
/// the index's replacement still needs.
fn can_remove_finalizer(cx: &SyncCtx, pod: &CachedPod, failed: bool) -> bool {
    if cx.job.metadata.deletion_timestamp.is_some() || cx.finished_condition.is_some() || phase(pod) == "Succeeded" {
        return true;
    }
    if !failed {
        return false;
    }
    if has_backoff_limit_per_index(&cx.job)
        && let Some(ix) = completion_index(pod)
        && let Some(p) = cx.delayed_per_index.get(&ix)
        && p.metadata.uid == pod.metadata.uid
    {
        return false;
    }
    true
}

impl JobController {
    async fn write_status(&self, job: &Job) -> Result<Job, Error> {
        let api: Api<Job> = Api::namespaced(self.client.clone(), &job.namespace().unwrap_or_default());
        Ok(api.replace_status(&job.name_any(), &PostParams::default(), job).await?)
    }

    pub(crate) async fn track_status_and_remove_finalizers(
        &self,
        cx: &mut SyncCtx,
        mut needs_flush: bool,
    ) -> Result<(), Error> {
        let indexed = is_indexed(&cx.job);
        let completions = completions(&cx.job).unwrap_or(0);
        let mut pods: Vec<Arc<CachedPod>> = cx.pods.clone();
        if indexed {
            pods.sort_by_key(|p| completion_index(p).unwrap_or(-1));
        }
        let mut with_finalizer: HashSet<String> = pods
            .iter()
            .filter(|p| has_tracking_finalizer(p))
            .filter_map(|p| p.metadata.uid.clone())
            .filter(|u| !cx.expected_rm_finalizers.contains(u))
            .collect();
        let policy = cx.job.spec.as_ref().and_then(|s| s.pod_failure_policy.clone());
        let status = cx.job.status.get_or_insert_with(Default::default);
        if clean_uncounted(status, &with_finalizer) {
            needs_flush = true;
        }
        let mut to_remove: Vec<Arc<CachedPod>> = Vec::new();
        let mut new_succeeded_indexes = Vec::new();
        let mut reached_max = false;
        let mut add_succeeded: Vec<String> = Vec::new();
        let mut add_failed: Vec<String> = Vec::new();
        for pod in &pods {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            if !has_tracking_finalizer(pod) || cx.expected_rm_finalizers.contains(&uid) {
                continue;
            }
            let failed = is_pod_failed(pod, &cx.job);
            if !can_remove_finalizer(cx, pod, failed) {
                continue;
            }
            to_remove.push(pod.clone());
            if phase(pod) == "Succeeded" && !cx.uncounted_failed.contains(&uid) {
                if indexed {
                    if let Some(ix) = valid_index(pod, completions)
                        && !cx.prev_succeeded_indexes.has(ix)
                    {
                        new_succeeded_indexes.push(ix);
                        needs_flush = true;
                    }
                } else if !cx.uncounted_succeeded.contains(&uid) {
                    needs_flush = true;
                    add_succeeded.push(uid);
                }
            } else if (failed || (cx.finished_condition.is_some() && !is_success_criteria(&cx.finished_condition)))
                && !cx.uncounted_failed.contains(&uid)
                && (!indexed || valid_index(pod, completions).is_some())
                && match_pod_failure_policy(policy.as_ref(), pod).count_failed
            {
                needs_flush = true;
                add_failed.push(uid);
            }
            let status = cx.job.status.as_ref();
            if new_succeeded_indexes.len() + add_succeeded.len() + add_failed.len() + status.map_or(0, uncounted_len)
                >= MAX_UNCOUNTED_PODS
            {
                reached_max = true;
                break;
            }
        }
        let status = cx.job.status.get_or_insert_with(Default::default);
        let uncounted = status
            .uncounted_terminated_pods
            .get_or_insert_with(UncountedTerminatedPods::default);
        if !add_succeeded.is_empty() {
            uncounted.succeeded.get_or_insert_with(Vec::new).extend(add_succeeded);
        }
        if !add_failed.is_empty() {
            uncounted.failed.get_or_insert_with(Vec::new).extend(add_failed);
        }
        if indexed {
            cx.succeeded_indexes = cx.succeeded_indexes.with_indexes(new_succeeded_indexes);
            let text = cx.succeeded_indexes.to_string();
            if status.completed_indexes.as_deref().unwrap_or("") != text {
                needs_flush = true;
            }
            status.succeeded = Some(cx.succeeded_indexes.total());
            status.completed_indexes = Some(text);
            let failed_text = cx.failed_indexes.as_ref().map(ToString::to_string);
            if status.failed_indexes != failed_text {
                status.failed_indexes = failed_text;
                needs_flush = true;
            }
        }
        if let Some(fc) = cx.finished_condition.clone() {
            let conds = status.conditions.get_or_insert_with(Vec::new);
            let reason = fc.reason.as_deref().unwrap_or("");
            let message = fc.message.as_deref().unwrap_or("");
            if fc.type_ == cond::FAILURE_TARGET {
                conds.push(fc.clone());
                needs_flush = true;
                cx.finished_condition = Some(new_condition(cond::FAILED, "True", reason, message, cx.now));
            } else if fc.type_ == cond::SUCCESS_CRITERIA_MET {
                if !conds.iter().any(|c| c.type_ == cond::SUCCESS_CRITERIA_MET) {
                    conds.push(fc.clone());
                    needs_flush = true;
                }
                cx.finished_condition = Some(new_condition(cond::COMPLETE, "True", reason, message, cx.now));
            }
        }

        // 1. Record the uncounted pods.
        if needs_flush {
            cx.job = self.write_status(&cx.job).await?;
            self.set_backoff_record(&cx.key, cx.new_backoff.clone());
            needs_flush = false;
        }
        // 2. Remove finalizers.
        let mut rm_err = None;
        if !to_remove.is_empty() {
            self.finalizer_expectations
                .expect_removed(&cx.key, to_remove.iter().filter_map(|p| p.metadata.uid.clone()));
            let results = join_all(to_remove.iter().map(|p| remove_tracking_finalizer(&self.client, p))).await;
            for (p, r) in to_remove.iter().zip(results) {
                let uid = p.metadata.uid.clone().unwrap_or_default();
                match r {
                    Ok(()) => {
                        with_finalizer.remove(&uid);
                    }
                    Err(e) => {
                        self.finalizer_expectations.removal_observed(&cx.key, &uid);
                        rm_err.get_or_insert(Error::from(e));
                    }
                }
            }
        }
        // 3. Count the pods whose finalizers are gone.
        let status = cx.job.status.get_or_insert_with(Default::default);
        if clean_uncounted(status, &with_finalizer) {
            needs_flush = true;
        }
        if let Some(e) = rm_err {
            if needs_flush {
                self.write_status(&cx.job).await?;
            }
            return Err(e);
        }
        // 4. The terminal condition, once everything is counted.
        let finished = !reached_max && self.enact_job_finished(cx);
        if finished {
            needs_flush = true;
        }
        if needs_flush {
            cx.job = self.write_status(&cx.job).await?;
            if finished {
                self.record_job_finished(cx);
            }
        }
        Ok(())
    }

    fn enact_job_finished(&self, cx: &mut SyncCtx) -> bool {
        let Some(fc) = cx.finished_condition.clone() else {
            return false;
        };
        let status = cx.job.status.get_or_insert_with(Default::default);
        if uncounted_len(status) > 0 || cx.terminating > 0 {
            return false;
        }
        let conds = status.conditions.get_or_insert_with(Vec::new);
        cond::ensure(
            conds,
            &fc.type_,
            &fc.status,
            fc.reason.as_deref().unwrap_or(""),
            fc.message.as_deref().unwrap_or(""),
            cx.now,
        );
        if fc.type_ == cond::COMPLETE {
            status.completion_time = Some(Time(cx.now));
        }
        true
    }

    fn record_job_finished(&self, cx: &SyncCtx) {
        let Some(fc) = cx.finished_condition.as_ref() else {
            return;
        };
        if fc.type_ == cond::COMPLETE {
            let succeeded = cx.job.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0);
            if completions(&cx.job).is_some_and(|c| succeeded > c) {
                self.event(
                    &cx.job,
                    EventType::Warning,
                    "TooManySucceededPods",
                    "Too many succeeded pods running after completion count reached",
                );
            }
            self.event(&cx.job, EventType::Normal, "Completed", "Job completed");
        } else {
            self.event(
                &cx.job,
                EventType::Warning,
                fc.reason.as_deref().unwrap_or(""),
                fc.message.clone().unwrap_or_default(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn uncounted_pods_without_finalizers_move_into_the_counters() {
        let mut status: JobStatus = serde_json::from_value(json!({"succeeded": 2, "failed": 1,
            "uncountedTerminatedPods": {"succeeded": ["a", "b"], "failed": ["c"]}}))
        .unwrap();
        let with: HashSet<String> = ["b".to_string()].into();
        assert!(clean_uncounted(&mut status, &with));
        assert_eq!((status.succeeded, status.failed), (Some(3), Some(2)));
        let u = status.uncounted_terminated_pods.as_ref().unwrap();
        assert_eq!(u.succeeded.as_deref(), Some(&["b".to_string()][..]));
        assert_eq!(u.failed, None);
        assert!(!clean_uncounted(&mut status, &with));
    }

    #[test]
    fn finalizer_expectations_clear_when_observed() {
        let e = FinalizerExpectations::default();
        e.expect_removed("ns/j", ["u1".to_string(), "u2".to_string()]);
        e.removal_observed("ns/j", "u1");
        assert_eq!(e.expected("ns/j"), ["u2".to_string()].into());
        e.removal_observed("ns/j", "u2");
        assert!(e.expected("ns/j").is_empty());
    }
}
