//! StatefulSets: apps/v1 defaults (OrderedReady, RollingUpdate with
//! partition 0, Retain/Retain claim retention, revisionHistoryLimit 10),
//! DNS-1123 label names, spec/status validation (the whole pod template,
//! like a Deployment's, with the claim templates as volumes) and the fields
//! an update may not touch.

use serde_json::{Value, json};

use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::object_meta::NameRule;
use crate::validation::pod_spec::fields::{arr, at, int, int_or_percent_number, positive_int_or_percent, str_at};
use crate::validation::pod_spec::label_selector::{check_template_match, is_empty_selector, validate_label_selector};
use crate::validation::pod_spec::validate_pod_template_spec;
use crate::validation::{FieldError, FieldErrors, index};

use super::super::default_traits;
use super::super::pod::defaults::{default_pod_template, set_default};
use super::workload::{self, spec, spec_mut};

#[derive(Debug, Default)]
pub struct StatefulSetStrategy;

/// Upstream's message for forbidden spec changes.
pub const FORBIDDEN_UPDATE: &str = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";

/// `SetDefaults_StatefulSet` (and the claim templates' own defaults).
pub fn default_statefulset(obj: &mut Object) {
    let spec = spec_mut(obj);
    set_default(spec, "podManagementPolicy", json!("OrderedReady"));
    let us = spec.entry("updateStrategy").or_insert_with(|| json!({}));
    if let Value::Object(us) = us {
        if us.get("type").is_none_or(Value::is_null) {
            us.insert("type".into(), json!("RollingUpdate"));
            set_default(us, "rollingUpdate", json!({}));
        }
        if us.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            && let Some(Value::Object(ru)) = us.get_mut("rollingUpdate")
        {
            set_default(ru, "partition", json!(0));
        }
    }
    set_default(spec, "replicas", json!(1));
    set_default(spec, "revisionHistoryLimit", json!(10));
    let policy = spec
        .entry("persistentVolumeClaimRetentionPolicy")
        .or_insert_with(|| json!({}));
    if let Value::Object(p) = policy {
        set_default(p, "whenDeleted", json!("Retain"));
        set_default(p, "whenScaled", json!("Retain"));
    }
    if let Some(Value::Array(templates)) = spec.get_mut("volumeClaimTemplates") {
        for t in templates.iter_mut().filter_map(Value::as_object_mut) {
            set_default(t, "apiVersion", json!("v1"));
            set_default(t, "kind", json!("PersistentVolumeClaim"));
            if let Some(Value::Object(s)) = t.get_mut("spec") {
                set_default(s, "volumeMode", json!("Filesystem"));
            }
            let status = t.entry("status").or_insert_with(|| json!({}));
            if let Value::Object(status) = status {
                set_default(status, "phase", json!("Pending"));
            }
        }
    }
    default_pod_template(spec.get_mut("template"));
}

fn validate_update_strategy(s: Option<&Value>, errs: &mut FieldErrors) {
    let us = s.and_then(|s| s.get("updateStrategy"));
    let ru = us.and_then(|u| u.get("rollingUpdate")).filter(|r| !r.is_null());
    match str_at(us, "type") {
        "" => errs.push(FieldError::required("spec.updateStrategy", "")),
        "OnDelete" => {
            if let Some(ru) = ru {
                errs.push(FieldError::invalid(
                    "spec.updateStrategy.rollingUpdate",
                    ru.clone(),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = ru {
                workload::nonnegative_opt(
                    int(Some(ru), "partition"),
                    "spec.updateStrategy.rollingUpdate.partition",
                    errs,
                );
                if let Some(mu) = ru.get("maxUnavailable").filter(|v| !v.is_null()) {
                    let p = "spec.updateStrategy.rollingUpdate.maxUnavailable";
                    positive_int_or_percent(mu, p, errs);
                    if int_or_percent_number(Some(mu)) == 0 {
                        errs.push(FieldError::invalid(p, mu.clone(), "cannot be 0"));
                    }
                }
            }
        }
        _ => errs.push(FieldError::invalid(
            "spec.updateStrategy",
            us.cloned().unwrap_or(Value::Null),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
}

/// The template as its pods will be: each volume claim template is a
/// volume of the pod (a PersistentVolumeClaim named after it), so mounts
/// of claim templates resolve like the controller makes them.
fn with_claim_volumes(template: &Value, claims: &[Value]) -> Value {
    let mut template = template.clone();
    if claims.is_empty() {
        return template;
    }
    let Some(spec) = template.get_mut("spec").and_then(Value::as_object_mut) else {
        return template;
    };
    let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
    if !volumes.is_array() {
        return template;
    }
    if let Value::Array(volumes) = volumes {
        for claim in claims {
            let name = str_at(claim.get("metadata"), "name");
            if name.is_empty() || volumes.iter().any(|v| str_at(Some(v), "name") == name) {
                continue;
            }
            volumes.push(json!({"name": name, "persistentVolumeClaim": {"claimName": name}}));
        }
    }
    template
}

/// `ValidateStatefulSetSpec`.
pub fn validate_statefulset_spec(obj: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let s = spec(obj);
    match str_at(s, "podManagementPolicy") {
        "" => errs.push(FieldError::required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            "spec.podManagementPolicy",
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    validate_update_strategy(s, &mut errs);
    for f in ["whenDeleted", "whenScaled"] {
        if let Some(v) = at(s, &["persistentVolumeClaimRetentionPolicy", f]) {
            let v = v.as_str().unwrap_or("");
            if !matches!(v, "Retain" | "Delete") {
                errs.push(FieldError::not_supported(
                    format!("spec.persistentVolumeClaimRetentionPolicy.{f}"),
                    v,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    workload::nonnegative_spec(s, &["replicas", "minReadySeconds"], &mut errs);
    workload::nonnegative_opt(
        at(s, &["ordinals", "start"]).and_then(Value::as_i64),
        "spec.ordinals.start",
        &mut errs,
    );
    let selector = s.and_then(|s| s.get("selector")).filter(|v| !v.is_null());
    match selector {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(sel) => {
            validate_label_selector(Some(sel), "spec.selector", &mut errs);
            if is_empty_selector(Some(sel)) {
                errs.push(FieldError::invalid(
                    "spec.selector",
                    sel.clone(),
                    "empty selector is invalid for statefulset",
                ));
            }
        }
    }
    let template = s.and_then(|s| s.get("template")).filter(|t| !t.is_null());
    check_template_match(selector, "spec.selector", template, "spec.template", &mut errs);
    match template {
        None => errs.push(FieldError::required("spec.template", "")),
        Some(template) => {
            let template = with_claim_volumes(template, arr(s, "volumeClaimTemplates"));
            errs.extend(validate_pod_template_spec(Some(&template), "spec.template"));
            workload::validate_always_restart(Some(&template), "StatefulSet", &mut errs);
        }
    }
    for (i, t) in arr(s, "volumeClaimTemplates").iter().enumerate() {
        let p = index("spec.volumeClaimTemplates", i);
        let ts = t.get("spec");
        if arr(ts, "accessModes").is_empty() {
            errs.push(FieldError::required(
                format!("{p}.spec.accessModes"),
                "at least 1 access mode is required",
            ));
        }
        if at(ts, &["resources", "requests", "storage"]).is_none() {
            errs.push(FieldError::required(format!("{p}.spec.resources[storage]"), ""));
        }
    }
    errs
}

/// The spec without the fields an update may change.
fn frozen_spec(obj: &Object) -> serde_json::Map<String, Value> {
    let mut s = obj.get("spec").and_then(Value::as_object).cloned().unwrap_or_default();
    for f in [
        "replicas",
        "template",
        "updateStrategy",
        "minReadySeconds",
        "ordinals",
        "persistentVolumeClaimRetentionPolicy",
    ] {
        s.remove(f);
    }
    s
}

fn validate_status(new: &Object, old: &Object) -> FieldErrors {
    let mut errs = workload::validate_replica_status(
        new.get("status"),
        &[
            "replicas",
            "readyReplicas",
            "currentReplicas",
            "updatedReplicas",
            "availableReplicas",
            "observedGeneration",
            "collisionCount",
        ],
        &[
            "readyReplicas",
            "currentReplicas",
            "updatedReplicas",
            "availableReplicas",
        ],
        Some("cannot be greater than status.readyReplicas"),
    );
    workload::collision_count_not_decremented(new, old, &mut errs);
    errs
}

impl Strategy for StatefulSetStrategy {
    fn traits(&self) -> KindTraits {
        KindTraits {
            name_rule: NameRule::Dns1123Label,
            ..default_traits("apps", "statefulsets")
        }
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        default_statefulset(obj);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_statefulset_spec(obj)
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        default_statefulset(new);
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = validate_statefulset_spec(new);
        if frozen_spec(new) != frozen_spec(old) {
            errs.push(FieldError::forbidden("spec", FORBIDDEN_UPDATE));
        }
        if workload::status_changed(new, old) {
            errs.extend(validate_status(new, old));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn messages(spec: Value) -> Vec<String> {
        let mut obj = json!({"metadata": {"name": "s", "namespace": "default"}, "spec": spec})
            .as_object()
            .cloned()
            .unwrap();
        default_statefulset(&mut obj);
        validate_statefulset_spec(&obj)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn validates_the_whole_pod_template() {
        let selector = json!({"matchLabels": {"app": "x"}});
        let got = messages(
            json!({"selector": selector, "template": {"metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "Bad_Name"}]}}}),
        );
        assert!(
            got.iter()
                .any(|m| m.starts_with("spec.template.spec.containers[0].name: Invalid value: \"Bad_Name\"")),
            "{got:?}"
        );
        assert!(
            got.contains(&"spec.template.spec.containers[0].image: Required value".to_string()),
            "{got:?}"
        );
        let got = messages(
            json!({"selector": selector, "template": {"metadata": {"labels": {"app": "x"}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}),
        );
        assert_eq!(
            got,
            ["spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""]
        );
    }

    #[test]
    fn claim_templates_count_as_volumes() {
        let spec = |mount: &str| {
            json!({"selector": {"matchLabels": {"app": "x"}},
                "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [
                    {"name": "c", "image": "i", "volumeMounts": [{"name": mount, "mountPath": "/data"}]}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]})
        };
        assert_eq!(messages(spec("data")), Vec::<String>::new());
        let got = messages(spec("other"));
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with("spec.template.spec.containers[0].volumeMounts[0].name: Not found: \"other\""),
            "{got:?}"
        );
    }
}
