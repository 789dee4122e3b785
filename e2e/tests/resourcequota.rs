//! ResourceQuota end to end: the real apiserver (ResourceQuota admission
//! on) and the controller-manager binary running only the
//! resourcequota-controller. The controller fills `status.hard` and
//! `status.used` (until it does, admission refuses charged creates with
//! "status unknown"), usage follows creations and deletions, and a create
//! over the quota is refused with upstream's message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ResourceQuota, Service};
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use rkube_e2e::cluster::{Backend, TestCluster, target_dir};
use rkube_e2e::controllers_support::{client, wait_for};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const NS: &str = "team";

/// The `rkube-controllers` binary (its log in the cluster's data
/// directory), killed on drop.
struct ControllersBinary(Child, std::path::PathBuf);

impl ControllersBinary {
    fn start(c: &TestCluster, extra: &[&str]) -> ControllersBinary {
        let bin = target_dir().unwrap().join("rkube-controllers");
        assert!(
            bin.exists(),
            "{} is missing: build it with `cargo build -p rkube-controllers`",
            bin.display()
        );
        let log = c.data_dir().join("controllers.log");
        let child = Command::new(bin)
            .arg("--kubeconfig")
            .arg(c.kubeconfig())
            .args(["--leader-elect=false", "--port=0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        ControllersBinary(child, log)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.1).unwrap_or_default()
    }
}

impl Drop for ControllersBinary {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn parse<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

fn used(q: &ResourceQuota) -> Vec<String> {
    q.status
        .as_ref()
        .and_then(|s| s.used.as_ref())
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.0))
        .collect()
}

fn pod(name: &str, cpu: &str) -> Pod {
    parse(
        json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
        "resources": {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}}]}}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_usage_follows_objects_and_over_quota_is_refused() {
    let cluster = TestCluster::start_with(
        Backend::Embedded,
        &["--disable-admission-plugins=ServiceAccount,TaintNodesByCondition"],
    )
    .await
    .expect("cluster starts");
    let client: Client = client(&cluster).await.unwrap();
    let ns: Namespace = parse(json!({"metadata": {"name": NS}}));
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), NS);
    let q: ResourceQuota = parse(json!({"metadata": {"name": "q"},
        "spec": {"hard": {"pods": "2", "requests.cpu": "1", "configmaps": "3", "services": "1", "count/secrets": "5"}}}));
    quotas.create(&PostParams::default(), &q).await.unwrap();

    let cm = ControllersBinary::start(&cluster, &["--controllers=resourcequota"]);
    let fail = |e: anyhow::Error| -> ! { panic!("{e:#}\ncontroller-manager log:\n{}", cm.log()) };
    let wait_used = |want: Vec<&'static str>| {
        let quotas = quotas.clone();
        async move {
            wait_for(&format!("status.used {want:?}"), WAIT, || async {
                let q = quotas.get("q").await?;
                let hard_ok = q
                    .status
                    .as_ref()
                    .and_then(|s| s.hard.as_ref())
                    .is_some_and(|h| h.len() == 5);
                Ok((hard_ok && used(&q) == want).then_some(()))
            })
            .await
        }
    };
    wait_used(vec![
        "configmaps=0",
        "count/secrets=0",
        "pods=0",
        "requests.cpu=0",
        "services=0",
    ])
    .await
    .unwrap_or_else(|e| fail(e));

    // Usage follows creation.
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    pods.create(&PostParams::default(), &pod("a", "400m")).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    for name in ["one", "two"] {
        let c: ConfigMap = parse(json!({"metadata": {"name": name}}));
        cms.create(&PostParams::default(), &c).await.unwrap();
    }
    wait_used(vec![
        "configmaps=2",
        "count/secrets=0",
        "pods=1",
        "requests.cpu=400m",
        "services=0",
    ])
    .await
    .unwrap_or_else(|e| fail(e));

    // Over quota: refused with upstream's message.
    let err = pods
        .create(&PostParams::default(), &pod("big", "700m"))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("not an API error: {err}")
    };
    assert_eq!(status.code, 403);
    assert!(
        status.message.contains(
            "exceeded quota: q, requested: requests.cpu=700m, used: requests.cpu=400m, limited: requests.cpu=1"
        ),
        "{}",
        status.message
    );
    let svc: Service = parse(json!({"metadata": {"name": "s1"}, "spec": {"ports": [{"port": 80}]}}));
    Api::<Service>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &svc)
        .await
        .unwrap();
    let svc2: Service = parse(json!({"metadata": {"name": "s2"}, "spec": {"ports": [{"port": 80}]}}));
    let err = Api::<Service>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &svc2)
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 403), "{err}");

    // Deletion releases usage (the controller's job, not admission's), and
    // the freed room can be used again.
    pods.delete("a", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    cms.delete("one", &DeleteParams::default()).await.unwrap();
    wait_used(vec![
        "configmaps=1",
        "count/secrets=0",
        "pods=0",
        "requests.cpu=0",
        "services=1",
    ])
    .await
    .unwrap_or_else(|e| fail(e));
    pods.create(&PostParams::default(), &pod("big", "700m")).await.unwrap();
    wait_used(vec![
        "configmaps=1",
        "count/secrets=0",
        "pods=1",
        "requests.cpu=700m",
        "services=1",
    ])
    .await
    .unwrap_or_else(|e| fail(e));
}
