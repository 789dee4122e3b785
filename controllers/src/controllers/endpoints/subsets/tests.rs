#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use serde_json::{Value, json};

fn svc(spec: Value) -> Service {
    serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "ns"}, "spec": spec})).unwrap()
}

/// A pod `name` with IP `ip`, ready or not, serving `http` on 8080 unless
/// `named` is false.
fn pod(name: &str, ip: &str, ready: bool, named: bool) -> CachedPod {
    let ports = if named {
        json!([{"name": "http", "containerPort": 8080}])
    } else {
        json!([])
    };
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}")},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "ports": ports}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                   "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
    }))
    .unwrap()
}

fn ips_of(v: &Option<Vec<EndpointAddress>>) -> Vec<&str> {
    v.iter().flatten().map(|a| a.ip.as_str()).collect()
}

fn ports_of(s: &EndpointSubset) -> Vec<(Option<&str>, i32)> {
    s.ports.iter().flatten().map(|p| (p.name.as_deref(), p.port)).collect()
}

#[test]
fn ready_and_not_ready_addresses_with_named_and_numbered_ports() {
    let s = svc(json!({"clusterIP": "10.96.0.10", "ports": [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
        {"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"}]}));
    let a = pod("a", "10.0.0.2", true, true);
    let b = pod("b", "10.0.0.1", false, true);
    let subsets = desired_subsets(&s, &[&a, &b]);
    assert_eq!(subsets.len(), 1, "{subsets:#?}");
    assert_eq!(ips_of(&subsets[0].addresses), ["10.0.0.2"]);
    assert_eq!(ips_of(&subsets[0].not_ready_addresses), ["10.0.0.1"]);
    assert_eq!(ports_of(&subsets[0]), [(Some("http"), 8080), (Some("metrics"), 9090)]);
    let addr = &subsets[0].addresses.as_ref().unwrap()[0];
    assert_eq!(addr.node_name.as_deref(), Some("node-1"));
    let r = addr.target_ref.as_ref().unwrap();
    assert_eq!(
        (
            r.kind.as_deref(),
            r.namespace.as_deref(),
            r.name.as_deref(),
            r.uid.as_deref()
        ),
        (Some("Pod"), Some("ns"), Some("a"), Some("uid-a"))
    );
    assert_eq!(addr.hostname, None);
}

#[test]
fn a_pod_without_the_named_port_lands_in_its_own_subset() {
    let s = svc(json!({"clusterIP": "10.96.0.10", "ports": [
        {"name": "http", "port": 80, "targetPort": "http"},
        {"name": "metrics", "port": 9090, "targetPort": 9090}]}));
    let a = pod("a", "10.0.0.1", true, true);
    let b = pod("b", "10.0.0.2", true, false);
    let subsets = desired_subsets(&s, &[&a, &b]);
    assert_eq!(subsets.len(), 2, "{subsets:#?}");
    let both = subsets.iter().find(|s| ips_of(&s.addresses).len() == 2).unwrap();
    assert_eq!(ports_of(both), [(Some("metrics"), 9090)]);
    let only_a = subsets.iter().find(|s| ips_of(&s.addresses) == ["10.0.0.1"]).unwrap();
    assert_eq!(ports_of(only_a), [(Some("http"), 8080)]);
}

#[test]
fn publish_not_ready_terminating_and_unaddressed_pods() {
    let mut deleting = pod("d", "10.0.0.3", true, true);
    deleting.metadata.deletion_timestamp = Some(serde_json::from_value(json!("2024-01-01T00:00:00Z")).unwrap());
    let mut failed = pod("f", "10.0.0.4", false, true);
    failed.status.as_mut().unwrap().phase = Some("Failed".into());
    let mut pending = pod("p", "", false, true);
    pending.status.as_mut().unwrap().pod_ips = None;
    let not_ready = pod("n", "10.0.0.5", false, true);
    let ports = json!([{"port": 80, "targetPort": 8080}]);
    let pods = [&deleting, &failed, &pending, &not_ready];

    let subsets = desired_subsets(&svc(json!({"clusterIP": "10.96.0.10", "ports": ports})), &pods);
    assert_eq!(ips(&subsets), (BTreeSet::new(), ["10.0.0.5".to_string()].into()));

    let subsets = desired_subsets(
        &svc(json!({"clusterIP": "10.96.0.10", "ports": ports, "publishNotReadyAddresses": true})),
        &pods,
    );
    let ready: BTreeSet<String> = ["10.0.0.3".to_string(), "10.0.0.5".to_string()].into();
    assert_eq!(ips(&subsets), (ready, BTreeSet::new()));
}

#[test]
fn headless_services_and_hostnames() {
    let mut a = pod("a", "10.0.0.1", true, true);
    let spec = a.spec.as_mut().unwrap();
    spec.hostname = Some("web-0".into());
    spec.subdomain = Some("web".into());
    // Headless without ports: addresses with no ports.
    let subsets = desired_subsets(&svc(json!({"clusterIP": "None"})), &[&a]);
    assert_eq!(subsets.len(), 1);
    assert_eq!(subsets[0].ports, None);
    assert_eq!(
        subsets[0].addresses.as_ref().unwrap()[0].hostname.as_deref(),
        Some("web-0")
    );
    // Not headless without ports: nothing.
    assert!(desired_subsets(&svc(json!({"clusterIP": "10.96.0.1"})), &[&a]).is_empty());
}

#[test]
fn only_the_services_family_is_used() {
    let mut a = pod("a", "10.0.0.1", true, true);
    a.status.as_mut().unwrap().pod_ips =
        Some(serde_json::from_value(json!([{"ip": "10.0.0.1"}, {"ip": "fd00::1"}])).unwrap());
    let v6 = svc(json!({"clusterIP": "fd00:96::1", "ipFamilies": ["IPv6"], "ports": [{"port": 80}]}));
    assert_eq!(ips(&desired_subsets(&v6, &[&a])).0, ["fd00::1".to_string()].into());
    let v4_only = pod("b", "10.0.0.2", true, true);
    assert!(desired_subsets(&v6, &[&v4_only]).is_empty());
}

fn addresses(prefix: &str, n: usize) -> Option<Vec<EndpointAddress>> {
    Some(
        (0..n)
            .map(|i| EndpointAddress {
                ip: format!("{prefix}.{}.{}", i / 250, i % 250),
                ..EndpointAddress::default()
            })
            .collect(),
    )
}

fn counts(subsets: &[EndpointSubset]) -> Vec<(usize, usize)> {
    subsets
        .iter()
        .map(|s| (ips_of(&s.addresses).len(), ips_of(&s.not_ready_addresses).len()))
        .collect()
}

#[test]
fn truncation_keeps_ready_addresses_first_and_shares_proportionally() {
    let mut under = vec![EndpointSubset {
        addresses: addresses("10.1", 1000),
        ..Default::default()
    }];
    assert!(!truncate(&mut under));

    // 900 ready stay; the 100 places left go to not-ready ones, 3:1.
    let mut s = vec![
        EndpointSubset {
            addresses: addresses("10.1", 600),
            not_ready_addresses: addresses("10.2", 300),
            ports: None,
        },
        EndpointSubset {
            addresses: addresses("10.3", 300),
            not_ready_addresses: addresses("10.4", 100),
            ports: None,
        },
    ];
    assert!(truncate(&mut s));
    assert_eq!(counts(&s), [(600, 75), (300, 25)]);

    // More ready than fit: every not-ready address goes, ready ones shared.
    let mut s = vec![
        EndpointSubset {
            addresses: addresses("10.1", 900),
            not_ready_addresses: addresses("10.2", 5),
            ports: None,
        },
        EndpointSubset {
            addresses: addresses("10.3", 300),
            not_ready_addresses: None,
            ports: None,
        },
    ];
    assert!(truncate(&mut s));
    assert_eq!(counts(&s), [(750, 0), (250, 0)]);
}

#[test]
fn normalized_drops_empty_lists_and_resource_versions() {
    let read: Vec<EndpointSubset> = serde_json::from_value(json!([{"addresses": [{"ip": "10.0.0.1",
        "targetRef": {"kind": "Pod", "name": "a", "resourceVersion": "7"}}], "notReadyAddresses": [], "ports": []}]))
    .unwrap();
    let n = normalized(&read);
    assert_eq!(n[0].not_ready_addresses, None);
    assert_eq!(n[0].ports, None);
    assert_eq!(
        n[0].addresses.as_ref().unwrap()[0]
            .target_ref
            .as_ref()
            .unwrap()
            .resource_version,
        None
    );
}
