//! rkube's storage layer: one interface with etcd's semantics, several backends.
//!
//! The whole apiserver stores objects through [`Store`]. Its model is etcd's
//! MVCC key space:
//!
//! - one global revision per store, increased by every write; an object's
//!   `mod_revision` becomes its `resourceVersion`;
//! - reads of the latest state or of any revision not yet compacted;
//! - compare-and-swap writes guarded by the expected `mod_revision`;
//! - watches that replay every change after a revision, in order and exactly
//!   once, then follow live changes;
//! - compaction, which forgets history older than a revision.
//!
//! Backends: [`embedded`] (the default: a write-ahead log with group
//! commit, checkpointed into a redb database, in one data directory),
//! [`etcd`] (a real etcd v3 cluster) and [`memory`] (unit tests only).
//! [`StorageConfig::open`] picks one.
//!
//! With the `testing` feature, [`testing`] holds the conformance suite that
//! every backend runs unchanged, and a harness that starts real etcd members.

pub mod compactor;
pub mod config;
pub mod continue_token;
pub mod embedded;
pub mod error;
pub mod etcd;
pub mod memory;
pub mod store;
mod watch_hub;

#[cfg(feature = "testing")]
pub mod testing;

pub use config::{StorageBackend, StorageConfig};
pub use error::{Result, StorageError};
pub use store::{Event, EventType, KeyValue, ListOptions, ListResult, Revision, Store, WatchStream};
