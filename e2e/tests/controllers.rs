//! The controller manager (run in-process) against the real apiserver
//! binary: namespaces get their default ServiceAccount and root CA
//! (namespace deletion is in `namespaces.rs`), ReplicaSets adopt,
//! rank and release pods, ReplicationControllers keep their replicas on
//! simulated nodes (Deployment rollouts are in `deployments.rs`), the
//! garbage collector honours foreground and orphan deletion, and only the
//! leader acts. The ReplicaSet test marks its pods Ready itself: its
//! deletion ranking needs pods ready an hour apart, a time simulated nodes
//! do not let a test choose; the garbage-collector tests need no running
//! pods.
//!
//! Tests run on a multi-threaded runtime: kubectl is run as a blocking
//! process and must not stop the in-process controllers meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use rkube_e2e::cluster::{Backend, TestCluster};
use rkube_e2e::controllers_support::{
    ControllerManager, Controllers, Env, EnvOptions, client, create_namespace, fast_leader_election, init_test_logging,
    mark_running_ready, mark_running_ready_since, sim_nodes, wait_for,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

async fn setup() -> (TestCluster, Client) {
    init_test_logging();
    let c = TestCluster::start(Backend::Embedded).await.expect("cluster starts");
    let client = client(&c).await.expect("client");
    (c, client)
}

fn names<K: kube::Resource>(items: &[K]) -> Vec<String> {
    let mut v: Vec<String> = items
        .iter()
        .map(|o| o.meta().name.clone().unwrap_or_default())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_namespace_gets_default_service_account_and_root_ca() {
    let (c, client) = setup().await;
    let cm = ControllerManager::start(&c, |_| {}).unwrap();
    create_namespace(&client, "team-a").await.unwrap();
    let ca = std::fs::read_to_string(c.data_dir().join("pki/ca.crt")).unwrap();
    for ns in ["team-a", "default", "kube-system"] {
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
        wait_for("default service account", WAIT, || async {
            Ok(sas.get_opt("default").await?)
        })
        .await
        .unwrap();
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        let root = wait_for("kube-root-ca.crt", WAIT, || async {
            Ok(cms.get_opt("kube-root-ca.crt").await?)
        })
        .await
        .unwrap();
        assert_eq!(root.data.as_ref().unwrap().get("ca.crt"), Some(&ca), "{ns}");
        assert!(root.annotations().contains_key("kubernetes.io/description"));
    }
    // Deleted or edited, they come back.
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "team-a");
    sas.delete("default", &DeleteParams::default()).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team-a");
    cms.patch(
        "kube-root-ca.crt",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"ca.crt": "bogus"}})),
    )
    .await
    .unwrap();
    wait_for("default service account recreated", WAIT, || async {
        Ok(sas.get_opt("default").await?)
    })
    .await
    .unwrap();
    wait_for("kube-root-ca.crt restored", WAIT, || async {
        let cm = cms.get("kube-root-ca.crt").await?;
        Ok((cm.data.unwrap_or_default().get("ca.crt") == Some(&ca)).then_some(()))
    })
    .await
    .unwrap();
    cm.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_keeps_replicas_and_adopts_orphans() {
    let (c, client) = setup().await;
    let cm = ControllerManager::start(&c, |_| {}).unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    // An orphan the ReplicaSet will adopt.
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "orphan", "labels": {"app": "rs"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &orphan).await.unwrap();
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "rs"}},
                 "template": {"metadata": {"labels": {"app": "rs"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
    }))
    .unwrap();
    let rs = rss.create(&PostParams::default(), &rs).await.unwrap();
    let list = wait_for("3 pods", WAIT, || async {
        let l = pods.list(&ListParams::default()).await?.items;
        Ok((l.len() == 3
            && l.iter()
                .all(|p| p.owner_references().iter().any(|r| Some(&r.uid) == rs.uid().as_ref())))
        .then_some(l))
    })
    .await
    .unwrap();
    assert!(names(&list).contains(&"orphan".to_string()), "{:?}", names(&list));
    for p in &list {
        if p.name_any() != "orphan" {
            assert!(p.name_any().starts_with("web-"), "{}", p.name_any());
        }
    }
    for p in &list {
        if p.name_any() == "orphan" {
            mark_running_ready_since(&pods, "orphan", Duration::from_secs(3600))
                .await
                .unwrap();
        } else {
            mark_running_ready(&pods, &p.name_any()).await.unwrap();
        }
    }
    wait_for("status", WAIT, || async {
        let s = rss.get_status("web").await?.status.unwrap_or_default();
        Ok((s.replicas == 3
            && s.ready_replicas == Some(3)
            && s.available_replicas == Some(3)
            && s.fully_labeled_replicas == Some(3)
            && s.observed_generation == Some(1))
        .then_some(()))
    })
    .await
    .unwrap();
    // Scale down to 1: all are ready, so those ready most recently go
    // first; the orphan (ready for an hour) stays.
    rss.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    let left = wait_for("1 pod", WAIT, || async {
        let l = pods.list(&ListParams::default()).await?.items;
        Ok((l.len() == 1).then_some(l))
    })
    .await
    .unwrap();
    assert_eq!(names(&left), ["orphan"]);
    // Relabelled, a pod is released and replaced.
    pods.patch(
        "orphan",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
    )
    .await
    .unwrap();
    let released = wait_for("released and replaced", WAIT, || async {
        let l = pods.list(&ListParams::default()).await?.items;
        let orphan = pods.get("orphan").await?;
        Ok((l.len() == 2 && orphan.owner_references().is_empty()).then_some(l))
    })
    .await
    .unwrap();
    assert_eq!(released.len(), 2);
    cm.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_controller_keeps_replicas() {
    // Simulated nodes run the pods, so the replicas become ready.
    let e = Env::start(EnvOptions {
        nodes: vec![sim_nodes("rc-node-", 2)],
        scheduler: true,
        controllers: Controllers::InProcess,
        ..EnvOptions::default()
    })
    .await
    .unwrap();
    let client = e.client.clone();
    let rcs: Api<k8s_openapi::api::core::v1::ReplicationController> = Api::namespaced(client.clone(), "default");
    let rc = serde_json::from_value(json!({
        "metadata": {"name": "legacy"},
        "spec": {"replicas": 2, "selector": {"app": "legacy"},
                 "template": {"metadata": {"labels": {"app": "legacy"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
    }))
    .unwrap();
    let rc = rcs.create(&PostParams::default(), &rc).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    wait_for("2 ready replicas", WAIT, || async {
        let s = rcs.get_status("legacy").await?.status.unwrap_or_default();
        Ok((s.replicas == 2 && s.ready_replicas == Some(2) && s.available_replicas == Some(2)).then_some(()))
    })
    .await
    .unwrap();
    let ps = pods.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(ps.len(), 2);
    for p in &ps {
        let owner = &p.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.api_version.as_str()),
            ("ReplicationController", "v1")
        );
        assert_eq!(Some(&owner.uid), rc.uid().as_ref());
        assert!(p.name_any().starts_with("legacy-"));
    }
}

fn deployment(name: &str, image: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": image}]}},
        },
    }))
    .unwrap()
}

async fn deployment_with_pods(client: &Client, name: &str, replicas: i32) -> (Vec<ReplicaSet>, Vec<Pod>) {
    let ds: Api<Deployment> = Api::namespaced(client.clone(), "default");
    ds.create(&PostParams::default(), &deployment(name, "nginx", replicas))
        .await
        .unwrap();
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    wait_for("replica set and pods", WAIT, || async {
        let r = rss.list(&ListParams::default()).await?.items;
        let p = pods.list(&ListParams::default()).await?.items;
        Ok((r.len() == 1 && p.len() == usize::try_from(replicas).unwrap()).then_some((r, p)))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_deletion_removes_replicasets_and_pods_before_the_deployment() {
    let (c, client) = setup().await;
    let cm = ControllerManager::start(&c, |_| {}).unwrap();
    deployment_with_pods(&client, "web", 2).await;
    let ds: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    ds.delete("web", &DeleteParams::foreground()).await.unwrap();
    let d = ds.get("web").await.unwrap();
    assert!(d.metadata.deletion_timestamp.is_some());
    assert!(
        d.finalizers().contains(&"foregroundDeletion".to_string()),
        "{:?}",
        d.finalizers()
    );
    // Until the Deployment is gone, whenever it is seen its dependents may
    // exist; once it is gone, they must already be gone.
    wait_for("deployment deleted", WAIT, || async {
        if ds.get_opt("web").await?.is_some() {
            return Ok(None);
        }
        let r = rss.list(&ListParams::default()).await?.items;
        let p = pods.list(&ListParams::default()).await?.items;
        assert!(
            r.is_empty() && p.is_empty(),
            "the Deployment went before its dependents: {:?} {:?}",
            names(&r),
            names(&p)
        );
        Ok(Some(()))
    })
    .await
    .unwrap();
    cm.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_deletion_leaves_dependents_and_background_deletion_collects_them() {
    let (c, client) = setup().await;
    let cm = ControllerManager::start(&c, |_| {}).unwrap();
    let (rs_before, pods_before) = deployment_with_pods(&client, "web", 2).await;
    let ds: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    // kubectl waits until the collector has orphaned the dependents and
    // removed the finalizer.
    c.ok(&["delete", "deployment", "web", "--cascade=orphan", "--timeout=15s"])
        .unwrap();
    wait_for("deployment deleted", WAIT, || async {
        Ok(ds.get_opt("web").await?.is_none().then_some(()))
    })
    .await
    .unwrap();
    let rs = wait_for("owner reference removed", WAIT, || async {
        let rs = rss.get(&rs_before[0].name_any()).await?;
        Ok(rs.owner_references().is_empty().then_some(rs))
    })
    .await
    .unwrap();
    assert_eq!(rs.uid(), rs_before[0].uid());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let left = pods.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(names(&left), names(&pods_before), "orphaned pods stay");

    // Deleting the ReplicaSet in the background: the collector deletes its
    // pods.
    rss.delete(&rs.name_any(), &DeleteParams::background()).await.unwrap();
    wait_for("pods collected", WAIT, || async {
        Ok(pods.list(&ListParams::default()).await?.items.is_empty().then_some(()))
    })
    .await
    .unwrap();
    // A dependent created with an owner that does not exist is collected.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let dangling: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "dangling", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "nope", "uid": "00000000-0000-0000-0000-000000000001"}]}}))
    .unwrap();
    cms.create(&PostParams::default(), &dangling).await.unwrap();
    wait_for("dangling dependent collected", WAIT, || async {
        Ok(cms.get_opt("dangling").await?.is_none().then_some(()))
    })
    .await
    .unwrap();
    cm.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_acts_and_a_crashed_leader_hands_over() {
    let (c, client) = setup().await;
    // The first instance leads but does not run the serviceaccount
    // controller; the second would.
    let a = ControllerManager::start(&c, |cfg| {
        cfg.leader_election = Some(fast_leader_election("instance-a"));
        cfg.controllers =
            rkube_controllers::selection::Selection::parse(&["*,-serviceaccount".to_string()], |_| true).unwrap();
    })
    .unwrap();
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(client.clone(), "kube-system");
    let holder = || async {
        Ok::<_, anyhow::Error>(
            leases
                .get_opt("kube-controller-manager")
                .await?
                .and_then(|l| l.spec.and_then(|s| s.holder_identity)),
        )
    };
    wait_for("instance-a leads", WAIT, || async {
        Ok((holder().await?.as_deref() == Some("instance-a")).then_some(()))
    })
    .await
    .unwrap();
    let b = ControllerManager::start(&c, |cfg| cfg.leader_election = Some(fast_leader_election("instance-b"))).unwrap();
    create_namespace(&client, "quiet").await.unwrap();
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "quiet");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "quiet");
    wait_for("the leader publishes the root CA", WAIT, || async {
        Ok(cms.get_opt("kube-root-ca.crt").await?)
    })
    .await
    .unwrap();
    // While instance-a renews its lease several times (instance-b tries
    // to acquire it every retry period meanwhile), nothing creates the
    // service account.
    let renew_time = || async {
        Ok::<_, anyhow::Error>(
            leases
                .get("kube-controller-manager")
                .await?
                .spec
                .and_then(|s| s.renew_time)
                .map(|t| t.0),
        )
    };
    let renewals = std::sync::Mutex::new(Vec::new());
    wait_for("three renewals by instance-a", WAIT, || async {
        let t = renew_time().await?;
        let mut seen = renewals.lock().unwrap();
        if seen.last() != Some(&t) {
            seen.push(t);
        }
        Ok((seen.len() > 3).then_some(()))
    })
    .await
    .unwrap();
    assert!(
        sas.get_opt("default").await.unwrap().is_none(),
        "the standby instance acted"
    );
    assert_eq!(holder().await.unwrap().as_deref(), Some("instance-a"));
    let lease = leases.get("kube-controller-manager").await.unwrap().spec.unwrap();
    assert_eq!(lease.lease_duration_seconds, Some(3));

    // The leader crashes (no release): the standby takes over once the
    // lease expires, and acts.
    drop(a);
    let last_renewal = renew_time().await.unwrap().expect("renewTime");
    let lease = wait_for("instance-b leads", WAIT, || async {
        let l = leases.get("kube-controller-manager").await?.spec.unwrap_or_default();
        Ok((l.holder_identity.as_deref() == Some("instance-b")).then_some(l))
    })
    .await
    .unwrap();
    // Never before the lease expired (the safety property). The standby
    // judges expiry from when it saw the last renewal, by its own clock,
    // and then tries every retry period, so it normally leads within one
    // more lease duration; the bound allows two, since a loaded CI machine
    // delays both the watch and the retries (not a timing measurement).
    let acquired = lease.acquire_time.expect("acquireTime").0;
    let waited = acquired.duration_since(last_renewal);
    let term = k8s_openapi::jiff::SignedDuration::from_secs(3);
    assert!(
        waited >= term && waited <= term * 3,
        "instance-b took over {waited:?} after the last renewal; the lease lasts {term:?}"
    );
    wait_for("the new leader creates the service account", WAIT, || async {
        Ok(sas.get_opt("default").await?)
    })
    .await
    .unwrap();
    let lease = leases.get("kube-controller-manager").await.unwrap().spec.unwrap();
    assert_eq!(lease.lease_transitions, Some(1));
    // Stopping releases the lease.
    b.stop().await.unwrap();
    assert_eq!(holder().await.unwrap(), None);
}

/// The `rkube-controllers` binary with upstream-style flags: it takes the
/// lease, serves /healthz and /metrics, and acts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_leads_serves_health_and_metrics_and_acts() {
    let (c, client) = setup().await;
    let bin = rkube_e2e::cluster::target_dir().unwrap().join("rkube-controllers");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p rkube-controllers`",
        bin.display()
    );
    let port = rkube_e2e::cluster::free_port().unwrap();
    let log = std::fs::File::create(c.data_dir().join("controllers.log")).unwrap();
    let mut child = std::process::Command::new(&bin)
        .arg(format!("--kubeconfig={}", c.kubeconfig().display()))
        .arg(format!("--root-ca-file={}", c.data_dir().join("pki/ca.crt").display()))
        .args([
            "--controllers=*,-garbage-collector",
            "--leader-elect-retry-period=200ms",
            "--bind-address=127.0.0.1",
        ])
        .arg(format!("--port={port}"))
        .stderr(log)
        .spawn()
        .unwrap();
    let http = |path: &'static str| async move {
        let out = tokio::process::Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{port}{path}")])
            .output()
            .await?;
        Ok::<_, anyhow::Error>(
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned()),
        )
    };
    let health = wait_for("/healthz", WAIT, || http("/healthz")).await;
    create_namespace(&client, "bin").await.unwrap();
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "bin");
    let acted = wait_for("default service account", WAIT, || async {
        Ok(sas.get_opt("default").await?)
    })
    .await;
    let metrics = http("/metrics").await;
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(c.data_dir().join("controllers.log")).unwrap_or_default();
    assert_eq!(health.unwrap(), "ok", "{log}");
    acted.unwrap_or_else(|e| panic!("{e}\n{log}"));
    let metrics = metrics.unwrap().unwrap_or_default();
    assert!(
        metrics.contains("leader_election_master_status{name=\"kube-controller-manager\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("workqueue_adds_total{name=\"serviceaccount\"}"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("garbage_collector"),
        "the garbage collector was turned off: {metrics}"
    );
}
