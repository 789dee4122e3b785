use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;

const NOW: OffsetDateTime = datetime!(2025-06-01 12:00:00 UTC);

fn check(printer: &Printer, obj: Value, expected: Value) {
    let printed = (printer.print)(obj.as_object().expect("object"), NOW);
    assert_eq!(Value::Array(printed.cells), expected, "{obj}");
}

#[test]
fn ingresses() {
    let ing = json!({"metadata": {"name": "web", "creationTimestamp": "2025-06-01T11:00:00Z"},
        "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example.com"]}],
                 "rules": [{"host": "a.example.com"}, {"http": {}}, {"host": "b.example.com"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}, {"hostname": "a-very-long-load-balancer-name.example.com"}]}}});
    check(
        &INGRESSES,
        ing,
        json!([
            "web",
            "nginx",
            "a.example.com,b.example.com",
            "203.0.113.10,a-very-long-load-balancer-name.example.com",
            "80, 443",
            "60m"
        ]),
    );
    let many: Vec<Value> = (1..=5).map(|i| json!({"host": format!("h{i}.example.com")})).collect();
    let ing = json!({"metadata": {"name": "many"}, "spec": {"rules": many}});
    check(
        &INGRESSES,
        ing,
        json!([
            "many",
            "<none>",
            "h1.example.com,h2.example.com,h3.example.com + 2 more...",
            "",
            "80",
            "<unknown>"
        ]),
    );
    check(
        &INGRESSES,
        json!({"metadata": {"name": "default-backend"}, "spec": {}}),
        json!(["default-backend", "<none>", "*", "", "80", "<unknown>"]),
    );
}

#[test]
fn ingress_classes_and_policies() {
    let class = json!({"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx",
        "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}});
    check(
        &INGRESS_CLASSES,
        class,
        json!([
            "nginx",
            "k8s.io/ingress-nginx",
            "IngressParameters.k8s.example.com/external-lb",
            "<unknown>"
        ]),
    );
    check(
        &INGRESS_CLASSES,
        json!({"metadata": {"name": "x"}, "spec": {"controller": "c"}}),
        json!(["x", "c", "<none>", "<unknown>"]),
    );
    let np = json!({"metadata": {"name": "deny"}, "spec": {"podSelector": {"matchLabels": {"role": "db"}}}});
    check(&NETWORK_POLICIES, np, json!(["deny", "role=db", "<unknown>"]));
    check(
        &NETWORK_POLICIES,
        json!({"metadata": {"name": "all"}, "spec": {"podSelector": {}}}),
        json!(["all", "<none>", "<unknown>"]),
    );
}

#[test]
fn endpoint_slices() {
    let slice = json!({"metadata": {"name": "web-abc12"}, "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80}, {"name": "named"}, {}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3"]}, {"addresses": ["10.0.0.4"]}]});
    check(
        &ENDPOINT_SLICES,
        slice,
        json!([
            "web-abc12",
            "IPv4",
            "80,named,*",
            "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...",
            "<unknown>"
        ]),
    );
    let empty = json!({"metadata": {"name": "e"}, "addressType": "IPv6"});
    check(
        &ENDPOINT_SLICES,
        empty,
        json!(["e", "IPv6", "<unset>", "<unset>", "<unknown>"]),
    );
}

#[test]
fn ip_addresses_and_service_cidrs() {
    let ip = json!({"metadata": {"name": "10.96.0.1"}, "spec": {"parentRef": {"group": "", "resource": "services", "namespace": "default", "name": "kubernetes"}}});
    check(
        &IP_ADDRESSES,
        ip,
        json!(["10.96.0.1", "services/default/kubernetes", "<unknown>"]),
    );
    let ip = json!({"metadata": {"name": "10.0.0.9"}, "spec": {"parentRef": {"group": "Gateway.networking.k8s.io", "resource": "Gateways", "name": "gw"}}});
    check(
        &IP_ADDRESSES,
        ip,
        json!(["10.0.0.9", "gateways.gateway.networking.k8s.io/gw", "<unknown>"]),
    );
    let cidr = json!({"metadata": {"name": "kubernetes"}, "spec": {"cidrs": ["10.96.0.0/12", "fd00:10:96::/112"]}});
    check(
        &SERVICE_CIDRS,
        cidr,
        json!(["kubernetes", "10.96.0.0/12,fd00:10:96::/112", "<unknown>"]),
    );
}
