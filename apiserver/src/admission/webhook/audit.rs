//! The audit annotations webhook calls leave on the request's event, as
//! upstream's webhook dispatchers write them:
//!
//! - every call of a mutating webhook:
//!   `mutation.webhook.admission.k8s.io/round_<r>_index_<i>` =
//!   `{"configuration":..,"webhook":..,"mutated":..}`, where `i` is the
//!   webhook's place among all mutating webhooks (configurations in name
//!   order) and `r` is 1 for a reinvocation, else 0;
//! - a mutating webhook's non-empty JSON patch, at audit level `Request`
//!   and above only (it may carry the request's data):
//!   `patch.webhook.admission.k8s.io/round_<r>_index_<i>` =
//!   `{"configuration":..,"webhook":..,"patch":[..],"patchType":"JSONPatch"}`;
//! - a call that failed under `failurePolicy: Ignore`:
//!   `failed-open.mutation.webhook.admission.k8s.io/round_<r>_index_<i>`,
//!   or for validating webhooks
//!   `failed-open.validating.webhook.admission.k8s.io/round_0_index_<i>`
//!   (`i` counting only the webhooks the request matched), the webhook's
//!   name as the value;
//! - the `auditAnnotations` of a webhook's response as
//!   `<webhook name>/<key>`, when that is a qualified name.

use serde_json::Value;

use crate::audit::{self, Level};

const MUTATION: &str = "mutation.webhook.admission.k8s.io/";
const PATCH: &str = "patch.webhook.admission.k8s.io/";
const FAILED_OPEN_MUTATING: &str = "failed-open.mutation.webhook.admission.k8s.io/";
const FAILED_OPEN_VALIDATING: &str = "failed-open.validating.webhook.admission.k8s.io/";

/// Where one webhook call sits in the request's dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub mutating: bool,
    /// 1 for a reinvocation, else 0.
    pub round: u8,
    pub index: usize,
}

impl Slot {
    fn key(&self, prefix: &str) -> String {
        format!("{prefix}round_{}_index_{}", self.round, self.index)
    }
}

/// A JSON string literal.
fn quoted(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// `{"configuration":..,"webhook":..,"mutated":..}`, upstream's field order.
pub fn mutation_value(configuration: &str, webhook: &str, mutated: bool) -> String {
    format!(
        r#"{{"configuration":{},"webhook":{},"mutated":{mutated}}}"#,
        quoted(configuration),
        quoted(webhook)
    )
}

/// `{"configuration":..,"webhook":..,"patch":..,"patchType":"JSONPatch"}`.
pub fn patch_value(configuration: &str, webhook: &str, patch: &Value) -> String {
    format!(
        r#"{{"configuration":{},"webhook":{},"patch":{patch},"patchType":"JSONPatch"}}"#,
        quoted(configuration),
        quoted(webhook)
    )
}

/// Records that a mutating webhook was called and whether it changed the
/// object.
pub fn mutation(slot: Slot, configuration: &str, webhook: &str, mutated: bool) {
    if audit::is_audited() {
        audit::annotate(&slot.key(MUTATION), &mutation_value(configuration, webhook, mutated));
    }
}

/// Records the patch a mutating webhook answered with.
pub fn patch(slot: Slot, configuration: &str, webhook: &str, patch: &Value) {
    if audit::is_audited_at(Level::Request) {
        audit::annotate_at(
            Level::Request,
            &slot.key(PATCH),
            &patch_value(configuration, webhook, patch),
        );
    }
}

/// Records that a call failed and was ignored per the failurePolicy.
pub fn failed_open(slot: Slot, webhook: &str) {
    let prefix = if slot.mutating {
        FAILED_OPEN_MUTATING
    } else {
        FAILED_OPEN_VALIDATING
    };
    audit::annotate(&slot.key(prefix), webhook);
}

/// The keys and values a webhook's `auditAnnotations` become; keys that
/// are not qualified names once prefixed are dropped with a log line.
pub fn from_response(webhook: &str, annotations: &[(String, String)]) -> Vec<(String, String)> {
    annotations
        .iter()
        .filter_map(|(k, v)| {
            let key = format!("{webhook}/{k}");
            let errs = crate::validation::names::is_qualified_name(&key);
            if key.split('/').count() != 2 || !errs.is_empty() {
                tracing::warn!(
                    webhook,
                    key,
                    "dropping a webhook's audit annotation with an invalid key"
                );
                return None;
            }
            Some((key, v.clone()))
        })
        .collect()
}

/// Adds a webhook's `auditAnnotations` to the event.
pub fn response_annotations(webhook: &str, annotations: &[(String, String)]) {
    for (k, v) in from_response(webhook, annotations) {
        audit::annotate(&k, &v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_keep_upstreams_field_order() {
        assert_eq!(
            mutation_value("cfg", "hook.example.com", true),
            r#"{"configuration":"cfg","webhook":"hook.example.com","mutated":true}"#
        );
        let patch = json!([{"op": "add", "path": "/metadata/labels", "value": {"a": "\"q\""}}]);
        assert_eq!(
            patch_value("cfg", "h", &patch),
            r#"{"configuration":"cfg","webhook":"h","patch":[{"op":"add","path":"/metadata/labels","value":{"a":"\"q\""}}],"patchType":"JSONPatch"}"#
        );
    }

    #[test]
    fn keys_name_round_and_index() {
        let slot = Slot {
            mutating: true,
            round: 1,
            index: 3,
        };
        assert_eq!(slot.key(MUTATION), "mutation.webhook.admission.k8s.io/round_1_index_3");
    }

    #[test]
    fn response_annotations_need_qualified_keys() {
        let got = from_response(
            "hook.example.com",
            &[
                ("decision".into(), "ok".into()),
                ("bad key".into(), "x".into()),
                ("a/b".into(), "x".into()),
            ],
        );
        assert_eq!(got, [("hook.example.com/decision".to_string(), "ok".to_string())]);
    }
}
