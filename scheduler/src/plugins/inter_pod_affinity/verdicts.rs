//! Filter verdicts of the anti-affinity tally, kept per node across cycles.
//!
//! Filter asks, for every node it visits, whether one of the node's
//! (topology key, value) pairs has a match in the anti-affinity tally: a
//! label map search and a hash of the value per key and node, tens of
//! thousands of times a cycle once most nodes are taken. The verdict of a
//! node changes only when the node changes or when one of its pairs starts
//! or stops counting, so PreFilter keeps the verdicts by NodeInfo
//! generation and judges again only those nodes: the changed positions of
//! the snapshot, and the positions holding a pair whose class (matched by
//! the incoming pod's terms, matched by existing pods' terms) changed,
//! found through an index of positions by key and value. Filter then looks
//! a node's generation up; a node without a kept verdict (generation 0, a
//! preemption dry run's copy, a pod shape whose findings are not kept) is
//! judged from the tally as before.

use std::sync::Arc;

use super::{Map, Pair, TopologyCounts};
use crate::cache::Snapshot;
use crate::node_info::NodeInfo;

/// What the anti-affinity tally says about a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// No pair of the node counts.
    Fits,
    /// A pair of the node matches the incoming pod's anti-affinity terms.
    AntiAffinity,
    /// A pair of the node holds existing pods whose anti-affinity terms
    /// match the incoming pod (and none of the first kind).
    ExistingAntiAffinity,
}

/// The anti-affinity tally: per pair, [matches of the incoming pod's
/// terms, existing pods' terms matching the incoming pod].
pub(super) type AntiTally = TopologyCounts<[i64; 2]>;

impl Verdict {
    /// Judges `node` from the tally (the incoming pod's terms first, as
    /// upstream reports them before existing pods').
    pub(super) fn of(anti: &AntiTally, node: &NodeInfo) -> Verdict {
        let mut existing = false;
        for [anti, existing_anti] in anti.for_node(node) {
            if anti > 0 {
                return Verdict::AntiAffinity;
            }
            existing |= existing_anti > 0;
        }
        if existing {
            Verdict::ExistingAntiAffinity
        } else {
            Verdict::Fits
        }
    }
}

/// Whether a pair's count makes a node fail, and how: a pair whose class
/// changes changes the verdict of the nodes in it.
pub(super) fn class(c: [i64; 2]) -> (bool, bool) {
    (c[0] > 0, c[1] > 0)
}

/// What PreFilter keeps to bring the verdicts up to date.
#[derive(Debug, Default)]
pub(super) struct Index {
    /// The generation judged at each snapshot position (0: none).
    at: Vec<u64>,
    /// Positions by topology key and value, for every key the tally has
    /// had. May hold positions that no longer have the value (a node
    /// relabelled or moved): checked on use.
    positions: Map<String, Map<String, Vec<usize>>>,
}

impl Index {
    /// Brings `verdicts` up to date with `anti` and `snapshot`, given the
    /// positions whose node changed since the last call and the pairs
    /// whose class changed.
    pub(super) fn refresh(
        &mut self,
        verdicts: &mut Map<u64, Verdict>,
        anti: &AntiTally,
        snapshot: &Snapshot,
        changed: &[usize],
        changed_pairs: &[Pair],
    ) {
        let nodes = &snapshot.nodes;
        let new_keys: Vec<&String> = anti
            .0
            .keys()
            .chain(changed_pairs.iter().map(|(k, _)| k))
            .filter(|k| !self.positions.contains_key(*k))
            .collect();
        for key in new_keys {
            if self.positions.contains_key(key) {
                continue;
            }
            let mut values: Map<String, Vec<usize>> = Map::default();
            for (pos, n) in nodes.iter().enumerate() {
                if let Some(v) = n.labels.get(key) {
                    values.entry(v.clone()).or_default().push(pos);
                }
            }
            self.positions.insert(key.clone(), values);
        }
        for &pos in changed {
            let Some(n) = nodes.get(pos) else { continue };
            for (key, values) in &mut self.positions {
                let Some(v) = n.labels.get(key) else { continue };
                match values.get_mut(v) {
                    Some(list) if list.contains(&pos) => {}
                    Some(list) => list.push(pos),
                    None => {
                        values.insert(v.clone(), vec![pos]);
                    }
                }
            }
        }
        let mut todo: Vec<usize> = changed.iter().copied().filter(|&p| p < nodes.len()).collect();
        for (key, value) in changed_pairs {
            let Some(list) = self.positions.get(key).and_then(|m| m.get(value)) else {
                continue;
            };
            todo.extend(
                list.iter()
                    .copied()
                    .filter(|&p| nodes.get(p).is_some_and(|n| n.labels.get(key) == Some(value))),
            );
        }
        // Every old generation goes before any new one is put in, so a
        // node that moved to another position keeps its verdict.
        for g in self.at.drain(nodes.len().min(self.at.len())..) {
            verdicts.remove(&g);
        }
        self.at.resize(nodes.len(), 0);
        for &pos in &todo {
            let old = std::mem::take(&mut self.at[pos]);
            if old != 0 && old != nodes[pos].generation {
                verdicts.remove(&old);
            }
        }
        for pos in todo {
            let n: &Arc<NodeInfo> = &nodes[pos];
            if n.generation != 0 {
                verdicts.insert(n.generation, Verdict::of(anti, n));
            }
            self.at[pos] = n.generation;
        }
    }
}
