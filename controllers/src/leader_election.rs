//! Leader election on a `coordination.k8s.io/v1` Lease, client-go's
//! `leaderelection` model: acquire the lease when it is free or its
//! holder's renewals stop for `lease_duration` (as seen by this process's
//! clock, so clock skew between instances does not matter), renew it every
//! `retry_period`, give up leadership when a renewal has not succeeded for
//! `renew_deadline`, and release it (empty holder) on shutdown.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;

use crate::error::is_not_found;

/// Where the lease lives and how long its terms are.
#[derive(Debug, Clone)]
pub struct LeaderElectionConfig {
    pub namespace: String,
    pub name: String,
    /// This instance's holder identity (upstream: `<hostname>_<uuid>`).
    pub identity: String,
    /// How long a non-leader waits after the last observed renewal before
    /// taking over (upstream default 15 s).
    pub lease_duration: Duration,
    /// How long the leader keeps retrying a renewal before it gives up
    /// (10 s).
    pub renew_deadline: Duration,
    /// Interval between acquisition attempts and renewals (2 s).
    pub retry_period: Duration,
}

/// Why leading ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum LeaderElectionError {
    #[error("leaderelection lost: could not renew lease {0} within the renew deadline")]
    Lost(String),
}

/// The holder record as last observed, and when this process saw it change.
struct Observed {
    holder: String,
    renew_time: Option<Timestamp>,
    at: Instant,
}

/// Acquires, renews and releases one Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaderElectionConfig,
    observed: Option<Observed>,
}

/// Result of one acquire-or-renew attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// This instance holds the lease.
    Held,
    /// Another instance holds an unexpired lease.
    HeldByOther,
}

impl LeaderElector {
    pub fn new(client: kube::Client, config: LeaderElectionConfig) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
        }
    }

    fn lease_ref(&self) -> String {
        format!("{}/{}", self.config.namespace, self.config.name)
    }

    fn spec(&self, acquire_time: Option<MicroTime>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX)),
            acquire_time,
            renew_time: Some(MicroTime(Timestamp::now())),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, kube::Error> {
        let existing = match self.api.get(&self.config.name).await {
            Ok(lease) => lease,
            Err(e) if is_not_found(&e) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(self.spec(Some(MicroTime(Timestamp::now())), 0)),
                };
                self.api.create(&PostParams::default(), &lease).await?;
                self.observe(&self.config.identity.clone(), None);
                return Ok(Attempt::Held);
            }
            Err(e) => return Err(e),
        };
        let spec = existing.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let renew = spec.renew_time.as_ref().map(|t| t.0);
        self.observe(&holder, renew);
        let me = holder == self.config.identity;
        let duration = spec
            .lease_duration_seconds
            .map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0)))
            .unwrap_or(self.config.lease_duration);
        let unexpired = self.observed.as_ref().is_some_and(|o| o.at.elapsed() < duration);
        if !holder.is_empty() && !me && unexpired {
            return Ok(Attempt::HeldByOther);
        }
        let transitions = spec.lease_transitions.unwrap_or(0);
        let new_spec = if me {
            self.spec(spec.acquire_time.clone(), transitions)
        } else {
            self.spec(Some(MicroTime(Timestamp::now())), transitions.saturating_add(1))
        };
        let mut lease = existing;
        lease.spec = Some(new_spec);
        // The resourceVersion in `lease` makes this a compare-and-swap.
        self.api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await?;
        Ok(Attempt::Held)
    }

    fn observe(&mut self, holder: &str, renew: Option<Timestamp>) {
        let changed = match &self.observed {
            Some(o) => o.holder != holder || o.renew_time != renew,
            None => true,
        };
        if changed {
            self.observed = Some(Observed {
                holder: holder.to_string(),
                renew_time: renew,
                at: Instant::now(),
            });
        }
    }

    /// Blocks until this instance holds the lease.
    pub async fn acquire(&mut self) {
        tracing::info!(lease = %self.lease_ref(), identity = %self.config.identity, "attempting to acquire leader lease");
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Held) => {
                    tracing::info!(lease = %self.lease_ref(), identity = %self.config.identity, "successfully acquired lease");
                    return;
                }
                Ok(Attempt::HeldByOther) => {}
                Err(e) => tracing::warn!(lease = %self.lease_ref(), error = %e, "error retrieving or updating lease"),
            }
            tokio::time::sleep(jitter(self.config.retry_period)).await;
        }
    }

    /// Renews the lease every retry period; returns when a renewal did not
    /// succeed within the renew deadline.
    pub async fn keep_renewing(&mut self) -> LeaderElectionError {
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            let deadline = Instant::now() + self.config.renew_deadline;
            loop {
                let attempt = tokio::time::timeout_at(deadline.into(), self.try_acquire_or_renew()).await;
                match attempt {
                    Ok(Ok(Attempt::Held)) => break,
                    Ok(Ok(Attempt::HeldByOther)) => return LeaderElectionError::Lost(self.lease_ref()),
                    Ok(Err(e)) => tracing::warn!(lease = %self.lease_ref(), error = %e, "failed to renew lease"),
                    Err(_) => {}
                }
                if Instant::now() + self.config.retry_period >= deadline {
                    return LeaderElectionError::Lost(self.lease_ref());
                }
                tokio::time::sleep(self.config.retry_period).await;
            }
        }
    }

    /// Gives the lease up (empty holder, 1 s duration) if this instance
    /// still holds it, so another instance takes over at once.
    pub async fn release(&mut self) {
        let Ok(mut lease) = self.api.get(&self.config.name).await else {
            return;
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        let now = MicroTime(Timestamp::now());
        lease.spec = Some(LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: spec.lease_transitions,
            ..LeaseSpec::default()
        });
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.lease_ref(), "released leader lease"),
            Err(e) => tracing::warn!(lease = %self.lease_ref(), error = %e, "failed to release lease"),
        }
    }

    /// Acquires the lease, runs `lead` while renewing it, and releases it
    /// when `lead` or `shutdown` finishes. Losing the lease ends `lead` and
    /// returns [`LeaderElectionError::Lost`] (kube-controller-manager exits).
    pub async fn run<F>(
        mut self,
        shutdown: impl Future<Output = ()>,
        on_leading: impl FnOnce() -> F,
        on_stopped: impl FnOnce(),
    ) -> Result<(), LeaderElectionError>
    where
        F: Future<Output = ()>,
    {
        tokio::pin!(shutdown);
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = self.acquire() => {}
        }
        let lead = on_leading();
        let result = {
            tokio::pin!(lead);
            let renew = self.keep_renewing();
            tokio::pin!(renew);
            tokio::select! {
                _ = &mut shutdown => Ok(()),
                _ = &mut lead => Ok(()),
                lost = &mut renew => Err(lost),
            }
        };
        on_stopped();
        if result.is_ok() {
            self.release().await;
        }
        result
    }
}

/// `period` plus up to 20% (client-go's `JitterFactor` 1.2).
fn jitter(period: Duration) -> Duration {
    period + period.mul_f64(rand::random::<f64>() * 0.2)
}

/// `<hostname>_<random>`, like upstream's `<hostname>_<uuid>`.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let r: u128 = rand::random();
    let hex = format!("{r:032x}");
    format!(
        "{host}_{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
