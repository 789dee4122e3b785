//! One printer per built-in kind that upstream kube-apiserver prints
//! (`pkg/printers/internalversion`): its column definitions and a function
//! from a stored object to the row's cells.
//!
//! The server prints the wide form, as upstream does: every column's cell is
//! present and kubectl hides the priority-1 columns unless `-o wide`.
//!
//! Objects are read as stored. Where a printed field has an API default
//! (e.g. a Service's `type`), a missing field is printed as its default,
//! because upstream always prints defaulted objects. Resource quantities are
//! printed as stored; upstream prints their canonical form, which is what
//! its storage holds.

mod admission;
mod autoscaling;
mod cluster;
mod core;
mod events;
mod flowcontrol;
mod network;
mod pod;
mod storage;
mod workloads;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::columns::ColumnDefinition;

/// A stored object.
pub(crate) type Object = Map<String, Value>;

/// How one kind is printed.
pub(crate) struct Printer {
    /// Column definitions, in cell order.
    pub columns: &'static [ColumnDefinition],
    /// The row for one object at a given time (ages are relative to it).
    pub print: fn(&Object, OffsetDateTime) -> Printed,
}

/// One printed row before the object is attached.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Printed {
    /// Cells, one per column definition (upstream's IP address printer has one more).
    pub cells: Vec<Value>,
    /// `metav1.TableRowCondition`s; upstream sets them only for finished pods.
    pub conditions: Vec<Value>,
}

/// Builds a [`Printed`] row from cells of any type JSON values convert from.
macro_rules! cells {
    ($($cell:expr),* $(,)?) => {
        $crate::table::printers::Printed { cells: vec![$(serde_json::Value::from($cell)),*], conditions: Vec::new() }
    };
}
pub(crate) use cells;

/// The printer for a resource, if upstream has one.
pub(crate) fn lookup(group: &str, resource: &str) -> Option<&'static Printer> {
    let printer = match (group, resource) {
        ("", "pods") => &pod::PODS,
        ("", "podtemplates") => &workloads::POD_TEMPLATES,
        ("", "replicationcontrollers") => &workloads::REPLICATION_CONTROLLERS,
        ("", "services") => &core::SERVICES,
        ("", "endpoints") => &core::ENDPOINTS,
        ("", "nodes") => &core::NODES,
        ("", "events") | ("events.k8s.io", "events") => &events::EVENTS,
        ("", "namespaces") => &core::NAMESPACES,
        ("", "secrets") => &core::SECRETS,
        ("", "configmaps") => &core::CONFIG_MAPS,
        ("", "serviceaccounts") => &core::SERVICE_ACCOUNTS,
        ("", "resourcequotas") => &core::RESOURCE_QUOTAS,
        ("", "componentstatuses") => &core::COMPONENT_STATUSES,
        ("", "persistentvolumes") => &storage::PERSISTENT_VOLUMES,
        ("", "persistentvolumeclaims") => &storage::PERSISTENT_VOLUME_CLAIMS,
        ("apps", "replicasets") => &workloads::REPLICA_SETS,
        ("apps", "deployments") => &workloads::DEPLOYMENTS,
        ("apps", "statefulsets") => &workloads::STATEFUL_SETS,
        ("apps", "daemonsets") => &workloads::DAEMON_SETS,
        ("apps", "controllerrevisions") => &workloads::CONTROLLER_REVISIONS,
        ("batch", "jobs") => &workloads::JOBS,
        ("batch", "cronjobs") => &workloads::CRON_JOBS,
        ("policy", "poddisruptionbudgets") => &workloads::POD_DISRUPTION_BUDGETS,
        ("autoscaling", "horizontalpodautoscalers") => &autoscaling::HORIZONTAL_POD_AUTOSCALERS,
        ("networking.k8s.io", "ingresses") => &network::INGRESSES,
        ("networking.k8s.io", "ingressclasses") => &network::INGRESS_CLASSES,
        ("networking.k8s.io", "networkpolicies") => &network::NETWORK_POLICIES,
        ("networking.k8s.io", "ipaddresses") => &network::IP_ADDRESSES,
        ("networking.k8s.io", "servicecidrs") => &network::SERVICE_CIDRS,
        ("discovery.k8s.io", "endpointslices") => &network::ENDPOINT_SLICES,
        ("storage.k8s.io", "storageclasses") => &storage::STORAGE_CLASSES,
        ("storage.k8s.io", "volumeattributesclasses") => &storage::VOLUME_ATTRIBUTES_CLASSES,
        ("storage.k8s.io", "csidrivers") => &storage::CSI_DRIVERS,
        ("storage.k8s.io", "csinodes") => &storage::CSI_NODES,
        ("storage.k8s.io", "csistoragecapacities") => &storage::CSI_STORAGE_CAPACITIES,
        ("storage.k8s.io", "volumeattachments") => &storage::VOLUME_ATTACHMENTS,
        ("rbac.authorization.k8s.io", "rolebindings") => &cluster::ROLE_BINDINGS,
        ("rbac.authorization.k8s.io", "clusterrolebindings") => &cluster::CLUSTER_ROLE_BINDINGS,
        ("certificates.k8s.io", "certificatesigningrequests") => &cluster::CERTIFICATE_SIGNING_REQUESTS,
        ("certificates.k8s.io", "clustertrustbundles") => &cluster::CLUSTER_TRUST_BUNDLES,
        ("coordination.k8s.io", "leases") => &cluster::LEASES,
        ("coordination.k8s.io", "leasecandidates") => &cluster::LEASE_CANDIDATES,
        ("scheduling.k8s.io", "priorityclasses") => &cluster::PRIORITY_CLASSES,
        ("node.k8s.io", "runtimeclasses") => &cluster::RUNTIME_CLASSES,
        ("apiregistration.k8s.io", "apiservices") => &cluster::API_SERVICES,
        ("internal.apiserver.k8s.io", "storageversions") => &cluster::STORAGE_VERSIONS,
        ("resource.k8s.io", "deviceclasses") => &cluster::DEVICE_CLASSES,
        ("resource.k8s.io", "resourceclaims") => &cluster::RESOURCE_CLAIMS,
        ("resource.k8s.io", "resourceclaimtemplates") => &cluster::RESOURCE_CLAIM_TEMPLATES,
        ("resource.k8s.io", "resourceslices") => &cluster::RESOURCE_SLICES,
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations") => &admission::MUTATING_WEBHOOKS,
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations") => &admission::VALIDATING_WEBHOOKS,
        ("admissionregistration.k8s.io", "validatingadmissionpolicies") => &admission::VALIDATING_POLICIES,
        ("admissionregistration.k8s.io", "validatingadmissionpolicybindings") => &admission::VALIDATING_POLICY_BINDINGS,
        ("admissionregistration.k8s.io", "mutatingadmissionpolicies") => &admission::MUTATING_POLICIES,
        ("admissionregistration.k8s.io", "mutatingadmissionpolicybindings") => &admission::MUTATING_POLICY_BINDINGS,
        ("flowcontrol.apiserver.k8s.io", "flowschemas") => &flowcontrol::FLOW_SCHEMAS,
        ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations") => &flowcontrol::PRIORITY_LEVELS,
        _ => return None,
    };
    Some(printer)
}
