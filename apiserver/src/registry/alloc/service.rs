//! The Service [`Allocator`]: ClusterIPs and NodePorts (including the
//! health-check node port) reserved before a Service is written and
//! released when it no longer holds them (upstream's `alloc.go`
//! transactions).

use std::collections::{BTreeSet, HashSet};
use std::net::Ipv4Addr;

use futures::future::BoxFuture;
use rkube_storage::Store;
use serde_json::Value;

use super::ServiceRanges;
use super::ip::{IpAllocator, IpError, ServiceRef};
use super::ports::{PortAllocator, PortError};
use crate::registry::object::{self, Object};
use crate::registry::strategy::{Allocator, Reservation};
use crate::status::ApiError;
use crate::validation::{ErrorType, FieldError, FieldErrors};

/// `spec.type` (ClusterIP when unset).
pub fn service_type(svc: &Object) -> &str {
    spec_str(svc, "type").filter(|t| !t.is_empty()).unwrap_or("ClusterIP")
}

fn spec(svc: &Object) -> Option<&serde_json::Map<String, Value>> {
    svc.get("spec").and_then(Value::as_object)
}

fn spec_str<'a>(svc: &'a Object, field: &str) -> Option<&'a str> {
    spec(svc).and_then(|s| s.get(field)).and_then(Value::as_str)
}

/// Whether the type takes a ClusterIP (all but ExternalName).
pub fn needs_cluster_ip(svc: &Object) -> bool {
    service_type(svc) != "ExternalName"
}

/// Whether the type takes node ports.
pub fn needs_node_port(svc: &Object) -> bool {
    matches!(service_type(svc), "NodePort" | "LoadBalancer")
}

/// Whether the Service needs a health-check node port (upstream's
/// `NeedsHealthCheck`).
pub fn needs_health_check(svc: &Object) -> bool {
    service_type(svc) == "LoadBalancer" && spec_str(svc, "externalTrafficPolicy") == Some("Local")
}

/// Whether new node ports are allocated (`allocateLoadBalancerNodePorts`).
fn should_allocate_node_ports(svc: &Object) -> bool {
    match service_type(svc) {
        "NodePort" => true,
        "LoadBalancer" => spec(svc)
            .and_then(|s| s.get("allocateLoadBalancerNodePorts"))
            .and_then(Value::as_bool)
            .unwrap_or(true),
        _ => false,
    }
}

/// The ClusterIP a stored Service holds, if any.
fn held_cluster_ip(svc: &Object) -> Option<Ipv4Addr> {
    if !needs_cluster_ip(svc) {
        return None;
    }
    spec_str(svc, "clusterIP")?.parse().ok()
}

fn port_number(v: &Value, field: &str) -> i64 {
    v.get(field).and_then(Value::as_i64).unwrap_or(0)
}

/// Every node port (and the health-check port) a Service holds.
fn held_node_ports(svc: &Object) -> BTreeSet<u16> {
    let mut held = BTreeSet::new();
    if let Some(ports) = spec(svc).and_then(|s| s.get("ports")).and_then(Value::as_array) {
        for p in ports {
            if let Ok(n) = u16::try_from(port_number(p, "nodePort"))
                && n != 0
            {
                held.insert(n);
            }
        }
    }
    if let Some(hc) = spec(svc)
        .and_then(|s| s.get("healthCheckNodePort"))
        .and_then(Value::as_i64)
        && let Ok(n) = u16::try_from(hc)
        && n != 0
    {
        held.insert(n);
    }
    held
}

/// A Go `[]string{...}` as `%#v` prints it: upstream's rendering of the
/// bad value of `spec.clusterIPs`.
pub fn go_string_slice(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// An Invalid error whose bad value is shown verbatim (Go `%#v` output).
pub fn invalid_verbatim(field: impl Into<String>, shown: &str, detail: &str) -> FieldError {
    FieldError::new(ErrorType::Invalid, field, None, format!("{shown}: {detail}"))
}

fn cluster_ips(svc: &Object) -> Vec<String> {
    spec(svc)
        .and_then(|s| s.get("clusterIPs"))
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|v| v.as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

fn set_spec(svc: &mut Object, field: &str, value: Value) {
    if let Some(Value::Object(s)) = svc.get_mut("spec") {
        s.insert(field.to_string(), value);
    }
}

/// Allocates Services' ClusterIPs and NodePorts from [`ServiceRanges`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceAllocator {
    pub ranges: ServiceRanges,
}

impl ServiceAllocator {
    fn ips(&self) -> IpAllocator {
        IpAllocator {
            range: self.ranges.cluster_ips,
        }
    }

    fn ports(&self) -> PortAllocator {
        PortAllocator {
            range: self.ranges.node_ports,
        }
    }

    async fn allocate_into(
        &self,
        storage: &dyn Store,
        svc: &mut Object,
        old: Option<&Object>,
        dry_run: bool,
        res: &mut Reservation,
    ) -> Result<(), ApiError> {
        let namespace = object::namespace(svc).to_string();
        let name = object::name(svc).to_string();
        let owner = ServiceRef {
            namespace: &namespace,
            name: &name,
        };
        let invalid = |errs: FieldErrors| ApiError::invalid("", "Service", &name, &errs);

        // ClusterIP.
        let old_ip = old.and_then(held_cluster_ip);
        let requested = spec_str(svc, "clusterIP").unwrap_or("").to_string();
        if needs_cluster_ip(svc) && requested != "None" {
            if requested.is_empty() {
                match self.ips().allocate_next(storage, owner, dry_run).await {
                    Ok((ip, key)) => {
                        res.keys.extend(key);
                        set_spec(svc, "clusterIP", Value::String(ip.to_string()));
                        set_spec(svc, "clusterIPs", Value::from(vec![ip.to_string()]));
                    }
                    Err(e) => return Err(ApiError::internal(format!("failed to allocate a serviceIP: {e}"))),
                }
            } else {
                let shown = go_string_slice(&cluster_ips(svc));
                let fail = |e: &dyn std::fmt::Display| {
                    invalid(FieldErrors(vec![invalid_verbatim(
                        "spec.clusterIPs",
                        &shown,
                        &format!("failed to allocate IP {requested}: {e}"),
                    )]))
                };
                let ip: Ipv4Addr = match requested.parse() {
                    Ok(ip) => ip,
                    Err(_) => {
                        return Err(fail(&IpError::NotInRange {
                            range: self.ranges.cluster_ips.to_string(),
                        }));
                    }
                };
                if old_ip != Some(ip) {
                    match self.ips().allocate(storage, ip, owner, dry_run).await {
                        Ok(key) => res.keys.extend(key),
                        Err(e @ (IpError::NotInRange { .. } | IpError::Allocated)) => return Err(fail(&e)),
                        Err(e) => return Err(ApiError::internal(e)),
                    }
                }
            }
        }

        // Node ports.
        let held: BTreeSet<u16> = old.map(held_node_ports).unwrap_or_default();
        let mut taken: HashSet<u16> = HashSet::new();
        if needs_node_port(svc) {
            let allocate_new = should_allocate_node_ports(svc);
            let ports_val: Vec<Value> = spec(svc)
                .and_then(|s| s.get("ports"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            // Service port number -> node port given in this request.
            let mut by_port: std::collections::HashMap<i64, i64> = std::collections::HashMap::new();
            let mut result = ports_val.clone();
            for (i, p) in ports_val.iter().enumerate() {
                let node_port = port_number(p, "nodePort");
                if node_port == 0 && !allocate_new {
                    continue;
                }
                let svc_port = port_number(p, "port");
                let chosen = match by_port.get(&svc_port) {
                    Some(&np) if node_port == 0 || node_port == np => np,
                    _ => {
                        // A node port asked for on any entry of the same
                        // service port (e.g. TCP and UDP on 53) is shared.
                        let wanted = if node_port != 0 {
                            node_port
                        } else {
                            ports_val
                                .iter()
                                .filter(|q| port_number(q, "port") == svc_port)
                                .map(|q| port_number(q, "nodePort"))
                                .find(|&n| n != 0)
                                .unwrap_or(0)
                        };
                        if wanted != 0 {
                            let already = u16::try_from(wanted).is_ok_and(|w| held.contains(&w) || taken.contains(&w));
                            if !already {
                                match self.ports().allocate(storage, wanted, owner, dry_run).await {
                                    Ok(key) => res.keys.extend(key),
                                    Err(e @ (PortError::NotInRange(_) | PortError::Allocated)) => {
                                        return Err(invalid(FieldErrors(vec![FieldError::invalid(
                                            format!("spec.ports[{i}].nodePort"),
                                            wanted,
                                            e.to_string(),
                                        )])));
                                    }
                                    Err(e) => return Err(ApiError::internal(e)),
                                }
                            }
                            wanted
                        } else {
                            let avoid: HashSet<u16> = held.iter().copied().chain(taken.iter().copied()).collect();
                            match self.ports().allocate_next(storage, owner, &avoid, dry_run).await {
                                Ok((port, key)) => {
                                    res.keys.extend(key);
                                    i64::from(port)
                                }
                                Err(e) => {
                                    return Err(ApiError::internal(format!("failed to allocate a nodePort: {e}")));
                                }
                            }
                        }
                    }
                };
                by_port.entry(svc_port).or_insert(chosen);
                if let Ok(c) = u16::try_from(chosen) {
                    taken.insert(c);
                }
                if let Some(Value::Object(entry)) = result.get_mut(i) {
                    entry.insert("nodePort".into(), Value::from(chosen));
                }
            }
            set_spec(svc, "ports", Value::Array(result));
        }

        // Health-check node port.
        if needs_health_check(svc) {
            let hc = spec(svc)
                .and_then(|s| s.get("healthCheckNodePort"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if hc != 0 {
                let already = u16::try_from(hc).is_ok_and(|h| held.contains(&h));
                if !already {
                    match self.ports().allocate(storage, hc, owner, dry_run).await {
                        Ok(key) => res.keys.extend(key),
                        Err(e) => {
                            return Err(ApiError::internal(format!(
                                "failed to allocate requested HealthCheck NodePort {hc}: {e}"
                            )));
                        }
                    }
                }
            } else {
                let avoid: HashSet<u16> = held.iter().copied().chain(taken.iter().copied()).collect();
                match self.ports().allocate_next(storage, owner, &avoid, dry_run).await {
                    Ok((port, key)) => {
                        res.keys.extend(key);
                        set_spec(svc, "healthCheckNodePort", Value::from(port));
                    }
                    Err(e) => {
                        return Err(ApiError::internal(format!(
                            "failed to allocate a HealthCheck NodePort 0: {e}"
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    async fn revert_keys(&self, storage: &dyn Store, reservation: Reservation) {
        for key in reservation.keys {
            if let Err(e) = storage.delete(&key, None).await {
                tracing::info!(key, error = %e, "reverting a service allocation");
            }
        }
    }

    async fn release_held(&self, storage: &dyn Store, old: &Object, new: Option<&Object>) {
        let namespace = object::namespace(old);
        let name = object::name(old);
        let owner = ServiceRef { namespace, name };
        if let Some(ip) = held_cluster_ip(old)
            && new.and_then(held_cluster_ip) != Some(ip)
        {
            self.ips().release(storage, ip, owner).await;
        }
        let keep = new.map(held_node_ports).unwrap_or_default();
        for port in held_node_ports(old).difference(&keep) {
            self.ports().release(storage, *port, owner).await;
        }
    }
}

impl Allocator for ServiceAllocator {
    fn allocate<'a>(
        &'a self,
        storage: &'a dyn Store,
        new: &'a mut Object,
        old: Option<&'a Object>,
        dry_run: bool,
    ) -> BoxFuture<'a, Result<Reservation, ApiError>> {
        Box::pin(async move {
            let mut res = Reservation::default();
            match self.allocate_into(storage, new, old, dry_run, &mut res).await {
                Ok(()) => Ok(res),
                Err(e) => {
                    self.revert_keys(storage, res).await;
                    Err(e)
                }
            }
        })
    }

    fn revert<'a>(&'a self, storage: &'a dyn Store, reservation: Reservation) -> BoxFuture<'a, ()> {
        Box::pin(self.revert_keys(storage, reservation))
    }

    fn release<'a>(&'a self, storage: &'a dyn Store, old: &'a Object, new: Option<&'a Object>) -> BoxFuture<'a, ()> {
        Box::pin(self.release_held(storage, old, new))
    }
}
