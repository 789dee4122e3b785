//! Objects as the registry handles them: a JSON map with a `metadata` map,
//! and accessors for the metadata fields the generic store manages.

use serde_json::{Map, Value};

/// An API object.
pub type Object = Map<String, Value>;

/// The object's `metadata` (an empty map if missing or not a map).
pub fn meta(obj: &Object) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    obj.get("metadata")
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

/// The object's `metadata`, created if missing.
pub fn meta_mut(obj: &mut Object) -> &mut Map<String, Value> {
    let entry = obj.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

/// A string field of `metadata` ("" if missing).
pub fn meta_str<'a>(obj: &'a Object, field: &str) -> &'a str {
    meta(obj).get(field).and_then(Value::as_str).unwrap_or("")
}

pub fn name(obj: &Object) -> &str {
    meta_str(obj, "name")
}

pub fn namespace(obj: &Object) -> &str {
    meta_str(obj, "namespace")
}

pub fn uid(obj: &Object) -> &str {
    meta_str(obj, "uid")
}

pub fn resource_version(obj: &Object) -> &str {
    meta_str(obj, "resourceVersion")
}

/// Sets a metadata field, or removes it when `value` is `None`.
pub fn set_meta(obj: &mut Object, field: &str, value: Option<Value>) {
    let m = meta_mut(obj);
    match value {
        Some(v) => {
            m.insert(field.to_string(), v);
        }
        None => {
            m.remove(field);
        }
    }
}

/// The object's finalizers.
pub fn finalizers(obj: &Object) -> Vec<String> {
    meta(obj)
        .get("finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// Whether deletion of the object has begun.
pub fn is_terminating(obj: &Object) -> bool {
    meta(obj).get("deletionTimestamp").is_some_and(|v| !v.is_null())
}

/// The object's labels.
pub fn labels(obj: &Object) -> std::collections::BTreeMap<String, String> {
    meta(obj)
        .get("labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Now, in RFC 3339 with second precision (`metav1.Time`).
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    format_time(now)
}

/// `metav1.Time` format.
pub fn format_time(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A random UUID (version 4) for `metadata.uid`.
pub fn new_uid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    )
}

/// A name from `generateName`: the prefix plus 5 random characters from
/// upstream's alphabet (no vowels, no confusable digits).
pub fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    const MAX_PREFIX: usize = 63 - 5;
    let mut end = prefix.len().min(MAX_PREFIX);
    while !prefix.is_char_boundary(end) {
        end -= 1;
    }
    let prefix = &prefix[..end];
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_and_names() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        let n = generate_name("web-");
        assert!(n.starts_with("web-") && n.len() == 9);
        assert_eq!(generate_name(&"x".repeat(100)).len(), 63);
        assert_eq!(
            format_time(time::macros::datetime!(2024-01-02 03:04:05 UTC)),
            "2024-01-02T03:04:05Z"
        );
    }
}
