//! Listers of the workloads that select pods (Services, ReplicaSets,
//! StatefulSets, ReplicationControllers), for PodTopologySpread's default
//! constraints: a pod without constraints is spread with its peers, the
//! pods those workloads select (upstream's `helper.DefaultSelector`); and of
//! PodDisruptionBudgets, which preemption respects where it can; and of
//! PersistentVolumeClaims, PersistentVolumes and StorageClasses
//! (VolumeBinding), CSINodes and VolumeAttachments (NodeVolumeLimits).

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, ReplicationController, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::{CSINode, StorageClass, VolumeAttachment};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

use crate::plugins::default_preemption::{Budget, Budgets};
use crate::plugins::pod_topology_spread::WorkloadSelectors;
use crate::plugins::volume_binding::VolumeListers;
use crate::pod_info::PodInfo;
use crate::selectors::{Selector, label_selector_matches, map_selector_matches};

/// Reflector stores of the workload kinds.
#[derive(Clone)]
pub struct Workloads {
    services: Store<Service>,
    replica_sets: Store<ReplicaSet>,
    stateful_sets: Store<StatefulSet>,
    controllers: Store<ReplicationController>,
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

/// Starts the four reflectors; returns the stores and the future that
/// keeps them fed.
/// `storage_changed` is notified on every claim, volume or class change.
pub fn start(
    client: &Client,
    storage_changed: std::sync::Arc<tokio::sync::Notify>,
) -> (Workloads, impl std::future::Future<Output = ()> + use<>) {
    let (services, sw) = reflector::store();
    let (replica_sets, rw) = reflector::store();
    let (stateful_sets, ssw) = reflector::store();
    let (controllers, cw) = reflector::store();
    let (budgets, bw) = reflector::store();
    let (claims, pvcw) = reflector::store();
    let (volumes, pvw) = reflector::store();
    let (classes, scw) = reflector::store();
    let (csi_nodes, cnw) = reflector::store();
    let (attachments, vaw) = reflector::store();
    let cfg = watcher::Config::default();
    let s = watcher::watcher(Api::<Service>::all(client.clone()), cfg.clone())
        .default_backoff()
        .reflect(sw)
        .for_each(|_| async {});
    let r = watcher::watcher(Api::<ReplicaSet>::all(client.clone()), cfg.clone())
        .default_backoff()
        .reflect(rw)
        .for_each(|_| async {});
    let ss = watcher::watcher(Api::<StatefulSet>::all(client.clone()), cfg.clone())
        .default_backoff()
        .reflect(ssw)
        .for_each(|_| async {});
    let c = watcher::watcher(Api::<ReplicationController>::all(client.clone()), cfg.clone())
        .default_backoff()
        .reflect(cw)
        .for_each(|_| async {});
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
            services,
            replica_sets,
            stateful_sets,
            controllers,
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
        let ns = pod.namespace.as_str();
        let mut out: Option<Selector> = None;
        let mut add = |s: Selector| {
            if s.matches(&pod.labels) {
                out = Some(match out.take() {
                    None => s,
                    Some(prev) => prev.and(&s),
                });
            }
        };
        // Each workload's selector is checked against the pod as it is and
        // compiled only when it selects the pod: a namespace holds
        // thousands of ReplicaSets, one pod is selected by one or two.
        let in_ns = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| m.namespace.as_deref() == Some(ns);
        for svc in self.services.state() {
            if in_ns(&svc.metadata)
                && let Some(map) = svc.spec.as_ref().and_then(|s| s.selector.as_ref())
                && map_selector_matches(map, &pod.labels)
                && let Some(s) = Selector::from_map(map)
            {
                add(s);
            }
        }
        for rc in self.controllers.state() {
            if in_ns(&rc.metadata)
                && let Some(map) = rc.spec.as_ref().and_then(|s| s.selector.as_ref())
                && map_selector_matches(map, &pod.labels)
                && let Some(s) = Selector::from_map(map)
            {
                add(s);
            }
        }
        for rs in self.replica_sets.state() {
            if in_ns(&rs.metadata)
                && let Some(spec) = &rs.spec
                && label_selector_matches(Some(&spec.selector), &pod.labels)
            {
                add(Selector::from_label_selector(Some(&spec.selector)));
            }
        }
        for ss in self.stateful_sets.state() {
            if in_ns(&ss.metadata)
                && let Some(spec) = &ss.spec
                && label_selector_matches(Some(&spec.selector), &pod.labels)
            {
                add(Selector::from_label_selector(Some(&spec.selector)));
            }
        }
        out.filter(|s| !s.is_everything())
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
