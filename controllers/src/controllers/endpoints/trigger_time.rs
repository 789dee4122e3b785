//! The `endpoints.kubernetes.io/last-change-trigger-time` annotation
//! (upstream's `TriggerTimeTracker`): when the change that led to this
//! write happened. A pod's trigger time is its Ready condition's last
//! transition, a Service's its creation; the annotation carries the
//! earliest trigger time that changed since the previous sync, or the
//! Service's creation on the first sync.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::cached_pod::CachedPod;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::jiff::Timestamp;

/// The annotation's key.
pub const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

#[derive(Debug, Default)]
struct ServiceState {
    service: Option<Timestamp>,
    pods: HashMap<String, Timestamp>,
}

/// Last observed trigger times per Service (`namespace/name`).
#[derive(Debug, Default)]
pub struct TriggerTimeTracker {
    states: Mutex<HashMap<String, ServiceState>>,
}

fn pod_trigger_time(pod: &CachedPod) -> Option<Timestamp> {
    let c = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    c.last_transition_time.as_ref().map(|t| t.0)
}

fn earliest(a: Option<Timestamp>, b: Timestamp) -> Option<Timestamp> {
    Some(a.map_or(b, |a| a.min(b)))
}

impl TriggerTimeTracker {
    /// Records the current trigger times of `service` and its `pods` and
    /// returns the time to publish (`None`: remove the annotation).
    /// Never called concurrently for one key (the work queue's promise).
    pub fn compute(&self, key: &str, service: &Service, pods: &[&CachedPod]) -> Option<Timestamp> {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        let known = states.contains_key(key);
        let state = states.entry(key.to_string()).or_default();
        let mut min_changed = None;
        let mut now_pods = HashMap::with_capacity(pods.len());
        for pod in pods {
            let Some(t) = pod_trigger_time(pod) else { continue };
            let name = pod.metadata.name.clone().unwrap_or_default();
            if state.pods.get(&name).is_none_or(|prev| t > *prev) {
                min_changed = earliest(min_changed, t);
            }
            now_pods.insert(name, t);
        }
        let created = service.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if let Some(c) = created
            && state.service.is_none_or(|prev| c > prev)
        {
            min_changed = earliest(min_changed, c);
        }
        state.pods = now_pods;
        state.service = created;
        if known { min_changed } else { created }
    }

    /// Forgets a deleted Service.
    pub fn delete(&self, key: &str) {
        self.states.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

/// The annotation's value: RFC 3339 in UTC with the fraction trimmed, as
/// Go's `time.RFC3339Nano`.
pub fn format(t: Timestamp) -> String {
    t.to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn pod(name: &str, ready_at: &str) -> CachedPod {
        serde_json::from_value(json!({"metadata": {"name": name}, "status": {"conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": ready_at}]}}))
        .unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn first_sync_uses_creation_then_the_earliest_change() {
        let t = TriggerTimeTracker::default();
        let svc: Service =
            serde_json::from_value(json!({"metadata": {"name": "s", "creationTimestamp": "2024-01-01T00:00:00Z"}}))
                .unwrap();
        let a = pod("a", "2024-01-01T00:01:00Z");
        let b = pod("b", "2024-01-01T00:02:00Z");
        assert_eq!(t.compute("ns/s", &svc, &[&a, &b]), Some(ts("2024-01-01T00:00:00Z")));
        // Nothing changed: no trigger time.
        assert_eq!(t.compute("ns/s", &svc, &[&a, &b]), None);
        // b and c changed: the earlier of the two.
        let b2 = pod("b", "2024-01-01T00:05:00Z");
        let c = pod("c", "2024-01-01T00:04:00Z");
        assert_eq!(
            t.compute("ns/s", &svc, &[&a, &b2, &c]),
            Some(ts("2024-01-01T00:04:00Z"))
        );
        t.delete("ns/s");
        assert_eq!(t.compute("ns/s", &svc, &[&a]), Some(ts("2024-01-01T00:00:00Z")));
        assert_eq!(format(ts("2024-01-01T00:04:00Z")), "2024-01-01T00:04:00Z");
        assert_eq!(format(ts("2024-01-01T00:04:00.5Z")), "2024-01-01T00:04:00.5Z");
    }
}
