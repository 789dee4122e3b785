//! Resource arithmetic: a node's allocatable, a pod's effective requests
//! (containers summed, init containers by the max rule, sidecars, overhead,
//! pod-level requests) and the "non-zero" requests used for scoring.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as KQuantity;

use crate::quantity::Quantity;

/// Default CPU request (millicores) assumed for scoring a container without one.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Default memory request (bytes) assumed for scoring a container without one.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Amounts of each resource (upstream's `framework.Resource`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub allowed_pod_number: i64,
    /// Extended and hugepages resources, by name.
    pub scalar: BTreeMap<String, i64>,
}

impl Resource {
    /// Reads a `ResourceList` (cpu in millicores, the rest in units).
    pub fn from_list(list: Option<&BTreeMap<String, KQuantity>>) -> Resource {
        let mut r = Resource::default();
        for (name, q) in list.into_iter().flatten() {
            let Some(q) = Quantity::parse(&q.0) else { continue };
            r.set(name, if name == "cpu" { q.milli_value() } else { q.value() });
        }
        r
    }

    fn set(&mut self, name: &str, v: i64) {
        match name {
            "cpu" => self.milli_cpu = v,
            "memory" => self.memory = v,
            "ephemeral-storage" => self.ephemeral_storage = v,
            "pods" => self.allowed_pod_number = v,
            other => {
                self.scalar.insert(other.to_string(), v);
            }
        }
    }

    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.allowed_pod_number += other.allowed_pod_number;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    /// Subtracts `other` from `self`.
    pub fn sub(&mut self, other: &Resource) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.allowed_pod_number -= other.allowed_pod_number;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// Raises each amount of `self` to at least `other`'s.
    pub fn set_max(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        self.allowed_pod_number = self.allowed_pod_number.max(other.allowed_pod_number);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    /// The amount of a named resource (`cpu` in millicores).
    pub fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.milli_cpu,
            "memory" => self.memory,
            "ephemeral-storage" => self.ephemeral_storage,
            "pods" => self.allowed_pod_number,
            other => self.scalar.get(other).copied().unwrap_or(0),
        }
    }

    /// True when no resource is requested.
    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0 && self.memory == 0 && self.ephemeral_storage == 0 && self.scalar.values().all(|v| *v == 0)
    }
}

fn container_requests(c: &Container, non_zero: bool) -> Resource {
    let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
    let mut r = Resource::from_list(requests);
    if non_zero {
        let has = |name: &str| requests.is_some_and(|m| m.contains_key(name));
        if !has("cpu") {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !has("memory") {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

/// A pod's effective requests, as upstream's `resource.PodRequests`: the sum
/// of the app containers and the restartable (sidecar) init containers,
/// raised to each regular init container's request plus the sidecars started
/// before it, then the pod-level requests (when set) replace the aggregate
/// for their resources, and the overhead is added. With `non_zero`, a
/// container missing a cpu or memory request counts the scheduler's default.
pub fn pod_requests(pod: &Pod, non_zero: bool) -> Resource {
    let Some(spec) = &pod.spec else {
        return Resource::default();
    };
    let mut total = Resource::default();
    for c in &spec.containers {
        total.add(&container_requests(c, non_zero));
    }
    let mut sidecars = Resource::default();
    let mut init_max = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let req = container_requests(c, non_zero);
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars.add(&req);
            init_max.set_max(&sidecars);
        } else {
            let mut with_sidecars = req;
            with_sidecars.add(&sidecars);
            init_max.set_max(&with_sidecars);
        }
    }
    total.add(&sidecars);
    total.set_max(&init_max);
    if let Some(level) = spec.resources.as_ref().and_then(|r| r.requests.as_ref()) {
        let level = Resource::from_list(Some(level));
        for name in ["cpu", "memory"] {
            if spec
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .is_some_and(|m| m.contains_key(name))
            {
                total.set(name, level.get(name));
            }
        }
    }
    if let Some(overhead) = &spec.overhead {
        total.add(&Resource::from_list(Some(overhead)));
    }
    total
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    fn c(name: &str, cpu: &str, mem: &str) -> serde_json::Value {
        json!({"name": name, "image": "i", "resources": {"requests": {"cpu": cpu, "memory": mem}}})
    }

    #[test]
    fn containers_sum_and_init_containers_take_the_max() {
        let p = pod(json!({
            "containers": [c("a", "1", "1Gi"), c("b", "500m", "1Gi")],
            "initContainers": [c("i1", "2", "1Gi"), c("i2", "1", "3Gi")],
        }));
        let r = pod_requests(&p, false);
        assert_eq!((r.milli_cpu, r.memory), (2000, 3 << 30));
    }

    #[test]
    fn sidecars_add_up_and_overhead_is_added() {
        let mut sidecar = c("s", "1", "1Gi");
        sidecar["restartPolicy"] = json!("Always");
        let p = pod(json!({
            "containers": [c("a", "1", "1Gi")],
            "initContainers": [sidecar, c("i", "2500m", "1Gi")],
            "overhead": {"cpu": "100m", "memory": "10Mi"},
        }));
        let r = pod_requests(&p, false);
        // max(app 1 + sidecar 1, init 2.5 + sidecar 1) + overhead
        assert_eq!(r.milli_cpu, 3600);
        assert_eq!(r.memory, (2 << 30) + (10 << 20));
    }

    #[test]
    fn non_zero_defaults_for_missing_requests() {
        let p = pod(json!({"containers": [{"name": "a", "image": "i"}, c("b", "0", "0")]}));
        let r = pod_requests(&p, true);
        assert_eq!(
            (r.milli_cpu, r.memory),
            (DEFAULT_MILLI_CPU_REQUEST, DEFAULT_MEMORY_REQUEST)
        );
        assert!(pod_requests(&p, false).is_zero());
    }
}
