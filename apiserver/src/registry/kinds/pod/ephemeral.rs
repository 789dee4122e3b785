//! The `pods/ephemeralcontainers` subresource (what `kubectl debug` uses):
//! only `spec.ephemeralContainers` changes, containers may be added but
//! never changed or removed, and an ephemeral container may not carry what
//! only regular containers have (ports, probes, lifecycle, resources).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::registry::object::Object;
use crate::validation::pod_spec::containers::validate_container;
use crate::validation::pod_spec::fields::{arr, str_at};
use crate::validation::{FieldError, FieldErrors};

/// Fields an ephemeral container may not set.
const FORBIDDEN: &[&str] = &[
    "ports",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "resources",
    "resizePolicy",
    "restartPolicy",
];

/// Upstream's ValidatePodEphemeralContainersUpdate: `new` is the stored pod
/// with the request's `spec.ephemeralContainers`.
pub fn validate_update(new: &Object, old: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let spec = new.get("spec");
    let old_spec = old.get("spec");
    let new_list = arr(spec, "ephemeralContainers");
    let old_list = arr(old_spec, "ephemeralContainers");

    // Existing ones stay as they are.
    for oc in old_list {
        let name = str_at(Some(oc), "name");
        match new_list.iter().position(|c| str_at(Some(c), "name") == name) {
            None => errs.push(FieldError::forbidden(
                "spec.ephemeralContainers",
                format!("existing ephemeral containers {name:?} may not be removed"),
            )),
            Some(i) if &new_list[i] != oc => errs.push(FieldError::forbidden(
                format!("spec.ephemeralContainers[{i}]"),
                format!("existing ephemeral containers {name:?} may not be changed"),
            )),
            Some(_) => {}
        }
    }

    // Every ephemeral container is a valid container with a unique name.
    let mut names: BTreeSet<String> = ["initContainers", "containers"]
        .iter()
        .flat_map(|l| arr(spec, l))
        .map(|c| str_at(Some(c), "name").to_string())
        .collect();
    let targets = names.clone();
    let volumes: BTreeSet<String> = arr(spec, "volumes")
        .iter()
        .map(|v| str_at(Some(v), "name").to_string())
        .collect();
    for (i, c) in new_list.iter().enumerate() {
        let path = format!("spec.ephemeralContainers[{i}]");
        validate_container(c, &path, false, &volumes, &mut names, &mut errs);
        for field in FORBIDDEN {
            if c.get(*field)
                .is_some_and(|v| !v.is_null() && v != &Value::Object(Default::default()))
            {
                errs.push(FieldError::forbidden(
                    format!("{path}.{field}"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
        let target = str_at(Some(c), "targetContainerName");
        if !target.is_empty() && !targets.contains(target) {
            errs.push(FieldError::new(
                crate::validation::ErrorType::NotFound,
                format!("{path}.targetContainerName"),
                Some(Value::String(target.to_string())),
                "",
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use axum::http::StatusCode;
    use serde_json::json;

    use crate::testing::TestServer;

    const POD: &str = "/api/v1/namespaces/default/pods/p";

    async fn server_with_pod() -> TestServer {
        let s = TestServer::new().await;
        let (code, body) = s
            .post(
                "/api/v1/namespaces/default/pods",
                json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app", "image": "busybox"}]}}),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        s
    }

    #[tokio::test]
    async fn add_through_patch_and_put_then_never_change() {
        let s = server_with_pod().await;
        // kubectl debug: a strategic merge patch of the subresource.
        let (code, pod) = s
            .patch(
                &format!("{POD}/ephemeralcontainers"),
                "application/strategic-merge-patch+json",
                json!({"spec": {"ephemeralContainers": [{"name": "debugger", "image": "busybox",
                    "targetContainerName": "app", "stdin": true, "tty": true}]}}),
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{pod}");
        assert_eq!(pod["kind"], "Pod");
        let e = &pod["spec"]["ephemeralContainers"][0];
        assert_eq!(e["name"], "debugger");
        assert_eq!(e["terminationMessagePolicy"], "File", "defaulted: {e}");
        // Only ephemeral containers change through the subresource.
        let mut body = pod.clone();
        body["spec"]["containers"][0]["image"] = json!("other");
        body["metadata"]["labels"] = json!({"x": "y"});
        body["spec"]["ephemeralContainers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "second", "image": "busybox"}));
        let (code, pod) = s.put(&format!("{POD}/ephemeralcontainers"), body).await;
        assert_eq!(code, StatusCode::OK, "{pod}");
        assert_eq!(pod["spec"]["containers"][0]["image"], "busybox");
        assert!(pod["metadata"].get("labels").is_none());
        assert_eq!(pod["spec"]["ephemeralContainers"].as_array().unwrap().len(), 2);

        // Changing or removing one is forbidden.
        let mut changed = pod.clone();
        changed["spec"]["ephemeralContainers"][0]["image"] = json!("other");
        let (code, err) = s.put(&format!("{POD}/ephemeralcontainers"), changed).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            err["message"],
            "Pod \"p\" is invalid: spec.ephemeralContainers[0]: Forbidden: existing ephemeral containers \"debugger\" may not be changed"
        );
        let mut removed = pod.clone();
        removed["spec"]["ephemeralContainers"].as_array_mut().unwrap().remove(1);
        let (code, err) = s.put(&format!("{POD}/ephemeralcontainers"), removed).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("\"second\" may not be removed"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn invalid_ephemeral_containers() {
        let s = server_with_pod().await;
        let (code, err) = s
            .patch(
                &format!("{POD}/ephemeralcontainers"),
                "application/strategic-merge-patch+json",
                json!({"spec": {"ephemeralContainers": [
                    {"name": "app", "image": "busybox", "ports": [{"containerPort": 80}]},
                    {"name": "d", "image": "busybox", "targetContainerName": "nope"}]}}),
            )
            .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        let fields: Vec<&str> = err["details"]["causes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["field"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "spec.ephemeralContainers[0].name",
                "spec.ephemeralContainers[0].ports",
                "spec.ephemeralContainers[1].targetContainerName"
            ],
            "{err}"
        );
        // Not through the main resource either.
        let (_, pod) = s.get(POD).await;
        let mut body = pod.clone();
        body["spec"]["ephemeralContainers"] = json!([{"name": "d", "image": "busybox"}]);
        let (code, _) = s.put(POD, body).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    }
}
