//! A hostPath dynamic provisioner (`rkube.io/hostpath`), the idea of
//! kind's `rancher.io/local-path`: on a one-machine cluster every
//! StatefulSet's claims get volumes without external storage.
//!
//! At start it creates the default StorageClass `standard` (provisioner
//! [`PROVISIONER`], WaitForFirstConsumer, reclaim Delete, annotated as the
//! default class) unless a class of that name exists; an administrator's
//! own `standard` is left alone. The controller creates it (rather than
//! `hack/local-up.sh`) so any cluster running this controller manager,
//! including tests, has it.
//!
//! A claim the PV binder handed to this provisioner (annotation
//! `volume.kubernetes.io/storage-provisioner`) gets a PersistentVolume
//! `pvc-<claim uid>`: a `hostPath` (type DirectoryOrCreate, so the kubelet
//! creates it) under the base directory (`$RKUBE_HOSTPATH_PROVISIONER_DIR`,
//! default [`DEFAULT_BASE_DIR`]), pre-bound to the claim, with the class's
//! reclaim policy and, for WaitForFirstConsumer, node affinity to the node
//! the scheduler selected. When such a volume is Released with reclaim
//! policy Delete, its directory is removed (when this process can see it)
//! and the volume deleted.

use std::path::{Path, PathBuf};

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use serde_json::json;

use crate::controllers::events::{EventRecorder, EventType, reference};
use crate::controllers::persistentvolume::sync_claim::claim_reference;
use crate::controllers::persistentvolume::{
    ANN_DYNAMICALLY_PROVISIONED, ANN_SELECTED_NODE, ANN_STORAGE_PROVISIONER, annotation,
};
use crate::error::{Error, is_already_exists, is_not_found};
use crate::informer::{Change, Informer, object_key, split_key};
use crate::manager::ControllerContext;
use crate::runner::{Action, new_queue, run_workers};

/// The controller's name in `--controllers`.
pub const CONTROLLER_NAME: &str = "hostpath-provisioner-controller";
/// The provisioner name in StorageClasses and annotations.
pub const PROVISIONER: &str = "rkube.io/hostpath";
/// The default class this controller creates.
pub const DEFAULT_CLASS: &str = "standard";
/// The environment variable naming the base directory.
pub const BASE_DIR_ENV: &str = "RKUBE_HOSTPATH_PROVISIONER_DIR";
/// Where volumes live by default.
pub const DEFAULT_BASE_DIR: &str = "/var/lib/rkube/hostpath-provisioner";

/// The default StorageClass.
pub fn default_class() -> StorageClass {
    #[allow(clippy::expect_used)]
    serde_json::from_value(json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": DEFAULT_CLASS,
                     "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }))
    .expect("a literal StorageClass decodes")
}

/// The volume to provision for `pvc` of `class` under `base`; `None` when
/// the claim must wait (WaitForFirstConsumer without a selected node).
pub fn volume_for(pvc: &PersistentVolumeClaim, class: &StorageClass, base: &Path) -> Option<PersistentVolume> {
    let ns = pvc.metadata.namespace.as_deref().unwrap_or_default();
    let name = pvc.metadata.name.as_deref().unwrap_or_default();
    let uid = pvc.metadata.uid.as_deref()?;
    let spec = pvc.spec.as_ref()?;
    let node = annotation(&pvc.metadata, ANN_SELECTED_NODE);
    let delayed = class.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer");
    if delayed && node.is_none() {
        return None;
    }
    let pv_name = format!("pvc-{uid}");
    let path = base.join(format!("{pv_name}_{ns}_{name}"));
    let capacity = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .map_or_else(|| json!("0"), |q| json!(q.0));
    let affinity = node.map(|n| {
        json!({"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [n]}]}]}})
    });
    let pv = json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": pv_name, "annotations": {ANN_DYNAMICALLY_PROVISIONED: PROVISIONER}},
        "spec": {
            "capacity": {"storage": capacity},
            "accessModes": spec.access_modes.clone().unwrap_or_else(|| vec!["ReadWriteOnce".into()]),
            "volumeMode": spec.volume_mode.clone().unwrap_or_else(|| "Filesystem".into()),
            "storageClassName": class.metadata.name,
            "persistentVolumeReclaimPolicy": class.reclaim_policy.clone().unwrap_or_else(|| "Delete".into()),
            "hostPath": {"path": path.to_string_lossy(), "type": "DirectoryOrCreate"},
            "nodeAffinity": affinity,
            "claimRef": claim_reference(pvc),
        },
    });
    serde_json::from_value(pv).ok()
}

/// Whether this provisioner should provision `pvc` now.
pub fn wants_volume(pvc: &PersistentVolumeClaim) -> bool {
    annotation(&pvc.metadata, ANN_STORAGE_PROVISIONER) == Some(PROVISIONER)
        && pvc.metadata.deletion_timestamp.is_none()
        && pvc
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.as_deref())
            .unwrap_or("")
            .is_empty()
}

/// Whether `pv` is ours and should be deleted now.
pub fn should_delete(pv: &PersistentVolume) -> bool {
    annotation(&pv.metadata, ANN_DYNAMICALLY_PROVISIONED) == Some(PROVISIONER)
        && pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released")
        && pv
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
            == Some("Delete")
        && pv.metadata.deletion_timestamp.is_none()
}

#[derive(Clone)]
struct Provisioner {
    client: kube::Client,
    claims: Informer<PersistentVolumeClaim>,
    volumes: Informer<PersistentVolume>,
    classes: Informer<StorageClass>,
    events: EventRecorder,
    base: PathBuf,
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

async fn ensure_default_class(client: &kube::Client) -> Result<(), Error> {
    let api: Api<StorageClass> = Api::all(client.clone());
    match api.create(&PostParams::default(), &default_class()).await {
        Ok(_) => Ok(()),
        Err(e) if is_already_exists(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let base = std::env::var_os(BASE_DIR_ENV).map_or_else(|| PathBuf::from(DEFAULT_BASE_DIR), PathBuf::from);
    // Retried: the apiserver may not be ready the moment we start.
    let mut delay = std::time::Duration::from_millis(200);
    while let Err(e) = ensure_default_class(&ctx.client).await {
        tracing::warn!(controller = CONTROLLER_NAME, error = %e, "creating the default StorageClass");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(std::time::Duration::from_secs(10));
    }
    let queue = new_queue("hostpath_provisioner", &ctx.metrics);
    let p = Provisioner {
        client: ctx.client.clone(),
        claims: ctx.informers.get::<PersistentVolumeClaim>(),
        volumes: ctx.informers.get::<PersistentVolume>(),
        classes: ctx.informers.get::<StorageClass>(),
        events: EventRecorder::new(ctx.client.clone(), PROVISIONER),
        base,
    };
    let q = queue.clone();
    p.claims.add_handler(move |change| {
        if let Change::Added(c) | Change::Updated { new: c, .. } = change
            && wants_volume(c)
        {
            q.add(format!("claim:{}", object_key(c.as_ref())));
        }
    });
    let q = queue.clone();
    p.volumes.add_handler(move |change| {
        if let Change::Added(v) | Change::Updated { new: v, .. } = change
            && should_delete(v)
        {
            q.add(format!("volume:{}", object_key(v.as_ref())));
        }
    });
    p.claims.wait_synced().await;
    p.volumes.wait_synced().await;
    p.classes.wait_synced().await;
    run_workers(CONTROLLER_NAME, queue, 2, ctx.metrics.clone(), move |key| {
        let p = p.clone();
        async move {
            match key.split_once(':') {
                Some(("claim", k)) => p.provision(k).await,
                Some(("volume", k)) => p.delete(k).await,
                _ => Ok(Action::Done),
            }
        }
    })
    .await;
    Ok(())
}

impl Provisioner {
    async fn provision(&self, key: &str) -> Result<Action, Error> {
        let (ns, name) = split_key(key);
        let Some(pvc) = self.claims.get(ns, name) else {
            return Ok(Action::Done);
        };
        if !wants_volume(&pvc) {
            return Ok(Action::Done);
        }
        let class_name = pvc
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.as_deref())
            .unwrap_or("");
        let Some(class) = self.classes.get("", class_name) else {
            return Ok(Action::Done);
        };
        if class.provisioner != PROVISIONER {
            return Ok(Action::Done);
        }
        let Some(pv) = volume_for(&pvc, &class, &self.base) else {
            return Ok(Action::Done);
        };
        let pv_name = pv.metadata.name.clone().unwrap_or_default();
        if self.volumes.get("", &pv_name).is_some() {
            return Ok(Action::Done);
        }
        self.events.record(
            reference(pvc.as_ref()),
            EventType::Normal,
            "Provisioning",
            "Provisioning",
            format!("External provisioner is provisioning volume for claim \"{key}\""),
        );
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        match api.create(&PostParams::default(), &pv).await {
            Ok(_) => {}
            Err(e) if is_already_exists(&e) => return Ok(Action::Done),
            Err(e) => {
                self.events.record(
                    reference(pvc.as_ref()),
                    EventType::Warning,
                    "ProvisioningFailed",
                    "Provisioning",
                    format!("failed to provision volume with StorageClass \"{class_name}\": {e}"),
                );
                return Err(e.into());
            }
        }
        self.events.record(
            reference(pvc.as_ref()),
            EventType::Normal,
            "ProvisioningSucceeded",
            "Provisioning",
            format!("Successfully provisioned volume {pv_name}"),
        );
        Ok(Action::Done)
    }

    async fn delete(&self, name: &str) -> Result<Action, Error> {
        let Some(pv) = self.volumes.get("", name) else {
            return Ok(Action::Done);
        };
        if !should_delete(&pv) {
            return Ok(Action::Done);
        }
        if let Some(path) = pv
            .spec
            .as_ref()
            .and_then(|s| s.host_path.as_ref())
            .map(|h| PathBuf::from(&h.path))
            && path.starts_with(&self.base)
            && path != self.base
        {
            match tokio::fs::remove_dir_all(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    // Another machine's directory, or no permission here:
                    // the data stays, the volume goes (as local-path does
                    // when its helper pod cannot run).
                    tracing::warn!(controller = CONTROLLER_NAME, volume = name, path = %path.display(), error = %e, "could not remove the volume's directory");
                }
            }
        }
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: pv.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(name, &dp).await {
            Ok(_) => Ok(Action::Done),
            Err(e) if is_not_found(&e) => Ok(Action::Done),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::collections::BTreeMap;

    fn pvc(selected: Option<&str>) -> PersistentVolumeClaim {
        let mut ann = BTreeMap::new();
        ann.insert(ANN_STORAGE_PROVISIONER.to_string(), PROVISIONER.to_string());
        if let Some(n) = selected {
            ann.insert(ANN_SELECTED_NODE.to_string(), n.to_string());
        }
        serde_json::from_value(
            json!({"metadata": {"name": "data-web-0", "namespace": "ns", "uid": "abc",
                "annotations": ann},
            "spec": {"storageClassName": "standard", "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}}),
        )
        .unwrap()
    }

    #[test]
    fn delayed_claims_wait_for_a_node_and_get_its_affinity() {
        let class = default_class();
        assert!(volume_for(&pvc(None), &class, Path::new("/base")).is_none());
        let pv = volume_for(&pvc(Some("node-1")), &class, Path::new("/base")).unwrap();
        assert_eq!(pv.metadata.name.as_deref(), Some("pvc-abc"));
        assert_eq!(annotation(&pv.metadata, ANN_DYNAMICALLY_PROVISIONED), Some(PROVISIONER));
        let spec = pv.spec.unwrap();
        assert_eq!(spec.host_path.unwrap().path, "/base/pvc-abc_ns_data-web-0");
        assert_eq!(spec.persistent_volume_reclaim_policy.as_deref(), Some("Delete"));
        assert_eq!(spec.storage_class_name.as_deref(), Some("standard"));
        assert_eq!(spec.capacity.unwrap()["storage"].0, "1Gi");
        let r = spec.claim_ref.unwrap();
        assert_eq!((r.name.as_deref(), r.uid.as_deref()), (Some("data-web-0"), Some("abc")));
        let term = &spec.node_affinity.unwrap().required.unwrap().node_selector_terms[0];
        assert_eq!(
            term.match_expressions.as_ref().unwrap()[0].values.as_ref().unwrap(),
            &["node-1"]
        );
    }

    #[test]
    fn immediate_classes_need_no_node() {
        let mut class = default_class();
        class.volume_binding_mode = Some("Immediate".into());
        class.reclaim_policy = Some("Retain".into());
        let spec = volume_for(&pvc(None), &class, Path::new("/b")).unwrap().spec.unwrap();
        assert!(spec.node_affinity.is_none());
        assert_eq!(spec.persistent_volume_reclaim_policy.as_deref(), Some("Retain"));
    }

    #[test]
    fn only_released_delete_volumes_of_ours_are_deleted() {
        let mk = |prov: &str, phase: &str, policy: &str| -> PersistentVolume {
            serde_json::from_value(
                json!({"metadata": {"name": "v", "annotations": {ANN_DYNAMICALLY_PROVISIONED: prov}},
                "spec": {"persistentVolumeReclaimPolicy": policy}, "status": {"phase": phase}}),
            )
            .unwrap()
        };
        assert!(should_delete(&mk(PROVISIONER, "Released", "Delete")));
        assert!(!should_delete(&mk(PROVISIONER, "Bound", "Delete")));
        assert!(!should_delete(&mk(PROVISIONER, "Released", "Retain")));
        assert!(!should_delete(&mk("other.io/x", "Released", "Delete")));
        let mut bound = pvc(None);
        assert!(wants_volume(&bound));
        bound.spec.as_mut().unwrap().volume_name = Some("v".into());
        assert!(!wants_volume(&bound));
    }
}
