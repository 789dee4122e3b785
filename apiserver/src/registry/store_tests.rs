//! HTTP-level tests of the generic store's create and update rules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use serde_json::json;

use crate::testing::TestServer;

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";

fn deployment(name: &str) -> serde_json::Value {
    json!({"metadata": {"name": name}, "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})
}

/// A PUT that leaves out fields the server defaults is not a spec change.
#[tokio::test]
async fn leaving_out_defaults_keeps_the_generation() {
    let s = TestServer::new().await;
    let (code, created) = s.post(DEPLOYMENTS, deployment("d")).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(created["metadata"]["generation"], 1);
    let mut body = deployment("d");
    body["metadata"]["labels"] = json!({"new": "label"});
    let (code, updated) = s.put(&format!("{DEPLOYMENTS}/d"), body).await;
    assert_eq!(code, StatusCode::OK, "{updated}");
    assert_eq!(updated["metadata"]["generation"], 1, "{updated}");
    assert_eq!(updated["spec"]["replicas"], 1);
    // A real spec change bumps it once.
    let mut body = deployment("d");
    body["spec"]["replicas"] = json!(3);
    let (_, updated) = s.put(&format!("{DEPLOYMENTS}/d"), body).await;
    assert_eq!(updated["metadata"]["generation"], 2);
}

/// The generated name is chosen before the strategy runs: a Job's labels
/// carry it.
#[tokio::test]
async fn generated_names_are_chosen_before_the_strategy() {
    let s = TestServer::new().await;
    let (code, job) = s
        .post(
            "/apis/batch/v1/namespaces/default/jobs",
            json!({"metadata": {"generateName": "run-"}, "spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{job}");
    let name = job["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("run-") && name.len() == 9, "{name}");
    assert_eq!(job["spec"]["template"]["metadata"]["labels"]["job-name"], name);
    assert_eq!(job["metadata"]["labels"]["job-name"], name);
}

/// A kubelet registers its node with status; other kinds drop it.
#[tokio::test]
async fn nodes_keep_status_on_create() {
    let s = TestServer::new().await;
    let (code, node) = s
        .post(
            "/api/v1/nodes",
            json!({"metadata": {"name": "n1"}, "status": {"capacity": {"cpu": "2"}, "conditions": [
                {"type": "Ready", "status": "True"}]}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{node}");
    assert_eq!(node["status"]["capacity"]["cpu"], "2");
    let (code, cm) = s
        .post(
            "/apis/apps/v1/namespaces/default/deployments",
            json!({"metadata": {"name": "x"}, "spec": deployment("x")["spec"], "status": {"replicas": 9}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{cm}");
    assert!(cm["status"].get("replicas").is_none_or(|r| r != 9), "{cm}");
}

/// Status updates may change annotations (a Deployment's revision) without
/// bumping the generation; apps workloads keep their labels.
#[tokio::test]
async fn status_updates_carry_annotations() {
    let s = TestServer::new().await;
    let (_, created) = s.post(DEPLOYMENTS, deployment("st")).await;
    let mut body = created.clone();
    body["metadata"]["annotations"] = json!({"deployment.kubernetes.io/revision": "1"});
    body["metadata"]["labels"] = json!({"changed": "yes"});
    body["spec"]["replicas"] = json!(7);
    body["status"] = json!({"replicas": 1, "observedGeneration": 1});
    let (code, updated) = s.put(&format!("{DEPLOYMENTS}/st/status"), body).await;
    assert_eq!(code, StatusCode::OK, "{updated}");
    assert_eq!(
        updated["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    assert!(updated["metadata"].get("labels").is_none(), "{updated}");
    assert_eq!(updated["spec"]["replicas"], 1);
    assert_eq!(updated["status"]["replicas"], 1);
    assert_eq!(updated["metadata"]["generation"], 1);
}

/// Counts its mutating calls and records the stored objects' `data` it
/// was shown; on the first, another writer changes the object so the
/// attempt conflicts.
struct LabelOnAdmit {
    store: std::sync::Arc<super::GenericStore>,
    calls: std::sync::atomic::AtomicUsize,
    olds: std::sync::Mutex<Vec<serde_json::Value>>,
}

impl super::WriteAdmission for LabelOnAdmit {
    fn validate<'a>(
        &'a self,
        _new: &'a super::Object,
        _old: Option<&'a super::Object>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), crate::status::ApiError>> + Send + 'a>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn admit<'a>(
        &'a self,
        new: &'a mut super::Object,
        old: &'a super::Object,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), crate::status::ApiError>> + Send + 'a>> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let old_data = old.get("data").cloned().unwrap_or_default();
            self.olds.lock().unwrap().push(old_data);
            if n == 0 {
                let mut other = old.clone();
                other.insert("data".into(), json!({"other": "writer"}));
                self.store
                    .update("default", "cm", other, &super::UpdateOptions::default())
                    .await?;
            }
            let labels = json!({"admitted": n.to_string()});
            crate::registry::object::set_meta(new, "labels", Some(labels));
            Ok(())
        })
    }
}

/// The mutating phase of an update runs on each attempt's object: after a
/// conflict it is applied again on top of the other writer's change.
#[tokio::test]
async fn mutating_admission_is_reapplied_after_a_conflict() {
    let s = TestServer::new().await;
    let (code, _) = s
        .post(
            "/api/v1/namespaces/default/configmaps",
            json!({"metadata": {"name": "cm"}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    let store = s.registry().store("", "configmaps").unwrap();
    let admission = LabelOnAdmit {
        store: store.clone(),
        calls: Default::default(),
        olds: Default::default(),
    };
    let updated = store
        .update_with_admitted(
            "default",
            "cm",
            &super::UpdateOptions::default(),
            |old| {
                let mut new = old.clone();
                crate::registry::object::set_meta(&mut new, "annotations", Some(json!({"patched": "yes"})));
                Ok(new)
            },
            None,
            Some(&admission),
        )
        .await
        .unwrap();
    assert_eq!(admission.calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    let meta = &updated["metadata"];
    assert_eq!(meta["labels"], json!({"admitted": "1"}), "{updated:?}");
    assert_eq!(meta["annotations"], json!({"patched": "yes"}));
    assert_eq!(updated["data"], json!({"other": "writer"}));
}

/// A PUT's mutating admission runs in the retry loop too: it sees the
/// stored object as the old one, and after a conflict runs again on a
/// fresh copy of the request body against the other writer's object.
#[tokio::test]
async fn put_runs_mutating_admission_against_each_stored_object() {
    let s = TestServer::new().await;
    let (code, _) = s
        .post(
            "/api/v1/namespaces/default/configmaps",
            json!({"metadata": {"name": "cm"}, "data": {"first": "1"}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    let store = s.registry().store("", "configmaps").unwrap();
    let admission = LabelOnAdmit {
        store: store.clone(),
        calls: Default::default(),
        olds: Default::default(),
    };
    let body = json!({"metadata": {"name": "cm"}, "data": {"mine": "x"}});
    let updated = store
        .update_admitted(
            "default",
            "cm",
            body.as_object().unwrap().clone(),
            &super::UpdateOptions::default(),
            Some(&admission),
        )
        .await
        .unwrap();
    assert_eq!(
        *admission.olds.lock().unwrap(),
        [json!({"first": "1"}), json!({"other": "writer"})]
    );
    assert_eq!(updated["metadata"]["labels"], json!({"admitted": "1"}), "{updated:?}");
    assert_eq!(updated["data"], json!({"mine": "x"}));

    // With a resourceVersion the conflict is the client's: no second call.
    let admission = LabelOnAdmit {
        store: store.clone(),
        calls: Default::default(),
        olds: Default::default(),
    };
    let mut body = body.as_object().unwrap().clone();
    let rv = updated["metadata"]["resourceVersion"].clone();
    crate::registry::object::set_meta(&mut body, "resourceVersion", Some(rv));
    let err = store
        .update_admitted(
            "default",
            "cm",
            body,
            &super::UpdateOptions::default(),
            Some(&admission),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, 409, "{err:?}");
    assert_eq!(admission.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}
