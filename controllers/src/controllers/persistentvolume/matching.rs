//! Which PersistentVolume satisfies a claim (upstream's
//! `FindMatchingVolume` and `checkVolumeSatisfyClaim`): same class, same
//! volume mode, every requested access mode, the claim's label selector,
//! enough capacity; among the fits the smallest wins, and a volume
//! pre-bound to the claim (`spec.claimRef`) wins over all others.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::controllers::controller_ref::selector_matches;

/// `spec.storageClassName` of a claim ("" for none).
pub fn claim_class(pvc: &PersistentVolumeClaim) -> &str {
    pvc.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or("")
}

/// `spec.storageClassName` of a volume ("" for none).
pub fn volume_class(pv: &PersistentVolume) -> &str {
    pv.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or("")
}

/// A claim's requested storage in bytes (0 when absent).
pub fn requested_bytes(pvc: &PersistentVolumeClaim) -> u128 {
    pvc.spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(quantity_bytes)
        .unwrap_or(0)
}

/// A volume's capacity in bytes (0 when absent).
pub fn capacity_bytes(pv: &PersistentVolume) -> u128 {
    pv.spec
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .and_then(quantity_bytes)
        .unwrap_or(0)
}

/// A resource quantity (`10Gi`, `500M`, `1.5e3`, `100m`) in whole units,
/// rounded up; `None` when it does not parse.
pub fn quantity_bytes(q: &Quantity) -> Option<u128> {
    let s = q.0.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let mut value: f64 = num.parse().ok()?;
    let factor: f64 = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse::<i32>().ok()?),
        _ => return None,
    };
    value *= factor;
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    // Saturating float-to-int conversion is the intent here.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some(value.ceil() as u128)
}

fn volume_mode_of(mode: Option<&str>) -> &str {
    mode.unwrap_or("Filesystem")
}

/// Whether `pv` is pre-bound to `pvc` (name and namespace match, and the
/// uid matches or is not set yet).
pub fn is_prebound_to(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> bool {
    let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    r.name == pvc.metadata.name
        && r.namespace == pvc.metadata.namespace
        && (r.uid.as_deref().unwrap_or("").is_empty() || r.uid == pvc.metadata.uid)
}

/// Why `pv` cannot serve `pvc` even when named by it (upstream's
/// `checkVolumeSatisfyClaim`): size, class and volume mode.
pub fn check_volume_satisfies_claim(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> Result<(), String> {
    if capacity_bytes(pv) < requested_bytes(pvc) {
        return Err("requested PV is too small".into());
    }
    if volume_class(pv) != claim_class(pvc) {
        return Err("storageClassName does not match".into());
    }
    let pv_mode = volume_mode_of(pv.spec.as_ref().and_then(|s| s.volume_mode.as_deref()));
    let pvc_mode = volume_mode_of(pvc.spec.as_ref().and_then(|s| s.volume_mode.as_deref()));
    if pv_mode != pvc_mode {
        return Err(format!(
            "incompatible volumeMode: requested {pvc_mode}, volume has {pv_mode}"
        ));
    }
    Ok(())
}

fn access_modes_contained(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> bool {
    let have = pv.spec.as_ref().and_then(|s| s.access_modes.as_ref());
    pvc.spec
        .as_ref()
        .and_then(|s| s.access_modes.as_ref())
        .into_iter()
        .flatten()
        .all(|m| have.is_some_and(|h| h.contains(m)))
}

fn selector_ok(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> bool {
    match pvc.spec.as_ref().and_then(|s| s.selector.as_ref()) {
        None => true,
        Some(sel) => selector_matches(sel, pv.metadata.labels.as_ref().unwrap_or(&Default::default())),
    }
}

/// The best volume for `pvc` among `volumes`. With `delay_binding`
/// (WaitForFirstConsumer) only a volume pre-bound to the claim is
/// returned: the scheduler chooses the others, since only it knows the
/// node.
pub fn find_best_match<'a>(
    pvc: &PersistentVolumeClaim,
    volumes: impl IntoIterator<Item = &'a PersistentVolume>,
    delay_binding: bool,
) -> Option<&'a PersistentVolume> {
    let want = requested_bytes(pvc);
    let pvc_mode = volume_mode_of(pvc.spec.as_ref().and_then(|s| s.volume_mode.as_deref()));
    let mut best: Option<(&PersistentVolume, u128)> = None;
    for pv in volumes {
        let Some(spec) = pv.spec.as_ref() else { continue };
        if volume_mode_of(spec.volume_mode.as_deref()) != pvc_mode {
            continue;
        }
        let cap = capacity_bytes(pv);
        if is_prebound_to(pv, pvc) {
            if cap >= want {
                return Some(pv);
            }
            continue;
        }
        if spec.claim_ref.is_some() || pv.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if pv.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Available") {
            continue;
        }
        if delay_binding
            || volume_class(pv) != claim_class(pvc)
            || !selector_ok(pv, pvc)
            || !access_modes_contained(pv, pvc)
            || cap < want
        {
            continue;
        }
        if best.is_none_or(|(_, c)| cap < c) {
            best = Some((pv, cap));
        }
    }
    best.map(|(pv, _)| pv)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::{Value, json};

    fn pvc(extra: Value) -> PersistentVolumeClaim {
        let mut spec = json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                              "storageClassName": ""});
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                s.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(json!({"metadata": {"name": "c", "namespace": "ns", "uid": "u1"}, "spec": spec}))
            .unwrap()
    }

    fn pv(name: &str, size: &str, extra: Value) -> PersistentVolume {
        let mut v = json!({"metadata": {"name": name, "labels": {"tier": "gold"}},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
                     "hostPath": {"path": "/x"}},
            "status": {"phase": "Available"}});
        if let (Some(s), Some(e)) = (v["spec"].as_object_mut(), extra.as_object()) {
            for (k, val) in e {
                s.insert(k.clone(), val.clone());
            }
        }
        serde_json::from_value(v).unwrap()
    }

    fn best(claim: &PersistentVolumeClaim, pvs: &[PersistentVolume], delay: bool) -> Option<String> {
        find_best_match(claim, pvs, delay).map(|p| p.metadata.name.clone().unwrap())
    }

    #[test]
    fn quantities_parse_like_resource_quantities() {
        let q = |s: &str| quantity_bytes(&Quantity(s.into()));
        assert_eq!(q("1Gi"), Some(1 << 30));
        assert_eq!(q("500M"), Some(500_000_000));
        assert_eq!(q("1.5Ki"), Some(1536));
        assert_eq!(q("2e3"), Some(2000));
        assert_eq!(q("100m"), Some(1));
        assert_eq!(q("12"), Some(12));
        assert_eq!(q("1Qi"), None);
        assert_eq!(q("abc"), None);
    }

    #[test]
    fn smallest_fitting_volume_wins() {
        let pvs = [
            pv("big", "10Gi", json!({})),
            pv("small", "2Gi", json!({})),
            pv("tiny", "512Mi", json!({})),
        ];
        assert_eq!(best(&pvc(json!({})), &pvs, false).as_deref(), Some("small"));
        assert_eq!(
            best(&pvc(json!({})), &pvs, true),
            None,
            "delayed binding is the scheduler's"
        );
    }

    #[test]
    fn each_requirement_excludes() {
        let claim = pvc(json!({}));
        let cases = [
            ("class", pv("a", "5Gi", json!({"storageClassName": "fast"}))),
            ("mode", pv("a", "5Gi", json!({"volumeMode": "Block"}))),
            ("access", pv("a", "5Gi", json!({"accessModes": ["ReadOnlyMany"]}))),
            (
                "claimed",
                pv("a", "5Gi", json!({"claimRef": {"name": "other", "namespace": "ns"}})),
            ),
        ];
        for (what, v) in cases {
            assert_eq!(best(&claim, std::slice::from_ref(&v), false), None, "{what}");
        }
        let mut released = pv("a", "5Gi", json!({}));
        released.status.as_mut().unwrap().phase = Some("Released".into());
        assert_eq!(best(&claim, &[released], false), None);
        let gold = pvc(json!({"selector": {"matchLabels": {"tier": "gold"}}}));
        let silver = pvc(json!({"selector": {"matchLabels": {"tier": "silver"}}}));
        let v = [pv("a", "5Gi", json!({}))];
        assert_eq!(best(&gold, &v, false).as_deref(), Some("a"));
        assert_eq!(best(&silver, &v, false), None);
    }

    #[test]
    fn prebound_volume_wins_even_when_delayed() {
        let pre = pv("pre", "8Gi", json!({"claimRef": {"name": "c", "namespace": "ns"}}));
        let pvs = [pv("small", "1Gi", json!({})), pre];
        assert_eq!(best(&pvc(json!({})), &pvs, false).as_deref(), Some("pre"));
        assert_eq!(best(&pvc(json!({})), &pvs, true).as_deref(), Some("pre"));
        let other_uid = pv(
            "pre",
            "8Gi",
            json!({"claimRef": {"name": "c", "namespace": "ns", "uid": "u2"}}),
        );
        assert_eq!(best(&pvc(json!({})), &[other_uid], false), None);
    }

    #[test]
    fn named_volume_checks() {
        let claim = pvc(json!({}));
        assert_eq!(check_volume_satisfies_claim(&pv("a", "1Gi", json!({})), &claim), Ok(()));
        assert_eq!(
            check_volume_satisfies_claim(&pv("a", "1Mi", json!({})), &claim),
            Err("requested PV is too small".into())
        );
        assert_eq!(
            check_volume_satisfies_claim(&pv("a", "1Gi", json!({"storageClassName": "x"})), &claim),
            Err("storageClassName does not match".into())
        );
        assert!(check_volume_satisfies_claim(&pv("a", "1Gi", json!({"volumeMode": "Block"})), &claim).is_err());
    }
}
