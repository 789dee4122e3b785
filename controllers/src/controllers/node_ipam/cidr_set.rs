//! CIDRs and the set of node CIDRs carved out of one cluster CIDR
//! (upstream's `cidrset`): allocation scans from the block after the last
//! one handed out, so a released block is reused only after the rest.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4 or IPv6 network, its address masked to the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address as a 128-bit number (IPv4 in the low 32 bits).
    base: u128,
    prefix: u8,
    v6: bool,
}

/// Why a CIDR or a CIDR set could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("invalid CIDR address: {0}")]
    Invalid(String),
    #[error("node mask size {mask} is not larger than the cluster CIDR's prefix /{prefix}")]
    MaskTooSmall { mask: u8, prefix: u8 },
    #[error("node mask size {mask} is larger than the address length {bits}")]
    MaskTooLarge { mask: u8, bits: u8 },
    #[error("cluster CIDR /{prefix} with node mask /{mask} has more than 2^16 node CIDRs")]
    TooMany { prefix: u8, mask: u8 },
}

impl Cidr {
    fn bits(self) -> u8 {
        if self.v6 { 128 } else { 32 }
    }

    pub fn is_ipv6(self) -> bool {
        self.v6
    }

    pub fn prefix(self) -> u8 {
        self.prefix
    }

    fn mask(prefix: u8, bits: u8) -> u128 {
        let host = u32::from(bits - prefix);
        let all = if bits == 128 { u128::MAX } else { (1u128 << bits) - 1 };
        if host >= 128 { 0 } else { all & !((1u128 << host) - 1) }
    }

    /// Parses `a.b.c.d/n` or `x::/n`; host bits must be zero.
    pub fn parse(s: &str) -> Result<Cidr, CidrError> {
        let bad = || CidrError::Invalid(s.to_string());
        let (addr, prefix) = s.trim().split_once('/').ok_or_else(bad)?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let (base, v6) = match addr.parse::<IpAddr>().map_err(|_| bad())? {
            IpAddr::V4(a) => (u128::from(u32::from(a)), false),
            IpAddr::V6(a) => (u128::from(a), true),
        };
        let bits = if v6 { 128 } else { 32 };
        if prefix > bits {
            return Err(bad());
        }
        Ok(Cidr {
            base: base & Cidr::mask(prefix, bits),
            prefix,
            v6,
        })
    }

    /// Whether `other` lies inside `self` (same family).
    pub fn contains(self, other: Cidr) -> bool {
        self.v6 == other.v6
            && other.prefix >= self.prefix
            && other.base & Cidr::mask(self.prefix, self.bits()) == self.base
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.v6 {
            write!(f, "{}/{}", Ipv6Addr::from(self.base), self.prefix)
        } else {
            let v4 = u32::try_from(self.base).unwrap_or(0);
            write!(f, "{}/{}", Ipv4Addr::from(v4), self.prefix)
        }
    }
}

/// The node CIDRs of one cluster CIDR, and which are taken.
#[derive(Debug)]
pub struct CidrSet {
    cluster: Cidr,
    node_mask: u8,
    count: u64,
    used: BTreeSet<u64>,
    next: u64,
}

impl CidrSet {
    pub fn new(cluster: Cidr, node_mask: u8) -> Result<CidrSet, CidrError> {
        if node_mask <= cluster.prefix {
            return Err(CidrError::MaskTooSmall {
                mask: node_mask,
                prefix: cluster.prefix,
            });
        }
        if node_mask > cluster.bits() {
            return Err(CidrError::MaskTooLarge {
                mask: node_mask,
                bits: cluster.bits(),
            });
        }
        if cluster.v6 && node_mask - cluster.prefix > 16 {
            return Err(CidrError::TooMany {
                prefix: cluster.prefix,
                mask: node_mask,
            });
        }
        Ok(CidrSet {
            cluster,
            node_mask,
            count: 1u64 << (node_mask - cluster.prefix).min(32),
            used: BTreeSet::new(),
            next: 0,
        })
    }

    pub fn cluster(&self) -> Cidr {
        self.cluster
    }

    fn shift(&self) -> u32 {
        u32::from(self.cluster.bits() - self.node_mask)
    }

    fn nth(&self, i: u64) -> Cidr {
        Cidr {
            base: self.cluster.base + (u128::from(i) << self.shift()),
            prefix: self.node_mask,
            v6: self.cluster.v6,
        }
    }

    /// The block indices `cidr` covers, if it lies in the cluster CIDR.
    fn indices(&self, cidr: Cidr) -> Option<std::ops::Range<u64>> {
        if !self.cluster.contains(cidr) && !cidr.contains(self.cluster) {
            return None;
        }
        // A CIDR wider than the cluster CIDR covers all of it.
        if cidr.prefix <= self.cluster.prefix {
            return Some(0..self.count);
        }
        let offset = cidr.base - self.cluster.base;
        let first = u64::try_from(offset >> self.shift()).ok()?;
        let len = if cidr.prefix >= self.node_mask {
            1
        } else {
            1u64 << (self.node_mask - cidr.prefix)
        };
        Some(first..(first + len).min(self.count))
    }

    /// Marks `cidr` taken (a node's existing podCIDR, or a reserved range);
    /// false if it is outside the cluster CIDR.
    pub fn occupy(&mut self, cidr: Cidr) -> bool {
        match self.indices(cidr) {
            Some(r) => {
                self.used.extend(r);
                true
            }
            None => false,
        }
    }

    /// Frees `cidr`.
    pub fn release(&mut self, cidr: Cidr) {
        if let Some(r) = self.indices(cidr) {
            for i in r {
                self.used.remove(&i);
            }
        }
    }

    /// The next free node CIDR, taken; `None` when the range is full.
    pub fn allocate(&mut self) -> Option<Cidr> {
        for k in 0..self.count {
            let i = (self.next + k) % self.count;
            if !self.used.contains(&i) {
                self.used.insert(i);
                self.next = (i + 1) % self.count;
                return Some(self.nth(i));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn c(s: &str) -> Cidr {
        Cidr::parse(s).unwrap()
    }

    #[test]
    fn parse_and_display() {
        assert_eq!(c("10.244.3.7/16").to_string(), "10.244.0.0/16");
        assert_eq!(c("fd00:10:244::1/56").to_string(), "fd00:10:244::/56");
        assert!(Cidr::parse("10.0.0.0").is_err());
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope/8").is_err());
        assert!(c("10.0.0.0/8").contains(c("10.3.0.0/24")));
        assert!(!c("10.0.0.0/8").contains(c("11.3.0.0/24")));
        assert!(!c("10.0.0.0/8").contains(c("fd00::/64")));
    }

    #[test]
    fn allocates_in_order_then_reuses_released() {
        let mut s = CidrSet::new(c("10.244.0.0/22"), 24).unwrap();
        let got: Vec<String> = (0..4).map(|_| s.allocate().unwrap().to_string()).collect();
        assert_eq!(
            got,
            ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24"]
        );
        assert!(s.allocate().is_none());
        s.release(c("10.244.1.0/24"));
        assert_eq!(s.allocate().unwrap().to_string(), "10.244.1.0/24");
    }

    #[test]
    fn occupied_blocks_are_skipped() {
        let mut s = CidrSet::new(c("10.244.0.0/16"), 24).unwrap();
        assert!(s.occupy(c("10.244.0.0/24")));
        assert!(s.occupy(c("10.244.2.0/23")));
        assert!(!s.occupy(c("192.168.0.0/24")));
        let got: Vec<String> = (0..2).map(|_| s.allocate().unwrap().to_string()).collect();
        assert_eq!(got, ["10.244.1.0/24", "10.244.4.0/24"]);
    }

    #[test]
    fn ipv6_and_mask_validation() {
        let mut s = CidrSet::new(c("fd00:10:244::/56"), 64).unwrap();
        assert_eq!(s.allocate().unwrap().to_string(), "fd00:10:244::/64");
        assert_eq!(s.allocate().unwrap().to_string(), "fd00:10:244:1::/64");
        assert!(matches!(
            CidrSet::new(c("fd00::/32"), 64),
            Err(CidrError::TooMany { .. })
        ));
        assert!(matches!(
            CidrSet::new(c("10.0.0.0/24"), 16),
            Err(CidrError::MaskTooSmall { .. })
        ));
        assert!(matches!(
            CidrSet::new(c("10.0.0.0/24"), 33),
            Err(CidrError::MaskTooLarge { .. })
        ));
    }
}
