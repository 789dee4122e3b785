//! Informers: kube-rs watchers on Nodes, Pods and Namespaces feeding the
//! cache and the queue, and turning changes into cluster events that move
//! unschedulable pods back into line.
//!
//! One watch on all pods (not one per node or a field-selected pair, as
//! upstream does) splits them: bound pods go to the cache, pending pods of
//! one of our profiles to the queue.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;
use tracing::warn;

use crate::cache::NodeChange;
use crate::framework::ClusterEvent;
use crate::pod_info::PodInfo;
use crate::scheduler::Scheduler;

impl Scheduler {
    /// Moves unschedulable pods that a plugin which rejected them cares
    /// about `event`.
    pub fn on_cluster_event(&self, event: ClusterEvent) {
        self.on_cluster_event_except(event, None);
    }

    /// [`Self::on_cluster_event`], leaving the pod with key `except` where
    /// it is.
    pub(crate) fn on_cluster_event_except(&self, event: ClusterEvent, except: Option<&str>) {
        let profiles = &self.profiles;
        self.queue.move_all_to_active_or_backoff(
            |qpi| {
                if except == Some(qpi.pod_info.key.as_str()) {
                    return false;
                }
                let Some(fw) = profiles.get(qpi.pod_info.scheduler_name()) else {
                    return false;
                };
                qpi.unschedulable_plugins.is_empty()
                    || qpi.unschedulable_plugins.iter().any(|p| fw.plugin_cares(p, event))
            },
            Instant::now(),
        );
    }

    fn on_pod(&self, pod: Pod) {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        let terminal = matches!(phase, Some("Succeeded") | Some("Failed"));
        let info = Arc::new(PodInfo::new(pod));
        if info.node_name().is_some() {
            self.queue.delete(&info.key);
            if terminal {
                self.on_pod_gone(&info);
                return;
            }
            let old = self.cache().pod(&info.uid);
            let was_assumed = self.cache().is_assumed(&info.uid);
            self.cache().add_or_update_pod(info.clone());
            // A confirmed assumed pod is news to the pods waiting on it
            // (pod affinity), as upstream's add-to-cache event.
            match old {
                None => self.on_cluster_event(ClusterEvent::AssignedPodAdd),
                Some(_) if was_assumed => self.on_cluster_event(ClusterEvent::AssignedPodAdd),
                Some(o) if o.labels != info.labels => self.on_cluster_event(ClusterEvent::AssignedPodUpdate),
                Some(_) => {}
            }
            return;
        }
        let ours = self.profiles.get(info.scheduler_name());
        match ours {
            Some(fw) if !terminal && !info.is_terminating() => {
                let gate = fw.run_pre_enqueue(&info);
                self.queue.add_or_update(info, &gate, Instant::now());
            }
            _ => self.queue.delete(&info.key),
        }
    }

    fn on_pod_gone(&self, info: &PodInfo) {
        let known = self.cache().pod(&info.uid).is_some();
        self.cache().remove_pod(&info.uid);
        if known {
            self.on_cluster_event(ClusterEvent::AssignedPodDelete);
        }
    }

    fn on_pod_delete(&self, pod: Pod) {
        let info = PodInfo::new(pod);
        self.queue.delete(&info.key);
        self.events.forget(&info.uid);
        if info.node_name().is_some() || self.cache().pod(&info.uid).is_some() {
            self.on_pod_gone(&info);
        }
    }

    fn on_node(&self, node: Node) {
        let change = self.cache().add_or_update_node(Arc::new(node));
        match change {
            NodeChange::Added => self.on_cluster_event(ClusterEvent::NodeAdd),
            NodeChange::Updated => self.on_cluster_event(ClusterEvent::NodeUpdate),
            NodeChange::Unchanged => {}
        }
    }

    fn on_namespace(&self, ns: Namespace) {
        let name = ns.metadata.name.clone().unwrap_or_default();
        self.cache()
            .set_namespace(&name, Some(ns.metadata.labels.unwrap_or_default()));
        self.on_cluster_event(ClusterEvent::NamespaceUpdate);
    }
}

/// Drives one watcher, calling `apply`/`delete` per object and `resync`
/// with the keys seen by each complete (re)list; sends on `synced` after
/// the first list.
async fn drive<K, S>(
    stream: S,
    what: &'static str,
    key: impl Fn(&K) -> String,
    apply: impl Fn(K),
    delete: impl Fn(K),
    resync: impl Fn(&HashSet<String>),
    synced: watch::Sender<usize>,
) where
    S: Stream<Item = Result<Event<K>, watcher::Error>>,
{
    let mut seen: Option<HashSet<String>> = None;
    let mut first = true;
    futures::pin_mut!(stream);
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(Event::Init) => seen = Some(HashSet::new()),
            Ok(Event::InitApply(o)) => {
                if let Some(s) = seen.as_mut() {
                    s.insert(key(&o));
                }
                apply(o);
            }
            Ok(Event::InitDone) => {
                if let Some(s) = seen.take() {
                    resync(&s);
                }
                if first {
                    first = false;
                    synced.send_modify(|n| *n += 1);
                }
            }
            Ok(Event::Apply(o)) => apply(o),
            Ok(Event::Delete(o)) => delete(o),
            Err(e) => warn!(resource = what, error = %e, "watch failed; retrying"),
        }
    }
}

fn pod_uid(p: &Pod) -> String {
    p.metadata.uid.clone().unwrap_or_default()
}

/// Runs the Node, Pod and Namespace informers until dropped; `synced`
/// counts the informers whose first list is in (3 when all are).
pub async fn run(sched: Arc<Scheduler>, synced: watch::Sender<usize>) {
    let client = sched.client.clone();
    let cfg = watcher::Config::default();
    let nodes = {
        let s = sched.clone();
        let r = sched.clone();
        drive(
            watcher::watcher(Api::<Node>::all(client.clone()), cfg.clone()).default_backoff(),
            "nodes",
            |n: &Node| n.metadata.name.clone().unwrap_or_default(),
            move |n| s.on_node(n),
            {
                let s = sched.clone();
                move |n: Node| {
                    s.cache().remove_node(n.metadata.name.as_deref().unwrap_or_default());
                }
            },
            move |seen| {
                let gone: Vec<String> = r
                    .cache()
                    .node_names()
                    .into_iter()
                    .filter(|n| !seen.contains(n))
                    .collect();
                for n in gone {
                    r.cache().remove_node(&n);
                }
            },
            synced.clone(),
        )
    };
    let pods = {
        let s = sched.clone();
        let d = sched.clone();
        let r = sched.clone();
        drive(
            watcher::watcher(Api::<Pod>::all(client.clone()), cfg.clone()).default_backoff(),
            "pods",
            |p: &Pod| format!("{}/{}", pod_uid(p), crate::pod_info::pod_key(p)),
            move |p| s.on_pod(p),
            move |p| d.on_pod_delete(p),
            move |seen| {
                let uids: HashSet<&str> = seen.iter().filter_map(|k| k.split('/').next()).collect();
                let keys: HashSet<&str> = seen.iter().filter_map(|k| k.split_once('/').map(|(_, k)| k)).collect();
                let gone: Vec<String> = r
                    .cache()
                    .bound_pod_uids()
                    .into_iter()
                    .filter(|u| !uids.contains(u.as_str()))
                    .collect();
                for u in gone {
                    r.cache().remove_pod(&u);
                }
                for k in r.queue.keys() {
                    if !keys.contains(k.as_str()) {
                        r.queue.delete(&k);
                    }
                }
            },
            synced.clone(),
        )
    };
    let namespaces = {
        let s = sched.clone();
        let d = sched.clone();
        drive(
            watcher::watcher(Api::<Namespace>::all(client.clone()), cfg).default_backoff(),
            "namespaces",
            |n: &Namespace| n.metadata.name.clone().unwrap_or_default(),
            move |n| s.on_namespace(n),
            move |n: Namespace| {
                d.cache()
                    .set_namespace(n.metadata.name.as_deref().unwrap_or_default(), None)
            },
            |_| {},
            synced,
        )
    };
    tokio::join!(nodes, pods, namespaces);
}
