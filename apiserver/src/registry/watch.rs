//! WATCH for the generic store. Served from the watch cache when there is
//! one; otherwise from a storage watch, with upstream's transitions under a
//! selector (an object that stops matching is DELETED for this watcher,
//! one that starts matching is ADDED). Either way the result is a stream of
//! encoded watch lines.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use rkube_storage::{Event, EventType, Revision, StorageError};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use crate::status::ApiError;

use super::cache::resource::watch_line;
use super::cache::{CacheEvent, CacheSignal};
use super::list::{ListOptions, Predicate, parse_resource_version};
use super::object::{self, Object};
use super::store::GenericStore;

/// The type of a watch event, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEventType {
    Added,
    Modified,
    Deleted,
    Bookmark,
    Error,
}

impl WatchEventType {
    pub fn as_str(self) -> &'static str {
        match self {
            WatchEventType::Added => "ADDED",
            WatchEventType::Modified => "MODIFIED",
            WatchEventType::Deleted => "DELETED",
            WatchEventType::Bookmark => "BOOKMARK",
            WatchEventType::Error => "ERROR",
        }
    }
}

/// One encoded line of a watch stream.
#[derive(Debug, Clone)]
pub struct WatchLine {
    /// `{"type":..,"object":..}\n`.
    pub bytes: Bytes,
    /// The revision of the event (0 for errors).
    pub revision: Revision,
    /// An ERROR line ends the stream.
    pub is_error: bool,
    /// The cache event whose shared line this is (every watcher that gets
    /// it can share its other renderings too); `None` for a line made for
    /// one watcher.
    pub shared: Option<Arc<CacheEvent>>,
}

/// Where a watch starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchStart {
    /// Synthetic ADDED events for the current state, then changes
    /// (resourceVersion unset or "0", or `sendInitialEvents=true`).
    CurrentState,
    /// Changes after this revision, no initial state.
    After(Revision),
}

impl WatchStart {
    /// From the `resourceVersion` and `sendInitialEvents` parameters.
    pub fn from_params(rv: Option<&str>, send_initial_events: bool) -> Result<WatchStart, ApiError> {
        match rv.filter(|s| !s.is_empty()) {
            None | Some("0") => Ok(WatchStart::CurrentState),
            Some(_) if send_initial_events => Ok(WatchStart::CurrentState),
            Some(rv) => Ok(WatchStart::After(parse_resource_version(rv)?)),
        }
    }
}

/// A started watch.
pub struct Watch {
    /// Lines for the initial state (or for events replayed from the cache's
    /// window).
    pub initial: Vec<Bytes>,
    /// Live lines; ends after an ERROR line or when the server resets.
    pub live: BoxStream<'static, WatchLine>,
    /// The revision the watch starts at (for the initial-events-end
    /// bookmark).
    pub start_revision: Revision,
}

fn gone(e: StorageError) -> ApiError {
    match e {
        StorageError::Compacted { requested, compacted } => {
            ApiError::expired(format!("too old resource version: {requested} ({compacted})"))
        }
        other => ApiError::internal(other),
    }
}

/// An ERROR line carrying a Status.
pub fn error_line(e: &ApiError) -> WatchLine {
    let mut buf = serde_json::to_vec(&serde_json::json!({"type": "ERROR", "object": e.to_value()})).unwrap_or_default();
    buf.push(b'\n');
    WatchLine {
        bytes: Bytes::from(buf),
        revision: 0,
        is_error: true,
        shared: None,
    }
}

/// The body of an object (without `kind`/`apiVersion`) as JSON.
fn body_of(mut obj: Object) -> Vec<u8> {
    obj.remove("kind");
    obj.remove("apiVersion");
    serde_json::to_vec(&obj).unwrap_or_default()
}

impl GenericStore {
    fn decode_deleted(&self, ev: &Event) -> Result<Object, ApiError> {
        let prev = ev
            .prev
            .as_ref()
            .ok_or_else(|| ApiError::internal("delete event without the previous value"))?;
        let mut obj = self.decode(prev)?;
        object::set_meta(
            &mut obj,
            "resourceVersion",
            Some(Value::String(ev.revision().to_string())),
        );
        Ok(obj)
    }

    /// A storage event as this watcher sees it.
    fn transition(&self, ev: &Event, predicate: &Predicate) -> Result<Option<WatchLine>, ApiError> {
        let new = match ev.event_type {
            EventType::Deleted => None,
            _ => Some(self.decode(&ev.kv)?),
        };
        let old = match (&ev.event_type, &ev.prev) {
            (EventType::Deleted, _) => Some(self.decode_deleted(ev)?),
            (_, Some(prev)) => Some(self.decode(prev)?),
            (_, None) => None,
        };
        let new_matches = new.as_ref().is_some_and(|o| predicate.matches(o));
        let old_matches = old.as_ref().is_some_and(|o| predicate.matches(o));
        let (event_type, obj) = match (old_matches, new_matches, ev.event_type) {
            (true, _, EventType::Deleted) => (WatchEventType::Deleted, old),
            (_, _, EventType::Deleted) => return Ok(None),
            (false, true, _) => (WatchEventType::Added, new),
            (true, true, _) => (WatchEventType::Modified, new),
            (true, false, _) => (WatchEventType::Deleted, new),
            (false, false, _) => return Ok(None),
        };
        Ok(obj.map(|o| WatchLine {
            bytes: watch_line(&self.info, event_type, &body_of(o)),
            revision: ev.revision(),
            is_error: false,
            shared: None,
        }))
    }

    /// Starts a watch.
    pub async fn watch(
        self: &Arc<Self>,
        namespace: &str,
        predicate: Predicate,
        start: WatchStart,
    ) -> Result<Watch, ApiError> {
        match self.cache() {
            Some((root, cache)) => {
                let after = match start {
                    WatchStart::CurrentState => {
                        root.sync_to_storage().await?;
                        None
                    }
                    WatchStart::After(rev) => {
                        if rev > root.revision() {
                            root.wait_for(rev).await?;
                        }
                        Some(rev)
                    }
                };
                let prefix = self.prefix(namespace);
                let (initial, rx, start_revision) = cache.watch(&prefix, &predicate, after, root.revision())?;
                let live = stream::unfold(
                    (rx, cache, prefix, predicate, start_revision, Vec::<Bytes>::new(), false),
                    |(mut rx, cache, prefix, predicate, mut last, mut pending, done)| async move {
                        if done {
                            return None;
                        }
                        loop {
                            if let Some(line) = pending.pop() {
                                return Some((
                                    WatchLine {
                                        bytes: line,
                                        revision: last,
                                        is_error: false,
                                        shared: None,
                                    },
                                    (rx, cache, prefix, predicate, last, pending, false),
                                ));
                            }
                            match rx.recv().await {
                                Ok(CacheSignal::Event(ev)) => {
                                    if ev.revision <= last || !ev.object.key.starts_with(&prefix) {
                                        continue;
                                    }
                                    last = ev.revision;
                                    if let Some((line, shared)) = ev.for_watcher(&cache.info, &predicate) {
                                        return Some((
                                            WatchLine {
                                                bytes: line,
                                                revision: last,
                                                is_error: false,
                                                shared: shared.then(|| ev.clone()),
                                            },
                                            (rx, cache, prefix, predicate, last, pending, false),
                                        ));
                                    }
                                }
                                Ok(CacheSignal::Reset) | Err(RecvError::Closed) => return None,
                                Err(RecvError::Lagged(_)) => match cache.catch_up(&prefix, &predicate, last) {
                                    Some((mut lines, upto)) => {
                                        lines.reverse();
                                        pending = lines;
                                        last = upto;
                                    }
                                    None => {
                                        let e = ApiError::expired(format!("too old resource version: {last}"));
                                        return Some((
                                            error_line(&e),
                                            (rx, cache, prefix, predicate, last, pending, true),
                                        ));
                                    }
                                },
                            }
                        }
                    },
                )
                .boxed();
                Ok(Watch {
                    initial,
                    live,
                    start_revision,
                })
            }
            None => self.watch_storage(namespace, predicate, start).await,
        }
    }

    /// A watch straight from storage (no cache).
    async fn watch_storage(
        self: &Arc<Self>,
        namespace: &str,
        predicate: Predicate,
        start: WatchStart,
    ) -> Result<Watch, ApiError> {
        let prefix = self.prefix(namespace);
        let (initial, after) = match start {
            WatchStart::After(rev) => (Vec::new(), rev),
            WatchStart::CurrentState => {
                let list = self
                    .list(
                        namespace,
                        &ListOptions {
                            predicate: predicate.clone(),
                            ..Default::default()
                        },
                    )
                    .await?;
                let lines = list
                    .items
                    .into_iter()
                    .map(|item| watch_line(&self.info, WatchEventType::Added, &item.body()))
                    .collect::<Vec<_>>();
                (lines, list.resource_version)
            }
        };
        let events = self.storage().watch(&prefix, Some(after)).await.map_err(gone)?;
        let this = self.clone();
        let live = events
            .filter_map(move |item| {
                let out = match item {
                    Ok(ev) => match this.transition(&ev, &predicate) {
                        Ok(line) => line,
                        Err(e) => Some(error_line(&e)),
                    },
                    Err(e) => Some(error_line(&gone(e))),
                };
                futures::future::ready(out)
            })
            .scan(false, |done, line| {
                if *done {
                    return futures::future::ready(None);
                }
                *done = line.is_error;
                futures::future::ready(Some(line))
            })
            .boxed();
        Ok(Watch {
            initial,
            live,
            start_revision: after,
        })
    }
}
