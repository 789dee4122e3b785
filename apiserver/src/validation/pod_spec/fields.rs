//! Small accessors over JSON objects and the generic field checks upstream
//! shares between kinds (`ValidateNonnegativeField`, `ValidateLabels`,
//! `ValidatePositiveIntOrPercent`, `ValidateImmutableField`, ...).

use serde_json::{Map, Value};

use crate::validation::names::{is_qualified_name, is_valid_label_value};
use crate::validation::object_meta::TOTAL_ANNOTATION_SIZE_LIMIT;
use crate::validation::{ErrorType, FieldError, FieldErrors, key};

/// `ValidateNonnegativeField`'s message.
pub const NONNEGATIVE: &str = "must be greater than or equal to 0";
/// `ValidateImmutableField`'s message.
pub const IMMUTABLE: &str = "field is immutable";
/// `IsValidPercent`'s message.
pub const PERCENT: &str = "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";

/// The string at `key` of an object, `""` when absent.
pub fn str_at<'a>(v: Option<&'a Value>, key: &str) -> &'a str {
    v.and_then(|v| v.get(key)).and_then(Value::as_str).unwrap_or("")
}

/// The integer at `key`, when present.
pub fn int(v: Option<&Value>, key: &str) -> Option<i64> {
    v.and_then(|v| v.get(key)).and_then(Value::as_i64)
}

/// The array at `key`, empty when absent.
pub fn arr<'a>(v: Option<&'a Value>, key: &str) -> &'a [Value] {
    v.and_then(|v| v.get(key))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The object at `key`, when present.
pub fn obj<'a>(v: Option<&'a Value>, key: &str) -> Option<&'a Map<String, Value>> {
    v.and_then(|v| v.get(key)).and_then(Value::as_object)
}

/// Whether `key` holds a non-null value.
pub fn has(v: Option<&Value>, key: &str) -> bool {
    v.and_then(|v| v.get(key)).is_some_and(|v| !v.is_null())
}

/// The value at a dotted path of object keys.
pub fn at<'a>(v: Option<&'a Value>, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v?, |v, k| v.get(*k)).filter(|v| !v.is_null())
}

/// `ValidateNonnegativeField`.
pub fn nonnegative(value: i64, path: &str, errs: &mut FieldErrors) {
    if value < 0 {
        errs.push(FieldError::invalid(path, value, NONNEGATIVE));
    }
}

/// `ValidateNonnegativeField` on the integer at `key` of `v`, when present.
pub fn nonnegative_at(v: Option<&Value>, key: &str, path: &str, errs: &mut FieldErrors) {
    if let Some(n) = int(v, key) {
        nonnegative(n, &format!("{path}.{key}"), errs);
    }
}

/// `ValidateImmutableField`: `new` must equal `old`.
pub fn immutable(new: Option<&Value>, old: Option<&Value>, path: &str, errs: &mut FieldErrors) {
    let norm = |v: Option<&Value>| v.filter(|v| !v.is_null()).cloned();
    if norm(new) != norm(old) {
        errs.push(FieldError::invalid(path, norm(new).unwrap_or(Value::Null), IMMUTABLE));
    }
}

/// A `Not found` error.
pub fn not_found(path: &str, value: impl Into<Value>) -> FieldError {
    FieldError::new(ErrorType::NotFound, path, Some(value.into()), "")
}

/// `ValidateLabels` of a label map at `path`.
pub fn validate_labels(labels: Option<&Value>, path: &str, errs: &mut FieldErrors) {
    let Some(labels) = labels.and_then(Value::as_object) else {
        return;
    };
    for (k, v) in labels {
        for m in is_qualified_name(k) {
            errs.push(FieldError::invalid(path, k.as_str(), m));
        }
        let v = v.as_str().unwrap_or("");
        for m in is_valid_label_value(v) {
            errs.push(FieldError::invalid(key(path, k), v, m));
        }
    }
}

/// `ValidateAnnotations` of an annotation map at `path`.
pub fn validate_annotations(annotations: Option<&Value>, path: &str, errs: &mut FieldErrors) {
    let Some(annotations) = annotations.and_then(Value::as_object) else {
        return;
    };
    let mut total = 0;
    for (k, v) in annotations {
        total += k.len() + v.as_str().map_or(0, str::len);
        for m in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k.as_str(), m));
        }
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
}

/// The number of an int-or-percent value: `(value, is_percent)`, `None` for
/// a malformed percent string.
pub fn int_or_percent_value(v: &Value) -> Option<(i64, bool)> {
    match v {
        Value::Number(n) => n.as_i64().map(|n| (n, false)),
        Value::String(s) => {
            let digits = s.strip_suffix('%')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse().ok().map(|n| (n, true))
        }
        _ => None,
    }
}

/// `ValidatePositiveIntOrPercent` and `IsNotMoreThan100Percent`.
pub fn positive_int_or_percent(v: &Value, path: &str, errs: &mut FieldErrors) {
    match v {
        Value::String(_) => match int_or_percent_value(v) {
            None => errs.push(FieldError::invalid(path, v.clone(), PERCENT)),
            Some((n, _)) if n > 100 => errs.push(FieldError::invalid(path, v.clone(), "must not be greater than 100%")),
            Some(_) => {}
        },
        Value::Number(n) => nonnegative(n.as_i64().unwrap_or(-1), path, errs),
        _ => errs.push(FieldError::invalid(
            path,
            v.clone(),
            "must be an integer or percentage (e.g '5%')",
        )),
    }
}

/// The value upstream's `getIntOrPercentValue` sees (0 for malformed).
pub fn int_or_percent_number(v: Option<&Value>) -> i64 {
    v.and_then(int_or_percent_value).map_or(0, |(n, _)| n)
}
