//! The claim -> volume lookup the volume plugins share: the claim names a
//! pod's volumes use, and the PersistentVolume a claim names.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};

use crate::plugins::volume_binding::VolumeListers;
use crate::pod_info::PodInfo;

/// The claim names of `pod`'s `persistentVolumeClaim` volumes, in order.
pub fn claim_names(pod: &PodInfo) -> Vec<&str> {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|v| v.persistent_volume_claim.as_ref().map(|c| c.claim_name.as_str()))
        .collect()
}

/// The volume `pvc` is bound (or pre-bound) to: its non-empty
/// `spec.volumeName`.
pub fn volume_name(pvc: &PersistentVolumeClaim) -> Option<&str> {
    pvc.spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .filter(|v| !v.is_empty())
}

/// The claim's volume: `Err(name)` when the claim names a volume the
/// listers do not have, `Ok(None)` when it names none.
pub fn claim_volume<'a>(
    listers: &dyn VolumeListers,
    pvc: &'a PersistentVolumeClaim,
) -> Result<Option<Arc<PersistentVolume>>, &'a str> {
    match volume_name(pvc) {
        None => Ok(None),
        Some(name) => listers.volume(name).map(Some).ok_or(name),
    }
}

/// The claim's storage class: `spec.storageClassName`, else the beta
/// annotation (upstream's `GetPersistentVolumeClaimClass`).
pub fn claim_class(pvc: &PersistentVolumeClaim) -> &str {
    if let Some(c) = pvc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class"))
    {
        return c;
    }
    pvc.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or("")
}
