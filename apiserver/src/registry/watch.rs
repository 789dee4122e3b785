//! WATCH for the generic store: storage events turned into API watch
//! events, filtered by a [`Predicate`] with upstream's transitions (an
//! object that stops matching is DELETED for this watcher, one that starts
//! matching is ADDED).

use std::sync::Arc;

use futures::stream::{BoxStream, StreamExt};
use rkube_storage::{Event, EventType, Revision, StorageError};
use serde_json::Value;

use crate::status::ApiError;

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

/// One watch event.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    pub event_type: WatchEventType,
    pub object: Object,
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
    pub fn from_params(rv: Option<&str>, send_initial_events: bool) -> Result<(WatchStart, Option<Revision>), ApiError> {
        match rv.filter(|s| !s.is_empty()) {
            None | Some("0") => Ok((WatchStart::CurrentState, None)),
            Some(rv) => {
                let rev = parse_resource_version(rv)?;
                if send_initial_events {
                    Ok((WatchStart::CurrentState, Some(rev)))
                } else {
                    Ok((WatchStart::After(rev), None))
                }
            }
        }
    }
}

fn gone(e: StorageError) -> ApiError {
    match e {
        StorageError::Compacted { requested, compacted } => {
            ApiError::expired(format!("too old resource version: {requested} ({compacted})"))
        }
        other => ApiError::internal(other),
    }
}

impl GenericStore {
    /// Decodes a deleted object: its last value, with the delete's revision.
    fn decode_deleted(&self, ev: &Event) -> Result<Object, ApiError> {
        let prev = ev.prev.as_ref().ok_or_else(|| ApiError::internal("delete event without the previous value"))?;
        let mut obj = self.decode(prev)?;
        object::set_meta(&mut obj, "resourceVersion", Some(Value::String(ev.revision().to_string())));
        Ok(obj)
    }

    fn transition(&self, ev: &Event, predicate: &Predicate) -> Result<Option<WatchEvent>, ApiError> {
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
        Ok(match (old_matches, new_matches, ev.event_type) {
            (_, _, EventType::Deleted) if old_matches => old.map(|o| WatchEvent { event_type: WatchEventType::Deleted, object: o }),
            (false, true, _) => new.map(|o| WatchEvent { event_type: WatchEventType::Added, object: o }),
            (true, true, _) => new.map(|o| WatchEvent { event_type: WatchEventType::Modified, object: o }),
            (true, false, _) => new.map(|mut o| {
                // The object left the selection: DELETED with its new state.
                object::set_meta(&mut o, "resourceVersion", Some(Value::String(ev.revision().to_string())));
                WatchEvent { event_type: WatchEventType::Deleted, object: o }
            }),
            _ => None,
        })
    }

    /// Starts a watch.
    pub async fn watch(self: &Arc<Self>, namespace: &str, predicate: Predicate, start: WatchStart) -> Result<Watch, ApiError> {
        let prefix = self.prefix(namespace);
        let (initial, after) = match start {
            WatchStart::After(rev) => (Vec::new(), rev),
            WatchStart::CurrentState => {
                let list = self
                    .list(namespace, &ListOptions { predicate: predicate.clone(), ..Default::default() })
                    .await?;
                let events = list
                    .items
                    .into_iter()
                    .map(|o| WatchEvent { event_type: WatchEventType::Added, object: o })
                    .collect::<Vec<_>>();
                (events, list.resource_version)
            }
        };
        let events = self.storage().watch(&prefix, Some(after)).await.map_err(gone)?;
        let this = self.clone();
        let live = events
            .map(move |item| match item {
                Ok(ev) => match this.transition(&ev, &predicate) {
                    Ok(Some(we)) => Some(we),
                    Ok(None) => None,
                    Err(e) => Some(WatchEvent { event_type: WatchEventType::Error, object: status_object(&e) }),
                },
                Err(e) => Some(WatchEvent { event_type: WatchEventType::Error, object: status_object(&gone(e)) }),
            })
            .filter_map(futures::future::ready);
        // End the stream after an ERROR event.
        let live = stop_after_error(live);
        Ok(Watch { initial, live, start_revision: after })
    }
}

/// A started watch.
pub struct Watch {
    /// Synthetic ADDED events for the current state (empty when the watch
    /// starts after a given revision).
    pub initial: Vec<WatchEvent>,
    /// Changes after `start_revision`; ends after an ERROR event.
    pub live: BoxStream<'static, WatchEvent>,
    /// The revision the initial state was read at, or the one the watch
    /// started after.
    pub start_revision: Revision,
}

/// A `metav1.Status` as a watch event object.
pub fn status_object(e: &ApiError) -> Object {
    match e.to_value() {
        Value::Object(m) => m,
        _ => Object::new(),
    }
}

fn stop_after_error(s: impl futures::Stream<Item = WatchEvent> + Send + 'static) -> BoxStream<'static, WatchEvent> {
    s.scan(false, |done, ev| {
        if *done {
            return futures::future::ready(None);
        }
        if ev.event_type == WatchEventType::Error {
            *done = true;
        }
        futures::future::ready(Some(ev))
    })
    .boxed()
}
