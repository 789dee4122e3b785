//! How many not-yet-terminated pods each ReplicaSet controls, kept from
//! every pod [`Change`] by an informer handler: the Recreate strategy's
//! "are old pods still running" check reads the counts of the old
//! ReplicaSets instead of walking every pod of the namespace on each sync
//! (upstream lists the namespace's pods by selector there).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::cached_pod::CachedPod;
use crate::controllers::controller_ref::controller_of;
use crate::controllers::pod_status::phase;
use crate::informer::Change;

/// Pods neither Succeeded nor Failed, by controller uid.
#[derive(Debug, Default)]
pub struct ActivePods(Mutex<HashMap<String, usize>>);

/// The controller uid of `pod` if it still counts.
fn counted(pod: &CachedPod) -> Option<&str> {
    if matches!(phase(pod), "Succeeded" | "Failed") {
        return None;
    }
    controller_of(&pod.metadata).map(|r| r.uid.as_str())
}

impl ActivePods {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Updates the counts with one informer change.
    pub fn observe(&self, change: &Change<'_, CachedPod>) {
        let (gone, come) = match change {
            Change::Added(p) => (None, counted(p)),
            Change::Updated { old, new } => (counted(old), counted(new)),
            Change::Deleted(p) => (counted(p), None),
        };
        if gone == come {
            return;
        }
        let mut counts = self.lock();
        if let Some(uid) = gone
            && let Some(n) = counts.get_mut(uid)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(uid);
            }
        }
        if let Some(uid) = come {
            *counts.entry(uid.to_string()).or_default() += 1;
        }
    }

    /// Whether any pod controlled by one of `uids` has not terminated.
    pub fn any<'a>(&self, uids: impl IntoIterator<Item = &'a str>) -> bool {
        let counts = self.lock();
        uids.into_iter().any(|uid| counts.contains_key(uid))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn pod(name: &str, owner: Option<&str>, phase: &str) -> Arc<CachedPod> {
        let refs = owner.map_or(json!([]), |uid| {
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": uid, "controller": true}])
        });
        Arc::new(
            serde_json::from_value(
                json!({"metadata": {"name": name, "namespace": "ns", "ownerReferences": refs},
                "spec": {"containers": []}, "status": {"phase": phase}}),
            )
            .unwrap(),
        )
    }

    #[test]
    fn counts_follow_phase_owner_and_deletion() {
        let active = ActivePods::default();
        let (a, b) = (pod("a", Some("old"), "Running"), pod("b", Some("old"), "Pending"));
        active.observe(&Change::Added(&a));
        active.observe(&Change::Added(&b));
        active.observe(&Change::Added(&pod("c", None, "Running")));
        assert!(active.any(["old"]));
        assert!(!active.any(["new"]));
        let done = pod("a", Some("old"), "Succeeded");
        active.observe(&Change::Updated { old: &a, new: &done });
        active.observe(&Change::Deleted(&done));
        assert!(active.any(["new", "old"]));
        let released = pod("b", None, "Pending");
        active.observe(&Change::Updated {
            old: &b,
            new: &released,
        });
        assert!(!active.any(["old"]));
        assert!(active.lock().is_empty());
    }
}
