//! The node lifecycle controller (upstream's `pkg/controller/nodelifecycle`).
//!
//! Every `--node-monitor-period` it checks each node's heartbeats (the
//! Ready condition and the node's Lease in `kube-node-lease`, see
//! [`health`]); a node silent past `--node-monitor-grace-period` gets its
//! conditions set Unknown, its pods marked not Ready, and — at the rate its
//! zone allows ([`zones`]) — the `unreachable` (or, for Ready=False,
//! `not-ready`) NoExecute taint, which the [`taint_eviction`] controller
//! turns into evictions. A node that recovers loses the taint at once.
//! On every node change, the NoSchedule taints mirroring its conditions are
//! reconciled ([`taints`]), which removes the `not-ready:NoSchedule` taint
//! the TaintNodesByCondition admission plugin puts on new nodes.

pub mod health;
pub mod pods_by_node;
pub mod settings;
pub mod taint_eviction;
pub mod taints;
pub mod zones;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

pub use settings::{Settings, SettingsFlags};

use crate::cached_pod::CachedPod;
use crate::controllers::events::{EventRecorder, EventType, reference};
use crate::error::{Error, is_not_found};
use crate::informer::{Change, Informer};
use crate::manager::ControllerContext;
use crate::runner::{Action, new_queue, run_workers};
use health::{HealthTracker, ready_status, unknown_conditions};
use zones::{ZoneQueue, ZoneState, eviction_rate, zone_key, zone_states};

const NAME: &str = "node-lifecycle-controller";
/// The namespace of node Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// How often queued nodes are tainted NoExecute (upstream: 100 ms).
const TAINTING_PERIOD: Duration = Duration::from_millis(100);

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

/// What the monitor remembers between passes.
#[derive(Default)]
struct State {
    health: HealthTracker,
    /// Nodes waiting for a NoExecute taint, per zone.
    zones: BTreeMap<String, ZoneQueue>,
    /// Nodes whose pods still have to be marked not Ready.
    mark_pods: HashSet<String>,
    /// Every zone was fully disrupted at the last pass.
    all_disrupted: bool,
    known: HashSet<String>,
}

struct NodeLifecycle {
    client: kube::Client,
    nodes: Informer<Node>,
    leases: Informer<Lease>,
    pods: Informer<CachedPod>,
    settings: Settings,
    recorder: EventRecorder,
    state: Mutex<State>,
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let c = Arc::new(NodeLifecycle {
        client: ctx.client.clone(),
        nodes: ctx.informers.get::<Node>(),
        leases: ctx.informers.get::<Lease>(),
        pods: ctx.informers.get::<CachedPod>(),
        settings: ctx.config.node_lifecycle.clone(),
        recorder: EventRecorder::new(ctx.client.clone(), NAME),
        state: Mutex::default(),
    });
    let queue = new_queue("node_lifecycle_controller", &ctx.metrics);
    let q = queue.clone();
    c.nodes.add_handler(move |change| match change {
        Change::Added(n) | Change::Updated { new: n, .. } => q.add(n.metadata.name.clone().unwrap_or_default()),
        Change::Deleted(_) => {}
    });
    c.nodes.wait_synced().await;
    c.leases.wait_synced().await;
    c.pods.wait_synced().await;
    let h = c.clone();
    let workers = run_workers(NAME, queue, 1, ctx.metrics.clone(), move |name| {
        let h = h.clone();
        async move { h.sync_no_schedule(&name).await }
    });
    let monitor = async {
        let mut monitor = tokio::time::interval(c.settings.monitor_period);
        monitor.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tainting = tokio::time::interval(TAINTING_PERIOD);
        tainting.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = monitor.tick() => {
                    let start = Instant::now();
                    let failed = c.monitor_node_health().await;
                    ctx.metrics.observe_sync(NAME, start.elapsed(), failed);
                }
                _ = tainting.tick() => c.no_execute_tainting_pass().await,
            }
        }
    };
    tokio::join!(workers, monitor);
    Ok(())
}

fn name_of(node: &Node) -> String {
    node.metadata.name.clone().unwrap_or_default()
}

impl NodeLifecycle {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn api(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    /// Keeps the node's condition NoSchedule taints in line with its
    /// conditions.
    async fn sync_no_schedule(&self, name: &str) -> Result<Action, Error> {
        let Some(node) = self.nodes.get("", name) else {
            return Ok(Action::Done);
        };
        if let Some(taints) = taints::reconcile_no_schedule(&node) {
            match self.patch_taints(&node, taints).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Action::Done)
    }

    async fn patch_taints(&self, node: &Node, taints: Vec<Taint>) -> Result<Node, kube::Error> {
        let body = json!({"metadata": {"resourceVersion": node.metadata.resource_version},
                          "spec": {"taints": taints}});
        self.api()
            .patch(&name_of(node), &PatchParams::default(), &Patch::Merge(body))
            .await
    }

    async fn patch_conditions(&self, node: &Node, conditions: Vec<NodeCondition>) -> Result<Node, kube::Error> {
        let body = json!({"metadata": {"resourceVersion": node.metadata.resource_version},
                          "status": {"conditions": conditions}});
        self.api()
            .patch_status(&name_of(node), &PatchParams::default(), &Patch::Merge(body))
            .await
    }

    /// One health pass over every node; returns whether any write failed.
    async fn monitor_node_health(&self) -> bool {
        let now = Timestamp::now();
        let mut failed = false;
        let nodes = self.nodes.list_all();
        // Health: silent nodes become Unknown.
        let mut observed: Vec<Arc<Node>> = Vec::with_capacity(nodes.len());
        for node in nodes {
            let name = name_of(&node);
            let lease = self.leases.get(LEASE_NAMESPACE, &name);
            let silent = self.state().health.observe(
                &node,
                lease.as_deref(),
                now,
                self.settings.monitor_grace_period,
                self.settings.startup_grace_period,
            );
            let was = ready_status(&node).to_string();
            let mut node = node;
            if silent && let Some(conditions) = unknown_conditions(&node, now) {
                match self.patch_conditions(&node, conditions).await {
                    Ok(updated) => {
                        tracing::info!(controller = NAME, node = %name, "node stopped posting status; conditions set Unknown");
                        if was == "True" {
                            self.recorder.record(
                                reference(&updated),
                                EventType::Normal,
                                "NodeNotReady",
                                "NodeNotReady",
                                format!("Node {name} status is now: NodeNotReady"),
                            );
                            self.state().mark_pods.insert(name.clone());
                        }
                        node = Arc::new(updated);
                    }
                    Err(e) => {
                        tracing::warn!(controller = NAME, node = %name, error = %e, "could not set conditions Unknown");
                        failed = true;
                    }
                }
            }
            observed.push(node);
        }
        self.forget_deleted(&observed);
        failed |= self.mark_pods_not_ready(&observed).await;
        failed |= self.handle_disruption_and_taints(&observed, now).await;
        failed
    }

    fn forget_deleted(&self, nodes: &[Arc<Node>]) {
        let names: HashSet<String> = nodes.iter().map(|n| name_of(n)).collect();
        let mut st = self.state();
        let gone: Vec<String> = st.known.difference(&names).cloned().collect();
        for n in gone {
            st.health.forget(&n);
            st.mark_pods.remove(&n);
            for q in st.zones.values_mut() {
                q.remove(&n);
            }
        }
        st.known = names;
    }

    /// Sets the Ready condition of pods on not-ready nodes to False
    /// (upstream's `MarkPodsNotReady`); nodes that fail are retried.
    async fn mark_pods_not_ready(&self, nodes: &[Arc<Node>]) -> bool {
        let pending: Vec<String> = self.state().mark_pods.iter().cloned().collect();
        let mut failed = false;
        for name in pending {
            let ready = nodes
                .iter()
                .find(|n| name_of(n) == name)
                .map(|n| ready_status(n) == "True");
            if ready != Some(false) {
                self.state().mark_pods.remove(&name);
                continue;
            }
            let mut ok = true;
            for pod in self.pods.list_all() {
                if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(name.as_str())
                    || !crate::controllers::pod_status::is_ready(&pod)
                {
                    continue;
                }
                let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
                let pname = pod.metadata.name.as_deref().unwrap_or_default();
                let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
                let body = json!({"status": {"conditions": [{"type": "Ready", "status": "False",
                    "lastTransitionTime": Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()}]}});
                match api
                    .patch_status(pname, &PatchParams::default(), &Patch::Strategic(body))
                    .await
                {
                    Ok(_) => self.recorder.record(
                        reference(pod.as_ref()),
                        EventType::Warning,
                        "NodeNotReady",
                        "NodeNotReady",
                        "Node is not ready".into(),
                    ),
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => {
                        tracing::warn!(controller = NAME, pod = %format!("{ns}/{pname}"), error = %e, "could not mark pod not ready");
                        ok = false;
                    }
                }
            }
            if ok {
                self.state().mark_pods.remove(&name);
            } else {
                failed = true;
            }
        }
        failed
    }

    /// Zone states, eviction rates, and the NoExecute taint decisions of
    /// every node (upstream's `handleDisruption` and
    /// `processTaintBaseEviction`).
    async fn handle_disruption_and_taints(&self, nodes: &[Arc<Node>], now: Timestamp) -> bool {
        let keyed: Vec<(String, &Arc<Node>)> = nodes.iter().map(|n| (zone_key(n), n)).collect();
        let states = zone_states(
            keyed.iter().map(|(z, n)| (z.as_str(), ready_status(n) == "True")),
            self.settings.unhealthy_zone_threshold,
        );
        let all_disrupted = !states.is_empty() && states.values().all(|(s, _)| *s == ZoneState::FullDisruption);
        let entering = {
            let mut st = self.state();
            let was = st.all_disrupted;
            st.all_disrupted = all_disrupted;
            let clock = Instant::now();
            for (zone, (state, size)) in &states {
                let qps = if all_disrupted {
                    0.0
                } else {
                    eviction_rate(*state, *size, &self.settings)
                };
                st.zones
                    .entry(zone.clone())
                    .or_insert_with(|| ZoneQueue::new(qps, clock))
                    .limiter
                    .set_qps(qps, clock);
            }
            if was && !all_disrupted {
                tracing::info!(
                    controller = NAME,
                    "some nodes are ready again; leaving full disruption mode"
                );
                st.health.reset(now);
            }
            !was && all_disrupted
        };
        if entering {
            tracing::warn!(
                controller = NAME,
                "every node is not ready; entering full disruption mode and stopping evictions"
            );
        }
        let mut failed = false;
        for (zone, node) in keyed {
            // A node that never posted a Ready condition is left alone
            // until its startup grace period makes it Unknown.
            if health::ready_condition(node).is_none() {
                continue;
            }
            let name = name_of(node);
            let want = if all_disrupted {
                None
            } else {
                taints::no_execute_key(ready_status(node))
            };
            let have = taints::current_no_execute(node);
            // Recovered nodes (and every node in full disruption) lose the
            // taint at once; a taint of the wrong kind is swapped at once;
            // new taints wait for the zone's rate limiter.
            let now_patch = match (want, have) {
                (None, Some(_)) => true,
                (Some(w), Some(h)) => w != h,
                _ => false,
            };
            {
                let mut st = self.state();
                if want.is_none() || have.is_some() {
                    for q in st.zones.values_mut() {
                        q.remove(&name);
                    }
                } else if let Some(q) = st.zones.get_mut(&zone) {
                    q.add(&name);
                }
            }
            if now_patch
                && let Some(t) = taints::set_no_execute(node, want, now)
                && let Err(e) = self.patch_taints(node, t).await
            {
                tracing::warn!(controller = NAME, node = %name, error = %e, "could not update NoExecute taint");
                failed = true;
            }
        }
        failed
    }

    /// Taints the nodes their zones' rate limiters allow now (upstream's
    /// `doNoExecuteTaintingPass`).
    async fn no_execute_tainting_pass(&self) {
        let clock = Instant::now();
        let picked: Vec<(String, String)> = {
            let mut st = self.state();
            let mut out = Vec::new();
            for (zone, q) in st.zones.iter_mut() {
                while let Some(n) = q.pop_allowed(clock) {
                    out.push((zone.clone(), n));
                }
            }
            out
        };
        for (zone, name) in picked {
            let Some(node) = self.nodes.get("", &name) else {
                continue;
            };
            let Some(want) = taints::no_execute_key(ready_status(&node)) else {
                continue;
            };
            let Some(t) = taints::set_no_execute(&node, Some(want), Timestamp::now()) else {
                continue;
            };
            match self.patch_taints(&node, t).await {
                Ok(_) => tracing::info!(controller = NAME, node = %name, taint = want, "tainted node NoExecute"),
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    tracing::warn!(controller = NAME, node = %name, error = %e, "could not taint node; retrying");
                    if let Some(q) = self.state().zones.get_mut(&zone) {
                        q.add(&name);
                    }
                }
            }
        }
    }
}
