//! VolumeBinding: a pod's PersistentVolumeClaims must exist and not be
//! terminating; an unbound claim whose StorageClass binds immediately
//! makes the pod wait; a bound claim's PersistentVolume node affinity must
//! match the node; an unbound WaitForFirstConsumer claim needs a
//! provisioner or an available matching volume on the node. Its PreBind
//! (binding the delayed claims for the chosen node, then waiting for the
//! PV controller) makes API calls, so it lives in
//! [`crate::volume_binder`].
//!
//! Not yet: storage capacity (CSIStorageCapacity) and scoring.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::{CSINode, StorageClass, VolumeAttachment};

use crate::cache::Snapshot;
use crate::framework::{ClusterEvent, Code, CycleState, Plugin, Point, PreFilterResult, Status};
use crate::node_info::NodeInfo;
use crate::plugins::volume_lookup::{claim_names, volume_name};
use crate::pod_info::PodInfo;
use crate::quantity::Quantity;
use crate::selectors::node_selector_terms_match;

/// The plugin's name.
pub const NAME: &str = "VolumeBinding";
/// A bound volume's node affinity excludes the node.
pub const ERR_REASON_NODE_CONFLICT: &str = "node(s) had volume node affinity conflict";
/// No volume can be bound for a delayed claim on the node.
pub const ERR_REASON_BIND_CONFLICT: &str = "node(s) didn't find available persistent volumes to bind";
/// A claim is bound to a volume that does not exist.
pub const ERR_REASON_PV_NOT_EXIST: &str = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)";
/// An unbound claim with immediate binding.
pub const ERR_UNBOUND_IMMEDIATE: &str = "pod has unbound immediate PersistentVolumeClaims";
const STATE_KEY: &str = "PreFilterVolumeBinding";
/// Set by the PV controller once a claim is bound.
pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";

/// Looks up claims, volumes and classes.
pub trait VolumeListers: Send + Sync {
    fn claim(&self, namespace: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>>;
    fn volume(&self, name: &str) -> Option<Arc<PersistentVolume>>;
    fn volumes(&self) -> Vec<Arc<PersistentVolume>>;
    fn class(&self, name: &str) -> Option<Arc<StorageClass>>;
    /// The CSINode of node `node` (NodeVolumeLimits).
    fn csi_node(&self, _node: &str) -> Option<Arc<CSINode>> {
        None
    }
    /// The VolumeAttachments whose `spec.nodeName` is `node`
    /// (NodeVolumeLimits).
    fn attachments(&self, _node: &str) -> Vec<Arc<VolumeAttachment>> {
        Vec::new()
    }
}

/// No storage objects.
#[derive(Debug, Default)]
pub struct NoVolumes;

impl VolumeListers for NoVolumes {
    fn claim(&self, _: &str, _: &str) -> Option<Arc<PersistentVolumeClaim>> {
        None
    }
    fn volume(&self, _: &str) -> Option<Arc<PersistentVolume>> {
        None
    }
    fn volumes(&self) -> Vec<Arc<PersistentVolume>> {
        Vec::new()
    }
    fn class(&self, _: &str) -> Option<Arc<StorageClass>> {
        None
    }
}

/// The VolumeBinding plugin.
pub struct VolumeBinding {
    listers: Arc<dyn VolumeListers>,
}

impl std::fmt::Debug for VolumeBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VolumeBinding")
    }
}

impl VolumeBinding {
    /// The plugin over these listers.
    pub fn new(listers: Arc<dyn VolumeListers>) -> VolumeBinding {
        VolumeBinding { listers }
    }
}

struct State {
    /// PVs of bound claims (`None`: the PV does not exist).
    bound: Vec<Option<Arc<PersistentVolume>>>,
    /// Unbound WaitForFirstConsumer claims that no provisioner serves.
    delayed: Vec<Arc<PersistentVolumeClaim>>,
}

pub(crate) fn class_name(pvc: &PersistentVolumeClaim) -> String {
    pvc.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_default()
}

fn volume_node_affinity_matches(pv: &PersistentVolume, node: &NodeInfo) -> bool {
    let Some(required) = pv
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
    else {
        return true;
    };
    node.node
        .as_ref()
        .is_some_and(|n| node_selector_terms_match(&required.node_selector_terms, n))
}

pub(crate) fn storage(
    list: Option<&std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> i64 {
    list.and_then(|m| m.get("storage"))
        .and_then(|q| Quantity::parse(&q.0))
        .map(|q| q.value())
        .unwrap_or(0)
}

/// True when `pv` is available and can satisfy `pvc` on `node`.
pub(crate) fn pv_fits(pv: &PersistentVolume, pvc: &PersistentVolumeClaim, node: &NodeInfo) -> bool {
    let Some(spec) = pv.spec.as_ref() else { return false };
    let available =
        pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Available") && spec.claim_ref.is_none();
    let same_class = spec.storage_class_name.clone().unwrap_or_default() == class_name(pvc);
    let want = storage(
        pvc.spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref()),
    );
    let modes_ok = pvc
        .spec
        .as_ref()
        .and_then(|s| s.access_modes.as_ref())
        .into_iter()
        .flatten()
        .all(|m| spec.access_modes.iter().flatten().any(|pm| pm == m));
    available
        && same_class
        && modes_ok
        && storage(spec.capacity.as_ref()) >= want
        && volume_node_affinity_matches(pv, node)
}

impl Plugin for VolumeBinding {
    fn name(&self) -> &'static str {
        NAME
    }
    fn points(&self) -> &'static [Point] {
        &[Point::PreFilter, Point::Filter]
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeUpdate,
            ClusterEvent::StorageChange,
            ClusterEvent::UnscheduledPodUpdate,
        ]
    }

    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, _s: &Snapshot) -> (Status, PreFilterResult) {
        let claims = claim_names(pod);
        if claims.is_empty() {
            return (Status::skip(), None);
        }
        let mut st = State {
            bound: Vec::new(),
            delayed: Vec::new(),
        };
        for name in claims {
            let Some(pvc) = self.listers.claim(&pod.namespace, name) else {
                let msg = format!("persistentvolumeclaim \"{name}\" not found");
                return (Status::with(Code::UnschedulableAndUnresolvable, msg), None);
            };
            if pvc.metadata.deletion_timestamp.is_some() {
                let msg = format!("persistentvolumeclaim \"{name}\" is being deleted");
                return (Status::with(Code::UnschedulableAndUnresolvable, msg), None);
            }
            // Fully bound: a volume name and the PV controller's
            // bind-completed annotation (a pre-bound claim is not yet).
            let volume = volume_name(&pvc).map(str::to_string);
            let completed = pvc
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(ANN_BIND_COMPLETED));
            if let (Some(v), true) = (&volume, completed) {
                st.bound.push(self.listers.volume(v));
                continue;
            }
            let class = self.listers.class(&class_name(&pvc));
            let delayed = class.as_ref().and_then(|c| c.volume_binding_mode.as_deref()) == Some("WaitForFirstConsumer");
            if !delayed || volume.is_some() {
                return (
                    Status::with(Code::UnschedulableAndUnresolvable, ERR_UNBOUND_IMMEDIATE),
                    None,
                );
            }
            let provisioned = class.is_some_and(|c| c.provisioner != "kubernetes.io/no-provisioner");
            if !provisioned {
                st.delayed.push(pvc);
            }
        }
        state.write(STATE_KEY, st);
        (Status::success(), None)
    }

    fn filter(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(st) = state.read::<State>(STATE_KEY) else {
            return Status::success();
        };
        for pv in &st.bound {
            match pv {
                None => return Status::with(Code::UnschedulableAndUnresolvable, ERR_REASON_PV_NOT_EXIST),
                Some(pv) if !volume_node_affinity_matches(pv, node) => {
                    return Status::with(Code::UnschedulableAndUnresolvable, ERR_REASON_NODE_CONFLICT);
                }
                Some(_) => {}
            }
        }
        if !st.delayed.is_empty() {
            let volumes = self.listers.volumes();
            if !st
                .delayed
                .iter()
                .all(|pvc| volumes.iter().any(|pv| pv_fits(pv, pvc, node)))
            {
                return Status::with(Code::UnschedulableAndUnresolvable, ERR_REASON_BIND_CONFLICT);
            }
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::HashMap;

    use serde_json::{Value, json};

    use super::*;
    use crate::plugins::testing::{filter_all, node, pod, short};

    #[derive(Default)]
    struct Fake {
        claims: HashMap<String, Arc<PersistentVolumeClaim>>,
        volumes: HashMap<String, Arc<PersistentVolume>>,
        classes: HashMap<String, Arc<StorageClass>>,
    }

    impl VolumeListers for Fake {
        fn claim(&self, _ns: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
            self.claims.get(name).cloned()
        }
        fn volume(&self, name: &str) -> Option<Arc<PersistentVolume>> {
            self.volumes.get(name).cloned()
        }
        fn volumes(&self) -> Vec<Arc<PersistentVolume>> {
            self.volumes.values().cloned().collect()
        }
        fn class(&self, name: &str) -> Option<Arc<StorageClass>> {
            self.classes.get(name).cloned()
        }
    }

    fn pvc(name: &str, class: &str, volume: Option<&str>) -> Arc<PersistentVolumeClaim> {
        let annotations = if volume.is_some() {
            json!({ANN_BIND_COMPLETED: "yes"})
        } else {
            json!({})
        };
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default", "annotations": annotations},
                "spec": {"storageClassName": class, "volumeName": volume, "accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "1Gi"}}},
            }))
            .unwrap(),
        )
    }

    fn local_pv(name: &str, host: &str, claimed: bool) -> Arc<PersistentVolume> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name},
                "spec": {"storageClassName": "local", "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
                         "claimRef": if claimed { json!({"name": "x"}) } else { Value::Null },
                         "local": {"path": "/mnt"},
                         "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                             {"key": "kubernetes.io/hostname", "operator": "In", "values": [host]}]}]}}},
                "status": {"phase": if claimed { "Bound" } else { "Available" }}}))
            .unwrap(),
        )
    }

    fn class(name: &str, mode: &str, provisioner: &str) -> Arc<StorageClass> {
        Arc::new(
            serde_json::from_value(
                json!({"metadata": {"name": name}, "provisioner": provisioner, "volumeBindingMode": mode}),
            )
            .unwrap(),
        )
    }

    fn using(claim: &str) -> PodInfo {
        pod(
            "p",
            json!({}),
            json!({"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": claim}}]}),
        )
    }

    #[test]
    fn claims_and_volumes_decide_nodes() {
        let mut f = Fake::default();
        f.classes.insert(
            "local".into(),
            class("local", "WaitForFirstConsumer", "kubernetes.io/no-provisioner"),
        );
        f.classes
            .insert("fast".into(), class("fast", "Immediate", "csi.example.com"));
        f.classes
            .insert("wffc".into(), class("wffc", "WaitForFirstConsumer", "csi.example.com"));
        f.claims.insert("bound".into(), pvc("bound", "local", Some("pv-a")));
        f.claims.insert("ghost".into(), pvc("ghost", "local", Some("missing")));
        f.claims.insert("immediate".into(), pvc("immediate", "fast", None));
        f.claims.insert("delayed".into(), pvc("delayed", "local", None));
        f.claims.insert("provisioned".into(), pvc("provisioned", "wffc", None));
        f.volumes.insert("pv-a".into(), local_pv("pv-a", "a", true));
        f.volumes.insert("pv-b".into(), local_pv("pv-b", "b", false));
        let plugin = Arc::new(VolumeBinding::new(Arc::new(f)));
        let snap = Snapshot::from_nodes(vec![
            node("a", Value::Null, Value::Null, json!({})),
            node("b", Value::Null, Value::Null, json!({})),
        ]);
        let check = |claim: &str, want: [&str; 2]| {
            let got: Vec<String> = filter_all(plugin.clone(), &using(claim), &snap)
                .iter()
                .map(short)
                .collect();
            assert_eq!(got, want, "{claim}");
        };
        check("bound", ["", ERR_REASON_NODE_CONFLICT]);
        check("ghost", [ERR_REASON_PV_NOT_EXIST, ERR_REASON_PV_NOT_EXIST]);
        check("immediate", [ERR_UNBOUND_IMMEDIATE, ERR_UNBOUND_IMMEDIATE]);
        check("delayed", [ERR_REASON_BIND_CONFLICT, ""]);
        check("provisioned", ["", ""]);
        // Pre-bound (volumeName without bind-completed) counts as unbound immediate.
        let mut prebound = (*pvc("prebound", "local", Some("pv-b"))).clone();
        prebound.metadata.annotations = None;
        let mut f2 = Fake::default();
        f2.claims.insert("prebound".into(), Arc::new(prebound));
        let p2 = Arc::new(VolumeBinding::new(Arc::new(f2)));
        let got: Vec<String> = filter_all(p2, &using("prebound"), &snap).iter().map(short).collect();
        assert_eq!(got, [ERR_UNBOUND_IMMEDIATE, ERR_UNBOUND_IMMEDIATE]);
        let missing = "persistentvolumeclaim \"nope\" not found";
        check("nope", [missing, missing]);
        let plain = pod("plain", json!({}), json!({}));
        assert!(filter_all(plugin, &plain, &snap).iter().all(|s| s.is_success()));
    }
}
