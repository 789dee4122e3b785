//! Service endpoints end to end: the real apiserver and controller-manager
//! binaries, the scheduler, and simulated nodes running the pods.
//! Endpoints and EndpointSlices follow pod readiness and termination,
//! more than 100 pods spread over several slices, custom Endpoints of a
//! selector-less Service are mirrored, and pod GC removes orphans and
//! terminated pods beyond its threshold.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use rkube_e2e::controllers_support::{ControllerManager, ControllersBinary, Env, EnvOptions, wait_for};
use rkube_e2e::simnodes::SimConfig;
use rkube_e2e::simnodes::pods::EXIT_AFTER_ANNOTATION;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const NS: &str = "shop";

/// `nodes` simulated nodes over three zones and the scheduler; each test
/// starts the controllers it needs.
async fn env(nodes: usize) -> Env {
    Env::start(EnvOptions {
        namespace: Some(NS.into()),
        nodes: vec![SimConfig {
            count: nodes,
            name_prefix: "node-".into(),
            zones: vec!["zone-a".into(), "zone-b".into(), "zone-c".into()],
            ..SimConfig::default()
        }],
        scheduler: true,
        ..EnvOptions::default()
    })
    .await
    .expect("environment starts")
}

fn parse<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

async fn create_deployment(client: &Client, name: &str, replicas: i32) {
    let d: k8s_openapi::api::apps::v1::Deployment = parse(json!({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{
                     "name": "app", "image": "registry.k8s.io/pause:3.10",
                     "ports": [{"name": "http", "containerPort": 8080}]}]}}},
    }));
    Api::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
}

async fn create_service(client: &Client, name: &str, selector: Value) -> Service {
    let mut spec = json!({"ports": [{"name": "web", "port": 80, "targetPort": "http"}]});
    if !selector.is_null() {
        spec["selector"] = selector;
    }
    let s: Service = parse(json!({"metadata": {"name": name}, "spec": spec}));
    Api::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &s)
        .await
        .unwrap()
}

/// `(ready IPs, not-ready IPs)` of the Endpoints object.
fn endpoints_ips(e: &Endpoints) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut ready = BTreeSet::new();
    let mut not_ready = BTreeSet::new();
    for s in e.subsets.iter().flatten() {
        ready.extend(s.addresses.iter().flatten().map(|a| a.ip.clone()));
        not_ready.extend(s.not_ready_addresses.iter().flatten().map(|a| a.ip.clone()));
    }
    (ready, not_ready)
}

async fn slices_of(client: &Client, service: &str) -> anyhow::Result<Vec<EndpointSlice>> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), NS);
    let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={service}"));
    Ok(api.list(&lp).await?.items)
}

/// Per pod name, its slice endpoint's (ready, serving, terminating).
fn slice_conditions(slices: &[EndpointSlice]) -> std::collections::BTreeMap<String, (bool, bool, bool)> {
    slices
        .iter()
        .flat_map(|s| s.endpoints.iter().flatten())
        .map(|e| {
            let c = e.conditions.clone().unwrap_or_default();
            (
                e.target_ref.as_ref().and_then(|r| r.name.clone()).unwrap_or_default(),
                (
                    c.ready.unwrap_or(false),
                    c.serving.unwrap_or(false),
                    c.terminating.unwrap_or(false),
                ),
            )
        })
        .collect()
}

fn pod_ip(p: &Pod) -> String {
    p.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_endpoints_follow_pod_readiness() {
    let e = env(3).await;
    let _cm = ControllersBinary::start(&e.cluster, &[]).unwrap();
    create_deployment(&e.client, "web", 3).await;
    create_service(&e.client, "web", json!({"app": "web"})).await;
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), NS);
    let endpoints: Api<Endpoints> = Api::namespaced(e.client.clone(), NS);

    let running = wait_for("3 ready pods", WAIT, || async {
        let l = pods.list(&ListParams::default()).await?.items;
        Ok((l.len() == 3 && l.iter().all(|p| !pod_ip(p).is_empty())).then_some(l))
    })
    .await
    .unwrap();
    let all_ips: BTreeSet<String> = running.iter().map(pod_ip).collect();
    let ep = wait_for("Endpoints with 3 ready addresses", WAIT, || async {
        let ep = endpoints.get_opt("web").await?;
        Ok(ep.filter(|ep| endpoints_ips(ep) == (all_ips.clone(), BTreeSet::new())))
    })
    .await
    .unwrap();
    // The named targetPort resolves to the container port.
    let ports = ep.subsets.as_ref().unwrap()[0].ports.clone().unwrap();
    assert_eq!((ports[0].name.as_deref(), ports[0].port), (Some("web"), 8080));
    let addr = &ep.subsets.as_ref().unwrap()[0].addresses.as_ref().unwrap()[0];
    assert!(addr.node_name.as_deref().is_some_and(|n| n.starts_with("node-")));
    assert_eq!(addr.target_ref.as_ref().unwrap().kind.as_deref(), Some("Pod"));

    let slices = wait_for("one slice with 3 ready endpoints", WAIT, || async {
        let s = slices_of(&e.client, "web").await?;
        let c = slice_conditions(&s);
        Ok((c.len() == 3 && c.values().all(|v| *v == (true, true, false))).then_some(s))
    })
    .await
    .unwrap();
    assert_eq!(slices.len(), 1);
    let slice = &slices[0];
    assert_eq!(slice.address_type, "IPv4");
    assert_eq!(
        slice
            .labels()
            .get("endpointslice.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("endpointslice-controller.k8s.io")
    );
    assert!(slice.metadata.generate_name.as_deref() == Some("web-"));
    assert_eq!(slice.owner_references()[0].kind, "Service");
    for ep in slice.endpoints.iter().flatten() {
        assert!(ep.zone.as_deref().is_some_and(|z| z.starts_with("zone-")), "{ep:?}");
        assert!(ep.node_name.is_some());
    }
    assert_eq!(slice.ports.as_ref().unwrap()[0].port, Some(8080));

    // A pod fails its readiness probe: not ready in both, and the change
    // time is the Endpoints' trigger time.
    let sick = running[0].name_any();
    let sick_ip = pod_ip(&running[0]);
    let at = (k8s_openapi::jiff::Timestamp::now() + k8s_openapi::jiff::SignedDuration::from_secs(5))
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    pods.patch_status(
        &sick,
        &PatchParams::default(),
        &Patch::Strategic(
            json!({"status": {"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": at}]}}),
        ),
    )
    .await
    .unwrap();
    let ep = wait_for("the sick pod not ready in Endpoints", WAIT, || async {
        let ep = endpoints.get("web").await?;
        let (ready, not_ready) = endpoints_ips(&ep);
        Ok((ready.len() == 2 && not_ready == BTreeSet::from([sick_ip.clone()])).then_some(ep))
    })
    .await
    .unwrap();
    assert_eq!(
        ep.annotations().get("endpoints.kubernetes.io/last-change-trigger-time"),
        Some(&at),
        "{ep:?}"
    );
    wait_for("the sick pod not ready in its slice", WAIT, || async {
        let c = slice_conditions(&slices_of(&e.client, "web").await?);
        Ok((c.get(&sick) == Some(&(false, false, false))).then_some(()))
    })
    .await
    .unwrap();

    // A pod is terminating (held by a finalizer): gone from Endpoints,
    // serving and terminating in its slice.
    let leaving = running[1].name_any();
    let leaving_ip = pod_ip(&running[1]);
    pods.patch(
        &leaving,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["e2e.rkube.io/hold"]}})),
    )
    .await
    .unwrap();
    pods.delete(&leaving, &DeleteParams::default()).await.unwrap();
    wait_for("the terminating pod out of Endpoints", WAIT, || async {
        let ep = endpoints.get("web").await?;
        let (ready, not_ready) = endpoints_ips(&ep);
        Ok((!ready.contains(&leaving_ip) && !not_ready.contains(&leaving_ip)).then_some(()))
    })
    .await
    .unwrap();
    wait_for("the terminating pod terminating in its slice", WAIT, || async {
        let c = slice_conditions(&slices_of(&e.client, "web").await?);
        Ok((c.get(&leaving) == Some(&(false, true, true))).then_some(()))
    })
    .await
    .unwrap();
    pods.patch(
        &leaving,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();

    // The Service goes: so do its Endpoints and slices.
    Api::<Service>::namespaced(e.client.clone(), NS)
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("Endpoints and slices deleted", WAIT, || async {
        let gone = endpoints.get_opt("web").await?.is_none() && slices_of(&e.client, "web").await?.is_empty();
        Ok(gone.then_some(()))
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_100_pods_are_split_into_several_slices() {
    let e = env(3).await;
    let _cm = ControllersBinary::start(&e.cluster, &[]).unwrap();
    create_deployment(&e.client, "big", 230).await;
    create_service(&e.client, "big", json!({"app": "big"})).await;
    let slices = wait_for("230 endpoints in slices", Duration::from_secs(90), || async {
        let s = slices_of(&e.client, "big").await?;
        let n: usize = s.iter().map(|s| s.endpoints.as_ref().map_or(0, Vec::len)).sum();
        Ok((n == 230).then_some(s))
    })
    .await
    .unwrap();
    let mut sizes: Vec<usize> = slices
        .iter()
        .map(|s| s.endpoints.as_ref().map_or(0, Vec::len))
        .collect();
    sizes.sort_unstable();
    assert!(sizes.iter().all(|n| *n <= 100), "{sizes:?}");
    assert_eq!(sizes.len(), 3, "{sizes:?}");
    let endpoints: Api<Endpoints> = Api::namespaced(e.client.clone(), NS);
    wait_for("230 addresses in Endpoints", WAIT, || async {
        let ep = endpoints.get_opt("big").await?;
        Ok(ep.filter(|ep| {
            let (r, n) = endpoints_ips(ep);
            r.len() + n.len() == 230
        }))
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_endpoints_of_a_selectorless_service_are_mirrored() {
    let e = env(1).await;
    let _cm = ControllersBinary::start(&e.cluster, &["--controllers=endpointslice-mirroring-controller"]).unwrap();
    create_service(&e.client, "external", Value::Null).await;
    let endpoints: Api<Endpoints> = Api::namespaced(e.client.clone(), NS);
    let custom: Endpoints = parse(json!({"metadata": {"name": "external", "labels": {"team": "db"}},
        "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "notReadyAddresses": [{"ip": "192.0.2.11"}],
                     "ports": [{"name": "web", "port": 5432, "protocol": "TCP"}]}]}));
    endpoints.create(&PostParams::default(), &custom).await.unwrap();
    let slice = wait_for("a mirrored slice", WAIT, || async {
        let s = slices_of(&e.client, "external").await?;
        Ok(s.into_iter().next())
    })
    .await
    .unwrap();
    assert_eq!(
        slice
            .labels()
            .get("endpointslice.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("endpointslicemirroring-controller.k8s.io")
    );
    assert_eq!(slice.labels().get("team").map(String::as_str), Some("db"));
    assert_eq!(slice.owner_references()[0].kind, "Endpoints");
    let eps: Vec<(String, bool)> = slice
        .endpoints
        .iter()
        .flatten()
        .map(|e| (e.addresses[0].clone(), e.conditions.as_ref().unwrap().ready.unwrap()))
        .collect();
    assert_eq!(
        eps,
        [("192.0.2.10".to_string(), true), ("192.0.2.11".to_string(), false)]
    );

    endpoints
        .patch(
            "external",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"subsets": [{"addresses": [{"ip": "192.0.2.12"}], "ports": [{"name": "web", "port": 5432}]}]}),
            ),
        )
        .await
        .unwrap();
    wait_for("the slice follows the Endpoints", WAIT, || async {
        let s = slices_of(&e.client, "external").await?;
        let ips: Vec<String> = s
            .iter()
            .flat_map(|s| s.endpoints.iter().flatten())
            .map(|e| e.addresses[0].clone())
            .collect();
        Ok((ips == ["192.0.2.12"]).then_some(()))
    })
    .await
    .unwrap();
    endpoints.delete("external", &DeleteParams::default()).await.unwrap();
    wait_for("mirrored slices deleted", WAIT, || async {
        Ok(slices_of(&e.client, "external").await?.is_empty().then_some(()))
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_gc_removes_orphans_and_terminated_pods_over_the_threshold() {
    let e = env(1).await;
    let cm = ControllerManager::start(&e.cluster, |c| {
        c.controllers = rkube_controllers::selection::Selection::parse(&["podgc".to_string()], |_| true).unwrap();
        c.endpoints.terminated_pod_gc_threshold = 2;
        c.endpoints.pod_gc_period = Duration::from_millis(500);
        c.endpoints.pod_gc_quarantine = Duration::from_secs(1);
    })
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), NS);
    // Four pods that run to completion, created one after another.
    for i in 0..4 {
        let p: Pod = parse(
            json!({"metadata": {"name": format!("done-{i}"), "annotations": {EXIT_AFTER_ANNOTATION: "0"}},
            "spec": {"nodeName": "node-0", "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}),
        );
        pods.create(&PostParams::default(), &p).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let names = || async {
        let mut names: Vec<String> = pods
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .map(|p| p.name_any())
            .collect();
        names.sort();
        anyhow::Ok(names)
    };
    wait_for("the two newest terminated pods left", WAIT, || async {
        Ok((names().await? == ["done-2", "done-3"]).then_some(()))
    })
    .await
    .unwrap();
    // A pod bound to a node that does not exist.
    let orphan: Pod = parse(json!({"metadata": {"name": "orphan"},
        "spec": {"nodeName": "ghost", "containers": [{"name": "c", "image": "busybox"}]}}));
    pods.create(&PostParams::default(), &orphan).await.unwrap();
    wait_for("the orphan gone", WAIT, || async {
        Ok((names().await? == ["done-2", "done-3"]).then_some(()))
    })
    .await
    .unwrap();
    cm.stop().await.unwrap();
}
