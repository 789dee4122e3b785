//! VolumeBinding's PreBind (upstream's `volumebinding` binder:
//! `BindPodVolumes`), run in the binding cycle before the pod is bound:
//! each unbound WaitForFirstConsumer claim of the pod gets either a static
//! volume that fits on the chosen node (pre-bound through the volume's
//! `spec.claimRef`, marked `pv.kubernetes.io/bound-by-controller`) or, when
//! its class has a provisioner, the `volume.kubernetes.io/selected-node`
//! annotation naming the node. Then it waits until the PV controller has
//! bound every claim (`spec.volumeName` and `pv.kubernetes.io/bind-completed`),
//! so the pod only lands where its volumes are. Plugins are pure, so these
//! API calls live here, called by the scheduler for profiles that enable
//! VolumeBinding.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, ObjectReference, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::node_info::NodeInfo;
use crate::plugins::volume_binding::{ANN_BIND_COMPLETED, ERR_REASON_BIND_CONFLICT, class_name, pv_fits, storage};
use crate::pod_info::PodInfo;

/// Set on a claim: the node the scheduler chose for it.
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// Set on a volume the scheduler pre-bound.
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// How long binding may take (upstream's `bindTimeoutSeconds` default).
pub const BIND_TIMEOUT: Duration = Duration::from_secs(600);
const POLL: Duration = Duration::from_millis(200);

/// The claim names of `pod`'s volumes.
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

/// Whether the PV controller finished binding `pvc`.
pub fn fully_bound(pvc: &PersistentVolumeClaim) -> bool {
    let named = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .is_some_and(|v| !v.is_empty());
    named
        && pvc
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(ANN_BIND_COMPLETED))
}

/// The smallest available volume fitting `pvc` on `node`, not in `taken`.
pub fn choose_volume<'a>(
    pvc: &PersistentVolumeClaim,
    volumes: &'a [PersistentVolume],
    node: &NodeInfo,
    taken: &BTreeSet<String>,
) -> Option<&'a PersistentVolume> {
    volumes
        .iter()
        .filter(|pv| !taken.contains(pv.metadata.name.as_deref().unwrap_or_default()))
        .filter(|pv| pv_fits(pv, pvc, node))
        .min_by_key(|pv| storage(pv.spec.as_ref().and_then(|s| s.capacity.as_ref())))
}

fn claim_ref(pvc: &PersistentVolumeClaim) -> ObjectReference {
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

/// Binds or provisions the pod's delayed claims for `node` and waits until
/// all its claims are bound. The error is the FailedScheduling text.
pub async fn bind_pod_volumes(client: &Client, pod: &PodInfo, node: &str, timeout: Duration) -> Result<(), String> {
    let names = claim_names(pod);
    if names.is_empty() {
        return Ok(());
    }
    let claims_api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &pod.namespace);
    let mut node_info: Option<NodeInfo> = None;
    let mut volumes: Option<Vec<PersistentVolume>> = None;
    let mut taken = BTreeSet::new();
    for name in &names {
        let pvc = claims_api.get(name).await.map_err(|e| e.to_string())?;
        if fully_bound(&pvc)
            || pvc
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.as_deref())
                .is_some_and(|v| !v.is_empty())
        {
            continue;
        }
        let class = match class_name(&pvc).as_str() {
            "" => None,
            c => Some(
                Api::<StorageClass>::all(client.clone())
                    .get(c)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
        };
        let delayed = class.as_ref().and_then(|c| c.volume_binding_mode.as_deref()) == Some("WaitForFirstConsumer");
        if !delayed {
            continue;
        }
        let annotations = pvc.metadata.annotations.as_ref();
        if annotations
            .and_then(|a| a.get(ANN_SELECTED_NODE))
            .is_some_and(|n| n == node)
        {
            continue;
        }
        if node_info.is_none() {
            let n = Api::<Node>::all(client.clone())
                .get(node)
                .await
                .map_err(|e| e.to_string())?;
            node_info = Some(NodeInfo::new(Arc::new(n)));
        }
        if volumes.is_none() {
            let list = Api::<PersistentVolume>::all(client.clone())
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?;
            volumes = Some(list.items);
        }
        let (Some(ni), Some(vols)) = (&node_info, &volumes) else {
            continue;
        };
        if let Some(pv) = choose_volume(&pvc, vols, ni, &taken) {
            let mut want = pv.clone();
            want.metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(ANN_BOUND_BY_CONTROLLER.into(), "yes".into());
            want.spec.get_or_insert_with(Default::default).claim_ref = Some(claim_ref(&pvc));
            let pv_name = pv.metadata.name.clone().unwrap_or_default();
            Api::<PersistentVolume>::all(client.clone())
                .replace(&pv_name, &PostParams::default(), &want)
                .await
                .map_err(|e| e.to_string())?;
            taken.insert(pv_name);
            continue;
        }
        let provisioned = class
            .as_ref()
            .is_some_and(|c| c.provisioner != "kubernetes.io/no-provisioner");
        if !provisioned {
            return Err(ERR_REASON_BIND_CONFLICT.to_string());
        }
        let patch = json!({"metadata": {"annotations": {ANN_SELECTED_NODE: node}}});
        claims_api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| e.to_string())?;
    }
    wait_bound(&claims_api, &names, timeout).await
}

async fn wait_bound(api: &Api<PersistentVolumeClaim>, names: &[&str], timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut pending: Vec<&str> = names.to_vec();
    loop {
        let mut still = Vec::new();
        for name in pending {
            match api.get(name).await {
                Ok(pvc) if fully_bound(&pvc) => {}
                Ok(pvc) if pvc.metadata.deletion_timestamp.is_some() => {
                    return Err(format!(
                        "binding volumes: persistentvolumeclaim \"{name}\" is being deleted"
                    ));
                }
                Ok(_) => still.push(name),
                Err(e) => return Err(format!("binding volumes: {e}")),
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err("binding volumes: context deadline exceeded".into());
        }
        pending = still;
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::plugins::testing::node;
    use serde_json::Value;

    fn pv(name: &str, size: &str, host: &str) -> PersistentVolume {
        serde_json::from_value(json!({"metadata": {"name": name},
            "spec": {"storageClassName": "local", "capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                         {"key": "kubernetes.io/hostname", "operator": "In", "values": [host]}]}]}}},
            "status": {"phase": "Available"}}))
        .unwrap()
    }

    #[test]
    fn the_smallest_fitting_volume_on_the_node_is_chosen_once() {
        let pvc: PersistentVolumeClaim = serde_json::from_value(json!({"metadata": {"name": "c", "namespace": "d"},
            "spec": {"storageClassName": "local", "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}}))
        .unwrap();
        let vols = [
            pv("big", "10Gi", "a"),
            pv("small", "2Gi", "a"),
            pv("elsewhere", "1Gi", "b"),
            pv("tiny", "1Mi", "a"),
        ];
        let a = node("a", Value::Null, Value::Null, json!({}));
        let mut taken = BTreeSet::new();
        let name = |p: Option<&PersistentVolume>| p.and_then(|p| p.metadata.name.clone());
        assert_eq!(name(choose_volume(&pvc, &vols, &a, &taken)).as_deref(), Some("small"));
        taken.insert("small".to_string());
        assert_eq!(name(choose_volume(&pvc, &vols, &a, &taken)).as_deref(), Some("big"));
        taken.insert("big".to_string());
        assert_eq!(name(choose_volume(&pvc, &vols, &a, &taken)), None);
    }

    #[test]
    fn bound_means_named_and_completed() {
        let mk = |v: Value, ann: Value| -> PersistentVolumeClaim {
            serde_json::from_value(json!({"metadata": {"name": "c", "annotations": ann}, "spec": {"volumeName": v}}))
                .unwrap()
        };
        assert!(fully_bound(&mk(json!("pv"), json!({ANN_BIND_COMPLETED: "yes"}))));
        assert!(!fully_bound(&mk(json!("pv"), json!({}))));
        assert!(!fully_bound(&mk(Value::Null, json!({ANN_BIND_COMPLETED: "yes"}))));
    }
}
