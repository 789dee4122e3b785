//! Watch fan-out for the backends that keep their own history (memory and
//! embedded).
//!
//! Writers publish each committed batch of events, in revision order, on one
//! `tokio::sync::broadcast` ring shared by all watchers, so an event is stored
//! once however many watchers there are. Each watcher is a small task with an
//! explicit state machine:
//!
//! 1. it subscribes to the ring *before* reading history, so nothing committed
//!    after the read can be missed;
//! 2. [`WatcherState::CatchingUp`]: it replays history after its last
//!    delivered revision from the backend's [`History`], in pages;
//! 3. [`WatcherState::Live`]: it forwards ring events, skipping any revision
//!    it already delivered; if it falls so far behind that the ring dropped
//!    events for it, it goes back to catching up from history (etcd's
//!    "unsynced watcher"), so a slow watcher is never silently skipped.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};

use crate::error::{Result, StorageError};
use crate::store::{Event, Revision, WatchStream};

/// Batches of events kept in the ring before a slow watcher must catch up
/// from history.
const RING_CAPACITY: usize = 4096;
/// Events buffered between a watcher task and its consumer.
const WATCHER_BUFFER: usize = 1024;
/// Events read from history per page while catching up.
const CATCH_UP_PAGE: usize = 1000;

/// The history a watcher catches up from.
pub(crate) trait History: Send + Sync + 'static {
    /// Up to `max` events under `prefix` with revision greater than `after`,
    /// in order, and the revision up to which history was scanned (so the
    /// caller knows where to continue even when nothing matched the prefix).
    /// Fails with `Compacted` when events after `after` are gone.
    fn events_after(&self, prefix: &str, after: Revision, max: usize) -> Result<(Vec<Event>, Revision)>;
}

/// A committed batch of events, in revision order.
pub(crate) type Batch = Arc<[Event]>;

/// The publish side of the ring.
#[derive(Clone)]
pub(crate) struct WatchHub {
    tx: broadcast::Sender<Batch>,
}

impl WatchHub {
    pub(crate) fn new() -> Self {
        let (tx, _) = broadcast::channel(RING_CAPACITY);
        WatchHub { tx }
    }

    /// Publishes one committed batch. Must be called in commit order.
    pub(crate) fn publish(&self, batch: Batch) {
        if batch.is_empty() {
            return;
        }
        // An error only means nobody is watching.
        let _ = self.tx.send(batch);
    }

    /// Starts a watcher on `prefix` delivering events after `after`.
    /// The caller must have checked `after` against its compacted revision
    /// *after* calling this (the subscription comes first).
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Batch> {
        self.tx.subscribe()
    }
}

/// Where a watcher task is.
enum WatcherState {
    /// Replaying history after the last delivered revision.
    CatchingUp,
    /// Forwarding live events from the ring.
    Live,
}

/// Spawns the watcher task and returns the consumer's stream. `rx` must have
/// been subscribed before `after` was validated.
pub(crate) fn spawn_watcher(
    history: Arc<dyn History>,
    mut rx: broadcast::Receiver<Batch>,
    prefix: String,
    after: Revision,
) -> WatchStream {
    let (out, out_rx) = mpsc::channel::<Result<Event>>(WATCHER_BUFFER);
    tokio::spawn(async move {
        let mut last = after;
        let mut state = WatcherState::CatchingUp;
        loop {
            match state {
                WatcherState::CatchingUp => {
                    let h = history.clone();
                    let p = prefix.clone();
                    let page = tokio::task::spawn_blocking(move || h.events_after(&p, last, CATCH_UP_PAGE)).await;
                    let (events, scanned) = match page {
                        Ok(Ok(page)) => page,
                        Ok(Err(e)) => {
                            let _ = out.send(Err(e)).await;
                            return;
                        }
                        Err(e) => {
                            let _ = out.send(Err(StorageError::internal(e))).await;
                            return;
                        }
                    };
                    let page_full = events.len() >= CATCH_UP_PAGE;
                    for ev in events {
                        last = ev.revision();
                        if out.send(Ok(ev)).await.is_err() {
                            return;
                        }
                    }
                    last = last.max(scanned);
                    if !page_full {
                        state = WatcherState::Live;
                    }
                }
                WatcherState::Live => match rx.recv().await {
                    Ok(batch) => {
                        for ev in batch.iter() {
                            if ev.revision() <= last || !ev.kv.key.starts_with(&prefix) {
                                continue;
                            }
                            last = ev.revision();
                            if out.send(Ok(ev.clone())).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => state = WatcherState::CatchingUp,
                    Err(broadcast::error::RecvError::Closed) => {
                        let _ = out.send(Err(StorageError::Unavailable("store closed".into()))).await;
                        return;
                    }
                },
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(out_rx))
}
