//! The pods a Job creates: its template plus the tracking finalizer and a
//! controller reference; for Indexed Jobs also the completion index
//! (annotation, label, `JOB_COMPLETION_INDEX`, hostname `<job>-<index>`,
//! name `<job>-<index>-<random>`) and, with `backoffLimitPerIndex`, the
//! index's failure counts carried over from the pod it replaces.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::failure_policy::match_pod_failure_policy;
use super::indexes::{COMPLETION_INDEX_ANNOTATION, generate_name_with_index};
use crate::cached_pod::CachedPod;
use crate::controllers::controller_ref::new_controller_ref;

/// The finalizer that keeps a finished pod until the Job counted it.
pub const JOB_TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// Failures of the index before this pod (backoffLimitPerIndex).
pub const INDEX_FAILURE_COUNT_ANNOTATION: &str = "batch.kubernetes.io/job-index-failure-count";
/// Failures of the index the pod failure policy ignored.
pub const INDEX_IGNORED_FAILURE_COUNT_ANNOTATION: &str = "batch.kubernetes.io/job-index-ignored-failure-count";
/// The environment variable holding the completion index.
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// Whether the pod carries the tracking finalizer.
pub fn has_tracking_finalizer(pod: &CachedPod) -> bool {
    pod.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == JOB_TRACKING_FINALIZER))
}

fn annotation_count(pod: &CachedPod, key: &str) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|v| *v >= 0)
        .unwrap_or(0)
}

/// The index failures recorded on `pod` (before it ran).
pub fn index_failure_count(pod: &CachedPod) -> i32 {
    annotation_count(pod, INDEX_FAILURE_COUNT_ANNOTATION)
}

/// The counts a replacement of the failed `replaced` pod starts with.
pub fn new_index_failure_counts(job: &Job, replaced: Option<&CachedPod>) -> (i32, i32) {
    let Some(p) = replaced else { return (0, 0) };
    let failures = index_failure_count(p);
    let ignored = annotation_count(p, INDEX_IGNORED_FAILURE_COUNT_ANNOTATION);
    let policy = job.spec.as_ref().and_then(|s| s.pod_failure_policy.as_ref());
    if match_pod_failure_policy(policy, p).count_failed {
        (failures.saturating_add(1), ignored)
    } else {
        (failures, ignored.saturating_add(1))
    }
}

fn add_index_env(c: &mut Container) {
    let env = c.env.get_or_insert_with(Vec::new);
    if env.iter().any(|e| e.name == COMPLETION_INDEX_ENV) {
        return;
    }
    env.push(EnvVar {
        name: COMPLETION_INDEX_ENV.into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: format!("metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"),
            }),
            ..EnvVarSource::default()
        }),
    });
}

/// The pod to create for `job`; `index` for Indexed Jobs, with the pod it
/// replaces when per-index back-off applies.
pub fn pod_for_job(job: &Job, index: Option<i32>, replaced: Option<&CachedPod>) -> Pod {
    let name = job.metadata.name.clone().unwrap_or_default();
    let template = job.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut spec = template.spec.unwrap_or_default();
    let mut labels = meta.labels.unwrap_or_default();
    let mut annotations: BTreeMap<String, String> = meta.annotations.unwrap_or_default();
    let mut finalizers = meta.finalizers.unwrap_or_default();
    if !finalizers.iter().any(|f| f == JOB_TRACKING_FINALIZER) {
        finalizers.push(JOB_TRACKING_FINALIZER.into());
    }
    let mut generate_name = format!("{name}-");
    if let Some(ix) = index {
        for c in spec.containers.iter_mut() {
            add_index_env(c);
        }
        for c in spec.init_containers.iter_mut().flatten() {
            add_index_env(c);
        }
        annotations.insert(COMPLETION_INDEX_ANNOTATION.into(), ix.to_string());
        labels.insert(COMPLETION_INDEX_ANNOTATION.into(), ix.to_string());
        if spec.hostname.as_deref().is_none_or(str::is_empty) {
            spec.hostname = Some(format!("{name}-{ix}"));
        }
        generate_name = generate_name_with_index(&name, ix);
        if job.spec.as_ref().is_some_and(|s| s.backoff_limit_per_index.is_some()) {
            let (failures, ignored) = new_index_failure_counts(job, replaced);
            annotations.insert(INDEX_FAILURE_COUNT_ANNOTATION.into(), failures.to_string());
            if ignored > 0 {
                annotations.insert(INDEX_IGNORED_FAILURE_COUNT_ANNOTATION.into(), ignored.to_string());
            }
        }
    }
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            namespace: job.metadata.namespace.clone(),
            labels: (!labels.is_empty()).then_some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            finalizers: Some(finalizers),
            owner_references: Some(vec![new_controller_ref(&job.metadata, "batch/v1", "Job")]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn job(extra: serde_json::Value) -> Job {
        let mut spec = json!({"template": {"metadata": {"labels": {"app": "a"}},
                  "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}});
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        serde_json::from_value(json!({"metadata": {"name": "pi", "namespace": "ns", "uid": "u1"}, "spec": spec}))
            .unwrap()
    }

    #[test]
    fn non_indexed_pods_get_the_finalizer_and_owner() {
        let p = pod_for_job(&job(json!({})), None, None);
        assert_eq!(p.metadata.generate_name.as_deref(), Some("pi-"));
        assert_eq!(p.metadata.finalizers, Some(vec![JOB_TRACKING_FINALIZER.to_string()]));
        let owner = &p.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("Job", "u1", Some(true))
        );
        assert_eq!(p.metadata.labels.unwrap()["app"], "a");
        assert!(p.spec.unwrap().containers[0].env.is_none());
    }

    #[test]
    fn indexed_pods_carry_their_index() {
        let j = job(json!({"completionMode": "Indexed", "completions": 3}));
        let p = pod_for_job(&j, Some(2), None);
        assert_eq!(p.metadata.generate_name.as_deref(), Some("pi-2-"));
        assert_eq!(
            p.metadata.annotations.as_ref().unwrap()[COMPLETION_INDEX_ANNOTATION],
            "2"
        );
        assert_eq!(p.metadata.labels.as_ref().unwrap()[COMPLETION_INDEX_ANNOTATION], "2");
        assert!(
            !p.metadata
                .annotations
                .as_ref()
                .unwrap()
                .contains_key(INDEX_FAILURE_COUNT_ANNOTATION)
        );
        let spec = p.spec.unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("pi-2"));
        let env = &spec.containers[0].env.as_ref().unwrap()[0];
        assert_eq!(env.name, COMPLETION_INDEX_ENV);
        assert_eq!(
            env.value_from.as_ref().unwrap().field_ref.as_ref().unwrap().field_path,
            "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        );
    }

    #[test]
    fn per_index_failure_counts_carry_over() {
        let j = job(
            json!({"completionMode": "Indexed", "completions": 3, "backoffLimitPerIndex": 2,
            "podFailurePolicy": {"rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}}]}}),
        );
        let failed = |code: i32, count: &str| -> CachedPod {
            serde_json::from_value(json!({
                "metadata": {"name": "old", "annotations": {INDEX_FAILURE_COUNT_ANNOTATION: count}},
                "status": {"phase": "Failed", "containerStatuses": [{"name": "c", "ready": false, "restartCount": 0,
                    "image": "i", "imageID": "", "state": {"terminated": {"exitCode": code}}}]},
            }))
            .unwrap()
        };
        let first = pod_for_job(&j, Some(1), None);
        assert_eq!(
            first.metadata.annotations.as_ref().unwrap()[INDEX_FAILURE_COUNT_ANNOTATION],
            "0"
        );
        let p = pod_for_job(&j, Some(1), Some(&failed(1, "1")));
        let a = p.metadata.annotations.unwrap();
        assert_eq!(a[INDEX_FAILURE_COUNT_ANNOTATION], "2");
        assert!(!a.contains_key(INDEX_IGNORED_FAILURE_COUNT_ANNOTATION));
        let p = pod_for_job(&j, Some(1), Some(&failed(3, "1")));
        let a = p.metadata.annotations.unwrap();
        assert_eq!(a[INDEX_FAILURE_COUNT_ANNOTATION], "1");
        assert_eq!(a[INDEX_IGNORED_FAILURE_COUNT_ANNOTATION], "1");
    }
}
