//! Shared informers: one list+watch per kind for the whole process (a
//! kube-rs `watcher` feeding an in-memory cache indexed by namespace), with
//! change handlers, like client-go's `SharedInformerFactory`.
//!
//! A handler registered late is first told about every cached object as
//! [`Change::Added`], so registration order does not matter. After a
//! relist (the watcher's `Init` .. `InitDone`), objects missing from the new
//! list are reported as [`Change::Deleted`].
//!
//! Objects are cached as the `transform` module leaves them (without
//! `metadata.managedFields`, as kube-controller-manager's informers).

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, RwLock};

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch as tokio_watch;

use crate::queue::WorkQueue;

mod transform;

/// One change seen by an informer.
#[derive(Debug)]
pub enum Change<'a, K> {
    /// A new object (also every cached object when a handler registers).
    Added(&'a Arc<K>),
    /// An object changed (or was re-listed).
    Updated { old: &'a Arc<K>, new: &'a Arc<K> },
    /// An object is gone (last known state).
    Deleted(&'a Arc<K>),
}

impl<'a, K> Change<'a, K> {
    /// The object as it is now (its last known state if deleted).
    pub fn object(&self) -> &'a Arc<K> {
        match self {
            Change::Added(o) | Change::Updated { new: o, .. } | Change::Deleted(o) => o,
        }
    }

    /// Whether the object is gone.
    pub fn is_deleted(&self) -> bool {
        matches!(self, Change::Deleted(_))
    }
}

/// A handler that queues the key of every object added, updated or
/// deleted: what a controller registers on the kind it reconciles.
pub fn enqueue_changes<K: Resource>(queue: WorkQueue<String>) -> impl Fn(Change<'_, K>) + Send + Sync + 'static {
    move |change| queue.add(object_key(change.object().as_ref()))
}

type Handler<K> = Arc<dyn Fn(Change<'_, K>) + Send + Sync>;

/// `(namespace, name)`; namespace is empty for cluster-scoped objects.
pub type ObjectKey = (String, String);

struct Cache<K> {
    /// namespace -> name -> object.
    by_namespace: HashMap<String, BTreeMap<String, Arc<K>>>,
}

impl<K> Cache<K> {
    fn get(&self, ns: &str, name: &str) -> Option<Arc<K>> {
        self.by_namespace.get(ns).and_then(|m| m.get(name)).cloned()
    }
    fn insert(&mut self, ns: String, name: String, obj: Arc<K>) -> Option<Arc<K>> {
        self.by_namespace.entry(ns).or_default().insert(name, obj)
    }
    fn remove(&mut self, ns: &str, name: &str) -> Option<Arc<K>> {
        let m = self.by_namespace.get_mut(ns)?;
        let old = m.remove(name);
        if m.is_empty() {
            self.by_namespace.remove(ns);
        }
        old
    }
}

struct Inner<K> {
    cache: RwLock<Cache<K>>,
    handlers: Mutex<Vec<Handler<K>>>,
    synced: tokio_watch::Sender<bool>,
}

/// A shared cache of one kind; cheap to clone.
pub struct Informer<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Informer {
            inner: self.inner.clone(),
        }
    }
}

fn key_of<K: Resource>(obj: &K) -> ObjectKey {
    (
        obj.meta().namespace.clone().unwrap_or_default(),
        obj.meta().name.clone().unwrap_or_default(),
    )
}

impl<K> Informer<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default,
{
    fn new() -> Self {
        Informer {
            inner: Arc::new(Inner {
                cache: RwLock::new(Cache {
                    by_namespace: HashMap::new(),
                }),
                handlers: Mutex::new(Vec::new()),
                synced: tokio_watch::channel(false).0,
            }),
        }
    }

    /// Runs the list+watch until the task is dropped.
    async fn run(self, api: Api<K>) {
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut relist: Option<HashMap<ObjectKey, Arc<K>>> = None;
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init) => relist = Some(HashMap::new()),
                Ok(Event::InitApply(mut obj)) => {
                    transform::transform(&mut obj);
                    if let Some(r) = relist.as_mut() {
                        r.insert(key_of(&obj), Arc::new(obj));
                    }
                }
                Ok(Event::InitDone) => {
                    if let Some(r) = relist.take() {
                        self.replace(r);
                    }
                    self.inner.synced.send_replace(true);
                }
                Ok(Event::Apply(mut obj)) => {
                    transform::transform(&mut obj);
                    self.apply(Arc::new(obj))
                }
                Ok(Event::Delete(obj)) => self.delete(&obj),
                Err(e) => tracing::warn!(kind = %K::kind(&Default::default()), error = %e, "watch failed; retrying"),
            }
        }
    }

    fn handlers(&self) -> std::sync::MutexGuard<'_, Vec<Handler<K>>> {
        self.inner.handlers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Cache<K>> {
        self.inner.cache.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Cache<K>> {
        self.inner.cache.read().unwrap_or_else(|e| e.into_inner())
    }

    fn apply(&self, obj: Arc<K>) {
        let handlers = self.handlers();
        let (ns, name) = key_of(obj.as_ref());
        let old = self.write().insert(ns, name, obj.clone());
        for h in handlers.iter() {
            match &old {
                Some(old) => h(Change::Updated { old, new: &obj }),
                None => h(Change::Added(&obj)),
            }
        }
    }

    fn delete(&self, obj: &K) {
        let handlers = self.handlers();
        let (ns, name) = key_of(obj);
        let old = self.write().remove(&ns, &name);
        let last = old.unwrap_or_else(|| Arc::new(obj.clone()));
        for h in handlers.iter() {
            h(Change::Deleted(&last));
        }
    }

    fn replace(&self, mut fresh: HashMap<ObjectKey, Arc<K>>) {
        let handlers = self.handlers();
        let mut gone = Vec::new();
        {
            let cache = self.read();
            for (ns, m) in &cache.by_namespace {
                for (name, obj) in m {
                    if !fresh.contains_key(&(ns.clone(), name.clone())) {
                        gone.push(obj.clone());
                    }
                }
            }
        }
        for obj in gone {
            let (ns, name) = key_of(obj.as_ref());
            self.write().remove(&ns, &name);
            for h in handlers.iter() {
                h(Change::Deleted(&obj));
            }
        }
        for ((ns, name), obj) in fresh.drain() {
            let old = self.write().insert(ns, name, obj.clone());
            for h in handlers.iter() {
                match &old {
                    Some(old) if old.resource_version() == obj.resource_version() => {}
                    Some(old) => h(Change::Updated { old, new: &obj }),
                    None => h(Change::Added(&obj)),
                }
            }
        }
    }

    /// Registers `handler`; it is first called with every cached object.
    pub fn add_handler(&self, handler: impl Fn(Change<'_, K>) + Send + Sync + 'static) {
        let mut handlers = self.handlers();
        let existing = self.list_all();
        for obj in &existing {
            handler(Change::Added(obj));
        }
        handlers.push(Arc::new(handler));
    }

    /// Waits until the first list has been cached.
    pub async fn wait_synced(&self) {
        let mut rx = self.inner.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Whether the first list has been cached.
    pub fn has_synced(&self) -> bool {
        *self.inner.synced.borrow()
    }

    /// The cached object `namespace/name` (namespace "" if cluster-scoped).
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.read().get(namespace, name)
    }

    /// Every cached object in `namespace`.
    pub fn list(&self, namespace: &str) -> Vec<Arc<K>> {
        self.read()
            .by_namespace
            .get(namespace)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every cached object.
    pub fn list_all(&self) -> Vec<Arc<K>> {
        self.read()
            .by_namespace
            .values()
            .flat_map(|m| m.values().cloned())
            .collect()
    }
}

/// The process's informers, one per kind, created on first use and
/// started at once; cheap to clone.
#[derive(Clone)]
pub struct SharedInformers {
    client: Client,
    informers: Arc<Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>>,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl SharedInformers {
    pub fn new(client: Client) -> Self {
        SharedInformers {
            client,
            informers: Arc::default(),
            tasks: Arc::default(),
        }
    }

    /// The informer of kind `K` (all namespaces), started on first use.
    pub fn get<K>(&self) -> Informer<K>
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        K::DynamicType: Default,
    {
        let mut map = self.informers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = map
            .get(&TypeId::of::<K>())
            .and_then(|b| b.downcast_ref::<Informer<K>>())
        {
            return existing.clone();
        }
        let informer = Informer::<K>::new();
        map.insert(TypeId::of::<K>(), Box::new(informer.clone()));
        let api = Api::<K>::all(self.client.clone());
        let task = tokio::spawn(informer.clone().run(api));
        self.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(task);
        informer
    }

    /// Stops every informer's watch.
    pub fn shut_down(&self) {
        for t in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            t.abort();
        }
    }
}

/// `namespace/name`, or `name` for cluster-scoped objects: the key
/// controllers queue.
pub fn object_key<K: Resource>(obj: &K) -> String {
    match obj.meta().namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{}", obj.name_any()),
        _ => obj.name_any(),
    }
}

/// Splits a queue key into `(namespace, name)`.
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;
    use crate::queue::ItemExponentialBackoff;

    fn pod(namespace: &str, name: &str) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                namespace: Some(namespace.into()),
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        })
    }

    #[tokio::test]
    async fn enqueue_changes_queues_the_current_object() {
        let queue = WorkQueue::new(ItemExponentialBackoff::default(), |_| {});
        let handler = enqueue_changes::<Pod>(queue.clone());
        let (a, b_old, b_new, c) = (pod("ns", "a"), pod("ns", "b0"), pod("ns", "b"), pod("", "c"));
        handler(Change::Added(&a));
        handler(Change::Updated {
            old: &b_old,
            new: &b_new,
        });
        handler(Change::Deleted(&c));
        queue.shut_down();
        let mut keys = Vec::new();
        while let Some(k) = queue.get().await {
            queue.done(&k);
            keys.push(k);
        }
        assert_eq!(keys, ["ns/a", "ns/b", "c"]);
        assert!(Change::Deleted(&c).is_deleted());
        assert!(!Change::Added(&a).is_deleted());
    }
}
