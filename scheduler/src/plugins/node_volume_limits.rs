//! NodeVolumeLimits (upstream's `CSILimits`): a node's CSINode says how
//! many volumes each CSI driver may attach there
//! (`spec.drivers[].allocatable.count`); a pod fits when, per driver, the
//! unique volumes of the pods on the node, those attached by
//! VolumeAttachments, and the pod's new ones stay within that count.
//!
//! Volumes are identified as `<driver>/<handle>`, so a volume shared by
//! several pods counts once. A claim's driver comes from its bound
//! PersistentVolume (a CSI source, or an in-tree one the node migrated;
//! see [`csi_migration`]), else from its StorageClass's provisioner with a
//! per-claim handle; generic ephemeral volumes are their `<pod>-<volume>`
//! claims; in-tree inline disks count when the node migrated their plugin.
//! Drivers without a limit, and nodes without a CSINode, are unlimited.
//!
//! Not here: the alpha `VolumeLimitScaling` check of CSIDrivers with
//! `preventPodSchedulingIfMissing`.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::CSINode;

use crate::cache::Snapshot;
use crate::framework::{ClusterEvent, Code, CycleState, Plugin, Point, PreFilterResult, Status};
use crate::node_info::NodeInfo;
use crate::plugins::csi_migration;
use crate::plugins::volume_binding::VolumeListers;
use crate::plugins::volume_lookup::{claim_class, claim_volume};
use crate::pod_info::PodInfo;

/// The plugin's name.
pub const NAME: &str = "NodeVolumeLimits";
/// A driver's attach limit would be exceeded.
pub const ERR_REASON_MAX_VOLUME_COUNT_EXCEEDED: &str = "node(s) exceed max volume count";

/// The NodeVolumeLimits plugin.
pub struct NodeVolumeLimits {
    listers: Arc<dyn VolumeListers>,
    /// Prefix of the handles given to claims without a volume, so they
    /// never equal a real volume's handle.
    random_prefix: String,
}

impl NodeVolumeLimits {
    pub fn new(listers: Arc<dyn VolumeListers>) -> NodeVolumeLimits {
        let random = RandomState::new().hash_one(std::process::id());
        NodeVolumeLimits {
            listers,
            random_prefix: format!("{random:016x}"),
        }
    }

    /// Adds the attachable volumes of `pod` to `out` (unique name ->
    /// driver). A missing claim of the pod being scheduled is an error;
    /// of a pod already on the node, it is not counted.
    fn attachable_volumes(
        &self,
        pod: &PodInfo,
        csi_node: Option<&CSINode>,
        new_pod: bool,
        out: &mut HashMap<String, String>,
    ) -> Result<(), Status> {
        let volumes = pod.pod.spec.as_ref().and_then(|s| s.volumes.as_ref());
        for vol in volumes.into_iter().flatten() {
            let (claim_name, ephemeral) = if let Some(c) = &vol.persistent_volume_claim {
                (c.claim_name.clone(), false)
            } else if vol.ephemeral.is_some() {
                (format!("{}-{}", pod.name, vol.name), true)
            } else {
                if let Some((driver, handle)) = csi_migration::translate_inline(vol, csi_node) {
                    out.insert(format!("{driver}/{handle}"), driver.to_string());
                }
                continue;
            };
            if claim_name.is_empty() {
                return Err(Status::with(Code::Error, "PersistentVolumeClaim had no name"));
            }
            let Some(pvc) = self.listers.claim(&pod.namespace, &claim_name) else {
                if new_pod {
                    return Err(Status::with(
                        Code::UnschedulableAndUnresolvable,
                        format!(
                            "looking up PVC {}/{claim_name}: persistentvolumeclaim \"{claim_name}\" not found",
                            pod.namespace
                        ),
                    ));
                }
                continue;
            };
            if ephemeral && !owned_by(&pvc, pod) {
                return Err(Status::with(
                    Code::Error,
                    format!(
                        "PVC {}/{claim_name} was not created for pod {}/{} (pod is not owner)",
                        pod.namespace, pod.namespace, pod.name
                    ),
                ));
            }
            if let Some((driver, handle)) = self.claim_driver(csi_node, &pvc)
                && !driver.is_empty()
                && !handle.is_empty()
            {
                out.insert(format!("{driver}/{handle}"), driver);
            }
        }
        Ok(())
    }

    /// The (driver, handle) of a claim: from its volume, or, when it has
    /// none (or the volume is not known yet), from its StorageClass.
    fn claim_driver(&self, csi_node: Option<&CSINode>, pvc: &PersistentVolumeClaim) -> Option<(String, String)> {
        match claim_volume(self.listers.as_ref(), pvc) {
            Ok(Some(pv)) => csi_migration::pv_driver(&pv, csi_node),
            Ok(None) | Err(_) => self.class_driver(csi_node, pvc),
        }
    }

    fn class_driver(&self, csi_node: Option<&CSINode>, pvc: &PersistentVolumeClaim) -> Option<(String, String)> {
        let class = self.listers.class(claim_class(pvc))?;
        let mut provisioner = class.provisioner.clone();
        if let Some(driver) = csi_migration::driver_for(&provisioner) {
            if !csi_migration::migration_on(csi_node, &provisioner) {
                return None;
            }
            provisioner = driver.to_string();
        }
        let handle = format!(
            "{}-{}/{}",
            self.random_prefix,
            pvc.metadata.namespace.as_deref().unwrap_or_default(),
            pvc.metadata.name.as_deref().unwrap_or_default()
        );
        Some((provisioner, handle))
    }

    /// Volumes VolumeAttachments attach to `node` (by PV name).
    fn attached_by_attachments(&self, node: &str, out: &mut HashMap<String, String>) {
        for va in self.listers.attachments(node) {
            let spec = &va.spec;
            let Some(pv_name) = spec.source.persistent_volume_name.as_deref() else {
                continue;
            };
            if spec.attacher.is_empty() {
                continue;
            }
            let Some(csi) = self
                .listers
                .volume(pv_name)
                .and_then(|pv| pv.spec.as_ref().and_then(|s| s.csi.clone()))
            else {
                continue;
            };
            out.entry(format!("{}/{}", spec.attacher, csi.volume_handle))
                .or_insert_with(|| spec.attacher.clone());
        }
    }
}

/// True when the pod is the claim's controlling owner.
fn owned_by(pvc: &PersistentVolumeClaim, pod: &PodInfo) -> bool {
    pvc.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.uid == pod.uid)
}

/// Per-driver attach limits of a node.
fn volume_limits(csi_node: Option<&CSINode>) -> HashMap<&str, i32> {
    csi_node
        .into_iter()
        .flat_map(|n| n.spec.drivers.iter())
        .filter_map(|d| Some((d.name.as_str(), d.allocatable.as_ref()?.count?)))
        .collect()
}

impl Plugin for NodeVolumeLimits {
    fn name(&self) -> &'static str {
        NAME
    }
    fn points(&self) -> &'static [Point] {
        &[Point::PreFilter, Point::Filter]
    }
    fn events(&self) -> &'static [ClusterEvent] {
        // CSINode, claim and VolumeAttachment changes arrive as
        // StorageChange.
        &[
            ClusterEvent::NodeAdd,
            ClusterEvent::AssignedPodDelete,
            ClusterEvent::StorageChange,
        ]
    }

    fn pre_filter(&self, _state: &mut CycleState, pod: &PodInfo, _s: &Snapshot) -> (Status, PreFilterResult) {
        let volumes = pod.pod.spec.as_ref().and_then(|s| s.volumes.as_ref());
        let counted = volumes.into_iter().flatten().any(|v| {
            v.persistent_volume_claim.is_some() || v.ephemeral.is_some() || csi_migration::inline_migratable(v)
        });
        if counted {
            (Status::success(), None)
        } else {
            (Status::skip(), None)
        }
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let csi_node = self.listers.csi_node(&node.name);
        let csi_node = csi_node.as_deref();
        let mut new_volumes = HashMap::new();
        if let Err(s) = self.attachable_volumes(pod, csi_node, true, &mut new_volumes) {
            return s;
        }
        if new_volumes.is_empty() {
            return Status::success();
        }
        let limits = volume_limits(csi_node);
        if limits.is_empty() {
            return Status::success();
        }
        let mut attached = HashMap::new();
        for existing in &node.pods {
            if let Err(s) = self.attachable_volumes(existing, csi_node, false, &mut attached) {
                return s;
            }
        }
        self.attached_by_attachments(&node.name, &mut attached);
        let mut attached_count: HashMap<&str, i64> = HashMap::new();
        for (unique, driver) in &attached {
            new_volumes.remove(unique);
            *attached_count.entry(driver).or_default() += 1;
        }
        let mut new_count: HashMap<&str, i64> = HashMap::new();
        for driver in new_volumes.values() {
            *new_count.entry(driver).or_default() += 1;
        }
        for (driver, count) in new_count {
            if let Some(limit) = limits.get(driver)
                && attached_count.get(driver).copied().unwrap_or(0) + count > i64::from(*limit)
            {
                return Status::with(Code::Unschedulable, ERR_REASON_MAX_VOLUME_COUNT_EXCEEDED);
            }
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests;
