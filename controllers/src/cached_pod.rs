//! The pod as the controller manager caches it: the parts of a `Pod` the
//! controllers read, decoded straight from the watch, under the same field
//! names as k8s-openapi's `Pod` (`pod.spec.node_name`,
//! `pod.status.conditions`, ...), so code that reads a pod reads a
//! [`CachedPod`] the same way.
//!
//! Why: k8s-openapi's `Pod` holds every field of the API inline, mostly
//! `None` (the struct alone ~2.3 KB, each `Container` ~1.9 KB, each
//! `ContainerStatus` ~0.75 KB, resources as B-tree maps ~1.1 KB), and pods
//! are most of what the controller manager keeps. A cached pod is the
//! object metadata (whole, so it is a kube `Resource` and every generic
//! helper works on it) plus the spec and status fields below; rare, large
//! parts (affinity, container states) are boxed.
//!
//! A controller that needs a field not here adds it (the JSON name is the
//! API's, camelCase). A controller that writes a pod back with a full
//! update GETs the whole pod first (the StatefulSet controller's repair):
//! a cached pod is for reading.

use k8s_openapi::api::core::v1::{
    Affinity, ContainerPort, ContainerState, PersistentVolumeClaimVolumeSource, Pod, PodCondition, PodIP, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Deserializer};

mod resource_list;

pub use resource_list::ResourceList;

/// A pod, as the controllers read it (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CachedPod {
    pub metadata: ObjectMeta,
    pub spec: Option<CachedPodSpec>,
    pub status: Option<CachedPodStatus>,
}

/// What the controllers read of `spec`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CachedPodSpec {
    #[serde(deserialize_with = "null_as_default")]
    pub containers: Vec<CachedContainer>,
    pub init_containers: Option<Vec<CachedContainer>>,
    pub node_name: Option<String>,
    pub restart_policy: Option<String>,
    pub hostname: Option<String>,
    pub subdomain: Option<String>,
    pub priority: Option<i32>,
    pub priority_class_name: Option<String>,
    pub active_deadline_seconds: Option<i64>,
    pub tolerations: Option<Vec<Toleration>>,
    pub affinity: Option<Box<Affinity>>,
    pub overhead: Option<ResourceList>,
    pub volumes: Option<Vec<CachedVolume>>,
}

/// What the controllers read of a container.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CachedContainer {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    pub ports: Option<Vec<ContainerPort>>,
    pub resources: Option<CachedResources>,
    /// `Always` on an init container makes it a sidecar.
    pub restart_policy: Option<String>,
}

/// A container's `resources`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CachedResources {
    pub limits: Option<ResourceList>,
    pub requests: Option<ResourceList>,
}

/// A volume's name and the claim it mounts, if any.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CachedVolume {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    pub persistent_volume_claim: Option<PersistentVolumeClaimVolumeSource>,
}

/// What the controllers read of `status`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CachedPodStatus {
    pub phase: Option<String>,
    pub reason: Option<String>,
    pub conditions: Option<Vec<PodCondition>>,
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    #[serde(rename = "podIPs")]
    pub pod_ips: Option<Vec<PodIP>>,
    pub start_time: Option<Time>,
    pub qos_class: Option<String>,
    pub container_statuses: Option<Vec<CachedContainerStatus>>,
    pub init_container_statuses: Option<Vec<CachedContainerStatus>>,
}

/// What the controllers read of a container's status.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CachedContainerStatus {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub ready: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub restart_count: i32,
    pub started: Option<bool>,
    pub state: Option<Box<ContainerState>>,
    pub last_state: Option<Box<ContainerState>>,
}

/// A required field sent as `null` decodes as its default, as k8s-openapi
/// decodes it (one odd pod must not stop the pod watch).
fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl k8s_openapi::Resource for CachedPod {
    const API_VERSION: &'static str = <Pod as k8s_openapi::Resource>::API_VERSION;
    const GROUP: &'static str = <Pod as k8s_openapi::Resource>::GROUP;
    const KIND: &'static str = <Pod as k8s_openapi::Resource>::KIND;
    const VERSION: &'static str = <Pod as k8s_openapi::Resource>::VERSION;
    const URL_PATH_SEGMENT: &'static str = <Pod as k8s_openapi::Resource>::URL_PATH_SEGMENT;
    type Scope = <Pod as k8s_openapi::Resource>::Scope;
}

impl k8s_openapi::Metadata for CachedPod {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl From<&Pod> for CachedPod {
    /// The cached form of a whole pod (a pod the controller built or got
    /// back from a write), through its JSON as the watch would send it.
    fn from(pod: &Pod) -> Self {
        // Every field here has the type of the same field in `Pod`, so a
        // serialized pod always decodes; the default is unreachable.
        let mut cached = serde_json::to_value(pod)
            .and_then(serde_json::from_value)
            .unwrap_or_default();
        CachedPod::shrink_to_fit(&mut cached);
        cached
    }
}

impl From<Pod> for CachedPod {
    fn from(pod: Pod) -> Self {
        CachedPod::from(&pod)
    }
}

fn shrink<T>(v: &mut Option<Vec<T>>) {
    if let Some(v) = v {
        v.shrink_to_fit();
    }
}

impl CachedPod {
    /// Drops the spare capacity decoding leaves in lists (serde grows a
    /// list to at least four elements).
    pub fn shrink_to_fit(&mut self) {
        shrink(&mut self.metadata.owner_references);
        shrink(&mut self.metadata.finalizers);
        if let Some(spec) = self.spec.as_mut() {
            spec.containers.shrink_to_fit();
            shrink(&mut spec.init_containers);
            shrink(&mut spec.tolerations);
            shrink(&mut spec.volumes);
            for c in spec
                .containers
                .iter_mut()
                .chain(spec.init_containers.iter_mut().flatten())
            {
                shrink(&mut c.ports);
            }
        }
        if let Some(status) = self.status.as_mut() {
            shrink(&mut status.conditions);
            shrink(&mut status.pod_ips);
            shrink(&mut status.container_statuses);
            shrink(&mut status.init_container_statuses);
        }
    }
}

#[cfg(test)]
mod tests;
