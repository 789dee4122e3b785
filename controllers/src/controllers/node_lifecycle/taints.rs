//! The taints the controller owns: NoSchedule taints mirroring node
//! conditions (upstream's TaintNodesByCondition, `doNoScheduleTaintingPass`)
//! and the NoExecute `not-ready` / `unreachable` taints that make the
//! taint-eviction controller evict pods.

use k8s_openapi::api::core::v1::{Node, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// `(condition type, status, taint key)` of the condition taints.
const CONDITION_TAINTS: &[(&str, &str, &str)] = &[
    ("Ready", "False", NOT_READY),
    ("Ready", "Unknown", UNREACHABLE),
    ("MemoryPressure", "True", "node.kubernetes.io/memory-pressure"),
    ("DiskPressure", "True", "node.kubernetes.io/disk-pressure"),
    ("NetworkUnavailable", "True", "node.kubernetes.io/network-unavailable"),
    ("PIDPressure", "True", "node.kubernetes.io/pid-pressure"),
];

fn taints(node: &Node) -> &[Taint] {
    node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default()
}

fn is_managed_no_schedule(t: &Taint) -> bool {
    t.effect == "NoSchedule" && (t.key == UNSCHEDULABLE || CONDITION_TAINTS.iter().any(|(_, _, k)| *k == t.key))
}

/// The NoSchedule taint keys `node`'s conditions and `spec.unschedulable`
/// call for.
pub fn desired_no_schedule(node: &Node) -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| {
            CONDITION_TAINTS
                .iter()
                .find(|(t, s, _)| *t == c.type_ && *s == c.status)
                .map(|(_, _, k)| *k)
        })
        .collect();
    if node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false) {
        keys.push(UNSCHEDULABLE);
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// `node`'s taints with the condition NoSchedule taints made to match its
/// conditions, or `None` if they already do. Other taints are kept.
pub fn reconcile_no_schedule(node: &Node) -> Option<Vec<Taint>> {
    let want = desired_no_schedule(node);
    let current = taints(node);
    let have: Vec<&str> = current
        .iter()
        .filter(|t| is_managed_no_schedule(t))
        .map(|t| t.key.as_str())
        .collect();
    let stale = have.iter().any(|k| !want.contains(k));
    let missing: Vec<&str> = want.iter().copied().filter(|k| !have.contains(k)).collect();
    if !stale && missing.is_empty() {
        return None;
    }
    let mut out: Vec<Taint> = current
        .iter()
        .filter(|t| !is_managed_no_schedule(t) || want.contains(&t.key.as_str()))
        .cloned()
        .collect();
    out.extend(missing.into_iter().map(|k| Taint {
        key: k.into(),
        effect: "NoSchedule".into(),
        ..Taint::default()
    }));
    Some(out)
}

/// The NoExecute taint key a Ready status calls for.
pub fn no_execute_key(ready_status: &str) -> Option<&'static str> {
    match ready_status {
        "False" => Some(NOT_READY),
        "Unknown" => Some(UNREACHABLE),
        _ => None,
    }
}

/// The NoExecute taint key the node carries, if any.
pub fn current_no_execute(node: &Node) -> Option<&'static str> {
    taints(node)
        .iter()
        .find_map(|t| match (t.effect.as_str(), t.key.as_str()) {
            ("NoExecute", NOT_READY) => Some(NOT_READY),
            ("NoExecute", UNREACHABLE) => Some(UNREACHABLE),
            _ => None,
        })
}

/// `node`'s taints with exactly `want` (or neither) of the NoExecute
/// not-ready/unreachable taints, a new one stamped `now`; `None` if
/// nothing changes.
pub fn set_no_execute(node: &Node, want: Option<&str>, now: Timestamp) -> Option<Vec<Taint>> {
    let current = taints(node);
    let ours = |t: &Taint| t.effect == "NoExecute" && (t.key == NOT_READY || t.key == UNREACHABLE);
    let have: Vec<&str> = current.iter().filter(|t| ours(t)).map(|t| t.key.as_str()).collect();
    if have.len() <= 1 && have.first().copied() == want {
        return None;
    }
    let mut out: Vec<Taint> = current
        .iter()
        .filter(|t| !ours(t) || Some(t.key.as_str()) == want)
        .cloned()
        .collect();
    if let Some(key) = want
        && !have.contains(&key)
    {
        out.push(Taint {
            key: key.into(),
            effect: "NoExecute".into(),
            time_added: Some(Time(now)),
            value: None,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::{Value, json};

    fn node(conditions: Value, taints: Value, unschedulable: bool) -> Node {
        serde_json::from_value(json!({"metadata": {"name": "n"},
            "spec": {"taints": taints, "unschedulable": unschedulable},
            "status": {"conditions": conditions}}))
        .unwrap()
    }

    fn keys(t: &[Taint]) -> Vec<String> {
        t.iter().map(|t| format!("{}:{}", t.key, t.effect)).collect()
    }

    #[test]
    fn ready_node_loses_admission_not_ready_taint() {
        let n = node(
            json!([{"type": "Ready", "status": "True"}]),
            json!([{"key": NOT_READY, "effect": "NoSchedule"}, {"key": "dedicated", "value": "x", "effect": "NoSchedule"}]),
            false,
        );
        assert_eq!(keys(&reconcile_no_schedule(&n).unwrap()), ["dedicated:NoSchedule"]);
    }

    #[test]
    fn conditions_become_no_schedule_taints() {
        let n = node(
            json!([{"type": "Ready", "status": "Unknown"}, {"type": "DiskPressure", "status": "True"},
                   {"type": "MemoryPressure", "status": "False"}]),
            json!([{"key": NOT_READY, "effect": "NoSchedule"}]),
            true,
        );
        let mut got = keys(&reconcile_no_schedule(&n).unwrap());
        got.sort();
        assert_eq!(
            got,
            [
                "node.kubernetes.io/disk-pressure:NoSchedule",
                "node.kubernetes.io/unreachable:NoSchedule",
                "node.kubernetes.io/unschedulable:NoSchedule"
            ]
        );
        let settled = node(
            json!([{"type": "Ready", "status": "False"}]),
            json!([{"key": NOT_READY, "effect": "NoSchedule"}, {"key": NOT_READY, "effect": "NoExecute"}]),
            false,
        );
        assert!(reconcile_no_schedule(&settled).is_none());
    }

    #[test]
    fn no_execute_taints_swap_and_clear() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let n = node(json!([]), json!([{"key": "other", "effect": "NoExecute"}]), false);
        let t = set_no_execute(&n, no_execute_key("Unknown"), now).unwrap();
        assert_eq!(
            keys(&t),
            ["other:NoExecute", "node.kubernetes.io/unreachable:NoExecute"]
        );
        assert_eq!(t[1].time_added, Some(Time(now)));
        let tainted = node(json!([]), serde_json::to_value(&t).unwrap(), false);
        assert_eq!(current_no_execute(&tainted), Some(UNREACHABLE));
        assert!(set_no_execute(&tainted, Some(UNREACHABLE), now).is_none());
        let swapped = set_no_execute(&tainted, no_execute_key("False"), now).unwrap();
        assert_eq!(
            keys(&swapped),
            ["other:NoExecute", "node.kubernetes.io/not-ready:NoExecute"]
        );
        let cleared = set_no_execute(&tainted, no_execute_key("True"), now).unwrap();
        assert_eq!(keys(&cleared), ["other:NoExecute"]);
        assert!(set_no_execute(&n, None, now).is_none());
    }
}
