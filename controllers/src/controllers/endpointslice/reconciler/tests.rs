#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use crate::cached_pod::CachedPod;
use serde_json::{Value, json};

fn svc(spec: Value) -> Service {
    serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid"}, "spec": spec}))
        .unwrap()
}

fn web() -> Service {
    svc(
        json!({"clusterIP": "10.96.0.10", "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}),
    )
}

fn pod(i: usize, ready: bool) -> CachedPod {
    serde_json::from_value(json!({
        "metadata": {"name": format!("p{i}"), "namespace": "ns", "uid": format!("uid-{i}"), "labels": {"app": "web"}},
        "spec": {"nodeName": format!("n{}", i % 3), "containers": [{"name": "c"}]},
        "status": {"phase": "Running", "podIPs": [{"ip": format!("10.1.{}.{}", i / 250, i % 250)}, {"ip": format!("fd00::{i:x}")}],
                   "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
    }))
    .unwrap()
}

fn node(name: &str) -> Option<Arc<Node>> {
    if name == "gone" {
        return None;
    }
    Some(Arc::new(
        serde_json::from_value(
            json!({"metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": format!("zone-{name}")}}}),
        )
        .unwrap(),
    ))
}

fn plan(service: &Service, pods: &[CachedPod], existing: &[Arc<EndpointSlice>], max: usize) -> Plan {
    let pods: Vec<&CachedPod> = pods.iter().collect();
    reconcile(&Input {
        service,
        pods: &pods,
        existing,
        node: &node,
        max_endpoints_per_slice: max,
    })
}

/// What the API server would hold after the plan: created slices named
/// `web-<n>`, updates replacing their slice, deletions gone.
fn apply(p: &Plan, existing: &[Arc<EndpointSlice>], next: &mut usize) -> Vec<Arc<EndpointSlice>> {
    let mut by_name: BTreeMap<String, Arc<EndpointSlice>> = existing.iter().map(|s| (name_of(s), s.clone())).collect();
    for d in &p.delete {
        by_name.remove(&name_of(d));
    }
    for u in &p.update {
        assert!(
            by_name.contains_key(&name_of(u)),
            "update of a missing slice {}",
            name_of(u)
        );
        by_name.insert(name_of(u), Arc::new(u.clone()));
    }
    for c in &p.create {
        assert!(c.metadata.name.is_none());
        let mut c = c.clone();
        c.metadata.name = Some(format!("web-{next}"));
        *next += 1;
        by_name.insert(name_of(&c), Arc::new(c));
    }
    by_name.into_values().collect()
}

fn sizes(slices: &[Arc<EndpointSlice>]) -> Vec<usize> {
    let mut v: Vec<usize> = slices.iter().map(|s| eps(s).len()).collect();
    v.sort_unstable_by(|a, b| b.cmp(a));
    v
}

fn writes(p: &Plan) -> (usize, usize, usize) {
    (p.create.len(), p.update.len(), p.delete.len())
}

#[test]
fn endpoints_are_split_into_slices_of_at_most_max() {
    let pods: Vec<CachedPod> = (0..250).map(|i| pod(i, true)).collect();
    let p = plan(&web(), &pods, &[], 100);
    assert_eq!(writes(&p), (3, 0, 0));
    let mut n = 0;
    let slices = apply(&p, &[], &mut n);
    assert_eq!(sizes(&slices), [100, 100, 50]);
    let s = &slices[0];
    assert_eq!(s.address_type, "IPv4");
    assert_eq!(s.metadata.generate_name.as_deref(), Some("web-"));
    let labels = s.metadata.labels.clone().unwrap();
    assert_eq!(labels["kubernetes.io/service-name"], "web");
    assert_eq!(
        labels["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    let owner = &s.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("Service", "svc-uid", Some(true))
    );
    let ports = serde_json::to_value(&s.ports).unwrap();
    assert_eq!(ports, json!([{"name": "http", "port": 8080, "protocol": "TCP"}]));
    // Steady state: nothing to write.
    assert_eq!(writes(&plan(&web(), &pods, &slices, 100)), (0, 0, 0));
}

#[test]
fn one_pod_changing_touches_one_slice() {
    let mut pods: Vec<CachedPod> = (0..250).map(|i| pod(i, true)).collect();
    let mut n = 0;
    let slices = apply(&plan(&web(), &pods, &[], 100), &[], &mut n);

    pods[17] = pod(17, false);
    let p = plan(&web(), &pods, &slices, 100);
    assert_eq!(writes(&p), (0, 1, 0));
    let e = eps(&p.update[0])
        .iter()
        .find(|e| e.target_ref.as_ref().unwrap().name.as_deref() == Some("p17"))
        .unwrap();
    let c = e.conditions.clone().unwrap();
    assert_eq!(
        (c.ready, c.serving, c.terminating),
        (Some(false), Some(false), Some(false))
    );
    let slices = apply(&p, &slices, &mut n);

    // A pod gone: its slice shrinks, nothing else moves.
    pods.remove(3);
    let p = plan(&web(), &pods, &slices, 100);
    assert_eq!(writes(&p), (0, 1, 0));
    let slices = apply(&p, &slices, &mut n);
    assert_eq!(sizes(&slices).iter().sum::<usize>(), 249);

    // A new pod goes into the slice with room, not a new slice.
    pods.push(pod(300, true));
    pods.push(pod(301, true));
    let p = plan(&web(), &pods, &slices, 100);
    assert_eq!(writes(&p), (0, 1, 0));
    let slices = apply(&p, &slices, &mut n);
    assert_eq!(sizes(&slices).len(), 3);
    assert_eq!(sizes(&slices).iter().sum::<usize>(), 251);
}

#[test]
fn a_service_without_endpoints_keeps_one_placeholder() {
    let p = plan(&web(), &[], &[], 100);
    assert_eq!(writes(&p), (1, 0, 0));
    assert!(eps(&p.create[0]).is_empty());
    assert_eq!(p.create[0].ports, Some(vec![]));
    let mut n = 0;
    let slices = apply(&p, &[], &mut n);
    assert_eq!(writes(&plan(&web(), &[], &slices, 100)), (0, 0, 0));
    // Pods arrive: the placeholder is reused, not deleted and recreated.
    let pods: Vec<CachedPod> = (0..3).map(|i| pod(i, true)).collect();
    let p = plan(&web(), &pods, &slices, 100);
    assert_eq!(writes(&p), (0, 1, 0));
    assert_eq!(p.update[0].metadata.name.as_deref(), Some("web-0"));
    let slices = apply(&p, &slices, &mut n);
    // And back to the placeholder when they go.
    let p = plan(&web(), &[], &slices, 100);
    assert_eq!(writes(&p), (0, 1, 0));
    assert!(eps(&p.update[0]).is_empty());
}

#[test]
fn one_slice_set_per_address_family() {
    let dual = svc(
        json!({"clusterIP": "10.96.0.10", "ipFamilies": ["IPv4", "IPv6"], "selector": {"app": "web"},
        "ports": [{"port": 80, "protocol": "TCP"}]}),
    );
    let pods: Vec<CachedPod> = (0..5).map(|i| pod(i, true)).collect();
    let p = plan(&dual, &pods, &[], 100);
    assert_eq!(writes(&p), (2, 0, 0));
    let mut types: Vec<&str> = p.create.iter().map(|s| s.address_type.as_str()).collect();
    types.sort_unstable();
    assert_eq!(types, ["IPv4", "IPv6"]);
    let v6 = p.create.iter().find(|s| s.address_type == "IPv6").unwrap();
    assert!(eps(v6).iter().all(|e| e.addresses[0].starts_with("fd00::")));
    let mut n = 0;
    let slices = apply(&p, &[], &mut n);
    // The Service drops IPv6: its slices go.
    let p = plan(&web(), &pods, &slices, 100);
    assert_eq!(p.delete.len(), 1);
    assert_eq!(p.delete[0].address_type, "IPv6");
}

#[test]
fn conditions_zones_and_missing_nodes() {
    let mut terminating = pod(1, true);
    terminating.metadata.deletion_timestamp = Some(serde_json::from_value(json!("2024-01-01T00:00:00Z")).unwrap());
    let mut orphan = pod(2, true);
    orphan.spec.as_mut().unwrap().node_name = Some("gone".into());
    let p = plan(&web(), &[pod(0, true), terminating.clone(), orphan.clone()], &[], 100);
    assert_eq!(p.missing_nodes.len(), 1, "{:?}", p.missing_nodes);
    let endpoints = eps(&p.create[0]);
    assert_eq!(endpoints.len(), 2);
    let t = endpoints
        .iter()
        .find(|e| e.target_ref.as_ref().unwrap().name.as_deref() == Some("p1"))
        .unwrap();
    let c = t.conditions.clone().unwrap();
    assert_eq!(
        (c.ready, c.serving, c.terminating),
        (Some(false), Some(true), Some(true))
    );
    assert_eq!(t.zone.as_deref(), Some("zone-n1"));
    assert_eq!(t.node_name.as_deref(), Some("n1"));
    // publishNotReadyAddresses publishes pods on unknown nodes, all ready.
    let publish = svc(
        json!({"clusterIP": "10.96.0.10", "selector": {"app": "web"}, "publishNotReadyAddresses": true,
        "ports": [{"port": 80, "protocol": "TCP"}]}),
    );
    let p = plan(&publish, &[terminating, orphan, pod(3, false)], &[], 100);
    assert!(p.missing_nodes.is_empty());
    assert!(
        eps(&p.create[0])
            .iter()
            .all(|e| e.conditions.as_ref().unwrap().ready == Some(true))
    );
    assert_eq!(eps(&p.create[0]).len(), 3);
}

#[test]
fn slices_of_another_service_incarnation_are_replaced() {
    let pods: Vec<CachedPod> = (0..3).map(|i| pod(i, true)).collect();
    let mut n = 0;
    let slices = apply(&plan(&web(), &pods, &[], 100), &[], &mut n);
    let mut reborn = web();
    reborn.metadata.uid = Some("new-uid".into());
    let p = plan(&reborn, &pods, &slices, 100);
    assert_eq!(writes(&p), (1, 0, 1));
    assert_eq!(
        p.create[0].metadata.owner_references.as_ref().unwrap()[0].uid,
        "new-uid"
    );
}

#[test]
fn traffic_distribution_sets_zone_hints() {
    let close = svc(
        json!({"clusterIP": "10.96.0.10", "selector": {"app": "web"}, "trafficDistribution": "PreferClose",
        "ports": [{"port": 80, "protocol": "TCP"}]}),
    );
    let pods: Vec<CachedPod> = (0..3).map(|i| pod(i, true)).collect();
    let p = plan(&close, &pods, &[], 100);
    for e in eps(&p.create[0]) {
        let zones = e.hints.as_ref().unwrap().for_zones.clone().unwrap();
        assert_eq!(Some(&zones[0].name), e.zone.as_ref());
    }
    let mut n = 0;
    let slices = apply(&p, &[], &mut n);
    assert_eq!(writes(&plan(&close, &pods, &slices, 100)), (0, 0, 0));
    // Dropping trafficDistribution removes the hints.
    let plain =
        svc(json!({"clusterIP": "10.96.0.10", "selector": {"app": "web"}, "ports": [{"port": 80, "protocol": "TCP"}]}));
    let p = plan(&plain, &pods, &slices, 100);
    assert_eq!(writes(&p), (0, 1, 0));
    assert!(eps(&p.update[0]).iter().all(|e| e.hints.is_none()));
}
