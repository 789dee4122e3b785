//! The TTL-after-finished controller (upstream
//! `pkg/controller/ttlafterfinished`): deletes a finished Job (Complete or
//! Failed condition) `spec.ttlSecondsAfterFinished` seconds after it
//! finished. The decision is re-checked on a live read before deleting,
//! and the delete uses foreground propagation with a uid precondition, as
//! upstream does, so the Job's pods go first and a recreated Job of the
//! same name is never hit.

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Preconditions, PropagationPolicy};

use crate::controllers::job::conditions::{COMPLETE, FAILED, find_true, is_finished};
use crate::error::{Error, ignore_not_found, is_conflict, is_not_found};
use crate::informer::{Change, object_key, split_key};
use crate::manager::ControllerContext;
use crate::runner::{Action, new_queue, run_workers};

/// Upstream's name.
pub const CONTROLLER_NAME: &str = "ttl-after-finished-controller";
/// Workers (upstream's `--concurrent-ttl-after-finished-syncs` default).
pub const WORKERS: usize = 5;

/// What to do with a Job now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ttl {
    /// No TTL, not finished, or already being deleted.
    NotApplicable,
    /// Its TTL expires after this long.
    ExpiresIn(Duration),
    /// Its TTL expired: delete it.
    Expired,
    /// Finished, but no condition says when.
    UnknownFinishTime,
}

/// When the Job finished: its Complete or Failed condition's transition.
pub fn finish_time(job: &Job) -> Option<Timestamp> {
    find_true(job, COMPLETE)
        .or_else(|| find_true(job, FAILED))?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

/// The TTL decision for `job` at `now`.
pub fn ttl_state(job: &Job, now: Timestamp) -> Ttl {
    let Some(ttl) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) else {
        return Ttl::NotApplicable;
    };
    if job.metadata.deletion_timestamp.is_some() || !is_finished(job) {
        return Ttl::NotApplicable;
    }
    let Some(finished) = finish_time(job) else {
        return Ttl::UnknownFinishTime;
    };
    let expire_at = finished.as_second().saturating_add(i64::from(ttl));
    let left = expire_at - now.as_second();
    if left <= 0 {
        Ttl::Expired
    } else {
        Ttl::ExpiresIn(Duration::from_secs(u64::try_from(left).unwrap_or(0)))
    }
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, Result<(), Error>> {
    run(ctx).boxed()
}

async fn run(ctx: ControllerContext) -> Result<(), Error> {
    let queue = new_queue("ttl_jobs_to_delete", &ctx.metrics);
    let jobs = ctx.informers.get::<Job>();
    let q = queue.clone();
    jobs.add_handler(move |change| match change {
        Change::Added(j) | Change::Updated { new: j, .. } => {
            if ttl_state(j, Timestamp::now()) != Ttl::NotApplicable {
                q.add(object_key(j.as_ref()));
            }
        }
        Change::Deleted(_) => {}
    });
    jobs.wait_synced().await;
    let client = ctx.client.clone();
    let cache = jobs.clone();
    run_workers(CONTROLLER_NAME, queue, WORKERS, ctx.metrics.clone(), move |key| {
        let client = client.clone();
        let cache = cache.clone();
        async move { sync(&client, &cache, &key).await }
    })
    .await;
    Ok(())
}

async fn sync(client: &kube::Client, cache: &crate::informer::Informer<Job>, key: &str) -> Result<Action, Error> {
    let (ns, name) = split_key(key);
    let Some(job) = cache.get(ns, name) else {
        return Ok(Action::Done);
    };
    match ttl_state(&job, Timestamp::now()) {
        Ttl::NotApplicable => return Ok(Action::Done),
        Ttl::ExpiresIn(d) => return Ok(Action::RequeueAfter(d)),
        Ttl::UnknownFinishTime => {
            return Err(Error::other(format!(
                "unable to find the time when the Job {ns}/{name} finished"
            )));
        }
        Ttl::Expired => {}
    }
    // The cache may be stale (the TTL changed): decide again on a live read.
    let api: Api<Job> = Api::namespaced(client.clone(), ns);
    let Some(fresh) = ignore_not_found(api.get(name).await)? else {
        return Ok(Action::Done);
    };
    match ttl_state(&fresh, Timestamp::now()) {
        Ttl::Expired => {}
        Ttl::ExpiresIn(d) => return Ok(Action::RequeueAfter(d)),
        _ => return Ok(Action::Done),
    }
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        preconditions: Some(Preconditions {
            uid: fresh.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    tracing::info!(controller = CONTROLLER_NAME, job = key, "cleaning up finished Job");
    match api.delete(name, &dp).await {
        Ok(_) => Ok(Action::Done),
        Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(Action::Done),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn job(ttl: Option<i32>, conditions: serde_json::Value) -> Job {
        serde_json::from_value(json!({"metadata": {"name": "j", "namespace": "ns"},
            "spec": {"ttlSecondsAfterFinished": ttl, "template": {}},
            "status": {"conditions": conditions}}))
        .unwrap()
    }

    #[test]
    fn expiry_counts_from_the_finish() {
        let now: Timestamp = "2024-01-01T00:01:00Z".parse().unwrap();
        let done = json!([{"type": "Complete", "status": "True", "lastTransitionTime": "2024-01-01T00:00:30Z"}]);
        assert_eq!(
            ttl_state(&job(Some(60), done.clone()), now),
            Ttl::ExpiresIn(Duration::from_secs(30))
        );
        assert_eq!(ttl_state(&job(Some(30), done.clone()), now), Ttl::Expired);
        assert_eq!(ttl_state(&job(Some(0), done.clone()), now), Ttl::Expired);
        assert_eq!(ttl_state(&job(None, done), now), Ttl::NotApplicable);
        let failed = json!([{"type": "Failed", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]);
        assert_eq!(ttl_state(&job(Some(10), failed), now), Ttl::Expired);
        let running = json!([{"type": "Suspended", "status": "False"}]);
        assert_eq!(ttl_state(&job(Some(0), running), now), Ttl::NotApplicable);
        let no_time = json!([{"type": "Complete", "status": "True"}]);
        assert_eq!(ttl_state(&job(Some(0), no_time), now), Ttl::UnknownFinishTime);
    }
}
