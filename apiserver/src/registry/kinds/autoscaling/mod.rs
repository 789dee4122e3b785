//! Strategies of the `autoscaling` API group's kinds: the
//! HorizontalPodAutoscaler, validated in its v2 shape or, when the body is
//! an autoscaling/v1 one (one store serves both without conversion), in
//! its v1 shape; v2 defaults (minReplicas, the CPU metric, behavior rules).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::names::is_path_segment_name;
use crate::validation::pod_spec::fields::{arr, at, has, int, str_at};
use crate::validation::{FieldError, FieldErrors, child, index};

use super::apps::workload::spec_mut;
use super::default_traits;
use super::pod::defaults::set_default;

/// The strategy of `resource` when it has its own.
pub fn strategy_for(resource: &str) -> Option<Arc<dyn Strategy>> {
    match resource {
        "horizontalpodautoscalers" => Some(Arc::new(HorizontalPodAutoscalerStrategy)),
        _ => None,
    }
}

#[derive(Debug, Default)]
pub struct HorizontalPodAutoscalerStrategy;

/// Whether an HPA body is in the autoscaling/v1 shape.
pub fn is_v1(obj: &Object) -> bool {
    let spec = obj.get("spec");
    obj.get("apiVersion").and_then(Value::as_str) == Some("autoscaling/v1") && !has(spec, "metrics")
        || has(spec, "targetCPUUtilizationPercentage")
}

fn scaling_rules(up: bool) -> Value {
    if up {
        json!({"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
               "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                            {"type": "Percent", "value": 100, "periodSeconds": 15}]})
    } else {
        json!({"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
               "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]})
    }
}

/// `SetDefaults_HorizontalPodAutoscaler` (v2; v1 bodies get minReplicas).
pub fn default_hpa(obj: &mut Object) {
    let v1 = is_v1(obj);
    let spec = spec_mut(obj);
    set_default(spec, "minReplicas", json!(1));
    if v1 {
        return;
    }
    if arr(Some(&Value::Object(spec.clone())), "metrics").is_empty() {
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80}}}]),
        );
    }
    if let Some(Value::Object(behavior)) = spec.get_mut("behavior") {
        for (key, up) in [("scaleUp", true), ("scaleDown", false)] {
            let defaults = scaling_rules(up);
            match behavior.get_mut(key) {
                Some(Value::Object(rules)) => {
                    let empty = rules
                        .get("policies")
                        .and_then(Value::as_array)
                        .is_none_or(Vec::is_empty);
                    if empty {
                        rules.insert("policies".into(), defaults["policies"].clone());
                    }
                    set_default(rules, "selectPolicy", defaults["selectPolicy"].clone());
                    set_default(
                        rules,
                        "stabilizationWindowSeconds",
                        defaults["stabilizationWindowSeconds"].clone(),
                    );
                }
                _ => {
                    behavior.insert(key.into(), defaults);
                }
            }
        }
    }
}

fn validate_ref(r: Option<&Value>, path: &str, errs: &mut FieldErrors) {
    for f in ["kind", "name"] {
        let v = str_at(r, f);
        if v.is_empty() {
            errs.push(FieldError::required(child(path, f), ""));
        } else {
            for m in is_path_segment_name(v) {
                errs.push(FieldError::invalid(child(path, f), v, m));
            }
        }
    }
}

const METRIC_SOURCES: &[(&str, &str)] = &[
    ("Object", "object"),
    ("Pods", "pods"),
    ("Resource", "resource"),
    ("ContainerResource", "containerResource"),
    ("External", "external"),
];

fn validate_target(t: Option<&Value>, path: &str, errs: &mut FieldErrors) {
    match str_at(t, "type") {
        "" => errs.push(FieldError::required(
            child(path, "type"),
            "must specify a metric target type",
        )),
        "Utilization" | "Value" | "AverageValue" => {}
        other => errs.push(FieldError::invalid(
            child(path, "type"),
            other,
            "must be either Utilization, Value, or AverageValue",
        )),
    }
    if let Some(u) = int(t, "averageUtilization")
        && u <= 0
    {
        errs.push(FieldError::invalid(
            child(path, "averageUtilization"),
            u,
            "must be greater than 0",
        ));
    }
}

fn validate_metrics(metrics: &[Value], path: &str, errs: &mut FieldErrors) {
    for (i, m) in metrics.iter().enumerate() {
        let p = index(path, i);
        let m = Some(m);
        let ty = str_at(m, "type");
        let expected = METRIC_SOURCES.iter().find(|(t, _)| *t == ty).map(|(_, f)| *f);
        for (_, field) in METRIC_SOURCES {
            if has(m, field) && Some(*field) != expected {
                errs.push(FieldError::forbidden(
                    child(&p, field),
                    "must populate the given metric source only",
                ));
            }
        }
        let Some(field) = expected else {
            if ty.is_empty() {
                errs.push(FieldError::required(
                    child(&p, "type"),
                    "must specify a metric source type",
                ));
            } else {
                errs.push(FieldError::invalid(
                    child(&p, "type"),
                    ty,
                    "must be either Object, Pods, Resource, ContainerResource, or External",
                ));
            }
            continue;
        };
        let sp = child(&p, field);
        let Some(src) = at(m, &[field]) else {
            errs.push(FieldError::required(
                sp,
                "must populate information for the given metric source",
            ));
            continue;
        };
        if matches!(field, "resource" | "containerResource") && str_at(Some(src), "name").is_empty() {
            errs.push(FieldError::required(child(&sp, "name"), "must specify a resource name"));
        }
        if field == "containerResource" && str_at(Some(src), "container").is_empty() {
            errs.push(FieldError::required(
                child(&sp, "container"),
                "must specify a container",
            ));
        }
        validate_target(at(Some(src), &["target"]), &child(&sp, "target"), errs);
    }
}

/// `ValidateHorizontalPodAutoscalerSpec` (v2, or the v1 fields).
pub fn validate_hpa_spec(obj: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let spec = obj.get("spec");
    let min = int(spec, "minReplicas");
    let max = int(spec, "maxReplicas").unwrap_or(0);
    if let Some(m) = min
        && m < 1
    {
        errs.push(FieldError::invalid(
            "spec.minReplicas",
            m,
            "must be greater than or equal to 1",
        ));
    }
    if max < 1 {
        errs.push(FieldError::invalid("spec.maxReplicas", max, "must be greater than 0"));
    }
    if let Some(m) = min
        && max < m
    {
        errs.push(FieldError::invalid(
            "spec.maxReplicas",
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    validate_ref(at(spec, &["scaleTargetRef"]), "spec.scaleTargetRef", &mut errs);
    if is_v1(obj) {
        if let Some(t) = int(spec, "targetCPUUtilizationPercentage")
            && t < 1
        {
            errs.push(FieldError::invalid(
                "spec.targetCPUUtilizationPercentage",
                t,
                "must be greater than 0",
            ));
        }
    } else {
        validate_metrics(arr(spec, "metrics"), "spec.metrics", &mut errs);
    }
    errs
}

impl Strategy for HorizontalPodAutoscalerStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("autoscaling", "horizontalpodautoscalers")
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        default_hpa(obj);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_hpa_spec(obj)
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        default_hpa(new);
    }

    fn validate_update(&self, new: &Object, _old: &Object) -> FieldErrors {
        validate_hpa_spec(new)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn hpa(spec: Value) -> Object {
        json!({"apiVersion": "autoscaling/v2", "metadata": {"name": "h"}, "spec": spec})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn defaults_and_validation() {
        let mut o = hpa(
            json!({"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "maxReplicas": 3, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}),
        );
        default_hpa(&mut o);
        let s = &o["spec"];
        assert_eq!(s["minReplicas"], 1);
        assert_eq!(s["metrics"][0]["resource"]["target"]["averageUtilization"], 80);
        assert_eq!(s["behavior"]["scaleUp"], scaling_rules(true));
        assert_eq!(s["behavior"]["scaleDown"]["stabilizationWindowSeconds"], 60);
        assert_eq!(s["behavior"]["scaleDown"]["selectPolicy"], "Max");
        assert!(validate_hpa_spec(&o).is_empty());

        let bad = hpa(
            json!({"minReplicas": 5, "maxReplicas": 2, "scaleTargetRef": {"kind": "Deployment"},
                             "metrics": [{"type": "Resource"}]}),
        );
        let got: Vec<String> = validate_hpa_spec(&bad).iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
                "spec.scaleTargetRef.name: Required value",
                "spec.metrics[0].resource: Required value: must populate information for the given metric source",
            ]
        );

        // A v1 body: no metrics defaulted, the v1 target checked.
        let mut v1 = json!({"apiVersion": "autoscaling/v1", "metadata": {"name": "h"},
                            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "maxReplicas": 3,
                                     "targetCPUUtilizationPercentage": 0}})
        .as_object()
        .unwrap()
        .clone();
        default_hpa(&mut v1);
        assert!(v1["spec"].get("metrics").is_none());
        let got: Vec<String> = validate_hpa_spec(&v1).iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            ["spec.targetCPUUtilizationPercentage: Invalid value: 0: must be greater than 0"]
        );
    }
}
