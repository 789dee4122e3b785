//! What objects use of a quota (upstream's quota evaluators in
//! `pkg/quota/v1/evaluator/core` and the object-count evaluator), the way
//! the apiserver's ResourceQuota admission charges them: pods (unless
//! terminal) count `pods`, `count/pods` and their compute requests and
//! limits; services count `services`, load balancers and node ports;
//! claims count storage, also per storage class; other kinds count
//! objects. Scoped quotas only cover the pods in every scope.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, ReplicationController, ResourceQuota, Secret, Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as KQuantity;

use super::quantity::Quantity;
use crate::cached_pod::{CachedContainer, CachedPod};

/// Quota resource name -> quantity.
pub type ResourceList = BTreeMap<String, Quantity>;

/// The objects of one namespace the controller counts.
#[derive(Debug, Default)]
pub struct Objects<'a> {
    pub pods: Vec<&'a CachedPod>,
    pub services: Vec<&'a Service>,
    pub claims: Vec<&'a PersistentVolumeClaim>,
    pub config_maps: Vec<&'a ConfigMap>,
    pub secrets: Vec<&'a Secret>,
    pub controllers: Vec<&'a ReplicationController>,
    pub quotas: Vec<&'a ResourceQuota>,
}

fn add(list: &mut ResourceList, name: &str, q: Quantity) {
    let sum = list.get(name).copied().unwrap_or_default().plus(q);
    list.insert(name.to_string(), sum);
}

fn parse_list(list: Option<&BTreeMap<String, KQuantity>>) -> ResourceList {
    list.into_iter()
        .flatten()
        .filter_map(|(k, v)| Quantity::parse(&v.0).map(|q| (k.clone(), q)))
        .collect()
}

/// [`parse_list`] for a cached pod's resources.
fn parse_cached(list: Option<&crate::cached_pod::ResourceList>) -> ResourceList {
    list.into_iter()
        .flat_map(|l| l.iter())
        .filter_map(|(k, v)| Quantity::parse(&v.0).map(|q| (k.clone(), q)))
        .collect()
}

/// Terminal pods use nothing (`QuotaV1Pod`).
fn pod_counts(pod: &CachedPod) -> bool {
    !matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// The pod's effective requests or limits: the containers' sum, raised to
/// any init container's value, plus the pod overhead.
fn pod_total(pod: &CachedPod, limits: bool) -> ResourceList {
    let Some(spec) = pod.spec.as_ref() else {
        return ResourceList::new();
    };
    let of = |c: &CachedContainer| {
        let r = c.resources.as_ref();
        parse_cached(if limits {
            r.and_then(|r| r.limits.as_ref())
        } else {
            r.and_then(|r| r.requests.as_ref())
        })
    };
    let mut total = ResourceList::new();
    for c in &spec.containers {
        for (k, q) in of(c) {
            add(&mut total, &k, q);
        }
    }
    for c in spec.init_containers.iter().flatten() {
        for (k, q) in of(c) {
            if total.get(&k).is_none_or(|t| t.nanos < q.nanos) {
                total.insert(k, q);
            }
        }
    }
    for (k, q) in parse_cached(spec.overhead.as_ref()) {
        if total.contains_key(&k) {
            add(&mut total, &k, q);
        }
    }
    total
}

/// A pod's usage (`podComputeUsageHelper` plus the counts).
pub fn pod_usage(pod: &CachedPod) -> ResourceList {
    let mut usage = ResourceList::new();
    if !pod_counts(pod) {
        return usage;
    }
    usage.insert("pods".into(), Quantity::count(1));
    usage.insert("count/pods".into(), Quantity::count(1));
    for (name, q) in pod_total(pod, false) {
        match name.as_str() {
            "cpu" | "memory" | "ephemeral-storage" => {
                usage.insert(name.clone(), q);
                usage.insert(format!("requests.{name}"), q);
            }
            n if n.starts_with("hugepages-") || n.contains('/') => {
                usage.insert(format!("requests.{n}"), q);
            }
            _ => {}
        }
    }
    for (name, q) in pod_total(pod, true) {
        if matches!(name.as_str(), "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-") {
            usage.insert(format!("limits.{name}"), q);
        }
    }
    usage
}

/// A service's usage.
pub fn service_usage(svc: &Service) -> ResourceList {
    let mut usage = ResourceList::new();
    usage.insert("services".into(), Quantity::count(1));
    usage.insert("count/services".into(), Quantity::count(1));
    let spec = svc.spec.as_ref();
    let ports = spec.and_then(|s| s.ports.as_ref()).map_or(0, Vec::len);
    let ports = Quantity::count(i64::try_from(ports).unwrap_or(i64::MAX));
    match spec.and_then(|s| s.type_.as_deref()) {
        Some("LoadBalancer") => {
            usage.insert("services.loadbalancers".into(), Quantity::count(1));
            usage.insert("services.nodeports".into(), ports);
        }
        Some("NodePort") => {
            usage.insert("services.nodeports".into(), ports);
        }
        _ => {}
    }
    usage
}

/// A claim's usage.
pub fn claim_usage(pvc: &PersistentVolumeClaim) -> ResourceList {
    let mut usage = ResourceList::new();
    usage.insert("persistentvolumeclaims".into(), Quantity::count(1));
    usage.insert("count/persistentvolumeclaims".into(), Quantity::count(1));
    let spec = pvc.spec.as_ref();
    let class = spec.and_then(|s| s.storage_class_name.as_deref()).unwrap_or("");
    let per_class = |r: &str| format!("{class}.storageclass.storage.k8s.io/{r}");
    if !class.is_empty() {
        usage.insert(per_class("persistentvolumeclaims"), Quantity::count(1));
    }
    let requests = parse_list(
        spec.and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref()),
    );
    if let Some(storage) = requests.get("storage") {
        usage.insert("requests.storage".into(), *storage);
        if !class.is_empty() {
            usage.insert(per_class("requests.storage"), *storage);
        }
    }
    usage
}

fn object_count(legacy: Option<&str>, resource: &str) -> ResourceList {
    let mut usage = ResourceList::new();
    usage.insert(format!("count/{resource}"), Quantity::count(1));
    if let Some(l) = legacy {
        usage.insert(l.into(), Quantity::count(1));
    }
    usage
}

fn best_effort(pod: &CachedPod) -> bool {
    pod_total(pod, false).is_empty() && pod_total(pod, true).is_empty()
}

/// Whether `pod` is in one scope (`podMatchesScopeFunc`).
fn pod_in_scope(pod: &CachedPod, scope: &str, operator: &str, values: &[String]) -> bool {
    let spec = pod.spec.as_ref();
    let terminating = spec.and_then(|s| s.active_deadline_seconds).is_some_and(|d| d >= 0);
    match scope {
        "Terminating" => terminating,
        "NotTerminating" => !terminating,
        "BestEffort" => best_effort(pod),
        "NotBestEffort" => !best_effort(pod),
        "PriorityClass" => {
            let class = spec.and_then(|s| s.priority_class_name.as_deref()).unwrap_or("");
            match operator {
                "In" => values.iter().any(|v| v == class),
                "NotIn" => !values.iter().any(|v| v == class),
                "Exists" => !class.is_empty(),
                "DoesNotExist" => class.is_empty(),
                _ => false,
            }
        }
        "CrossNamespacePodAffinity" => {
            let a = spec.and_then(|s| s.affinity.as_ref());
            let cross = |t: &k8s_openapi::api::core::v1::PodAffinityTerm| {
                t.namespace_selector.is_some() || t.namespaces.as_ref().is_some_and(|n| !n.is_empty())
            };
            let affinity = a.and_then(|a| a.pod_affinity.as_ref()).is_some_and(|p| {
                p.required_during_scheduling_ignored_during_execution
                    .iter()
                    .flatten()
                    .any(cross)
                    || p.preferred_during_scheduling_ignored_during_execution
                        .iter()
                        .flatten()
                        .any(|w| cross(&w.pod_affinity_term))
            });
            let anti = a.and_then(|a| a.pod_anti_affinity.as_ref()).is_some_and(|p| {
                p.required_during_scheduling_ignored_during_execution
                    .iter()
                    .flatten()
                    .any(cross)
                    || p.preferred_during_scheduling_ignored_during_execution
                        .iter()
                        .flatten()
                        .any(|w| cross(&w.pod_affinity_term))
            });
            affinity || anti
        }
        _ => false,
    }
}

/// `(scope, operator, values)` of a quota's scopes and scope selector.
fn scopes(quota: &ResourceQuota) -> Vec<(String, String, Vec<String>)> {
    let spec = quota.spec.as_ref();
    let mut out: Vec<(String, String, Vec<String>)> = spec
        .and_then(|s| s.scopes.as_ref())
        .into_iter()
        .flatten()
        .map(|s| (s.clone(), "Exists".into(), Vec::new()))
        .collect();
    for e in spec
        .and_then(|s| s.scope_selector.as_ref())
        .and_then(|s| s.match_expressions.as_ref())
        .into_iter()
        .flatten()
    {
        out.push((
            e.scope_name.clone(),
            e.operator.clone(),
            e.values.clone().unwrap_or_default(),
        ));
    }
    out
}

/// Whether the controller counts the quota resource `name`; other names
/// (`count/deployments.apps`, extended resources of other kinds) are only
/// charged by admission, and their recorded usage is kept.
pub fn is_counted(name: &str) -> bool {
    const COUNTED: &[&str] = &[
        "pods",
        "cpu",
        "memory",
        "ephemeral-storage",
        "services",
        "services.loadbalancers",
        "services.nodeports",
        "persistentvolumeclaims",
        "requests.storage",
        "configmaps",
        "secrets",
        "replicationcontrollers",
        "resourcequotas",
    ];
    const COUNTED_KINDS: &[&str] = &[
        "pods",
        "services",
        "persistentvolumeclaims",
        "configmaps",
        "secrets",
        "replicationcontrollers",
        "resourcequotas",
    ];
    COUNTED.contains(&name)
        || name.strip_prefix("count/").is_some_and(|k| COUNTED_KINDS.contains(&k))
        || name.starts_with("requests.")
        || name.starts_with("limits.")
        || name.contains(".storageclass.storage.k8s.io/")
}

/// The quota's `status.used`: every hard resource, summed over the
/// objects the quota covers.
pub fn calculate(quota: &ResourceQuota, objects: &Objects<'_>) -> ResourceList {
    let hard: Vec<String> = quota
        .spec
        .as_ref()
        .and_then(|s| s.hard.as_ref())
        .map(|h| h.keys().cloned().collect())
        .unwrap_or_default();
    let scopes = scopes(quota);
    let mut total = ResourceList::new();
    let mut charge = |usage: ResourceList| {
        for (k, q) in usage {
            if hard.contains(&k) {
                add(&mut total, &k, q);
            }
        }
    };
    for pod in &objects.pods {
        if scopes.iter().all(|(s, op, v)| pod_in_scope(pod, s, op, v)) {
            charge(pod_usage(pod));
        }
    }
    // Only pods can be in a scope.
    if scopes.is_empty() {
        objects.services.iter().for_each(|s| charge(service_usage(s)));
        objects.claims.iter().for_each(|c| charge(claim_usage(c)));
        for _ in &objects.config_maps {
            charge(object_count(Some("configmaps"), "configmaps"));
        }
        for _ in &objects.secrets {
            charge(object_count(Some("secrets"), "secrets"));
        }
        for _ in &objects.controllers {
            charge(object_count(Some("replicationcontrollers"), "replicationcontrollers"));
        }
        for _ in &objects.quotas {
            charge(object_count(Some("resourcequotas"), "resourcequotas"));
        }
    }
    for k in hard {
        total.entry(k).or_default();
    }
    total
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::{Value, json};

    fn parse<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    fn pod(requests: Value, limits: Value, phase: &str, deadline: Option<i64>) -> CachedPod {
        parse(
            json!({"metadata": {"name": "p"}, "spec": {"activeDeadlineSeconds": deadline, "containers": [
            {"name": "a", "resources": {"requests": requests, "limits": limits}},
            {"name": "b", "resources": {"requests": requests}}]}, "status": {"phase": phase}}),
        )
    }

    fn quota(hard: Value, scopes: Value) -> ResourceQuota {
        parse(json!({"metadata": {"name": "q"}, "spec": {"hard": hard, "scopes": scopes}}))
    }

    #[test]
    fn counted_names() {
        for n in [
            "pods",
            "count/secrets",
            "requests.cpu",
            "limits.memory",
            "gold.storageclass.storage.k8s.io/requests.storage",
        ] {
            assert!(is_counted(n), "{n}");
        }
        for n in ["count/deployments.apps", "count/jobs.batch", "example.com/gpu"] {
            assert!(!is_counted(n), "{n}");
        }
    }

    fn show(l: &ResourceList) -> Vec<String> {
        l.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    #[test]
    fn pods_compute_and_counts() {
        let live = pod(
            json!({"cpu": "250m", "memory": "512Mi"}),
            json!({"cpu": "1"}),
            "Running",
            None,
        );
        let done = pod(json!({"cpu": "1"}), json!({}), "Succeeded", None);
        let q = quota(
            json!({"pods": "10", "count/pods": "10", "requests.cpu": "4", "memory": "4Gi", "limits.cpu": "4",
                   "services": "2", "configmaps": "5"}),
            Value::Null,
        );
        let svc: Service = parse(
            json!({"metadata": {"name": "s"}, "spec": {"type": "NodePort", "ports": [{"port": 1}, {"port": 2}]}}),
        );
        let cm: ConfigMap = parse(json!({"metadata": {"name": "c"}}));
        let objects = Objects {
            pods: vec![&live, &live, &done],
            services: vec![&svc],
            config_maps: vec![&cm],
            ..Objects::default()
        };
        assert_eq!(
            show(&calculate(&q, &objects)),
            [
                "configmaps=1",
                "count/pods=2",
                "limits.cpu=2",
                "memory=2Gi",
                "pods=2",
                "requests.cpu=1",
                "services=1"
            ]
        );
    }

    #[test]
    fn scopes_select_pods_only() {
        let terminating = pod(json!({}), json!({}), "Running", Some(30));
        let long = pod(json!({"cpu": "1"}), json!({}), "Running", None);
        let svc: Service = parse(json!({"metadata": {"name": "s"}}));
        let objects = Objects {
            pods: vec![&terminating, &long],
            services: vec![&svc],
            ..Objects::default()
        };
        let q = quota(json!({"pods": "5", "services": "5"}), json!(["Terminating"]));
        assert_eq!(show(&calculate(&q, &objects)), ["pods=1", "services=0"]);
        let q = quota(json!({"pods": "5"}), json!(["NotBestEffort"]));
        assert_eq!(show(&calculate(&q, &objects)), ["pods=1"]);
    }

    #[test]
    fn claims_and_load_balancers() {
        let pvc: PersistentVolumeClaim = parse(json!({"metadata": {"name": "c"}, "spec": {"storageClassName": "fast",
            "resources": {"requests": {"storage": "5Gi"}}}}));
        let lb: Service =
            parse(json!({"metadata": {"name": "s"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 1}]}}));
        let objects = Objects {
            claims: vec![&pvc, &pvc],
            services: vec![&lb],
            ..Objects::default()
        };
        let q = quota(
            json!({"requests.storage": "20Gi", "fast.storageclass.storage.k8s.io/requests.storage": "10Gi",
                   "persistentvolumeclaims": "3", "services.loadbalancers": "1", "services.nodeports": "3"}),
            Value::Null,
        );
        assert_eq!(
            show(&calculate(&q, &objects)),
            [
                "fast.storageclass.storage.k8s.io/requests.storage=10Gi",
                "persistentvolumeclaims=2",
                "requests.storage=10Gi",
                "services.loadbalancers=1",
                "services.nodeports=1"
            ]
        );
    }
}
