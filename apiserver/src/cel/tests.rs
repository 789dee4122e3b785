use serde_json::json;

use super::*;

const VARS: &[&str] = &[
    "object",
    "oldObject",
    "request",
    "params",
    "namespaceObject",
    "variables",
];

fn deployment() -> Activation {
    Activation {
        object: Some(json!({
            "metadata": {"name": "web", "labels": {"env": "prod"}},
            "spec": {"replicas": 7, "template": {"spec": {"containers": [
                {"name": "a", "image": "registry.k8s.io/pause:3.10"},
                {"name": "b", "image": "docker.io/nginx"}
            ]}}}
        })),
        request: Some(json!({"operation": "CREATE", "userInfo": {"username": "alice"}})),
        params: Some(json!({"maxReplicas": 5})),
        ..Default::default()
    }
}

fn check(expr: &str, expected: Value) {
    let program = compile(expr, VARS).unwrap_or_else(|e| panic!("{expr}: {e}"));
    assert_eq!(program.eval(&deployment()), Ok(expected), "{expr}");
}

#[test]
fn evaluates_admission_expressions() {
    check("object.spec.replicas <= params.maxReplicas", Value::Bool(false));
    check("object.spec.replicas > 5", Value::Bool(true));
    check(
        "has(object.metadata.labels) && object.metadata.labels.env == 'prod'",
        Value::Bool(true),
    );
    check("has(object.spec.paused)", Value::Bool(false));
    check("'team' in object.metadata.labels", Value::Bool(false));
    check("size(object.spec.template.spec.containers)", Value::Int(2));
    check(
        "object.spec.template.spec.containers.all(c, c.image.startsWith('registry.k8s.io/'))",
        Value::Bool(false),
    );
    check(
        "object.spec.template.spec.containers.exists(c, c.image.contains('nginx'))",
        Value::Bool(true),
    );
    check(
        "object.spec.template.spec.containers.map(c, c.name).join(',')",
        Value::from("a,b"),
    );
    check("request.userInfo.username.upperAscii()", Value::from("ALICE"));
    check("object.metadata.name.matches('^w[a-z]+$')", Value::Bool(true));
    check("oldObject == null", Value::Bool(true));
    check(
        "'replicas ' + string(object.spec.replicas) + ' > 5'",
        Value::from("replicas 7 > 5"),
    );
}

#[test]
fn compile_reports_syntax_and_undeclared_names() {
    assert!(matches!(compile("object.spec.(", VARS), Err(CompileError::Syntax(_))));
    assert_eq!(
        compile("objekt.spec.replicas > 1", VARS).unwrap_err(),
        CompileError::UndeclaredReference("objekt".into())
    );
    // `params` is declared only when the policy has a paramKind.
    assert!(compile("params.x == 1", &["object"]).is_err());
    assert!(compile("object.items.all(i, i > 0)", &["object"]).is_ok());
}

#[test]
fn eval_errors_are_values_not_panics() {
    let p = compile("object.spec.missing > 1", VARS).unwrap();
    assert!(matches!(p.eval(&deployment()), Err(EvalError::Execution(_))));
    let p = compile("object.metadata.name", VARS).unwrap();
    assert_eq!(
        p.eval_bool(&deployment()),
        Err(EvalError::WrongType {
            expected: "bool",
            got: "string".into()
        })
    );
    assert_eq!(p.eval_string(&deployment()).as_deref(), Ok("web"));
}

#[test]
fn variables_are_visible_under_variables() {
    let mut act = deployment();
    act.variables.insert("limit".into(), json!(10));
    let p = compile("object.spec.replicas < variables.limit", VARS).unwrap();
    assert_eq!(p.eval_bool(&act), Ok(true));
}

#[test]
fn json_round_trips() {
    let v = json!({"a": [1, -2, 2.5, "s", true, null], "b": {"c": 18446744073709551615u64}});
    assert_eq!(to_json(&from_json(&v)), Some(v));
}

/// Allows `create` of apps/deployments in `ns`, `get` of `/healthz`, and
/// anything for the `kube-system:bot` service account; says what it saw.
#[derive(Debug)]
struct FakeAuthz;

impl authorizer::Authorize for FakeAuthz {
    fn check(&self, c: &authorizer::Check) -> authorizer::Decision {
        let allowed = c.service_account == Some(("kube-system".into(), "bot".into()))
            || (c.group == "apps" && c.resource == "deployments" && c.namespace == "ns" && c.verb == "create")
            || (c.path.as_deref() == Some("/healthz") && c.verb == "get");
        authorizer::Decision {
            allowed,
            reason: format!("{}/{}/{}:{}", c.group, c.resource, c.subresource, c.name),
            error: None,
        }
    }
}

#[test]
fn authorizer_checks_resources_paths_and_service_accounts() {
    let mut vars = VARS.to_vec();
    vars.push("authorizer");
    let act = Activation {
        authorizer: Some((
            Arc::new(FakeAuthz),
            authorizer::RequestResource {
                group: "apps".into(),
                resource: "deployments".into(),
                namespace: "ns".into(),
                name: "web".into(),
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    let run = |expr: &str| {
        compile(expr, &vars)
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
            .eval(&act)
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
    };
    for (expr, want) in [
        (
            "authorizer.group('apps').resource('deployments').namespace('ns').check('create').allowed()",
            Value::Bool(true),
        ),
        (
            "authorizer.group('apps').resource('deployments').namespace('other').check('create').allowed()",
            Value::Bool(false),
        ),
        (
            "authorizer.requestResource.check('create').allowed()",
            Value::Bool(true),
        ),
        (
            "authorizer.requestResource.check('delete').allowed()",
            Value::Bool(false),
        ),
        (
            "authorizer.requestResource.subresource('scale').check('get').reason()",
            Value::from("apps/deployments/scale:web"),
        ),
        ("authorizer.path('/healthz').check('get').allowed()", Value::Bool(true)),
        (
            "authorizer.serviceAccount('kube-system', 'bot').group('').resource('secrets').check('list').allowed()",
            Value::Bool(true),
        ),
        (
            "authorizer.group('').resource('pods').name('p').check('get').errored()",
            Value::Bool(false),
        ),
    ] {
        assert_eq!(run(expr), want, "{expr}");
    }
    // A method on the wrong builder is an evaluation error, not a panic.
    let bad = compile("authorizer.resource('pods').check('get').allowed()", &vars).unwrap();
    assert!(bad.eval(&act).is_err());
    // Without the variable declared, naming it does not compile.
    assert!(compile("authorizer.path('/').check('get').allowed()", VARS).is_err());
}
