//! Leader election through a `coordination.k8s.io/v1` Lease (by default
//! `kube-system/kube-scheduler`), as client-go's leaderelection with
//! LeaseLock: acquire when the lease is free or expired, renew every retry
//! period, and give up leadership when renewing fails for the renew
//! deadline.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, PostParams};
use tracing::{info, warn};

/// Leader election settings (upstream's defaults: 15 s, 10 s, 2 s).
#[derive(Debug, Clone)]
pub struct LeaderElection {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaderElection {
    /// `kube-system/kube-scheduler` with upstream's timings.
    pub fn new(identity: String) -> LeaderElection {
        LeaderElection {
            namespace: "kube-system".into(),
            name: "kube-scheduler".into(),
            identity,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    fn api(&self, client: &Client) -> Api<Lease> {
        Api::namespaced(client.clone(), &self.namespace)
    }

    /// One attempt: takes or renews the lease; `Ok(true)` when we hold it.
    pub async fn try_acquire_or_renew(&self, client: &Client) -> Result<bool, kube::Error> {
        let api = self.api(client);
        let now = Timestamp::now();
        let secs = i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let Some(mut lease) = api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(secs),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let ours = holder == self.identity;
        let expired = match (&spec.renew_time, spec.lease_duration_seconds) {
            (Some(t), Some(d)) => {
                t.0.checked_add(SignedDuration::from_secs(i64::from(d)))
                    .is_ok_and(|end| end < now)
            }
            _ => true,
        };
        if !ours && !holder.is_empty() && !expired {
            return Ok(false);
        }
        if !ours {
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            spec.holder_identity = Some(self.identity.clone());
        }
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(secs);
        match api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits until this instance holds the lease.
    pub async fn acquire(&self, client: &Client) {
        info!(lease = %format!("{}/{}", self.namespace, self.name), identity = %self.identity, "waiting for leadership");
        loop {
            match self.try_acquire_or_renew(client).await {
                Ok(true) => {
                    info!(identity = %self.identity, "acquired leadership");
                    return;
                }
                Ok(false) => {}
                Err(e) => warn!(error = %e, "leader election attempt failed"),
            }
            tokio::time::sleep(self.retry_period).await;
        }
    }

    /// Renews every retry period; returns when leadership is lost (no
    /// successful renewal within the renew deadline).
    pub async fn keep(&self, client: &Client) {
        let mut last = Instant::now();
        loop {
            tokio::time::sleep(self.retry_period).await;
            match self.try_acquire_or_renew(client).await {
                Ok(true) => last = Instant::now(),
                Ok(false) => {
                    warn!(identity = %self.identity, "leadership taken by another instance");
                    return;
                }
                Err(e) => warn!(error = %e, "renewing leadership failed"),
            }
            if last.elapsed() > self.renew_deadline {
                warn!(identity = %self.identity, "could not renew leadership within the deadline");
                return;
            }
        }
    }
}
