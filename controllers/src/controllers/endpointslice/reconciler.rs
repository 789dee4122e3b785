//! The EndpointSlice reconciler, without IO (upstream's `Reconciler`):
//! from a Service, its pods and its current slices, which slices to
//! create, update and delete. Per address family and per set of ports,
//! existing slices keep the endpoints still wanted (changed ones are
//! updated in place), slices being updated anyway are filled first
//! (fullest first), then the remaining endpoints go to the unchanged
//! slice they fit best, then to new slices; a Service with no endpoints
//! keeps one empty placeholder slice per family; slices about to be
//! deleted are reused for slices about to be created. This keeps churn
//! low: one pod changing touches one slice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};

use super::desired::{
    CONTROLLER_NAME, EndpointKey, PortKey, endpoint_key, endpoint_ports, eps, eps_mut, new_slice, owned_by,
    pod_to_endpoint, port_key, same_state, slice_labels,
};
use super::hints::Heuristic;
use crate::cached_pod::CachedPod;
use crate::controllers::endpoints::service_pods::{Family, should_pod_be_in_endpoints, slice_families};

/// What to write.
#[derive(Debug, Default)]
pub struct Plan {
    /// New slices (`generateName` set).
    pub create: Vec<EndpointSlice>,
    /// Existing slices with their new content (name and resourceVersion
    /// of the slice they replace).
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<Arc<EndpointSlice>>,
    /// Pods left out because their Node is unknown; the sync is retried.
    pub missing_nodes: BTreeSet<String>,
}

/// What the reconciler reads.
pub struct Input<'a> {
    pub service: &'a Service,
    /// The pods the Service selects.
    pub pods: &'a [&'a CachedPod],
    /// The Service's slices managed by this controller.
    pub existing: &'a [Arc<EndpointSlice>],
    /// Node lookup (for zones).
    pub node: &'a dyn Fn(&str) -> Option<Arc<Node>>,
    pub max_endpoints_per_slice: usize,
}

fn family_of(slice: &EndpointSlice) -> Option<Family> {
    match slice.address_type.as_str() {
        "IPv4" => Some(Family::IPv4),
        "IPv6" => Some(Family::IPv6),
        _ => None,
    }
}

fn name_of(s: &EndpointSlice) -> String {
    s.metadata.name.clone().unwrap_or_default()
}

/// The plan bringing `input.existing` to the desired slices.
pub fn reconcile(input: &Input<'_>) -> Plan {
    let families = slice_families(input.service);
    let mut plan = Plan::default();
    let mut by_family: BTreeMap<Family, Vec<Arc<EndpointSlice>>> = BTreeMap::new();
    for s in input.existing {
        match family_of(s).filter(|f| families.contains(f)) {
            Some(f) => by_family.entry(f).or_default().push(s.clone()),
            None => plan.delete.push(s.clone()),
        }
    }
    for f in families {
        let existing = by_family.remove(&f).unwrap_or_default();
        reconcile_family(input, f, &existing, &mut plan);
    }
    plan
}

type Desired = BTreeMap<PortKey, (Vec<EndpointPort>, BTreeMap<EndpointKey, Endpoint>)>;

fn desired_endpoints(input: &Input<'_>, family: Family, missing_nodes: &mut BTreeSet<String>) -> Desired {
    let publish_not_ready = input
        .service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let mut desired = Desired::new();
    for pod in input.pods {
        if !should_pod_be_in_endpoints(pod, true) {
            continue;
        }
        let ports = endpoint_ports(input.service, pod);
        let entry = desired
            .entry(port_key(&ports))
            .or_insert_with(|| (ports, BTreeMap::new()));
        let node_name = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("");
        let node = (input.node)(node_name);
        if node.is_none() && !publish_not_ready {
            missing_nodes.insert(format!(
                "skipping Pod {} for Service {}: Node {node_name} Not Found",
                pod.metadata.name.as_deref().unwrap_or(""),
                input.service.metadata.name.as_deref().unwrap_or("")
            ));
            continue;
        }
        let e = pod_to_endpoint(pod, node.as_deref(), input.service, family);
        if !e.addresses.is_empty() {
            entry.1.insert(endpoint_key(&e), e);
        }
    }
    desired
}

fn is_placeholder_like(existing: &EndpointSlice, placeholder: &EndpointSlice) -> bool {
    eps(existing).is_empty()
        && existing.ports.as_ref().is_none_or(Vec::is_empty)
        && existing.address_type == placeholder.address_type
        && existing.metadata.namespace == placeholder.metadata.namespace
        && existing.metadata.labels.clone().unwrap_or_default()
            == placeholder.metadata.labels.clone().unwrap_or_default()
}

fn reconcile_family(input: &Input<'_>, family: Family, existing: &[Arc<EndpointSlice>], plan: &mut Plan) {
    let service = input.service;
    let mut to_create = Vec::new();
    let mut to_update = Vec::new();
    let mut to_delete = Vec::new();
    let mut existing_by_ports: BTreeMap<PortKey, Vec<Arc<EndpointSlice>>> = BTreeMap::new();
    for s in existing {
        if owned_by(s, service) {
            existing_by_ports
                .entry(port_key(s.ports.as_deref().unwrap_or_default()))
                .or_default()
                .push(s.clone());
        } else {
            to_delete.push(s.clone());
        }
    }
    let desired = desired_endpoints(input, family, &mut plan.missing_nodes);
    let mut unchanged = Vec::new();
    for (key, (ports, wanted)) in desired {
        let slices = existing_by_ports.remove(&key).unwrap_or_default();
        let r = reconcile_port_mapping(input, family, &slices, wanted, ports);
        to_create.extend(r.create);
        to_update.extend(r.update);
        to_delete.extend(r.delete);
        unchanged.extend(r.unchanged);
    }
    // Sets of ports no longer wanted.
    for (_, rest) in existing_by_ports {
        to_delete.extend(rest);
    }
    if existing.len() == to_delete.len() && to_create.is_empty() {
        let placeholder = new_slice(service, Vec::new(), family);
        if to_delete.len() == 1 && is_placeholder_like(&to_delete[0], &placeholder) {
            to_delete.clear();
        } else {
            to_create.push(placeholder);
        }
    }
    let heuristic = Heuristic::for_service(service);
    for s in unchanged {
        if heuristic.needs_update(&s) {
            to_update.push((*s).clone());
        }
    }
    for s in to_create.iter_mut().chain(to_update.iter_mut()) {
        heuristic.update(s);
    }
    recycle(service, &mut to_create, &mut to_update, &mut to_delete);
    plan.create.extend(to_create);
    plan.update.extend(to_update);
    plan.delete.extend(to_delete);
}

/// Turns creations into updates of slices about to be deleted (same
/// family, owned by this Service), so a replacement is one write.
fn recycle(
    service: &Service,
    create: &mut Vec<EndpointSlice>,
    update: &mut Vec<EndpointSlice>,
    delete: &mut Vec<Arc<EndpointSlice>>,
) {
    let mut i = 0;
    while i < delete.len() {
        let Some(last) = create.last() else { break };
        let old = &delete[i];
        if old.address_type == last.address_type && owned_by(old, service) {
            if let Some(mut s) = create.pop() {
                s.metadata.name = old.metadata.name.clone();
                s.metadata.generate_name = old.metadata.generate_name.clone();
                s.metadata.resource_version = old.metadata.resource_version.clone();
                s.metadata.uid = old.metadata.uid.clone();
                update.push(s);
            }
            delete.remove(i);
        } else {
            i += 1;
        }
    }
}

struct PortMappingPlan {
    create: Vec<EndpointSlice>,
    update: Vec<EndpointSlice>,
    delete: Vec<Arc<EndpointSlice>>,
    unchanged: Vec<Arc<EndpointSlice>>,
}

/// The slice holding closest to `max` endpoints once `n` more are added.
fn slice_to_fill(candidates: &BTreeMap<String, Arc<EndpointSlice>>, n: usize, max: usize) -> Option<String> {
    candidates
        .iter()
        .filter(|(_, s)| eps(s).len() + n <= max)
        .min_by_key(|(_, s)| max - (eps(s).len() + n))
        .map(|(name, _)| name.clone())
}

fn reconcile_port_mapping(
    input: &Input<'_>,
    family: Family,
    existing: &[Arc<EndpointSlice>],
    mut desired: BTreeMap<EndpointKey, Endpoint>,
    ports: Vec<EndpointPort>,
) -> PortMappingPlan {
    let max = input.max_endpoints_per_slice.max(1);
    let labels = slice_labels(input.service, CONTROLLER_NAME);
    let mut updating: BTreeMap<String, EndpointSlice> = BTreeMap::new();
    let mut unchanged: BTreeMap<String, Arc<EndpointSlice>> = BTreeMap::new();
    let mut delete = Vec::new();
    // 1. Keep wanted endpoints where they are; drop the others.
    for s in existing {
        let mut kept = Vec::with_capacity(eps(s).len());
        let mut changed = false;
        for e in eps(s) {
            if let Some(want) = desired.remove(&endpoint_key(e)) {
                changed |= !same_state(&want, e);
                kept.push(want);
            }
        }
        let labels_changed = s.metadata.labels.as_ref() != Some(&labels);
        if changed || kept.len() != eps(s).len() {
            if kept.is_empty() {
                delete.push(s.clone());
            } else {
                let mut u = (**s).clone();
                u.endpoints = Some(kept);
                u.metadata.labels = Some(labels.clone());
                updating.insert(name_of(s), u);
            }
        } else if labels_changed {
            let mut u = (**s).clone();
            u.metadata.labels = Some(labels.clone());
            updating.insert(name_of(s), u);
        } else {
            unchanged.insert(name_of(s), s.clone());
        }
    }
    // 2. Fill the slices written anyway, fullest first.
    if !desired.is_empty() && !updating.is_empty() {
        let mut order: Vec<(usize, String)> = updating.iter().map(|(n, s)| (eps(s).len(), n.clone())).collect();
        order.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        for (_, name) in order {
            let Some(s) = updating.get_mut(&name) else { continue };
            while eps(s).len() < max {
                let Some((_, e)) = desired.pop_first() else { break };
                eps_mut(s).push(e);
            }
        }
    }
    // 3. The rest: into the unchanged slice they fit best, else new slices.
    let mut create = Vec::new();
    while !desired.is_empty() {
        let mut target = None;
        if desired.len() < max
            && let Some(name) = slice_to_fill(&unchanged, desired.len(), max)
        {
            target = unchanged.remove(&name).map(|s| (*s).clone());
        }
        let mut s = target.unwrap_or_else(|| new_slice(input.service, ports.clone(), family));
        while eps(&s).len() < max {
            let Some((_, e)) = desired.pop_first() else { break };
            eps_mut(&mut s).push(e);
        }
        match s.metadata.name.clone() {
            Some(name) => {
                updating.insert(name, s);
            }
            None => create.push(s),
        }
    }
    PortMappingPlan {
        create,
        update: updating.into_values().collect(),
        delete,
        unchanged: unchanged.into_values().collect(),
    }
}

#[cfg(test)]
mod tests;
