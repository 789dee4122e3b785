//! The disruption controller (upstream's `pkg/controller/disruption`):
//! keeps every PodDisruptionBudget's status — `expectedPods`,
//! `desiredHealthy`, `currentHealthy`, `disruptionsAllowed`,
//! `disruptedPods` and the `DisruptionAllowed` condition — in step with
//! the pods its selector picks. The apiserver's eviction subresource reads
//! that status to allow or refuse evictions, and records evicted pods in
//! `disruptedPods`, which this controller prunes once the pods are gone or
//! the deletion timeout passed.

pub mod budget;
mod scale;

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::ReplicationController;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, PostParams};

use crate::cached_pod::CachedPod;
use crate::controllers::controller_ref::selector_matches;
use crate::controllers::events::{EventRecorder, EventType, reference};
use crate::error::{Error, is_not_found};
use crate::informer::{Change, Informer, object_key, split_key};
use crate::manager::ControllerContext;
use crate::queue::WorkQueue;
use crate::runner::{Action, new_queue, run_controller_workers};

const NAME: &str = "disruption-controller";
const WORKERS: usize = 1;

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

struct State {
    client: kube::Client,
    pods: Informer<CachedPod>,
    budgets: Informer<PodDisruptionBudget>,
    scales: scale::Finders,
    recorder: EventRecorder,
}

fn enqueue_budgets_for(budgets: &Informer<PodDisruptionBudget>, q: &WorkQueue<String>, pod: &CachedPod) {
    let ns = pod.namespace().unwrap_or_default();
    let labels = pod.labels();
    for pdb in budgets.list(&ns) {
        let selector = pdb.spec.as_ref().and_then(|s| s.selector.as_ref());
        if selector.is_some_and(|s| selector_matches(s, labels)) {
            q.add(object_key(pdb.as_ref()));
        }
    }
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let pods = ctx.informers.get::<CachedPod>();
    let budgets = ctx.informers.get::<PodDisruptionBudget>();
    let scales = scale::Finders {
        client: ctx.client.clone(),
        replica_sets: ctx.informers.get::<ReplicaSet>(),
        deployments: ctx.informers.get::<Deployment>(),
        stateful_sets: ctx.informers.get::<StatefulSet>(),
        replication_controllers: ctx.informers.get::<ReplicationController>(),
    };
    let queue = new_queue("disruption", &ctx.metrics);
    let q = queue.clone();
    budgets.add_handler(move |change| {
        let (Change::Added(pdb) | Change::Updated { new: pdb, .. } | Change::Deleted(pdb)) = change;
        q.add(object_key(pdb.as_ref()));
    });
    let (q, b) = (queue.clone(), budgets.clone());
    pods.add_handler(move |change| match change {
        Change::Added(p) | Change::Deleted(p) => enqueue_budgets_for(&b, &q, p),
        Change::Updated { old, new } => {
            if old.labels() != new.labels() {
                enqueue_budgets_for(&b, &q, old);
            }
            enqueue_budgets_for(&b, &q, new);
        }
    });
    pods.wait_synced().await;
    budgets.wait_synced().await;
    scales.wait_synced().await;
    let state = Arc::new(State {
        recorder: EventRecorder::new(ctx.client.clone(), NAME),
        client: ctx.client.clone(),
        pods,
        budgets,
        scales,
    });
    run_controller_workers(NAME, queue, WORKERS, &ctx.metrics, state, |c, key| c.sync(key).boxed()).await;
    Ok(())
}

impl State {
    async fn sync(&self, key: &str) -> Result<Action, Error> {
        let (ns, name) = split_key(key);
        let Some(pdb) = self.budgets.get(ns, name) else {
            return Ok(Action::Done);
        };
        let now = Timestamp::now();
        let generation = pdb.metadata.generation.unwrap_or(0);
        let old = pdb.status.as_ref();
        let spec = pdb.spec.clone().unwrap_or_default();
        // A budget without a selector selects nothing, an empty one all.
        let all = self.pods.list(ns);
        let pods: Vec<&CachedPod> = match &spec.selector {
            None => Vec::new(),
            Some(sel) => all
                .iter()
                .map(Arc::as_ref)
                .filter(|p| selector_matches(sel, p.labels()))
                .collect(),
        };
        if pods.is_empty() {
            self.recorder.record(
                reference(pdb.as_ref()),
                EventType::Normal,
                "NoPods",
                "Sync",
                "No matching pods found".into(),
            );
        }
        let computed = self.expected(&pdb, &spec, &pods).await;
        let (status, recheck) = match computed {
            Ok((expected, desired)) => {
                let recorded = old.and_then(|s| s.disrupted_pods.clone()).unwrap_or_default();
                let (disrupted, recheck) = budget::prune_disrupted(&recorded, &pods, now);
                let healthy = budget::count_healthy(&pods, &disrupted);
                let status = budget::synced_status(old, generation, healthy, desired, expected, disrupted, now);
                (status, recheck)
            }
            Err(e) => {
                self.recorder.record(
                    reference(pdb.as_ref()),
                    EventType::Warning,
                    "CalculateExpectedPodCountFailed",
                    "Sync",
                    format!("Failed to calculate the number of expected pods: {e}"),
                );
                (budget::fail_safe_status(old, generation, &e, now), None)
            }
        };
        if budget::changed(old, &status) {
            self.write_status(&pdb, status).await?;
        }
        Ok(match recheck {
            Some(at) => {
                let wait = now.duration_until(at).unsigned_abs();
                Action::RequeueAfter(wait + std::time::Duration::from_secs(1))
            }
            None => Action::Done,
        })
    }

    /// `(expectedPods, desiredHealthy)`, or why they cannot be known.
    async fn expected(
        &self,
        pdb: &PodDisruptionBudget,
        spec: &k8s_openapi::api::policy::v1::PodDisruptionBudgetSpec,
        pods: &[&CachedPod],
    ) -> Result<(i32, i32), String> {
        let (min, max) = (spec.min_available.as_ref(), spec.max_unavailable.as_ref());
        let mut scale = 0;
        if budget::needs_scale(min, max) {
            let (total, unmanaged) = self.scales.expected_scale(pods).await?;
            if !unmanaged.is_empty() {
                let selector = spec.selector.as_ref().map(|s| format!("{s:?}")).unwrap_or_default();
                self.recorder.record(
                    reference(pdb),
                    EventType::Warning,
                    "UnmanagedPods",
                    "Sync",
                    format!(
                        "Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value."
                    ),
                );
            }
            scale = total;
        }
        let pod_count = i32::try_from(pods.len()).unwrap_or(i32::MAX);
        budget::expected_and_desired(min, max, pod_count, scale)
    }

    async fn write_status(&self, pdb: &PodDisruptionBudget, status: PodDisruptionBudgetStatus) -> Result<(), Error> {
        let mut fresh = pdb.clone();
        fresh.status = Some(status);
        let ns = pdb.namespace().unwrap_or_default();
        let api = Api::<PodDisruptionBudget>::namespaced(self.client.clone(), &ns);
        match api
            .replace_status(&pdb.name_any(), &PostParams::default(), &fresh)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
