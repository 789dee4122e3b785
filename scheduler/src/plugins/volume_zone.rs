//! VolumeZone: a pod's bound volumes labelled with a zone or region
//! (`topology.kubernetes.io/zone|region` or the beta
//! `failure-domain.beta.kubernetes.io/` spellings; several zones joined
//! by `__`) keep it on nodes of those zones. Nodes without any such label
//! pass; unbound WaitForFirstConsumer claims are VolumeBinding's.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::cache::Snapshot;
use crate::framework::{ClusterEvent, Code, CycleState, Plugin, Point, PreFilterResult, Status};
use crate::node_info::NodeInfo;
use crate::plugins::volume_binding::VolumeListers;
use crate::plugins::volume_lookup::{claim_names, claim_volume, volume_name};
use crate::pod_info::PodInfo;

/// The plugin's name.
pub const NAME: &str = "VolumeZone";
/// No zone of the node serves the pod's volumes.
pub const ERR_REASON_CONFLICT: &str = "node(s) had no available volume zone";
const STATE_KEY: &str = "PreFilterVolumeZone";
/// Topology labels, each with its other (GA/beta) spelling.
const TOPOLOGY_LABELS: &[(&str, &str)] = &[
    ("failure-domain.beta.kubernetes.io/zone", "topology.kubernetes.io/zone"),
    (
        "failure-domain.beta.kubernetes.io/region",
        "topology.kubernetes.io/region",
    ),
    ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone"),
    (
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/region",
    ),
];

/// The VolumeZone plugin.
pub struct VolumeZone {
    listers: Arc<dyn VolumeListers>,
}

impl VolumeZone {
    pub fn new(listers: Arc<dyn VolumeListers>) -> VolumeZone {
        VolumeZone { listers }
    }
}

/// One topology label of a volume and the values it allows.
struct PvTopology {
    key: &'static str,
    other: &'static str,
    values: BTreeSet<String>,
}

struct State(Vec<PvTopology>);

fn unresolvable(msg: impl Into<String>) -> (Status, PreFilterResult) {
    (Status::with(Code::UnschedulableAndUnresolvable, msg), None)
}

impl Plugin for VolumeZone {
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
        ]
    }

    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, _s: &Snapshot) -> (Status, PreFilterResult) {
        let claims = claim_names(pod);
        if claims.is_empty() {
            return (Status::skip(), None);
        }
        let mut topologies = Vec::new();
        for name in claims {
            if name.is_empty() {
                return unresolvable("PersistentVolumeClaim had no name");
            }
            let Some(pvc) = self.listers.claim(&pod.namespace, name) else {
                return unresolvable(format!("persistentvolumeclaim \"{name}\" not found"));
            };
            let spec = pvc.spec.as_ref();
            if volume_name(&pvc).is_none() {
                let class_name = spec.and_then(|s| s.storage_class_name.as_deref()).unwrap_or("");
                if class_name.is_empty() {
                    return unresolvable("PersistentVolumeClaim had no pv name and storageClass name");
                }
                let Some(class) = self.listers.class(class_name) else {
                    return unresolvable(format!("storageclasses.storage.k8s.io \"{class_name}\" not found"));
                };
                match class.volume_binding_mode.as_deref() {
                    None => {
                        return unresolvable(format!("VolumeBindingMode not set for StorageClass \"{class_name}\""));
                    }
                    Some("WaitForFirstConsumer") => continue,
                    Some(_) => return unresolvable("PersistentVolume had no name"),
                }
            }
            let pv = match claim_volume(self.listers.as_ref(), &pvc) {
                Ok(Some(pv)) => pv,
                Ok(None) => continue,
                Err(pv_name) => return unresolvable(format!("persistentvolumes \"{pv_name}\" not found")),
            };
            let labels = pv.metadata.labels.as_ref();
            for (key, other) in TOPOLOGY_LABELS {
                if let Some(v) = labels.and_then(|l| l.get(*key)) {
                    topologies.push(PvTopology {
                        key,
                        other,
                        values: v.split("__").map(str::to_string).collect(),
                    });
                }
            }
        }
        if topologies.is_empty() {
            return (Status::skip(), None);
        }
        state.write(STATE_KEY, State(topologies));
        (Status::success(), None)
    }

    fn filter(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(State(topologies)) = state.read::<State>(STATE_KEY) else {
            return Status::success();
        };
        if !TOPOLOGY_LABELS.iter().any(|(k, _)| node.labels.contains_key(*k)) {
            return Status::success();
        }
        for t in topologies {
            let value = node.labels.get(t.key).or_else(|| node.labels.get(t.other));
            if !value.is_some_and(|v| t.values.contains(v)) {
                return Status::with(Code::UnschedulableAndUnresolvable, ERR_REASON_CONFLICT);
            }
        }
        Status::success()
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

    fn using(claim: &str) -> PodInfo {
        pod(
            "p",
            json!({}),
            json!({"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": claim}}]}),
        )
    }

    #[test]
    fn volumes_keep_pods_in_their_zones() {
        let mut f = Fake::default();
        let claim = |name: &str, class: &str, volume: &str| {
            Arc::new(
                serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default"},
                "spec": {"storageClassName": class, "volumeName": volume}}))
                .unwrap(),
            )
        };
        let pv = |name: &str, labels: Value| {
            Arc::new(serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap())
        };
        f.claims.insert("a".into(), claim("a", "", "pv-a"));
        f.claims.insert("multi".into(), claim("multi", "", "pv-multi"));
        f.claims.insert("beta".into(), claim("beta", "", "pv-beta"));
        f.claims.insert("nosc".into(), claim("nosc", "", ""));
        f.claims.insert("wait".into(), claim("wait", "wffc", ""));
        f.claims.insert("ghost".into(), claim("ghost", "", "missing"));
        f.volumes
            .insert("pv-a".into(), pv("pv-a", json!({"topology.kubernetes.io/zone": "z1"})));
        f.volumes.insert(
            "pv-multi".into(),
            pv("pv-multi", json!({"topology.kubernetes.io/zone": "z1__z2"})),
        );
        f.volumes.insert(
            "pv-beta".into(),
            pv("pv-beta", json!({"failure-domain.beta.kubernetes.io/zone": "z2"})),
        );
        f.classes.insert(
            "wffc".into(),
            Arc::new(
                serde_json::from_value(json!({"metadata": {"name": "wffc"}, "provisioner": "x",
                "volumeBindingMode": "WaitForFirstConsumer"}))
                .unwrap(),
            ),
        );
        let plugin = Arc::new(VolumeZone::new(Arc::new(f)));
        let snap = Snapshot::from_nodes(vec![
            node(
                "a-z1",
                json!({"topology.kubernetes.io/zone": "z1"}),
                Value::Null,
                json!({}),
            ),
            node(
                "b-z2",
                json!({"topology.kubernetes.io/zone": "z2"}),
                Value::Null,
                json!({}),
            ),
            node("c-bare", Value::Null, Value::Null, json!({})),
        ]);
        let check = |claim: &str, want: [&str; 3]| {
            // By node name (the snapshot's order is not the insertion order).
            let mut got: Vec<(String, String)> = snap
                .nodes
                .iter()
                .map(|n| n.name.clone())
                .zip(filter_all(plugin.clone(), &using(claim), &snap).iter().map(short))
                .collect();
            got.sort();
            let got: Vec<String> = got.into_iter().map(|(_, s)| s).collect();
            assert_eq!(got, want, "{claim}");
        };
        check("a", ["", ERR_REASON_CONFLICT, ""]);
        check("multi", ["", "", ""]);
        check("beta", [ERR_REASON_CONFLICT, "", ""]);
        check("wait", ["", "", ""]);
        let nosc = "PersistentVolumeClaim had no pv name and storageClass name";
        check("nosc", [nosc, nosc, nosc]);
        let ghost = "persistentvolumes \"missing\" not found";
        check("ghost", [ghost, ghost, ghost]);
    }
}
