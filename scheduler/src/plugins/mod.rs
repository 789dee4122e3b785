//! The in-tree plugins (upstream's `pkg/scheduler/framework/plugins`), the
//! registry that builds them by name, and the default profile.

mod csi_migration;
pub mod default_preemption;
pub mod image_locality;
pub mod inter_pod_affinity;
pub(crate) mod match_counts;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod node_volume_limits;
pub mod pod_topology_spread;
pub mod scheduling_gates;
mod spread_tallies;
pub mod taint_toleration;
#[cfg(test)]
pub mod testing;
pub mod volume_binding;
mod volume_lookup;
pub mod volume_restrictions;
pub mod volume_zone;

use std::sync::Arc;

use crate::framework::{Framework, Plugin};
use pod_topology_spread::{NoWorkloads, WorkloadSelectors};

/// What plugins may need from the scheduler when they are built.
#[derive(Clone)]
pub struct PluginContext {
    /// Selectors of the workloads selecting a pod (PodTopologySpread's
    /// default constraints).
    pub workloads: Arc<dyn WorkloadSelectors>,
    /// PodDisruptionBudgets (DefaultPreemption).
    pub budgets: Arc<dyn default_preemption::Budgets>,
    /// Claims, volumes and storage classes (VolumeBinding).
    pub volumes: Arc<dyn volume_binding::VolumeListers>,
}

impl Default for PluginContext {
    fn default() -> Self {
        PluginContext {
            workloads: Arc::new(NoWorkloads),
            budgets: Arc::new(default_preemption::NoBudgets),
            volumes: Arc::new(volume_binding::NoVolumes),
        }
    }
}

/// The default profile's plugins in upstream's order, with score weights
/// (v1 `getDefaultPlugins`). Names rkube does not implement yet are listed
/// in [`NOT_IMPLEMENTED`].
pub const DEFAULT_PLUGINS: &[(&str, i64)] = &[
    ("SchedulingGates", 0),
    ("PrioritySort", 0),
    ("NodeUnschedulable", 0),
    ("NodeName", 0),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", 0),
    ("NodeResourcesFit", 1),
    ("VolumeRestrictions", 0),
    ("NodeVolumeLimits", 0),
    ("VolumeBinding", 0),
    ("VolumeZone", 0),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("DefaultPreemption", 0),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
    ("DefaultBinder", 0),
];

/// Upstream plugin names accepted in configuration that have no effect
/// here: the queue sort and binder are built in; DynamicResources is not
/// implemented yet.
pub const NOT_IMPLEMENTED: &[&str] = &["PrioritySort", "DefaultBinder", "DynamicResources"];

/// Per-plugin arguments from the configuration (`pluginConfig[].args`),
/// by plugin name.
#[derive(Debug, Clone, Default)]
pub struct PluginArgs {
    pub by_plugin: std::collections::BTreeMap<String, serde_json::Value>,
}

impl PluginArgs {
    /// The field `key` of plugin `name`'s args.
    pub fn get(&self, name: &str, key: &str) -> Option<&serde_json::Value> {
        self.by_plugin.get(name).and_then(|a| a.get(key))
    }
}

/// Builds the plugin named `name`; `None` for unknown or not implemented
/// names.
pub fn new_plugin(name: &str, ctx: &PluginContext, args: &PluginArgs) -> Option<Arc<dyn Plugin>> {
    let p: Arc<dyn Plugin> = match name {
        "SchedulingGates" => Arc::new(scheduling_gates::SchedulingGates),
        "NodeUnschedulable" => Arc::new(node_unschedulable::NodeUnschedulable),
        "NodeName" => Arc::new(node_name::NodeName),
        "TaintToleration" => Arc::new(taint_toleration::TaintToleration),
        "NodeAffinity" => Arc::new(node_affinity::NodeAffinity),
        "NodePorts" => Arc::new(node_ports::NodePorts),
        "NodeResourcesFit" => Arc::new(node_resources_fit::NodeResourcesFit::from_args(
            args.get(name, "scoringStrategy"),
        )),
        "PodTopologySpread" => Arc::new(
            pod_topology_spread::PodTopologySpread::new(ctx.workloads.clone())
                .with_args(args.get(name, "defaultingType"), args.get(name, "defaultConstraints")),
        ),
        "InterPodAffinity" => Arc::new(inter_pod_affinity::InterPodAffinity::with_hard_pod_affinity_weight(
            args.get(name, "hardPodAffinityWeight")
                .and_then(|w| w.as_i64())
                .unwrap_or(inter_pod_affinity::HARD_POD_AFFINITY_WEIGHT),
        )),
        "DefaultPreemption" => Arc::new(default_preemption::DefaultPreemption::new(ctx.budgets.clone())),
        "NodeResourcesBalancedAllocation" => Arc::new(node_resources_fit::BalancedAllocation),
        "ImageLocality" => Arc::new(image_locality::ImageLocality),
        "VolumeBinding" => Arc::new(volume_binding::VolumeBinding::new(ctx.volumes.clone())),
        "VolumeRestrictions" => Arc::new(volume_restrictions::VolumeRestrictions::new(ctx.volumes.clone())),
        "VolumeZone" => Arc::new(volume_zone::VolumeZone::new(ctx.volumes.clone())),
        "NodeVolumeLimits" => Arc::new(node_volume_limits::NodeVolumeLimits::new(ctx.volumes.clone())),
        _ => return None,
    };
    Some(p)
}

/// True for any name of an upstream in-tree plugin this scheduler accepts.
pub fn is_known(name: &str) -> bool {
    DEFAULT_PLUGINS.iter().any(|(n, _)| *n == name) || NOT_IMPLEMENTED.contains(&name)
}

/// The default profile (`default-scheduler`, every default plugin).
pub fn default_framework(ctx: &PluginContext) -> Framework {
    let plugins = DEFAULT_PLUGINS
        .iter()
        .filter_map(|(name, w)| new_plugin(name, ctx, &PluginArgs::default()).map(|p| (p, *w)))
        .collect();
    Framework::new(crate::DEFAULT_SCHEDULER_NAME, plugins)
}
