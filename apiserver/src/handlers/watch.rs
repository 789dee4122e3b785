//! WATCH over HTTP: newline-delimited JSON `{"type":..,"object":..}`
//! events in a chunked response, or with a protobuf `Accept` length-prefixed
//! `metav1.WatchEvent` frames (`application/vnd.kubernetes.protobuf;stream=watch`),
//! with bookmarks, `timeoutSeconds`, `sendInitialEvents` and the
//! `k8s.io/initial-events-end` bookmark. YAML has no watch form (406).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use serde_json::{Map, Value, json};

use crate::registry::object::Object;
use crate::registry::watch::{Watch, WatchLine, WatchStart};
use crate::resources::ResourceInfo;
use crate::status::ApiError;

use super::crud::{Ctx, list_options};
use super::negotiate::{Encoding, negotiate_watch};
use super::render::WatchRenderer;

/// Interval between bookmarks when the client allows them.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);
/// Default watch length: kube-apiserver's `--min-request-timeout` (30
/// minutes), randomised up to twice that so clients do not re-watch in step.
const MIN_TIMEOUT_SECS: u64 = 1800;

/// One line of the stream.
fn line(event_type: &str, object: &Object) -> Bytes {
    let mut buf = serde_json::to_vec(&json!({"type": event_type, "object": object})).unwrap_or_default();
    buf.push(b'\n');
    Bytes::from(buf)
}

fn bookmark(info: &ResourceInfo, rv: i64, initial_events_end: bool) -> Object {
    let mut meta = Map::new();
    meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    if initial_events_end {
        meta.insert("annotations".into(), json!({"k8s.io/initial-events-end": "true"}));
    }
    let mut obj = Map::new();
    obj.insert("kind".into(), Value::String(info.kind.clone()));
    obj.insert("apiVersion".into(), Value::String(info.api_version()));
    obj.insert("metadata".into(), Value::Object(meta));
    obj
}

/// Ready events written together at most (bytes).
const MAX_BATCH_BYTES: usize = 64 * 1024;
/// The shortest time between two writes to one watch: an event that comes
/// sooner waits for the rest of it, with any others that come meanwhile.
/// (With 1,000 watchers at 500 events/s, 10 ms took 10-15% off the
/// server's CPU and halved median delivery against writing every event at
/// once; see docs/benchmarks.md.)
const FLUSH_INTERVAL: Duration = Duration::from_millis(10);

/// Rendered events waiting to go out in one write: a single event is
/// passed on as it is, several are copied into one buffer.
#[derive(Default)]
struct Batch {
    first: Option<Bytes>,
    rest: Option<bytes::BytesMut>,
}

impl Batch {
    fn push(&mut self, b: Bytes) {
        match (&mut self.first, &mut self.rest) {
            (None, _) => self.first = Some(b),
            (Some(first), None) => {
                let mut buf = bytes::BytesMut::with_capacity(first.len() + b.len() * 4);
                buf.extend_from_slice(first);
                buf.extend_from_slice(&b);
                self.rest = Some(buf);
            }
            (Some(_), Some(buf)) => buf.extend_from_slice(&b),
        }
    }

    /// Adds one event; true if it ends the stream (an ERROR).
    fn add(&mut self, renderer: &mut WatchRenderer, last_rv: &mut i64, ev: WatchLine) -> bool {
        *last_rv = (*last_rv).max(ev.revision);
        let is_error = ev.is_error;
        self.push(renderer.render_line(ev));
        is_error
    }

    /// Adds the events `live` has ready, up to MAX_BATCH_BYTES; true if
    /// the stream is over (an ERROR was added, or it ended).
    fn take_ready(
        &mut self,
        live: &mut futures::stream::BoxStream<'static, WatchLine>,
        renderer: &mut WatchRenderer,
        last_rv: &mut i64,
    ) -> bool {
        while self.len() < MAX_BATCH_BYTES {
            match live.next().now_or_never() {
                None => return false,
                Some(None) => return true,
                Some(Some(ev)) => {
                    if self.add(renderer, last_rv, ev) {
                        return true;
                    }
                }
            }
        }
        false
    }

    fn len(&self) -> usize {
        match (&self.first, &self.rest) {
            (_, Some(buf)) => buf.len(),
            (Some(b), None) => b.len(),
            (None, None) => 0,
        }
    }

    fn finish(self) -> Bytes {
        match (self.first, self.rest) {
            (_, Some(buf)) => buf.freeze(),
            (Some(b), None) => b,
            (None, None) => Bytes::new(),
        }
    }
}

/// What the stream task needs.
struct StreamParams {
    info: Arc<ResourceInfo>,
    allow_bookmarks: bool,
    initial_events_end: bool,
    timeout: Duration,
    metrics: Arc<crate::metrics::Metrics>,
    renderer: WatchRenderer,
    shutdown: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

pub async fn serve(ctx: &Ctx<'_>, headers: &HeaderMap) -> Result<Response, ApiError> {
    let p = ctx.params;
    let output = negotiate_watch(headers, ctx.has_protobuf())?;
    let content_type = match output.encoding {
        Encoding::Protobuf => "application/vnd.kubernetes.protobuf;stream=watch",
        _ => "application/json",
    };
    let renderer = WatchRenderer::new(ctx.resource.clone(), output, p)?;
    let allow_bookmarks = p.bool("allowWatchBookmarks")?;
    let send_initial = match p.get("sendInitialEvents") {
        None | Some("") => None,
        Some(_) => Some(p.bool("sendInitialEvents")?),
    };
    if send_initial.is_some() && p.get("resourceVersionMatch") != Some("NotOlderThan") {
        return Err(ApiError::bad_request(
            "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan",
        ));
    }
    if send_initial == Some(true) && !allow_bookmarks {
        return Err(ApiError::bad_request(
            "allowWatchBookmarks: Forbidden: allowWatchBookmarks must be set to true when sendInitialEvents is true",
        ));
    }
    if send_initial.is_none() && p.get("resourceVersionMatch").is_some_and(|m| !m.is_empty()) {
        return Err(ApiError::bad_request(
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        ));
    }
    let opts = list_options(ctx)?;
    let timeout = match p.int("timeoutSeconds")? {
        Some(s) if s > 0 => Duration::from_secs(s as u64),
        _ => Duration::from_secs(MIN_TIMEOUT_SECS + rand::random_range(0..MIN_TIMEOUT_SECS)),
    };
    let start = WatchStart::from_params(opts.resource_version.as_deref(), send_initial == Some(true))?;
    let start = if send_initial == Some(false) {
        // sendInitialEvents=false: only changes after the given (or current) revision.
        match start {
            WatchStart::CurrentState => WatchStart::After(
                ctx.store
                    .storage()
                    .current_revision()
                    .await
                    .map_err(|e| ApiError::from_storage(e, ctx.store.gr(), ""))?,
            ),
            after => after,
        }
    } else {
        start
    };
    // Like upstream, a resourceVersion that is too old is reported inside a
    // 200 stream as one ERROR event (clients relist on it), not as an HTTP 410.
    let watch = match ctx.store.watch(ctx.namespace, opts.predicate.clone(), start).await {
        Ok(w) => w,
        Err(e) if e.code == 410 => Watch {
            initial: Vec::new(),
            live: futures::stream::iter([crate::registry::watch::error_line(&e)]).boxed(),
            start_revision: 0,
        },
        Err(e) => return Err(e),
    };
    let params = StreamParams {
        info: ctx.resource.clone(),
        allow_bookmarks,
        initial_events_end: send_initial == Some(true),
        timeout,
        metrics: ctx.state.metrics.clone(),
        renderer,
        shutdown: Box::pin(ctx.state.health.shutdown_signal()),
    };
    let mut resp = (StatusCode::OK, Body::from_stream(stream(watch, params))).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    resp.extensions_mut().insert(super::response::Negotiated);
    Ok(resp)
}

/// Runs the watch in a task writing lines into the response body.
fn stream(
    watch: Watch,
    mut p: StreamParams,
) -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    tokio::spawn(async move {
        p.metrics.watches.inc();
        let Watch {
            initial,
            mut live,
            start_revision,
        } = watch;
        let mut last_rv = start_revision;
        let run = async {
            for line in initial {
                tx.send(p.renderer.render(line)).await.ok()?;
            }
            if p.initial_events_end {
                let b = line("BOOKMARK", &bookmark(&p.info, start_revision, true));
                tx.send(p.renderer.render(b)).await.ok()?;
            }
            let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
            ticker.tick().await;
            loop {
                let ev = tokio::select! {
                    ev = live.next() => ev?,
                    _ = ticker.tick(), if p.allow_bookmarks => {
                        let b = line("BOOKMARK", &bookmark(&p.info, last_rv, false));
                        tx.send(p.renderer.render(b)).await.ok()?;
                        continue;
                    }
                };
                // Events already waiting go out in the same write, and after
                // a write the watcher pauses FLUSH_INTERVAL before the next:
                // under load each write carries several events (fewer
                // wakeups, syscalls and TLS records on both ends); a quiet
                // watch still gets each event at once.
                let mut batch = Batch::default();
                let mut over = batch.add(&mut p.renderer, &mut last_rv, ev);
                if !over {
                    over = batch.take_ready(&mut live, &mut p.renderer, &mut last_rv);
                }
                tx.send(batch.finish()).await.ok()?;
                if over {
                    return None::<()>;
                }
                tokio::time::sleep(FLUSH_INTERVAL).await;
            }
        };
        let shutdown = std::mem::replace(&mut p.shutdown, Box::pin(std::future::pending()));
        // A watch ends cleanly at its timeout or when the server shuts down.
        tokio::select! {
            _ = tokio::time::timeout(p.timeout, run) => {}
            _ = shutdown => {}
        }
        p.metrics.watches.dec();
    });
    tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_joins_events_in_order() {
        assert!(Batch::default().finish().is_empty());
        let mut one = Batch::default();
        one.push(Bytes::from_static(b"a\n"));
        assert_eq!(one.len(), 2);
        assert_eq!(one.finish(), Bytes::from_static(b"a\n"));
        let mut three = Batch::default();
        for line in [&b"a\n"[..], b"bb\n", b"ccc\n"] {
            three.push(Bytes::copy_from_slice(line));
        }
        assert_eq!(three.len(), 9);
        assert_eq!(three.finish(), Bytes::from_static(b"a\nbb\nccc\n"));
    }
}
