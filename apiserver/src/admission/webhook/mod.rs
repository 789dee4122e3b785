//! MutatingAdmissionWebhook and ValidatingAdmissionWebhook
//! (`admission/plugin/webhook` upstream): the webhooks of every
//! Mutating/ValidatingWebhookConfiguration (read from the watch cache,
//! configurations in name order) that match a request are sent an
//! AdmissionReview v1 over HTTPS.
//!
//! - mutating webhooks run one after another on the request object (create
//!   and update; for PATCH, the patched object, inside the store's retry
//!   loop so a conflict re-applies them); a JSONPatch response is applied; with `reinvocationPolicy: IfNeeded` a
//!   webhook is called once more when a later one changed the object;
//! - validating webhooks run concurrently on the object about to be
//!   written (and on deletes, on the stored object);
//! - a denial is upstream's `admission webhook "<name>" denied the
//!   request: <message>`; a failed call is a 500 `failed calling webhook`
//!   under `failurePolicy: Fail` and skipped under `Ignore`;
//! - on dry-run requests, webhooks whose `sideEffects` is not `None` or
//!   `NoneOnDryRun` are refused with upstream's 400;
//! - `warnings` of responses become Warning headers ([`warnings`]).
//!
//! Requests about webhook configurations and admission policies are never
//! sent to webhooks, like upstream, so a bad webhook cannot lock them.

mod client;
mod conditions;
mod matching;
mod review;
mod service;
pub mod warnings;

use std::time::Duration;

use serde_json::Value;

use crate::registry::Registry;
use crate::registry::object::{self, Object};
use crate::status::ApiError;

use super::{Attributes, Operation};
use matching::RequestFacts;

const GROUP: &str = "admissionregistration.k8s.io";

/// Resources never sent to webhooks (upstream's
/// `IsExemptAdmissionConfigurationResource`).
const EXEMPT: &[&str] = &[
    "mutatingwebhookconfigurations",
    "validatingwebhookconfigurations",
    "validatingadmissionpolicies",
    "validatingadmissionpolicybindings",
    "mutatingadmissionpolicies",
    "mutatingadmissionpolicybindings",
];

/// The two kinds of webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Mutating,
    Validating,
}

impl Kind {
    fn resource(self) -> &'static str {
        match self {
            Kind::Mutating => "mutatingwebhookconfigurations",
            Kind::Validating => "validatingwebhookconfigurations",
        }
    }
}

/// One webhook of a configuration.
struct Hook {
    name: String,
    spec: Value,
}

impl Hook {
    fn ignores_failures(&self) -> bool {
        self.spec.get("failurePolicy").and_then(Value::as_str) == Some("Ignore")
    }

    fn timeout(&self) -> Duration {
        let secs = self.spec.get("timeoutSeconds").and_then(Value::as_u64).unwrap_or(10);
        Duration::from_secs(secs.clamp(1, 30))
    }

    fn reinvoke_if_needed(&self) -> bool {
        self.spec.get("reinvocationPolicy").and_then(Value::as_str) == Some("IfNeeded")
    }

    /// A failed call under the failurePolicy.
    fn failed(&self, reason: impl std::fmt::Display) -> Result<(), ApiError> {
        if self.ignores_failures() {
            tracing::warn!(webhook = %self.name, error = %reason, "failed calling webhook, failing open");
            return Ok(());
        }
        tracing::warn!(webhook = %self.name, error = %reason, "failed calling webhook, failing closed");
        Err(ApiError::internal(format!(
            "failed calling webhook \"{}\": {reason}",
            self.name
        )))
    }
}

fn exempt(attrs: &Attributes<'_>) -> bool {
    attrs.resource.group == GROUP && EXEMPT.contains(&attrs.resource.resource.as_str())
}

/// The webhooks of every configuration of `kind`, configurations sorted by
/// name.
async fn hooks(registry: &Registry, kind: Kind) -> Result<Vec<Hook>, ApiError> {
    let Some(store) = registry.store(GROUP, kind.resource()) else {
        return Ok(Vec::new());
    };
    let info = store.info.clone();
    let listed = store.list_cached("").await?;
    let mut configs: Vec<Object> = listed.items.into_iter().map(|i| i.into_object(&info)).collect();
    configs.sort_by(|a, b| object::name(a).cmp(object::name(b)));
    Ok(configs
        .into_iter()
        .flat_map(|c| match c.get("webhooks") {
            Some(Value::Array(hooks)) => hooks.clone(),
            _ => Vec::new(),
        })
        .map(|spec| Hook {
            name: spec.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
            spec,
        })
        .collect())
}

/// What a request carries to its webhooks, computed once.
struct Request<'a, 'b> {
    registry: &'a Registry,
    attrs: &'a Attributes<'b>,
    /// The namespace object for namespaceSelector (`None`: matches all).
    namespace: Option<Object>,
    /// The stored object, as served.
    old: Option<Object>,
}

impl<'a, 'b> Request<'a, 'b> {
    async fn new(registry: &'a Registry, attrs: &'a Attributes<'b>, new: Option<&Object>) -> Self {
        let old = match attrs.old {
            Some(o) => Some(o.clone()),
            None if attrs.operation != Operation::Create && !attrs.name.is_empty() => {
                match registry.store_for(attrs.resource) {
                    Some(store) => store.get(attrs.namespace, attrs.name).await.ok(),
                    None => None,
                }
            }
            None => None,
        }
        .map(|o| served(attrs, o));
        let namespace = if attrs.resource.group.is_empty() && attrs.resource.resource == "namespaces" {
            new.cloned().or_else(|| old.clone())
        } else if attrs.resource.namespaced && !attrs.namespace.is_empty() {
            let ns = match registry.store("", "namespaces") {
                Some(store) => store.get("", attrs.namespace).await.ok(),
                None => None,
            };
            Some(ns.unwrap_or_default())
        } else {
            None
        };
        Request {
            registry,
            attrs,
            namespace,
            old,
        }
    }

    /// Whether `hook` is for this request (`Err`: a bad selector).
    fn selects(&self, hook: &Hook, new: Option<&Object>) -> Result<bool, String> {
        if !matching::rules_match(&hook.spec, &RequestFacts::of(self.attrs)) {
            return Ok(false);
        }
        Ok(matching::namespace_matches(&hook.spec, self.namespace.as_ref())?
            && matching::object_matches(&hook.spec, new, self.old.as_ref())?)
    }

    /// Calls `hook` about `new` (as served). `Ok(None)`: not called (not
    /// selected, or it failed under `Ignore`).
    async fn call(&self, hook: &Hook, kind: Kind, new: Option<&Object>) -> Result<Option<review::Verdict>, ApiError> {
        match self.selects(hook, new) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => return hook.failed(e).map(|()| None),
        }
        let uid = object::new_uid();
        let review = review::request(&uid, self.attrs, new, self.old.as_ref());
        match conditions::matches(&hook.spec, &review["request"]) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => return hook.failed(e).map(|()| None),
        }
        if self.attrs.dry_run {
            let side_effects = hook.spec.get("sideEffects").and_then(Value::as_str).unwrap_or("");
            if !matches!(side_effects, "None" | "NoneOnDryRun") {
                return Err(ApiError::bad_request(format!(
                    "admission webhook \"{}\" does not support dry run",
                    hook.name
                )));
            }
        }
        let timeout = hook.timeout();
        let config = hook.spec.get("clientConfig").cloned().unwrap_or(Value::Null);
        let target = match client::ca_bundle(&config) {
            Err(e) => Err(e),
            Ok(ca) => match (config.get("url").and_then(Value::as_str), config.get("service")) {
                (Some(url), _) => client::url_target(url, timeout, ca),
                (None, Some(svc)) => service::target(self.registry, svc, timeout, ca).await,
                (None, None) => Err("clientConfig has neither url nor service".to_string()),
            },
        };
        let target = match target {
            Ok(t) => t,
            Err(e) => return hook.failed(e).map(|()| None),
        };
        let body = serde_json::to_vec(&review).map_err(ApiError::internal)?;
        let response = match client::post(&target, body, timeout).await {
            Ok(r) => r,
            Err(e) => return hook.failed(e).map(|()| None),
        };
        let verdict = match review::verdict(&uid, &response, kind == Kind::Mutating) {
            Ok(v) => v,
            Err(e) => {
                return hook
                    .failed(format!("received invalid webhook response: {e}"))
                    .map(|()| None);
            }
        };
        warnings::add(verdict.warnings.iter().cloned());
        if !verdict.allowed {
            return Err(review::denial(&hook.name, verdict.status.as_ref()));
        }
        Ok(Some(verdict))
    }
}

/// The object as its served version shows it.
fn served(attrs: &Attributes<'_>, obj: Object) -> Object {
    crate::handlers::response::object(attrs.resource, obj)
}

/// MutatingAdmissionWebhook on the request object.
pub async fn admit(registry: &Registry, attrs: &Attributes<'_>, obj: &mut Object) -> Result<(), ApiError> {
    if exempt(attrs) || attrs.operation == Operation::Delete {
        return Ok(());
    }
    let hooks = hooks(registry, Kind::Mutating).await?;
    if hooks.is_empty() {
        return Ok(());
    }
    let mut current = served(attrs, obj.clone());
    let req = Request::new(registry, attrs, Some(&current)).await;
    // Webhooks called so far that asked to be called again if a later one
    // changes the object, and whether one did.
    let mut reinvoke: Vec<(usize, bool)> = Vec::new();
    for (i, hook) in hooks.iter().enumerate() {
        let changed = mutate(&req, hook, &mut current).await?;
        if changed {
            reinvoke.iter_mut().for_each(|(_, c)| *c = true);
        }
        if hook.reinvoke_if_needed() {
            reinvoke.push((i, false));
        }
    }
    for (i, changed_after) in reinvoke {
        if changed_after {
            mutate(&req, &hooks[i], &mut current).await?;
        }
    }
    *obj = crate::convert::to_storage(attrs.resource, current);
    Ok(())
}

/// Calls one mutating webhook and applies its patch; whether it changed
/// the object.
async fn mutate(req: &Request<'_, '_>, hook: &Hook, current: &mut Object) -> Result<bool, ApiError> {
    let Some(verdict) = req.call(hook, Kind::Mutating, Some(current)).await? else {
        return Ok(false);
    };
    let Some(patch) = verdict.patch else {
        return Ok(false);
    };
    let before = Value::Object(current.clone());
    let patched = match crate::patch::json_patch(&before, &patch) {
        Ok(Value::Object(o)) => o,
        Ok(_) => return hook.failed("the patch must produce an object").map(|()| false),
        Err(e) => return hook.failed(format!("JSON patch: {e}")).map(|()| false),
    };
    let changed = Value::Object(patched.clone()) != before;
    *current = patched;
    Ok(changed)
}

/// ValidatingAdmissionWebhook on the object about to be written (`None`
/// for deletes, where the webhooks see the stored object as `oldObject`).
pub async fn validate(registry: &Registry, attrs: &Attributes<'_>, obj: Option<&Object>) -> Result<(), ApiError> {
    if exempt(attrs) {
        return Ok(());
    }
    let hooks = hooks(registry, Kind::Validating).await?;
    if hooks.is_empty() {
        return Ok(());
    }
    let new = obj.map(|o| served(attrs, o.clone()));
    let req = Request::new(registry, attrs, new.as_ref()).await;
    let calls = hooks.iter().map(|h| req.call(h, Kind::Validating, new.as_ref()));
    for result in futures::future::join_all(calls).await {
        result?;
    }
    Ok(())
}
