//! Admission control: webhook configurations, validating and mutating
//! admission policies and their bindings.

use time::OffsetDateTime;

use super::{Object, Printed, Printer, cells};
use crate::table::columns::{AGE, ColumnDefinition, NAME, integer, string};
use crate::table::duration;
use crate::table::field::Fields;
use crate::table::labels::go_debug_string;

fn name(obj: &Object) -> &str {
    obj.str_at(&["metadata", "name"])
}

fn age(obj: &Object, now: OffsetDateTime) -> String {
    duration::since(obj.time_at(&["metadata", "creationTimestamp"]), now)
}

const WEBHOOK_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    integer("Webhooks", "Number of webhooks in the configuration."),
    AGE,
];

pub(crate) static MUTATING_WEBHOOKS: Printer = Printer {
    columns: WEBHOOK_COLUMNS,
    print: print_webhooks,
};
pub(crate) static VALIDATING_WEBHOOKS: Printer = Printer {
    columns: WEBHOOK_COLUMNS,
    print: print_webhooks,
};

fn print_webhooks(obj: &Object, now: OffsetDateTime) -> Printed {
    cells![name(obj), obj.list_at(&["webhooks"]).len() as i64, age(obj, now)]
}

const VALIDATING_POLICY_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    integer("Validations", "Number of validation rules in the policy."),
    string("ParamKind", "The kind of the resources that parameterize the policy."),
    AGE,
];

const MUTATING_POLICY_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    integer("Mutations", "Number of mutations in the policy."),
    string("ParamKind", "The kind of the resources that parameterize the policy."),
    AGE,
];

pub(crate) static VALIDATING_POLICIES: Printer = Printer {
    columns: VALIDATING_POLICY_COLUMNS,
    print: print_validating_policy,
};
pub(crate) static MUTATING_POLICIES: Printer = Printer {
    columns: MUTATING_POLICY_COLUMNS,
    print: print_mutating_policy,
};

fn print_validating_policy(obj: &Object, now: OffsetDateTime) -> Printed {
    print_policy(obj, "validations", now)
}

fn print_mutating_policy(obj: &Object, now: OffsetDateTime) -> Printed {
    print_policy(obj, "mutations", now)
}

fn print_policy(obj: &Object, rules: &str, now: OffsetDateTime) -> Printed {
    let param_kind = match obj.at(&["spec", "paramKind"]) {
        Some(p) => format!("{}/{}", p.str_at(&["apiVersion"]), p.str_at(&["kind"])),
        None => "<unset>".to_string(),
    };
    cells![
        name(obj),
        obj.list_at(&["spec", rules]).len() as i64,
        param_kind,
        age(obj, now)
    ]
}

const POLICY_BINDING_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("PolicyName", "The policy the binding applies."),
    string("ParamRef", "The resource that parameterizes the policy."),
    AGE,
];

pub(crate) static VALIDATING_POLICY_BINDINGS: Printer = Printer {
    columns: POLICY_BINDING_COLUMNS,
    print: print_policy_binding,
};
pub(crate) static MUTATING_POLICY_BINDINGS: Printer = Printer {
    columns: POLICY_BINDING_COLUMNS,
    print: print_policy_binding,
};

fn print_policy_binding(obj: &Object, now: OffsetDateTime) -> Printed {
    let param = match obj.at(&["spec", "paramRef"]) {
        Some(p) => match (p.str_at(&["name"]), p.str_at(&["namespace"]), p.at(&["selector"])) {
            ("", _, Some(selector)) => go_debug_string(selector),
            ("", _, None) => "<unset>".to_string(),
            // Without a namespace the param may be cluster-scoped or in any namespace.
            (param_name, "", _) => format!("*/{param_name}"),
            (param_name, ns, _) => format!("{ns}/{param_name}"),
        },
        None => "<unset>".to_string(),
    };
    cells![name(obj), obj.str_at(&["spec", "policyName"]), param, age(obj, now)]
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2025-06-01 12:00:00 UTC);

    fn cells(printer: &Printer, obj: Value) -> Value {
        Value::Array((printer.print)(obj.as_object().expect("object"), NOW).cells)
    }

    #[test]
    fn webhooks_and_policies() {
        let meta = json!({"name": "x", "creationTimestamp": "2025-06-01T11:00:00Z"});
        assert_eq!(
            cells(
                &VALIDATING_WEBHOOKS,
                json!({"metadata": meta, "webhooks": [{"name": "a"}, {"name": "b"}]})
            ),
            json!(["x", 2, "60m"])
        );
        assert_eq!(
            cells(
                &VALIDATING_POLICIES,
                json!({"metadata": meta, "spec": {"validations": [{"expression": "true"}],
                "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}}})
            ),
            json!(["x", 1, "v1/ConfigMap", "60m"])
        );
        assert_eq!(
            cells(&MUTATING_POLICIES, json!({"metadata": meta, "spec": {}})),
            json!(["x", 0, "<unset>", "60m"])
        );
    }

    #[test]
    fn policy_binding_params() {
        let binding = |param: Value| json!({"metadata": {"name": "b"}, "spec": {"policyName": "p", "paramRef": param}});
        let param_of = |param: Value| cells(&VALIDATING_POLICY_BINDINGS, binding(param))[2].clone();
        assert_eq!(param_of(json!({"name": "cfg", "namespace": "ns"})), "ns/cfg");
        assert_eq!(param_of(json!({"name": "cfg"})), "*/cfg");
        assert_eq!(
            param_of(json!({"selector": {"matchLabels": {"a": "b"}}})),
            "&LabelSelector{MatchLabels:map[string]string{a: b,},MatchExpressions:[]LabelSelectorRequirement{},}"
        );
        assert_eq!(param_of(Value::Null), "<unset>");
        assert_eq!(cells(&MUTATING_POLICY_BINDINGS, binding(json!({})))[3], "<unknown>");
    }
}
