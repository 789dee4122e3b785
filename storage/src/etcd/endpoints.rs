//! The members the store talks to: one client per endpoint, taken in turn,
//! skipping members that failed recently.
//!
//! etcd-client can balance one channel over every endpoint, but its balancer
//! (tower's power of two choices, by pending requests) keeps choosing a dead
//! member, which never has requests pending: measured with a 3-member
//! cluster and one member killed, about a third of requests went to the
//! dead member first and reads became ten times slower. Choosing the member
//! here, and avoiding one for a while after it fails, costs one failed
//! request per member and period instead.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions, KvClient, WatchClient};

/// How long a member is avoided after its first failure in a row; doubled
/// for each further one, up to [`AVOID_MAX`].
const AVOID_FIRST: Duration = Duration::from_secs(1);
const AVOID_MAX: Duration = Duration::from_secs(10);

/// One client per endpoint.
pub(super) struct Endpoints {
    members: Vec<Member>,
    /// Round-robin position.
    next: AtomicUsize,
}

struct Member {
    url: String,
    kv: KvClient,
    watch: WatchClient,
    health: Mutex<Health>,
}

/// Recent failures of one member.
#[derive(Debug, Default)]
struct Health {
    /// Failures since the last success.
    failures: u32,
    /// Until when requests go elsewhere.
    avoid_until: Option<Instant>,
}

impl Member {
    fn health(&self) -> MutexGuard<'_, Health> {
        // Every update leaves a consistent value, so poison is harmless.
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The member chosen for one attempt, with its clients.
pub(super) struct Chosen {
    pub(super) index: usize,
    pub(super) kv: KvClient,
    pub(super) watch: WatchClient,
    /// Every member is being avoided: this one is merely the first to be
    /// tried again, so the caller should back off.
    pub(super) all_avoided: bool,
}

impl Endpoints {
    /// A client for each of `urls`. Connections open on first use, so this
    /// fails only on malformed URLs or when there are none.
    pub(super) async fn connect(
        urls: &[String],
        options: &ConnectOptions,
        max_message_size: usize,
    ) -> Result<Endpoints, etcd_client::Error> {
        if urls.is_empty() {
            return Err(etcd_client::Error::InvalidArgs("no etcd endpoints given".into()));
        }
        let mut members = Vec::with_capacity(urls.len());
        for url in urls {
            let client = Client::connect([url], Some(options.clone())).await?;
            members.push(Member {
                url: url.clone(),
                kv: client.kv_client().max_decoding_message_size(max_message_size),
                watch: client.watch_client().max_decoding_message_size(max_message_size),
                health: Mutex::new(Health::default()),
            });
        }
        Ok(Endpoints {
            members,
            next: AtomicUsize::new(0),
        })
    }

    /// The URLs, in the order given.
    pub(super) fn urls(&self) -> Vec<&str> {
        self.members.iter().map(|m| m.url.as_str()).collect()
    }

    /// The next member in turn that is not being avoided, or, when all are,
    /// the one whose avoidance ends first.
    pub(super) fn choose(&self) -> Chosen {
        let n = self.members.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut soonest: Option<(usize, Instant)> = None;
        for i in 0..n {
            let index = (start + i) % n;
            match self.members[index].health().avoid_until {
                Some(until) if until > now => {
                    if soonest.is_none_or(|(_, s)| until < s) {
                        soonest = Some((index, until));
                    }
                }
                _ => return self.chosen(index, false),
            }
        }
        self.chosen(soonest.map_or(start % n, |(i, _)| i), true)
    }

    fn chosen(&self, index: usize, all_avoided: bool) -> Chosen {
        let m = &self.members[index];
        Chosen {
            index,
            kv: m.kv.clone(),
            watch: m.watch.clone(),
            all_avoided,
        }
    }

    /// Records that a request to member `index` failed in a way that may be
    /// the member's fault (unreachable, no leader, timeout).
    pub(super) fn failed(&self, index: usize) {
        let Some(m) = self.members.get(index) else { return };
        let mut health = m.health();
        health.failures = health.failures.saturating_add(1);
        let avoid = AVOID_FIRST
            .saturating_mul(1 << (health.failures - 1).min(4))
            .min(AVOID_MAX);
        health.avoid_until = Some(Instant::now() + avoid);
        if health.failures == 1 {
            tracing::info!(endpoint = %m.url, ?avoid, "etcd member failed; sending requests to the others");
        }
    }

    /// Records that a request to member `index` succeeded.
    pub(super) fn succeeded(&self, index: usize) {
        let Some(m) = self.members.get(index) else { return };
        let mut health = m.health();
        if health.failures > 0 {
            tracing::info!(endpoint = %m.url, failures = health.failures, "etcd member answers again");
            *health = Health::default();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    async fn endpoints(n: usize) -> Endpoints {
        // Connections open on first use, so nothing needs to listen here.
        let urls: Vec<String> = (0..n).map(|i| format!("http://127.0.0.1:{}", 1 + i)).collect();
        Endpoints::connect(&urls, &ConnectOptions::new(), 1024).await.unwrap()
    }

    fn picks(e: &Endpoints, n: usize) -> Vec<(usize, bool)> {
        (0..n)
            .map(|_| {
                let c = e.choose();
                (c.index, c.all_avoided)
            })
            .collect()
    }

    #[tokio::test]
    async fn members_are_taken_in_turn() {
        let e = endpoints(3).await;
        assert_eq!(picks(&e, 4), [(0, false), (1, false), (2, false), (0, false)]);
    }

    #[tokio::test]
    async fn a_failed_member_is_skipped_until_it_succeeds() {
        let e = endpoints(3).await;
        e.failed(1);
        assert!(picks(&e, 6).iter().all(|(i, avoided)| *i != 1 && !avoided));
        e.succeeded(1);
        assert!(picks(&e, 3).iter().any(|(i, _)| *i == 1));
    }

    #[tokio::test]
    async fn when_every_member_failed_the_first_to_recover_is_tried() {
        let e = endpoints(3).await;
        e.failed(2);
        e.failed(0);
        e.failed(0); // avoided for longer
        e.failed(1);
        e.failed(1);
        assert_eq!(picks(&e, 3), [(2, true), (2, true), (2, true)]);
    }

    #[tokio::test]
    async fn no_endpoints_is_an_error() {
        assert!(Endpoints::connect(&[], &ConnectOptions::new(), 1024).await.is_err());
    }
}
