//! The on-disk layout: the redb tables and the binary records stored in them.
//!
//! Versions are stored by revision, like etcd's bbolt `key` bucket, so that
//! a batch of writes only appends at the right edge of two B-trees (a few
//! pages per commit) instead of rewriting one random leaf per written key.
//! Which revision holds a key's version is answered by the in-memory
//! [`super::index`], rebuilt from `LOG` at open.
//!
//! - [`LOG`]: `revision (u64)` -> [`LogRecord`]: `[event type: u8]
//!   [create_revision: i64 LE][prev_revision: i64 LE][key bytes]`. One row
//!   per write: what happened to which key, and which revision held the
//!   previous value (0 for a creation). Small, so rebuilding the index reads
//!   little; watches page through it to catch up.
//! - [`VALUES`]: `(revision (u64), chunk (u32))` -> value bytes, for every
//!   write that is not a deletion, cut into chunks that pack pages (see
//!   [`super::values`]).
//! - [`META`]: name -> `i64`: the layout version, the compacted revision,
//!   how far compaction got, and the checkpointed revision: every write up
//!   to it is in `LOG`/`VALUES`, the ones after it only in the write-ahead
//!   log (see [`super::wal`]), replayed from there at open. The current
//!   revision is the larger of it and the last `LOG` row, or the last write
//!   replayed from the log.
//!
//! Compaction removes the `LOG` and `VALUES` rows of superseded versions;
//! the rows of the versions still visible stay, so the index can always be
//! rebuilt from `LOG`.
//!
//! Fixed-size headers, no serialisation framework, no per-record allocation.
//! Everything read back is validated; a malformed record is a
//! [`StorageError::Internal`], never a panic.

use redb::TableDefinition;

use crate::error::{Result, StorageError};
use crate::store::{EventType, Revision};

/// One row per write, by revision.
pub(super) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// The value written at each revision (deletions have none), in chunks
/// (see [`super::values`]).
pub(super) const VALUES: TableDefinition<super::values::ChunkKey, &[u8]> = TableDefinition::new("values");
/// Store-wide counters.
pub(super) const META: TableDefinition<&str, i64> = TableDefinition::new("meta");

/// `META` key of the layout version.
pub(super) const META_SCHEMA_VERSION: &str = "schema_version";
/// `META` key of the checkpointed revision (1 for an empty store): written
/// by every checkpoint.
pub(super) const META_REVISION: &str = "revision";
/// `META` key of the compacted revision (0: nothing compacted).
pub(super) const META_COMPACTED: &str = "compacted";
/// `META` key of the revision up to which `LOG` rows were handled by
/// compaction.
pub(super) const META_COMPACT_PROGRESS: &str = "compact_progress";
/// The layout this code reads and writes.
pub(super) const SCHEMA_VERSION: i64 = 1;

const LOG_HEADER: usize = 17;

/// One `LOG` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LogRecord<'a> {
    pub(super) event_type: EventType,
    /// The `create_revision` of the value written (of the deleted value, for
    /// a deletion).
    pub(super) create_revision: Revision,
    /// The revision of the previous value (0 for a creation).
    pub(super) prev_revision: Revision,
    pub(super) key: &'a str,
}

impl<'a> LogRecord<'a> {
    /// Writes the record into `buf` (cleared first).
    pub(super) fn encode(&self, buf: &mut Vec<u8>) {
        buf.clear();
        buf.reserve(LOG_HEADER + self.key.len());
        buf.push(match self.event_type {
            EventType::Added => 1,
            EventType::Modified => 2,
            EventType::Deleted => 3,
        });
        buf.extend_from_slice(&self.create_revision.to_le_bytes());
        buf.extend_from_slice(&self.prev_revision.to_le_bytes());
        buf.extend_from_slice(self.key.as_bytes());
    }

    /// Decodes the record of the write at `revision`, checking that it is
    /// consistent with it.
    pub(super) fn decode(revision: Revision, raw: &'a [u8]) -> Result<Self> {
        let (header, key) = raw
            .split_first_chunk::<LOG_HEADER>()
            .ok_or_else(|| corrupt(&format!("log row {revision} shorter than its header")))?;
        let [kind, revisions @ ..] = *header;
        let (create, prev) = revisions.split_at(8);
        let le_i64 = |bytes: &[u8]| -> Result<i64> {
            let bytes: [u8; 8] = bytes.try_into().map_err(|_| corrupt("log row header"))?;
            Ok(i64::from_le_bytes(bytes))
        };
        let create_revision = le_i64(create)?;
        let prev_revision = le_i64(prev)?;
        let event_type = match kind {
            1 => EventType::Added,
            2 => EventType::Modified,
            3 => EventType::Deleted,
            other => {
                return Err(corrupt(&format!("log row {revision} of unknown event type {other}")));
            }
        };
        let key = std::str::from_utf8(key).map_err(|_| corrupt(&format!("log row {revision}: key is not UTF-8")))?;
        let consistent = !key.is_empty()
            && create_revision > 0
            && create_revision <= revision
            && match event_type {
                EventType::Added => prev_revision == 0 && create_revision == revision,
                EventType::Modified | EventType::Deleted => {
                    prev_revision > 0 && prev_revision < revision && create_revision <= prev_revision
                }
            };
        if !consistent {
            return Err(corrupt(&format!("log row {revision} is inconsistent")));
        }
        Ok(LogRecord {
            event_type,
            create_revision,
            prev_revision,
            key,
        })
    }
}

/// A revision as a table key. Revisions are positive; anything below zero
/// (only ever a caller's bad argument) maps to zero.
pub(super) fn revision_to_u64(revision: Revision) -> u64 {
    u64::try_from(revision).unwrap_or(0)
}

/// A table key back to a revision.
pub(super) fn revision_from_u64(raw: u64) -> Result<Revision> {
    Revision::try_from(raw).map_err(|_| corrupt(&format!("revision {raw} out of range")))
}

/// The error for a record that cannot have been written by this code.
pub(super) fn corrupt(what: &str) -> StorageError {
    StorageError::Internal(format!("corrupt embedded database: {what}"))
}

/// Turns any redb error into [`StorageError::Internal`].
pub(super) trait OrInternal<T> {
    fn or_internal(self) -> Result<T>;
}

impl<T, E: Into<redb::Error>> OrInternal<T> for std::result::Result<T, E> {
    fn or_internal(self) -> Result<T> {
        self.map_err(|e| StorageError::Internal(format!("embedded database: {}", e.into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(revision: Revision, record: LogRecord<'_>) {
        let mut buf = Vec::new();
        record.encode(&mut buf);
        assert_eq!(LogRecord::decode(revision, &buf).expect("valid record"), record);
    }

    #[test]
    fn log_records_round_trip() {
        let r = |event_type, create_revision, prev_revision| LogRecord {
            event_type,
            create_revision,
            prev_revision,
            key: "/k/ü",
        };
        check(5, r(EventType::Added, 5, 0));
        check(9, r(EventType::Modified, 5, 7));
        check(10, r(EventType::Deleted, 5, 9));
    }

    #[test]
    fn garbage_log_records_are_errors() {
        let mut good = Vec::new();
        LogRecord {
            event_type: EventType::Modified,
            create_revision: 2,
            prev_revision: 3,
            key: "/k",
        }
        .encode(&mut good);
        let mut bad_utf8 = good.clone();
        bad_utf8.push(0xff);
        let mut bad_kind = good.clone();
        bad_kind[0] = 9;
        let cases: [(Revision, &[u8]); 6] = [
            (4, b""),
            (4, &good[..10]),
            (4, &bad_utf8),
            (4, &bad_kind),
            (3, &good),       // previous revision not before the row
            (4, &good[..17]), // no key
        ];
        for (revision, raw) in cases {
            assert!(
                matches!(LogRecord::decode(revision, raw), Err(StorageError::Internal(_))),
                "{raw:?} at {revision}"
            );
        }
        assert!(LogRecord::decode(4, &good).is_ok());
    }
}
