//! Node lifecycle end to end: the real apiserver (with the
//! TaintNodesByCondition admission plugin on) and controller-manager
//! binaries, the scheduler, and simulated nodes.
//! - new nodes lose the admission's `not-ready:NoSchedule` taint once
//!   Ready, and the node IPAM controller gives a node without `podCIDRs`
//!   the next free CIDR of `--cluster-cidr` (those simulated nodes carry
//!   are recovered, never reused);
//! - a node whose heartbeats stop becomes Ready=Unknown
//!   (`NodeStatusUnknown`) after the grace period, is tainted
//!   `unreachable` NoExecute and NoSchedule, its pods are marked not Ready,
//!   pods tolerating the taint for 3 s are evicted and recreated on other
//!   nodes by their ReplicaSet, a pod tolerating it forever stays; when
//!   the heartbeats resume the taints go away.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use rkube_e2e::controllers_support::{Controllers, Env, EnvOptions, wait_for};
use rkube_e2e::simnodes::SimConfig;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(40);
const NS: &str = "apps";

fn parse<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

fn taint_keys(n: &Node) -> Vec<String> {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .map(|t| format!("{}:{}", t.key, t.effect))
        .collect()
}

fn ready(n: &Node) -> Option<(String, String)> {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
}

fn node_of(p: &Pod) -> String {
    p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default()
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

const UNREACHABLE_EXECUTE: &str = "node.kubernetes.io/unreachable:NoExecute";
const UNREACHABLE_SCHEDULE: &str = "node.kubernetes.io/unreachable:NoSchedule";
const NOT_READY_SCHEDULE: &str = "node.kubernetes.io/not-ready:NoSchedule";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_node_is_tainted_and_its_pods_move_elsewhere() {
    // TaintNodesByCondition stays on: the controller must lift its taint.
    let env = Env::start(EnvOptions {
        apiserver_args: Some(vec!["--disable-admission-plugins=ServiceAccount".into()]),
        namespace: Some(NS.into()),
        nodes: vec![SimConfig {
            count: 3,
            name_prefix: "node-".into(),
            lease_interval: Duration::from_secs(1),
            status_interval: Duration::from_secs(2),
            ..SimConfig::default()
        }],
        scheduler: true,
        controllers: Controllers::Binary(
            [
                "--node-monitor-period=1s",
                "--node-monitor-grace-period=6s",
                "--allocate-node-cidrs=true",
                "--cluster-cidr=10.64.0.0/16",
            ]
            .map(String::from)
            .to_vec(),
        ),
    })
    .await
    .expect("environment starts");
    let client = env.client.clone();
    let sims = &env.sims[0];
    let nodes: Api<Node> = Api::all(client.clone());

    // The admission plugin's not-ready taint is lifted from Ready nodes.
    wait_for("not-ready:NoSchedule lifted from every node", WAIT, || async {
        let l = nodes.list(&ListParams::default()).await?.items;
        Ok((l.len() == 3
            && l.iter()
                .all(|n| !taint_keys(n).contains(&NOT_READY_SCHEDULE.to_string())))
        .then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\ncontroller-manager log:\n{}", env.controllers_log()));

    // Node IPAM: a node without podCIDRs gets the first CIDR no simulated
    // node holds (they hold 10.64.0-2.0/24).
    let bare: Node = parse(json!({"metadata": {"name": "bare"}}));
    nodes.create(&PostParams::default(), &bare).await.unwrap();
    let cidrs = wait_for("podCIDRs of the bare node", WAIT, || async {
        let n = nodes.get("bare").await?;
        Ok(n.spec.and_then(|s| s.pod_cidrs).filter(|c| !c.is_empty()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\ncontroller-manager log:\n{}", env.controllers_log()));
    assert_eq!(cidrs, ["10.64.3.0/24"]);
    assert_eq!(
        nodes.get("bare").await.unwrap().spec.unwrap().pod_cidr.as_deref(),
        Some("10.64.3.0/24")
    );
    // A node that never posts status is Unknown after the startup grace
    // (60 s); it is deleted here so it cannot take pods.
    nodes.delete("bare", &DeleteParams::default()).await.unwrap();

    // Pods tolerating the unreachable taint for 3 s, and one pinned to the
    // node that tolerates it forever.
    let d: Deployment = parse(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                     "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                     "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                         "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": "web"}}}],
                     "tolerations": [
                         {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 3},
                         {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 3}]}}},
    }));
    Api::<Deployment>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let web = ListParams::default().labels("app=web");
    let running = wait_for("3 ready web pods", WAIT, || async {
        let l = pods.list(&web).await?.items;
        Ok((l.len() == 3 && l.iter().all(pod_ready)).then_some(l))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\ncontroller-manager log:\n{}", env.controllers_log()));
    let victim = node_of(&running[0]);
    let doomed: Vec<String> = running
        .iter()
        .filter(|p| node_of(p) == victim)
        .map(|p| p.name_any())
        .collect();
    let stayer: Pod = parse(json!({
        "metadata": {"name": "stayer"},
        "spec": {"nodeName": victim, "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                 "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
                                 {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}]},
    }));
    pods.create(&PostParams::default(), &stayer).await.unwrap();
    wait_for("the pinned pod ready", WAIT, || async {
        Ok(pod_ready(&pods.get("stayer").await?).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\ncontroller-manager log:\n{}", env.controllers_log()));

    // Stop the node's heartbeats.
    sims.set_down(&victim, true);
    let n = wait_for("node Unknown and tainted unreachable", WAIT, || async {
        let n = nodes.get(&victim).await?;
        let keys = taint_keys(&n);
        Ok((ready(&n) == Some(("Unknown".into(), "NodeStatusUnknown".into()))
            && keys.contains(&UNREACHABLE_EXECUTE.to_string())
            && keys.contains(&UNREACHABLE_SCHEDULE.to_string()))
        .then_some(n))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\ncontroller-manager log:\n{}", env.controllers_log()));
    let msg = n
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap()
        .message;
    assert_eq!(msg.as_deref(), Some("Kubelet stopped posting node status."));
    wait_for("the pinned pod marked not ready", WAIT, || async {
        Ok((!pod_ready(&pods.get("stayer").await?)).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\ncontroller-manager log:\n{}", env.controllers_log()));

    // The deployment's pods there are evicted and replaced elsewhere.
    wait_for("3 ready web pods, none on the failed node", WAIT, || async {
        let l = pods.list(&web).await?.items;
        let live: Vec<&Pod> = l.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect();
        let evicted_gone = doomed.iter().all(|d| {
            l.iter()
                .find(|p| &p.name_any() == d)
                .is_none_or(|p| p.metadata.deletion_timestamp.is_some())
        });
        Ok(
            (evicted_gone && live.len() == 3 && live.iter().all(|p| pod_ready(p) && node_of(p) != victim))
                .then_some(()),
        )
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\ncontroller-manager log:\n{}", env.controllers_log()));
    let evicted = doomed[0].clone();
    if let Some(p) = pods.get_opt(&evicted).await.unwrap() {
        let disrupted = p
            .status
            .and_then(|s| s.conditions)
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "DisruptionTarget" && c.reason.as_deref() == Some("DeletionByTaintManager"));
        assert!(disrupted, "evicted pod {evicted} lacks the DisruptionTarget condition");
    }
    // The pod tolerating the taint forever is still there.
    let stayer = pods.get("stayer").await.unwrap();
    assert!(stayer.metadata.deletion_timestamp.is_none());

    // Heartbeats resume: Ready again and the taints are gone.
    sims.set_down(&victim, false);
    wait_for("node Ready and untainted", WAIT, || async {
        let n = nodes.get(&victim).await?;
        let keys = taint_keys(&n);
        Ok(
            (ready(&n).is_some_and(|(s, _)| s == "True") && !keys.iter().any(|k| k.contains("unreachable")))
                .then_some(()),
        )
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\ncontroller-manager log:\n{}", env.controllers_log()));
}
