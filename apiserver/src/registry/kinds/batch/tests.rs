#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use serde_json::json;

use crate::testing::TestServer;

const JOBS: &str = "/apis/batch/v1/namespaces/default/jobs";
const CRONJOBS: &str = "/apis/batch/v1/namespaces/default/cronjobs";

fn pod_template(restart: &str) -> serde_json::Value {
    json!({"spec": {"restartPolicy": restart, "containers": [{"name": "c", "image": "busybox"}]}})
}

#[tokio::test]
async fn job_generated_selector_defaults_and_updates() {
    let server = TestServer::new().await;
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
                     "spec": {"template": pod_template("Never")}});
    let (code, created) = server.post(JOBS, job).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let uid = created["metadata"]["uid"].as_str().unwrap().to_string();
    let (_, got) = server.get(&format!("{JOBS}/j")).await;
    let spec = &got["spec"];
    assert_eq!(
        spec["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    );
    let labels = json!({"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": "j",
                        "controller-uid": uid, "job-name": "j"});
    assert_eq!(spec["template"]["metadata"]["labels"], labels);
    assert_eq!(got["metadata"]["labels"], labels);
    for (k, v) in [
        ("parallelism", json!(1)),
        ("completions", json!(1)),
        ("backoffLimit", json!(6)),
        ("completionMode", json!("NonIndexed")),
        ("suspend", json!(false)),
        ("manualSelector", json!(false)),
        ("podReplacementPolicy", json!("TerminatingOrFailed")),
    ] {
        assert_eq!(spec[k], v, "{k}");
    }

    // The template is immutable...
    let mut changed = got.clone();
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("busybox:2");
    let (code, status) = server.put(&format!("{JOBS}/j"), changed).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(status["details"]["causes"][0]["field"], "spec.template");
    // ...and so are completions.
    let mut changed = got.clone();
    changed["spec"]["completions"] = json!(3);
    let (code, status) = server.put(&format!("{JOBS}/j"), changed).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(status["details"]["causes"][0]["field"], "spec.completions");

    // A suspended job may change its scheduling directives.
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "s"},
                     "spec": {"suspend": true, "template": pod_template("OnFailure")}});
    let (code, created) = server.post(JOBS, job).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let mut changed = created.clone();
    changed["spec"]["template"]["spec"]["nodeSelector"] = json!({"zone": "a"});
    let (code, status) = server.put(&format!("{JOBS}/s"), changed).await;
    assert_eq!(code, StatusCode::OK, "{status}");

    // restartPolicy must be OnFailure or Never.
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "a"},
                     "spec": {"template": pod_template("Always")}});
    let (code, status) = server.post(JOBS, job).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        status["details"]["causes"][0]["field"],
        "spec.template.spec.restartPolicy"
    );
    assert_eq!(
        status["details"]["causes"][0]["message"],
        "Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
    );

    // A manual selector is kept and must match.
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "m"},
                     "spec": {"manualSelector": true, "selector": {"matchLabels": {"a": "b"}},
                              "template": pod_template("Never")}});
    let (code, status) = server.post(JOBS, job).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(status["details"]["causes"][0]["field"], "spec.template.metadata.labels");
}

#[tokio::test]
async fn cronjob_schedule_and_defaults() {
    let server = TestServer::new().await;
    let cj = |name: &str, schedule: &str| {
        json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
               "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": pod_template("OnFailure")}}}})
    };
    let (code, created) = server.post(CRONJOBS, cj("ok", "*/5 * * * *")).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let spec = &created["spec"];
    assert_eq!(spec["concurrencyPolicy"], "Allow");
    assert_eq!(spec["suspend"], false);
    assert_eq!(spec["successfulJobsHistoryLimit"], 3);
    assert_eq!(spec["failedJobsHistoryLimit"], 1);
    assert!(spec["jobTemplate"]["spec"].get("parallelism").is_none());
    assert_eq!(
        spec["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
        "ClusterFirst"
    );

    let (code, status) = server.post(CRONJOBS, cj("bad", "61 * * * *")).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        status["details"]["causes"][0],
        json!({"reason": "FieldValueInvalid", "field": "spec.schedule",
               "message": "Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61"})
    );
    let (code, status) = server.post(CRONJOBS, cj("tz", "TZ=UTC 0 * * * *")).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        status["details"]["causes"][0]["message"],
        "Invalid value: \"TZ=UTC 0 * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
    );
    let long = "a".repeat(53);
    let (code, status) = server.post(CRONJOBS, cj(&long, "@hourly")).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        status["details"]["causes"][0]["message"]
            .as_str()
            .unwrap()
            .ends_with("must be no more than 52 characters"),
        "{status}"
    );
    let mut withsel = cj("sel", "@daily");
    withsel["spec"]["jobTemplate"]["spec"]["selector"] = json!({"matchLabels": {"a": "b"}});
    withsel["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
    let (code, status) = server.post(CRONJOBS, withsel).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = status["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "spec.jobTemplate.spec.template.spec.restartPolicy",
            "spec.jobTemplate.spec.selector"
        ]
    );
}
