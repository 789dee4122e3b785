//! PodSecurity (`k8s.io/pod-security-admission`, the built-in plugin of
//! `plugin/pkg/admission/security/podsecurity`): the Pod Security
//! Standards a namespace's `pod-security.kubernetes.io/*` labels ask for.
//!
//! - pods (create, and updates that change images or add containers) are
//!   rejected when they violate the namespace's `enforce` policy, and get a
//!   `Warning` when they violate its `warn` policy;
//! - the pod templates of workload kinds get the `warn` warnings only (a
//!   workload is never rejected: its pods will be);
//! - namespace labels must parse (else 422), and a stricter `enforce` on an
//!   existing namespace warns about the pods already there that violate it.
//!
//! Audited requests get upstream's audit annotations: the pod's
//! `pod-security.kubernetes.io/enforce-policy` and, when it violates the
//! namespace's `audit` policy, `pod-security.kubernetes.io/audit-violations`
//! (pods and workload templates alike). Exemptions (usernames, runtime classes,
//! namespaces) are not configurable here: nothing is exempt.

mod baseline;
mod evaluate;
mod policy;
mod restricted;

#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::registry::Registry;
use crate::registry::object::{self, Object};
use crate::status::ApiError;

use super::{Attributes, Operation, forbidden};
use evaluate::{PodView, evaluate};
use policy::{Level, LevelVersion, Policy, policy_to_evaluate};

/// Pod subresources that cannot change the pod's spec.
const IGNORED_POD_SUBRESOURCES: &[&str] = &[
    "exec",
    "attach",
    "binding",
    "eviction",
    "log",
    "portforward",
    "proxy",
    "status",
];

/// How many existing pods a namespace change checks (upstream's default
/// `namespaceMaxPodsToCheck`).
const MAX_PODS_TO_CHECK: usize = 3000;

/// The validating phase: an error for an enforce violation or bad labels,
/// else the warnings for the response.
pub async fn validate(registry: &Registry, attrs: &Attributes<'_>, obj: &Object) -> Result<Vec<String>, ApiError> {
    if attrs.operation == Operation::Delete {
        return Ok(Vec::new());
    }
    let (group, resource) = (attrs.resource.group.as_str(), attrs.resource.resource.as_str());
    match (group, resource) {
        ("", "namespaces") if attrs.subresource.is_empty() => validate_namespace(registry, attrs, obj).await,
        ("", "pods") if !IGNORED_POD_SUBRESOURCES.contains(&attrs.subresource) => {
            validate_pod(registry, attrs, obj).await
        }
        ("", "replicationcontrollers" | "podtemplates")
        | ("apps", "replicasets" | "deployments" | "statefulsets" | "daemonsets")
        | ("batch", "jobs" | "cronjobs")
            if attrs.subresource.is_empty() =>
        {
            validate_pod_controller(registry, attrs, obj).await
        }
        _ => Ok(Vec::new()),
    }
}

/// The policy of the request's namespace (from the watch cache, like
/// upstream's namespace lister with its live lookup behind it; read once
/// per request, see [`super::Lookups`]).
async fn namespace_policy(registry: &Registry, attrs: &Attributes<'_>) -> Result<(Policy, bool), ApiError> {
    let Some(ns) = attrs.lookups.namespace(registry, attrs.namespace).await? else {
        return Ok((Policy::default(), false));
    };
    let (policy, errs) = policy_to_evaluate(ns.labels());
    Ok((policy, errs.is_empty()))
}

fn labels_of(obj: &Object) -> Option<&serde_json::Map<String, Value>> {
    object::meta(obj).get("labels").and_then(Value::as_object)
}

async fn validate_pod(registry: &Registry, attrs: &Attributes<'_>, obj: &Object) -> Result<Vec<String>, ApiError> {
    let (policy, valid) = namespace_policy(registry, attrs)
        .await
        .map_err(|_| ApiError::internal(format!("failed to lookup namespace {:?}", attrs.namespace)))?;
    if valid && policy.fully_privileged() {
        crate::audit::annotate(ENFORCE_POLICY_ANNOTATION, "privileged:latest");
        return Ok(Vec::new());
    }
    if attrs.operation == Operation::Update
        && let Some(old) = attrs.old
        && !significant_pod_update(obj, old)
    {
        return Ok(Vec::new());
    }
    let pod = PodView::of_object(obj);
    crate::audit::annotate(ENFORCE_POLICY_ANNOTATION, &policy.enforce.to_string());
    let enforced = evaluate(policy.enforce, &pod);
    annotate_audit_violations(policy, &pod, Some((policy.enforce, &enforced)));
    if !enforced.allowed() {
        let why = format!(
            "violates PodSecurity {:?}: {}",
            policy.enforce.to_string(),
            enforced.forbidden_detail()
        );
        return Err(forbidden(attrs, Some(obj), &why));
    }
    Ok(warn(policy, &pod, Some((policy.enforce, &enforced))))
}

async fn validate_pod_controller(
    registry: &Registry,
    attrs: &Attributes<'_>,
    obj: &Object,
) -> Result<Vec<String>, ApiError> {
    // Upstream allows (with an audit annotation) when the namespace cannot
    // be read: the workload's pods are checked on their own.
    let Ok((policy, valid)) = namespace_policy(registry, attrs).await else {
        return Ok(Vec::new());
    };
    if valid && policy.warn.level == Level::Privileged && policy.audit.level == Level::Privileged {
        return Ok(Vec::new());
    }
    let Some(template) = pod_template(&attrs.resource.resource, obj) else {
        return Ok(Vec::new());
    };
    let pod = PodView::of(template);
    annotate_audit_violations(policy, &pod, None);
    Ok(warn(policy, &pod, None))
}

/// The audit annotation naming the enforce policy a pod was checked at.
const ENFORCE_POLICY_ANNOTATION: &str = "pod-security.kubernetes.io/enforce-policy";
/// The audit annotation with the `audit` mode's violations.
const AUDIT_VIOLATIONS_ANNOTATION: &str = "pod-security.kubernetes.io/audit-violations";

/// The `audit` mode: annotates the request's audit event with the pod's
/// violations of the namespace's audit policy (evaluated only when the
/// request is audited, reusing the enforce evaluation at the same level).
fn annotate_audit_violations(policy: Policy, pod: &PodView<'_>, cached: Option<(LevelVersion, &evaluate::Aggregate)>) {
    if !crate::audit::is_audited() || policy.audit.level == Level::Privileged {
        return;
    }
    let result = match cached {
        Some((lv, r)) if lv == policy.audit => r.clone(),
        _ => evaluate(policy.audit, pod),
    };
    if !result.allowed() {
        let why = format!(
            "would violate PodSecurity {:?}: {}",
            policy.audit.to_string(),
            result.forbidden_detail()
        );
        crate::audit::annotate(AUDIT_VIOLATIONS_ANNOTATION, &why);
    }
}

/// The `warn` mode's warning, reusing an evaluation already made at the
/// same level and version.
fn warn(policy: Policy, pod: &PodView<'_>, cached: Option<(LevelVersion, &evaluate::Aggregate)>) -> Vec<String> {
    let result = match cached {
        Some((lv, r)) if lv == policy.warn => r.clone(),
        _ => evaluate(policy.warn, pod),
    };
    if result.allowed() {
        return Vec::new();
    }
    vec![format!(
        "would violate PodSecurity {:?}: {}",
        policy.warn.to_string(),
        result.forbidden_detail()
    )]
}

/// A workload's pod template (upstream's `DefaultPodSpecExtractor`).
fn pod_template<'a>(resource: &str, obj: &'a Object) -> Option<&'a Value> {
    let template = match resource {
        "podtemplates" => obj.get("template"),
        "cronjobs" => obj
            .get("spec")
            .and_then(|s| s.get("jobTemplate"))
            .and_then(|j| j.get("spec"))
            .and_then(|s| s.get("template")),
        _ => obj.get("spec").and_then(|s| s.get("template")),
    };
    template.filter(|t| !t.is_null())
}

/// Whether a pod update can change what the policy sees (upstream's
/// `isSignificantPodUpdate`: the rest of a pod's spec is immutable).
fn significant_pod_update(new: &Object, old: &Object) -> bool {
    const SECCOMP_POD: &str = "seccomp.security.alpha.kubernetes.io/pod";
    let annotation = |o: &Object, k: &str| {
        object::meta(o)
            .get("annotations")
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .map(String::from)
    };
    if annotation(new, SECCOMP_POD) != annotation(old, SECCOMP_POD) {
        return true;
    }
    let list = |o: &'_ Object, k: &str| -> Vec<Value> {
        o.get("spec")
            .and_then(|s| s.get(k))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let container_changed = |c: &Value, oc: &Value| {
        let image = |v: &Value| v.get("image").cloned();
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        let key = format!("container.seccomp.security.alpha.kubernetes.io/{name}");
        image(c) != image(oc) || annotation(new, &key) != annotation(old, &key)
    };
    for k in ["containers", "initContainers"] {
        let (n, o) = (list(new, k), list(old, k));
        if n.len() != o.len() || n.iter().zip(&o).any(|(c, oc)| container_changed(c, oc)) {
            return true;
        }
    }
    let old_ephemeral = list(old, "ephemeralContainers");
    list(new, "ephemeralContainers").iter().any(|c| {
        let name = c.get("name");
        match old_ephemeral.iter().find(|oc| oc.get("name") == name) {
            None => true,
            Some(oc) => container_changed(c, oc),
        }
    })
}

/// Namespaces: labels must parse; a stricter enforce level warns about the
/// existing pods that violate it.
async fn validate_namespace(
    registry: &Registry,
    attrs: &Attributes<'_>,
    obj: &Object,
) -> Result<Vec<String>, ApiError> {
    let (new_policy, new_errs) = policy_to_evaluate(labels_of(obj));
    let invalid = |errs| ApiError::invalid("", "Namespace", object::name(obj), errs);
    match (attrs.operation, attrs.old) {
        (Operation::Create, _) => {
            if !new_errs.is_empty() {
                return Err(invalid(&new_errs));
            }
            Ok(Vec::new())
        }
        (Operation::Update, Some(old)) => {
            let (old_policy, old_errs) = policy_to_evaluate(labels_of(old));
            if !new_errs.is_empty() && (old_errs.is_empty() || new_errs != old_errs) {
                return Err(invalid(&new_errs));
            }
            let (new, old) = (new_policy.enforce, old_policy.enforce);
            if new == old || new.level == Level::Privileged || (new.version == old.version && new.level <= old.level) {
                return Ok(Vec::new());
            }
            Ok(evaluate_pods_in_namespace(registry, object::name(obj), new).await)
        }
        _ => Ok(Vec::new()),
    }
}

/// Warnings about the namespace's pods that violate a new enforce policy,
/// grouped by reasons (upstream's `EvaluatePodsInNamespace`).
async fn evaluate_pods_in_namespace(registry: &Registry, namespace: &str, enforce: LevelVersion) -> Vec<String> {
    const LIST_FAILED: &str = "failed to list pods while checking new PodSecurity enforce level";
    let Some(store) = registry.store("", "pods") else {
        return vec![LIST_FAILED.to_string()];
    };
    let info = store.info.clone();
    let Ok(listed) = store.list_cached(namespace).await else {
        return vec![LIST_FAILED.to_string()];
    };
    let pods: Vec<Object> = listed.items.into_iter().map(|i| i.into_object(&info)).collect();
    let total = pods.len();
    // reason -> (lexically first pod name, count), in first-seen order.
    let mut by_reason: Vec<(String, String, usize)> = Vec::new();
    for pod in pods.iter().take(MAX_PODS_TO_CHECK) {
        let result = evaluate(enforce, &PodView::of_object(pod));
        if result.allowed() {
            continue;
        }
        let reason = result.forbidden_reason();
        let name = object::name(pod);
        match by_reason.iter_mut().find(|(r, _, _)| *r == reason) {
            Some((_, first, count)) => {
                if name < first.as_str() {
                    *first = name.to_string();
                }
                *count += 1;
            }
            None => by_reason.push((reason, name.to_string(), 1)),
        }
    }
    let mut warnings = Vec::new();
    let checked = total.min(MAX_PODS_TO_CHECK);
    if checked < total {
        warnings.push(format!(
            "new PodSecurity enforce level only checked against the first {checked} of {total} existing pods"
        ));
    }
    if !by_reason.is_empty() {
        warnings.push(format!(
            "existing pods in namespace {namespace:?} violate the new PodSecurity enforce level {:?}",
            enforce.to_string()
        ));
    }
    let mut pod_warnings: Vec<String> = by_reason
        .into_iter()
        .map(|(reason, first, count)| match count {
            1 => format!("{first}: {reason}"),
            2 => format!("{first} (and 1 other pod): {reason}"),
            n => format!("{first} (and {} other pods): {reason}", n - 1),
        })
        .collect();
    pod_warnings.sort();
    warnings.extend(pod_warnings);
    warnings
}
