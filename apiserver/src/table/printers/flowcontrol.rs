//! API priority and fairness: flow schemas and priority levels.

use serde_json::Value;
use time::OffsetDateTime;

use super::{Object, Printed, Printer, cells};
use crate::table::columns::{AGE, ColumnDefinition, NAME, string};
use crate::table::duration;
use crate::table::field::Fields;

fn name(obj: &Object) -> &str {
    obj.str_at(&["metadata", "name"])
}

fn age(obj: &Object, now: OffsetDateTime) -> String {
    duration::since(obj.time_at(&["metadata", "creationTimestamp"]), now)
}

const FLOW_SCHEMA_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string(
        "PriorityLevel",
        "The priority level requests of this flow schema go to.",
    ),
    string("MatchingPrecedence", "Order among flow schemas; lower matches first."),
    string("DistinguisherMethod", "How requests are split into flows."),
    AGE,
    string(
        "MissingPL",
        "Whether the priority level is missing (the Dangling condition).",
    ),
];

pub(crate) static FLOW_SCHEMAS: Printer = Printer {
    columns: FLOW_SCHEMA_COLUMNS,
    print: print_flow_schema,
};

fn print_flow_schema(obj: &Object, now: OffsetDateTime) -> Printed {
    let dangling = obj
        .list_at(&["status", "conditions"])
        .iter()
        .find(|c| c.str_at(&["type"]) == "Dangling")
        .map_or("?", |c| c.str_at(&["status"]));
    cells![
        name(obj),
        obj.str_at(&["spec", "priorityLevelConfiguration", "name"]),
        // flowcontrol/v1 defaults the precedence to 1000.
        obj.opt_int(&["spec", "matchingPrecedence"]).unwrap_or(1000),
        obj.at(&["spec", "distinguisherMethod"])
            .map_or("<none>", |d| d.str_at(&["type"])),
        age(obj, now),
        dangling,
    ]
}

const PRIORITY_LEVEL_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Type", "Exempt, or Limited with its own concurrency limit."),
    string(
        "NominalConcurrencyShares",
        "Share of the server's concurrency this level is entitled to.",
    ),
    string("Queues", "Number of queues of the level."),
    string("HandSize", "Queues each flow is shuffle-sharded over."),
    string("QueueLengthLimit", "Maximum requests waiting in one queue."),
    AGE,
];

pub(crate) static PRIORITY_LEVELS: Printer = Printer {
    columns: PRIORITY_LEVEL_COLUMNS,
    print: print_priority_level,
};

fn print_priority_level(obj: &Object, now: OffsetDateTime) -> Printed {
    let none = || Value::from("<none>");
    let (mut shares, mut queues, mut hand_size, mut queue_length) = (none(), none(), none(), none());
    if let Some(limited) = obj.at(&["spec", "limited"]) {
        // flowcontrol/v1 defaults: 30 shares; 64 queues, hand size 8, 50 long.
        shares = limited.opt_int(&["nominalConcurrencyShares"]).unwrap_or(30).into();
        if let Some(queuing) = limited.at(&["limitResponse", "queuing"]) {
            let or_default = |field: &str, default: i64| match queuing.int_at(&[field]) {
                0 => default,
                n => n,
            };
            queues = or_default("queues", 64).into();
            hand_size = or_default("handSize", 8).into();
            queue_length = or_default("queueLengthLimit", 50).into();
        }
    }
    cells![
        name(obj),
        obj.str_at(&["spec", "type"]),
        shares,
        queues,
        hand_size,
        queue_length,
        age(obj, now)
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2025-06-01 12:00:00 UTC);

    #[test]
    fn flow_schema() {
        let fs = json!({"metadata": {"name": "system-leader-election", "creationTimestamp": "2025-06-01T11:00:00Z"},
            "spec": {"priorityLevelConfiguration": {"name": "leader-election"}, "matchingPrecedence": 100,
                     "distinguisherMethod": {"type": "ByUser"}},
            "status": {"conditions": [{"type": "Dangling", "status": "False"}]}});
        let printed = print_flow_schema(fs.as_object().expect("object"), NOW);
        assert_eq!(
            Value::Array(printed.cells),
            json!([
                "system-leader-election",
                "leader-election",
                100,
                "ByUser",
                "60m",
                "False"
            ])
        );
    }

    #[test]
    fn priority_levels() {
        let exempt = json!({"metadata": {"name": "exempt"}, "spec": {"type": "Exempt", "exempt": {}}});
        let printed = print_priority_level(exempt.as_object().expect("object"), NOW);
        assert_eq!(
            Value::Array(printed.cells),
            json!(["exempt", "Exempt", "<none>", "<none>", "<none>", "<none>", "<unknown>"])
        );
        let limited = json!({"metadata": {"name": "workload-low"}, "spec": {"type": "Limited", "limited": {
            "nominalConcurrencyShares": 100, "limitResponse": {"type": "Queue", "queuing": {"queues": 128, "handSize": 6, "queueLengthLimit": 50}}}}});
        let printed = print_priority_level(limited.as_object().expect("object"), NOW);
        assert_eq!(
            Value::Array(printed.cells),
            json!(["workload-low", "Limited", 100, 128, 6, 50, "<unknown>"])
        );
        let reject = json!({"metadata": {"name": "r"}, "spec": {"type": "Limited", "limited": {"limitResponse": {"type": "Reject"}}}});
        let printed = print_priority_level(reject.as_object().expect("object"), NOW);
        assert_eq!(
            Value::Array(printed.cells),
            json!(["r", "Limited", 30, "<none>", "<none>", "<none>", "<unknown>"])
        );
    }
}
