//! DefaultTolerationSeconds (`plugin/pkg/admission/defaulttolerationseconds`):
//! a new pod that does not tolerate the `node.kubernetes.io/not-ready` or
//! `node.kubernetes.io/unreachable` NoExecute taints gets a toleration of
//! each for 300 seconds, so it is evicted five minutes after its node
//! fails rather than at once.

use std::sync::LazyLock;

use serde_json::{Value, json};

use crate::registry::object::Object;

use super::{Attributes, Operation};

const NOT_READY: &str = "node.kubernetes.io/not-ready";
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// `--default-not-ready-toleration-seconds` and
/// `--default-unreachable-toleration-seconds` at their defaults.
const DEFAULT_SECONDS: i64 = 300;

/// Whether some toleration covers `key`'s NoExecute taint (an empty key
/// or effect matches all).
fn tolerates(tolerations: &[Value], key: &str) -> bool {
    tolerations.iter().any(|t| {
        let k = t.get("key").and_then(Value::as_str).unwrap_or("");
        let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
        (k == key || k.is_empty()) && (effect == "NoExecute" || effect.is_empty())
    })
}

/// The tolerations this plugin adds, with the taint key each is for:
/// built once, copied into each pod that lacks one.
static DEFAULTS: LazyLock<[(&str, Value); 2]> = LazyLock::new(|| {
    [NOT_READY, UNREACHABLE].map(|key| {
        let toleration =
            json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": DEFAULT_SECONDS});
        (key, toleration)
    })
});

pub fn admit(attrs: &Attributes<'_>, pod: &mut Object) {
    if attrs.operation != Operation::Create || !attrs.is("", "pods") {
        return;
    }
    let Some(Value::Object(spec)) = pod.get_mut("spec") else {
        return;
    };
    let tolerations = spec.entry("tolerations").or_insert_with(|| Value::Array(Vec::new()));
    if !tolerations.is_array() {
        *tolerations = Value::Array(Vec::new());
    }
    let Value::Array(tolerations) = tolerations else { return };
    for (key, toleration) in DEFAULTS.iter() {
        if !tolerates(tolerations, key) {
            tolerations.push(toleration.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn adds_only_missing_tolerations() {
        assert!(tolerates(&[json!({"operator": "Exists"})], NOT_READY));
        assert!(tolerates(
            &[json!({"key": NOT_READY, "effect": "NoExecute"})],
            NOT_READY
        ));
        assert!(!tolerates(
            &[json!({"key": NOT_READY, "effect": "NoSchedule"})],
            NOT_READY
        ));
        assert!(!tolerates(&[json!({"key": UNREACHABLE})], NOT_READY));
    }
}
