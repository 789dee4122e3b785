//! The `scale` subresource of deployments, replicasets, statefulsets and
//! replicationcontrollers: an `autoscaling/v1` Scale view of
//! `spec.replicas`, read, replaced or patched.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::patch::{GroupVersionKind, PatchType};
use crate::registry::object::{self, Object};
use crate::registry::store::UpdateOptions;
use crate::selector::{LabelSelector, Selector};
use crate::status::ApiError;

use super::body;
use super::crud::Ctx;
use super::response;

/// The label selector of a workload as a selector string (upstream's
/// `Scale.status.selector`).
fn selector_string(group: &str, obj: &Object) -> String {
    let selector = obj.get("spec").and_then(|s| s.get("selector"));
    let parsed = if group.is_empty() {
        // ReplicationControllers: a plain map.
        let set: std::collections::BTreeMap<String, String> = selector
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Selector::from_set(&set))
    } else {
        let ls: Option<LabelSelector> = selector.and_then(|s| serde_json::from_value(s.clone()).ok());
        Selector::from_label_selector(ls.as_ref())
    };
    parsed.map(|s| s.to_string()).unwrap_or_default()
}

/// The Scale view of a workload.
fn scale_of(group: &str, obj: &Object) -> Object {
    let meta = object::meta(obj);
    let mut m = serde_json::Map::new();
    for k in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
        if let Some(v) = meta.get(k) {
            m.insert(k.to_string(), v.clone());
        }
    }
    let replicas = obj
        .get("spec")
        .and_then(|s| s.get("replicas"))
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let status_replicas = obj
        .get("status")
        .and_then(|s| s.get("replicas"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    match json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": m,
        "spec": {"replicas": replicas},
        "status": {"replicas": status_replicas, "selector": selector_string(group, obj)},
    }) {
        Value::Object(o) => o,
        _ => Object::new(),
    }
}

fn replicas_of(scale: &Object) -> Result<i64, ApiError> {
    let replicas = scale.get("spec").and_then(|s| s.get("replicas"));
    match replicas {
        None | Some(Value::Null) => Ok(0),
        Some(v) => match v.as_i64() {
            Some(n) if n >= 0 => Ok(n),
            Some(n) => Err(ApiError::invalid(
                "autoscaling",
                "Scale",
                object::name(scale),
                &crate::validation::FieldErrors(vec![crate::validation::FieldError::invalid(
                    "spec.replicas",
                    n,
                    "must be greater than or equal to 0",
                )]),
            )),
            None => Err(ApiError::bad_request("spec.replicas must be an integer")),
        },
    }
}

pub async fn get(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let obj = ctx.store.get(ctx.namespace, &ctx.info.name).await?;
    Ok(response::json(StatusCode::OK, &scale_of(&ctx.resource.group, &obj)))
}

/// PUT and PATCH of the scale: compute the new Scale from the current one,
/// then write its replicas into the workload.
pub async fn write(ctx: &Ctx<'_>, req: Request, is_patch: bool) -> Result<Response, ApiError> {
    let dry_run = ctx.params.dry_run()?;
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let headers = req.headers().clone();
    let bytes = body::read(req.into_body()).await?;
    let group = ctx.resource.group.clone();
    let name = ctx.info.name.clone();
    let gr = crate::status::GroupResource {
        group: &ctx.resource.group,
        resource: &ctx.resource.resource,
    };
    let patch_type = if is_patch {
        match PatchType::from_content_type(&content_type) {
            Some(PatchType::Apply) | None => {
                return Err(ApiError::unsupported_media_type(&[
                    "application/json-patch+json",
                    "application/merge-patch+json",
                    "application/strategic-merge-patch+json",
                ]));
            }
            Some(t) => Some(t),
        }
    } else {
        None
    };
    let put_body = if is_patch {
        None
    } else {
        Some(body::decode_object(&headers, &bytes)?.object)
    };
    let updated = ctx
        .store
        .update_with(
            ctx.namespace,
            &ctx.info.name,
            &UpdateOptions {
                dry_run,
                ..Default::default()
            },
            |old| {
                let current = scale_of(&group, old);
                let new_scale = match (&put_body, patch_type) {
                    (Some(b), _) => b.clone(),
                    (None, Some(t)) => {
                        let cur = Value::Object(current.clone());
                        let gvk = GroupVersionKind {
                            group: "autoscaling",
                            version: "v1",
                            kind: "Scale",
                        };
                        let out = match t {
                            PatchType::Json => crate::patch::json_patch(&cur, &bytes),
                            PatchType::Merge => crate::patch::merge_patch(&cur, &bytes),
                            _ => crate::patch::strategic_merge_patch(&cur, &bytes, &gvk),
                        }
                        .map_err(ApiError::from)?;
                        match out {
                            Value::Object(o) => o,
                            _ => return Err(ApiError::bad_request("the patch must produce an object")),
                        }
                    }
                    (None, None) => current.clone(),
                };
                let rv = object::resource_version(&new_scale);
                if !rv.is_empty() && rv != object::resource_version(old) {
                    return Err(ApiError::conflict_modified(gr, &name));
                }
                let replicas = replicas_of(&new_scale)?;
                let mut new = old.clone();
                let spec = new.entry("spec").or_insert_with(|| json!({}));
                if let Value::Object(spec) = spec {
                    spec.insert("replicas".into(), json!(replicas));
                }
                Ok(new)
            },
            None,
        )
        .await?;
    Ok(response::json(StatusCode::OK, &scale_of(&ctx.resource.group, &updated)))
}
