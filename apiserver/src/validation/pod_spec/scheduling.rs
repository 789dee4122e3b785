//! DNS policy and the scheduling directives of a pod spec: nodeSelector,
//! tolerations and affinity.

use serde_json::Value;

use crate::validation::names::{is_qualified_name, is_valid_label_value};
use crate::validation::{FieldError, FieldErrors, child, index};

use super::fields::{arr, has, int, obj, str_at, validate_labels};
use super::label_selector::validate_label_selector;

pub fn validate_dns(spec: Option<&Value>, path: &str, errs: &mut FieldErrors) {
    match str_at(spec, "dnsPolicy") {
        "" => errs.push(FieldError::required(child(path, "dnsPolicy"), "")),
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" => {}
        "None" => {
            if !has(spec, "dnsConfig") {
                errs.push(FieldError::required(
                    child(path, "dnsConfig"),
                    "must provide `dnsConfig` when `dnsPolicy` is None",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            child(path, "dnsPolicy"),
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
}

pub fn validate_scheduling(spec: Option<&Value>, path: &str, errs: &mut FieldErrors) {
    validate_labels(
        spec.and_then(|s| s.get("nodeSelector")),
        &child(path, "nodeSelector"),
        errs,
    );
    validate_tolerations(arr(spec, "tolerations"), &child(path, "tolerations"), errs);
    if let Some(affinity) = spec.and_then(|s| s.get("affinity")).filter(|a| !a.is_null()) {
        validate_affinity(affinity, &child(path, "affinity"), errs);
    }
    let mut gates = std::collections::BTreeSet::new();
    for (i, g) in arr(spec, "schedulingGates").iter().enumerate() {
        let name = str_at(Some(g), "name");
        let p = format!("{path}.schedulingGates[{i}].name");
        for m in is_qualified_name(name) {
            errs.push(FieldError::invalid(&p, name, m));
        }
        if !gates.insert(name) {
            errs.push(FieldError::duplicate(&p, name));
        }
    }
}

/// `ValidateTolerations`.
pub fn validate_tolerations(tolerations: &[Value], path: &str, errs: &mut FieldErrors) {
    for (i, t) in tolerations.iter().enumerate() {
        let p = index(path, i);
        let tv = Some(t);
        let key = str_at(tv, "key");
        let operator = str_at(tv, "operator");
        let effect = str_at(tv, "effect");
        if !key.is_empty() {
            for m in is_qualified_name(key) {
                errs.push(FieldError::invalid(child(&p, "key"), key, m));
            }
        }
        if key.is_empty() && operator != "Exists" {
            errs.push(FieldError::invalid(
                child(&p, "operator"),
                operator,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if has(tv, "tolerationSeconds") && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                child(&p, "effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match operator {
            "Equal" | "" => {
                let value = str_at(tv, "value");
                let msgs = is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(child(&p, "operator"), value, msgs.join(";")));
                }
            }
            "Exists" => {
                if !str_at(tv, "value").is_empty() {
                    errs.push(FieldError::invalid(
                        child(&p, "operator"),
                        t.clone(),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                child(&p, "operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            errs.push(FieldError::not_supported(
                child(&p, "effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
}

fn validate_node_selector_requirements(reqs: &[Value], path: &str, errs: &mut FieldErrors) {
    for (i, r) in reqs.iter().enumerate() {
        let p = index(path, i);
        let r = Some(r);
        let values = arr(r, "values");
        match str_at(r, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        child(&p, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        child(&p, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            "Gt" | "Lt" => {
                if values.len() != 1 {
                    errs.push(FieldError::required(
                        child(&p, "values"),
                        "must be specified single value when `operator` is 'Lt' or 'Gt'",
                    ));
                }
            }
            other => errs.push(FieldError::invalid(
                child(&p, "operator"),
                other,
                "not a valid selector operator",
            )),
        }
        let key = str_at(r, "key");
        for m in is_qualified_name(key) {
            errs.push(FieldError::invalid(child(&p, "key"), key, m));
        }
    }
}

fn validate_node_selector_term(term: &Value, path: &str, errs: &mut FieldErrors) {
    let t = Some(term);
    validate_node_selector_requirements(arr(t, "matchExpressions"), &child(path, "matchExpressions"), errs);
    validate_node_selector_requirements(arr(t, "matchFields"), &child(path, "matchFields"), errs);
}

fn validate_weight(term: &Value, path: &str, errs: &mut FieldErrors) {
    let w = int(Some(term), "weight").unwrap_or(0);
    if !(1..=100).contains(&w) {
        errs.push(FieldError::invalid(
            child(path, "weight"),
            w,
            "must be in the range 1-100",
        ));
    }
}

fn validate_pod_affinity_term(term: &Value, path: &str, errs: &mut FieldErrors) {
    let t = Some(term);
    validate_label_selector(
        t.and_then(|t| t.get("labelSelector")),
        &child(path, "labelSelector"),
        errs,
    );
    validate_label_selector(
        t.and_then(|t| t.get("namespaceSelector")),
        &child(path, "namespaceSelector"),
        errs,
    );
    if str_at(t, "topologyKey").is_empty() {
        errs.push(FieldError::required(child(path, "topologyKey"), "can not be empty"));
    } else {
        let k = str_at(t, "topologyKey");
        for m in is_qualified_name(k) {
            errs.push(FieldError::invalid(child(path, "topologyKey"), k, m));
        }
    }
}

/// The basics of `validateAffinity`.
fn validate_affinity(affinity: &Value, path: &str, errs: &mut FieldErrors) {
    let a = Some(affinity);
    if let Some(node) = obj(a, "nodeAffinity") {
        let np = child(path, "nodeAffinity");
        let node = node.get("requiredDuringSchedulingIgnoredDuringExecution");
        if let Some(required) = node.filter(|r| !r.is_null()) {
            let rp = child(&np, "requiredDuringSchedulingIgnoredDuringExecution");
            let terms = arr(Some(required), "nodeSelectorTerms");
            if terms.is_empty() {
                errs.push(FieldError::required(
                    child(&rp, "nodeSelectorTerms"),
                    "must have at least one node selector term",
                ));
            }
            for (i, t) in terms.iter().enumerate() {
                validate_node_selector_term(t, &index(&child(&rp, "nodeSelectorTerms"), i), errs);
            }
        }
        let pp = child(&np, "preferredDuringSchedulingIgnoredDuringExecution");
        let preferred = a.and_then(|a| a.get("nodeAffinity"));
        for (i, t) in arr(preferred, "preferredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            let p = index(&pp, i);
            validate_weight(t, &p, errs);
            if let Some(pref) = t.get("preference") {
                validate_node_selector_term(pref, &child(&p, "preference"), errs);
            }
        }
    }
    for kind in ["podAffinity", "podAntiAffinity"] {
        let Some(pa) = a.and_then(|a| a.get(kind)).filter(|v| !v.is_null()) else {
            continue;
        };
        let kp = child(path, kind);
        let pa = Some(pa);
        let rp = child(&kp, "requiredDuringSchedulingIgnoredDuringExecution");
        for (i, t) in arr(pa, "requiredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            validate_pod_affinity_term(t, &index(&rp, i), errs);
        }
        let pp = child(&kp, "preferredDuringSchedulingIgnoredDuringExecution");
        for (i, t) in arr(pa, "preferredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            let p = index(&pp, i);
            validate_weight(t, &p, errs);
            match t.get("podAffinityTerm") {
                Some(term) => validate_pod_affinity_term(term, &child(&p, "podAffinityTerm"), errs),
                None => errs.push(FieldError::required(child(&p, "podAffinityTerm"), "")),
            }
        }
    }
}
