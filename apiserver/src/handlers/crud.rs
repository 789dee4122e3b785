//! GET, LIST, CREATE, UPDATE, DELETE and DELETECOLLECTION handlers.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use crate::admission::{Attributes, Lookups, Operation, Validation};
use crate::authn::UserInfo;
use crate::patch::GroupVersionKind;
use crate::registry::list::{ListOptions, VersionMatch};
use crate::registry::object::{self, Object};
use crate::registry::store::{
    CreateOptions, Created, DeleteOptions, DeleteOutcome, GenericStore, UpdateOptions, UpdateTarget,
};
use crate::request_info::RequestInfo;
use crate::resources::ResourceInfo;
use crate::routes::AppState;
use crate::schema::{self, DecodeError};
use crate::status::{ApiError, GroupResource};

use super::body;
use super::negotiate::negotiate;
use super::params::{FieldValidation, Params};
use super::render;
use super::response;

/// Everything a handler needs about the request.
pub struct Ctx<'a> {
    pub state: &'a AppState,
    pub info: &'a RequestInfo,
    pub resource: &'a Arc<ResourceInfo>,
    pub store: &'a Arc<GenericStore>,
    pub namespace: &'a str,
    pub params: &'a Params,
}

impl Ctx<'_> {
    /// Whether the kind has a protobuf form (custom resources do not).
    pub(crate) fn has_protobuf(&self) -> bool {
        crate::protobuf::supports(&self.resource.api_version(), &self.resource.kind)
    }

    fn gr(&self) -> GroupResource<'_> {
        GroupResource {
            group: &self.resource.group,
            resource: &self.resource.resource,
        }
    }
}

pub async fn get(ctx: &Ctx<'_>, headers: &HeaderMap) -> Result<Response, ApiError> {
    let output = negotiate(headers, false, ctx.has_protobuf())?;
    let obj = ctx.store.get(ctx.namespace, &ctx.info.name).await?;
    render::object_response(ctx.resource, output, ctx.params, obj, StatusCode::OK)
}

/// The list options of a LIST, WATCH or DELETECOLLECTION request.
pub fn list_options(ctx: &Ctx<'_>) -> Result<ListOptions, ApiError> {
    let p = ctx.params;
    let limit = match p.int("limit")? {
        Some(n) if n > 0 => n as usize,
        _ => 0,
    };
    let resource_version_match = match p.get("resourceVersionMatch") {
        None | Some("") => None,
        Some("NotOlderThan") => Some(VersionMatch::NotOlderThan),
        Some("Exact") => Some(VersionMatch::Exact),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""
            )));
        }
    };
    let resource_version = p.get("resourceVersion").filter(|s| !s.is_empty()).map(String::from);
    let send_initial_events = p.get("sendInitialEvents").is_some_and(|v| !v.is_empty());
    if resource_version_match.is_some() && resource_version.is_none() && !send_initial_events {
        return Err(ApiError::bad_request(
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
        ));
    }
    Ok(ListOptions {
        predicate: crate::registry::selection::predicate(ctx.resource, p.get("labelSelector"), p.get("fieldSelector"))?,
        limit,
        continue_token: p.get("continue").filter(|s| !s.is_empty()).map(String::from),
        resource_version,
        resource_version_match,
    })
}

pub async fn list(ctx: &Ctx<'_>, headers: &HeaderMap) -> Result<Response, ApiError> {
    let output = negotiate(headers, true, ctx.has_protobuf())?;
    let opts = list_options(ctx)?;
    let out = ctx.store.list(ctx.namespace, &opts).await?;
    render::list_response(ctx.resource, output, ctx.params, out)
}

/// Decodes a create/update body as its kind (dropping unknown fields,
/// rejecting values of the wrong type) and applies `fieldValidation` to
/// unknown and duplicate fields; returns the object and warnings.
async fn read_object(ctx: &Ctx<'_>, req: Request) -> Result<(Object, Vec<String>), ApiError> {
    let validation = ctx.params.field_validation()?;
    let (parts, body) = req.into_parts();
    let bytes = body::read(body).await?;
    let decoded = body::decode_object(&parts.headers, &bytes)?;
    check_type(ctx.resource, &decoded.object)?;
    let gvk = GroupVersionKind {
        group: &ctx.resource.group,
        version: &ctx.resource.version,
        kind: &ctx.resource.kind,
    };
    let typed = schema::decode(&gvk, Value::Object(decoded.object), &decoded.duplicates)?;
    let mut warnings = Vec::new();
    if !typed.strict_errors.is_empty() {
        match validation {
            FieldValidation::Strict => return Err(DecodeError::strict(&gvk, &typed.strict_errors).into()),
            FieldValidation::Warn => warnings.extend(typed.strict_errors.iter().map(ToString::to_string)),
            FieldValidation::Ignore => {}
        }
    }
    let Value::Object(obj) = typed.object else {
        return Err(ApiError::internal("decoding an object did not produce an object"));
    };
    Ok((crate::convert::to_storage(ctx.resource, obj), warnings))
}

/// The body's `apiVersion` and `kind`, when given, must be the URL's.
fn check_type(info: &ResourceInfo, obj: &Object) -> Result<(), ApiError> {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    if !kind.is_empty() && kind != info.kind {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): kind {kind:?} does not match",
            info.kind
        )));
    }
    if !api_version.is_empty() && api_version != info.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            info.api_version()
        )));
    }
    Ok(())
}

/// The authenticated user of a request.
fn request_user(req: &Request) -> UserInfo {
    req.extensions().get::<UserInfo>().cloned().unwrap_or_default()
}

/// Admission attributes of this request.
fn attributes<'a>(
    ctx: &'a Ctx<'_>,
    operation: Operation,
    user: &'a UserInfo,
    lookups: &'a Lookups,
    dry_run: bool,
) -> Attributes<'a> {
    Attributes {
        operation,
        user,
        namespace: ctx.namespace,
        name: &ctx.info.name,
        resource: ctx.resource,
        subresource: &ctx.info.subresource,
        old: None,
        dry_run,
        lookups,
    }
}

pub async fn create(ctx: &Ctx<'_>, req: Request) -> Result<Response, ApiError> {
    let dry_run = ctx.params.dry_run()?;
    let user = request_user(&req);
    let (mut obj, mut warnings) = read_object(ctx, req).await?;
    let lookups = Lookups::default();
    let attrs = attributes(ctx, Operation::Create, &user, &lookups, dry_run);
    let chain = &ctx.state.admission;
    chain.admit(&ctx.state.registry, &attrs, Some(&mut obj)).await?;
    if ctx.resource.group == "certificates.k8s.io" && ctx.resource.resource == "certificatesigningrequests" {
        crate::registry::kinds::certificates::set_requester(&mut obj, &user);
    }
    let validation = Validation::new(chain, &ctx.state.registry, attrs);
    let escalation = ctx.state.authorizer.escalation_check(&user, ctx.info).await;
    let checked = crate::authz::escalation::Checked::new(escalation, &validation);
    let created = ctx
        .store
        .create_encoded(ctx.namespace, obj, &CreateOptions { dry_run }, Some(&checked))
        .await?;
    warnings.extend(validation.warnings());
    let resp = match created_json(ctx.resource, &created) {
        Some(body) => response::json_bytes(StatusCode::CREATED, body),
        None => response::json(StatusCode::CREATED, &response::object(ctx.resource, created.object)),
    };
    Ok(response::with_warnings(resp, &warnings))
}

/// The created object's JSON from its stored encoding, when that is the
/// object as served at `info` ([`response::object`] of it): no conversion,
/// and the stored `apiVersion` and `kind` are the served ones.
fn created_json(info: &ResourceInfo, created: &Created) -> Option<Vec<u8>> {
    let obj = &created.object;
    let served = !crate::convert::needed(info)
        && obj.get("kind").and_then(Value::as_str) == Some(info.kind.as_str())
        && obj.get("apiVersion").and_then(Value::as_str) == Some(info.api_version().as_str());
    if served { created.json() } else { None }
}

pub async fn update(ctx: &Ctx<'_>, req: Request) -> Result<Response, ApiError> {
    let dry_run = ctx.params.dry_run()?;
    let target = match ctx.info.subresource.as_str() {
        "status" => UpdateTarget::Status,
        "finalize" => UpdateTarget::Finalize,
        "ephemeralcontainers" => UpdateTarget::EphemeralContainers,
        "approval" => UpdateTarget::Approval,
        _ => UpdateTarget::Main,
    };
    let user = request_user(&req);
    let (obj, mut warnings) = read_object(ctx, req).await?;
    let lookups = Lookups::default();
    let attrs = attributes(ctx, Operation::Update, &user, &lookups, dry_run);
    // Both admission phases run in the store's retry loop, like PATCH:
    // the mutating one on a fresh copy of the body in each attempt (so it
    // is re-applied after a conflict), with the stored object as the old.
    let validation = Validation::with_mutation(&ctx.state.admission, &ctx.state.registry, attrs);
    let escalation = ctx.state.authorizer.escalation_check(&user, ctx.info).await;
    let checked = crate::authz::escalation::Checked::new(escalation, &validation);
    let updated = ctx
        .store
        .update_admitted(
            ctx.namespace,
            &ctx.info.name,
            obj,
            &UpdateOptions { dry_run, target },
            Some(&checked),
        )
        .await?;
    warnings.extend(validation.warnings());
    let resp = response::json(StatusCode::OK, &response::object(ctx.resource, updated));
    Ok(response::with_warnings(resp, &warnings))
}

/// `metav1.DeleteOptions` from the body and the query.
async fn delete_options(ctx: &Ctx<'_>, req: Request) -> Result<DeleteOptions, ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = body::read(body).await?;
    let mut opts = DeleteOptions {
        dry_run: ctx.params.dry_run()?,
        ..Default::default()
    };
    if !bytes.is_empty() {
        let decoded = body::decode_object(&parts.headers, &bytes)?;
        apply_delete_options(&decoded.object, &mut opts)?;
    }
    if let Some(g) = ctx.params.int("gracePeriodSeconds")? {
        opts.grace_period_seconds = Some(g);
    }
    if let Some(p) = ctx.params.get("propagationPolicy").filter(|s| !s.is_empty()) {
        opts.propagation_policy = Some(p.to_string());
    }
    if let Some(g) = opts.grace_period_seconds
        && g < 0
    {
        opts.grace_period_seconds = Some(0);
    }
    match opts.propagation_policy.as_deref() {
        None | Some("Orphan" | "Background" | "Foreground") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
            )));
        }
    }
    Ok(opts)
}

/// Reads the fields of a `metav1.DeleteOptions` object into `opts`.
pub fn apply_delete_options(o: &serde_json::Map<String, Value>, opts: &mut DeleteOptions) -> Result<(), ApiError> {
    if let Some(v) = o.get("gracePeriodSeconds").filter(|v| !v.is_null()) {
        opts.grace_period_seconds = Some(
            v.as_i64()
                .ok_or_else(|| ApiError::bad_request("gracePeriodSeconds must be an integer"))?,
        );
    }
    if let Some(p) = o.get("propagationPolicy").and_then(Value::as_str) {
        opts.propagation_policy = Some(p.to_string());
    }
    if let Some(orphan) = o.get("orphanDependents").and_then(Value::as_bool) {
        opts.propagation_policy
            .get_or_insert_with(|| if orphan { "Orphan".into() } else { "Background".into() });
    }
    if let Some(pre) = o.get("preconditions").and_then(Value::as_object) {
        opts.precondition_uid = pre.get("uid").and_then(Value::as_str).map(String::from);
        opts.precondition_resource_version = pre.get("resourceVersion").and_then(Value::as_str).map(String::from);
    }
    if let Some(dry) = o.get("dryRun").and_then(Value::as_array) {
        for d in dry {
            match d.as_str() {
                Some("All") => opts.dry_run = true,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid dryRun value {:?}: supported values: \"All\"",
                        other.unwrap_or("")
                    )));
                }
            }
        }
    }
    Ok(())
}

pub async fn delete(ctx: &Ctx<'_>, req: Request) -> Result<Response, ApiError> {
    let user = request_user(&req);
    let opts = delete_options(ctx, req).await?;
    let lookups = Lookups::default();
    let attrs = attributes(ctx, Operation::Delete, &user, &lookups, opts.dry_run);
    ctx.state.admission.admit(&ctx.state.registry, &attrs, None).await?;
    let outcome = ctx.store.delete(ctx.namespace, &ctx.info.name, &opts).await?;
    Ok(match outcome {
        DeleteOutcome::Pending(obj) => response::json(StatusCode::OK, &response::object(ctx.resource, obj)),
        DeleteOutcome::Deleted(obj) if returns_deleted_object(ctx.resource) => {
            response::json(StatusCode::OK, &response::object(ctx.resource, obj))
        }
        DeleteOutcome::Deleted(obj) => response::json(
            StatusCode::OK,
            &response::delete_status(ctx.resource, &ctx.info.name, object::uid(&obj)),
        ),
    })
}

/// Kinds whose immediate delete returns the object rather than a Status.
fn returns_deleted_object(info: &ResourceInfo) -> bool {
    matches!((info.group.as_str(), info.resource.as_str()), ("", "pods" | "services"))
}

pub async fn delete_collection(ctx: &Ctx<'_>, req: Request) -> Result<Response, ApiError> {
    let list_opts = list_options(ctx)?;
    let user = request_user(&req);
    let opts = delete_options(ctx, req).await?;
    let listed = ctx.store.list(ctx.namespace, &list_opts).await?;
    let mut deleted = Vec::new();
    for item in listed.items {
        let obj = item.into_object(ctx.resource);
        let ns = object::namespace(&obj).to_string();
        let name = object::name(&obj).to_string();
        // Each item's own lookups: the items may be in several namespaces.
        let lookups = Lookups::default();
        let attrs = Attributes {
            namespace: &ns,
            name: &name,
            ..attributes(ctx, Operation::Delete, &user, &lookups, opts.dry_run)
        };
        ctx.state.admission.admit(&ctx.state.registry, &attrs, None).await?;
        match ctx.store.delete(&ns, &name, &opts).await {
            Ok(DeleteOutcome::Deleted(o) | DeleteOutcome::Pending(o)) => {
                deleted.push(response::object(ctx.resource, o))
            }
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let body = response::list(ctx.resource, deleted, listed.resource_version, None, None);
    Ok(response::json(StatusCode::OK, &body))
}

/// PATCH: JSON patch, merge patch or strategic merge patch against the
/// stored object, retried on conflicts; server-side apply is refused with
/// 415 until it is served.
pub async fn patch(ctx: &Ctx<'_>, req: Request) -> Result<Response, ApiError> {
    use crate::patch::{GroupVersionKind, PatchType};
    let dry_run = ctx.params.dry_run()?;
    let validation = ctx.params.field_validation()?;
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let supported = [
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
    ];
    let patch_type = match PatchType::from_content_type(&content_type) {
        Some(PatchType::Apply) | None => return Err(ApiError::unsupported_media_type(&supported)),
        Some(t) => t,
    };
    let gvk = GroupVersionKind {
        group: &ctx.resource.group,
        version: &ctx.resource.version,
        kind: &ctx.resource.kind,
    };
    if patch_type == PatchType::StrategicMerge && !crate::patch::supports_strategic_merge_patch(&gvk) {
        return Err(ApiError::unsupported_media_type(&[
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ]));
    }
    let user = request_user(&req);
    let body = body::read(req.into_body()).await?;
    let lookups = Lookups::default();
    let attrs = attributes(ctx, Operation::Update, &user, &lookups, dry_run);
    // Both admission phases run in the store's retry loop: the mutating
    // one on each attempt's patched object (re-applied after a conflict),
    // with the stored object as the old one.
    let plugins = Validation::with_mutation(&ctx.state.admission, &ctx.state.registry, attrs);
    let escalation = ctx.state.authorizer.escalation_check(&user, ctx.info).await;
    let admission = crate::authz::escalation::Checked::new(escalation, &plugins);
    let target = match ctx.info.subresource.as_str() {
        "status" => UpdateTarget::Status,
        "ephemeralcontainers" => UpdateTarget::EphemeralContainers,
        "approval" => UpdateTarget::Approval,
        _ => UpdateTarget::Main,
    };
    let gr = ctx.gr();
    let name = ctx.info.name.clone();
    let info = ctx.resource.clone();
    let warnings = std::sync::Mutex::new(Vec::<String>::new());
    let patched = ctx
        .store
        .update_with_admitted(
            ctx.namespace,
            &ctx.info.name,
            &UpdateOptions { dry_run, target },
            |old| {
                let current = Value::Object(response::object(&info, old.clone()));
                let result = crate::patch::apply(patch_type, current, &body, &gvk).map_err(ApiError::from)?;
                let Value::Object(new) = result else {
                    return Err(ApiError::bad_request("the patch must produce an object"));
                };
                check_type(&info, &new)?;
                // The result must decode as the kind, like a create body:
                // wrong types are refused, unknown fields dropped (or
                // refused or warned about per fieldValidation).
                let typed = schema::decode(&gvk, Value::Object(new), &[])?;
                if !typed.strict_errors.is_empty() {
                    match validation {
                        FieldValidation::Strict => return Err(DecodeError::strict(&gvk, &typed.strict_errors).into()),
                        FieldValidation::Warn => {
                            let mut w = warnings.lock().unwrap_or_else(|p| p.into_inner());
                            *w = typed.strict_errors.iter().map(ToString::to_string).collect();
                        }
                        FieldValidation::Ignore => {}
                    }
                }
                let Value::Object(new) = typed.object else {
                    return Err(ApiError::bad_request("the patch must produce an object"));
                };
                let new = crate::convert::to_storage(&info, new);
                // A resourceVersion in the patch is a precondition.
                let rv = object::resource_version(&new);
                if !rv.is_empty() && rv != object::resource_version(old) {
                    return Err(ApiError::conflict_modified(gr, &name));
                }
                if object::name(&new) != name {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({}) does not match the name on the URL ({name})",
                        object::name(&new)
                    )));
                }
                Ok(new)
            },
            None,
            Some(&admission),
        )
        .await?;
    let mut warnings = warnings.into_inner().unwrap_or_else(|p| p.into_inner());
    warnings.extend(plugins.warnings());
    let resp = response::json(StatusCode::OK, &response::object(ctx.resource, patched));
    Ok(response::with_warnings(resp, &warnings))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use serde_json::{Value, json};

    use crate::testing::TestServer;

    /// POSTs `body` and returns the status and the response's bytes.
    async fn post_raw(s: &TestServer, path: &str, body: &Value) -> (StatusCode, Vec<u8>) {
        let req = Request::builder()
            .method("POST")
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = s.send(req).await;
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, bytes.to_vec())
    }

    #[tokio::test]
    async fn create_responds_with_the_stored_object_as_serialized() {
        let s = TestServer::new().await;
        let cases = [
            (
                "/api/v1/namespaces/default/pods",
                "p",
                json!({"metadata": {"name": "p", "labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
            ),
            (
                "/api/v1/namespaces/default/configmaps",
                "c",
                json!({"metadata": {"name": "c"}, "data": {"k": "v\u{1}\"é"}}),
            ),
            ("/api/v1/namespaces", "n", json!({"metadata": {"name": "n"}})),
            // Served as autoscaling/v1, stored as v2: converted, not spliced.
            (
                "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers",
                "h",
                json!({"metadata": {"name": "h"}, "spec": {"maxReplicas": 3, "targetCPUUtilizationPercentage": 50,
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}}}),
            ),
        ];
        for (path, name, body) in cases {
            let (code, bytes) = post_raw(&s, path, &body).await;
            assert_eq!(code, StatusCode::CREATED, "{}", String::from_utf8_lossy(&bytes));
            let created: Value = serde_json::from_slice(&bytes).unwrap();
            // Compact, keys sorted: what serializing the object gives.
            assert_eq!(serde_json::to_vec(&created).unwrap(), bytes, "{path}");
            let (code, got) = s.get(&format!("{path}/{name}")).await;
            assert_eq!(code, StatusCode::OK, "{got}");
            assert_eq!(created, got, "{path}");
            assert!(!created["metadata"]["resourceVersion"].as_str().unwrap_or("").is_empty());
        }
        // A dry run has nothing stored to respond from.
        let (code, bytes) = post_raw(
            &s,
            "/api/v1/namespaces/default/configmaps?dryRun=All",
            &json!({"metadata": {"name": "dry"}}),
        )
        .await;
        assert_eq!(code, StatusCode::CREATED);
        let dry: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(dry["metadata"]["name"], "dry");
        assert_eq!(dry["kind"], "ConfigMap");
    }
}
