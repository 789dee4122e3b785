//! VolumeRestrictions: a ReadWriteOncePod claim already used by a
//! scheduled pod makes the pod unschedulable everywhere (preemption of
//! that pod may help), and a GCE PD, AWS EBS, iSCSI or Ceph RBD disk that
//! a pod on the node already mounts (read-write on either side) excludes
//! that node.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Volume};

use crate::cache::Snapshot;
use crate::framework::{ClusterEvent, Code, CycleState, Plugin, Point, PreFilterResult, Status};
use crate::node_info::NodeInfo;
use crate::plugins::volume_binding::VolumeListers;
use crate::pod_info::PodInfo;

/// The plugin's name.
pub const NAME: &str = "VolumeRestrictions";
/// A conflicting disk is mounted on the node.
pub const ERR_REASON_DISK_CONFLICT: &str = "node(s) had no available disk";
/// A ReadWriteOncePod claim is in use.
pub const ERR_REASON_RWOP_CONFLICT: &str =
    "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode";
const STATE_KEY: &str = "PreFilterVolumeRestrictions";

/// The VolumeRestrictions plugin.
pub struct VolumeRestrictions {
    listers: Arc<dyn VolumeListers>,
}

impl VolumeRestrictions {
    pub fn new(listers: Arc<dyn VolumeListers>) -> VolumeRestrictions {
        VolumeRestrictions { listers }
    }
}

struct State {
    /// Uses of the pod's ReadWriteOncePod claims by scheduled pods.
    conflicting: usize,
}

fn volumes(pod: &Pod) -> &[Volume] {
    pod.spec.as_ref().and_then(|s| s.volumes.as_deref()).unwrap_or(&[])
}

fn needs_check(v: &Volume) -> bool {
    v.gce_persistent_disk.is_some() || v.aws_elastic_block_store.is_some() || v.rbd.is_some() || v.iscsi.is_some()
}

/// Whether `v` conflicts with a volume of `existing` (upstream's
/// `isVolumeConflict`).
pub fn is_volume_conflict(v: &Volume, existing: &Pod) -> bool {
    volumes(existing).iter().any(|e| {
        if let (Some(a), Some(b)) = (&v.gce_persistent_disk, &e.gce_persistent_disk)
            && a.pd_name == b.pd_name
            && !(a.read_only.unwrap_or(false) && b.read_only.unwrap_or(false))
        {
            return true;
        }
        if let (Some(a), Some(b)) = (&v.aws_elastic_block_store, &e.aws_elastic_block_store)
            && a.volume_id == b.volume_id
        {
            return true;
        }
        if let (Some(a), Some(b)) = (&v.iscsi, &e.iscsi)
            && a.iqn == b.iqn
            && !(a.read_only.unwrap_or(false) && b.read_only.unwrap_or(false))
        {
            return true;
        }
        if let (Some(a), Some(b)) = (&v.rbd, &e.rbd) {
            let overlap = a.monitors.iter().any(|m| b.monitors.contains(m));
            if overlap
                && a.pool == b.pool
                && a.image == b.image
                && !(a.read_only.unwrap_or(false) && b.read_only.unwrap_or(false))
            {
                return true;
            }
        }
        false
    })
}

impl Plugin for VolumeRestrictions {
    fn name(&self) -> &'static str {
        NAME
    }
    fn points(&self) -> &'static [Point] {
        &[Point::PreFilter, Point::Filter]
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[
            ClusterEvent::AssignedPodDelete,
            ClusterEvent::NodeAdd,
            ClusterEvent::StorageChange,
        ]
    }

    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, snapshot: &Snapshot) -> (Status, PreFilterResult) {
        let check = volumes(&pod.pod).iter().any(needs_check);
        let mut rwop = BTreeSet::new();
        for name in volumes(&pod.pod)
            .iter()
            .filter_map(|v| v.persistent_volume_claim.as_ref().map(|c| c.claim_name.as_str()))
        {
            let Some(pvc) = self.listers.claim(&pod.namespace, name) else {
                let msg = format!("persistentvolumeclaim \"{name}\" not found");
                return (Status::with(Code::UnschedulableAndUnresolvable, msg), None);
            };
            let modes = pvc.spec.as_ref().and_then(|s| s.access_modes.as_ref());
            if modes.is_some_and(|m| m.iter().any(|m| m == "ReadWriteOncePod")) {
                rwop.insert(name.to_string());
            }
        }
        let mut conflicting = 0;
        if !rwop.is_empty() {
            let mut used = BTreeSet::new();
            for other in snapshot.nodes.iter().flat_map(|n| n.pods.iter()) {
                if other.uid == pod.uid || other.namespace != pod.namespace {
                    continue;
                }
                for v in volumes(&other.pod) {
                    if let Some(c) = &v.persistent_volume_claim
                        && rwop.contains(&c.claim_name)
                    {
                        used.insert(c.claim_name.clone());
                    }
                }
            }
            conflicting = used.len();
        }
        if !check && conflicting == 0 {
            return (Status::skip(), None);
        }
        state.write(STATE_KEY, State { conflicting });
        (Status::success(), None)
    }

    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        for v in volumes(&pod.pod).iter().filter(|v| needs_check(v)) {
            if node.pods.iter().any(|p| is_volume_conflict(v, &p.pod)) {
                return Status::with(Code::Unschedulable, ERR_REASON_DISK_CONFLICT);
            }
        }
        match state.read::<State>(STATE_KEY) {
            Some(s) if s.conflicting > 0 => Status::with(Code::Unschedulable, ERR_REASON_RWOP_CONFLICT),
            _ => Status::success(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::HashMap;

    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
    use k8s_openapi::api::storage::v1::StorageClass;
    use serde_json::{Value, json};

    use super::*;
    use crate::plugins::testing::{filter_all, node, pod, short, with_pods};

    #[derive(Default)]
    struct Claims(HashMap<String, Arc<PersistentVolumeClaim>>);

    impl VolumeListers for Claims {
        fn claim(&self, _ns: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
            self.0.get(name).cloned()
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

    fn claim(name: &str, mode: &str) -> (String, Arc<PersistentVolumeClaim>) {
        let c = serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default"},
            "spec": {"accessModes": [mode]}}))
        .unwrap();
        (name.to_string(), Arc::new(c))
    }

    fn with_volumes(name: &str, volumes: Value) -> PodInfo {
        pod(name, json!({}), json!({"volumes": volumes}))
    }

    fn pvc_vol(claim: &str) -> Value {
        json!([{"name": "v", "persistentVolumeClaim": {"claimName": claim}}])
    }

    #[test]
    fn read_write_once_pod_claims_are_exclusive() {
        let claims = Claims([claim("once", "ReadWriteOncePod"), claim("many", "ReadWriteMany")].into());
        let plugin = Arc::new(VolumeRestrictions::new(Arc::new(claims)));
        let snap = Snapshot::from_nodes(vec![
            with_pods(
                node("a", Value::Null, Value::Null, json!({})),
                vec![
                    with_volumes("user-once", pvc_vol("once")),
                    with_volumes("user-many", pvc_vol("many")),
                ],
            ),
            node("b", Value::Null, Value::Null, json!({})),
        ]);
        let run = |p: &PodInfo| -> Vec<String> { filter_all(plugin.clone(), p, &snap).iter().map(short).collect() };
        assert_eq!(run(&with_volumes("p", pvc_vol("once"))), [ERR_REASON_RWOP_CONFLICT; 2]);
        assert_eq!(run(&with_volumes("p", pvc_vol("many"))), ["", ""]);
        let missing = "persistentvolumeclaim \"gone\" not found";
        assert_eq!(run(&with_volumes("p", pvc_vol("gone"))), [missing, missing]);
    }

    #[test]
    fn shared_disks_conflict_unless_all_read_only() {
        let plugin = Arc::new(VolumeRestrictions::new(Arc::new(Claims::default())));
        let gce = |ro: bool| json!([{"name": "d", "gcePersistentDisk": {"pdName": "disk", "readOnly": ro}}]);
        let ebs = json!([{"name": "d", "awsElasticBlockStore": {"volumeID": "vol-1"}}]);
        let rbd = |mons: Value| json!([{"name": "d", "rbd": {"monitors": mons, "pool": "p", "image": "i"}}]);
        let cases = [
            (gce(false), gce(true), ERR_REASON_DISK_CONFLICT),
            (gce(true), gce(true), ""),
            (ebs.clone(), ebs, ERR_REASON_DISK_CONFLICT),
            (rbd(json!(["m1", "m2"])), rbd(json!(["m2"])), ERR_REASON_DISK_CONFLICT),
            (rbd(json!(["m1"])), rbd(json!(["m3"])), ""),
        ];
        for (existing, incoming, want) in cases {
            let snap = Snapshot::from_nodes(vec![
                with_pods(
                    node("a", Value::Null, Value::Null, json!({})),
                    vec![with_volumes("e", existing.clone())],
                ),
                node("b", Value::Null, Value::Null, json!({})),
            ]);
            let got: Vec<String> = filter_all(plugin.clone(), &with_volumes("p", incoming.clone()), &snap)
                .iter()
                .map(short)
                .collect();
            assert_eq!(got, [want, ""], "{existing} vs {incoming}");
        }
    }
}
