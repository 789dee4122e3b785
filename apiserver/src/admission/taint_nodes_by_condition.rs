//! TaintNodesByCondition (`plugin/pkg/admission/nodetaint`): a new Node
//! gets the `node.kubernetes.io/not-ready:NoSchedule` taint, so nothing is
//! scheduled to it until the node lifecycle controller sees it Ready and
//! removes the taint.

use serde_json::{Value, json};

use crate::registry::object::Object;

use super::{Attributes, Operation};

const NOT_READY: &str = "node.kubernetes.io/not-ready";

pub fn admit(attrs: &Attributes<'_>, node: &mut Object) {
    if attrs.operation != Operation::Create || !attrs.is("", "nodes") {
        return;
    }
    let spec = node.entry("spec").or_insert_with(|| json!({}));
    let Value::Object(spec) = spec else { return };
    let taints = spec.entry("taints").or_insert_with(|| Value::Array(Vec::new()));
    if !taints.is_array() {
        *taints = Value::Array(Vec::new());
    }
    let Value::Array(taints) = taints else { return };
    // `MatchTaint`: same key and effect.
    let present = taints.iter().any(|t| {
        t.get("key").and_then(Value::as_str) == Some(NOT_READY)
            && t.get("effect").and_then(Value::as_str) == Some("NoSchedule")
    });
    if !present {
        taints.push(json!({"key": NOT_READY, "effect": "NoSchedule"}));
    }
}
