//! ValidatingAdmissionPolicy (upstream's `plugin/policy/validating`): every
//! ValidatingAdmissionPolicyBinding whose policy and match resources select
//! the request runs the policy's CEL validations (through [`crate::cel`])
//! once per parameter object, and applies its `validationActions`: `Deny`
//! rejects with upstream's message ("ValidatingAdmissionPolicy 'p' with
//! binding 'b' denied request: ..."), the reason's status code (422
//! `Invalid` by default), `Warn` adds a response warning, `Audit` adds the
//! failures to the request's audit event
//! (`validation.policy.admission.k8s.io/validation_failure`). A policy's
//! `auditAnnotations` are published as `<policy>/<key>`, and its
//! expressions may check authorization through `authorizer`
//! ([`authorizer`]).
//!
//! Policies, bindings, the request's namespace and parameter objects are
//! read from the watch cache on each request (like upstream's informers);
//! compiled programs are kept per policy resourceVersion ([`policy::compiled`]).

mod authorizer;
mod matching;
mod policy;
mod type_check;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde_json::{Value, json};

use crate::admission::{Attributes, Operation, forbidden};
use crate::cel::Activation;
use crate::registry::Registry;
use crate::registry::object::{self, Object};
use crate::selector::labels::Selector;
use crate::status::{ApiError, StatusCause};

pub use authorizer::AuthorizerSlot;
use matching::Subject;
use policy::{CompiledPolicy, Decision, FailurePolicy};
pub use type_check::type_check;

/// The top-level names a policy's CEL expressions may use (`params` only
/// with a paramKind), for validating policies at write time.
pub fn declared_variables(has_params: bool) -> Vec<&'static str> {
    policy::declared(has_params)
}

const GROUP: &str = "admissionregistration.k8s.io";

/// One outcome that denies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub policy: String,
    pub binding: String,
    pub message: String,
    pub reason: Option<String>,
}

/// What the policies decided for one request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub denials: Vec<Denial>,
    pub warnings: Vec<String>,
    /// The failures of bindings with the `Audit` action.
    pub audit_failures: Vec<AuditFailure>,
}

/// One entry of the `validation_failure` audit annotation, in upstream's
/// field order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditFailure {
    pub message: String,
    pub policy: String,
    pub binding: String,
    pub expression_index: usize,
    pub validation_actions: Vec<String>,
}

/// The audit annotation listing the failures of `Audit` bindings.
const VALIDATION_FAILURE_ANNOTATION: &str = "validation.policy.admission.k8s.io/validation_failure";

/// The policies or bindings, decoded once while none of them changes.
async fn list(registry: &Registry, group: &str, resource: &str) -> Result<Arc<Vec<Object>>, ApiError> {
    let Some(store) = registry.store(group, resource) else {
        return Ok(Arc::default());
    };
    store.list_cached_objects("admission.policies", "").await
}

/// The admission check: `obj` is the object to be written (`None` on
/// delete). Returns the warnings to add to the response.
pub async fn validate(
    registry: &Registry,
    authorizer: &AuthorizerSlot,
    attrs: &Attributes<'_>,
    obj: Option<&Object>,
) -> Result<Vec<String>, ApiError> {
    let bindings = list(registry, GROUP, "validatingadmissionpolicybindings").await?;
    if bindings.is_empty() {
        return Ok(Vec::new());
    }
    let policies = list(registry, GROUP, "validatingadmissionpolicies").await?;
    policy::retain_compiled(&policies.iter().map(|p| object::meta_str(p, "uid")).collect::<Vec<_>>());
    let mut namespace = None;
    if attrs.resource.namespaced
        && !attrs.namespace.is_empty()
        && let Some(store) = registry.store("", "namespaces")
    {
        namespace = store.get_cached("", attrs.namespace).await.ok();
    }
    // A delete's admission sees the stored object as oldObject.
    let mut stored = None;
    if attrs.operation == Operation::Delete
        && attrs.old.is_none()
        && let Some(store) = registry.store_for(attrs.resource)
    {
        stored = store.get(attrs.namespace, attrs.name).await.ok();
    }
    let old_object = attrs.old.or(stored.as_ref());
    let subject = Subject {
        attrs,
        object: if attrs.operation == Operation::Delete {
            None
        } else {
            obj
        },
        old_object,
        namespace: namespace.as_ref(),
    };
    let mut outcome = Outcome::default();
    for binding in bindings.iter() {
        let spec = binding.get("spec").cloned().unwrap_or(Value::Null);
        let policy_name = spec.get("policyName").and_then(Value::as_str).unwrap_or("");
        let Some(policy_obj) = policies.iter().find(|p| object::name(p) == policy_name) else {
            continue;
        };
        let compiled = policy::compiled(policy_obj);
        run_binding(registry, authorizer, &compiled, binding, &subject, &mut outcome).await;
    }
    if !outcome.audit_failures.is_empty()
        && let Ok(v) = serde_json::to_string(&outcome.audit_failures)
    {
        crate::audit::annotate(VALIDATION_FAILURE_ANNOTATION, &v);
    }
    if let Some(d) = outcome.denials.first() {
        return Err(denial_error(attrs, obj.or(old_object), d));
    }
    Ok(outcome.warnings)
}

/// Runs one binding of `policy`, adding its decisions to `out`.
async fn run_binding(
    registry: &Registry,
    authorizer: &AuthorizerSlot,
    policy: &CompiledPolicy,
    binding: &Object,
    s: &Subject<'_>,
    out: &mut Outcome,
) {
    let binding_name = object::name(binding).to_string();
    let spec = binding.get("spec").cloned().unwrap_or(Value::Null);
    let actions: Vec<&str> = spec
        .get("validationActions")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let config_error = |out: &mut Outcome, err: String| {
        if policy.failure_policy == FailurePolicy::Fail {
            out.denials.push(Denial {
                policy: policy.name.clone(),
                binding: binding_name.clone(),
                message: format!("failed to configure binding: {err}"),
                reason: None,
            });
        }
    };
    match matching::matches(policy.match_constraints.as_ref(), s) {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => return config_error(out, e),
    }
    match matching::matches(spec.get("matchResources"), s) {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => return config_error(out, e),
    }
    let params = match resolve_params(registry, policy, &spec, s.attrs.namespace).await {
        Ok(p) => p,
        Err(e) => return config_error(out, e),
    };
    let base = activation(s, authorizer);
    for param in params {
        let mut act = base.clone();
        act.params = param;
        let evaluation = policy::evaluate(policy, act);
        for (key, value) in evaluation.audit_annotations {
            match value {
                Ok(v) => crate::audit::annotate(&format!("{}/{key}", policy.name), &v),
                Err(e) if policy.failure_policy == FailurePolicy::Fail => out.denials.push(Denial {
                    policy: policy.name.clone(),
                    binding: binding_name.clone(),
                    message: e,
                    reason: None,
                }),
                Err(e) => {
                    tracing::info!(policy = %policy.name, binding = %binding_name, error = %e, "ValidatingAdmissionPolicy audit annotation error ignored (failurePolicy Ignore)");
                }
            }
        }
        for (index, decision) in evaluation.decisions {
            let (message, reason) = match decision {
                Decision::Fail { message, reason } => (message, reason),
                Decision::Error(e) if policy.failure_policy == FailurePolicy::Fail => (e, None),
                Decision::Error(e) => {
                    tracing::info!(policy = %policy.name, binding = %binding_name, error = %e, "ValidatingAdmissionPolicy error ignored (failurePolicy Ignore)");
                    continue;
                }
            };
            for action in &actions {
                match *action {
                    "Deny" => out.denials.push(Denial {
                        policy: policy.name.clone(),
                        binding: binding_name.clone(),
                        message: message.clone(),
                        reason: reason.clone(),
                    }),
                    "Warn" => out.warnings.push(format!(
                        "Validation failed for ValidatingAdmissionPolicy '{}' with binding '{}': {}",
                        policy.name, binding_name, message
                    )),
                    "Audit" => out.audit_failures.push(AuditFailure {
                        message: message.clone(),
                        policy: policy.name.clone(),
                        binding: binding_name.clone(),
                        expression_index: index.unwrap_or(0),
                        validation_actions: actions.iter().map(|a| a.to_string()).collect(),
                    }),
                    _ => {}
                }
            }
        }
    }
}

/// The parameter objects a binding selects: `[None]` without paramKind,
/// else the object `paramRef` names, or those its selector matches (in the
/// request's namespace when `paramRef.namespace` is empty and the param
/// kind is namespaced); none found is an error for `Deny`.
async fn resolve_params(
    registry: &Registry,
    policy: &CompiledPolicy,
    spec: &Value,
    request_namespace: &str,
) -> Result<Vec<Option<Value>>, String> {
    let Some((api_version, kind)) = &policy.param_kind else {
        return Ok(vec![None]);
    };
    let Some(param_ref) = spec.get("paramRef").filter(|v| v.is_object()) else {
        return Err(format!(
            "ValidatingAdmissionPolicy '{}' has a paramKind but its binding has no paramRef",
            policy.name
        ));
    };
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let info = registry
        .resources
        .all()
        .iter()
        .find(|i| i.group == group && i.version == version && i.kind == *kind)
        .cloned()
        .ok_or_else(|| format!("failed to find resource referenced by paramKind: '{api_version}, Kind={kind}'"))?;
    let s = |k: &str| param_ref.get(k).and_then(Value::as_str).unwrap_or("");
    let namespace = match (info.namespaced, s("namespace")) {
        (false, _) => "",
        (true, "") => request_namespace,
        (true, ns) => ns,
    };
    let store = registry
        .store_for(&info)
        .ok_or_else(|| format!("no storage for paramKind {kind}"))?;
    let found: Vec<Option<Value>> = if !s("name").is_empty() {
        match store.get_cached(namespace, s("name")).await {
            Ok(o) => vec![Some(Value::Object(o))],
            Err(e) if e.code == 404 => Vec::new(),
            Err(e) => return Err(e.message),
        }
    } else {
        let selector = Selector::from_label_selector_json(param_ref.get("selector")).map_err(|e| e.to_string())?;
        let listed = store
            .list_cached_objects("admission.policy-params", namespace)
            .await
            .map_err(|e| e.message)?;
        listed
            .iter()
            .filter(|o| selector.matches(&object::labels(o)))
            .map(|o| Some(Value::Object(o.clone())))
            .collect()
    };
    if found.is_empty() {
        return match s("parameterNotFoundAction") {
            "Allow" => Ok(Vec::new()),
            _ => Err("no params found for policy binding with `Deny` parameterNotFoundAction".to_string()),
        };
    }
    Ok(found)
}

/// The CEL variables of a request (without params).
fn activation(s: &Subject<'_>, authorizer: &AuthorizerSlot) -> Activation {
    let a = s.attrs;
    let op = match a.operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
    };
    let name = match (a.name, s.object) {
        ("", Some(o)) => object::name(o),
        (n, _) => n,
    };
    let kind = json!({"group": a.resource.group, "version": a.resource.version, "kind": a.resource.kind});
    let resource = json!({"group": a.resource.group, "version": a.resource.version, "resource": a.resource.resource});
    let request = json!({
        "kind": kind, "resource": resource, "subResource": a.subresource,
        "requestKind": kind, "requestResource": resource, "requestSubResource": a.subresource,
        "name": name, "namespace": a.namespace, "operation": op,
        "userInfo": {"username": a.user.name, "uid": a.user.uid, "groups": a.user.groups, "extra": a.user.extra},
        "dryRun": a.dry_run,
    });
    Activation {
        object: s.object.cloned().map(Value::Object),
        old_object: s.old_object.cloned().map(Value::Object),
        request: Some(request),
        params: None,
        namespace_object: s.namespace.cloned().map(Value::Object),
        variables: Default::default(),
        authorizer: Some((
            std::sync::Arc::new(authorizer::AsUser {
                authorizer: authorizer.0.clone(),
                user: a.user.clone(),
            }),
            crate::cel::authorizer::RequestResource {
                group: a.resource.group.clone(),
                resource: a.resource.resource.clone(),
                subresource: a.subresource.to_string(),
                namespace: a.namespace.to_string(),
                name: name.to_string(),
            },
        )),
    }
}

/// Upstream's denial: a Forbidden-shaped error about the object with the
/// validation's reason (`Invalid`, 422, by default) and the message as a
/// cause.
fn denial_error(attrs: &Attributes<'_>, obj: Option<&Object>, d: &Denial) -> ApiError {
    let why = format!(
        "ValidatingAdmissionPolicy '{}' with binding '{}' denied request: {}",
        d.policy, d.binding, d.message
    );
    let mut err = forbidden(attrs, obj, &why);
    let (code, reason) = match d.reason.as_deref() {
        Some("Unauthorized") => (401, "Unauthorized"),
        Some("Forbidden") => (403, "Forbidden"),
        Some("RequestEntityTooLarge") => (413, "RequestEntityTooLarge"),
        _ => (422, "Invalid"),
    };
    err.code = code;
    err.reason = reason;
    if let Some(details) = err.details.as_mut() {
        details.causes.push(StatusCause {
            reason: String::new(),
            message: why,
            field: String::new(),
        });
    }
    err
}
