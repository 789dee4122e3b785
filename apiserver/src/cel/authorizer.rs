//! CEL's `authorizer` variable (upstream's `library.Authz`): authorization
//! checks from inside an expression, as the request's user or a service
//! account:
//!
//! ```text
//! authorizer.group('apps').resource('deployments').namespace('ns').name('d').check('update').allowed()
//! authorizer.requestResource.subresource('status').check('patch').reason()
//! authorizer.serviceAccount('ns', 'sa').path('/healthz').check('get').allowed()
//! ```
//!
//! The builder values are opaque CEL values named as upstream's types
//! (`kubernetes.authorization.GroupCheck`, ...); `authorizer` itself is a
//! map holding `requestResource` (so field selection works) and the
//! opaque authorizer the methods act on. The check itself is the caller's
//! [`Authorize`], so this module knows nothing of RBAC.

use std::sync::Arc;

use cel::objects::{Key, Opaque};
use cel::{Context, ExecutionError};

use super::Value;

/// One check an expression asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Check {
    /// `(namespace, name)` of the service account to check as; `None` is
    /// the request's user.
    pub service_account: Option<(String, String)>,
    /// A non-resource check's path (`authorizer.path('/healthz')`).
    pub path: Option<String>,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub verb: String,
}

/// What an authorizer answered (`kubernetes.authorization.Decision`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
    pub error: Option<String>,
}

/// The server's authorizer, as expressions see it.
pub trait Authorize: Send + Sync + std::fmt::Debug {
    fn check(&self, check: &Check) -> Decision;
}

/// The request's resource, for `authorizer.requestResource`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestResource {
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
}

/// The key under which the `authorizer` map keeps its opaque value.
const SELF_KEY: &str = "@authorizer";

/// A value in a check's builder chain.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Builder {
    Authorizer(Check),
    Path(Check),
    Group(Check),
    Resource(Check),
    Decision(Decision),
}

impl Opaque for Builder {
    fn runtime_type_name(&self) -> &str {
        match self {
            Builder::Authorizer(_) => "kubernetes.authorization.Authorizer",
            Builder::Path(_) => "kubernetes.authorization.PathCheck",
            Builder::Group(_) => "kubernetes.authorization.GroupCheck",
            Builder::Resource(_) => "kubernetes.authorization.ResourceCheck",
            Builder::Decision(_) => "kubernetes.authorization.Decision",
        }
    }
}

fn opaque(b: Builder) -> Value {
    Value::Opaque(Arc::new(b))
}

/// The `authorizer` variable of a request.
pub fn variable(request: &RequestResource) -> Value {
    let base = Check::default();
    let request_check = Check {
        group: request.group.clone(),
        resource: request.resource.clone(),
        subresource: request.subresource.clone(),
        namespace: request.namespace.clone(),
        name: request.name.clone(),
        ..Check::default()
    };
    let map: std::collections::HashMap<String, Value> = [
        (SELF_KEY.to_string(), opaque(Builder::Authorizer(base))),
        ("requestResource".to_string(), opaque(Builder::Resource(request_check))),
    ]
    .into_iter()
    .collect();
    Value::from(map)
}

/// The builder value `v` holds (the `authorizer` map stands for its
/// opaque authorizer).
fn builder(v: &Value) -> Option<Builder> {
    match v {
        Value::Opaque(o) => o.downcast_ref::<Builder>().cloned(),
        Value::Map(m) => m.map.get(&Key::from(SELF_KEY.to_string())).and_then(builder),
        _ => None,
    }
}

fn wrong_receiver(function: &str, v: &Value) -> ExecutionError {
    ExecutionError::function_error(
        function,
        format!("no such overload for receiver {:?}", super::type_name(v)),
    )
}

/// Registers the authorization functions on `ctx`, checking with `authz`.
pub fn register(ctx: &mut Context<'_, '_>, authz: Arc<dyn Authorize>) -> Result<(), cel::DeclarationError> {
    type R = Result<Value, ExecutionError>;
    ctx.add_function(
        "group",
        |cel::extractors::This(this): cel::extractors::This<Value>, g: Arc<String>| -> R {
            match builder(&this) {
                Some(Builder::Authorizer(c)) => Ok(opaque(Builder::Group(Check {
                    group: g.to_string(),
                    ..c
                }))),
                _ => Err(wrong_receiver("group", &this)),
            }
        },
    )?;
    ctx.add_function(
        "path",
        |cel::extractors::This(this): cel::extractors::This<Value>, p: Arc<String>| -> R {
            match builder(&this) {
                Some(Builder::Authorizer(c)) => Ok(opaque(Builder::Path(Check {
                    path: Some(p.to_string()),
                    ..c
                }))),
                _ => Err(wrong_receiver("path", &this)),
            }
        },
    )?;
    ctx.add_function(
        "serviceAccount",
        |cel::extractors::This(this): cel::extractors::This<Value>, ns: Arc<String>, name: Arc<String>| -> R {
            match builder(&this) {
                Some(Builder::Authorizer(c)) => Ok(opaque(Builder::Authorizer(Check {
                    service_account: Some((ns.to_string(), name.to_string())),
                    ..c
                }))),
                _ => Err(wrong_receiver("serviceAccount", &this)),
            }
        },
    )?;
    ctx.add_function(
        "resource",
        |cel::extractors::This(this): cel::extractors::This<Value>, r: Arc<String>| -> R {
            match builder(&this) {
                Some(Builder::Group(c)) => Ok(opaque(Builder::Resource(Check {
                    resource: r.to_string(),
                    ..c
                }))),
                _ => Err(wrong_receiver("resource", &this)),
            }
        },
    )?;
    let setter = |name: &'static str, set: fn(&mut Check, String)| {
        move |cel::extractors::This(this): cel::extractors::This<Value>, v: Arc<String>| -> R {
            match builder(&this) {
                Some(Builder::Resource(mut c)) => {
                    set(&mut c, v.to_string());
                    Ok(opaque(Builder::Resource(c)))
                }
                _ => Err(wrong_receiver(name, &this)),
            }
        }
    };
    ctx.add_function("subresource", setter("subresource", |c, v| c.subresource = v))?;
    ctx.add_function("namespace", setter("namespace", |c, v| c.namespace = v))?;
    ctx.add_function("name", setter("name", |c, v| c.name = v))?;
    ctx.add_function(
        "check",
        move |cel::extractors::This(this): cel::extractors::This<Value>, verb: Arc<String>| -> R {
            let mut c = match builder(&this) {
                Some(Builder::Path(c) | Builder::Resource(c)) => c,
                _ => return Err(wrong_receiver("check", &this)),
            };
            c.verb = verb.to_string();
            Ok(opaque(Builder::Decision(authz.check(&c))))
        },
    )?;
    let decision = |name: &'static str, get: fn(&Decision) -> Value| {
        move |cel::extractors::This(this): cel::extractors::This<Value>| -> R {
            match builder(&this) {
                Some(Builder::Decision(d)) => Ok(get(&d)),
                _ => Err(wrong_receiver(name, &this)),
            }
        }
    };
    ctx.add_function("allowed", decision("allowed", |d| Value::Bool(d.allowed)))?;
    ctx.add_function("reason", decision("reason", |d| Value::from(d.reason.as_str())))?;
    ctx.add_function("errored", decision("errored", |d| Value::Bool(d.error.is_some())))?;
    ctx.add_function(
        "error",
        decision("error", |d| Value::from(d.error.as_deref().unwrap_or(""))),
    )?;
    Ok(())
}
