//! The built-in PriorityClasses kube-apiserver creates at start:
//! `system-node-critical` and `system-cluster-critical`.

use serde_json::json;

use crate::registry::Registry;
use crate::registry::kinds::scheduling::priority_class::SYSTEM_PRIORITY_CLASSES;
use crate::registry::object::Object;
use crate::registry::store::CreateOptions;
use crate::status::ApiError;

/// Creates the built-in priority classes that do not exist yet (an existing
/// one is left as it is).
pub async fn ensure_priority_classes(registry: &Registry) -> Result<(), ApiError> {
    let Some(store) = registry.store("scheduling.k8s.io", "priorityclasses") else {
        return Ok(());
    };
    for class in SYSTEM_PRIORITY_CLASSES {
        let obj: Object = match json!({
            "metadata": {"name": class.name},
            "value": class.value,
            "description": class.description,
        }) {
            serde_json::Value::Object(m) => m,
            _ => continue,
        };
        match store.create("", obj, &CreateOptions::default()).await {
            Ok(_) => tracing::info!(priority_class = class.name, "created system priority class"),
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testing::TestServer;
    use axum::http::StatusCode;

    #[tokio::test]
    async fn creates_the_built_in_classes_once() {
        let s = TestServer::new().await;
        ensure_priority_classes(s.registry()).await.unwrap();
        ensure_priority_classes(s.registry()).await.unwrap();
        let path = "/apis/scheduling.k8s.io/v1/priorityclasses";
        let (code, body) = s.get(&format!("{path}/system-node-critical")).await;
        assert_eq!(code, StatusCode::OK, "{body}");
        assert_eq!(body["value"], 2_000_001_000);
        assert_eq!(body["preemptionPolicy"], "PreemptLowerPriority");
        let (_, body) = s.get(&format!("{path}/system-cluster-critical")).await;
        assert_eq!(body["value"], 2_000_000_000);
        // The value of an existing class cannot change, and a user cannot
        // take the prefix.
        let (code, body) = s
            .patch(
                &format!("{path}/system-cluster-critical"),
                "application/merge-patch+json",
                json!({"value": 5}),
            )
            .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(
            body["details"]["causes"][0]["message"],
            "Forbidden: may not be changed in an update."
        );
        let (code, body) = s
            .post(
                path,
                json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                    "metadata": {"name": "system-mine"}, "value": 10}),
            )
            .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
}
