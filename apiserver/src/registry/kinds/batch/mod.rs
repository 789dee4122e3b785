//! Strategies of the `batch` API group's kinds: Jobs and CronJobs
//! (upstream's `pkg/registry/batch/*/strategy.go`,
//! `pkg/apis/batch/v1/defaults.go` and `pkg/apis/batch/validation`).

pub mod cronjob;
pub mod job;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::registry::strategy::Strategy;

/// The strategy of `resource` when it has its own.
pub fn strategy_for(resource: &str) -> Option<Arc<dyn Strategy>> {
    Some(match resource {
        "jobs" => Arc::new(job::JobStrategy),
        "cronjobs" => Arc::new(cronjob::CronJobStrategy),
        _ => return None,
    })
}
