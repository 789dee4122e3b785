//! The node IPAM flags, named like kube-controller-manager's.

use super::cidr_set::{Cidr, CidrSet};

/// One cluster CIDR and the size of the node CIDRs taken from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterCidr {
    pub cidr: Cidr,
    pub node_mask: u8,
}

/// Node IPAM settings.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `--allocate-node-cidrs`: without it the controller does nothing.
    pub allocate_node_cidrs: bool,
    /// `--cluster-cidr`: at most one CIDR per IP family.
    pub cluster_cidrs: Vec<ClusterCidr>,
    /// `--service-cluster-ip-range` CIDRs, never handed to nodes.
    pub service_cidrs: Vec<Cidr>,
}

/// The flags behind [`Settings`].
#[derive(Debug, Clone, clap::Args)]
#[group(id = "node-ipam")]
pub struct SettingsFlags {
    /// Whether Pod CIDRs are allocated and set on nodes.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub allocate_node_cidrs: bool,
    /// CIDR range(s) for pods; comma-separated, one per IP family.
    #[arg(long, default_value = "")]
    pub cluster_cidr: String,
    /// Node CIDR mask size of a single-stack cluster.
    #[arg(long, default_value_t = 0)]
    pub node_cidr_mask_size: i32,
    /// Node CIDR mask size of the IPv4 cluster CIDR (default 24).
    #[arg(long, default_value_t = 0)]
    pub node_cidr_mask_size_ipv4: i32,
    /// Node CIDR mask size of the IPv6 cluster CIDR (default 64).
    #[arg(long, default_value_t = 0)]
    pub node_cidr_mask_size_ipv6: i32,
    /// Service CIDR range(s), kept out of node CIDRs.
    #[arg(long, default_value = "")]
    pub service_cluster_ip_range: String,
}

fn cidrs(list: &str, flag: &str) -> Result<Vec<Cidr>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Cidr::parse(s).map_err(|e| format!("--{flag}: {e}")))
        .collect()
}

fn mask(v: i32, flag: &str) -> Result<u8, String> {
    u8::try_from(v).map_err(|_| format!("--{flag} must be between 0 and 128, got {v}"))
}

impl SettingsFlags {
    /// The settings, or what is wrong with the flags.
    pub fn into_settings(self) -> Result<Settings, String> {
        let clusters = cidrs(&self.cluster_cidr, "cluster-cidr")?;
        let service_cidrs = cidrs(&self.service_cluster_ip_range, "service-cluster-ip-range")?;
        if !self.allocate_node_cidrs {
            return Ok(Settings {
                service_cidrs,
                ..Settings::default()
            });
        }
        if clusters.is_empty() {
            return Err("--cluster-cidr is required when --allocate-node-cidrs is true".into());
        }
        let dual = clusters.len() == 2 && clusters[0].is_ipv6() != clusters[1].is_ipv6();
        if clusters.len() > 2 || (clusters.len() == 2 && !dual) {
            return Err("--cluster-cidr: at most one CIDR per IP family is allowed".into());
        }
        if dual && self.node_cidr_mask_size != 0 {
            return Err("usage of --node-cidr-mask-size is not allowed with dual-stack clusters".into());
        }
        let single = mask(self.node_cidr_mask_size, "node-cidr-mask-size")?;
        let v4 = mask(self.node_cidr_mask_size_ipv4, "node-cidr-mask-size-ipv4")?;
        let v6 = mask(self.node_cidr_mask_size_ipv6, "node-cidr-mask-size-ipv6")?;
        let mut cluster_cidrs = Vec::new();
        for cidr in clusters {
            let node_mask = match (cidr.is_ipv6(), single, v4, v6) {
                (_, s, _, _) if s != 0 => s,
                (false, _, 0, _) => 24,
                (false, _, m, _) => m,
                (true, _, _, 0) => 64,
                (true, _, _, m) => m,
            };
            CidrSet::new(cidr, node_mask).map_err(|e| format!("--cluster-cidr {cidr}: {e}"))?;
            cluster_cidrs.push(ClusterCidr { cidr, node_mask });
        }
        Ok(Settings {
            allocate_node_cidrs: true,
            cluster_cidrs,
            service_cidrs,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn flags(cluster: &str, single: i32, v4: i32, v6: i32) -> SettingsFlags {
        SettingsFlags {
            allocate_node_cidrs: true,
            cluster_cidr: cluster.into(),
            node_cidr_mask_size: single,
            node_cidr_mask_size_ipv4: v4,
            node_cidr_mask_size_ipv6: v6,
            service_cluster_ip_range: String::new(),
        }
    }

    #[test]
    fn masks_default_per_family() {
        let s = flags("10.244.0.0/16,fd00:10:244::/56", 0, 0, 0)
            .into_settings()
            .unwrap();
        let m: Vec<u8> = s.cluster_cidrs.iter().map(|c| c.node_mask).collect();
        assert_eq!(m, [24, 64]);
        let s = flags("10.244.0.0/16", 26, 0, 0).into_settings().unwrap();
        assert_eq!(s.cluster_cidrs[0].node_mask, 26);
        let s = flags("10.244.0.0/16,fd00::/48", 0, 25, 60).into_settings().unwrap();
        assert_eq!(s.cluster_cidrs[1].node_mask, 60);
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(flags("", 0, 0, 0).into_settings().is_err());
        assert!(flags("10.0.0.0/16,10.1.0.0/16", 0, 0, 0).into_settings().is_err());
        assert!(flags("10.0.0.0/16,fd00::/56", 24, 0, 0).into_settings().is_err());
        assert!(flags("10.0.0.0/24", 16, 0, 0).into_settings().is_err());
        assert!(flags("not-a-cidr", 0, 0, 0).into_settings().is_err());
        let mut off = flags("", 0, 0, 0);
        off.allocate_node_cidrs = false;
        assert!(!off.into_settings().unwrap().allocate_node_cidrs);
    }
}
