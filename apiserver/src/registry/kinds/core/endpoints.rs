//! Endpoints (`ValidateEndpoints`, `SetDefaults_Endpoints`): every subset
//! has addresses, each a valid IP that is not unspecified, loopback or
//! link-local; ports are named when there are several, numbered 1-65535
//! and default to TCP.

use serde_json::{Value, json};

use super::checks::{arr_of, set_default, str_of};
use crate::registry::kinds::networking::formats::{validate_endpoint_ip, validate_ip_legacy};
use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::names::{is_dns1123_label, is_dns1123_subdomain, is_qualified_name};
use crate::validation::{FieldError, FieldErrors, child, index};

use super::checks::port_num_errors;

/// `supportedPortProtocols`, sorted as upstream lists them.
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

#[derive(Debug)]
pub struct EndpointsStrategy(pub KindTraits);

/// `SetDefaults_Endpoints`: ports default to TCP.
fn default_endpoints(obj: &mut Object) {
    let Some(Value::Array(subsets)) = obj.get_mut("subsets") else {
        return;
    };
    for ss in subsets.iter_mut().filter_map(Value::as_object_mut) {
        if let Some(Value::Array(ports)) = ss.get_mut("ports") {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                if p.get("protocol").and_then(Value::as_str).is_none_or(str::is_empty) {
                    p.remove("protocol");
                    set_default(p, "protocol", json!("TCP"));
                }
            }
        }
    }
}

fn validate_address(addr: &Value, path: &str, errs: &mut FieldErrors) {
    let a = Some(addr);
    let ip = str_of(a, "ip");
    let ip_path = child(path, "ip");
    let mut own = validate_ip_legacy(&ip_path, ip);
    let hostname = str_of(a, "hostname");
    if !hostname.is_empty() {
        for m in is_dns1123_label(hostname) {
            own.push(FieldError::invalid(child(path, "hostname"), hostname, m));
        }
    }
    if let Some(node) = addr.get("nodeName").and_then(Value::as_str) {
        for m in is_dns1123_subdomain(node) {
            own.push(FieldError::invalid(child(path, "nodeName"), node, m));
        }
    }
    // Special addresses are only looked at once the rest is valid.
    if own.is_empty() {
        own.extend(validate_endpoint_ip(&ip_path, ip));
    }
    errs.extend(own);
}

fn validate_port(port: &Value, require_name: bool, path: &str, errs: &mut FieldErrors) {
    let p = Some(port);
    let name = str_of(p, "name");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    } else if !name.is_empty() {
        for m in is_dns1123_label(name) {
            errs.push(FieldError::invalid(child(path, "name"), name, m));
        }
    }
    let num = port.get("port").and_then(Value::as_i64).unwrap_or(0);
    for m in port_num_errors(num) {
        errs.push(FieldError::invalid(child(path, "port"), num, m));
    }
    let protocol = str_of(p, "protocol");
    if protocol.is_empty() {
        errs.push(FieldError::required(child(path, "protocol"), ""));
    } else if !PROTOCOLS.contains(&protocol) {
        errs.push(FieldError::not_supported(child(path, "protocol"), protocol, PROTOCOLS));
    }
    if let Some(app) = port.get("appProtocol").and_then(Value::as_str) {
        for m in is_qualified_name(app) {
            errs.push(FieldError::invalid(child(path, "appProtocol"), app, m));
        }
    }
}

/// `validateEndpointSubsets`.
pub fn validate_endpoints(obj: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let subsets = obj
        .get("subsets")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for (i, ss) in subsets.iter().enumerate() {
        let path = index("subsets", i);
        let s = Some(ss);
        let (ready, not_ready) = (arr_of(s, "addresses"), arr_of(s, "notReadyAddresses"));
        if ready.is_empty() && not_ready.is_empty() {
            errs.push(FieldError::required(
                &path,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (j, a) in ready.iter().enumerate() {
            validate_address(a, &index(&child(&path, "addresses"), j), &mut errs);
        }
        for (j, a) in not_ready.iter().enumerate() {
            validate_address(a, &index(&child(&path, "notReadyAddresses"), j), &mut errs);
        }
        let ports = arr_of(s, "ports");
        for (j, p) in ports.iter().enumerate() {
            validate_port(p, ports.len() > 1, &index(&child(&path, "ports"), j), &mut errs);
        }
    }
    errs
}

impl Strategy for EndpointsStrategy {
    fn traits(&self) -> KindTraits {
        self.0
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        default_endpoints(obj);
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        default_endpoints(new);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_endpoints(obj)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn messages(subsets: Value) -> Vec<String> {
        let mut obj = json!({"metadata": {"name": "e"}, "subsets": subsets})
            .as_object()
            .cloned()
            .unwrap();
        default_endpoints(&mut obj);
        validate_endpoints(&obj).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults_protocol() {
        let mut obj = json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]})
            .as_object()
            .cloned()
            .unwrap();
        default_endpoints(&mut obj);
        assert_eq!(obj["subsets"][0]["ports"][0]["protocol"], "TCP");
        assert!(validate_endpoints(&obj).is_empty());
    }

    #[test]
    fn addresses_and_ports() {
        assert_eq!(
            messages(json!([{"ports": [{"port": 80}]}])),
            ["subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`"]
        );
        assert_eq!(
            messages(
                json!([{"addresses": [{"ip": "127.0.0.1"}, {"ip": "169.254.1.1"}, {"ip": "0.0.0.0"}],
                             "notReadyAddresses": [{"ip": "bad", "hostname": "A"}]}])
            ),
            [
                "subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
                "subsets[0].addresses[1].ip: Invalid value: \"169.254.1.1\": may not be in the link-local range (169.254.0.0/16, fe80::/10)",
                "subsets[0].addresses[2].ip: Invalid value: \"0.0.0.0\": may not be unspecified (0.0.0.0)",
                "subsets[0].notReadyAddresses[0].ip: Invalid value: \"bad\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                "subsets[0].notReadyAddresses[0].hostname: Invalid value: \"A\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            ]
        );
        assert_eq!(
            messages(json!([{"addresses": [{"ip": "10.0.0.1"}],
                             "ports": [{"port": 0, "protocol": "ICMP"}, {"name": "b", "port": 70000}]}])),
            [
                "subsets[0].ports[0].name: Required value",
                "subsets[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "subsets[0].ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "subsets[0].ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
            ]
        );
    }
}
