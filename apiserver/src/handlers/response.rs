//! Writing API responses: objects, lists and success Statuses as JSON, with
//! `Warning` headers.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use bytes::{BufMut, Bytes, BytesMut};

use crate::registry::list::ListItem;
use crate::registry::object::Object;
use crate::resources::ResourceInfo;

/// A JSON response with a status code.
pub fn json(code: StatusCode, value: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut resp = (code, body).into_response();
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        Err(e) => crate::status::ApiError::internal(e).into_response(),
    }
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
