use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use super::print_pod;

const NOW: OffsetDateTime = datetime!(2025-06-01 12:00:00 UTC);

/// A pod created 2d2h before [`NOW`] with `spec` and `status` merged in.
fn pod(spec: Value, status: Value) -> Value {
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "default", "creationTimestamp": "2025-05-30T10:00:00Z"},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
        "status": {},
    });
    if let (Some(s), Some(extra)) = (pod["spec"].as_object_mut(), spec.as_object()) {
        s.extend(extra.clone());
    }
    if let (Some(s), Some(extra)) = (pod["status"].as_object_mut(), status.as_object()) {
        s.extend(extra.clone());
    }
    pod
}

/// Prints `pod` and compares the narrow cells (NAME READY STATUS RESTARTS AGE).
fn check(pod: Value, ready: &str, status: &str, restarts: &str) {
    let printed = print_pod(pod.as_object().expect("object"), NOW);
    assert_eq!(printed.cells.len(), 9, "{pod}");
    let got: Vec<&str> = printed.cells[..4].iter().map(|c| c.as_str().unwrap_or("")).collect();
    assert_eq!(got, vec!["web-0", ready, status, restarts], "{pod}");
}

fn running(ready: bool, restarts: i64) -> Value {
    json!({"name": "app", "ready": ready, "restartCount": restarts, "started": true,
           "state": {"running": {"startedAt": "2025-06-01T11:55:00Z"}}})
}

#[test]
fn running_pod_with_restarts_and_wide_cells() {
    let mut app = running(true, 3);
    app["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2025-06-01T11:54:48Z"}});
    let p = pod(
        json!({"nodeName": "node-1", "containers": [{"name": "app", "image": "nginx"}, {"name": "log", "image": "busybox"}]}),
        json!({"phase": "Running", "podIP": "10.244.1.7", "podIPs": [{"ip": "10.244.1.7"}, {"ip": "fd00::7"}],
               "conditions": [{"type": "Ready", "status": "True"}],
               "containerStatuses": [app, {"name": "log", "ready": true, "restartCount": 0, "state": {"running": {}}}]}),
    );
    let printed = print_pod(p.as_object().expect("object"), NOW);
    assert_eq!(
        Value::Array(printed.cells),
        json!([
            "web-0",
            "2/2",
            "Running",
            "3 (5m12s ago)",
            "2d2h",
            "10.244.1.7",
            "node-1",
            "<none>",
            "<none>"
        ])
    );
    assert!(printed.conditions.is_empty());
}

#[test]
fn pending_unscheduled_pod() {
    let p = pod(json!({}), json!({"phase": "Pending"}));
    let printed = print_pod(p.as_object().expect("object"), NOW);
    assert_eq!(
        Value::Array(printed.cells),
        json!([
            "web-0", "0/1", "Pending", "0", "2d2h", "<none>", "<none>", "<none>", "<none>"
        ])
    );
}

#[test]
fn container_creating() {
    let status = json!({"name": "app", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}});
    check(
        pod(
            json!({"nodeName": "n"}),
            json!({"phase": "Pending", "containerStatuses": [status]}),
        ),
        "0/1",
        "ContainerCreating",
        "0",
    );
}

#[test]
fn terminating_pod() {
    let mut p = pod(
        json!({}),
        json!({"phase": "Running", "containerStatuses": [running(true, 0)]}),
    );
    p["metadata"]["deletionTimestamp"] = json!("2025-06-01T11:59:30Z");
    check(p, "1/1", "Terminating", "0");
}

#[test]
fn crash_loop_back_off() {
    let status = json!({"name": "app", "ready": false, "restartCount": 5,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 2m40s"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2025-06-01T11:58:00Z"}}});
    check(
        pod(json!({}), json!({"phase": "Running", "containerStatuses": [status]})),
        "0/1",
        "CrashLoopBackOff",
        "5 (2m ago)",
    );
}

#[test]
fn completed_and_error_pods_carry_row_conditions() {
    let done = json!({"name": "app", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
    let p = pod(json!({}), json!({"phase": "Succeeded", "containerStatuses": [done]}));
    check(p.clone(), "0/1", "Completed", "0");
    let printed = print_pod(p.as_object().expect("object"), NOW);
    assert_eq!(
        printed.conditions,
        vec![
            json!({"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."})
        ]
    );

    let failed = json!({"name": "app", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 2, "reason": "Error"}}});
    let p = pod(json!({}), json!({"phase": "Failed", "containerStatuses": [failed]}));
    check(p.clone(), "0/1", "Error", "0");
    let printed = print_pod(p.as_object().expect("object"), NOW);
    assert_eq!(printed.conditions[0]["reason"], "Failed");
}

#[test]
fn terminated_without_reason_shows_signal_or_exit_code() {
    let by_signal = json!({"name": "app", "state": {"terminated": {"exitCode": 137, "signal": 9}}});
    check(
        pod(json!({}), json!({"phase": "Failed", "containerStatuses": [by_signal]})),
        "0/1",
        "Signal:9",
        "0",
    );
    let by_code = json!({"name": "app", "state": {"terminated": {"exitCode": 137}}});
    check(
        pod(json!({}), json!({"phase": "Failed", "containerStatuses": [by_code]})),
        "0/1",
        "ExitCode:137",
        "0",
    );
}

#[test]
fn deleted_finished_pod_keeps_its_status() {
    let done = json!({"name": "app", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
    let mut p = pod(json!({}), json!({"phase": "Succeeded", "containerStatuses": [done]}));
    p["metadata"]["deletionTimestamp"] = json!("2025-06-01T11:59:30Z");
    check(p, "0/1", "Completed", "0");
}

#[test]
fn node_lost_pod_is_unknown() {
    let mut p = pod(
        json!({}),
        json!({"phase": "Running", "reason": "NodeLost", "containerStatuses": [running(true, 0)]}),
    );
    // The status reason shows until the node controller starts deleting the pod.
    check(p.clone(), "1/1", "NodeLost", "0");
    p["metadata"]["deletionTimestamp"] = json!("2025-06-01T11:00:00Z");
    check(p, "1/1", "Unknown", "0");
}

#[test]
fn scheduling_gated() {
    let p = pod(
        json!({"schedulingGates": [{"name": "example.com/gate"}]}),
        json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
    );
    check(p, "0/1", "SchedulingGated", "0");
}

fn with_init(init_status: Value, phase: &str) -> Value {
    pod(
        json!({"initContainers": [{"name": "init", "image": "busybox"}]}),
        json!({"phase": phase, "initContainerStatuses": [init_status],
               "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]}),
    )
}

#[test]
fn init_containers() {
    let running_init = json!({"name": "init", "ready": false, "restartCount": 0, "state": {"running": {}}});
    check(with_init(running_init, "Pending"), "0/1", "Init:0/1", "0");

    let crashing = json!({"name": "init", "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2025-06-01T11:59:00Z"}}});
    check(
        with_init(crashing, "Pending"),
        "0/1",
        "Init:CrashLoopBackOff",
        "4 (60s ago)",
    );

    let failed =
        json!({"name": "init", "restartCount": 0, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}});
    check(with_init(failed, "Failed"), "0/1", "Init:Error", "0");

    let failed_no_reason = json!({"name": "init", "state": {"terminated": {"exitCode": 3}}});
    check(with_init(failed_no_reason, "Pending"), "0/1", "Init:ExitCode:3", "0");

    let waiting_init = json!({"name": "init", "state": {"waiting": {"reason": "PodInitializing"}}});
    check(with_init(waiting_init, "Pending"), "0/1", "Init:0/1", "0");

    let done =
        json!({"name": "init", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
    check(with_init(done, "Pending"), "0/1", "PodInitializing", "0");
}

#[test]
fn sidecar_counts_towards_ready_and_restarts() {
    let p = pod(
        json!({"initContainers": [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]}),
        json!({"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
               "initContainerStatuses": [{"name": "proxy", "ready": true, "started": true, "restartCount": 2,
                   "state": {"running": {}},
                   "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2025-06-01T09:00:00Z"}}}],
               "containerStatuses": [running(true, 1)]}),
    );
    check(p, "2/2", "Running", "3 (3h ago)");
}

#[test]
fn completed_container_beside_a_running_one() {
    let done = json!({"name": "job", "ready": false, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
    let statuses = json!([done, {"name": "app", "ready": true, "state": {"running": {}}}]);
    let spec = json!({"containers": [{"name": "job"}, {"name": "app"}]});
    let not_ready = pod(
        spec.clone(),
        json!({"phase": "Running", "containerStatuses": statuses.clone()}),
    );
    check(not_ready, "1/2", "NotReady", "0");
    let ready = pod(
        spec,
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], "containerStatuses": statuses}),
    );
    check(ready, "1/2", "Running", "0");
}

#[test]
fn readiness_gates() {
    let p = pod(
        json!({"readinessGates": [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}]}),
        json!({"phase": "Running", "conditions": [{"type": "example.com/lb", "status": "True"}, {"type": "example.com/dns", "status": "False"}]}),
    );
    let printed = print_pod(p.as_object().expect("object"), NOW);
    assert_eq!(printed.cells[8], "1/2");
}
