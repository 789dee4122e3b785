//! A claim's sync (upstream's `syncClaim`, `syncUnboundClaim`,
//! `syncBoundClaim` and `bind`).

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolume, PersistentVolumeClaim};

use super::matching::{check_volume_satisfies_claim, claim_class, find_best_match, is_prebound_to};
use super::{
    ANN_BETA_STORAGE_PROVISIONER, ANN_BIND_COMPLETED, ANN_BOUND_BY_CONTROLLER, ANN_SELECTED_NODE,
    ANN_STORAGE_PROVISIONER, Binder, NO_PROVISIONER, RESYNC, annotation, has_annotation,
};
use crate::controllers::events::{EventType, reference};
use crate::error::Error;
use crate::informer::split_key;
use crate::runner::Action;

/// Upstream's event text for a claim waiting for its first pod.
pub const WAITING_FOR_FIRST_CONSUMER: &str = "waiting for first consumer to be created before binding";

/// Reconciles the claim `ns/name`.
pub async fn sync_claim(b: &Binder, key: &str) -> Result<Action, Error> {
    let (ns, name) = split_key(key);
    let Some(pvc) = b.claims.get(ns, name) else {
        return Ok(Action::Done);
    };
    if has_annotation(&pvc.metadata, ANN_BIND_COMPLETED) {
        sync_bound_claim(b, &pvc).await
    } else {
        sync_unbound_claim(b, &pvc).await
    }
}

fn volume_name(pvc: &PersistentVolumeClaim) -> &str {
    pvc.spec.as_ref().and_then(|s| s.volume_name.as_deref()).unwrap_or("")
}

fn warn(b: &Binder, pvc: &PersistentVolumeClaim, reason: &str, note: String) {
    b.events
        .record(reference(pvc), EventType::Warning, reason, "Binding", note);
}

async fn sync_unbound_claim(b: &Binder, pvc: &PersistentVolumeClaim) -> Result<Action, Error> {
    let named = volume_name(pvc);
    if named.is_empty() {
        let class = b.classes.get("", claim_class(pvc));
        let delayed = class.as_ref().and_then(|c| c.volume_binding_mode.as_deref()) == Some("WaitForFirstConsumer");
        let volumes = b.volumes.list_all();
        if let Some(pv) = find_best_match(pvc, volumes.iter().map(Arc::as_ref), delayed) {
            return bind(b, pv, pvc).await;
        }
        if delayed && !has_annotation(&pvc.metadata, ANN_SELECTED_NODE) {
            b.events.record(
                reference(pvc),
                EventType::Normal,
                "WaitForFirstConsumer",
                "Binding",
                WAITING_FOR_FIRST_CONSUMER.into(),
            );
        } else if !claim_class(pvc).is_empty() {
            provision(b, pvc, class.as_deref()).await?;
        } else {
            b.events.record(
                reference(pvc),
                EventType::Normal,
                "FailedBinding",
                "Binding",
                "no persistent volumes available for this claim and no storage class is set".into(),
            );
        }
        b.set_claim_phase(pvc, "Pending", None).await?;
        return Ok(Action::RequeueAfter(RESYNC));
    }
    // Pre-bound by the user to a named volume.
    let Some(pv) = b.volumes.get("", named) else {
        b.set_claim_phase(pvc, "Pending", None).await?;
        return Ok(Action::RequeueAfter(RESYNC));
    };
    let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    if claim_ref.is_none() {
        if let Err(why) = check_volume_satisfies_claim(&pv, pvc) {
            warn(
                b,
                pvc,
                "VolumeMismatch",
                format!("Cannot bind to requested volume \"{named}\": {why}"),
            );
            b.set_claim_phase(pvc, "Pending", None).await?;
            return Ok(Action::RequeueAfter(RESYNC));
        }
        return bind(b, &pv, pvc).await;
    }
    if is_prebound_to(&pv, pvc) {
        return bind(b, &pv, pvc).await;
    }
    warn(
        b,
        pvc,
        "FailedBinding",
        format!("volume \"{named}\" already bound to a different claim."),
    );
    b.set_claim_phase(pvc, "Pending", None).await?;
    Ok(Action::RequeueAfter(RESYNC))
}

/// Asks the class's provisioner for a volume: the provisioner annotations
/// and upstream's ExternalProvisioning event.
async fn provision(
    b: &Binder,
    pvc: &PersistentVolumeClaim,
    class: Option<&k8s_openapi::api::storage::v1::StorageClass>,
) -> Result<(), Error> {
    let Some(class) = class else {
        warn(
            b,
            pvc,
            "ProvisioningFailed",
            format!("storageclass.storage.k8s.io \"{}\" not found", claim_class(pvc)),
        );
        return Ok(());
    };
    if class.provisioner == NO_PROVISIONER {
        // Static volumes only: wait for an administrator to create one.
        b.events.record(
            reference(pvc),
            EventType::Normal,
            "FailedBinding",
            "Binding",
            "no persistent volumes available for this claim and no storage class is set".into(),
        );
        return Ok(());
    }
    if annotation(&pvc.metadata, ANN_STORAGE_PROVISIONER) != Some(class.provisioner.as_str()) {
        let mut want = pvc.clone();
        let ann = want.metadata.annotations.get_or_insert_with(Default::default);
        ann.insert(ANN_STORAGE_PROVISIONER.into(), class.provisioner.clone());
        ann.insert(ANN_BETA_STORAGE_PROVISIONER.into(), class.provisioner.clone());
        b.update_claim(&want).await?;
    }
    b.events.record(
        reference(pvc),
        EventType::Normal,
        "ExternalProvisioning",
        "Provisioning",
        format!(
            "Waiting for a volume to be created either by the external provisioner '{}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.",
            class.provisioner
        ),
    );
    Ok(())
}

async fn sync_bound_claim(b: &Binder, pvc: &PersistentVolumeClaim) -> Result<Action, Error> {
    let named = volume_name(pvc);
    if named.is_empty() {
        warn(
            b,
            pvc,
            "ClaimLost",
            "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!".into(),
        );
        b.set_claim_phase(pvc, "Lost", None).await?;
        return Ok(Action::Done);
    }
    let Some(pv) = b.volumes.get("", named) else {
        warn(
            b,
            pvc,
            "ClaimLost",
            "Bound claim has lost its PersistentVolume. Data on the volume is lost!".into(),
        );
        b.set_claim_phase(pvc, "Lost", None).await?;
        return Ok(Action::Done);
    };
    let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    match claim_ref {
        None => bind(b, &pv, pvc).await,
        Some(r) if r.uid.is_some() && r.uid == pvc.metadata.uid => bind(b, &pv, pvc).await,
        Some(_) => {
            warn(
                b,
                pvc,
                "ClaimMisbound",
                "Two claims are bound to the same volume, this one is bound incorrectly".into(),
            );
            b.set_claim_phase(pvc, "Lost", None).await?;
            Ok(Action::Done)
        }
    }
}

/// The reference a bound volume keeps to its claim.
pub fn claim_reference(pvc: &PersistentVolumeClaim) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        namespace: pvc.metadata.namespace.clone(),
        name: pvc.metadata.name.clone(),
        uid: pvc.metadata.uid.clone(),
        resource_version: pvc.metadata.resource_version.clone(),
        ..ObjectReference::default()
    }
}

/// The volume as bound to `pvc`, or `None` when it already is.
pub fn volume_bound_to(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> Option<PersistentVolume> {
    let current = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    if current.is_some_and(|r| r.uid.is_some() && r.uid == pvc.metadata.uid) {
        return None;
    }
    let mut want = pv.clone();
    if current.is_none() {
        want.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(ANN_BOUND_BY_CONTROLLER.into(), "yes".into());
    }
    want.spec.get_or_insert_with(Default::default).claim_ref = Some(claim_reference(pvc));
    Some(want)
}

/// The claim as bound to `pv`, or `None` when it already is.
pub fn claim_bound_to(pvc: &PersistentVolumeClaim, pv: &PersistentVolume) -> Option<PersistentVolumeClaim> {
    let pv_name = pv.metadata.name.clone().unwrap_or_default();
    let mut want = pvc.clone();
    let spec = want.spec.get_or_insert_with(Default::default);
    let ann = want.metadata.annotations.get_or_insert_with(Default::default);
    if spec.volume_name.as_deref().unwrap_or("").is_empty() {
        spec.volume_name = Some(pv_name);
        ann.insert(ANN_BOUND_BY_CONTROLLER.into(), "yes".into());
    }
    ann.insert(ANN_BIND_COMPLETED.into(), "yes".into());
    (want != *pvc).then_some(want)
}

/// Binds both sides: the volume's claimRef and phase, then the claim's
/// volumeName, annotations and status (upstream's order, so a crash in
/// between leaves a volume the claim's next sync finishes binding).
async fn bind(b: &Binder, pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> Result<Action, Error> {
    let pv = match volume_bound_to(pv, pvc) {
        Some(want) => b.update_volume(&want).await?,
        None => pv.clone(),
    };
    b.set_volume_phase(&pv, "Bound", None).await?;
    let pvc = match claim_bound_to(pvc, &pv) {
        Some(want) => b.update_claim(&want).await?,
        None => pvc.clone(),
    };
    b.set_claim_phase(&pvc, "Bound", Some(&pv)).await?;
    Ok(Action::Done)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn pvc(volume: Option<&str>) -> PersistentVolumeClaim {
        serde_json::from_value(
            json!({"metadata": {"name": "c", "namespace": "ns", "uid": "u1", "resourceVersion": "7"},
            "spec": {"volumeName": volume, "resources": {"requests": {"storage": "1Gi"}}}}),
        )
        .unwrap()
    }

    fn pv(claim_ref: serde_json::Value) -> PersistentVolume {
        serde_json::from_value(json!({"metadata": {"name": "v"}, "spec": {"claimRef": claim_ref,
            "capacity": {"storage": "1Gi"}}}))
        .unwrap()
    }

    #[test]
    fn binding_a_free_volume_marks_both_sides_bound_by_controller() {
        let v = volume_bound_to(&pv(serde_json::Value::Null), &pvc(None)).unwrap();
        assert_eq!(annotation(&v.metadata, ANN_BOUND_BY_CONTROLLER), Some("yes"));
        let r = v.spec.unwrap().claim_ref.unwrap();
        assert_eq!((r.name.as_deref(), r.uid.as_deref()), (Some("c"), Some("u1")));
        assert_eq!(r.kind.as_deref(), Some("PersistentVolumeClaim"));
        let c = claim_bound_to(&pvc(None), &pv(serde_json::Value::Null)).unwrap();
        assert_eq!(c.spec.unwrap().volume_name.as_deref(), Some("v"));
        assert_eq!(annotation(&c.metadata, ANN_BIND_COMPLETED), Some("yes"));
        assert_eq!(annotation(&c.metadata, ANN_BOUND_BY_CONTROLLER), Some("yes"));
    }

    #[test]
    fn user_prebinding_is_not_marked_as_the_controllers() {
        // A volume pre-bound by the user (claimRef without uid) gets the uid only.
        let v = volume_bound_to(&pv(json!({"name": "c", "namespace": "ns"})), &pvc(None)).unwrap();
        assert_eq!(annotation(&v.metadata, ANN_BOUND_BY_CONTROLLER), None);
        assert_eq!(v.spec.unwrap().claim_ref.unwrap().uid.as_deref(), Some("u1"));
        // A claim naming its volume gets bind-completed only.
        let c = claim_bound_to(&pvc(Some("v")), &pv(serde_json::Value::Null)).unwrap();
        assert_eq!(annotation(&c.metadata, ANN_BOUND_BY_CONTROLLER), None);
        assert_eq!(annotation(&c.metadata, ANN_BIND_COMPLETED), Some("yes"));
    }

    #[test]
    fn binding_is_idempotent() {
        let bound_pv = pv(json!({"name": "c", "namespace": "ns", "uid": "u1"}));
        assert!(volume_bound_to(&bound_pv, &pvc(None)).is_none());
        let done = claim_bound_to(&pvc(None), &bound_pv).unwrap();
        assert!(claim_bound_to(&done, &bound_pv).is_none());
    }
}
