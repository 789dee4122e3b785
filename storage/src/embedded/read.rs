//! Reads: `get`, `list` and `count` on a redb read transaction.
//!
//! A read transaction is an MVCC snapshot of the last commit: it never waits
//! for the writer thread and sees one consistent revision, even while group
//! commits go on. The revision a read is served at comes from the snapshot's
//! own `META` row, so it always matches the data read.

use std::ops::Bound;

use bytes::Bytes;
use redb::{AccessGuard, Database, ReadTransaction, ReadableDatabase, ReadableTable};

use super::schema::{
    HISTORY, META, META_COMPACTED, META_REVISION, OrInternal, Version, corrupt, history_key, split_history_key,
};
use crate::error::{Result, StorageError};
use crate::store::{KeyValue, ListOptions, ListResult, Revision};

/// A `HISTORY` record as stored.
pub(super) type RawVersion<'t> = AccessGuard<'t, &'static [u8]>;

/// The store's revisions as of one snapshot.
#[derive(Debug, Clone, Copy)]
pub(super) struct Revisions {
    /// The revision of the last write.
    pub(super) current: Revision,
    /// History before this revision is gone.
    pub(super) compacted: Revision,
}

impl Revisions {
    /// Fails unless `requested` can be served: not compacted, not future.
    pub(super) fn check(&self, requested: Revision) -> Result<()> {
        if requested < self.compacted {
            return Err(StorageError::Compacted {
                requested,
                compacted: self.compacted,
            });
        }
        if requested > self.current {
            return Err(StorageError::FutureRevision {
                requested,
                current: self.current,
            });
        }
        Ok(())
    }
}

/// A consistent read-only view of the store.
pub(super) struct Snapshot {
    pub(super) txn: ReadTransaction,
}

impl Snapshot {
    /// Starts a read transaction on the last commit.
    pub(super) fn begin(db: &Database) -> Result<Self> {
        Ok(Snapshot {
            txn: db.begin_read().or_internal()?,
        })
    }

    /// The current and compacted revisions of this snapshot.
    pub(super) fn revisions(&self) -> Result<Revisions> {
        let meta = self.txn.open_table(META).or_internal()?;
        let read = |name: &str| -> Result<Revision> {
            Ok(meta
                .get(name)
                .or_internal()?
                .ok_or_else(|| corrupt(&format!("meta entry {name:?} is missing")))?
                .value())
        };
        Ok(Revisions {
            current: read(META_REVISION)?,
            compacted: read(META_COMPACTED)?,
        })
    }

    /// The value of `key` at `revision` (`None`: the latest).
    pub(super) fn get(&self, key: &str, revision: Option<Revision>) -> Result<Option<KeyValue>> {
        let at = match revision {
            None => Revision::MAX,
            Some(rev) => {
                self.revisions()?.check(rev)?;
                rev
            }
        };
        let history = self.txn.open_table(HISTORY).or_internal()?;
        let mut buf = Vec::new();
        match version_at(&history, &mut buf, key, at)? {
            Some((mod_revision, raw)) => key_value(key, mod_revision, raw.value()),
            None => Ok(None),
        }
    }

    /// One page of the keys under `prefix` (see [`crate::Store::list`]).
    pub(super) fn list(&self, prefix: &str, options: &ListOptions) -> Result<ListResult> {
        let revisions = self.revisions()?;
        let revision = match options.revision {
            None | Some(0) => revisions.current,
            Some(rev) => {
                revisions.check(rev)?;
                rev
            }
        };
        let start = match &options.start {
            Some(s) if !s.starts_with(prefix) => {
                return Err(StorageError::InvalidArgument(format!(
                    "start key {s:?} is outside prefix {prefix:?}"
                )));
            }
            Some(s) => s.as_str(),
            None => prefix,
        };
        let history = self.txn.open_table(HISTORY).or_internal()?;
        let mut items = Vec::new();
        let mut remaining = 0i64;
        scan_visible(&history, prefix, start, revision, |key, mod_revision, raw| {
            if options.limit == 0 || items.len() < options.limit {
                if let Some(kv) = key_value(key, mod_revision, raw)? {
                    items.push(kv);
                }
            } else {
                remaining += 1;
            }
            Ok(())
        })?;
        Ok(ListResult {
            items,
            revision,
            more: remaining > 0,
            remaining,
        })
    }

    /// Number of keys under `prefix` in this snapshot.
    pub(super) fn count(&self, prefix: &str) -> Result<i64> {
        let history = self.txn.open_table(HISTORY).or_internal()?;
        let mut n = 0i64;
        scan_visible(&history, prefix, prefix, Revision::MAX, |_, _, _| {
            n += 1;
            Ok(())
        })?;
        Ok(n)
    }
}

/// The newest version of `key` at or before `revision`: its revision and its
/// raw record (a value or a tombstone). `buf` is scratch space.
pub(super) fn version_at<'t, T>(
    history: &'t T,
    buf: &mut Vec<u8>,
    key: &str,
    revision: Revision,
) -> Result<Option<(Revision, RawVersion<'t>)>>
where
    T: ReadableTable<&'static [u8], &'static [u8]>,
{
    history_key(buf, key, revision);
    let mut cursor = history.upper_bound(Bound::Included(buf.as_slice())).or_internal()?;
    let Some((found, raw)) = cursor.prev().or_internal()? else {
        return Ok(None);
    };
    let (found_key, found_rev) = split_history_key(found.value())?;
    if found_key != key {
        return Ok(None);
    }
    Ok(Some((found_rev, raw)))
}

/// Decodes a version record of `key` into a [`KeyValue`]; `None` for a
/// tombstone.
pub(super) fn key_value(key: &str, mod_revision: Revision, raw: &[u8]) -> Result<Option<KeyValue>> {
    Ok(match Version::decode(raw)? {
        Version::Value { create_revision, value } => Some(KeyValue {
            key: key.to_string(),
            value: Bytes::copy_from_slice(value),
            create_revision,
            mod_revision,
        }),
        Version::Tombstone { .. } => None,
    })
}

/// Calls `visit(key, mod_revision, raw_record)` for every key under `prefix`
/// and not before `start` that exists at `revision`, in key order.
///
/// One sequential pass over the prefix's slice of `HISTORY`: for each key,
/// the last version at or before `revision` wins, and tombstones hide the key.
fn scan_visible<'t, T>(
    history: &'t T,
    prefix: &str,
    start: &str,
    revision: Revision,
    mut visit: impl FnMut(&str, Revision, &[u8]) -> Result<()>,
) -> Result<()>
where
    T: ReadableTable<&'static [u8], &'static [u8]>,
{
    // `start` has no NUL (apart from a continue token's trailing one), so the
    // versions of every key >= start sort at or after its bytes.
    let lower = Bound::Included(start.as_bytes());
    let end = crate::store::prefix_end(prefix);
    // Only the empty prefix has no end: UTF-8 never contains 0xff.
    let upper = if prefix.is_empty() {
        Bound::Unbounded
    } else {
        Bound::Excluded(end.as_slice())
    };
    let range = history.range::<&[u8]>((lower, upper)).or_internal()?;

    let mut finish = |key: &[u8], candidate: Option<(Revision, RawVersion<'t>)>| -> Result<()> {
        let Some((mod_revision, raw)) = candidate else {
            return Ok(());
        };
        // A prefix or start containing NUL can catch versions of a shorter
        // key; compare whole keys to drop them.
        if !key.starts_with(prefix.as_bytes()) || key < start.as_bytes() {
            return Ok(());
        }
        if Version::is_tombstone(raw.value())? {
            return Ok(());
        }
        let key = std::str::from_utf8(key).map_err(|_| corrupt("history key is not UTF-8"))?;
        visit(key, mod_revision, raw.value())
    };

    let mut group: Vec<u8> = Vec::new();
    let mut in_group = false;
    let mut candidate: Option<(Revision, RawVersion<'t>)> = None;
    for entry in range {
        let (raw_key, raw) = entry.or_internal()?;
        let (key, rev) = super::schema::split_history_key_bytes(raw_key.value())?;
        if !in_group || key != group.as_slice() {
            if in_group {
                finish(&group, candidate.take())?;
            }
            group.clear();
            group.extend_from_slice(key);
            in_group = true;
        }
        if rev <= revision {
            candidate = Some((rev, raw));
        }
    }
    if in_group {
        finish(&group, candidate.take())?;
    }
    Ok(())
}
