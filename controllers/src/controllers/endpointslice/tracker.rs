//! Which slice generations this controller wrote (upstream's
//! `EndpointSliceTracker`), so a sync never acts on a cache older than its
//! own writes, and events caused by its own writes do not re-queue the
//! Service. Shared by the EndpointSlice and mirroring controllers.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::discovery::v1::EndpointSlice;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tracked {
    /// We wrote this generation (or a later one is expected in the cache).
    Generation(i64),
    /// We deleted the slice.
    DeletionExpected,
}

/// Per owner key (`namespace/name`), per slice uid, what we last did.
#[derive(Debug, Default)]
pub struct SliceTracker {
    inner: Mutex<HashMap<String, HashMap<String, Tracked>>>,
}

fn uid(s: &EndpointSlice) -> String {
    s.metadata.uid.clone().unwrap_or_default()
}

fn generation(s: &EndpointSlice) -> i64 {
    s.metadata.generation.unwrap_or(0)
}

impl SliceTracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, Tracked>>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a slice as returned by a create or update.
    pub fn update(&self, key: &str, slice: &EndpointSlice) {
        self.lock()
            .entry(key.to_string())
            .or_default()
            .insert(uid(slice), Tracked::Generation(generation(slice)));
    }

    /// Records that we deleted `slice`.
    pub fn expect_deletion(&self, key: &str, slice: &EndpointSlice) {
        self.lock()
            .entry(key.to_string())
            .or_default()
            .insert(uid(slice), Tracked::DeletionExpected);
    }

    /// Whether a slice seen by the informer is news to us (not our own
    /// write): unknown, or newer than what we wrote.
    pub fn should_sync(&self, key: &str, slice: &EndpointSlice) -> bool {
        match self.lock().get(key).and_then(|m| m.get(&uid(slice))) {
            None | Some(Tracked::DeletionExpected) => true,
            Some(Tracked::Generation(g)) => generation(slice) > *g,
        }
    }

    /// Forgets a deleted slice; returns whether the deletion was not ours.
    pub fn handle_deletion(&self, key: &str, slice: &EndpointSlice) -> bool {
        let mut map = self.lock();
        let Some(m) = map.get_mut(key) else {
            return true;
        };
        let was = m.remove(&uid(slice));
        if m.is_empty() {
            map.remove(key);
        }
        was != Some(Tracked::DeletionExpected)
    }

    /// Whether `cached` (the owner's slices in the informer) is older than
    /// our writes: a slice we deleted is still there, one we wrote is
    /// missing or at an older generation.
    pub fn stale(&self, key: &str, cached: &[std::sync::Arc<EndpointSlice>]) -> bool {
        let map = self.lock();
        let Some(m) = map.get(key) else {
            return false;
        };
        let mut seen = 0;
        for s in cached {
            match m.get(&uid(s)) {
                Some(Tracked::DeletionExpected) => return true,
                Some(Tracked::Generation(g)) if *g > generation(s) => return true,
                Some(_) => seen += 1,
                None => {}
            }
        }
        let expected = m.values().filter(|t| matches!(t, Tracked::Generation(_))).count();
        seen < expected
    }

    /// Forgets an owner.
    pub fn delete_owner(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn slice(uid: &str, generation: i64) -> EndpointSlice {
        serde_json::from_value(json!({"metadata": {"name": uid, "uid": uid, "generation": generation}, "addressType": "IPv4", "endpoints": []}))
            .unwrap()
    }

    #[test]
    fn stale_until_the_cache_catches_up() {
        let t = SliceTracker::default();
        assert!(!t.stale("ns/s", &[]));
        t.update("ns/s", &slice("a", 2));
        assert!(t.stale("ns/s", &[]), "created slice not yet cached");
        assert!(t.stale("ns/s", &[Arc::new(slice("a", 1))]), "older generation cached");
        assert!(!t.stale("ns/s", &[Arc::new(slice("a", 2))]));
        assert!(!t.should_sync("ns/s", &slice("a", 2)), "our own write");
        assert!(t.should_sync("ns/s", &slice("a", 3)), "someone else's write");
        assert!(t.should_sync("ns/s", &slice("b", 1)), "unknown slice");

        t.expect_deletion("ns/s", &slice("a", 2));
        assert!(
            t.stale("ns/s", &[Arc::new(slice("a", 2))]),
            "deleted slice still cached"
        );
        assert!(!t.stale("ns/s", &[]));
        assert!(!t.handle_deletion("ns/s", &slice("a", 2)), "our own deletion");
        assert!(t.handle_deletion("ns/s", &slice("c", 1)), "someone else's deletion");
    }
}
