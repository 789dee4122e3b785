//! The namespace deletion status conditions, as upstream's
//! `namespaceConditionUpdater` sets them: one condition per type, the
//! "ok" variant (status False) when nothing failed.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NamespaceCondition, NamespaceStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

pub const DISCOVERY_FAILURE: &str = "NamespaceDeletionDiscoveryFailure";
pub const GV_PARSING_FAILURE: &str = "NamespaceDeletionGroupVersionParsingFailure";
pub const CONTENT_FAILURE: &str = "NamespaceDeletionContentFailure";
pub const CONTENT_REMAINING: &str = "NamespaceContentRemaining";
pub const FINALIZERS_REMAINING: &str = "NamespaceFinalizersRemaining";

/// Maintained condition types, in upstream's order, with their ok reason
/// and message.
const TYPES: &[(&str, &str, &str)] = &[
    (
        DISCOVERY_FAILURE,
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        GV_PARSING_FAILURE,
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        CONTENT_FAILURE,
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (CONTENT_REMAINING, "ContentRemoved", "All content successfully removed"),
    (
        FINALIZERS_REMAINING,
        "ContentHasNoFinalizers",
        "All content-preserving finalizers finished",
    ),
];

/// Collects failures during one deletion pass, then writes the conditions.
#[derive(Debug, Default)]
pub struct ConditionUpdater {
    failing: Vec<NamespaceCondition>,
    delete_errors: Vec<String>,
}

fn condition(type_: &str, status: &str, reason: &str, message: String) -> NamespaceCondition {
    NamespaceCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: Some(Time(Timestamp::now())),
    }
}

impl ConditionUpdater {
    /// Discovery of some groups failed.
    pub fn discovery_failed(&mut self, failing: usize, err: &str) {
        self.failing.push(condition(
            DISCOVERY_FAILURE,
            "True",
            "DiscoveryFailed",
            format!("Discovery failed for some groups, {failing} failing: {err}"),
        ));
    }

    /// Deleting (or listing) one resource's content failed.
    pub fn delete_content_failed(&mut self, err: String) {
        self.delete_errors.push(err);
    }

    /// Remaining objects per `resource.group`, and remaining finalizers.
    pub fn content_totals(&mut self, remaining: &BTreeMap<String, usize>, finalizers: &BTreeMap<String, usize>) {
        let mut resources: Vec<String> = remaining
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(gr, n)| format!("{gr} has {n} resource instances"))
            .collect();
        resources.sort();
        if !remaining.is_empty() {
            self.failing.push(condition(
                CONTENT_REMAINING,
                "True",
                "SomeResourcesRemain",
                format!("Some resources are remaining: {}", resources.join(", ")),
            ));
        }
        let mut by_finalizer: Vec<String> = finalizers
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(f, n)| format!("{f} in {n} resource instances"))
            .collect();
        by_finalizer.sort();
        if !finalizers.is_empty() {
            self.failing.push(condition(
                FINALIZERS_REMAINING,
                "True",
                "SomeFinalizersRemain",
                format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    by_finalizer.join(", ")
                ),
            ));
        }
    }

    /// Writes the conditions into `status`; returns whether anything changed.
    pub fn update(mut self, status: &mut NamespaceStatus) -> bool {
        if !self.delete_errors.is_empty() && !self.failing.iter().any(|c| c.type_ == CONTENT_FAILURE) {
            let mut msgs = std::mem::take(&mut self.delete_errors);
            msgs.sort();
            self.failing.push(condition(
                CONTENT_FAILURE,
                "True",
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    msgs.len(),
                    msgs.join(", ")
                ),
            ));
        }
        let conditions = status.conditions.get_or_insert_with(Vec::new);
        let mut changed = false;
        for (type_, ok_reason, ok_message) in TYPES {
            let new = self
                .failing
                .iter()
                .find(|c| c.type_ == *type_)
                .cloned()
                .unwrap_or_else(|| condition(type_, "False", ok_reason, ok_message.to_string()));
            match conditions.iter_mut().find(|c| c.type_ == *type_) {
                None => {
                    conditions.push(new);
                    changed = true;
                }
                Some(old) if old.status != new.status || old.reason != new.reason || old.message != new.message => {
                    if old.status != new.status {
                        old.last_transition_time = new.last_transition_time.clone();
                    }
                    old.status = new.status;
                    old.reason = new.reason;
                    old.message = new.message;
                    changed = true;
                }
                Some(_) => {}
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn ok_conditions_then_failures() {
        let mut status = NamespaceStatus::default();
        assert!(ConditionUpdater::default().update(&mut status));
        let conds = status.conditions.clone().unwrap();
        assert_eq!(conds.len(), 5);
        assert!(conds.iter().all(|c| c.status == "False"));
        assert!(
            !ConditionUpdater::default().update(&mut status),
            "no change the second time"
        );

        let mut u = ConditionUpdater::default();
        u.content_totals(
            &BTreeMap::from([("pods".to_string(), 2), ("replicasets.apps".to_string(), 1)]),
            &BTreeMap::from([("foregroundDeletion".to_string(), 1)]),
        );
        u.delete_content_failed("boom".into());
        assert!(u.update(&mut status));
        let get = |t: &str| {
            status
                .conditions
                .as_ref()
                .unwrap()
                .iter()
                .find(|c| c.type_ == t)
                .cloned()
                .unwrap()
        };
        assert_eq!(
            get(CONTENT_REMAINING).message.as_deref(),
            Some(
                "Some resources are remaining: pods has 2 resource instances, replicasets.apps has 1 resource instances"
            )
        );
        assert_eq!(
            get(FINALIZERS_REMAINING).message.as_deref(),
            Some("Some content in the namespace has finalizers remaining: foregroundDeletion in 1 resource instances")
        );
        assert_eq!(get(CONTENT_FAILURE).reason.as_deref(), Some("ContentDeletionFailed"));
        assert_eq!(
            get(CONTENT_FAILURE).message.as_deref(),
            Some("Failed to delete all resource types, 1 remaining: boom")
        );
        assert_eq!(get(DISCOVERY_FAILURE).status, "False");
    }
}
