//! Events, from either API: core/v1 (`involvedObject`, `message`, ...) and
//! events.k8s.io/v1 (`regarding`, `note`, `deprecated*`), which upstream
//! serves from the same storage and prints the same way.

use time::OffsetDateTime;

use super::{Object, Printed, Printer, cells};
use crate::table::columns::{ColumnDefinition, NAME, string};
use crate::table::duration;
use crate::table::field::Fields;

const COLUMNS: &[ColumnDefinition] = &[
    string("Last Seen", "How long ago the event was last observed."),
    string("Type", "Type of the event: Normal or Warning."),
    string("Reason", "Short, machine-readable reason for the event."),
    string("Object", "The object the event is about, as kind/name."),
    string(
        "Subobject",
        "The part of the object the event is about, such as a container.",
    )
    .wide(),
    string("Source", "The component, and host, that reported the event.").wide(),
    string("Message", "Human-readable description of the event."),
    string("First Seen", "How long ago the event was first observed.").wide(),
    string("Count", "How many times the event has occurred.").wide(),
    NAME.wide(),
];

pub(crate) static EVENTS: Printer = Printer {
    columns: COLUMNS,
    print: print_event,
};

/// Field names of the event API the object was stored in.
struct Names {
    involved_object: &'static str,
    message: &'static str,
    source: &'static str,
    first_timestamp: &'static str,
    last_timestamp: &'static str,
    count: &'static str,
}

const CORE: Names = Names {
    involved_object: "involvedObject",
    message: "message",
    source: "source",
    first_timestamp: "firstTimestamp",
    last_timestamp: "lastTimestamp",
    count: "count",
};

const EVENTS_API: Names = Names {
    involved_object: "regarding",
    message: "note",
    source: "deprecatedSource",
    first_timestamp: "deprecatedFirstTimestamp",
    last_timestamp: "deprecatedLastTimestamp",
    count: "deprecatedCount",
};

fn print_event(obj: &Object, now: OffsetDateTime) -> Printed {
    let names = if obj.str_at(&["apiVersion"]).starts_with("events.k8s.io/") {
        &EVENTS_API
    } else {
        &CORE
    };
    let first_seen = match obj.time_at(&[names.first_timestamp]) {
        Some(t) => duration::since(Some(t), now),
        None => duration::since(obj.time_at(&["eventTime"]), now),
    };
    let mut last_seen = match obj.time_at(&[names.last_timestamp]) {
        Some(t) => duration::since(Some(t), now),
        None => first_seen.clone(),
    };
    let mut count = obj.int_at(&[names.count]);
    if obj.has(&["series"]) {
        last_seen = duration::since(obj.time_at(&["series", "lastObservedTime"]), now);
        count = obj.int_at(&["series", "count"]);
    } else if count == 0 {
        // Singleton events of the newer API carry no count.
        count = 1;
    }
    let kind = obj.str_at(&[names.involved_object, "kind"]).to_lowercase();
    let target = match obj.str_at(&[names.involved_object, "name"]) {
        "" => kind,
        involved => format!("{kind}/{involved}"),
    };
    let component = first_non_empty(
        obj.str_at(&[names.source, "component"]),
        obj.str_at(&["reportingController"]),
    );
    let host = first_non_empty(obj.str_at(&[names.source, "host"]), obj.str_at(&["reportingInstance"]));
    let source = if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };
    cells![
        last_seen,
        obj.str_at(&["type"]),
        obj.str_at(&["reason"]),
        target,
        obj.str_at(&[names.involved_object, "fieldPath"]),
        source,
        obj.str_at(&[names.message]).trim(),
        first_seen,
        count,
        obj.str_at(&["metadata", "name"]),
    ]
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2025-06-01 12:00:00 UTC);

    fn check(event: Value, expected: Value) {
        let printed = print_event(event.as_object().expect("object"), NOW);
        assert_eq!(Value::Array(printed.cells), expected);
    }

    #[test]
    fn core_event() {
        check(
            json!({"apiVersion": "v1", "kind": "Event",
                "metadata": {"name": "web-0.17d9", "namespace": "default"},
                "involvedObject": {"kind": "Pod", "name": "web-0", "fieldPath": "spec.containers{app}"},
                "reason": "Pulled", "message": "Successfully pulled image \"nginx\"\n", "type": "Normal",
                "source": {"component": "kubelet", "host": "node-1"},
                "firstTimestamp": "2025-06-01T11:00:00Z", "lastTimestamp": "2025-06-01T11:58:00Z", "count": 4}),
            json!([
                "2m",
                "Normal",
                "Pulled",
                "pod/web-0",
                "spec.containers{app}",
                "kubelet, node-1",
                "Successfully pulled image \"nginx\"",
                "60m",
                4,
                "web-0.17d9"
            ]),
        );
    }

    #[test]
    fn new_style_event_through_core_fields() {
        // Recorded with the events API and read back as core/v1: eventTime,
        // series and reporting fields instead of timestamps and source.
        check(
            json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"},
                "involvedObject": {"kind": "Node"}, "reason": "Ready", "type": "Normal", "message": "ok",
                "eventTime": "2025-06-01T11:59:00.000000Z", "reportingController": "kubelet",
                "series": {"count": 7, "lastObservedTime": "2025-06-01T11:59:30.000000Z"}}),
            json!(["30s", "Normal", "Ready", "node", "", "kubelet", "ok", "60s", 7, "e1"]),
        );
    }

    #[test]
    fn events_k8s_io_event() {
        check(
            json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e2"},
                "regarding": {"kind": "Deployment", "name": "web"}, "reason": "ScalingReplicaSet",
                "note": "Scaled up", "type": "Normal", "eventTime": "2025-06-01T11:59:50.000000Z",
                "reportingController": "deployment-controller", "reportingInstance": "cm-1"}),
            json!([
                "10s",
                "Normal",
                "ScalingReplicaSet",
                "deployment/web",
                "",
                "deployment-controller, cm-1",
                "Scaled up",
                "10s",
                1,
                "e2"
            ]),
        );
    }
}
