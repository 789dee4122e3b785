//! Ingress (`networking.k8s.io/v1`): rules, paths, backends, TLS and the
//! class name validated as upstream's `ValidateIngressCreate`/`Update`.

use serde_json::Value;

use super::formats::{is_valid_port_name, is_valid_port_num, is_wildcard_dns1123_subdomain, parse_ip_sloppy};
use super::values::{arr, get, go_slice, opt_str, str_at};
use crate::registry::kinds::default_traits;
use crate::registry::object::{self, Object};
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::names::{is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_path_segment_name};
use crate::validation::{FieldError, FieldErrors, child, index};

const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// Options that relax checks for objects stored before a check existed.
#[derive(Debug, Clone, Copy, Default)]
struct Options {
    allow_invalid_secret_name: bool,
    allow_invalid_wildcard_host_rule: bool,
    allow_relaxed_service_name: bool,
}

#[derive(Debug, Default)]
pub struct IngressStrategy;

impl Strategy for IngressStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("networking.k8s.io", "ingresses")
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        let mut errs = validate_spec(obj.get("spec"), "spec", Options::default());
        let annotation = object::meta(obj)
            .get("annotations")
            .and_then(|a| a.get(INGRESS_CLASS_ANNOTATION))
            .and_then(Value::as_str);
        if let (Some(a), Some(class)) = (annotation, opt_str(obj.get("spec"), "ingressClassName"))
            && a != class
        {
            errs.push(FieldError::invalid(
                format!("annotations.{INGRESS_CLASS_ANNOTATION}"),
                a,
                "must match `ingressClassName` when both are specified",
            ));
        }
        errs
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let old_spec = old.get("spec");
        let opts = Options {
            allow_invalid_secret_name: arr(old_spec, "tls")
                .iter()
                .any(|t| !tls_secret_name_errors(str_at(Some(t), "secretName")).is_empty()),
            allow_invalid_wildcard_host_rule: arr(old_spec, "rules").iter().any(|r| {
                str_at(Some(r), "host").contains('*')
                    && !validate_rule_value(Some(r), "", Options::default()).is_empty()
            }),
            allow_relaxed_service_name: old_has_relaxed_service_name(old_spec),
        };
        let mut errs = validate_spec(new.get("spec"), "spec", opts);
        errs.extend(validate_load_balancer_status(new.get("status"), old.get("status")));
        errs
    }
}

fn tls_secret_name_errors(name: &str) -> Vec<String> {
    if name.is_empty() {
        Vec::new()
    } else {
        is_dns1123_subdomain(name)
    }
}

/// Whether a stored backend uses a service name that is a DNS label but not
/// a DNS-1035 label (kept valid on update).
fn old_has_relaxed_service_name(spec: Option<&Value>) -> bool {
    let relaxed = |backend: Option<&Value>| {
        let name = str_at(get(backend, "service"), "name");
        get(backend, "service").is_some() && is_dns1123_label(name).is_empty() && !is_dns1035_label(name).is_empty()
    };
    relaxed(get(spec, "defaultBackend"))
        || arr(spec, "rules").iter().any(|r| {
            arr(get(Some(r), "http"), "paths")
                .iter()
                .any(|p| relaxed(get(Some(p), "backend")))
        })
}

fn validate_spec(spec: Option<&Value>, path: &str, opts: Options) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let rules = get(spec, "rules").and_then(Value::as_array);
    let default_backend = get(spec, "defaultBackend");
    if rules.is_none_or(Vec::is_empty) && default_backend.is_none() {
        let rendered = go_slice("networking.IngressRule", rules.map(|_| &[][..]));
        errs.push(super::values::invalid_raw(
            path,
            &rendered,
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if default_backend.is_some() {
        errs.extend(validate_backend(default_backend, &child(path, "defaultBackend"), opts));
    }
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        let p = index(&child(path, "rules"), i);
        let host = str_at(Some(rule), "host");
        let mut wildcard = false;
        if !host.is_empty() {
            let hp = child(&p, "host");
            if parse_ip_sloppy(host).is_some() {
                errs.push(FieldError::invalid(&hp, host, "must be a DNS name, not an IP address"));
            }
            if host.contains('*') {
                for m in is_wildcard_dns1123_subdomain(host) {
                    errs.push(FieldError::invalid(&hp, host, m));
                }
                wildcard = true;
            } else {
                for m in is_dns1123_subdomain(host) {
                    errs.push(FieldError::invalid(&hp, host, m));
                }
            }
        }
        if !wildcard || !opts.allow_invalid_wildcard_host_rule {
            errs.extend(validate_rule_value(Some(rule), &p, opts));
        }
    }
    for (i, tls) in arr(spec, "tls").iter().enumerate() {
        let p = index(&child(path, "tls"), i);
        for (j, host) in arr(Some(tls), "hosts").iter().enumerate() {
            let host = host.as_str().unwrap_or("");
            let hp = index(&child(&p, "hosts"), j);
            let msgs = if host.contains('*') {
                is_wildcard_dns1123_subdomain(host)
            } else {
                is_dns1123_subdomain(host)
            };
            for m in msgs {
                errs.push(FieldError::invalid(&hp, host, m));
            }
        }
        if !opts.allow_invalid_secret_name {
            let secret = str_at(Some(tls), "secretName");
            for m in tls_secret_name_errors(secret) {
                errs.push(FieldError::invalid(child(&p, "secretName"), secret, m));
            }
        }
    }
    if let Some(class) = opt_str(spec, "ingressClassName") {
        for m in is_dns1123_subdomain(class) {
            errs.push(FieldError::invalid(child(path, "ingressClassName"), class, m));
        }
    }
    errs
}

fn validate_rule_value(rule: Option<&Value>, path: &str, opts: Options) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let Some(http) = get(rule, "http") else {
        return errs;
    };
    let hp = child(path, "http");
    let paths = arr(Some(http), "paths");
    if paths.is_empty() {
        errs.push(FieldError::required(child(&hp, "paths"), ""));
    }
    for (i, p) in paths.iter().enumerate() {
        errs.extend(validate_path(p, &index(&child(&hp, "paths"), i), opts));
    }
    errs
}

fn validate_path(p: &Value, path: &str, opts: Options) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let Some(path_type) = opt_str(Some(p), "pathType") else {
        errs.push(FieldError::required(
            child(path, "pathType"),
            "pathType must be specified",
        ));
        return errs;
    };
    let value = str_at(Some(p), "path");
    let vp = child(path, "path");
    match path_type {
        "Exact" | "Prefix" => {
            if !value.starts_with('/') {
                errs.push(FieldError::invalid(&vp, value, "must be an absolute path"));
            }
            if !value.is_empty() {
                for seq in ["//", "/./", "/../", "%2f", "%2F"] {
                    if value.contains(seq) {
                        errs.push(FieldError::invalid(&vp, value, format!("must not contain '{seq}'")));
                    }
                }
                for suffix in ["/..", "/."] {
                    if value.ends_with(suffix) {
                        errs.push(FieldError::invalid(&vp, value, format!("cannot end with '{suffix}'")));
                    }
                }
            }
        }
        "ImplementationSpecific" => {
            if !value.is_empty() && !value.starts_with('/') {
                errs.push(FieldError::invalid(&vp, value, "must be an absolute path"));
            }
        }
        other => errs.push(FieldError::not_supported(
            child(path, "pathType"),
            other,
            &["Exact", "ImplementationSpecific", "Prefix"],
        )),
    }
    errs.extend(validate_backend(get(Some(p), "backend"), &child(path, "backend"), opts));
    errs
}

fn validate_backend(backend: Option<&Value>, path: &str, opts: Options) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let resource = get(backend, "resource");
    let service = get(backend, "service");
    match (resource, service) {
        (Some(_), Some(_)) => {
            errs.push(FieldError::invalid(
                path,
                "",
                "cannot set both resource and service backends",
            ));
        }
        (Some(r), None) => errs.extend(validate_typed_local_object_reference(r, &child(path, "resource"))),
        (None, Some(s)) => {
            let name = str_at(Some(s), "name");
            let np = format!("{path}.service.name");
            if name.is_empty() {
                errs.push(FieldError::required(np, ""));
            } else {
                let msgs = if opts.allow_relaxed_service_name {
                    is_dns1123_label(name)
                } else {
                    is_dns1035_label(name)
                };
                for m in msgs {
                    errs.push(FieldError::invalid(&np, name, m));
                }
            }
            let port = get(Some(s), "port");
            let port_name = str_at(port, "name");
            let number = get(port, "number").and_then(Value::as_i64).unwrap_or(0);
            if !port_name.is_empty() && number != 0 {
                errs.push(FieldError::invalid(path, "", "cannot set both port name & port number"));
            } else if !port_name.is_empty() {
                for m in is_valid_port_name(port_name) {
                    errs.push(FieldError::invalid(format!("{path}.service.port.name"), port_name, m));
                }
            } else if number != 0 {
                for m in is_valid_port_num(number) {
                    errs.push(FieldError::invalid(format!("{path}.service.port.number"), number, m));
                }
            } else {
                errs.push(FieldError::required(path, "port name or number is required"));
            }
        }
        (None, None) => errs.push(FieldError::invalid(path, "", "resource or service backend is required")),
    }
    errs
}

/// A `TypedLocalObjectReference` (a resource backend).
fn validate_typed_local_object_reference(r: &Value, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if let Some(group) = opt_str(Some(r), "apiGroup") {
        for m in is_dns1123_subdomain(group) {
            errs.push(FieldError::invalid(child(path, "apiGroup"), group, m));
        }
    }
    for field in ["kind", "name"] {
        let v = str_at(Some(r), field);
        if v.is_empty() {
            errs.push(FieldError::required(child(path, field), ""));
        } else {
            for m in is_path_segment_name(v) {
                errs.push(FieldError::invalid(child(path, field), v, m));
            }
        }
    }
    errs
}

/// `status.loadBalancer.ingress[]`: IPs and hostnames.
fn validate_load_balancer_status(status: Option<&Value>, old: Option<&Value>) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let old_ips: Vec<&str> = arr(get(old, "loadBalancer"), "ingress")
        .iter()
        .map(|i| str_at(Some(i), "ip"))
        .filter(|ip| !ip.is_empty())
        .collect();
    for (i, ing) in arr(get(status, "loadBalancer"), "ingress").iter().enumerate() {
        let p = index("status.loadBalancer.ingress", i);
        let ip = str_at(Some(ing), "ip");
        if !ip.is_empty() && !old_ips.contains(&ip) {
            errs.extend(super::formats::validate_ip_legacy(&child(&p, "ip"), ip));
        }
        let host = str_at(Some(ing), "hostname");
        if !host.is_empty() {
            for m in is_dns1123_subdomain(host) {
                errs.push(FieldError::invalid(child(&p, "hostname"), host, m));
            }
            if parse_ip_sloppy(host).is_some() {
                errs.push(FieldError::invalid(
                    child(&p, "hostname"),
                    host,
                    "must be a DNS name, not an IP address",
                ));
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn check(spec: Value, expected: &[&str]) {
        let obj = match json!({"metadata": {"name": "i", "namespace": "default"}, "spec": spec}) {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let got: Vec<String> = IngressStrategy.validate(&obj).iter().map(ToString::to_string).collect();
        assert_eq!(got, expected);
    }

    fn backend() -> Value {
        json!({"service": {"name": "web", "port": {"number": 80}}})
    }

    #[test]
    fn valid() {
        check(json!({"defaultBackend": backend()}), &[]);
        check(
            json!({"ingressClassName": "nginx", "rules": [{"host": "*.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": backend()},
                {"pathType": "ImplementationSpecific", "backend": {"resource": {"apiGroup": "k8s.example.com", "kind": "StorageBucket", "name": "b"}}}
            ]}}], "tls": [{"hosts": ["*.example.com"], "secretName": "tls"}]}),
            &[],
        );
    }

    #[test]
    fn rules_and_paths() {
        check(
            json!({}),
            &[
                "spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified",
            ],
        );
        check(
            json!({"rules": []}),
            &["spec: Invalid value: []networking.IngressRule{}: either `defaultBackend` or `rules` must be specified"],
        );
        check(
            json!({"rules": [{"http": {"paths": [{"path": "/", "backend": backend()}]}}]}),
            &["spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"],
        );
        check(
            json!({"rules": [{"http": {"paths": [{"path": "/", "pathType": "Regex", "backend": backend()}]}}]}),
            &[
                "spec.rules[0].http.paths[0].pathType: Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"",
            ],
        );
        check(
            json!({"rules": [{"http": {"paths": [{"path": "a/../", "pathType": "Exact", "backend": backend()}]}}]}),
            &[
                "spec.rules[0].http.paths[0].path: Invalid value: \"a/../\": must be an absolute path",
                "spec.rules[0].http.paths[0].path: Invalid value: \"a/../\": must not contain '/../'",
            ],
        );
        check(
            json!({"rules": [{"host": "1.2.3.4", "http": {"paths": []}}]}),
            &[
                "spec.rules[0].host: Invalid value: \"1.2.3.4\": must be a DNS name, not an IP address",
                "spec.rules[0].http.paths: Required value",
            ],
        );
    }

    #[test]
    fn backends() {
        check(
            json!({"defaultBackend": {}}),
            &["spec.defaultBackend: Invalid value: \"\": resource or service backend is required"],
        );
        check(
            json!({"defaultBackend": {"service": {"name": "web", "port": {"name": "http", "number": 80}}}}),
            &["spec.defaultBackend: Invalid value: \"\": cannot set both port name & port number"],
        );
        check(
            json!({"defaultBackend": {"service": {"name": "Web"}}}),
            &[
                "spec.defaultBackend.service.name: Invalid value: \"Web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
                "spec.defaultBackend: Required value: port name or number is required",
            ],
        );
        check(
            json!({"defaultBackend": {"service": {"name": "web", "port": {"number": 70000}}}}),
            &["spec.defaultBackend.service.port.number: Invalid value: 70000: must be between 1 and 65535, inclusive"],
        );
        check(
            json!({"defaultBackend": {"resource": {"kind": "K"}, "service": {"name": "web"}}}),
            &["spec.defaultBackend: Invalid value: \"\": cannot set both resource and service backends"],
        );
        check(
            json!({"defaultBackend": {"resource": {"kind": "a/b"}}}),
            &[
                "spec.defaultBackend.resource.kind: Invalid value: \"a/b\": may not contain '/'",
                "spec.defaultBackend.resource.name: Required value",
            ],
        );
    }

    #[test]
    fn class_annotation_must_match() {
        let obj = match json!({"metadata": {"name": "i", "annotations": {"kubernetes.io/ingress.class": "a"}},
            "spec": {"ingressClassName": "b", "defaultBackend": backend()}})
        {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        assert_eq!(
            IngressStrategy.validate(&obj).summary(),
            "annotations.kubernetes.io/ingress.class: Invalid value: \"a\": must match `ingressClassName` when both are specified"
        );
    }
}
