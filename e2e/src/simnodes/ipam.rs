//! Pod IPs per node: each node owns a /24 and hands out .1 to .254.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

/// A /24 block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr24(pub Ipv4Addr);

impl Cidr24 {
    /// The `n`th /24 after `base`.
    pub fn nth(base: Ipv4Addr, n: usize) -> Cidr24 {
        Cidr24(Ipv4Addr::from((u32::from(base) & !0xff).wrapping_add((n as u32) << 8)))
    }

    /// The `i`th address (1..=254).
    pub fn host(&self, i: u8) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.0) | u32::from(i))
    }
}

impl std::fmt::Display for Cidr24 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/24", self.0)
    }
}

/// Allocated host numbers per node, and which pod holds each address.
#[derive(Debug, Default)]
pub struct Ipam {
    used: HashMap<String, BTreeSet<u8>>,
    by_pod: HashMap<String, (String, u8)>,
}

impl Ipam {
    /// The pod's address on `node` (the same on repeated calls); `None`
    /// when the /24 is full.
    pub fn allocate(&mut self, node: &str, cidr: Cidr24, pod_uid: &str) -> Option<Ipv4Addr> {
        if let Some((n, i)) = self.by_pod.get(pod_uid)
            && n == node
        {
            return Some(cidr.host(*i));
        }
        let used = self.used.entry(node.to_string()).or_default();
        let i = (1..=254u8).find(|i| !used.contains(i))?;
        used.insert(i);
        self.by_pod.insert(pod_uid.to_string(), (node.to_string(), i));
        Some(cidr.host(i))
    }

    /// Frees the pod's address.
    pub fn release(&mut self, pod_uid: &str) {
        if let Some((node, i)) = self.by_pod.remove(pod_uid)
            && let Some(used) = self.used.get_mut(&node)
        {
            used.remove(&i);
        }
    }

    /// Records an address a pod already has (after a restart).
    pub fn adopt(&mut self, node: &str, ip: Ipv4Addr, pod_uid: &str) {
        let i = (u32::from(ip) & 0xff) as u8;
        self.used.entry(node.to_string()).or_default().insert(i);
        self.by_pod.insert(pod_uid.to_string(), (node.to_string(), i));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn allocates_reuses_and_releases() {
        let cidr = Cidr24::nth(Ipv4Addr::new(10, 64, 0, 0), 3);
        let mut ipam = Ipam::default();
        assert_eq!(ipam.allocate("n", cidr, "a"), Some(Ipv4Addr::new(10, 64, 3, 1)));
        assert_eq!(ipam.allocate("n", cidr, "b"), Some(Ipv4Addr::new(10, 64, 3, 2)));
        assert_eq!(ipam.allocate("n", cidr, "a"), Some(Ipv4Addr::new(10, 64, 3, 1)));
        ipam.release("a");
        assert_eq!(ipam.allocate("n", cidr, "c"), Some(Ipv4Addr::new(10, 64, 3, 1)));
        for i in 0..252 {
            assert!(ipam.allocate("n", cidr, &format!("p{i}")).is_some());
        }
        assert_eq!(ipam.allocate("n", cidr, "full"), None);
    }
}
