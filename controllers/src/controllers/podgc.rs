//! The pod garbage collector (upstream's `podgc`): every 20 seconds it
//! force-deletes
//! - the oldest terminated pods (evicted ones first) beyond
//!   `--terminated-pod-gc-threshold`;
//! - terminating pods on not-ready nodes tainted
//!   `node.kubernetes.io/out-of-service`;
//! - pods bound to nodes that no longer exist, once the node has been
//!   missing for 40 seconds and a live read confirms it (marked Failed
//!   with a `DisruptionTarget` condition first);
//! - terminating pods that were never scheduled.
//!
//! Non-terminal pods are marked Failed before deletion, since no kubelet
//! will. The choices are pure functions of the cached pods and nodes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, join_all};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

use crate::cached_pod::CachedPod;
use crate::controllers::pod_status::phase;
use crate::error::{Error, is_not_found};
use crate::informer::Informer;
use crate::manager::ControllerContext;

const NAME: &str = "pod-garbage-collector-controller";
/// How often the collector runs (upstream's `gcCheckPeriod`).
pub const GC_CHECK_PERIOD: Duration = Duration::from_secs(20);
/// How long a node must be missing before its pods are orphans.
pub const QUARANTINE: Duration = Duration::from_secs(40);
const OUT_OF_SERVICE_TAINT: &str = "node.kubernetes.io/out-of-service";

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

/// Not Pending, Running or Unknown.
pub fn is_terminated(pod: &CachedPod) -> bool {
    !matches!(phase(pod), "Pending" | "Running" | "Unknown")
}

fn is_evicted(pod: &CachedPod) -> bool {
    phase(pod) == "Failed" && pod.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("Evicted")
}

fn node_name(pod: &CachedPod) -> &str {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("")
}

/// The terminated pods to delete: beyond `threshold`, evicted ones first,
/// then the oldest (name breaks ties). A threshold of 0 keeps them all.
pub fn terminated_to_delete(pods: &[Arc<CachedPod>], threshold: usize) -> Vec<Arc<CachedPod>> {
    if threshold == 0 {
        return Vec::new();
    }
    let mut terminated: Vec<Arc<CachedPod>> = pods.iter().filter(|p| is_terminated(p)).cloned().collect();
    let Some(excess) = terminated.len().checked_sub(threshold).filter(|n| *n > 0) else {
        return Vec::new();
    };
    terminated.sort_by(|a, b| {
        let created = |p: &CachedPod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
        is_evicted(b)
            .cmp(&is_evicted(a))
            .then_with(|| created(a).cmp(&created(b)))
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    terminated.truncate(excess);
    terminated
}

fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Terminating pods on not-ready nodes tainted out-of-service.
pub fn terminating_out_of_service(pods: &[Arc<CachedPod>], nodes: &HashMap<String, Arc<Node>>) -> Vec<Arc<CachedPod>> {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some())
        .filter(|p| {
            nodes.get(node_name(p)).is_some_and(|n| {
                !node_ready(n)
                    && n.spec
                        .as_ref()
                        .and_then(|s| s.taints.as_ref())
                        .is_some_and(|t| t.iter().any(|t| t.key == OUT_OF_SERVICE_TAINT))
            })
        })
        .cloned()
        .collect()
}

/// Terminating pods never bound to a node.
pub fn unscheduled_terminating(pods: &[Arc<CachedPod>]) -> Vec<Arc<CachedPod>> {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some() && node_name(p).is_empty())
        .cloned()
        .collect()
}

/// Nodes pods are bound to that the cache does not have, and since when.
#[derive(Debug, Default)]
pub struct Quarantine {
    missing_since: HashMap<String, Instant>,
}

impl Quarantine {
    /// Notes the nodes pods name but `nodes` lacks, forgets the others,
    /// and returns those missing for at least `period` at `now` (to be
    /// confirmed with a live read).
    pub fn due(
        &mut self,
        pods: &[Arc<CachedPod>],
        nodes: &HashMap<String, Arc<Node>>,
        now: Instant,
        period: Duration,
    ) -> Vec<String> {
        let missing: HashSet<&str> = pods
            .iter()
            .map(|p| node_name(p))
            .filter(|n| !n.is_empty() && !nodes.contains_key(*n))
            .collect();
        self.missing_since.retain(|n, _| missing.contains(n.as_str()));
        for n in missing {
            self.missing_since.entry(n.to_string()).or_insert(now);
        }
        let mut due: Vec<String> = self
            .missing_since
            .iter()
            .filter(|(_, since)| now.duration_since(**since) >= period)
            .map(|(n, _)| n.clone())
            .collect();
        due.sort();
        due
    }
}

struct PodGc {
    client: kube::Client,
    pods: Informer<CachedPod>,
    nodes: Informer<Node>,
    threshold: usize,
    quarantine_period: Duration,
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let gc = PodGc {
        client: ctx.client.clone(),
        pods: ctx.informers.get::<CachedPod>(),
        nodes: ctx.informers.get::<Node>(),
        threshold: ctx.config.endpoints.terminated_pod_gc_threshold,
        quarantine_period: ctx.config.endpoints.pod_gc_quarantine,
    };
    gc.pods.wait_synced().await;
    gc.nodes.wait_synced().await;
    let mut quarantine = Quarantine::default();
    let mut tick = tokio::time::interval(ctx.config.endpoints.pod_gc_period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let start = Instant::now();
        let failed = gc.gc(&mut quarantine).await;
        ctx.metrics.observe_sync(NAME, start.elapsed(), failed);
    }
}

/// The DisruptionTarget condition of pods whose node is gone.
fn orphan_condition() -> serde_json::Value {
    json!({
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "DeletionByPodGC",
        "message": "PodGC: node no longer exists",
        "lastTransitionTime": Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    })
}

impl PodGc {
    /// One pass; returns whether any deletion failed.
    async fn gc(&self, quarantine: &mut Quarantine) -> bool {
        let pods = self.pods.list_all();
        let nodes: HashMap<String, Arc<Node>> = self
            .nodes
            .list_all()
            .into_iter()
            .map(|n| (n.metadata.name.clone().unwrap_or_default(), n))
            .collect();
        let mut work: Vec<(Arc<CachedPod>, Option<serde_json::Value>)> = Vec::new();
        let terminated = terminated_to_delete(&pods, self.threshold);
        if !terminated.is_empty() {
            tracing::info!(
                controller = NAME,
                count = terminated.len(),
                "garbage collecting terminated pods"
            );
        }
        work.extend(terminated.into_iter().map(|p| (p, None)));
        work.extend(terminating_out_of_service(&pods, &nodes).into_iter().map(|p| (p, None)));
        let api: Api<Node> = Api::all(self.client.clone());
        let mut gone = HashSet::new();
        for name in quarantine.due(&pods, &nodes, Instant::now(), self.quarantine_period) {
            match api.get_opt(&name).await {
                Ok(None) => {
                    gone.insert(name);
                }
                Ok(Some(_)) => {}
                Err(e) => tracing::warn!(controller = NAME, node = name, error = %e, "reading node failed"),
            }
        }
        for p in pods.iter().filter(|p| gone.contains(node_name(p))) {
            tracing::info!(controller = NAME, pod = %crate::informer::object_key(p.as_ref()), "deleting orphaned pod");
            work.push((p.clone(), Some(orphan_condition())));
        }
        work.extend(unscheduled_terminating(&pods).into_iter().map(|p| (p, None)));
        let mut seen = HashSet::new();
        work.retain(|(p, _)| seen.insert(p.metadata.uid.clone()));
        let results = join_all(work.iter().map(|(p, c)| self.mark_failed_and_delete(p, c.clone()))).await;
        let mut failed = false;
        for ((p, _), r) in work.iter().zip(results) {
            if let Err(e) = r {
                failed = true;
                tracing::warn!(controller = NAME, pod = %crate::informer::object_key(p.as_ref()), error = %e, "pod deletion failed");
            }
        }
        failed
    }

    async fn mark_failed_and_delete(&self, pod: &CachedPod, condition: Option<serde_json::Value>) -> Result<(), Error> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        if !matches!(phase(pod), "Succeeded" | "Failed") {
            let mut status = json!({"phase": "Failed"});
            if let Some(c) = condition {
                status["conditions"] = json!([c]);
            }
            let patch = json!({"metadata": {"uid": pod.metadata.uid}, "status": status});
            match api
                .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await
            {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        match api.delete(name, &DeleteParams::default().grace_period(0)).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::Value;

    fn pod(v: Value) -> Arc<CachedPod> {
        Arc::new(serde_json::from_value(v).unwrap())
    }

    fn named(pods: &[Arc<CachedPod>]) -> Vec<&str> {
        pods.iter().map(|p| p.metadata.name.as_deref().unwrap()).collect()
    }

    fn finished(name: &str, phase: &str, created: &str) -> Arc<CachedPod> {
        pod(json!({"metadata": {"name": name, "creationTimestamp": created}, "status": {"phase": phase}}))
    }

    #[test]
    fn terminated_pods_beyond_the_threshold_oldest_and_evicted_first() {
        let evicted = pod(
            json!({"metadata": {"name": "evicted", "creationTimestamp": "2024-01-05T00:00:00Z"},
            "status": {"phase": "Failed", "reason": "Evicted"}}),
        );
        let pods = vec![
            finished("new", "Succeeded", "2024-01-04T00:00:00Z"),
            finished("old", "Failed", "2024-01-01T00:00:00Z"),
            finished("b-mid", "Succeeded", "2024-01-02T00:00:00Z"),
            finished("a-mid", "Succeeded", "2024-01-02T00:00:00Z"),
            finished("running", "Running", "2023-01-01T00:00:00Z"),
            evicted,
        ];
        assert_eq!(named(&terminated_to_delete(&pods, 3)), ["evicted", "old"]);
        assert_eq!(named(&terminated_to_delete(&pods, 2)), ["evicted", "old", "a-mid"]);
        assert!(terminated_to_delete(&pods, 5).is_empty());
        assert!(terminated_to_delete(&pods, 0).is_empty(), "0 disables the threshold");
    }

    #[test]
    fn terminating_pods_without_a_node_or_on_out_of_service_nodes() {
        let ts = "2024-01-01T00:00:00Z";
        let pods = vec![
            pod(json!({"metadata": {"name": "unscheduled", "deletionTimestamp": ts}, "spec": {"containers": []}})),
            pod(json!({"metadata": {"name": "pending"}, "spec": {"containers": []}})),
            pod(
                json!({"metadata": {"name": "on-dead", "deletionTimestamp": ts}, "spec": {"nodeName": "dead", "containers": []}}),
            ),
            pod(
                json!({"metadata": {"name": "on-live", "deletionTimestamp": ts}, "spec": {"nodeName": "live", "containers": []}}),
            ),
        ];
        let node = |name: &str, ready: &str, taint: bool| -> (String, Arc<Node>) {
            let taints = if taint {
                json!([{"key": OUT_OF_SERVICE_TAINT, "effect": "NoExecute"}])
            } else {
                json!([])
            };
            let n: Node = serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"taints": taints},
                "status": {"conditions": [{"type": "Ready", "status": ready}]}}))
            .unwrap();
            (name.to_string(), Arc::new(n))
        };
        let nodes: HashMap<String, Arc<Node>> = [node("dead", "False", true), node("live", "True", true)].into();
        assert_eq!(named(&unscheduled_terminating(&pods)), ["unscheduled"]);
        assert_eq!(named(&terminating_out_of_service(&pods, &nodes)), ["on-dead"]);
    }

    #[test]
    fn orphans_wait_out_the_quarantine() {
        let pods = vec![
            pod(json!({"metadata": {"name": "a"}, "spec": {"nodeName": "gone", "containers": []}})),
            pod(json!({"metadata": {"name": "b"}, "spec": {"nodeName": "here", "containers": []}})),
        ];
        let here: Node = serde_json::from_value(json!({"metadata": {"name": "here"}})).unwrap();
        let nodes: HashMap<String, Arc<Node>> = [("here".to_string(), Arc::new(here))].into();
        let mut q = Quarantine::default();
        let t0 = Instant::now();
        assert!(q.due(&pods, &nodes, t0, QUARANTINE).is_empty());
        assert!(
            q.due(&pods, &nodes, t0 + Duration::from_secs(39), QUARANTINE)
                .is_empty()
        );
        assert_eq!(q.due(&pods, &nodes, t0 + QUARANTINE, QUARANTINE), ["gone"]);
        // The node came back: the clock restarts if it goes again.
        let gone: Node = serde_json::from_value(json!({"metadata": {"name": "gone"}})).unwrap();
        let mut back = nodes.clone();
        back.insert("gone".into(), Arc::new(gone));
        assert!(q.due(&pods, &back, t0 + Duration::from_secs(50), QUARANTINE).is_empty());
        assert!(
            q.due(&pods, &nodes, t0 + Duration::from_secs(60), QUARANTINE)
                .is_empty()
        );
    }
}
