//! The node IPAM controller with upstream's range allocator
//! (`pkg/controller/nodeipam`): with `--allocate-node-cidrs`, every node
//! without `spec.podCIDRs` gets one CIDR from each `--cluster-cidr` (IPv4
//! and/or IPv6), a deleted node's CIDRs are released, and at start the
//! CIDRs nodes already carry are marked taken, so a restart never hands
//! out a CIDR twice.

pub mod cidr_set;
pub mod settings;

use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

pub use settings::{Settings, SettingsFlags};

use crate::controllers::events::{EventRecorder, EventType, reference};
use crate::error::{Error, ignore_not_found};
use crate::informer::{Change, Informer};
use crate::manager::ControllerContext;
use crate::runner::{Action, new_queue, run_controller_workers};
use cidr_set::{Cidr, CidrSet};

const NAME: &str = "node-ipam-controller";

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

fn pod_cidrs(node: &Node) -> Vec<Cidr> {
    let spec = node.spec.as_ref();
    let mut list: Vec<&String> = spec.and_then(|s| s.pod_cidrs.as_ref()).into_iter().flatten().collect();
    if list.is_empty()
        && let Some(c) = spec.and_then(|s| s.pod_cidr.as_ref())
    {
        list.push(c);
    }
    list.into_iter().filter_map(|c| Cidr::parse(c).ok()).collect()
}

/// The range allocator: one [`CidrSet`] per cluster CIDR.
#[derive(Debug)]
pub struct RangeAllocator {
    sets: Vec<CidrSet>,
}

impl RangeAllocator {
    pub fn new(settings: &Settings) -> Result<Self, cidr_set::CidrError> {
        let mut sets = Vec::new();
        for c in &settings.cluster_cidrs {
            let mut set = CidrSet::new(c.cidr, c.node_mask)?;
            for s in &settings.service_cidrs {
                set.occupy(*s);
            }
            sets.push(set);
        }
        Ok(RangeAllocator { sets })
    }

    /// Marks the node's CIDRs taken.
    pub fn occupy(&mut self, node: &Node) {
        for c in pod_cidrs(node) {
            for s in &mut self.sets {
                s.occupy(c);
            }
        }
    }

    /// Frees the node's CIDRs.
    pub fn release(&mut self, node: &Node) {
        for c in pod_cidrs(node) {
            for s in &mut self.sets {
                if s.cluster().contains(c) {
                    s.release(c);
                }
            }
        }
    }

    /// One CIDR from each cluster CIDR, in `--cluster-cidr` order; nothing
    /// is taken if any range is full.
    pub fn allocate(&mut self) -> Option<Vec<Cidr>> {
        let mut out = Vec::new();
        for i in 0..self.sets.len() {
            match self.sets[i].allocate() {
                Some(c) => out.push(c),
                None => {
                    for (j, c) in out.iter().enumerate() {
                        self.sets[j].release(*c);
                    }
                    return None;
                }
            }
        }
        Some(out)
    }

    /// Gives back CIDRs from [`RangeAllocator::allocate`].
    pub fn release_cidrs(&mut self, cidrs: &[Cidr]) {
        for (s, c) in self.sets.iter_mut().zip(cidrs) {
            s.release(*c);
        }
    }
}

struct NodeIpam {
    client: kube::Client,
    nodes: Informer<Node>,
    allocator: Mutex<RangeAllocator>,
    recorder: EventRecorder,
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let settings = &ctx.config.node_ipam;
    if !settings.allocate_node_cidrs {
        tracing::info!(
            controller = NAME,
            "--allocate-node-cidrs is false; not allocating node CIDRs"
        );
        return Ok(());
    }
    let allocator = RangeAllocator::new(settings).map_err(|e| Error::other(e.to_string()))?;
    let c = Arc::new(NodeIpam {
        client: ctx.client.clone(),
        nodes: ctx.informers.get::<Node>(),
        allocator: Mutex::new(allocator),
        recorder: EventRecorder::new(ctx.client.clone(), NAME),
    });
    c.nodes.wait_synced().await;
    // Recover the allocations nodes already carry before handing out any.
    for n in c.nodes.list_all() {
        c.alloc().occupy(&n);
    }
    let queue = new_queue("cidrallocator_node", &ctx.metrics);
    let (q, h) = (queue.clone(), c.clone());
    c.nodes.add_handler(move |change| match change {
        Change::Added(n) | Change::Updated { new: n, .. } => {
            if pod_cidrs(n).is_empty() {
                q.add(n.metadata.name.clone().unwrap_or_default());
            } else {
                h.alloc().occupy(n);
            }
        }
        Change::Deleted(n) => h.alloc().release(n),
    });
    // One worker: a node is never allocated for twice at once.
    run_controller_workers(NAME, queue, 1, &ctx.metrics, c, |c, name| c.sync(name).boxed()).await;
    Ok(())
}

impl NodeIpam {
    fn alloc(&self) -> std::sync::MutexGuard<'_, RangeAllocator> {
        self.allocator.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn sync(&self, name: &str) -> Result<Action, Error> {
        let api: Api<Node> = Api::all(self.client.clone());
        // A live read: the cache may not show a CIDR we just set.
        let Some(node) = ignore_not_found(api.get(name).await)? else {
            return Ok(Action::Done);
        };
        if !pod_cidrs(&node).is_empty() {
            self.alloc().occupy(&node);
            return Ok(Action::Done);
        }
        let Some(cidrs) = self.alloc().allocate() else {
            self.recorder.record(
                reference(&node),
                EventType::Normal,
                "CIDRNotAvailable",
                "CIDRAssignmentFailed",
                format!("Node {name} status is now: CIDRNotAvailable"),
            );
            return Err(Error::other(format!("no CIDR available for node {name}")));
        };
        let list: Vec<String> = cidrs.iter().map(ToString::to_string).collect();
        // No resourceVersion precondition: other writers (taints) must not
        // make us hand out another CIDR, and podCIDRs can only be set once.
        let body = json!({"spec": {"podCIDR": list[0], "podCIDRs": list}});
        match api.patch(name, &PatchParams::default(), &Patch::Merge(body)).await {
            Ok(_) => {
                tracing::info!(controller = NAME, node = name, cidrs = ?list, "allocated pod CIDRs");
                Ok(Action::Done)
            }
            Err(e) => {
                self.alloc().release_cidrs(&cidrs);
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn node(cidrs: &[&str]) -> Node {
        serde_json::from_value(json!({"metadata": {"name": "n"}, "spec": {"podCIDRs": cidrs}})).unwrap()
    }

    #[test]
    fn dual_stack_allocation_recovery_and_release() {
        let s = SettingsFlags {
            allocate_node_cidrs: true,
            cluster_cidr: "10.244.0.0/23,fd00::/63".into(),
            node_cidr_mask_size: 0,
            node_cidr_mask_size_ipv4: 0,
            node_cidr_mask_size_ipv6: 0,
            service_cluster_ip_range: String::new(),
        }
        .into_settings()
        .unwrap();
        let mut a = RangeAllocator::new(&s).unwrap();
        // Recovered at start: the first blocks are taken.
        let existing = node(&["10.244.0.0/24", "fd00::/64"]);
        a.occupy(&existing);
        let got: Vec<String> = a.allocate().unwrap().iter().map(ToString::to_string).collect();
        assert_eq!(got, ["10.244.1.0/24", "fd00:0:0:1::/64"]);
        assert!(a.allocate().is_none());
        a.release(&existing);
        let got: Vec<String> = a.allocate().unwrap().iter().map(ToString::to_string).collect();
        assert_eq!(got, ["10.244.0.0/24", "fd00::/64"]);
    }

    #[test]
    fn service_range_is_never_allocated() {
        let s = SettingsFlags {
            allocate_node_cidrs: true,
            cluster_cidr: "10.0.0.0/23".into(),
            node_cidr_mask_size: 0,
            node_cidr_mask_size_ipv4: 0,
            node_cidr_mask_size_ipv6: 0,
            service_cluster_ip_range: "10.0.0.0/24".into(),
        }
        .into_settings()
        .unwrap();
        let mut a = RangeAllocator::new(&s).unwrap();
        assert_eq!(a.allocate().unwrap()[0].to_string(), "10.0.1.0/24");
        assert!(a.allocate().is_none());
    }

    #[test]
    fn single_pod_cidr_field_counts() {
        let n: Node =
            serde_json::from_value(json!({"metadata": {"name": "n"}, "spec": {"podCIDR": "10.0.0.0/24"}})).unwrap();
        assert_eq!(pod_cidrs(&n).len(), 1);
        assert!(pod_cidrs(&node(&[])).is_empty());
    }
}
