//! How many pods the controllers of a budget's pods want (upstream's
//! "finders"): a ReplicaSet controlled by a Deployment counts as the
//! Deployment, ReplicaSets, ReplicationControllers and StatefulSets as
//! their `spec.replicas`, and any other controller through its `scale`
//! subresource. Each controller counts once, and only if its UID is the
//! one the pod's controller reference names.

use std::collections::HashMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::ReplicationController;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, GroupVersionKind};

use crate::cached_pod::CachedPod;
use crate::controllers::controller_ref::controller_of;
use crate::error::is_not_found;
use crate::informer::Informer;

pub(super) struct Finders {
    pub client: kube::Client,
    pub replica_sets: Informer<ReplicaSet>,
    pub deployments: Informer<Deployment>,
    pub stateful_sets: Informer<StatefulSet>,
    pub replication_controllers: Informer<ReplicationController>,
}

fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(g, _)| g)
}

fn uid_is<K: kube::Resource>(obj: &K, r: &OwnerReference) -> bool {
    obj.meta().uid.as_deref() == Some(r.uid.as_str())
}

impl Finders {
    pub async fn wait_synced(&self) {
        self.replica_sets.wait_synced().await;
        self.deployments.wait_synced().await;
        self.stateful_sets.wait_synced().await;
        self.replication_controllers.wait_synced().await;
    }

    /// The summed scale of the pods' controllers, and the names of pods
    /// without a controller; an error names a pod whose controller is
    /// not found.
    pub async fn expected_scale(&self, pods: &[&CachedPod]) -> Result<(i32, Vec<String>), String> {
        let mut by_controller: HashMap<String, i32> = HashMap::new();
        let mut seen_refs: Vec<String> = Vec::new();
        let mut unmanaged = Vec::new();
        for pod in pods {
            let Some(r) = controller_of(&pod.metadata) else {
                unmanaged.push(pod.name_any());
                continue;
            };
            if seen_refs.contains(&r.uid) {
                continue;
            }
            let ns = pod.namespace().unwrap_or_default();
            match self.find(&ns, r).await? {
                Some((uid, scale)) => {
                    seen_refs.push(r.uid.clone());
                    by_controller.insert(uid, scale);
                }
                None => return Err(format!("found no controllers for pod {:?}", pod.name_any())),
            }
        }
        Ok((by_controller.values().sum(), unmanaged))
    }

    /// `(uid, scale)` of the controller `r` names, if it exists.
    async fn find(&self, ns: &str, r: &OwnerReference) -> Result<Option<(String, i32)>, String> {
        let group = group_of(&r.api_version);
        match (group, r.kind.as_str()) {
            ("apps", "ReplicaSet") => {
                if let Some(rs) = self.replica_sets.get(ns, &r.name).filter(|rs| uid_is(rs.as_ref(), r)) {
                    if let Some(dref) = controller_of(&rs.metadata).filter(|d| d.kind == "Deployment")
                        && let Some(d) = self
                            .deployments
                            .get(ns, &dref.name)
                            .filter(|d| uid_is(d.as_ref(), dref))
                    {
                        let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                        return Ok(Some((dref.uid.clone(), replicas)));
                    }
                    let replicas = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                    return Ok(Some((r.uid.clone(), replicas)));
                }
            }
            ("apps", "StatefulSet") => {
                if let Some(s) = self.stateful_sets.get(ns, &r.name).filter(|s| uid_is(s.as_ref(), r)) {
                    return Ok(Some((
                        r.uid.clone(),
                        s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                    )));
                }
            }
            ("", "ReplicationController") => {
                if let Some(rc) = self
                    .replication_controllers
                    .get(ns, &r.name)
                    .filter(|rc| uid_is(rc.as_ref(), r))
                {
                    return Ok(Some((
                        r.uid.clone(),
                        rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                    )));
                }
            }
            _ => {}
        }
        self.scale_subresource(ns, r).await
    }

    /// Any other controller: its `scale` subresource, if the kind has one.
    async fn scale_subresource(&self, ns: &str, r: &OwnerReference) -> Result<Option<(String, i32)>, String> {
        let (group, version) = r.api_version.split_once('/').unwrap_or(("", r.api_version.as_str()));
        let gvk = GroupVersionKind::gvk(group, version, &r.kind);
        let Ok((ar, _caps)) = kube::discovery::pinned_kind(&self.client, &gvk).await else {
            return Ok(None);
        };
        let api = Api::<DynamicObject>::namespaced_with(self.client.clone(), ns, &ar);
        let scale = match api.get_subresource("scale", &r.name).await {
            Ok(s) => s,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        if scale.metadata.uid.as_deref() != Some(r.uid.as_str()) {
            return Ok(None);
        }
        let replicas = scale.data["spec"]["replicas"].as_i64().unwrap_or(0);
        Ok(Some((r.uid.clone(), i32::try_from(replicas).unwrap_or(i32::MAX))))
    }
}
