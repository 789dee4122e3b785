//! Sending etcd requests again through member failures and elections.
//!
//! A request that lands on a dead member, or on a member while the cluster
//! elects a new leader, fails. [`with_retry`] sends it again, to another
//! member when one is not being avoided and with backoff when all are,
//! within a budget, but only when that cannot apply it twice (see
//! [`Idempotence`]).

use std::future::Future;
use std::time::{Duration, Instant};

use super::endpoints::{Chosen, Endpoints};
use super::failure::{Failure, Retry};

/// How long one attempt may take before it counts as failed (maybe applied).
/// etcd itself gives up on a proposal after about 5 s plus two election
/// timeouts, so a healthy cluster answers well within this.
pub(super) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request is retried in total before its failure is returned.
pub(super) const RETRY_BUDGET: Duration = Duration::from_secs(20);
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// Whether sending a request twice could apply it twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Idempotence {
    /// Sending it again cannot apply it twice (reads, watches, compaction,
    /// writes guarded by a compare): retried after any transient failure.
    Safe,
    /// Sending it again could apply it twice (an unguarded delete): retried
    /// only when it provably never took effect.
    Unsafe,
}

/// The result of a request after retries.
#[derive(Debug)]
pub(super) struct Outcome<T> {
    pub(super) result: Result<T, Failure>,
    /// Some attempt failed in a way that may have applied it; a later
    /// compare failure may then be this request's own earlier success.
    pub(super) maybe_applied: bool,
}

/// Runs `attempt` on a member chosen by `endpoints` until it succeeds,
/// fails for good, or the retry budget is spent. `what` names the request
/// in logs.
pub(super) async fn with_retry<T, F, Fut>(
    endpoints: &Endpoints,
    what: &'static str,
    idempotence: Idempotence,
    mut attempt: F,
) -> Outcome<T>
where
    F: FnMut(Chosen) -> Fut,
    Fut: Future<Output = Result<T, etcd_client::Error>>,
{
    let started = Instant::now();
    let mut backoff = FIRST_BACKOFF;
    let mut maybe_applied = false;
    let mut attempts = 0u32;
    loop {
        let chosen = endpoints.choose();
        if chosen.all_avoided && attempts > 0 {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        attempts += 1;
        let member = chosen.index;
        let failure = match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt(chosen)).await {
            Ok(Ok(value)) => {
                endpoints.succeeded(member);
                if attempts > 1 {
                    tracing::debug!(request = what, attempts, elapsed = ?started.elapsed(), "etcd request succeeded after retries");
                }
                return Outcome {
                    result: Ok(value),
                    maybe_applied,
                };
            }
            Ok(Err(e)) => Failure::Etcd(e),
            Err(_) => Failure::TimedOut(ATTEMPT_TIMEOUT),
        };
        let retry = failure.retry();
        if retry != Retry::Never {
            endpoints.failed(member);
        }
        maybe_applied |= retry == Retry::MaybeApplied;
        let again = match (retry, idempotence) {
            (Retry::Never, _) | (Retry::MaybeApplied, Idempotence::Unsafe) => false,
            (Retry::NotApplied, _) | (Retry::MaybeApplied, Idempotence::Safe) => {
                started.elapsed() + backoff < RETRY_BUDGET
            }
        };
        if !again {
            if retry != Retry::Never {
                tracing::warn!(request = what, attempts, error = %failure, "etcd request failed");
            }
            return Outcome {
                result: Err(failure),
                maybe_applied,
            };
        }
        tracing::debug!(request = what, attempt = attempts, ?retry, error = %failure, "etcd request failed; retrying");
    }
}
