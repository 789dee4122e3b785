//! DefaultPreemption: when no node fits, find nodes where evicting
//! lower-priority pods would make room, choose the fewest and least
//! important victims, and nominate that node.
//!
//! Victims whose eviction would violate a PodDisruptionBudget are
//! reprieved first, and nodes with fewer violations win. Not yet: the
//! random start offset and candidate sampling of large clusters.

use std::sync::Arc;

use crate::algorithm::FitError;
use crate::cache::Snapshot;
use crate::framework::{Code, CycleState, Framework, NodeStatuses, Plugin, Point, PostFilterResult, Status};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

/// The plugin's name.
pub const NAME: &str = "DefaultPreemption";
/// Status of a node where preemption cannot help.
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
/// Status of a node without lower-priority pods.
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// A PodDisruptionBudget as preemption needs it.
#[derive(Debug, Clone)]
pub struct Budget {
    pub namespace: String,
    pub selector: crate::selectors::Selector,
    /// `status.disruptionsAllowed`.
    pub disruptions_allowed: i32,
    /// `status.disruptedPods` names (already being disrupted: not counted).
    pub disrupted_pods: std::collections::BTreeSet<String>,
}

/// Lists the PodDisruptionBudgets.
pub trait Budgets: Send + Sync {
    /// Every budget.
    fn budgets(&self) -> Vec<Budget>;
}

/// No budgets (tests, or a scheduler without the lister).
#[derive(Debug, Default)]
pub struct NoBudgets;

impl Budgets for NoBudgets {
    fn budgets(&self) -> Vec<Budget> {
        Vec::new()
    }
}

/// The DefaultPreemption plugin.
pub struct DefaultPreemption {
    budgets: Arc<dyn Budgets>,
}

impl std::fmt::Debug for DefaultPreemption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DefaultPreemption")
    }
}

impl Default for DefaultPreemption {
    fn default() -> Self {
        DefaultPreemption::new(Arc::new(NoBudgets))
    }
}

impl DefaultPreemption {
    /// The plugin with a PodDisruptionBudget lister.
    pub fn new(budgets: Arc<dyn Budgets>) -> DefaultPreemption {
        DefaultPreemption { budgets }
    }
}

struct Candidate {
    node: String,
    victims: Vec<Arc<PodInfo>>,
    pdb_violations: usize,
}

/// Splits victims (kept in order) into those whose eviction would violate
/// a budget and those that would not (`filterPodsWithPDBViolation`).
fn split_by_budget(victims: Vec<Arc<PodInfo>>, budgets: &[Budget]) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: Vec<i32> = budgets.iter().map(|b| b.disruptions_allowed).collect();
    let (mut violating, mut fine) = (Vec::new(), Vec::new());
    for v in victims {
        let mut violates = false;
        for (i, b) in budgets.iter().enumerate() {
            if b.namespace != v.namespace || b.selector.is_everything() || !b.selector.matches(&v.labels) {
                continue;
            }
            if b.disrupted_pods.contains(&v.name) {
                continue;
            }
            allowed[i] -= 1;
            if allowed[i] < 0 {
                violates = true;
            }
        }
        if violates { violating.push(v) } else { fine.push(v) }
    }
    (violating, fine)
}

/// Replaces one node of the snapshot (for dry runs).
fn with_node(snapshot: &Snapshot, node: NodeInfo) -> Snapshot {
    let mut s = snapshot.clone();
    let name = node.name.clone();
    if let Some(i) = s.nodes.iter().position(|n| n.name == name) {
        s.nodes[i] = Arc::new(node);
    }
    s
}

/// How a dry run checks whether the pod fits a node with pods removed.
enum DryRun {
    /// PreFilter state does not depend on other pods (no spread
    /// constraints, no pod affinity anywhere): compute it once.
    Shared(CycleState),
    /// PreFilter counts pods: recompute it against the modified snapshot.
    PerNode,
}

impl DryRun {
    fn new(fw: &Framework, pod: &PodInfo, snapshot: &Snapshot) -> DryRun {
        let spread = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_ref())
            .is_some_and(|c| !c.is_empty());
        let affinity = !pod.required_affinity.is_empty()
            || !pod.required_anti_affinity.is_empty()
            || snapshot.nodes.iter().any(|n| n.pods_with_required_anti_affinity > 0);
        if spread || affinity {
            return DryRun::PerNode;
        }
        let mut state = CycleState::default();
        let (s, _) = fw.run_pre_filter(&mut state, pod, snapshot);
        if s.is_success() {
            DryRun::Shared(state)
        } else {
            DryRun::PerNode
        }
    }

    fn fits(&self, fw: &Framework, pod: &PodInfo, snapshot: &Snapshot, node: &NodeInfo) -> Status {
        let nominated = snapshot.nominated.get(&node.name);
        match self {
            DryRun::Shared(state) => fw.run_filter_with_nominated(state, pod, node, nominated),
            DryRun::PerNode => {
                let snap = with_node(snapshot, node.clone());
                let mut state = CycleState::default();
                let (s, narrowed) = fw.run_pre_filter(&mut state, pod, &snap);
                if !s.is_success() {
                    return s;
                }
                if narrowed.is_some_and(|n| !n.contains(&node.name)) {
                    return Status::with(Code::UnschedulableAndUnresolvable, NOT_HELPFUL);
                }
                fw.run_filter_with_nominated(&state, pod, node, nominated)
            }
        }
    }
}

/// How many candidates to find before choosing (upstream: 10% of the
/// nodes, at least 100).
pub fn num_candidates(nodes: usize) -> usize {
    (nodes / 10).max(100).min(nodes)
}

/// Victims on `node` for `pod`: all lower-priority pods removed, then as
/// many as possible reprieved, most important first.
fn select_victims(
    fw: &Framework,
    dry: &DryRun,
    pod: &PodInfo,
    snapshot: &Snapshot,
    node: &NodeInfo,
    budgets: &[Budget],
) -> Result<(Vec<Arc<PodInfo>>, usize), Status> {
    let mut lower: Vec<Arc<PodInfo>> = node
        .pods
        .iter()
        .filter(|p| p.priority < pod.priority)
        .cloned()
        .collect();
    if lower.is_empty() {
        return Err(Status::with(Code::UnschedulableAndUnresolvable, NO_VICTIMS));
    }
    let mut trial = node.clone();
    for p in &lower {
        trial.remove_pod(&p.uid);
    }
    let s = dry.fits(fw, pod, snapshot, &trial);
    if !s.is_success() {
        return Err(s);
    }
    lower.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| start_time(a).cmp(&start_time(b)))
    });
    let (violating, fine) = split_by_budget(lower, budgets);
    let mut victims = Vec::new();
    let mut violations = 0;
    for (p, violates) in violating
        .into_iter()
        .map(|p| (p, true))
        .chain(fine.into_iter().map(|p| (p, false)))
    {
        trial.add_pod(p.clone());
        if !dry.fits(fw, pod, snapshot, &trial).is_success() {
            trial.remove_pod(&p.uid);
            victims.push(p);
            violations += usize::from(violates);
        }
    }
    Ok((victims, violations))
}

/// The DisruptionTarget condition's reason set on preemption victims.
pub const PREEMPTION_REASON: &str = "PreemptionByScheduler";

/// True when the pod is being deleted because the scheduler preempted it.
fn terminating_by_preemption(p: &PodInfo) -> bool {
    p.is_terminating()
        && p.pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.type_ == "DisruptionTarget"
                        && c.status == "True"
                        && c.reason.as_deref() == Some(PREEMPTION_REASON)
                })
            })
}

fn start_time(p: &PodInfo) -> Option<String> {
    p.pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0.to_string())
}

/// upstream's pickOneNodeForPreemption: fewest PDB violations, then lowest
/// highest-victim priority, then lowest priority sum, then fewest victims,
/// then first.
fn pick(candidates: &[Candidate]) -> Option<&Candidate> {
    candidates.iter().min_by_key(|c| {
        let highest = c.victims.iter().map(|v| v.priority).max().unwrap_or(i32::MIN);
        let sum: i64 = c
            .victims
            .iter()
            .map(|v| i64::from(v.priority) + i64::from(i32::MAX) + 1)
            .sum();
        (c.pdb_violations, highest, sum, c.victims.len())
    })
}

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        NAME
    }
    fn points(&self) -> &'static [Point] {
        &[Point::PostFilter]
    }
    fn post_filter(
        &self,
        fw: &Framework,
        pod: &PodInfo,
        snapshot: &Snapshot,
        statuses: &NodeStatuses,
    ) -> (Status, PostFilterResult) {
        let policy = pod.pod.spec.as_ref().and_then(|s| s.preemption_policy.as_deref());
        if policy == Some("Never") {
            return (
                Status::with(
                    Code::Unschedulable,
                    "preemption: not eligible due to preemptionPolicy=Never.",
                ),
                PostFilterResult::default(),
            );
        }
        if let Some(nominated) = pod.nominated_node_name()
            && statuses
                .get(nominated)
                .is_none_or(|s| s.code != Code::UnschedulableAndUnresolvable)
            && let Some(node) = snapshot.get(nominated)
            && node
                .pods
                .iter()
                .any(|p| p.priority < pod.priority && terminating_by_preemption(p))
        {
            return (
                Status::with(
                    Code::Unschedulable,
                    "preemption: not eligible due to a terminating pod on the nominated node.",
                ),
                PostFilterResult::default(),
            );
        }
        let mut dry_run = NodeStatuses::new();
        let mut candidates = Vec::new();
        let budgets = self.budgets.budgets();
        let dry = DryRun::new(fw, pod, snapshot);
        let wanted = num_candidates(snapshot.nodes.len());
        for n in &snapshot.nodes {
            if candidates.len() >= wanted {
                break;
            }
            let unresolvable = statuses
                .get(&n.name)
                .is_none_or(|s| s.code == Code::UnschedulableAndUnresolvable);
            if unresolvable {
                dry_run.insert(
                    n.name.clone(),
                    Status::with(Code::UnschedulableAndUnresolvable, NOT_HELPFUL),
                );
                continue;
            }
            match select_victims(fw, &dry, pod, snapshot, n, &budgets) {
                Ok((victims, pdb_violations)) if !victims.is_empty() => candidates.push(Candidate {
                    node: n.name.clone(),
                    victims,
                    pdb_violations,
                }),
                Ok(_) => {
                    dry_run.insert(n.name.clone(), Status::with(Code::Unschedulable, NO_VICTIMS));
                }
                Err(s) => {
                    dry_run.insert(n.name.clone(), s);
                }
            }
        }
        match pick(&candidates) {
            Some(c) => (
                Status::success(),
                PostFilterResult {
                    nominated_node: Some(c.node.clone()),
                    victims: c.victims.clone(),
                },
            ),
            None => {
                let fe = FitError {
                    num_all_nodes: snapshot.nodes.len(),
                    statuses: dry_run,
                    pre_filter_msg: String::new(),
                    post_filter_msg: String::new(),
                    unschedulable_plugins: Default::default(),
                };
                (
                    Status::with(Code::Unschedulable, format!("preemption: {}", fe.message())),
                    PostFilterResult::default(),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use serde_json::{Value, json};

    use super::*;
    use crate::algorithm::{ScheduleError, schedule_pod};
    use crate::plugins::testing::{container, node, pod, with_pods};
    use crate::plugins::{PluginContext, default_framework};

    fn prio(name: &str, priority: i32, cpu: &str) -> PodInfo {
        pod(
            name,
            json!({}),
            json!({"priority": priority, "containers": [container(cpu, "0")]}),
        )
    }

    fn sized(name: &str, pods: Vec<PodInfo>) -> NodeInfo {
        with_pods(
            node(
                name,
                Value::Null,
                json!({"cpu": "4", "memory": "8Gi", "pods": "110"}),
                json!({}),
            ),
            pods,
        )
    }

    fn run(p: &PodInfo, snap: &Snapshot) -> (Status, PostFilterResult) {
        let fw = default_framework(&PluginContext::default());
        let mut state = CycleState::default();
        let Err(ScheduleError::Unschedulable(fe)) = schedule_pod(&fw, &mut state, p, snap, &mut 0) else {
            panic!("expected no fit");
        };
        fw.run_post_filter(p, snap, &fe.statuses)
    }

    #[test]
    fn picks_the_node_with_the_least_important_minimal_victims() {
        // a: two low pods of 2 cpu (priority 1, 2); b: one pod of 4 cpu
        // (priority 10). A 2-cpu pod of priority 100 evicts only the
        // priority-1 pod on a.
        let snap = Snapshot::from_nodes(vec![
            sized("a", vec![prio("low1", 1, "2"), prio("low2", 2, "2")]),
            sized("b", vec![prio("mid", 10, "4")]),
        ]);
        let (s, r) = run(&prio("high", 100, "2"), &snap);
        assert!(s.is_success(), "{s:?}");
        assert_eq!(r.nominated_node.as_deref(), Some("a"));
        let names: Vec<&str> = r.victims.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["low1"]);
    }

    #[test]
    fn nodes_whose_victims_violate_budgets_lose() {
        struct OneBudget;
        impl Budgets for OneBudget {
            fn budgets(&self) -> Vec<Budget> {
                vec![Budget {
                    namespace: "default".into(),
                    selector: crate::selectors::Selector::everything().with_equals("app", "db"),
                    disruptions_allowed: 0,
                    disrupted_pods: Default::default(),
                }]
            }
        }
        let labelled = |name: &str, app: &str, priority: i32| {
            pod(
                name,
                json!({"app": app}),
                json!({"priority": priority, "containers": [container("4", "0")]}),
            )
        };
        // a's victim is protected by a budget (and less important); b's is not.
        let snap = Snapshot::from_nodes(vec![
            sized("a", vec![labelled("db-0", "db", 1)]),
            sized("b", vec![labelled("web-0", "web", 5)]),
        ]);
        let p = prio("high", 100, "4");
        let fw = crate::framework::Framework::new(
            "default-scheduler",
            vec![
                (
                    Arc::new(crate::plugins::node_resources_fit::NodeResourcesFit::default()),
                    1,
                ),
                (Arc::new(DefaultPreemption::new(Arc::new(OneBudget))), 0),
            ],
        );
        let mut state = CycleState::default();
        let Err(ScheduleError::Unschedulable(fe)) = schedule_pod(&fw, &mut state, &p, &snap, &mut 0) else {
            panic!("expected no fit");
        };
        let (s, r) = fw.run_post_filter(&p, &snap, &fe.statuses);
        assert!(s.is_success(), "{s:?}");
        assert_eq!(r.nominated_node.as_deref(), Some("b"));
        // Without budgets the less important victim's node wins.
        let (_, r) = run(&p, &snap);
        assert_eq!(r.nominated_node.as_deref(), Some("a"));
    }

    #[test]
    fn messages_when_preemption_cannot_help() {
        let snap = Snapshot::from_nodes(vec![
            sized("a", vec![prio("same", 5, "4")]),
            with_pods(
                node(
                    "b",
                    Value::Null,
                    Value::Null,
                    json!({"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}),
                ),
                vec![],
            ),
        ]);
        let (s, r) = run(&prio("p", 5, "1"), &snap);
        assert!(r.nominated_node.is_none());
        assert_eq!(
            s.message(),
            "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, \
             1 Preemption is not helpful for scheduling."
        );
        let never = pod(
            "never",
            json!({}),
            json!({"priority": 100, "preemptionPolicy": "Never", "containers": [container("1", "0")]}),
        );
        let (s, _) = run(&never, &snap);
        assert_eq!(s.message(), "preemption: not eligible due to preemptionPolicy=Never.");
    }
}
