//! `spec.successPolicy` of Indexed Jobs: a rule is met when enough of its
//! `succeededIndexes` (or, without them, enough indexes at all) succeeded.

use k8s_openapi::api::batch::v1::SuccessPolicy;

use super::indexes::OrderedIntervals;

/// The SuccessCriteriaMet message when a rule is met, upstream's
/// `Matched rules at index <n>`.
pub fn match_success_policy(
    policy: Option<&SuccessPolicy>,
    completions: i32,
    succeeded: &OrderedIntervals,
) -> Option<String> {
    let policy = policy?;
    if succeeded.is_empty() {
        return None;
    }
    for (index, rule) in policy.rules.iter().enumerate() {
        let met = match rule.succeeded_indexes.as_deref() {
            Some(s) => {
                let required = OrderedIntervals::parse(s, completions);
                if required.is_empty() {
                    continue;
                }
                let matched = required.iter().filter(|ix| succeeded.has(*ix)).count();
                let matched = i32::try_from(matched).unwrap_or(i32::MAX);
                match rule.succeeded_count {
                    Some(n) => matched >= n,
                    None => matched == required.total(),
                }
            }
            None => rule.succeeded_count.is_some_and(|n| succeeded.total() >= n),
        };
        if met {
            return Some(format!("Matched rules at index {index}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn check(rules: serde_json::Value, succeeded: &str, want: Option<&str>) {
        let policy: SuccessPolicy = serde_json::from_value(json!({ "rules": rules })).unwrap();
        let got = match_success_policy(Some(&policy), 10, &OrderedIntervals::parse(succeeded, 10));
        assert_eq!(got.as_deref(), want, "{rules} with {succeeded}");
    }

    #[test]
    fn rules() {
        check(json!([{"succeededIndexes": "0-2"}]), "0,1", None);
        check(
            json!([{"succeededIndexes": "0-2"}]),
            "0-3",
            Some("Matched rules at index 0"),
        );
        check(
            json!([{"succeededIndexes": "0-4", "succeededCount": 2}]),
            "1,3",
            Some("Matched rules at index 0"),
        );
        check(json!([{"succeededIndexes": "0-4", "succeededCount": 2}]), "1,7", None);
        check(
            json!([{"succeededIndexes": "9"}, {"succeededCount": 3}]),
            "1,3,5",
            Some("Matched rules at index 1"),
        );
        check(json!([{"succeededCount": 3}]), "", None);
        assert_eq!(
            match_success_policy(None, 10, &OrderedIntervals::parse("0-9", 10)),
            None
        );
    }
}
