//! Which pods back a Service, on which ports and at which address: the
//! rules the Endpoints and EndpointSlice controllers share (upstream's
//! `endpointslice/util`: `ShouldPodBeInEndpoints`, `ShouldSetHostname`,
//! `podutil.FindPort`, `GetPodServiceMemberships`, `podEndpointsChanged`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::cached_pod::CachedPod;
use crate::controllers::pod_status::{is_ready, phase};

/// An address family of a Service or an EndpointSlice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    IPv4,
    IPv6,
}

impl Family {
    /// The family of `ip`, if it is an IP at all.
    pub fn of(ip: &str) -> Option<Family> {
        match ip.parse::<IpAddr>().ok()? {
            IpAddr::V4(_) => Some(Family::IPv4),
            IpAddr::V6(_) => Some(Family::IPv6),
        }
    }

    /// The EndpointSlice `addressType` (`IPv4`, `IPv6`).
    pub fn address_type(self) -> &'static str {
        match self {
            Family::IPv4 => "IPv4",
            Family::IPv6 => "IPv6",
        }
    }

    fn from_ip_family(f: &str) -> Option<Family> {
        match f {
            "IPv4" => Some(Family::IPv4),
            "IPv6" => Some(Family::IPv6),
            _ => None,
        }
    }
}

/// Whether the Service's selector matches `labels`. A Service without a
/// selector selects nothing; an empty selector selects every pod, as
/// upstream's `labels.Set(selector).AsSelector()`.
pub fn selects(service: &Service, labels: Option<&BTreeMap<String, String>>) -> bool {
    let Some(selector) = service.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    selector.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// `Succeeded` or `Failed`.
pub fn is_terminal(pod: &CachedPod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// The pod's IPs (`status.podIPs`, else `status.podIP`).
pub fn pod_ips(pod: &CachedPod) -> Vec<&str> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    let ips: Vec<&str> = status
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.as_str())
        .filter(|ip| !ip.is_empty())
        .collect();
    if !ips.is_empty() {
        return ips;
    }
    status
        .pod_ip
        .as_deref()
        .filter(|ip| !ip.is_empty())
        .into_iter()
        .collect()
}

/// Whether the pod gets an address at all: not terminal, has an IP, and
/// is not being deleted unless `include_terminating`.
pub fn should_pod_be_in_endpoints(pod: &CachedPod, include_terminating: bool) -> bool {
    if is_terminal(pod) || pod_ips(pod).is_empty() {
        return false;
    }
    include_terminating || pod.metadata.deletion_timestamp.is_none()
}

/// Whether the address carries the pod's hostname: the pod names one and
/// its subdomain is this Service (in the pod's namespace).
pub fn should_set_hostname(pod: &CachedPod, service: &Service) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    spec.hostname.as_deref().is_some_and(|h| !h.is_empty())
        && spec.subdomain.as_deref() == service.metadata.name.as_deref()
        && pod.metadata.namespace == service.metadata.namespace
}

fn protocol(p: Option<&str>) -> &str {
    p.filter(|p| !p.is_empty()).unwrap_or("TCP")
}

/// The pod's port for `service_port`: a numbered targetPort as is, a named
/// one looked up in the containers (and restartable init containers) with
/// the same protocol; `None` when the name is not found.
pub fn find_port(pod: &CachedPod, service_port: &ServicePort) -> Option<i32> {
    match &service_port.target_port {
        None => Some(service_port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            let spec = pod.spec.as_ref()?;
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            let want = protocol(service_port.protocol.as_deref());
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| p.name.as_deref() == Some(name.as_str()) && protocol(p.protocol.as_deref()) == want)
                .map(|p| p.container_port)
        }
    }
}

/// Whether the Service has a cluster IP (not headless).
pub fn is_service_ip_set(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .is_some_and(|ip| !ip.is_empty() && ip != "None")
}

/// The one family the Endpoints object of `service` carries for `pod`:
/// the Service's first ipFamily, else its cluster IP's, else (headless)
/// the pod IP's.
pub fn endpoints_family(service: &Service, pod: &CachedPod) -> Family {
    let spec = service.spec.as_ref();
    if let Some(f) = spec
        .and_then(|s| s.ip_families.as_ref())
        .and_then(|f| f.first())
        .and_then(|f| Family::from_ip_family(f))
    {
        return f;
    }
    if is_service_ip_set(service) {
        let ip = spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or("");
        return Family::of(ip).unwrap_or(Family::IPv4);
    }
    let pod_ip = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()).unwrap_or("");
    Family::of(pod_ip).unwrap_or(Family::IPv4)
}

/// The families the Service's EndpointSlices carry: its ipFamilies, else
/// its cluster IP's, else (headless without families) both.
pub fn slice_families(service: &Service) -> Vec<Family> {
    let spec = service.spec.as_ref();
    let mut out: Vec<Family> = spec
        .and_then(|s| s.ip_families.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|f| Family::from_ip_family(f))
        .collect();
    out.sort();
    out.dedup();
    if !out.is_empty() {
        return out;
    }
    if is_service_ip_set(service) {
        let ip = spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or("");
        return vec![Family::of(ip).unwrap_or(Family::IPv4)];
    }
    vec![Family::IPv4, Family::IPv6]
}

/// What about a pod update matters to the Services selecting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodChange {
    /// The address, readiness or deletion state changed.
    pub endpoints: bool,
    /// Labels, hostname or subdomain changed: membership may have moved.
    pub membership: bool,
}

/// Upstream's `podEndpointsChanged`, plus a move to a terminal phase.
pub fn pod_change(old: &CachedPod, new: &CachedPod) -> PodChange {
    let spec = |p: &CachedPod| {
        p.spec
            .as_ref()
            .map(|s| (s.hostname.clone(), s.subdomain.clone(), s.node_name.clone()))
    };
    let membership = old.metadata.labels != new.metadata.labels || spec(old) != spec(new);
    let endpoints = old.metadata.deletion_timestamp != new.metadata.deletion_timestamp
        || is_ready(old) != is_ready(new)
        || is_terminal(old) != is_terminal(new)
        || pod_ips(old) != pod_ips(new);
    PodChange { endpoints, membership }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> CachedPod {
        serde_json::from_value(v).unwrap()
    }

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn named_and_numbered_target_ports() {
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}, {"name": "dns", "containerPort": 53, "protocol": "UDP"}]}],
            "initContainers": [{"name": "side", "restartPolicy": "Always", "ports": [{"name": "proxy", "containerPort": 15001}]},
                               {"name": "init", "ports": [{"name": "once", "containerPort": 9}]}]}}));
        let port = |v: serde_json::Value| -> ServicePort { serde_json::from_value(v).unwrap() };
        assert_eq!(
            find_port(&p, &port(json!({"port": 80, "targetPort": "http"}))),
            Some(8080)
        );
        assert_eq!(
            find_port(&p, &port(json!({"port": 80, "targetPort": 9376}))),
            Some(9376)
        );
        assert_eq!(find_port(&p, &port(json!({"port": 80}))), Some(80));
        assert_eq!(
            find_port(&p, &port(json!({"port": 53, "targetPort": "dns", "protocol": "UDP"}))),
            Some(53)
        );
        assert_eq!(
            find_port(&p, &port(json!({"port": 53, "targetPort": "dns"}))),
            None,
            "protocol must match"
        );
        assert_eq!(
            find_port(&p, &port(json!({"port": 1, "targetPort": "proxy"}))),
            Some(15001)
        );
        assert_eq!(find_port(&p, &port(json!({"port": 1, "targetPort": "once"}))), None);
        assert_eq!(find_port(&p, &port(json!({"port": 1, "targetPort": "missing"}))), None);
    }

    #[test]
    fn which_pods_get_an_address() {
        let running = pod(json!({"metadata": {"name": "p"}, "status": {"phase": "Running", "podIP": "10.0.0.1"}}));
        assert!(should_pod_be_in_endpoints(&running, false));
        let no_ip = pod(json!({"metadata": {"name": "p"}, "status": {"phase": "Pending"}}));
        assert!(!should_pod_be_in_endpoints(&no_ip, true));
        let done = pod(json!({"metadata": {"name": "p"}, "status": {"phase": "Succeeded", "podIP": "10.0.0.1"}}));
        assert!(!should_pod_be_in_endpoints(&done, true));
        let deleting = pod(
            json!({"metadata": {"name": "p", "deletionTimestamp": "2024-01-01T00:00:00Z"}, "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}]}}),
        );
        assert!(!should_pod_be_in_endpoints(&deleting, false));
        assert!(should_pod_be_in_endpoints(&deleting, true));
    }

    #[test]
    fn hostname_only_for_the_pods_subdomain() {
        let s = svc(json!({"metadata": {"name": "db", "namespace": "ns"}}));
        let p = |sub: &str, ns: &str| {
            pod(
                json!({"metadata": {"name": "p", "namespace": ns}, "spec": {"hostname": "db-0", "subdomain": sub, "containers": []}}),
            )
        };
        assert!(should_set_hostname(&p("db", "ns"), &s));
        assert!(!should_set_hostname(&p("other", "ns"), &s));
        assert!(!should_set_hostname(&p("db", "elsewhere"), &s));
    }

    #[test]
    fn families() {
        let s = |spec: serde_json::Value| svc(json!({"metadata": {"name": "s"}, "spec": spec}));
        assert_eq!(
            slice_families(&s(json!({"clusterIP": "10.96.0.5"}))),
            vec![Family::IPv4]
        );
        assert_eq!(slice_families(&s(json!({"clusterIP": "fd00::5"}))), vec![Family::IPv6]);
        assert_eq!(
            slice_families(&s(json!({"clusterIP": "None", "ipFamilies": ["IPv6", "IPv4"]}))),
            vec![Family::IPv4, Family::IPv6]
        );
        assert_eq!(
            slice_families(&s(json!({"clusterIP": "None"}))),
            vec![Family::IPv4, Family::IPv6]
        );
        let p6 = pod(json!({"metadata": {"name": "p"}, "status": {"podIP": "fd00::1"}}));
        assert_eq!(endpoints_family(&s(json!({"clusterIP": "None"})), &p6), Family::IPv6);
        assert_eq!(
            endpoints_family(&s(json!({"clusterIP": "None", "ipFamilies": ["IPv4"]})), &p6),
            Family::IPv4
        );
    }

    #[test]
    fn selectors_and_changes() {
        let labels: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        let web = svc(json!({"metadata": {"name": "s"}, "spec": {"selector": {"app": "web"}}}));
        assert!(selects(&web, Some(&labels)));
        assert!(!selects(&web, None));
        assert!(!selects(
            &svc(json!({"metadata": {"name": "s"}, "spec": {"selector": {"app": "db"}}})),
            Some(&labels)
        ));
        assert!(!selects(
            &svc(json!({"metadata": {"name": "s"}, "spec": {}})),
            Some(&labels)
        ));
        assert!(selects(
            &svc(json!({"metadata": {"name": "s"}, "spec": {"selector": {}}})),
            None
        ));
        let a = pod(json!({"metadata": {"name": "p", "labels": {"app": "web"}}, "status": {"podIP": "10.0.0.1"}}));
        let mut b = a.clone();
        b.metadata.annotations = Some([("x".to_string(), "y".to_string())].into());
        assert_eq!(
            pod_change(&a, &b),
            PodChange {
                endpoints: false,
                membership: false
            }
        );
        let ready = pod(
            json!({"metadata": {"name": "p", "labels": {"app": "web"}}, "status": {"podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        assert_eq!(
            pod_change(&a, &ready),
            PodChange {
                endpoints: true,
                membership: false
            }
        );
        let relabelled =
            pod(json!({"metadata": {"name": "p", "labels": {"app": "db"}}, "status": {"podIP": "10.0.0.1"}}));
        assert_eq!(
            pod_change(&a, &relabelled),
            PodChange {
                endpoints: false,
                membership: true
            }
        );
    }
}
