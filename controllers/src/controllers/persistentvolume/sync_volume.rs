//! A volume's sync (upstream's `syncVolume` and `reclaimVolume`).

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};

use super::{ANN_BOUND_BY_CONTROLLER, ANN_DYNAMICALLY_PROVISIONED, Binder, RESYNC, has_annotation};
use crate::controllers::events::{EventType, reference};
use crate::error::{Error, ignore_not_found};
use crate::runner::Action;

/// Where a volume stands relative to its claim.
#[derive(Debug, PartialEq, Eq)]
pub enum VolumeState {
    /// No claimRef: free to bind.
    Unclaimed,
    /// Pre-bound by the user to a claim not yet seen (no uid yet).
    WaitingForClaim,
    /// The claim it names is gone (deleted, or recreated with a new uid).
    ClaimGone,
    /// The claim exists but is not bound yet (binding in progress).
    ClaimBinding,
    /// The claim is bound to this volume.
    Bound,
    /// The claim is bound to another volume.
    ClaimBoundElsewhere,
}

/// The state of `pv` given its claim as found (`None`: not found).
pub fn volume_state(pv: &PersistentVolume, claim: Option<&PersistentVolumeClaim>) -> VolumeState {
    let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return VolumeState::Unclaimed;
    };
    let Some(claim) = claim.filter(|c| r.uid.is_none() || c.metadata.uid == r.uid) else {
        return if r.uid.as_deref().unwrap_or("").is_empty() {
            VolumeState::WaitingForClaim
        } else {
            VolumeState::ClaimGone
        };
    };
    match claim.spec.as_ref().and_then(|s| s.volume_name.as_deref()).unwrap_or("") {
        "" => VolumeState::ClaimBinding,
        v if Some(v) == pv.metadata.name.as_deref() => VolumeState::Bound,
        _ => VolumeState::ClaimBoundElsewhere,
    }
}

/// Reconciles the volume `name`.
pub async fn sync_volume(b: &Binder, name: &str) -> Result<Action, Error> {
    let Some(pv) = b.volumes.get("", name) else {
        return Ok(Action::Done);
    };
    let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.clone());
    let mut claim = claim_ref.as_ref().and_then(|r| {
        b.claims.get(
            r.namespace.as_deref().unwrap_or_default(),
            r.name.as_deref().unwrap_or_default(),
        )
    });
    if let (Some(r), None) = (&claim_ref, &claim) {
        // The cache may lag a just-created claim: ask the API before
        // releasing the volume.
        if r.uid.is_some() {
            let api = b.claim_api(r.namespace.as_deref().unwrap_or_default());
            claim = ignore_not_found(api.get(r.name.as_deref().unwrap_or_default()).await)?.map(std::sync::Arc::new);
        }
    }
    let phase = pv.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("");
    match volume_state(&pv, claim.as_deref()) {
        VolumeState::Unclaimed | VolumeState::WaitingForClaim => {
            b.set_volume_phase(&pv, "Available", None).await?;
            Ok(Action::Done)
        }
        VolumeState::ClaimBinding => Ok(Action::RequeueAfter(RESYNC)),
        VolumeState::Bound => {
            b.set_volume_phase(&pv, "Bound", None).await?;
            Ok(Action::Done)
        }
        VolumeState::ClaimBoundElsewhere => {
            if has_annotation(&pv.metadata, ANN_BOUND_BY_CONTROLLER) {
                // We (or the scheduler) bound it: free it again.
                let mut want = (*pv).clone();
                if let Some(a) = want.metadata.annotations.as_mut() {
                    a.remove(ANN_BOUND_BY_CONTROLLER);
                }
                if let Some(s) = want.spec.as_mut() {
                    s.claim_ref = None;
                }
                let stored = b.update_volume(&want).await?;
                b.set_volume_phase(&stored, "Available", None).await?;
                return Ok(Action::Done);
            }
            Ok(Action::RequeueAfter(RESYNC))
        }
        VolumeState::ClaimGone => {
            if phase == "Failed" {
                return Ok(Action::Done);
            }
            if phase != "Released" {
                b.set_volume_phase(&pv, "Released", None).await?;
            }
            reclaim(b, &pv).await
        }
    }
}

/// What the reclaim policy does with a released volume.
#[derive(Debug, PartialEq, Eq)]
pub enum Reclaim {
    /// Retain: it stays Released until an administrator acts.
    Keep,
    /// Delete by the provisioner that created it.
    ProvisionerDeletes,
    /// The policy cannot be carried out here: Failed with this event.
    Fail { reason: &'static str, message: String },
}

/// The reclaim decision for `pv`.
pub fn reclaim_decision(pv: &PersistentVolume) -> Reclaim {
    let policy = pv
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
        .unwrap_or("Retain");
    let name = pv.metadata.name.as_deref().unwrap_or_default();
    match policy {
        "Delete" if has_annotation(&pv.metadata, ANN_DYNAMICALLY_PROVISIONED) => Reclaim::ProvisionerDeletes,
        "Delete" => Reclaim::Fail {
            reason: "VolumeFailedDelete",
            message: format!(
                "error getting deleter volume plugin for volume \"{name}\": no deletable volume plugin matched"
            ),
        },
        "Recycle" => Reclaim::Fail {
            reason: "VolumeFailedRecycle",
            message: "No recycler plugin found for the volume!".into(),
        },
        _ => Reclaim::Keep,
    }
}

async fn reclaim(b: &Binder, pv: &PersistentVolume) -> Result<Action, Error> {
    match reclaim_decision(pv) {
        Reclaim::Keep | Reclaim::ProvisionerDeletes => Ok(Action::Done),
        Reclaim::Fail { reason, message } => {
            b.events
                .record(reference(pv), EventType::Warning, reason, "Reclaim", message.clone());
            let fresh = b.volumes.get("", pv.metadata.name.as_deref().unwrap_or_default());
            let pv = fresh.as_deref().unwrap_or(pv);
            b.set_volume_phase(pv, "Failed", Some(message)).await?;
            Ok(Action::Done)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::{Value, json};

    fn pv(claim_ref: Value, policy: &str, provisioned: bool) -> PersistentVolume {
        let ann = if provisioned {
            json!({ANN_DYNAMICALLY_PROVISIONED: "rkube.io/hostpath"})
        } else {
            json!({})
        };
        serde_json::from_value(json!({"metadata": {"name": "v", "annotations": ann},
            "spec": {"claimRef": claim_ref, "persistentVolumeReclaimPolicy": policy}}))
        .unwrap()
    }

    fn claim(uid: &str, volume: &str) -> PersistentVolumeClaim {
        serde_json::from_value(json!({"metadata": {"name": "c", "namespace": "ns", "uid": uid},
            "spec": {"volumeName": volume}}))
        .unwrap()
    }

    #[test]
    fn states() {
        let bound_ref = json!({"name": "c", "namespace": "ns", "uid": "u1"});
        let user_ref = json!({"name": "c", "namespace": "ns"});
        let cases = [
            (pv(Value::Null, "Retain", false), None, VolumeState::Unclaimed),
            (
                pv(user_ref.clone(), "Retain", false),
                None,
                VolumeState::WaitingForClaim,
            ),
            (
                pv(user_ref, "Retain", false),
                Some(claim("u9", "")),
                VolumeState::ClaimBinding,
            ),
            (pv(bound_ref.clone(), "Retain", false), None, VolumeState::ClaimGone),
            (
                pv(bound_ref.clone(), "Retain", false),
                Some(claim("u2", "v")),
                VolumeState::ClaimGone,
            ),
            (
                pv(bound_ref.clone(), "Retain", false),
                Some(claim("u1", "")),
                VolumeState::ClaimBinding,
            ),
            (
                pv(bound_ref.clone(), "Retain", false),
                Some(claim("u1", "v")),
                VolumeState::Bound,
            ),
            (
                pv(bound_ref, "Retain", false),
                Some(claim("u1", "w")),
                VolumeState::ClaimBoundElsewhere,
            ),
        ];
        for (i, (v, c, want)) in cases.into_iter().enumerate() {
            assert_eq!(volume_state(&v, c.as_ref()), want, "case {i}");
        }
    }

    #[test]
    fn reclaim_policies() {
        assert_eq!(reclaim_decision(&pv(Value::Null, "Retain", false)), Reclaim::Keep);
        assert_eq!(
            reclaim_decision(&pv(Value::Null, "Delete", true)),
            Reclaim::ProvisionerDeletes
        );
        assert!(matches!(
            reclaim_decision(&pv(Value::Null, "Delete", false)),
            Reclaim::Fail {
                reason: "VolumeFailedDelete",
                ..
            }
        ));
        assert!(matches!(
            reclaim_decision(&pv(Value::Null, "Recycle", false)),
            Reclaim::Fail {
                reason: "VolumeFailedRecycle",
                ..
            }
        ));
    }
}
