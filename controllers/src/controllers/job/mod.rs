//! The Job controller (upstream `pkg/controller/job`): runs a Job's pods
//! to completion.
//!
//! Pods are created from the template with the
//! `batch.kubernetes.io/job-tracking` finalizer ([`pod_template`]); a
//! finished pod is first recorded in `status.uncountedTerminatedPods`,
//! then its finalizer is removed, then it moves into the `succeeded` /
//! `failed` counters ([`tracking`]), so a pod is counted exactly once
//! even across restarts. [`sync`] decides, per reconcile, whether the Job
//! failed (`backoffLimit`, `activeDeadlineSeconds`, `podFailurePolicy`,
//! `backoffLimitPerIndex`/`maxFailedIndexes`), succeeded (`completions`,
//! `successPolicy`), or needs pods created or deleted ([`manage`]:
//! `parallelism`, Indexed completion, `suspend`, `podReplacementPolicy`,
//! failure back-off from [`backoff`]). Terminal conditions go through the
//! interim `FailureTarget` / `SuccessCriteriaMet` conditions and are set
//! only once no pod is still terminating.

pub mod backoff;
pub mod claim;
pub mod conditions;
pub mod failure_policy;
pub mod indexes;
pub mod manage;
pub mod pod_template;
pub mod success_policy;
pub mod sync;
pub mod tracking;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::cached_pod::CachedPod;
use crate::controllers::controller_ref::{controller_of, owners_selecting, resolve_controller_ref};
use crate::controllers::events::EventRecorder;
use crate::error::Error;
use crate::expectations::Expectations;
use crate::informer::{Change, Informer, object_key};
use crate::manager::ControllerContext;
use crate::queue::WorkQueue;
use crate::runner::{new_queue, run_controller_workers};
use backoff::BackoffRecord;
use pod_template::has_tracking_finalizer;
use tracking::FinalizerExpectations;

/// Upstream's name.
pub const CONTROLLER_NAME: &str = "job-controller";
/// Pod events are batched: the Job is synced at most once per this period
/// for them (upstream's `syncJobBatchPeriod`).
pub const SYNC_BATCH_PERIOD: Duration = Duration::from_secs(1);
/// The `spec.managedBy` value of Jobs this controller manages.
pub const JOB_CONTROLLER_MANAGER: &str = "kubernetes.io/job-controller";

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

/// The Job controller's shared state.
pub struct JobController {
    pub(crate) client: kube::Client,
    pub(crate) jobs: Informer<Job>,
    pub(crate) pods: Informer<CachedPod>,
    pub(crate) expectations: Expectations,
    pub(crate) finalizer_expectations: FinalizerExpectations,
    /// Failures since the last success, per Job key.
    pub(crate) backoff: Mutex<HashMap<String, BackoffRecord>>,
    pub(crate) queue: WorkQueue<String>,
    /// Pods whose tracking finalizer must go because no running Job
    /// tracks them.
    pub(crate) orphans: WorkQueue<String>,
    pub(crate) events: EventRecorder,
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let queue = new_queue("job", &ctx.metrics);
    let orphans = new_queue("job_orphan_pod", &ctx.metrics);
    let controller = Arc::new(JobController {
        client: ctx.client.clone(),
        jobs: ctx.informers.get::<Job>(),
        pods: ctx.informers.get::<CachedPod>(),
        expectations: Expectations::default(),
        finalizer_expectations: FinalizerExpectations::default(),
        backoff: Mutex::new(HashMap::new()),
        queue: queue.clone(),
        orphans: orphans.clone(),
        events: EventRecorder::new(ctx.client.clone(), CONTROLLER_NAME),
    });
    let c = controller.clone();
    controller.jobs.add_handler(move |change| c.on_job(change));
    let c = controller.clone();
    controller.pods.add_handler(move |change| c.on_pod(change));
    controller.jobs.wait_synced().await;
    controller.pods.wait_synced().await;
    let jobs = run_controller_workers(
        CONTROLLER_NAME,
        queue,
        ctx.config.concurrency.job,
        &ctx.metrics,
        controller.clone(),
        |c, key| c.sync(key).boxed(),
    );
    let orphan_workers = run_controller_workers(
        "job-controller-orphan-pods",
        orphans,
        1,
        &ctx.metrics,
        controller.clone(),
        |c, key| c.sync_orphan_pod(key).boxed(),
    );
    futures::join!(jobs, orphan_workers);
    Ok(())
}

/// `spec.completions`.
pub fn completions(job: &Job) -> Option<i32> {
    job.spec.as_ref()?.completions
}

/// Whether the Job is Indexed.
pub fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

/// Whether `spec.suspend` is true.
pub fn is_suspended(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.suspend) == Some(true)
}

/// Whether `spec.backoffLimitPerIndex` is set (Indexed Jobs).
pub fn has_backoff_limit_per_index(job: &Job) -> bool {
    job.spec.as_ref().is_some_and(|s| s.backoff_limit_per_index.is_some())
}

/// Whether only failed pods are replaced (terminating ones are waited
/// for): `podReplacementPolicy: Failed`, implied by a pod failure policy.
pub fn only_replace_failed_pods(job: &Job) -> bool {
    job.spec
        .as_ref()
        .is_some_and(|s| s.pod_replacement_policy.as_deref() == Some("Failed") || s.pod_failure_policy.is_some())
}

/// Whether the pod counts as failed: phase Failed, or (unless only failed
/// pods are replaced) deleted before it succeeded.
pub fn is_pod_failed(pod: &CachedPod, job: &Job) -> bool {
    let phase = crate::controllers::pod_status::phase(pod);
    if phase == "Failed" {
        return true;
    }
    if only_replace_failed_pods(job) {
        return false;
    }
    pod.metadata.deletion_timestamp.is_some() && phase != "Succeeded"
}

impl JobController {
    /// The Job a controller reference points to, if cached with that uid.
    fn resolve(&self, namespace: &str, meta: &ObjectMeta) -> Option<Arc<Job>> {
        controller_of(meta).filter(|r| r.api_version.starts_with("batch/"))?;
        resolve_controller_ref(meta, "Job", |name| self.jobs.get(namespace, name))
    }

    /// Jobs in the pod's namespace whose selector matches it.
    fn selecting(&self, pod: &CachedPod) -> Vec<Arc<Job>> {
        let ns = pod.namespace().unwrap_or_default();
        owners_selecting(self.jobs.list(&ns), &pod.metadata, |j| {
            j.spec.as_ref()?.selector.as_ref()
        })
    }

    fn enqueue_batched(&self, job: &Job) {
        self.queue.add_after(object_key(job), SYNC_BATCH_PERIOD);
    }

    fn on_job(&self, change: Change<'_, Job>) {
        match change {
            Change::Added(job) => self.queue.add(object_key(job.as_ref())),
            Change::Updated { old, new } => {
                let key = object_key(new.as_ref());
                if old.metadata.generation == new.metadata.generation {
                    self.enqueue_batched(new);
                } else {
                    self.queue.add(key.clone());
                }
                if conditions::is_finished(new) {
                    self.cleanup_pod_finalizers(new);
                }
                // A changed activeDeadlineSeconds: sync when it passes.
                let ads = new.spec.as_ref().and_then(|s| s.active_deadline_seconds);
                let old_ads = old.spec.as_ref().and_then(|s| s.active_deadline_seconds);
                if let (Some(ads), Some(start)) = (ads, new.status.as_ref().and_then(|s| s.start_time.as_ref()))
                    && old_ads != Some(ads)
                {
                    let deadline = start.0.as_second().saturating_add(ads);
                    let left = deadline.saturating_sub(Timestamp::now().as_second());
                    self.queue
                        .add_after(key, Duration::from_secs(u64::try_from(left).unwrap_or(0)));
                }
            }
            Change::Deleted(job) => {
                self.queue.add(object_key(job.as_ref()));
                self.cleanup_pod_finalizers(job);
            }
        }
    }

    /// Queues the Job's pods that still carry the tracking finalizer.
    fn cleanup_pod_finalizers(&self, job: &Job) {
        let ns = job.namespace().unwrap_or_default();
        let uid = job.metadata.uid.clone().unwrap_or_default();
        for pod in self.pods.list(&ns) {
            if has_tracking_finalizer(&pod) && controller_of(&pod.metadata).is_some_and(|r| r.uid == uid) {
                self.orphans.add(object_key(pod.as_ref()));
            }
        }
    }

    fn on_pod(&self, change: Change<'_, CachedPod>) {
        match change {
            Change::Added(pod) => {
                if pod.metadata.deletion_timestamp.is_some() {
                    return self.on_pod_deleted(pod, false);
                }
                let ns = pod.namespace().unwrap_or_default();
                if let Some(job) = self.resolve(&ns, &pod.metadata) {
                    self.expectations.creation_observed(&object_key(job.as_ref()));
                    self.enqueue_batched(&job);
                    return;
                }
                if has_tracking_finalizer(pod) {
                    self.orphans.add(object_key(pod.as_ref()));
                }
                if controller_of(&pod.metadata).is_none() {
                    for job in self.selecting(pod) {
                        self.enqueue_batched(&job);
                    }
                }
            }
            Change::Updated { old, new } => {
                if old.metadata.resource_version == new.metadata.resource_version {
                    return;
                }
                if new.metadata.deletion_timestamp.is_some() {
                    self.on_pod_deleted(new, false);
                    // The deleting pod may still change (finish, lose its
                    // finalizer): fall through to the tracking updates.
                }
                let ns = new.namespace().unwrap_or_default();
                let old_ref = controller_of(&old.metadata).map(|r| r.uid.clone());
                let new_ref = controller_of(&new.metadata).map(|r| r.uid.clone());
                if old_ref != new_ref
                    && let Some(job) = self.resolve(&ns, &old.metadata)
                {
                    self.enqueue_batched(&job);
                }
                if let Some(job) = self.resolve(&ns, &new.metadata) {
                    if has_tracking_finalizer(old) && !has_tracking_finalizer(new) {
                        self.finalizer_expectations
                            .removal_observed(&object_key(job.as_ref()), new.metadata.uid.as_deref().unwrap_or(""));
                    }
                    self.enqueue_batched(&job);
                    return;
                }
                if has_tracking_finalizer(new) {
                    self.orphans.add(object_key(new.as_ref()));
                }
                if old.metadata.labels != new.metadata.labels || old_ref != new_ref {
                    for job in self.selecting(new) {
                        self.enqueue_batched(&job);
                    }
                }
            }
            Change::Deleted(pod) => self.on_pod_deleted(pod, true),
        }
    }

    /// A pod got a deletionTimestamp (`final == false`) or is gone.
    fn on_pod_deleted(&self, pod: &Arc<CachedPod>, final_delete: bool) {
        let ns = pod.namespace().unwrap_or_default();
        let has_finalizer = has_tracking_finalizer(pod);
        let Some(job) = self.resolve(&ns, &pod.metadata).filter(|j| !conditions::is_finished(j)) else {
            if has_finalizer && !final_delete {
                self.orphans.add(object_key(pod.as_ref()));
            }
            return;
        };
        let key = object_key(job.as_ref());
        self.expectations.deletion_observed(&key, &object_key(pod.as_ref()));
        if final_delete || !has_finalizer {
            self.finalizer_expectations
                .removal_observed(&key, pod.metadata.uid.as_deref().unwrap_or(""));
        }
        self.enqueue_batched(&job);
    }

    /// Removes the tracking finalizer from `ns/name` unless a running Job
    /// controls the pod (upstream's `syncOrphanPod`).
    async fn sync_orphan_pod(&self, key: &str) -> Result<crate::runner::Action, Error> {
        let (ns, name) = crate::informer::split_key(key);
        let Some(pod) = self.pods.get(ns, name) else {
            return Ok(crate::runner::Action::Done);
        };
        if let Some(r) = controller_of(&pod.metadata) {
            if r.kind != "Job" || r.api_version != "batch/v1" {
                return Ok(crate::runner::Action::Done);
            }
            if let Some(job) = self.resolve(ns, &pod.metadata) {
                let managed_elsewhere = job
                    .spec
                    .as_ref()
                    .and_then(|s| s.managed_by.as_deref())
                    .is_some_and(|m| m != JOB_CONTROLLER_MANAGER);
                if managed_elsewhere || !conditions::is_finished(&job) {
                    return Ok(crate::runner::Action::Done);
                }
            }
        }
        manage::remove_tracking_finalizer(&self.client, &pod).await?;
        Ok(crate::runner::Action::Done)
    }

    fn backoff_record(&self, key: &str) -> BackoffRecord {
        self.backoff
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    fn set_backoff_record(&self, key: &str, record: BackoffRecord) {
        let mut m = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
        if record == BackoffRecord::default() {
            m.remove(key);
        } else {
            m.insert(key.to_string(), record);
        }
    }

    fn forget(&self, key: &str) {
        self.expectations.delete(key);
        self.finalizer_expectations.delete(key);
        self.backoff.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

/// Uids of `pods`.
pub fn uids<'a>(pods: impl IntoIterator<Item = &'a Arc<CachedPod>>) -> HashSet<String> {
    pods.into_iter().filter_map(|p| p.metadata.uid.clone()).collect()
}
