//! Failure injection from outside the process: a node of ours labelled
//! [`HEARTBEATS_LABEL`]`=`[`STOPPED`] stops renewing its Lease and
//! posting its status, as a kubelet that died; removing the label resumes
//! both. One watch, selected by the label, so only stopped nodes are sent.
//!
//! `kubectl label node sim-node-1 sim.rkube.io/heartbeats=stopped`, then
//! `kubectl label node sim-node-1 sim.rkube.io/heartbeats-` to resume.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use tracing::{info, warn};

use super::State;

/// The node label that stops a node's heartbeats.
pub const HEARTBEATS_LABEL: &str = "sim.rkube.io/heartbeats";
/// Its value that does.
pub const STOPPED: &str = "stopped";

/// Watches the labelled nodes and keeps [`State`]'s label-stopped set
/// equal to those of ours, forever.
pub async fn run(client: Client, state: Arc<State>) {
    let selector = format!("{HEARTBEATS_LABEL}={STOPPED}");
    let config = watcher::Config::default().labels(&selector);
    let stream = watcher::watcher(Api::<Node>::all(client), config).default_backoff();
    futures::pin_mut!(stream);
    // Nodes seen during a (re)list, which replaces the set when it is done.
    let mut relisted: Option<HashSet<String>> = None;
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(Event::Apply(n)) => set(&state, n.name_any(), true),
            Ok(Event::Delete(n)) => set(&state, n.name_any(), false),
            Ok(Event::Init) => relisted = Some(HashSet::new()),
            Ok(Event::InitApply(n)) => {
                if let Some(names) = relisted.as_mut() {
                    names.insert(n.name_any());
                }
            }
            Ok(Event::InitDone) => {
                let names = relisted.take().unwrap_or_default();
                let mut stopped = state.lock_stopped_by_label();
                for gone in stopped.difference(&names) {
                    info!(node = %gone, "heartbeats resumed (label removed)");
                }
                *stopped = names.into_iter().filter(|n| state.nodes.contains_key(n)).collect();
                for name in stopped.iter() {
                    info!(node = %name, "heartbeats stopped by label");
                }
            }
            Err(e) => warn!(error = %e, "watch of {selector} nodes failed; retrying"),
        }
    }
}

fn set(state: &State, name: String, stopped: bool) {
    if !state.nodes.contains_key(&name) {
        return;
    }
    let mut set = state.lock_stopped_by_label();
    if stopped {
        if set.insert(name.clone()) {
            info!(node = %name, "heartbeats stopped by label");
        }
    } else if set.remove(&name) {
        info!(node = %name, "heartbeats resumed (label removed)");
    }
}
