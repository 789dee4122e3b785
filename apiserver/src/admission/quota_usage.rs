//! What an object costs a ResourceQuota (upstream's quota evaluators in
//! `pkg/quota/v1/evaluator/core` and the generic object counter): which
//! quota resource names an evaluator answers for, an object's usage, the
//! pod constraints (a quota on cpu or memory needs every container to say
//! how much) and the quota scopes a pod matches.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::registry::object::Object;
use crate::resources::ResourceInfo;

use super::limit_ranger::{ResourceList, pod_total, resource_list};
use super::quantity::Quantity;
use super::str_at;

/// `count/<resource>[.<group>]`.
pub fn count_name(info: &ResourceInfo) -> String {
    if info.group.is_empty() {
        format!("count/{}", info.resource)
    } else {
        format!("count/{}.{}", info.resource, info.group)
    }
}

/// Core resources with a legacy object-count name (`services`, `secrets`, ...).
fn legacy_count(info: &ResourceInfo) -> Option<&'static str> {
    if !info.group.is_empty() {
        return None;
    }
    Some(match info.resource.as_str() {
        "services" => "services",
        "secrets" => "secrets",
        "configmaps" => "configmaps",
        "replicationcontrollers" => "replicationcontrollers",
        "resourcequotas" => "resourcequotas",
        "persistentvolumeclaims" => "persistentvolumeclaims",
        _ => return None,
    })
}

/// Pod compute resources quota can name without a prefix.
const POD_COMPUTE: &[&str] = &[
    "pods",
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
];

/// Whether `name` (a quota's hard resource) is one the evaluator of
/// `info` charges.
pub fn matches_resource(info: &ResourceInfo, name: &str) -> bool {
    if name == count_name(info) || legacy_count(info) == Some(name) {
        return true;
    }
    match (info.group.as_str(), info.resource.as_str()) {
        ("", "pods") => {
            POD_COMPUTE.contains(&name)
                || name.starts_with("hugepages-")
                || name.starts_with("requests.hugepages-")
                || name.starts_with("limits.hugepages-")
                // Extended resources are quota'd by their request only.
                || name.strip_prefix("requests.").is_some_and(|r| r.contains('/'))
        }
        ("", "services") => matches!(name, "services.nodeports" | "services.loadbalancers"),
        ("", "persistentvolumeclaims") => {
            name == "requests.storage"
                || name.ends_with(".storageclass.storage.k8s.io/requests.storage")
                || name.ends_with(".storageclass.storage.k8s.io/persistentvolumeclaims")
        }
        _ => false,
    }
}

/// Whether an evaluator exists for the operation: every resource is
/// counted on create; services and claims are charged again on update.
pub fn handles_update(info: &ResourceInfo) -> bool {
    info.group.is_empty() && matches!(info.resource.as_str(), "services" | "persistentvolumeclaims")
}

fn add(list: &mut ResourceList, name: &str, q: Quantity) {
    let sum = list.get(name).copied().unwrap_or(Quantity::ZERO).plus(q);
    list.insert(name.to_string(), sum);
}

/// A pod past its life (terminal phase) only counts as an object.
fn pod_is_live(pod: &Object) -> bool {
    !matches!(str_at(pod, &["status", "phase"]), "Succeeded" | "Failed")
}

/// `podComputeUsageHelper`: the quota names a pod's requests and limits fill.
fn pod_compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut usage = ResourceList::new();
    usage.insert("pods".into(), Quantity::count(1));
    for (name, q) in requests {
        match name.as_str() {
            "cpu" | "memory" | "ephemeral-storage" => {
                usage.insert(name.clone(), *q);
                usage.insert(format!("requests.{name}"), *q);
            }
            n if n.starts_with("hugepages-") => {
                usage.insert(format!("requests.{n}"), *q);
            }
            n if n.contains('/') => {
                usage.insert(format!("requests.{n}"), *q);
            }
            _ => {}
        }
    }
    for (name, q) in limits {
        if matches!(name.as_str(), "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-") {
            usage.insert(format!("limits.{name}"), *q);
        }
    }
    usage
}

/// What `obj` of `info` costs.
pub fn usage(info: &ResourceInfo, obj: &Object) -> ResourceList {
    let mut usage = ResourceList::new();
    add(&mut usage, &count_name(info), Quantity::count(1));
    if let Some(legacy) = legacy_count(info) {
        add(&mut usage, legacy, Quantity::count(1));
    }
    match (info.group.as_str(), info.resource.as_str()) {
        ("", "pods") if pod_is_live(obj) => {
            let compute = pod_compute_usage(&pod_total(obj, "requests"), &pod_total(obj, "limits"));
            usage.extend(compute);
        }
        ("", "services") => {
            let ports = obj
                .get("spec")
                .and_then(|s| s.get("ports"))
                .and_then(Value::as_array)
                .map_or(0, Vec::len) as i64;
            match str_at(obj, &["spec", "type"]) {
                "LoadBalancer" => {
                    add(&mut usage, "services.loadbalancers", Quantity::count(1));
                    add(&mut usage, "services.nodeports", Quantity::count(ports));
                }
                "NodePort" => add(&mut usage, "services.nodeports", Quantity::count(ports)),
                _ => {}
            }
        }
        ("", "persistentvolumeclaims") => {
            let requests = resource_list(
                obj.get("spec")
                    .and_then(|s| s.get("resources"))
                    .and_then(|r| r.get("requests")),
            );
            let class = str_at(obj, &["spec", "storageClassName"]);
            if !class.is_empty() {
                add(
                    &mut usage,
                    &format!("{class}.storageclass.storage.k8s.io/persistentvolumeclaims"),
                    Quantity::count(1),
                );
            }
            if let Some(storage) = requests.get("storage") {
                add(&mut usage, "requests.storage", *storage);
                if !class.is_empty() {
                    add(
                        &mut usage,
                        &format!("{class}.storageclass.storage.k8s.io/requests.storage"),
                        *storage,
                    );
                }
            }
        }
        _ => {}
    }
    usage
}

/// The quota names that make every container state its own value.
const MUST_SPECIFY: &[&str] = &[
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

/// The pod evaluator's `Constraints`: with cpu or memory quota'd, every
/// container and init container must request (or limit) it.
pub fn pod_constraints(pod: &Object, required: &BTreeSet<String>) -> Option<String> {
    let required: BTreeSet<&str> = required
        .iter()
        .map(String::as_str)
        .filter(|r| MUST_SPECIFY.contains(r))
        .collect();
    if required.is_empty() {
        return None;
    }
    let mut missing: std::collections::BTreeMap<&str, BTreeSet<String>> = Default::default();
    for field in ["containers", "initContainers"] {
        let containers = pod
            .get("spec")
            .and_then(|s| s.get(field))
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for c in containers {
            let resources = c.get("resources");
            let requests = resource_list(resources.and_then(|r| r.get("requests")));
            let limits = resource_list(resources.and_then(|r| r.get("limits")));
            let has = pod_compute_usage(&requests, &limits);
            for r in &required {
                if !has.contains_key(*r) {
                    let name = c.get("name").and_then(Value::as_str).unwrap_or("").to_string();
                    missing.entry(r).or_default().insert(name);
                }
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|(r, names)| format!("{r} for: {}", names.iter().cloned().collect::<Vec<_>>().join(",")))
        .collect();
    Some(format!("must specify {}", parts.join("; ")))
}

/// Whether a pod is BestEffort: no container requests or limits anything.
fn best_effort(pod: &Object) -> bool {
    ["containers", "initContainers"].iter().all(|f| {
        pod.get("spec")
            .and_then(|s| s.get(*f))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .all(|c| {
                let r = c.get("resources");
                resource_list(r.and_then(|r| r.get("requests"))).is_empty()
                    && resource_list(r.and_then(|r| r.get("limits"))).is_empty()
            })
    })
}

/// Whether `pod` is in one quota scope (`podMatchesScopeFunc`).
fn pod_in_scope(pod: &Object, scope: &str, operator: &str, values: &[String]) -> bool {
    let terminating = pod
        .get("spec")
        .and_then(|s| s.get("activeDeadlineSeconds"))
        .and_then(Value::as_i64)
        .is_some_and(|d| d >= 0);
    match scope {
        "Terminating" => terminating,
        "NotTerminating" => !terminating,
        "BestEffort" => best_effort(pod),
        "NotBestEffort" => !best_effort(pod),
        "PriorityClass" => {
            let class = str_at(pod, &["spec", "priorityClassName"]);
            match operator {
                "In" => values.iter().any(|v| v == class),
                "NotIn" => !values.iter().any(|v| v == class),
                "Exists" => !class.is_empty(),
                "DoesNotExist" => class.is_empty(),
                _ => false,
            }
        }
        "CrossNamespacePodAffinity" => {
            let affinity = pod.get("spec").and_then(|s| s.get("affinity"));
            ["podAffinity", "podAntiAffinity"].iter().any(|kind| {
                let terms = affinity.and_then(|a| a.get(*kind));
                let required = terms
                    .and_then(|t| t.get("requiredDuringSchedulingIgnoredDuringExecution"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten();
                let preferred = terms
                    .and_then(|t| t.get("preferredDuringSchedulingIgnoredDuringExecution"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|w| w.get("podAffinityTerm"));
                required.chain(preferred).any(|t| {
                    t.get("namespaceSelector").is_some()
                        || t.get("namespaces")
                            .and_then(Value::as_array)
                            .is_some_and(|n| !n.is_empty())
                })
            })
        }
        _ => false,
    }
}

/// Whether a quota's scopes (and scopeSelector) cover `obj`; only pods
/// match a scoped quota.
pub fn quota_matches(quota: &Object, info: &ResourceInfo, obj: &Object) -> bool {
    let spec = quota.get("spec");
    let mut scopes: Vec<(String, String, Vec<String>)> = spec
        .and_then(|s| s.get("scopes"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| (s.to_string(), "Exists".to_string(), Vec::new()))
        .collect();
    let selector = spec
        .and_then(|s| s.get("scopeSelector"))
        .and_then(|s| s.get("matchExpressions"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for e in selector {
        let values = e
            .get("values")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).map(String::from).collect())
            .unwrap_or_default();
        scopes.push((
            e.get("scopeName").and_then(Value::as_str).unwrap_or("").to_string(),
            e.get("operator").and_then(Value::as_str).unwrap_or("").to_string(),
            values,
        ));
    }
    if scopes.is_empty() {
        return true;
    }
    let is_pod = info.group.is_empty() && info.resource == "pods";
    is_pod
        && scopes
            .iter()
            .all(|(scope, op, values)| pod_in_scope(obj, scope, op, values))
}

/// `quota.ToSet(names)` of a resource list.
pub fn names(list: &ResourceList) -> BTreeSet<String> {
    list.keys().cloned().collect()
}
