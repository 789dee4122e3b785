//! DefaultPreemption: when no node fits, find nodes where evicting
//! lower-priority pods would make room, choose the fewest and least
//! important victims, and nominate that node.
//!
//! Not yet: PodDisruptionBudgets (every candidate counts 0 violations),
//! the random start offset and candidate sampling.

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

/// The DefaultPreemption plugin.
#[derive(Debug, Default)]
pub struct DefaultPreemption;

struct Candidate {
    node: String,
    victims: Vec<Arc<PodInfo>>,
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

fn fits(fw: &Framework, pod: &PodInfo, snapshot: &Snapshot, node: &NodeInfo) -> Status {
    let snap = with_node(snapshot, node.clone());
    let mut state = CycleState::default();
    let (s, narrowed) = fw.run_pre_filter(&mut state, pod, &snap);
    if !s.is_success() {
        return s;
    }
    if narrowed.is_some_and(|n| !n.contains(&node.name)) {
        return Status::with(Code::UnschedulableAndUnresolvable, NOT_HELPFUL);
    }
    fw.run_filter_with_nominated(&state, pod, node, snapshot.nominated.get(&node.name))
}

/// Victims on `node` for `pod`: all lower-priority pods removed, then as
/// many as possible reprieved, most important first.
fn select_victims(
    fw: &Framework,
    pod: &PodInfo,
    snapshot: &Snapshot,
    node: &NodeInfo,
) -> Result<Vec<Arc<PodInfo>>, Status> {
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
    let s = fits(fw, pod, snapshot, &trial);
    if !s.is_success() {
        return Err(s);
    }
    lower.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| start_time(a).cmp(&start_time(b)))
    });
    let mut victims = Vec::new();
    for p in lower {
        trial.add_pod(p.clone());
        if !fits(fw, pod, snapshot, &trial).is_success() {
            trial.remove_pod(&p.uid);
            victims.push(p);
        }
    }
    Ok(victims)
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

/// upstream's pickOneNodeForPreemption without PDBs: lowest highest-victim
/// priority, then lowest priority sum, then fewest victims, then first.
fn pick(candidates: &[Candidate]) -> Option<&Candidate> {
    candidates.iter().min_by_key(|c| {
        let highest = c.victims.iter().map(|v| v.priority).max().unwrap_or(i32::MIN);
        let sum: i64 = c
            .victims
            .iter()
            .map(|v| i64::from(v.priority) + i64::from(i32::MAX) + 1)
            .sum();
        (highest, sum, c.victims.len())
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
        for n in &snapshot.nodes {
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
            match select_victims(fw, pod, snapshot, n) {
                Ok(victims) if !victims.is_empty() => candidates.push(Candidate {
                    node: n.name.clone(),
                    victims,
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
