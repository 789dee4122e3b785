//! IPAddress (`networking.k8s.io/v1`): the name is the address itself, in
//! canonical form (`ValidateIPAddressName`, upstream's strict `IsValidIP`);
//! `spec.parentRef` is required and immutable.

use std::net::IpAddr;

use serde_json::Value;

use super::formats::parse_ip_sloppy;
use super::values::{get, invalid_raw, str_at};
use crate::registry::kinds::default_traits;
use crate::registry::object::{self, Object};
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::names::{is_dns1123_subdomain, is_path_segment_name};
use crate::validation::object_meta::NameRule;
use crate::validation::{FieldError, FieldErrors, child};

#[derive(Debug, Default)]
pub struct IpAddressStrategy;

/// `IsValidIP`'s messages for `value` (empty when it is a valid IP in
/// canonical form).
pub fn ip_strict_errors(value: &str) -> Vec<String> {
    if parse_ip_sloppy(value).is_none() {
        return vec!["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".into()];
    }
    let mut errs = Vec::new();
    let strict = value.parse::<IpAddr>();
    match strict {
        Err(_) => errs.push("must not have leading 0s".to_string()),
        Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => {
            errs.push("must not be an IPv4-mapped IPv6 address".to_string());
        }
        Ok(ip) => {
            let canonical = ip.to_string();
            if canonical != value {
                errs.push(format!("must be in canonical form (\"{canonical}\")"));
            }
        }
    }
    errs
}

/// `networking.ParentReference{...}` as Go's `%#v` prints it.
fn go_parent_ref(r: Option<&Value>) -> String {
    match r.filter(|v| !v.is_null()) {
        None => "(*networking.ParentReference)(nil)".into(),
        Some(r) => {
            let f = |k: &str| serde_json::to_string(str_at(Some(r), k)).unwrap_or_default();
            format!(
                "networking.ParentReference{{Group:{}, Resource:{}, Namespace:{}, Name:{}}}",
                f("group"),
                f("resource"),
                f("namespace"),
                f("name")
            )
        }
    }
}

/// `validateIPAddressParentReference`.
fn validate_parent_ref(spec: Option<&Value>) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let Some(r) = get(spec, "parentRef") else {
        errs.push(FieldError::required("spec.parentRef", ""));
        return errs;
    };
    let path = "spec.parentRef";
    let r = Some(r);
    let group = str_at(r, "group");
    if !group.is_empty() {
        for m in is_dns1123_subdomain(group) {
            errs.push(FieldError::invalid(child(path, "group"), group, m));
        }
    }
    for (field, required) in [("resource", true), ("name", true), ("namespace", false)] {
        let v = str_at(r, field);
        if v.is_empty() {
            if required {
                errs.push(FieldError::required(child(path, field), ""));
            }
            continue;
        }
        for m in is_path_segment_name(v) {
            errs.push(FieldError::invalid(child(path, field), v, m));
        }
    }
    errs
}

impl Strategy for IpAddressStrategy {
    fn traits(&self) -> KindTraits {
        // The name is checked as an IP below; a path segment is the widest
        // rule that still lets IPv6 names through the generic check.
        KindTraits {
            name_rule: NameRule::PathSegment,
            ..default_traits("networking.k8s.io", "ipaddresses")
        }
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        let mut errs = FieldErrors::new();
        let name = object::name(obj);
        if !name.is_empty() && is_path_segment_name(name).is_empty() {
            for m in ip_strict_errors(name) {
                errs.push(FieldError::invalid("metadata.name", name, m));
            }
        }
        errs.extend(validate_parent_ref(obj.get("spec")));
        errs
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = FieldErrors::new();
        let (n, o) = (get(new.get("spec"), "parentRef"), get(old.get("spec"), "parentRef"));
        if n != o {
            errs.push(invalid_raw("spec.parentRef", &go_parent_ref(n), "field is immutable"));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        v.as_object().cloned().unwrap()
    }

    fn check(name: &str, spec: Value, expected: &[&str]) {
        let o = obj(json!({"metadata": {"name": name}, "spec": spec}));
        let got: Vec<String> = IpAddressStrategy.validate(&o).iter().map(ToString::to_string).collect();
        assert_eq!(got, expected, "{name}");
    }

    #[test]
    fn names_are_canonical_ips() {
        let parent = json!({"parentRef": {"group": "", "resource": "services", "namespace": "default", "name": "s"}});
        check("10.96.0.10", parent.clone(), &[]);
        check("2001:db8::1", parent.clone(), &[]);
        check(
            "2001:DB8::1",
            parent.clone(),
            &["metadata.name: Invalid value: \"2001:DB8::1\": must be in canonical form (\"2001:db8::1\")"],
        );
        check(
            "010.0.0.1",
            parent.clone(),
            &["metadata.name: Invalid value: \"010.0.0.1\": must not have leading 0s"],
        );
        check(
            "::ffff:1.2.3.4",
            parent.clone(),
            &["metadata.name: Invalid value: \"::ffff:1.2.3.4\": must not be an IPv4-mapped IPv6 address"],
        );
        check(
            "web",
            parent,
            &["metadata.name: Invalid value: \"web\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"],
        );
    }

    #[tokio::test]
    async fn served_over_http() {
        use axum::http::StatusCode;
        let s = crate::testing::TestServer::new().await;
        let path = "/apis/networking.k8s.io/v1/ipaddresses";
        let parent = json!({"parentRef": {"group": "gateway.networking.k8s.io", "resource": "gateways", "namespace": "default", "name": "gw"}});
        let (code, created) = s
            .post(path, json!({"metadata": {"name": "2001:db8::5"}, "spec": parent}))
            .await;
        assert_eq!(code, StatusCode::CREATED, "{created}");
        let (code, status) = s
            .post(path, json!({"metadata": {"name": "2001:db8:0::6"}, "spec": parent}))
            .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            status["message"],
            "IPAddress.networking.k8s.io \"2001:db8:0::6\" is invalid: metadata.name: Invalid value: \"2001:db8:0::6\": must be in canonical form (\"2001:db8::6\")"
        );
        let mut moved = created.clone();
        moved["spec"]["parentRef"]["name"] = json!("other");
        let (code, status) = s.put(&format!("{path}/2001:db8::5"), moved).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
        let (code, status) = s
            .put(
                "/apis/networking.k8s.io/v1/servicecidrs/kubernetes",
                json!({"metadata": {"name": "kubernetes"}, "spec": {"cidrs": ["10.0.0.0/8"]}}),
            )
            .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
        assert_eq!(
            status["details"]["causes"][0]["message"],
            "Invalid value: \"10.0.0.0/8\": field is immutable"
        );
    }

    #[test]
    fn parent_ref_rules() {
        check("10.0.0.1", json!({}), &["spec.parentRef: Required value"]);
        check(
            "10.0.0.1",
            json!({"parentRef": {"group": "Bad_", "namespace": "a/b"}}),
            &[
                "spec.parentRef.group: Invalid value: \"Bad_\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                "spec.parentRef.resource: Required value",
                "spec.parentRef.name: Required value",
                "spec.parentRef.namespace: Invalid value: \"a/b\": may not contain '/'",
            ],
        );
        let old = obj(json!({"spec": {"parentRef": {"resource": "services", "name": "a"}}}));
        let new = obj(json!({"spec": {"parentRef": {"resource": "services", "name": "b"}}}));
        assert_eq!(
            IpAddressStrategy.validate_update(&new, &old).summary(),
            "spec.parentRef: Invalid value: networking.ParentReference{Group:\"\", Resource:\"services\", Namespace:\"\", Name:\"b\"}: field is immutable"
        );
    }
}
