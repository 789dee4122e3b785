use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;

const NOW: OffsetDateTime = datetime!(2025-06-01 12:00:00 UTC);

fn check(printer: &Printer, obj: Value, expected: Value) {
    let printed = (printer.print)(obj.as_object().expect("object"), NOW);
    assert_eq!(Value::Array(printed.cells), expected, "{obj}");
}

fn template() -> Value {
    json!({"metadata": {"labels": {"app": "web"}},
           "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}, {"name": "sidecar", "image": "busybox"}]}})
}

#[test]
fn deployment() {
    check(
        &DEPLOYMENTS,
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2025-05-31T08:30:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template()},
            "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2}}),
        json!([
            "web",
            "2/3",
            3,
            2,
            "27h",
            "nginx,sidecar",
            "nginx:1.27,busybox",
            "app=web"
        ]),
    );
    // A fresh deployment: no status yet, replicas defaulted, no selector.
    check(
        &DEPLOYMENTS,
        json!({"metadata": {"name": "new", "creationTimestamp": "2025-06-01T11:59:58Z"}, "spec": {"template": {"spec": {}}}}),
        json!(["new", "0/1", 0, 0, "2s", "", "", ""]),
    );
}

#[test]
fn replica_sets_and_controllers() {
    let rs = json!({"metadata": {"name": "web-7d4b9", "creationTimestamp": "2025-06-01T11:00:00Z"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "7d4b9"}}, "template": template()},
        "status": {"replicas": 2, "readyReplicas": 1}});
    check(
        &REPLICA_SETS,
        rs,
        json!([
            "web-7d4b9",
            2,
            2,
            1,
            "60m",
            "nginx,sidecar",
            "nginx:1.27,busybox",
            "app=web,pod-template-hash=7d4b9"
        ]),
    );
    let rc = json!({"metadata": {"name": "old"}, "spec": {"replicas": 0, "selector": {"app": "old"}}});
    check(
        &REPLICATION_CONTROLLERS,
        rc,
        json!(["old", 0, 0, 0, "<unknown>", "", "", "app=old"]),
    );
}

#[test]
fn stateful_and_daemon_sets() {
    let sts = json!({"metadata": {"name": "db", "creationTimestamp": "2025-05-25T12:00:00Z"},
        "spec": {"replicas": 3, "template": template()}, "status": {"readyReplicas": 3}});
    check(
        &STATEFUL_SETS,
        sts,
        json!(["db", "3/3", "7d", "nginx,sidecar", "nginx:1.27,busybox"]),
    );
    let ds = json!({"metadata": {"name": "kube-proxy", "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": {"selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
                 "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [{"name": "kube-proxy", "image": "kube-proxy:v1.36.0"}]}}},
        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2}});
    check(
        &DAEMON_SETS,
        ds,
        json!([
            "kube-proxy",
            3,
            3,
            2,
            3,
            2,
            "kubernetes.io/os=linux",
            "151d",
            "kube-proxy",
            "kube-proxy:v1.36.0",
            "k8s-app=kube-proxy"
        ]),
    );
}

#[test]
fn jobs() {
    let job = |spec: Value, status: Value| {
        json!({"metadata": {"name": "pi", "creationTimestamp": "2025-06-01T11:50:00Z"},
               "spec": spec, "status": status})
    };
    check(
        &JOBS,
        job(
            json!({"completions": 1, "parallelism": 1, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
                   "template": {"spec": {"containers": [{"name": "pi", "image": "perl:5"}]}}}),
            json!({"succeeded": 1, "startTime": "2025-06-01T11:50:00Z", "completionTime": "2025-06-01T11:50:42Z",
                   "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}),
        ),
        json!([
            "pi",
            "Complete",
            "1/1",
            "42s",
            "10m",
            "pi",
            "perl:5",
            "batch.kubernetes.io/controller-uid=u1"
        ]),
    );
    let running = job(
        json!({"parallelism": 3}),
        json!({"active": 3, "startTime": "2025-06-01T11:55:00Z"}),
    );
    check(
        &JOBS,
        running,
        json!(["pi", "Running", "0/1 of 3", "5m", "10m", "", "", "<none>"]),
    );
    let defaulted = job(json!({}), json!({}));
    check(
        &JOBS,
        defaulted,
        json!(["pi", "Running", "0/1", "", "10m", "", "", "<none>"]),
    );
    let failed = job(
        json!({"completions": 5}),
        json!({"succeeded": 2, "conditions": [{"type": "Failed", "status": "True"}]}),
    );
    check(
        &JOBS,
        failed,
        json!(["pi", "Failed", "2/5", "", "10m", "", "", "<none>"]),
    );
    let suspended = job(
        json!({"completions": 1, "suspend": true}),
        json!({"conditions": [{"type": "Suspended", "status": "True"}]}),
    );
    check(
        &JOBS,
        suspended,
        json!(["pi", "Suspended", "0/1", "", "10m", "", "", "<none>"]),
    );
    let mut terminating = job(json!({"completions": 1}), json!({}));
    terminating["metadata"]["deletionTimestamp"] = json!("2025-06-01T11:59:00Z");
    check(
        &JOBS,
        terminating,
        json!(["pi", "Terminating", "0/1", "", "10m", "", "", "<none>"]),
    );
}

#[test]
fn cron_job() {
    let cj = json!({"metadata": {"name": "backup", "creationTimestamp": "2025-05-01T00:00:00Z"},
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "backup:1"}]}}}}},
        "status": {"active": [{"name": "backup-1"}], "lastScheduleTime": "2025-06-01T11:55:00Z"}});
    check(
        &CRON_JOBS,
        cj,
        json!([
            "backup",
            "*/5 * * * *",
            "<none>",
            "False",
            1,
            "5m",
            "31d",
            "b",
            "backup:1",
            "<none>"
        ]),
    );
    let never =
        json!({"metadata": {"name": "n"}, "spec": {"schedule": "@daily", "timeZone": "Etc/UTC", "suspend": true}});
    check(
        &CRON_JOBS,
        never,
        json!([
            "n",
            "@daily",
            "Etc/UTC",
            "True",
            0,
            "<none>",
            "<unknown>",
            "",
            "",
            "<none>"
        ]),
    );
}

#[test]
fn pod_template_revision_and_budget() {
    let pt = json!({"metadata": {"name": "tpl"}, "template": template()});
    check(
        &POD_TEMPLATES,
        pt,
        json!(["tpl", "nginx,sidecar", "nginx:1.27,busybox", "app=web"]),
    );
    let cr = json!({"metadata": {"name": "db-5c6f", "creationTimestamp": "2025-06-01T11:00:00Z",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "controller": true}]}, "revision": 2});
    check(
        &CONTROLLER_REVISIONS,
        cr,
        json!(["db-5c6f", "statefulset.apps/db", 2, "60m"]),
    );
    let orphan = json!({"metadata": {"name": "x"}, "revision": 1});
    check(&CONTROLLER_REVISIONS, orphan, json!(["x", "<none>", 1, "<unknown>"]));
    let pdb =
        json!({"metadata": {"name": "web"}, "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
    check(
        &POD_DISRUPTION_BUDGETS,
        pdb,
        json!(["web", "50%", "N/A", 1, "<unknown>"]),
    );
    let pdb = json!({"metadata": {"name": "db"}, "spec": {"maxUnavailable": 1}});
    check(&POD_DISRUPTION_BUDGETS, pdb, json!(["db", "N/A", "1", 0, "<unknown>"]));
}
