//! Rendering objects, lists and watch events in the negotiated output:
//! the object itself, a Table, or partial object metadata, each as JSON,
//! YAML or Kubernetes protobuf (Tables: JSON and YAML only).

use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::registry::list::{ListItem, ListOutcome};
use crate::registry::object::{self, Object};
use crate::registry::watch::WatchLine;
use crate::resources::ResourceInfo;
use crate::status::ApiError;
use crate::table::{self, IncludeObject};

use super::negotiate::{Encoding, Form, Output};
use super::params::Params;
use super::response;

fn include_object(params: &Params) -> Result<IncludeObject, ApiError> {
    IncludeObject::from_query(params.get("includeObject").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// Rewrites a Table's apiVersion (and its rows' metadata objects) for v1beta1.
fn at_version(mut v: Value, version: &str) -> Value {
    if version == "v1" {
        return v;
    }
    let api_version = format!("meta.k8s.io/{version}");
    if let Value::Object(m) = &mut v {
        m.insert("apiVersion".into(), json!(api_version));
        if let Some(Value::Array(rows)) = m.get_mut("rows") {
            for r in rows {
                if let Some(Value::Object(o)) = r.get_mut("object")
                    && o.get("kind").and_then(Value::as_str) == Some("PartialObjectMetadata")
                {
                    o.insert("apiVersion".into(), json!(api_version));
                }
            }
        }
    }
    v
}

fn partial(obj: &Object, version: &str) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": format!("meta.k8s.io/{version}"), "metadata": object::meta(obj)})
}

/// A single object (GET, and the bodies of writes).
pub fn object_response(
    info: &ResourceInfo,
    output: Output,
    params: &Params,
    obj: Object,
    code: StatusCode,
) -> Result<Response, ApiError> {
    let value = match output.form {
        Form::Object => Value::Object(response::object(info, obj)),
        Form::Table { version } => {
            let rv = object::resource_version(&obj).to_string();
            let obj = response::object(info, obj);
            let t = table::table(
                &info.group,
                &info.resource,
                &[obj],
                include_object(params)?,
                &rv,
                None,
                None,
                true,
                now(),
            );
            at_version(t, version)
        }
        Form::PartialMetadata { version } => partial(&obj, version),
    };
    Ok(response::encoded(code, output.encoding, &value))
}

/// A list.
pub fn list_response(
    info: &ResourceInfo,
    output: Output,
    params: &Params,
    out: ListOutcome,
) -> Result<Response, ApiError> {
    let convert = crate::convert::needed(info);
    if output.form == Form::Object && !convert {
        match output.encoding {
            // The fast paths: item bodies copied from the watch cache.
            Encoding::Json => {
                let mut resp = response::list_bytes(
                    info,
                    &out.items,
                    out.resource_version,
                    out.continue_token,
                    out.remaining_item_count,
                );
                resp.extensions_mut().insert(response::Negotiated);
                return Ok(resp);
            }
            Encoding::Protobuf => {
                if let Some(resp) = response::list_protobuf(
                    info,
                    &out.items,
                    out.resource_version,
                    out.continue_token.clone(),
                    out.remaining_item_count,
                ) {
                    return Ok(resp);
                }
            }
            Encoding::Yaml => {}
        }
    }
    let value = match output.form {
        Form::Object => {
            let items: Vec<Object> = out
                .items
                .into_iter()
                .map(|i| {
                    let mut o = i.into_object(info);
                    if convert {
                        o = response::object(info, o);
                    }
                    o.remove("kind");
                    o.remove("apiVersion");
                    o
                })
                .collect();
            response::list(
                info,
                items,
                out.resource_version,
                out.continue_token,
                out.remaining_item_count,
            )
        }
        Form::Table { version } => {
            let include = include_object(params)?;
            let objs: Vec<Object> = out
                .items
                .into_iter()
                .map(|i| response::object(info, i.into_object(info)))
                .collect();
            let t = table::table(
                &info.group,
                &info.resource,
                &objs,
                include,
                &out.resource_version.to_string(),
                out.continue_token.as_deref(),
                out.remaining_item_count,
                true,
                now(),
            );
            at_version(t, version)
        }
        Form::PartialMetadata { version } => {
            let items: Vec<Value> = out
                .items
                .into_iter()
                .map(|i: ListItem| partial(&i.into_object(info), version))
                .collect();
            let metadata = response::list_metadata(out.resource_version, out.continue_token, out.remaining_item_count);
            json!({"kind": "PartialObjectMetadataList", "apiVersion": format!("meta.k8s.io/{version}"), "metadata": metadata, "items": items})
        }
    };
    Ok(response::encoded(StatusCode::OK, output.encoding, &value))
}

/// Turns watch lines into the negotiated form; only the first Table event
/// carries column definitions.
pub struct WatchRenderer {
    info: std::sync::Arc<ResourceInfo>,
    output: Output,
    include: IncludeObject,
    headers_sent: bool,
}

impl WatchRenderer {
    pub fn new(info: std::sync::Arc<ResourceInfo>, output: Output, params: &Params) -> Result<Self, ApiError> {
        Ok(WatchRenderer {
            info,
            output,
            include: include_object(params)?,
            headers_sent: false,
        })
    }

    /// Renders a live event: a protobuf frame of an event's shared line is
    /// rendered once for all its watchers (see [`crate::registry::cache::CacheEvent::protobuf_line`]).
    pub fn render_line(&mut self, line: WatchLine) -> Bytes {
        let protobuf_object = self.output.encoding == Encoding::Protobuf
            && self.output.form == Form::Object
            && !crate::convert::needed(&self.info);
        match line.shared {
            Some(event) if protobuf_object => event.protobuf_line(|| self.render(line.bytes)),
            _ => self.render(line.bytes),
        }
    }

    /// Renders one line (a JSON event as the watch cache keeps it): as
    /// is, as a JSON line of another form, or as a protobuf frame.
    pub fn render(&mut self, line: Bytes) -> Bytes {
        let convert = crate::convert::needed(&self.info);
        let protobuf = self.output.encoding == Encoding::Protobuf;
        if self.output.form == Form::Object && !convert && !protobuf {
            return line;
        }
        let Ok(Value::Object(mut ev)) = serde_json::from_slice::<Value>(&line) else {
            return line;
        };
        let kind = ev.get("type").and_then(Value::as_str).unwrap_or("").to_string();
        let changed = matches!(kind.as_str(), "ADDED" | "MODIFIED" | "DELETED");
        if !changed && !protobuf {
            return line;
        }
        let Some(Value::Object(obj)) = ev.remove("object") else {
            return line;
        };
        let object = if !changed {
            // BOOKMARK and ERROR objects go out as they are.
            Value::Object(obj)
        } else {
            let obj = if convert {
                response::object(&self.info, obj)
            } else {
                obj
            };
            match self.output.form {
                Form::Table { version } => {
                    let rv = object::resource_version(&obj).to_string();
                    let t = table::table(
                        &self.info.group,
                        &self.info.resource,
                        &[obj],
                        self.include,
                        &rv,
                        None,
                        None,
                        !self.headers_sent,
                        now(),
                    );
                    self.headers_sent = true;
                    at_version(t, version)
                }
                Form::PartialMetadata { version } => partial(&obj, version),
                Form::Object => Value::Object(obj),
            }
        };
        if protobuf {
            return match object
                .as_object()
                .map(|o| crate::protobuf::encode_watch_event(&kind, o))
            {
                Some(Ok(frame)) => Bytes::from(frame),
                _ => {
                    tracing::warn!(kind = %self.info.kind, "watch event without a protobuf form dropped");
                    Bytes::new()
                }
            };
        }
        let mut buf = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
        buf.push(b'\n');
        Bytes::from(buf)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use rkube_storage::{Event, EventType, KeyValue};

    use super::*;
    use crate::registry::cache::{CacheSignal, ResourceCache};
    use crate::registry::list::Predicate;
    use crate::resources::ResourceTable;

    #[test]
    fn protobuf_watchers_share_one_frame_of_a_shared_line() {
        let info = ResourceTable::builtin().get("", "v1", "configmaps").unwrap().clone();
        let cache = ResourceCache::new(info.clone());
        let (_, mut rx, _) = cache
            .watch("/core/configmaps/", &Predicate::everything(), None, 0)
            .unwrap();
        let value =
            br#"{"apiVersion":"v1","data":{"a":"b"},"kind":"ConfigMap","metadata":{"name":"c","namespace":"d"}}"#;
        cache.apply(&Event {
            event_type: EventType::Added,
            kv: KeyValue {
                key: "/core/configmaps/d/c".into(),
                value: Bytes::from_static(value),
                create_revision: 5,
                mod_revision: 5,
            },
            prev: None,
        });
        let Ok(CacheSignal::Event(ev)) = rx.try_recv() else {
            panic!("no event")
        };
        let (bytes, shared) = ev.for_watcher(&info, &Predicate::everything()).unwrap();
        assert!(shared);
        let line = |shared: bool| WatchLine {
            bytes: bytes.clone(),
            revision: 5,
            is_error: false,
            shared: shared.then(|| ev.clone()),
        };
        let protobuf = Output {
            form: Form::Object,
            encoding: Encoding::Protobuf,
        };
        let params = Params::parse(None);
        let mut a = WatchRenderer::new(info.clone(), protobuf, &params).unwrap();
        let mut b = WatchRenderer::new(info.clone(), protobuf, &params).unwrap();
        let first = a.render_line(line(true));
        let second = b.render_line(line(true));
        // The same bytes as rendering the line alone, and the same buffer.
        assert_eq!(first, a.render(bytes.clone()));
        assert_eq!(first.as_ptr(), second.as_ptr());
        let (events, rest) = crate::protobuf::decode_watch_frames(&first).unwrap();
        assert!(rest.is_empty());
        assert_eq!(events[0].0, "ADDED");
        assert_eq!(events[0].1["data"]["a"], "b");
        // JSON watchers get the line itself.
        let mut json = WatchRenderer::new(info, Output::JSON, &params).unwrap();
        assert_eq!(json.render_line(line(true)), bytes);
        assert_eq!(json.render_line(line(false)), bytes);
    }
}
