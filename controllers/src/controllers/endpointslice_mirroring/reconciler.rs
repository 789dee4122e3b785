//! The mirroring reconciler, without IO (upstream's
//! `endpointslicemirroring` reconciler): an Endpoints object's subsets
//! become one EndpointSlice per (address type, set of ports), at most
//! `--mirroring-max-endpoints-per-subset` addresses taken from each
//! subset (ready ones first); invalid IPs are skipped. An existing slice
//! is kept and updated in place; extra ones are deleted, and a slice
//! about to be deleted is reused for one about to be created.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::controllers::controller_ref::new_controller_ref;
use crate::controllers::endpoints::trigger_time::LAST_CHANGE_TRIGGER_TIME;
use crate::controllers::endpointslice::desired::{
    EndpointKey, MANAGED_BY_LABEL, PortKey, SERVICE_NAME_LABEL, endpoint_key, eps, port_key, same_state,
};

/// The mirroring controller's `managed-by` value.
pub const CONTROLLER_NAME: &str = "endpointslicemirroring-controller.k8s.io";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What to write, and what was left out.
#[derive(Debug, Default)]
pub struct Plan {
    pub create: Vec<EndpointSlice>,
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<Arc<EndpointSlice>>,
    /// Addresses that are not IPs.
    pub invalid: usize,
    /// Addresses (valid or not) over the per-subset limit or invalid.
    pub skipped: usize,
}

type Key = (&'static str, PortKey);

/// An address as a slice endpoint, with its address type (`None` when
/// the address is not an IP).
fn address_to_endpoint(a: &EndpointAddress, ready: bool) -> Option<(&'static str, Endpoint)> {
    let ip: IpAddr = a.ip.parse().ok()?;
    let address_type = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
    Some((
        address_type,
        Endpoint {
            addresses: vec![ip.to_string()],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                ..EndpointConditions::default()
            }),
            hostname: a.hostname.clone().filter(|h| !h.is_empty()),
            node_name: a.node_name.clone(),
            target_ref: a.target_ref.clone(),
            ..Endpoint::default()
        },
    ))
}

fn slice_ports(ports: &[k8s_openapi::api::core::v1::EndpointPort]) -> Vec<EndpointPort> {
    ports
        .iter()
        .map(|p| EndpointPort {
            name: Some(p.name.clone().unwrap_or_default()),
            port: Some(p.port),
            protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
            app_protocol: p.app_protocol.clone(),
        })
        .collect()
}

/// The labels and annotations mirrored slices carry.
fn mirrored_meta(endpoints: &Endpoints) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut labels = endpoints.metadata.labels.clone().unwrap_or_default();
    labels.insert(
        SERVICE_NAME_LABEL.into(),
        endpoints.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
    let mut annotations = endpoints.metadata.annotations.clone().unwrap_or_default();
    annotations.remove(LAST_CHANGE_TRIGGER_TIME);
    annotations.remove(LAST_APPLIED);
    (labels, annotations)
}

fn new_slice(endpoints: &Endpoints, ports: Vec<EndpointPort>, address_type: &str) -> EndpointSlice {
    let (labels, annotations) = mirrored_meta(endpoints);
    let name = endpoints.metadata.name.clone().unwrap_or_default();
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: endpoints.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![new_controller_ref(&endpoints.metadata, "v1", "Endpoints")]),
            ..ObjectMeta::default()
        },
        address_type: address_type.into(),
        endpoints: Some(Vec::new()),
        ports: Some(ports),
    }
}

/// The plan mirroring `endpoints` into `existing` (its mirrored slices).
pub fn reconcile(endpoints: &Endpoints, existing: &[Arc<EndpointSlice>], max_per_subset: usize) -> Plan {
    let mut plan = Plan::default();
    let mut desired: BTreeMap<Key, (Vec<EndpointPort>, BTreeMap<EndpointKey, Endpoint>)> = BTreeMap::new();
    for subset in endpoints.subsets.iter().flatten() {
        let ports = slice_ports(subset.ports.as_deref().unwrap_or_default());
        let pk = port_key(&ports);
        let total =
            subset.addresses.as_ref().map_or(0, Vec::len) + subset.not_ready_addresses.as_ref().map_or(0, Vec::len);
        let mut added = 0;
        let addresses = subset.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = subset.not_ready_addresses.iter().flatten().map(|a| (a, false));
        for (a, ready) in addresses.chain(not_ready) {
            if added >= max_per_subset {
                break;
            }
            let Some((address_type, e)) = address_to_endpoint(a, ready) else {
                plan.invalid += 1;
                continue;
            };
            added += 1;
            desired
                .entry((address_type, pk.clone()))
                .or_insert_with(|| (ports.clone(), BTreeMap::new()))
                .1
                .entry(endpoint_key(&e))
                .or_insert(e);
        }
        plan.skipped += total - added;
    }
    let mut existing_by_key: BTreeMap<(String, PortKey), Vec<Arc<EndpointSlice>>> = BTreeMap::new();
    for s in existing {
        let k = (s.address_type.clone(), port_key(s.ports.as_deref().unwrap_or_default()));
        existing_by_key.entry(k).or_default().push(s.clone());
    }
    let (labels, annotations) = mirrored_meta(endpoints);
    for ((address_type, pk), (ports, wanted)) in desired {
        let mut slices = existing_by_key
            .remove(&(address_type.to_string(), pk))
            .unwrap_or_default()
            .into_iter();
        let first = slices.next();
        plan.delete.extend(slices);
        let endpoints_list: Vec<Endpoint> = wanted.into_values().take(max_per_subset).collect();
        match first {
            Some(s) => {
                let unchanged = eps(&s).len() == endpoints_list.len()
                    && same_endpoints(eps(&s), &endpoints_list)
                    && s.metadata.labels.as_ref() == Some(&labels)
                    && s.metadata.annotations.clone().unwrap_or_default() == annotations;
                if !unchanged {
                    let mut u = new_slice(endpoints, ports, address_type);
                    u.metadata.name = s.metadata.name.clone();
                    u.metadata.generate_name = s.metadata.generate_name.clone();
                    u.metadata.resource_version = s.metadata.resource_version.clone();
                    u.metadata.uid = s.metadata.uid.clone();
                    u.endpoints = Some(endpoints_list);
                    plan.update.push(u);
                }
            }
            None => {
                let mut c = new_slice(endpoints, ports, address_type);
                c.endpoints = Some(endpoints_list);
                plan.create.push(c);
            }
        }
    }
    for (_, rest) in existing_by_key {
        plan.delete.extend(rest);
    }
    recycle(&mut plan);
    plan
}

fn same_endpoints(have: &[Endpoint], want: &[Endpoint]) -> bool {
    let have: BTreeMap<EndpointKey, &Endpoint> = have.iter().map(|e| (endpoint_key(e), e)).collect();
    let keys: BTreeSet<EndpointKey> = want.iter().map(endpoint_key).collect();
    have.len() == keys.len()
        && want
            .iter()
            .all(|w| have.get(&endpoint_key(w)).is_some_and(|h| same_state(h, w)))
}

fn recycle(plan: &mut Plan) {
    let mut i = 0;
    while i < plan.delete.len() {
        let Some(last) = plan.create.last() else { break };
        let old = &plan.delete[i];
        if old.address_type == last.address_type {
            if let Some(mut s) = plan.create.pop() {
                s.metadata.name = old.metadata.name.clone();
                s.metadata.resource_version = old.metadata.resource_version.clone();
                s.metadata.uid = old.metadata.uid.clone();
                plan.update.push(s);
            }
            plan.delete.remove(i);
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn endpoints(subsets: serde_json::Value) -> Endpoints {
        serde_json::from_value(json!({"metadata": {"name": "ext", "namespace": "ns", "uid": "ep-uid",
            "labels": {"team": "a"}, "annotations": {"note": "x", "endpoints.kubernetes.io/last-change-trigger-time": "t"}},
            "subsets": subsets}))
        .unwrap()
    }

    fn stored(p: &Plan) -> Vec<Arc<EndpointSlice>> {
        p.create
            .iter()
            .chain(&p.update)
            .enumerate()
            .map(|(i, s)| {
                let mut s = s.clone();
                s.metadata.name.get_or_insert_with(|| format!("ext-{i}"));
                Arc::new(s)
            })
            .collect()
    }

    #[test]
    fn subsets_are_mirrored_by_address_type_and_ports() {
        let ep = endpoints(json!([
            {"addresses": [{"ip": "10.0.0.1", "nodeName": "n1", "hostname": "h1"}, {"ip": "fd00::1"}],
             "notReadyAddresses": [{"ip": "10.0.0.2"}, {"ip": "not-an-ip"}],
             "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
            {"addresses": [{"ip": "10.0.0.3"}], "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]},
        ]));
        let p = reconcile(&ep, &[], 1000);
        assert_eq!(
            (p.create.len(), p.update.len(), p.delete.len(), p.invalid),
            (3, 0, 0, 1)
        );
        let v4_http = p
            .create
            .iter()
            .find(|s| s.address_type == "IPv4" && s.ports.as_ref().unwrap()[0].port == Some(80))
            .unwrap();
        let v = serde_json::to_value(v4_http).unwrap();
        assert_eq!(
            v["endpoints"][0],
            json!({"addresses": ["10.0.0.1"], "conditions": {"ready": true}, "hostname": "h1", "nodeName": "n1"})
        );
        assert_eq!(v["endpoints"][1]["conditions"], json!({"ready": false}));
        assert_eq!(
            v["metadata"]["labels"],
            json!({"team": "a", "kubernetes.io/service-name": "ext",
            "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io"})
        );
        assert_eq!(v["metadata"]["annotations"], json!({"note": "x"}));
        assert_eq!(v["metadata"]["ownerReferences"][0]["kind"], "Endpoints");
        assert_eq!(v["metadata"]["generateName"], "ext-");

        // Mirrored again: nothing to do.
        let slices = stored(&p);
        let again = reconcile(&ep, &slices, 1000);
        assert_eq!((again.create.len(), again.update.len(), again.delete.len()), (0, 0, 0));

        // One address becomes ready and the UDP subset goes: one update,
        // one deletion.
        let ep2 = endpoints(json!([
            {"addresses": [{"ip": "10.0.0.1", "nodeName": "n1", "hostname": "h1"}, {"ip": "fd00::1"}, {"ip": "10.0.0.2"}],
             "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
        ]));
        let p = reconcile(&ep2, &slices, 1000);
        assert_eq!((p.create.len(), p.update.len(), p.delete.len()), (0, 1, 1));
        assert_eq!(p.delete[0].ports.as_ref().unwrap()[0].port, Some(53));
    }

    #[test]
    fn at_most_max_addresses_per_subset() {
        let addresses: Vec<_> = (0..10).map(|i| json!({"ip": format!("10.0.0.{}", i + 1)})).collect();
        let ep = endpoints(
            json!([{"addresses": addresses, "notReadyAddresses": [{"ip": "10.0.1.1"}], "ports": [{"port": 80}]}]),
        );
        let p = reconcile(&ep, &[], 4);
        assert_eq!(eps(&p.create[0]).len(), 4);
        assert_eq!(p.skipped, 7);
        assert!(
            eps(&p.create[0])
                .iter()
                .all(|e| e.conditions.as_ref().unwrap().ready == Some(true))
        );
    }
}
