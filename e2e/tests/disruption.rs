//! The disruption controller (run in-process with the rest of the
//! controller manager) against the real apiserver binary: a
//! PodDisruptionBudget's status follows the pods of a Deployment as it
//! scales (minAvailable as an int, maxUnavailable as a percentage of the
//! Deployment's replicas) and its own spec changes, and `kubectl get pdb`
//! shows the result. With the scheduler and simulated nodes, the eviction
//! subresource takes a disruption the budget allows, refuses the next
//! with upstream's 429, and `kubectl drain` evicts a node's pods without
//! ever going below the budget.
//!
//! A refused eviction is a 429 without `Retry-After`, which kube-rs's
//! default client retries 15 times with exponential back-off (several
//! minutes); the evictions here go through a client without retries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, EvictParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use rkube_e2e::controllers_support::{
    Controllers, Env, EnvOptions, FakeKubelet, PodCountWatch, client_without_retries, is_ready, sim_nodes, wait_for,
};
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

async fn create_deployment(client: &Client, replicas: i32) {
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
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
}

async fn create_pdb(pdbs: &Api<PodDisruptionBudget>, name: &str, spec: serde_json::Value) {
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap();
    pdbs.create(&PostParams::default(), &pdb).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdb_status_follows_a_deployment() {
    let e = Env::start(EnvOptions {
        namespace: Some(NS.into()),
        controllers: Controllers::InProcess,
        ..EnvOptions::default()
    })
    .await
    .expect("environment starts");
    let (c, client) = (&e.cluster, &e.client);
    let _kubelet = FakeKubelet::start(client, NS);
    create_deployment(client, 3).await;
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
        create_pdb(&pdbs, name, spec).await;
    }

    let pdb = wait_counts(&pdbs, "min-two", (3, 2, 3, 1)).await;
    assert_eq!(condition(&pdb), ("True".into(), "SufficientPods".into()));
    // 34% of 3 rounds up to 2 unavailable: one must stay healthy.
    wait_counts(&pdbs, "max-third", (3, 1, 3, 2)).await;
    let pdb = wait_counts(&pdbs, "nobody", (0, 1, 0, 0)).await;
    assert_eq!(condition(&pdb), ("False".into(), "InsufficientPods".into()));

    // Scaling the Deployment moves the budgets.
    scale(client, 5).await;
    wait_counts(&pdbs, "min-two", (5, 2, 5, 3)).await;
    wait_counts(&pdbs, "max-third", (5, 3, 5, 2)).await;
    scale(client, 2).await;
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

fn node_of(p: &Pod) -> &str {
    p.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("")
}

/// The Deployment's Ready pods that are not being deleted.
async fn ready_pods(pods: &Api<Pod>) -> anyhow::Result<Vec<Pod>> {
    Ok(pods
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && is_ready(p))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_respect_the_budget_and_kubectl_drain_waits_for_it() {
    let e = Env::start(EnvOptions {
        namespace: Some(NS.into()),
        nodes: vec![sim_nodes("node-", 2)],
        scheduler: true,
        controllers: Controllers::InProcess,
        ..EnvOptions::default()
    })
    .await
    .expect("environment starts");
    let (c, client) = (&e.cluster, &e.client);
    // Every pod on node-0: node-1 takes none yet.
    c.ok(&["cordon", "node-1"]).unwrap();
    create_deployment(client, 3).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let running = wait_for("3 ready pods on node-0", WAIT, || async {
        let r = ready_pods(&pods).await?;
        Ok((r.len() == 3 && r.iter().all(|p| node_of(p) == "node-0")).then_some(r))
    })
    .await
    .unwrap();
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), NS);
    create_pdb(
        &pdbs,
        "min-two",
        json!({"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}),
    )
    .await;
    wait_counts(&pdbs, "min-two", (3, 2, 3, 1)).await;
    // No node takes the replacements now, so the budget stays spent.
    c.ok(&["cordon", "node-0"]).unwrap();

    let evictor: Api<Pod> = Api::namespaced(client_without_retries(c).await.unwrap(), NS);
    let (first, second) = (running[0].name_any(), running[1].name_any());
    let done = evictor.evict(&first, &EvictParams::default()).await.unwrap();
    assert_eq!(done.code, 201, "{done:?}");
    let refused = match evictor.evict(&second, &EvictParams::default()).await {
        Err(kube::Error::Api(status)) => status,
        other => panic!("the second eviction should be refused: {other:?}"),
    };
    assert_eq!((refused.code, refused.reason.as_str()), (429, "TooManyRequests"));
    assert_eq!(
        refused.message,
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    let details = refused.details.expect("details");
    assert_eq!(details.retry_after_seconds, 0, "no Retry-After for a spent budget");
    let cause = &details.causes[0];
    assert_eq!(cause.reason, "DisruptionBudget");
    assert!(
        cause
            .message
            .starts_with("The disruption budget min-two needs 2 healthy pods and has "),
        "{}",
        cause.message
    );
    assert!(pods.get(&second).await.unwrap().metadata.deletion_timestamp.is_none());
    // The evicted pod goes; its replacement cannot run: 2 healthy, 0 allowed.
    wait_for("the evicted pod gone", WAIT, || async {
        Ok(pods.get_opt(&first).await?.is_none().then_some(()))
    })
    .await
    .unwrap();
    wait_counts(&pdbs, "min-two", (3, 2, 2, 0)).await;

    // Drain node-0 once node-1 takes pods again: kubectl evicts both pods
    // left there at once, the budget lets one go and refuses the other
    // (kubectl retries it every 5 s) until its replacement is Ready on
    // node-1; the Ready pods never drop below 2.
    c.ok(&["uncordon", "node-1"]).unwrap();
    wait_counts(&pdbs, "min-two", (3, 2, 3, 1)).await;
    let ready = PodCountWatch::ready(client, NS).await;
    let out = tokio::task::block_in_place(|| c.kubectl(&["drain", "node-0", "--ignore-daemonsets", "--timeout=120s"]));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "drain failed:\n{stdout}{stderr}");
    assert!(stdout.contains("node/node-0 drained"), "{stdout}");
    assert!(
        stderr.contains("(will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget."),
        "{stderr}"
    );
    assert!(ready.min() >= 2, "{} Ready pods during the drain", ready.min());
    let after = wait_for("3 ready pods on node-1", WAIT, || async {
        let r = ready_pods(&pods).await?;
        Ok((r.len() == 3).then_some(r))
    })
    .await
    .unwrap();
    assert!(after.iter().all(|p| node_of(p) == "node-1"));
}
