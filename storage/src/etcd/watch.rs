//! Watches: one etcd watch per [`crate::Store::watch`] call, on the
//! prefix's range, with previous values, from the revision after `after`.
//!
//! etcd delivers every change after the start revision in order and once
//! (that is its contract), so the stream only translates events. It ends
//! with an error item when etcd cancels the watch (`Compacted` when the
//! watcher's history was compacted away) or the connection to the member
//! breaks (`Unavailable`); the caller watches again from the last revision
//! it saw.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use etcd_client::{EventType as EtcdEventType, WatchOptions, WatchResponse, Watcher};

use super::Inner;
use super::failure::Failure;
use super::keys::Keys;
use super::retry::{Idempotence, with_retry};
use crate::error::{Result, StorageError};
use crate::store::{Event, EventType, KeyValue, Revision, WatchStream};

/// Starts a watch of `prefix` after revision `after` (`None`: after the
/// current revision).
pub(super) async fn watch(inner: &Arc<Inner>, prefix: &str, after: Option<Revision>) -> Result<WatchStream> {
    let after = match after {
        None => inner.current_revision().await?,
        Some(rev) if rev <= 0 => 0,
        Some(rev) => {
            // Fail now, not on the first poll, when the history is gone.
            match inner.check_revision(rev).await {
                Ok(()) | Err(StorageError::FutureRevision { .. }) => rev,
                Err(e) => return Err(e),
            }
        }
    };
    let (start, end) = inner.keys.range(prefix);
    let options = WatchOptions::new()
        .with_range(end)
        .with_prev_key()
        .with_start_revision(after.saturating_add(1));
    let outcome = with_retry(&inner.endpoints, "watch", Idempotence::Safe, |mut member| {
        let (start, options) = (start.clone(), options.clone());
        async move { member.watch.watch(start, Some(options)).await }
    })
    .await;
    let (watcher, stream) = match outcome.result {
        Ok(pair) => pair,
        Err(failure) => return Err(inner.with_revisions(failure.into_storage_error(Some(after))).await),
    };
    tracing::debug!(prefix, after, watch_id = watcher.watch_id(), "etcd watch started");
    let state = State {
        _watcher: watcher,
        stream,
        keys: inner.keys.clone(),
        pending: VecDeque::new(),
        last: after,
        done: false,
    };
    Ok(Box::pin(futures::stream::unfold(state, State::next)))
}

/// Where a watch stream is.
struct State {
    /// Keeps the request side of the watch open.
    _watcher: Watcher,
    stream: etcd_client::WatchStream,
    keys: Keys,
    /// Translated items not yet handed out.
    pending: VecDeque<Result<Event>>,
    /// The revision of the last event handed out (or the start).
    last: Revision,
    /// An error item is queued; nothing follows it.
    done: bool,
}

impl State {
    async fn next(mut self) -> Option<(Result<Event>, State)> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some((item, self));
            }
            if self.done {
                return None;
            }
            match self.stream.message().await {
                Ok(Some(resp)) => self.absorb(resp),
                Ok(None) => self.fail(StorageError::Unavailable("etcd closed the watch stream".into())),
                Err(e) => self.fail(Failure::Etcd(e).into_storage_error(None)),
            }
        }
    }

    /// Queues an error item; the stream ends after it.
    fn fail(&mut self, error: StorageError) {
        tracing::debug!(error = %error, last = self.last, "etcd watch ended");
        self.pending.push_back(Err(error));
        self.done = true;
    }

    /// Translates one watch response.
    fn absorb(&mut self, resp: WatchResponse) {
        if resp.compact_revision() > 0 {
            return self.fail(StorageError::Compacted {
                requested: self.last,
                compacted: resp.compact_revision(),
            });
        }
        if resp.canceled() {
            let reason = match resp.cancel_reason() {
                "" => "no reason given",
                r => r,
            };
            return self.fail(StorageError::Unavailable(format!("etcd canceled the watch: {reason}")));
        }
        for event in resp.events() {
            match self.translate(event) {
                Ok(event) => {
                    self.last = event.revision();
                    self.pending.push_back(Ok(event));
                }
                Err(e) => return self.fail(e),
            }
        }
    }

    fn translate(&self, event: &etcd_client::Event) -> Result<Event> {
        let kv = event
            .kv()
            .ok_or_else(|| StorageError::Internal("etcd watch event without a key-value".into()))?;
        let prev = event.prev_kv().map(|p| self.keys.kv(p.clone())).transpose()?;
        match event.event_type() {
            EtcdEventType::Put => {
                let kv = self.keys.kv(kv.clone())?;
                let event_type = if kv.create_revision == kv.mod_revision {
                    EventType::Added
                } else {
                    EventType::Modified
                };
                let prev = if event_type == EventType::Added { None } else { prev };
                Ok(Event { event_type, kv, prev })
            }
            EtcdEventType::Delete => Ok(Event {
                event_type: EventType::Deleted,
                kv: KeyValue {
                    key: self.keys.store_key(kv.key())?,
                    value: Bytes::new(),
                    create_revision: prev.as_ref().map_or(0, |p| p.create_revision),
                    mod_revision: kv.mod_revision(),
                },
                prev,
            }),
        }
    }
}
