//! The placement algorithm of one scheduling cycle (upstream's
//! `schedulePod`): PreFilter, Filter over enough nodes (round-robin start,
//! `percentageOfNodesToScore`), Score, and picking the best node. Pure: it
//! reads a snapshot and returns a decision or a [`FitError`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand::Rng;

use crate::cache::Snapshot;
use crate::framework::{Code, CycleState, Framework, NodeStatuses, Status};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

/// Fewer nodes than this are always all evaluated.
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// The adaptive percentage never goes below this.
pub const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: i64 = 5;

/// How many feasible nodes to find before scoring
/// (`numFeasibleNodesToFind`); `percentage` 0 means adaptive
/// (50% minus 1% per 125 nodes, at least 5%).
pub fn num_feasible_nodes_to_find(percentage: i32, num_all_nodes: usize) -> usize {
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND || percentage >= 100 {
        return num_all_nodes;
    }
    let mut pct = i64::from(percentage);
    if pct <= 0 {
        pct = (50 - num_all_nodes as i64 / 125).max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND);
    }
    let n = (num_all_nodes as i64 * pct / 100) as usize;
    n.max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Why no node fits, rendered as upstream's FailedScheduling message.
#[derive(Debug, Clone)]
pub struct FitError {
    pub num_all_nodes: usize,
    /// Filter statuses of the nodes (every node, when filtering ran).
    pub statuses: NodeStatuses,
    /// The PreFilter rejection, when that is where it failed.
    pub pre_filter_msg: String,
    /// What PostFilter (preemption) said.
    pub post_filter_msg: String,
    /// Plugins that rejected the pod (for re-queueing on cluster events).
    pub unschedulable_plugins: BTreeSet<&'static str>,
}

impl FitError {
    /// Counts each reason over the nodes, sorted as strings.
    pub fn reason_histogram(statuses: &NodeStatuses) -> Vec<String> {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for s in statuses.values() {
            for r in &s.reasons {
                *counts.entry(r.as_str()).or_default() += 1;
            }
        }
        let mut out: Vec<String> = counts.into_iter().map(|(r, n)| format!("{n} {r}")).collect();
        out.sort();
        out
    }

    /// `0/N nodes are available: <reasons>. <post filter message>` (the
    /// PostFilter message carries its own final period).
    pub fn message(&self) -> String {
        let mut msg = format!("0/{} nodes are available:", self.num_all_nodes);
        if !self.pre_filter_msg.is_empty() {
            msg += &format!(" {}.", self.pre_filter_msg);
        } else {
            let hist = FitError::reason_histogram(&self.statuses);
            if !hist.is_empty() {
                msg += &format!(" {}.", hist.join(", "));
            }
        }
        if !self.post_filter_msg.is_empty() {
            msg += " ";
            msg += &self.post_filter_msg;
        }
        msg
    }
}

/// The outcome of a successful placement.
#[derive(Debug)]
pub struct ScheduleResult {
    pub node: String,
    pub evaluated_nodes: usize,
    pub feasible_nodes: usize,
}

/// Why a cycle did not place the pod.
#[derive(Debug)]
pub enum ScheduleError {
    /// No node fits.
    Unschedulable(Box<FitError>),
    /// A plugin failed internally.
    Internal(Status),
    /// There are no nodes.
    NoNodes,
}

/// What Filter found: the feasible nodes and the rejected ones. The
/// rejections are kept as a list and turned into [`NodeStatuses`] only
/// when the pod fits nowhere (a successful cycle never needs them by name).
#[derive(Debug, Default)]
pub struct Filtered {
    pub feasible: Vec<Arc<NodeInfo>>,
    /// Nodes PreFilter narrowed away.
    narrowed_out: NodeStatuses,
    rejected: Vec<(Arc<NodeInfo>, Status)>,
}

impl Filtered {
    /// Nodes that got a verdict (feasible or rejected).
    pub fn evaluated(&self) -> usize {
        self.feasible.len() + self.narrowed_out.len() + self.rejected.len()
    }

    /// The statuses of the rejected nodes, by name.
    pub fn statuses(self) -> NodeStatuses {
        let mut statuses = self.narrowed_out;
        statuses.reserve(self.rejected.len());
        for (n, s) in self.rejected {
            statuses.insert(n.name.clone(), s);
        }
        statuses
    }
}

/// Runs PreFilter and Filter; returns the feasible nodes and the rejected
/// ones. `next_start` is the round-robin start index.
pub fn find_nodes_that_fit(
    fw: &Framework,
    state: &mut CycleState,
    pod: &PodInfo,
    snapshot: &Snapshot,
    next_start: &mut usize,
) -> Result<Filtered, ScheduleError> {
    let all = snapshot.nodes.len();
    let (pre, narrowed) = fw.run_pre_filter(state, pod, snapshot);
    if !pre.is_success() {
        if !pre.is_rejected() {
            return Err(ScheduleError::Internal(pre));
        }
        let mut fe = FitError {
            num_all_nodes: all,
            statuses: NodeStatuses::new(),
            pre_filter_msg: pre.message(),
            post_filter_msg: String::new(),
            unschedulable_plugins: [pre.plugin].into_iter().collect(),
        };
        for n in &snapshot.nodes {
            fe.statuses.insert(n.name.clone(), pre.clone());
        }
        return Err(ScheduleError::Unschedulable(Box::new(fe)));
    }
    let filters = fw.active_filters(state);
    // A pod nominated by an earlier preemption tries its node first.
    if let Some(nominated) = pod.nominated_node_name().and_then(|n| snapshot.get(n))
        && narrowed.as_ref().is_none_or(|names| names.contains(&nominated.name))
        && filters
            .run_with_nominated(state, pod, nominated, snapshot.nominated.get(&nominated.name))
            .is_success()
    {
        return Ok(Filtered {
            feasible: vec![nominated.clone()],
            ..Filtered::default()
        });
    }
    let mut out = Filtered::default();
    let candidates: Vec<Arc<NodeInfo>> = match &narrowed {
        Some(names) => {
            for n in &snapshot.nodes {
                if !names.contains(&n.name) {
                    out.narrowed_out.insert(
                        n.name.clone(),
                        Status::with(
                            Code::UnschedulableAndUnresolvable,
                            "node(s) didn't satisfy plugin(s) in PreFilter",
                        ),
                    );
                }
            }
            names.iter().filter_map(|n| snapshot.get(n).cloned()).collect()
        }
        None => Vec::new(),
    };
    let nodes: &[Arc<NodeInfo>] = if narrowed.is_some() {
        &candidates
    } else {
        &snapshot.nodes
    };
    let to_find = num_feasible_nodes_to_find(fw.percentage_of_nodes_to_score, nodes.len());
    out.feasible.reserve(to_find.min(nodes.len()));
    if nodes.is_empty() {
        return Ok(out);
    }
    let start = if narrowed.is_some() {
        0
    } else {
        *next_start % nodes.len()
    };
    let (tail, head) = nodes.split_at(start);
    let mut processed = 0;
    for node in head.iter().chain(tail) {
        if out.feasible.len() >= to_find {
            break;
        }
        processed += 1;
        let s = if snapshot.nominated.is_empty() {
            filters.run(state, pod, node)
        } else {
            filters.run_with_nominated(state, pod, node, snapshot.nominated.get(&node.name))
        };
        if s.is_success() {
            out.feasible.push(node.clone());
        } else if s.is_rejected() {
            out.rejected.push((node.clone(), s));
        } else {
            return Err(ScheduleError::Internal(s));
        }
    }
    if narrowed.is_none() {
        *next_start = (start + processed) % nodes.len();
    }
    Ok(out)
}

/// Picks the highest total, breaking ties uniformly at random.
pub fn select_host(nodes: &[Arc<NodeInfo>], totals: &[i64]) -> Option<String> {
    let mut rng = rand::rng();
    let mut best: Option<(i64, usize)> = None;
    let mut ties = 0u32;
    for (i, t) in totals.iter().enumerate() {
        match best {
            Some((b, _)) if *t < b => {}
            Some((b, _)) if *t == b => {
                ties += 1;
                if rng.random_range(0..ties) == 0 {
                    best = Some((b, i));
                }
            }
            _ => {
                best = Some((*t, i));
                ties = 1;
            }
        }
    }
    best.map(|(_, i)| nodes[i].name.clone())
}

/// One placement decision for `pod` (no PostFilter: the caller runs it
/// on [`ScheduleError::Unschedulable`]).
pub fn schedule_pod(
    fw: &Framework,
    state: &mut CycleState,
    pod: &PodInfo,
    snapshot: &Snapshot,
    next_start: &mut usize,
) -> Result<ScheduleResult, ScheduleError> {
    if snapshot.nodes.is_empty() {
        return Err(ScheduleError::NoNodes);
    }
    let filtered = find_nodes_that_fit(fw, state, pod, snapshot, next_start)?;
    let evaluated = filtered.evaluated();
    if filtered.feasible.is_empty() {
        let statuses = filtered.statuses();
        let unschedulable_plugins = statuses.values().map(|s| s.plugin).collect();
        return Err(ScheduleError::Unschedulable(Box::new(FitError {
            num_all_nodes: snapshot.nodes.len(),
            statuses,
            pre_filter_msg: String::new(),
            post_filter_msg: String::new(),
            unschedulable_plugins,
        })));
    }
    let feasible = filtered.feasible;
    if feasible.len() == 1 {
        return Ok(ScheduleResult {
            node: feasible[0].name.clone(),
            evaluated_nodes: evaluated,
            feasible_nodes: 1,
        });
    }
    let totals = fw.run_score(state, pod, &feasible, snapshot);
    let node = select_host(&feasible, &totals).ok_or(ScheduleError::NoNodes)?;
    Ok(ScheduleResult {
        node,
        evaluated_nodes: evaluated,
        feasible_nodes: feasible.len(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn feasible_nodes_to_find_is_adaptive() {
        assert_eq!(num_feasible_nodes_to_find(0, 10), 10);
        assert_eq!(num_feasible_nodes_to_find(0, 99), 99);
        assert_eq!(num_feasible_nodes_to_find(0, 100), 100);
        // 50 - 1000/125 = 42%
        assert_eq!(num_feasible_nodes_to_find(0, 1000), 420);
        // 50 - 5000/125 = 10%
        assert_eq!(num_feasible_nodes_to_find(0, 5000), 500);
        // never below 5%
        assert_eq!(num_feasible_nodes_to_find(0, 10000), 500);
        assert_eq!(num_feasible_nodes_to_find(10, 500), 100);
        assert_eq!(num_feasible_nodes_to_find(100, 500), 500);
    }

    #[test]
    fn nominated_pods_hold_their_room_against_lower_priorities() {
        use crate::plugins::testing::{container, node, pod};
        use crate::plugins::{PluginContext, default_framework};
        use serde_json::{Value, json};
        let fw = default_framework(&PluginContext::default());
        let mut snap = Snapshot::from_nodes(vec![node(
            "a",
            Value::Null,
            json!({"cpu": "4", "memory": "8Gi", "pods": "110"}),
            json!({}),
        )]);
        let nominated = Arc::new(pod(
            "big",
            json!({}),
            json!({"priority": 10, "containers": [container("3", "0")]}),
        ));
        snap.nominated.insert("a".into(), vec![nominated]);
        let low = pod(
            "low",
            json!({}),
            json!({"priority": 0, "containers": [container("2", "0")]}),
        );
        let err = schedule_pod(&fw, &mut CycleState::default(), &low, &snap, &mut 0).unwrap_err();
        let ScheduleError::Unschedulable(fe) = err else {
            panic!("{err:?}")
        };
        assert_eq!(fe.message(), "0/1 nodes are available: 1 Insufficient cpu.");
        // A pod of higher priority than the nominated one ignores it.
        let high = pod(
            "high",
            json!({}),
            json!({"priority": 100, "containers": [container("2", "0")]}),
        );
        assert_eq!(
            schedule_pod(&fw, &mut CycleState::default(), &high, &snap, &mut 0)
                .unwrap()
                .node,
            "a"
        );
    }

    #[test]
    fn fit_error_message_matches_upstream() {
        let mut statuses = NodeStatuses::new();
        statuses.insert("a".into(), Status::with(Code::Unschedulable, "Insufficient cpu"));
        for n in ["b", "c"] {
            statuses.insert(
                n.into(),
                Status::with(
                    Code::UnschedulableAndUnresolvable,
                    "node(s) had untolerated taint {key: value}",
                ),
            );
        }
        let fe = FitError {
            num_all_nodes: 3,
            statuses,
            pre_filter_msg: String::new(),
            post_filter_msg: "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.".into(),
            unschedulable_plugins: BTreeSet::new(),
        };
        assert_eq!(
            fe.message(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {key: value}. \
             preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
    }
}

#[cfg(test)]
mod throughput {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Arc;
    use std::time::Instant;

    use serde_json::{Value, json};

    use super::*;
    use crate::cache::Cache;
    use crate::plugins::testing::{container, node, pod};
    use crate::plugins::{PluginContext, default_framework};

    /// `cargo test -p rkube-scheduler --release -- --ignored --nocapture
    /// throughput`: the scheduling cycle alone (no API), SchedulingBasic's
    /// shape (nodes of 4 cpu / 32Gi / 110 pods, pods of 100m / 500Mi).
    #[test]
    #[ignore]
    fn scheduling_basic_throughput() {
        for (nodes, pods) in [(1000, 5000), (5000, 5000)] {
            let mut cache = Cache::default();
            for i in 0..nodes {
                let n = node(
                    &format!("node-{i}"),
                    json!({"topology.kubernetes.io/zone": format!("zone-{}", i % 3)}),
                    json!({"cpu": "4", "memory": "32Gi", "pods": "110"}),
                    Value::Null,
                );
                cache.add_or_update_node(n.node.clone().unwrap());
            }
            let fw = default_framework(&PluginContext::default());
            let mut snapshot = Snapshot::default();
            let mut next = 0;
            let start = Instant::now();
            for i in 0..pods {
                let p = pod(
                    &format!("p-{i}"),
                    json!({"app": "x"}),
                    json!({"containers": [container("100m", "500Mi")]}),
                );
                cache.update_snapshot(&mut snapshot);
                let mut state = CycleState::default();
                let r = schedule_pod(&fw, &mut state, &p, &snapshot, &mut next).unwrap();
                let mut bound = p.to_pod();
                bound.spec.as_mut().unwrap().node_name = Some(r.node.clone());
                cache.assume_pod(Arc::new(PodInfo::new(bound)), &r.node);
            }
            let secs = start.elapsed().as_secs_f64();
            println!("{nodes} nodes, {pods} pods: {:.0} pods/s", pods as f64 / secs);
        }
    }
}
