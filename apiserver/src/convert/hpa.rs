//! HorizontalPodAutoscaler between `autoscaling/v2` (stored) and
//! `autoscaling/v1`, as upstream converts it: v1 has only a CPU
//! utilization target, so every other v2 field travels through v1 in
//! annotations (`autoscaling.alpha.kubernetes.io/metrics`, `current-metrics`,
//! `conditions`, `behavior`) written in v1's older metric shape, and comes
//! back from them when a v1 object is written.

use serde_json::{Map, Value, json};

use crate::registry::object::{self, Object};

const METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
const CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
const BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";
const ROUND_TRIP: [&str; 4] = [METRICS, CURRENT_METRICS, CONDITIONS, BEHAVIOR];

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn put(m: &mut Map<String, Value>, key: &str, v: Option<&Value>) {
    if let Some(v) = v.filter(|v| !v.is_null()) {
        m.insert(key.to_string(), v.clone());
    }
}

/// Whether a v2 metric is the CPU utilization target v1 carries itself.
fn is_cpu_utilization(m: &Value) -> bool {
    m.get("type").and_then(Value::as_str) == Some("Resource")
        && get(m, &["resource", "name"]).and_then(Value::as_str) == Some("cpu")
        && get(m, &["resource", "target", "averageUtilization"]).is_some_and(|v| !v.is_null())
}

/// Which half of a metric is converted: a spec's `target` or a status's
/// `current`. v1's field names start with the same word (`targetValue`,
/// `currentValue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Spec,
    Status,
}

impl Part {
    fn section(self) -> &'static str {
        match self {
            Part::Spec => "target",
            Part::Status => "current",
        }
    }
}

/// A v2 path segment standing for [`Part::section`].
const SECTION: &str = "";

/// One field of a v1 annotation metric and where v2 keeps it.
struct Field {
    /// The v1 name; with `prefixed`, after the section word
    /// (`Value` -> `targetValue`).
    v1: &'static str,
    prefixed: bool,
    v2: &'static [&'static str],
}

const fn same(v1: &'static str, v2: &'static [&'static str]) -> Field {
    Field {
        v1,
        prefixed: false,
        v2,
    }
}

const fn prefixed(v1: &'static str, v2: &'static [&'static str]) -> Field {
    Field { v1, prefixed: true, v2 }
}

impl Field {
    fn v1_name(&self, part: Part) -> String {
        if self.prefixed {
            format!("{}{}", part.section(), self.v1)
        } else {
            self.v1.to_string()
        }
    }

    fn v2_path(&self, part: Part) -> Vec<&'static str> {
        self.v2
            .iter()
            .map(|s| if *s == SECTION { part.section() } else { s })
            .collect()
    }
}

const OBJECT: &[Field] = &[
    same("target", &["describedObject"]),
    same("metricName", &["metric", "name"]),
    same("selector", &["metric", "selector"]),
    prefixed("Value", &[SECTION, "value"]),
    same("averageValue", &[SECTION, "averageValue"]),
];
const PODS: &[Field] = &[
    same("metricName", &["metric", "name"]),
    same("selector", &["metric", "selector"]),
    prefixed("AverageValue", &[SECTION, "averageValue"]),
];
const RESOURCE: &[Field] = &[
    same("name", &["name"]),
    same("container", &["container"]),
    prefixed("AverageUtilization", &[SECTION, "averageUtilization"]),
    prefixed("AverageValue", &[SECTION, "averageValue"]),
];
const EXTERNAL: &[Field] = &[
    same("metricName", &["metric", "name"]),
    same("metricSelector", &["metric", "selector"]),
    prefixed("Value", &[SECTION, "value"]),
    prefixed("AverageValue", &[SECTION, "averageValue"]),
];

/// The member holding a metric of `kind`, and its fields.
fn fields_of(kind: &str) -> Option<(&'static str, &'static [Field])> {
    Some(match kind {
        "Object" => ("object", OBJECT),
        "Pods" => ("pods", PODS),
        "Resource" => ("resource", RESOURCE),
        "ContainerResource" => ("containerResource", RESOURCE),
        "External" => ("external", EXTERNAL),
        _ => return None,
    })
}

/// The object at `key` of `m`, made one if missing or not an object.
fn child<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let v = m.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

/// A v2 `MetricSpec` or `MetricStatus` in v1's annotation shape.
fn metric_to_v1(m: &Value, part: Part) -> Value {
    let kind = m.get("type").and_then(Value::as_str).unwrap_or("");
    let mut out = Map::new();
    out.insert("type".into(), json!(kind));
    if let Some((member, fields)) = fields_of(kind) {
        let src = m.get(member).cloned().unwrap_or(Value::Null);
        let mut o = Map::new();
        for f in fields {
            put(&mut o, &f.v1_name(part), get(&src, &f.v2_path(part)));
        }
        out.insert(member.into(), Value::Object(o));
    }
    Value::Object(out)
}

/// A v1 annotation metric back in v2's shape. A spec's target keeps one
/// value, typed: the utilization, else the average value, else the value.
fn metric_to_v2(m: &Value, part: Part) -> Value {
    let kind = m.get("type").and_then(Value::as_str).unwrap_or("");
    let mut out = Map::new();
    out.insert("type".into(), json!(kind));
    if let Some((member, fields)) = fields_of(kind) {
        let src = m.get(member).cloned().unwrap_or(Value::Null);
        let mut o = Map::new();
        for f in fields {
            let path = f.v2_path(part);
            let Some((last, parents)) = path.split_last() else {
                continue;
            };
            let node = parents.iter().fold(&mut o, |node, p| child(node, p));
            put(node, last, src.get(f.v1_name(part)));
        }
        if part == Part::Spec {
            let target = child(&mut o, "target");
            *target = typed_target(target);
        }
        out.insert(member.into(), Value::Object(o));
    }
    Value::Object(out)
}

fn typed_target(t: &Map<String, Value>) -> Map<String, Value> {
    let mut typed = Map::new();
    for (field, kind) in [
        ("averageUtilization", "Utilization"),
        ("averageValue", "AverageValue"),
        ("value", "Value"),
    ] {
        if let Some(v) = t.get(field) {
            typed.insert("type".into(), json!(kind));
            typed.insert(field.into(), v.clone());
            break;
        }
    }
    typed
}

fn annotations_mut(obj: &mut Object) -> &mut Map<String, Value> {
    child(object::meta_mut(obj), "annotations")
}

/// Removes the round-trip annotations; drops an emptied annotation map.
fn drop_round_trip(obj: &mut Object) -> Map<String, Value> {
    let mut taken = Map::new();
    let meta = object::meta_mut(obj);
    if let Some(Value::Object(a)) = meta.get_mut("annotations") {
        for k in ROUND_TRIP {
            if let Some(v) = a.remove(k) {
                taken.insert(k.to_string(), v);
            }
        }
        if a.is_empty() {
            meta.remove("annotations");
        }
    }
    taken
}

fn encoded(v: &Value) -> Value {
    Value::String(serde_json::to_string(v).unwrap_or_default())
}

/// Converts a stored (v2) HPA to v1.
pub fn v2_to_v1(mut obj: Object) -> Object {
    drop_round_trip(&mut obj);
    let spec = obj.remove("spec").unwrap_or(Value::Null);
    let status = obj.remove("status");
    let metrics = spec
        .get("metrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut v1_spec = Map::new();
    put(&mut v1_spec, "scaleTargetRef", spec.get("scaleTargetRef"));
    put(&mut v1_spec, "minReplicas", spec.get("minReplicas"));
    put(&mut v1_spec, "maxReplicas", spec.get("maxReplicas"));
    if let Some(cpu) = metrics.iter().find(|m| {
        m.get("type").and_then(Value::as_str) == Some("Resource")
            && get(m, &["resource", "name"]).and_then(Value::as_str) == Some("cpu")
    }) {
        put(
            &mut v1_spec,
            "targetCPUUtilizationPercentage",
            get(cpu, &["resource", "target", "averageUtilization"]),
        );
    }
    let others: Vec<Value> = metrics
        .iter()
        .filter(|m| !is_cpu_utilization(m))
        .map(|m| metric_to_v1(m, Part::Spec))
        .collect();
    if !others.is_empty() {
        annotations_mut(&mut obj).insert(METRICS.into(), encoded(&Value::Array(others)));
    }
    if let Some(b) = spec.get("behavior").filter(|b| !b.is_null()) {
        annotations_mut(&mut obj).insert(BEHAVIOR.into(), encoded(b));
    }
    obj.insert("spec".into(), Value::Object(v1_spec));

    if let Some(status) = status {
        let current = status
            .get("currentMetrics")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut v1_status = Map::new();
        put(&mut v1_status, "observedGeneration", status.get("observedGeneration"));
        put(&mut v1_status, "lastScaleTime", status.get("lastScaleTime"));
        v1_status.insert(
            "currentReplicas".into(),
            status.get("currentReplicas").cloned().unwrap_or(json!(0)),
        );
        v1_status.insert(
            "desiredReplicas".into(),
            status.get("desiredReplicas").cloned().unwrap_or(json!(0)),
        );
        if let Some(cpu) = current.iter().find(|m| {
            m.get("type").and_then(Value::as_str) == Some("Resource")
                && get(m, &["resource", "name"]).and_then(Value::as_str) == Some("cpu")
        }) {
            put(
                &mut v1_status,
                "currentCPUUtilizationPercentage",
                get(cpu, &["resource", "current", "averageUtilization"]),
            );
        }
        if !current.is_empty() {
            let v1: Vec<Value> = current.iter().map(|m| metric_to_v1(m, Part::Status)).collect();
            annotations_mut(&mut obj).insert(CURRENT_METRICS.into(), encoded(&Value::Array(v1)));
        }
        if let Some(c) = status
            .get("conditions")
            .and_then(Value::as_array)
            .filter(|c| !c.is_empty())
        {
            annotations_mut(&mut obj).insert(CONDITIONS.into(), encoded(&Value::Array(c.clone())));
        }
        obj.insert("status".into(), Value::Object(v1_status));
    }
    obj
}

/// Converts a v1 HPA (as a client sent it) to v2 for storage.
pub fn v1_to_v2(mut obj: Object) -> Object {
    let annotations = drop_round_trip(&mut obj);
    let decode = |key: &str| -> Option<Vec<Value>> {
        let text = annotations.get(key)?.as_str()?;
        serde_json::from_str::<Vec<Value>>(text).ok()
    };
    let spec = obj.remove("spec").unwrap_or(Value::Null);
    let status = obj.remove("status");
    let mut v2_spec = Map::new();
    put(&mut v2_spec, "scaleTargetRef", spec.get("scaleTargetRef"));
    put(&mut v2_spec, "minReplicas", spec.get("minReplicas"));
    put(&mut v2_spec, "maxReplicas", spec.get("maxReplicas"));
    let mut metrics: Vec<Value> = decode(METRICS)
        .unwrap_or_default()
        .iter()
        .map(|m| metric_to_v2(m, Part::Spec))
        .collect();
    if let Some(cpu) = spec.get("targetCPUUtilizationPercentage").filter(|v| !v.is_null()) {
        metrics.push(json!({"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": cpu}}}));
    }
    if !metrics.is_empty() {
        v2_spec.insert("metrics".into(), Value::Array(metrics));
    }
    if let Some(b) = annotations
        .get(BEHAVIOR)
        .and_then(Value::as_str)
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
        .filter(|b| b.as_object().is_some_and(|m| !m.is_empty()))
    {
        v2_spec.insert("behavior".into(), b);
    }
    obj.insert("spec".into(), Value::Object(v2_spec));

    if let Some(status) = status {
        let mut v2_status = Map::new();
        put(&mut v2_status, "observedGeneration", status.get("observedGeneration"));
        put(&mut v2_status, "lastScaleTime", status.get("lastScaleTime"));
        put(&mut v2_status, "currentReplicas", status.get("currentReplicas"));
        v2_status.insert(
            "desiredReplicas".into(),
            status.get("desiredReplicas").cloned().unwrap_or(json!(0)),
        );
        // The annotation has more than the CPU figure: it wins.
        if let Some(current) = decode(CURRENT_METRICS) {
            let v2: Vec<Value> = current.iter().map(|m| metric_to_v2(m, Part::Status)).collect();
            v2_status.insert("currentMetrics".into(), Value::Array(v2));
        } else if let Some(cpu) = status.get("currentCPUUtilizationPercentage").filter(|v| !v.is_null()) {
            v2_status.insert(
                "currentMetrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": cpu}}}]),
            );
        }
        if let Some(conditions) = decode(CONDITIONS) {
            v2_status.insert("conditions".into(), Value::Array(conditions));
        }
        obj.insert("status".into(), Value::Object(v2_status));
    }
    obj
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn obj(v: Value) -> Object {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn v2() -> Object {
        obj(json!({
            "metadata": {"name": "h", "annotations": {"keep": "me"}},
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
                "minReplicas": 1, "maxReplicas": 5,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                    {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
                    {"type": "External", "external": {"metric": {"name": "queue", "selector": {"matchLabels": {"q": "a"}}},
                        "target": {"type": "Value", "value": "30"}}},
                ],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}},
            },
            "status": {
                "currentReplicas": 2, "desiredReplicas": 3,
                "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 42, "averageValue": "120m"}}}],
                "conditions": [{"type": "AbleToScale", "status": "True", "reason": "Ready"}],
            },
        }))
    }

    #[test]
    fn v2_to_v1_keeps_the_rest_in_annotations() {
        let v1 = v2_to_v1(v2());
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
        assert!(v1["spec"].get("metrics").is_none());
        assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 42);
        let a = &v1["metadata"]["annotations"];
        assert_eq!(a["keep"], "me");
        let others: Value = serde_json::from_str(a[METRICS].as_str().unwrap()).unwrap();
        assert_eq!(
            others,
            json!([
                {"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "10"}},
                {"type": "External", "external": {"metricName": "queue", "metricSelector": {"matchLabels": {"q": "a"}}, "targetValue": "30"}},
            ])
        );
        assert!(a[BEHAVIOR].as_str().unwrap().contains("stabilizationWindowSeconds"));
        assert!(a[CONDITIONS].as_str().unwrap().contains("AbleToScale"));
    }

    #[test]
    fn round_trip_through_v1() {
        let original = v2();
        let back = v1_to_v2(v2_to_v1(original.clone()));
        assert_eq!(back["metadata"], json!({"name": "h", "annotations": {"keep": "me"}}));
        // Metrics come back with the CPU target last, like upstream.
        let metrics = back["spec"]["metrics"].as_array().unwrap();
        assert_eq!(metrics.len(), 3);
        assert_eq!(metrics[2], original["spec"]["metrics"][0]);
        assert_eq!(metrics[0], original["spec"]["metrics"][1]);
        assert_eq!(metrics[1], original["spec"]["metrics"][2]);
        assert_eq!(back["spec"]["behavior"], original["spec"]["behavior"]);
        assert_eq!(back["status"]["currentMetrics"], original["status"]["currentMetrics"]);
        assert_eq!(back["status"]["conditions"], original["status"]["conditions"]);
    }

    #[test]
    fn every_metric_kind_maps_both_ways() {
        let spec = json!({"type": "Object", "object": {"describedObject": {"kind": "Service", "name": "s"},
            "metric": {"name": "hits", "selector": {"matchLabels": {"a": "b"}}},
            "target": {"type": "AverageValue", "averageValue": "5"}}});
        let v1 = metric_to_v1(&spec, Part::Spec);
        assert_eq!(
            v1,
            json!({"type": "Object", "object": {"target": {"kind": "Service", "name": "s"}, "metricName": "hits",
                "selector": {"matchLabels": {"a": "b"}}, "averageValue": "5"}})
        );
        assert_eq!(metric_to_v2(&v1, Part::Spec), spec);
        let status = json!({"type": "ContainerResource", "containerResource": {"name": "memory", "container": "app",
            "current": {"averageUtilization": 80, "averageValue": "1Gi"}}});
        let v1 = metric_to_v1(&status, Part::Status);
        assert_eq!(
            v1,
            json!({"type": "ContainerResource", "containerResource": {"name": "memory", "container": "app",
                "currentAverageUtilization": 80, "currentAverageValue": "1Gi"}})
        );
        assert_eq!(metric_to_v2(&v1, Part::Status), status);
        // A v1 target with several values keeps the first of utilization,
        // average value, value.
        let v1 =
            json!({"type": "External", "external": {"metricName": "q", "targetValue": "1", "targetAverageValue": "2"}});
        assert_eq!(
            metric_to_v2(&v1, Part::Spec),
            json!({"type": "External", "external": {"metric": {"name": "q"},
                "target": {"type": "AverageValue", "averageValue": "2"}}})
        );
        assert_eq!(
            metric_to_v2(&json!({"type": "Other"}), Part::Spec),
            json!({"type": "Other"})
        );
    }

    #[test]
    fn plain_v1_object() {
        let v1 = obj(json!({"metadata": {"name": "h"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3,
                     "targetCPUUtilizationPercentage": 70},
            "status": {"currentReplicas": 1, "desiredReplicas": 1, "currentCPUUtilizationPercentage": 10}}));
        let v2 = v1_to_v2(v1);
        assert_eq!(
            v2["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}])
        );
        assert_eq!(
            v2["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"],
            10
        );
        assert!(v2["metadata"].get("annotations").is_none());
        // Garbage in a round-trip annotation is ignored, not a failure.
        let v1 =
            obj(json!({"metadata": {"name": "h", "annotations": {METRICS: "not json"}}, "spec": {"maxReplicas": 1}}));
        let v2 = v1_to_v2(v1);
        assert!(v2["spec"].get("metrics").is_none());
        assert!(v2["metadata"].get("annotations").is_none());
    }
}
