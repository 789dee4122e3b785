//! Conversion between the version a client speaks and the version a
//! resource is stored in, for resources whose versions differ in shape.
//!
//! Every resource is stored in one version (the first, preferred one in the
//! resource table). Most resources have one version, or versions of the
//! same shape; the exception among the served built-ins is
//! HorizontalPodAutoscaler, stored as `autoscaling/v2` and also served as
//! `autoscaling/v1` ([`hpa`]). `events.k8s.io/v1` Events share the core/v1
//! Events' store and are kept in core/v1's shape ([`events`]). Requests are
//! converted to the stored version on the way in and responses, lists and
//! watch events back to the requested version on the way out.

pub mod events;
pub mod hpa;

use std::sync::Arc;

use crate::registry::object::Object;
use crate::registry::strategy::Strategy;
use crate::resources::ResourceInfo;

/// Whether objects served at `info`'s version differ from the stored form.
pub fn needed(info: &ResourceInfo) -> bool {
    conversion(info).is_some()
}

/// The conversions between a served version and its stored form.
enum Conversion {
    /// `autoscaling/v1` HorizontalPodAutoscalers, stored as `autoscaling/v2`.
    HpaV1,
    /// `events.k8s.io/v1` Events, stored as core/v1 Events.
    EventsV1,
}

fn conversion(info: &ResourceInfo) -> Option<Conversion> {
    match (info.group.as_str(), info.resource.as_str(), info.version.as_str()) {
        ("autoscaling", "horizontalpodautoscalers", "v1") => Some(Conversion::HpaV1),
        ("events.k8s.io", "events", _) => Some(Conversion::EventsV1),
        _ => None,
    }
}

/// The strategy of a resource kept in another resource's store (`owner`):
/// the owner's strategy, with the validation the resource's own API adds.
pub fn shared_store_strategy(group: &str, resource: &str, owner: &ResourceInfo) -> Arc<dyn Strategy> {
    match (group, resource) {
        ("events.k8s.io", "events") => Arc::new(events::EventsV1OverCore(crate::registry::kinds::default_traits(
            &owner.group,
            &owner.resource,
        ))),
        _ => crate::registry::kinds::strategy_for(owner),
    }
}

/// Converts an object sent at `info`'s version to the stored version.
pub fn to_storage(info: &ResourceInfo, obj: Object) -> Object {
    match conversion(info) {
        Some(Conversion::HpaV1) => hpa::v1_to_v2(obj),
        Some(Conversion::EventsV1) => events::v1_to_core(obj),
        None => obj,
    }
}

/// Converts a stored object to `info`'s version.
pub fn from_storage(info: &ResourceInfo, obj: Object) -> Object {
    match conversion(info) {
        Some(Conversion::HpaV1) => hpa::v2_to_v1(obj),
        Some(Conversion::EventsV1) => events::core_to_v1(obj),
        None => obj,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use axum::http::StatusCode;
    use serde_json::{Value, json};

    use crate::testing::TestServer;

    const V1: &str = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers";
    const V2: &str = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers";

    #[tokio::test]
    async fn hpa_is_served_in_both_versions() {
        let s = TestServer::new().await;
        let (code, created) = s
            .post(
                V1,
                json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "a"},
                       "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
                                "maxReplicas": 4, "targetCPUUtilizationPercentage": 70}}),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{created}");
        assert_eq!(created["apiVersion"], "autoscaling/v1");
        assert_eq!(created["spec"]["targetCPUUtilizationPercentage"], 70);
        assert!(created["spec"].get("metrics").is_none());

        let (_, as_v2) = s.get(&format!("{V2}/a")).await;
        assert_eq!(as_v2["apiVersion"], "autoscaling/v2");
        assert_eq!(
            as_v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            70
        );
        assert!(as_v2["spec"].get("targetCPUUtilizationPercentage").is_none());

        let (code, created) = s
            .post(
                V2,
                json!({"metadata": {"name": "b"}, "spec": {
                    "scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
                    "maxReplicas": 4, "metrics": [
                        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}}]}}),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{created}");
        let (_, as_v1) = s.get(&format!("{V1}/b")).await;
        assert_eq!(as_v1["apiVersion"], "autoscaling/v1");
        let annotation = as_v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/metrics"]
            .as_str()
            .unwrap();
        assert!(annotation.contains("\"metricName\":\"qps\""), "{annotation}");

        // A v1 update keeps what only v2 can say.
        let mut body = as_v1.clone();
        body["spec"]["maxReplicas"] = json!(6);
        let (code, updated) = s.put(&format!("{V1}/b"), body).await;
        assert_eq!(code, StatusCode::OK, "{updated}");
        let (_, as_v2) = s.get(&format!("{V2}/b")).await;
        assert_eq!(as_v2["spec"]["maxReplicas"], 6);
        assert_eq!(as_v2["spec"]["metrics"][0]["pods"]["metric"]["name"], "qps");
        assert!(as_v2["metadata"].get("annotations").is_none(), "{as_v2}");

        // A v1 merge patch.
        let (code, patched) = s
            .patch(
                &format!("{V1}/a"),
                "application/merge-patch+json",
                json!({"spec": {"targetCPUUtilizationPercentage": 55}}),
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{patched}");
        assert_eq!(patched["spec"]["targetCPUUtilizationPercentage"], 55);
        let (_, as_v2) = s.get(&format!("{V2}/a")).await;
        assert_eq!(
            as_v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            55
        );

        // Lists and watches at v1.
        s.registry().cache.wait_ready().await;
        let (_, list) = s.get(V1).await;
        assert_eq!(list["apiVersion"], "autoscaling/v1");
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["spec"]["targetCPUUtilizationPercentage"], 55);
        let (code, events) = s.get(&format!("{V1}?watch=1&timeoutSeconds=1")).await;
        assert_eq!(code, StatusCode::OK);
        let text = match events {
            Value::String(t) => t,
            other => other.to_string(),
        };
        let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["object"]["apiVersion"], "autoscaling/v1");
        assert_eq!(first["object"]["spec"]["targetCPUUtilizationPercentage"], 55);
    }
}
