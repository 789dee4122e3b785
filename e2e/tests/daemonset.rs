//! The DaemonSet controller against the real apiserver binary, with the
//! scheduler and controller manager in-process and simulated nodes: one
//! pod per node (pinned by node affinity, with the daemon tolerations),
//! none on a node whose taint it does not tolerate, a pod for a node that
//! joins later, and a rolling update to a new template.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use rkube_e2e::controllers_support::{Controllers, Env, EnvOptions, wait_for};
use rkube_e2e::simnodes::{SimConfig, SimNodes, parse_taint};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);
const NS: &str = "ds";

fn sim(prefix: &str, first_index: usize, count: usize) -> SimConfig {
    SimConfig {
        count,
        name_prefix: prefix.into(),
        first_index,
        lease_interval: Duration::from_secs(5),
        ..SimConfig::default()
    }
}

/// `node -> pod image` of the DaemonSet's running, ready pods not being
/// deleted.
async fn ready_pods(pods: &Api<Pod>) -> anyhow::Result<Vec<(String, String, Pod)>> {
    let mut out = Vec::new();
    for p in pods.list(&ListParams::default()).await?.items {
        let ready = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if !ready || p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let spec = p.spec.clone().unwrap_or_default();
        let node = spec.node_name.clone().unwrap_or_default();
        let image = spec.containers[0].image.clone().unwrap_or_default();
        out.push((node, image, p));
    }
    Ok(out)
}

async fn status_of(sets: &Api<DaemonSet>) -> anyhow::Result<DaemonSetStatus> {
    Ok(sets.get("agent").await?.status.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pod_per_node_new_nodes_and_rolling_update() {
    // Three nodes and one with a taint the DaemonSet does not tolerate.
    let mut tainted = sim("tainted-", 10, 1);
    tainted.taints.push(parse_taint("dedicated=db:NoSchedule").unwrap());
    let mut e = Env::start(EnvOptions {
        namespace: Some(NS.into()),
        nodes: vec![sim("node-", 0, 3), tainted],
        scheduler: true,
        controllers: Controllers::InProcess,
        ..EnvOptions::default()
    })
    .await
    .expect("environment starts");
    let client = e.client.clone();

    let sets: Api<DaemonSet> = Api::namespaced(client.clone(), NS);
    let ds: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {"metadata": {"labels": {"app": "agent"}},
                         "spec": {"containers": [{"name": "c", "image": "agent:1"}]}},
        },
    }))
    .unwrap();
    sets.create(&PostParams::default(), &ds).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let nodes_of = |v: &[(String, String, Pod)]| v.iter().map(|(n, _, _)| n.clone()).collect::<BTreeSet<_>>();
    let running = wait_for("a pod on each of 3 nodes", WAIT, || async {
        let r = ready_pods(&pods).await?;
        Ok((r.len() == 3 && nodes_of(&r).len() == 3).then_some(r))
    })
    .await
    .unwrap();
    assert_eq!(
        nodes_of(&running),
        ["node-0", "node-1", "node-2"].map(String::from).into()
    );
    let status = wait_for("status for 3 nodes", WAIT, || async {
        let s = status_of(&sets).await?;
        Ok((s.number_ready == 3 && s.number_available == Some(3)).then_some(s))
    })
    .await
    .unwrap();
    assert_eq!(
        (
            s_desired(&status),
            status.current_number_scheduled,
            status.number_misscheduled
        ),
        (3, 3, 0),
        "the tainted node is not counted"
    );
    assert_eq!(status.updated_number_scheduled, Some(3));
    // Pinned by affinity to its node, with the daemon tolerations.
    let (node, _, pod) = &running[0];
    let spec = pod.spec.clone().unwrap();
    let terms = serde_json::to_value(spec.affinity.unwrap()).unwrap();
    assert_eq!(
        terms["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"],
        json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}])
    );
    let keys: BTreeSet<String> = spec.tolerations.unwrap().into_iter().filter_map(|t| t.key).collect();
    for k in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/unschedulable",
    ] {
        assert!(keys.contains(k), "{k} in {keys:?}");
    }
    let revisions: Api<ControllerRevision> = Api::namespaced(client.clone(), NS);
    let revs = revisions.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(revs.len(), 1);
    let hash = revs[0].labels()["controller-revision-hash"].clone();
    assert_eq!(revs[0].name_any(), format!("agent-{hash}"));
    assert_eq!(pod.labels()["controller-revision-hash"], hash);

    // A fourth node joins and gets its pod.
    e.sims
        .push(SimNodes::start(client.clone(), sim("node-", 3, 1)).await.unwrap());
    wait_for("a pod on the new node", WAIT, || async {
        let r = ready_pods(&pods).await?;
        Ok((nodes_of(&r).contains("node-3") && r.len() == 4).then_some(()))
    })
    .await
    .unwrap();
    wait_for("status for 4 nodes", WAIT, || async {
        let s = status_of(&sets).await?;
        Ok((s_desired(&s) == 4 && s.number_ready == 4).then_some(()))
    })
    .await
    .unwrap();

    // A new image replaces every pod, one node at a time.
    sets.patch(
        "agent",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "agent:2"}]}}}})),
    )
    .await
    .unwrap();
    wait_for("every node on the new image", WAIT, || async {
        let r = ready_pods(&pods).await?;
        let all = pods.list(&ListParams::default()).await?.items.len();
        Ok((r.len() == 4 && all == 4 && r.iter().all(|(_, image, _)| image == "agent:2")).then_some(()))
    })
    .await
    .unwrap();
    let s = wait_for("updated status", WAIT, || async {
        let s = status_of(&sets).await?;
        Ok((s.updated_number_scheduled == Some(4) && s.number_available == Some(4)).then_some(s))
    })
    .await
    .unwrap();
    assert_eq!(
        s.observed_generation,
        sets.get("agent").await.unwrap().metadata.generation
    );
    assert_eq!(revisions.list(&ListParams::default()).await.unwrap().items.len(), 2);
    e.cm.take().unwrap().stop().await.unwrap();
}

fn s_desired(s: &DaemonSetStatus) -> i32 {
    s.desired_number_scheduled
}
