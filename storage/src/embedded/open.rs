//! Opening the data directory: the database file, its lock, recovery.
//!
//! redb recovers from a crash on open by itself (every commit is
//! checksummed; a torn commit is ignored and the previous one used). What is
//! left here is to create the tables on first use, check the layout version,
//! read back the checkpointed revision, the compacted revision and how far
//! compaction got, rebuild the in-memory key index from `LOG`, and then
//! replay the write-ahead log: the writes after the checkpointed revision
//! are indexed and checkpointed into redb at once, and the old segments
//! removed, so the store starts with an empty log.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable};

use super::checkpoint::write_checkpoint;
use super::index::{IndexedVersion, KeyIndex};
use super::pending::PendingWrites;
use super::schema::{
    LOG, LogRecord, META, META_COMPACT_PROGRESS, META_COMPACTED, META_REVISION, META_SCHEMA_VERSION, OrInternal,
    SCHEMA_VERSION, VALUES, corrupt, revision_from_u64,
};
use super::wal::{Replayed, replay};
use super::writer::Recovered;
use super::{EmbeddedOptions, Engine};
use crate::error::{Result, StorageError};
use crate::store::EventType;

/// Name of the database file inside the data directory.
pub const DATABASE_FILE_NAME: &str = "rkube.redb";

/// Opens (creating if needed) the database in `options.dir` and rebuilds
/// the key index. Blocking: it reads the whole `LOG` table, and redb may read
/// the whole file to repair it after a crash.
pub(super) fn open_database(options: &EmbeddedOptions) -> Result<(Database, KeyIndex, Recovered)> {
    let dir = &options.dir;
    let existed = dir.is_dir();
    std::fs::create_dir_all(dir).map_err(|e| unusable(dir, &e.to_string()))?;
    if !dir.is_dir() {
        return Err(unusable(dir, "not a directory"));
    }
    let path = dir.join(DATABASE_FILE_NAME);
    let new_file = !path.exists();
    let mut builder = Database::builder();
    builder.set_cache_size(options.cache_size);
    let announced = AtomicBool::new(false);
    let file = path.display().to_string();
    builder.set_repair_callback(move |session| {
        if !announced.swap(true, Ordering::Relaxed) {
            tracing::warn!(file, "embedded store was not shut down cleanly; repairing the database");
        }
        tracing::debug!(progress = session.progress(), "repairing embedded database");
    });
    let db = builder.create(&path).map_err(|e| match e {
        DatabaseError::DatabaseAlreadyOpen => StorageError::Unavailable(format!(
            "database {} is locked: another process (or another store in this process) has it open",
            path.display()
        )),
        other => StorageError::Internal(format!("cannot open database {}: {other}", path.display())),
    })?;
    if new_file {
        // redb syncs the file; its name must survive a power loss too.
        sync_dir(dir);
        if !existed && let Some(parent) = dir.parent() {
            sync_dir(if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            });
        }
    }
    let mut recovered = initialize(&db)?;
    let index = rebuild_index(&db, &mut recovered)?;
    tracing::info!(
        file = %path.display(),
        revision = recovered.revision,
        compacted = recovered.compacted,
        keys = index.len(),
        "opened embedded store"
    );
    Ok((db, index, recovered))
}

/// Creates missing tables and counters and reads them back (the revision
/// is only a floor until the `LOG` is read).
fn initialize(db: &Database) -> Result<Recovered> {
    let txn = db.begin_write().or_internal()?;
    let recovered = {
        txn.open_table(LOG).or_internal()?;
        txn.open_table(VALUES).or_internal()?;
        let mut meta = txn.open_table(META).or_internal()?;
        let version = meta.get(META_SCHEMA_VERSION).or_internal()?.map(|v| v.value());
        match version {
            Some(SCHEMA_VERSION) => {}
            None => {
                meta.insert(META_SCHEMA_VERSION, SCHEMA_VERSION).or_internal()?;
            }
            Some(other) => {
                return Err(StorageError::Internal(format!(
                    "embedded database has layout version {other}; this build reads version {SCHEMA_VERSION}"
                )));
            }
        }
        let mut counter = |name: &str, initial: i64| -> Result<i64> {
            let stored = meta.get(name).or_internal()?.map(|v| v.value());
            match stored {
                Some(value) => Ok(value),
                None => {
                    meta.insert(name, initial).or_internal()?;
                    Ok(initial)
                }
            }
        };
        Recovered {
            revision: counter(META_REVISION, 1)?,
            compacted: counter(META_COMPACTED, 0)?,
            compact_progress: counter(META_COMPACT_PROGRESS, 0)?,
        }
    };
    txn.commit().or_internal()?;
    Ok(recovered)
}

/// Reads every `LOG` row into a new key index and sets the current
/// revision to the last one.
fn rebuild_index(db: &Database, recovered: &mut Recovered) -> Result<KeyIndex> {
    let txn = db.begin_read().or_internal()?;
    let log = txn.open_table(LOG).or_internal()?;
    let mut index = KeyIndex::default();
    let mut last = 0;
    for entry in log.iter().or_internal()? {
        let (rev, raw) = entry.or_internal()?;
        let rev = revision_from_u64(rev.value())?;
        let record = LogRecord::decode(rev, raw.value())?;
        let version = IndexedVersion {
            revision: rev,
            create_revision: record.create_revision,
            deleted: record.event_type == EventType::Deleted,
        };
        if !index.push(record.key, version) {
            return Err(corrupt(&format!("log row {rev} out of order")));
        }
        last = rev;
    }
    recovered.revision = recovered.revision.max(last);
    let Recovered {
        revision,
        compacted,
        compact_progress,
    } = *recovered;
    if revision < 1 || compacted < 0 || compacted > revision || compact_progress > compacted.max(0) {
        return Err(corrupt(&format!(
            "revision {revision}, compacted revision {compacted}, compaction progress {compact_progress}"
        )));
    }
    index.set_compacted(compacted);
    index.pending = PendingWrites::new(revision);
    Ok(index)
}

/// Replays the write-ahead log into `engine` (opened, log not yet read):
/// indexes the writes after the checkpointed revision, checkpoints them and
/// removes the segments. Returns the spare segment file left by the
/// previous run, if it is still usable.
pub(super) fn recover_log(
    engine: &Engine,
    options: &EmbeddedOptions,
    recovered: &mut Recovered,
) -> Result<Option<std::path::PathBuf>> {
    let checkpointed = engine.index().pending.checkpointed();
    let Replayed {
        writes,
        segments,
        spare,
    } = replay(&options.dir, checkpointed)?;
    if !writes.is_empty() {
        let writes: Vec<_> = writes.into_iter().map(std::sync::Arc::new).collect();
        let last = checkpointed + writes.len() as i64;
        {
            let mut index = engine.index_mut();
            for (revision, write) in (checkpointed + 1..).zip(&writes) {
                let version = IndexedVersion {
                    revision,
                    create_revision: write.create_revision,
                    deleted: write.event_type == EventType::Deleted,
                };
                if !index.push(&write.key, version) || !index.pending.push(revision, write.clone()) {
                    return Err(corrupt(&format!("write-ahead log record {revision} out of order")));
                }
            }
        }
        write_checkpoint(engine, checkpointed, &writes, None, options.quick_repair)?;
        engine.index_mut().pending.checkpointed_through(last);
        recovered.revision = last;
        tracing::info!(
            writes = writes.len(),
            revision = last,
            "replayed the embedded store's write-ahead log"
        );
    }
    for segment in &segments {
        std::fs::remove_file(segment).map_err(|e| unusable(&options.dir, &e.to_string()))?;
    }
    if !segments.is_empty() {
        sync_dir(&options.dir);
    }
    let spare = match spare {
        Some(path) if std::fs::metadata(&path).is_ok_and(|m| m.len() >= options.wal_segment_size) => Some(path),
        Some(path) => {
            std::fs::remove_file(&path).map_err(|e| unusable(&options.dir, &e.to_string()))?;
            None
        }
        None => None,
    };
    Ok(spare)
}

/// Makes the entries of `dir` durable. Some filesystems cannot sync a
/// directory; that is worth a warning, not a failure.
pub(super) fn sync_dir(dir: &Path) {
    if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot sync the data directory");
    }
}

fn unusable(dir: &Path, why: &str) -> StorageError {
    StorageError::Internal(format!("data directory {} is unusable: {why}", dir.display()))
}
