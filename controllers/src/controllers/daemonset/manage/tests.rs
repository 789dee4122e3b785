#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use crate::cached_pod::CachedPod;
use serde_json::{Value, json};

fn ds(strategy: Value) -> DaemonSet {
    serde_json::from_value(json!({
        "metadata": {"name": "agent", "namespace": "ns"},
        "spec": {"selector": {"matchLabels": {"app": "a"}}, "updateStrategy": strategy,
                 "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
    }))
    .unwrap()
}

fn node(name: &str) -> Arc<Node> {
    Arc::new(serde_json::from_value(json!({"metadata": {"name": name}})).unwrap())
}

/// A pod on `node` at revision `hash`; `state`: "ready", "pending", "failed".
fn pod(name: &str, node: &str, hash: &str, state: &str, created: &str) -> Arc<CachedPod> {
    let status = match state {
        "ready" => {
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}]})
        }
        "pending" => json!({"phase": "Pending"}),
        "failed" => json!({"phase": "Failed"}),
        other => panic!("{other}"),
    };
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"controller-revision-hash": hash}, "creationTimestamp": created},
            "spec": {"nodeName": node, "containers": []},
            "status": status,
        }))
        .unwrap(),
    )
}

fn now() -> Timestamp {
    "2024-01-01T00:00:00Z".parse().unwrap()
}

const T1: &str = "2023-01-01T00:00:00Z";
const T2: &str = "2023-06-01T00:00:00Z";

#[test]
fn each_fitting_node_gets_one_pod() {
    let d = ds(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}));
    let n = node("n1");
    assert!(node_needs(&n, None, &d, "h", now()).create);
    let two = vec![pod("b", "n1", "h", "ready", T2), pod("a", "n1", "h", "ready", T1)];
    assert_eq!(
        node_needs(&n, Some(&two), &d, "h", now()).delete,
        ["b"],
        "the oldest stays"
    );
    let failed = vec![pod("a", "n1", "h", "failed", T1)];
    let needs = node_needs(&n, Some(&failed), &d, "h", now());
    assert_eq!(
        (needs.failed.as_slice(), needs.create),
        (["a".to_string()].as_slice(), false)
    );
    let gone: Vec<Arc<Node>> = vec![];
    let mut unscheduled = (*pod("x", "", "h", "pending", T1)).clone();
    unscheduled.spec.as_mut().unwrap().node_name = None;
    unscheduled.spec.as_mut().unwrap().affinity = Some(Box::new(super::super::node_fit::pin_to_node(None, "dead")));
    let by_node = pods_by_node(&[Arc::new(unscheduled)]);
    assert_eq!(pods_for_missing_nodes(&gone, &by_node), ["x"]);
}

#[test]
fn rolling_update_respects_max_unavailable() {
    let d = ds(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}));
    let nodes: Vec<_> = ["n1", "n2", "n3"].iter().map(|n| node(n)).collect();
    let old: Vec<_> = (1..=3)
        .map(|i| pod(&format!("p{i}"), &format!("n{i}"), "old", "ready", T1))
        .collect();
    let step = rolling_update(&d, &nodes, &pods_by_node(&old), "new", now());
    assert_eq!(step.delete.len(), 1);
    assert!(step.create_on.is_empty());
    // One node already has an unready new pod: nothing more goes.
    let mid = vec![old[0].clone(), old[1].clone(), pod("q3", "n3", "new", "pending", T2)];
    assert_eq!(
        rolling_update(&d, &nodes, &pods_by_node(&mid), "new", now()),
        RollingStep::default()
    );
    // An unavailable old pod is replaced regardless of the budget.
    let broken = vec![pod("p1", "n1", "old", "pending", T1), old[1].clone(), old[2].clone()];
    let step = rolling_update(&d, &nodes, &pods_by_node(&broken), "new", now());
    assert_eq!(step.delete, ["p1"]);
    let pct = ds(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "50%"}}));
    assert_eq!(
        rolling_update(&pct, &nodes, &pods_by_node(&old), "new", now())
            .delete
            .len(),
        2,
        "50% of 3 rounds up"
    );
}

#[test]
fn surge_starts_new_pods_before_removing_old_ones() {
    let d = ds(json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}));
    let nodes: Vec<_> = ["n1", "n2"].iter().map(|n| node(n)).collect();
    let old: Vec<_> = (1..=2)
        .map(|i| pod(&format!("p{i}"), &format!("n{i}"), "old", "ready", T1))
        .collect();
    let step = rolling_update(&d, &nodes, &pods_by_node(&old), "new", now());
    assert_eq!((step.create_on.len(), step.delete.len()), (1, 0));
    let surged = vec![old[0].clone(), pod("q1", "n1", "new", "ready", T2), old[1].clone()];
    let step = rolling_update(&d, &nodes, &pods_by_node(&surged), "new", now());
    assert_eq!(step.delete, ["p1"]);
    // n1's new pod is available, so it no longer counts against the surge.
    assert_eq!(step.create_on, ["n2"]);
    // With surge, a node keeps its ready old pod beside an unready new one.
    let n1 = node("n1");
    let pair = vec![old[0].clone(), pod("q1", "n1", "new", "pending", T2)];
    assert!(node_needs(&n1, Some(&pair), &d, "new", now()).delete.is_empty());
    let pair = vec![old[0].clone(), pod("q1", "n1", "new", "ready", T2)];
    assert_eq!(node_needs(&n1, Some(&pair), &d, "new", now()).delete, ["p1"]);
}

#[test]
fn status_counts_nodes() {
    let d = ds(json!({"type": "OnDelete"}));
    let nodes: Vec<_> = ["n1", "n2", "n3"].iter().map(|n| node(n)).collect();
    let pods = vec![
        pod("p1", "n1", "new", "ready", T1),
        pod("p2", "n2", "old", "pending", T1),
        pod("p9", "gone", "new", "ready", T1),
    ];
    let s = status(&d, &nodes, &pods_by_node(&pods), "new", now());
    assert_eq!(
        (
            s.desired_number_scheduled,
            s.current_number_scheduled,
            s.number_ready,
            s.number_misscheduled
        ),
        (3, 2, 1, 0)
    );
    assert_eq!(
        (s.updated_number_scheduled, s.number_available, s.number_unavailable),
        (Some(1), Some(1), Some(2))
    );
    assert_eq!(max_unavailable(&d, 3), 0, "OnDelete has no rolling update");
}
