//! Deployment history and restarts against the real apiserver binary, with
//! the scheduler and controller manager in-process and simulated nodes
//! running the pods: `revisionHistoryLimit` keeps only the newest old
//! ReplicaSets, and the real `kubectl rollout restart` stamps the template,
//! which rolls every pod onto a new ReplicaSet within `maxSurge`.
//!
//! Tests run on a multi-threaded runtime: kubectl is run as a blocking
//! process and must not stop the in-process controllers meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use rkube_e2e::controllers_support::{Controllers, Env, EnvOptions, PodCountWatch, sim_nodes, wait_for};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);
const REVISION: &str = "deployment.kubernetes.io/revision";
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
const HASH: &str = "pod-template-hash";

/// Two simulated nodes, the scheduler and the controller manager.
async fn env() -> Env {
    Env::start(EnvOptions {
        nodes: vec![sim_nodes("deploy-node-", 2)],
        scheduler: true,
        controllers: Controllers::InProcess,
        ..EnvOptions::default()
    })
    .await
    .expect("environment starts")
}

/// A RollingUpdate Deployment adding one pod at a time and never going
/// below `replicas` available.
fn deployment(name: &str, image: &str, replicas: i32, history_limit: i32) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": history_limit,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": image}]}},
        },
    }))
    .unwrap()
}

fn annotation(meta: &ObjectMeta, key: &str) -> Option<String> {
    meta.annotations.as_ref().and_then(|a| a.get(key).cloned())
}

fn rs_image(rs: &ReplicaSet) -> String {
    rs.spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers[0].image.clone())
        .unwrap_or_default()
}

/// Waits until the rollout of `name`'s current generation is complete, as
/// upstream's DeploymentComplete judges it (every replica updated and
/// available, none of an old ReplicaSet left), and every live pod is of
/// the new ReplicaSet. Returns the Deployment and the new ReplicaSet.
async fn wait_complete(e: &Env, name: &str, replicas: i32) -> (Deployment, ReplicaSet) {
    let ds: Api<Deployment> = Api::namespaced(e.client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(e.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    wait_for("rollout complete", WAIT, || async {
        let d = ds.get(name).await?;
        let s = d.status.clone().unwrap_or_default();
        let complete = s.observed_generation == d.metadata.generation
            && s.replicas == Some(replicas)
            && s.updated_replicas == Some(replicas)
            && s.available_replicas == Some(replicas);
        if !complete {
            return Ok(None);
        }
        let revision = annotation(&d.metadata, REVISION);
        let Some(new) = rss
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .find(|rs| annotation(&rs.metadata, REVISION) == revision)
        else {
            return Ok(None);
        };
        let hash = new.labels().get(HASH).cloned();
        let live: Vec<Pod> = pods
            .list(&ListParams::default().labels(&format!("app={name}")))
            .await?
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        let all_new =
            live.len() == usize::try_from(replicas)? && live.iter().all(|p| p.labels().get(HASH) == hash.as_ref());
        Ok(all_new.then_some((d, new)))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revision_history_limit_keeps_only_the_newest_old_replica_set() {
    let e = env().await;
    let ds: Api<Deployment> = Api::namespaced(e.client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(e.client.clone(), "default");
    ds.create(&PostParams::default(), &deployment("web", "nginx:1", 2, 1))
        .await
        .unwrap();
    wait_complete(&e, "web", 2).await;
    // Three rollouts: revisions 2, 3 and 4, each to completion.
    for image in ["nginx:2", "nginx:3", "nginx:4"] {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}});
        ds.patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .unwrap();
        let (_, new) = wait_complete(&e, "web", 2).await;
        assert_eq!(rs_image(&new), image);
    }
    // With a limit of 1, the ReplicaSets of revisions 1 and 2 go; the one
    // of revision 3, the newest old one, stays for `rollout undo`.
    let left = wait_for("old ReplicaSets beyond the limit deleted", WAIT, || async {
        let items = rss.list(&ListParams::default()).await?.items;
        Ok((items.len() == 2).then_some(items))
    })
    .await
    .unwrap();
    let mut kept: Vec<(String, String, i32)> = left
        .iter()
        .map(|rs| {
            (
                annotation(&rs.metadata, REVISION).unwrap_or_default(),
                rs_image(rs),
                rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(-1),
            )
        })
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        vec![
            (String::from("3"), String::from("nginx:3"), 0),
            (String::from("4"), String::from("nginx:4"), 2)
        ]
    );
    let history = tokio::task::block_in_place(|| e.cluster.ok(&["rollout", "history", "deployment/web"])).unwrap();
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revisions, ["3", "4"], "{history}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_restart_replaces_every_pod_within_max_surge() {
    let e = env().await;
    let ds: Api<Deployment> = Api::namespaced(e.client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(e.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    ds.create(&PostParams::default(), &deployment("app", "httpd", 3, 10))
        .await
        .unwrap();
    let (_, first) = wait_complete(&e, "app", 3).await;
    let before: Vec<String> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    let live = PodCountWatch::live(&e.client, "default").await;
    live.reset();

    let kubectl = |args: &[&str]| tokio::task::block_in_place(|| e.cluster.ok(args)).unwrap();
    let out = kubectl(&["rollout", "restart", "deployment/app"]);
    assert_eq!(out.trim(), "deployment.apps/app restarted");
    let (d, new) = wait_complete(&e, "app", 3).await;

    // kubectl stamped the template; the stamp made a new template hash,
    // so a new ReplicaSet (revision 2) whose pods carry it.
    let template = &d.spec.as_ref().unwrap().template;
    let stamp = template
        .metadata
        .as_ref()
        .and_then(|m| annotation(m, RESTARTED_AT))
        .expect("restartedAt on the template");
    stamp
        .parse::<k8s_openapi::jiff::Timestamp>()
        .unwrap_or_else(|err| panic!("restartedAt {stamp:?} is not RFC 3339: {err}"));
    assert_ne!(new.uid(), first.uid());
    assert_ne!(new.labels().get(HASH), first.labels().get(HASH));
    assert_eq!(annotation(&d.metadata, REVISION).as_deref(), Some("2"));
    assert_eq!(annotation(&new.metadata, REVISION).as_deref(), Some("2"));
    let old = rss.get(&first.name_any()).await.unwrap();
    assert_eq!(old.spec.as_ref().and_then(|s| s.replicas), Some(0));

    let after = pods.list(&ListParams::default()).await.unwrap().items;
    let live_after: Vec<&Pod> = after
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    assert_eq!(live_after.len(), 3);
    for p in &live_after {
        assert!(!before.contains(&p.name_any()), "{} was not replaced", p.name_any());
        assert_eq!(annotation(&p.metadata, RESTARTED_AT).as_deref(), Some(stamp.as_str()));
    }
    assert!(
        live.max() <= 4,
        "saw {} pods at once; replicas + maxSurge is 4",
        live.max()
    );
    let status = kubectl(&["rollout", "status", "deployment/app", "--timeout=30s"]);
    assert!(status.contains("successfully rolled out"), "{status}");
}
