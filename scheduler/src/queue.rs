//! The scheduling queue (upstream's `PriorityQueue`): pending pods in one
//! of four places, a pod being scheduled is *in flight*.
//!
//! - **active**: ready to schedule, ordered by priority (high first), then
//!   by the time it was queued (early first);
//! - **backoff**: failed recently, waits `initial * 2^(attempts-1)` (capped)
//!   before returning to active;
//! - **unschedulable**: rejected by plugins; leaves only when a cluster
//!   event one of those plugins cares about happens (then to backoff or
//!   active), or after five minutes;
//! - **gated**: held back by a PreEnqueue plugin (scheduling gates) until
//!   the pod changes.
//!
//! Time is passed in (`now`), so the logic is tested without sleeping.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::framework::Status;
use crate::pod_info::{PodInfo, PodKey};

/// A pod in the queue with its scheduling history.
#[derive(Debug, Clone)]
pub struct QueuedPodInfo {
    pub pod_info: Arc<PodInfo>,
    /// When the pod was last (re)queued.
    pub timestamp: Instant,
    /// When the pod was first popped for scheduling.
    pub initial_attempt: Option<Instant>,
    /// Scheduling attempts so far.
    pub attempts: u32,
    /// Plugins that rejected the pod in its last attempt.
    pub unschedulable_plugins: BTreeSet<&'static str>,
    /// The scheduling cycle in which the pod was last popped.
    pub cycle: u64,
}

/// Where a queued pod is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// In the active heap.
    Active,
    /// Waiting for its back-off to expire.
    Backoff,
    /// Rejected; waiting for a cluster event.
    Unschedulable,
    /// Held back by PreEnqueue.
    Gated,
    /// Popped and being scheduled.
    InFlight,
}

#[derive(Debug)]
struct Entry {
    qpi: QueuedPodInfo,
    location: Location,
    seq: u64,
}

#[derive(Debug, PartialEq, Eq)]
struct ActiveItem {
    priority: i32,
    timestamp: Instant,
    seq: u64,
    key: PodKey,
}

impl Ord for ActiveItem {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.timestamp.cmp(&self.timestamp))
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for ActiveItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Queue timing settings.
#[derive(Debug, Clone, Copy)]
pub struct QueueConfig {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// How long a pod may stay unschedulable without any event.
    pub max_unschedulable: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            max_unschedulable: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<PodKey, Entry>,
    active: BinaryHeap<ActiveItem>,
    backoff: BinaryHeap<Reverse<(Instant, u64, PodKey)>>,
    seq: u64,
    /// Keys of the pods in the unschedulable pool (so events scan only them).
    unschedulable: std::collections::HashSet<PodKey>,
    scheduling_cycle: u64,
    move_request_cycle: u64,
    closed: bool,
    /// Pods nominated to a node (by preemption, here or in an earlier
    /// run via `status.nominatedNodeName`), by key.
    nominated: HashMap<PodKey, (String, Arc<PodInfo>)>,
}

/// Sizes of each part of the queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueSizes {
    pub active: usize,
    pub backoff: usize,
    pub unschedulable: usize,
    pub gated: usize,
}

/// The scheduling queue, shared by the informers and the scheduling loop.
#[derive(Debug, Default)]
pub struct SchedulingQueue {
    inner: Mutex<Inner>,
    notify: Notify,
    config: QueueConfig,
}

impl SchedulingQueue {
    /// An empty queue.
    pub fn new(config: QueueConfig) -> SchedulingQueue {
        SchedulingQueue {
            inner: Mutex::default(),
            notify: Notify::new(),
            config,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The back-off after `attempts` attempts.
    pub fn backoff_duration(&self, attempts: u32) -> Duration {
        let mut d = self.config.initial_backoff;
        for _ in 1..attempts {
            d = d.saturating_mul(2);
            if d >= self.config.max_backoff {
                return self.config.max_backoff;
            }
        }
        d.min(self.config.max_backoff)
    }

    fn backoff_expiry(&self, qpi: &QueuedPodInfo) -> Instant {
        qpi.timestamp + self.backoff_duration(qpi.attempts)
    }

    fn place(&self, inner: &mut Inner, key: &PodKey, location: Location, now: Instant) {
        inner.unschedulable.remove(key);
        inner.seq += 1;
        let seq = inner.seq;
        let Some(e) = inner.entries.get_mut(key) else { return };
        e.location = location;
        e.seq = seq;
        match location {
            Location::Active => {
                inner.active.push(ActiveItem {
                    priority: e.qpi.pod_info.priority,
                    timestamp: e.qpi.timestamp,
                    seq,
                    key: key.clone(),
                });
                self.notify.notify_one();
            }
            Location::Backoff => {
                let expiry = self.backoff_expiry(&e.qpi);
                if expiry <= now {
                    return self.place(inner, key, Location::Active, now);
                }
                inner.backoff.push(Reverse((expiry, seq, key.clone())));
            }
            _ => {}
        }
    }

    /// Moves to backoff when the pod was tried before and its back-off has
    /// not expired, else to active.
    fn activate_or_backoff(&self, inner: &mut Inner, key: &PodKey, now: Instant) {
        let backing_off = inner
            .entries
            .get(key)
            .is_some_and(|e| e.qpi.attempts > 0 && self.backoff_expiry(&e.qpi) > now);
        let to = if backing_off {
            Location::Backoff
        } else {
            Location::Active
        };
        self.place(inner, key, to, now);
    }

    /// Records (or clears, with `None`) the node a pod is nominated to.
    pub fn nominate(&self, pod: &Arc<PodInfo>, node: Option<&str>) {
        let mut inner = self.lock();
        match node {
            Some(n) => inner.nominated.insert(pod.key.clone(), (n.to_string(), pod.clone())),
            None => inner.nominated.remove(&pod.key),
        };
    }

    /// Nominated pods by node (upstream's nominator).
    pub fn nominated_pods(&self) -> HashMap<String, Vec<Arc<PodInfo>>> {
        let inner = self.lock();
        let mut out: HashMap<String, Vec<Arc<PodInfo>>> = HashMap::new();
        for (node, pod) in inner.nominated.values() {
            out.entry(node.clone()).or_default().push(pod.clone());
        }
        out
    }

    /// Adds a new pending pod, or updates a queued one. `gate` is the
    /// profile's PreEnqueue verdict for the (new) pod.
    pub fn add_or_update(&self, pod: Arc<PodInfo>, gate: &Status, now: Instant) {
        let mut inner = self.lock();
        let key = pod.key.clone();
        let gated = !gate.is_success();
        match pod.nominated_node_name() {
            Some(n) => {
                inner.nominated.insert(key.clone(), (n.to_string(), pod.clone()));
            }
            None => {
                inner.nominated.remove(&key);
            }
        }
        match inner.entries.get_mut(&key) {
            Some(e) => {
                // Like upstream's isPodUpdated: status and bookkeeping
                // metadata (our own condition patches) do not count.
                let (a, b) = (&e.qpi.pod_info, &pod);
                let changed = a.pod.spec != b.pod.spec
                    || a.labels != b.labels
                    || a.pod.metadata.annotations != b.pod.metadata.annotations;
                e.qpi.pod_info = pod;
                match e.location {
                    Location::InFlight => {}
                    _ if gated => {
                        e.location = Location::Gated;
                        inner.unschedulable.remove(&key);
                    }
                    Location::Gated => self.activate_or_backoff(&mut inner, &key, now),
                    Location::Unschedulable if changed => self.activate_or_backoff(&mut inner, &key, now),
                    Location::Active => self.place(&mut inner, &key, Location::Active, now),
                    _ => {}
                }
            }
            None => {
                inner.entries.insert(
                    key.clone(),
                    Entry {
                        qpi: QueuedPodInfo {
                            pod_info: pod,
                            timestamp: now,
                            initial_attempt: None,
                            attempts: 0,
                            unschedulable_plugins: BTreeSet::new(),
                            cycle: 0,
                        },
                        location: Location::Gated,
                        seq: 0,
                    },
                );
                if !gated {
                    self.place(&mut inner, &key, Location::Active, now);
                }
            }
        }
    }

    /// Forgets a pod (deleted, or bound by someone else).
    pub fn delete(&self, key: &str) {
        let mut inner = self.lock();
        inner.entries.remove(key);
        inner.unschedulable.remove(key);
        inner.nominated.remove(key);
    }

    /// Keys of every queued pod.
    pub fn keys(&self) -> Vec<PodKey> {
        self.lock().entries.keys().cloned().collect()
    }

    /// Where the pod is, if queued.
    pub fn location(&self, key: &str) -> Option<Location> {
        self.lock().entries.get(key).map(|e| e.location)
    }

    /// Pops the best active pod without waiting.
    pub fn try_pop(&self, now: Instant) -> Option<QueuedPodInfo> {
        let mut inner = self.lock();
        while let Some(item) = inner.active.pop() {
            let valid = inner
                .entries
                .get(&item.key)
                .is_some_and(|e| e.seq == item.seq && e.location == Location::Active);
            if !valid {
                continue;
            }
            inner.scheduling_cycle += 1;
            let cycle = inner.scheduling_cycle;
            let Some(e) = inner.entries.get_mut(&item.key) else {
                continue;
            };
            e.location = Location::InFlight;
            e.qpi.attempts += 1;
            e.qpi.cycle = cycle;
            e.qpi.initial_attempt.get_or_insert(now);
            return Some(e.qpi.clone());
        }
        None
    }

    /// Waits for an active pod; `None` once the queue is closed.
    pub async fn pop(&self) -> Option<QueuedPodInfo> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.lock().closed {
                return None;
            }
            if let Some(q) = self.try_pop(Instant::now()) {
                return Some(q);
            }
            notified.await;
        }
    }

    /// Closes the queue: `pop` returns `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
    }

    /// The pod was scheduled (assumed): it leaves the queue.
    pub fn done(&self, key: &str) {
        let mut inner = self.lock();
        if inner.entries.get(key).is_some_and(|e| e.location == Location::InFlight) {
            inner.entries.remove(key);
            inner.nominated.remove(key);
        }
    }

    /// Returns an in-flight pod that could not be scheduled. Rejected by
    /// plugins (`unschedulable`): to the unschedulable pool, unless a move
    /// request came while it was in flight (then back-off). An error:
    /// back-off.
    pub fn requeue(&self, qpi: &QueuedPodInfo, plugins: BTreeSet<&'static str>, unschedulable: bool, now: Instant) {
        let mut inner = self.lock();
        let key = qpi.pod_info.key.clone();
        let moved = inner.move_request_cycle >= qpi.cycle;
        let Some(e) = inner.entries.get_mut(&key) else { return };
        if e.location != Location::InFlight {
            return;
        }
        e.qpi.timestamp = now;
        e.qpi.unschedulable_plugins = plugins;
        if unschedulable && !moved {
            e.location = Location::Unschedulable;
            inner.unschedulable.insert(key);
        } else {
            self.place(&mut inner, &key, Location::Backoff, now);
        }
    }

    /// A cluster event happened: unschedulable pods for which `cares`
    /// returns true go to backoff or active.
    pub fn move_all_to_active_or_backoff(&self, cares: impl Fn(&QueuedPodInfo) -> bool, now: Instant) {
        let mut inner = self.lock();
        inner.move_request_cycle = inner.scheduling_cycle;
        let keys: Vec<PodKey> = inner
            .unschedulable
            .iter()
            .filter(|k| inner.entries.get(*k).is_some_and(|e| cares(&e.qpi)))
            .cloned()
            .collect();
        for k in keys {
            self.activate_or_backoff(&mut inner, &k, now);
        }
    }

    /// Moves expired back-offs to active and pods unschedulable for too
    /// long to backoff/active.
    pub fn flush(&self, now: Instant) {
        let mut inner = self.lock();
        while let Some(Reverse((expiry, seq, key))) = inner.backoff.peek().cloned() {
            if expiry > now {
                break;
            }
            inner.backoff.pop();
            if inner
                .entries
                .get(&key)
                .is_some_and(|e| e.seq == seq && e.location == Location::Backoff)
            {
                self.place(&mut inner, &key, Location::Active, now);
            }
        }
        let stale: Vec<PodKey> = inner
            .unschedulable
            .iter()
            .filter(|k| {
                inner
                    .entries
                    .get(*k)
                    .is_some_and(|e| now.duration_since(e.qpi.timestamp) > self.config.max_unschedulable)
            })
            .cloned()
            .collect();
        for k in stale {
            self.activate_or_backoff(&mut inner, &k, now);
        }
    }

    /// How many pods are in each part.
    pub fn sizes(&self) -> QueueSizes {
        let inner = self.lock();
        let mut s = QueueSizes::default();
        for e in inner.entries.values() {
            match e.location {
                Location::Active => s.active += 1,
                Location::Backoff => s.backoff += 1,
                Location::Unschedulable => s.unschedulable += 1,
                Location::Gated => s.gated += 1,
                Location::InFlight => {}
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::pod;
    use serde_json::json;

    fn pi(name: &str, priority: i32) -> Arc<PodInfo> {
        Arc::new(pod(name, json!({}), json!({"priority": priority})))
    }

    fn names(q: &SchedulingQueue, now: Instant) -> Vec<String> {
        std::iter::from_fn(|| q.try_pop(now))
            .map(|p| p.pod_info.name.clone())
            .collect()
    }

    #[test]
    fn active_queue_orders_by_priority_then_time() {
        let q = SchedulingQueue::new(QueueConfig::default());
        let t0 = Instant::now();
        q.add_or_update(pi("low-early", 0), &Status::success(), t0);
        q.add_or_update(pi("high", 100), &Status::success(), t0 + Duration::from_millis(2));
        q.add_or_update(pi("low-late", 0), &Status::success(), t0 + Duration::from_millis(1));
        q.add_or_update(pi("mid", 10), &Status::success(), t0 + Duration::from_millis(3));
        assert_eq!(names(&q, t0), ["high", "mid", "low-early", "low-late"]);
    }

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let q = SchedulingQueue::new(QueueConfig::default());
        let secs: Vec<u64> = (1..=6).map(|a| q.backoff_duration(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn unschedulable_pods_wait_for_an_event_then_back_off() {
        let q = SchedulingQueue::new(QueueConfig::default());
        let t0 = Instant::now();
        q.add_or_update(pi("p", 0), &Status::success(), t0);
        let popped = q.try_pop(t0).unwrap();
        q.requeue(&popped, ["NodeResourcesFit"].into_iter().collect(), true, t0);
        assert_eq!(q.location("default/p"), Some(Location::Unschedulable));
        // An event the plugin does not care about leaves it.
        q.move_all_to_active_or_backoff(|qpi| qpi.unschedulable_plugins.contains("TaintToleration"), t0);
        assert_eq!(q.location("default/p"), Some(Location::Unschedulable));
        // One it cares about moves it to backoff (1s after the attempt).
        q.move_all_to_active_or_backoff(|qpi| qpi.unschedulable_plugins.contains("NodeResourcesFit"), t0);
        assert_eq!(q.location("default/p"), Some(Location::Backoff));
        q.flush(t0 + Duration::from_millis(500));
        assert!(q.try_pop(t0).is_none());
        q.flush(t0 + Duration::from_secs(1));
        assert_eq!(q.location("default/p"), Some(Location::Active));
        let again = q.try_pop(t0).unwrap();
        assert_eq!(again.attempts, 2);
        q.done("default/p");
        assert_eq!(q.sizes(), QueueSizes::default());
    }

    #[test]
    fn status_only_updates_leave_unschedulable_pods_alone() {
        let q = SchedulingQueue::new(QueueConfig::default());
        let t0 = Instant::now();
        q.add_or_update(pi("p", 0), &Status::success(), t0);
        let popped = q.try_pop(t0).unwrap();
        q.requeue(&popped, BTreeSet::new(), true, t0);
        let mut with_status = popped.pod_info.to_pod();
        with_status.status = Some(Default::default());
        with_status.metadata.resource_version = Some("42".into());
        q.add_or_update(Arc::new(PodInfo::new(with_status.clone())), &Status::success(), t0);
        assert_eq!(q.location("default/p"), Some(Location::Unschedulable));
        with_status.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
        q.add_or_update(Arc::new(PodInfo::new(with_status)), &Status::success(), t0);
        assert_eq!(q.location("default/p"), Some(Location::Backoff));
    }

    #[test]
    fn an_event_during_the_attempt_sends_the_pod_to_backoff() {
        let q = SchedulingQueue::new(QueueConfig::default());
        let t0 = Instant::now();
        q.add_or_update(pi("p", 0), &Status::success(), t0);
        let popped = q.try_pop(t0).unwrap();
        q.move_all_to_active_or_backoff(|_| true, t0);
        q.requeue(&popped, BTreeSet::new(), true, t0);
        assert_eq!(q.location("default/p"), Some(Location::Backoff));
    }

    #[test]
    fn gated_pods_wait_until_updated_and_stale_ones_are_retried() {
        let q = SchedulingQueue::new(QueueConfig::default());
        let t0 = Instant::now();
        let gate = Status::with(Code::UnschedulableAndUnresolvable, "waiting for scheduling gates: [g]");
        q.add_or_update(pi("g", 0), &gate, t0);
        assert_eq!(q.sizes().gated, 1);
        assert!(q.try_pop(t0).is_none());
        q.add_or_update(pi("g", 0), &Status::success(), t0);
        assert_eq!(names(&q, t0), ["g"]);
        let p = q.lock().entries.get("default/g").map(|e| e.qpi.clone()).unwrap();
        q.requeue(&p, BTreeSet::new(), true, t0);
        q.flush(t0 + Duration::from_secs(301));
        assert_eq!(q.location("default/g"), Some(Location::Active));
        q.delete("default/g");
        assert!(q.try_pop(t0).is_none());
    }
}
