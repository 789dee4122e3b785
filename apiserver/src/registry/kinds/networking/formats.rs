//! Value formats of `apimachinery/pkg/util/validation` that the kinds here
//! need beyond names: ports, wildcard DNS names, domain-prefixed paths, and
//! IPs and CIDRs parsed as Go's (sloppy, legacy) parser accepts them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::validation::names::is_dns1123_subdomain;
use crate::validation::{FieldError, FieldErrors};

const DNS1123_SUBDOMAIN_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const HTTP_PATH_FMT: &str = "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+";

/// `must be between LO and HI, inclusive`.
pub fn inclusive_range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

/// A valid, non-zero port number.
pub fn is_valid_port_num(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec![inclusive_range_error(1, 65535)]
    }
}

/// An IANA service name (a named port).
pub fn is_valid_port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push("must be no more than 15 characters".to_string());
    }
    if port.is_empty()
        || !port
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !port.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".into());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".into());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".into());
    }
    errs
}

fn regex_error(msg: &str, fmt: &str, example: Option<&str>) -> String {
    match example {
        Some(e) => format!("{msg} (e.g. '{e}', regex used for validation is '{fmt}')"),
        None => format!("{msg} (regex used for validation is '{fmt}')"),
    }
}

/// A wildcard DNS subdomain: `*.` followed by a DNS subdomain.
pub fn is_wildcard_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    let ok = value
        .strip_prefix("*.")
        .is_some_and(|rest| !rest.is_empty() && is_dns1123_subdomain(rest).iter().all(|m| m.starts_with("must be no")));
    if !ok {
        errs.push(regex_error(
            "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character",
            &format!("\\*\\.{DNS1123_SUBDOMAIN_FMT}"),
            Some("*.example.com"),
        ));
    }
    errs
}

/// A domain-prefixed path (`acme.io/foo`), as for IngressClass controllers.
pub fn is_domain_prefixed_path(path: &str, value: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if value.is_empty() {
        errs.push(FieldError::required(path, ""));
        return errs;
    }
    let Some((host, rest)) = value.split_once('/').filter(|(h, r)| !h.is_empty() && !r.is_empty()) else {
        errs.push(FieldError::invalid(
            path,
            value,
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        ));
        return errs;
    };
    for m in is_dns1123_subdomain(host) {
        errs.push(FieldError::invalid(path, host, m));
    }
    let path_ok = rest
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:".contains(&c));
    if !path_ok {
        errs.push(FieldError::invalid(
            path,
            rest,
            regex_error("Invalid path", HTTP_PATH_FMT, None),
        ));
    }
    errs
}

/// IPv4 as Go's legacy parser reads it: four decimal fields, leading zeros
/// allowed.
fn parse_ipv4_sloppy(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for o in &mut octets {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 8 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        *o = u8::try_from(p.parse::<u32>().ok()?).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

/// An IP address as `netutils.ParseIPSloppy` accepts it. IPv4-mapped IPv6
/// addresses come back as IPv4, as Go's `To4` sees them.
pub fn parse_ip_sloppy(s: &str) -> Option<IpAddr> {
    if !s.contains(':') {
        return parse_ipv4_sloppy(s).map(IpAddr::V4);
    }
    let v6 = match s.parse::<Ipv6Addr>() {
        Ok(a) => a,
        Err(_) => {
            // An embedded IPv4 tail with leading zeros.
            let (head, tail) = s.rsplit_once(':')?;
            let v4 = parse_ipv4_sloppy(tail)?;
            format!("{head}:{v4}").parse::<Ipv6Addr>().ok()?
        }
    };
    Some(match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    })
}

/// A parsed CIDR: the network address (masked) and the prefix length, in
/// the family of how it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// Address bits, left-aligned in the family's width.
    pub bits: u128,
    pub prefix: u32,
    /// 32 for a CIDR written as IPv4, 128 otherwise.
    pub width: u32,
}

impl Cidr {
    fn mask(prefix: u32, width: u32) -> u128 {
        if prefix == 0 {
            0
        } else {
            (u128::MAX << (width - prefix)) & (u128::MAX >> (128 - width))
        }
    }

    /// Whether `other`'s network address lies inside this network.
    pub fn contains(&self, other: &Cidr) -> bool {
        self.width == other.width && other.bits & Cidr::mask(self.prefix, self.width) == self.bits
    }
}

/// A CIDR as `netutils.ParseCIDRSloppy` accepts it.
pub fn parse_cidr_sloppy(s: &str) -> Option<Cidr> {
    let (ip, len) = s.split_once('/')?;
    if len.is_empty() || len.len() > 8 || !len.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let prefix: u32 = len.parse().ok()?;
    let (bits, width) = if ip.contains(':') {
        let v6 = match parse_ip_sloppy(ip)? {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        (u128::from(v6), 128)
    } else {
        (u128::from(u32::from(parse_ipv4_sloppy(ip)?)), 32)
    };
    if prefix > width {
        return None;
    }
    Some(Cidr {
        bits: bits & Cidr::mask(prefix, width),
        prefix,
        width,
    })
}

/// `must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)` unless
/// `value` parses (the legacy, non-strict check: strict IP/CIDR validation
/// is an alpha gate upstream).
pub fn validate_cidr_legacy(path: &str, value: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if parse_cidr_sloppy(value).is_none() {
        errs.push(FieldError::invalid(
            path,
            value,
            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
        ));
    }
    errs
}

/// `must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)` unless
/// `value` parses (legacy check).
pub fn validate_ip_legacy(path: &str, value: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if parse_ip_sloppy(value).is_none() {
        errs.push(FieldError::invalid(
            path,
            value,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ));
    }
    errs
}

/// Upstream's `ValidateEndpointIP`: no unspecified, loopback or link-local
/// addresses.
pub fn validate_endpoint_ip(path: &str, value: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let Some(ip) = parse_ip_sloppy(value) else {
        errs.push(FieldError::invalid(path, value, "must be a valid IP address"));
        return errs;
    };
    let (unspecified, loopback, link_local, link_local_multicast) = match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            (
                a.is_unspecified(),
                a.is_loopback(),
                o[0] == 169 && o[1] == 254,
                o[0] == 224 && o[1] == 0 && o[2] == 0,
            )
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            (
                a.is_unspecified(),
                a.is_loopback(),
                s[0] & 0xffc0 == 0xfe80,
                s[0] & 0xff0f == 0xff02,
            )
        }
    };
    if unspecified {
        errs.push(FieldError::invalid(
            path,
            value,
            format!("may not be unspecified ({value})"),
        ));
    }
    if loopback {
        errs.push(FieldError::invalid(
            path,
            value,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    if link_local {
        errs.push(FieldError::invalid(
            path,
            value,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    if link_local_multicast {
        errs.push(FieldError::invalid(
            path,
            value,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn ports() {
        assert!(is_valid_port_num(80).is_empty());
        assert_eq!(is_valid_port_num(0), ["must be between 1 and 65535, inclusive"]);
        assert!(is_valid_port_name("http").is_empty());
        assert_eq!(is_valid_port_name("80"), ["must contain at least one letter (a-z)"]);
        assert_eq!(
            is_valid_port_name("-a--"),
            [
                "must not contain consecutive hyphens",
                "must not begin or end with a hyphen"
            ]
        );
    }

    #[test]
    fn wildcard_and_domain_paths() {
        assert!(is_wildcard_dns1123_subdomain("*.example.com").is_empty());
        assert_eq!(
            is_wildcard_dns1123_subdomain("*.*.example.com"),
            [
                "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ]
        );
        assert!(!is_wildcard_dns1123_subdomain("foo*.bar").is_empty());
        assert!(is_domain_prefixed_path("c", "example.com/ingress").is_empty());
        assert_eq!(
            is_domain_prefixed_path("c", "nginx").summary(),
            "c: Invalid value: \"nginx\": must be a domain-prefixed path (such as \"acme.io/foo\")"
        );
        assert_eq!(
            is_domain_prefixed_path("c", "a.io/b c").summary(),
            "c: Invalid value: \"b c\": Invalid path (regex used for validation is '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')"
        );
    }

    #[test]
    fn ips_and_cidrs() {
        assert_eq!(parse_ip_sloppy("010.1.2.3"), Some("10.1.2.3".parse().unwrap()));
        assert_eq!(parse_ip_sloppy("::ffff:1.2.3.4"), Some("1.2.3.4".parse().unwrap()));
        assert!(parse_ip_sloppy("1.2.3").is_none());
        assert!(parse_ip_sloppy("256.1.1.1").is_none());
        assert!(parse_ip_sloppy("fe80::1").is_some());
        let net = parse_cidr_sloppy("10.0.0.0/8").unwrap();
        assert!(net.contains(&parse_cidr_sloppy("10.1.0.0/16").unwrap()));
        assert!(!net.contains(&parse_cidr_sloppy("11.0.0.0/16").unwrap()));
        assert!(!net.contains(&parse_cidr_sloppy("fd00::/64").unwrap()));
        assert!(parse_cidr_sloppy("10.0.0.0/33").is_none());
        assert!(parse_cidr_sloppy("10.0.0.0").is_none());
        assert!(parse_cidr_sloppy("::/0").is_some());
        assert_eq!(
            validate_endpoint_ip("a", "127.0.0.1").summary(),
            "a: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)"
        );
        assert_eq!(validate_endpoint_ip("a", "fe80::1").0.len(), 1);
        assert!(validate_endpoint_ip("a", "10.1.2.3").is_empty());
    }
}
