//! EndpointSlice (`discovery.k8s.io/v1`): port defaults (name "", protocol
//! TCP), generation tracking, and upstream's validation of the address
//! type, endpoints and ports.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::registry::kinds::default_traits;
use crate::registry::kinds::networking::formats::{parse_ip_sloppy, validate_endpoint_ip};
use crate::registry::kinds::networking::values::{
    arr, each_object_mut, get, immutable, opt_str, set_default, str_at, too_many,
};
use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::label_selector::validate_labels;
use crate::validation::names::{is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_label_value};
use crate::validation::{FieldError, FieldErrors, child, index};

const MAX_TOPOLOGY_LABELS: usize = 16;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 20000;
const MAX_ENDPOINTS: usize = 1000;
const MAX_HINTS: usize = 8;
const ADDRESS_TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];

#[derive(Debug, Default)]
pub struct EndpointSliceStrategy;

fn apply_defaults(obj: &mut Object) {
    each_object_mut(obj, "ports", |port| {
        set_default(port, "name", json!(""));
        set_default(port, "protocol", json!("TCP"));
    });
}

impl Strategy for EndpointSliceStrategy {
    fn traits(&self) -> KindTraits {
        KindTraits {
            tracks_generation: true,
            ..default_traits("discovery.k8s.io", "endpointslices")
        }
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        apply_defaults(obj);
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        apply_defaults(new);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_slice(obj)
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = validate_slice(new);
        let t = new.get("addressType").and_then(Value::as_str).unwrap_or("");
        if t != old.get("addressType").and_then(Value::as_str).unwrap_or("") {
            errs.push(immutable("addressType", t));
        }
        errs
    }
}

fn validate_slice(obj: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let address_type = obj.get("addressType").and_then(Value::as_str).unwrap_or("");
    if address_type.is_empty() {
        errs.push(FieldError::required("addressType", ""));
    } else if !ADDRESS_TYPES.contains(&address_type) {
        errs.push(FieldError::not_supported("addressType", address_type, ADDRESS_TYPES));
    }
    let endpoints = obj
        .get("endpoints")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    errs.extend(validate_endpoints(endpoints, address_type));
    let ports = obj
        .get("ports")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    errs.extend(validate_ports(ports));
    errs
}

fn validate_endpoints(endpoints: &[Value], address_type: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if endpoints.len() > MAX_ENDPOINTS {
        errs.push(too_many("endpoints", endpoints.len(), MAX_ENDPOINTS));
        return errs;
    }
    for (i, ep) in endpoints.iter().enumerate() {
        let p = index("endpoints", i);
        let ap = child(&p, "addresses");
        let addresses = arr(Some(ep), "addresses");
        if addresses.is_empty() {
            errs.push(FieldError::required(&ap, "must contain at least 1 address"));
        } else if addresses.len() > MAX_ADDRESSES {
            errs.push(too_many(&ap, addresses.len(), MAX_ADDRESSES));
        }
        for (j, a) in addresses.iter().enumerate() {
            let a = a.as_str().unwrap_or("");
            let path = index(&ap, j);
            match address_type {
                "IPv4" => {
                    if !matches!(parse_ip_sloppy(a), Some(std::net::IpAddr::V4(_))) {
                        errs.push(FieldError::invalid(&path, a, "must be a valid IPv4 address"));
                    }
                    errs.extend(validate_endpoint_ip(&path, a));
                }
                "IPv6" => {
                    if !matches!(parse_ip_sloppy(a), Some(std::net::IpAddr::V6(_))) {
                        errs.push(FieldError::invalid(&path, a, "must be a valid IPv6 address"));
                    }
                    errs.extend(validate_endpoint_ip(&path, a));
                }
                "FQDN" => errs.extend(validate_fqdn(&path, a)),
                _ => {}
            }
        }
        if let Some(node) = opt_str(Some(ep), "nodeName") {
            for m in is_dns1123_subdomain(node) {
                errs.push(FieldError::invalid(child(&p, "nodeName"), node, m));
            }
        }
        let tp = child(&p, "deprecatedTopology");
        let topology = get(Some(ep), "deprecatedTopology");
        let n = topology.and_then(Value::as_object).map_or(0, |m| m.len());
        if n > MAX_TOPOLOGY_LABELS {
            errs.push(too_many(&tp, n, MAX_TOPOLOGY_LABELS));
        }
        errs.extend(validate_labels(topology, &tp));
        if let Some(host) = opt_str(Some(ep), "hostname") {
            for m in is_dns1123_label(host) {
                errs.push(FieldError::invalid(child(&p, "hostname"), host, m));
            }
        }
        if let Some(hints) = get(Some(ep), "hints") {
            errs.extend(validate_hints(hints, &child(&p, "hints")));
        }
    }
    errs
}

/// Upstream's `IsFullyQualifiedDomainName`.
fn validate_fqdn(path: &str, value: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if value.is_empty() {
        errs.push(FieldError::required(path, ""));
        return errs;
    }
    let name = value.strip_suffix('.').unwrap_or(value);
    let msgs = is_dns1123_subdomain(name);
    if !msgs.is_empty() {
        errs.push(FieldError::invalid(path, name, msgs.join(",")));
        return errs;
    }
    if name.split('.').count() < 2 {
        errs.push(FieldError::invalid(
            path,
            name,
            "should be a domain with at least two segments separated by dots",
        ));
        return errs;
    }
    for label in name.split('.') {
        let msgs = is_dns1123_label(label);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(path, label, msgs.join(",")));
            return errs;
        }
    }
    errs
}

fn validate_hints(hints: &Value, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    for (list, check) in [
        ("forZones", is_valid_label_value as fn(&str) -> Vec<String>),
        ("forNodes", is_dns1123_subdomain as fn(&str) -> Vec<String>),
    ] {
        let lp = child(path, list);
        let items = arr(Some(hints), list);
        if items.len() > MAX_HINTS {
            errs.push(too_many(&lp, items.len(), MAX_HINTS));
            continue;
        }
        let mut seen = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let np = child(&index(&lp, i), "name");
            let name = str_at(Some(item), "name");
            if !seen.insert(name) {
                errs.push(FieldError::duplicate(&np, name));
            }
            for m in check(name) {
                errs.push(FieldError::invalid(&np, name, m));
            }
        }
    }
    errs
}

fn validate_ports(ports: &[Value]) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if ports.len() > MAX_PORTS {
        errs.push(too_many("ports", ports.len(), MAX_PORTS));
        return errs;
    }
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = index("ports", i);
        let name = str_at(Some(port), "name");
        if !name.is_empty() {
            for m in is_dns1123_label(name) {
                errs.push(FieldError::invalid(child(&p, "name"), name, m));
            }
        }
        if !names.insert(name) {
            errs.push(FieldError::duplicate(child(&p, "name"), name));
        }
        match opt_str(Some(port), "protocol") {
            None => errs.push(FieldError::required(child(&p, "protocol"), "")),
            Some(proto) if !matches!(proto, "TCP" | "UDP" | "SCTP") => {
                errs.push(FieldError::not_supported(
                    child(&p, "protocol"),
                    proto,
                    &["SCTP", "TCP", "UDP"],
                ));
            }
            Some(_) => {}
        }
        if let Some(app) = opt_str(Some(port), "appProtocol") {
            for m in is_qualified_name(app) {
                errs.push(FieldError::invalid(child(&p, "appProtocol"), app, m));
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::registry::strategy::testing::{create_messages, prepared};
    use crate::testing::TestServer;
    use axum::http::StatusCode;

    fn with_meta(mut body: Value) -> Value {
        body["metadata"] = json!({"name": "s", "namespace": "default"});
        body
    }

    fn slice(body: Value) -> Object {
        prepared(&EndpointSliceStrategy, with_meta(body))
    }

    fn check(body: Value, expected: &[&str]) {
        assert_eq!(create_messages(&EndpointSliceStrategy, with_meta(body)), expected);
    }

    #[test]
    fn address_types() {
        check(
            json!({"addressType": "IPv4", "endpoints": [{"addresses": ["10.1.2.3"]}]}),
            &[],
        );
        check(json!({}), &["addressType: Required value"]);
        check(
            json!({"addressType": "IP"}),
            &["addressType: Unsupported value: \"IP\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""],
        );
        check(
            json!({"addressType": "IPv4", "endpoints": [{"addresses": ["fd00::1", "127.0.0.1"]}, {}]}),
            &[
                "endpoints[0].addresses[0]: Invalid value: \"fd00::1\": must be a valid IPv4 address",
                "endpoints[0].addresses[1]: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
                "endpoints[1].addresses: Required value: must contain at least 1 address",
            ],
        );
        check(
            json!({"addressType": "IPv6", "endpoints": [{"addresses": ["10.0.0.1"]}]}),
            &["endpoints[0].addresses[0]: Invalid value: \"10.0.0.1\": must be a valid IPv6 address"],
        );
        check(
            json!({"addressType": "FQDN", "endpoints": [{"addresses": ["example.com", "localhost"]}]}),
            &[
                "endpoints[0].addresses[1]: Invalid value: \"localhost\": should be a domain with at least two segments separated by dots",
            ],
        );
        let many: Vec<String> = (0..101).map(|i| format!("10.0.0.{}", i % 250 + 1)).collect();
        check(
            json!({"addressType": "IPv4", "endpoints": [{"addresses": many}]}),
            &["endpoints[0].addresses: Too many: 101: must have at most 100 items"],
        );
    }

    #[test]
    fn endpoints_fields() {
        check(
            json!({"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"], "nodeName": "Node_1",
                "hostname": "a.b", "hints": {"forZones": [{"name": "z"}, {"name": "z"}]}}]}),
            &[
                "endpoints[0].nodeName: Invalid value: \"Node_1\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                "endpoints[0].hostname: Invalid value: \"a.b\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                "endpoints[0].hints.forZones[1].name: Duplicate value: \"z\"",
            ],
        );
    }

    #[test]
    fn ports() {
        let o = slice(json!({"addressType": "IPv4", "ports": [{"port": 80}]}));
        assert_eq!(o["ports"][0], json!({"port": 80, "name": "", "protocol": "TCP"}));
        check(
            json!({"addressType": "IPv4", "ports": [{"port": 80}, {"port": 81, "protocol": "ICMP"}]}),
            &[
                "ports[1].name: Duplicate value: \"\"",
                "ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            ],
        );
    }

    #[test]
    fn address_type_is_immutable() {
        let old = slice(json!({"addressType": "IPv4"}));
        let new = slice(json!({"addressType": "FQDN"}));
        assert_eq!(
            EndpointSliceStrategy.validate_update(&new, &old).summary(),
            "addressType: Invalid value: \"FQDN\": field is immutable"
        );
    }

    #[tokio::test]
    async fn http_bad_address_and_generation() {
        let s = TestServer::new().await;
        let path = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";
        let (code, body) = s
            .post(
                path,
                json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "web-1",
                    "labels": {"kubernetes.io/service-name": "web"}},
                    "addressType": "IPv4", "endpoints": [{"addresses": ["not-an-ip"]}]}),
            )
            .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["details"]["causes"][0]["field"], "endpoints[0].addresses[0]");
        let (code, body) = s
            .post(
                path,
                json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "web-1"},
                    "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"port": 80}]}),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        assert_eq!(body["metadata"]["generation"], 1);
        assert_eq!(body["ports"][0]["protocol"], "TCP");
        let (code, body) = s
            .patch(
                &format!("{path}/web-1"),
                "application/merge-patch+json",
                json!({"endpoints": [{"addresses": ["10.0.0.2"]}]}),
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
        assert_eq!(body["metadata"]["generation"], 2);
    }
}
