//! Renders JSON values the way upstream's Go code prints them with `%v`, so
//! that error messages quoting a patch read like kube-apiserver's
//! (`unknown patch type: foo in map: map[$patch:foo name:a]`).
//!
//! Upstream decodes patches into `map[string]interface{}` with integers kept
//! as `int64` and other numbers as `float64`; `fmt` prints maps with sorted
//! keys, slices space-separated in brackets, nil as `<nil>`.

use serde_json::Value;

/// `fmt.Sprintf("%v", v)` of the Go value upstream decodes `v` into.
pub(crate) fn value(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

/// `fmt.Sprintf("%s", v)`: strings as they are, anything else in Go's
/// `%!s(type=value)` form.
pub(crate) fn value_as_s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "%!s(<nil>)".to_string(),
        Value::Bool(_) | Value::Number(_) => format!("%!s({}={})", type_name(v), value(v)),
        Value::Array(_) | Value::Object(_) => value(v),
    }
}

/// `reflect.TypeOf(v).String()` of the Go value upstream decodes `v` into;
/// `<nil>` for null.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(f) = n.as_f64() {
                out.push_str(&float(f));
            } else {
                out.push_str(&n.to_string());
            }
        }
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(key);
                out.push(':');
                if let Some(item) = map.get(key) {
                    write_value(out, item);
                }
            }
            out.push(']');
        }
    }
}

/// `%v` of a float64: the shortest digits that round-trip, in exponent form
/// when the exponent is below -4 or at least 6 (`1e+06`, `1.5e-05`).
fn float(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    // Rust's `{:e}` prints the shortest round-trip digits: `-1.2345e3`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(digits.len().min(1));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            let (int_part, frac_part) = digits.split_at(int_len);
            out.push_str(int_part);
            out.push('.');
            out.push_str(frac_part);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_like_go() {
        let cases = [
            (
                json!({"b": [1, "x"], "a": null, "$patch": "foo"}),
                "map[$patch:foo a:<nil> b:[1 x]]",
            ),
            (json!(1.5), "1.5"),
            (json!(1000000.0), "1e+06"),
            (json!(123456.0), "123456"),
            (json!(0.0001), "0.0001"),
            (json!(0.00001), "1e-05"),
            (json!(-2.5e-7), "-2.5e-07"),
            (json!(1.234567e8), "1.234567e+08"),
            (json!(true), "true"),
        ];
        for (input, want) in cases {
            assert_eq!(value(&input), want, "{input}");
        }
        assert_eq!(value_as_s(&json!(5)), "%!s(int64=5)");
        assert_eq!(value_as_s(&json!("merge")), "merge");
    }
}
