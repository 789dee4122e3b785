//! Creating and deleting a Job's pods (upstream's `manageJob`): as many
//! active pods as `parallelism` allows and the remaining completions
//! need, none while suspended; Indexed Jobs get one pod per pending index
//! and lose duplicates; creation waits out the failure back-off.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use futures::future::join_all;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::backoff::{finish_time, remaining_for_failures};
use super::indexes::{OrderedIntervals, completion_index, first_pending_indexes, valid_index};
use super::pod_template::{JOB_TRACKING_FINALIZER, has_tracking_finalizer, index_failure_count, pod_for_job};
use super::sync::SyncCtx;
use super::{
    JobController, SYNC_BATCH_PERIOD, completions, has_backoff_limit_per_index, is_indexed, is_suspended,
    only_replace_failed_pods,
};
use crate::cached_pod::CachedPod;
use crate::controllers::events::EventType;
use crate::controllers::pod_status::{is_ready, is_terminating};
use crate::controllers::replicaset::ranking::pods_to_delete;
use crate::controllers::replicaset::{SLOW_START_INITIAL_BATCH, slow_start_batch};
use crate::error::{Error, is_not_found, status_code};
use crate::informer::object_key;

/// At most this many pods are created or deleted per sync.
pub const MAX_POD_CREATE_DELETE_PER_SYNC: usize = 500;

/// Removes the tracking finalizer (a strategic merge patch, as upstream);
/// a pod already gone is fine.
pub async fn remove_tracking_finalizer(client: &kube::Client, pod: &CachedPod) -> Result<(), kube::Error> {
    if !has_tracking_finalizer(pod) {
        return Ok(());
    }
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [JOB_TRACKING_FINALIZER]}});
    match api
        .patch(&pod.name_any(), &PatchParams::default(), &Patch::Strategic(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Indexed pods to remove whatever the counts: those without a valid
/// index, and all but the most advanced pod of a repeated index.
pub fn duplicated_index_pods(pods: &[Arc<CachedPod>], completions: i32, now: Timestamp) -> Vec<Arc<CachedPod>> {
    let mut rm = Vec::new();
    let mut by_index: HashMap<i32, Vec<Arc<CachedPod>>> = HashMap::new();
    for p in pods {
        match valid_index(p, completions) {
            Some(ix) => by_index.entry(ix).or_default().push(p.clone()),
            None => rm.push(p.clone()),
        }
    }
    for group in by_index.into_values().filter(|g| g.len() > 1) {
        // Ranked first = least advanced: keep only the last.
        rm.extend(pods_to_delete(&group, &[], group.len() - 1, now));
    }
    rm
}

impl JobController {
    /// Deletes `pods` keeping their finalizers (the tracking counts them
    /// later). Returns (ready deleted, deleted, first error).
    pub(crate) async fn delete_active_pods(&self, job: &Job, pods: &[Arc<CachedPod>]) -> (i32, i32, Option<Error>) {
        let ns = job.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let results = join_all(pods.iter().map(|p| {
            let api = api.clone();
            async move { (p, api.delete(&p.name_any(), &DeleteParams::default()).await) }
        }))
        .await;
        let (mut ready, mut deleted, mut first_err) = (0, 0, None);
        for (p, r) in results {
            match r {
                Ok(_) => {
                    self.event(
                        job,
                        EventType::Normal,
                        "SuccessfulDelete",
                        format!("Deleted pod: {}", p.name_any()),
                    );
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    first_err.get_or_insert(Error::from(e));
                    continue;
                }
            }
            deleted += 1;
            if is_ready(p) {
                ready += 1;
            }
        }
        (ready, deleted, first_err)
    }

    /// Deletes surplus pods, their finalizers removed first (upstream's
    /// `deleteJobPods`), with deletion expectations.
    async fn delete_job_pods(&self, cx: &SyncCtx, pods: &[Arc<CachedPod>]) -> (i32, i32, Option<Error>) {
        self.expectations
            .expect_deletions(&cx.key, pods.iter().map(|p| object_key(p.as_ref())));
        let ns = cx.job.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let results = join_all(pods.iter().map(|p| {
            let api = api.clone();
            let client = self.client.clone();
            async move {
                if let Err(e) = remove_tracking_finalizer(&client, p).await {
                    return (p, Err(e));
                }
                (p, api.delete(&p.name_any(), &DeleteParams::default()).await.map(|_| ()))
            }
        }))
        .await;
        let (mut ready, mut deleted, mut first_err) = (0, 0, None);
        for (p, r) in results {
            match r {
                Ok(()) => {
                    self.event(
                        &cx.job,
                        EventType::Normal,
                        "SuccessfulDelete",
                        format!("Deleted pod: {}", p.name_any()),
                    );
                }
                Err(e) => {
                    self.expectations.deletion_observed(&cx.key, &object_key(p.as_ref()));
                    if !is_not_found(&e) {
                        first_err.get_or_insert(Error::from(e));
                        continue;
                    }
                }
            }
            deleted += 1;
            if is_ready(p) {
                ready += 1;
            }
        }
        (ready, deleted, first_err)
    }

    /// Creates or deletes pods; returns the active count afterwards and
    /// the first error.
    pub(crate) async fn manage_job(&self, cx: &mut SyncCtx) -> (i32, Option<Error>) {
        let mut active = i32::try_from(cx.active_pods.len()).unwrap_or(i32::MAX);
        let job = cx.job.clone();
        let parallelism = job.spec.as_ref().and_then(|s| s.parallelism).unwrap_or(1).max(0);
        if is_suspended(&job) {
            let pods = cx.active_pods.clone();
            let (ready, removed, err) = self.delete_job_pods(cx, &pods).await;
            cx.terminating += removed;
            cx.ready -= ready;
            return (active - removed, err);
        }
        let want_active = match completions(&job) {
            None if cx.succeeded > 0 => active,
            None => parallelism,
            Some(c) => (c - cx.succeeded).clamp(0, parallelism),
        };
        let rm_at_least = usize::try_from(active - want_active).unwrap_or(0);
        let mut to_delete = if is_indexed(&job) {
            duplicated_index_pods(&cx.active_pods, completions(&job).unwrap_or(0), cx.now)
        } else {
            Vec::new()
        };
        if to_delete.len() < rm_at_least {
            let left: Vec<Arc<CachedPod>> = cx
                .active_pods
                .iter()
                .filter(|p| !to_delete.iter().any(|d| Arc::ptr_eq(d, p)))
                .cloned()
                .collect();
            to_delete.extend(pods_to_delete(&left, &[], rm_at_least - to_delete.len(), cx.now));
        }
        to_delete.truncate(MAX_POD_CREATE_DELETE_PER_SYNC);
        if !to_delete.is_empty() {
            let (ready, removed, err) = self.delete_job_pods(cx, &to_delete).await;
            cx.terminating += removed;
            cx.ready -= ready;
            return (active - removed, err);
        }

        let terminating = if only_replace_failed_pods(&job) {
            cx.terminating
        } else {
            0
        };
        let diff = want_active - terminating - active;
        if diff <= 0 {
            return (active, None);
        }
        if !has_backoff_limit_per_index(&job) {
            let wait = cx.new_backoff.remaining(cx.now);
            if !wait.is_zero() {
                self.queue.add_after(cx.key.clone(), wait.max(SYNC_BATCH_PERIOD));
                return (active, None);
            }
        }
        let mut n = usize::try_from(diff).unwrap_or(0).min(MAX_POD_CREATE_DELETE_PER_SYNC);
        let mut indexes: Vec<Option<i32>> = vec![None; n];
        if is_indexed(&job) {
            let completions = completions(&job).unwrap_or(0);
            let mut non_pending = cx
                .succeeded_indexes
                .with_indexes(cx.active_pods.iter().filter_map(|p| completion_index(p)));
            if let Some(failed) = cx.failed_indexes.as_ref() {
                non_pending = non_pending.merge(failed);
            }
            if only_replace_failed_pods(&job) {
                non_pending = non_pending.with_indexes(
                    cx.pods
                        .iter()
                        .filter(|p| is_terminating(p))
                        .filter_map(|p| completion_index(p)),
                );
            }
            let mut pending = first_pending_indexes(&non_pending, n, completions);
            if has_backoff_limit_per_index(&job) {
                let (ready_now, wait) = self.indexes_ready_to_create(cx, &pending);
                if ready_now.is_empty() {
                    if let Some(wait) = wait {
                        self.queue.add_after(cx.key.clone(), wait.max(SYNC_BATCH_PERIOD));
                    }
                    return (active, None);
                }
                pending = ready_now;
            }
            n = pending.len();
            indexes = pending.into_iter().map(Some).collect();
        }
        if n == 0 {
            return (active, None);
        }
        self.expectations.expect_creations(&cx.key, n);
        let queue = Mutex::new(VecDeque::from(indexes));
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &job.namespace().unwrap_or_default());
        let delayed = cx.delayed_per_index.clone();
        let (created, err) = slow_start_batch(n, SLOW_START_INITIAL_BATCH, || {
            let index = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front().flatten();
            let replaced = index.and_then(|ix| delayed.get(&ix).cloned());
            let pod = pod_for_job(&job, index, replaced.as_deref());
            let api = api.clone();
            let job = &job;
            async move {
                match api.create(&PostParams::default(), &pod).await {
                    Ok(p) => {
                        self.event(
                            job,
                            EventType::Normal,
                            "SuccessfulCreate",
                            format!("Created pod: {}", p.name_any()),
                        );
                        Ok(())
                    }
                    Err(e) if status_code(&e) == Some(403) && is_namespace_terminating(&e) => Ok(()),
                    Err(e) => {
                        self.event(job, EventType::Warning, "FailedCreate", format!("Error creating: {e}"));
                        Err(e)
                    }
                }
            }
        })
        .await;
        for _ in created..n {
            self.expectations.creation_observed(&cx.key);
        }
        active += i32::try_from(created).unwrap_or(0);
        (active, err.map(Error::from))
    }

    /// Of `indexes`, those whose per-index back-off is over; else the
    /// shortest wait.
    fn indexes_ready_to_create(&self, cx: &SyncCtx, indexes: &[i32]) -> (Vec<i32>, Option<std::time::Duration>) {
        let mut now_ready = Vec::new();
        let mut min_wait: Option<std::time::Duration> = None;
        for ix in indexes {
            let wait = match cx.delayed_per_index.get(ix) {
                None => std::time::Duration::ZERO,
                Some(p) => remaining_for_failures(
                    u32::try_from(index_failure_count(p) + 1).unwrap_or(1),
                    Some(finish_time(p)),
                    cx.now,
                ),
            };
            if wait.is_zero() {
                now_ready.push(*ix);
            } else {
                min_wait = Some(min_wait.map_or(wait, |m| m.min(wait)));
            }
        }
        (now_ready, min_wait)
    }
}

fn is_namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.message.contains("because it is being terminated"))
}

/// `completedIndexes`-style text of the indexes of `pods` (for logs and
/// tests).
pub fn indexes_of(pods: &[Arc<CachedPod>]) -> String {
    OrderedIntervals::default()
        .with_indexes(pods.iter().filter_map(|p| completion_index(p)))
        .to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn pod(name: &str, index: Option<&str>, phase: &str, ready: bool) -> Arc<CachedPod> {
        let mut meta = json!({"name": name, "uid": name, "creationTimestamp": "2024-01-01T00:00:00Z"});
        if let Some(ix) = index {
            meta["annotations"] = json!({"batch.kubernetes.io/job-completion-index": ix});
        }
        Arc::new(
            serde_json::from_value(json!({"metadata": meta, "spec": {"nodeName": "n", "containers": []},
                "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}}))
            .unwrap(),
        )
    }

    #[test]
    fn duplicate_and_invalid_indexes_are_removed() {
        let pods = vec![
            pod("a", Some("0"), "Running", true),
            pod("b", Some("0"), "Pending", false),
            pod("c", Some("1"), "Running", true),
            pod("d", Some("7"), "Running", true),
            pod("e", None, "Running", true),
            pod("f", Some("x"), "Running", true),
        ];
        let rm = duplicated_index_pods(&pods, 3, Timestamp::now());
        let mut names: Vec<String> = rm.iter().map(|p| p.name_any()).collect();
        names.sort();
        assert_eq!(names, vec!["b", "d", "e", "f"]);
        assert_eq!(indexes_of(&pods), "0,1,7");
    }
}
