#![allow(clippy::unwrap_used, clippy::expect_used)]
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::*;

fn pod_json() -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns", "uid": "u", "resourceVersion": "7", "labels": {"app": "web"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": true}]},
        "spec": {"nodeName": "n1", "restartPolicy": "Always", "hostname": "h", "subdomain": "s", "priority": 5,
            "schedulerName": "default-scheduler", "dnsPolicy": "ClusterFirst",
            "containers": [{"name": "c", "image": "i", "ports": [{"name": "http", "containerPort": 80}],
                "resources": {"requests": {"cpu": "10m", "memory": "1Mi"}, "limits": {"cpu": "1"}},
                "livenessProbe": {"httpGet": {"port": 80}}, "terminationMessagePath": "/dev/termination-log"}],
            "initContainers": [{"name": "side", "image": "i", "restartPolicy": "Always"}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-p"}},
                {"name": "tmp", "emptyDir": {}}],
            "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}},
        "status": {"phase": "Running", "qosClass": "Burstable", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}],
            "hostIP": "192.168.0.1", "startTime": "2026-12-06T08:00:00Z",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-06T08:00:00Z"}],
            "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": true, "restartCount": 2, "started": true,
                "state": {"running": {"startedAt": "2026-12-06T08:00:00Z"}},
                "lastState": {"terminated": {"exitCode": 3, "reason": "Error"}}}]}
    })
}

#[test]
fn decodes_what_controllers_read_from_a_watch_event() {
    let p: CachedPod = serde_json::from_str(&pod_json().to_string()).unwrap();
    assert_eq!(
        (p.name_any(), p.namespace().as_deref(), p.resource_version().as_deref()),
        ("p".into(), Some("ns"), Some("7"))
    );
    assert_eq!(p.labels().get("app").map(String::as_str), Some("web"));
    assert_eq!(p.owner_references()[0].controller, Some(true));
    let spec = p.spec.as_ref().unwrap();
    assert_eq!(spec.node_name.as_deref(), Some("n1"));
    assert_eq!(
        (spec.hostname.as_deref(), spec.subdomain.as_deref(), spec.priority),
        (Some("h"), Some("s"), Some(5))
    );
    let c = &spec.containers[0];
    assert_eq!(c.name, "c");
    assert_eq!(c.ports.as_ref().unwrap()[0].container_port, 80);
    let res = c.resources.as_ref().unwrap();
    assert_eq!(
        res.requests.as_ref().unwrap().get("memory"),
        Some(&Quantity("1Mi".into()))
    );
    assert_eq!(res.limits.as_ref().unwrap().get("cpu"), Some(&Quantity("1".into())));
    let init = &spec.init_containers.as_ref().unwrap()[0];
    assert_eq!(init.restart_policy.as_deref(), Some("Always"));
    let vols = spec.volumes.as_ref().unwrap();
    assert_eq!(vols.len(), 2);
    assert_eq!(vols[0].persistent_volume_claim.as_ref().unwrap().claim_name, "data-p");
    assert!(vols[1].persistent_volume_claim.is_none());
    assert_eq!(spec.tolerations.as_ref().unwrap()[0].toleration_seconds, Some(300));
    assert!(spec.affinity.as_ref().unwrap().node_affinity.is_some());

    let status = p.status.as_ref().unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(status.qos_class.as_deref(), Some("Burstable"));
    assert_eq!(status.pod_ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(status.pod_ips.as_ref().unwrap()[0].ip, "10.0.0.1");
    assert!(status.start_time.is_some());
    assert_eq!(status.conditions.as_ref().unwrap()[0].type_, "Ready");
    let cs = &status.container_statuses.as_ref().unwrap()[0];
    assert_eq!(
        (cs.name.as_str(), cs.ready, cs.restart_count, cs.started),
        ("c", true, 2, Some(true))
    );
    assert!(cs.state.as_ref().unwrap().running.is_some());
    let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()).unwrap();
    assert_eq!((last.exit_code, last.reason.as_deref()), (3, Some("Error")));
}

#[test]
fn a_whole_pod_converts_to_what_the_watch_would_decode() {
    let pod: Pod = serde_json::from_value(pod_json()).unwrap();
    let direct: CachedPod = serde_json::from_value(pod_json()).unwrap();
    assert_eq!(CachedPod::from(&pod), direct);
    assert_eq!(CachedPod::from(Pod::default()), CachedPod::default());
}

#[test]
fn null_required_fields_decode_as_defaults() {
    let p: CachedPod = serde_json::from_value(json!({"metadata": {"name": "p"},
        "spec": {"containers": null, "volumes": [{"name": null}]},
        "status": {"containerStatuses": [{"name": null, "ready": null, "restartCount": null}]}}))
    .unwrap();
    assert!(p.spec.as_ref().unwrap().containers.is_empty());
    assert_eq!(p.spec.as_ref().unwrap().volumes.as_ref().unwrap()[0].name, "");
    let cs = &p.status.as_ref().unwrap().container_statuses.as_ref().unwrap()[0];
    assert_eq!((cs.name.as_str(), cs.ready, cs.restart_count), ("", false, 0));
}

#[test]
fn is_a_kube_resource_for_the_pods_endpoint() {
    assert_eq!(CachedPod::kind(&()), "Pod");
    assert_eq!(CachedPod::api_version(&()), "v1");
    assert_eq!(CachedPod::plural(&()), "pods");
    assert_eq!(CachedPod::url_path(&(), Some("ns")), "/api/v1/namespaces/ns/pods");
}

#[test]
fn shrinking_leaves_no_spare_list_capacity() {
    let mut p: CachedPod = serde_json::from_str(&pod_json().to_string()).unwrap();
    p.shrink_to_fit();
    let spec = p.spec.as_ref().unwrap();
    assert_eq!(spec.containers.capacity(), 1);
    assert_eq!(spec.volumes.as_ref().unwrap().capacity(), 2);
    let status = p.status.as_ref().unwrap();
    assert_eq!(status.container_statuses.as_ref().unwrap().capacity(), 1);
    assert_eq!(status.conditions.as_ref().unwrap().capacity(), 1);
}

#[test]
fn is_a_fraction_of_the_size_of_a_pod() {
    use std::mem::size_of;
    // The inline sizes the cache pays per pod and per container.
    assert!(
        size_of::<CachedPod>() * 2 < size_of::<Pod>(),
        "{} vs {}",
        size_of::<CachedPod>(),
        size_of::<Pod>()
    );
    let container = size_of::<k8s_openapi::api::core::v1::Container>();
    assert!(
        size_of::<CachedContainer>() * 8 < container,
        "{} vs {container}",
        size_of::<CachedContainer>()
    );
}
