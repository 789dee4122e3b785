//! Writing API responses: objects, lists and success Statuses in the
//! negotiated encoding (JSON, YAML or Kubernetes protobuf), with `Warning`
//! headers; [`transcode`] re-encodes the JSON that other handlers write.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use bytes::{BufMut, Bytes, BytesMut};

use crate::registry::list::ListItem;
use crate::registry::object::Object;
use crate::resources::ResourceInfo;

use super::negotiate::Encoding;

/// A JSON response with a status code.
pub fn json(code: StatusCode, value: &impl serde::Serialize) -> Response {
    // Most bodies are objects of a few KiB: start with room for one
    // rather than growing from nothing.
    let mut body = Vec::with_capacity(2048);
    match serde_json::to_writer(&mut body, value) {
        Ok(()) => {
            let mut resp = (code, body).into_response();
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        Err(e) => crate::status::ApiError::internal(e).into_response(),
    }
}

/// A JSON response of an already encoded body.
pub fn json_bytes(code: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (code, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// An object as served at `info`'s group/version (converted from the
/// stored version when they differ).
pub fn object(info: &ResourceInfo, obj: Object) -> Object {
    let mut obj = crate::convert::from_storage(info, obj);
    obj.insert("apiVersion".into(), Value::String(info.api_version()));
    obj.insert("kind".into(), Value::String(info.kind.clone()));
    // `kind` and `apiVersion` first, like upstream's field order.
    let mut out = Map::with_capacity(obj.len());
    for k in ["kind", "apiVersion", "metadata"] {
        if let Some(v) = obj.remove(k) {
            out.insert(k.to_string(), v);
        }
    }
    out.extend(obj);
    out
}

/// A list's `metadata`: resourceVersion, continue and remainingItemCount.
pub fn list_metadata(
    resource_version: i64,
    continue_token: Option<String>,
    remaining: Option<i64>,
) -> Map<String, Value> {
    let mut metadata = Map::new();
    metadata.insert("resourceVersion".into(), Value::String(resource_version.to_string()));
    if let Some(c) = continue_token {
        metadata.insert("continue".into(), Value::String(c));
    }
    if let Some(r) = remaining {
        metadata.insert("remainingItemCount".into(), Value::from(r));
    }
    metadata
}

/// A `<Kind>List` written straight from item bodies: items carry no
/// `kind`/`apiVersion` (as upstream serves typed lists).
pub fn list_bytes(
    info: &ResourceInfo,
    items: &[ListItem],
    resource_version: i64,
    continue_token: Option<String>,
    remaining: Option<i64>,
) -> Response {
    let metadata = list_metadata(resource_version, continue_token, remaining);
    let bodies: Vec<Bytes> = items.iter().map(ListItem::body).collect();
    let mut out = BytesMut::with_capacity(bodies.iter().map(|b| b.len() + 1).sum::<usize>() + 256);
    out.put_slice(b"{\"kind\":");
    out.put_slice(
        serde_json::to_string(&format!("{}List", info.kind))
            .unwrap_or_default()
            .as_bytes(),
    );
    out.put_slice(b",\"apiVersion\":");
    out.put_slice(
        serde_json::to_string(&info.api_version())
            .unwrap_or_default()
            .as_bytes(),
    );
    out.put_slice(b",\"metadata\":");
    out.put_slice(&serde_json::to_vec(&metadata).unwrap_or_default());
    out.put_slice(b",\"items\":[");
    for (i, b) in bodies.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(b);
    }
    out.put_slice(b"]}");
    let mut resp = (StatusCode::OK, out.freeze()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// A `<Kind>List` as a value.
pub fn list(
    info: &ResourceInfo,
    items: Vec<Object>,
    resource_version: i64,
    continue_token: Option<String>,
    remaining: Option<i64>,
) -> Value {
    let metadata = list_metadata(resource_version, continue_token, remaining);
    let items: Vec<Value> = items
        .into_iter()
        .map(|mut o| {
            o.remove("kind");
            o.remove("apiVersion");
            Value::Object(o)
        })
        .collect();
    json!({
        "kind": format!("{}List", info.kind),
        "apiVersion": info.api_version(),
        "metadata": metadata,
        "items": items,
    })
}

/// The success Status upstream returns for an immediate delete.
pub fn delete_status(info: &ResourceInfo, name: &str, uid: &str) -> Value {
    let mut details = Map::new();
    details.insert("name".into(), Value::String(name.to_string()));
    if !info.group.is_empty() {
        details.insert("group".into(), Value::String(info.group.clone()));
    }
    details.insert("kind".into(), Value::String(info.resource.clone()));
    if !uid.is_empty() {
        details.insert("uid".into(), Value::String(uid.to_string()));
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

/// Adds `Warning: 299 - "<text>"` headers.
pub fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = w.replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{text}\"")) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

/// Marks a response whose body is already in the negotiated encoding (or
/// is a stream), so [`transcode`] leaves it alone.
#[derive(Debug, Clone, Copy)]
pub struct Negotiated;

fn with_type(code: StatusCode, content_type: &'static str, body: impl Into<axum::body::Body>) -> Response {
    let mut resp = (code, body.into()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.extensions_mut().insert(Negotiated);
    resp
}

/// A value (with `kind` and `apiVersion`) in the negotiated encoding.
/// Kinds without a protobuf message (custom resources) are served as JSON,
/// the next type every protobuf client also accepts.
pub fn encoded(code: StatusCode, encoding: Encoding, value: &Value) -> Response {
    match encoding {
        Encoding::Json => {
            let mut resp = json(code, value);
            resp.extensions_mut().insert(Negotiated);
            resp
        }
        Encoding::Yaml => match yaml(value) {
            Ok(text) => with_type(code, "application/yaml", text),
            Err(e) => e.into_response(),
        },
        Encoding::Protobuf => match value.as_object().map(crate::protobuf::encode_object) {
            Some(Ok(bytes)) => with_type(code, crate::protobuf::MEDIA_TYPE, bytes),
            _ => encoded(code, Encoding::Json, value),
        },
    }
}

/// A `<Kind>List` in protobuf from the items' bare messages (each cached
/// object keeps its own, so this is a copy like the JSON list). `None`
/// when an item does not encode, or the kind has no message.
pub fn list_protobuf(
    info: &ResourceInfo,
    items: &[ListItem],
    resource_version: i64,
    continue_token: Option<String>,
    remaining: Option<i64>,
) -> Option<Response> {
    let api_version = info.api_version();
    let message = crate::protobuf::message_index(&api_version, &info.kind)?;
    let raws = items
        .iter()
        .map(|item| match item {
            ListItem::Cached(c) => c.protobuf(message),
            ListItem::Decoded(o) => crate::protobuf::encode_raw(message, &Value::Object(o.clone()))
                .ok()
                .map(Bytes::from),
        })
        .collect::<Option<Vec<Bytes>>>()?;
    let metadata = Value::Object(list_metadata(resource_version, continue_token, remaining));
    let list_kind = format!("{}List", info.kind);
    let body = crate::protobuf::encode_list(&api_version, &list_kind, &metadata, raws.iter().map(|b| &b[..])).ok()?;
    Some(with_type(StatusCode::OK, crate::protobuf::MEDIA_TYPE, body))
}

/// The value with every object's keys sorted, as Go's YAML encoder writes
/// maps.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&m[k]))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// A value as YAML the way kube-apiserver writes it (JSON converted by
/// `sigs.k8s.io/yaml`): keys sorted, two-space indentation, list items
/// not indented under their key, no document marker, YAML 1.1 look-alike
/// strings (`"yes"`, `"1.0"`) quoted, long lines never folded.
pub fn yaml(value: &Value) -> Result<String, crate::status::ApiError> {
    let mut opts = serde_saphyr::SerializerOptions::default();
    opts.indent_step = 2;
    opts.compact_list_indent = true;
    opts.prefer_block_scalars = false;
    serde_saphyr::to_string_with_options(&sorted(value), opts).map_err(crate::status::ApiError::internal)
}

/// Re-encodes a JSON response (a write's result, a subresource, an error
/// Status) in the negotiated encoding. Responses already negotiated,
/// streams and non-JSON bodies pass through; a body that is not an object
/// with a protobuf message stays JSON.
pub async fn transcode(encoding: Encoding, resp: Response) -> Response {
    use axum::body::HttpBody;
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/json");
    if encoding == Encoding::Json
        || !is_json
        || resp.extensions().get::<Negotiated>().is_some()
        || resp.body().size_hint().exact().is_none()
    {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return crate::status::ApiError::internal("reading the response body").into_response();
    };
    let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    };
    let (content_type, body): (&'static str, axum::body::Body) = match encoding {
        Encoding::Yaml => match yaml(&value) {
            Ok(text) => ("application/yaml", text.into()),
            Err(_) => return Response::from_parts(parts, axum::body::Body::from(bytes)),
        },
        _ => match value.as_object().map(crate::protobuf::encode_object) {
            Some(Ok(b)) => (crate::protobuf::MEDIA_TYPE, b.into()),
            _ => return Response::from_parts(parts, axum::body::Body::from(bytes)),
        },
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Response::from_parts(parts, body)
}
