//! Applying one write inside a batch: the precondition against the key
//! index (which already holds the batch's earlier writes), the record in the
//! batch's log frame, the index entry and pending write, and the event to
//! publish.

use std::sync::Arc;

use bytes::Bytes;

use super::Engine;
use super::index::IndexedVersion;
use super::pending::PendingWrite;
use super::read::Snapshots;
use super::schema::corrupt;
use super::wal::FrameBuilder;
use super::writer::{WriteOp, WriteOutcome};
use crate::error::{Result, StorageError};
use crate::store::{Event, EventType, KeyValue, Revision};

/// The outcome of applying one write.
pub(super) enum Applied {
    /// Written; the event to publish after the commit.
    Written(WriteOutcome, Event),
    /// Precondition failed; nothing written.
    Refused(StorageError),
}

/// One batch being applied: its log frame, and the snapshots its
/// preconditions read previous values from.
pub(super) struct Batch<'a> {
    engine: &'a Engine,
    frame: &'a mut FrameBuilder,
    snapshots: Snapshots,
}

impl<'a> Batch<'a> {
    /// Starts a batch whose first write will be at `first`.
    pub(super) fn open(engine: &'a Engine, frame: &'a mut FrameBuilder, first: Revision) -> Self {
        frame.start(first);
        Batch {
            engine,
            frame,
            snapshots: Snapshots::default(),
        }
    }

    /// Applies one write at `*revision + 1` if its precondition holds.
    pub(super) fn apply(&mut self, op: WriteOp, revision: &mut Revision) -> Result<Applied> {
        let next = *revision + 1;
        let applied = match op {
            WriteOp::Create { key, value } => {
                if self.current(&key).is_some() {
                    return Ok(Applied::Refused(StorageError::AlreadyExists { key }));
                }
                self.write(
                    next,
                    PendingWrite {
                        event_type: EventType::Added,
                        create_revision: next,
                        prev_revision: 0,
                        key: key.as_str().into(),
                        value: value.clone(),
                    },
                )?;
                let kv = KeyValue {
                    key,
                    value,
                    create_revision: next,
                    mod_revision: next,
                };
                Applied::Written(
                    WriteOutcome::Written(next),
                    Event {
                        event_type: EventType::Added,
                        kv,
                        prev: None,
                    },
                )
            }
            WriteOp::Update { key, value, expected } => {
                let Some(current) = self.current(&key) else {
                    return Ok(Applied::Refused(StorageError::NotFound { key }));
                };
                let prev = self.read_value(&key, current)?;
                if current.revision != expected {
                    return Ok(Applied::Refused(StorageError::Conflict {
                        key,
                        expected,
                        current: Some(Box::new(prev)),
                    }));
                }
                self.write(
                    next,
                    PendingWrite {
                        event_type: EventType::Modified,
                        create_revision: current.create_revision,
                        prev_revision: current.revision,
                        key: key.as_str().into(),
                        value: value.clone(),
                    },
                )?;
                let kv = KeyValue {
                    key,
                    value,
                    create_revision: current.create_revision,
                    mod_revision: next,
                };
                Applied::Written(
                    WriteOutcome::Written(next),
                    Event {
                        event_type: EventType::Modified,
                        kv,
                        prev: Some(prev),
                    },
                )
            }
            WriteOp::Delete { key, expected } => {
                let Some(current) = self.current(&key) else {
                    return Ok(Applied::Refused(StorageError::NotFound { key }));
                };
                let prev = self.read_value(&key, current)?;
                if let Some(expected) = expected
                    && current.revision != expected
                {
                    return Ok(Applied::Refused(StorageError::Conflict {
                        key,
                        expected,
                        current: Some(Box::new(prev)),
                    }));
                }
                self.write(
                    next,
                    PendingWrite {
                        event_type: EventType::Deleted,
                        create_revision: current.create_revision,
                        prev_revision: current.revision,
                        key: key.as_str().into(),
                        value: Bytes::new(),
                    },
                )?;
                let kv = KeyValue {
                    key,
                    value: Bytes::new(),
                    create_revision: current.create_revision,
                    mod_revision: next,
                };
                Applied::Written(
                    WriteOutcome::Deleted(next, prev.clone()),
                    Event {
                        event_type: EventType::Deleted,
                        kv,
                        prev: Some(prev),
                    },
                )
            }
        };
        *revision = next;
        Ok(applied)
    }

    /// The newest version of `key` if it is a value, this batch included.
    fn current(&self, key: &str) -> Option<IndexedVersion> {
        self.engine.index().value_at(key, Revision::MAX)
    }

    /// Logs the write at `revision` (into the batch's frame), indexes it
    /// and keeps it pending.
    fn write(&mut self, revision: Revision, write: PendingWrite) -> Result<()> {
        self.frame.push(&write);
        let version = IndexedVersion {
            revision,
            create_revision: write.create_revision,
            deleted: write.event_type == EventType::Deleted,
        };
        let mut index = self.engine.index_mut();
        if !index.push(&write.key, version) {
            return Err(corrupt(&format!("revision {revision} written twice")));
        }
        if !index.pending.push(revision, Arc::new(write)) {
            return Err(corrupt(&format!("revision {revision} out of order")));
        }
        Ok(())
    }

    /// The value `current` (a version of `key`) holds (it may be from this
    /// batch).
    fn read_value(&mut self, key: &str, current: IndexedVersion) -> Result<KeyValue> {
        let located = {
            let index = self.engine.index();
            self.snapshots.locate(self.engine, &index, current.revision)?
        };
        Ok(KeyValue {
            key: key.to_string(),
            value: self.snapshots.read(located, current.revision)?,
            create_revision: current.create_revision,
            mod_revision: current.revision,
        })
    }
}
