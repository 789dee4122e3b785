//! `flowcontrol.apiserver.k8s.io`: FlowSchema and PriorityLevelConfiguration
//! (`pkg/apis/flowcontrol/v1/defaults.go`, `pkg/apis/flowcontrol/validation`):
//! v1 defaults, and the spec's required fields and ranges.

mod flow_schema;
mod priority_level;

use std::sync::Arc;

use crate::registry::strategy::Strategy;

/// The strategy of `resource` when it has its own.
pub fn strategy_for(resource: &str) -> Option<Arc<dyn Strategy>> {
    match resource {
        "flowschemas" => Some(Arc::new(flow_schema::FlowSchemaStrategy)),
        "prioritylevelconfigurations" => Some(Arc::new(priority_level::PriorityLevelStrategy)),
        _ => None,
    }
}
