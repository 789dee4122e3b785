//! Reads: `get`, `list` and `count`.
//!
//! A read picks its revision and the versions it needs from the in-memory
//! index, then finds each value either among the pending writes (logged,
//! not yet checkpointed; see [`super::pending`]) or in a redb read
//! transaction: an MVCC snapshot that never waits for the writer. Both are
//! decided while the index lock is held and the revision checked (see
//! [`Snapshots`]), which orders the snapshot before any compaction that
//! could remove those values and after any checkpoint that removed a value
//! from the pending writes.

use std::ops::Bound;

use bytes::Bytes;
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

/// Where a value is: in memory, or in one of the snapshots of a
/// [`Snapshots`].
#[derive(Debug, Clone)]
pub(super) enum Located {
    /// A pending write's value.
    Pending(Bytes),
    /// In redb, in the snapshot with this number.
    Stored(usize),
}

/// The redb snapshots one read uses.
///
/// A value missing from the pending writes was checkpointed before the
/// index lock was taken, so a snapshot begun under that lock holds it. A
/// snapshot begun earlier holds it only if it was checkpointed by then:
/// each snapshot remembers the checkpointed revision at its start, and a
/// newer value gets a new snapshot. Values never change, so a read may mix
/// snapshots.
#[derive(Default)]
pub(super) struct Snapshots {
    tables: Vec<ReadOnlyTable<ChunkKey, &'static [u8]>>,
    /// Everything up to this revision is in the newest snapshot.
    covers: Revision,
}

impl Snapshots {
    /// Finds the value written at `revision`. Call it with the index lock
    /// held, after checking that the read's revision is not compacted.
    pub(super) fn locate(&mut self, engine: &Engine, index: &KeyIndex, revision: Revision) -> Result<Located> {
        if let Some(value) = index.pending.value(revision) {
            return Ok(Located::Pending(value));
        }
        if self.tables.is_empty() || revision > self.covers {
            let snapshot = begin_snapshot(engine)?;
            self.tables.push(snapshot.open_table(VALUES).or_internal()?);
            self.covers = index.pending.checkpointed();
        }
        Ok(Located::Stored(self.tables.len() - 1))
    }

    /// The value found by [`Self::locate`] (no lock needed).
    pub(super) fn read(&self, located: Located, revision: Revision) -> Result<Bytes> {
        match located {
            Located::Pending(value) => Ok(value),
            Located::Stored(n) => {
                let table = self
                    .tables
                    .get(n)
                    .ok_or_else(|| StorageError::Internal("read snapshot out of range".into()))?;
                values::get(table, revision)
            }
        }
    }
}

/// The value of `key` at `revision` (`None`: the latest).
pub(super) fn get(engine: &Engine, key: &str, revision: Option<Revision>) -> Result<Option<KeyValue>> {
    let mut snapshots = Snapshots::default();
    let (version, located) = {
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
        (version, snapshots.locate(engine, &index, version.revision)?)
    };
    Ok(Some(key_value(&snapshots, key, version, located)?))
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
    let mut located: Vec<Located> = Vec::new();
    let mut snapshots = Snapshots::default();
    let mut remaining = 0i64;
    let mut scan = |index: &KeyIndex, from: Bound<&str>, revision: Revision, page: &mut Vec<_>| {
        index.scan(prefix, from, revision, SCAN_CHUNK, |key, version| {
            if options.limit == 0 || page.len() < options.limit {
                page.push((key.to_string(), version));
            } else {
                remaining += 1;
            }
        })
    };

    // The first chunk fixes the revision.
    let (revision, mut resume) = {
        let index = engine.index();
        let current = engine.revision();
        let revision = match options.revision {
            None | Some(0) => current,
            Some(rev) => {
                check_revision(rev, &index, current)?;
                rev
            }
        };
        let resume = scan(&index, Bound::Included(start), revision, &mut page);
        for (_, version) in &page[located.len()..] {
            located.push(snapshots.locate(engine, &index, version.revision)?);
        }
        (revision, resume)
    };
    while let Some(last) = resume {
        let index = engine.index();
        // A compaction past `revision` may have pruned what is left to scan.
        check_revision(revision, &index, revision)?;
        resume = scan(&index, Bound::Excluded(&last), revision, &mut page);
        for (_, version) in &page[located.len()..] {
            located.push(snapshots.locate(engine, &index, version.revision)?);
        }
    }

    let items = page
        .iter()
        .zip(located)
        .map(|((key, version), located)| key_value(&snapshots, key, *version, located))
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
fn key_value(snapshots: &Snapshots, key: &str, version: IndexedVersion, located: Located) -> Result<KeyValue> {
    Ok(KeyValue {
        key: key.to_string(),
        value: snapshots.read(located, version.revision)?,
        create_revision: version.create_revision,
        mod_revision: version.revision,
    })
}
