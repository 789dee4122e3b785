//! Reading fields of stored objects by path.
//!
//! Printers see objects as stored JSON, where an absent field and an explicit
//! `null` both mean Go's zero value. These accessors return that zero value
//! (`""`, `0`, `false`, an empty list) or `None` where the printer needs to
//! tell "unset" apart, as upstream does with pointer fields.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Path lookups on a JSON object, implemented for both a whole object (a map)
/// and any nested value.
pub(crate) trait Fields {
    /// The value of one key, if this is an object holding it (null counts as absent).
    fn field(&self, key: &str) -> Option<&Value>;

    /// The value at `path`, if every step exists and is not null.
    fn at(&self, path: &[&str]) -> Option<&Value> {
        let (first, rest) = path.split_first()?;
        let mut v = self.field(first)?;
        for key in rest {
            v = v.get(key).filter(|v| !v.is_null())?;
        }
        Some(v)
    }

    /// Whether `path` holds a non-null value (a Go pointer that is not nil).
    fn has(&self, path: &[&str]) -> bool {
        self.at(path).is_some()
    }

    /// The string at `path`, if it is a string.
    fn opt_str(&self, path: &[&str]) -> Option<&str> {
        self.at(path).and_then(Value::as_str)
    }

    /// The string at `path`, or `""`.
    fn str_at(&self, path: &[&str]) -> &str {
        self.opt_str(path).unwrap_or("")
    }

    /// The integer at `path`, if it is one.
    fn opt_int(&self, path: &[&str]) -> Option<i64> {
        self.at(path).and_then(Value::as_i64)
    }

    /// The integer at `path`, or 0.
    fn int_at(&self, path: &[&str]) -> i64 {
        self.opt_int(path).unwrap_or(0)
    }

    /// The boolean at `path`, if it is one.
    fn opt_bool(&self, path: &[&str]) -> Option<bool> {
        self.at(path).and_then(Value::as_bool)
    }

    /// The boolean at `path`, or false.
    fn bool_at(&self, path: &[&str]) -> bool {
        self.opt_bool(path).unwrap_or(false)
    }

    /// The list at `path`, or an empty one.
    fn list_at(&self, path: &[&str]) -> &[Value] {
        self.at(path)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The object at `path`, if it is one.
    fn map_at(&self, path: &[&str]) -> Option<&Map<String, Value>> {
        self.at(path).and_then(Value::as_object)
    }

    /// The number of entries of the object at `path` (0 if absent).
    fn len_of_map(&self, path: &[&str]) -> usize {
        self.map_at(path).map_or(0, Map::len)
    }

    /// The timestamp at `path`; `None` when absent, unparsable or Go's zero time.
    fn time_at(&self, path: &[&str]) -> Option<OffsetDateTime> {
        self.opt_str(path).and_then(parse_time)
    }

    /// A resource quantity at `path` as its string form. Quantities are
    /// normally strings; a bare JSON number is printed as written.
    fn quantity_at(&self, path: &[&str]) -> Option<String> {
        match self.at(path)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

impl Fields for Map<String, Value> {
    fn field(&self, key: &str) -> Option<&Value> {
        self.get(key).filter(|v| !v.is_null())
    }
}

impl Fields for Value {
    fn field(&self, key: &str) -> Option<&Value> {
        self.get(key).filter(|v| !v.is_null())
    }
}

/// Parses an RFC 3339 timestamp (`metav1.Time` and `metav1.MicroTime`).
/// Go's zero time (`0001-01-01T00:00:00Z`) counts as unset.
pub(crate) fn parse_time(s: &str) -> Option<OffsetDateTime> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    let zero = t.year() == 1 && t.ordinal() == 1 && t.time() == time::Time::MIDNIGHT && t.offset().is_utc();
    (!zero).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_treat_null_as_absent() {
        let v = json!({"a": {"b": null, "c": "x", "n": 3, "t": true, "l": [1, 2], "q": 5}});
        assert_eq!(v.opt_str(&["a", "b"]), None);
        assert_eq!(v.str_at(&["a", "c"]), "x");
        assert_eq!(v.str_at(&["a", "missing", "deeper"]), "");
        assert_eq!(v.int_at(&["a", "n"]), 3);
        assert!(v.bool_at(&["a", "t"]));
        assert_eq!(v.list_at(&["a", "l"]).len(), 2);
        assert!(!v.has(&["a", "b"]));
        assert_eq!(v.quantity_at(&["a", "q"]).as_deref(), Some("5"));
    }

    #[test]
    fn zero_time_is_unset() {
        assert!(parse_time("0001-01-01T00:00:00Z").is_none());
        assert!(parse_time("not a time").is_none());
        assert!(parse_time("2024-05-01T10:00:00Z").is_some());
        assert!(parse_time("2024-05-01T10:00:00.123456Z").is_some());
    }
}
