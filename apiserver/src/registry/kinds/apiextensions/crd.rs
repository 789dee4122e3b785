//! CustomResourceDefinition: the name is `<plural>.<group>`; the group is a
//! dotted domain; names are DNS labels (kinds in any case); scope is
//! Cluster or Namespaced; versions have unique DNS-1035 names, exactly one
//! is the storage version, and each has a schema with a root type. The
//! storage version is recorded in `status.storedVersions`.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value, json};

use crate::registry::kinds::admissionregistration::client_config::{validate_service, validate_url};
use crate::registry::kinds::default_traits;
use crate::registry::kinds::networking::values::{go_slice, invalid_raw, object_mut, set_default};
use crate::registry::object::{self, Object};
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::names::{is_dns1035_label, is_dns1123_subdomain};
use crate::validation::{FieldError, FieldErrors, child, index};

#[derive(Debug, Default)]
pub struct CrdStrategy;

fn spec(obj: &Object) -> Option<&Value> {
    obj.get("spec")
}

fn s<'a>(v: Option<&'a Value>, k: &str) -> &'a str {
    v.and_then(|v| v.get(k)).and_then(Value::as_str).unwrap_or("")
}

fn versions(obj: &Object) -> &[Value] {
    spec(obj)
        .and_then(|s| s.get("versions"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn names(obj: &Object) -> Option<&Value> {
    spec(obj).and_then(|s| s.get("names"))
}

fn storage_version(obj: &Object) -> Option<&str> {
    versions(obj)
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .map(|v| s(Some(v), "name"))
}

fn stored_versions(obj: &Object) -> Vec<String> {
    obj.get("status")
        .and_then(|s| s.get("storedVersions"))
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|v| v.as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

/// `SetDefaults_CustomResourceDefinitionSpec`.
fn apply_defaults(obj: &mut Object) {
    let Some(Value::Object(spec)) = obj.get_mut("spec") else {
        return;
    };
    if let Some(Value::Object(names)) = spec.get_mut("names") {
        let kind = names.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
        if names.get("singular").and_then(Value::as_str).is_none_or(str::is_empty) {
            names.insert("singular".into(), json!(kind.to_lowercase()));
        }
        if names.get("listKind").and_then(Value::as_str).is_none_or(str::is_empty) && !kind.is_empty() {
            names.insert("listKind".into(), json!(format!("{kind}List")));
        }
    }
    let conversion = object_mut(spec, "conversion");
    set_default(conversion, "strategy", json!("None"));
    if let Some(Value::Object(svc)) = conversion
        .get_mut("webhook")
        .and_then(|w| w.get_mut("clientConfig"))
        .and_then(|c| c.get_mut("service"))
    {
        set_default(svc, "port", json!(443));
    }
}

/// Adds the storage version to `status.storedVersions` if missing.
fn record_storage_version(obj: &mut Object) {
    let Some(storage) = storage_version(obj).map(str::to_string) else {
        return;
    };
    let mut stored = stored_versions(obj);
    if !stored.contains(&storage) {
        stored.push(storage);
    }
    let status = object_mut(obj, "status");
    status.insert("storedVersions".into(), json!(stored));
}

fn dns1035(path: String, value: &str, errs: &mut FieldErrors) {
    let problems = is_dns1035_label(value);
    if !problems.is_empty() {
        errs.push(FieldError::invalid(path, value, problems.join(",")));
    }
}

/// `ValidateCustomResourceDefinitionNames` plus the required names.
fn validate_names(obj: &Object, errs: &mut FieldErrors) {
    let n = names(obj);
    for (field, required) in [("plural", true), ("singular", true), ("kind", true), ("listKind", true)] {
        if required && s(n, field).is_empty() {
            errs.push(FieldError::required(format!("spec.names.{field}"), ""));
        }
    }
    for field in ["plural", "singular"] {
        let v = s(n, field);
        if !v.is_empty() {
            dns1035(format!("spec.names.{field}"), v, errs);
        }
    }
    for field in ["kind", "listKind"] {
        let v = s(n, field);
        let problems = is_dns1035_label(&v.to_lowercase());
        if !v.is_empty() && !problems.is_empty() {
            errs.push(FieldError::invalid(
                format!("spec.names.{field}"),
                v,
                format!(
                    "may have mixed case, but should otherwise match: {}",
                    problems.join(",")
                ),
            ));
        }
    }
    for list in ["shortNames", "categories"] {
        let items = n.and_then(|n| n.get(list)).and_then(Value::as_array);
        for (i, item) in items.into_iter().flatten().enumerate() {
            dns1035(
                index(&format!("spec.names.{list}"), i),
                item.as_str().unwrap_or(""),
                errs,
            );
        }
    }
    let (kind, list_kind) = (s(n, "kind"), s(n, "listKind"));
    if !kind.is_empty() && kind == list_kind {
        errs.push(FieldError::invalid(
            "spec.names.listKind",
            list_kind,
            "kind and listKind may not be the same",
        ));
    }
}

fn versions_value(obj: &Object) -> Value {
    spec(obj)
        .and_then(|s| s.get("versions"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// `ValidateCustomResourceDefinition` without the generic metadata checks.
pub fn validate_crd(obj: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let sp = spec(obj);
    let (group, plural) = (s(sp, "group"), s(names(obj), "plural"));
    if object::name(obj) != format!("{plural}.{group}") {
        errs.push(FieldError::invalid(
            "metadata.name",
            object::name(obj),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if group.is_empty() {
        errs.push(FieldError::required("spec.group", ""));
    } else {
        let problems = is_dns1123_subdomain(group);
        if !problems.is_empty() {
            errs.push(FieldError::invalid("spec.group", group, problems.join(",")));
        } else if !group.contains('.') {
            errs.push(FieldError::invalid(
                "spec.group",
                group,
                "should be a domain with at least one dot",
            ));
        }
    }
    match s(sp, "scope") {
        "" => errs.push(FieldError::required("spec.scope", "")),
        "Cluster" | "Namespaced" => {}
        other => errs.push(FieldError::not_supported(
            "spec.scope",
            other,
            &["Cluster", "Namespaced"],
        )),
    }
    for (i, v) in versions(obj).iter().enumerate() {
        let schema = v.get("schema").and_then(|s| s.get("openAPIV3Schema"));
        if schema.is_none_or(Value::is_null) {
            errs.push(FieldError::required(
                format!("{}.schema.openAPIV3Schema", index("spec.versions", i)),
                "schemas are required",
            ));
        }
    }
    let mut seen = HashSet::new();
    let mut unique = true;
    let mut storage_count = 0;
    for (i, v) in versions(obj).iter().enumerate() {
        let p = index("spec.versions", i);
        let name = s(Some(v), "name");
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage_count += 1;
        }
        unique &= seen.insert(name);
        dns1035(child(&p, "name"), name, &mut errs);
        let schema = v
            .get("schema")
            .and_then(|s| s.get("openAPIV3Schema"))
            .filter(|v| !v.is_null());
        if let Some(schema) = schema
            && s(Some(schema), "type").is_empty()
        {
            errs.push(FieldError::required(
                format!("{p}.schema.openAPIV3Schema.type"),
                "must not be empty at the root",
            ));
        }
    }
    if !unique {
        errs.push(FieldError::invalid(
            "spec.versions",
            versions_value(obj),
            "must contain unique version names",
        ));
    }
    if storage_count != 1 {
        errs.push(FieldError::invalid(
            "spec.versions",
            versions_value(obj),
            "must have exactly one version marked as storage version",
        ));
    }
    validate_names(obj, &mut errs);
    validate_conversion(sp.and_then(|s| s.get("conversion")), &mut errs);
    validate_stored_versions(obj, &mut errs);
    errs
}

/// `validateCustomResourceConversion`; paths use the internal type's
/// names (`webhookClientConfig`, `conversionReviewVersions`).
fn validate_conversion(conversion: Option<&Value>, errs: &mut FieldErrors) {
    let Some(conversion) = conversion.filter(|v| !v.is_null()) else {
        return;
    };
    let path = "spec.conversion";
    let webhook = conversion.get("webhook").filter(|v| !v.is_null());
    let client_config = webhook.and_then(|w| w.get("clientConfig")).filter(|v| !v.is_null());
    let review_versions: Vec<&str> = webhook
        .and_then(|w| w.get("conversionReviewVersions"))
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|v| v.as_str().unwrap_or("")).collect())
        .unwrap_or_default();
    let cc_path = format!("{path}.webhookClientConfig");
    let versions_path = format!("{path}.conversionReviewVersions");
    match s(Some(conversion), "strategy") {
        "" => errs.push(FieldError::required(format!("{path}.strategy"), "")),
        "Webhook" => {
            match client_config {
                None => errs.push(FieldError::required(
                    &cc_path,
                    "required when strategy is set to Webhook",
                )),
                Some(cc) => {
                    let url = cc.get("url").and_then(Value::as_str);
                    let service = cc.get("service").filter(|v| !v.is_null());
                    match (url, service) {
                        (Some(u), None) => errs.extend(validate_url(&child(&cc_path, "url"), u)),
                        (None, Some(svc)) => errs.extend(validate_service(&child(&cc_path, "service"), svc)),
                        _ => errs.push(FieldError::required(
                            &cc_path,
                            "exactly one of url or service is required",
                        )),
                    }
                }
            }
            validate_review_versions(&review_versions, &versions_path, errs);
        }
        "None" => {
            if client_config.is_some() {
                errs.push(FieldError::forbidden(
                    cc_path,
                    "should not be set when strategy is not set to Webhook",
                ));
            }
            if !review_versions.is_empty() {
                errs.push(FieldError::forbidden(
                    versions_path,
                    "should not be set when strategy is not set to Webhook",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            format!("{path}.strategy"),
            other,
            &["None", "Webhook"],
        )),
    }
}

/// `validateConversionReviewVersions` (a recognized version required).
fn validate_review_versions(versions: &[&str], path: &str, errs: &mut FieldErrors) {
    if versions.is_empty() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    let mut seen = HashSet::new();
    let mut accepted = false;
    for (i, v) in versions.iter().enumerate() {
        if !seen.insert(*v) {
            errs.push(FieldError::invalid(index(path, i), *v, "duplicate version"));
            continue;
        }
        for m in is_dns1035_label(v) {
            errs.push(FieldError::invalid(index(path, i), *v, m));
        }
        accepted |= matches!(*v, "v1" | "v1beta1");
    }
    if !accepted {
        errs.push(invalid_raw(
            path,
            &go_slice("string", Some(versions)),
            "must include at least one of v1, v1beta1",
        ));
    }
}

/// `ValidateCustomResourceDefinitionStoredVersions`.
fn validate_stored_versions(obj: &Object, errs: &mut FieldErrors) {
    let stored = stored_versions(obj);
    let path = "status.storedVersions";
    if stored.is_empty() {
        errs.push(FieldError::invalid(
            path,
            json!([]),
            "must have at least one stored version",
        ));
        return;
    }
    let mut left: BTreeMap<&str, usize> = stored.iter().enumerate().map(|(i, v)| (v.as_str(), i)).collect();
    for v in versions(obj) {
        let name = s(Some(v), "name");
        let is_stored = left.remove(name).is_some();
        if v.get("storage").and_then(Value::as_bool) == Some(true) && !is_stored {
            errs.push(FieldError::invalid(
                path,
                v.clone(),
                format!("must have the storage version {name}"),
            ));
        }
    }
    let mut rest: Vec<(usize, &str)> = left.into_iter().map(|(v, i)| (i, v)).collect();
    rest.sort();
    for (i, v) in rest {
        errs.push(FieldError::invalid(index(path, i), v, "must appear in spec.versions"));
    }
}

fn established(obj: &Object) -> bool {
    obj.get("status")
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| s(Some(c), "type") == "Established" && s(Some(c), "status") == "True")
        })
}

impl Strategy for CrdStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("apiextensions.k8s.io", "customresourcedefinitions")
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        apply_defaults(obj);
        let mut status = Map::new();
        status.insert("acceptedNames".into(), json!({"kind": "", "plural": ""}));
        status.insert("storedVersions".into(), json!([]));
        obj.insert("status".into(), Value::Object(status));
        record_storage_version(obj);
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        apply_defaults(new);
        record_storage_version(new);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_crd(obj)
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = validate_crd(new);
        let immutable = |path: &str, n: &str, o: &str, errs: &mut FieldErrors| {
            if n != o {
                errs.push(FieldError::invalid(path, n, "field is immutable"));
            }
        };
        if established(old) {
            immutable("spec.scope", s(spec(new), "scope"), s(spec(old), "scope"), &mut errs);
            immutable(
                "spec.names.kind",
                s(names(new), "kind"),
                s(names(old), "kind"),
                &mut errs,
            );
        }
        immutable("spec.group", s(spec(new), "group"), s(spec(old), "group"), &mut errs);
        immutable(
            "spec.names.plural",
            s(names(new), "plural"),
            s(names(old), "plural"),
            &mut errs,
        );
        errs
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use axum::http::StatusCode;

    use super::*;
    use crate::registry::strategy::testing::create_messages;
    use crate::testing::TestServer;

    fn crd(name: &str, spec: Value) -> Object {
        json!({"metadata": {"name": name}, "spec": spec})
            .as_object()
            .cloned()
            .unwrap()
    }

    fn widget_spec() -> Value {
        json!({"group": "example.com", "scope": "Namespaced",
               "names": {"plural": "widgets", "kind": "Widget"},
               "versions": [{"name": "v1", "served": true, "storage": true,
                             "schema": {"openAPIV3Schema": {"type": "object"}}}]})
    }

    fn messages(o: &Object) -> Vec<String> {
        create_messages(&CrdStrategy, Value::Object(o.clone()))
    }

    #[test]
    fn defaults_and_status() {
        let mut o = crd("widgets.example.com", widget_spec());
        CrdStrategy.prepare_for_create(&mut o);
        assert_eq!(o["spec"]["names"]["singular"], "widget");
        assert_eq!(o["spec"]["names"]["listKind"], "WidgetList");
        assert_eq!(o["spec"]["conversion"], json!({"strategy": "None"}));
        assert_eq!(o["status"]["storedVersions"], json!(["v1"]));
        assert!(CrdStrategy.validate(&o).is_empty(), "{:?}", CrdStrategy.validate(&o));
    }

    #[test]
    fn rules() {
        let mut bad = widget_spec();
        bad["group"] = json!("example");
        bad["scope"] = json!("Global");
        bad["names"]["kind"] = json!("Wid_get");
        bad["versions"] = json!([{"name": "v1", "served": true, "storage": false},
                                 {"name": "V2", "served": true, "storage": false, "schema": {"openAPIV3Schema": {}}}]);
        let got = messages(&crd("widgets.example.com", bad));
        assert_eq!(
            got[..6],
            [
                "metadata.name: Invalid value: \"widgets.example.com\": must be spec.names.plural+\".\"+spec.group",
                "spec.group: Invalid value: \"example\": should be a domain with at least one dot",
                "spec.scope: Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\"",
                "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required",
                "spec.versions[1].name: Invalid value: \"V2\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
                "spec.versions[1].schema.openAPIV3Schema.type: Required value: must not be empty at the root",
            ]
        );
        assert!(got[6].starts_with("spec.versions: Invalid value: "), "{got:?}");
        assert!(
            got[6].ends_with(": must have exactly one version marked as storage version"),
            "{got:?}"
        );
        // The singular name is defaulted from the kind.
        assert!(
            got[7].starts_with("spec.names.singular: Invalid value: \"wid_get\""),
            "{got:?}"
        );
        assert_eq!(
            got[8],
            "spec.names.kind: Invalid value: \"Wid_get\": may have mixed case, but should otherwise match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
        );
    }

    #[test]
    fn conversion_rules() {
        let mut spec = widget_spec();
        spec["conversion"] = json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v2"]}});
        let got = messages(&crd("widgets.example.com", spec.clone()));
        assert_eq!(
            got,
            [
                "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook",
                "spec.conversion.conversionReviewVersions: Invalid value: []string{\"v2\"}: must include at least one of v1, v1beta1",
            ]
        );
        spec["conversion"] = json!({"strategy": "None", "webhook": {"clientConfig": {"url": "https://x"}}});
        assert_eq!(
            messages(&crd("widgets.example.com", spec)),
            ["spec.conversion.webhookClientConfig: Forbidden: should not be set when strategy is not set to Webhook"]
        );
    }

    #[tokio::test]
    async fn stored_over_http() {
        let s = TestServer::new().await;
        let path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
        let (code, created) = s
            .post(
                path,
                json!({"metadata": {"name": "widgets.example.com"}, "spec": widget_spec()}),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{created}");
        assert_eq!(created["status"]["storedVersions"], json!(["v1"]));
        assert_eq!(created["metadata"]["generation"], 1);
        let mut changed = created.clone();
        changed["spec"]["group"] = json!("other.com");
        let (code, status) = s.put(&format!("{path}/widgets.example.com"), changed).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            status["message"]
                .as_str()
                .unwrap()
                .contains("spec.group: Invalid value: \"other.com\": field is immutable"),
            "{status}"
        );
        let mut no_schema = widget_spec();
        no_schema["versions"][0].as_object_mut().unwrap().remove("schema");
        let (code, status) = s
            .post(
                path,
                json!({"metadata": {"name": "widgets.example.com"}, "spec": no_schema}),
            )
            .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            status["message"],
            "CustomResourceDefinition.apiextensions.k8s.io \"widgets.example.com\" is invalid: spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"
        );
    }
}
