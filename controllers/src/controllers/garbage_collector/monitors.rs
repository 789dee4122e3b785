//! One metadata-only list+watch per deletable resource, feeding the graph
//! builder's channel (upstream's `monitors`). After a relist, objects that
//! disappeared are reported deleted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::discovery::ApiResource;
use kube::runtime::WatchStreamExt;

use kube::runtime::watcher::{self, Event};
use tokio::sync::{mpsc, watch};

use super::GraphEvent;
use super::graph::Identity;
use crate::discovery::DiscoveredResource;

/// How long startup waits for every monitor's first list.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

struct Monitor {
    task: tokio::task::JoinHandle<()>,
    synced: watch::Receiver<bool>,
}

/// The running monitors, by `group/version/resource`.
pub struct Monitors {
    client: kube::Client,
    /// Set once the server refused a metadata-only watch (406); later
    /// monitors then start with whole objects.
    whole_objects: Arc<AtomicBool>,
    tx: mpsc::UnboundedSender<GraphEvent>,
    monitors: HashMap<String, Monitor>,
}

/// `group/version/plural`.
pub fn monitor_name(r: &DiscoveredResource) -> String {
    format!("{}/{}/{}", r.resource.group, r.resource.version, r.resource.plural)
}

impl Drop for Monitors {
    fn drop(&mut self) {
        for m in self.monitors.values() {
            m.task.abort();
        }
    }
}

impl Monitors {
    pub fn new(client: kube::Client, tx: mpsc::UnboundedSender<GraphEvent>) -> Self {
        Monitors {
            client,
            whole_objects: Arc::new(AtomicBool::new(false)),
            tx,
            monitors: HashMap::new(),
        }
    }

    pub fn names(&self) -> HashSet<String> {
        self.monitors.keys().cloned().collect()
    }

    /// Starts monitors for new resources and stops those for resources
    /// that went away.
    pub fn sync(&mut self, resources: &[DiscoveredResource]) {
        let wanted: HashMap<String, &DiscoveredResource> = resources.iter().map(|r| (monitor_name(r), r)).collect();
        self.monitors.retain(|name, m| {
            let keep = wanted.contains_key(name);
            if !keep {
                m.task.abort();
            }
            keep
        });
        for (name, r) in wanted {
            if self.monitors.contains_key(&name) {
                continue;
            }
            let (synced_tx, synced) = watch::channel(false);
            let task = tokio::spawn(run_monitor(
                self.client.clone(),
                r.resource.clone(),
                self.tx.clone(),
                synced_tx,
                self.whole_objects.clone(),
            ));
            self.monitors.insert(name, Monitor { task, synced });
        }
    }

    /// Waits until every monitor listed once (or the timeout passes).
    pub async fn wait_synced(&self) {
        let all = futures::future::join_all(self.monitors.values().map(|m| {
            let mut rx = m.synced.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        }));
        if tokio::time::timeout(SYNC_TIMEOUT, all).await.is_err() {
            tracing::warn!("timed out waiting for garbage collector monitors to sync; continuing");
        }
    }
}

fn identity(ar: &ApiResource, meta: &ObjectMeta) -> Identity {
    Identity {
        api_version: ar.api_version.clone(),
        kind: ar.kind.clone(),
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
    }
}

type MetaStream = BoxStream<'static, Result<Event<ObjectMeta>, watcher::Error>>;

/// A list+watch of `ar` yielding only metadata: metadata-only requests,
/// or whole objects reduced to their metadata.
fn meta_stream(client: &kube::Client, ar: &ApiResource, metadata_only: bool) -> MetaStream {
    if metadata_only {
        let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(client.clone(), ar);
        watcher::watcher(api, watcher::Config::default())
            .map(|r| r.map(|ev| map_event(ev, |o| o.metadata)))
            .boxed()
    } else {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), ar);
        watcher::watcher(api, watcher::Config::default())
            .map(|r| r.map(|ev| map_event(ev, |o| o.metadata)))
            .boxed()
    }
}

fn map_event<A, B>(ev: Event<A>, f: impl Fn(A) -> B) -> Event<B> {
    match ev {
        Event::Apply(o) => Event::Apply(f(o)),
        Event::Delete(o) => Event::Delete(f(o)),
        Event::InitApply(o) => Event::InitApply(f(o)),
        Event::Init => Event::Init,
        Event::InitDone => Event::InitDone,
    }
}

/// Whether the server refused a metadata-only request (406).
fn refuses_metadata(e: &watcher::Error) -> bool {
    matches!(e, watcher::Error::WatchStartFailed(kube::Error::Api(s)) | watcher::Error::InitialListFailed(kube::Error::Api(s)) if s.code == 406)
}

async fn run_monitor(
    client: kube::Client,
    ar: ApiResource,
    tx: mpsc::UnboundedSender<GraphEvent>,
    synced: watch::Sender<bool>,
    whole_objects: Arc<AtomicBool>,
) {
    let mut metadata_only = !whole_objects.load(Ordering::Relaxed);
    let mut stream = meta_stream(&client, &ar, metadata_only).default_backoff().boxed();
    let mut known: HashSet<String> = HashSet::new();
    let mut relist: Option<HashSet<String>> = None;
    let send_upsert = |meta: ObjectMeta| {
        let id = identity(&ar, &meta);
        let uid = id.uid.clone();
        let _ = tx.send(GraphEvent::Upsert(id, Box::new(meta)));
        uid
    };
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => relist = Some(HashSet::new()),
            Ok(Event::InitApply(meta)) => {
                let uid = send_upsert(meta);
                if let Some(r) = relist.as_mut() {
                    r.insert(uid);
                }
            }
            Ok(Event::InitDone) => {
                if let Some(fresh) = relist.take() {
                    for gone in known.difference(&fresh) {
                        let _ = tx.send(GraphEvent::Delete(gone.clone()));
                    }
                    known = fresh;
                }
                synced.send_replace(true);
            }
            Ok(Event::Apply(meta)) => {
                known.insert(send_upsert(meta));
            }
            Ok(Event::Delete(meta)) => {
                let uid = meta.uid.clone().unwrap_or_default();
                known.remove(&uid);
                let _ = tx.send(GraphEvent::Delete(uid));
            }
            Err(e) if metadata_only && refuses_metadata(&e) => {
                if !whole_objects.swap(true, Ordering::Relaxed) {
                    tracing::info!(resource = %ar.plural, "metadata-only watches refused by the server; watching whole objects");
                }
                metadata_only = false;
                relist = None;
                stream = meta_stream(&client, &ar, metadata_only).default_backoff().boxed();
            }
            Err(e) => {
                tracing::debug!(resource = %ar.plural, error = %e, "garbage collector monitor watch failed; retrying")
            }
        }
    }
}
