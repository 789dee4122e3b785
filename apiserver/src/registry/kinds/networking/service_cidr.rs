//! ServiceCIDR (`networking.k8s.io/v1`): one or two CIDRs (one per IP
//! family), each valid and canonical (upstream's strict `IsValidCIDR`); an
//! update may only add the second family's CIDR.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use super::formats::parse_cidr_sloppy;
use super::values::{arr, go_slice, invalid_raw, strs};
use crate::registry::kinds::default_traits;
use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::{FieldError, FieldErrors, index};

const PATH: &str = "spec.cidrs";

#[derive(Debug, Default)]
pub struct ServiceCidrStrategy;

/// The strict parse of `value` (`netip.ParsePrefix`): the address, its
/// prefix length, and whether it is IPv4.
fn parse_prefix_strict(value: &str) -> Option<(IpAddr, u32)> {
    let (ip, len) = value.split_once('/')?;
    if len.is_empty() || (len.len() > 1 && len.starts_with('0')) || !len.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let len: u32 = len.parse().ok()?;
    let ip: IpAddr = ip.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((ip, len))
}

fn masked(ip: IpAddr, len: u32) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

/// `IsValidCIDR`'s messages for `value`.
pub fn cidr_strict_errors(value: &str) -> Vec<String> {
    let Some(sloppy) = parse_cidr_sloppy(value) else {
        return vec!["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)".into()];
    };
    match parse_prefix_strict(value) {
        None => vec!["must not have leading 0s in IP or prefix length".into()],
        Some((IpAddr::V6(v6), _)) if v6.to_ipv4_mapped().is_some() => {
            vec!["must not have an IPv4-mapped IPv6 address".into()]
        }
        Some((ip, len)) if masked(ip, len) != ip => vec!["must not have bits set beyond the prefix length".into()],
        Some((ip, _)) => {
            let canonical = format!("{ip}/{}", sloppy.prefix);
            if canonical == value {
                Vec::new()
            } else {
                vec![format!("must be in canonical form (\"{canonical}\")")]
            }
        }
    }
}

fn go_spec(cidrs: &[&str]) -> String {
    format!(
        "networking.ServiceCIDRSpec{{CIDRs:{}}}",
        go_slice("string", Some(cidrs))
    )
}

/// `validateServiceCIDRSpec`.
fn validate_cidrs(spec: Option<&Value>) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let cidrs = strs(spec, "cidrs");
    if cidrs.is_empty() {
        errs.push(FieldError::required(PATH, "at least one CIDR required"));
        return errs;
    }
    if cidrs.len() > 2 {
        errs.push(invalid_raw(PATH, &go_spec(&cidrs), "may only hold up to 2 values"));
        return errs;
    }
    if let [a, b] = cidrs.as_slice() {
        let family = |c: &str| parse_cidr_sloppy(c).map(|c| c.width == 32 || is_mapped(c.bits, c.width));
        let dual = matches!((family(a), family(b)), (Some(x), Some(y)) if x != y);
        if !dual {
            errs.push(invalid_raw(
                PATH,
                &go_spec(&cidrs),
                "may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64",
            ));
            return errs;
        }
    }
    for (i, c) in cidrs.iter().enumerate() {
        for m in cidr_strict_errors(c) {
            errs.push(FieldError::invalid(index(PATH, i), *c, m));
        }
    }
    errs
}

/// An IPv4-mapped IPv6 network counts as IPv4 (Go's `To4`).
fn is_mapped(bits: u128, width: u32) -> bool {
    width == 128 && Ipv6Addr::from(bits).to_ipv4_mapped().is_some()
}

impl Strategy for ServiceCidrStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("networking.k8s.io", "servicecidrs")
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_cidrs(obj.get("spec"))
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = FieldErrors::new();
        let (n, o) = (strs(new.get("spec"), "cidrs"), strs(old.get("spec"), "cidrs"));
        let immutable = |i: usize, v: &str| FieldError::invalid(index(PATH, i), v, "field is immutable");
        match (o.len(), n.len()) {
            (a, b) if a == b => {
                for (i, (was, is)) in o.iter().zip(&n).enumerate() {
                    if was != is {
                        errs.push(immutable(i, is));
                    }
                }
            }
            // Adding the second family's CIDR turns a range dual-stack.
            (1, 2) => {
                if o[0] != n[0] {
                    errs.push(immutable(0, n[0]));
                }
                errs.extend(validate_cidrs(new.get("spec")));
            }
            _ => {
                let shown = if arr(new.get("spec"), "cidrs").is_empty()
                    && new.get("spec").and_then(|s| s.get("cidrs")).is_none()
                {
                    go_slice("string", None)
                } else {
                    go_slice("string", Some(&n))
                };
                errs.push(invalid_raw(PATH, &shown, "field is immutable"));
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn obj(cidrs: Value) -> Object {
        json!({"metadata": {"name": "c"}, "spec": {"cidrs": cidrs}})
            .as_object()
            .cloned()
            .unwrap()
    }

    fn check(cidrs: Value, expected: &[&str]) {
        let got: Vec<String> = ServiceCidrStrategy
            .validate(&obj(cidrs.clone()))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, expected, "{cidrs}");
    }

    #[test]
    fn cidr_rules() {
        check(json!(["10.96.0.0/12", "fd00::/108"]), &[]);
        check(json!([]), &["spec.cidrs: Required value: at least one CIDR required"]);
        check(
            json!(["10.0.0.0/8", "fd00::/64", "10.1.0.0/16"]),
            &[
                "spec.cidrs: Invalid value: networking.ServiceCIDRSpec{CIDRs:[]string{\"10.0.0.0/8\", \"fd00::/64\", \"10.1.0.0/16\"}}: may only hold up to 2 values",
            ],
        );
        check(
            json!(["10.0.0.0/8", "10.1.0.0/16"]),
            &[
                "spec.cidrs: Invalid value: networking.ServiceCIDRSpec{CIDRs:[]string{\"10.0.0.0/8\", \"10.1.0.0/16\"}}: may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64",
            ],
        );
        check(
            json!(["10.0.0.1/8"]),
            &["spec.cidrs[0]: Invalid value: \"10.0.0.1/8\": must not have bits set beyond the prefix length"],
        );
        check(
            json!(["010.0.0.0/8"]),
            &["spec.cidrs[0]: Invalid value: \"010.0.0.0/8\": must not have leading 0s in IP or prefix length"],
        );
        check(
            json!(["FD00::/64"]),
            &["spec.cidrs[0]: Invalid value: \"FD00::/64\": must be in canonical form (\"fd00::/64\")"],
        );
        check(
            json!(["bogus"]),
            &[
                "spec.cidrs[0]: Invalid value: \"bogus\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ],
        );
    }

    #[test]
    fn updates_may_only_add_the_other_family() {
        let s = ServiceCidrStrategy;
        let old = obj(json!(["10.96.0.0/12"]));
        assert!(
            s.validate_update(&obj(json!(["10.96.0.0/12", "fd00::/108"])), &old)
                .is_empty()
        );
        assert_eq!(
            s.validate_update(&obj(json!(["10.0.0.0/8"])), &old).summary(),
            "spec.cidrs[0]: Invalid value: \"10.0.0.0/8\": field is immutable"
        );
        let dual = obj(json!(["10.96.0.0/12", "fd00::/108"]));
        assert_eq!(
            s.validate_update(&old, &dual).summary(),
            "spec.cidrs: Invalid value: []string{\"10.96.0.0/12\"}: field is immutable"
        );
    }
}
