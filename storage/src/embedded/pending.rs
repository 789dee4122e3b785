//! Writes that are durable in the write-ahead log but not yet checkpointed
//! into redb, kept in memory (in revision order) so reads, watch catch-up and
//! later writes' preconditions can see them.
//!
//! Lives inside the [`super::index::KeyIndex`] lock: the writer thread adds a
//! batch's writes while it applies them (readers never look above the
//! acknowledged revision), and the checkpointer removes them only after the
//! redb commit that holds them, under the write lock. A reader that finds a
//! version missing here while holding the lock therefore finds it in any
//! redb snapshot begun afterwards (see [`super::read::Snapshots`]).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

use crate::store::{EventType, Revision};

/// One write, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PendingWrite {
    pub(super) event_type: EventType,
    /// The `create_revision` of the value written (of the deleted value, for
    /// a deletion).
    pub(super) create_revision: Revision,
    /// The revision of the previous value (0 for a creation).
    pub(super) prev_revision: Revision,
    pub(super) key: Box<str>,
    /// Empty for a deletion.
    pub(super) value: Bytes,
}

impl PendingWrite {
    /// Memory this write holds, for back-pressure.
    pub(super) fn size(&self) -> usize {
        self.key.len() + self.value.len() + 64
    }
}

/// The writes after the checkpointed revision, one per revision.
#[derive(Debug, Default)]
pub(super) struct PendingWrites {
    /// The write at `checkpointed + 1 + i` is `writes[i]`.
    writes: VecDeque<Arc<PendingWrite>>,
    /// Everything up to here is in redb.
    checkpointed: Revision,
    /// Sum of [`PendingWrite::size`].
    bytes: usize,
}

impl PendingWrites {
    /// Starts empty after `checkpointed`.
    pub(super) fn new(checkpointed: Revision) -> Self {
        PendingWrites {
            writes: VecDeque::new(),
            checkpointed,
            bytes: 0,
        }
    }

    /// Every revision up to here is in redb; the ones after are here.
    pub(super) fn checkpointed(&self) -> Revision {
        self.checkpointed
    }

    /// The newest revision held (the checkpointed one when empty).
    pub(super) fn last(&self) -> Revision {
        self.checkpointed + self.writes.len() as Revision
    }

    /// Memory held, roughly.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The write at `revision`, if it is held here.
    pub(super) fn get(&self, revision: Revision) -> Option<&Arc<PendingWrite>> {
        let offset = revision.checked_sub(self.checkpointed + 1)?;
        self.writes.get(usize::try_from(offset).ok()?)
    }

    /// The value written at `revision`, if it is held here.
    pub(super) fn value(&self, revision: Revision) -> Option<Bytes> {
        self.get(revision).map(|w| w.value.clone())
    }

    /// Adds the write at `revision`, which must be [`Self::last`] + 1.
    #[must_use]
    pub(super) fn push(&mut self, revision: Revision, write: Arc<PendingWrite>) -> bool {
        if revision != self.last() + 1 {
            return false;
        }
        self.bytes += write.size();
        self.writes.push_back(write);
        true
    }

    /// Drops the writes after `revision` (undoing a batch that failed).
    pub(super) fn truncate_after(&mut self, revision: Revision) {
        while self.last() > revision.max(self.checkpointed) {
            if let Some(w) = self.writes.pop_back() {
                self.bytes -= w.size();
            }
        }
    }

    /// The writes in `(from, to]`, in order, capped to what is held.
    pub(super) fn range(&self, from: Revision, to: Revision) -> impl Iterator<Item = (Revision, &Arc<PendingWrite>)> {
        let from = from.max(self.checkpointed);
        let skip = usize::try_from(from - self.checkpointed).unwrap_or(usize::MAX);
        let take = usize::try_from(to - from).unwrap_or(0);
        (from + 1..).zip(self.writes.iter().skip(skip).take(take))
    }

    /// Forgets the writes up to `revision`, now in redb.
    pub(super) fn checkpointed_through(&mut self, revision: Revision) {
        while self.checkpointed < revision {
            if let Some(w) = self.writes.pop_front() {
                self.bytes -= w.size();
            }
            self.checkpointed += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn w(value: &str) -> Arc<PendingWrite> {
        Arc::new(PendingWrite {
            event_type: EventType::Added,
            create_revision: 1,
            prev_revision: 0,
            key: "/k".into(),
            value: Bytes::copy_from_slice(value.as_bytes()),
        })
    }

    #[test]
    fn holds_a_window_of_revisions() {
        let mut p = PendingWrites::new(4);
        assert!(!p.push(4, w("x")), "not after the checkpoint");
        assert!(p.push(5, w("a")));
        assert!(!p.push(7, w("x")), "no gaps");
        assert!(p.push(6, w("b")));
        assert!(p.push(7, w("c")));
        assert_eq!(p.last(), 7);
        assert_eq!(p.value(4), None);
        assert_eq!(p.value(6).as_deref(), Some(&b"b"[..]));
        let revs: Vec<_> = p.range(0, 6).map(|(r, _)| r).collect();
        assert_eq!(revs, [5, 6]);
        let revs: Vec<_> = p.range(5, 9).map(|(r, _)| r).collect();
        assert_eq!(revs, [6, 7]);
        p.truncate_after(5);
        assert_eq!((p.last(), p.value(6)), (5, None));
        assert!(p.push(6, w("d")));
        p.checkpointed_through(5);
        assert_eq!((p.checkpointed(), p.value(5), p.value(6).is_some()), (5, None, true));
        p.checkpointed_through(6);
        assert_eq!((p.last(), p.bytes()), (6, 0));
        p.truncate_after(2);
        assert_eq!(p.last(), 6, "never below the checkpoint");
    }
}
