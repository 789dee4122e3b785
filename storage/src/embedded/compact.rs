//! Compaction: removing the versions that no revision at or after the
//! compacted revision can see.
//!
//! `compact(c)` first only records `c` as the compacted revision (in the
//! writer's batch transaction, then in the key index), which is all reads
//! and watches look at: from then on, revisions below `c` fail with
//! `Compacted`. The old versions are then removed in bounded chunks, one
//! short write transaction each, interleaved with the writer's batches, so a
//! huge compaction never stalls writes for long.
//!
//! A version can only become invisible when a newer version of its key is
//! written (or when it is a deletion), so the work list is the `LOG` rows
//! written since the previous compaction: `META_COMPACT_PROGRESS` says how
//! far they were handled, in the same transaction as the removals, so an
//! interrupted compaction resumes after a restart. For each key named by
//! those rows, the versions older than its newest one at or below `c` are
//! removed (`LOG` and `VALUES` rows, then index entries), and that newest
//! one too when it is a deletion.

use redb::{Durability, ReadableTable};

use super::Engine;
use super::schema::{
    LOG, LogRecord, META, META_COMPACT_PROGRESS, OrInternal, VALUES, revision_from_u64, revision_to_u64,
};
use super::values;
use crate::error::Result;
use crate::store::Revision;

/// Handles up to `chunk` `LOG` rows after `progress` and at or below
/// `compacted`, in one durable transaction. Returns the new progress
/// (`compacted` when the compaction is complete).
pub(super) fn compact_chunk(
    engine: &Engine,
    compacted: Revision,
    progress: Revision,
    chunk: usize,
    quick_repair: bool,
) -> Result<Revision> {
    if progress >= compacted {
        return Ok(compacted.max(progress));
    }
    let mut txn = engine.db.begin_write().or_internal()?;
    txn.set_durability(Durability::Immediate).or_internal()?;
    txn.set_quick_repair(quick_repair);
    let chunk = chunk.max(1);
    let mut removals = Vec::new();
    let new_progress = {
        let mut log = txn.open_table(LOG).or_internal()?;
        let mut values = txn.open_table(VALUES).or_internal()?;
        let mut keys = Vec::new();
        let mut last = progress;
        let range = revision_to_u64(progress).saturating_add(1)..=revision_to_u64(compacted);
        for entry in log.range(range).or_internal()? {
            let (rev, raw) = entry.or_internal()?;
            let rev = revision_from_u64(rev.value())?;
            keys.push(LogRecord::decode(rev, raw.value())?.key.to_string());
            last = rev;
            if keys.len() >= chunk {
                break;
            }
        }
        let new_progress = if keys.len() < chunk { compacted } else { last };
        keys.sort_unstable();
        keys.dedup();
        {
            let index = engine.index();
            for key in keys {
                let superseded = index.superseded(&key, compacted);
                if !superseded.is_empty() {
                    removals.push((key, superseded));
                }
            }
        }
        for (_, versions) in &removals {
            for version in versions {
                let row = revision_to_u64(version.revision);
                log.remove(row).or_internal()?;
                if !version.deleted {
                    values::remove(&mut values, version.revision)?;
                }
            }
        }
        let mut meta = txn.open_table(META).or_internal()?;
        meta.insert(META_COMPACT_PROGRESS, new_progress).or_internal()?;
        new_progress
    };
    txn.commit().or_internal()?;

    // Only now that the rows are gone for good: no reader at or after
    // `compacted` could look for these versions anyway.
    let mut index = engine.index_mut();
    let mut removed = 0;
    for (key, versions) in &removals {
        let revisions: Vec<Revision> = versions.iter().map(|v| v.revision).collect();
        index.remove(key, &revisions);
        removed += revisions.len();
    }
    drop(index);
    tracing::debug!(
        removed,
        compacted,
        progress = new_progress,
        "embedded store compacted a chunk"
    );
    Ok(new_progress)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

    use super::super::schema::{LOG, META, META_COMPACTED, OrInternal, VALUES};
    use super::super::{EmbeddedOptions, EmbeddedStore};
    use crate::error::Result;
    use crate::store::Store;

    /// The revisions of the `LOG` rows and of the values.
    fn rows(store: &EmbeddedStore) -> Result<(Vec<u64>, Vec<u64>)> {
        let txn = store.engine.db.begin_read().or_internal()?;
        let mut log = Vec::new();
        for entry in txn.open_table(LOG).or_internal()?.iter().or_internal()? {
            log.push(entry.or_internal()?.0.value());
        }
        let mut values = Vec::new();
        for entry in txn.open_table(VALUES).or_internal()?.iter().or_internal()? {
            let (revision, _chunk) = entry.or_internal()?.0.value();
            if values.last() != Some(&revision) {
                values.push(revision);
            }
        }
        Ok((log, values))
    }

    /// Revisions 2..=8: /a at 2, 3, 4 and 8; /b created at 5, deleted at 6;
    /// /c at 7.
    async fn write_history(s: &EmbeddedStore) -> Result<()> {
        let v = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        let a = s.create("/a", v("a1")).await?;
        let a = s.update("/a", v("a2"), a).await?;
        let a = s.update("/a", v("a3"), a).await?;
        s.create("/b", v("b1")).await?;
        s.delete("/b", None).await?;
        s.create("/c", v("c1")).await?;
        s.update("/a", v("a4"), a).await?;
        Ok(())
    }

    /// After compacting to 7 only the versions visible at 7 or later stay.
    const KEPT: [u64; 3] = [4, 7, 8];

    #[tokio::test]
    async fn removes_superseded_rows_in_chunks() -> Result<()> {
        let dir = tempfile::tempdir().map_err(crate::StorageError::internal)?;
        let mut options = EmbeddedOptions::new(dir.path());
        options.compaction_chunk = 2;
        let s = EmbeddedStore::open(options.clone()).await?;
        write_history(&s).await?;
        s.compact(7).await?;
        assert_eq!(rows(&s)?, (KEPT.to_vec(), KEPT.to_vec()));
        assert_eq!(s.get("/a", Some(7)).await?.map(|kv| kv.value), Some("a3".into()));
        assert_eq!(s.get("/b", Some(7)).await?, None);
        drop(s);

        let s = EmbeddedStore::open(options).await?;
        assert_eq!(s.current_revision().await?, 8);
        assert_eq!(s.count("").await?, 2);
        assert_eq!(s.get("/a", Some(7)).await?.map(|kv| kv.mod_revision), Some(4));
        assert!(s.get("/a", Some(6)).await.is_err());
        Ok(())
    }

    #[tokio::test]
    async fn interrupted_compaction_resumes_on_open() -> Result<()> {
        let dir = tempfile::tempdir().map_err(crate::StorageError::internal)?;
        let options = EmbeddedOptions::new(dir.path());
        let s = EmbeddedStore::open(options.clone()).await?;
        write_history(&s).await?;
        // Closing checkpoints every write into redb.
        drop(s);
        // As if the compaction mark was committed and then the process died
        // before removing anything.
        {
            let db = redb::Database::create(dir.path().join(crate::embedded::DATABASE_FILE_NAME)).or_internal()?;
            let txn = db.begin_write().or_internal()?;
            txn.open_table(META)
                .or_internal()?
                .insert(META_COMPACTED, 7)
                .or_internal()?;
            txn.commit().or_internal()?;
            let txn = db.begin_read().or_internal()?;
            assert_eq!(txn.open_table(LOG).or_internal()?.len().or_internal()?, 7);
        }

        let s = EmbeddedStore::open(options).await?;
        assert!(s.get("/a", Some(6)).await.is_err(), "the mark holds at once");
        let deadline = Instant::now() + Duration::from_secs(10);
        while rows(&s)?.0 != KEPT {
            assert!(Instant::now() < deadline, "compaction did not resume: {:?}", rows(&s)?);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(rows(&s)?.1, KEPT);
        Ok(())
    }
}
