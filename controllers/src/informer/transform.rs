//! What an informer keeps of each object it caches, like the transform
//! kube-controller-manager sets on its informer factory: the object as the
//! server sent it minus `metadata.managedFields` (no controller reads field
//! managers, and an update that leaves them out keeps the stored ones), with
//! no spare capacity in the lists decoding grew.
//!
//! Pods are cached as [`CachedPod`], already reduced to what controllers
//! read when decoded; here they only lose spare list capacity.

use std::any::Any;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

use crate::cached_pod::CachedPod;

/// Prepares a decoded object for the cache.
pub(super) fn transform<K: Resource + Any>(obj: &mut K) {
    compact_meta(obj.meta_mut());
    // Decoding grows each list to at least four elements: a cached pod
    // would carry several unused conditions and container statuses.
    if let Some(pod) = (obj as &mut dyn Any).downcast_mut::<CachedPod>() {
        pod.shrink_to_fit();
    }
}

fn shrink<T>(v: &mut Option<Vec<T>>) {
    if let Some(v) = v {
        v.shrink_to_fit();
    }
}

fn compact_meta(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    shrink(&mut meta.owner_references);
    shrink(&mut meta.finalizers);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use k8s_openapi::api::apps::v1::Deployment;
    use serde_json::json;

    use super::*;
    use crate::controllers::pod_status;

    const MANAGED_FIELDS: &str = r#"[{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
        "time": "2026-12-06T08:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {}}}}]"#;

    /// Decoded from text as a watch event is (a `Value` would size lists exactly).
    fn decode<K: serde::de::DeserializeOwned>(v: serde_json::Value) -> K {
        serde_json::from_str(&v.to_string()).unwrap()
    }

    fn running_pod() -> CachedPod {
        decode(json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"},
                "managedFields": serde_json::from_str::<serde_json::Value>(MANAGED_FIELDS).unwrap(),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": true}]},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i", "ports": [{"name": "http", "containerPort": 80}],
                "resources": {"requests": {"cpu": "10m"}}}],
                "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]},
            "status": {
                "phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}],
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-06T08:00:00Z"}],
                "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": true, "restartCount": 2,
                    "state": {"terminated": {"exitCode": 3}}}]
            }
        }))
    }

    #[test]
    fn managed_fields_are_dropped_from_every_kind_and_nothing_else_changes() {
        let mut d: Deployment = decode(json!({
            "metadata": {"name": "d", "namespace": "ns", "finalizers": ["f"],
                "managedFields": serde_json::from_str::<serde_json::Value>(MANAGED_FIELDS).unwrap()},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}}}
        }));
        let mut want = d.clone();
        want.metadata.managed_fields = None;
        transform(&mut d);
        assert_eq!(d, want);
        assert_eq!(d.metadata.finalizers.as_ref().unwrap().capacity(), 1);

        let mut p = running_pod();
        let mut want = p.clone();
        want.metadata.managed_fields = None;
        transform(&mut p);
        assert_eq!(p, want, "a pod keeps everything but its field managers");
    }

    #[test]
    fn cached_pods_keep_no_spare_list_capacity() {
        let mut p = running_pod();
        let status = p.status.as_ref().unwrap();
        assert!(
            status.container_statuses.as_ref().unwrap().capacity() > 1,
            "decoding over-allocates"
        );
        transform(&mut p);
        let status = p.status.as_ref().unwrap();
        assert_eq!(status.container_statuses.as_ref().unwrap().capacity(), 1);
        assert_eq!(status.conditions.as_ref().unwrap().capacity(), 1);
        assert_eq!(status.pod_ips.as_ref().unwrap().capacity(), 1);
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.containers.capacity(), 1);
        assert_eq!(spec.tolerations.as_ref().unwrap().capacity(), 1);
        assert_eq!(spec.containers[0].ports.as_ref().unwrap().capacity(), 1);
        assert_eq!(p.metadata.owner_references.as_ref().unwrap().capacity(), 1);
    }

    #[test]
    fn what_controllers_read_of_a_pod_survives() {
        let mut p = running_pod();
        transform(&mut p);
        assert!(pod_status::is_ready(&p));
        assert!(pod_status::is_active(&p));
        let owner = p.metadata.owner_references.as_ref().unwrap();
        assert_eq!((owner[0].uid.as_str(), owner[0].controller), ("u1", Some(true)));
        let status = p.status.as_ref().unwrap();
        let cs = &status.container_statuses.as_ref().unwrap()[0];
        assert_eq!(cs.restart_count, 2);
        let exit = cs
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| t.exit_code);
        assert_eq!(exit, Some(3));
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("n1"));
        assert_eq!(
            spec.containers[0].ports.as_ref().unwrap()[0].name.as_deref(),
            Some("http")
        );
        assert!(spec.containers[0].resources.as_ref().unwrap().requests.is_some());
    }
}
