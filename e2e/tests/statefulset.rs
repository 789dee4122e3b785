//! The StatefulSet controller against the real apiserver binary, with the
//! scheduler and controller manager in-process and simulated nodes
//! playing the kubelets: pods are created in ordinal order, each only
//! after the previous one is Running and Ready (checked on one watch of
//! the namespace), with stable names, identity labels, hostname and
//! subdomain, and claims from `volumeClaimTemplates`; a template change
//! rolls out from the highest ordinal through a new ControllerRevision.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use rkube_e2e::controllers_support::{Controllers, Env, EnvOptions, sim_nodes, wait_for};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);
const NS: &str = "sts";

/// Two simulated nodes, the scheduler and the controller manager.
async fn env() -> Env {
    Env::start(EnvOptions {
        namespace: Some(NS.into()),
        nodes: vec![sim_nodes("sim-node-", 2)],
        scheduler: true,
        controllers: Controllers::InProcess,
        ..EnvOptions::default()
    })
    .await
    .expect("environment starts")
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Records, in watch order, `added <pod>` and `ready <pod>` (first time
/// each) for the namespace's pods.
fn record_pod_events(client: &Client) -> (Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let api: Api<Pod> = Api::namespaced(client.clone(), NS);
    let out = log.clone();
    let task = tokio::spawn(async move {
        let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
        while let Some(ev) = stream.next().await {
            let pods = match ev {
                Ok(Event::Apply(p) | Event::InitApply(p)) => vec![p],
                _ => continue,
            };
            let mut log = out.lock().unwrap();
            for p in pods {
                let added = format!("added {}", p.name_any());
                if !log.contains(&added) {
                    log.push(added);
                }
                let ready = format!("ready {}", p.name_any());
                if is_ready(&p) && !log.contains(&ready) {
                    log.push(ready);
                }
            }
        }
    });
    (log, task)
}

async fn status_of(sets: &Api<StatefulSet>) -> anyhow::Result<k8s_openapi::api::apps::v1::StatefulSetStatus> {
    Ok(sets.get("web").await?.status.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_pods_with_stable_identity_and_claims_then_a_rolling_update() {
    let e = env().await;
    // Claims of the default class (`standard`, created by the hostPath
    // provisioner): each pod's claim is provisioned on its node and bound
    // before the pod is bound (VolumeBinding's PreBind).
    let (log, watch) = record_pod_events(&e.client);
    let sets: Api<StatefulSet> = Api::namespaced(e.client.clone(), NS);
    let set: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "serviceName": "nginx",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "www"},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                         "resources": {"requests": {"storage": "1Gi"}}}}],
        },
    }))
    .unwrap();
    sets.create(&PostParams::default(), &set).await.unwrap();
    let status = wait_for("3 ready replicas", WAIT, || async {
        let s = status_of(&sets).await?;
        Ok((s.ready_replicas == Some(3) && s.available_replicas == Some(3)).then_some(s))
    })
    .await
    .unwrap();
    let revision = status.update_revision.clone().unwrap();
    assert_eq!(status.current_revision.as_deref(), Some(revision.as_str()));
    assert_eq!((status.replicas, status.current_replicas), (3, Some(3)));

    // Pod N+1 appeared only after pod N was Ready.
    {
        let log = log.lock().unwrap().clone();
        let at = |s: &str| {
            log.iter()
                .position(|l| l == s)
                .unwrap_or_else(|| panic!("{s} not in {log:?}"))
        };
        for i in 0..2 {
            assert!(
                at(&format!("ready web-{i}")) < at(&format!("added web-{}", i + 1)),
                "web-{} created before web-{i} was ready: {log:?}",
                i + 1
            );
        }
    }

    let pods: Api<Pod> = Api::namespaced(e.client.clone(), NS);
    for i in 0..3 {
        let p = pods.get(&format!("web-{i}")).await.unwrap();
        let labels = p.labels();
        assert_eq!(labels["statefulset.kubernetes.io/pod-name"], format!("web-{i}"));
        assert_eq!(labels["apps.kubernetes.io/pod-index"], i.to_string());
        assert_eq!(labels["controller-revision-hash"], revision);
        let spec = p.spec.unwrap();
        assert_eq!(spec.hostname.as_deref(), Some(format!("web-{i}").as_str()));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        let claim = spec
            .volumes
            .unwrap()
            .into_iter()
            .find(|v| v.name == "www")
            .and_then(|v| v.persistent_volume_claim)
            .unwrap();
        assert_eq!(claim.claim_name, format!("www-web-{i}"));
    }
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(e.client.clone(), NS);
    let mut names: Vec<String> = claims
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| {
            assert_eq!(c.labels()["app"], "web");
            c.name_any()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["www-web-0", "www-web-1", "www-web-2"]);

    // A new image rolls out through a second revision, highest ordinal first.
    log.lock().unwrap().clear();
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}})),
    )
    .await
    .unwrap();
    let status = wait_for("the rollout to complete", WAIT, || async {
        let s = status_of(&sets).await?;
        Ok((s.update_revision.as_deref() != Some(revision.as_str())
            && s.current_revision == s.update_revision
            && s.updated_replicas == Some(3)
            && s.ready_replicas == Some(3))
        .then_some(s))
    })
    .await
    .unwrap();
    let new_revision = status.update_revision.unwrap();
    let mut images = BTreeMap::new();
    for p in pods.list(&ListParams::default()).await.unwrap().items {
        assert_eq!(p.labels()["controller-revision-hash"], new_revision);
        images.insert(p.name_any(), p.spec.unwrap().containers[0].image.clone().unwrap());
    }
    assert!(images.values().all(|i| i == "nginx:2"), "{images:?}");
    {
        let log = log.lock().unwrap().clone();
        let added: Vec<&String> = log.iter().filter(|l| l.starts_with("added web-")).collect();
        let order: Vec<&str> = added.iter().map(|l| l.trim_start_matches("added ")).collect();
        // The watch reports the recreated pods (a re-added name was logged
        // only once since the clear): web-2, then web-1, then web-0.
        assert_eq!(
            order,
            ["web-0", "web-1", "web-2"].iter().rev().copied().collect::<Vec<_>>(),
            "{log:?}"
        );
    }
    let revisions: Api<ControllerRevision> = Api::namespaced(e.client.clone(), NS);
    let revs = revisions.list(&ListParams::default()).await.unwrap().items;
    let mut rev_names: Vec<String> = revs.iter().map(|r| r.name_any()).collect();
    rev_names.sort();
    let mut want = vec![revision.clone(), new_revision.clone()];
    want.sort();
    assert_eq!(rev_names, want);
    assert!(revs.iter().all(|r| r.owner_references()[0].kind == "StatefulSet"));

    // Scaling down removes the highest ordinals and keeps their claims.
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    wait_for("one pod left", WAIT, || async {
        let names: Vec<String> = pods
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .map(|p| p.name_any())
            .collect();
        Ok((names == ["web-0"]).then_some(()))
    })
    .await
    .unwrap();
    assert_eq!(claims.list(&ListParams::default()).await.unwrap().items.len(), 3);
    watch.abort();
}
