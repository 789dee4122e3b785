//! ResourceQuota (`k8s.io/apiserver/pkg/admission/plugin/resourcequota`):
//! a write's usage is charged to every ResourceQuota of its namespace that
//! covers it, before the write. A quota covers what its `status.hard`
//! names (set by the quota controller from `spec.hard`); usage that would
//! pass a hard limit is refused with upstream's
//! `exceeded quota: <name>, requested: ..., used: ..., limited: ...`.
//! Otherwise the new `status.used` is written to the quota with the quota's
//! resourceVersion as precondition, so concurrent writes never both take
//! the last unit: a conflicting quota is read again and checked again (3
//! retries, as upstream). Dry runs are checked and charge nothing.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::registry::Registry;
use crate::registry::object::{self, Object};
use crate::registry::store::{UpdateOptions, UpdateTarget};
use crate::status::ApiError;

use super::limit_ranger::{ResourceList, resource_list};
use super::quantity::Quantity;
use super::quota_usage::{self, handles_update, matches_resource, names, pod_constraints, quota_matches};
use super::{Attributes, Operation, forbidden};

/// How often conflicting quota updates are checked again.
const RETRIES: usize = 3;

fn applies(attrs: &Attributes<'_>) -> bool {
    if !attrs.subresource.is_empty() || attrs.namespace.is_empty() {
        return false;
    }
    let info = attrs.resource;
    // Events are never charged (upstream's ignored resources).
    if info.resource == "events" && (info.group.is_empty() || info.group == "events.k8s.io") {
        return false;
    }
    match attrs.operation {
        Operation::Create => true,
        Operation::Update => handles_update(info),
        Operation::Delete => false,
    }
}

/// `prettyPrint`: `name=value` pairs sorted by name, comma-separated.
fn pretty(list: &ResourceList) -> String {
    list.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn mask(list: &ResourceList, keep: &BTreeSet<String>) -> ResourceList {
    list.iter()
        .filter(|(k, _)| keep.contains(*k))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

fn status_list(quota: &Object, field: &str) -> ResourceList {
    resource_list(quota.get("status").and_then(|s| s.get(field)))
}

/// The charge of this write: its usage, less the stored object's on
/// update (never below zero), zeros left out.
fn delta(attrs: &Attributes<'_>, obj: &Object) -> Result<ResourceList, String> {
    let mut delta = quota_usage::usage(attrs.resource, obj);
    let negative: Vec<&str> = delta
        .iter()
        .filter(|(_, v)| v.nanos < 0)
        .map(|(k, _)| k.as_str())
        .collect();
    if !negative.is_empty() {
        return Err(format!(
            "quota usage is negative for resource(s): {}",
            negative.join(",")
        ));
    }
    if attrs.operation == Operation::Update
        && let Some(old) = attrs.old
    {
        let before = quota_usage::usage(attrs.resource, old);
        for (k, v) in delta.iter_mut() {
            let prior = before.get(k).copied().unwrap_or(Quantity::ZERO);
            *v = if *v > prior { v.minus(prior) } else { Quantity::ZERO };
        }
    }
    delta.retain(|_, v| !v.is_zero());
    Ok(delta)
}

/// One quota after charging `delta`: the new `status.used`, or the refusal.
fn charge(
    attrs: &Attributes<'_>,
    obj: &Object,
    quota: &Object,
    delta: &ResourceList,
) -> Result<Option<ResourceList>, ApiError> {
    let name = object::name(quota);
    let hard = status_list(quota, "hard");
    let hard_names = names(&hard);
    let restricted: BTreeSet<String> = hard_names
        .iter()
        .filter(|n| matches_resource(attrs.resource, n))
        .cloned()
        .collect();
    let is_pod = attrs.resource.group.is_empty() && attrs.resource.resource == "pods";
    if is_pod && let Some(why) = pod_constraints(obj, &restricted) {
        return Err(forbidden(attrs, Some(obj), &format!("failed quota: {name}: {why}")));
    }
    let used = status_list(quota, "used");
    if restricted.iter().any(|r| !used.contains_key(r)) {
        return Err(forbidden(
            attrs,
            Some(obj),
            &format!(
                "status unknown for quota: {name}, resources: {}",
                restricted.iter().cloned().collect::<Vec<_>>().join(",")
            ),
        ));
    }
    let requested = mask(delta, &hard_names);
    if requested.is_empty() {
        return Ok(None);
    }
    let mut new_used = used.clone();
    for (k, v) in &requested {
        let sum = new_used.get(k).copied().unwrap_or(Quantity::ZERO).plus(*v);
        new_used.insert(k.clone(), sum);
    }
    let exceeded: BTreeSet<String> = requested
        .keys()
        .filter(|k| matches!((new_used.get(*k), hard.get(*k)), (Some(u), Some(h)) if u > h))
        .cloned()
        .collect();
    if !exceeded.is_empty() {
        return Err(forbidden(
            attrs,
            Some(obj),
            &format!(
                "exceeded quota: {name}, requested: {}, used: {}, limited: {}",
                pretty(&mask(&requested, &exceeded)),
                pretty(&mask(&used, &exceeded)),
                pretty(&mask(&hard, &exceeded)),
            ),
        ));
    }
    Ok(Some(new_used))
}

pub async fn validate(registry: &Registry, attrs: &Attributes<'_>, obj: &Object) -> Result<(), ApiError> {
    if !applies(attrs) {
        return Ok(());
    }
    let Some(store) = registry.store("", "resourcequotas") else {
        return Ok(());
    };
    let listed = store.list_cached_objects("admission.quotas", attrs.namespace).await?;
    let mut quotas: Vec<Object> = listed
        .iter()
        .filter(|q| quota_matches(q, attrs.resource, obj))
        .cloned()
        .collect();
    if quotas.is_empty() {
        return Ok(());
    }
    let delta = delta(attrs, obj).map_err(|why| forbidden(attrs, Some(obj), &why))?;
    if delta.is_empty() {
        return Ok(());
    }
    for attempt in 0..=RETRIES {
        let mut failed = Vec::new();
        for quota in &quotas {
            let Some(new_used) = charge(attrs, obj, quota, &delta)? else {
                continue;
            };
            if attrs.dry_run {
                continue;
            }
            match write_used(registry, quota, &new_used).await {
                Ok(()) => {}
                Err(e) if e.code == 409 => failed.push(object::name(quota).to_string()),
                Err(e) => return Err(e),
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        if attempt == RETRIES {
            break;
        }
        // Check the quotas that moved again, as they are now.
        let mut fresh = Vec::new();
        for name in failed {
            match store.get(attrs.namespace, &name).await {
                Ok(q) => fresh.push(q),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        quotas = fresh;
    }
    Err(ApiError::conflict(
        crate::status::GroupResource {
            group: "",
            resource: "resourcequotas",
        },
        "",
        "too many concurrent updates to the namespace's quotas; please try again",
    ))
}

/// Writes `used` as the quota's `status.used`, if the quota is still at the
/// version that was checked.
async fn write_used(registry: &Registry, quota: &Object, used: &ResourceList) -> Result<(), ApiError> {
    let Some(store) = registry.store("", "resourcequotas") else {
        return Ok(());
    };
    let used: Map<String, Value> = used
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.to_string())))
        .collect();
    let opts = UpdateOptions {
        dry_run: false,
        target: UpdateTarget::Status,
    };
    store
        .update_with(
            object::namespace(quota),
            object::name(quota),
            &opts,
            |current| {
                let mut new = current.clone();
                let status = new.entry("status").or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(status) = status {
                    status.insert("used".into(), Value::Object(used.clone()));
                }
                Ok(new)
            },
            Some(object::resource_version(quota)),
        )
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;
    use crate::authn::UserInfo;
    use crate::resources::ResourceTable;

    fn obj(v: Value) -> Object {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn check(resource: &str, o: Value, quota: Value) -> Result<Option<Value>, String> {
        let info = ResourceTable::builtin().get("", "v1", resource).unwrap().clone();
        let user = UserInfo::default();
        let attrs = Attributes {
            operation: Operation::Create,
            user: &user,
            namespace: "ns",
            name: "",
            resource: &info,
            subresource: "",
            old: None,
            dry_run: false,
            lookups: &Default::default(),
        };
        let o = obj(o);
        let d = delta(&attrs, &o).map_err(|e| e.to_string())?;
        charge(&attrs, &o, &obj(quota), &d)
            .map(|u| {
                u.map(|u| {
                    json!(
                        u.iter()
                            .map(|(k, v)| (k.clone(), Value::String(v.to_string())))
                            .collect::<Map<_, _>>()
                    )
                })
            })
            .map_err(|e| e.message)
    }

    fn quota(hard: Value, used: Value) -> Value {
        json!({"metadata": {"name": "q"}, "status": {"hard": hard, "used": used}})
    }

    fn pod(cpu: &str) -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}, "limits": {"cpu": cpu}}}]}})
    }

    #[test]
    fn charges_pods_and_compute() {
        let q = quota(
            json!({"pods": "2", "requests.cpu": "1", "count/pods": "5"}),
            json!({"pods": "1", "requests.cpu": "500m", "count/pods": "1"}),
        );
        assert_eq!(
            check("pods", pod("250m"), q.clone()),
            Ok(Some(json!({"pods": "2", "requests.cpu": "750m", "count/pods": "2"})))
        );
        assert_eq!(
            check("pods", pod("600m"), q),
            Err("pods \"p\" is forbidden: exceeded quota: q, requested: requests.cpu=600m, used: requests.cpu=500m, limited: requests.cpu=1".into())
        );
    }

    #[test]
    fn counts_objects_and_reports_unknown_status() {
        let cm = json!({"metadata": {"name": "c"}});
        let q = quota(
            json!({"configmaps": "1", "count/configmaps": "1"}),
            json!({"configmaps": "1", "count/configmaps": "0"}),
        );
        assert_eq!(
            check("configmaps", cm.clone(), q),
            Err("configmaps \"c\" is forbidden: exceeded quota: q, requested: configmaps=1, used: configmaps=1, limited: configmaps=1".into())
        );
        let unknown = quota(json!({"count/configmaps": "1"}), json!({}));
        assert_eq!(
            check("configmaps", cm.clone(), unknown),
            Err("configmaps \"c\" is forbidden: status unknown for quota: q, resources: count/configmaps".into())
        );
        // A quota on other things does not charge a ConfigMap.
        assert_eq!(
            check("configmaps", cm, quota(json!({"pods": "1"}), json!({"pods": "1"}))),
            Ok(None)
        );
    }

    #[test]
    fn cpu_quota_needs_container_requests() {
        let q = quota(
            json!({"requests.cpu": "1", "limits.memory": "1Gi"}),
            json!({"requests.cpu": "0", "limits.memory": "0"}),
        );
        let bare = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(
            check("pods", bare, q),
            Err(
                "pods \"p\" is forbidden: failed quota: q: must specify limits.memory for: a,b; requests.cpu for: a,b"
                    .into()
            )
        );
    }

    #[test]
    fn scoped_quotas_match_pods_only() {
        let info = ResourceTable::builtin().get("", "v1", "pods").unwrap().clone();
        let q = obj(json!({"spec": {"scopes": ["BestEffort"]}}));
        assert!(quota_matches(
            &q,
            &info,
            &obj(json!({"spec": {"containers": [{"name": "a"}]}}))
        ));
        assert!(!quota_matches(&q, &info, &obj(pod("1"))));
        let cm = ResourceTable::builtin().get("", "v1", "configmaps").unwrap().clone();
        assert!(!quota_matches(&q, &cm, &obj(json!({}))));
    }
}
