//! The disruption controller (run in-process with the rest of the
//! controller manager) against the real apiserver binary: a
//! PodDisruptionBudget's status follows the pods of a Deployment as it
//! scales (minAvailable as an int, maxUnavailable as a percentage of the
//! Deployment's replicas) and its own spec changes, and `kubectl get pdb`
//! shows the result.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rkube_e2e::cluster::{Backend, TestCluster};
use rkube_e2e::controllers_support::{ControllerManager, FakeKubelet, client, wait_for};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);
const NS: &str = "pdb";

/// `(expectedPods, desiredHealthy, currentHealthy, disruptionsAllowed)`.
type Counts = (i32, i32, i32, i32);

fn counts(pdb: &PodDisruptionBudget) -> Option<Counts> {
    let s = pdb.status.as_ref()?;
    if s.observed_generation != pdb.metadata.generation {
        return None;
    }
    Some((
        s.expected_pods?,
        s.desired_healthy?,
        s.current_healthy?,
        s.disruptions_allowed?,
    ))
}

async fn wait_counts(pdbs: &Api<PodDisruptionBudget>, name: &str, want: Counts) -> PodDisruptionBudget {
    wait_for(&format!("{name} status {want:?}"), WAIT, || async {
        let pdb = pdbs.get(name).await?;
        Ok((counts(&pdb) == Some(want)).then_some(pdb))
    })
    .await
    .unwrap()
}

fn condition(pdb: &PodDisruptionBudget) -> (String, String) {
    let c = pdb
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "DisruptionAllowed"))
        .expect("DisruptionAllowed condition");
    (c.status.clone(), c.reason.clone())
}

async fn scale(client: &Client, replicas: i32) {
    Api::<Deployment>::namespaced(client.clone(), NS)
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdb_status_follows_a_deployment() {
    let c = TestCluster::start(Backend::Embedded).await.expect("cluster starts");
    let client = client(&c).await.unwrap();
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let _cm = ControllerManager::start(&c, |_| {}).unwrap();
    let _kubelet = FakeKubelet::start(&client, NS);

    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "httpd"}]}
            }
        }
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), NS);
    for (name, spec) in [
        (
            "min-two",
            json!({"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}),
        ),
        (
            "max-third",
            json!({"maxUnavailable": "34%", "selector": {"matchLabels": {"app": "web"}}}),
        ),
        (
            "nobody",
            json!({"minAvailable": 1, "selector": {"matchLabels": {"app": "none"}}}),
        ),
    ] {
        let pdb: PodDisruptionBudget =
            serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap();
        pdbs.create(&PostParams::default(), &pdb).await.unwrap();
    }

    let pdb = wait_counts(&pdbs, "min-two", (3, 2, 3, 1)).await;
    assert_eq!(condition(&pdb), ("True".into(), "SufficientPods".into()));
    // 34% of 3 rounds up to 2 unavailable: one must stay healthy.
    wait_counts(&pdbs, "max-third", (3, 1, 3, 2)).await;
    let pdb = wait_counts(&pdbs, "nobody", (0, 1, 0, 0)).await;
    assert_eq!(condition(&pdb), ("False".into(), "InsufficientPods".into()));

    // Scaling the Deployment moves the budgets.
    scale(&client, 5).await;
    wait_counts(&pdbs, "min-two", (5, 2, 5, 3)).await;
    wait_counts(&pdbs, "max-third", (5, 3, 5, 2)).await;
    scale(&client, 2).await;
    wait_counts(&pdbs, "min-two", (2, 2, 2, 0)).await;
    wait_counts(&pdbs, "max-third", (2, 1, 2, 1)).await;

    // Relaxing the budget is seen at once (observedGeneration follows).
    let pdb = pdbs
        .patch(
            "min-two",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"minAvailable": 1}})),
        )
        .await
        .unwrap();
    assert!(pdb.metadata.generation > Some(1));
    let pdb = wait_counts(&pdbs, "min-two", (2, 1, 2, 1)).await;
    assert_eq!(condition(&pdb), ("True".into(), "SufficientPods".into()));

    let out = c.ok(&["get", "pdb", "-n", NS, "min-two"]).unwrap();
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], &["min-two", "1", "N/A", "1"], "{out}");
}
