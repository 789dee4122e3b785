//! NetworkPolicy (`networking.k8s.io/v1`): policyTypes and port protocol
//! defaults, selectors, ports and ipBlocks validated as upstream.

use serde_json::{Value, json};

use super::formats::{is_valid_port_name, is_valid_port_num, parse_cidr_sloppy, validate_cidr_legacy};
use super::values::{arr, each_object_mut, get, go_slice_at, invalid_raw, set_default, str_at, strs};
use crate::registry::kinds::default_traits;
use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::label_selector::{LabelSelectorOptions, is_valid_label_selector, validate_label_selector};
use crate::validation::{FieldError, FieldErrors, child, index};

#[derive(Debug, Default)]
pub struct NetworkPolicyStrategy;

fn apply_defaults(obj: &mut Object) {
    let Some(Value::Object(spec)) = obj.get_mut("spec") else {
        return;
    };
    for rules in ["ingress", "egress"] {
        each_object_mut(spec, rules, |rule| {
            each_object_mut(rule, "ports", |port| set_default(port, "protocol", json!("TCP")));
        });
    }
    let no_types = spec
        .get("policyTypes")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if no_types {
        let has_egress = spec
            .get("egress")
            .and_then(Value::as_array)
            .is_some_and(|e| !e.is_empty());
        let types = if has_egress {
            json!(["Ingress", "Egress"])
        } else {
            json!(["Ingress"])
        };
        spec.insert("policyTypes".into(), types);
    }
}

/// What the update may keep although current validation rejects it.
#[derive(Debug, Default)]
struct Options {
    selector: LabelSelectorOptions,
    old_cidrs: Vec<String>,
}

impl Strategy for NetworkPolicyStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("networking.k8s.io", "networkpolicies")
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        apply_defaults(obj);
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        apply_defaults(new);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_spec(obj.get("spec"), &Options::default())
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let old_spec = old.get("spec");
        let mut old_cidrs = Vec::new();
        for (rules, peers) in [("ingress", "from"), ("egress", "to")] {
            for rule in arr(old_spec, rules) {
                for peer in arr(Some(rule), peers) {
                    if let Some(block) = get(Some(peer), "ipBlock") {
                        old_cidrs.push(str_at(Some(block), "cidr").to_string());
                        old_cidrs.extend(strs(Some(block), "except").into_iter().map(String::from));
                    }
                }
            }
        }
        let opts = Options {
            selector: LabelSelectorOptions {
                allow_invalid_label_value: !is_valid_label_selector(get(old_spec, "podSelector")),
            },
            old_cidrs,
        };
        validate_spec(new.get("spec"), &opts)
    }
}

fn validate_spec(spec: Option<&Value>, opts: &Options) -> FieldErrors {
    let mut errs = validate_label_selector(get(spec, "podSelector"), opts.selector, "spec.podSelector");
    for (rules, peers) in [("ingress", "from"), ("egress", "to")] {
        for (i, rule) in arr(spec, rules).iter().enumerate() {
            let p = index(&format!("spec.{rules}"), i);
            for (j, port) in arr(Some(rule), "ports").iter().enumerate() {
                errs.extend(validate_port(port, &index(&child(&p, "ports"), j)));
            }
            for (j, peer) in arr(Some(rule), peers).iter().enumerate() {
                errs.extend(validate_peer(peer, &index(&child(&p, peers), j), opts));
            }
        }
    }
    let types = strs(spec, "policyTypes");
    if types.len() > 2 {
        errs.push(invalid_raw(
            "spec.policyTypes",
            &go_slice_at("networking.PolicyType", spec, "policyTypes"),
            "may not specify more than two policyTypes",
        ));
        return errs;
    }
    for (i, t) in types.iter().enumerate() {
        if !matches!(*t, "Ingress" | "Egress") {
            errs.push(FieldError::not_supported(
                index("spec.policyTypes", i),
                *t,
                &["Ingress", "Egress"],
            ));
        }
    }
    errs
}

fn validate_port(port: &Value, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let p = Some(port);
    if let Some(proto) = get(p, "protocol").and_then(Value::as_str)
        && !matches!(proto, "TCP" | "UDP" | "SCTP")
    {
        errs.push(FieldError::not_supported(
            child(path, "protocol"),
            proto,
            &["TCP", "UDP", "SCTP"],
        ));
    }
    let end_port = get(p, "endPort").and_then(Value::as_i64);
    match get(p, "port") {
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or(0);
            for m in is_valid_port_num(n) {
                errs.push(FieldError::invalid(child(path, "port"), n, m));
            }
            if let Some(end) = end_port {
                if end < n {
                    errs.push(FieldError::invalid(
                        child(path, "endPort"),
                        end,
                        "must be greater than or equal to `port`",
                    ));
                }
                for m in is_valid_port_num(end) {
                    errs.push(FieldError::invalid(child(path, "endPort"), end, m));
                }
            }
        }
        Some(other) => {
            if let Some(end) = end_port {
                errs.push(FieldError::invalid(
                    child(path, "endPort"),
                    end,
                    "may not be specified when `port` is non-numeric",
                ));
            }
            let name = other.as_str().unwrap_or("");
            for m in is_valid_port_name(name) {
                errs.push(FieldError::invalid(child(path, "port"), name, m));
            }
        }
        None => {
            if let Some(end) = end_port {
                errs.push(FieldError::invalid(
                    child(path, "endPort"),
                    end,
                    "may not be specified when `port` is not specified",
                ));
            }
        }
    }
    errs
}

fn validate_peer(peer: &Value, path: &str, opts: &Options) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let mut count = 0;
    for selector in ["podSelector", "namespaceSelector"] {
        if let Some(sel) = get(Some(peer), selector) {
            count += 1;
            errs.extend(validate_label_selector(
                Some(sel),
                opts.selector,
                &child(path, selector),
            ));
        }
    }
    let block = get(Some(peer), "ipBlock");
    if let Some(block) = block {
        count += 1;
        errs.extend(validate_ip_block(block, &child(path, "ipBlock"), opts));
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a peer"));
    } else if count > 1 && block.is_some() {
        errs.push(FieldError::forbidden(
            path,
            "may not specify both ipBlock and another peer",
        ));
    }
    errs
}

fn validate_ip_block(block: &Value, path: &str, opts: &Options) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let cidr = str_at(Some(block), "cidr");
    if cidr.is_empty() {
        errs.push(FieldError::required(child(path, "cidr"), ""));
        return errs;
    }
    let allowed = |v: &str| opts.old_cidrs.iter().any(|c| c == v);
    if !allowed(cidr) {
        errs.extend(validate_cidr_legacy(&child(path, "cidr"), cidr));
    }
    let Some(net) = parse_cidr_sloppy(cidr) else {
        return errs;
    };
    for (i, except) in strs(Some(block), "except").into_iter().enumerate() {
        let p = index(&child(path, "except"), i);
        if !allowed(except) {
            errs.extend(validate_cidr_legacy(&p, except));
        }
        let Some(ex) = parse_cidr_sloppy(except) else {
            continue;
        };
        if !net.contains(&ex) || net.prefix >= ex.prefix {
            errs.push(FieldError::invalid(&p, except, "must be a strict subset of `cidr`"));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::registry::strategy::testing::create_messages;

    fn obj(spec: Value) -> Object {
        match json!({"metadata": {"name": "np", "namespace": "default"}, "spec": spec}) {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn check(spec: Value, expected: &[&str]) {
        assert_eq!(
            create_messages(&NetworkPolicyStrategy, Value::Object(obj(spec))),
            expected
        );
    }

    #[test]
    fn defaults() {
        let mut o = obj(json!({"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]}));
        NetworkPolicyStrategy.prepare_for_create(&mut o);
        assert_eq!(o["spec"]["policyTypes"], json!(["Ingress"]));
        assert_eq!(o["spec"]["ingress"][0]["ports"][0]["protocol"], "TCP");
        let mut o = obj(json!({"podSelector": {}, "egress": [{}]}));
        NetworkPolicyStrategy.prepare_for_create(&mut o);
        assert_eq!(o["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        let mut o = obj(json!({"podSelector": {}, "egress": [{}], "policyTypes": ["Egress"]}));
        NetworkPolicyStrategy.prepare_for_create(&mut o);
        assert_eq!(o["spec"]["policyTypes"], json!(["Egress"]));
    }

    #[test]
    fn ports() {
        check(json!({"ingress": [{"ports": [{"port": 80, "endPort": 90}]}]}), &[]);
        check(
            json!({"ingress": [{"ports": [{"port": 80, "endPort": 70, "protocol": "ICMP"}]}]}),
            &[
                "spec.ingress[0].ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"TCP\", \"UDP\", \"SCTP\"",
                "spec.ingress[0].ports[0].endPort: Invalid value: 70: must be greater than or equal to `port`",
            ],
        );
        check(
            json!({"egress": [{"ports": [{"port": "http", "endPort": 90}]}]}),
            &["spec.egress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric"],
        );
        check(
            json!({"egress": [{"ports": [{"endPort": 90}]}]}),
            &["spec.egress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is not specified"],
        );
    }

    #[test]
    fn peers_and_ip_blocks() {
        check(
            json!({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}]}),
            &[],
        );
        check(
            json!({"ingress": [{"from": [{}]}]}),
            &["spec.ingress[0].from[0]: Required value: must specify a peer"],
        );
        check(
            json!({"ingress": [{"from": [{"podSelector": {}, "ipBlock": {"cidr": "10.0.0.0/8"}}]}]}),
            &["spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer"],
        );
        check(
            json!({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16", "10.0.0.0/8", "x"]}}]}]}),
            &[
                "spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: \"11.0.0.0/16\": must be a strict subset of `cidr`",
                "spec.ingress[0].from[0].ipBlock.except[1]: Invalid value: \"10.0.0.0/8\": must be a strict subset of `cidr`",
                "spec.ingress[0].from[0].ipBlock.except[2]: Invalid value: \"x\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ],
        );
        check(
            json!({"egress": [{"to": [{"ipBlock": {}}]}]}),
            &["spec.egress[0].to[0].ipBlock.cidr: Required value"],
        );
    }

    #[test]
    fn policy_types_and_selector() {
        check(
            json!({"policyTypes": ["Ingress", "Bogus"]}),
            &["spec.policyTypes[1]: Unsupported value: \"Bogus\": supported values: \"Ingress\", \"Egress\""],
        );
        check(
            json!({"policyTypes": ["Ingress", "Egress", "Ingress"]}),
            &[
                "spec.policyTypes: Invalid value: []networking.PolicyType{\"Ingress\", \"Egress\", \"Ingress\"}: may not specify more than two policyTypes",
            ],
        );
        check(
            json!({"podSelector": {"matchExpressions": [{"key": "a", "operator": "Bad"}]}}),
            &["spec.podSelector.matchExpressions[0].operator: Invalid value: \"Bad\": not a valid selector operator"],
        );
    }

    #[test]
    fn update_keeps_stored_cidrs() {
        let mut old = obj(json!({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}));
        NetworkPolicyStrategy.prepare_for_create(&mut old);
        let mut new = obj(json!({"ingress": [{"from": [{"ipBlock": {"cidr": "bad"}}]}]}));
        NetworkPolicyStrategy.prepare_for_update(&mut new, &old);
        assert_eq!(NetworkPolicyStrategy.validate_update(&new, &old).0.len(), 1);
    }
}
