//! Small field checks shared by the core kinds' validation, worded like
//! upstream's `k8s.io/apimachinery/pkg/util/validation` and
//! `pkg/apis/core/validation`.

use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::validation::names::{is_qualified_name, is_valid_label_value};
use crate::validation::{ErrorType, FieldError, FieldErrors, key};

/// The upstream text of an immutable field.
pub const FIELD_IMMUTABLE: &str = "field is immutable";

/// A string field of a JSON map ("" when missing).
pub fn str_of<'a>(m: Option<&'a Value>, field: &str) -> &'a str {
    m.and_then(|m| m.get(field)).and_then(Value::as_str).unwrap_or("")
}

/// An object field of a JSON map.
pub fn obj_of<'a>(m: Option<&'a Value>, field: &str) -> Option<&'a Map<String, Value>> {
    m.and_then(|m| m.get(field)).and_then(Value::as_object)
}

/// An array field of a JSON map (empty when missing).
pub fn arr_of<'a>(m: Option<&'a Value>, field: &str) -> &'a [Value] {
    m.and_then(|m| m.get(field))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Sets `key` in `m` when it is missing or null.
pub fn set_default(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), value);
    }
}

/// The `spec` map of an object, created when missing.
pub fn spec_mut(obj: &mut Map<String, Value>) -> Option<&mut Map<String, Value>> {
    let spec = obj.entry("spec").or_insert_with(|| Value::Object(Map::new()));
    spec.as_object_mut()
}

/// `IsValidPortNum`.
pub fn port_num_errors(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec!["must be between 1 and 65535, inclusive".into()]
    }
}

/// `IsValidPortName` (IANA_SVC_NAME).
pub fn port_name_errors(name: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if name.len() > 15 {
        errs.push("must be no more than 15 characters".into());
    }
    if name.is_empty()
        || !name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !name.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".into());
    }
    if name.contains("--") {
        errs.push("must not contain consecutive hyphens".into());
    }
    if name.starts_with('-') || name.ends_with('-') {
        errs.push("must not begin or end with a hyphen".into());
    }
    errs
}

/// `ValidatePortNumOrName` for an int-or-string field.
pub fn validate_port_num_or_name(v: &Value, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    match v {
        Value::Number(n) => {
            let n = n.as_i64().unwrap_or(0);
            for m in port_num_errors(n) {
                errs.push(FieldError::invalid(path, n, m));
            }
        }
        Value::String(s) => {
            for m in port_name_errors(s) {
                errs.push(FieldError::invalid(path, s.as_str(), m));
            }
        }
        _ => {}
    }
    errs
}

/// `IsValidIP` as a field error list.
pub fn validate_ip(value: &str, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if value.parse::<IpAddr>().is_err() {
        errs.push(FieldError::invalid(
            path,
            value,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ));
    }
    errs
}

/// `ValidateNonSpecialIP`: no unspecified, loopback or link-local address.
pub fn validate_non_special_ip(value: &str, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let Ok(ip) = value.parse::<IpAddr>() else {
        return errs;
    };
    let msg = if ip.is_unspecified() {
        Some("may not be unspecified (0.0.0.0)")
    } else if ip.is_loopback() {
        Some("may not be in the loopback range (127.0.0.0/8, ::1/128)")
    } else if match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    } {
        Some("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
    } else if match ip {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => (v6.segments()[0] & 0xff0f) == 0xff02,
    } {
        Some("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")
    } else {
        None
    };
    if let Some(m) = msg {
        errs.push(FieldError::invalid(path, value, m));
    }
    errs
}

/// `IsValidCIDR` as a field error list.
pub fn validate_cidr(value: &str, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let ok = value
        .split_once('/')
        .is_some_and(|(ip, len)| match ip.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => len.parse::<u8>().is_ok_and(|l| l <= 32),
            Ok(IpAddr::V6(_)) => len.parse::<u8>().is_ok_and(|l| l <= 128),
            Err(_) => false,
        });
    if !ok {
        errs.push(FieldError::invalid(
            path,
            value,
            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
        ));
    }
    errs
}

/// `IsConfigMapKey`: the rule for ConfigMap and Secret keys.
pub fn config_key_errors(k: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if k.len() > 253 {
        errs.push("must be no more than 253 characters".into());
    }
    if k.is_empty()
        || !k
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
    {
        errs.push(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
                .into(),
        );
    }
    match k {
        "." => errs.push("must not be '.'".into()),
        ".." => errs.push("must not be '..'".into()),
        _ if k.starts_with("..") => errs.push("must not start with '..'".into()),
        _ => {}
    }
    errs
}

/// `ValidateLabels` of a label map at `path` (a selector).
pub fn validate_labels(labels: &Map<String, Value>, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    for (k, v) in labels {
        for m in is_qualified_name(k) {
            errs.push(FieldError::invalid(path, k.as_str(), m));
        }
        let v = v.as_str().unwrap_or("");
        for m in is_valid_label_value(v) {
            errs.push(FieldError::invalid(key(path, k), v, m));
        }
    }
    errs
}

/// An error whose bad value is shown verbatim, for the Go values upstream
/// prints with `%#v` (`[]string{"a"}`, structs).
pub fn verbatim(error_type: ErrorType, field: impl Into<String>, shown: &str, detail: &str) -> FieldError {
    let detail = if detail.is_empty() {
        shown.to_string()
    } else {
        format!("{shown}: {detail}")
    };
    FieldError::new(error_type, field, None, detail)
}

/// A resource quantity's value (`resource.Quantity`), for comparisons;
/// `None` when it does not parse.
pub fn quantity_value(v: &Value) -> Option<f64> {
    let s = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse().ok()?),
        _ => return None,
    };
    Some(num * mult)
}

/// The text of a quantity as written.
pub fn quantity_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn checks() {
        assert!(config_key_errors("a.b_C-1").is_empty());
        assert_eq!(config_key_errors(".."), ["must not be '..'"]);
        assert_eq!(config_key_errors("..a"), ["must not start with '..'"]);
        assert_eq!(config_key_errors("a b").len(), 1);
        assert_eq!(port_name_errors("http"), Vec::<String>::new());
        assert_eq!(port_name_errors("80"), ["must contain at least one letter (a-z)"]);
        assert_eq!(quantity_value(&json!("1Gi")), Some(1073741824.0));
        assert_eq!(quantity_value(&json!("500m")), Some(0.5));
        assert_eq!(quantity_value(&json!(2)), Some(2.0));
        assert_eq!(quantity_value(&json!("1e3")), Some(1000.0));
        assert_eq!(quantity_value(&json!("x")), None);
        assert_eq!(validate_cidr("10.0.0.0/8", "f").0.len(), 0);
        assert_eq!(validate_cidr("10.0.0.0", "f").0.len(), 1);
        assert_eq!(
            validate_non_special_ip("127.0.0.1", "x").summary(),
            "x: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)"
        );
    }
}
