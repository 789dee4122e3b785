//! The scheduler: the scheduling loop (one pod at a time, synchronous,
//! against a snapshot) and the asynchronous binding cycle, plus what a
//! failure does (re-queue, FailedScheduling event, PodScheduled=False).
//!
//! All API writes (bindings, events, status patches, preemption deletes)
//! run in spawned tasks, so the loop never waits on the network.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tracing::{debug, info, warn};

use crate::algorithm::{ScheduleError, schedule_pod};
use crate::cache::{Cache, Snapshot};
use crate::framework::{ClusterEvent, Code, CycleState, Framework, Status};
use crate::metrics::Metrics;
use crate::pod_info::PodInfo;
use crate::queue::{QueuedPodInfo, SchedulingQueue};

/// State shared by the loop, the binding tasks and the informers.
pub struct Scheduler {
    pub client: Client,
    pub cache: Mutex<Cache>,
    pub queue: Arc<SchedulingQueue>,
    pub profiles: BTreeMap<String, Framework>,
    pub metrics: Arc<Metrics>,
    pub(crate) events: crate::events::Publisher,
    /// Bounds concurrent API writes (kube-rs speaks HTTP/1.1: one
    /// connection per request in flight).
    api_permits: tokio::sync::Semaphore,
}

/// Concurrent API writes (bindings, events, status patches).
pub const MAX_CONCURRENT_API_CALLS: usize = 64;

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("profiles", &self.profiles)
            .finish_non_exhaustive()
    }
}

fn pod_ref(pod: &PodInfo) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: Some(pod.name.clone()),
        namespace: Some(pod.namespace.clone()),
        uid: Some(pod.uid.clone()),
        resource_version: pod.pod.metadata.resource_version.clone(),
        ..ObjectReference::default()
    }
}

/// events.k8s.io notes are limited to 1 kB.
pub const NOTE_LENGTH_LIMIT: usize = 1024;

/// Cuts a message to the event note limit with " ..." (upstream's
/// `truncateMessage`), on a character boundary.
pub fn truncate_note(message: &str) -> String {
    if message.len() <= NOTE_LENGTH_LIMIT {
        return message.to_string();
    }
    let suffix = " ...";
    let mut end = NOTE_LENGTH_LIMIT - suffix.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{suffix}", &message[..end])
}

impl Scheduler {
    /// A scheduler over `profiles`, reporting events as `instance`.
    pub fn new(
        client: Client,
        profiles: BTreeMap<String, Framework>,
        queue: Arc<SchedulingQueue>,
        metrics: Arc<Metrics>,
        instance: String,
    ) -> Scheduler {
        let events = crate::events::Publisher::new(client.clone(), crate::DEFAULT_SCHEDULER_NAME, &instance);
        Scheduler {
            client,
            cache: Mutex::new(Cache::default()),
            queue,
            profiles,
            metrics,
            events,
            api_permits: tokio::sync::Semaphore::new(MAX_CONCURRENT_API_CALLS),
        }
    }

    /// Locks the cache.
    pub fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pops and schedules pods until the queue closes.
    pub async fn run(self: Arc<Self>) {
        let mut snapshot = Snapshot::default();
        let mut next_start = 0usize;
        while let Some(qpi) = self.queue.pop().await {
            self.schedule_one(qpi, &mut snapshot, &mut next_start);
            // Let informers and binders run between decisions.
            tokio::task::yield_now().await;
        }
    }

    /// One scheduling cycle for `qpi` (upstream's `ScheduleOne`).
    pub fn schedule_one(self: &Arc<Self>, qpi: QueuedPodInfo, snapshot: &mut Snapshot, next_start: &mut usize) {
        let pod = qpi.pod_info.clone();
        let Some(fw) = self.profiles.get(pod.scheduler_name()) else {
            self.queue.delete(&pod.key);
            return;
        };
        if pod.is_terminating() || self.cache().is_assumed(&pod.uid) {
            self.queue.delete(&pod.key);
            return;
        }
        let start = Instant::now();
        self.cache().update_snapshot(snapshot);
        snapshot.nominated = self.queue.nominated_pods();
        let mut state = CycleState::default();
        match schedule_pod(fw, &mut state, &pod, snapshot, next_start) {
            Ok(result) => {
                debug!(pod = %pod.key, node = %result.node, evaluated = result.evaluated_nodes,
                       feasible = result.feasible_nodes, "scheduled");
                self.assume_and_bind(fw, state, qpi, &result.node, start);
            }
            Err(ScheduleError::Unschedulable(mut fe)) => {
                let (status, post) = fw.run_post_filter(&pod, snapshot, &fe.statuses);
                fe.post_filter_msg = status.message();
                if fw.has_post_filter() {
                    self.metrics.preemption_attempts.inc();
                }
                if let Some(node) = post.nominated_node.clone() {
                    self.queue.nominate(&pod, Some(&node));
                    self.metrics.preemption_victims.observe(post.victims.len() as f64);
                    self.spawn_preemption(pod.clone(), node, post.victims);
                }
                self.metrics
                    .attempt(&fw.scheduler_name, "unschedulable", start.elapsed().as_secs_f64());
                let plugins = fe.unschedulable_plugins.clone();
                self.fail(&qpi, fe.message(), plugins, true, "Unschedulable");
            }
            Err(ScheduleError::NoNodes) => {
                self.metrics
                    .attempt(&fw.scheduler_name, "unschedulable", start.elapsed().as_secs_f64());
                self.fail(
                    &qpi,
                    "no nodes available to schedule pods".into(),
                    BTreeSet::new(),
                    true,
                    "Unschedulable",
                );
            }
            Err(ScheduleError::Internal(s)) => {
                self.metrics
                    .attempt(&fw.scheduler_name, "error", start.elapsed().as_secs_f64());
                self.fail(&qpi, s.message(), BTreeSet::new(), false, "SchedulerError");
            }
        }
    }

    fn assume_and_bind(
        self: &Arc<Self>,
        fw: &Framework,
        state: CycleState,
        qpi: QueuedPodInfo,
        node: &str,
        start: Instant,
    ) {
        let pod = qpi.pod_info.clone();
        let mut assumed = pod.to_pod();
        if let Some(spec) = assumed.spec.as_mut() {
            spec.node_name = Some(node.to_string());
        }
        let assumed = Arc::new(PodInfo::new(assumed));
        self.cache().assume_pod(assumed, node);
        let reserve = fw.run_reserve(&state, &pod, node);
        let status = if reserve.is_success() {
            fw.run_permit(&state, &pod, node, Instant::now())
        } else {
            reserve
        };
        if !status.is_success() && status.code != Code::Wait {
            self.unreserve_and_fail(fw, &state, &qpi, node, status, start);
            return;
        }
        let this = self.clone();
        let node = node.to_string();
        let profile = fw.scheduler_name.clone();
        tokio::spawn(async move {
            let fw = this.profiles.get(&profile);
            // A pod Permit held waits here, in the binding cycle.
            if let Some(fw) = fw {
                let permit = fw.wait_on_permit(&pod.uid).await;
                if !permit.is_success() {
                    this.unreserve_and_fail(fw, &state, &qpi, &node, permit, start);
                    this.binding_cycle_failed(&pod.key);
                    return;
                }
            }
            let mut pre_bind = fw
                .map(|fw| fw.run_pre_bind(&pod, &node))
                .unwrap_or_else(Status::success);
            if pre_bind.is_success()
                && !crate::volume_binder::claim_names(&pod).is_empty()
                && fw.is_some_and(|fw| fw.plugin_names().contains(&crate::plugins::volume_binding::NAME))
                && let Err(e) = crate::volume_binder::bind_pod_volumes(
                    &this.client,
                    &pod,
                    &node,
                    crate::volume_binder::BIND_TIMEOUT,
                )
                .await
            {
                pre_bind = Status::with(crate::framework::Code::Error, e);
            }
            let result = if pre_bind.is_success() {
                this.bind(&pod, &node)
                    .await
                    .map_err(|e| format!("Binding rejected: {e}"))
            } else {
                Err(pre_bind.message())
            };
            match result {
                Ok(()) => {
                    if let Some(fw) = fw {
                        fw.run_post_bind(&pod, &node);
                    }
                    this.queue.done(&pod.key);
                    this.metrics
                        .attempt(&profile, "scheduled", start.elapsed().as_secs_f64());
                    if let Some(first) = qpi.initial_attempt {
                        this.metrics.scheduled(qpi.attempts, first.elapsed().as_secs_f64());
                    }
                    let note = format!("Successfully assigned {}/{} to {}", pod.namespace, pod.name, node);
                    this.event(&pod, "Normal", "Scheduled", "Binding", note).await;
                    // A pod is scheduled once: nothing continues its
                    // events as a series (kept, they were ~1 KiB a pod).
                    this.events.forget(&pod.uid);
                }
                Err(e) => {
                    warn!(pod = %pod.key, %node, error = %e, "binding failed");
                    if let Some(fw) = this.profiles.get(&profile) {
                        fw.run_unreserve(&state, &pod, &node);
                    }
                    this.cache().forget_pod(&pod.uid);
                    this.metrics.attempt(&profile, "error", start.elapsed().as_secs_f64());
                    this.fail(
                        &qpi,
                        format!("Binding rejected: {e}"),
                        BTreeSet::new(),
                        false,
                        "SchedulerError",
                    );
                    this.binding_cycle_failed(&pod.key);
                }
            }
        });
    }

    /// A binding cycle failed after its pod had been assumed: the room the
    /// pod held is free again, so unschedulable pods that an assigned pod's
    /// deletion could help are moved, the failed pod itself excepted
    /// (upstream's `handleBindingCycleError`).
    fn binding_cycle_failed(&self, failed: &str) {
        self.on_cluster_event_except(ClusterEvent::AssignedPodDelete, Some(failed));
    }

    /// After Reserve or Permit failed (or a held pod was rejected):
    /// Unreserve on every Reserve plugin, forget the assumed pod, then
    /// report and re-queue it, as upstream.
    fn unreserve_and_fail(
        self: &Arc<Self>,
        fw: &Framework,
        state: &CycleState,
        qpi: &QueuedPodInfo,
        node: &str,
        status: Status,
        start: Instant,
    ) {
        let pod = &qpi.pod_info;
        fw.run_unreserve(state, pod, node);
        self.cache().forget_pod(&pod.uid);
        let seconds = start.elapsed().as_secs_f64();
        if status.is_rejected() {
            self.metrics.attempt(&fw.scheduler_name, "unschedulable", seconds);
            let plugins = [status.plugin].into_iter().collect();
            self.fail(qpi, rejection_message(node, status), plugins, true, "Unschedulable");
        } else {
            self.metrics.attempt(&fw.scheduler_name, "error", seconds);
            self.fail(qpi, status.message(), BTreeSet::new(), false, "SchedulerError");
        }
    }

    /// POSTs the pod's `binding` subresource.
    async fn bind(&self, pod: &PodInfo, node: &str) -> Result<(), kube::Error> {
        let binding = Binding {
            metadata: ObjectMeta {
                name: Some(pod.name.clone()),
                namespace: Some(pod.namespace.clone()),
                uid: Some(pod.uid.clone()),
                ..ObjectMeta::default()
            },
            target: ObjectReference {
                kind: Some("Node".into()),
                name: Some(node.to_string()),
                ..ObjectReference::default()
            },
        };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        let _permit = self.api_permits.acquire().await;
        api.create_subresource::<_, serde_json::Value>("binding", &pod.name, &PostParams::default(), &binding)
            .await
            .map(|_| ())
    }

    async fn event(&self, pod: &PodInfo, type_: &str, reason: &str, action: &str, note: String) {
        let regarding = pod_ref(pod);
        let record = crate::events::Record {
            regarding: &regarding,
            type_,
            reason,
            action,
            note: &note,
        };
        let _permit = self.api_permits.acquire().await;
        if let Err(e) = self.events.publish(record).await {
            debug!(pod = %pod.key, error = %e, "event not recorded");
        }
    }

    /// Re-queues a pod that was not scheduled and reports why: a
    /// FailedScheduling event and the PodScheduled=False condition.
    fn fail(
        self: &Arc<Self>,
        qpi: &QueuedPodInfo,
        message: String,
        plugins: BTreeSet<&'static str>,
        unschedulable: bool,
        reason: &'static str,
    ) {
        let pod = qpi.pod_info.clone();
        info!(pod = %pod.key, %message, "unable to schedule pod");
        self.queue.requeue(qpi, plugins, unschedulable, Instant::now());
        let this = self.clone();
        tokio::spawn(async move {
            this.event(&pod, "Warning", "FailedScheduling", "Scheduling", message.clone())
                .await;
            this.set_unschedulable_condition(&pod, reason, &message).await;
        });
    }

    async fn set_unschedulable_condition(&self, pod: &PodInfo, reason: &str, message: &str) {
        let current = pod
            .pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"));
        if current.is_some_and(|c| {
            c.status == "False" && c.reason.as_deref() == Some(reason) && c.message.as_deref() == Some(message)
        }) {
            return;
        }
        let transition = match current {
            Some(c) if c.status == "False" => c.last_transition_time.clone(),
            _ => None,
        }
        .unwrap_or(Time(Timestamp::now()));
        let patch = json!({"status": {"conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": reason,
            "message": message,
            "lastProbeTime": null,
            "lastTransitionTime": transition,
        }]}});
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        let _permit = self.api_permits.acquire().await;
        if let Err(e) = api
            .patch_status(&pod.name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            debug!(pod = %pod.key, error = %e, "PodScheduled condition not updated");
        }
    }

    /// Records the nominated node, then evicts the victims (as upstream's
    /// asynchronous preemption: the preemptor is nominated before its
    /// victims go, so it is never bound before it is nominated).
    fn spawn_preemption(self: &Arc<Self>, preemptor: Arc<PodInfo>, node: String, victims: Vec<Arc<PodInfo>>) {
        let this = self.clone();
        tokio::spawn(async move {
            let api: Api<Pod> = Api::namespaced(this.client.clone(), &preemptor.namespace);
            let patch = json!({"status": {"nominatedNodeName": node}});
            if let Err(e) = api
                .patch_status(&preemptor.name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                debug!(pod = %preemptor.key, error = %e, "nominatedNodeName not set");
            }
            for v in &victims {
                let api: Api<Pod> = Api::namespaced(this.client.clone(), &v.namespace);
                let condition = json!({"status": {"conditions": [{
                    "type": "DisruptionTarget",
                    "status": "True",
                    "reason": crate::plugins::default_preemption::PREEMPTION_REASON,
                    "message": format!("{}: preempting to accommodate a higher priority pod", preemptor.scheduler_name()),
                    "lastTransitionTime": Time(Timestamp::now()),
                }]}});
                if let Err(e) = api
                    .patch_status(&v.name, &PatchParams::default(), &Patch::Strategic(condition))
                    .await
                {
                    debug!(victim = %v.key, error = %e, "DisruptionTarget condition not set");
                }
                let dp = DeleteParams {
                    preconditions: Some(kube::api::Preconditions {
                        uid: Some(v.uid.clone()),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                if let Err(e) = api.delete(&v.name, &dp).await {
                    warn!(victim = %v.key, error = %e, "preemption: deleting victim failed");
                    continue;
                }
                let note = format!("Preempted by pod {} on node {}", preemptor.uid, node);
                this.event(v, "Normal", "Preempted", "Preempting", note).await;
            }
        });
    }
}

/// The FailedScheduling message of a Reserve or Permit rejection on
/// `node`: a fit error over that one node (`0/1 nodes are available: 1
/// <reason>.`), as upstream reports it.
fn rejection_message(node: &str, status: Status) -> String {
    let plugin = status.plugin;
    crate::algorithm::FitError {
        num_all_nodes: 1,
        statuses: [(node.to_string(), status)].into_iter().collect(),
        pre_filter_msg: String::new(),
        post_filter_msg: String::new(),
        unschedulable_plugins: [plugin].into_iter().collect(),
    }
    .message()
}

#[cfg(test)]
mod reserve_permit_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_notes_are_truncated() {
        assert_eq!(truncate_note("short"), "short");
        let long = "é".repeat(600);
        let t = truncate_note(&long);
        assert!(t.len() <= NOTE_LENGTH_LIMIT && t.ends_with(" ..."), "{}", t.len());
    }
}
