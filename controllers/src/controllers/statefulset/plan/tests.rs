#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use crate::cached_pod::CachedPod;
use crate::controllers::history::CONTROLLER_REVISION_HASH_LABEL;
use serde_json::{Value, json};

fn set(extra: Value) -> StatefulSet {
    let mut spec = json!({
        "replicas": 3,
        "serviceName": "svc",
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "v2"}]}},
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "uid": "u", "generation": 4},
        "spec": spec,
    }))
    .unwrap()
}

fn template(image: &str) -> PodTemplateSpec {
    serde_json::from_value(
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": image}]}}),
    )
    .unwrap()
}

/// A member at `rev`; `state` is "ready", "pending", "failed" or
/// "terminating".
fn pod(s: &StatefulSet, ordinal: i32, rev: &str, state: &str) -> Arc<CachedPod> {
    let mut p = CachedPod::from(new_pod(s, &template("v1"), rev, ordinal));
    let status = match state {
        "ready" | "terminating" => json!({"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}]}),
        "pending" => json!({"phase": "Pending"}),
        "failed" => json!({"phase": "Failed"}),
        other => panic!("{other}"),
    };
    p.status = Some(serde_json::from_value(status).unwrap());
    if state == "terminating" {
        p.metadata.deletion_timestamp = Some(serde_json::from_value(json!("2020-01-01T00:00:00Z")).unwrap());
    }
    p.metadata.uid = Some(format!("pod-{ordinal}"));
    Arc::new(p)
}

fn run(s: &StatefulSet, pods: &[Arc<CachedPod>]) -> Plan {
    let claims = BTreeMap::new();
    let (cur, upd) = (template("v1"), template("v2"));
    plan(&Input {
        set: s,
        current_template: &cur,
        update_template: &upd,
        current_revision: "web-old",
        update_revision: "web-new",
        collision_count: 0,
        pods,
        claims: &claims,
        now: "2024-01-01T00:00:00Z".parse().unwrap(),
    })
}

/// The plan as `verb name` strings, phase by phase (empty phases dropped).
fn actions(p: &Plan) -> Vec<String> {
    p.phases
        .iter()
        .flatten()
        .map(|a| {
            let (verb, pod): (&str, &CachedPod) = match a {
                PodAction::DeleteFinished(p) => ("delete-finished", p),
                PodAction::Create(p) => ("create", &CachedPod::from(&**p)),
                PodAction::CreateMissingClaims(p) => ("claims", p),
                PodAction::Repair(p) => ("repair", p),
                PodAction::FixClaims(p) => ("fix-claims", p),
                PodAction::DeleteCondemned(p) => ("delete", p),
                PodAction::DeleteForUpdate(p) => ("update", p),
            };
            format!("{verb} {}", pod.metadata.name.as_deref().unwrap())
        })
        .collect()
}

#[test]
fn ordered_ready_creates_one_pod_after_the_previous_is_ready() {
    let s = set(json!({}));
    assert_eq!(actions(&run(&s, &[])), ["create web-0"]);
    assert!(actions(&run(&s, &[pod(&s, 0, "web-new", "pending")])).is_empty());
    assert_eq!(actions(&run(&s, &[pod(&s, 0, "web-new", "ready")])), ["create web-1"]);
    let all: Vec<_> = (0..3).map(|i| pod(&s, i, "web-new", "ready")).collect();
    assert!(actions(&run(&s, &all)).is_empty());
    // A pod in the middle that is not ready blocks the ones after it.
    let gap = [pod(&s, 0, "web-new", "ready"), pod(&s, 1, "web-new", "pending")];
    assert!(actions(&run(&s, &gap)).is_empty());
}

#[test]
fn parallel_creates_and_deletes_at_once() {
    let s = set(json!({"podManagementPolicy": "Parallel"}));
    assert_eq!(actions(&run(&s, &[])), ["create web-0", "create web-1", "create web-2"]);
    let s1 = set(json!({"podManagementPolicy": "Parallel", "replicas": 1}));
    let pods: Vec<_> = (0..3).map(|i| pod(&s1, i, "web-new", "pending")).collect();
    assert_eq!(actions(&run(&s1, &pods)), ["delete web-2", "delete web-1"]);
}

#[test]
fn ordered_scale_down_removes_the_highest_ordinal_first() {
    let s = set(json!({"replicas": 1}));
    let pods: Vec<_> = (0..3).map(|i| pod(&s, i, "web-new", "ready")).collect();
    assert_eq!(actions(&run(&s, &pods)), ["delete web-2"]);
    // ... and waits for it to go.
    let pods = [
        pod(&s, 0, "web-new", "ready"),
        pod(&s, 1, "web-new", "ready"),
        pod(&s, 2, "web-new", "terminating"),
    ];
    assert!(actions(&run(&s, &pods)).is_empty());
}

#[test]
fn finished_pods_are_deleted_to_be_recreated() {
    let s = set(json!({}));
    assert_eq!(
        actions(&run(&s, &[pod(&s, 0, "web-new", "failed")])),
        ["delete-finished web-0"]
    );
}

#[test]
fn rolling_update_goes_from_the_highest_ordinal_down_to_the_partition() {
    let s = set(json!({}));
    let old: Vec<_> = (0..3).map(|i| pod(&s, i, "web-old", "ready")).collect();
    let p = run(&s, &old);
    assert_eq!(actions(&p), ["update web-2"]);
    assert_eq!(p.status.current_replicas, Some(2));
    assert_eq!(p.status.updated_replicas, Some(0));
    // web-2 updated but not ready yet: wait.
    let mid = [old[0].clone(), old[1].clone(), pod(&s, 2, "web-new", "pending")];
    assert!(actions(&run(&s, &mid)).is_empty());
    let mid = [old[0].clone(), old[1].clone(), pod(&s, 2, "web-new", "ready")];
    assert_eq!(actions(&run(&s, &mid)), ["update web-1"]);

    let part = set(json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}));
    assert_eq!(actions(&run(&part, &mid)), Vec::<String>::new());
    assert_eq!(actions(&run(&part, &old)), ["update web-2"]);

    let wide = set(json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}}));
    assert_eq!(actions(&run(&wide, &old)), ["update web-2", "update web-1"]);
    let pct = set(json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}}}));
    assert_eq!(
        actions(&run(&pct, &old)),
        ["update web-2"],
        "a percentage rounds down to at least 1"
    );

    let on_delete = set(json!({"updateStrategy": {"type": "OnDelete"}}));
    assert!(actions(&run(&on_delete, &old)).is_empty());
}

#[test]
fn parallel_update_replaces_unavailable_old_pods_beyond_the_budget() {
    let s = set(json!({"podManagementPolicy": "Parallel"}));
    let pods = [
        pod(&s, 0, "web-old", "ready"),
        pod(&s, 1, "web-old", "pending"),
        pod(&s, 2, "web-old", "ready"),
    ];
    // web-1 is already down: replacing it costs nothing; the budget of 1
    // is used up by it, so no available pod goes.
    assert_eq!(actions(&run(&s, &pods)), ["update web-1"]);
}

#[test]
fn missing_pods_below_the_partition_are_created_at_the_current_revision() {
    let s = set(
        json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
                       "podManagementPolicy": "Parallel"}),
    );
    let p = run(&s, &[]);
    let revs: Vec<String> = p
        .phases
        .iter()
        .flatten()
        .map(|a| match a {
            PodAction::Create(p) => p.metadata.labels.as_ref().unwrap()[CONTROLLER_REVISION_HASH_LABEL].clone(),
            _ => panic!("{a:?}"),
        })
        .collect();
    assert_eq!(revs, ["web-old", "web-old", "web-new"]);
}

#[test]
fn status_counts_pods_and_completes_rollouts() {
    let s = set(json!({}));
    let pods: Vec<_> = (0..3).map(|i| pod(&s, i, "web-new", "ready")).collect();
    let mut st = run(&s, &pods).status;
    assert_eq!(
        (
            st.replicas,
            st.ready_replicas,
            st.available_replicas,
            st.updated_replicas,
            st.current_replicas
        ),
        (3, Some(3), Some(3), Some(3), Some(0))
    );
    assert_eq!(st.observed_generation, Some(4));
    assert_eq!(st.update_revision.as_deref(), Some("web-new"));
    complete_rolling_update(&s, &mut st);
    assert_eq!(st.current_revision.as_deref(), Some("web-new"));
    assert_eq!(st.current_replicas, Some(3));
    assert!(status_changed(&s, &st));
    let mut recorded = s.clone();
    recorded.status = Some(st.clone());
    assert!(!status_changed(&recorded, &st));
    assert_eq!(max_unavailable(Some(&IntOrString::String("50%".into())), 5), 2);
}

#[test]
fn deleting_sets_only_report_status() {
    let mut s = set(json!({}));
    s.metadata.deletion_timestamp = Some(serde_json::from_value(json!("2020-01-01T00:00:00Z")).unwrap());
    assert!(actions(&run(&s, &[])).is_empty());
}
