//! ConfigMaps and Secrets: key rules, the 1 MiB size limit, `immutable`,
//! and the Secret types (`ValidateConfigMap`, `ValidateSecret` and their
//! updates; `pkg/registry/core/secret/strategy.go`).
//!
//! `stringData` is merged into `data` (base64) on create and update, as
//! upstream's v1 conversion does, so stored Secrets never hold it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::checks::{config_key_errors, set_default};
use crate::registry::object::{self, Object};
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::{FieldError, FieldErrors, key};

/// `core.MaxSecretSize`: the limit of a Secret's or ConfigMap's data.
pub const MAX_DATA_SIZE: usize = 1024 * 1024;
/// The upstream text of a change to an immutable ConfigMap or Secret.
const IMMUTABLE_SET: &str = "field is immutable when `immutable` is set";

fn is_immutable(obj: &Object) -> bool {
    obj.get("immutable").and_then(Value::as_bool) == Some(true)
}

fn immutable_update(new: &Object, old: &Object, fields: &[&str]) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if is_immutable(old) {
        if !is_immutable(new) {
            errs.push(FieldError::forbidden("immutable", IMMUTABLE_SET));
        }
        for f in fields {
            let empty = |v: Option<&Value>| v.is_none_or(|v| v.is_null() || v.as_object().is_some_and(Map::is_empty));
            let (n, o) = (new.get(*f), old.get(*f));
            if n != o && !(empty(n) && empty(o)) {
                errs.push(FieldError::forbidden(*f, IMMUTABLE_SET));
            }
        }
    }
    errs
}

/// The ConfigMap strategy.
#[derive(Debug)]
pub struct ConfigMapStrategy(pub KindTraits);

/// `ValidateConfigMap`.
pub fn validate_config_map(cm: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let data = cm.get("data").and_then(Value::as_object);
    let binary = cm.get("binaryData").and_then(Value::as_object);
    let mut total = 0;
    for (k, v) in data.into_iter().flatten() {
        for m in config_key_errors(k) {
            errs.push(FieldError::invalid(key("data", k), k.as_str(), m));
        }
        if binary.is_some_and(|b| b.contains_key(k)) {
            errs.push(FieldError::invalid(
                key("data", k),
                k.as_str(),
                "duplicate of key present in binaryData",
            ));
        }
        total += v.as_str().map_or(0, str::len);
    }
    for (k, v) in binary.into_iter().flatten() {
        for m in config_key_errors(k) {
            errs.push(FieldError::invalid(key("binaryData", k), k.as_str(), m));
        }
        total += decoded_len(v);
    }
    if total > MAX_DATA_SIZE {
        errs.push(FieldError::too_long("", MAX_DATA_SIZE));
    }
    errs
}

/// The size of a base64 value once decoded.
fn decoded_len(v: &Value) -> usize {
    let s = v.as_str().unwrap_or("");
    STANDARD.decode(s).map_or(s.len() * 3 / 4, |b| b.len())
}

impl Strategy for ConfigMapStrategy {
    fn traits(&self) -> KindTraits {
        self.0
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_config_map(obj)
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = immutable_update(new, old, &["data", "binaryData"]);
        errs.extend(validate_config_map(new));
        errs
    }
}

/// The Secret strategy.
#[derive(Debug)]
pub struct SecretStrategy(pub KindTraits);

/// Merges `stringData` into `data` (base64), as the v1 conversion does,
/// and defaults `type` to Opaque.
fn prepare_secret(obj: &mut Object) {
    if let Some(Value::Object(string_data)) = obj.remove("stringData") {
        let data = obj.entry("data").or_insert_with(|| json!({}));
        if !data.is_object() {
            *data = json!({});
        }
        if let Value::Object(data) = data {
            for (k, v) in string_data {
                let text = v.as_str().unwrap_or("");
                data.insert(k, Value::String(STANDARD.encode(text)));
            }
        }
    }
    set_default(obj, "type", json!("Opaque"));
}

fn data_bytes(secret: &Object, k: &str) -> Option<Vec<u8>> {
    let v = secret.get("data")?.get(k)?;
    Some(STANDARD.decode(v.as_str().unwrap_or("")).unwrap_or_default())
}

/// Go's `encoding/json` error for a body that is not a JSON object.
fn json_object_error(bytes: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(_)) => None,
        Ok(other) => {
            let kind = match other {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                Value::Bool(_) => "bool",
                _ => return None,
            };
            Some(format!(
                "json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
            ))
        }
        Err(e) if e.is_eof() => Some("unexpected end of JSON input".into()),
        Err(e) => Some(format!("invalid character in JSON: {e}")),
    }
}

/// `ValidateSecret`.
pub fn validate_secret(secret: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let mut total = 0;
    if let Some(data) = secret.get("data").and_then(Value::as_object) {
        for (k, v) in data {
            for m in config_key_errors(k) {
                errs.push(FieldError::invalid(key("data", k), k.as_str(), m));
            }
            total += decoded_len(v);
        }
    }
    if total > MAX_DATA_SIZE {
        errs.push(FieldError::too_long("data", MAX_DATA_SIZE));
    }
    let has = |k: &str| secret.get("data").and_then(|d| d.get(k)).is_some();
    let ty = secret.get("type").and_then(Value::as_str).unwrap_or("");
    match ty {
        "kubernetes.io/service-account-token" => {
            let name = object::meta(secret)
                .get("annotations")
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if name.is_empty() {
                errs.push(FieldError::required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson" => {
            let k = if ty == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            match data_bytes(secret, k) {
                None => errs.push(FieldError::required(key("data", k), "")),
                Some(bytes) => {
                    if let Some(msg) = json_object_error(&bytes) {
                        errs.push(FieldError::invalid(key("data", k), "<secret contents redacted>", msg));
                    }
                }
            }
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(FieldError::required("data[username]", ""));
            errs.push(FieldError::required("data[password]", ""));
        }
        "kubernetes.io/ssh-auth" if data_bytes(secret, "ssh-privatekey").is_none_or(|b| b.is_empty()) => {
            errs.push(FieldError::required("data[ssh-privatekey]", ""));
        }
        "kubernetes.io/tls" => {
            if !has("tls.crt") {
                errs.push(FieldError::required("data[tls.crt]", ""));
            }
            if !has("tls.key") {
                errs.push(FieldError::required("data[tls.key]", ""));
            }
        }
        _ => {}
    }
    errs
}

impl Strategy for SecretStrategy {
    fn traits(&self) -> KindTraits {
        self.0
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        prepare_secret(obj);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_secret(obj)
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        prepare_secret(new);
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = FieldErrors::new();
        if new.get("type") != old.get("type") {
            errs.push(FieldError::invalid(
                "type",
                new.get("type").cloned().unwrap_or(Value::Null),
                super::checks::FIELD_IMMUTABLE,
            ));
        }
        errs.extend(immutable_update(new, old, &["data"]));
        errs.extend(validate_secret(new));
        errs
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn obj(v: Value) -> Object {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn config_map_rules() {
        let cm = obj(json!({"data": {"a b": "x", "k": "v"}, "binaryData": {"k": "eA=="}}));
        assert_eq!(
            validate_config_map(&cm).summary(),
            "[data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+'), data[k]: Invalid value: \"k\": duplicate of key present in binaryData]"
        );
        let big = obj(json!({"data": {"k": "x".repeat(MAX_DATA_SIZE + 1)}}));
        assert_eq!(
            validate_config_map(&big).summary(),
            ": Too long: may not be more than 1048576 bytes"
        );
        let s = ConfigMapStrategy(KindTraits::default());
        let old = obj(json!({"immutable": true, "data": {"a": "1"}}));
        let new = obj(json!({"data": {"a": "2"}}));
        assert_eq!(
            s.validate_update(&new, &old).summary(),
            "[immutable: Forbidden: field is immutable when `immutable` is set, data: Forbidden: field is immutable when `immutable` is set]"
        );
    }

    #[test]
    fn secret_types_and_string_data() {
        let s = SecretStrategy(KindTraits::default());
        let mut sec = obj(json!({"stringData": {"user": "admin"}, "data": {"x": "eQ=="}}));
        s.prepare_for_create(&mut sec);
        assert_eq!(sec.get("data"), Some(&json!({"x": "eQ==", "user": "YWRtaW4="})));
        assert_eq!(sec.get("type"), Some(&json!("Opaque")));
        assert!(!sec.contains_key("stringData"));
        let tls = obj(json!({"type": "kubernetes.io/tls", "data": {"tls.crt": ""}}));
        assert_eq!(validate_secret(&tls).summary(), "data[tls.key]: Required value");
        let sa = obj(json!({"type": "kubernetes.io/service-account-token"}));
        assert_eq!(
            validate_secret(&sa).summary(),
            "metadata.annotations[kubernetes.io/service-account.name]: Required value"
        );
        let docker = obj(
            json!({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": STANDARD.encode("[1]")}}),
        );
        assert_eq!(
            validate_secret(&docker).summary(),
            "data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": json: cannot unmarshal array into Go value of type map[string]interface {}"
        );
        let old = obj(json!({"type": "Opaque"}));
        let new = obj(json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}));
        assert_eq!(
            s.validate_update(&new, &old).summary(),
            "type: Invalid value: \"kubernetes.io/tls\": field is immutable"
        );
    }
}
