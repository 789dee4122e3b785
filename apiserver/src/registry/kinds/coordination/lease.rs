//! Lease (`coordination.k8s.io/v1`): durations, transitions, and the
//! coordinated-leader-election strategy and preferred holder. Time fields
//! are checked by the schema decoder (MicroTime).

use serde_json::Value;

use crate::registry::kinds::default_traits;
use crate::registry::kinds::networking::values::{int_at, opt_str};
use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::names::is_qualified_name;
use crate::validation::{FieldError, FieldErrors};

/// Strategies upstream defines (names without a `/`).
const STRATEGIES: &[&str] = &["OldestEmulationVersion"];

#[derive(Debug, Default)]
pub struct LeaseStrategy;

impl Strategy for LeaseStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("coordination.k8s.io", "leases")
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_spec(obj.get("spec"))
    }
}

fn validate_spec(spec: Option<&Value>) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if let Some(d) = int_at(spec, "leaseDurationSeconds")
        && d <= 0
    {
        errs.push(FieldError::invalid(
            "spec.leaseDurationSeconds",
            d,
            "must be greater than 0",
        ));
    }
    if let Some(t) = int_at(spec, "leaseTransitions")
        && t < 0
    {
        errs.push(FieldError::invalid(
            "spec.leaseTransitions",
            t,
            "must be greater than or equal to 0",
        ));
    }
    let strategy = opt_str(spec, "strategy");
    if let Some(s) = strategy {
        errs.extend(validate_coordinated_lease_strategy(s, "spec.strategy"));
    }
    if opt_str(spec, "preferredHolder").is_some_and(|h| !h.is_empty()) && strategy.is_none_or(str::is_empty) {
        errs.push(FieldError::forbidden(
            "spec.preferredHolder",
            "may only be specified if `strategy` is defined",
        ));
    }
    errs
}

/// Upstream's `ValidateCoordinatedLeaseStrategy`, including its doubled
/// `strategy` in the field path.
fn validate_coordinated_lease_strategy(strategy: &str, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let p = format!("{path}.strategy");
    if !strategy.contains('/') {
        if !STRATEGIES.contains(&strategy) {
            errs.push(FieldError::not_supported(p, strategy, STRATEGIES));
        }
    } else {
        for m in is_qualified_name(strategy) {
            errs.push(FieldError::invalid(&p, strategy, m));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testing::TestServer;
    use axum::http::StatusCode;
    use serde_json::json;

    fn check(spec: Value, expected: &[&str]) {
        let got: Vec<String> = validate_spec(Some(&spec)).iter().map(ToString::to_string).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn lease_spec() {
        check(
            json!({"holderIdentity": "a", "leaseDurationSeconds": 15, "leaseTransitions": 0}),
            &[],
        );
        check(
            json!({"leaseDurationSeconds": 0, "leaseTransitions": -1}),
            &[
                "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
                "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
            ],
        );
        check(
            json!({"preferredHolder": "b"}),
            &["spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined"],
        );
        check(
            json!({"strategy": "Newest", "preferredHolder": "b"}),
            &["spec.strategy.strategy: Unsupported value: \"Newest\": supported values: \"OldestEmulationVersion\""],
        );
        check(json!({"strategy": "example.com/custom"}), &[]);
        check(
            json!({"strategy": "OldestEmulationVersion", "preferredHolder": "b"}),
            &[],
        );
    }

    #[tokio::test]
    async fn http_lease() {
        let s = TestServer::new().await;
        let path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
        let (code, body) = s
            .post(
                path,
                json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "n1"},
                    "spec": {"holderIdentity": "n1", "leaseDurationSeconds": -5}}),
            )
            .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["details"]["causes"][0]["field"], "spec.leaseDurationSeconds");
        let (code, body) = s
            .post(
                path,
                json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "n1"},
                    "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40,
                        "renewTime": "2024-01-01T00:00:00.000000Z"}}),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
}
