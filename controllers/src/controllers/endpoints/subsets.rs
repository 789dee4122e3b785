//! The Endpoints object's subsets for a Service and its pods (upstream's
//! `syncService` body, `RepackSubsets` and `truncateEndpoints`), with no
//! IO: one address per pod (ready or not ready), one port per Service
//! port the pod serves, addresses grouped by the set of ports they share,
//! and at most [`MAX_CAPACITY`] addresses, ready ones kept first.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, ObjectReference, Service};

use super::service_pods::{
    Family, endpoints_family, find_port, pod_ips, should_pod_be_in_endpoints, should_set_hostname,
};
use crate::cached_pod::CachedPod;
use crate::controllers::pod_status::is_ready;

/// The most addresses one Endpoints object holds.
pub const MAX_CAPACITY: usize = 1000;
/// The annotation set when addresses were dropped.
pub const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
/// Its value.
pub const TRUNCATED: &str = "truncated";

/// An address and whether it is ready, before repacking.
struct Entry {
    address: EndpointAddress,
    ready: bool,
    /// `None`: a headless Service without ports.
    port: Option<EndpointPort>,
}

/// The pod's address for the Service's family, if it has one.
fn pod_address(service: &Service, pod: &CachedPod) -> Option<EndpointAddress> {
    let family = endpoints_family(service, pod);
    let ip = pod_ips(pod).into_iter().find(|ip| Family::of(ip) == Some(family))?;
    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    let hostname = should_set_hostname(pod, service)
        .then(|| pod.spec.as_ref().and_then(|s| s.hostname.clone()))
        .flatten();
    Some(EndpointAddress {
        ip: ip.to_string(),
        hostname,
        node_name: node.filter(|n| !n.is_empty()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..ObjectReference::default()
        }),
    })
}

/// The subsets of the Service's Endpoints, repacked and sorted (not yet
/// truncated).
pub fn desired_subsets(service: &Service, pods: &[&CachedPod]) -> Vec<EndpointSubset> {
    let spec = service.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let ports = spec.ports.unwrap_or_default();
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let mut entries = Vec::new();
    for pod in pods {
        if !should_pod_be_in_endpoints(pod, publish_not_ready) {
            continue;
        }
        let Some(address) = pod_address(service, pod) else {
            continue;
        };
        let ready = publish_not_ready || is_ready(pod);
        if ports.is_empty() {
            if headless {
                entries.push(Entry {
                    address,
                    ready,
                    port: None,
                });
            }
            continue;
        }
        for sp in &ports {
            let Some(port) = find_port(pod, sp) else { continue };
            entries.push(Entry {
                address: address.clone(),
                ready,
                port: Some(EndpointPort {
                    name: sp.name.clone().filter(|n| !n.is_empty()),
                    port,
                    protocol: sp.protocol.clone(),
                    app_protocol: sp.app_protocol.clone(),
                }),
            });
        }
    }
    repack(entries)
}

type AddressKey = (String, String);
type PortKey = (Option<String>, i32, Option<String>, Option<String>);
/// Per port (`None`: no port), the port and each address's readiness.
type ByPort = BTreeMap<Option<PortKey>, (Option<EndpointPort>, BTreeMap<AddressKey, bool>)>;

fn address_key(a: &EndpointAddress) -> AddressKey {
    (
        a.ip.clone(),
        a.target_ref.as_ref().and_then(|r| r.uid.clone()).unwrap_or_default(),
    )
}

fn port_key(p: &EndpointPort) -> PortKey {
    (p.name.clone(), p.port, p.protocol.clone(), p.app_protocol.clone())
}

/// Groups addresses by the ports they offer: ports whose (address, ready)
/// sets are equal share one subset. An address ready on any entry for a
/// port is ready for it.
fn repack(entries: Vec<Entry>) -> Vec<EndpointSubset> {
    let mut addresses: BTreeMap<AddressKey, EndpointAddress> = BTreeMap::new();
    // port (None: no port) -> address -> ready
    let mut by_port = ByPort::new();
    for e in entries {
        let key = address_key(&e.address);
        addresses.entry(key.clone()).or_insert(e.address);
        let slot = by_port
            .entry(e.port.as_ref().map(port_key))
            .or_insert_with(|| (e.port.clone(), BTreeMap::new()));
        let ready = slot.1.entry(key).or_insert(e.ready);
        *ready |= e.ready;
    }
    let mut groups: BTreeMap<Vec<(AddressKey, bool)>, Vec<EndpointPort>> = BTreeMap::new();
    for (_, (port, set)) in by_port {
        let signature: Vec<(AddressKey, bool)> = set.into_iter().collect();
        let ports = groups.entry(signature).or_default();
        if let Some(p) = port {
            ports.push(p);
        }
    }
    groups
        .into_iter()
        .map(|(signature, ports)| {
            let pick = |ready: bool| -> Option<Vec<EndpointAddress>> {
                let v: Vec<EndpointAddress> = signature
                    .iter()
                    .filter(|(_, r)| *r == ready)
                    .filter_map(|(k, _)| addresses.get(k).cloned())
                    .collect();
                (!v.is_empty()).then_some(v)
            };
            EndpointSubset {
                addresses: pick(true),
                not_ready_addresses: pick(false),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect()
}

/// Cuts `subsets` to [`MAX_CAPACITY`] addresses, each subset keeping its
/// share (rounded up) of what is kept; not-ready addresses go first, and
/// ready ones are cut only when they alone exceed the capacity (then
/// every not-ready address goes). Returns whether anything was cut.
pub fn truncate(subsets: &mut Vec<EndpointSubset>) -> bool {
    let count = |v: &Option<Vec<EndpointAddress>>| v.as_ref().map_or(0, Vec::len);
    let total_ready: usize = subsets.iter().map(|s| count(&s.addresses)).sum();
    let total_not_ready: usize = subsets.iter().map(|s| count(&s.not_ready_addresses)).sum();
    if total_ready + total_not_ready <= MAX_CAPACITY {
        return false;
    }
    let truncate_ready = total_ready > MAX_CAPACITY;
    let (max, num_total) = if truncate_ready {
        (MAX_CAPACITY, total_ready)
    } else {
        (MAX_CAPACITY - total_ready, total_not_ready)
    };
    let mut can_be_added = max;
    for s in subsets.iter_mut() {
        let in_subset = if truncate_ready {
            count(&s.addresses)
        } else {
            count(&s.not_ready_addresses)
        };
        // ceil(in_subset / num_total * max), in integers.
        let share = (in_subset * max).div_ceil(num_total.max(1)).min(can_be_added);
        let list = if truncate_ready {
            s.not_ready_addresses = None;
            &mut s.addresses
        } else {
            &mut s.not_ready_addresses
        };
        if let Some(v) = list.as_mut() {
            v.truncate(share);
            can_be_added -= v.len();
            if v.is_empty() {
                *list = None;
            }
        }
    }
    // A subset left without addresses would not validate.
    subsets.retain(|s| s.addresses.is_some() || s.not_ready_addresses.is_some());
    true
}

/// Subsets as read back from the API, comparable with [`desired_subsets`]:
/// empty lists as absent and target references without resourceVersion.
pub fn normalized(subsets: &[EndpointSubset]) -> Vec<EndpointSubset> {
    let addrs = |v: &Option<Vec<EndpointAddress>>| -> Option<Vec<EndpointAddress>> {
        let v: Vec<EndpointAddress> = v
            .iter()
            .flatten()
            .cloned()
            .map(|mut a| {
                if let Some(r) = a.target_ref.as_mut() {
                    r.resource_version = None;
                }
                a
            })
            .collect();
        (!v.is_empty()).then_some(v)
    };
    subsets
        .iter()
        .map(|s| EndpointSubset {
            addresses: addrs(&s.addresses),
            not_ready_addresses: addrs(&s.not_ready_addresses),
            ports: s.ports.clone().filter(|p| !p.is_empty()),
        })
        .collect()
}

/// The distinct IPs of every address (for tests and logs).
pub fn ips(subsets: &[EndpointSubset]) -> (BTreeSet<String>, BTreeSet<String>) {
    let collect = |f: fn(&EndpointSubset) -> &Option<Vec<EndpointAddress>>| {
        subsets
            .iter()
            .flat_map(|s| f(s).iter().flatten().map(|a| a.ip.clone()))
            .collect()
    };
    (collect(|s| &s.addresses), collect(|s| &s.not_ready_addresses))
}

#[cfg(test)]
mod tests;
