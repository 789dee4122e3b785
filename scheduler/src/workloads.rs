//! Listers of the workloads that select pods (Services, ReplicaSets,
//! StatefulSets, ReplicationControllers), for PodTopologySpread's default
//! constraints: a pod without constraints is spread with its peers, the
//! pods those workloads select (upstream's `helper.DefaultSelector`, kept
//! as a [`WorkloadIndex`]); and of PodDisruptionBudgets, which preemption
//! respects where it can; and of PersistentVolumeClaims, PersistentVolumes
//! and StorageClasses (VolumeBinding), CSINodes and VolumeAttachments
//! (NodeVolumeLimits).

use std::sync::{Arc, RwLock};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, ReplicationController, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::{CSINode, StorageClass, VolumeAttachment};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde::de::DeserializeOwned;

use crate::plugins::default_preemption::{Budget, Budgets};
use crate::plugins::pod_topology_spread::WorkloadSelectors;
use crate::plugins::volume_binding::VolumeListers;
use crate::pod_info::PodInfo;
use crate::selectors::Selector;
use crate::workload_selectors::{Workload, WorkloadIndex};

/// Listers of the workload kinds.
#[derive(Clone)]
pub struct Workloads {
    /// What the default selector reads of Services, ReplicationControllers,
    /// ReplicaSets and StatefulSets.
    selectors: Arc<RwLock<WorkloadIndex>>,
    budgets: Store<PodDisruptionBudget>,
    claims: Store<PersistentVolumeClaim>,
    volumes: Store<PersistentVolume>,
    classes: Store<StorageClass>,
    csi_nodes: Store<CSINode>,
    attachments: Store<VolumeAttachment>,
}

impl std::fmt::Debug for Workloads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Workloads")
    }
}

/// Feeds `index` with the events of a watch on every `K`.
fn feed<K>(
    client: &Client,
    index: &Arc<RwLock<WorkloadIndex>>,
    cfg: watcher::Config,
) -> impl std::future::Future<Output = ()> + Send + use<K>
where
    K: Workload + kube::Resource<DynamicType = ()> + DeserializeOwned,
{
    let index = index.clone();
    watcher::watcher(Api::<K>::all(client.clone()), cfg)
        .default_backoff()
        .for_each(move |ev| {
            if let Ok(ev) = ev {
                index.write().unwrap_or_else(|e| e.into_inner()).on_event(ev);
            }
            async {}
        })
}

/// Starts the watchers and reflectors; returns the listers and the future
/// that keeps them fed.
/// `storage_changed` is notified on every claim, volume or class change.
pub fn start(
    client: &Client,
    storage_changed: std::sync::Arc<tokio::sync::Notify>,
) -> (Workloads, impl std::future::Future<Output = ()> + use<>) {
    let selectors = Arc::new(RwLock::new(WorkloadIndex::default()));
    let (budgets, bw) = reflector::store();
    let (claims, pvcw) = reflector::store();
    let (volumes, pvw) = reflector::store();
    let (classes, scw) = reflector::store();
    let (csi_nodes, cnw) = reflector::store();
    let (attachments, vaw) = reflector::store();
    let cfg = watcher::Config::default();
    let s = feed::<Service>(client, &selectors, cfg.clone());
    let r = feed::<ReplicaSet>(client, &selectors, cfg.clone());
    let ss = feed::<StatefulSet>(client, &selectors, cfg.clone());
    let c = feed::<ReplicationController>(client, &selectors, cfg.clone());
    let b = watcher::watcher(Api::<PodDisruptionBudget>::all(client.clone()), cfg.clone())
        .default_backoff()
        .reflect(bw)
        .for_each(|_| async {});
    let pvc = watcher::watcher(Api::<PersistentVolumeClaim>::all(client.clone()), cfg.clone())
        .default_backoff()
        .reflect(pvcw)
        .for_each({
            let n = storage_changed.clone();
            move |_| {
                n.notify_one();
                async {}
            }
        });
    let pv = watcher::watcher(Api::<PersistentVolume>::all(client.clone()), cfg.clone())
        .default_backoff()
        .reflect(pvw)
        .for_each({
            let n = storage_changed.clone();
            move |_| {
                n.notify_one();
                async {}
            }
        });
    let sc = watcher::watcher(Api::<StorageClass>::all(client.clone()), cfg.clone())
        .default_backoff()
        .reflect(scw)
        .for_each({
            let n = storage_changed.clone();
            move |_| {
                n.notify_one();
                async {}
            }
        });
    let cn = watcher::watcher(Api::<CSINode>::all(client.clone()), cfg.clone())
        .default_backoff()
        .reflect(cnw)
        .for_each({
            let n = storage_changed.clone();
            move |_| {
                n.notify_one();
                async {}
            }
        });
    let va = watcher::watcher(Api::<VolumeAttachment>::all(client.clone()), cfg)
        .default_backoff()
        .reflect(vaw)
        .for_each(move |_| {
            storage_changed.notify_one();
            async {}
        });
    let fut = async move {
        tokio::join!(s, r, ss, c, b, pvc, pv, sc, cn, va);
    };
    (
        Workloads {
            selectors,
            budgets,
            claims,
            volumes,
            classes,
            csi_nodes,
            attachments,
        },
        fut,
    )
}

impl WorkloadSelectors for Workloads {
    fn default_selector(&self, pod: &PodInfo) -> Option<Selector> {
        self.selectors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .default_selector(pod)
    }
}

impl Budgets for Workloads {
    fn budgets(&self) -> Vec<Budget> {
        self.budgets
            .state()
            .iter()
            .map(|pdb| Budget {
                namespace: pdb.metadata.namespace.clone().unwrap_or_default(),
                selector: Selector::from_label_selector(pdb.spec.as_ref().and_then(|s| s.selector.as_ref())),
                disruptions_allowed: pdb.status.as_ref().and_then(|s| s.disruptions_allowed).unwrap_or(0),
                disrupted_pods: pdb
                    .status
                    .as_ref()
                    .and_then(|s| s.disrupted_pods.as_ref())
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default(),
            })
            .collect()
    }
}

impl VolumeListers for Workloads {
    fn claim(&self, namespace: &str, name: &str) -> Option<std::sync::Arc<PersistentVolumeClaim>> {
        self.claims.get(&ObjectRef::new(name).within(namespace))
    }
    fn volume(&self, name: &str) -> Option<std::sync::Arc<PersistentVolume>> {
        self.volumes.get(&ObjectRef::new(name))
    }
    fn volumes(&self) -> Vec<std::sync::Arc<PersistentVolume>> {
        self.volumes.state()
    }
    fn class(&self, name: &str) -> Option<std::sync::Arc<StorageClass>> {
        self.classes.get(&ObjectRef::new(name))
    }
    fn csi_node(&self, node: &str) -> Option<std::sync::Arc<CSINode>> {
        self.csi_nodes.get(&ObjectRef::new(node))
    }
    fn attachments(&self, node: &str) -> Vec<std::sync::Arc<VolumeAttachment>> {
        self.attachments
            .state()
            .into_iter()
            .filter(|va| va.spec.node_name == node)
            .collect()
    }
}
