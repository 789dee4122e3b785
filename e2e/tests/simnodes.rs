//! The `rkube-simnodes` binary against the real apiserver binary: its
//! failure injection works from outside the process. Labelling a node
//! `sim.rkube.io/heartbeats=stopped` stops that node's Lease renewals and
//! status heartbeats (the other node keeps renewing); removing the label
//! resumes them. `--help` says how.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use rkube_e2e::cluster::{Backend, TestCluster, target_dir};
use rkube_e2e::simnodes::stop_label::{HEARTBEATS_LABEL, STOPPED};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

/// The simulator process, killed (and reaped) on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn renewed(leases: &Api<Lease>, node: &str) -> Option<Timestamp> {
    Some(leases.get_opt(node).await.ok()??.spec?.renew_time?.0)
}

async fn heartbeat(nodes: &Api<Node>, node: &str) -> Option<String> {
    let conditions = nodes.get_opt(node).await.ok()??.status?.conditions?;
    let ready = conditions.into_iter().find(|c| c.type_ == "Ready")?;
    Some(ready.last_heartbeat_time?.0.to_string())
}

fn label(value: Option<&str>) -> Patch<serde_json::Value> {
    Patch::Merge(json!({"metadata": {"labels": {HEARTBEATS_LABEL: value}}}))
}

#[tokio::test]
async fn a_node_label_stops_and_resumes_its_heartbeats() {
    let bin = target_dir().unwrap().join("rkube-simnodes");
    assert!(
        bin.exists(),
        "{} is missing: `cargo build -p rkube-e2e --bins`",
        bin.display()
    );
    let help = String::from_utf8(Command::new(&bin).arg("--help").output().unwrap().stdout).unwrap();
    assert!(
        help.contains("kubectl label node <node> sim.rkube.io/heartbeats=stopped"),
        "{help}"
    );

    let cluster = TestCluster::start(Backend::Embedded).await.expect("cluster starts");
    let kubeconfig = Kubeconfig::read_from(cluster.kubeconfig()).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = Client::try_from(config).unwrap();
    let _sim = Process(
        Command::new(&bin)
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig())
            .args([
                "--nodes",
                "2",
                "--name-prefix",
                "hb-",
                "--lease-interval",
                "1",
                "--status-interval",
                "1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let nodes: Api<Node> = Api::all(client.clone());
    let deadline = Instant::now() + WAIT;
    while renewed(&leases, "hb-0").await.is_none() || renewed(&leases, "hb-1").await.is_none() {
        assert!(Instant::now() < deadline, "the simulated nodes registered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    nodes
        .patch("hb-0", &PatchParams::default(), &label(Some(STOPPED)))
        .await
        .unwrap();
    // Within one 1.5 s window (both intervals are 1 s), hb-0 renews
    // nothing while hb-1 renews: the stop is per node, and the tool runs.
    let deadline = Instant::now() + WAIT;
    loop {
        let before = (
            renewed(&leases, "hb-0").await,
            heartbeat(&nodes, "hb-0").await,
            renewed(&leases, "hb-1").await,
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let after = (
            renewed(&leases, "hb-0").await,
            heartbeat(&nodes, "hb-0").await,
            renewed(&leases, "hb-1").await,
        );
        if before.0 == after.0 && before.1 == after.1 {
            assert_ne!(before.2, after.2, "hb-1 keeps renewing");
            break;
        }
        assert!(Instant::now() < deadline, "hb-0's heartbeats did not stop");
    }

    nodes
        .patch("hb-0", &PatchParams::default(), &label(None))
        .await
        .unwrap();
    let stopped_at = renewed(&leases, "hb-0").await;
    let deadline = Instant::now() + WAIT;
    while renewed(&leases, "hb-0").await == stopped_at {
        assert!(Instant::now() < deadline, "hb-0's heartbeats did not resume");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
