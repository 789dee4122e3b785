//! Applying one write inside a batch's transaction: the precondition
//! against the key index (which already holds the batch's earlier writes),
//! the `LOG` and `VALUES` rows, the index entry, and the event to publish.

use bytes::Bytes;
use redb::{Table, WriteTransaction};

use super::Engine;
use super::index::IndexedVersion;
use super::schema::{LOG, LogRecord, OrInternal, VALUES, corrupt, revision_to_u64};
use super::values::{self, ChunkKey};
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

/// The open tables of one batch transaction.
pub(super) struct Batch<'a, 'txn> {
    engine: &'a Engine,
    log: Table<'txn, u64, &'static [u8]>,
    values: Table<'txn, ChunkKey, &'static [u8]>,
    /// Scratch space for `LOG` rows.
    log_buf: &'a mut Vec<u8>,
}

impl<'a, 'txn> Batch<'a, 'txn> {
    /// Opens the tables of `txn`.
    pub(super) fn open(engine: &'a Engine, txn: &'txn WriteTransaction, log_buf: &'a mut Vec<u8>) -> Result<Self> {
        Ok(Batch {
            engine,
            log: txn.open_table(LOG).or_internal()?,
            values: txn.open_table(VALUES).or_internal()?,
            log_buf,
        })
    }

    /// Applies one write at `*revision + 1` if its precondition holds.
    pub(super) fn apply(&mut self, op: WriteOp, revision: &mut Revision) -> Result<Applied> {
        let next = *revision + 1;
        let applied = match op {
            WriteOp::Create { key, value } => {
                if self.current(&key).is_some() {
                    return Ok(Applied::Refused(StorageError::AlreadyExists { key }));
                }
                let record = LogRecord {
                    event_type: EventType::Added,
                    create_revision: next,
                    prev_revision: 0,
                    key: &key,
                };
                self.write(next, &record, Some(&value))?;
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
                let record = LogRecord {
                    event_type: EventType::Modified,
                    create_revision: current.create_revision,
                    prev_revision: current.revision,
                    key: &key,
                };
                self.write(next, &record, Some(&value))?;
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
                let record = LogRecord {
                    event_type: EventType::Deleted,
                    create_revision: current.create_revision,
                    prev_revision: current.revision,
                    key: &key,
                };
                self.write(next, &record, None)?;
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

    /// Writes the rows of the write at `revision` and indexes it.
    fn write(&mut self, revision: Revision, record: &LogRecord<'_>, value: Option<&[u8]>) -> Result<()> {
        let row = revision_to_u64(revision);
        record.encode(self.log_buf);
        let replaced = self.log.insert(row, self.log_buf.as_slice()).or_internal()?.is_some();
        if let Some(value) = value {
            values::insert(&mut self.values, revision, value)?;
        }
        let version = IndexedVersion {
            revision,
            create_revision: record.create_revision,
            deleted: value.is_none(),
        };
        if replaced || !self.engine.index_mut().push(record.key, version) {
            return Err(corrupt(&format!("revision {revision} written twice")));
        }
        Ok(())
    }

    /// The value `current` (a version of `key`) holds, read in the write
    /// transaction (so it may be from this batch).
    fn read_value(&self, key: &str, current: IndexedVersion) -> Result<KeyValue> {
        Ok(KeyValue {
            key: key.to_string(),
            value: values::get(&self.values, current.revision)?,
            create_revision: current.create_revision,
            mod_revision: current.revision,
        })
    }
}
