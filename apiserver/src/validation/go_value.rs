//! Bad values printed as upstream prints them in field errors
//! (`field.Error.ErrorBody`): numbers and booleans with `%v`, strings with
//! `%q`, and anything else with Go's `%#v`, as the Go type upstream holds:
//! `map[string]string{"app":"web"}`, `[]string{"a", "b"}`.
//!
//! A JSON value does not say which Go type it came from, so the type is
//! inferred from the elements: all strings give `string`, all integers
//! `int64`, all booleans `bool`, anything else `interface {}`.

use serde_json::{Map, Value};

use crate::selector::go_quote::go_quote;

/// `value` as it appears after `Invalid value: ` upstream.
pub fn render(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => go_quote(s),
        Value::Array(items) => slice(items),
        Value::Object(map) => map_literal(map),
    }
}

/// The Go element type name shared by `values`.
fn element_type<'a>(values: impl Iterator<Item = &'a Value>) -> &'static str {
    let mut ty = None;
    for v in values {
        let this = match v {
            Value::String(_) => "string",
            Value::Bool(_) => "bool",
            Value::Number(n) if n.is_i64() || n.is_u64() => "int64",
            Value::Number(_) => "float64",
            _ => return "interface {}",
        };
        match ty {
            None => ty = Some(this),
            Some(t) if t == this => {}
            Some(_) => return "interface {}",
        }
    }
    ty.unwrap_or("string")
}

/// One element inside a `%#v` literal: typed elements print bare, and
/// interface elements print their own `%#v` (a nested map or slice with
/// its type).
fn element(v: &Value) -> String {
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or_default();
            if f.fract() == 0.0 && f.abs() < 1e21 {
                // `%#v` of a whole float64 keeps a decimal point.
                format!("{f:.1}")
            } else {
                n.to_string()
            }
        }
        other => render(other),
    }
}

fn slice(items: &[Value]) -> String {
    let ty = element_type(items.iter());
    let body: Vec<String> = items.iter().map(element).collect();
    format!("[]{ty}{{{}}}", body.join(", "))
}

fn map_literal(map: &Map<String, Value>) -> String {
    let ty = element_type(map.values());
    // Go's fmt prints map entries sorted by key.
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let body: Vec<String> = keys
        .into_iter()
        .map(|k| format!("{}:{}", go_quote(k), element(&map[k])))
        .collect();
    format!("map[string]{ty}{{{}}}", body.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: Value, expected: &str) {
        assert_eq!(render(&v), expected, "{v}");
    }

    #[test]
    fn renders_like_go() {
        check(
            json!({"app": "web", "a": "b"}),
            r#"map[string]string{"a":"b", "app":"web"}"#,
        );
        check(json!({}), "map[string]string{}");
        check(json!(["a", "b"]), r#"[]string{"a", "b"}"#);
        check(json!([]), "[]string{}");
        check(json!([1, 2]), "[]int64{1, 2}");
        check(json!([true]), "[]bool{true}");
        check(json!(3), "3");
        check(json!(-1.5), "-1.5");
        check(json!(true), "true");
        check(json!("a\"b\u{1}"), r#""a\"b\x01""#);
        check(json!(null), "null");
        check(
            json!({"a": 1, "b": "x", "c": [1.0]}),
            r#"map[string]interface {}{"a":1, "b":"x", "c":[]float64{1.0}}"#,
        );
        check(json!(["a", 1]), r#"[]interface {}{"a", 1}"#);
    }
}
