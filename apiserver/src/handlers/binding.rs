//! `pods/binding` and `bindings`: assigning a pending pod to a node (what a
//! scheduler does). The pod's `spec.nodeName` is set directly in storage,
//! bypassing the pod strategy (which forbids changing it), together with
//! the binding's annotations and a true `PodScheduled` condition.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::registry::object::{self, Object};
use crate::status::{ApiError, GroupResource};
use crate::validation::{FieldError, FieldErrors};

use super::body;
use super::crud::Ctx;
use super::response;

const BINDING: GroupResource<'static> = GroupResource {
    group: "",
    resource: "pods/binding",
};

/// Serves `POST .../pods/{name}/binding` and `POST .../bindings`; the pod
/// store comes from the caller.
pub async fn create(ctx: &Ctx<'_>, req: Request) -> Result<Response, ApiError> {
    let dry_run = ctx.params.dry_run()?;
    let (parts, body) = req.into_parts();
    let bytes = body::read(body).await?;
    let binding = body::decode_object(&parts.headers, &bytes)?.object;
    check_kind(&binding)?;
    let name = object::name(&binding).to_string();
    // The subresource names its pod in the URL; the `bindings` resource
    // only in the body.
    if ctx.info.subresource == "binding" && ctx.info.name != name {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Binding object",
        ));
    }
    let errs = validate(&binding);
    if !errs.is_empty() {
        return Err(ApiError::invalid("", "Binding", &name, &errs));
    }
    let body_ns = object::namespace(&binding);
    if !body_ns.is_empty() && body_ns != ctx.namespace {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let node = binding
        .get("target")
        .and_then(|t| t.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let annotations = object::meta(&binding)
        .get("annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let precondition_uid = object::uid(&binding).to_string();
    let precondition_rv = object::resource_version(&binding).to_string();
    let pods = ctx
        .state
        .registry
        .store("", "pods")
        .ok_or_else(|| ApiError::internal("the pod store is missing"))?;
    pods.guaranteed_update(ctx.namespace, &name, dry_run, |pod| {
        assign(pod, &node, &annotations, &precondition_uid, &precondition_rv)
    })
    .await?;
    Ok(response::json(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

/// The body must be a `v1` Binding when it says what it is.
fn check_kind(binding: &Object) -> Result<(), ApiError> {
    let kind = binding.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = binding.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if !kind.is_empty() && kind != "Binding" {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type Binding): kind {kind:?} does not match"
        )));
    }
    if !api_version.is_empty() && api_version != "v1" {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version (v1)"
        )));
    }
    Ok(())
}

/// Upstream's ValidatePodBinding.
fn validate(binding: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let target = binding.get("target");
    let kind = target.and_then(|t| t.get("kind")).and_then(Value::as_str).unwrap_or("");
    if !kind.is_empty() && kind != "Node" {
        errs.push(FieldError::not_supported("target.kind", kind, &["Node", "<empty>"]));
    }
    let name = target.and_then(|t| t.get("name")).and_then(Value::as_str).unwrap_or("");
    if name.is_empty() {
        errs.push(FieldError::required("target.name", ""));
    }
    if object::name(binding).is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    }
    errs
}

/// Sets the node of a pod that has none.
fn assign(
    pod: &mut Object,
    node: &str,
    annotations: &Map<String, Value>,
    precondition_uid: &str,
    precondition_rv: &str,
) -> Result<(), ApiError> {
    let name = object::name(pod).to_string();
    if !precondition_uid.is_empty() && precondition_uid != object::uid(pod) {
        return Err(ApiError::conflict(
            BINDING,
            &name,
            &format!(
                "Precondition failed: UID in precondition: {precondition_uid}, UID in object meta: {}",
                object::uid(pod)
            ),
        ));
    }
    if !precondition_rv.is_empty() && precondition_rv != object::resource_version(pod) {
        return Err(ApiError::conflict(
            BINDING,
            &name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {precondition_rv}, ResourceVersion in object meta: {}",
                object::resource_version(pod)
            ),
        ));
    }
    if object::is_terminating(pod) {
        return Err(ApiError::conflict(
            BINDING,
            &name,
            &format!("pod {name} is being deleted, cannot be assigned to a host"),
        ));
    }
    let spec = pod.get("spec").and_then(Value::as_object);
    let current = spec
        .and_then(|s| s.get("nodeName"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if !current.is_empty() {
        return Err(ApiError::conflict(
            BINDING,
            &name,
            &format!("pod {name} is already assigned to node {current:?}"),
        ));
    }
    let gated = spec
        .and_then(|s| s.get("schedulingGates"))
        .and_then(Value::as_array)
        .is_some_and(|g| !g.is_empty());
    if gated {
        return Err(ApiError::conflict(
            BINDING,
            &name,
            &format!("pod {name} has non-empty .spec.schedulingGates"),
        ));
    }
    if let Some(Value::Object(spec)) = pod.get_mut("spec") {
        spec.insert("nodeName".into(), Value::String(node.to_string()));
    }
    if !annotations.is_empty() {
        let meta = object::meta_mut(pod);
        let target = meta.entry("annotations").or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(target) = target {
            target.extend(annotations.clone());
        }
    }
    set_scheduled_condition(pod);
    Ok(())
}

/// Sets the `PodScheduled` condition to True, keeping its transition time
/// when it already was.
fn set_scheduled_condition(pod: &mut Object) {
    let status = pod.entry("status").or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(status) = status else { return };
    let conditions = status.entry("conditions").or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(conditions) = conditions else { return };
    let now = object::now_rfc3339();
    if let Some(Value::Object(c)) = conditions
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("PodScheduled"))
    {
        if c.get("status").and_then(Value::as_str) != Some("True") {
            c.insert("status".into(), json!("True"));
            c.insert("lastTransitionTime".into(), json!(now));
            c.remove("reason");
            c.remove("message");
        }
        return;
    }
    conditions.push(json!({
        "type": "PodScheduled",
        "status": "True",
        "lastProbeTime": null,
        "lastTransitionTime": now,
    }));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use axum::http::StatusCode;
    use serde_json::json;

    use crate::testing::TestServer;

    async fn pod(s: &TestServer, name: &str) {
        let (code, body) = s
            .post(
                "/api/v1/namespaces/default/pods",
                json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }

    fn binding(name: &str, node: &str) -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "annotations": {"a": "b"}},
               "target": {"apiVersion": "v1", "kind": "Node", "name": node}})
    }

    #[tokio::test]
    async fn binds_once_and_sets_condition() {
        let s = TestServer::new().await;
        pod(&s, "p").await;
        let (code, body) = s
            .post("/api/v1/namespaces/default/pods/p/binding", binding("p", "n1"))
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        assert_eq!(body["status"], "Success");
        assert_eq!(body["code"], 201);
        let (_, pod) = s.get("/api/v1/namespaces/default/pods/p").await;
        assert_eq!(pod["spec"]["nodeName"], "n1");
        assert_eq!(pod["metadata"]["annotations"]["a"], "b");
        let conds = pod["status"]["conditions"].as_array().unwrap();
        assert!(
            conds
                .iter()
                .any(|c| c["type"] == "PodScheduled" && c["status"] == "True")
        );

        // A second binding conflicts.
        let (code, body) = s
            .post("/api/v1/namespaces/default/pods/p/binding", binding("p", "n2"))
            .await;
        assert_eq!(code, StatusCode::CONFLICT);
        assert_eq!(
            body["message"],
            "Operation cannot be fulfilled on pods/binding \"p\": pod p is already assigned to node \"n1\""
        );
    }

    #[tokio::test]
    async fn bindings_resource_and_errors() {
        let s = TestServer::new().await;
        pod(&s, "q").await;
        let (code, body) = s.post("/api/v1/namespaces/default/bindings", binding("q", "n1")).await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        let (_, pod) = s.get("/api/v1/namespaces/default/pods/q").await;
        assert_eq!(pod["spec"]["nodeName"], "n1");

        // Missing pod: NotFound on pods.
        let (code, body) = s
            .post("/api/v1/namespaces/default/pods/nope/binding", binding("nope", "n1"))
            .await;
        assert_eq!(code, StatusCode::NOT_FOUND);
        assert_eq!(body["message"], "pods \"nope\" not found");
        // Name mismatch.
        let (code, body) = s
            .post("/api/v1/namespaces/default/pods/q/binding", binding("other", "n1"))
            .await;
        assert_eq!(code, StatusCode::BAD_REQUEST);
        assert_eq!(body["message"], "name in URL does not match name in Binding object");
        // Bad target.
        let (code, body) = s
            .post(
                "/api/v1/namespaces/default/pods/q/binding",
                json!({"metadata": {"name": "q"}, "target": {"kind": "Pod"}}),
            )
            .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let fields: Vec<_> = body["details"]["causes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["field"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(fields, ["target.kind", "target.name"]);
    }

    #[tokio::test]
    async fn dry_run_and_gates() {
        let s = TestServer::new().await;
        pod(&s, "d").await;
        let (code, _) = s
            .post(
                "/api/v1/namespaces/default/pods/d/binding?dryRun=All",
                binding("d", "n1"),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED);
        let (_, pod) = s.get("/api/v1/namespaces/default/pods/d").await;
        assert!(pod["spec"].get("nodeName").is_none());

        let (code, body) = s
            .post(
                "/api/v1/namespaces/default/pods",
                json!({"metadata": {"name": "g"}, "spec": {"schedulingGates": [{"name": "wait"}],
                       "containers": [{"name": "c", "image": "busybox"}]}}),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        let (code, body) = s
            .post("/api/v1/namespaces/default/pods/g/binding", binding("g", "n1"))
            .await;
        assert_eq!(code, StatusCode::CONFLICT);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .ends_with("pod g has non-empty .spec.schedulingGates")
        );
    }
}
