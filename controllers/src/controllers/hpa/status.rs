//! What the HPA controller decides without a metrics API: the replica
//! count clamped into `[minReplicas, maxReplicas]` (upstream's rescale
//! reasons), and otherwise the `ScalingActive=False` condition with the
//! reason and message upstream reports when the resource metrics API
//! (`metrics.k8s.io`) cannot be reached.

use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscalerCondition, MetricSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// The outcome of one reconcile, before metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The target is scaled to zero while minReplicas is not: leave it.
    ScalingDisabled,
    /// Out of bounds: scale to this count, for this reason.
    Rescale(i32, &'static str),
    /// In bounds: the metrics decide.
    FromMetrics,
}

/// Upstream's checks before metrics are consulted.
pub fn decide(spec_replicas: i32, current: i32, min: i32, max: i32) -> Decision {
    if spec_replicas == 0 && min != 0 {
        Decision::ScalingDisabled
    } else if current > max {
        Decision::Rescale(max, "Current number of replicas above Spec.MaxReplicas")
    } else if current < min {
        Decision::Rescale(min, "Current number of replicas below Spec.MinReplicas")
    } else if current == 0 {
        Decision::Rescale(1, "Current number of replicas must be greater than 0")
    } else {
        Decision::FromMetrics
    }
}

/// The error fetching the first metric (all need the metrics API), as
/// upstream words it for a cluster without metrics-server.
pub fn metric_error(metrics: &[MetricSpec]) -> (&'static str, String) {
    const NO_API: &str = "the server could not find the requested resource";
    let Some(first) = metrics.first() else {
        // v2 defaulting: 80% CPU utilization.
        return (
            "FailedGetResourceMetric",
            format!(
                "failed to get cpu utilization: unable to get metrics for resource cpu: unable to fetch metrics from resource metrics API: {NO_API} (get pods.metrics.k8s.io)"
            ),
        );
    };
    match first.type_.as_str() {
        "Resource" | "ContainerResource" => {
            let (name, utilization) = first
                .resource
                .as_ref()
                .map(|r| (r.name.clone(), r.target.type_ == "Utilization"))
                .or_else(|| {
                    first
                        .container_resource
                        .as_ref()
                        .map(|r| (r.name.clone(), r.target.type_ == "Utilization"))
                })
                .unwrap_or_default();
            let what = if utilization { "utilization" } else { "usage" };
            let reason = if first.type_ == "Resource" {
                "FailedGetResourceMetric"
            } else {
                "FailedGetContainerResourceMetric"
            };
            (
                reason,
                format!(
                    "failed to get {name} {what}: unable to get metrics for resource {name}: unable to fetch metrics from resource metrics API: {NO_API} (get pods.metrics.k8s.io)"
                ),
            )
        }
        "Pods" => (
            "FailedGetPodsMetric",
            format!("unable to get metric: {NO_API} (get pods.custom.metrics.k8s.io)"),
        ),
        "Object" => (
            "FailedGetObjectMetric",
            format!("unable to get metric: {NO_API} (get custom.metrics.k8s.io)"),
        ),
        "External" => (
            "FailedGetExternalMetric",
            format!("unable to get external metric: {NO_API} (get external.metrics.k8s.io)"),
        ),
        other => (
            "InvalidMetricSourceType",
            format!("unknown metric source type {other:?}"),
        ),
    }
}

/// Sets condition `type_`, keeping its transition time when the status
/// does not change (upstream's `setConditionInList`).
pub fn set_condition(
    conditions: &mut Vec<HorizontalPodAutoscalerCondition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    now: Timestamp,
) {
    let status = if status { "True" } else { "False" }.to_string();
    let existing = conditions.iter_mut().find(|c| c.type_ == type_);
    match existing {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = Some(Time(now));
            }
            c.status = status;
            c.reason = Some(reason.into());
            c.message = Some(message);
        }
        None => conditions.push(HorizontalPodAutoscalerCondition {
            type_: type_.into(),
            status,
            reason: Some(reason.into()),
            message: Some(message),
            last_transition_time: Some(Time(now)),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn decisions_clamp_like_upstream() {
        assert_eq!(decide(0, 0, 1, 5), Decision::ScalingDisabled);
        assert_eq!(
            decide(0, 0, 0, 5),
            Decision::Rescale(1, "Current number of replicas must be greater than 0")
        );
        assert_eq!(
            decide(7, 7, 1, 5),
            Decision::Rescale(5, "Current number of replicas above Spec.MaxReplicas")
        );
        assert_eq!(
            decide(1, 1, 2, 5),
            Decision::Rescale(2, "Current number of replicas below Spec.MinReplicas")
        );
        assert_eq!(decide(3, 3, 1, 5), Decision::FromMetrics);
    }

    #[test]
    fn metric_errors_name_the_missing_api() {
        let (reason, msg) = metric_error(&[]);
        assert_eq!(reason, "FailedGetResourceMetric");
        assert_eq!(
            msg,
            "failed to get cpu utilization: unable to get metrics for resource cpu: unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)"
        );
        let memory: MetricSpec = serde_json::from_value(serde_json::json!({"type": "Resource",
            "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}}))
        .unwrap();
        assert!(metric_error(&[memory]).1.starts_with("failed to get memory usage: "));
    }

    #[test]
    fn conditions_keep_transition_time() {
        let t1 = Timestamp::from_second(1).unwrap();
        let t2 = Timestamp::from_second(2).unwrap();
        let mut c = Vec::new();
        set_condition(&mut c, "AbleToScale", true, "SucceededGetScale", "m".into(), t1);
        set_condition(&mut c, "AbleToScale", true, "SucceededGetScale", "m".into(), t2);
        assert_eq!(c[0].last_transition_time, Some(Time(t1)));
        set_condition(&mut c, "AbleToScale", false, "FailedGetScale", "x".into(), t2);
        assert_eq!(c[0].last_transition_time, Some(Time(t2)));
        assert_eq!(c.len(), 1);
    }
}
