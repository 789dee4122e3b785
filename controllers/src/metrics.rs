//! Prometheus metrics served at `/metrics`, named like client-go's work
//! queue metrics (`workqueue_*`, label `name` = the queue, as upstream's
//! queue names: `deployment`, `replicaset`, ...) plus sync errors per
//! controller (label `name` = the controller) and the leader-election
//! status.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `name` label: one controller (or its queue).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NameLabel {
    pub name: String,
}

/// Every metric the controller manager exports.
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Keys waiting in each controller's queue.
    pub queue_depth: Family<NameLabel, Gauge>,
    /// Keys added to each controller's queue.
    pub queue_adds: Family<NameLabel, Counter>,
    /// Keys re-queued after a failed sync.
    pub queue_retries: Family<NameLabel, Counter>,
    /// Duration of one reconcile (one key processed), in seconds.
    pub work_duration: Family<NameLabel, Histogram>,
    /// Reconciles that returned an error.
    pub sync_errors: Family<NameLabel, Counter>,
    /// 1 while this process holds the leader lease.
    pub leader: Family<NameLabel, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn work_buckets() -> Histogram {
    // client-go: exponential from 1e-8 s, factor 10, 10 buckets.
    Histogram::new([1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0])
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let queue_depth = Family::<NameLabel, Gauge>::default();
        let queue_adds = Family::<NameLabel, Counter>::default();
        let queue_retries = Family::<NameLabel, Counter>::default();
        let work_duration = Family::<NameLabel, Histogram>::new_with_constructor(work_buckets as fn() -> Histogram);
        let sync_errors = Family::<NameLabel, Counter>::default();
        let leader = Family::<NameLabel, Gauge>::default();
        registry.register(
            "workqueue_depth",
            "Current depth of the work queue",
            queue_depth.clone(),
        );
        registry.register(
            "workqueue_adds",
            "Total number of adds handled by the work queue",
            queue_adds.clone(),
        );
        registry.register(
            "workqueue_retries",
            "Total number of retries handled by the work queue",
            queue_retries.clone(),
        );
        registry.register(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from the work queue takes",
            work_duration.clone(),
        );
        registry.register(
            "controller_sync_errors",
            "Total number of reconciles that failed, by controller",
            sync_errors.clone(),
        );
        registry.register(
            "leader_election_master_status",
            "1 if this instance is the leader of the lease, else 0",
            leader.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            queue_depth,
            queue_adds,
            queue_retries,
            work_duration,
            sync_errors,
            leader,
        }
    }

    /// Records one key processed from `queue` by `controller`: the work
    /// duration and retries under the queue's name, a failure under the
    /// controller's.
    pub fn observe_work(&self, queue: &str, controller: &str, took: Duration, failed: bool) {
        let label = NameLabel {
            name: queue.to_string(),
        };
        self.work_duration.get_or_create(&label).observe(took.as_secs_f64());
        if failed {
            self.queue_retries.get_or_create(&label).inc();
            self.sync_errors
                .get_or_create(&NameLabel {
                    name: controller.to_string(),
                })
                .inc();
        }
    }

    /// Records one pass of a controller that runs on a timer rather than
    /// a queue (pod GC, node health monitoring), under its own name.
    pub fn observe_sync(&self, controller: &str, took: Duration, failed: bool) {
        let label = NameLabel {
            name: controller.to_string(),
        };
        self.work_duration.get_or_create(&label).observe(took.as_secs_f64());
        if failed {
            self.sync_errors.get_or_create(&label).inc();
            self.queue_retries.get_or_create(&label).inc();
        }
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}
