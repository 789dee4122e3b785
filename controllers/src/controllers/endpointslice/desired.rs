//! What one pod contributes to a Service's EndpointSlices (upstream's
//! `podToEndpoint`, `getEndpointPorts`, `setEndpointSliceLabels`,
//! `newEndpointSlice`), and the identity of an endpoint within a slice set.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, ObjectReference, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::cached_pod::CachedPod;
use crate::controllers::controller_ref::new_controller_ref;
use crate::controllers::endpoints::HEADLESS_LABEL;
use crate::controllers::endpoints::service_pods::{Family, find_port, is_service_ip_set, pod_ips, should_set_hostname};
use crate::controllers::pod_status::is_ready;

/// The label naming a slice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming a slice's manager.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// The EndpointSlice controller's `managed-by` value.
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// The zone label of Nodes.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// A set of ports, order-insensitive: slices are grouped by it.
pub type PortKey = Vec<(String, i32, String, String)>;

/// The group key of `ports`.
pub fn port_key(ports: &[EndpointPort]) -> PortKey {
    let mut k: PortKey = ports
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port.unwrap_or(0),
                p.protocol.clone().unwrap_or_default(),
                p.app_protocol.clone().unwrap_or_default(),
            )
        })
        .collect();
    k.sort();
    k
}

/// An endpoint's identity in a slice set: its addresses, hostname and
/// target (upstream's endpoint hash); two endpoints with one identity are
/// the same endpoint, possibly in a different state.
pub type EndpointKey = (Vec<String>, String, String, String);

pub fn endpoint_key(e: &Endpoint) -> EndpointKey {
    let mut addresses = e.addresses.clone();
    addresses.sort();
    let r = e.target_ref.as_ref();
    (
        addresses,
        e.hostname.clone().unwrap_or_default(),
        r.and_then(|r| r.namespace.clone()).unwrap_or_default(),
        r.and_then(|r| r.name.clone()).unwrap_or_default(),
    )
}

/// Whether two endpoints of one identity are in the same state: node,
/// zone, conditions and target (its resourceVersion aside). Hints are
/// reconciled separately.
pub fn same_state(a: &Endpoint, b: &Endpoint) -> bool {
    let target = |e: &Endpoint| {
        e.target_ref.clone().map(|mut r| {
            r.resource_version = None;
            r
        })
    };
    let conditions = |e: &Endpoint| {
        let c = e.conditions.clone().unwrap_or_default();
        (c.ready, c.serving, c.terminating)
    };
    a.node_name == b.node_name && a.zone == b.zone && conditions(a) == conditions(b) && target(a) == target(b)
}

/// The slice ports of `pod` for the Service: one per Service port the pod
/// serves.
pub fn endpoint_ports(service: &Service, pod: &CachedPod) -> Vec<EndpointPort> {
    let ports = service.spec.as_ref().and_then(|s| s.ports.as_ref());
    ports
        .into_iter()
        .flatten()
        .filter_map(|sp| {
            let port = find_port(pod, sp)?;
            Some(EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some(port),
                protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

/// The pod's endpoint in slices of `family` (no addresses when the pod
/// has no IP of that family).
pub fn pod_to_endpoint(pod: &CachedPod, node: Option<&Node>, service: &Service, family: Family) -> Endpoint {
    let publish_not_ready = service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let serving = is_ready(pod);
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let ready = publish_not_ready || (serving && !terminating);
    let node_name = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .filter(|n| !n.is_empty());
    let zone = node
        .and_then(|n| n.metadata.labels.as_ref())
        .and_then(|l| l.get(ZONE_LABEL))
        .filter(|z| !z.is_empty())
        .cloned();
    Endpoint {
        addresses: pod_ips(pod)
            .into_iter()
            .filter(|ip| Family::of(ip) == Some(family))
            .map(str::to_string)
            .collect(),
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hostname: should_set_hostname(pod, service)
            .then(|| pod.spec.as_ref().and_then(|s| s.hostname.clone()))
            .flatten(),
        node_name,
        zone,
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..ObjectReference::default()
        }),
        ..Endpoint::default()
    }
}

/// The labels of the Service's slices: the Service's own (without the
/// reserved keys), the headless label for headless Services, the Service
/// name and the manager.
pub fn slice_labels(service: &Service, managed_by: &str) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = service
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| ![SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !is_service_ip_set(service) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels.insert(
        SERVICE_NAME_LABEL.into(),
        service.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(MANAGED_BY_LABEL.into(), managed_by.into());
    labels
}

/// A new, empty slice of the Service (`generateName` `<service>-`,
/// controlled by the Service).
pub fn new_slice(service: &Service, ports: Vec<EndpointPort>, family: Family) -> EndpointSlice {
    let name = service.metadata.name.clone().unwrap_or_default();
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: service.metadata.namespace.clone(),
            labels: Some(slice_labels(service, CONTROLLER_NAME)),
            owner_references: Some(vec![new_controller_ref(&service.metadata, "v1", "Service")]),
            ..ObjectMeta::default()
        },
        address_type: family.address_type().into(),
        endpoints: Some(Vec::new()),
        ports: Some(ports),
    }
}

/// The slice's endpoints.
pub fn eps(s: &EndpointSlice) -> &[Endpoint] {
    s.endpoints.as_deref().unwrap_or_default()
}

/// The slice's endpoints, to change.
pub fn eps_mut(s: &mut EndpointSlice) -> &mut Vec<Endpoint> {
    s.endpoints.get_or_insert_with(Vec::new)
}

/// Whether the slice is controlled by the Service (same uid).
pub fn owned_by(slice: &EndpointSlice, service: &Service) -> bool {
    slice
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && r.kind == "Service" && Some(&r.uid) == service.metadata.uid.as_ref())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn endpoint_of_a_pod() {
        let svc: Service = serde_json::from_value(json!({"metadata": {"name": "db", "namespace": "ns", "uid": "s1",
            "labels": {"app": "db", "kubernetes.io/service-name": "evil"}},
            "spec": {"clusterIP": "None", "ports": [{"name": "sql", "port": 5432, "targetPort": "sql", "protocol": "TCP"}]}}))
        .unwrap();
        let pod: CachedPod = serde_json::from_value(json!({"metadata": {"name": "db-0", "namespace": "ns", "uid": "p1"},
            "spec": {"nodeName": "n1", "hostname": "db-0", "subdomain": "db",
                     "containers": [{"name": "c", "ports": [{"name": "sql", "containerPort": 15432}]}]},
            "status": {"podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}], "conditions": [{"type": "Ready", "status": "True"}]}}))
        .unwrap();
        let node: Node = serde_json::from_value(
            json!({"metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "z1"}}}),
        )
        .unwrap();
        let e = pod_to_endpoint(&pod, Some(&node), &svc, Family::IPv6);
        assert_eq!(e.addresses, ["fd00::1"]);
        let c = e.conditions.clone().unwrap();
        assert_eq!(
            (c.ready, c.serving, c.terminating),
            (Some(true), Some(true), Some(false))
        );
        assert_eq!(
            (e.zone.as_deref(), e.node_name.as_deref(), e.hostname.as_deref()),
            (Some("z1"), Some("n1"), Some("db-0"))
        );
        let ports = endpoint_ports(&svc, &pod);
        assert_eq!(ports[0].port, Some(15432));
        assert_eq!(ports[0].name.as_deref(), Some("sql"));

        let mut deleting = pod.clone();
        deleting.metadata.deletion_timestamp = Some(serde_json::from_value(json!("2024-01-01T00:00:00Z")).unwrap());
        let c = pod_to_endpoint(&deleting, None, &svc, Family::IPv4).conditions.unwrap();
        assert_eq!(
            (c.ready, c.serving, c.terminating),
            (Some(false), Some(true), Some(true))
        );

        let labels = slice_labels(&svc, CONTROLLER_NAME);
        assert_eq!(labels.get(SERVICE_NAME_LABEL).map(String::as_str), Some("db"));
        assert_eq!(labels.get(HEADLESS_LABEL).map(String::as_str), Some(""));
        assert_eq!(labels.get("app").map(String::as_str), Some("db"));
        let slice = new_slice(&svc, ports, Family::IPv4);
        assert!(owned_by(&slice, &svc));
        assert_eq!(slice.metadata.generate_name.as_deref(), Some("db-"));
    }
}
