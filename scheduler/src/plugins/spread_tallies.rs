//! PodTopologySpread's PreFilter tallies (matching pods and counted nodes
//! per topology value, per constraint), kept across scheduling cycles.
//!
//! Upstream counts every node afresh in each PreFilter. Between two cycles
//! only the nodes that got or lost a pod (or were relabelled, added,
//! removed) change, so a kept tally remembers, per snapshot position, the
//! NodeInfo it counted and what that node added; a cycle compares pointers
//! and takes out and puts back only the nodes that changed. Holding the
//! `Arc` of a counted NodeInfo keeps it from being freed or changed, so the
//! same pointer in the snapshot means the same node in the same state (the
//! cache replaces a changed NodeInfo; preemption dry runs work on copies).
//! A changed node is counted only when the snapshot's label index says it
//! may hold matching pods (for a Deployment's selector, a few nodes of
//! thousands); the others add 0. The result is the same as counting
//! afresh (tests below check this through node and pod changes).

use std::collections::HashMap;
use std::sync::Arc;

use super::match_counts::count_matching;
use super::pod_topology_spread::Constraint;
use crate::cache::Snapshot;
use crate::label_index::Narrowing;
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

/// Maps keyed by topology values.
pub(super) type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// One topology domain of one constraint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Domain {
    /// Nodes counted in the domain (it exists while this is above 0).
    nodes: i64,
    /// Matching pods on them.
    pub matched: i64,
}

/// The sums over every counted node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Tallies {
    /// Per constraint: the domains by topology value.
    pub domains: Vec<Map<String, Domain>>,
    /// Per constraint: the smallest matching count over the domains (0 when
    /// there are fewer domains than minDomains).
    pub min_match: Vec<i64>,
}

/// Tallies for one pod shape (what the counts depend on besides the
/// nodes: namespace, constraints, and the node inclusion policies' inputs).
#[derive(Debug, Default)]
pub(super) struct KeptTallies {
    /// The NodeInfo counted at each snapshot position.
    seen: Vec<Option<Arc<NodeInfo>>>,
    /// What each position added, per constraint (`positions x
    /// constraints`): matching pods, or None when the node is not counted.
    added: Vec<Option<i64>>,
    pub tallies: Arc<Tallies>,
}

/// What node `n` adds to each constraint's tally: matching pods, or None
/// when the node does not count (no Node object, a topology key missing, or
/// excluded by the node inclusion policies). Per constraint, `narrowing`
/// may say the node holds no matching pod (then it is not counted; a
/// constraint without one is counted).
fn contribution(
    constraints: &[Constraint],
    pod: &PodInfo,
    n: &NodeInfo,
    narrowing: &[Narrowing<'_>],
    out: &mut [Option<i64>],
) {
    out.fill(None);
    let Some(node) = &n.node else { return };
    if !constraints.iter().all(|c| n.labels.contains_key(&c.topology_key)) {
        return;
    }
    for (i, (slot, c)) in out.iter_mut().zip(constraints).enumerate() {
        if c.includes_node(pod, node, n) {
            let may_hold = narrowing.get(i).is_none_or(|w| w.may_hold(&n.name));
            *slot = Some(if may_hold {
                count_matching(n, &c.selector, &pod.namespace)
            } else {
                0
            });
        }
    }
}

impl KeptTallies {
    /// Tallies for `constraints` that counted nothing yet.
    pub fn new(constraints: &[Constraint]) -> KeptTallies {
        KeptTallies {
            seen: Vec::new(),
            added: Vec::new(),
            tallies: Arc::new(Tallies {
                domains: vec![Map::default(); constraints.len()],
                min_match: vec![0; constraints.len()],
            }),
        }
    }

    /// Brings the tallies up to date with `snapshot`.
    pub fn update(&mut self, constraints: &[Constraint], pod: &PodInfo, snapshot: &Snapshot) {
        let nc = constraints.len();
        let mut changed = false;
        let mut fresh = vec![None; nc];
        let mut narrowing = Vec::new();
        for (pos, n) in snapshot.nodes.iter().enumerate() {
            if let Some(Some(seen)) = self.seen.get(pos)
                && Arc::ptr_eq(seen, n)
            {
                continue;
            }
            if !changed {
                changed = true;
                // Clones only when a cycle still holds the previous sums.
                Arc::make_mut(&mut self.tallies);
                narrowing = constraints
                    .iter()
                    .map(|c| snapshot.labels.narrowing(&pod.namespace, &c.selector))
                    .collect();
            }
            self.take_out(constraints, pos);
            contribution(constraints, pod, n, &narrowing, &mut fresh);
            let tallies = Arc::make_mut(&mut self.tallies);
            for (i, (c, m)) in constraints.iter().zip(&fresh).enumerate() {
                if let (Some(m), Some(v)) = (m, n.labels.get(&c.topology_key)) {
                    let d = match tallies.domains[i].get_mut(v.as_str()) {
                        Some(d) => d,
                        None => tallies.domains[i].entry(v.clone()).or_default(),
                    };
                    d.nodes += 1;
                    d.matched += m;
                }
            }
            if self.seen.len() <= pos {
                self.seen.resize(pos + 1, None);
                self.added.resize((pos + 1) * nc, None);
            }
            self.seen[pos] = Some(n.clone());
            self.added[pos * nc..(pos + 1) * nc].copy_from_slice(&fresh);
        }
        let len = snapshot.nodes.len();
        if self.seen.len() > len {
            changed = true;
            for pos in len..self.seen.len() {
                self.take_out(constraints, pos);
            }
            self.seen.truncate(len);
            self.added.truncate(len * nc);
        }
        if changed {
            let tallies = Arc::make_mut(&mut self.tallies);
            for (i, c) in constraints.iter().enumerate() {
                let domains = &tallies.domains[i];
                tallies.min_match[i] = if domains.len() < c.min_domains {
                    0
                } else {
                    domains.values().map(|d| d.matched).min().unwrap_or(0)
                };
            }
        }
    }

    /// Takes what position `pos` added out of the tallies.
    fn take_out(&mut self, constraints: &[Constraint], pos: usize) {
        let nc = constraints.len();
        let Some(Some(old)) = self.seen.get_mut(pos).map(Option::take) else {
            return;
        };
        let tallies = Arc::make_mut(&mut self.tallies);
        for (i, c) in constraints.iter().enumerate() {
            let (Some(m), Some(v)) = (self.added[pos * nc + i], old.labels.get(&c.topology_key)) else {
                continue;
            };
            if let Some(d) = tallies.domains[i].get_mut(v.as_str()) {
                d.nodes -= 1;
                d.matched -= m;
                if d.nodes <= 0 {
                    tallies.domains[i].remove(v.as_str());
                }
            }
        }
    }
}

/// Counts afresh, as upstream's PreFilter does (what [`KeptTallies`] keeps).
#[cfg(test)]
pub(super) fn fresh_tallies(constraints: &[Constraint], pod: &PodInfo, snapshot: &Snapshot) -> Tallies {
    let mut added = vec![None; constraints.len()];
    let mut out = Tallies {
        domains: vec![Map::default(); constraints.len()],
        min_match: vec![0; constraints.len()],
    };
    for n in &snapshot.nodes {
        contribution(constraints, pod, n, &[], &mut added);
        for (i, (c, m)) in constraints.iter().zip(&added).enumerate() {
            if let (Some(m), Some(v)) = (m, n.labels.get(&c.topology_key)) {
                let d = out.domains[i].entry(v.clone()).or_default();
                d.nodes += 1;
                d.matched += m;
            }
        }
    }
    for (i, c) in constraints.iter().enumerate() {
        out.min_match[i] = if out.domains[i].len() < c.min_domains {
            0
        } else {
            out.domains[i].values().map(|d| d.matched).min().unwrap_or(0)
        };
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use serde_json::{Value, json};

    use super::*;
    use crate::cache::Cache;
    use crate::plugins::pod_topology_spread::{NoWorkloads, PodTopologySpread};
    use crate::plugins::testing::{filter_all, node, pod, short};

    fn spread(key: &str, skew: i32, extra: Value) -> Value {
        let mut c = json!({"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": "DoNotSchedule",
                           "labelSelector": {"matchLabels": {"app": "web"}}});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    fn add_node(cache: &mut Cache, name: &str, labels: Value, spec: Value) {
        cache.add_or_update_node(node(name, labels, Value::Null, spec).node.unwrap());
    }

    fn place(cache: &mut Cache, name: &str, ns: &str, labels: Value, on: &str) {
        let mut p = pod(name, labels, json!({})).to_pod();
        p.metadata.namespace = Some(ns.into());
        p.spec.as_mut().unwrap().node_name = Some(on.into());
        cache.assume_pod(Arc::new(PodInfo::new(p)), on);
    }

    #[test]
    fn kept_tallies_match_fresh_ones_through_cluster_changes() {
        let taint = json!({"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]});
        let incoming = [
            pod(
                "zone",
                json!({"app": "web"}),
                json!({"topologySpreadConstraints": [spread("zone", 1, json!({}))]}),
            ),
            pod(
                "zone-and-host",
                json!({"app": "web"}),
                json!({"topologySpreadConstraints": [
                    spread("zone", 2, json!({"minDomains": 3})),
                    spread("kubernetes.io/hostname", 1, json!({"nodeTaintsPolicy": "Honor"})),
                ]}),
            ),
            pod(
                "selected",
                json!({"app": "db"}),
                json!({"nodeSelector": {"disk": "ssd"},
                       "topologySpreadConstraints": [spread("zone", 1, json!({}))]}),
            ),
            pod(
                "values",
                json!({"app": "db"}),
                json!({"topologySpreadConstraints": [spread("zone", 1, json!({"labelSelector":
                    {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "db"]}]}}))]}),
            ),
            pod(
                "exists-and-template",
                json!({"app": "web", "hash": "h1"}),
                json!({"topologySpreadConstraints": [
                    spread("kubernetes.io/hostname", 1, json!({"matchLabelKeys": ["hash"], "labelSelector":
                        {"matchExpressions": [{"key": "app", "operator": "Exists"}]}})),
                    spread("zone", 1, json!({"labelSelector": {"matchLabels": {"hash": "h1"}}})),
                ]}),
            ),
            pod(
                "ignores-affinity",
                json!({"app": "web"}),
                json!({"nodeSelector": {"disk": "ssd"},
                       "topologySpreadConstraints": [spread("zone", 1, json!({"nodeAffinityPolicy": "Ignore"}))]}),
            ),
        ];
        let plugin = PodTopologySpread::new(Arc::new(NoWorkloads));
        let kept_plugin = Arc::new(PodTopologySpread::new(Arc::new(NoWorkloads)));
        let mut kept: Vec<Option<KeptTallies>> = (0..incoming.len()).map(|_| None).collect();
        let mut check = |snap: &Snapshot, step: &str| {
            for (p, k) in incoming.iter().zip(kept.iter_mut()) {
                let (cs, _) = plugin.constraints(p, "DoNotSchedule");
                let k = k.get_or_insert_with(|| KeptTallies::new(&cs));
                k.update(&cs, p, snap);
                assert_eq!(*k.tallies, fresh_tallies(&cs, p, snap), "{step}: {}", p.name);
                let fresh: Vec<String> = filter_all(Arc::new(PodTopologySpread::new(Arc::new(NoWorkloads))), p, snap)
                    .iter()
                    .map(short)
                    .collect();
                let got: Vec<String> = filter_all(kept_plugin.clone(), p, snap).iter().map(short).collect();
                assert_eq!(got, fresh, "{step}: {}", p.name);
            }
        };
        let mut cache = Cache::default();
        let mut snap = Snapshot::default();
        for (i, zone) in ["z1", "z1", "z2", "z3"].iter().enumerate() {
            add_node(
                &mut cache,
                &format!("n{i}"),
                json!({"zone": zone, "disk": "ssd"}),
                json!({}),
            );
        }
        cache.update_snapshot(&mut snap);
        check(&snap, "empty");
        place(&mut cache, "w1", "default", json!({"app": "web"}), "n0");
        place(&mut cache, "w2", "default", json!({"app": "web"}), "n0");
        place(&mut cache, "d1", "default", json!({"app": "db"}), "n2");
        place(&mut cache, "other-ns", "other", json!({"app": "web"}), "n3");
        place(&mut cache, "t1", "default", json!({"app": "web", "hash": "h1"}), "n1");
        place(&mut cache, "t2", "other", json!({"app": "web", "hash": "h1"}), "n2");
        cache.update_snapshot(&mut snap);
        check(&snap, "pods placed");
        // A node tainted, another losing the ssd label, one without a zone.
        add_node(&mut cache, "n1", json!({"zone": "z1", "disk": "ssd"}), taint.clone());
        add_node(&mut cache, "n2", json!({"zone": "z2"}), json!({}));
        add_node(&mut cache, "nozone", json!({"disk": "ssd"}), json!({}));
        place(&mut cache, "w3", "default", json!({"app": "web"}), "nozone");
        cache.update_snapshot(&mut snap);
        check(&snap, "nodes updated");
        // Pods go; a node goes (positions shift); a node sorting first comes.
        cache.remove_pod("uid-w1");
        cache.remove_pod("uid-d1");
        cache.remove_node("n0");
        cache.update_snapshot(&mut snap);
        check(&snap, "pod and node removed");
        add_node(&mut cache, "a0", json!({"zone": "z4", "disk": "ssd"}), json!({}));
        place(&mut cache, "w4", "default", json!({"app": "web"}), "a0");
        place(&mut cache, "t3", "default", json!({"app": "db", "hash": "h1"}), "a0");
        cache.remove_pod("uid-t1");
        cache.update_snapshot(&mut snap);
        check(&snap, "node added");
        // Relabelled into another zone; the last node of a zone goes.
        add_node(&mut cache, "n3", json!({"zone": "z1", "disk": "ssd"}), json!({}));
        cache.remove_node("a0");
        cache.update_snapshot(&mut snap);
        check(&snap, "relabelled");
        // Back to fewer nodes than before (the kept positions shrink).
        for n in ["n1", "n2", "n3", "nozone"] {
            cache.remove_node(n);
        }
        cache.update_snapshot(&mut snap);
        assert!(snap.nodes.is_empty());
        check(&snap, "all gone");
        add_node(&mut cache, "n9", json!({"zone": "z1", "disk": "ssd"}), json!({}));
        cache.update_snapshot(&mut snap);
        check(&snap, "one again");
    }

    #[test]
    fn unchanged_nodes_are_not_recounted() {
        let p = pod(
            "p",
            json!({"app": "web"}),
            json!({"topologySpreadConstraints": [spread("zone", 1, json!({}))]}),
        );
        let plugin = PodTopologySpread::new(Arc::new(NoWorkloads));
        let (cs, _) = plugin.constraints(&p, "DoNotSchedule");
        let mut cache = Cache::default();
        let mut snap = Snapshot::default();
        add_node(&mut cache, "a", json!({"zone": "z1"}), json!({}));
        add_node(&mut cache, "b", json!({"zone": "z2"}), json!({}));
        place(&mut cache, "w1", "default", json!({"app": "web"}), "a");
        cache.update_snapshot(&mut snap);
        let mut kept = KeptTallies::new(&cs);
        kept.update(&cs, &p, &snap);
        let before = kept.tallies.clone();
        // Same snapshot: nothing is recounted, the same sums are shared.
        kept.update(&cs, &p, &snap);
        assert!(Arc::ptr_eq(&before, &kept.tallies));
        assert_eq!(kept.tallies.domains[0]["z1"].matched, 1);
        assert_eq!(kept.tallies.min_match, [0]);
        place(&mut cache, "w2", "default", json!({"app": "web"}), "b");
        cache.update_snapshot(&mut snap);
        kept.update(&cs, &p, &snap);
        assert_eq!(kept.tallies.min_match, [1]);
        // The earlier sums, still held by an earlier cycle, did not change.
        assert_eq!(before.min_match, [0]);
    }

    /// Upstream's `TestPreFilterStateAddPod` cases: the matching counts per
    /// domain after a pod is added to a node (here through the cache, the
    /// kept tallies recounting only that node).
    #[test]
    fn counts_after_a_pod_is_added_follow_upstream() {
        let foo = json!({"matchExpressions": [{"key": "foo", "operator": "Exists"}]});
        let bar = json!({"matchExpressions": [{"key": "bar", "operator": "Exists"}]});
        let c = |key: &str, sel: &Value| json!({"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "DoNotSchedule", "labelSelector": sel});
        struct Case {
            name: &'static str,
            incoming: PodInfo,
            nodes: Vec<(&'static str, Value)>,
            existing: Vec<(&'static str, &'static str, &'static str, Value)>,
            added: (&'static str, &'static str, &'static str, Value),
            want: Vec<Vec<(&'static str, i64)>>,
        }
        let zoned = |name: &'static str, zone: &str| (name, json!({"zone": zone, "node": name}));
        let both = json!({"topologySpreadConstraints": [c("zone", &foo), c("node", &foo)]});
        let cases = [
            Case {
                name: "node a and b both impact current min match",
                incoming: pod(
                    "p",
                    json!({"foo": ""}),
                    json!({"topologySpreadConstraints": [c("node", &foo)]}),
                ),
                nodes: vec![zoned("node-a", "zone1"), zoned("node-b", "zone1")],
                existing: vec![],
                added: ("p-a1", "default", "node-a", json!({"foo": ""})),
                want: vec![vec![("node-a", 1), ("node-b", 0)]],
            },
            Case {
                name: "only node a impacts current min match",
                incoming: pod(
                    "p",
                    json!({"foo": ""}),
                    json!({"topologySpreadConstraints": [c("node", &foo)]}),
                ),
                nodes: vec![zoned("node-a", "zone1"), zoned("node-b", "zone1")],
                existing: vec![("p-b1", "default", "node-b", json!({"foo": ""}))],
                added: ("p-a1", "default", "node-a", json!({"foo": ""})),
                want: vec![vec![("node-a", 1), ("node-b", 1)]],
            },
            Case {
                name: "add a pod in a different namespace doesn't change the counts",
                incoming: pod(
                    "p",
                    json!({"foo": ""}),
                    json!({"topologySpreadConstraints": [c("node", &foo)]}),
                ),
                nodes: vec![zoned("node-a", "zone1"), zoned("node-b", "zone1")],
                existing: vec![("p-b1", "default", "node-b", json!({"foo": ""}))],
                added: ("p-a1", "ns1", "node-a", json!({"foo": ""})),
                want: vec![vec![("node-a", 0), ("node-b", 1)]],
            },
            Case {
                name: "node a and x both impact the minimum on zone and node",
                incoming: pod("p", json!({"foo": ""}), both.clone()),
                nodes: vec![zoned("node-a", "zone1"), zoned("node-x", "zone2")],
                existing: vec![],
                added: ("p-a1", "default", "node-a", json!({"foo": ""})),
                want: vec![vec![("zone1", 1), ("zone2", 0)], vec![("node-a", 1), ("node-x", 0)]],
            },
            Case {
                name: "node a impacts the minimum on node, node x on zone",
                incoming: pod("p", json!({"foo": ""}), both),
                nodes: vec![
                    zoned("node-a", "zone1"),
                    zoned("node-b", "zone1"),
                    zoned("node-x", "zone2"),
                ],
                existing: vec![
                    ("p-b1", "default", "node-b", json!({"foo": ""})),
                    ("p-b2", "default", "node-b", json!({"foo": ""})),
                    ("p-x1", "default", "node-x", json!({"foo": ""})),
                ],
                added: ("p-a1", "default", "node-a", json!({"foo": ""})),
                want: vec![
                    vec![("zone1", 3), ("zone2", 1)],
                    vec![("node-a", 1), ("node-b", 2), ("node-x", 1)],
                ],
            },
            Case {
                name: "constraints hold different label selectors",
                incoming: pod(
                    "p",
                    json!({"foo": "", "bar": ""}),
                    json!({"topologySpreadConstraints": [c("zone", &foo), c("node", &bar)]}),
                ),
                nodes: vec![
                    zoned("node-a", "zone1"),
                    zoned("node-b", "zone1"),
                    zoned("node-x", "zone2"),
                ],
                existing: vec![
                    ("p-b1", "default", "node-b", json!({"foo": "", "bar": ""})),
                    ("p-x1", "default", "node-x", json!({"foo": "", "bar": ""})),
                    ("p-x2", "default", "node-x", json!({"bar": ""})),
                ],
                added: ("p-a1", "default", "node-a", json!({"foo": ""})),
                want: vec![
                    vec![("zone1", 2), ("zone2", 1)],
                    vec![("node-a", 0), ("node-b", 1), ("node-x", 2)],
                ],
            },
            Case {
                name: "node affinity unmatched node is not counted (NodeInclusionPolicy)",
                incoming: pod(
                    "p",
                    json!({"foo": ""}),
                    json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                               "nodeSelectorTerms": [{"matchExpressions": [
                                   {"key": "foo", "operator": "NotIn", "values": ["bar"]}]}]}}},
                           "topologySpreadConstraints": [c("zone", &foo)]}),
                ),
                nodes: vec![
                    ("node-a", json!({"zone": "zone1", "node": "node-a", "foo": "bar"})),
                    ("node-b", json!({"zone": "zone2", "node": "node-b", "foo": ""})),
                ],
                existing: vec![
                    ("p-a2", "default", "node-a", json!({"foo": ""})),
                    ("p-b1", "default", "node-b", json!({"foo": ""})),
                ],
                added: ("p-a1", "default", "node-a", json!({"foo": ""})),
                want: vec![vec![("zone2", 1)]],
            },
        ];
        let plugin = PodTopologySpread::new(Arc::new(NoWorkloads));
        for case in cases {
            let mut cache = Cache::default();
            let mut snap = Snapshot::default();
            for (name, labels) in &case.nodes {
                add_node(&mut cache, name, labels.clone(), json!({}));
            }
            for (name, ns, on, labels) in &case.existing {
                place(&mut cache, name, ns, labels.clone(), on);
            }
            cache.update_snapshot(&mut snap);
            let (cs, _) = plugin.constraints(&case.incoming, "DoNotSchedule");
            let mut kept = KeptTallies::new(&cs);
            kept.update(&cs, &case.incoming, &snap);
            let (name, ns, on, labels) = &case.added;
            place(&mut cache, name, ns, labels.clone(), on);
            cache.update_snapshot(&mut snap);
            kept.update(&cs, &case.incoming, &snap);
            let got: Vec<Vec<(&str, i64)>> = kept
                .tallies
                .domains
                .iter()
                .map(|d| {
                    let mut v: Vec<(&str, i64)> = d.iter().map(|(k, d)| (k.as_str(), d.matched)).collect();
                    v.sort_unstable();
                    v
                })
                .collect();
            assert_eq!(got, case.want, "{}", case.name);
            let want_min: Vec<i64> = case
                .want
                .iter()
                .map(|d| d.iter().map(|(_, n)| *n).min().unwrap_or(0))
                .collect();
            assert_eq!(kept.tallies.min_match, want_min, "{}", case.name);
            assert_eq!(
                *kept.tallies,
                fresh_tallies(&cs, &case.incoming, &snap),
                "{}",
                case.name
            );
        }
    }
}
