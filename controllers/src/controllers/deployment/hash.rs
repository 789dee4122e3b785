//! ReplicaSet identity for a Deployment's pod template: the
//! `pod-template-hash` label value (FNV-32a of the template and the
//! collision count, encoded with upstream's `SafeEncodeString` alphabet),
//! the ReplicaSet name `<deployment>-<hash>`, and template equality that
//! ignores that label.
//!
//! Upstream hashes the template's Go printing, which Rust cannot
//! reproduce; this hashes its JSON encoding instead, so hashes differ from
//! kube-controller-manager's but are just as stable.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The label (and selector key) distinguishing a Deployment's ReplicaSets.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn fnv32a(data: &[u8], mut hash: u32) -> u32 {
    for b in data {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// Maps every character to the vowel-free alphabet (no bad words, no
/// confusable characters), like upstream's `rand.SafeEncodeString`.
pub fn safe_encode(s: &str) -> String {
    s.chars()
        .map(|c| ALPHANUMS[(c as usize) % ALPHANUMS.len()] as char)
        .collect()
}

/// The `pod-template-hash` of `template` (which must not carry the label)
/// after `collision_count` collisions.
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let bytes = serde_json::to_vec(template).unwrap_or_default();
    let mut h = fnv32a(&bytes, 0x811c_9dc5);
    if let Some(n) = collision_count {
        h = fnv32a(&(n as u32).to_le_bytes(), h);
    }
    safe_encode(&h.to_string())
}

/// The template's metadata without the `pod-template-hash` label (and
/// without an empty label map), the only part that needs a copy.
fn meta_without_hash(t: &PodTemplateSpec) -> Option<ObjectMeta> {
    let mut m = t.metadata.clone()?;
    if let Some(labels) = m.labels.as_mut() {
        labels.remove(POD_TEMPLATE_HASH);
        if labels.is_empty() {
            m.labels = None;
        }
    }
    Some(m)
}

/// Whether two templates are equal apart from the `pod-template-hash`
/// label (upstream's `EqualIgnoreHash`). The specs are compared in place:
/// every Deployment sync compares its template with each of its
/// ReplicaSets'.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    a.spec == b.spec && meta_without_hash(a) == meta_without_hash(b)
}

/// The template without the `pod-template-hash` label.
pub fn strip_hash(t: &PodTemplateSpec) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: meta_without_hash(t),
        spec: t.spec.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn template(image: &str, extra: Option<(&str, &str)>) -> PodTemplateSpec {
        let mut labels = json!({"app": "web"});
        if let Some((k, v)) = extra {
            labels[k] = json!(v);
        }
        serde_json::from_value(
            json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": image}]}}),
        )
        .unwrap()
    }

    #[test]
    fn hashes_are_stable_safe_and_change_with_template_and_collisions() {
        let a = compute_hash(&template("nginx:1", None), None);
        assert_eq!(a, compute_hash(&template("nginx:1", None), None));
        assert_ne!(a, compute_hash(&template("nginx:2", None), None));
        assert_ne!(a, compute_hash(&template("nginx:1", None), Some(1)));
        assert!(a.len() <= 10 && !a.is_empty(), "{a}");
        assert!(a.bytes().all(|b| ALPHANUMS.contains(&b)), "{a}");
        // FNV-32a's published test vector.
        assert_eq!(fnv32a(b"a", 0x811c_9dc5), 0xe40c_292c);
        assert_eq!(safe_encode("0129"), "456f");
    }

    #[test]
    fn equality_ignores_only_the_hash_label() {
        let plain = template("nginx:1", None);
        let hashed = template("nginx:1", Some((POD_TEMPLATE_HASH, "abc")));
        assert!(equal_ignore_hash(&plain, &hashed));
        assert!(!equal_ignore_hash(&plain, &template("nginx:1", Some(("tier", "x")))));
        assert!(!equal_ignore_hash(&plain, &template("nginx:2", None)));
        // Only the hash label goes: an empty label map equals none.
        let mut bare = plain.clone();
        bare.metadata.as_mut().unwrap().labels = None;
        let mut only_hash = bare.clone();
        only_hash.metadata.as_mut().unwrap().labels = Some([(POD_TEMPLATE_HASH.to_string(), "x".to_string())].into());
        assert!(equal_ignore_hash(&bare, &only_hash));
        assert!(!equal_ignore_hash(&bare, &plain));
        let mut annotated = plain.clone();
        annotated.metadata.as_mut().unwrap().annotations = Some([("a".to_string(), "b".to_string())].into());
        assert!(!equal_ignore_hash(&plain, &annotated));
        assert!(equal_ignore_hash(&strip_hash(&hashed), &plain));
        assert_eq!(
            serde_json::to_value(strip_hash(&hashed)).unwrap(),
            serde_json::to_value(&plain).unwrap()
        );
    }
}
