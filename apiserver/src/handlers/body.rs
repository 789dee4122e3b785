//! Request bodies: size limit, content type, JSON, YAML and Kubernetes
//! protobuf decoding with upstream's errors, and duplicate-field detection
//! for `fieldValidation`.

use axum::body::Body;
use axum::http::HeaderMap;
use bytes::Bytes;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

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

/// Decodes JSON into an object and finds duplicate fields.
pub fn decode_json(body: &[u8]) -> Result<Decoded, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}")))?;
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
    let mut duplicates = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    let _ = DupSeed {
        path: String::new(),
        out: &mut duplicates,
    }
    .deserialize(&mut de);
    Ok(Decoded { object, duplicates })
}

/// Walks JSON recording keys seen twice in the same object.
struct DupSeed<'a> {
    path: String,
    out: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for DupSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DupSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq
            .next_element_seed(DupSeed {
                path: format!("{}[{i}]", self.path),
                out: self.out,
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(k) = map.next_key::<String>()? {
            let path = format!("{}.{k}", self.path);
            if !seen.insert(k) {
                self.out.push(path.clone());
            }
            map.next_value_seed(DupSeed { path, out: self.out })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_duplicates_and_rejects_garbage() {
        let d = decode_json(br#"{"a":1,"metadata":{"name":"x","name":"y"},"a":2,"l":[{"k":1,"k":2}]}"#).unwrap();
        assert_eq!(d.duplicates, [".metadata.name", ".a", ".l[0].k"]);
        assert_eq!(d.object["a"], 2);
        for bad in [&b"[1]"[..], b"nul", b"", b"{\"a\":", b"\xff\xfe"] {
            let e = decode_json(bad).err().unwrap();
            assert_eq!(e.code, 400);
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
