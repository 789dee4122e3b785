//! The writer thread: every write goes through it, with group commit.
//!
//! Callers send a [`Request`] over a channel and await a oneshot answer. The
//! thread blocks for one request, drains everything else already queued (up
//! to a batch limit), applies the batch in arrival order, appends its writes
//! to the write-ahead log as ONE frame and `fdatasync`s it once (see
//! [`super::wal`]), and only then answers each request and publishes the
//! batch's events to the [`WatchHub`] in revision order. A write is
//! therefore acknowledged only once it is durable, and the sync is shared by
//! every write of the batch. Copying the writes into redb is left to the
//! checkpointer thread (see [`super::checkpoint`]).
//!
//! Each request's precondition (absent key, expected `mod_revision`) is
//! checked against the key index, which already holds the earlier writes of
//! the same batch (see [`super::apply`]). A failed precondition answers that
//! request with `AlreadyExists`, `NotFound` or `Conflict` and leaves the rest
//! of the batch alone; a log error fails the whole batch: nothing of it is
//! acknowledged, and its versions are taken out of the index again.
//!
//! A compaction is checked and marked in the key index here (reads below it
//! fail from then on), then handed to the checkpointer, which persists and
//! runs it.
//!
//! Architecture invariant: this thread is the only writer of the log, the
//! key index's versions and the pending writes' tail; revisions are handed
//! out here and nowhere else.

use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::Engine;
use super::apply::{Applied, Batch};
use super::checkpoint::CheckpointHandle;
use super::wal::{FrameBuilder, Wal};
use crate::error::{Result, StorageError};
use crate::store::{Event, KeyValue, Revision};
use crate::watch_hub::WatchHub;

/// The writer thread's name (at most 15 bytes: all Linux keeps, as
/// `/proc/<pid>/task/<tid>/comm`, where profiles and CPU accounting find it).
pub(super) const WRITER_THREAD_NAME: &str = "store-writer";

/// Value bytes in one batch before the writer commits and starts another.
const MAX_BATCH_BYTES: usize = 32 << 20;
/// How many gaps (see [`WriterConfig::linger`]) a batch lingers at most.
const LINGER_MAX_GAPS: u32 = 5;

/// A guarded write.
#[derive(Debug)]
pub(super) enum WriteOp {
    /// Create `key`; `AlreadyExists` if it exists.
    Create { key: String, value: Bytes },
    /// Replace the value of `key` if its `mod_revision` is `expected`.
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
    },
    /// Delete `key`, guarded by its `mod_revision` when `expected` is set.
    Delete { key: String, expected: Option<Revision> },
}

impl WriteOp {
    fn value_len(&self) -> usize {
        match self {
            WriteOp::Create { value, .. } | WriteOp::Update { value, .. } => value.len(),
            WriteOp::Delete { .. } => 0,
        }
    }
}

/// What a successful write returns.
#[derive(Debug)]
pub(super) enum WriteOutcome {
    /// A create or update, at this revision.
    Written(Revision),
    /// A delete, at this revision, of this value.
    Deleted(Revision, KeyValue),
}

/// A message to the writer thread.
#[derive(Debug)]
pub(super) enum Request {
    /// One write, answered once durable.
    Write {
        op: WriteOp,
        reply: oneshot::Sender<Result<WriteOutcome>>,
    },
    /// Compact history before `revision`, answered once the history is gone.
    Compact {
        revision: Revision,
        reply: oneshot::Sender<Result<()>>,
    },
}

/// Tuning of the writer thread.
#[derive(Debug, Clone, Copy)]
pub(super) struct WriterConfig {
    /// Requests per transaction at most.
    pub(super) max_batch: usize,
    /// How long a batch waits for one more request when writers are
    /// concurrent (zero: never waits).
    pub(super) linger: Duration,
}

/// Where the store stood when it was opened.
#[derive(Debug, Clone, Copy)]
pub(super) struct Recovered {
    /// The current revision.
    pub(super) revision: Revision,
    /// The compacted revision.
    pub(super) compacted: Revision,
    /// `LOG` rows up to this revision were handled by compaction; a
    /// compaction is pending while this is below `compacted`.
    pub(super) compact_progress: Revision,
}

/// The callers' side of the writer thread. Dropping it stops the thread and
/// waits for it, so the database file is released when the store is dropped.
pub(super) struct WriterHandle {
    tx: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl WriterHandle {
    /// Starts the writer thread, which owns the log and the checkpointer.
    pub(super) fn spawn(
        engine: Arc<Engine>,
        hub: WatchHub,
        recovered: Recovered,
        config: WriterConfig,
        wal: Wal,
        checkpointer: CheckpointHandle,
    ) -> Result<Self> {
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            engine,
            hub,
            rx,
            config,
            revision: recovered.revision,
            compacted: recovered.compacted,
            last_batch: 0,
            wal,
            frame: FrameBuilder::default(),
            checkpointer,
        };
        let thread = std::thread::Builder::new()
            .name(WRITER_THREAD_NAME.into())
            .spawn(move || writer.run())
            .map_err(|e| StorageError::Internal(format!("cannot start the embedded store writer thread: {e}")))?;
        Ok(WriterHandle {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Sends one write and waits until it is durable (or refused).
    pub(super) async fn write(&self, op: WriteOp) -> Result<WriteOutcome> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Write { op, reply })?;
        answer.await.map_err(|_| stopped())?
    }

    /// Asks for a compaction and waits until it is done.
    pub(super) async fn compact(&self, revision: Revision) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Compact { revision, reply })?;
        answer.await.map_err(|_| stopped())?
    }

    fn send(&self, request: Request) -> Result<()> {
        self.tx
            .as_ref()
            .ok_or_else(stopped)?
            .send(request)
            .map_err(|_| stopped())
    }
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        // Closing the channel ends the thread after the batch in progress.
        self.tx.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("embedded store writer thread panicked");
        }
    }
}

fn stopped() -> StorageError {
    StorageError::Unavailable("embedded store writer stopped".into())
}

/// The answer owed to one request of a batch, kept until the log sync.
enum Answer {
    Write {
        reply: oneshot::Sender<Result<WriteOutcome>>,
        result: Result<WriteOutcome>,
    },
    /// Answered now (done already, or refused).
    Compact {
        reply: oneshot::Sender<Result<()>>,
        result: Result<()>,
    },
    /// Handed to the checkpointer after the sync.
    CompactStarted {
        revision: Revision,
        reply: oneshot::Sender<Result<()>>,
    },
}

struct Writer {
    engine: Arc<Engine>,
    hub: WatchHub,
    rx: mpsc::Receiver<Request>,
    config: WriterConfig,
    /// The revision of the last acknowledged write.
    revision: Revision,
    /// The compacted revision marked so far.
    compacted: Revision,
    /// Requests in the last batch (> 1: writers are concurrent).
    last_batch: usize,
    wal: Wal,
    frame: FrameBuilder,
    /// Dropped (stopped, after its last checkpoint) when this thread ends.
    checkpointer: CheckpointHandle,
}

impl Writer {
    fn run(mut self) {
        while let Ok(first) = self.rx.recv() {
            let batch = self.drain(first);
            self.run_batch(batch);
            self.checkpointer.after_batch();
        }
        tracing::debug!(revision = self.revision, "embedded store writer stopped");
    }

    /// `first` and whatever else is queued, up to the batch limits.
    ///
    /// When the previous batch had several writers, they are likely to send
    /// their next write right after their answer: the batch may linger for
    /// them (until no request came for [`WriterConfig::linger`], at most
    /// [`LINGER_MAX_GAPS`] times that), so they join this batch instead of
    /// paying for one more sync.
    fn drain(&mut self, first: Request) -> Vec<Request> {
        let mut bytes = request_bytes(&first);
        let mut batch = vec![first];
        let gap = self.config.linger;
        let linger = self.last_batch > 1 && !gap.is_zero();
        let deadline = Instant::now() + gap * LINGER_MAX_GAPS;
        while batch.len() < self.config.max_batch && bytes < MAX_BATCH_BYTES {
            let next = match self.rx.try_recv() {
                Ok(request) => Some(request),
                Err(mpsc::TryRecvError::Disconnected) => None,
                Err(mpsc::TryRecvError::Empty) if linger && Instant::now() < deadline => self.rx.recv_timeout(gap).ok(),
                Err(mpsc::TryRecvError::Empty) => None,
            };
            let Some(request) = next else { break };
            bytes += request_bytes(&request);
            batch.push(request);
        }
        self.last_batch = batch.len();
        batch
    }

    /// Applies, logs, answers and publishes one batch.
    fn run_batch(&mut self, batch: Vec<Request>) {
        let mut answers = Vec::with_capacity(batch.len());
        let mut events = Vec::with_capacity(batch.len());
        let mut requests = batch.into_iter();
        let logged = self.apply_batch(&mut requests, &mut answers, &mut events);
        // Requests not reached because of a failure still get their answer.
        answers.extend(requests.map(unreached));
        match &logged {
            Ok(revision) => {
                self.revision = *revision;
                self.engine.revision.store(self.revision, Ordering::Release);
            }
            Err(error) => {
                tracing::error!(%error, "embedded store batch failed; nothing of it is written");
                let mut index = self.engine.index_mut();
                for event in &events {
                    index.truncate_after(&event.kv.key, self.revision);
                }
                index.pending.truncate_after(self.revision);
            }
        }
        for answer in answers {
            match (answer, &logged) {
                (Answer::Write { reply, result }, Ok(_)) => {
                    // A caller that gave up waiting is not an error.
                    let _ = reply.send(result);
                }
                (Answer::Compact { reply, result }, Ok(_)) => {
                    let _ = reply.send(result);
                }
                (Answer::CompactStarted { revision, reply }, Ok(_)) => {
                    if revision > self.compacted {
                        self.compacted = revision;
                        self.engine.index_mut().set_compacted(revision);
                    }
                    self.checkpointer.compact(revision, reply);
                }
                (Answer::Write { reply, .. }, Err(e)) => {
                    let _ = reply.send(Err(e.clone()));
                }
                (Answer::Compact { reply, .. } | Answer::CompactStarted { reply, .. }, Err(e)) => {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
        if logged.is_ok() {
            self.hub.publish(events.into());
        }
    }

    /// Applies requests and logs the batch; returns the revision of its
    /// last write. Every request taken from `requests` has its answer in
    /// `answers`.
    fn apply_batch(
        &mut self,
        requests: &mut std::vec::IntoIter<Request>,
        answers: &mut Vec<Answer>,
        events: &mut Vec<Event>,
    ) -> Result<Revision> {
        let mut revision = self.revision;
        let mut compacted = self.compacted;
        {
            let mut batch = Batch::open(&self.engine, &mut self.frame, revision + 1);
            for request in requests.by_ref() {
                match request {
                    Request::Write { op, reply } => {
                        let result = match batch.apply(op, &mut revision) {
                            Ok(Applied::Written(outcome, event)) => {
                                events.push(event);
                                Ok(outcome)
                            }
                            Ok(Applied::Refused(e)) => Err(e),
                            Err(e) => {
                                answers.push(Answer::Write {
                                    reply,
                                    result: Err(e.clone()),
                                });
                                return Err(e);
                            }
                        };
                        answers.push(Answer::Write { reply, result });
                    }
                    Request::Compact {
                        revision: target,
                        reply,
                    } => {
                        if target > revision {
                            let result = Err(StorageError::FutureRevision {
                                requested: target,
                                current: revision,
                            });
                            answers.push(Answer::Compact { reply, result });
                        } else if target <= compacted {
                            answers.push(Answer::Compact { reply, result: Ok(()) });
                        } else {
                            compacted = target;
                            answers.push(Answer::CompactStarted {
                                revision: target,
                                reply,
                            });
                        }
                    }
                }
            }
        }
        if self.frame.count() > 0 {
            self.wal.append(&mut self.frame)?;
        }
        Ok(revision)
    }
}

fn request_bytes(request: &Request) -> usize {
    match request {
        Request::Write { op, .. } => op.value_len(),
        Request::Compact { .. } => 0,
    }
}

/// The answer of a request the batch never reached because it failed (the
/// result is replaced by the failure when answering).
fn unreached(request: Request) -> Answer {
    let error = || StorageError::Internal("batch failed".into());
    match request {
        Request::Write { reply, .. } => Answer::Write {
            reply,
            result: Err(error()),
        },
        Request::Compact { reply, .. } => Answer::Compact {
            reply,
            result: Err(error()),
        },
    }
}
