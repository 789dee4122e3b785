//! Node health as the controller observes it (upstream's `nodeHealthData`
//! and `tryUpdateNodeHealth`): a node is alive while its Ready condition's
//! heartbeat or its Lease's renew time keeps changing. The probe time is
//! the controller's own clock at the last change it saw, so clock skew
//! between the kubelet and the controller does not matter.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// The conditions the controller turns Unknown when a node goes silent.
pub const MONITORED_CONDITIONS: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// What was last seen of one node.
#[derive(Debug, Clone)]
struct Observed {
    /// Controller time of the last heartbeat or lease renewal seen.
    probe: Timestamp,
    /// The Ready condition's heartbeat as last seen.
    ready_heartbeat: Option<Timestamp>,
    /// Whether a Ready condition was present.
    had_ready: bool,
    /// The Lease's renew time as last seen.
    lease_renew: Option<Timestamp>,
}

/// The health of every node seen.
#[derive(Debug, Default)]
pub struct HealthTracker {
    nodes: HashMap<String, Observed>,
}

/// A node's Ready condition, if posted.
pub fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    condition(node, "Ready")
}

/// A node's condition of `type_`, if posted.
pub fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == type_))
}

/// `True`, `False` or `Unknown` (a node without a Ready condition is
/// Unknown).
pub fn ready_status(node: &Node) -> &str {
    ready_condition(node).map_or("Unknown", |c| c.status.as_str())
}

/// `now - since`, zero if `since` is in the future.
pub fn elapsed(since: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO)
}

impl HealthTracker {
    /// Records what `node` and its `lease` show at `now` and returns whether
    /// the node has been silent for longer than its grace period (`startup`
    /// while it never posted a Ready condition, else `grace`).
    pub fn observe(
        &mut self,
        node: &Node,
        lease: Option<&Lease>,
        now: Timestamp,
        grace: Duration,
        startup: Duration,
    ) -> bool {
        let name = node.metadata.name.clone().unwrap_or_default();
        let ready = ready_condition(node);
        let heartbeat = ready.and_then(|c| c.last_heartbeat_time.as_ref()).map(|t| t.0);
        let renew = lease
            .and_then(|l| l.spec.as_ref())
            .and_then(|s| s.renew_time.as_ref())
            .map(|t| t.0);
        let created = node.metadata.creation_timestamp.as_ref().map_or(now, |t| t.0);
        let entry = self.nodes.entry(name).or_insert_with(|| Observed {
            // A node that never posted status is timed from its creation.
            probe: if ready.is_some() { now } else { created },
            ready_heartbeat: heartbeat,
            had_ready: ready.is_some(),
            lease_renew: None,
        });
        if entry.had_ready != ready.is_some() || entry.ready_heartbeat != heartbeat {
            entry.probe = now;
            entry.ready_heartbeat = heartbeat;
            entry.had_ready = ready.is_some();
        }
        if let Some(r) = renew
            && entry.lease_renew.is_none_or(|seen| seen < r)
        {
            entry.lease_renew = Some(r);
            entry.probe = now;
        }
        let period = if ready.is_some() { grace } else { startup };
        elapsed(entry.probe, now) > period
    }

    /// Forgets a deleted node.
    pub fn forget(&mut self, name: &str) {
        self.nodes.remove(name);
    }

    /// Gives every node a fresh grace period (on leaving full disruption,
    /// when the silence may have been the controller's own).
    pub fn reset(&mut self, now: Timestamp) {
        for o in self.nodes.values_mut() {
            o.probe = now;
        }
    }
}

/// The conditions to post for a node silent past its grace period, or
/// `None` if every monitored condition is already Unknown.
pub fn unknown_conditions(node: &Node, now: Timestamp) -> Option<Vec<NodeCondition>> {
    let mut conditions: Vec<NodeCondition> = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let created = node.metadata.creation_timestamp.clone();
    let mut changed = false;
    for type_ in MONITORED_CONDITIONS {
        match conditions.iter_mut().find(|c| c.type_ == *type_) {
            None => {
                conditions.push(NodeCondition {
                    type_: (*type_).into(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: created.clone(),
                    last_transition_time: Some(Time(now)),
                });
                changed = true;
            }
            Some(c) if c.status != "Unknown" => {
                c.status = "Unknown".into();
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some("Kubelet stopped posting node status.".into());
                c.last_transition_time = Some(Time(now));
                changed = true;
            }
            Some(_) => {}
        }
    }
    changed.then_some(conditions)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn node(heartbeat: Option<i64>, ready: &str) -> Node {
        let mut n = json!({"metadata": {"name": "n1", "creationTimestamp": ts(0).to_string()}, "status": {}});
        if let Some(h) = heartbeat {
            n["status"]["conditions"] = json!([{"type": "Ready", "status": ready,
                "lastHeartbeatTime": ts(h).to_string(), "lastTransitionTime": ts(0).to_string()}]);
        }
        serde_json::from_value(n).unwrap()
    }

    fn lease(renew: i64) -> Lease {
        serde_json::from_value(json!({"metadata": {"name": "n1"},
            "spec": {"renewTime": ts(renew).strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()}}))
        .unwrap()
    }

    const G: Duration = Duration::from_secs(40);
    const S: Duration = Duration::from_secs(60);

    #[test]
    fn silent_after_grace_without_heartbeat_or_lease() {
        let mut h = HealthTracker::default();
        let n = node(Some(0), "True");
        assert!(!h.observe(&n, None, ts(1), G, S));
        assert!(!h.observe(&n, None, ts(41), G, S));
        assert!(h.observe(&n, None, ts(42), G, S));
    }

    #[test]
    fn heartbeat_or_lease_renewal_keeps_node_alive() {
        let mut h = HealthTracker::default();
        assert!(!h.observe(&node(Some(0), "True"), None, ts(0), G, S));
        // A new heartbeat at 30 s restarts the grace period.
        assert!(!h.observe(&node(Some(30), "True"), None, ts(30), G, S));
        assert!(!h.observe(&node(Some(30), "True"), None, ts(60), G, S));
        // A lease renewal at 65 s does too, the status being unchanged.
        assert!(!h.observe(&node(Some(30), "True"), Some(&lease(65)), ts(65), G, S));
        assert!(!h.observe(&node(Some(30), "True"), Some(&lease(65)), ts(100), G, S));
        assert!(h.observe(&node(Some(30), "True"), Some(&lease(65)), ts(106), G, S));
    }

    #[test]
    fn never_posted_uses_startup_grace_from_creation() {
        let mut h = HealthTracker::default();
        let n = node(None, "");
        assert!(!h.observe(&n, None, ts(50), G, S));
        assert!(h.observe(&n, None, ts(61), G, S));
        h.reset(ts(61));
        assert!(!h.observe(&n, None, ts(100), G, S));
    }

    #[test]
    fn unknown_conditions_as_upstream_words_them() {
        let n = node(Some(0), "True");
        let c = unknown_conditions(&n, ts(50)).unwrap();
        let ready = c.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(ready.message.as_deref(), Some("Kubelet stopped posting node status."));
        assert_eq!(ready.last_transition_time, Some(Time(ts(50))));
        assert_eq!(ready.last_heartbeat_time, Some(Time(ts(0))));
        let mem = c.iter().find(|c| c.type_ == "MemoryPressure").unwrap();
        assert_eq!(mem.reason.as_deref(), Some("NodeStatusNeverUpdated"));
        assert_eq!(mem.message.as_deref(), Some("Kubelet never posted node status."));
        assert_eq!(c.len(), 4);
        // Once all are Unknown, nothing more to post.
        let mut n2 = n.clone();
        n2.status.as_mut().unwrap().conditions = Some(c);
        assert!(unknown_conditions(&n2, ts(60)).is_none());
    }
}
