//! The PersistentVolume binder (upstream `pkg/controller/volume/persistentvolume`,
//! `persistentvolume-binder-controller`): binds claims to volumes and keeps
//! both sides' phases, annotations and reclaim policy.
//!
//! One queue carries `claim:<ns>/<name>` and `volume:<name>` keys.
//! [`sync_claim`] binds an unbound claim to the best matching volume
//! ([`matching`]), or hands it to its StorageClass's provisioner through the
//! `volume.kubernetes.io/storage-provisioner` annotation, or, for
//! WaitForFirstConsumer classes, waits until the scheduler either pre-binds
//! a volume (`spec.claimRef` on the volume) or picks a node
//! (`volume.kubernetes.io/selected-node` on the claim). [`sync_volume`]
//! keeps the volume's phase (Available, Bound, Released, Failed) and
//! applies its reclaim policy once its claim is gone. Both resync every
//! 15 seconds while waiting, like upstream's periodic resync.

pub mod matching;
pub mod sync_claim;
pub mod sync_volume;

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, PostParams};

use crate::controllers::events::EventRecorder;
use crate::error::Error;
use crate::informer::{Change, Informer, object_key};
use crate::manager::ControllerContext;
use crate::runner::{new_queue, run_workers};

pub use sync_claim::sync_claim;
pub use sync_volume::sync_volume;

/// Upstream's name.
pub const CONTROLLER_NAME: &str = "persistentvolume-binder-controller";
/// Set on a claim once the controller finished binding it.
pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// Set on whichever side the controller (or scheduler) bound, not the user.
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// The node the scheduler chose for a WaitForFirstConsumer claim.
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The provisioner asked to provision a claim.
pub const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
/// The beta spelling of [`ANN_STORAGE_PROVISIONER`], still set upstream.
pub const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// The provisioner that created a volume (and deletes it).
pub const ANN_DYNAMICALLY_PROVISIONED: &str = "pv.kubernetes.io/provisioned-by";
/// A StorageClass provisioner meaning "static volumes only".
pub const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";
/// How often a waiting claim or volume is looked at again.
pub const RESYNC: Duration = Duration::from_secs(15);
const WORKERS: usize = 5;

/// The informers and clients a sync reads and writes through.
#[derive(Clone)]
pub struct Binder {
    pub client: kube::Client,
    pub claims: Informer<PersistentVolumeClaim>,
    pub volumes: Informer<PersistentVolume>,
    pub classes: Informer<StorageClass>,
    pub events: EventRecorder,
}

impl Binder {
    pub(crate) fn claim_api(&self, ns: &str) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.client.clone(), ns)
    }

    pub(crate) fn volume_api(&self) -> Api<PersistentVolume> {
        Api::all(self.client.clone())
    }

    /// Writes `pvc` (spec and metadata), returning the stored object.
    pub(crate) async fn update_claim(&self, pvc: &PersistentVolumeClaim) -> Result<PersistentVolumeClaim, Error> {
        let ns = pvc.metadata.namespace.as_deref().unwrap_or_default();
        let name = pvc.metadata.name.as_deref().unwrap_or_default();
        Ok(self.claim_api(ns).replace(name, &PostParams::default(), pvc).await?)
    }

    /// Sets a claim's phase (and, when bound, its capacity and access modes).
    pub(crate) async fn set_claim_phase(
        &self,
        pvc: &PersistentVolumeClaim,
        phase: &str,
        volume: Option<&PersistentVolume>,
    ) -> Result<(), Error> {
        let mut want = pvc.clone();
        let status = want.status.get_or_insert_with(Default::default);
        status.phase = Some(phase.to_string());
        if let Some(pv) = volume {
            let spec = pv.spec.as_ref();
            status.capacity = spec.and_then(|s| s.capacity.clone());
            status.access_modes = spec.and_then(|s| s.access_modes.clone());
        }
        if want.status == pvc.status {
            return Ok(());
        }
        let ns = pvc.metadata.namespace.as_deref().unwrap_or_default();
        let name = pvc.metadata.name.as_deref().unwrap_or_default();
        self.claim_api(ns)
            .replace_status(name, &PostParams::default(), &want)
            .await?;
        Ok(())
    }

    /// Writes `pv` (spec and metadata), returning the stored object.
    pub(crate) async fn update_volume(&self, pv: &PersistentVolume) -> Result<PersistentVolume, Error> {
        let name = pv.metadata.name.as_deref().unwrap_or_default();
        Ok(self.volume_api().replace(name, &PostParams::default(), pv).await?)
    }

    /// Sets a volume's phase (with a message for Failed).
    pub(crate) async fn set_volume_phase(
        &self,
        pv: &PersistentVolume,
        phase: &str,
        message: Option<String>,
    ) -> Result<(), Error> {
        let mut want = pv.clone();
        let status = want.status.get_or_insert_with(Default::default);
        status.phase = Some(phase.to_string());
        status.message = message;
        if want.status == pv.status {
            return Ok(());
        }
        let name = pv.metadata.name.as_deref().unwrap_or_default();
        self.volume_api()
            .replace_status(name, &PostParams::default(), &want)
            .await?;
        Ok(())
    }
}

/// Whether `meta` carries annotation `key`.
pub fn has_annotation(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, key: &str) -> bool {
    meta.annotations.as_ref().is_some_and(|a| a.contains_key(key))
}

/// The value of annotation `key` on `meta`.
pub fn annotation<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

fn claim_key(pvc: &PersistentVolumeClaim) -> String {
    format!("claim:{}", object_key(pvc))
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let queue = new_queue("claims", &ctx.metrics);
    let binder = Binder {
        client: ctx.client.clone(),
        claims: ctx.informers.get::<PersistentVolumeClaim>(),
        volumes: ctx.informers.get::<PersistentVolume>(),
        classes: ctx.informers.get::<StorageClass>(),
        events: EventRecorder::new(ctx.client.clone(), "persistentvolume-controller"),
    };
    let q = queue.clone();
    binder.claims.add_handler(move |change| match change {
        Change::Added(c) | Change::Updated { new: c, .. } => q.add(claim_key(c)),
        Change::Deleted(c) => {
            // Its volume is released.
            if let Some(v) = c
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.as_deref())
                .filter(|v| !v.is_empty())
            {
                q.add(format!("volume:{v}"));
            }
        }
    });
    let q = queue.clone();
    let claims = binder.claims.clone();
    binder.volumes.add_handler(move |change| match change {
        Change::Added(v) | Change::Updated { new: v, .. } => {
            q.add(format!("volume:{}", object_key(v.as_ref())));
            match v.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
                Some(r) => q.add(format!(
                    "claim:{}/{}",
                    r.namespace.as_deref().unwrap_or_default(),
                    r.name.as_deref().unwrap_or_default()
                )),
                // A new free volume may serve any waiting claim.
                None => claims
                    .list_all()
                    .iter()
                    .filter(|c| {
                        c.spec
                            .as_ref()
                            .and_then(|s| s.volume_name.as_deref())
                            .unwrap_or("")
                            .is_empty()
                    })
                    .for_each(|c| q.add(claim_key(c))),
            }
        }
        Change::Deleted(v) => {
            if let Some(r) = v.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
                q.add(format!(
                    "claim:{}/{}",
                    r.namespace.as_deref().unwrap_or_default(),
                    r.name.as_deref().unwrap_or_default()
                ));
            }
        }
    });
    let q = queue.clone();
    let claims = binder.claims.clone();
    binder.classes.add_handler(move |change| {
        // Claims waiting for a class that now exists (or changed).
        if let Change::Added(class) | Change::Updated { new: class, .. } = change {
            let name = class.metadata.name.as_deref().unwrap_or_default();
            claims
                .list_all()
                .iter()
                .filter(|c| matching::claim_class(c) == name && !has_annotation(&c.metadata, ANN_BIND_COMPLETED))
                .for_each(|c| q.add(claim_key(c)));
        }
    });
    binder.claims.wait_synced().await;
    binder.volumes.wait_synced().await;
    binder.classes.wait_synced().await;
    run_workers(CONTROLLER_NAME, queue, WORKERS, ctx.metrics.clone(), move |key| {
        let binder = binder.clone();
        async move {
            match key.split_once(':') {
                Some(("claim", k)) => sync_claim(&binder, k).await,
                Some(("volume", k)) => sync_volume(&binder, k).await,
                _ => Ok(crate::runner::Action::Done),
            }
        }
    })
    .await;
    Ok(())
}
