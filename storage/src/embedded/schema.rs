//! The on-disk layout: the redb tables and the binary records stored in them.
//!
//! Three tables, all written by the writer thread only:
//!
//! - [`HISTORY`]: `key ++ 0x00 ++ revision (u64, big-endian)` -> [`Version`].
//!   Every version of every key that is not compacted away, tombstones
//!   included. Keys never contain NUL, so byte order of the composite key is
//!   key order, then revision order: the latest version of a key at revision
//!   `r` is the last entry at or before `key\0r`, one B-tree descent. Values
//!   live here only; nothing else copies them.
//! - [`LOG`]: `revision (u64)` -> `[event type: u8][key bytes]`. One entry per
//!   write, so watches can page through what happened after a revision; the
//!   values (and the previous value) are looked up in `HISTORY`.
//! - [`META`]: name -> `i64`: the schema version, the current revision and the
//!   compacted revision, updated in the same transaction as the writes.
//!
//! A version record is `[kind: u8][create_revision: i64 LE][value bytes]`:
//! fixed-size header, no serialisation framework, no per-record allocation.
//! Everything read back is validated; a malformed record is a
//! [`StorageError::Internal`], never a panic.

use redb::TableDefinition;

use crate::error::{Result, StorageError};
use crate::store::{EventType, Revision};

/// Every version of every key (see the module docs).
pub(super) const HISTORY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("history");
/// One entry per write, by revision.
pub(super) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// Store-wide counters.
pub(super) const META: TableDefinition<&str, i64> = TableDefinition::new("meta");

/// `META` key of the layout version.
pub(super) const META_SCHEMA_VERSION: &str = "schema_version";
/// `META` key of the current revision (1 for an empty store).
pub(super) const META_REVISION: &str = "revision";
/// `META` key of the compacted revision (0: nothing compacted).
pub(super) const META_COMPACTED: &str = "compacted";
/// The layout this code reads and writes.
pub(super) const SCHEMA_VERSION: i64 = 1;

const KIND_VALUE: u8 = 1;
const KIND_TOMBSTONE: u8 = 2;
const VERSION_HEADER: usize = 9;
const REVISION_SUFFIX: usize = 9;

/// One version of a key as stored in `HISTORY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version<'a> {
    /// The key holds `value`, created at `create_revision`.
    Value { create_revision: Revision, value: &'a [u8] },
    /// The key was deleted; `create_revision` is that of the deleted value.
    Tombstone { create_revision: Revision },
}

impl<'a> Version<'a> {
    /// Decodes a `HISTORY` record.
    pub(super) fn decode(raw: &'a [u8]) -> Result<Self> {
        let (header, value) = raw
            .split_first_chunk::<VERSION_HEADER>()
            .ok_or_else(|| corrupt("history record shorter than its header"))?;
        let [kind, create @ ..] = *header;
        let create_revision = i64::from_le_bytes(create);
        match kind {
            KIND_VALUE => Ok(Version::Value { create_revision, value }),
            KIND_TOMBSTONE if value.is_empty() => Ok(Version::Tombstone { create_revision }),
            KIND_TOMBSTONE => Err(corrupt("tombstone record with a value")),
            other => Err(corrupt(&format!("history record of unknown kind {other}"))),
        }
    }

    /// Whether this version is a deletion marker.
    pub(super) fn is_tombstone(raw: &[u8]) -> Result<bool> {
        match raw.first() {
            Some(&KIND_VALUE) => Ok(false),
            Some(&KIND_TOMBSTONE) => Ok(true),
            _ => Err(corrupt("history record of unknown kind")),
        }
    }

    /// Writes the record of a value into `buf` (cleared first).
    pub(super) fn encode_value(buf: &mut Vec<u8>, create_revision: Revision, value: &[u8]) {
        buf.clear();
        buf.reserve(VERSION_HEADER + value.len());
        buf.push(KIND_VALUE);
        buf.extend_from_slice(&create_revision.to_le_bytes());
        buf.extend_from_slice(value);
    }

    /// Writes the record of a tombstone into `buf` (cleared first).
    pub(super) fn encode_tombstone(buf: &mut Vec<u8>, create_revision: Revision) {
        buf.clear();
        buf.push(KIND_TOMBSTONE);
        buf.extend_from_slice(&create_revision.to_le_bytes());
    }
}

/// Writes the `HISTORY` key of (`key`, `revision`) into `buf` (cleared first).
pub(super) fn history_key(buf: &mut Vec<u8>, key: &str, revision: Revision) {
    buf.clear();
    buf.reserve(key.len() + REVISION_SUFFIX);
    buf.extend_from_slice(key.as_bytes());
    buf.push(0);
    buf.extend_from_slice(&revision_to_u64(revision).to_be_bytes());
}

/// The smallest `HISTORY` key of `key`: `key\0`, before all its versions.
pub(super) fn history_key_start(buf: &mut Vec<u8>, key: &str) {
    buf.clear();
    buf.extend_from_slice(key.as_bytes());
    buf.push(0);
}

/// Splits a `HISTORY` key into the user key and the revision.
pub(super) fn split_history_key(raw: &[u8]) -> Result<(&str, Revision)> {
    let (key, revision) = split_history_key_bytes(raw)?;
    let key = std::str::from_utf8(key).map_err(|_| corrupt("history key is not UTF-8"))?;
    Ok((key, revision))
}

/// [`split_history_key`] without checking that the key is UTF-8 (for scans
/// that compare raw keys and decode only what they return).
pub(super) fn split_history_key_bytes(raw: &[u8]) -> Result<(&[u8], Revision)> {
    let (key, suffix) = raw
        .split_last_chunk::<REVISION_SUFFIX>()
        .ok_or_else(|| corrupt("history key shorter than its revision suffix"))?;
    let [separator, rev @ ..] = *suffix;
    if separator != 0 {
        return Err(corrupt("history key without its separator"));
    }
    Ok((key, revision_from_u64(u64::from_be_bytes(rev))?))
}

/// Writes the `LOG` record of an event on `key` into `buf` (cleared first).
pub(super) fn encode_log(buf: &mut Vec<u8>, event_type: EventType, key: &str) {
    buf.clear();
    buf.reserve(1 + key.len());
    buf.push(match event_type {
        EventType::Added => 1,
        EventType::Modified => 2,
        EventType::Deleted => 3,
    });
    buf.extend_from_slice(key.as_bytes());
}

/// Decodes a `LOG` record into the event type and the key.
pub(super) fn decode_log(raw: &[u8]) -> Result<(EventType, &str)> {
    let (&kind, key) = raw.split_first().ok_or_else(|| corrupt("empty log record"))?;
    let event_type = match kind {
        1 => EventType::Added,
        2 => EventType::Modified,
        3 => EventType::Deleted,
        other => return Err(corrupt(&format!("log record of unknown event type {other}"))),
    };
    let key = std::str::from_utf8(key).map_err(|_| corrupt("log key is not UTF-8"))?;
    Ok((event_type, key))
}

/// A revision as a table key. Revisions are positive; anything below zero
/// (only ever a caller's bad argument) sorts as zero.
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

    #[test]
    fn history_keys_sort_by_key_then_revision() {
        let mut keys = Vec::new();
        for (key, rev) in [("a", 9), ("a", 10), ("a/b", 2), ("a\u{1}", 1), ("ab", 3), ("b", 1)] {
            let mut buf = Vec::new();
            history_key(&mut buf, key, rev);
            keys.push(buf);
        }
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        for raw in &keys {
            let (key, rev) = split_history_key(raw).expect("valid key");
            let mut again = Vec::new();
            history_key(&mut again, key, rev);
            assert_eq!(&again, raw);
        }
    }

    #[test]
    fn records_round_trip_and_reject_garbage() {
        let mut buf = Vec::new();
        Version::encode_value(&mut buf, 7, b"hello");
        assert_eq!(
            Version::decode(&buf).expect("valid"),
            Version::Value {
                create_revision: 7,
                value: b"hello"
            }
        );
        Version::encode_tombstone(&mut buf, 3);
        assert_eq!(
            Version::decode(&buf).expect("valid"),
            Version::Tombstone { create_revision: 3 }
        );
        encode_log(&mut buf, EventType::Deleted, "/k");
        assert_eq!(decode_log(&buf).expect("valid"), (EventType::Deleted, "/k"));

        for garbage in [&b""[..], b"\x01", b"\x09aaaaaaaa", b"\x02\0\0\0\0\0\0\0\0x"] {
            assert!(matches!(Version::decode(garbage), Err(StorageError::Internal(_))));
        }
        for garbage in [&b""[..], b"\x07/k", b"\x01\xff\xfe"] {
            assert!(matches!(decode_log(garbage), Err(StorageError::Internal(_))));
        }
        for garbage in [&b""[..], b"k\x01\0\0\0\0\0\0\0\x01", b"\xff\0\0\0\0\0\0\0\0\x01", b"k\0\xff\0\0\0\0\0\0\0"] {
            assert!(matches!(split_history_key(garbage), Err(StorageError::Internal(_))));
        }
    }
}
