//! The in-memory key index: for every key, the revisions of its versions.
//!
//! This is etcd's `treeIndex`. On disk, versions are stored by revision only
//! (see [`super::schema`]), so that a batch of writes appends to the end of
//! two B-trees instead of rewriting one random leaf page per key. Finding
//! "the version of key K at revision R" is done here, in memory; the value is
//! then one lookup by revision. The index is rebuilt from the `LOG` table
//! when the store opens.
//!
//! Visibility: the writer thread adds the versions of a batch *before* it
//! commits (so later writes of the same batch see earlier ones), and removes
//! them again if the commit fails. Readers never see those versions: every
//! read is served at a revision no newer than the last commit and filters by
//! it. Compaction first raises [`KeyIndex::compacted`], then prunes; a reader
//! checks its revision against `compacted` under the lock, so it never looks
//! for a version that pruning may have taken.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::pending::PendingWrites;
use crate::store::Revision;

/// One version of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct IndexedVersion {
    /// The revision of the write (the value's `mod_revision`).
    pub(super) revision: Revision,
    /// The `create_revision` of the value (of the deleted value, for a
    /// deletion).
    pub(super) create_revision: Revision,
    /// The write was a deletion.
    pub(super) deleted: bool,
}

/// Every key's versions, oldest first.
#[derive(Debug, Default)]
pub(super) struct KeyIndex {
    keys: BTreeMap<Box<str>, Vec<IndexedVersion>>,
    /// Reads below this revision fail with `Compacted`.
    compacted: Revision,
    /// The writes not yet checkpointed into redb, under the same lock so
    /// that finding a version and finding its value are one step (see
    /// [`super::pending`]).
    pub(super) pending: PendingWrites,
}

impl KeyIndex {
    /// Reads below this revision are refused.
    pub(super) fn compacted(&self) -> Revision {
        self.compacted
    }

    /// Raises the compacted revision (never lowers it).
    pub(super) fn set_compacted(&mut self, revision: Revision) {
        self.compacted = self.compacted.max(revision);
    }

    /// The newest version of `key` at or before `revision`, deletions
    /// included.
    pub(super) fn at(&self, key: &str, revision: Revision) -> Option<IndexedVersion> {
        let versions = self.keys.get(key)?;
        let idx = versions.partition_point(|v| v.revision <= revision);
        versions[..idx].last().copied()
    }

    /// The newest version of `key` that is a value, at or before `revision`.
    pub(super) fn value_at(&self, key: &str, revision: Revision) -> Option<IndexedVersion> {
        self.at(key, revision).filter(|v| !v.deleted)
    }

    /// Adds a version newer than every version of `key`. Returns `false`
    /// (and changes nothing) when it is not newer.
    #[must_use]
    pub(super) fn push(&mut self, key: &str, version: IndexedVersion) -> bool {
        if let Some(versions) = self.keys.get_mut(key) {
            if versions.last().is_some_and(|v| v.revision >= version.revision) {
                return false;
            }
            versions.push(version);
        } else {
            self.keys.insert(key.into(), vec![version]);
        }
        true
    }

    /// Removes the versions of `key` newer than `revision` (undoing a batch
    /// whose commit failed).
    pub(super) fn truncate_after(&mut self, key: &str, revision: Revision) {
        if let Some(versions) = self.keys.get_mut(key) {
            versions.retain(|v| v.revision <= revision);
            if versions.is_empty() {
                self.keys.remove(key);
            }
        }
    }

    /// The versions of `key` that no revision at or after `compacted` can
    /// see: all versions older than the newest one at or before `compacted`,
    /// and that one too if it is a deletion.
    pub(super) fn superseded(&self, key: &str, compacted: Revision) -> Vec<IndexedVersion> {
        let Some(versions) = self.keys.get(key) else {
            return Vec::new();
        };
        let idx = versions.partition_point(|v| v.revision <= compacted);
        let keep_from = match versions[..idx].last() {
            Some(v) if !v.deleted => idx - 1,
            _ => idx,
        };
        versions[..keep_from].to_vec()
    }

    /// Forgets the versions of `key` at these revisions.
    pub(super) fn remove(&mut self, key: &str, revisions: &[Revision]) {
        if let Some(versions) = self.keys.get_mut(key) {
            versions.retain(|v| !revisions.contains(&v.revision));
            if versions.is_empty() {
                self.keys.remove(key);
            }
        }
    }

    /// Calls `visit(key, version)` for the keys from `from` on that start
    /// with `prefix` and exist at `revision`, in key order, looking at
    /// `max_keys` keys at most (to keep lock hold times short). Returns the
    /// last key looked at when it stopped there, `None` when it reached the
    /// end of the prefix.
    pub(super) fn scan(
        &self,
        prefix: &str,
        from: Bound<&str>,
        revision: Revision,
        max_keys: usize,
        mut visit: impl FnMut(&str, IndexedVersion),
    ) -> Option<String> {
        let max_keys = max_keys.max(1);
        let mut last: Option<&str> = None;
        for (seen, (key, versions)) in self.keys.range::<str, _>((from, Bound::Unbounded)).enumerate() {
            if !key.starts_with(prefix) {
                return None;
            }
            if seen >= max_keys {
                return last.map(str::to_string);
            }
            last = Some(key);
            let idx = versions.partition_point(|v| v.revision <= revision);
            if let Some(version) = versions[..idx].last().filter(|v| !v.deleted) {
                visit(key, *version);
            }
        }
        None
    }

    /// Number of keys (for logs).
    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(revision: Revision, deleted: bool) -> IndexedVersion {
        IndexedVersion {
            revision,
            create_revision: 2,
            deleted,
        }
    }

    fn index(entries: &[(&str, Revision, bool)]) -> KeyIndex {
        let mut index = KeyIndex::default();
        for &(key, rev, deleted) in entries {
            assert!(index.push(key, v(rev, deleted)));
        }
        index
    }

    #[test]
    fn versions_at_a_revision() {
        let i = index(&[("/a", 2, false), ("/a", 4, false), ("/a", 6, true)]);
        assert_eq!(i.at("/a", 1), None);
        assert_eq!(i.at("/a", 3), Some(v(2, false)));
        assert_eq!(i.value_at("/a", 5), Some(v(4, false)));
        assert_eq!(i.at("/a", 6), Some(v(6, true)));
        assert_eq!(i.value_at("/a", 9), None);
        assert_eq!(i.at("/b", 9), None);
    }

    #[test]
    fn push_refuses_old_revisions_and_truncate_undoes() {
        let mut i = index(&[("/a", 2, false), ("/a", 4, false)]);
        assert!(!i.push("/a", v(4, false)));
        assert!(i.push("/a", v(7, false)));
        assert!(i.push("/n", v(8, false)));
        i.truncate_after("/a", 4);
        i.truncate_after("/n", 4);
        assert_eq!(i.at("/a", 9), Some(v(4, false)));
        assert_eq!((i.at("/n", 9), i.len()), (None, 1));
    }

    #[test]
    fn superseded_versions() {
        let i = index(&[
            ("/a", 2, false),
            ("/a", 3, false),
            ("/a", 6, false),
            ("/b", 4, false),
            ("/b", 5, true),
        ]);
        assert_eq!(i.superseded("/a", 5), [v(2, false)]);
        assert_eq!(i.superseded("/a", 6), [v(2, false), v(3, false)]);
        assert_eq!(i.superseded("/a", 1), []);
        assert_eq!(i.superseded("/b", 5), [v(4, false), v(5, true)]);
        assert_eq!(i.superseded("/b", 4), []);
    }

    #[test]
    fn scan_in_chunks() {
        let i = index(&[
            ("/p/a", 2, false),
            ("/p/b", 3, false),
            ("/p/b", 4, true),
            ("/p/c", 5, false),
            ("/p/d", 9, false),
            ("/q/a", 6, false),
        ]);
        let mut seen = Vec::new();
        let mut from = Bound::Included("/p/".to_string());
        loop {
            let bound = match &from {
                Bound::Included(k) => Bound::Included(k.as_str()),
                Bound::Excluded(k) => Bound::Excluded(k.as_str()),
                Bound::Unbounded => Bound::Unbounded,
            };
            let next = i.scan("/p/", bound, 8, 1, |k, v| seen.push((k.to_string(), v.revision)));
            match next {
                Some(last) => from = Bound::Excluded(last),
                None => break,
            }
        }
        assert_eq!(seen, [("/p/a".to_string(), 2), ("/p/c".to_string(), 5)]);
    }
}
