//! Watch catch-up: the [`History`] a lagging or resuming watcher replays from.
//!
//! Events are rebuilt from `LOG` (what happened at each revision, to which
//! key, and which revision held the previous value) and `VALUES`, on one
//! read snapshot per page, and from the pending writes (logged, not yet
//! checkpointed).

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
///
/// Events up to the checkpointed revision come from redb; later ones from
/// the pending writes, copied (cheaply: shared buffers) while the index lock
/// is held, since a checkpoint may drop them right after.
pub(super) fn events_after(
    engine: &Engine,
    prefix: &str,
    after: Revision,
    max: usize,
) -> Result<(Vec<Event>, Revision)> {
    let (current, checkpointed, snapshot, pending) = {
        let index = engine.index();
        if after < index.compacted() {
            return Err(StorageError::Compacted {
                requested: after,
                compacted: index.compacted(),
            });
        }
        let current = engine.revision();
        let checkpointed = index.pending.checkpointed();
        // Matching pending writes, with the previous value when it is
        // pending too (otherwise it is at or below `checkpointed`).
        let mut pending = Vec::new();
        let mut prev_stored = false;
        for (revision, write) in index.pending.range(after, current) {
            if pending.len() > max {
                break;
            }
            if write.key.starts_with(prefix) {
                let prev = index.pending.value(write.prev_revision);
                prev_stored |= prev.is_none() && write.event_type != EventType::Added;
                pending.push((revision, write.clone(), prev));
            }
        }
        let snapshot = if after < checkpointed.min(current) || prev_stored {
            Some(begin_snapshot(engine)?)
        } else {
            None
        };
        (current, checkpointed, snapshot, pending)
    };
    let mut out = Vec::new();
    if let Some(snapshot) = &snapshot {
        let from = revision_to_u64(after).saturating_add(1);
        let to = revision_to_u64(checkpointed.min(current));
        let log = snapshot.open_table(LOG).or_internal()?;
        let values = snapshot.open_table(VALUES).or_internal()?;
        for entry in log.range(from..=to).or_internal()? {
            let (rev, raw) = entry.or_internal()?;
            let rev = revision_from_u64(rev.value())?;
            if out.len() >= max {
                let scanned = out.last().map_or(after, Event::revision);
                return Ok((out, scanned));
            }
            let record = LogRecord::decode(rev, raw.value())?;
            if record.key.starts_with(prefix) {
                out.push(stored_event(&values, rev, &record)?);
            }
        }
    }
    for (revision, write, prev) in pending {
        if out.len() >= max {
            let scanned = out.last().map_or(after, Event::revision);
            return Ok((out, scanned));
        }
        let prev = match (write.event_type, prev) {
            (EventType::Added, _) => None,
            (_, Some(value)) => Some(value),
            (_, None) => {
                let snapshot = snapshot
                    .as_ref()
                    .ok_or_else(|| StorageError::Internal("previous value of a pending write not found".into()))?;
                let values = snapshot.open_table(VALUES).or_internal()?;
                Some(values::get(&values, write.prev_revision)?)
            }
        };
        out.push(event(
            revision,
            write.event_type,
            &write.key,
            write.create_revision,
            write.prev_revision,
            write.value.clone(),
            prev,
        ));
    }
    Ok((out, current))
}

/// The event the write at `revision` produced, read from redb.
fn stored_event<T: ReadableTable<ChunkKey, &'static [u8]>>(
    values: &T,
    revision: Revision,
    record: &LogRecord<'_>,
) -> Result<Event> {
    let value = match record.event_type {
        EventType::Deleted => Bytes::new(),
        EventType::Added | EventType::Modified => values::get(values, revision)?,
    };
    let prev = match record.event_type {
        EventType::Added => None,
        EventType::Modified | EventType::Deleted => Some(values::get(values, record.prev_revision)?),
    };
    Ok(event(
        revision,
        record.event_type,
        record.key,
        record.create_revision,
        record.prev_revision,
        value,
        prev,
    ))
}

/// An event from its parts.
fn event(
    revision: Revision,
    event_type: EventType,
    key: &str,
    create_revision: Revision,
    prev_revision: Revision,
    value: Bytes,
    prev: Option<Bytes>,
) -> Event {
    Event {
        event_type,
        kv: KeyValue {
            key: key.to_string(),
            value,
            create_revision,
            mod_revision: revision,
        },
        prev: prev.map(|value| KeyValue {
            key: key.to_string(),
            value,
            // The previous value belongs to the same life of the key.
            create_revision,
            mod_revision: prev_revision,
        }),
    }
}
