//! Role and ClusterRole: policy rules and the ClusterRole aggregation rule.

use serde_json::Value;

use crate::registry::kinds::default_traits;
use crate::registry::kinds::networking::values::{arr, go_slice_at, invalid_raw, strs};
use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::selector::labels::Selector;
use crate::validation::label_selector::{LabelSelectorOptions, is_valid_label_selector, validate_label_selector};
use crate::validation::{FieldError, FieldErrors, child, index};

/// The strategy of Roles (`cluster: false`) and ClusterRoles.
#[derive(Debug)]
pub struct RoleStrategy {
    pub cluster: bool,
}

impl Strategy for RoleStrategy {
    fn traits(&self) -> KindTraits {
        default_traits(super::GROUP, if self.cluster { "clusterroles" } else { "roles" })
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        self.validate_role(obj, LabelSelectorOptions::default())
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let allow = arr(old.get("aggregationRule"), "clusterRoleSelectors")
            .iter()
            .any(|s| !is_valid_label_selector(Some(s)));
        self.validate_role(
            new,
            LabelSelectorOptions {
                allow_invalid_label_value: allow,
            },
        )
    }
}

impl RoleStrategy {
    fn validate_role(&self, obj: &Object, opts: LabelSelectorOptions) -> FieldErrors {
        let mut errs = FieldErrors::new();
        for (i, rule) in obj
            .get("rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            errs.extend(validate_policy_rule(rule, !self.cluster, &index("rules", i)));
        }
        if self.cluster
            && let Some(agg) = obj.get("aggregationRule").filter(|v| !v.is_null())
        {
            let selectors = arr(Some(agg), "clusterRoleSelectors");
            if selectors.is_empty() {
                errs.push(FieldError::required(
                    "aggregationRule.clusterRoleSelectors",
                    "at least one clusterRoleSelector required if aggregationRule is non-nil",
                ));
            }
            for (i, sel) in selectors.iter().enumerate() {
                let p = index("aggregationRule.clusterRoleSelectors", i);
                errs.extend(validate_label_selector(Some(sel), opts, &p));
                if Selector::from_label_selector_json(Some(sel)).is_err() {
                    errs.push(FieldError::invalid(&p, "null", "invalid label selector."));
                }
            }
        }
        errs
    }
}

/// Upstream's `ValidatePolicyRule`.
pub fn validate_policy_rule(rule: &Value, namespaced: bool, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let r = Some(rule);
    if strs(r, "verbs").is_empty() {
        errs.push(FieldError::required(
            child(path, "verbs"),
            "verbs must contain at least one value",
        ));
    }
    let urls = strs(r, "nonResourceURLs");
    let (groups, resources, names) = (strs(r, "apiGroups"), strs(r, "resources"), strs(r, "resourceNames"));
    if !urls.is_empty() {
        let rendered = go_slice_at("string", r, "nonResourceURLs");
        if namespaced {
            errs.push(invalid_raw(
                child(path, "nonResourceURLs"),
                &rendered,
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if !groups.is_empty() || !resources.is_empty() || !names.is_empty() {
            errs.push(invalid_raw(
                child(path, "nonResourceURLs"),
                &rendered,
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return errs;
    }
    if groups.is_empty() {
        errs.push(FieldError::required(
            child(path, "apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if resources.is_empty() {
        errs.push(FieldError::required(
            child(path, "resources"),
            "resource rules must supply at least one resource",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn check(cluster: bool, body: Value, expected: &[&str]) {
        let o = match body {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let got: Vec<String> = RoleStrategy { cluster }
            .validate(&o)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn rules() {
        check(
            false,
            json!({"rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]}),
            &[],
        );
        check(
            false,
            json!({"rules": [{}]}),
            &[
                "rules[0].verbs: Required value: verbs must contain at least one value",
                "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
                "rules[0].resources: Required value: resource rules must supply at least one resource",
            ],
        );
        check(
            false,
            json!({"rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"], "resources": ["pods"]}]}),
            &[
                "rules[0].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs",
                "rules[0].nonResourceURLs: Invalid value: []string{\"/healthz\"}: rules cannot apply to both regular resources and non-resource URLs",
            ],
        );
        check(
            true,
            json!({"rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]}),
            &[],
        );
    }

    #[test]
    fn aggregation_rule() {
        check(
            true,
            json!({"aggregationRule": {}}),
            &[
                "aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if aggregationRule is non-nil",
            ],
        );
        check(
            true,
            json!({"aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"rbac.example.com/aggregate": "true"}}]}}),
            &[],
        );
        check(
            true,
            json!({"aggregationRule": {"clusterRoleSelectors": [{"matchExpressions": [{"key": "a", "operator": "In"}]}]}}),
            &[
                "aggregationRule.clusterRoleSelectors[0].matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                "aggregationRule.clusterRoleSelectors[0]: Invalid value: \"null\": invalid label selector.",
            ],
        );
    }
}
