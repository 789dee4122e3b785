//! Watch catch-up: the [`History`] a lagging or resuming watcher replays from.
//!
//! Events are rebuilt from `LOG` (what happened at each revision, to which
//! key, and which revision held the previous value) and `VALUES`, on one
//! read snapshot per page.

use std::sync::Weak;

use bytes::Bytes;
use redb::ReadableTable;

use super::Engine;
use super::read::begin_snapshot;
use super::schema::{LOG, LogRecord, OrInternal, VALUES, revision_from_u64, revision_to_u64};
use super::values::{self, ChunkKey};
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
        events_after(&engine, prefix, after, max)
    }
}

/// Up to `max` events under `prefix` after revision `after`, and the revision
/// history was scanned up to (see [`History::events_after`]).
pub(super) fn events_after(
    engine: &Engine,
    prefix: &str,
    after: Revision,
    max: usize,
) -> Result<(Vec<Event>, Revision)> {
    let (current, snapshot) = {
        let index = engine.index();
        if after < index.compacted() {
            return Err(StorageError::Compacted {
                requested: after,
                compacted: index.compacted(),
            });
        }
        (engine.revision(), begin_snapshot(engine)?)
    };
    let from = revision_to_u64(after).saturating_add(1);
    let to = revision_to_u64(current);
    if from > to {
        // Nothing after `after` yet (it may even be a future revision).
        return Ok((Vec::new(), current));
    }
    let log = snapshot.open_table(LOG).or_internal()?;
    let values = snapshot.open_table(VALUES).or_internal()?;
    let mut out = Vec::new();
    for entry in log.range(from..=to).or_internal()? {
        let (rev, raw) = entry.or_internal()?;
        let rev = revision_from_u64(rev.value())?;
        if out.len() >= max {
            let scanned = out.last().map_or(after, Event::revision);
            return Ok((out, scanned));
        }
        let record = LogRecord::decode(rev, raw.value())?;
        if record.key.starts_with(prefix) {
            out.push(event(&values, rev, &record)?);
        }
    }
    Ok((out, current))
}

/// The event the write at `revision` produced.
fn event<T: ReadableTable<ChunkKey, &'static [u8]>>(
    values: &T,
    revision: Revision,
    record: &LogRecord<'_>,
) -> Result<Event> {
    let kv = KeyValue {
        key: record.key.to_string(),
        value: match record.event_type {
            EventType::Deleted => Bytes::new(),
            EventType::Added | EventType::Modified => values::get(values, revision)?,
        },
        create_revision: record.create_revision,
        mod_revision: revision,
    };
    let prev = match record.event_type {
        EventType::Added => None,
        EventType::Modified | EventType::Deleted => Some(KeyValue {
            key: record.key.to_string(),
            value: values::get(values, record.prev_revision)?,
            // The previous value belongs to the same life of the key.
            create_revision: record.create_revision,
            mod_revision: record.prev_revision,
        }),
    };
    Ok(Event {
        event_type: record.event_type,
        kv,
        prev,
    })
}
