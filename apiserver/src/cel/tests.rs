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
