//! A Deployment sync's requests: a fake API server answers the informers'
//! lists (watches never answer) and the controller's writes, and records
//! every write, so a test can check which requests one sync makes.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::client::Body;
use serde_json::{Value, json};

use super::DeploymentController;
use super::active_pods::ActivePods;
use super::revision::{REVISION, set_deployment_revision};
use crate::cached_pod::CachedPod;
use crate::controllers::owner_index::OwnerIndex;
use crate::informer::SharedInformers;
use crate::queue::{ItemExponentialBackoff, WorkQueue};
use crate::runner::Action;

const DEPLOYMENTS: &str = "/apis/apps/v1/deployments";
const REPLICA_SETS: &str = "/apis/apps/v1/replicasets";
const PODS: &str = "/api/v1/pods";

/// One write the controller made.
#[derive(Debug, Clone)]
struct Write {
    method: String,
    path: String,
    body: Value,
}

/// What the fake API server holds: the lists it serves (by collection
/// path) and the writes it was sent.
struct Fake {
    lists: HashMap<&'static str, Vec<Value>>,
    writes: Vec<Write>,
    resource_version: u64,
}

type Shared = Arc<Mutex<Fake>>;

fn fake(deployment: Value, replica_sets: Vec<Value>) -> Shared {
    Arc::new(Mutex::new(Fake {
        lists: HashMap::from([
            (DEPLOYMENTS, vec![deployment]),
            (REPLICA_SETS, replica_sets),
            (PODS, Vec::new()),
        ]),
        writes: Vec::new(),
        resource_version: 10,
    }))
}

fn not_found() -> (u16, Value) {
    let status = json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
        "reason": "NotFound", "code": 404, "message": "not found"});
    (404, status)
}

/// The answer to one request that is not a watch.
fn respond(fake: &Mutex<Fake>, method: &http::Method, path: &str, mut body: Value) -> (u16, Value) {
    let mut f = fake.lock().unwrap();
    if method == http::Method::GET {
        let Some(items) = f.lists.get(path) else {
            return not_found();
        };
        let kind = match path {
            DEPLOYMENTS => ("apps/v1", "DeploymentList"),
            REPLICA_SETS => ("apps/v1", "ReplicaSetList"),
            _ => ("v1", "PodList"),
        };
        return (
            200,
            json!({"apiVersion": kind.0, "kind": kind.1, "metadata": {"resourceVersion": "1"}, "items": items}),
        );
    }
    f.writes.push(Write {
        method: method.to_string(),
        path: path.to_string(),
        body: body.clone(),
    });
    f.resource_version += 1;
    let rv = f.resource_version.to_string();
    match method.as_str() {
        "POST" if path.ends_with("/replicasets") => {
            body["metadata"]["uid"] = json!(format!("rs-{rv}"));
            body["metadata"]["resourceVersion"] = json!(rv);
            body["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:01Z");
            (201, body)
        }
        "PUT" => {
            body["metadata"]["resourceVersion"] = json!(rv);
            (200, body)
        }
        _ => not_found(),
    }
}

/// A client whose requests `fake` answers.
fn client(fake: Shared) -> kube::Client {
    let service = tower::service_fn(move |req: http::Request<Body>| {
        let fake = fake.clone();
        async move {
            let (parts, body) = req.into_parts();
            if parts.uri.query().is_some_and(|q| q.contains("watch=true")) {
                return futures::future::pending().await;
            }
            let bytes = body.collect_bytes().await.unwrap_or_default();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let (code, answer) = respond(&fake, &parts.method, parts.uri.path(), body);
            let response = http::Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                .unwrap();
            Ok::<_, Infallible>(response)
        }
    });
    kube::Client::new(service, "default")
}

/// A Deployment controller over `fake`, its caches synced.
async fn controller(fake: &Shared) -> Arc<DeploymentController> {
    let client = client(fake.clone());
    let informers = SharedInformers::new(client.clone());
    let c = Arc::new(DeploymentController {
        client,
        deployments: informers.get::<Deployment>(),
        replica_sets: informers.get::<ReplicaSet>(),
        rs_index: OwnerIndex::default(),
        pods: informers.get::<CachedPod>(),
        active_pods: ActivePods::default(),
        queue: WorkQueue::new(ItemExponentialBackoff::default(), |_| {}),
    });
    let synced = async {
        c.deployments.wait_synced().await;
        c.replica_sets.wait_synced().await;
        c.pods.wait_synced().await;
    };
    tokio::time::timeout(Duration::from_secs(10), synced)
        .await
        .expect("the informers list the fake's objects");
    let h = c.clone();
    c.replica_sets.add_handler(move |change| h.on_replica_set(change));
    c
}

/// `web` in `ns` as the apiserver stores it (defaults applied), 10
/// replicas, with these annotations and status.
fn deployment(annotations: Value, status: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns", "uid": "d-uid", "generation": 1, "resourceVersion": "5",
            "creationTimestamp": "2026-01-01T00:00:00Z", "annotations": annotations},
        "spec": {
            "replicas": 10,
            "selector": {"matchLabels": {"app": "web"}},
            "template": template(json!({"app": "web"})),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
        "status": status,
    })
}

fn template(labels: Value) -> Value {
    json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}]}})
}

/// `(method, path)` of each write, and the writes.
fn writes(fake: &Shared) -> (Vec<(String, String)>, Vec<Write>) {
    let w = fake.lock().unwrap().writes.clone();
    (w.iter().map(|w| (w.method.clone(), w.path.clone())).collect(), w)
}

fn calls(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect()
}

/// `(status, reason)` of the condition `type_` in a written Deployment.
fn condition(d: &Value, type_: &str) -> (String, String) {
    let c = d["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {d}"));
    (
        c["status"].as_str().unwrap().to_string(),
        c["reason"].as_str().unwrap().to_string(),
    )
}

const STATUS: &str = "/apis/apps/v1/namespaces/ns/deployments/web/status";

#[tokio::test]
async fn a_new_deployment_is_rolled_out_with_a_create_and_one_status_update() {
    let fake = fake(deployment(json!({}), json!({})), Vec::new());
    let c = controller(&fake).await;
    let action = c.sync("ns/web").await.unwrap();
    let (made, w) = writes(&fake);
    assert_eq!(
        made,
        calls(&[("POST", "/apis/apps/v1/namespaces/ns/replicasets"), ("PUT", STATUS)]),
        "no separate revision patch or condition-only update"
    );
    let rs = &w[0].body;
    assert_eq!(rs["spec"]["replicas"], 10);
    assert_eq!(rs["metadata"]["annotations"][REVISION], "1");
    assert_eq!(rs["metadata"]["ownerReferences"][0]["uid"], "d-uid");
    // The update carries the revision, the Progressing condition of the
    // create and the rollout's status.
    let d = &w[1].body;
    assert_eq!(d["metadata"]["annotations"][REVISION], "1");
    assert_eq!(d["status"]["observedGeneration"], 1);
    assert_eq!(
        condition(d, "Progressing"),
        ("True".to_string(), "NewReplicaSetCreated".to_string())
    );
    assert_eq!(
        condition(d, "Available"),
        ("False".to_string(), "MinimumReplicasUnavailable".to_string())
    );
    assert!(
        matches!(action, Action::RequeueAfter(_)),
        "a progressing Deployment is requeued for its deadline: {action:?}"
    );
}

#[tokio::test]
async fn a_found_replica_set_gives_its_revision_with_the_status_not_a_patch() {
    // The ReplicaSet exists and is complete; the Deployment has neither the
    // revision annotation nor a Progressing condition yet.
    let rs = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web-abc", "namespace": "ns", "uid": "rs-uid", "resourceVersion": "3", "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:01Z",
            "labels": {"app": "web", "pod-template-hash": "abc"},
            "annotations": {REVISION: "1", "deployment.kubernetes.io/desired-replicas": "10",
                "deployment.kubernetes.io/max-replicas": "13"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d-uid",
                "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"replicas": 10, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "abc"}},
            "template": template(json!({"app": "web", "pod-template-hash": "abc"}))},
        "status": {"replicas": 10, "readyReplicas": 10, "availableReplicas": 10, "observedGeneration": 1},
    });
    let fake = fake(deployment(json!({}), json!({})), vec![rs]);
    let c = controller(&fake).await;
    c.sync("ns/web").await.unwrap();
    let (made, w) = writes(&fake);
    assert_eq!(made, calls(&[("PUT", STATUS), ("PUT", STATUS)]));
    assert_eq!(w[0].body["metadata"]["annotations"][REVISION], "1");
    assert_eq!(
        condition(&w[0].body, "Progressing"),
        ("True".to_string(), "FoundNewReplicaSet".to_string())
    );
    let done = &w[1].body;
    assert_eq!(done["metadata"]["annotations"][REVISION], "1");
    assert_eq!(
        condition(done, "Progressing"),
        ("True".to_string(), "NewReplicaSetAvailable".to_string())
    );
    assert_eq!(done["status"]["availableReplicas"], 10);
}

#[test]
fn the_deployment_revision_is_set_only_when_it_changes() {
    let mut d: Deployment = serde_json::from_value(deployment(json!({}), json!({}))).unwrap();
    assert!(!set_deployment_revision(&mut d, ""), "an empty revision is not set");
    assert!(set_deployment_revision(&mut d, "2"));
    assert!(!set_deployment_revision(&mut d, "2"));
    assert!(set_deployment_revision(&mut d, "3"));
    let annotations = d.metadata.annotations.unwrap();
    assert_eq!(annotations.get(REVISION).map(String::as_str), Some("3"));
}
