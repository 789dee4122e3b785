//! The checkpointer thread: copies the writes that are durable in the
//! write-ahead log into redb, in big transactions, then retires the log
//! segments that redb now covers. It also persists compaction marks and runs
//! compaction chunks, so it is the only code that writes redb after open.
//!
//! A checkpoint takes every acknowledged write after the checkpointed
//! revision (the pending writes, see [`super::pending`]) and commits, in one
//! durable redb transaction, their `LOG` and `VALUES` rows and
//! `META_REVISION` = the newest of them (the checkpointed revision, from
//! which replay starts at open). Only then are they dropped from memory.
//!
//! It runs when the pending writes pass [`CheckpointConfig::bytes`], every
//! [`CheckpointConfig::interval`] otherwise, before a compaction, and when
//! the store closes. A compaction first checkpoints (so the versions it
//! removes are in redb), then removes chunks, checkpointing between chunks
//! when writes pile up.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Durability, ReadableTable};
use tokio::sync::oneshot;

use super::Engine;
use super::compact;
use super::pending::PendingWrite;
use super::schema::{LOG, LogRecord, META, META_COMPACTED, META_REVISION, OrInternal, VALUES, revision_to_u64};
use super::values;
use super::wal::{WalShared, prepare_spare, retire_segments, spare_awaits_checkpoint};
use crate::error::{Result, StorageError};
use crate::store::{EventType, Revision};

/// The checkpointer thread's name (at most 15 bytes, see
/// [`super::writer::WRITER_THREAD_NAME`]).
const CHECKPOINT_THREAD_NAME: &str = "store-checkpnt";

/// Tuning of the checkpointer.
#[derive(Debug, Clone, Copy)]
pub(super) struct CheckpointConfig {
    /// Checkpoint at least this often while writes are pending.
    pub(super) interval: Duration,
    /// Checkpoint at once when pending writes hold this many bytes.
    pub(super) bytes: usize,
    /// Writers wait when pending writes hold this many bytes.
    pub(super) max_pending_bytes: usize,
    /// `LOG` rows handled per compaction transaction.
    pub(super) compaction_chunk: usize,
    /// redb quick-repair.
    pub(super) quick_repair: bool,
    /// Bytes per preallocated log segment.
    pub(super) segment_size: u64,
    /// Checkpoint when the store closes (tests turn it off to leave work
    /// for replay).
    pub(super) on_close: bool,
}

/// A compaction to persist and run, and who to answer when it is done.
type CompactRequest = (Revision, oneshot::Sender<Result<()>>);

/// What the writer tells the checkpointer.
#[derive(Default)]
struct Inbox {
    stop: bool,
    /// Pending writes passed the threshold.
    nudged: bool,
    /// Compactions to persist and run, answered when done.
    compactions: Vec<CompactRequest>,
}

struct Shared {
    inbox: Mutex<Inbox>,
    /// Wakes the checkpointer.
    wake: Condvar,
    /// Wakes a writer waiting for pending writes to drain.
    progress: Condvar,
    progress_lock: Mutex<()>,
}

impl Shared {
    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The writer's side of the checkpointer. Dropping it stops the thread
/// (after a last checkpoint, if configured) and waits for it.
pub(super) struct CheckpointHandle {
    shared: Arc<Shared>,
    engine: Arc<Engine>,
    config: CheckpointConfig,
    thread: Option<JoinHandle<()>>,
}

impl CheckpointHandle {
    /// Starts the thread. `compacted`/`compact_progress` as recovered.
    pub(super) fn spawn(
        engine: Arc<Engine>,
        dir: PathBuf,
        wal: Arc<WalShared>,
        config: CheckpointConfig,
        compacted: Revision,
        compact_progress: Revision,
    ) -> Result<Self> {
        let shared = Arc::new(Shared {
            inbox: Mutex::new(Inbox::default()),
            wake: Condvar::new(),
            progress: Condvar::new(),
            progress_lock: Mutex::new(()),
        });
        let checkpointer = Checkpointer {
            engine: engine.clone(),
            shared: shared.clone(),
            dir,
            wal,
            config,
            compacted,
            persisted_compacted: compacted,
            compact_progress,
            compaction_paused: false,
            waiters: Vec::new(),
            last_checkpoint: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name(CHECKPOINT_THREAD_NAME.into())
            .spawn(move || checkpointer.run())
            .map_err(|e| StorageError::Internal(format!("cannot start the embedded store checkpointer: {e}")))?;
        Ok(CheckpointHandle {
            shared,
            engine,
            config,
            thread: Some(thread),
        })
    }

    /// After a batch: wakes the checkpointer if enough is pending, and
    /// waits while too much is (back-pressure on writers).
    pub(super) fn after_batch(&self) {
        let pending = self.engine.index().pending.bytes();
        if pending >= self.config.bytes {
            self.shared.inbox().nudged = true;
            self.shared.wake.notify_one();
        }
        if pending >= self.config.max_pending_bytes {
            let mut guard = self.shared.progress_lock.lock().unwrap_or_else(PoisonError::into_inner);
            while self.engine.index().pending.bytes() >= self.config.max_pending_bytes
                && self.thread.as_ref().is_some_and(|t| !t.is_finished())
            {
                guard = match self.shared.progress.wait_timeout(guard, Duration::from_millis(10)) {
                    Ok((guard, _)) => guard,
                    Err(poisoned) => poisoned.into_inner().0,
                };
            }
        }
    }

    /// Hands over a compaction (already marked in the key index) to
    /// persist and run; `reply` is answered when the history is gone.
    pub(super) fn compact(&self, revision: Revision, reply: oneshot::Sender<Result<()>>) {
        self.shared.inbox().compactions.push((revision, reply));
        self.shared.wake.notify_one();
    }
}

impl Drop for CheckpointHandle {
    fn drop(&mut self) {
        self.shared.inbox().stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("embedded store checkpointer thread panicked");
        }
    }
}

struct Checkpointer {
    engine: Arc<Engine>,
    shared: Arc<Shared>,
    dir: PathBuf,
    wal: Arc<WalShared>,
    config: CheckpointConfig,
    /// The compacted revision to persist and reach.
    compacted: Revision,
    /// The compacted revision in redb.
    persisted_compacted: Revision,
    /// `LOG` rows up to here were handled by compaction.
    compact_progress: Revision,
    /// Compaction failed; retried at the next compaction or open.
    compaction_paused: bool,
    waiters: Vec<oneshot::Sender<Result<()>>>,
    last_checkpoint: Instant,
}

impl Checkpointer {
    fn run(mut self) {
        loop {
            let (stop, compactions) = self.wait();
            for (revision, reply) in compactions {
                if revision > self.compacted {
                    self.compacted = revision;
                }
                self.compaction_paused = false;
                self.waiters.push(reply);
            }
            if stop && !self.config.on_close {
                break;
            }
            if let Err(error) = self.checkpoint() {
                tracing::error!(%error, "embedded store checkpoint failed; retrying");
                self.answer_waiters(Err(error));
                if stop {
                    break;
                }
                std::thread::sleep(self.config.interval);
                continue;
            }
            while self.compaction_pending() {
                self.compact_step();
                if self.engine.index().pending.bytes() >= self.config.bytes
                    && let Err(error) = self.checkpoint()
                {
                    tracing::error!(%error, "embedded store checkpoint failed");
                }
            }
            if !self.compaction_pending() {
                self.answer_waiters(Ok(()));
            }
            if stop {
                break;
            }
            if spare_awaits_checkpoint(&self.wal)
                && let Err(error) = self.checkpoint()
            {
                tracing::error!(%error, "embedded store checkpoint failed");
            }
            if let Err(error) = prepare_spare(&self.dir, &self.wal, self.config.segment_size) {
                tracing::warn!(%error, "cannot prepare a write-ahead log spare segment");
            }
        }
        tracing::debug!("embedded store checkpointer stopped");
    }

    /// Waits until there is something to do; returns whether to stop and
    /// the new compactions.
    fn wait(&mut self) -> (bool, Vec<CompactRequest>) {
        let mut inbox = self.shared.inbox();
        loop {
            if inbox.stop || inbox.nudged || !inbox.compactions.is_empty() {
                break;
            }
            let due = self.last_checkpoint + self.config.interval;
            let now = Instant::now();
            if now >= due {
                break;
            }
            inbox = match self.shared.wake.wait_timeout(inbox, due - now) {
                Ok((inbox, _)) => inbox,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        inbox.nudged = false;
        (inbox.stop, std::mem::take(&mut inbox.compactions))
    }

    fn compaction_pending(&self) -> bool {
        self.compact_progress < self.compacted && !self.compaction_paused
    }

    fn answer_waiters(&mut self, result: Result<()>) {
        for waiter in self.waiters.drain(..) {
            let _ = waiter.send(result.clone());
        }
    }

    /// Copies the pending acknowledged writes into redb, then forgets them
    /// and retires the log segments redb now covers.
    fn checkpoint(&mut self) -> Result<()> {
        self.last_checkpoint = Instant::now();
        let (from, through, writes) = {
            let index = self.engine.index();
            let from = index.pending.checkpointed();
            // Only acknowledged writes: the batch being logged may fail.
            let through = self.engine.revision().max(from);
            let writes: Vec<_> = index.pending.range(from, through).map(|(_, w)| w.clone()).collect();
            (from, through, writes)
        };
        if through == from && self.compacted == self.persisted_compacted {
            return Ok(());
        }
        let compacted = (self.compacted != self.persisted_compacted).then_some(self.compacted);
        write_checkpoint(&self.engine, from, &writes, compacted, self.config.quick_repair)?;
        self.persisted_compacted = self.compacted;
        self.engine.index_mut().pending.checkpointed_through(through);
        {
            let _guard = self.shared.progress_lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.shared.progress.notify_all();
        }
        tracing::trace!(from, through, "embedded store checkpoint");
        if let Err(error) = retire_segments(&self.dir, &self.wal, through) {
            tracing::warn!(%error, "cannot retire write-ahead log segments");
        }
        Ok(())
    }

    /// Removes one chunk of compacted history.
    fn compact_step(&mut self) {
        let chunk = compact::compact_chunk(
            &self.engine,
            self.compacted,
            self.compact_progress,
            self.config.compaction_chunk,
            self.config.quick_repair,
        );
        match chunk {
            Ok(progress) => {
                self.compact_progress = progress;
                if !self.compaction_pending() {
                    tracing::debug!(compacted = self.compacted, "embedded store compaction finished");
                }
            }
            Err(error) => {
                tracing::error!(%error, compacted = self.compacted, "embedded store compaction failed");
                self.compaction_paused = true;
                self.answer_waiters(Err(error));
            }
        }
    }
}

/// Commits `writes` (the revisions after `from`, in order) to redb in one
/// durable transaction, with the checkpointed revision and the compacted
/// revision if it changed. Also used at open, for the writes replayed from
/// the log.
pub(super) fn write_checkpoint(
    engine: &Engine,
    from: Revision,
    writes: &[Arc<PendingWrite>],
    compacted: Option<Revision>,
    quick_repair: bool,
) -> Result<()> {
    let mut txn = engine.db.begin_write().or_internal()?;
    txn.set_durability(Durability::Immediate).or_internal()?;
    txn.set_quick_repair(quick_repair);
    {
        let mut log = txn.open_table(LOG).or_internal()?;
        let mut values_table = txn.open_table(VALUES).or_internal()?;
        let mut buf = Vec::new();
        for (revision, write) in (from + 1..).zip(writes) {
            LogRecord {
                event_type: write.event_type,
                create_revision: write.create_revision,
                prev_revision: write.prev_revision,
                key: &write.key,
            }
            .encode(&mut buf);
            log.insert(revision_to_u64(revision), buf.as_slice()).or_internal()?;
            if write.event_type != EventType::Deleted {
                values::insert(&mut values_table, revision, &write.value)?;
            }
        }
        let mut meta = txn.open_table(META).or_internal()?;
        let through = from + writes.len() as Revision;
        let stored = meta.get(META_REVISION).or_internal()?.map_or(0, |v| v.value());
        meta.insert(META_REVISION, stored.max(through)).or_internal()?;
        if let Some(compacted) = compacted {
            meta.insert(META_COMPACTED, compacted).or_internal()?;
        }
    }
    txn.commit().or_internal()
}
