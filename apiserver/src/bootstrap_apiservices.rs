//! The local APIServices kube-apiserver's aggregator registers at start: one
//! per served group/version (`v1.`, `v1.apps`, `v2.autoscaling`, ...), with
//! no `spec.service` and upstream's group and version priorities, marked
//! `Available=True` with reason `Local` — so `kubectl get apiservices` lists
//! what upstream lists.
//!
//! Like upstream's autoregister controller ("sync on start"), an APIService
//! is created when missing and its spec put back when it carries the
//! `kube-aggregator.kubernetes.io/automanaged: onstart` label and differs; an
//! APIService without that label (a user took the name over) is left alone.
//! A group/version without a known priority gets no APIService, as upstream;
//! that includes `apiregistration.k8s.io` itself, which the aggregator
//! serves directly.

use serde_json::{Value, json};

use crate::registry::Registry;
use crate::registry::object::{self, Object};
use crate::registry::store::{CreateOptions, UpdateOptions, UpdateTarget};
use crate::status::ApiError;

/// The label upstream's autoregister controller manages its APIServices by.
pub const AUTOMANAGED_LABEL: &str = "kube-aggregator.kubernetes.io/automanaged";

/// `(group, version, groupPriorityMinimum, versionPriority)` of upstream
/// v1.36's served versions (`DefaultGenericAPIServicePriorities` merged with
/// kube-apiserver's own table).
pub const PRIORITIES: &[(&str, &str, i64, i64)] = &[
    ("", "v1", 18000, 1),
    ("apps", "v1", 17800, 15),
    ("events.k8s.io", "v1", 17750, 15),
    ("authentication.k8s.io", "v1", 17700, 15),
    ("authorization.k8s.io", "v1", 17600, 15),
    ("autoscaling", "v1", 17500, 15),
    ("autoscaling", "v2", 17500, 30),
    ("batch", "v1", 17400, 15),
    ("certificates.k8s.io", "v1", 17300, 15),
    ("networking.k8s.io", "v1", 17200, 15),
    ("policy", "v1", 17100, 15),
    ("rbac.authorization.k8s.io", "v1", 17000, 15),
    ("storage.k8s.io", "v1", 16800, 15),
    ("apiextensions.k8s.io", "v1", 16700, 15),
    ("admissionregistration.k8s.io", "v1", 16700, 15),
    ("scheduling.k8s.io", "v1", 16600, 15),
    ("coordination.k8s.io", "v1", 16500, 15),
    ("node.k8s.io", "v1", 16300, 15),
    ("discovery.k8s.io", "v1", 16200, 15),
    // resource.k8s.io shares 16200 with discovery upstream; v1 sits above
    // v1beta2 (15).
    ("resource.k8s.io", "v1", 16200, 21),
    ("flowcontrol.apiserver.k8s.io", "v1", 16100, 21),
];

/// The APIService of a group/version, when upstream registers one.
pub fn local_api_service(group: &str, version: &str) -> Option<Object> {
    let &(_, _, group_min, version_priority) = PRIORITIES.iter().find(|p| p.0 == group && p.1 == version)?;
    match json!({
        "metadata": {
            "name": format!("{version}.{group}"),
            "labels": {AUTOMANAGED_LABEL: "onstart"},
        },
        "spec": {
            "group": group,
            "version": version,
            "groupPriorityMinimum": group_min,
            "versionPriority": version_priority,
        },
    }) {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// Whether `obj` has an `Available=True` condition with reason `Local`.
fn is_available_local(obj: &Object) -> bool {
    obj.get("status")
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Available" && c["status"] == "True" && c["reason"] == "Local")
        })
}

/// Creates or resyncs the local APIService of every group/version the
/// registry serves.
pub async fn ensure_local_api_services(registry: &Registry) -> Result<(), ApiError> {
    let Some(store) = registry.store("apiregistration.k8s.io", "apiservices") else {
        return Ok(());
    };
    for (group, versions) in registry.resources.groups() {
        for version in versions {
            let Some(wanted) = local_api_service(&group, &version) else {
                tracing::info!(group, version, "skipping APIService creation: no known priority");
                continue;
            };
            let name = object::name(&wanted).to_string();
            let current = match store.get("", &name).await {
                Ok(current) => current,
                Err(e) if e.code == 404 => match store.create("", wanted.clone(), &CreateOptions::default()).await {
                    Ok(created) => {
                        tracing::info!(api_service = name, "created local APIService");
                        created
                    }
                    Err(e) if e.code == 409 => store.get("", &name).await?,
                    Err(e) => return Err(e),
                },
                Err(e) => return Err(e),
            };
            let managed = object::labels(&current).get(AUTOMANAGED_LABEL).map(String::as_str) == Some("onstart");
            if !managed {
                continue;
            }
            if current.get("spec") != wanted.get("spec") {
                let spec = wanted.get("spec").cloned().unwrap_or(Value::Null);
                store
                    .update_with(
                        "",
                        &name,
                        &UpdateOptions::default(),
                        |old| {
                            let mut new = old.clone();
                            new.insert("spec".into(), spec.clone());
                            Ok(new)
                        },
                        None,
                    )
                    .await?;
            }
            if !is_available_local(&current) {
                set_available_local(store, &name).await?;
            }
        }
    }
    Ok(())
}

/// Upstream's availability controller's verdict on a local APIService.
async fn set_available_local(store: &crate::registry::store::GenericStore, name: &str) -> Result<(), ApiError> {
    let opts = UpdateOptions {
        dry_run: false,
        target: UpdateTarget::Status,
    };
    store
        .update_with(
            "",
            name,
            &opts,
            |old| {
                let mut new = old.clone();
                new.insert(
                    "status".into(),
                    json!({"conditions": [{
                        "type": "Available",
                        "status": "True",
                        "lastTransitionTime": object::now_rfc3339(),
                        "reason": "Local",
                        "message": "Local APIServices are always available",
                    }]}),
                );
                Ok(new)
            },
            None,
        )
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testing::TestServer;
    use axum::http::StatusCode;

    const PATH: &str = "/apis/apiregistration.k8s.io/v1/apiservices";

    #[tokio::test]
    async fn one_local_api_service_per_served_group_version() {
        let s = TestServer::new().await;
        ensure_local_api_services(s.registry()).await.unwrap();
        ensure_local_api_services(s.registry()).await.unwrap();
        let (code, body) = s.get(PATH).await;
        assert_eq!(code, StatusCode::OK, "{body}");
        let mut names: Vec<String> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        let mut expected: Vec<String> = s
            .registry()
            .resources
            .groups()
            .into_iter()
            .flat_map(|(g, vs)| vs.into_iter().map(move |v| format!("{v}.{g}")))
            // The aggregator serves its own group: upstream has no priority
            // for it, so no APIService.
            .filter(|n| n != "v1.apiregistration.k8s.io")
            .collect();
        expected.sort();
        assert_eq!(names, expected);
        for name in [
            "v1.",
            "v1.apps",
            "v2.autoscaling",
            "v1.flowcontrol.apiserver.k8s.io",
            "v1.resource.k8s.io",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} missing from {names:?}");
        }
        let (code, core) = s.get(&format!("{PATH}/v1.")).await;
        assert_eq!(code, StatusCode::OK, "{core}");
        assert_eq!(
            core["spec"],
            json!({"group": "", "version": "v1", "groupPriorityMinimum": 18000, "versionPriority": 1})
        );
        assert_eq!(core["metadata"]["labels"][AUTOMANAGED_LABEL], "onstart");
        let cond = &core["status"]["conditions"][0];
        assert_eq!(
            (&cond["type"], &cond["status"], &cond["reason"], &cond["message"]),
            (
                &json!("Available"),
                &json!("True"),
                &json!("Local"),
                &json!("Local APIServices are always available")
            )
        );
        // Another start does not write: the object is as it was.
        ensure_local_api_services(s.registry()).await.unwrap();
        let (_, again) = s.get(&format!("{PATH}/v1.")).await;
        assert_eq!(
            again["metadata"]["resourceVersion"],
            core["metadata"]["resourceVersion"]
        );
        let (_, hpa) = s.get(&format!("{PATH}/v2.autoscaling")).await;
        assert_eq!(hpa["spec"]["versionPriority"], 30);
    }

    #[tokio::test]
    async fn managed_specs_are_put_back_and_unmanaged_left_alone() {
        let s = TestServer::new().await;
        ensure_local_api_services(s.registry()).await.unwrap();
        let merge = "application/merge-patch+json";
        let (code, body) = s
            .patch(
                &format!("{PATH}/v1.apps"),
                merge,
                json!({"spec": {"versionPriority": 3}}),
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
        let (code, body) = s
            .patch(
                &format!("{PATH}/v1.batch"),
                merge,
                json!({"metadata": {"labels": {AUTOMANAGED_LABEL: null}}, "spec": {"versionPriority": 4}}),
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
        ensure_local_api_services(s.registry()).await.unwrap();
        let (_, apps) = s.get(&format!("{PATH}/v1.apps")).await;
        assert_eq!(apps["spec"]["versionPriority"], 15);
        let (_, batch) = s.get(&format!("{PATH}/v1.batch")).await;
        assert_eq!(batch["spec"]["versionPriority"], 4);
    }

    #[test]
    fn unknown_group_versions_get_none() {
        assert!(local_api_service("example.com", "v1").is_none());
        assert_eq!(object::name(&local_api_service("batch", "v1").unwrap()), "v1.batch");
    }
}
