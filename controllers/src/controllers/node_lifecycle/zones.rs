//! Zones and how fast each may have its nodes tainted NoExecute (upstream's
//! `ComputeZoneState`, `handleDisruption` and the per-zone
//! `RateLimitedTimedQueue`): a zone whose nodes are mostly not ready is
//! more likely a network partition than dead machines, so evictions slow
//! down or stop there.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use k8s_openapi::api::core::v1::Node;

use super::settings::Settings;

/// A zone's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneState {
    /// Fewer than three or too small a fraction of nodes not ready.
    Normal,
    /// At least three, and at least the unhealthy threshold, not ready.
    PartialDisruption,
    /// Every node not ready.
    FullDisruption,
}

/// The zone of a node: region and zone labels (upstream's `GetZoneKey`).
pub fn zone_key(node: &Node) -> String {
    let labels = node.metadata.labels.as_ref();
    let get = |k: &str| labels.and_then(|l| l.get(k)).cloned().unwrap_or_default();
    let region = get("topology.kubernetes.io/region");
    let zone = get("topology.kubernetes.io/zone");
    if region.is_empty() && zone.is_empty() {
        return String::new();
    }
    format!("{region}:\u{0}:{zone}")
}

/// A zone's state from its ready and not-ready node counts.
pub fn zone_state(ready: usize, not_ready: usize, unhealthy_threshold: f64) -> ZoneState {
    let total = ready + not_ready;
    if ready == 0 && not_ready > 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f64 / total as f64 >= unhealthy_threshold {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// Nodes tainted per second in a zone of `size` nodes in `state`, when not
/// every zone is fully disrupted.
pub fn eviction_rate(state: ZoneState, size: usize, s: &Settings) -> f64 {
    match state {
        ZoneState::Normal | ZoneState::FullDisruption => s.eviction_rate,
        ZoneState::PartialDisruption if size > s.large_cluster_size_threshold => s.secondary_eviction_rate,
        ZoneState::PartialDisruption => 0.0,
    }
}

/// A token bucket with a burst of one (`NewTokenBucketRateLimiter(qps, 1)`).
#[derive(Debug)]
pub struct TokenBucket {
    qps: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(qps: f64, now: Instant) -> Self {
        TokenBucket {
            qps,
            tokens: 1.0,
            last: now,
        }
    }

    /// Changes the rate, keeping the tokens earned so far.
    pub fn set_qps(&mut self, qps: f64, now: Instant) {
        self.refill(now);
        self.qps = qps;
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.qps).min(1.0);
        self.last = now;
    }

    /// Takes a token if one is available at `now`.
    pub fn try_accept(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.qps > 0.0 && self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One zone's nodes waiting to be tainted, in arrival order, each once.
#[derive(Debug)]
pub struct ZoneQueue {
    pub limiter: TokenBucket,
    nodes: VecDeque<String>,
}

impl ZoneQueue {
    pub fn new(qps: f64, now: Instant) -> Self {
        ZoneQueue {
            limiter: TokenBucket::new(qps, now),
            nodes: VecDeque::new(),
        }
    }

    /// Queues `node` unless already queued.
    pub fn add(&mut self, node: &str) {
        if !self.nodes.iter().any(|n| n == node) {
            self.nodes.push_back(node.to_string());
        }
    }

    /// Drops `node` from the queue.
    pub fn remove(&mut self, node: &str) {
        self.nodes.retain(|n| n != node);
    }

    /// The next node the rate allows at `now`, taken off the queue.
    pub fn pop_allowed(&mut self, now: Instant) -> Option<String> {
        if self.nodes.is_empty() || !self.limiter.try_accept(now) {
            return None;
        }
        self.nodes.pop_front()
    }

    pub fn contains(&self, node: &str) -> bool {
        self.nodes.iter().any(|n| n == node)
    }
}

/// Every zone's state from its nodes' Ready statuses.
pub fn zone_states<'a>(
    nodes: impl Iterator<Item = (&'a str, bool)>,
    unhealthy_threshold: f64,
) -> BTreeMap<String, (ZoneState, usize)> {
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (zone, ready) in nodes {
        let c = counts.entry(zone.to_string()).or_default();
        if ready {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
    }
    counts
        .into_iter()
        .map(|(z, (r, n))| (z, (zone_state(r, n, unhealthy_threshold), r + n)))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::time::Duration;

    #[test]
    fn states() {
        assert_eq!(zone_state(3, 0, 0.55), ZoneState::Normal);
        assert_eq!(zone_state(0, 1, 0.55), ZoneState::FullDisruption);
        assert_eq!(zone_state(2, 2, 0.55), ZoneState::Normal);
        assert_eq!(zone_state(2, 3, 0.55), ZoneState::PartialDisruption);
        assert_eq!(zone_state(3, 3, 0.55), ZoneState::Normal);
        assert_eq!(zone_state(0, 0, 0.55), ZoneState::Normal);
    }

    #[test]
    fn rates() {
        let s = Settings::default();
        assert_eq!(eviction_rate(ZoneState::Normal, 3, &s), 0.1);
        assert_eq!(eviction_rate(ZoneState::FullDisruption, 3, &s), 0.1);
        assert_eq!(eviction_rate(ZoneState::PartialDisruption, 10, &s), 0.0);
        assert_eq!(eviction_rate(ZoneState::PartialDisruption, 51, &s), 0.01);
    }

    #[test]
    fn zone_keys() {
        let n: Node = serde_json::from_value(serde_json::json!({"metadata": {"name": "a",
            "labels": {"topology.kubernetes.io/zone": "z1", "topology.kubernetes.io/region": "r"}}}))
        .unwrap();
        assert_eq!(zone_key(&n), "r:\u{0}:z1");
        assert_eq!(zone_key(&Node::default()), "");
        let states = zone_states([("a", true), ("a", false), ("b", false)].into_iter(), 0.55);
        assert_eq!(states["a"], (ZoneState::Normal, 2));
        assert_eq!(states["b"], (ZoneState::FullDisruption, 1));
    }

    #[test]
    fn queue_is_rate_limited_with_burst_one() {
        let t0 = Instant::now();
        let mut q = ZoneQueue::new(0.5, t0);
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.pop_allowed(t0).as_deref(), Some("a"));
        assert_eq!(q.pop_allowed(t0 + Duration::from_secs(1)), None);
        assert_eq!(q.pop_allowed(t0 + Duration::from_secs(2)).as_deref(), Some("b"));
        assert_eq!(q.pop_allowed(t0 + Duration::from_secs(10)), None);
        q.add("c");
        q.limiter.set_qps(0.0, t0 + Duration::from_secs(10));
        q.remove("nothing");
        // Stopped zones keep their queue but taint nothing.
        assert_eq!(q.pop_allowed(t0 + Duration::from_secs(100)), None);
        assert!(q.contains("c"));
    }
}
