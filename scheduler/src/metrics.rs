//! Prometheus metrics at `/metrics`, named like kube-scheduler's.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::queue::QueueSizes;

/// Labels of attempt metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    pub profile: String,
    /// `scheduled`, `unschedulable` or `error`.
    pub result: &'static str,
}

/// Labels of the scheduling SLI latency: the attempts the pod took.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SliLabels {
    pub attempts: String,
}

/// Labels of the pending pods gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// `active`, `backoff`, `unschedulable` or `gated`.
    pub queue: &'static str,
}

/// Every metric the scheduler exports.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub schedule_attempts: Family<AttemptLabels, Counter>,
    pub attempt_duration: Family<AttemptLabels, Histogram>,
    /// From the first attempt to the successful bind, by the attempts it
    /// took.
    pub pod_scheduling_sli_duration: Family<SliLabels, Histogram>,
    /// Attempts a pod took to be scheduled.
    pub pod_scheduling_attempts: Histogram,
    pub pending_pods: Family<QueueLabels, Gauge>,
    pub preemption_attempts: Counter,
    /// Victims chosen by one preemption.
    pub preemption_victims: Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn attempt_buckets() -> Histogram {
    // 1ms doubling to ~16s, as upstream's ExponentialBuckets(0.001, 2, 15).
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

fn sli_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 20))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let schedule_attempts = Family::<AttemptLabels, Counter>::default();
        let attempt_duration =
            Family::<AttemptLabels, Histogram>::new_with_constructor(attempt_buckets as fn() -> Histogram);
        // Upstream's buckets: 10 ms doubling 20 times (the SLI), 1 doubling
        // 5 times (attempts), 1 doubling 7 times (victims; 64 and more
        // share the last bucket).
        let pod_scheduling_sli_duration =
            Family::<SliLabels, Histogram>::new_with_constructor(sli_buckets as fn() -> Histogram);
        let pod_scheduling_attempts = Histogram::new(exponential_buckets(1.0, 2.0, 5));
        let pending_pods = Family::<QueueLabels, Gauge>::default();
        let preemption_attempts = Counter::default();
        let preemption_victims = Histogram::new(exponential_buckets(1.0, 2.0, 7));
        registry.register(
            "scheduler_schedule_attempts",
            "Number of attempts to schedule pods, by the result",
            schedule_attempts.clone(),
        );
        registry.register(
            "scheduler_scheduling_attempt_duration_seconds",
            "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
            attempt_duration.clone(),
        );
        registry.register(
            "scheduler_pod_scheduling_sli_duration_seconds",
            "E2e latency for a pod being scheduled, from the time the pod enters the scheduling queue and might involve multiple scheduling attempts",
            pod_scheduling_sli_duration.clone(),
        );
        registry.register(
            "scheduler_pod_scheduling_attempts",
            "Number of attempts to successfully schedule a pod",
            pod_scheduling_attempts.clone(),
        );
        registry.register(
            "scheduler_pending_pods",
            "Number of pending pods, by the queue type",
            pending_pods.clone(),
        );
        registry.register(
            "scheduler_preemption_attempts",
            "Total preemption attempts in the cluster till now",
            preemption_attempts.clone(),
        );
        registry.register(
            "scheduler_preemption_victims",
            "Number of selected preemption victims for preemption initiated by a single pod",
            preemption_victims.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            schedule_attempts,
            attempt_duration,
            pod_scheduling_sli_duration,
            pod_scheduling_attempts,
            pending_pods,
            preemption_attempts,
            preemption_victims,
        }
    }
}

impl Metrics {
    /// Records one attempt's result and duration.
    pub fn attempt(&self, profile: &str, result: &'static str, seconds: f64) {
        let labels = AttemptLabels {
            profile: profile.to_string(),
            result,
        };
        self.schedule_attempts.get_or_create(&labels).inc();
        self.attempt_duration.get_or_create(&labels).observe(seconds);
    }

    /// Records a pod bound after `attempts` attempts, `seconds` after its
    /// first one.
    pub fn scheduled(&self, attempts: u32, seconds: f64) {
        self.pod_scheduling_sli_duration
            .get_or_create(&SliLabels {
                attempts: attempts.to_string(),
            })
            .observe(seconds);
        self.pod_scheduling_attempts.observe(f64::from(attempts));
    }

    /// Sets the pending pods gauges.
    pub fn set_queue_sizes(&self, s: QueueSizes) {
        for (queue, n) in [
            ("active", s.active),
            ("backoff", s.backoff),
            ("unschedulable", s.unschedulable),
            ("gated", s.gated),
        ] {
            self.pending_pods.get_or_create(&QueueLabels { queue }).set(n as i64);
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}
