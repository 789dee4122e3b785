//! LimitRanger (`plugin/pkg/admission/limitranger`) for pods (on create) and
//! PersistentVolumeClaims (create and update), against every LimitRange of
//! the namespace:
//!
//! - mutating: a Container item's `default` and `defaultRequest` fill the
//!   limits and requests a container or init container leaves out, recorded
//!   in the `kubernetes.io/limit-ranger` annotation;
//! - validating: `min`, `max` and `maxLimitRequestRatio` of Container items
//!   per container, of Pod items on the pod's totals, and `min`/`max` of
//!   PersistentVolumeClaim items on the claim's storage request, with
//!   upstream's messages, all of them in one Forbidden.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::registry::Registry;
use crate::registry::object::{self, Object};
use crate::status::ApiError;

use super::quantity::Quantity;
use super::{Attributes, Operation, forbidden};

const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// A resource list (`{cpu: 500m, memory: 1Gi}`); unparsable values are left out.
pub type ResourceList = BTreeMap<String, Quantity>;

pub fn resource_list(v: Option<&Value>) -> ResourceList {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), Quantity::parse(v.as_str()?)?)))
                .collect()
        })
        .unwrap_or_default()
}

/// `DefaultLimitRangerActions.SupportsAttributes`: pods on create only
/// (containers cannot change later), claims on create and update.
fn applies(attrs: &Attributes<'_>) -> bool {
    if !attrs.subresource.is_empty() || attrs.operation == Operation::Delete {
        return false;
    }
    if attrs.is("", "pods") {
        return attrs.operation == Operation::Create;
    }
    attrs.is("", "persistentvolumeclaims")
}

/// The limit items of `range` of type `kind`.
fn items<'a>(range: &'a Object, kind: &'a str) -> impl Iterator<Item = &'a Map<String, Value>> + 'a {
    range
        .get("spec")
        .and_then(|s| s.get("limits"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter(move |i| i.get("type").and_then(Value::as_str) == Some(kind))
}

/// Whether an update is to an object being deleted (left alone upstream).
fn deleting(attrs: &Attributes<'_>) -> bool {
    attrs.old.is_some_and(object::is_terminating)
}

pub async fn admit(registry: &Registry, attrs: &Attributes<'_>, obj: &mut Object) -> Result<(), ApiError> {
    if !applies(attrs) || deleting(attrs) || !attrs.is("", "pods") {
        return Ok(());
    }
    for range in attrs.lookups.limit_ranges(registry, attrs.namespace).await? {
        default_pod_resources(range, obj);
    }
    Ok(())
}

/// `PodMutateLimitFunc`: one range's Container defaults merged into the pod.
fn default_pod_resources(range: &Object, pod: &mut Object) {
    let mut default_limits = Map::new();
    let mut default_requests = Map::new();
    for item in items(range, "Container") {
        if let Some(d) = item.get("default").and_then(Value::as_object) {
            default_limits.extend(d.clone());
        }
        if let Some(d) = item.get("defaultRequest").and_then(Value::as_object) {
            default_requests.extend(d.clone());
        }
    }
    if default_limits.is_empty() && default_requests.is_empty() {
        return;
    }
    let mut notes = Vec::new();
    if let Some(Value::Object(spec)) = pod.get_mut("spec") {
        for (field, label) in [("containers", "container"), ("initContainers", "init container")] {
            let Some(Value::Array(containers)) = spec.get_mut(field) else {
                continue;
            };
            for c in containers.iter_mut().filter_map(Value::as_object_mut) {
                let name = c.get("name").and_then(Value::as_str).unwrap_or("").to_string();
                let resources = c.entry("resources").or_insert_with(|| Value::Object(Map::new()));
                let Value::Object(resources) = resources else { continue };
                let set_requests = merge(resources, "requests", &default_requests);
                let set_limits = merge(resources, "limits", &default_limits);
                if !set_requests.is_empty() {
                    notes.push(format!("{} request for {label} {name}", set_requests.join(", ")));
                }
                if !set_limits.is_empty() {
                    notes.push(format!("{} limit for {label} {name}", set_limits.join(", ")));
                }
            }
        }
    }
    if !notes.is_empty() {
        let meta = object::meta_mut(pod);
        let annotations = meta.entry("annotations").or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(a) = annotations {
            a.insert(
                ANNOTATION.into(),
                Value::String(format!("LimitRanger plugin set: {}", notes.join("; "))),
            );
        }
    }
}

/// Sets the defaults a list lacks; returns the names set, sorted.
fn merge(resources: &mut Map<String, Value>, field: &str, defaults: &Map<String, Value>) -> Vec<String> {
    if defaults.is_empty() {
        return Vec::new();
    }
    let list = resources.entry(field).or_insert_with(|| Value::Object(Map::new()));
    if !list.is_object() {
        *list = Value::Object(Map::new());
    }
    let Value::Object(list) = list else { return Vec::new() };
    let mut set: Vec<String> = Vec::new();
    for (k, v) in defaults {
        if !list.contains_key(k) {
            list.insert(k.clone(), v.clone());
            set.push(k.clone());
        }
    }
    set.sort();
    set
}

pub async fn validate(registry: &Registry, attrs: &Attributes<'_>, obj: &Object) -> Result<(), ApiError> {
    if !applies(attrs) || deleting(attrs) {
        return Ok(());
    }
    let pod = attrs.is("", "pods");
    for range in attrs.lookups.limit_ranges(registry, attrs.namespace).await? {
        let errors = if pod {
            pod_errors(range, obj)
        } else {
            claim_errors(range, obj)
        };
        if !errors.is_empty() {
            return Err(forbidden(attrs, Some(obj), &aggregate(errors)));
        }
    }
    Ok(())
}

/// `utilerrors.NewAggregate(errs).Error()`: one message as is, several in
/// brackets, duplicates dropped.
pub fn aggregate(errors: Vec<String>) -> String {
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<String> = errors.into_iter().filter(|e| seen.insert(e.clone())).collect();
    if unique.len() == 1 {
        unique.into_iter().next().unwrap_or_default()
    } else {
        format!("[{}]", unique.join(", "))
    }
}

/// Values compared in milli-units, unless one is too large for them.
fn observed(req: Option<Quantity>, lim: Option<Quantity>, enforced: Quantity) -> (i128, i128, i128) {
    const MAX_MILLI: i128 = i64::MAX as i128 / 1000;
    let r = req.unwrap_or(Quantity::ZERO);
    let l = lim.unwrap_or(Quantity::ZERO);
    if [r, l, enforced].iter().all(|q| q.value() <= MAX_MILLI) {
        (r.milli_value(), l.milli_value(), enforced.milli_value())
    } else {
        (r.value(), l.value(), enforced.value())
    }
}

fn min_constraint(
    kind: &str,
    name: &str,
    enforced: Quantity,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let req = requests.get(name).copied();
    let lim = limits.get(name).copied();
    let (r, l, e) = observed(req, lim, enforced);
    let Some(req) = req else {
        return Some(format!(
            "minimum {name} usage per {kind} is {enforced}.  No request is specified"
        ));
    };
    if r < e {
        return Some(format!(
            "minimum {name} usage per {kind} is {enforced}, but request is {req}"
        ));
    }
    if let Some(lim) = lim
        && l < e
    {
        return Some(format!(
            "minimum {name} usage per {kind} is {enforced}, but limit is {lim}"
        ));
    }
    None
}

fn max_constraint(
    kind: &str,
    name: &str,
    enforced: Quantity,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let req = requests.get(name).copied();
    let lim = limits.get(name).copied();
    let (r, l, e) = observed(req, lim, enforced);
    let Some(lim) = lim else {
        return Some(format!(
            "maximum {name} usage per {kind} is {enforced}.  No limit is specified"
        ));
    };
    if l > e {
        return Some(format!(
            "maximum {name} usage per {kind} is {enforced}, but limit is {lim}"
        ));
    }
    if let Some(req) = req
        && r > e
    {
        return Some(format!(
            "maximum {name} usage per {kind} is {enforced}, but request is {req}"
        ));
    }
    None
}

fn max_request_constraint(kind: &str, name: &str, enforced: Quantity, requests: &ResourceList) -> Option<String> {
    let req = requests.get(name).copied();
    let (r, _, e) = observed(req, None, enforced);
    let Some(req) = req else {
        return Some(format!(
            "maximum {name} usage per {kind} is {enforced}.  No request is specified"
        ));
    };
    (r > e).then(|| format!("maximum {name} usage per {kind} is {enforced}, but request is {req}"))
}

fn ratio_constraint(
    kind: &str,
    name: &str,
    enforced: Quantity,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let req = requests.get(name).copied();
    let lim = limits.get(name).copied();
    let (r, l, _) = observed(req, lim, enforced);
    if req.is_none() || r == 0 {
        return Some(format!(
            "{name} max limit to request ratio per {kind} is {enforced}, but no request is specified or request is 0"
        ));
    }
    if lim.is_none() || l == 0 {
        return Some(format!(
            "{name} max limit to request ratio per {kind} is {enforced}, but no limit is specified or limit is 0"
        ));
    }
    let ratio = l as f64 / r as f64;
    let (observed_ratio, max_ratio) = if enforced.value() <= i64::MAX as i128 / 1000 {
        (ratio * 1000.0, enforced.milli_value() as f64)
    } else {
        (ratio, enforced.value() as f64)
    };
    (observed_ratio > max_ratio).then(|| {
        format!("{name} max limit to request ratio per {kind} is {enforced}, but provided ratio is {ratio:.6}")
    })
}

/// min, max and maxLimitRequestRatio of one item against requests and limits.
fn item_errors(kind: &str, item: &Map<String, Value>, requests: &ResourceList, limits: &ResourceList) -> Vec<String> {
    let mut errors = Vec::new();
    for (k, v) in resource_list(item.get("min")) {
        errors.extend(min_constraint(kind, &k, v, requests, limits));
    }
    for (k, v) in resource_list(item.get("max")) {
        errors.extend(max_constraint(kind, &k, v, requests, limits));
    }
    for (k, v) in resource_list(item.get("maxLimitRequestRatio")) {
        errors.extend(ratio_constraint(kind, &k, v, requests, limits));
    }
    errors
}

fn containers<'a>(pod: &'a Object, field: &str) -> Vec<&'a Map<String, Value>> {
    pod.get("spec")
        .and_then(|s| s.get(field))
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default()
}

fn container_resources(c: &Map<String, Value>, which: &str) -> ResourceList {
    resource_list(c.get("resources").and_then(|r| r.get(which)))
}

/// The pod's effective requests or limits: the sum over containers, or the
/// largest init container's when larger (`podRequests` / `podLimits`).
pub fn pod_total(pod: &Object, which: &str) -> ResourceList {
    let mut total = ResourceList::new();
    for c in containers(pod, "containers") {
        for (k, v) in container_resources(c, which) {
            let sum = total.get(&k).copied().unwrap_or(Quantity::ZERO).plus(v);
            total.insert(k, sum);
        }
    }
    for c in containers(pod, "initContainers") {
        for (k, v) in container_resources(c, which) {
            if total.get(&k).is_none_or(|t| v > *t) {
                total.insert(k, v);
            }
        }
    }
    total
}

/// `PodValidateLimitFunc` for one range.
fn pod_errors(range: &Object, pod: &Object) -> Vec<String> {
    let mut errors = Vec::new();
    for item in items(range, "Container") {
        for field in ["containers", "initContainers"] {
            for c in containers(pod, field) {
                let requests = container_resources(c, "requests");
                let limits = container_resources(c, "limits");
                errors.extend(item_errors("Container", item, &requests, &limits));
            }
        }
    }
    for item in items(range, "Pod") {
        let requests = pod_total(pod, "requests");
        let limits = pod_total(pod, "limits");
        errors.extend(item_errors("Pod", item, &requests, &limits));
    }
    errors
}

/// `PersistentVolumeClaimValidateLimitFunc` for one range.
fn claim_errors(range: &Object, claim: &Object) -> Vec<String> {
    let requests = resource_list(
        claim
            .get("spec")
            .and_then(|s| s.get("resources"))
            .and_then(|r| r.get("requests")),
    );
    let mut errors = Vec::new();
    for item in items(range, "PersistentVolumeClaim") {
        for (k, v) in resource_list(item.get("min")) {
            errors.extend(min_constraint(
                "PersistentVolumeClaim",
                &k,
                v,
                &requests,
                &ResourceList::new(),
            ));
        }
        for (k, v) in resource_list(item.get("max")) {
            errors.extend(max_request_constraint("PersistentVolumeClaim", &k, v, &requests));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Object {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn range(limits: Value) -> Object {
        obj(json!({"metadata": {"name": "lr"}, "spec": {"limits": limits}}))
    }

    fn pod(containers: Value) -> Object {
        obj(json!({"metadata": {"name": "p"}, "spec": {"containers": containers}}))
    }

    #[test]
    fn defaults_fill_what_containers_leave_out() {
        let r = range(
            json!([{"type": "Container", "default": {"cpu": "500m", "memory": "1Gi"},
                               "defaultRequest": {"cpu": "100m", "memory": "256Mi"}}]),
        );
        let mut p = pod(json!([
            {"name": "a"},
            {"name": "b", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}},
        ]));
        default_pod_resources(&r, &mut p);
        assert_eq!(
            p["spec"]["containers"][0]["resources"],
            json!({"limits": {"cpu": "500m", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "256Mi"}})
        );
        assert_eq!(
            p["spec"]["containers"][1]["resources"]["limits"],
            json!({"cpu": "1", "memory": "1Gi"})
        );
        assert_eq!(
            p["metadata"]["annotations"][ANNOTATION],
            "LimitRanger plugin set: cpu, memory request for container a; cpu, memory limit for container a; memory request for container b; memory limit for container b"
        );
    }

    #[test]
    fn container_min_max_and_ratio() {
        let r = range(
            json!([{"type": "Container", "min": {"cpu": "100m"}, "max": {"cpu": "1", "memory": "1Gi"},
                               "maxLimitRequestRatio": {"cpu": "2"}}]),
        );
        let p = pod(
            json!([{"name": "a", "resources": {"requests": {"cpu": "50m", "memory": "1Gi"},
                                                     "limits": {"cpu": "2", "memory": "2Gi"}}}]),
        );
        assert_eq!(
            pod_errors(&r, &p),
            vec![
                "minimum cpu usage per Container is 100m, but request is 50m",
                "maximum cpu usage per Container is 1, but limit is 2",
                "maximum memory usage per Container is 1Gi, but limit is 2Gi",
                "cpu max limit to request ratio per Container is 2, but provided ratio is 40.000000",
            ]
        );
        let ok = pod(
            json!([{"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                                                      "limits": {"cpu": "1", "memory": "1Gi"}}}]),
        );
        assert!(pod_errors(&r, &ok).is_empty());
        let none = pod(json!([{"name": "a"}]));
        assert_eq!(
            pod_errors(&r, &none),
            vec![
                "minimum cpu usage per Container is 100m.  No request is specified",
                "maximum cpu usage per Container is 1.  No limit is specified",
                "maximum memory usage per Container is 1Gi.  No limit is specified",
                "cpu max limit to request ratio per Container is 2, but no request is specified or request is 0",
            ]
        );
    }

    #[test]
    fn pod_items_use_totals() {
        let r = range(json!([{"type": "Pod", "max": {"memory": "1Gi"}}]));
        let p = pod(json!([
            {"name": "a", "resources": {"limits": {"memory": "512Mi"}}},
            {"name": "b", "resources": {"limits": {"memory": "768Mi"}}},
        ]));
        assert_eq!(
            pod_errors(&r, &p),
            vec!["maximum memory usage per Pod is 1Gi, but limit is 1280Mi"]
        );
    }

    #[test]
    fn claims_against_storage_bounds() {
        let r =
            range(json!([{"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "10Gi"}}]));
        let claim = |s: &str| obj(json!({"spec": {"resources": {"requests": {"storage": s}}}}));
        assert_eq!(
            claim_errors(&r, &claim("20Gi")),
            vec!["maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi"]
        );
        assert_eq!(
            claim_errors(&r, &claim("500Mi")),
            vec!["minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"]
        );
        assert!(claim_errors(&r, &claim("5Gi")).is_empty());
    }

    #[test]
    fn aggregates_like_upstream() {
        assert_eq!(aggregate(vec!["a".into()]), "a");
        assert_eq!(aggregate(vec!["a".into(), "b".into(), "a".into()]), "[a, b]");
    }
}
