//! `Framework`: one profile's plugins arranged by extension point, with
//! score weights, and the loops that run each point.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use super::waiting::WaitingPods;
use super::{ClusterEvent, Code, CycleState, NodeStatuses, Plugin, Point, PostFilterResult, PreFilterResult, Status};
use crate::cache::Snapshot;
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

/// The Filter plugins of one cycle (those PreFilter did not skip).
pub struct ActiveFilters<'a>(Vec<&'a Arc<dyn Plugin>>);

impl ActiveFilters<'_> {
    /// Filter on one node: the first rejection, or success.
    pub fn run(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        for p in &self.0 {
            let mut s = p.filter(state, pod, node);
            if !s.is_success() {
                s.plugin = p.name();
                return s;
            }
        }
        Status::success()
    }

    /// Filter, accounting the pods nominated to the node with at least the
    /// pod's priority (upstream's `RunFilterPluginsWithNominatedPods`): the
    /// pod must fit both with them and without them. PreFilter state is not
    /// updated for them (only per-node accounting sees them).
    pub fn run_with_nominated(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
        nominated: Option<&Vec<Arc<PodInfo>>>,
    ) -> Status {
        let mut others = nominated
            .into_iter()
            .flatten()
            .filter(|p| p.key != pod.key && p.priority >= pod.priority)
            .peekable();
        if others.peek().is_some() {
            let mut with = node.clone();
            for p in others {
                with.add_pod(p.clone());
            }
            let s = self.run(state, pod, &with);
            if !s.is_success() {
                return s;
            }
        }
        self.run(state, pod, node)
    }
}

/// A score plugin and its weight.
#[derive(Clone)]
pub struct Weighted {
    pub plugin: Arc<dyn Plugin>,
    pub weight: i64,
}

/// One profile's plugins (upstream's `frameworkImpl`).
#[derive(Clone, Default)]
pub struct Framework {
    /// The profile's `schedulerName`.
    pub scheduler_name: String,
    /// The profile's percentageOfNodesToScore (0: adaptive).
    pub percentage_of_nodes_to_score: i32,
    pre_enqueue: Vec<Arc<dyn Plugin>>,
    pre_filter: Vec<Arc<dyn Plugin>>,
    filter: Vec<Arc<dyn Plugin>>,
    post_filter: Vec<Arc<dyn Plugin>>,
    pre_score: Vec<Arc<dyn Plugin>>,
    score: Vec<Weighted>,
    reserve: Vec<Arc<dyn Plugin>>,
    permit: Vec<Arc<dyn Plugin>>,
    pre_bind: Vec<Arc<dyn Plugin>>,
    post_bind: Vec<Arc<dyn Plugin>>,
    all: Vec<Arc<dyn Plugin>>,
    waiting: Arc<WaitingPods>,
}

impl std::fmt::Debug for Framework {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Framework")
            .field("scheduler_name", &self.scheduler_name)
            .field("plugins", &self.all.iter().map(|p| p.name()).collect::<Vec<_>>())
            .finish()
    }
}

impl Framework {
    /// A framework running `plugins` (in order) at the points each
    /// implements; `weight` gives a score plugin's weight (0 becomes 1).
    pub fn new(scheduler_name: &str, plugins: Vec<(Arc<dyn Plugin>, i64)>) -> Framework {
        Framework::build(scheduler_name, plugins, &|_, _| false)
    }

    /// Like [`Framework::new`], leaving out the points where
    /// `disabled(plugin, point)` holds (per-point `disabled` lists).
    pub fn build(
        scheduler_name: &str,
        plugins: Vec<(Arc<dyn Plugin>, i64)>,
        disabled: &dyn Fn(&str, Point) -> bool,
    ) -> Framework {
        let mut fw = Framework {
            scheduler_name: scheduler_name.to_string(),
            ..Framework::default()
        };
        for (plugin, weight) in plugins {
            for point in plugin.points() {
                if disabled(plugin.name(), *point) {
                    continue;
                }
                let list = match point {
                    Point::PreEnqueue => &mut fw.pre_enqueue,
                    Point::PreFilter => &mut fw.pre_filter,
                    Point::Filter => &mut fw.filter,
                    Point::PostFilter => &mut fw.post_filter,
                    Point::PreScore => &mut fw.pre_score,
                    Point::Score => {
                        fw.score.push(Weighted {
                            plugin: plugin.clone(),
                            weight: if weight == 0 { 1 } else { weight },
                        });
                        continue;
                    }
                    Point::Reserve => &mut fw.reserve,
                    Point::Permit => &mut fw.permit,
                    Point::PreBind => &mut fw.pre_bind,
                    Point::PostBind => &mut fw.post_bind,
                };
                list.push(plugin.clone());
            }
            fw.all.push(plugin);
        }
        fw
    }

    /// Names of the plugins, in order.
    pub fn plugin_names(&self) -> Vec<&'static str> {
        self.all.iter().map(|p| p.name()).collect()
    }

    /// The score plugins and weights.
    pub fn score_plugins(&self) -> &[Weighted] {
        &self.score
    }

    /// True when `plugin` registered interest in `event` (an empty plugin
    /// name, a rejection the framework made itself, matches every event).
    pub fn plugin_cares(&self, plugin: &str, event: ClusterEvent) -> bool {
        if plugin.is_empty() {
            return true;
        }
        self.all
            .iter()
            .find(|p| p.name() == plugin)
            .is_none_or(|p| p.events().contains(&event))
    }

    /// PreEnqueue: the first non-success status, or success.
    pub fn run_pre_enqueue(&self, pod: &PodInfo) -> Status {
        for p in &self.pre_enqueue {
            let mut s = p.pre_enqueue(pod);
            if !s.is_success() {
                s.plugin = p.name();
                return s;
            }
        }
        Status::success()
    }

    /// PreFilter: stops at the first rejection; intersects node narrowing.
    pub fn run_pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (Status, PreFilterResult) {
        let mut result: PreFilterResult = None;
        for p in &self.pre_filter {
            let (mut s, r) = p.pre_filter(state, pod, snapshot);
            match s.code {
                Code::Success => {}
                Code::Skip => {
                    state.skip_filter.insert(p.name());
                    continue;
                }
                _ => {
                    s.plugin = p.name();
                    return (s, None);
                }
            }
            if let Some(names) = r {
                result = Some(match result {
                    None => names,
                    Some(prev) => prev.intersection(&names).cloned().collect::<BTreeSet<_>>(),
                });
                if result.as_ref().is_some_and(BTreeSet::is_empty) {
                    let mut s = Status::with(
                        Code::UnschedulableAndUnresolvable,
                        "node(s) didn't satisfy plugin(s) [".to_string() + p.name() + "] simultaneously",
                    );
                    s.plugin = p.name();
                    return (s, result);
                }
            }
        }
        (Status::success(), result)
    }

    /// The Filter plugins PreFilter did not skip, for running Filter on
    /// many nodes without looking the skips up per node.
    pub fn active_filters(&self, state: &CycleState) -> ActiveFilters<'_> {
        ActiveFilters(
            self.filter
                .iter()
                .filter(|p| !state.skip_filter.contains(p.name()))
                .collect(),
        )
    }

    /// Filter on one node: the first rejection, or success.
    pub fn run_filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        self.active_filters(state).run(state, pod, node)
    }

    /// Filter, accounting the pods nominated to the node (see
    /// [`ActiveFilters::run_with_nominated`]).
    pub fn run_filter_with_nominated(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
        nominated: Option<&Vec<Arc<PodInfo>>>,
    ) -> Status {
        self.active_filters(state)
            .run_with_nominated(state, pod, node, nominated)
    }

    /// True when some plugin runs at PostFilter (preemption).
    pub fn has_post_filter(&self) -> bool {
        !self.post_filter.is_empty()
    }

    /// True when some plugin runs at Filter.
    pub fn has_filters(&self) -> bool {
        !self.filter.is_empty()
    }

    /// PostFilter: the first plugin that finds a way, else the last status.
    pub fn run_post_filter(
        &self,
        pod: &PodInfo,
        snapshot: &Snapshot,
        statuses: &NodeStatuses,
    ) -> (Status, PostFilterResult) {
        let mut last = (Status::with(Code::Unschedulable, ""), PostFilterResult::default());
        for p in &self.post_filter {
            let (mut s, r) = p.post_filter(self, pod, snapshot, statuses);
            s.plugin = p.name();
            if s.is_success() {
                return (s, r);
            }
            last = (s, r);
        }
        last
    }

    /// PreScore, Score, NormalizeScore and weights: the total per node.
    pub fn run_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Vec<i64> {
        for p in &self.pre_score {
            let s = p.pre_score(state, pod, nodes, snapshot);
            if s.code == Code::Skip {
                state.skip_score.insert(p.name());
            }
        }
        let mut totals = vec![0i64; nodes.len()];
        let mut scores = vec![0i64; nodes.len()];
        for w in &self.score {
            if state.skip_score.contains(w.plugin.name()) {
                continue;
            }
            for (i, n) in nodes.iter().enumerate() {
                scores[i] = w.plugin.score(state, pod, n);
            }
            w.plugin.normalize_score(state, pod, nodes, &mut scores);
            for (t, s) in totals.iter_mut().zip(&scores) {
                *t += s * w.weight;
            }
        }
        totals
    }

    /// Reserve on every plugin, stopping at the first failure (upstream's
    /// `RunReservePluginsReserve`): a rejection comes back as the plugin
    /// said it, anything else as an error naming the plugin. The caller
    /// then runs [`Framework::run_unreserve`] on all of them.
    pub fn run_reserve(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status {
        for p in &self.reserve {
            let s = p.reserve(state, pod, node);
            if !s.is_success() {
                return point_failure("Reserve", p.name(), s);
            }
        }
        Status::success()
    }

    /// Unreserve on every Reserve plugin, in reverse (also those whose
    /// Reserve did not run: Unreserve must be idempotent, as upstream's).
    pub fn run_unreserve(&self, state: &CycleState, pod: &PodInfo, node: &str) {
        for p in self.reserve.iter().rev() {
            p.unreserve(state, pod, node);
        }
    }

    /// Permit (upstream's `RunPermitPlugins`): the first rejection (as the
    /// plugin said it) or error (naming the plugin); else, when plugins
    /// asked to wait, the pod is held among the waiting pods from `now` and
    /// [`Code::Wait`] is returned; else success.
    pub fn run_permit(&self, state: &CycleState, pod: &PodInfo, node: &str, now: Instant) -> Status {
        let mut waits = BTreeMap::new();
        for p in &self.permit {
            let (s, timeout) = p.permit(state, pod, node);
            match s.code {
                Code::Success => {}
                Code::Wait => {
                    waits.insert(p.name(), timeout);
                }
                _ => return point_failure("Permit", p.name(), s),
            }
        }
        if waits.is_empty() {
            return Status::success();
        }
        self.waiting.add(&pod.uid, &pod.name, node, waits, now);
        Status::with(
            Code::Wait,
            format!(
                "one or more plugins asked to wait and no plugin rejected pod {:?}",
                pod.name
            ),
        )
    }

    /// The pods Permit holds (to allow or reject them).
    pub fn waiting_pods(&self) -> &Arc<WaitingPods> {
        &self.waiting
    }

    /// Waits until a pod Permit held is allowed (success), rejected, or
    /// timed out; success at once for a pod that is not held.
    pub async fn wait_on_permit(&self, uid: &str) -> Status {
        self.waiting.wait_on_permit(uid).await
    }

    /// PreBind: the first non-success status, or success.
    pub fn run_pre_bind(&self, pod: &PodInfo, node: &str) -> Status {
        for p in &self.pre_bind {
            let mut s = p.pre_bind(pod, node);
            if !s.is_success() {
                s.plugin = p.name();
                return s;
            }
        }
        Status::success()
    }

    /// PostBind on every plugin.
    pub fn run_post_bind(&self, pod: &PodInfo, node: &str) {
        for p in &self.post_bind {
            p.post_bind(pod, node);
        }
    }
}

/// A failed Reserve or Permit status: rejections keep the plugin's
/// reasons; errors read `running <point> plugin "<name>": <message>`.
fn point_failure(point: &str, plugin: &'static str, s: Status) -> Status {
    let mut out = if s.is_rejected() {
        s
    } else {
        Status::with(
            Code::Error,
            format!("running {point} plugin {plugin:?}: {}", s.message()),
        )
    };
    out.plugin = plugin;
    out
}
