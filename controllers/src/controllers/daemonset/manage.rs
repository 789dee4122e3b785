//! What a DaemonSet needs on each node, decided without IO (upstream
//! `podsShouldBeOnNode`, `rollingUpdate`, `updateDaemonSetStatus`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use super::node_fit::{is_updated, should_run, target_node, template_generation};
use crate::cached_pod::CachedPod;
use crate::controllers::history::CONTROLLER_REVISION_HASH_LABEL;
use crate::controllers::pod_status::{is_available, is_ready, phase};

/// A DaemonSet's pods by the node they are for.
pub type NodePods = BTreeMap<String, Vec<Arc<CachedPod>>>;

/// Groups pods by target node; pods for no node are left out.
pub fn pods_by_node(pods: &[Arc<CachedPod>]) -> NodePods {
    let mut map = NodePods::new();
    for p in pods {
        if let Some(n) = target_node(p) {
            map.entry(n).or_default().push(p.clone());
        }
    }
    map
}

/// Scheduled pods first, then the oldest, then by name.
fn sort_pods(pods: &mut [Arc<CachedPod>]) {
    pods.sort_by(|a, b| {
        let scheduled = |p: &CachedPod| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(|n| !n.is_empty())
        };
        scheduled(b)
            .cmp(&scheduled(a))
            .then_with(|| {
                let t = |p: &CachedPod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
                t(a).cmp(&t(b))
            })
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
}

fn name(p: &CachedPod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

/// One node's needs.
#[derive(Debug, Default, PartialEq)]
pub struct NodeNeeds {
    /// A pod is to be created on the node.
    pub create: bool,
    /// Pods to delete.
    pub delete: Vec<String>,
    /// Failed pods (deleted unless in back-off).
    pub failed: Vec<String>,
}

/// What the node needs: a pod if it should run one and has none; the
/// excess pods deleted (with surge, an old ready pod may stay beside a
/// new one until that one is available); all pods deleted if it should
/// not run them any more.
pub fn node_needs(
    node: &Node,
    pods: Option<&Vec<Arc<CachedPod>>>,
    ds: &DaemonSet,
    hash: &str,
    now: Timestamp,
) -> NodeNeeds {
    let (run, keep) = should_run(node, ds);
    let mut needs = NodeNeeds::default();
    let min_ready = ds.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
    match pods {
        None if run => needs.create = true,
        Some(pods) if keep => {
            let mut running: Vec<Arc<CachedPod>> = Vec::new();
            for p in pods {
                if p.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                if phase(p) == "Failed" {
                    needs.failed.push(name(p));
                } else {
                    running.push(p.clone());
                }
            }
            sort_pods(&mut running);
            if max_surge(ds, 1) == 0 {
                needs.delete.extend(running.iter().skip(1).map(|p| name(p)));
                return needs;
            }
            if running.len() <= 1 {
                needs.create = running.is_empty() && run;
                return needs;
            }
            let (mut oldest_new, mut oldest_old) = (None, None);
            for p in &running {
                let is_new = p
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(CONTROLLER_REVISION_HASH_LABEL))
                    == Some(&hash.to_string());
                let slot = if is_new { &mut oldest_new } else { &mut oldest_old };
                if slot.is_none() {
                    *slot = Some(p.clone());
                } else {
                    needs.delete.push(name(p));
                }
            }
            if let (Some(new), Some(old)) = (oldest_new, oldest_old)
                && (!is_ready(&old) || is_available(&new, min_ready, now))
            {
                needs.delete.push(name(&old));
            }
        }
        Some(pods) if !keep => {
            needs.delete.extend(
                pods.iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .map(|p| name(p)),
            );
        }
        _ => {}
    }
    needs
}

/// Unscheduled pods for nodes that do not exist (never schedulable).
pub fn pods_for_missing_nodes(nodes: &[Arc<Node>], by_node: &NodePods) -> Vec<String> {
    let known: HashSet<&str> = nodes.iter().filter_map(|n| n.metadata.name.as_deref()).collect();
    by_node
        .iter()
        .filter(|(n, _)| !known.contains(n.as_str()))
        .flat_map(|(_, pods)| pods.iter())
        .filter(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_none_or(str::is_empty)
        })
        .map(|p| name(p))
        .collect()
}

fn scaled(v: Option<&IntOrString>, total: usize) -> usize {
    match v {
        None => 0,
        Some(IntOrString::Int(i)) => usize::try_from(*i).unwrap_or(0),
        Some(IntOrString::String(s)) => {
            let pct = s.strip_suffix('%').and_then(|p| p.parse::<usize>().ok()).unwrap_or(0);
            (pct.saturating_mul(total)).div_ceil(100)
        }
    }
}

fn rolling(ds: &DaemonSet) -> Option<&k8s_openapi::api::apps::v1::RollingUpdateDaemonSet> {
    let u = ds.spec.as_ref()?.update_strategy.as_ref()?;
    if u.type_.as_deref().unwrap_or("RollingUpdate") != "RollingUpdate" {
        return None;
    }
    u.rolling_update.as_ref()
}

/// `maxSurge` of `total` nodes (percentages rounded up; 0 unless rolling).
pub fn max_surge(ds: &DaemonSet, total: usize) -> usize {
    rolling(ds).map_or(0, |r| scaled(r.max_surge.as_ref(), total))
}

/// `maxUnavailable` of `total` nodes (percentages rounded up).
pub fn max_unavailable(ds: &DaemonSet, total: usize) -> usize {
    rolling(ds).map_or(0, |r| scaled(r.max_unavailable.as_ref(), total))
}

/// A node's pod of the current template and its pod of an older one.
type NewAndOld = (Option<Arc<CachedPod>>, Option<Arc<CachedPod>>);

/// The pods on one node after skipping deleted ones: `None` when there
/// is more than one new or more than one old (the manage step prunes).
fn new_and_old(ds: &DaemonSet, pods: &[Arc<CachedPod>], hash: &str) -> Option<NewAndOld> {
    let generation = template_generation(ds);
    let (mut new, mut old) = (None, None);
    for p in pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
        let slot = if is_updated(p, hash, generation) {
            &mut new
        } else {
            &mut old
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(p.clone());
    }
    Some((new, old))
}

/// A rolling update step: old pods to delete and nodes to surge onto.
#[derive(Debug, Default, PartialEq)]
pub struct RollingStep {
    pub delete: Vec<String>,
    pub create_on: Vec<String>,
}

/// One rolling-update step. Without surge, old pods are deleted (the
/// unavailable first) while fewer than `maxUnavailable` nodes are
/// unavailable; with surge, a new pod is started beside old ones (at
/// most `maxSurge` at once, immediately where the old one is
/// unavailable) and the old one deleted once the new one is available.
pub fn rolling_update(
    ds: &DaemonSet,
    nodes: &[Arc<Node>],
    by_node: &NodePods,
    hash: &str,
    now: Timestamp,
) -> RollingStep {
    let min_ready = ds.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let mut node_pods: BTreeMap<String, Vec<Arc<CachedPod>>> = by_node.clone();
    let mut desired = 0usize;
    let mut runs: BTreeMap<String, bool> = BTreeMap::new();
    for n in nodes {
        let nname = n.metadata.name.clone().unwrap_or_default();
        let run = should_run(n, ds).0;
        runs.insert(nname.clone(), run);
        if run {
            desired += 1;
            node_pods.entry(nname).or_default();
        }
    }
    let surge = max_surge(ds, desired);
    let mut unavailable_max = max_unavailable(ds, desired);
    if desired > 0 && surge == 0 && unavailable_max == 0 {
        unavailable_max = 1;
    }
    let available = |p: &CachedPod| is_available(p, min_ready, now);
    let mut step = RollingStep::default();
    if surge == 0 {
        let mut unavailable = 0usize;
        let mut replace = Vec::new();
        let mut candidates = Vec::new();
        for pods in node_pods.values() {
            let Some((new, old)) = new_and_old(ds, pods, hash) else {
                unavailable += 1;
                continue;
            };
            match (new, old) {
                (None, None) | (Some(_), Some(_)) => unavailable += 1,
                (Some(new), None) => {
                    if !available(&new) {
                        unavailable += 1;
                    }
                }
                (None, Some(old)) => {
                    if !available(&old) {
                        replace.push(name(&old));
                        unavailable += 1;
                    } else if unavailable < unavailable_max {
                        candidates.push(name(&old));
                    }
                }
            }
        }
        let room = unavailable_max.saturating_sub(unavailable).min(candidates.len());
        step.delete = replace;
        step.delete.extend(candidates.into_iter().take(room));
        return step;
    }
    let mut surged = 0usize;
    let mut available_count = 0usize;
    let mut allowed = Vec::new();
    let mut candidates = Vec::new();
    let mut sunset = Vec::new();
    for (node, pods) in &node_pods {
        let Some((new, old)) = new_and_old(ds, pods, hash) else {
            surged += 1;
            continue;
        };
        if let Some(p) = old.as_ref().or(new.as_ref())
            && available(p)
        {
            available_count += 1;
        }
        let run = runs.get(node).copied().unwrap_or(false);
        match (new, old) {
            (_, None) => {}
            (None, Some(old)) if !available(&old) => {
                if run {
                    allowed.push(node.clone());
                } else {
                    step.delete.push(name(&old));
                }
            }
            (None, Some(old)) => {
                if !run {
                    sunset.push(name(&old));
                } else if surged < surge {
                    candidates.push(node.clone());
                }
            }
            (Some(new), Some(old)) => {
                if available(&new) {
                    step.delete.push(name(&old));
                } else {
                    surged += 1;
                }
            }
        }
    }
    // Pods on nodes that no longer fit go only as others become available.
    let deletable = available_count.saturating_sub(desired).min(sunset.len());
    step.delete.extend(sunset.into_iter().take(deletable));
    let room = surge.saturating_sub(surged).min(candidates.len());
    step.create_on = allowed;
    step.create_on.extend(candidates.into_iter().take(room));
    step
}

/// The status counts from the pods on each node.
pub fn status(ds: &DaemonSet, nodes: &[Arc<Node>], by_node: &NodePods, hash: &str, now: Timestamp) -> DaemonSetStatus {
    let min_ready = ds.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let generation = template_generation(ds);
    let (mut desired, mut current, mut misscheduled, mut ready, mut updated, mut available) = (0, 0, 0, 0, 0, 0);
    for n in nodes {
        let (run, _) = should_run(n, ds);
        let pods = n
            .metadata
            .name
            .as_ref()
            .and_then(|name| by_node.get(name))
            .filter(|p| !p.is_empty());
        match (run, pods) {
            (true, None) => desired += 1,
            (true, Some(pods)) => {
                desired += 1;
                current += 1;
                let mut pods = pods.clone();
                sort_pods(&mut pods);
                let pod = &pods[0];
                if is_ready(pod) {
                    ready += 1;
                    if is_available(pod, min_ready, now) {
                        available += 1;
                    }
                }
                if is_updated(pod, hash, generation) {
                    updated += 1;
                }
            }
            (false, Some(_)) => misscheduled += 1,
            (false, None) => {}
        }
    }
    let mut s = ds.status.clone().unwrap_or_default();
    s.desired_number_scheduled = desired;
    s.current_number_scheduled = current;
    s.number_misscheduled = misscheduled;
    s.number_ready = ready;
    s.updated_number_scheduled = Some(updated);
    s.number_available = Some(available);
    s.number_unavailable = Some(desired - available);
    s
}

#[cfg(test)]
mod tests;
