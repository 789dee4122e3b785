//! The real apiserver binary driven by kube-rs, a real Rust client: typed
//! CRUD and patches, label selectors, discovery, and a
//! `kube::runtime::watcher` that must relist after a 410 and keep going.
//!
//! kube-rs speaks JSON only (`Accept: application/json` on every request,
//! JSON bodies), which is what the apiserver serves today.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config, Discovery, ResourceExt};
use rkube_apiserver::resources::ResourceTable;
use rkube_e2e::cluster::{Backend, TestCluster};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::timeout;

async fn cluster(backend: Backend) -> TestCluster {
    TestCluster::start(backend).await.expect("cluster starts")
}

/// A kube-rs client from the cluster's admin kubeconfig.
async fn client(c: &TestCluster) -> Client {
    let kubeconfig = Kubeconfig::read_from(c.kubeconfig()).expect("kubeconfig parses");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable");
    Client::try_from(config).expect("client builds")
}

async fn create_namespace(client: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace created");
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "nginx:1.25",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                },
                {"name": "sidecar", "image": "busybox:1.36", "command": ["sleep", "3600"]},
            ],
        },
    }))
    .unwrap()
}

fn config_map(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let labels: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "data": {"key": name},
    }))
    .unwrap()
}

#[tokio::test]
async fn pods_create_get_list_patch_delete() {
    let c = cluster(Backend::Embedded).await;
    let client = client(&c).await;
    create_namespace(&client, "shop").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");

    let created = pods.create(&PostParams::default(), &pod("web-1")).await.unwrap();
    assert_eq!(created.name_any(), "web-1");
    assert_eq!(created.namespace().as_deref(), Some("shop"));
    assert!(created.uid().is_some(), "{created:?}");
    assert!(created.resource_version().is_some(), "{created:?}");

    let got = pods.get("web-1").await.unwrap();
    assert_eq!(got.uid(), created.uid());
    let spec = got.spec.as_ref().unwrap();
    assert_eq!(spec.containers.len(), 2);
    assert_eq!(spec.containers[0].image.as_deref(), Some("nginx:1.25"));

    pods.create(&PostParams::default(), &pod("web-2")).await.unwrap();
    let list = pods.list(&ListParams::default()).await.unwrap();
    let mut names: Vec<String> = list.items.iter().map(|p| p.name_any()).collect();
    names.sort();
    assert_eq!(names, ["web-1", "web-2"]);
    assert!(list.metadata.resource_version.is_some());

    // JSON merge patch: labels merge key by key.
    let merged = pods
        .patch(
            "web-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": "front"}}})),
        )
        .await
        .unwrap();
    assert_eq!(merged.labels().get("app").map(String::as_str), Some("web"));
    assert_eq!(merged.labels().get("tier").map(String::as_str), Some("front"));
    assert_ne!(merged.resource_version(), created.resource_version());

    // Strategic merge patch: containers merge by name, so only `app`'s image
    // changes and its other fields and the sidecar stay.
    let patched = pods
        .patch(
            "web-1",
            &PatchParams::default(),
            &Patch::Strategic(json!({
                "metadata": {"annotations": {"note": "patched"}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.26"}]},
            })),
        )
        .await
        .unwrap();
    let containers = &patched.spec.as_ref().unwrap().containers;
    assert_eq!(containers.len(), 2, "{containers:?}");
    let app = containers.iter().find(|c| c.name == "app").unwrap();
    assert_eq!(app.image.as_deref(), Some("nginx:1.26"));
    assert_eq!(app.ports.as_ref().map(Vec::len), Some(1), "{app:?}");
    assert!(containers.iter().any(|c| c.name == "sidecar"), "{containers:?}");
    assert_eq!(patched.annotations().get("note").map(String::as_str), Some("patched"));
    assert_eq!(patched.labels().get("tier").map(String::as_str), Some("front"));

    // A pod that was never scheduled goes at once.
    pods.delete("web-1", &DeleteParams::default()).await.unwrap();
    let err = pods.get("web-1").await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 404 && s.reason == "NotFound"),
        "{err:?}"
    );
    let left: Vec<String> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    assert_eq!(left, ["web-2"]);
}

#[tokio::test]
async fn config_maps_list_with_label_selectors() {
    let c = cluster(Backend::Embedded).await;
    let client = client(&c).await;
    create_namespace(&client, "cfg").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "cfg");
    for (name, labels) in [
        ("a", &[("app", "shop"), ("tier", "front")][..]),
        ("b", &[("app", "shop"), ("tier", "back")][..]),
        ("c", &[("app", "blog")][..]),
        ("d", &[][..]),
    ] {
        cms.create(&PostParams::default(), &config_map(name, labels))
            .await
            .unwrap();
    }
    let check = |selector: &'static str, want: &'static [&'static str]| {
        let cms = cms.clone();
        async move {
            let list = cms.list(&ListParams::default().labels(selector)).await.unwrap();
            let mut got: Vec<String> = list.items.iter().map(|cm| cm.name_any()).collect();
            // The namespace's kube-root-ca.crt, if a controller made one, is
            // not ours.
            got.retain(|n| n.len() == 1);
            got.sort();
            assert_eq!(got, want, "selector {selector:?}");
        }
    };
    check("app=shop", &["a", "b"]).await;
    check("app=shop,tier=front", &["a"]).await;
    check("tier in (front,back)", &["a", "b"]).await;
    check("app,!tier", &["c"]).await;
    check("app!=shop", &["c", "d"]).await;
    check("!app", &["d"]).await;
}

/// What the watcher task saw, in order (names and messages are read
/// through `Debug` in failure messages).
#[derive(Debug)]
#[allow(dead_code)]
enum Seen {
    Init,
    InitApply(String),
    InitDone,
    Apply(String),
    Delete(String),
    /// An error whose HTTP code is known (410 means "relist").
    Error(Option<u16>, String),
}

fn error_code(e: &watcher::Error) -> Option<u16> {
    match e {
        watcher::Error::WatchError(status) => Some(status.code),
        watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s))
        | watcher::Error::InitialListFailed(kube::Error::Api(s)) => Some(s.code),
        _ => None,
    }
}

/// Receives until `want` matches an event, returning everything seen on
/// the way (including the match).
async fn until(rx: &mut mpsc::UnboundedReceiver<Seen>, what: &str, want: impl Fn(&Seen) -> bool) -> Vec<Seen> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) => {
                let done = want(&ev);
                seen.push(ev);
                if done {
                    return seen;
                }
            }
            Ok(None) => panic!("watcher ended while waiting for {what}; saw {seen:?}"),
            Err(_) => panic!("timed out waiting for {what}; saw {seen:?}"),
        }
    }
}

/// Restarting the apiserver resets its watch cache to the current revision,
/// so the watcher's resume from its last (older) resourceVersion is answered
/// with 410 Expired; the watcher must relist and still see what comes after.
///
/// Upstream answers such a watch with 200 and a single `ERROR` event
/// carrying the 410 Status (the cacher returns an error watcher, "to match
/// the uncached watch implementation"); kube-rs's watcher relists on that
/// event, while on an HTTP 410 at watch start it retries the same
/// resourceVersion forever.
async fn watcher_relists_after_410(backend: Backend) {
    let mut c = cluster(backend).await;
    let client = client(&c).await;
    create_namespace(&client, "w").await;
    create_namespace(&client, "other").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "w");
    cms.create(&PostParams::default(), &config_map("before", &[]))
        .await
        .unwrap();

    let (tx, mut rx) = mpsc::unbounded_channel();
    let stream = watcher(cms.clone(), watcher::Config::default()).default_backoff();
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            let seen = match ev {
                Ok(watcher::Event::Init) => Seen::Init,
                Ok(watcher::Event::InitApply(cm)) => Seen::InitApply(cm.name_any()),
                Ok(watcher::Event::InitDone) => Seen::InitDone,
                Ok(watcher::Event::Apply(cm)) => Seen::Apply(cm.name_any()),
                Ok(watcher::Event::Delete(cm)) => Seen::Delete(cm.name_any()),
                Err(e) => Seen::Error(error_code(&e), format!("{e:?}")),
            };
            if tx.send(seen).is_err() {
                return;
            }
        }
    });

    let first = until(&mut rx, "the initial list", |s| matches!(s, Seen::InitDone)).await;
    assert!(
        first.iter().any(|s| matches!(s, Seen::InitApply(n) if n == "before")),
        "{first:?}"
    );
    // The watch is established once an event arrives through it.
    cms.create(&PostParams::default(), &config_map("during", &[]))
        .await
        .unwrap();
    until(
        &mut rx,
        "the watch event for `during`",
        |s| matches!(s, Seen::Apply(n) if n == "during"),
    )
    .await;

    // Move the store's revision on, outside the watched namespace: the
    // watcher's resourceVersion stays behind.
    let others: Api<ConfigMap> = Api::namespaced(client.clone(), "other");
    for i in 0..5 {
        others
            .create(&PostParams::default(), &config_map(&format!("o{i}"), &[]))
            .await
            .unwrap();
    }
    tokio::task::block_in_place(|| c.restart_apiserver()).expect("apiserver restarts");

    let relist = until(&mut rx, "the relist after the restart", |s| matches!(s, Seen::InitDone)).await;
    assert!(
        relist.iter().any(|s| matches!(s, Seen::Error(Some(410), _))),
        "expected a 410 before the relist: {relist:?}"
    );
    assert!(relist.iter().any(|s| matches!(s, Seen::Init)), "{relist:?}");
    for name in ["before", "during"] {
        assert!(
            relist.iter().any(|s| matches!(s, Seen::InitApply(n) if n == name)),
            "{name} missing from the relist: {relist:?}"
        );
    }

    cms.create(&PostParams::default(), &config_map("after", &[]))
        .await
        .unwrap();
    until(
        &mut rx,
        "the watch event for `after`",
        |s| matches!(s, Seen::Apply(n) if n == "after"),
    )
    .await;
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_relists_after_410_embedded() {
    timeout(Duration::from_secs(120), watcher_relists_after_410(Backend::Embedded))
        .await
        .expect("test finishes in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_relists_after_410_etcd() {
    timeout(Duration::from_secs(120), watcher_relists_after_410(Backend::Etcd))
        .await
        .expect("test finishes in time");
}

#[tokio::test]
async fn discovery_finds_every_builtin_resource() {
    let c = cluster(Backend::Embedded).await;
    let client = client(&c).await;
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let mut missing = Vec::new();
    let table = ResourceTable::builtin();
    assert!(!table.all().is_empty());
    for info in table.all() {
        let found = discovery.get(&info.group).and_then(|g| {
            g.versioned_resources(&info.version)
                .into_iter()
                .find(|(ar, _)| ar.plural == info.resource)
        });
        match found {
            None => missing.push(format!("{}/{} {}", info.group, info.version, info.resource)),
            Some((ar, caps)) => {
                assert_eq!(ar.kind, info.kind, "{ar:?}");
                assert_eq!(
                    caps.scope == kube::discovery::Scope::Namespaced,
                    info.namespaced,
                    "{ar:?}"
                );
                for verb in &info.verbs {
                    assert!(caps.supports_operation(verb), "{ar:?} lacks {verb}: {caps:?}");
                }
                for sub in &info.subresources {
                    assert!(
                        caps.subresources.iter().any(|(s, _)| s.plural == sub.name),
                        "{ar:?} lacks subresource {}: {caps:?}",
                        sub.name
                    );
                }
            }
        }
    }
    assert!(missing.is_empty(), "not discovered: {missing:?}");
    // Nothing beyond the table either.
    let discovered: usize = discovery
        .groups()
        .map(|g| g.versions().map(|v| g.versioned_resources(v).len()).sum::<usize>())
        .sum();
    assert_eq!(discovered, table.all().len());
}
