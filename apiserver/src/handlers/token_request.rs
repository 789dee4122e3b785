//! `POST .../serviceaccounts/<name>/token`: the TokenRequest API
//! (authentication.k8s.io/v1), as upstream's `TokenREST`. Issues a token
//! for the service account, optionally bound to a Pod, Secret or Node that
//! must exist (with the UID given, if any); nothing is stored.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::crud::Ctx;
use super::{body, response};
use crate::admission::{Attributes, Lookups, Operation};
use crate::authn::UserInfo;
use crate::authn::service_account::claims::{Bound, Ref, bound_claims};
use crate::authn::service_account::{ServiceAccounts, now};
use crate::registry::object::{self, Object};
use crate::status::{ApiError, GroupResource};
use crate::validation::{FieldError, FieldErrors};

const GROUP: &str = "authentication.k8s.io";
const KIND: &str = "TokenRequest";
/// Upstream's shortest token (`MinTokenAgeSec`).
const MIN_EXPIRATION_SECONDS: i64 = 600;
/// The expiry kubelets ask for, which upstream extends (with a warning
/// time) when `--service-account-extend-token-expiration` is on.
const WARN_ONLY_EXPIRATION_SECONDS: i64 = 3607;
/// How far such tokens are extended: a year.
const EXTENDED_EXPIRATION_SECONDS: i64 = 24 * 365 * 3600;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BoundObjectRef {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    uid: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[serde(default)]
    audiences: Option<Vec<String>>,
    #[serde(default)]
    expiration_seconds: Option<i64>,
    #[serde(default)]
    bound_object_ref: Option<BoundObjectRef>,
}

fn invalid(name: &str, field: &str, value: impl Into<Value>, detail: &str) -> ApiError {
    let mut errs = FieldErrors::new();
    errs.push(FieldError::invalid(field, value, detail));
    ApiError::invalid(GROUP, KIND, name, &errs)
}

/// Upstream's `ValidateTokenRequest`.
fn validate(expiration: i64) -> Result<(), ApiError> {
    let mut errs = FieldErrors::new();
    if expiration < MIN_EXPIRATION_SECONDS {
        errs.push(FieldError::invalid(
            "spec.expirationSeconds",
            expiration,
            "may not specify a duration less than 10 minutes",
        ));
    }
    if expiration > 1 << 32 {
        errs.push(FieldError::invalid(
            "spec.expirationSeconds",
            expiration,
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(GROUP, KIND, "", &errs))
    }
}

/// Reads a core/v1 object for binding.
async fn get(ctx: &Ctx<'_>, resource: &str, namespace: &str, name: &str) -> Result<Object, ApiError> {
    let store = ctx
        .state
        .registry
        .store("", resource)
        .ok_or_else(|| ApiError::internal(format!("no store for {resource}")))?;
    store.get(namespace, name).await
}

/// What the token is bound to, checked as upstream does.
async fn bind(ctx: &Ctx<'_>, sa_name: &str, r: &BoundObjectRef) -> Result<(Bound, bool), ApiError> {
    let ns = ctx.namespace;
    let kind = r.kind.as_deref().unwrap_or("");
    let api_version = r.api_version.as_deref().unwrap_or("");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let name = r.name.as_deref().unwrap_or("");
    let mut bound = Bound::default();
    let (uid, is_pod) = match (group, kind) {
        ("", "Pod") => {
            let pod = get(ctx, "pods", ns, name).await?;
            let pod_sa = pod
                .get("spec")
                .and_then(|s| s.get("serviceAccountName"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if pod_sa != sa_name {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token for serviceaccount {sa_name:?} to pod running with different serviceaccount name."
                )));
            }
            let node_name = pod
                .get("spec")
                .and_then(|s| s.get("nodeName"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if !node_name.is_empty() {
                // A node that does not exist still names where the pod runs.
                let uid = match get(ctx, "nodes", "", node_name).await {
                    Ok(node) => object::uid(&node).to_string(),
                    Err(e) if e.code == 404 => String::new(),
                    Err(e) => return Err(e),
                };
                bound.node = Some(Ref {
                    name: node_name.to_string(),
                    uid,
                });
            }
            let uid = object::uid(&pod).to_string();
            bound.pod = Some(Ref {
                name: name.to_string(),
                uid: uid.clone(),
            });
            (uid, true)
        }
        ("", "Node") => {
            let node = get(ctx, "nodes", "", name).await?;
            let uid = object::uid(&node).to_string();
            bound.node = Some(Ref {
                name: name.to_string(),
                uid: uid.clone(),
            });
            (uid, false)
        }
        ("", "Secret") => {
            let secret = get(ctx, "secrets", ns, name).await?;
            let uid = object::uid(&secret).to_string();
            bound.secret = Some(Ref {
                name: name.to_string(),
                uid: uid.clone(),
            });
            (uid, false)
        }
        _ => {
            return Err(ApiError::bad_request(format!(
                "cannot bind token to object of type {group}/{version}, Kind={kind}"
            )));
        }
    };
    if let Some(want) = r.uid.as_deref().filter(|u| !u.is_empty())
        && want != uid
    {
        return Err(ApiError::conflict(
            GroupResource { group, resource: kind },
            name,
            &format!(
                "the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated"
            ),
        ));
    }
    Ok((bound, is_pod))
}

/// Serves `create` of `serviceaccounts/<name>/token`.
pub async fn create(ctx: &Ctx<'_>, req: Request) -> Result<Response, ApiError> {
    let sa_tokens: &ServiceAccounts = ctx
        .state
        .authn
        .service_accounts
        .as_ref()
        .ok_or_else(ApiError::path_not_found)?;
    let name = ctx.info.name.as_str();
    let namespace = ctx.namespace;
    let headers = req.headers().clone();
    let user = req.extensions().get::<UserInfo>().cloned().unwrap_or_default();
    let bytes = body::read(req.into_body()).await?;
    let mut obj = body::decode_object(&headers, &bytes)?.object;
    // Admission as upstream's create handler and TokenREST run it: the
    // mutating phase on the request, the validating phase once it is
    // checked (NodeRestriction limits nodes to their pods' tokens here).
    let lookups = Lookups::default();
    let attrs = Attributes {
        operation: Operation::Create,
        user: &user,
        namespace,
        name,
        resource: ctx.resource,
        subresource: &ctx.info.subresource,
        old: None,
        dry_run: false,
        lookups: &lookups,
    };
    let chain = &ctx.state.admission;
    chain.admit(&ctx.state.registry, &attrs, Some(&mut obj)).await?;
    let meta_name = object::name(&obj);
    if !meta_name.is_empty() && meta_name != name {
        return Err(invalid(
            name,
            "metadata.name",
            meta_name,
            "must match the service account name if specified",
        ));
    }
    let meta_ns = object::namespace(&obj);
    if !meta_ns.is_empty() && meta_ns != namespace {
        return Err(invalid(
            name,
            "metadata.namespace",
            meta_ns,
            "must match the service account namespace if specified",
        ));
    }
    let spec: Spec = match obj.get("spec") {
        None | Some(Value::Null) => Spec::default(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| ApiError::bad_request(format!("decoding TokenRequest spec: {e}")))?,
    };
    let sa = ctx.store.get(namespace, name).await?;
    let settings = &sa_tokens.settings;
    let audiences = spec
        .audiences
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| settings.api_audiences.clone());
    let issued = now();
    let mut expiration = spec.expiration_seconds.unwrap_or(3600);
    validate(expiration)?;
    chain.validate(&ctx.state.registry, &attrs, &obj).await?;
    let (bound, is_pod) = match &spec.bound_object_ref {
        Some(r) => bind(ctx, name, r).await?,
        None => (Bound::default(), false),
    };
    let mut warnings = Vec::new();
    if settings.max_expiration_seconds > 0 && expiration > settings.max_expiration_seconds {
        warnings.push(format!(
            "requested expiration of {expiration} seconds shortened to {} seconds",
            settings.max_expiration_seconds
        ));
        expiration = settings.max_expiration_seconds;
    }
    let kube_audiences = audiences.iter().all(|a| settings.api_audiences.contains(a));
    let (token_expiration, warn_after) =
        if settings.extend_expiration && is_pod && expiration == WARN_ONLY_EXPIRATION_SECONDS && kube_audiences {
            (EXTENDED_EXPIRATION_SECONDS, Some(expiration))
        } else {
            (expiration, None)
        };
    let claims = bound_claims(
        sa_tokens.issuer(),
        namespace,
        name,
        object::uid(&sa),
        bound,
        audiences.clone(),
        issued,
        token_expiration,
        warn_after,
    );
    let token = sa_tokens.sign(&claims).map_err(ApiError::internal)?;
    let at = |secs: i64| {
        time::OffsetDateTime::from_unix_timestamp(secs)
            .map(object::format_time)
            .unwrap_or_default()
    };
    let mut spec_out = json!({"audiences": audiences, "expirationSeconds": expiration});
    if let Some(r) = obj
        .get("spec")
        .and_then(|s| s.get("boundObjectRef"))
        .filter(|r| !r.is_null())
    {
        spec_out["boundObjectRef"] = r.clone();
    }
    let out = json!({
        "kind": KIND,
        "apiVersion": format!("{GROUP}/v1"),
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": at(issued)},
        "spec": spec_out,
        "status": {"token": token, "expirationTimestamp": at(issued + expiration)},
    });
    Ok(response::with_warnings(
        response::json(StatusCode::CREATED, &out),
        &warnings,
    ))
}
