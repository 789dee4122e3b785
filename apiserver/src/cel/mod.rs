//! CEL for admission: the expressions of ValidatingAdmissionPolicies (and
//! webhooks' matchConditions), on the `cel` crate's parser and interpreter
//! with its string and list extensions, like upstream's
//! `k8s.io/apiserver/pkg/admission/plugin/cel` on cel-go.
//!
//! [`compile`] parses an expression once (when a policy is read) and checks
//! that it names only the variables its context declares, which is what
//! upstream's type check reports most often ("undeclared reference");
//! [`Program::eval`] runs it against an [`Activation`] holding the request's
//! JSON values (`object`, `oldObject`, `request`, `params`,
//! `namespaceObject`, `variables`). JSON integers become CEL `int`s, as
//! upstream's unstructured conversion makes them; a field missing from an
//! object is an evaluation error unless guarded by `has()`, as upstream.
//!
//! There is no static type checker: a type mismatch surfaces when the
//! expression runs, as an [`EvalError`] (policies' field names are checked
//! against the matched kinds' schemas by `admission::vap`'s type check).
//! An activation with an authorizer also gets upstream's `authorizer`
//! variable and its functions ([`authorizer`]), registered only for
//! programs that name it.

pub mod authorizer;
mod value;

#[cfg(test)]
mod tests;

use std::sync::{Arc, LazyLock};

use serde_json::Value as Json;

pub use value::{from_json, to_json};

/// A CEL value, as the interpreter returns it.
pub type Value = cel::Value;

/// The environment every admission expression is compiled and run in: the
/// standard library and macros plus the string and list extensions
/// (`lowerAscii`, `split`, `join`, `replace`, `indexOf`, ...).
static ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| {
    let mut env = cel::Env::stdlib();
    // Both extensions only declare new overloads on a fresh stdlib; a clash
    // would be a bug in the crate, so it is ignored rather than fatal.
    let _ = env.add_extension(cel::extensions::strings);
    let _ = env.add_extension(cel::extensions::lists);
    Arc::new(env)
});

/// Why an expression does not compile.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompileError {
    #[error("compilation failed: {0}")]
    Syntax(String),
    #[error("compilation failed: ERROR: <input>:1:1: undeclared reference to '{0}' (in container '')")]
    UndeclaredReference(String),
}

/// Why an expression failed when run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EvalError {
    #[error("{0}")]
    Execution(String),
    #[error("expected {expected} result, got {got}")]
    WrongType { expected: &'static str, got: String },
}

/// One compiled expression.
pub struct Program {
    source: String,
    program: cel::Program,
    /// Whether it names `authorizer` (only then are the authorization
    /// functions registered for it).
    uses_authorizer: bool,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Program").field(&self.source).finish()
    }
}

/// Compiles `expr` for a context that declares exactly the top-level
/// variables `variables` (e.g. `["object", "oldObject", "request"]`).
pub fn compile(expr: &str, variables: &[&str]) -> Result<Program, CompileError> {
    let program = ENV.compile(expr).map_err(|e| CompileError::Syntax(e.to_string()))?;
    let references = program.references();
    for name in references.variables() {
        // Comprehension variables (`x` in `l.all(x, ...)`) and the
        // comprehension accumulator are bound by the macro, not the context.
        if !variables.contains(&name) && !binds(expr, name) && !name.starts_with('@') && name != "__result__" {
            return Err(CompileError::UndeclaredReference(name.to_string()));
        }
    }
    let uses_authorizer = references.has_variable("authorizer");
    Ok(Program {
        source: expr.to_string(),
        program,
        uses_authorizer,
    })
}

/// Whether `name` is bound by a comprehension macro in `expr`
/// (`.all(name,`, `.exists(name,`, `.map(name,` ...).
fn binds(expr: &str, name: &str) -> bool {
    ["all", "exists", "exists_one", "map", "filter"].iter().any(|m| {
        let mut rest = expr;
        while let Some(i) = rest.find(&format!(".{m}(")) {
            rest = &rest[i + m.len() + 2..];
            let arg = rest.split([',', ')']).next().unwrap_or("").trim();
            if arg == name {
                return true;
            }
        }
        false
    })
}

/// The values an expression sees. Each is a JSON value as the API serves
/// it; `None` and `Json::Null` are both CEL `null`.
#[derive(Debug, Default, Clone)]
pub struct Activation {
    pub object: Option<Json>,
    pub old_object: Option<Json>,
    pub request: Option<Json>,
    pub params: Option<Json>,
    pub namespace_object: Option<Json>,
    /// `variables.<name>`: the policy's variables already evaluated.
    pub variables: serde_json::Map<String, Json>,
    /// `authorizer`: checks as the request's user, and the request's
    /// resource for `authorizer.requestResource`.
    pub authorizer: Option<(Arc<dyn authorizer::Authorize>, authorizer::RequestResource)>,
}

impl Program {
    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Runs the program against `activation`.
    pub fn eval(&self, activation: &Activation) -> Result<Value, EvalError> {
        let mut ctx = cel::Context::with_env(ENV.clone());
        let bind = |ctx: &mut cel::Context, name: &str, v: &Option<Json>| {
            ctx.add_variable_from_value(name, v.as_ref().map_or(Value::Null, from_json));
        };
        bind(&mut ctx, "object", &activation.object);
        bind(&mut ctx, "oldObject", &activation.old_object);
        bind(&mut ctx, "request", &activation.request);
        bind(&mut ctx, "params", &activation.params);
        bind(&mut ctx, "namespaceObject", &activation.namespace_object);
        ctx.add_variable_from_value("variables", from_json(&Json::Object(activation.variables.clone())));
        if self.uses_authorizer
            && let Some((authz, request)) = &activation.authorizer
        {
            ctx.add_variable_from_value("authorizer", authorizer::variable(request));
            authorizer::register(&mut ctx, authz.clone()).map_err(|e| EvalError::Execution(e.to_string()))?;
        }
        self.program
            .execute(&ctx)
            .map_err(|e| EvalError::Execution(e.to_string()))
    }

    /// Runs the program and requires a `bool`.
    pub fn eval_bool(&self, activation: &Activation) -> Result<bool, EvalError> {
        match self.eval(activation)? {
            Value::Bool(b) => Ok(b),
            other => Err(EvalError::WrongType {
                expected: "bool",
                got: type_name(&other).to_string(),
            }),
        }
    }

    /// Runs the program and requires a `string`.
    pub fn eval_string(&self, activation: &Activation) -> Result<String, EvalError> {
        match self.eval(activation)? {
            Value::String(s) => Ok(s.to_string()),
            other => Err(EvalError::WrongType {
                expected: "string",
                got: type_name(&other).to_string(),
            }),
        }
    }
}

/// The CEL name of `v`'s type.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::List(_) => "list",
        Value::Map(_) => "map",
        Value::Function(..) => "function",
        Value::Int(_) => "int",
        Value::UInt(_) => "uint",
        Value::Float(_) => "double",
        Value::String(_) => "string",
        Value::Bytes(_) => "bytes",
        Value::Bool(_) => "bool",
        Value::Opaque(_) => "opaque",
        Value::Struct(_) => "object",
        Value::Null => "null_type",
    }
}
