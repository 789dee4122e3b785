//! The selector of the workloads a pod belongs to, for PodTopologySpread's
//! default constraints (upstream's `helper.DefaultSelector`): the pairs of
//! every Service of the pod's namespace whose selector matches the pod,
//! merged with the selector of the pod's controller when that is a
//! ReplicationController, ReplicaSet or StatefulSet (found by the
//! controller owner reference's name, not by matching).
//!
//! Kept from the workload watchers' events, so that a lookup costs the
//! pod's labels rather than the namespace's workloads: a Service is filed
//! under one pair of its selector (the key whose posting list was shortest
//! when it was filed); a Service selects a pod only if the pod carries all
//! its pairs, so looking up the pod's own pairs finds every Service that
//! can select it, each once. Controllers are kept by kind and name with
//! only what the default selector takes from them.

use std::collections::HashSet;
use std::fmt::Debug;

use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ReplicationController, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::runtime::watcher::Event;

use crate::pod_info::PodInfo;
use crate::selectors::{Labels, Selector};

type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// The workload kinds the default selector reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Service = 0,
    ReplicationController = 1,
    ReplicaSet = 2,
    StatefulSet = 3,
}

impl Kind {
    /// The controller kind an owner reference names, compared by group,
    /// version and kind as upstream does (`apps/v1` ReplicaSet and
    /// StatefulSet, `v1` ReplicationController).
    fn of_owner(owner: &OwnerReference) -> Option<Kind> {
        let (group, version) = match owner.api_version.split_once('/') {
            None => ("", owner.api_version.as_str()),
            Some((g, v)) if !v.contains('/') => (g, v),
            Some(_) => return None,
        };
        match (group, version, owner.kind.as_str()) {
            ("", "v1", "ReplicationController") => Some(Kind::ReplicationController),
            ("apps", "v1", "ReplicaSet") => Some(Kind::ReplicaSet),
            ("apps", "v1", "StatefulSet") => Some(Kind::StatefulSet),
            _ => None,
        }
    }
}

/// What the index keeps of one workload object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// A Service's selector (empty: it selects nothing).
    Service(Labels),
    /// A ReplicationController's selector: its pairs are merged with the
    /// Services' (its value wins on a key both have).
    Pairs(Labels),
    /// A ReplicaSet's or StatefulSet's selector, added as requirements;
    /// `None` when it does not convert (then it adds nothing).
    Requirements(Option<Selector>),
}

/// A workload kind the index is fed with.
pub trait Workload: kube::Resource + Clone + Debug + Send + Sync + 'static {
    const KIND: Kind;
    /// What the default selector takes from the object.
    fn kept(&self) -> Kept;
}

impl Workload for Service {
    const KIND: Kind = Kind::Service;
    fn kept(&self) -> Kept {
        Kept::Service(self.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default())
    }
}

impl Workload for ReplicationController {
    const KIND: Kind = Kind::ReplicationController;
    fn kept(&self) -> Kept {
        Kept::Pairs(self.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default())
    }
}

impl Workload for ReplicaSet {
    const KIND: Kind = Kind::ReplicaSet;
    fn kept(&self) -> Kept {
        Kept::Requirements(
            self.spec
                .as_ref()
                .and_then(|s| Selector::try_from_label_selector(&s.selector)),
        )
    }
}

impl Workload for StatefulSet {
    const KIND: Kind = Kind::StatefulSet;
    fn kept(&self) -> Kept {
        Kept::Requirements(
            self.spec
                .as_ref()
                .and_then(|s| Selector::try_from_label_selector(&s.selector)),
        )
    }
}

/// A Service and the key of the pair it is filed under.
#[derive(Debug)]
struct FiledService {
    selector: Labels,
    anchor: String,
}

/// One namespace's workloads.
#[derive(Debug, Default)]
struct Namespace {
    services: Map<String, FiledService>,
    /// Service names by the key and value of the pair they are filed under.
    filed: Map<String, Map<String, Vec<String>>>,
    /// Controllers by kind (ReplicationController, ReplicaSet,
    /// StatefulSet: `Kind as usize - 1`) and name.
    controllers: [Map<String, Kept>; 3],
}

impl Namespace {
    fn is_empty(&self) -> bool {
        self.services.is_empty() && self.controllers.iter().all(|m| m.is_empty())
    }

    fn file_service(&mut self, name: &str, selector: Labels) {
        // The pair with the fewest Services already filed under it.
        let shortest = selector.iter().min_by_key(|(k, v)| {
            self.filed
                .get(k.as_str())
                .and_then(|m| m.get(v.as_str()))
                .map_or(0, Vec::len)
        });
        let Some((key, value)) = shortest else { return };
        let (key, value) = (key.clone(), value.clone());
        self.filed
            .entry(key.clone())
            .or_default()
            .entry(value)
            .or_default()
            .push(name.to_string());
        self.services
            .insert(name.to_string(), FiledService { selector, anchor: key });
    }

    fn unfile_service(&mut self, name: &str) {
        let Some(old) = self.services.remove(name) else { return };
        let Some(values) = self.filed.get_mut(old.anchor.as_str()) else {
            return;
        };
        if let Some(value) = old.selector.get(&old.anchor)
            && let Some(names) = values.get_mut(value.as_str())
        {
            names.retain(|n| n != name);
            if names.is_empty() {
                values.remove(value.as_str());
            }
        }
        if values.is_empty() {
            self.filed.remove(old.anchor.as_str());
        }
    }

    fn remove(&mut self, kind: Kind, name: &str) {
        match kind {
            Kind::Service => self.unfile_service(name),
            _ => {
                self.controllers[kind as usize - 1].remove(name);
            }
        }
    }

    fn names(&self, kind: Kind) -> Vec<String> {
        match kind {
            Kind::Service => self.services.keys().cloned().collect(),
            _ => self.controllers[kind as usize - 1].keys().cloned().collect(),
        }
    }
}

/// The workloads' selectors by namespace, fed by the watchers' events.
#[derive(Debug, Default)]
pub struct WorkloadIndex {
    namespaces: Map<String, Namespace>,
    /// Per kind, while its watcher relists: the objects listed so far.
    relisting: [Option<HashSet<(String, String)>>; 4],
}

impl WorkloadIndex {
    /// Keeps (or replaces) what the default selector takes from object
    /// `namespace/name` of `kind`.
    pub fn apply(&mut self, kind: Kind, namespace: &str, name: &str, kept: Kept) {
        if let Some(ns) = self.namespaces.get_mut(namespace) {
            ns.remove(kind, name);
        }
        match kept {
            Kept::Service(selector) if selector.is_empty() => {}
            Kept::Service(selector) => self
                .namespaces
                .entry(namespace.to_string())
                .or_default()
                .file_service(name, selector),
            controller => {
                if kind != Kind::Service {
                    self.namespaces.entry(namespace.to_string()).or_default().controllers[kind as usize - 1]
                        .insert(name.to_string(), controller);
                }
            }
        }
        self.drop_if_empty(namespace);
    }

    /// Forgets object `namespace/name` of `kind`.
    pub fn delete(&mut self, kind: Kind, namespace: &str, name: &str) {
        if let Some(ns) = self.namespaces.get_mut(namespace) {
            ns.remove(kind, name);
        }
        self.drop_if_empty(namespace);
    }

    fn drop_if_empty(&mut self, namespace: &str) {
        if self.namespaces.get(namespace).is_some_and(Namespace::is_empty) {
            self.namespaces.remove(namespace);
        }
    }

    /// Applies one watcher event of `K`: a relist (`Init` .. `InitDone`)
    /// ends by forgetting the objects of that kind it did not list.
    pub fn on_event<K: Workload>(&mut self, event: Event<K>) {
        let key = |o: &K| {
            let meta = o.meta();
            (
                meta.namespace.clone().unwrap_or_default(),
                meta.name.clone().unwrap_or_default(),
            )
        };
        let kind = K::KIND;
        match event {
            Event::Init => self.relisting[kind as usize] = Some(HashSet::new()),
            Event::InitApply(o) => {
                let (ns, name) = key(&o);
                self.apply(kind, &ns, &name, o.kept());
                if let Some(seen) = self.relisting[kind as usize].as_mut() {
                    seen.insert((ns, name));
                }
            }
            Event::InitDone => {
                let Some(seen) = self.relisting[kind as usize].take() else {
                    return;
                };
                let mut gone = Vec::new();
                for (ns, n) in &self.namespaces {
                    for name in n.names(kind) {
                        if !seen.contains(&(ns.clone(), name.clone())) {
                            gone.push((ns.clone(), name));
                        }
                    }
                }
                for (ns, name) in gone {
                    self.delete(kind, &ns, &name);
                }
            }
            Event::Apply(o) => {
                let (ns, name) = key(&o);
                self.apply(kind, &ns, &name, o.kept());
            }
            Event::Delete(o) => {
                let (ns, name) = key(&o);
                self.delete(kind, &ns, &name);
            }
        }
    }

    /// The default selector of `pod`: `None` when it would be empty (no
    /// Service selects the pod and its controller adds nothing), in which
    /// case the default constraints do not apply.
    pub fn default_selector(&self, pod: &PodInfo) -> Option<Selector> {
        let ns = self.namespaces.get(pod.namespace.as_str())?;
        let mut pairs = Labels::new();
        for (key, value) in &pod.labels {
            let Some(names) = ns.filed.get(key.as_str()).and_then(|m| m.get(value.as_str())) else {
                continue;
            };
            for name in names {
                let Some(service) = ns.services.get(name) else { continue };
                if service.selector.iter().all(|(k, v)| pod.labels.get(k) == Some(v)) {
                    pairs.extend(service.selector.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        let mut extra = None;
        if let Some((kind, name)) = controller_of(pod) {
            match ns.controllers[kind as usize - 1].get(name) {
                Some(Kept::Pairs(p)) => pairs.extend(p.iter().map(|(k, v)| (k.clone(), v.clone()))),
                Some(Kept::Requirements(Some(s))) => extra = Some(s),
                _ => {}
            }
        }
        let mut selector = Selector::everything();
        for (k, v) in &pairs {
            selector = selector.with_equals(k, v);
        }
        if let Some(s) = extra {
            selector = selector.and(s);
        }
        let selector = selector.canonical();
        (!selector.is_everything()).then_some(selector)
    }
}

/// The kind and name of the pod's controller (its first owner reference
/// with `controller: true`), when that is a kind the default selector
/// reads.
fn controller_of(pod: &PodInfo) -> Option<(Kind, &str)> {
    let owner = pod
        .pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))?;
    let kind = Kind::of_owner(owner)?;
    Some((kind, owner.name.as_str()))
}

#[cfg(test)]
mod tests;
