//! Pods: upstream's defaults for the fields clients leave out, status reset
//! to Pending on create, graceful deletion for pods bound to a node, and
//! the basic container validation.

use serde_json::{Map, Value, json};

use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::names::is_dns1123_label;
use crate::validation::object_meta::NameRule;
use crate::validation::{FieldError, FieldErrors};

/// Default `terminationGracePeriodSeconds`.
pub const DEFAULT_GRACE_SECONDS: i64 = 30;

#[derive(Debug, Default)]
pub struct PodStrategy;

fn set_default(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), value);
    }
}

/// `imagePullPolicy` default: Always for `:latest` or untagged images,
/// IfNotPresent otherwise (digests count as tagged).
fn default_pull_policy(image: &str) -> &'static str {
    let name = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') {
        return "IfNotPresent";
    }
    match name.rsplit_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn default_container(c: &mut Value) {
    let Value::Object(c) = c else { return };
    let image = c.get("image").and_then(Value::as_str).unwrap_or("").to_string();
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    set_default(c, "imagePullPolicy", json!(default_pull_policy(&image)));
    set_default(c, "resources", json!({}));
    if let Some(Value::Array(ports)) = c.get_mut("ports") {
        for p in ports {
            if let Value::Object(p) = p {
                set_default(p, "protocol", json!("TCP"));
            }
        }
    }
}

/// Applies upstream's v1 Pod spec defaults.
pub fn default_pod_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(DEFAULT_GRACE_SECONDS));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "enableServiceLinks", json!(true));
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(cs)) = spec.get_mut(list) {
            cs.iter_mut().for_each(default_container);
        }
    }
}

/// Validates the containers of a pod spec at `path`.
pub fn validate_pod_spec(spec: Option<&Value>, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let containers = spec.and_then(|s| s.get("containers")).and_then(Value::as_array);
    match containers {
        None => errs.push(FieldError::required(format!("{path}.containers"), "")),
        Some(cs) if cs.is_empty() => errs.push(FieldError::required(format!("{path}.containers"), "")),
        Some(_) => {}
    }
    let mut names = std::collections::BTreeSet::new();
    for list in ["initContainers", "containers"] {
        let Some(cs) = spec.and_then(|s| s.get(list)).and_then(Value::as_array) else {
            continue;
        };
        for (i, c) in cs.iter().enumerate() {
            let p = format!("{path}.{list}[{i}]");
            let name = c.get("name").and_then(Value::as_str).unwrap_or("");
            if name.is_empty() {
                errs.push(FieldError::required(format!("{p}.name"), ""));
            } else {
                for m in is_dns1123_label(name) {
                    errs.push(FieldError::invalid(format!("{p}.name"), name, m));
                }
                if !names.insert(name.to_string()) {
                    errs.push(FieldError::duplicate(format!("{p}.name"), name));
                }
            }
            if c.get("image").and_then(Value::as_str).unwrap_or("").trim().is_empty() {
                errs.push(FieldError::required(format!("{p}.image"), ""));
            }
        }
    }
    if let Some(policy) = spec.and_then(|s| s.get("restartPolicy")).and_then(Value::as_str)
        && !matches!(policy, "Always" | "OnFailure" | "Never")
    {
        errs.push(FieldError::not_supported(
            format!("{path}.restartPolicy"),
            policy,
            &["Always", "OnFailure", "Never"],
        ));
    }
    errs
}

impl Strategy for PodStrategy {
    fn traits(&self) -> KindTraits {
        KindTraits {
            name_rule: NameRule::Dns1123Subdomain,
            tracks_generation: true,
        }
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        if let Some(Value::Object(spec)) = obj.get_mut("spec") {
            default_pod_spec(spec);
        }
        obj.insert(
            "status".into(),
            json!({"phase": "Pending", "qosClass": qos_class(obj.get("spec"))}),
        );
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_pod_spec(obj.get("spec"), "spec")
    }

    fn graceful_delete_period(&self, obj: &Object, requested: Option<i64>) -> Option<i64> {
        let spec = obj.get("spec");
        let node = spec
            .and_then(|s| s.get("nodeName"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let phase = obj
            .get("status")
            .and_then(|s| s.get("phase"))
            .and_then(Value::as_str)
            .unwrap_or("");
        // Unscheduled and finished pods go at once.
        if node.is_empty() || matches!(phase, "Succeeded" | "Failed") {
            return None;
        }
        let default = spec
            .and_then(|s| s.get("terminationGracePeriodSeconds"))
            .and_then(Value::as_i64)
            .unwrap_or(DEFAULT_GRACE_SECONDS);
        Some(requested.unwrap_or(default).max(0))
    }
}

/// The pod's QoS class from its containers' requests and limits.
pub fn qos_class(spec: Option<&Value>) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    for list in ["initContainers", "containers"] {
        let Some(cs) = spec.and_then(|s| s.get(list)).and_then(Value::as_array) else {
            continue;
        };
        for c in cs {
            let requests = c
                .get("resources")
                .and_then(|r| r.get("requests"))
                .and_then(Value::as_object);
            let limits = c
                .get("resources")
                .and_then(|r| r.get("limits"))
                .and_then(Value::as_object);
            for res in ["cpu", "memory"] {
                let l = limits.and_then(|l| l.get(res));
                let r = requests.and_then(|r| r.get(res)).or(l);
                if l.is_some() || r.is_some() {
                    any = true;
                }
                if l.is_none() || r != l {
                    guaranteed = false;
                }
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_and_qos() {
        assert_eq!(default_pull_policy("nginx"), "Always");
        assert_eq!(default_pull_policy("nginx:latest"), "Always");
        assert_eq!(default_pull_policy("nginx:1.25"), "IfNotPresent");
        assert_eq!(default_pull_policy("localhost:5000/nginx"), "Always");
        assert_eq!(default_pull_policy("nginx@sha256:abc"), "IfNotPresent");
        assert_eq!(qos_class(Some(&json!({"containers": [{"name": "a"}]}))), "BestEffort");
        let g = json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
        assert_eq!(qos_class(Some(&g)), "Guaranteed");
        let b = json!({"containers": [{"resources": {"requests": {"cpu": "1"}}}]});
        assert_eq!(qos_class(Some(&b)), "Burstable");
    }

    #[test]
    fn validation_messages() {
        let errs = validate_pod_spec(
            Some(&json!({"containers": [{"name": "a"}, {"name": "a", "image": "x"}], "restartPolicy": "Sometimes"})),
            "spec",
        );
        assert_eq!(
            errs.summary(),
            "[spec.containers[0].image: Required value, spec.containers[1].name: Duplicate value: \"a\", spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"]"
        );
    }
}
