//! One resource's part of the watch cache: the current objects, a window of
//! recent events, and a broadcast ring for live watchers.
//!
//! Objects are kept pre-encoded (JSON without `kind`/`apiVersion`, with
//! `metadata.resourceVersion` set), so a LIST is a concatenation of bytes
//! and a watch event is encoded once for all watchers.

use std::any::Any;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use rkube_storage::{Event, EventType, KeyValue, Revision};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::registry::list::Predicate;
use crate::registry::object::{self, Object};
use crate::registry::selection::{ObjectAttrs, attrs_of};
use crate::registry::watch::WatchEventType;
use crate::resources::ResourceInfo;
use crate::status::ApiError;

use super::stored_json;

/// Events kept per resource for watchers that start from a past revision.
pub const WINDOW_EVENTS: usize = 10_000;
/// Live events buffered per resource before a slow watcher must catch up
/// from the window.
const RING: usize = 4096;
/// Paginated lists whose remaining pages are kept for their continue
/// tokens, per resource.
const PAGE_SNAPSHOTS: usize = 32;
/// How long the rest of a paginated list is kept for its continue token;
/// later pages are read from storage at the token's revision.
const PAGE_SNAPSHOT_TTL: Duration = Duration::from_secs(120);

/// The objects after the first page of a paginated list, at the list's
/// revision, so later pages see the same consistent state without storage.
struct PageSnapshot {
    prefix: String,
    revision: Revision,
    taken: Instant,
    /// The first key the snapshot covers.
    from_key: String,
    /// Every object under `prefix` from `from_key` on, in key order.
    tail: Vec<Arc<CachedObject>>,
}

/// An object as the cache keeps it.
#[derive(Debug)]
pub struct CachedObject {
    pub key: String,
    pub revision: Revision,
    /// The object's JSON without `kind` and `apiVersion`.
    pub body: Bytes,
    pub attrs: ObjectAttrs,
    /// The object's bare protobuf message, encoded from `body` on the first
    /// protobuf read, with the index of the message it was encoded as.
    protobuf: OnceLock<Option<(usize, Bytes)>>,
    /// A typed view of `body` read by the server itself (admission's
    /// namespace and service account views), kept after the first read:
    /// a new revision is a new `CachedObject`, so it is never stale.
    view: OnceLock<Arc<dyn Any + Send + Sync>>,
}

impl CachedObject {
    /// Encodes a stored value at `revision`: a splice of the stored bytes
    /// when they are this server's encoding (see [`stored_json`]), else by
    /// decoding and encoding the object.
    fn from_value(info: &ResourceInfo, key: &str, value: &[u8], revision: Revision) -> Result<CachedObject, ApiError> {
        let decode_error = |e: serde_json::Error| ApiError::internal(format!("decoding {key}: {e}"));
        if let Some(body) = stored_json::cached_body(value, revision) {
            // Checks the whole value's syntax too, as decoding it would.
            let view = stored_json::selectable_view(value).map_err(decode_error)?;
            return Ok(CachedObject {
                key: key.to_string(),
                revision,
                body: Bytes::from(body),
                attrs: attrs_of(info, &view),
                protobuf: OnceLock::new(),
                view: OnceLock::new(),
            });
        }
        Self::decoded(info, key, value, revision)
    }

    /// [`CachedObject::from_value`] by decoding the value into a map and
    /// encoding it again.
    pub(super) fn decoded(
        info: &ResourceInfo,
        key: &str,
        value: &[u8],
        revision: Revision,
    ) -> Result<CachedObject, ApiError> {
        let mut obj: Object =
            serde_json::from_slice(value).map_err(|e| ApiError::internal(format!("decoding {key}: {e}")))?;
        obj.remove("kind");
        obj.remove("apiVersion");
        object::set_meta(&mut obj, "resourceVersion", Some(Value::String(revision.to_string())));
        let attrs = attrs_of(info, &obj);
        // The body lives as long as the object is cached: sized to the
        // stored value (which it rarely exceeds, having lost kind and
        // apiVersion) and trimmed, not left at a doubling Vec's capacity
        // (Bytes keeps a Vec's spare capacity).
        let mut body = Vec::with_capacity(value.len() + 32);
        serde_json::to_writer(&mut body, &obj).map_err(ApiError::internal)?;
        body.shrink_to_fit();
        Ok(CachedObject {
            key: key.to_string(),
            revision,
            body: Bytes::from(body),
            attrs,
            protobuf: OnceLock::new(),
            view: OnceLock::new(),
        })
    }

    /// The body read into `T`, decoded on the first read of a `T` and
    /// shared after; a read as another type decodes every time (each
    /// resource has one view type in practice).
    pub fn view<T: serde::de::DeserializeOwned + Send + Sync + 'static>(&self) -> Result<Arc<T>, serde_json::Error> {
        if let Some(kept) = self.view.get()
            && let Ok(view) = kept.clone().downcast::<T>()
        {
            return Ok(view);
        }
        let view = Arc::new(serde_json::from_slice::<T>(&self.body)?);
        let _ = self.view.set(view.clone());
        Ok(view)
    }

    /// The object as protobuf message `message` (without envelope), kept
    /// after the first call so protobuf lists copy bytes like JSON ones.
    /// `None` when the JSON does not fit the message.
    pub fn protobuf(&self, message: usize) -> Option<Bytes> {
        let encode = || {
            let value: Value = serde_json::from_slice(&self.body).ok()?;
            crate::protobuf::encode_raw(message, &value).ok().map(Bytes::from)
        };
        match self.protobuf.get_or_init(|| encode().map(|b| (message, b))) {
            Some((m, b)) if *m == message => Some(b.clone()),
            Some(_) => encode(),
            None => None,
        }
    }

    /// The full object JSON (`kind` and `apiVersion` first).
    pub fn object_json(&self, info: &ResourceInfo) -> Bytes {
        let mut out = BytesMut::with_capacity(self.body.len() + 64);
        write_object(&mut out, info, &self.body);
        out.freeze()
    }

    /// The object decoded (for code paths that need a map).
    pub fn decode(&self, info: &ResourceInfo) -> Object {
        serde_json::from_slice(&self.object_json(info)).unwrap_or_default()
    }
}

/// Writes `{"kind":..,"apiVersion":..,<body fields>}`.
fn write_object(out: &mut BytesMut, info: &ResourceInfo, body: &[u8]) {
    out.put_slice(b"{\"kind\":");
    out.put_slice(serde_json::to_string(&info.kind).unwrap_or_default().as_bytes());
    out.put_slice(b",\"apiVersion\":");
    out.put_slice(
        serde_json::to_string(&info.api_version())
            .unwrap_or_default()
            .as_bytes(),
    );
    if body.len() > 2 {
        out.put_u8(b',');
        out.put_slice(&body[1..]);
    } else {
        out.put_u8(b'}');
    }
}

/// One change in the cache.
#[derive(Debug)]
pub struct CacheEvent {
    pub revision: Revision,
    pub event_type: WatchEventType,
    /// The object after the change (for DELETED: its last state at the
    /// delete's revision).
    pub object: Arc<CachedObject>,
    /// The object before the change.
    pub prev: Option<Arc<CachedObject>>,
    line: OnceLock<Bytes>,
    /// [`CacheEvent::line`] as a protobuf watch frame, rendered once for
    /// every protobuf watcher that gets the shared line.
    protobuf_line: OnceLock<Bytes>,
}

/// A whole watch line: `{"type":"ADDED","object":{...}}\n`.
pub fn watch_line(info: &ResourceInfo, event_type: WatchEventType, body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(body.len() + 96);
    out.put_slice(b"{\"type\":\"");
    out.put_slice(event_type.as_str().as_bytes());
    out.put_slice(b"\",\"object\":");
    write_object(&mut out, info, body);
    out.put_slice(b"}\n");
    out.freeze()
}

impl CacheEvent {
    /// The event's line as every unfiltered watcher sends it (encoded once).
    pub fn line(&self, info: &ResourceInfo) -> Bytes {
        self.line
            .get_or_init(|| watch_line(info, self.event_type, &self.object.body))
            .clone()
    }

    /// The shared line ([`CacheEvent::line`]) as a protobuf frame:
    /// `render` runs for the first watcher that asks, and every other one
    /// gets the same bytes.
    pub fn protobuf_line(&self, render: impl FnOnce() -> Bytes) -> Bytes {
        self.protobuf_line.get_or_init(render).clone()
    }

    /// What a watcher with `predicate` sees of this event, if anything:
    /// an object entering the selection is ADDED, one leaving it DELETED.
    pub fn for_predicate(&self, info: &ResourceInfo, predicate: &Predicate) -> Option<Bytes> {
        self.for_watcher(info, predicate).map(|(line, _)| line)
    }

    /// [`CacheEvent::for_predicate`], and whether the line is the event's
    /// shared one (true) or made for this watcher's selection.
    pub fn for_watcher(&self, info: &ResourceInfo, predicate: &Predicate) -> Option<(Bytes, bool)> {
        if predicate.is_everything() {
            return Some((self.line(info), true));
        }
        let new_matches = predicate.matches_attrs(&self.object.attrs);
        let old_matches = self.prev.as_ref().is_some_and(|p| predicate.matches_attrs(&p.attrs));
        match (self.event_type, old_matches, new_matches) {
            (WatchEventType::Deleted, _, true) => Some((self.line(info), true)),
            (WatchEventType::Deleted, _, false) => None,
            (_, true, true) => Some((self.line(info), true)),
            (_, false, true) => Some((watch_line(info, WatchEventType::Added, &self.object.body), false)),
            (_, true, false) => Some((watch_line(info, WatchEventType::Deleted, &self.object.body), false)),
            (_, false, false) => None,
        }
    }
}

/// What a live watcher receives.
#[derive(Debug, Clone)]
pub enum CacheSignal {
    Event(Arc<CacheEvent>),
    /// The cache was rebuilt from storage; watchers must start over.
    Reset,
}

struct State {
    objects: BTreeMap<String, Arc<CachedObject>>,
    window: VecDeque<Arc<CacheEvent>>,
    /// Every event of this resource after this revision is in `window`.
    window_start: Revision,
    /// The last revision applied to this resource.
    revision: Revision,
}

/// A snapshot for LIST.
pub struct Snapshot {
    pub items: Vec<Arc<CachedObject>>,
    pub revision: Revision,
    /// The next key when the list was cut by a limit.
    pub next_key: Option<String>,
    pub remaining: Option<i64>,
}

/// One resource's cache.
pub struct ResourceCache {
    pub info: Arc<ResourceInfo>,
    state: RwLock<State>,
    tx: broadcast::Sender<CacheSignal>,
    pages: Mutex<VecDeque<PageSnapshot>>,
    derived: Mutex<HashMap<&'static str, HashMap<String, Derived>>>,
}

/// A value the server derived from a list of this resource (see
/// [`ResourceCache::derived`]), with the resource's revision it was
/// derived at.
struct Derived {
    revision: Revision,
    value: Arc<dyn Any + Send + Sync>,
}

/// Derived values kept per purpose; past this many namespaces a purpose
/// starts over (namespaces come and go).
const DERIVED_PER_PURPOSE: usize = 4096;

impl ResourceCache {
    pub fn new(info: Arc<ResourceInfo>) -> Self {
        let (tx, _) = broadcast::channel(RING);
        ResourceCache {
            info,
            state: RwLock::new(State {
                objects: BTreeMap::new(),
                window: VecDeque::new(),
                window_start: 0,
                revision: 0,
            }),
            tx,
            pages: Mutex::new(VecDeque::new()),
            derived: Mutex::new(HashMap::new()),
        }
    }

    /// The value kept for `purpose` and `namespace` if it was derived at
    /// `revision`, the resource's current revision (see
    /// [`ResourceCache::revision`]): the objects it came from have not
    /// changed since.
    pub fn derived<T: Send + Sync + 'static>(
        &self,
        purpose: &'static str,
        namespace: &str,
        revision: Revision,
    ) -> Option<Arc<T>> {
        let derived = self.derived.lock().unwrap_or_else(|p| p.into_inner());
        let kept = derived.get(purpose)?.get(namespace)?;
        if kept.revision != revision {
            return None;
        }
        kept.value.clone().downcast::<T>().ok()
    }

    /// Keeps `value`, derived from this resource's objects in `namespace`
    /// as listed at `revision` or later, for [`ResourceCache::derived`].
    pub fn keep_derived<T: Send + Sync + 'static>(
        &self,
        purpose: &'static str,
        namespace: &str,
        revision: Revision,
        value: Arc<T>,
    ) {
        let mut derived = self.derived.lock().unwrap_or_else(|p| p.into_inner());
        let kept = derived.entry(purpose).or_default();
        if kept.len() >= DERIVED_PER_PURPOSE && !kept.contains_key(namespace) {
            kept.clear();
        }
        kept.insert(namespace.to_string(), Derived { revision, value });
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Encodes one stored object for the cache (`None`, logged, when it
    /// does not decode).
    pub fn encode(&self, kv: &KeyValue) -> Option<Arc<CachedObject>> {
        match CachedObject::from_value(&self.info, &kv.key, &kv.value, kv.mod_revision) {
            Ok(o) => Some(Arc::new(o)),
            Err(e) => {
                tracing::warn!(key = %kv.key, error = %e, "skipping undecodable object");
                None
            }
        }
    }

    /// The object stored under `key`, if the cache holds it.
    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        self.read().objects.get(key).cloned()
    }

    /// Replaces the contents with a fresh list at `revision`; live watchers
    /// are told to start over.
    pub fn reset(&self, items: Vec<KeyValue>, revision: Revision) {
        let objects = items
            .iter()
            .filter_map(|kv| Some((kv.key.clone(), self.encode(kv)?)))
            .collect();
        self.reset_objects(objects, revision);
    }

    /// Replaces the contents with objects already encoded by
    /// [`ResourceCache::encode`], listed at `revision`.
    pub fn reset_objects(&self, objects: BTreeMap<String, Arc<CachedObject>>, revision: Revision) {
        let mut st = self.write();
        st.objects = objects;
        st.window.clear();
        st.window_start = revision;
        st.revision = revision;
        let _ = self.tx.send(CacheSignal::Reset);
    }

    /// Applies one storage event.
    pub fn apply(&self, ev: &Event) {
        let rev = ev.revision();
        let key = &ev.kv.key;
        let built = match ev.event_type {
            EventType::Deleted => ev
                .prev
                .as_ref()
                .map(|p| CachedObject::from_value(&self.info, key, &p.value, rev))
                .transpose(),
            _ => CachedObject::from_value(&self.info, key, &ev.kv.value, rev).map(Some),
        };
        let object = match built {
            Ok(Some(o)) => Arc::new(o),
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(key = %key, error = %e, "skipping undecodable event");
                return;
            }
        };
        let mut st = self.write();
        let prev = match ev.event_type {
            EventType::Deleted => st.objects.remove(key),
            // An update replaces the value in place (no copy of the key).
            _ => match st.objects.get_mut(key) {
                Some(slot) => Some(std::mem::replace(slot, object.clone())),
                None => st.objects.insert(key.clone(), object.clone()),
            },
        };
        let event_type = match (ev.event_type, &prev) {
            (EventType::Deleted, _) => WatchEventType::Deleted,
            (_, None) => WatchEventType::Added,
            (_, Some(_)) => WatchEventType::Modified,
        };
        let event = Arc::new(CacheEvent {
            revision: rev,
            event_type,
            object,
            prev,
            line: OnceLock::new(),
            protobuf_line: OnceLock::new(),
        });
        st.window.push_back(event.clone());
        while st.window.len() > WINDOW_EVENTS {
            if let Some(old) = st.window.pop_front() {
                st.window_start = old.revision;
            }
        }
        st.revision = rev;
        let _ = self.tx.send(CacheSignal::Event(event));
    }

    /// A LIST from the cache. `global` is the cache's global revision, read
    /// before taking the lock.
    pub fn list(&self, prefix: &str, predicate: &Predicate, limit: usize, global: Revision) -> Snapshot {
        let st = self.read();
        let revision = st.revision.max(global);
        let mut items = Vec::new();
        let mut next_key = None;
        let mut remaining = 0i64;
        for (key, obj) in st.objects.range::<str, _>((Bound::Included(prefix), Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            if !predicate.matches_attrs(&obj.attrs) {
                continue;
            }
            if limit > 0 && items.len() >= limit {
                if next_key.is_none() {
                    next_key = items.last().map(|o: &Arc<CachedObject>| format!("{}\0", o.key));
                }
                remaining += 1;
                continue;
            }
            items.push(obj.clone());
        }
        let remaining = (next_key.is_some() && predicate.is_everything()).then_some(remaining);
        if let Some(next) = &next_key {
            let tail = st
                .objects
                .range::<str, _>((Bound::Included(next.as_str()), Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(_, o)| o.clone())
                .collect();
            drop(st);
            self.keep_pages(PageSnapshot {
                prefix: prefix.to_string(),
                revision,
                taken: Instant::now(),
                from_key: next.clone(),
                tail,
            });
        }
        Snapshot {
            items,
            revision,
            next_key,
            remaining,
        }
    }

    fn keep_pages(&self, snapshot: PageSnapshot) {
        let mut pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        pages.retain(|p| p.taken.elapsed() < PAGE_SNAPSHOT_TTL);
        while pages.len() >= PAGE_SNAPSHOTS {
            pages.pop_front();
        }
        pages.push_back(snapshot);
    }

    /// A later page of a paginated list: the objects under `prefix` from
    /// key `start` on, as they were at `revision`. `None` when that list's
    /// snapshot is no longer kept (the caller reads storage instead).
    pub fn continue_list(
        &self,
        prefix: &str,
        start: &str,
        revision: Revision,
        predicate: &Predicate,
        limit: usize,
    ) -> Option<Snapshot> {
        let pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        let snap = pages.iter().rev().find(|p| {
            p.prefix == prefix
                && p.revision == revision
                && p.taken.elapsed() < PAGE_SNAPSHOT_TTL
                && p.from_key.as_str() <= start
        })?;
        let from = snap.tail.partition_point(|o| o.key.as_str() < start);
        let mut items = Vec::new();
        let mut next_key = None;
        let mut remaining = 0i64;
        for obj in &snap.tail[from..] {
            if !predicate.matches_attrs(&obj.attrs) {
                continue;
            }
            if limit > 0 && items.len() >= limit {
                if next_key.is_none() {
                    next_key = items.last().map(|o: &Arc<CachedObject>| format!("{}\0", o.key));
                }
                remaining += 1;
                continue;
            }
            items.push(obj.clone());
        }
        let remaining = (next_key.is_some() && predicate.is_everything()).then_some(remaining);
        Some(Snapshot {
            items,
            revision,
            next_key,
            remaining,
        })
    }

    /// Starts a watch: the initial events (the current state, or the
    /// window's events after `after`), the live receiver, and the revision
    /// the watch starts at.
    pub fn watch(
        &self,
        prefix: &str,
        predicate: &Predicate,
        after: Option<Revision>,
        global: Revision,
    ) -> Result<(Vec<Bytes>, broadcast::Receiver<CacheSignal>, Revision), ApiError> {
        let st = self.read();
        let rx = self.tx.subscribe();
        let revision = st.revision.max(global);
        let mut initial = Vec::new();
        match after {
            None => {
                for (key, obj) in st.objects.range::<str, _>((Bound::Included(prefix), Bound::Unbounded)) {
                    if !key.starts_with(prefix) {
                        break;
                    }
                    if predicate.matches_attrs(&obj.attrs) {
                        initial.push(watch_line(&self.info, WatchEventType::Added, &obj.body));
                    }
                }
                Ok((initial, rx, revision))
            }
            Some(after) => {
                if after < st.window_start {
                    return Err(ApiError::expired(format!(
                        "too old resource version: {after} ({})",
                        st.window_start + 1
                    )));
                }
                for ev in st
                    .window
                    .iter()
                    .filter(|e| e.revision > after && e.object.key.starts_with(prefix))
                {
                    if let Some(line) = ev.for_predicate(&self.info, predicate) {
                        initial.push(line);
                    }
                }
                Ok((initial, rx, revision.max(after)))
            }
        }
    }

    /// Events after `after` from the window, for a watcher that fell behind
    /// the live ring; `None` when the window no longer reaches back.
    pub fn catch_up(&self, prefix: &str, predicate: &Predicate, after: Revision) -> Option<(Vec<Bytes>, Revision)> {
        let st = self.read();
        if after < st.window_start {
            return None;
        }
        let mut last = after;
        let mut out = Vec::new();
        for ev in st.window.iter().filter(|e| e.revision > after) {
            last = ev.revision;
            if ev.object.key.starts_with(prefix)
                && let Some(line) = ev.for_predicate(&self.info, predicate)
            {
                out.push(line);
            }
        }
        Some((out, last))
    }

    /// The last revision applied to this resource.
    pub fn revision(&self) -> Revision {
        self.read().revision
    }

    /// Number of objects held.
    pub fn len(&self) -> usize {
        self.read().objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rkube_storage::{Event, EventType, KeyValue};

    use super::*;
    use crate::resources::ResourceTable;

    fn configmaps() -> ResourceCache {
        ResourceCache::new(ResourceTable::builtin().get("", "v1", "configmaps").unwrap().clone())
    }

    fn put(cache: &ResourceCache, name: &str, data: &str, revision: Revision) {
        let value = format!(
            r#"{{"apiVersion":"v1","data":{{"a":"{data}"}},"kind":"ConfigMap","metadata":{{"name":"{name}","namespace":"d"}}}}"#
        );
        cache.apply(&Event {
            event_type: EventType::Added,
            kv: KeyValue {
                key: format!("/core/configmaps/d/{name}"),
                value: Bytes::from(value),
                create_revision: revision,
                mod_revision: revision,
            },
            prev: None,
        });
    }

    #[derive(Debug, serde::Deserialize)]
    struct Data {
        data: BTreeMap<String, String>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Meta {
        metadata: BTreeMap<String, Value>,
    }

    #[test]
    fn a_view_is_decoded_once_per_revision_of_the_object() {
        let cache = configmaps();
        put(&cache, "c", "1", 5);
        let first = cache.get("/core/configmaps/d/c").unwrap();
        let a = first.view::<Data>().unwrap();
        assert_eq!(a.data["a"], "1");
        assert!(Arc::ptr_eq(&a, &first.view::<Data>().unwrap()));
        // Another type is read too, just not kept.
        assert_eq!(first.view::<Meta>().unwrap().metadata["name"], "c");
        assert!(Arc::ptr_eq(&a, &first.view::<Data>().unwrap()));
        // A new revision is a new object with its own view.
        put(&cache, "c", "2", 6);
        let second = cache.get("/core/configmaps/d/c").unwrap();
        assert_eq!(second.view::<Data>().unwrap().data["a"], "2");
        assert_eq!(a.data["a"], "1");
    }

    #[test]
    fn a_derived_value_is_kept_until_the_resource_changes() {
        let cache = configmaps();
        put(&cache, "c", "1", 5);
        assert_eq!(cache.revision(), 5);
        assert!(cache.derived::<usize>("count", "d", 5).is_none());
        cache.keep_derived("count", "d", 5, Arc::new(1usize));
        assert_eq!(*cache.derived::<usize>("count", "d", 5).unwrap(), 1);
        // Other namespaces, purposes and types are apart.
        assert!(cache.derived::<usize>("count", "e", 5).is_none());
        assert!(cache.derived::<usize>("other", "d", 5).is_none());
        assert!(cache.derived::<String>("count", "d", 5).is_none());
        // Any change to the resource moves its revision past the kept one.
        put(&cache, "x", "1", 9);
        assert_eq!(cache.revision(), 9);
        assert!(cache.derived::<usize>("count", "d", 9).is_none());
    }

    #[test]
    fn derived_values_are_bounded_per_purpose() {
        let cache = configmaps();
        for i in 0..DERIVED_PER_PURPOSE {
            cache.keep_derived("p", &format!("ns-{i}"), 1, Arc::new(i));
        }
        assert_eq!(*cache.derived::<usize>("p", "ns-0", 1).unwrap(), 0);
        cache.keep_derived("p", "one-more", 1, Arc::new(7usize));
        assert!(cache.derived::<usize>("p", "ns-0", 1).is_none());
        assert_eq!(*cache.derived::<usize>("p", "one-more", 1).unwrap(), 7);
    }
}
