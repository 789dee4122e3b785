//! Fields of alpha API features that upstream v1.36 keeps behind feature
//! gates that are off by default, dropped like upstream's
//! `dropDisabled...Fields` helpers: a new object loses them, an update
//! loses them unless the stored object already uses them (so data written
//! while a gate was on survives). rkube runs with upstream's default gates,
//! so JSON and protobuf clients see the same object. The evidence per field
//! is in [`crate::protobuf`]'s module docs.
//!
//! - `PodSpec.schedulingGroup` (`GenericWorkload`),
//! - `PodStatus.nodeAllocatableResourceClaimStatuses` and
//!   `Device.nodeAllocatableResourceMappings` (`DRANodeAllocatableResources`),
//! - `DeviceAttribute.bools|ints|strings|versions` (`DRAListTypeAttributes`).

use serde_json::Value;

use crate::registry::object::Object;

/// The list-valued DeviceAttribute fields of `DRAListTypeAttributes`.
const LIST_ATTRIBUTE_FIELDS: &[&str] = &["bools", "ints", "strings", "versions"];

fn has(obj: Option<&Object>, path: &[&str]) -> bool {
    let mut v = match obj.and_then(|o| o.get(path[0])) {
        Some(v) => v,
        None => return false,
    };
    for k in &path[1..] {
        match v.get(k) {
            Some(next) => v = next,
            None => return false,
        }
    }
    !v.is_null()
}

fn remove(obj: &mut Object, parent: &str, field: &str) {
    if let Some(Value::Object(m)) = obj.get_mut(parent) {
        m.remove(field);
    }
}

/// Drops a Pod's gated fields; `old` is the stored pod on update.
pub fn drop_pod_fields(new: &mut Object, old: Option<&Object>) {
    if !has(old, &["spec", "schedulingGroup"]) {
        remove(new, "spec", "schedulingGroup");
    }
    let claim_statuses = |o: Option<&Object>| {
        o.and_then(|o| o.get("status"))
            .and_then(|s| s.get("nodeAllocatableResourceClaimStatuses"))
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    if !claim_statuses(old) {
        remove(new, "status", "nodeAllocatableResourceClaimStatuses");
    }
}

fn devices(obj: Option<&Object>) -> impl Iterator<Item = &Value> {
    obj.and_then(|o| o.get("spec"))
        .and_then(|s| s.get("devices"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn devices_mut(obj: &mut Object) -> impl Iterator<Item = &mut serde_json::Map<String, Value>> {
    obj.get_mut("spec")
        .and_then(|s| s.get_mut("devices"))
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

fn uses_list_attributes(device: &Value) -> bool {
    device
        .get("attributes")
        .and_then(Value::as_object)
        .is_some_and(|attrs| {
            attrs.values().any(|a| {
                LIST_ATTRIBUTE_FIELDS
                    .iter()
                    .any(|f| a.get(f).is_some_and(|v| !v.is_null()))
            })
        })
}

/// Drops a ResourceSlice's gated fields; `old` is the stored slice on update.
pub fn drop_resource_slice_fields(new: &mut Object, old: Option<&Object>) {
    let mappings_in_use = devices(old).any(|d| d.get("nodeAllocatableResourceMappings").is_some_and(|m| !m.is_null()));
    let lists_in_use = devices(old).any(uses_list_attributes);
    for device in devices_mut(new) {
        if !mappings_in_use {
            device.remove("nodeAllocatableResourceMappings");
        }
        if !lists_in_use && let Some(Value::Object(attrs)) = device.get_mut("attributes") {
            for attr in attrs.values_mut().filter_map(Value::as_object_mut) {
                for f in LIST_ATTRIBUTE_FIELDS {
                    attr.remove(*f);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn pod_fields_dropped_unless_already_in_use() {
        let pod = json!({
            "spec": {"containers": [], "schedulingGroup": {"podGroupName": "g"}},
            "status": {"phase": "Running", "nodeAllocatableResourceClaimStatuses": [{"resourceClaimName": "c"}]},
        });
        let mut created = obj(pod.clone());
        drop_pod_fields(&mut created, None);
        assert_eq!(
            Value::Object(created.clone()),
            json!({"spec": {"containers": []}, "status": {"phase": "Running"}})
        );
        // An update of a pod that never had them: still dropped.
        let mut updated = obj(pod.clone());
        drop_pod_fields(&mut updated, Some(&created));
        assert_eq!(Value::Object(updated), Value::Object(created));
        // Already in use in the stored pod: kept.
        let stored = obj(pod.clone());
        let mut updated = obj(pod.clone());
        drop_pod_fields(&mut updated, Some(&stored));
        assert_eq!(Value::Object(updated), pod);
    }

    #[test]
    fn resource_slice_fields_dropped_unless_already_in_use() {
        let slice = json!({"spec": {"devices": [{
            "name": "gpu-0",
            "attributes": {
                "model": {"string": "a100"},
                "modes": {"strings": ["x", "y"]},
                "ok": {"bools": [true]},
            },
            "nodeAllocatableResourceMappings": {"cpu": {"allocationMultiplier": "2"}},
        }]}});
        let mut created = obj(slice.clone());
        drop_resource_slice_fields(&mut created, None);
        assert_eq!(
            Value::Object(created.clone()),
            json!({"spec": {"devices": [{
                "name": "gpu-0",
                "attributes": {"model": {"string": "a100"}, "modes": {}, "ok": {}},
            }]}})
        );
        let stored = obj(slice.clone());
        let mut updated = obj(slice.clone());
        drop_resource_slice_fields(&mut updated, Some(&stored));
        assert_eq!(Value::Object(updated), slice);
    }

    #[tokio::test]
    async fn a_created_pod_comes_back_without_gated_fields() {
        let s = crate::testing::TestServer::new().await;
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "nginx"}], "schedulingGroup": {"podGroupName": "g"}}});
        let (code, body) = s.post("/api/v1/namespaces/default/pods", pod).await;
        assert_eq!(code, axum::http::StatusCode::CREATED, "{body}");
        assert!(body["spec"].get("schedulingGroup").is_none(), "{body}");
        let (_, stored) = s.get("/api/v1/namespaces/default/pods/p").await;
        assert!(stored["spec"].get("schedulingGroup").is_none(), "{stored}");
    }
}
