//! The embedded backend: an MVCC key-value store with etcd's semantics in a
//! write-ahead log and one redb database file, with group commit.
//!
//! Versions are stored by revision (append-only, like etcd's bbolt bucket)
//! and found by key through an in-memory index rebuilt at open (like etcd's
//! `treeIndex`).
//!
//! Data flow:
//!
//! - **Writes** go to one writer thread (`writer`) that batches everything
//!   queued, appends the batch to the write-ahead log (`wal`) as one frame
//!   with one `fdatasync`, then answers and publishes the batch's events to
//!   the shared watch ring. Until checkpointed, the writes stay in memory
//!   (`pending`).
//! - **Checkpoints** (`checkpoint`): a second thread copies logged writes
//!   into redb in big transactions, then retires the log segments.
//! - **Reads** (`read`) find versions in the key `index` and values among
//!   the pending writes or in redb read transactions: MVCC snapshots that
//!   never wait for either thread.
//! - **Watches** subscribe to the ring and catch up from history (`history`:
//!   redb's `LOG` and the pending writes) when they start from an old
//!   revision or fall behind.
//! - **Compaction** (`compact`, run by the checkpointer) forgets old
//!   versions in bounded chunks.
//!
//! The layout on disk is described in `schema` and `wal`; opening and
//! recovery in `open`.
//!
//! Architecture invariant: the writer thread is the only code that appends
//! to the log and adds versions to the key index; the checkpointer is the
//! only code that writes redb after open; everything else reads.

mod apply;
mod checkpoint;
mod compact;
mod history;
mod index;
mod open;
mod pending;
mod read;
mod schema;
mod values;
mod wal;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redb::Database;

use crate::error::{Result, StorageError};
use crate::store::{KeyValue, ListOptions, ListResult, Revision, Store, WatchStream, validate_key};
use crate::watch_hub::{History, WatchHub, spawn_watcher};
use checkpoint::{CheckpointConfig, CheckpointHandle};
use history::WatchHistory;
use index::KeyIndex;
use wal::{Wal, WalOptions, WalShared};
use writer::{WriteOp, WriteOutcome, WriterConfig, WriterHandle};

pub use open::DATABASE_FILE_NAME;

/// Default size of redb's page cache: small enough for the apiserver's memory
/// budget, big enough to hold the upper levels of every B-tree.
pub const DEFAULT_CACHE_SIZE: usize = 64 << 20;

/// Default size of a write-ahead log segment.
pub const DEFAULT_WAL_SEGMENT_SIZE: u64 = 32 << 20;

/// Largest key plus value a write may carry. redb's own limit is 3 GiB; a
/// write it refused would fail the whole batch it was in, so refuse it
/// before it joins one.
pub const MAX_WRITE_BYTES: usize = 1 << 30;

/// Options of the embedded backend.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// The data directory (created if missing); the database file is
    /// [`DATABASE_FILE_NAME`] inside it.
    pub dir: PathBuf,
    /// Bytes of redb page cache ([`DEFAULT_CACHE_SIZE`]).
    pub cache_size: usize,
    /// Writes committed together in one transaction at most.
    pub max_batch: usize,
    /// When several writers are active, how long a batch waits for one more
    /// write before it commits (zero: never waits). Writers answered by the
    /// previous commit usually send their next write within microseconds;
    /// waiting for them fills batches and saves fsyncs.
    pub batch_linger: Duration,
    /// Writes handled per compaction transaction: bounds how long one
    /// compaction step holds up checkpoints.
    pub compaction_chunk: usize,
    /// Save redb's allocator state at each commit so that reopening after a
    /// crash does not walk the whole file (redb "quick repair"). Costs a
    /// second fsync per checkpoint.
    pub quick_repair: bool,
    /// Bytes per preallocated write-ahead log segment.
    pub wal_segment_size: u64,
    /// Checkpoint logged writes into redb at least this often.
    pub checkpoint_interval: Duration,
    /// Checkpoint at once when logged writes not yet in redb hold this many
    /// bytes.
    pub checkpoint_bytes: usize,
    /// Writers wait when logged writes not yet in redb hold this many bytes
    /// (they are kept in memory until checkpointed).
    pub max_pending_bytes: usize,
    /// Checkpoint when the store closes (tests turn it off to leave the
    /// work to replay).
    pub(crate) checkpoint_on_close: bool,
}

impl EmbeddedOptions {
    /// Defaults for a store in `dir`.
    pub fn new(dir: &Path) -> Self {
        EmbeddedOptions {
            dir: dir.to_path_buf(),
            cache_size: DEFAULT_CACHE_SIZE,
            max_batch: 1024,
            batch_linger: Duration::from_micros(50),
            compaction_chunk: 1024,
            quick_repair: false,
            wal_segment_size: DEFAULT_WAL_SEGMENT_SIZE,
            // 1 s took a fifth off the checkpointer's CPU per write in
            // storage's own check, but not off the apiserver's CPU per
            // request (docs/benchmarks.md, storage, session 8).
            checkpoint_interval: Duration::from_millis(250),
            checkpoint_bytes: 16 << 20,
            max_pending_bytes: 256 << 20,
            checkpoint_on_close: true,
        }
    }
}

/// What the store, the writer thread and the readers share.
struct Engine {
    db: Database,
    /// Where each key's versions are (see [`index`]).
    index: RwLock<KeyIndex>,
    /// The revision of the last commit: reads are served at or below it.
    revision: AtomicI64,
}

impl Engine {
    fn index(&self) -> RwLockReadGuard<'_, KeyIndex> {
        // Index updates cannot panic half-way (they only push to and
        // retain in vectors), so a poisoned lock holds a consistent index.
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn index_mut(&self) -> RwLockWriteGuard<'_, KeyIndex> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn revision(&self) -> Revision {
        self.revision.load(Ordering::Acquire)
    }
}

/// The embedded store (see the module docs). Dropping it stops the writer
/// thread and closes the database file.
pub struct EmbeddedStore {
    engine: Arc<Engine>,
    hub: WatchHub,
    history: Arc<dyn History>,
    writer: WriterHandle,
}

impl EmbeddedStore {
    /// Opens the store in `options.dir`, creating the directory and the
    /// database if needed, and recovering after a crash. Fails with
    /// `Unavailable` when another process holds the database, `Internal`
    /// when the directory or the file cannot be used.
    pub async fn open(options: EmbeddedOptions) -> Result<EmbeddedStore> {
        let config = WriterConfig {
            max_batch: options.max_batch.max(1),
            linger: options.batch_linger,
        };
        let checkpoint_config = CheckpointConfig {
            interval: options.checkpoint_interval.max(Duration::from_millis(1)),
            bytes: options.checkpoint_bytes.max(1),
            max_pending_bytes: options.max_pending_bytes.max(options.checkpoint_bytes).max(1),
            compaction_chunk: options.compaction_chunk.max(1),
            quick_repair: options.quick_repair,
            segment_size: options.wal_segment_size.max(2 * wal::BLOCK as u64),
            on_close: options.checkpoint_on_close,
        };
        let dir = options.dir.clone();
        let (engine, recovered, wal, wal_shared) = tokio::task::spawn_blocking(move || open_blocking(&options))
            .await
            .map_err(StorageError::internal)??;
        let engine = Arc::new(engine);
        let checkpointer = CheckpointHandle::spawn(
            engine.clone(),
            dir,
            wal_shared,
            checkpoint_config,
            recovered.compacted,
            recovered.compact_progress,
        )?;
        let hub = WatchHub::new();
        let writer = WriterHandle::spawn(engine.clone(), hub.clone(), recovered, config, wal, checkpointer)?;
        let history: Arc<dyn History> = Arc::new(WatchHistory {
            engine: Arc::downgrade(&engine),
        });
        Ok(EmbeddedStore {
            engine,
            hub,
            history,
            writer,
        })
    }

    /// Runs `read` on the blocking pool.
    async fn read_blocking<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Engine) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || read(&engine))
            .await
            .map_err(StorageError::internal)?
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    fn backend_name(&self) -> &'static str {
        "embedded"
    }

    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<Option<KeyValue>> {
        // An index lookup and one B-tree descent: cheap enough to run in
        // place.
        read::get(&self.engine, key, revision)
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        let prefix = prefix.to_string();
        self.read_blocking(move |engine| read::list(engine, &prefix, &options))
            .await
    }

    async fn count(&self, prefix: &str) -> Result<i64> {
        // Memory only, but a scan of the whole prefix.
        let prefix = prefix.to_string();
        self.read_blocking(move |engine| read::count(engine, &prefix)).await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision> {
        validate_write(key, &value)?;
        let op = WriteOp::Create {
            key: key.to_string(),
            value,
        };
        match self.writer.write(op).await? {
            WriteOutcome::Written(rev) => Ok(rev),
            WriteOutcome::Deleted(..) => Err(StorageError::Internal("create answered as a delete".into())),
        }
    }

    async fn update(&self, key: &str, value: Bytes, expected_mod_revision: Revision) -> Result<Revision> {
        validate_write(key, &value)?;
        let op = WriteOp::Update {
            key: key.to_string(),
            value,
            expected: expected_mod_revision,
        };
        match self.writer.write(op).await? {
            WriteOutcome::Written(rev) => Ok(rev),
            WriteOutcome::Deleted(..) => Err(StorageError::Internal("update answered as a delete".into())),
        }
    }

    async fn delete(&self, key: &str, expected_mod_revision: Option<Revision>) -> Result<(Revision, KeyValue)> {
        // No validation: a key that cannot exist is simply not found.
        let op = WriteOp::Delete {
            key: key.to_string(),
            expected: expected_mod_revision,
        };
        match self.writer.write(op).await? {
            WriteOutcome::Deleted(rev, prev) => Ok((rev, prev)),
            WriteOutcome::Written(_) => Err(StorageError::Internal("delete answered as a write".into())),
        }
    }

    async fn watch(&self, prefix: &str, after: Option<Revision>) -> Result<WatchStream> {
        // Subscribe first: whatever commits after the revision read below is
        // then in the ring, whatever committed before it is in the history.
        let rx = self.hub.subscribe();
        let after = {
            let index = self.engine.index();
            let after = after.unwrap_or_else(|| self.engine.revision());
            if after < index.compacted() {
                return Err(StorageError::Compacted {
                    requested: after,
                    compacted: index.compacted(),
                });
            }
            after
        };
        Ok(spawn_watcher(self.history.clone(), rx, prefix.to_string(), after))
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.engine.revision())
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.writer.compact(revision).await
    }
}

/// Opens the database, replays the log and starts a new log segment.
fn open_blocking(options: &EmbeddedOptions) -> Result<(Engine, writer::Recovered, Wal, Arc<WalShared>)> {
    let (db, index, mut recovered) = open::open_database(options)?;
    let engine = Engine {
        db,
        index: RwLock::new(index),
        revision: AtomicI64::new(recovered.revision),
    };
    let spare = open::recover_log(&engine, options, &mut recovered)?;
    engine.revision.store(recovered.revision, Ordering::Release);
    let shared = Arc::new(WalShared::default());
    shared.lock().spare = spare;
    let wal_options = WalOptions {
        segment_size: options.wal_segment_size.max(2 * wal::BLOCK as u64),
    };
    let wal = Wal::create(&options.dir, recovered.revision + 1, wal_options, shared.clone())?;
    Ok((engine, recovered, wal, shared))
}

/// Checks a key and value before they are queued for the writer.
fn validate_write(key: &str, value: &[u8]) -> Result<()> {
    validate_key(key)?;
    if key.len() + value.len() > MAX_WRITE_BYTES {
        return Err(StorageError::InvalidArgument(format!(
            "key {:?}... and value of {} bytes exceed the write limit of {MAX_WRITE_BYTES} bytes",
            key.chars().take(64).collect::<String>(),
            value.len()
        )));
    }
    Ok(())
}
