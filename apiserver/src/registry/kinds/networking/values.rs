//! Reading the JSON objects the strategies of networking, discovery, RBAC,
//! coordination, storage and scheduling validate, and the field errors they
//! share (`field is immutable`, `Too long`, `Too many`, Go-rendered values).

use serde_json::{Map, Value};

use crate::validation::{ErrorType, FieldError};

/// `v[key]` when `v` is an object and the field is present and not null.
pub fn get<'a>(v: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    v.and_then(|v| v.get(key)).filter(|v| !v.is_null())
}

/// A string field ("" when absent or not a string).
pub fn str_at<'a>(v: Option<&'a Value>, key: &str) -> &'a str {
    get(v, key).and_then(Value::as_str).unwrap_or("")
}

/// A string field that is present (Go's non-nil `*string`).
pub fn opt_str<'a>(v: Option<&'a Value>, key: &str) -> Option<&'a str> {
    get(v, key).and_then(Value::as_str)
}

/// An array field (empty when absent).
pub fn arr<'a>(v: Option<&'a Value>, key: &str) -> &'a [Value] {
    get(v, key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// The strings of an array field.
pub fn strs<'a>(v: Option<&'a Value>, key: &str) -> Vec<&'a str> {
    arr(v, key).iter().map(|s| s.as_str().unwrap_or("")).collect()
}

/// An integer field.
pub fn int_at(v: Option<&Value>, key: &str) -> Option<i64> {
    get(v, key).and_then(Value::as_i64)
}

/// Sets `m[key]` to `value` when it is absent or null.
pub fn set_default(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), value);
    }
}

/// The object at `m[key]`, created when absent or not an object.
pub fn object_mut<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = m.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(o) => o,
        _ => unreachable!("just made an object"),
    }
}

/// Calls `f` on every object in the array `m[key]`.
pub fn each_object_mut(m: &mut Map<String, Value>, key: &str, mut f: impl FnMut(&mut Map<String, Value>)) {
    if let Some(Value::Array(items)) = m.get_mut(key) {
        for item in items {
            if let Value::Object(o) = item {
                f(o);
            }
        }
    }
}

/// `path: Invalid value: <new>: field is immutable`.
pub fn immutable(path: impl Into<String>, new: impl Into<Value>) -> FieldError {
    FieldError::invalid(path, new, "field is immutable")
}

/// An Invalid error whose value is shown as Go's `%#v` renders it
/// (`rbac.RoleRef{...}`, `[]string{"a"}`): the rendering is given verbatim.
pub fn invalid_raw(path: impl Into<String>, rendered: &str, detail: &str) -> FieldError {
    FieldError::new(ErrorType::Invalid, path, None, format!("{rendered}: {detail}"))
}

/// `path: Too long: must have at most N bytes`.
pub fn too_long(path: impl Into<String>, max: usize) -> FieldError {
    FieldError::new(ErrorType::TooLong, path, None, format!("must have at most {max} bytes"))
}

/// `path: Too many: N: must have at most M items`.
pub fn too_many(path: impl Into<String>, actual: usize, max: usize) -> FieldError {
    FieldError::new(
        ErrorType::TooMany,
        path,
        Some(Value::from(actual)),
        format!("must have at most {max} items"),
    )
}

/// A Go-quoted string (`%q`).
pub fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Go's `%#v` of a string slice of type `[]<elem>`: `[]string{"a", "b"}`,
/// `[]string{}` for an empty one and `[]string(nil)` for an absent one.
pub fn go_slice(elem: &str, items: Option<&[&str]>) -> String {
    match items {
        None => format!("[]{elem}(nil)"),
        Some(items) => format!(
            "[]{elem}{{{}}}",
            items.iter().map(|s| go_quote(s)).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// [`go_slice`] of the array field `key` of `v`.
pub fn go_slice_at(elem: &str, v: Option<&Value>, key: &str) -> String {
    match get(v, key).and_then(Value::as_array) {
        None => go_slice(elem, None),
        Some(a) => {
            let items: Vec<&str> = a.iter().map(|s| s.as_str().unwrap_or("")).collect();
            go_slice(elem, Some(&items))
        }
    }
}

/// Whether two optional fields differ, an absent field and a null one
/// being the same.
pub fn differs(a: Option<&Value>, b: Option<&Value>) -> bool {
    a.filter(|v| !v.is_null()) != b.filter(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn renders() {
        assert_eq!(go_slice("string", None), "[]string(nil)");
        assert_eq!(go_slice("string", Some(&["/a", "b"])), "[]string{\"/a\", \"b\"}");
        assert_eq!(go_slice_at("string", Some(&json!({"x": []})), "x"), "[]string{}");
        assert_eq!(
            invalid_raw("roleRef", "rbac.RoleRef{}", "cannot change roleRef").to_string(),
            "roleRef: Invalid value: rbac.RoleRef{}: cannot change roleRef"
        );
        assert_eq!(too_long("p", 5).to_string(), "p: Too long: must have at most 5 bytes");
        assert_eq!(
            too_many("p", 7, 5).to_string(),
            "p: Too many: 7: must have at most 5 items"
        );
        assert!(!differs(None, Some(&Value::Null)));
        assert!(differs(None, Some(&json!({}))));
    }
}
