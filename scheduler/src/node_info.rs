//! `NodeInfo`: a node with the pods on it and what they use, kept by the
//! cache and read by plugins through the snapshot.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::{Node, Taint};

use crate::pod_info::{HostPort, PodInfo};
use crate::resources::Resource;
use crate::selectors::Labels;

static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

/// A new generation number, greater than every one given before (like
/// upstream's `nextGeneration`). The cache gives a NodeInfo a new one on
/// every change, so a plugin may keep what it computed from a NodeInfo for
/// as long as its generation stays the same.
pub fn next_generation() -> u64 {
    NEXT_GENERATION.fetch_add(1, Ordering::Relaxed)
}

/// A node and the pods bound or assumed on it.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    /// The node, `None` while only pods naming it are known.
    pub node: Option<Arc<Node>>,
    /// Changes with every change to this NodeInfo ([`next_generation`]);
    /// 0 for one built outside the cache, which nothing may cache.
    pub generation: u64,
    pub name: String,
    pub labels: Labels,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub allocatable: Resource,
    /// Sum of the pods' requests.
    pub requested: Resource,
    /// Sum of the pods' requests with scoring defaults.
    pub non_zero_requested: Resource,
    pub pods: Vec<Arc<PodInfo>>,
    /// How many pods have pod (anti-)affinity terms.
    pub pods_with_affinity: usize,
    /// How many pods have required anti-affinity terms.
    pub pods_with_required_anti_affinity: usize,
    /// How many pods have terms that score incoming pods (required
    /// affinity, preferred affinity or anti-affinity).
    pub pods_with_scoring_affinity: usize,
    pub used_ports: Vec<HostPort>,
    /// Image names on the node (normalized) and their sizes.
    pub images: Vec<(String, i64)>,
}

/// Adds `:latest` to an image reference without tag or digest.
pub fn normalized_image_name(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || last.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

impl NodeInfo {
    /// A NodeInfo for `node` with no pods.
    pub fn new(node: Arc<Node>) -> NodeInfo {
        let mut info = NodeInfo::default();
        info.set_node(node);
        info
    }

    /// Replaces the node object, keeping the pods.
    pub fn set_node(&mut self, node: Arc<Node>) {
        self.name = node.metadata.name.clone().unwrap_or_default();
        self.labels = node.metadata.labels.clone().unwrap_or_default();
        let spec = node.spec.as_ref();
        self.taints = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        let status = node.status.as_ref();
        self.allocatable = Resource::from_list(status.and_then(|s| s.allocatable.as_ref()));
        self.images = status
            .and_then(|s| s.images.as_ref())
            .into_iter()
            .flatten()
            .flat_map(|img| {
                let size = img.size_bytes.unwrap_or(0);
                img.names
                    .iter()
                    .flatten()
                    .map(move |n| (normalized_image_name(n), size))
            })
            .collect();
        self.node = Some(node);
    }

    /// Gives a NodeInfo that has a generation a new one. The cache does so
    /// on every change anyway; this covers copies changed outside it (a
    /// preemption dry run taking pods off, nominated pods added for
    /// Filter), so they never pass for the NodeInfo a plugin kept findings
    /// for.
    fn touch(&mut self) {
        if self.generation != 0 {
            self.generation = next_generation();
        }
    }

    /// Accounts a pod on this node.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.touch();
        self.requested.add(&pod.requests);
        self.non_zero_requested.add(&pod.non_zero_requests);
        if pod.has_affinity() {
            self.pods_with_affinity += 1;
        }
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity += 1;
        }
        if pod.has_scoring_affinity() {
            self.pods_with_scoring_affinity += 1;
        }
        self.used_ports.extend(pod.host_ports.iter().cloned());
        self.pods.push(pod);
    }

    /// Removes the pod with `uid`; false when it was not here.
    pub fn remove_pod(&mut self, uid: &str) -> bool {
        let Some(i) = self.pods.iter().position(|p| p.uid == uid) else {
            return false;
        };
        let pod = self.pods.swap_remove(i);
        self.touch();
        self.requested.sub(&pod.requests);
        self.non_zero_requested.sub(&pod.non_zero_requests);
        if pod.has_affinity() {
            self.pods_with_affinity -= 1;
        }
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity -= 1;
        }
        if pod.has_scoring_affinity() {
            self.pods_with_scoring_affinity -= 1;
        }
        for hp in &pod.host_ports {
            if let Some(j) = self.used_ports.iter().position(|u| u == hp) {
                self.used_ports.swap_remove(j);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn pod(uid: &str) -> Arc<PodInfo> {
        let p = serde_json::from_value(serde_json::json!({
            "metadata": {"name": uid, "namespace": "d", "uid": uid},
            "spec": {"containers": [{"name": "c"}]},
        }))
        .unwrap();
        Arc::new(PodInfo::new(p))
    }

    #[test]
    fn pod_changes_give_a_new_generation_unless_none_was_given() {
        let mut n = NodeInfo {
            generation: next_generation(),
            ..NodeInfo::default()
        };
        let mut seen = vec![n.generation];
        // A copy changed outside the cache (a preemption dry run) must not
        // pass for the original.
        let mut copy = n.clone();
        copy.add_pod(pod("p"));
        assert!(!seen.contains(&copy.generation));
        n.add_pod(pod("p"));
        assert!(!seen.contains(&n.generation));
        seen.push(n.generation);
        assert!(n.remove_pod("p"));
        assert!(!seen.contains(&n.generation));
        seen.push(n.generation);
        assert!(!n.remove_pod("p"));
        assert_eq!(Some(&n.generation), seen.last());
        // Generation 0 means "not cacheable" and stays so.
        let mut plain = NodeInfo::default();
        plain.add_pod(pod("q"));
        assert_eq!(plain.generation, 0);
    }
}
