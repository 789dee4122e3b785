//! Service ClusterIP and NodePort allocation (upstream's
//! `pkg/registry/core/service/ipallocator` and `portallocator`, our own
//! code), plugged into the generic store as the Service strategy's
//! [`Allocator`](crate::registry::strategy::Allocator).
//!
//! Every allocation is a storage `create` of a key that names the resource,
//! so two concurrent requests can never get the same one: the loser sees
//! AlreadyExists and tries another value.
//! - A ClusterIP is an `networking.k8s.io/v1` **IPAddress** object named
//!   after the address (`/networking.k8s.io/ipaddresses/10.96.0.10`), with
//!   the Service as `spec.parentRef`, exactly as kube-apiserver 1.36 records
//!   it, so `kubectl get ipaddresses` lists the allocations.
//! - A NodePort is a hidden key per port under [`NODE_PORT_PREFIX`]
//!   (`/ranges/servicenodeports/30080`), whose value names the owning
//!   Service. The prefix is outside every resource's, so neither the watch
//!   cache nor any list serves it.

pub mod ip;
pub mod ports;
mod records;
pub mod service;

use std::net::Ipv4Addr;

pub use service::ServiceAllocator;

/// The Service ClusterIP range when none is configured (kube-apiserver's
/// `--service-cluster-ip-range` default in kubeadm clusters).
pub const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";
/// The NodePort range (`--service-node-port-range` default).
pub const DEFAULT_NODE_PORT_RANGE: (u16, u16) = (30000, 32767);
/// Storage prefix of node port records.
pub const NODE_PORT_PREFIX: &str = "/ranges/servicenodeports/";

/// An IPv4 network in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    pub network: Ipv4Addr,
    pub prefix_len: u8,
}

impl Ipv4Cidr {
    /// Parses `a.b.c.d/n` (the address is masked to the network).
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, len) = s.split_once('/')?;
        let addr: Ipv4Addr = addr.parse().ok()?;
        let prefix_len: u8 = len.parse().ok()?;
        if prefix_len > 32 {
            return None;
        }
        let mask = Self::mask(prefix_len);
        Some(Ipv4Cidr {
            network: Ipv4Addr::from(u32::from(addr) & mask),
            prefix_len,
        })
    }

    fn mask(prefix_len: u8) -> u32 {
        if prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix_len))
        }
    }

    /// How many addresses the network spans.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix_len))
    }

    /// The first address a Service may get (the network address is never
    /// given out).
    pub fn first(&self) -> u32 {
        if self.size() <= 2 {
            u32::from(self.network)
        } else {
            u32::from(self.network) + 1
        }
    }

    /// The last address a Service may get (the broadcast address is never
    /// given out).
    pub fn last(&self) -> u32 {
        let broadcast = (u64::from(u32::from(self.network)) + self.size() - 1) as u32;
        if self.size() <= 2 { broadcast } else { broadcast - 1 }
    }

    /// Whether `ip` may be allocated from this range.
    pub fn allocatable(&self, ip: Ipv4Addr) -> bool {
        (self.first()..=self.last()).contains(&u32::from(ip))
    }

    /// The size of the lower band reserved for static allocation (KEP-3070):
    /// `min(max(16, size/16), 256)`, none for tiny ranges.
    pub fn static_band(&self) -> u32 {
        let size = self.size();
        if size <= 16 {
            return 0;
        }
        (size / 16).clamp(16, 256) as u32
    }
}

impl std::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

/// Where Service ClusterIPs and NodePorts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceRanges {
    pub cluster_ips: Ipv4Cidr,
    /// Inclusive bounds.
    pub node_ports: (u16, u16),
}

impl Default for ServiceRanges {
    fn default() -> Self {
        ServiceRanges {
            cluster_ips: Ipv4Cidr::parse(DEFAULT_SERVICE_CIDR).unwrap_or(Ipv4Cidr {
                network: Ipv4Addr::new(10, 96, 0, 0),
                prefix_len: 12,
            }),
            node_ports: DEFAULT_NODE_PORT_RANGE,
        }
    }
}

impl ServiceRanges {
    /// The ClusterIP of the `default/kubernetes` Service: the first address
    /// of the range.
    pub fn kubernetes_service_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.cluster_ips.first())
    }
}

/// The lower band of a port range kept for static allocation (KEP-3668):
/// `min(max(16, size/32), 128)`, none for tiny ranges.
pub fn port_static_band(size: u32) -> u32 {
    if size <= 16 {
        return 0;
    }
    (size / 32).clamp(16, 128)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn cidr_bounds() {
        let r = ServiceRanges::default();
        assert_eq!(r.cluster_ips.to_string(), "10.96.0.0/12");
        assert_eq!(r.kubernetes_service_ip(), Ipv4Addr::new(10, 96, 0, 1));
        assert_eq!(Ipv4Addr::from(r.cluster_ips.last()), Ipv4Addr::new(10, 111, 255, 254));
        assert!(!r.cluster_ips.allocatable(Ipv4Addr::new(10, 96, 0, 0)));
        assert!(!r.cluster_ips.allocatable(Ipv4Addr::new(10, 112, 0, 1)));
        assert_eq!(r.cluster_ips.static_band(), 256);
        let small = Ipv4Cidr::parse("192.168.1.7/28").unwrap();
        assert_eq!(small.network, Ipv4Addr::new(192, 168, 1, 0));
        assert_eq!(small.static_band(), 0);
        assert_eq!(Ipv4Cidr::parse("10.0.0.0/33"), None);
        assert_eq!(port_static_band(2768), 86);
    }
}
