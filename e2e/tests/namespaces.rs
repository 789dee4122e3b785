//! Namespace deletion by the controller manager (run in-process) against
//! the real apiserver binary: every object of every discovered kind goes;
//! an object holding a custom finalizer keeps the namespace Terminating,
//! with upstream's NamespaceContentRemaining and
//! NamespaceFinalizersRemaining conditions, until the finalizer is
//! removed; then the namespace is removed. (Custom resources are not
//! covered: the apiserver stores CustomResourceDefinitions but does not
//! serve their resources yet.)
//!
//! Tests run on a multi-threaded runtime: kubectl is run as a blocking
//! process and must not stop the in-process controllers meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, NamespaceCondition, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use rkube_e2e::cluster::{Backend, TestCluster};
use rkube_e2e::controllers_support::{ControllerManager, client, create_namespace, init_test_logging, wait_for};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);
const FINALIZER: &str = "example.com/hold";

async fn setup() -> (TestCluster, Client) {
    init_test_logging();
    let c = TestCluster::start(Backend::Embedded).await.expect("cluster starts");
    let client = client(&c).await.expect("client");
    (c, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_deletion_removes_every_object_then_the_namespace() {
    let (c, client) = setup().await;
    let cm = ControllerManager::start(&c, |_| {}).unwrap();
    create_namespace(&client, "doomed").await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    for i in 0..3 {
        let m: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("cm-{i}")}})).unwrap();
        cms.create(&PostParams::default(), &m).await.unwrap();
    }
    c.ok(&[
        "-n",
        "doomed",
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
    ])
    .unwrap();
    c.ok(&["-n", "doomed", "create", "secret", "generic", "s", "--from-literal=a=b"])
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "doomed");
    wait_for("deployment pods", WAIT, || async {
        Ok((pods.list(&ListParams::default()).await?.items.len() == 2).then_some(()))
    })
    .await
    .unwrap();

    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces.delete("doomed", &DeleteParams::default()).await.unwrap();
    wait_for("namespace gone", WAIT, || async {
        Ok(namespaces.get_opt("doomed").await?.is_none().then_some(()))
    })
    .await
    .unwrap();
    // Nothing is left behind in any kind.
    for args in [
        ["get", "all", "-n", "doomed", "-o", "name"],
        [
            "get",
            "configmaps,secrets,serviceaccounts",
            "-n",
            "doomed",
            "-o",
            "name",
        ],
    ] {
        assert_eq!(c.ok(&args).unwrap().trim(), "", "{args:?}");
    }
    cm.stop().await.unwrap();
}

fn condition(ns: &Namespace, type_: &str) -> Option<NamespaceCondition> {
    ns.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_finalizer_holds_the_namespace_until_it_is_removed() {
    let (c, client) = setup().await;
    let cm = ControllerManager::start(&c, |_| {}).unwrap();
    create_namespace(&client, "held").await.unwrap();
    // An object of a group no controller writes to, found by discovery.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "held");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "lock"}, "spec": {"holderIdentity": "someone"},
    }))
    .unwrap();
    leases.create(&PostParams::default(), &lease).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "held");
    let held: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "keeper", "finalizers": [FINALIZER]},
        "data": {"a": "b"},
    }))
    .unwrap();
    cms.create(&PostParams::default(), &held).await.unwrap();

    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces.delete("held", &DeleteParams::default()).await.unwrap();
    // The Lease goes; the ConfigMap stays, being deleted, and the
    // namespace reports both facts.
    let ns = wait_for("the finalizer conditions", WAIT, || async {
        let ns = namespaces.get("held").await?;
        let remaining = condition(&ns, "NamespaceFinalizersRemaining").is_some_and(|c| c.status == "True");
        let lease_gone = leases.get_opt("lock").await?.is_none();
        Ok((remaining && lease_gone).then_some(ns))
    })
    .await
    .unwrap();
    assert_eq!(ns.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Terminating"));
    // Objects other controllers write meanwhile (events) may be counted
    // in the same pass, so the ConfigMap's part is matched alone.
    let content = condition(&ns, "NamespaceContentRemaining").unwrap();
    let message = content.message.clone().unwrap_or_default();
    assert_eq!(
        (content.status.as_str(), content.reason.as_deref()),
        ("True", Some("SomeResourcesRemain"))
    );
    assert!(
        message.starts_with("Some resources are remaining: ")
            && message.contains("configmaps has 1 resource instances"),
        "{message}"
    );
    let finalizers = condition(&ns, "NamespaceFinalizersRemaining").unwrap();
    assert_eq!(
        (finalizers.reason.as_deref(), finalizers.message.as_deref()),
        (
            Some("SomeFinalizersRemain"),
            Some("Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances")
        )
    );
    for (type_, reason) in [
        ("NamespaceDeletionDiscoveryFailure", "ResourcesDiscovered"),
        ("NamespaceDeletionContentFailure", "ContentDeleted"),
    ] {
        let cond = condition(&ns, type_).unwrap();
        assert_eq!((cond.status.as_str(), cond.reason.as_deref()), ("False", Some(reason)));
    }
    let keeper = cms.get("keeper").await.unwrap();
    assert!(keeper.metadata.deletion_timestamp.is_some());
    assert_eq!(keeper.finalizers().to_vec(), vec![FINALIZER.to_string()]);
    assert!(
        ns.spec
            .as_ref()
            .and_then(|s| s.finalizers.as_ref())
            .is_some_and(|f| f.iter().any(|f| f == "kubernetes")),
        "{:?}",
        ns.spec
    );

    // Once the finalizer is removed, the ConfigMap and the namespace go.
    cms.patch(
        "keeper",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    wait_for("namespace gone", WAIT, || async {
        Ok(namespaces.get_opt("held").await?.is_none().then_some(()))
    })
    .await
    .unwrap();
    assert!(cms.get_opt("keeper").await.unwrap().is_none());
    cm.stop().await.unwrap();
}
