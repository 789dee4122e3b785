//! Strategies of the `apps` API group's kinds: Deployments, ReplicaSets,
//! StatefulSets, DaemonSets and ControllerRevisions (upstream's
//! `pkg/registry/apps/*/strategy.go`, `pkg/apis/apps/v1/defaults.go` and
//! `pkg/apis/apps/validation`).

pub mod controller_revision;
pub mod daemonset;
pub mod deployment;
pub mod replicaset;
pub mod statefulset;
#[cfg(test)]
mod tests;
pub mod workload;

use std::sync::Arc;

use crate::registry::strategy::Strategy;

/// The strategy of `resource` when it has its own.
pub fn strategy_for(resource: &str) -> Option<Arc<dyn Strategy>> {
    Some(match resource {
        "deployments" => Arc::new(deployment::DeploymentStrategy),
        "replicasets" => Arc::new(replicaset::ReplicaSetStrategy),
        "statefulsets" => Arc::new(statefulset::StatefulSetStrategy),
        "daemonsets" => Arc::new(daemonset::DaemonSetStrategy),
        "controllerrevisions" => Arc::new(controller_revision::ControllerRevisionStrategy),
        _ => return None,
    })
}
