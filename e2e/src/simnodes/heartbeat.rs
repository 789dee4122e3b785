//! Keeping simulated nodes alive: their Leases in `kube-node-lease` and
//! the heartbeat of their conditions.

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::sync::Arc;

use super::node::conditions;
use super::{State, pacing};

/// The namespace of node leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// Lease duration, as the kubelet's default.
pub const LEASE_DURATION_SECONDS: i32 = 40;

/// Creates the lease namespace (if missing) and every node's Lease, owned
/// by its Node.
pub async fn ensure_leases(client: &Client, state: &State) -> Result<()> {
    let ns: Api<Namespace> = Api::all(client.clone());
    let obj: Namespace = serde_json::from_value(json!({"metadata": {"name": LEASE_NAMESPACE}}))?;
    match ns.create(&PostParams::default(), &obj).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(anyhow::Error::from(e).context("creating namespace kube-node-lease")),
    }
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    futures::stream::iter(state.nodes.values())
        .map(|n| {
            let (nodes, leases) = (nodes.clone(), leases.clone());
            async move {
                let uid = nodes.get(&n.name).await?.metadata.uid.unwrap_or_default();
                let lease: Lease = serde_json::from_value(json!({
                    "metadata": {"name": n.name, "namespace": LEASE_NAMESPACE,
                                 "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": n.name, "uid": uid}]},
                    "spec": {"holderIdentity": n.name, "leaseDurationSeconds": LEASE_DURATION_SECONDS,
                             "renewTime": micro_now()},
                }))?;
                match leases.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(e)) if e.code == 409 => renew(&leases, &n.name).await,
                    Err(e) => Err(anyhow::Error::from(e).context(format!("creating lease {}", n.name))),
                }
            }
        })
        .buffer_unordered(state.config.concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

fn micro_now() -> String {
    Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

async fn renew(leases: &Api<Lease>, name: &str) -> Result<()> {
    let patch = json!({"spec": {"renewTime": micro_now(), "holderIdentity": name}});
    leases
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .with_context(|| format!("renewing lease {name}"))?;
    Ok(())
}

/// Renews every lease each `lease_interval`, forever, the nodes' renewals
/// spread evenly over the interval (see [`pacing`]).
pub async fn renew_leases(client: Client, state: Arc<State>) {
    let leases: Api<Lease> = Api::namespaced(client, LEASE_NAMESPACE);
    let names = node_names(&state);
    let interval = state.config.lease_interval;
    pacing::spread_forever(state, names, interval, "lease renewals", move |n| {
        let leases = leases.clone();
        async move { renew(&leases, &n).await }
    })
    .await;
}

/// Posts every node's conditions with a fresh heartbeat each
/// `status_interval`, forever, spread like the lease renewals.
pub async fn report_status(client: Client, state: Arc<State>) {
    let nodes: Api<Node> = Api::all(client);
    let names = node_names(&state);
    let interval = state.config.status_interval;
    pacing::spread_forever(state, names, interval, "node status heartbeats", move |n| {
        let nodes = nodes.clone();
        async move {
            let patch = json!({"status": {"conditions": conditions(Timestamp::now(), false)}});
            nodes
                .patch_status(&n, &PatchParams::default(), &Patch::Strategic(patch))
                .await
        }
    })
    .await;
}

/// The nodes' names in index order (so that turns follow the nodes'
/// order, whatever the map's).
fn node_names(state: &State) -> Vec<String> {
    let mut nodes: Vec<_> = state.nodes.values().collect();
    nodes.sort_by_key(|n| n.index);
    nodes.into_iter().map(|n| n.name.clone()).collect()
}
