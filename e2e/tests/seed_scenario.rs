//! The controller manager's seed scenario, as a user runs it: against the
//! real apiserver binary, with the scheduler and controller manager
//! in-process and two simulated nodes as kubelets,
//! `kubectl create deployment httpd-app --image=httpd --replicas=2`
//! reaches READY 2/2, and `kubectl get pod -o wide` shows both pods
//! Running with their IPs and node names (the same the API reports).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use rkube_e2e::controllers_support::{Controllers, Env, EnvOptions, sim_nodes};

/// The cells of a kubectl table, by column header (headers are single
/// words or, like `NOMINATED NODE`, two words separated by one space).
fn table(out: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = out.lines();
    let header = lines.next().expect("a header");
    // Columns start where a header word follows two or more spaces.
    let mut starts = vec![0];
    let bytes = header.as_bytes();
    for i in 2..bytes.len() {
        if bytes[i] != b' ' && bytes[i - 1] == b' ' && bytes[i - 2] == b' ' {
            starts.push(i);
        }
    }
    let cell = |line: &str, i: usize| {
        let from = starts[i].min(line.len());
        let to = starts.get(i + 1).copied().unwrap_or(line.len()).min(line.len());
        line[from..to].trim().to_string()
    };
    let names: Vec<String> = (0..starts.len()).map(|i| cell(header, i)).collect();
    lines
        .map(|l| names.iter().enumerate().map(|(i, n)| (n.clone(), cell(l, i))).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_deployment_reaches_ready_and_pods_show_ips_and_nodes() {
    let e = Env::start(EnvOptions {
        nodes: vec![sim_nodes("node-", 2)],
        scheduler: true,
        controllers: Controllers::InProcess,
        ..EnvOptions::default()
    })
    .await
    .expect("environment starts");
    let c = &e.cluster;
    // kubectl blocks; the in-process controllers keep running meanwhile.
    let kubectl = |args: &[&str]| tokio::task::block_in_place(|| c.ok(args)).unwrap();

    let created = kubectl(&["create", "deployment", "httpd-app", "--image=httpd", "--replicas=2"]);
    assert_eq!(created.trim(), "deployment.apps/httpd-app created");
    let status = kubectl(&["rollout", "status", "deployment/httpd-app", "--timeout=60s"]);
    assert!(status.contains("successfully rolled out"), "{status}");

    let deployments = table(&kubectl(&["get", "deployment", "httpd-app"]));
    assert_eq!(deployments.len(), 1, "{deployments:?}");
    let d = &deployments[0];
    assert_eq!(
        (
            d["NAME"].as_str(),
            d["READY"].as_str(),
            d["UP-TO-DATE"].as_str(),
            d["AVAILABLE"].as_str()
        ),
        ("httpd-app", "2/2", "2", "2"),
        "{d:?}"
    );

    let out = kubectl(&["get", "pod", "-o", "wide"]);
    let rows = table(&out);
    assert_eq!(rows.len(), 2, "{out}");
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    let listed = pods.list(&ListParams::default().labels("app=httpd-app")).await.unwrap();
    for row in &rows {
        assert!(row["NAME"].starts_with("httpd-app-"), "{out}");
        assert_eq!(
            (row["READY"].as_str(), row["STATUS"].as_str()),
            ("1/1", "Running"),
            "{out}"
        );
        let ip: Ipv4Addr = row["IP"].parse().unwrap_or_else(|_| panic!("an IP in {out}"));
        assert!(row["NODE"].starts_with("node-"), "{out}");
        let pod = listed
            .items
            .iter()
            .find(|p| p.name_any() == row["NAME"])
            .expect("listed pod");
        let status = pod.status.as_ref().unwrap();
        assert_eq!(status.pod_ip.as_deref(), Some(ip.to_string().as_str()));
        assert_eq!(
            pod.spec.as_ref().unwrap().node_name.as_deref(),
            Some(row["NODE"].as_str())
        );
    }
    assert_ne!(rows[0]["IP"], rows[1]["IP"], "{out}");
}
