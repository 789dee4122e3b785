//! `spec.podFailurePolicy`: which rule a failed pod matches (exit codes of
//! terminated containers, or pod conditions), and what that means for the
//! Job (upstream's `pod_failure_policy.go`).

use crate::cached_pod::{CachedContainerStatus, CachedPod};
use k8s_openapi::api::batch::v1::{PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement};

/// The action of the matched rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyAction {
    /// Fail the whole Job at once.
    FailJob,
    /// Fail the pod's index (backoffLimitPerIndex).
    FailIndex,
    /// Do not count the failure towards any limit.
    Ignore,
    /// Count it, as without a policy.
    Count,
}

/// What a failed pod means under the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyMatch {
    /// The Job failure message, for a `FailJob` rule.
    pub fail_job_message: Option<String>,
    /// Whether the failure counts towards backoffLimit(PerIndex).
    pub count_failed: bool,
    /// The matched rule's action, if any rule matched.
    pub action: Option<PolicyAction>,
}

fn action_of(name: &str) -> Option<PolicyAction> {
    Some(match name {
        "FailJob" => PolicyAction::FailJob,
        "FailIndex" => PolicyAction::FailIndex,
        "Ignore" => PolicyAction::Ignore,
        "Count" => PolicyAction::Count,
        _ => return None,
    })
}

fn exit_code_matches(code: i32, req: &PodFailurePolicyOnExitCodesRequirement) -> bool {
    match req.operator.as_str() {
        "In" => req.values.contains(&code),
        "NotIn" => !req.values.contains(&code),
        _ => false,
    }
}

/// The first terminated container (init containers first) with a non-zero
/// exit code matching `req`.
fn matching_container<'a>(
    pod: &'a CachedPod,
    req: &PodFailurePolicyOnExitCodesRequirement,
) -> Option<&'a CachedContainerStatus> {
    let status = pod.status.as_ref()?;
    status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .find(|cs| {
            let Some(t) = cs.state.as_ref().and_then(|s| s.terminated.as_ref()) else {
                return false;
            };
            req.container_name.as_ref().is_none_or(|n| *n == cs.name)
                && t.exit_code != 0
                && exit_code_matches(t.exit_code, req)
        })
}

/// Matches a failed `pod` against `policy` (upstream's
/// `matchPodFailurePolicy`); without a policy every failure counts.
pub fn match_pod_failure_policy(policy: Option<&PodFailurePolicy>, pod: &CachedPod) -> PolicyMatch {
    let counted = PolicyMatch {
        fail_job_message: None,
        count_failed: true,
        action: None,
    };
    let Some(policy) = policy else { return counted };
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    for (index, rule) in policy.rules.iter().enumerate() {
        let Some(action) = action_of(&rule.action) else {
            continue;
        };
        let message = if let Some(req) = rule.on_exit_codes.as_ref() {
            let Some(cs) = matching_container(pod, req) else {
                continue;
            };
            let code = cs
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .map_or(0, |t| t.exit_code);
            format!(
                "Container {} for pod {ns}/{name} failed with exit code {code} matching {} rule at index {index}",
                cs.name, rule.action
            )
        } else if let Some(reqs) = rule.on_pod_conditions.as_ref() {
            let conds = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
            let matched = reqs.iter().find_map(|req| {
                let want = req.status.as_deref().unwrap_or("True");
                conds?.iter().find(|c| c.type_ == req.type_ && c.status == want)
            });
            let Some(cond) = matched else { continue };
            format!(
                "Pod {ns}/{name} has condition {} matching {} rule at index {index}",
                cond.type_, rule.action
            )
        } else {
            continue;
        };
        return match action {
            PolicyAction::Ignore => PolicyMatch {
                fail_job_message: None,
                count_failed: false,
                action: Some(action),
            },
            PolicyAction::FailJob => PolicyMatch {
                fail_job_message: Some(message),
                count_failed: true,
                action: Some(action),
            },
            PolicyAction::FailIndex | PolicyAction::Count => PolicyMatch {
                fail_job_message: None,
                count_failed: true,
                action: Some(action),
            },
        };
    }
    counted
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn policy(rules: serde_json::Value) -> PodFailurePolicy {
        serde_json::from_value(json!({ "rules": rules })).unwrap()
    }

    fn failed_pod(exit_codes: &[(&str, i32)], conditions: serde_json::Value) -> CachedPod {
        let statuses: Vec<_> = exit_codes
            .iter()
            .map(|(n, c)| {
                json!({"name": n, "ready": false, "restartCount": 0, "image": "i", "imageID": "",
                                 "state": {"terminated": {"exitCode": c}}})
            })
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "status": {"phase": "Failed", "containerStatuses": statuses, "conditions": conditions},
        }))
        .unwrap()
    }

    #[test]
    fn rules_match_in_order() {
        let p = policy(json!([
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}},
            {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [2]}},
        ]));
        let disrupted = failed_pod(&[("main", 42)], json!([{"type": "DisruptionTarget", "status": "True"}]));
        let m = match_pod_failure_policy(Some(&p), &disrupted);
        assert_eq!((m.action, m.count_failed), (Some(PolicyAction::Ignore), false));

        let m = match_pod_failure_policy(Some(&p), &failed_pod(&[("side", 0), ("main", 42)], json!([])));
        assert_eq!(m.action, Some(PolicyAction::FailJob));
        assert_eq!(
            m.fail_job_message.as_deref(),
            Some("Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1")
        );
        // 42 in another container: the NotIn rule (index 2) matches instead.
        let m = match_pod_failure_policy(Some(&p), &failed_pod(&[("side", 42)], json!([])));
        assert_eq!((m.action, m.count_failed), (Some(PolicyAction::Count), true));
        let m = match_pod_failure_policy(Some(&p), &failed_pod(&[("main", 2)], json!([])));
        assert_eq!(m.action, Some(PolicyAction::FailIndex));
        // Exit code 1 matches nothing: counted, no action.
        let m = match_pod_failure_policy(Some(&p), &failed_pod(&[("main", 1)], json!([])));
        assert_eq!((m.action, m.count_failed), (None, true));
        // No policy: counted.
        assert!(match_pod_failure_policy(None, &disrupted).count_failed);
    }

    #[test]
    fn condition_rules_report_the_condition() {
        let p = policy(json!([{"action": "FailJob", "onPodConditions": [{"type": "ConfigIssue", "status": "True"}]}]));
        let m = match_pod_failure_policy(
            Some(&p),
            &failed_pod(&[], json!([{"type": "ConfigIssue", "status": "True"}])),
        );
        assert_eq!(
            m.fail_job_message.as_deref(),
            Some("Pod ns/p has condition ConfigIssue matching FailJob rule at index 0")
        );
        let m = match_pod_failure_policy(
            Some(&p),
            &failed_pod(&[], json!([{"type": "ConfigIssue", "status": "False"}])),
        );
        assert_eq!(m.action, None);
    }
}
