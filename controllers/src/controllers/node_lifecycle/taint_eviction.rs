//! The taint-eviction controller (upstream's `pkg/controller/tainteviction`):
//! pods on a node with NoExecute taints they do not tolerate are deleted at
//! once; pods tolerating them for `tolerationSeconds` are deleted that long
//! after the controller first saw them tainted; pods tolerating them forever
//! stay. A deleted pod first gets the `DisruptionTarget` condition.
//!
//! A pass every second looks only at the pods of nodes that have NoExecute
//! taints ([`TaintedNodes`], [`PodsByNode`]), so its cost follows the
//! tainted nodes' pods, not the cluster's; with no tainted node it does
//! nothing.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

use super::health::elapsed;
use super::pods_by_node::PodsByNode;
use crate::cached_pod::CachedPod;
use crate::controllers::daemonset::node_fit::tolerates;
use crate::controllers::events::{EventRecorder, EventType, reference};
use crate::error::{Error, is_not_found};
use crate::informer::{Change, Informer};
use crate::manager::ControllerContext;

const NAME: &str = "taint-eviction-controller";
/// How often pods on tainted nodes are checked.
const PASS_PERIOD: Duration = Duration::from_secs(1);

/// When a pod on a NoExecute-tainted node must go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// A taint is not tolerated (or tolerated for zero seconds).
    Now,
    /// The shortest `tolerationSeconds` of the tolerations used.
    After(Duration),
    /// Every taint is tolerated without a time limit.
    Never,
}

/// The eviction of a pod with `tolerations` on a node with the NoExecute
/// `taints` (upstream's `getMatchingTolerations` and `getMinTolerationTime`).
pub fn eviction(tolerations: &[Toleration], taints: &[&Taint]) -> Eviction {
    let mut min: Option<i64> = None;
    for taint in taints {
        let Some(t) = tolerations.iter().find(|t| tolerates(t, taint)) else {
            return Eviction::Now;
        };
        if let Some(s) = t.toleration_seconds {
            min = Some(min.map_or(s, |m| m.min(s)));
        }
    }
    match min {
        None => Eviction::Never,
        Some(s) if s <= 0 => Eviction::Now,
        Some(s) => Eviction::After(Duration::from_secs(s.unsigned_abs())),
    }
}

/// The NoExecute taints of `node`.
pub fn no_execute_taints(node: &Node) -> Vec<Taint> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| t.effect == "NoExecute")
        .cloned()
        .collect()
}

/// The NoExecute taints of every node that has any, kept up to date by a
/// node informer handler: a pass looks only at these nodes' pods.
#[derive(Debug, Default)]
pub struct TaintedNodes(Mutex<HashMap<String, Vec<Taint>>>);

impl TaintedNodes {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<Taint>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Updates the set with one informer change.
    pub fn observe(&self, change: &Change<'_, Node>) {
        let node = change.object();
        let name = node.metadata.name.clone().unwrap_or_default();
        let taints = if change.is_deleted() {
            Vec::new()
        } else {
            no_execute_taints(node)
        };
        let mut nodes = self.lock();
        if taints.is_empty() {
            nodes.remove(&name);
        } else {
            nodes.insert(name, taints);
        }
    }

    /// The tainted nodes now.
    pub fn snapshot(&self) -> HashMap<String, Vec<Taint>> {
        self.lock().clone()
    }
}

/// Pods to delete at `now` among `pods` (those on tainted nodes; others
/// are skipped), given when each tainted pod was first seen tainted
/// (updated: entries added for newly tainted pods, dropped for pods no
/// longer tainted or gone).
pub fn due(
    pods: impl IntoIterator<Item = Arc<CachedPod>>,
    tainted: &HashMap<String, Vec<Taint>>,
    first_seen: &mut HashMap<String, Timestamp>,
    now: Timestamp,
) -> Vec<Arc<CachedPod>> {
    let mut still_tainted = HashSet::new();
    let mut out = Vec::new();
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(taints) = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .and_then(|n| tainted.get(n))
        else {
            continue;
        };
        let taints: Vec<&Taint> = taints.iter().collect();
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.as_deref())
            .unwrap_or_default();
        match eviction(tolerations, &taints) {
            Eviction::Never => {}
            Eviction::Now => out.push(pod.clone()),
            Eviction::After(d) => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                let since = *first_seen.entry(uid.clone()).or_insert(now);
                still_tainted.insert(uid);
                if elapsed(since, now) >= d {
                    out.push(pod.clone());
                }
            }
        }
    }
    first_seen.retain(|uid, _| still_tainted.contains(uid));
    out
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let pods: Informer<CachedPod> = ctx.informers.get::<CachedPod>();
    let nodes: Informer<Node> = ctx.informers.get::<Node>();
    let recorder = EventRecorder::new(ctx.client.clone(), NAME);
    let tainted = Arc::new(TaintedNodes::default());
    let by_node = Arc::new(PodsByNode::default());
    let t = tainted.clone();
    nodes.add_handler(move |change| t.observe(&change));
    let b = by_node.clone();
    pods.add_handler(move |change| b.observe(&change));
    pods.wait_synced().await;
    nodes.wait_synced().await;
    let mut first_seen = HashMap::new();
    let mut tick = tokio::time::interval(PASS_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let tainted = tainted.snapshot();
        // No tainted node and no clock running: nothing to look at.
        if tainted.is_empty() && first_seen.is_empty() {
            continue;
        }
        let start = std::time::Instant::now();
        let candidates = tainted
            .keys()
            .flat_map(|node| by_node.pods_on(node))
            .filter_map(|(ns, name)| pods.get(&ns, &name));
        let doomed = due(candidates, &tainted, &mut first_seen, Timestamp::now());
        let mut failed = false;
        for pod in doomed {
            if let Err(e) = evict(&ctx.client, &recorder, &pod).await {
                tracing::warn!(controller = NAME, pod = ?pod.metadata.name, error = %e, "eviction failed");
                failed = true;
            }
        }
        ctx.metrics.observe_sync(NAME, start.elapsed(), failed);
    }
}

/// Marks `pod` as a disruption target, then deletes it.
async fn evict(client: &kube::Client, recorder: &EventRecorder, pod: &CachedPod) -> Result<(), kube::Error> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    tracing::info!(controller = NAME, pod = %format!("{ns}/{name}"), "deleting pod for NoExecute taint");
    recorder.record(
        reference(pod),
        EventType::Normal,
        "TaintManagerEviction",
        "Delete",
        format!("Marking for deletion Pod {ns}/{name}"),
    );
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let condition = json!({"status": {"conditions": [{
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "DeletionByTaintManager",
        "message": "Taint manager: deleting due to NoExecute taint",
        "lastTransitionTime": Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    }]}});
    match api
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(condition))
        .await
    {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(e),
    }
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::{Value, json};

    fn taint(key: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: "NoExecute".into(),
            ..Taint::default()
        }
    }

    fn tol(v: Value) -> Toleration {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn eviction_decisions() {
        let unreachable = taint("node.kubernetes.io/unreachable");
        let other = taint("other");
        let t300 = tol(json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                              "effect": "NoExecute", "tolerationSeconds": 300}));
        let t5 = tol(json!({"operator": "Exists", "tolerationSeconds": 5}));
        let forever = tol(json!({"key": "other", "operator": "Exists"}));
        assert_eq!(eviction(&[], &[&unreachable]), Eviction::Now);
        assert_eq!(
            eviction(std::slice::from_ref(&t300), &[&unreachable]),
            Eviction::After(Duration::from_secs(300))
        );
        // The first matching toleration of each taint counts.
        assert_eq!(
            eviction(&[t300.clone(), t5.clone()], &[&unreachable, &other]),
            Eviction::After(Duration::from_secs(5))
        );
        assert_eq!(
            eviction(std::slice::from_ref(&t300), &[&unreachable, &other]),
            Eviction::Now
        );
        assert_eq!(eviction(std::slice::from_ref(&forever), &[&other]), Eviction::Never);
        let zero = tol(json!({"operator": "Exists", "tolerationSeconds": 0}));
        assert_eq!(eviction(&[zero], &[&other]), Eviction::Now);
    }

    fn pod(name: &str, node: &str, seconds: Option<i64>) -> Arc<CachedPod> {
        let mut tolerations = json!([]);
        if let Some(s) = seconds {
            tolerations = json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                  "effect": "NoExecute", "tolerationSeconds": s}]);
        }
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name, "namespace": "d", "uid": name},
                "spec": {"nodeName": node, "containers": [], "tolerations": tolerations}}))
            .unwrap(),
        )
    }

    fn node(name: &str, taints: serde_json::Value) -> Arc<Node> {
        Arc::new(serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"taints": taints}})).unwrap())
    }

    #[test]
    fn only_nodes_with_no_execute_taints_are_tracked() {
        let set = TaintedNodes::default();
        let bad = node(
            "bad",
            json!([{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
                                     {"key": "other", "effect": "NoSchedule"}]),
        );
        let soft = node("soft", json!([{"key": "other", "effect": "NoSchedule"}]));
        set.observe(&Change::Added(&bad));
        set.observe(&Change::Added(&soft));
        let snap = set.snapshot();
        assert_eq!(snap.len(), 1);
        assert_eq!(snap["bad"].len(), 1);
        let healed = node("bad", json!([]));
        set.observe(&Change::Updated {
            old: &bad,
            new: &healed,
        });
        assert!(set.snapshot().is_empty());
        set.observe(&Change::Added(&bad));
        set.observe(&Change::Deleted(&bad));
        assert!(set.snapshot().is_empty());
    }

    #[test]
    fn pods_are_due_after_their_toleration_from_first_sight() {
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let at = |s: i64| t0.checked_add(k8s_openapi::jiff::SignedDuration::from_secs(s)).unwrap();
        let tainted: HashMap<String, Vec<Taint>> =
            [("bad".to_string(), vec![taint("node.kubernetes.io/unreachable")])].into();
        let pods = vec![pod("a", "bad", Some(5)), pod("b", "bad", None), pod("c", "good", None)];
        let mut seen = HashMap::new();
        let names = |v: Vec<Arc<CachedPod>>| v.iter().map(|p| p.metadata.name.clone().unwrap()).collect::<Vec<_>>();
        assert_eq!(names(due(pods.clone(), &tainted, &mut seen, at(0))), ["b"]);
        assert_eq!(names(due(pods.clone(), &tainted, &mut seen, at(4))), ["b"]);
        assert_eq!(names(due(pods.clone(), &tainted, &mut seen, at(5))), ["a", "b"]);
        // Taint removed: the clock restarts when it comes back.
        assert!(due(pods.clone(), &HashMap::new(), &mut seen, at(6)).is_empty());
        assert!(seen.is_empty());
        assert_eq!(names(due(pods, &tainted, &mut seen, at(7))), ["b"]);
    }
}
