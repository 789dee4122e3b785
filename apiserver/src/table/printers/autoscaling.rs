//! Horizontal pod autoscalers: REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE.
//! Objects stored as autoscaling/v1 are read through their v2 equivalent.

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{Object, Printed, Printer, cells};
use crate::table::columns::{AGE, ColumnDefinition, NAME, string};
use crate::table::duration;
use crate::table::field::Fields;

const COLUMNS: &[ColumnDefinition] = &[
    NAME,
    string("Reference", "The object being scaled, as kind/name."),
    string("Targets", "Current and target values of the scaling metrics."),
    string("MinPods", "Lower limit of replicas."),
    string("MaxPods", "Upper limit of replicas."),
    string("Replicas", "Current number of replicas."),
    AGE,
];

pub(crate) static HORIZONTAL_POD_AUTOSCALERS: Printer = Printer {
    columns: COLUMNS,
    print: print_hpa,
};

/// The CPU utilization target autoscaling defaults to when no metric is set.
const DEFAULT_CPU_UTILIZATION: i64 = 80;

fn print_hpa(obj: &Object, now: OffsetDateTime) -> Printed {
    let (specs, statuses) = metrics(obj);
    cells![
        obj.str_at(&["metadata", "name"]),
        format!(
            "{}/{}",
            obj.str_at(&["spec", "scaleTargetRef", "kind"]),
            obj.str_at(&["spec", "scaleTargetRef", "name"])
        ),
        format_metrics(&specs, &statuses),
        // autoscaling defaults minReplicas to 1.
        obj.opt_int(&["spec", "minReplicas"]).unwrap_or(1).to_string(),
        obj.int_at(&["spec", "maxReplicas"]),
        obj.int_at(&["status", "currentReplicas"]),
        duration::since(obj.time_at(&["metadata", "creationTimestamp"]), now),
    ]
}

/// Metric specs and statuses in the v2 shape.
fn metrics(obj: &Object) -> (Vec<Value>, Vec<Value>) {
    if obj.str_at(&["apiVersion"]) == "autoscaling/v1" {
        let target = obj
            .opt_int(&["spec", "targetCPUUtilizationPercentage"])
            .unwrap_or(DEFAULT_CPU_UTILIZATION);
        let spec = json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}});
        let statuses = match obj.opt_int(&["status", "currentCPUUtilizationPercentage"]) {
            Some(current) => vec![
                json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": current}}}),
            ],
            None => Vec::new(),
        };
        return (vec![spec], statuses);
    }
    let mut specs = obj.list_at(&["spec", "metrics"]).to_vec();
    if specs.is_empty() {
        specs.push(json!({"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}));
    }
    (specs, obj.list_at(&["status", "currentMetrics"]).to_vec())
}

/// A quantity as Go's `(*Quantity).String()` prints it, `<nil>` when unset.
fn quantity(v: &Value, path: &[&str]) -> String {
    v.quantity_at(path).unwrap_or_else(|| "<nil>".to_string())
}

/// Upstream's `formatHPAMetrics`: `current/target` per metric, at most two,
/// then `+ N more...`.
fn format_metrics(specs: &[Value], statuses: &[Value]) -> String {
    const MAX: usize = 2;
    if specs.is_empty() {
        return "<none>".to_string();
    }
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| format_metric(spec, statuses.get(i)))
        .collect();
    let shown = list.iter().take(MAX).cloned().collect::<Vec<_>>().join(", ");
    if list.len() > MAX {
        format!("{shown} + {} more...", list.len() - MAX)
    } else {
        shown
    }
}

fn format_metric(spec: &Value, status: Option<&Value>) -> String {
    // The status's source for this metric type, when the status has one.
    let current = |source: &str| status.and_then(|s| s.at(&[source]));
    let unknown = || "<unknown>".to_string();
    match spec.str_at(&["type"]) {
        source @ ("External" | "Object") => {
            let field = if source == "External" { "external" } else { "object" };
            let target = spec.at(&[field, "target"]);
            if target.is_some_and(|t| t.has(&["averageValue"])) {
                let now = current(field).filter(|c| c.has(&["current", "averageValue"]));
                let now = now.map_or_else(unknown, |c| quantity(c, &["current", "averageValue"]));
                format!(
                    "{now}/{} (avg)",
                    target.map_or_else(String::new, |t| quantity(t, &["averageValue"]))
                )
            } else {
                let now = current(field).map_or_else(unknown, |c| quantity(c, &["current", "value"]));
                format!(
                    "{now}/{}",
                    spec.at(&[field, "target"])
                        .map_or_else(|| "<nil>".to_string(), |t| quantity(t, &["value"]))
                )
            }
        }
        "Pods" => {
            let now = current("pods").map_or_else(unknown, |c| quantity(c, &["current", "averageValue"]));
            format!("{now}/{}", quantity(spec, &["pods", "target", "averageValue"]))
        }
        source @ ("Resource" | "ContainerResource") => {
            let field = if source == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let resource = spec.str_at(&[field, "name"]);
            if spec.has(&[field, "target", "averageValue"]) {
                let now = current(field).map_or_else(unknown, |c| quantity(c, &["current", "averageValue"]));
                format!(
                    "{resource}: {now}/{}",
                    quantity(spec, &[field, "target", "averageValue"])
                )
            } else {
                let now = current(field)
                    .and_then(|c| c.opt_int(&["current", "averageUtilization"]))
                    .map_or_else(unknown, |u| format!("{u}%"));
                let target = spec
                    .opt_int(&[field, "target", "averageUtilization"])
                    .map_or_else(|| "<auto>".to_string(), |u| format!("{u}%"));
                format!("{resource}: {now}/{target}")
            }
        }
        _ => "<unknown type>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2025-06-01 12:00:00 UTC);

    fn check(hpa: Value, expected: Value) {
        let printed = print_hpa(hpa.as_object().expect("object"), NOW);
        assert_eq!(Value::Array(printed.cells), expected);
    }

    #[test]
    fn v2_with_several_metrics() {
        check(
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "web", "creationTimestamp": "2025-06-01T11:00:00Z"},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "minReplicas": 2, "maxReplicas": 10, "metrics": [
                        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
                        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}}]},
                "status": {"currentReplicas": 3, "currentMetrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 23, "averageValue": "120m"}}}]}}),
            json!([
                "web",
                "Deployment/web",
                "cpu: 23%/50%, memory: <unknown>/500Mi + 1 more...",
                "2",
                10,
                3,
                "60m"
            ]),
        );
    }

    #[test]
    fn v1_and_defaults() {
        check(
            json!({"apiVersion": "autoscaling/v1", "metadata": {"name": "a"},
                "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "a"}, "maxReplicas": 5, "targetCPUUtilizationPercentage": 70},
                "status": {"currentReplicas": 1, "currentCPUUtilizationPercentage": 12}}),
            json!(["a", "Deployment/a", "cpu: 12%/70%", "1", 5, 1, "<unknown>"]),
        );
        check(
            json!({"apiVersion": "autoscaling/v2", "metadata": {"name": "b"},
                "spec": {"scaleTargetRef": {"kind": "StatefulSet", "name": "db"}, "maxReplicas": 3}}),
            json!(["b", "StatefulSet/db", "cpu: <unknown>/80%", "1", 3, 0, "<unknown>"]),
        );
    }

    #[test]
    fn external_and_object_metrics() {
        let specs = [
            json!({"type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "AverageValue", "averageValue": "30"}}}),
            json!({"type": "Object", "object": {"metric": {"name": "rps"}, "target": {"type": "Value", "value": "2k"}}}),
        ];
        let statuses = [json!({"type": "External", "external": {"current": {"averageValue": "12"}}})];
        assert_eq!(format_metrics(&specs, &statuses), "12/30 (avg), <unknown>/2k");
        assert_eq!(format_metrics(&[json!({"type": "Bogus"})], &[]), "<unknown type>");
    }
}
