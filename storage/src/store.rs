//! The storage interface: [`Store`] and the values it reads and writes.

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

use crate::error::Result;

/// A store revision. Starts at 1 for an empty store; every write increases it
/// by one. It becomes the `resourceVersion` of Kubernetes objects.
pub type Revision = i64;

/// One key and the value it holds at some revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// Revision of the write that created this key (since its last delete).
    pub create_revision: Revision,
    /// Revision of the write that produced this value.
    pub mod_revision: Revision,
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The key was created.
    Added,
    /// An existing key got a new value.
    Modified,
    /// The key was deleted.
    Deleted,
}

/// One change, as delivered by [`Store::watch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub event_type: EventType,
    /// The key after the change. For `Deleted`, `value` is empty,
    /// `mod_revision` is the revision of the delete and `create_revision`
    /// that of the deleted value.
    pub kv: KeyValue,
    /// The value before the change (`None` for `Added`).
    pub prev: Option<KeyValue>,
}

impl Event {
    /// The revision at which this change happened.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// How to list a prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Serve the list at this revision (`None`: the latest).
    pub revision: Option<Revision>,
    /// Return at most this many items (`0`: no limit).
    pub limit: usize,
    /// Start at this key (inclusive); it must begin with the prefix. Used for
    /// pagination: see [`crate::continue_token`].
    pub start: Option<String>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListResult {
    /// Items in key order.
    pub items: Vec<KeyValue>,
    /// The revision the list was served at (the store's revision when no
    /// revision was asked for).
    pub revision: Revision,
    /// Whether items remain after this page.
    pub more: bool,
    /// How many items remain after this page, at the same revision.
    pub remaining: i64,
}

impl ListResult {
    /// The start key of the next page, if there is one.
    pub fn next_start(&self) -> Option<String> {
        if !self.more {
            return None;
        }
        self.items.last().map(|kv| format!("{}\0", kv.key))
    }
}

/// The stream of events returned by [`Store::watch`]. It ends with an error
/// item (then nothing) when the watch cannot go on, e.g. [`crate::StorageError::Compacted`]
/// when a lagging watcher's history was compacted away.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<Event>> + Send>>;

/// A key-value store with etcd's semantics. Every backend implements it and
/// passes the same conformance suite (`testing::conformance`).
///
/// Keys are arbitrary non-empty UTF-8 strings; prefixes are plain string
/// prefixes (callers end them with `/` to mean a directory).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Short backend name for logs and metrics (`embedded`, `etcd`, `memory`).
    fn backend_name(&self) -> &'static str;

    /// The value of `key` at `revision` (`None`: the latest), or `None` when
    /// the key does not exist at that revision.
    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<Option<KeyValue>>;

    /// Keys starting with `prefix`, in key order, at one revision.
    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult>;

    /// Number of keys starting with `prefix` now.
    async fn count(&self, prefix: &str) -> Result<i64>;

    /// Creates `key`; fails with `AlreadyExists` if it exists. Returns the
    /// revision of the write.
    async fn create(&self, key: &str, value: Bytes) -> Result<Revision>;

    /// Replaces the value of `key` if its `mod_revision` is
    /// `expected_mod_revision`; `NotFound` if the key is missing, `Conflict`
    /// otherwise. Returns the revision of the write.
    async fn update(&self, key: &str, value: Bytes, expected_mod_revision: Revision) -> Result<Revision>;

    /// Deletes `key`, guarded by its `mod_revision` when one is given.
    /// Returns the revision of the delete and the value that was deleted.
    async fn delete(&self, key: &str, expected_mod_revision: Option<Revision>) -> Result<(Revision, KeyValue)>;

    /// Every change under `prefix` after revision `after` (`None`: after the
    /// current revision), exactly once and in order, then live changes.
    /// Fails with `Compacted` when history after `after` is no longer kept.
    async fn watch(&self, prefix: &str, after: Option<Revision>) -> Result<WatchStream>;

    /// The store's current revision.
    async fn current_revision(&self) -> Result<Revision>;

    /// Forgets history older than `revision`: reads at revisions below it
    /// and watches from before it then fail with `Compacted`.
    async fn compact(&self, revision: Revision) -> Result<()>;
}

/// The key just past every key with `prefix` (etcd's "range end").
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // An empty or all-0xff prefix: "to the end of the key space" (etcd: "\0").
    vec![0]
}

/// Checks a key before a write: non-empty and without NUL bytes (a NUL is
/// what continue tokens append to a key, so keys must not contain it).
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(crate::StorageError::InvalidArgument("key must not be empty".into()));
    }
    if key.contains('\0') {
        return Err(crate::StorageError::InvalidArgument(format!(
            "key {key:?} must not contain NUL"
        )));
    }
    Ok(())
}
