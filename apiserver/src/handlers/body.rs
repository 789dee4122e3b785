//! Request bodies: size limit, content type, JSON, YAML and Kubernetes
//! protobuf decoding with upstream's errors, and duplicate-field detection
//! for `fieldValidation`.

use axum::body::Body;
use axum::http::HeaderMap;
use bytes::Bytes;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::field_path::FieldPath;
use crate::registry::object::Object;
use crate::status::ApiError;

/// Largest request body accepted (kube-apiserver's limit for most requests).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Media types accepted for create and update bodies.
pub const BODY_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];

/// Reads the whole body, failing with 413 past the limit.
pub async fn read(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|e| {
        let too_large = std::error::Error::source(&e).is_some_and(|s| s.to_string().contains("length limit exceeded"))
            || e.to_string().contains("length limit exceeded");
        if too_large {
            ApiError::request_entity_too_large(MAX_BODY_BYTES)
        } else {
            ApiError::bad_request(format!("reading the request body: {e}"))
        }
    })
}

/// The media type of the body (`application/json`), without parameters.
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Decodes an object body, with the problems `fieldValidation` cares about.
pub struct Decoded {
    pub object: Object,
    /// Fields that appeared more than once (`.metadata.name`).
    pub duplicates: Vec<String>,
}

/// Decodes a create/update/delete body as JSON, YAML or Kubernetes
/// protobuf (others are 415 with the list upstream gives).
pub fn decode_object(headers: &HeaderMap, body: &[u8]) -> Result<Decoded, ApiError> {
    let mt = media_type(headers);
    match mt.as_str() {
        "application/json" | "" => decode_json(body),
        "application/yaml" => decode_yaml(body),
        crate::protobuf::MEDIA_TYPE => Ok(Decoded {
            object: crate::protobuf::decode_body(body)?,
            duplicates: Vec::new(),
        }),
        _ => Err(ApiError::unsupported_media_type(BODY_TYPES)),
    }
}

/// Decodes a YAML document into an object (one document; anchors and
/// aliases resolved, with the parser's limits against alias bombs).
pub fn decode_yaml(body: &[u8]) -> Result<Decoded, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: yaml: invalid UTF-8: {e}")))?;
    let value: Value = serde_saphyr::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: yaml: {e}")))?;
    match value {
        Value::Object(object) => Ok(Decoded {
            object,
            duplicates: Vec::new(),
        }),
        // Not an object: the same error a JSON body gets.
        other => decode_json(&serde_json::to_vec(&other).unwrap_or_default()),
    }
}

/// Decodes JSON into an object and finds duplicate fields, in one pass.
pub fn decode_json(body: &[u8]) -> Result<Decoded, ApiError> {
    let parse_error =
        |e: serde_json::Error| ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"));
    let mut duplicates = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = ValueSeed {
        path: &FieldPath::Root,
        duplicates: &mut duplicates,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v))
    .map_err(parse_error)?;
    let object = match value {
        Value::Object(m) => m,
        other => {
            let what = match other {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                Value::Bool(_) => "bool",
                _ => "null",
            };
            return Err(ApiError::bad_request(format!(
                "couldn't get version/kind; json parse error: json: cannot unmarshal {what} into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }}"
            )));
        }
    };
    Ok(Decoded { object, duplicates })
}

/// Decodes a JSON value exactly as `serde_json::Value` does (a later
/// duplicate key replaces the earlier value), recording the path of every
/// key seen twice in the same object, in document order.
struct ValueSeed<'p, 'o> {
    path: &'p FieldPath<'p>,
    duplicates: &'o mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        loop {
            let path = FieldPath::Index(self.path, items.len());
            let seed = ValueSeed {
                path: &path,
                duplicates: &mut *self.duplicates,
            };
            match seq.next_element_seed(seed)? {
                Some(v) => items.push(v),
                None => return Ok(Value::Array(items)),
            }
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = FieldPath::Key(self.path, &key);
            if object.contains_key(&key) {
                self.duplicates.push(path.render());
            }
            let value = map.next_value_seed(ValueSeed {
                path: &path,
                duplicates: &mut *self.duplicates,
            })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_duplicates_and_rejects_garbage() {
        let d = decode_json(br#"{"a":1,"metadata":{"name":"x","name":"y"},"a":2,"l":[{"k":1,"k":2}]}"#).unwrap();
        assert_eq!(d.duplicates, ["metadata.name", "a", "l[0].k"]);
        assert_eq!(d.object["a"], 2);
        for bad in [&b"[1]"[..], b"nul", b"", b"{\"a\":", b"\xff\xfe"] {
            let e = decode_json(bad).err().unwrap();
            assert_eq!(e.code, 400);
        }
    }

    #[test]
    fn decodes_like_serde_json_in_one_pass() {
        for body in [
            &br#"{}"#[..],
            br#"{"a":[1,-2,3.25,1e3,18446744073709551615,-9223372036854775808,true,null,"\u00e9\n"],"b":{"c":{}}}"#,
            br#" { "k" : [ [ ], { "x" : 1 , "x" : { "y" : 2 } } ] , "k" : "last" } "#,
            br#"{"":1,"":2,"m":{"":{"a":1,"a":2}}}"#,
        ] {
            let expected: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(Value::Object(decode_json(body).unwrap().object), expected);
        }
        let d = decode_json(br#" { "k" : [ [ ], { "x" : 1 , "x" : { "y" : 2 } } ] , "k" : "last" } "#).unwrap();
        assert_eq!(d.duplicates, ["k[1].x", "k"]);
        let d = decode_json(br#"{"":1,"":2,"m":{"":{"a":1,"a":2}}}"#).unwrap();
        assert_eq!(d.duplicates, ["", "m..a"]);
        // Syntax errors read as serde_json words them.
        for bad in [
            &b"{\"a\":1,}"[..],
            b"{\"a\" 1}",
            b"{} {}",
            b"{\"a\":[1,2}",
            b"{\"a\":\"\\x\"}",
        ] {
            let e = decode_json(bad).err().unwrap();
            let want = serde_json::from_slice::<Value>(bad).unwrap_err();
            assert_eq!(
                e.message,
                format!("couldn't get version/kind; json parse error: {want}")
            );
        }
    }

    #[test]
    fn yaml_bodies() {
        let d =
            decode_yaml(b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: \"1\"\n  b: x\n").unwrap();
        assert_eq!(
            Value::Object(d.object),
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "x"}})
        );
        // Numbers stay numbers, anchors resolve.
        let d = decode_yaml(b"spec:\n  replicas: 3\n  a: &x {k: v}\n  b: *x\n").unwrap();
        assert_eq!(d.object["spec"]["replicas"], 3);
        assert_eq!(d.object["spec"]["b"]["k"], "v");
        for bad in [&b"- 1\n- 2\n"[..], b"a: [1", b"\xff", b"just a string"] {
            assert_eq!(
                decode_yaml(bad).err().unwrap().code,
                400,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_TYPE, "text/plain".parse().unwrap());
        let e = decode_object(&h, b"x").err().unwrap();
        assert_eq!(e.code, 415);
        assert!(
            e.message
                .ends_with("application/json, application/yaml, application/vnd.kubernetes.protobuf")
        );
    }
}
