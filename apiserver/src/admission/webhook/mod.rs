//! MutatingAdmissionWebhook and ValidatingAdmissionWebhook
//! (`admission/plugin/webhook` upstream): the webhooks of every
//! Mutating/ValidatingWebhookConfiguration (read from the watch cache,
//! configurations in name order) that match a request are sent an
//! AdmissionReview v1 over HTTPS.
//!
//! - mutating webhooks run one after another on the request object (create
//!   and update; updates inside the store's retry loop, with the stored
//!   object as `oldObject`, so a conflict re-applies them); a JSONPatch
//!   response is applied; with `reinvocationPolicy: IfNeeded` a
//!   webhook is called once more when a later one changed the object;
//! - validating webhooks run concurrently on the object about to be
//!   written (and on deletes, on the stored object);
//! - a denial is upstream's `admission webhook "<name>" denied the
//!   request: <message>`; a failed call is a 500 `failed calling webhook`
//!   under `failurePolicy: Fail` and skipped under `Ignore`;
//! - on dry-run requests, webhooks whose `sideEffects` is not `None` or
//!   `NoneOnDryRun` are refused with upstream's 400;
//! - `warnings` of responses become Warning headers ([`warnings`]);
//! - calls leave upstream's audit annotations on the request's event
//!   ([`audit`]).
//!
//! Requests about webhook configurations and admission policies are never
//! sent to webhooks, like upstream, so a bad webhook cannot lock them.

mod audit;
mod client;
mod conditions;
mod matching;
mod review;
mod service;
pub mod warnings;

use std::sync::Arc;
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
    /// The configuration's name.
    configuration: String,
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

    /// A failed call under the failurePolicy, noted in the audit event
    /// when it fails open.
    fn call_failed(&self, slot: audit::Slot, reason: impl std::fmt::Display) -> Result<(), ApiError> {
        if self.ignores_failures() {
            audit::failed_open(slot, &self.name);
        }
        self.failed(reason)
    }

    /// A failure under the failurePolicy.
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
/// name; built once while the configurations do not change.
async fn hooks(registry: &Registry, kind: Kind) -> Result<Arc<Vec<Hook>>, ApiError> {
    let Some(store) = registry.store(GROUP, kind.resource()) else {
        return Ok(Arc::default());
    };
    let info = store.info.clone();
    store
        .list_cached_derived("admission.webhooks", "", |items| {
            let configs = items.into_iter().map(|i| i.into_object(&info)).collect();
            hooks_of(configs)
        })
        .await
}

/// The webhooks of `configs`, configurations sorted by name.
fn hooks_of(mut configs: Vec<Object>) -> Vec<Hook> {
    configs.sort_by(|a, b| object::name(a).cmp(object::name(b)));
    configs
        .into_iter()
        .flat_map(|c| {
            let configuration = object::name(&c).to_string();
            let hooks = match c.get("webhooks") {
                Some(Value::Array(hooks)) => hooks.clone(),
                _ => Vec::new(),
            };
            hooks.into_iter().map(move |spec| Hook {
                name: spec.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                configuration: configuration.clone(),
                spec,
            })
        })
        .collect()
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
                Some(store) => store.get_cached("", attrs.namespace).await.ok(),
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

    /// Whether `hook` is called about `new` (as served): its rules,
    /// selectors and matchConditions (upstream's `ShouldCallHook`). The
    /// AdmissionReview to send, or `Ok(None)`: not called (not selected, or
    /// a bad selector or condition under `Ignore`).
    fn invocation(&self, hook: &Hook, new: Option<&Object>) -> Result<Option<Invocation>, ApiError> {
        match self.selects(hook, new) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => return hook.failed(e).map(|()| None),
        }
        let uid = object::new_uid();
        let review = review::request(&uid, self.attrs, new, self.old.as_ref());
        match conditions::matches(&hook.spec, &review["request"]) {
            Ok(true) => Ok(Some(Invocation { uid, review })),
            Ok(false) => Ok(None),
            Err(e) => hook.failed(e).map(|()| None),
        }
    }

    /// Sends `hook` its review. `Ok(None)`: the call failed under `Ignore`.
    async fn send(
        &self,
        hook: &Hook,
        invocation: &Invocation,
        slot: audit::Slot,
    ) -> Result<Option<review::Verdict>, ApiError> {
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
            Err(e) => return hook.call_failed(slot, e).map(|()| None),
        };
        let body = serde_json::to_vec(&invocation.review).map_err(ApiError::internal)?;
        let response = match client::post(&target, body, timeout).await {
            Ok(r) => r,
            Err(e) => return hook.call_failed(slot, e).map(|()| None),
        };
        let verdict = match review::verdict(&invocation.uid, &response, slot.mutating) {
            Ok(v) => v,
            Err(e) => {
                return hook
                    .call_failed(slot, format!("received invalid webhook response: {e}"))
                    .map(|()| None);
            }
        };
        audit::response_annotations(&hook.name, &verdict.audit_annotations);
        warnings::add(verdict.warnings.iter().cloned());
        if !verdict.allowed {
            return Err(review::denial(&hook.name, verdict.status.as_ref()));
        }
        Ok(Some(verdict))
    }
}

/// A webhook call about to be made: the review and its uid.
struct Invocation {
    uid: String,
    review: Value,
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
        let slot = audit::Slot {
            mutating: true,
            round: 0,
            index: i,
        };
        let Some(changed) = mutate(&req, hook, slot, &mut current).await? else {
            continue;
        };
        if changed {
            reinvoke.iter_mut().for_each(|(_, c)| *c = true);
        }
        if hook.reinvoke_if_needed() {
            reinvoke.push((i, false));
        }
    }
    for (i, changed_after) in reinvoke {
        if changed_after {
            let slot = audit::Slot {
                mutating: true,
                round: 1,
                index: i,
            };
            mutate(&req, &hooks[i], slot, &mut current).await?;
        }
    }
    *obj = crate::convert::to_storage(attrs.resource, current);
    Ok(())
}

/// Calls one mutating webhook, if it is for this request, and applies its
/// patch: `None` when it was not called, else whether it changed the
/// object. Every call is noted in the audit event, with its patch.
async fn mutate(
    req: &Request<'_, '_>,
    hook: &Hook,
    slot: audit::Slot,
    current: &mut Object,
) -> Result<Option<bool>, ApiError> {
    let Some(invocation) = req.invocation(hook, Some(current))? else {
        return Ok(None);
    };
    let result = apply_verdict(req, hook, &invocation, slot, current).await;
    let changed = *result.as_ref().unwrap_or(&false);
    audit::mutation(slot, &hook.configuration, &hook.name, changed);
    result.map(Some)
}

/// Sends the call and applies the patch it answers with; whether the
/// object changed. Like upstream, a patch that cannot be decoded is a
/// failed call (ignored under `Ignore`), one that does not apply is an
/// internal error.
async fn apply_verdict(
    req: &Request<'_, '_>,
    hook: &Hook,
    invocation: &Invocation,
    slot: audit::Slot,
    current: &mut Object,
) -> Result<bool, ApiError> {
    let Some(verdict) = req.send(hook, invocation, slot).await? else {
        return Ok(false);
    };
    let Some(patch) = verdict.patch else {
        return Ok(false);
    };
    let ops = match serde_json::from_slice::<Vec<Value>>(&patch) {
        Ok(ops) if ops.is_empty() => return Ok(false),
        Ok(ops) => Value::Array(ops),
        Err(e) => {
            return hook
                .call_failed(slot, format!("received undecodable patch in webhook response: {e}"))
                .map(|()| false);
        }
    };
    let before = Value::Object(current.clone());
    let patched = match crate::patch::json_patch(&before, &patch) {
        Ok(Value::Object(o)) => o,
        Ok(_) => return Err(ApiError::internal("the patch must produce an object")),
        Err(e) => return Err(ApiError::internal(e)),
    };
    audit::patch(slot, &hook.configuration, &hook.name, &ops);
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
    // The webhooks for this request, numbered among themselves for the
    // audit annotations, then called at once.
    let mut relevant = Vec::new();
    for hook in hooks.iter() {
        if let Some(invocation) = req.invocation(hook, new.as_ref())? {
            relevant.push((hook, invocation));
        }
    }
    let calls = relevant.iter().enumerate().map(|(index, (hook, invocation))| {
        let slot = audit::Slot {
            mutating: false,
            round: 0,
            index,
        };
        req.send(hook, invocation, slot)
    });
    for result in futures::future::join_all(calls).await {
        result?;
    }
    Ok(())
}
