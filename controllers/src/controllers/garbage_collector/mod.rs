//! The garbage collector: keeps an ownership [`graph`] of every object of
//! every deletable kind (metadata-only lists and watches, one monitor per
//! discovered resource, rediscovered every 30 s so new kinds and custom
//! resources are covered), deletes dependents whose owners are gone
//! (background), deletes an owner's blocking dependents before removing
//! its `foregroundDeletion` finalizer (foreground), and removes owner
//! references from dependents before removing an `orphan` finalizer
//! (orphan). Decisions are taken on live reads, never on the graph alone
//! ([`process`]).

pub mod graph;
mod monitors;
mod process;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use kube::discovery::verbs;
use tokio::sync::mpsc;

use crate::discovery::{DiscoveredResource, resources_supporting};
use crate::error::Error;
use crate::manager::ControllerContext;
use crate::queue::WorkQueue;
use crate::runner::{new_queue, run_workers};
use graph::{Effects, Graph, Identity};

const NAME: &str = "garbage-collector-controller";
/// How often new resources are looked for (upstream's resync period).
const REDISCOVERY: Duration = Duration::from_secs(30);

/// Resources the collector never watches (upstream's ignored resources).
const IGNORED: &[(&str, &str)] = &[("", "events"), ("events.k8s.io", "events")];

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

/// Maps an owner reference's `apiVersion`/`kind` to a resource.
#[derive(Debug, Default)]
pub struct RestMapper {
    by_kind: HashMap<(String, String), DiscoveredResource>,
}

impl RestMapper {
    fn from_resources(resources: &[DiscoveredResource]) -> Self {
        let mut by_kind = HashMap::new();
        for r in resources {
            by_kind.insert((r.resource.group.clone(), r.resource.kind.clone()), r.clone());
        }
        RestMapper { by_kind }
    }

    /// The resource for `api_version` (`group/version` or `v1`) and
    /// `kind`, in whatever version discovery prefers.
    pub fn resource_for(&self, api_version: &str, kind: &str) -> Option<&DiscoveredResource> {
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        self.by_kind.get(&(group.to_string(), kind.to_string()))
    }
}

/// A change seen by a monitor.
#[derive(Debug)]
pub enum GraphEvent {
    Upsert(Identity, Box<kube::api::ObjectMeta>),
    Delete(String),
}

/// The collector's shared state.
pub struct GarbageCollector {
    client: kube::Client,
    mapper: Mutex<Arc<RestMapper>>,
    graph: Mutex<Graph>,
    attempt_to_delete: WorkQueue<String>,
    attempt_to_orphan: WorkQueue<String>,
}

impl GarbageCollector {
    fn graph(&self) -> std::sync::MutexGuard<'_, Graph> {
        self.graph.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mapper(&self) -> Arc<RestMapper> {
        self.mapper.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn apply(&self, fx: Effects) {
        for uid in fx.attempt_to_delete {
            self.attempt_to_delete.add(uid);
        }
        for uid in fx.attempt_to_orphan {
            self.attempt_to_orphan.add(uid);
        }
    }

    fn handle(&self, event: GraphEvent) {
        let fx = match event {
            GraphEvent::Upsert(identity, meta) => {
                tracing::trace!(controller = NAME, kind = %identity.kind, name = %identity.name, deleting = meta.deletion_timestamp.is_some(), "observed");
                self.graph().upsert(identity, &meta)
            }
            GraphEvent::Delete(uid) => self.graph().remove(&uid),
        };
        if !fx.attempt_to_delete.is_empty() || !fx.attempt_to_orphan.is_empty() {
            tracing::debug!(controller = NAME, ?fx, "graph changed");
        }
        self.apply(fx);
    }
}

async fn deletable_resources(client: &kube::Client) -> Result<Vec<DiscoveredResource>, kube::Error> {
    let all = resources_supporting(client, &[verbs::LIST, verbs::WATCH, verbs::DELETE]).await?;
    Ok(all
        .into_iter()
        .filter(|r| !IGNORED.contains(&(r.resource.group.as_str(), r.resource.plural.as_str())))
        .collect())
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let resources = loop {
        match deletable_resources(&ctx.client).await {
            Ok(r) => break r,
            Err(e) => {
                tracing::warn!(controller = NAME, error = %e, "discovery failed; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    };
    let gc = Arc::new(GarbageCollector {
        client: ctx.client.clone(),
        mapper: Mutex::new(Arc::new(RestMapper::from_resources(&resources))),
        graph: Mutex::new(Graph::default()),
        attempt_to_delete: new_queue("garbage_collector_attempt_to_delete", &ctx.metrics),
        attempt_to_orphan: new_queue("garbage_collector_attempt_to_orphan", &ctx.metrics),
    });
    let (tx, mut rx) = mpsc::unbounded_channel::<GraphEvent>();
    // One task applies every change to the graph, in order.
    let builder = {
        let gc = gc.clone();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                gc.handle(ev);
            }
        })
    };
    let mut monitors = monitors::Monitors::new(ctx.client.clone(), tx);
    monitors.sync(&resources);
    monitors.wait_synced().await;
    tracing::info!(
        controller = NAME,
        resources = resources.len(),
        "all resource monitors have synced; proceeding to collect garbage"
    );

    let mut workers = tokio::task::JoinSet::new();
    let workers_count = ctx.config.concurrency.garbage_collector;
    {
        let gc = gc.clone();
        workers.spawn(run_workers(
            NAME,
            gc.attempt_to_delete.clone(),
            workers_count,
            ctx.metrics.clone(),
            move |uid| {
                let gc = gc.clone();
                async move { gc.attempt_to_delete_item(&uid).await }
            },
        ));
    }
    {
        let gc = gc.clone();
        workers.spawn(run_workers(
            NAME,
            gc.attempt_to_orphan.clone(),
            workers_count.min(5),
            ctx.metrics.clone(),
            move |uid| {
                let gc = gc.clone();
                async move { gc.attempt_to_orphan_item(&uid).await }
            },
        ));
    }
    // Rediscover resources: monitor new ones, drop removed ones.
    loop {
        tokio::time::sleep(REDISCOVERY).await;
        match deletable_resources(&ctx.client).await {
            Ok(resources) => {
                let known: HashSet<String> = monitors.names();
                let fresh: HashSet<String> = resources.iter().map(monitors::monitor_name).collect();
                if known != fresh {
                    tracing::info!(
                        controller = NAME,
                        resources = resources.len(),
                        "resources changed; updating monitors"
                    );
                    *gc.mapper.lock().unwrap_or_else(|e| e.into_inner()) =
                        Arc::new(RestMapper::from_resources(&resources));
                    monitors.sync(&resources);
                }
            }
            Err(e) => tracing::warn!(controller = NAME, error = %e, "rediscovery failed"),
        }
        if builder.is_finished() {
            return Err(Error::other("graph builder stopped"));
        }
    }
}
