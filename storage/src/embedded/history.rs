//! Watch catch-up: the [`History`] a lagging or resuming watcher replays from.
//!
//! Events are rebuilt from `LOG` (revision -> event type and key) and
//! `HISTORY` (the value written at that revision and, just before it, the
//! previous value), on one read snapshot per page.

use std::ops::Bound;
use std::sync::Weak;

use bytes::Bytes;
use redb::{Database, ReadOnlyTable, ReadableTable};

use super::Engine;
use super::read::Snapshot;
use super::schema::{
    HISTORY, LOG, OrInternal, Version, corrupt, decode_log, history_key, revision_from_u64, revision_to_u64,
    split_history_key,
};
use crate::error::{Result, StorageError};
use crate::store::{Event, EventType, KeyValue, Revision};
use crate::watch_hub::History;

/// The history of an open store, as seen by its watchers. Holds the store
/// weakly so that running watchers do not keep the database file open (and
/// locked) after the store is dropped.
pub(super) struct WatchHistory {
    pub(super) engine: Weak<Engine>,
}

impl History for WatchHistory {
    fn events_after(&self, prefix: &str, after: Revision, max: usize) -> Result<(Vec<Event>, Revision)> {
        let engine = self
            .engine
            .upgrade()
            .ok_or_else(|| StorageError::Unavailable("store closed".into()))?;
        events_after(&engine.db, prefix, after, max)
    }
}

/// Up to `max` events under `prefix` after revision `after`, and the revision
/// history was scanned up to (see [`History::events_after`]).
pub(super) fn events_after(db: &Database, prefix: &str, after: Revision, max: usize) -> Result<(Vec<Event>, Revision)> {
    let snapshot = Snapshot::begin(db)?;
    let revisions = snapshot.revisions()?;
    if after < revisions.compacted {
        return Err(StorageError::Compacted {
            requested: after,
            compacted: revisions.compacted,
        });
    }
    let log = snapshot.txn.open_table(LOG).or_internal()?;
    let history = snapshot.txn.open_table(HISTORY).or_internal()?;
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for entry in log.range(revision_to_u64(after).saturating_add(1)..).or_internal()? {
        let (rev, record) = entry.or_internal()?;
        let rev = revision_from_u64(rev.value())?;
        if out.len() >= max {
            let scanned = out.last().map_or(after, Event::revision);
            return Ok((out, scanned));
        }
        let (event_type, key) = decode_log(record.value())?;
        if key.starts_with(prefix) {
            out.push(event_at(&history, &mut buf, event_type, key, rev)?);
        }
    }
    Ok((out, revisions.current))
}

/// Rebuilds the event the write at `revision` on `key` produced.
fn event_at(
    history: &ReadOnlyTable<&'static [u8], &'static [u8]>,
    buf: &mut Vec<u8>,
    event_type: EventType,
    key: &str,
    revision: Revision,
) -> Result<Event> {
    history_key(buf, key, revision);
    let mut cursor = history.lower_bound(Bound::Included(buf.as_slice())).or_internal()?;
    let before = cursor.peek_prev().or_internal()?;
    let (found, raw) = cursor
        .next()
        .or_internal()?
        .ok_or_else(|| corrupt("log entry without its version"))?;
    if split_history_key(found.value())? != (key, revision) {
        return Err(corrupt("log entry without its version"));
    }
    let kv = match (event_type, Version::decode(raw.value())?) {
        (EventType::Deleted, Version::Tombstone { create_revision }) => KeyValue {
            key: key.to_string(),
            value: Bytes::new(),
            create_revision,
            mod_revision: revision,
        },
        (EventType::Added | EventType::Modified, Version::Value { create_revision, value }) => KeyValue {
            key: key.to_string(),
            value: Bytes::copy_from_slice(value),
            create_revision,
            mod_revision: revision,
        },
        _ => return Err(corrupt("log entry does not match its version")),
    };
    let prev = match event_type {
        EventType::Added => None,
        EventType::Modified | EventType::Deleted => {
            let (prev_key, prev_raw) = before.ok_or_else(|| corrupt("event without its previous version"))?;
            let (prev_key, prev_rev) = split_history_key(prev_key.value())?;
            if prev_key != key {
                return Err(corrupt("event without its previous version"));
            }
            match Version::decode(prev_raw.value())? {
                Version::Value { create_revision, value } => Some(KeyValue {
                    key: key.to_string(),
                    value: Bytes::copy_from_slice(value),
                    create_revision,
                    mod_revision: prev_rev,
                }),
                Version::Tombstone { .. } => return Err(corrupt("event whose previous version is a tombstone")),
            }
        }
    };
    Ok(Event { event_type, kv, prev })
}
