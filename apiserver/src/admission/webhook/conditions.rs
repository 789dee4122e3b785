//! `matchConditions`: CEL expressions over `object`, `oldObject` and
//! `request`; the webhook is called only when all are true. A false one
//! wins over an error (upstream's `matchconditions.Matcher`); otherwise an
//! error is a failed call, subject to the failurePolicy. The `authorizer`
//! variable is not offered. Expressions run on [`crate::cel`], the
//! ValidatingAdmissionPolicy engine's CEL.

use serde_json::Value;

use crate::cel;

/// The variables a condition may name.
const VARIABLES: &[&str] = &["object", "oldObject", "request"];

/// Whether the conditions hold: `Ok(false)` when one is false, `Err` when
/// none is false but one could not be evaluated.
pub fn matches(webhook: &Value, review_request: &Value) -> Result<bool, String> {
    let conditions = webhook.get("matchConditions").and_then(Value::as_array);
    let Some(conditions) = conditions.filter(|c| !c.is_empty()) else {
        return Ok(true);
    };
    let activation = cel::Activation {
        object: review_request.get("object").cloned(),
        old_object: review_request.get("oldObject").cloned(),
        request: Some(review_request.clone()),
        ..Default::default()
    };
    let mut first_error = None;
    for c in conditions {
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        let expr = c.get("expression").and_then(Value::as_str).unwrap_or("");
        let result = cel::compile(expr, VARIABLES)
            .map_err(|e| e.to_string())
            .and_then(|p| p.eval_bool(&activation).map_err(|e| e.to_string()));
        match result {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) => {
                first_error.get_or_insert(format!("matchCondition {name:?}: {e}"));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(true),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn hook(exprs: &[&str]) -> Value {
        let conditions: Vec<Value> = exprs
            .iter()
            .enumerate()
            .map(|(i, e)| json!({"name": format!("c{i}"), "expression": e}))
            .collect();
        json!({"matchConditions": conditions})
    }

    #[test]
    fn conditions() {
        let req = json!({"operation": "CREATE", "object": {"metadata": {"name": "a", "labels": {"x": "1"}}}, "oldObject": null});
        assert_eq!(matches(&json!({}), &req), Ok(true));
        assert_eq!(matches(&hook(&["object.metadata.name == 'a'"]), &req), Ok(true));
        assert_eq!(
            matches(
                &hook(&["request.operation == 'CREATE'", "object.metadata.name == 'b'"]),
                &req
            ),
            Ok(false)
        );
        assert_eq!(matches(&hook(&["oldObject == null"]), &req), Ok(true));
        assert!(matches(&hook(&["object.nope.deeper == 1"]), &req).is_err());
        // A false condition wins over an error.
        assert_eq!(matches(&hook(&["object.nope.deeper == 1", "false"]), &req), Ok(false));
        assert!(matches(&hook(&["'not bool'"]), &req).is_err());
        assert!(matches(&hook(&["(("]), &req).is_err());
    }
}
