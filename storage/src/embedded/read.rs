//! Reads: `get`, `list` and `count`.
//!
//! A read picks its revision and the versions it needs from the in-memory
//! index, then reads the values from a redb read transaction: an MVCC
//! snapshot that never waits for the writer thread. The snapshot is begun
//! while the index lock is held and the revision checked, which orders it
//! before any compaction that could remove those values.

use std::ops::Bound;

use redb::{ReadOnlyTable, ReadTransaction, ReadableDatabase};

use super::Engine;
use super::index::{IndexedVersion, KeyIndex};
use super::schema::{OrInternal, VALUES};
use super::values::{self, ChunkKey};
use crate::error::{Result, StorageError};
use crate::store::{KeyValue, ListOptions, ListResult, Revision};

/// Keys looked at per index lock hold while listing or counting.
const SCAN_CHUNK: usize = 4096;

/// Fails unless a read at `requested` can be served.
pub(super) fn check_revision(requested: Revision, index: &KeyIndex, current: Revision) -> Result<()> {
    let compacted = index.compacted();
    if requested < compacted {
        return Err(StorageError::Compacted { requested, compacted });
    }
    if requested > current {
        return Err(StorageError::FutureRevision { requested, current });
    }
    Ok(())
}

/// Starts a read transaction (call it with the index lock held).
pub(super) fn begin_snapshot(engine: &Engine) -> Result<ReadTransaction> {
    engine.db.begin_read().or_internal()
}

/// The value of `key` at `revision` (`None`: the latest).
pub(super) fn get(engine: &Engine, key: &str, revision: Option<Revision>) -> Result<Option<KeyValue>> {
    let (version, snapshot) = {
        let index = engine.index();
        let current = engine.revision();
        let at = match revision {
            None => current,
            Some(rev) => {
                check_revision(rev, &index, current)?;
                rev
            }
        };
        let Some(version) = index.value_at(key, at) else {
            return Ok(None);
        };
        (version, begin_snapshot(engine)?)
    };
    let values = snapshot.open_table(VALUES).or_internal()?;
    Ok(Some(key_value(&values, key, version)?))
}

/// One page of the keys under `prefix` (see [`crate::Store::list`]).
pub(super) fn list(engine: &Engine, prefix: &str, options: &ListOptions) -> Result<ListResult> {
    let start = match &options.start {
        Some(s) if !s.starts_with(prefix) => {
            return Err(StorageError::InvalidArgument(format!(
                "start key {s:?} is outside prefix {prefix:?}"
            )));
        }
        Some(s) => s.as_str(),
        None => prefix,
    };
    let mut page: Vec<(String, IndexedVersion)> = Vec::new();
    let mut remaining = 0i64;
    let mut visit = |key: &str, version: IndexedVersion| {
        if options.limit == 0 || page.len() < options.limit {
            page.push((key.to_string(), version));
        } else {
            remaining += 1;
        }
    };

    // The first chunk fixes the revision and starts the snapshot.
    let (revision, snapshot, mut resume) = {
        let index = engine.index();
        let current = engine.revision();
        let revision = match options.revision {
            None | Some(0) => current,
            Some(rev) => {
                check_revision(rev, &index, current)?;
                rev
            }
        };
        let snapshot = begin_snapshot(engine)?;
        let resume = index.scan(prefix, Bound::Included(start), revision, SCAN_CHUNK, &mut visit);
        (revision, snapshot, resume)
    };
    while let Some(last) = resume {
        let index = engine.index();
        // A compaction past `revision` may have pruned what is left to scan.
        check_revision(revision, &index, revision)?;
        resume = index.scan(prefix, Bound::Excluded(&last), revision, SCAN_CHUNK, &mut visit);
    }

    let values = snapshot.open_table(VALUES).or_internal()?;
    let items = page
        .iter()
        .map(|(key, version)| key_value(&values, key, *version))
        .collect::<Result<Vec<_>>>()?;
    Ok(ListResult {
        items,
        revision,
        more: remaining > 0,
        remaining,
    })
}

/// Number of keys under `prefix` now.
pub(super) fn count(engine: &Engine, prefix: &str) -> Result<i64> {
    let mut n = 0i64;
    let revision = engine.revision();
    let mut resume = engine
        .index()
        .scan(prefix, Bound::Included(prefix), revision, SCAN_CHUNK, |_, _| n += 1);
    while let Some(last) = resume {
        resume = engine
            .index()
            .scan(prefix, Bound::Excluded(&last), revision, SCAN_CHUNK, |_, _| n += 1);
    }
    Ok(n)
}

/// The [`KeyValue`] of an indexed version (that is not a deletion).
fn key_value(values: &ReadOnlyTable<ChunkKey, &'static [u8]>, key: &str, version: IndexedVersion) -> Result<KeyValue> {
    Ok(KeyValue {
        key: key.to_string(),
        value: values::get(values, version.revision)?,
        create_revision: version.create_revision,
        mod_revision: version.revision,
    })
}
