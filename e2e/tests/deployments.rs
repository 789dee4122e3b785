//! Deployments against the real apiserver binary, with the scheduler and
//! controller manager in-process and simulated nodes running the pods:
//! rollouts stay within `maxSurge`, `kubectl rollout undo` returns to the
//! previous template, pause/resume and proportional scaling during a
//! stuck rollout, Recreate, `revisionHistoryLimit` keeps only the newest
//! old ReplicaSets, and the real `kubectl rollout restart` stamps the
//! template, which rolls every pod onto a new ReplicaSet within
//! `maxSurge`.
//!
//! Tests run on a multi-threaded runtime: kubectl is run as a blocking
//! process and must not stop the in-process controllers meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use kube::ResourceExt;
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use rkube_e2e::controllers_support::{Controllers, Env, EnvOptions, PodCountWatch, sim_nodes, wait_for};
use rkube_e2e::simnodes::pods::START_FAILURE_ANNOTATION;
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

fn image_of(template: Option<&PodTemplateSpec>) -> String {
    template
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers[0].image.clone())
        .unwrap_or_default()
}

fn image_of_pod(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.containers[0].image.clone())
        .unwrap_or_default()
}

fn names(items: &[Pod]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(ResourceExt::name_any).collect();
    v.sort();
    v
}

/// Live pods (not being deleted) of the namespace.
async fn live_pods(pods: &Api<Pod>) -> Vec<Pod> {
    pods.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_rolls_out_within_max_surge_and_rolls_back() {
    let e = env().await;
    let kubectl = |args: &[&str]| tokio::task::block_in_place(|| e.cluster.ok(args)).unwrap();
    let live = PodCountWatch::live(&e.client, "default").await;
    let ds: Api<Deployment> = Api::namespaced(e.client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(e.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    ds.create(&PostParams::default(), &deployment("web", "nginx:1.25", 3, 10))
        .await
        .unwrap();
    let (d, first_rs) = wait_complete(&e, "web", 3).await;
    assert_eq!(annotation(&d.metadata, REVISION).as_deref(), Some("1"));
    let conds = d.status.as_ref().unwrap().conditions.clone().unwrap();
    let cond = |t: &str| {
        conds
            .iter()
            .find(|c| c.type_ == t)
            .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
    };
    assert_eq!(
        cond("Available"),
        Some(("True".into(), "MinimumReplicasAvailable".into()))
    );
    assert_eq!(
        cond("Progressing"),
        Some(("True".into(), "NewReplicaSetAvailable".into()))
    );
    assert_eq!(rss.list(&ListParams::default()).await.unwrap().items.len(), 1);
    let hash = first_rs.labels().get(HASH).cloned().unwrap();
    assert_eq!(first_rs.name_any(), format!("web-{hash}"));
    assert_eq!(
        first_rs
            .spec
            .as_ref()
            .unwrap()
            .selector
            .match_labels
            .as_ref()
            .unwrap()
            .get(HASH),
        Some(&hash)
    );
    let ps = live_pods(&pods).await;
    assert_eq!(ps.len(), 3);
    assert!(
        ps.iter().all(|p| p.name_any().starts_with(&format!("web-{hash}-"))),
        "{:?}",
        names(&ps)
    );
    // The simulated nodes gave every pod a node and an IP.
    assert!(
        ps.iter()
            .all(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()
                && p.status.as_ref().and_then(|s| s.pod_ip.as_ref()).is_some()),
        "{ps:?}"
    );
    assert!(kubectl(&["rollout", "status", "deployment/web", "--timeout=10s"]).contains("successfully rolled out"));
    let table = kubectl(&["get", "deployment", "web"]);
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|l| l.split_whitespace().nth(1) == Some("3/3")),
        "{table}"
    );

    // A new image rolls out one surge pod at a time.
    live.reset();
    kubectl(&["set", "image", "deployment/web", "app=nginx:1.26"]);
    let (d, _) = wait_complete(&e, "web", 3).await;
    assert_eq!(annotation(&d.metadata, REVISION).as_deref(), Some("2"));
    assert!(
        (3..=4).contains(&live.max()),
        "saw {} pods at once; replicas + maxSurge is 4",
        live.max()
    );
    let ps = live_pods(&pods).await;
    assert!(
        ps.iter().all(|p| image_of_pod(p) == "nginx:1.26"),
        "{:?}",
        ps.iter().map(image_of_pod).collect::<Vec<_>>()
    );
    let history = kubectl(&["rollout", "history", "deployment/web"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");

    // kubectl rollout undo goes back to the first template, which gets
    // revision 3 and remembers revision 1.
    kubectl(&["rollout", "undo", "deployment/web"]);
    let (d, _) = wait_complete(&e, "web", 3).await;
    assert_eq!(image_of(Some(&d.spec.as_ref().unwrap().template)), "nginx:1.25");
    let back = rss.get(&first_rs.name_any()).await.unwrap();
    assert_eq!(back.uid(), first_rs.uid(), "the first ReplicaSet is reused");
    assert_eq!(annotation(&back.metadata, REVISION).as_deref(), Some("3"));
    assert_eq!(
        annotation(&back.metadata, "deployment.kubernetes.io/revision-history").as_deref(),
        Some("1")
    );
    assert!(live.max() <= 4, "saw {} pods at once", live.max());
    let ps = live_pods(&pods).await;
    assert!(ps.iter().all(|p| image_of_pod(p) == "nginx:1.25"));
}

/// `(image, spec.replicas)` of every ReplicaSet.
async fn rs_sizes(rss: &Api<ReplicaSet>) -> BTreeMap<String, i32> {
    rss.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|rs| (rs_image(rs), rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)))
        .collect()
}

/// Whether every ReplicaSet has observed its spec and has as many pods as
/// it wants: nothing more is about to be created.
async fn replica_sets_settled(rss: &Api<ReplicaSet>) -> kube::Result<bool> {
    Ok(rss.list(&ListParams::default()).await?.items.iter().all(|rs| {
        let s = rs.status.as_ref();
        s.and_then(|s| s.observed_generation) == rs.metadata.generation
            && s.map(|s| s.replicas) == rs.spec.as_ref().and_then(|s| s.replicas)
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_and_proportional_scaling_during_a_stuck_rollout() {
    let e = env().await;
    let kubectl = |args: &[&str]| tokio::task::block_in_place(|| e.cluster.ok(args)).unwrap();
    let live = PodCountWatch::live(&e.client, "default").await;
    let ds: Api<Deployment> = Api::namespaced(e.client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(e.client.clone(), "default");
    ds.create(&PostParams::default(), &deployment("app", "nginx:1", 2, 10))
        .await
        .unwrap();
    wait_complete(&e, "app", 2).await;

    // Paused: a template change creates nothing.
    kubectl(&["rollout", "pause", "deployment/app"]);
    kubectl(&["set", "image", "deployment/app", "app=nginx:2"]);
    let d = wait_for("paused condition", WAIT, || async {
        let d = ds.get("app").await?;
        let paused = d.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| {
            c.iter().any(|c| {
                c.type_ == "Progressing" && c.status == "Unknown" && c.reason.as_deref() == Some("DeploymentPaused")
            })
        });
        Ok((paused && d.status.as_ref().unwrap().observed_generation == d.metadata.generation).then_some(d))
    })
    .await
    .unwrap();
    assert_eq!(
        rss.list(&ListParams::default()).await.unwrap().items.len(),
        1,
        "{:?}",
        d.status
    );
    // Resumed: it rolls out.
    kubectl(&["rollout", "resume", "deployment/app"]);
    wait_complete(&e, "app", 2).await;

    // A rollout to pods that never start (the simulated nodes keep them
    // waiting on ImagePullBackOff) stops at replicas + maxSurge pods:
    // 2 old, 1 new.
    live.reset();
    let broken = json!({"spec": {"template": {
        "metadata": {"annotations": {START_FAILURE_ANNOTATION: "ImagePullBackOff"}},
        "spec": {"containers": [{"name": "app", "image": "broken:1"}]},
    }}});
    ds.patch("app", &PatchParams::default(), &Patch::Strategic(&broken))
        .await
        .unwrap();
    wait_for("stuck rollout", WAIT, || async {
        let sizes = rs_sizes(&rss).await;
        Ok((sizes.get("nginx:2") == Some(&2)
            && sizes.get("broken:1") == Some(&1)
            && replica_sets_settled(&rss).await?)
            .then_some(()))
    })
    .await
    .unwrap();
    assert!(live.max() <= 3, "saw {} pods; replicas + maxSurge is 3", live.max());
    // Scaled to 10 mid-rollout: the 8 extra replicas (10 + 1 surge - 3)
    // are shared 2:1 (rounded), never more than 11 pods.
    ds.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 10}})),
    )
    .await
    .unwrap();
    wait_for("proportional scale-up", WAIT, || async {
        let sizes = rs_sizes(&rss).await;
        Ok((sizes.get("nginx:2") == Some(&7)
            && sizes.get("broken:1") == Some(&4)
            && replica_sets_settled(&rss).await?)
            .then_some(()))
    })
    .await
    .unwrap();
    assert_eq!(live.now(), 11);
    assert!(live.max() <= 11, "saw {} pods; replicas + maxSurge is 11", live.max());
    // And to 0: every ReplicaSet goes to 0.
    ds.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 0}})),
    )
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    wait_for("scaled to zero", WAIT, || async {
        let sizes = rs_sizes(&rss).await;
        let left = pods.list(&ListParams::default()).await?.items.len();
        Ok((sizes.values().all(|n| *n == 0) && left == 0).then_some(()))
    })
    .await
    .unwrap();
    assert!(live.max() <= 11, "saw {} pods while scaling down", live.max());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_deletes_old_pods_before_creating_new_ones() {
    let e = env().await;
    let live = PodCountWatch::live(&e.client, "default").await;
    let ds: Api<Deployment> = Api::namespaced(e.client.clone(), "default");
    let mut d = deployment("batch", "busybox:1", 3, 10);
    d.spec.as_mut().unwrap().strategy = serde_json::from_value(json!({"type": "Recreate"})).unwrap();
    ds.create(&PostParams::default(), &d).await.unwrap();
    wait_complete(&e, "batch", 3).await;
    live.reset();
    tokio::task::block_in_place(|| e.cluster.ok(&["set", "image", "deployment/batch", "app=busybox:2"])).unwrap();
    let (d, _) = wait_complete(&e, "batch", 3).await;
    assert_eq!(image_of(Some(&d.spec.as_ref().unwrap().template)), "busybox:2");
    assert!(live.max() <= 3, "Recreate ran {} pods at once", live.max());
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    let ps = live_pods(&pods).await;
    assert!(ps.len() == 3 && ps.iter().all(|p| image_of_pod(p) == "busybox:2"));
}
