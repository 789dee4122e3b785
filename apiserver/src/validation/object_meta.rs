//! `metadata` validation shared by every kind (upstream's
//! `ValidateObjectMeta` and `ValidateObjectMetaUpdate`).

use serde_json::{Map, Value};

use super::names::{
    is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_path_segment_name, is_qualified_name,
    is_valid_label_value,
};
use super::{FieldError, FieldErrors, key};

/// Total size limit of all annotations.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// How a kind's names are validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain (most kinds).
    Dns1123Subdomain,
    /// RFC 1123 label (namespaces).
    Dns1123Label,
    /// RFC 1035 label (services: must start with a letter).
    Dns1035Label,
    /// Any single path segment (RBAC kinds and a few more).
    PathSegment,
}

impl NameRule {
    pub fn check(self, name: &str) -> Vec<String> {
        match self {
            NameRule::Dns1123Subdomain => is_dns1123_subdomain(name),
            NameRule::Dns1123Label => is_dns1123_label(name),
            NameRule::Dns1035Label => is_dns1035_label(name),
            NameRule::PathSegment => is_path_segment_name(name),
        }
    }
}

fn str_field<'a>(meta: &'a Map<String, Value>, field: &str) -> &'a str {
    meta.get(field).and_then(Value::as_str).unwrap_or("")
}

/// Validates the metadata of an object being created (or updated).
pub fn validate(meta: &Map<String, Value>, namespaced: bool, rule: NameRule) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let name = str_field(meta, "name");
    let generate_name = str_field(meta, "generateName");
    if name.is_empty() && generate_name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    }
    if !name.is_empty() {
        for m in rule.check(name) {
            errs.push(FieldError::invalid("metadata.name", name, m));
        }
    }
    if !generate_name.is_empty() && name.is_empty() {
        // The prefix plus a random suffix must make a valid name; the check
        // masks a trailing dash as upstream does.
        let masked = generate_name
            .strip_suffix('-')
            .map(|p| format!("{p}a"))
            .unwrap_or_else(|| generate_name.to_string());
        for m in rule.check(&masked) {
            errs.push(FieldError::invalid("metadata.generateName", generate_name, m));
        }
    }
    let namespace = str_field(meta, "namespace");
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required("metadata.namespace", ""));
        } else {
            for m in is_dns1123_label(namespace) {
                errs.push(FieldError::invalid("metadata.namespace", namespace, m));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden("metadata.namespace", "not allowed on this type"));
    }
    if let Some(labels) = meta.get("labels").and_then(Value::as_object) {
        for (k, v) in labels {
            for m in is_qualified_name(k) {
                errs.push(FieldError::invalid("metadata.labels", k.as_str(), m));
            }
            let v = v.as_str().unwrap_or("");
            for m in is_valid_label_value(v) {
                errs.push(FieldError::invalid(key("metadata.labels", k), v, m));
            }
        }
    }
    if let Some(annotations) = meta.get("annotations").and_then(Value::as_object) {
        let mut total = 0;
        for (k, v) in annotations {
            total += k.len() + v.as_str().map_or(0, str::len);
            for m in is_qualified_name(&k.to_lowercase()) {
                errs.push(FieldError::invalid("metadata.annotations", k.as_str(), m));
            }
        }
        if total > TOTAL_ANNOTATION_SIZE_LIMIT {
            errs.push(FieldError::too_long(
                "metadata.annotations",
                TOTAL_ANNOTATION_SIZE_LIMIT,
            ));
        }
    }
    if let Some(finalizers) = meta.get("finalizers").and_then(Value::as_array) {
        let mut seen = std::collections::BTreeSet::new();
        for (i, f) in finalizers.iter().enumerate() {
            let f = f.as_str().unwrap_or("");
            for m in is_qualified_name(f) {
                errs.push(FieldError::invalid(format!("metadata.finalizers[{i}]"), f, m));
            }
            if !seen.insert(f) {
                errs.push(FieldError::duplicate(format!("metadata.finalizers[{i}]"), f));
            }
        }
    }
    if let Some(owners) = meta.get("ownerReferences").and_then(Value::as_array) {
        let mut controllers = 0;
        for (i, o) in owners.iter().enumerate() {
            let path = format!("metadata.ownerReferences[{i}]");
            for field in ["apiVersion", "kind", "name", "uid"] {
                if o.get(field).and_then(Value::as_str).unwrap_or("").is_empty() {
                    let detail = match field {
                        "apiVersion" => "version must not be empty",
                        "kind" => "kind must not be empty",
                        "name" => "name must not be empty",
                        _ => "uid must not be empty",
                    };
                    errs.push(FieldError::invalid(format!("{path}.{field}"), "", detail));
                }
            }
            if o.get("controller").and_then(Value::as_bool) == Some(true) {
                controllers += 1;
            }
        }
        if controllers > 1 {
            errs.push(FieldError::invalid(
                "metadata.ownerReferences",
                Value::Array(owners.clone()),
                "Only one reference can have Controller set to true",
            ));
        }
    }
    errs
}

/// Immutable metadata fields on update (`field is immutable`).
pub fn validate_update(new: &Map<String, Value>, old: &Map<String, Value>) -> FieldErrors {
    let mut errs = FieldErrors::new();
    for field in ["name", "namespace", "uid", "creationTimestamp"] {
        let (n, o) = (
            new.get(field).cloned().unwrap_or(Value::Null),
            old.get(field).cloned().unwrap_or(Value::Null),
        );
        if n != o {
            errs.push(FieldError::invalid(
                format!("metadata.{field}"),
                n,
                "field is immutable",
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn collects_every_error() {
        let m = meta(json!({"name": "UPPER", "labels": {"bad key!": "a b"}, "finalizers": ["x/y", "x/y"]}));
        let errs = validate(&m, true, NameRule::Dns1123Subdomain);
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.name",
                "metadata.namespace",
                "metadata.labels",
                "metadata.labels[bad key!]",
                "metadata.finalizers[1]"
            ]
        );
    }

    #[test]
    fn name_or_generate_name() {
        let errs = validate(&meta(json!({"namespace": "d"})), true, NameRule::Dns1123Subdomain);
        assert_eq!(
            errs.summary(),
            "metadata.name: Required value: name or generateName is required"
        );
        assert!(
            validate(
                &meta(json!({"generateName": "web-", "namespace": "d"})),
                true,
                NameRule::Dns1123Subdomain
            )
            .is_empty()
        );
        assert!(
            validate(&meta(json!({"name": "n"})), true, NameRule::Dns1123Subdomain)
                .iter()
                .any(|e| e.field == "metadata.namespace")
        );
        assert!(
            validate(
                &meta(json!({"name": "n", "namespace": "x"})),
                false,
                NameRule::Dns1123Label
            )
            .iter()
            .any(|e| e.field == "metadata.namespace")
        );
    }

    #[test]
    fn immutable_fields() {
        let errs = validate_update(
            &meta(json!({"name": "a", "uid": "2"})),
            &meta(json!({"name": "a", "uid": "1"})),
        );
        assert_eq!(errs.summary(), "metadata.uid: Invalid value: \"2\": field is immutable");
    }
}
