//! A ValidatingAdmissionPolicy compiled once per resourceVersion: its
//! matchConditions, variables and validations as CEL programs, and the
//! evaluation of them against one request (upstream's `validating.Validator`).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::Value;

use crate::cel::{self, Activation, Program};
use crate::registry::object::{self, Object};

/// The top-level names a policy's expressions may use.
pub fn declared(has_params: bool) -> Vec<&'static str> {
    let mut v = vec![
        "object",
        "oldObject",
        "request",
        "namespaceObject",
        "variables",
        "authorizer",
    ];
    if has_params {
        v.push("params");
    }
    v
}

/// `failurePolicy`: what an error does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    Fail,
    Ignore,
}

/// One `validations[]` entry.
#[derive(Debug)]
pub struct Validation {
    pub program: Result<Program, String>,
    pub message: Option<String>,
    pub message_expression: Option<Result<Program, String>>,
    pub reason: Option<String>,
}

/// A compiled policy.
#[derive(Debug)]
pub struct CompiledPolicy {
    pub name: String,
    pub failure_policy: FailurePolicy,
    /// `spec.paramKind` as (apiVersion, kind).
    pub param_kind: Option<(String, String)>,
    pub match_constraints: Option<Value>,
    pub match_conditions: Vec<(String, Result<Program, String>)>,
    pub variables: Vec<(String, Result<Program, String>)>,
    pub validations: Vec<Validation>,
    /// `auditAnnotations`: (key, valueExpression).
    pub audit_annotations: Vec<(String, Result<Program, String>)>,
}

fn compile(expr: &str, vars: &[&str]) -> Result<Program, String> {
    cel::compile(expr, vars).map_err(|e| e.to_string())
}

fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

impl CompiledPolicy {
    pub fn new(policy: &Object) -> Self {
        let empty = Value::Null;
        let spec = policy.get("spec").unwrap_or(&empty);
        let param_kind = spec.get("paramKind").filter(|v| v.is_object()).map(|p| {
            (
                str_of(p, "apiVersion").unwrap_or("").to_string(),
                str_of(p, "kind").unwrap_or("").to_string(),
            )
        });
        let vars = declared(param_kind.is_some());
        let items = |k: &str| spec.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
        let named = |v: &Value| {
            let name = str_of(v, "name").unwrap_or("").to_string();
            (name, compile(str_of(v, "expression").unwrap_or(""), &vars))
        };
        CompiledPolicy {
            name: object::name(policy).to_string(),
            failure_policy: match str_of(spec, "failurePolicy") {
                Some("Ignore") => FailurePolicy::Ignore,
                _ => FailurePolicy::Fail,
            },
            param_kind,
            match_constraints: spec.get("matchConstraints").cloned(),
            match_conditions: items("matchConditions").iter().map(named).collect(),
            variables: items("variables").iter().map(named).collect(),
            audit_annotations: items("auditAnnotations")
                .iter()
                .map(|a| {
                    let key = str_of(a, "key").unwrap_or("").to_string();
                    (key, compile(str_of(a, "valueExpression").unwrap_or(""), &vars))
                })
                .collect(),
            validations: items("validations")
                .iter()
                .map(|v| Validation {
                    program: compile(str_of(v, "expression").unwrap_or(""), &vars),
                    message: str_of(v, "message").filter(|m| !m.is_empty()).map(str::to_string),
                    message_expression: str_of(v, "messageExpression")
                        .filter(|m| !m.is_empty())
                        .map(|m| compile(m, &vars)),
                    reason: str_of(v, "reason").filter(|m| !m.is_empty()).map(str::to_string),
                })
                .collect(),
        }
    }
}

/// Compiled policies by UID, kept while their resourceVersion is current.
type Cache = Mutex<HashMap<String, (String, Arc<CompiledPolicy>)>>;
static CACHE: LazyLock<Cache> = LazyLock::new(Default::default);

/// The compiled form of `policy`, compiled at most once per version.
pub fn compiled(policy: &Object) -> Arc<CompiledPolicy> {
    let uid = object::meta_str(policy, "uid").to_string();
    let rv = object::meta_str(policy, "resourceVersion").to_string();
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((v, c)) = cache.get(&uid)
        && *v == rv
        && !uid.is_empty()
    {
        return c.clone();
    }
    let c = Arc::new(CompiledPolicy::new(policy));
    if !uid.is_empty() {
        cache.insert(uid, (rv, c.clone()));
    }
    c
}

/// Drops the compiled policies whose UIDs are no longer listed.
pub fn retain_compiled(uids: &[&str]) {
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() > uids.len() {
        cache.retain(|uid, _| uids.contains(&uid.as_str()));
    }
}

/// What one validation decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The expression was false: the message and reason to deny with.
    Fail { message: String, reason: Option<String> },
    /// The expression (or a match condition) could not be evaluated.
    Error(String),
}

/// What one policy decided for one request and parameter.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// The failed validations, each with its index in `validations`
    /// (match condition errors have none).
    pub decisions: Vec<(Option<usize>, Decision)>,
    /// The `auditAnnotations` to publish, by key: a value, or the error
    /// evaluating it (null values are left out).
    pub audit_annotations: Vec<(String, Result<String, String>)>,
}

/// Runs the policy on one request and parameter: the match conditions
/// (any false skips the policy; an error is an error), then the
/// variables, then every validation and audit annotation.
pub fn evaluate(policy: &CompiledPolicy, act: Activation) -> Evaluation {
    let (decisions, act) = match validate(policy, act) {
        Ok(v) => v,
        Err(errors) => {
            return Evaluation {
                decisions: errors.into_iter().map(|e| (None, e)).collect(),
                audit_annotations: Vec::new(),
            };
        }
    };
    let mut audit_annotations = Vec::new();
    for (key, program) in &policy.audit_annotations {
        let value = match program {
            Err(e) => Err(e.clone()),
            Ok(p) => match p.eval(&act) {
                Ok(cel::Value::Null) => continue,
                Ok(cel::Value::String(v)) => Ok(v.to_string()),
                Ok(other) => Err(format!(
                    "valueExpression '{}' resulted in unsupported return type: {}. Return type must be either string or null.",
                    p.source(),
                    cel::type_name(&other)
                )),
                Err(e) => Err(format!("valueExpression '{}' resulted in error: {e}", p.source())),
            },
        };
        audit_annotations.push((key.clone(), value));
    }
    Evaluation {
        decisions,
        audit_annotations,
    }
}

/// The match conditions, variables and validations; `Err` with the match
/// conditions' errors, else the failed validations (empty when a match
/// condition is false) and the activation with the variables.
#[allow(clippy::type_complexity)]
fn validate(
    policy: &CompiledPolicy,
    mut act: Activation,
) -> Result<(Vec<(Option<usize>, Decision)>, Activation), Vec<Decision>> {
    let mut errors = Vec::new();
    for (name, cond) in &policy.match_conditions {
        match cond
            .as_ref()
            .map_err(String::clone)
            .and_then(|p| p.eval_bool(&act).map_err(|e| e.to_string()))
        {
            Ok(true) => {}
            Ok(false) => return Ok((Vec::new(), act)),
            Err(e) => errors.push(Decision::Error(format!(
                "failed to evaluate match condition '{name}': {e}"
            ))),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Variables are evaluated in order, each seeing the earlier ones; one
    // that fails is left out, so only the expressions using it fail.
    let mut var_errors = HashMap::new();
    for (name, program) in &policy.variables {
        match program
            .as_ref()
            .map_err(String::clone)
            .and_then(|p| p.eval(&act).map_err(|e| e.to_string()))
        {
            Ok(v) => {
                if let Some(j) = cel::to_json(&v) {
                    act.variables.insert(name.clone(), j);
                }
            }
            Err(e) => {
                var_errors.insert(name.clone(), e);
            }
        }
    }
    let mut out = Vec::new();
    for (index, v) in policy.validations.iter().enumerate() {
        let expr = v.program.as_ref().map(|p| p.source().trim().to_string());
        let result = match &v.program {
            Err(e) => Err(e.clone()),
            Ok(p) => p.eval_bool(&act).map_err(|e| {
                let failed_var = var_errors
                    .iter()
                    .find(|(name, _)| p.source().contains(&format!("variables.{name}")));
                match failed_var {
                    Some((name, err)) => format!("composited variable \"{name}\" fails to evaluate: {err}"),
                    None => e.to_string(),
                }
            }),
        };
        match result {
            Ok(true) => {}
            Ok(false) => {
                let default = || match &v.message {
                    Some(m) => m.clone(),
                    None => format!("failed expression: {}", expr.clone().unwrap_or_default()),
                };
                let message = match &v.message_expression {
                    Some(Ok(p)) => match p.eval_string(&act) {
                        Ok(m) if !m.trim().is_empty() && !m.contains('\n') => m,
                        _ => default(),
                    },
                    _ => default(),
                };
                out.push((
                    Some(index),
                    Decision::Fail {
                        message,
                        reason: v.reason.clone(),
                    },
                ));
            }
            Err(e) => {
                let source = v.program.as_ref().map(|p| p.source().to_string()).unwrap_or_default();
                out.push((
                    Some(index),
                    Decision::Error(format!("expression '{source}' resulted in error: {e}")),
                ));
            }
        }
    }
    Ok((out, act))
}
