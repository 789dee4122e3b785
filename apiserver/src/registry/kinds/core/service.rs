//! Services: upstream's v1 defaults, the strategy's ClusterIP/IP-family
//! normalisation (`pkg/registry/core/service/strategy.go`), validation
//! (`ValidateService`, `ValidateServiceUpdate`) and, through the
//! [`ServiceAllocator`], ClusterIP and NodePort allocation.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::checks::{
    arr_of, obj_of, port_num_errors, set_default, spec_mut, str_of, validate_cidr, validate_ip, validate_labels,
    validate_non_special_ip, validate_port_num_or_name, verbatim,
};
use crate::registry::alloc::ServiceAllocator;
use crate::registry::alloc::service::{go_string_slice, needs_cluster_ip, needs_health_check, needs_node_port};
use crate::registry::object::Object;
use crate::registry::strategy::{Allocator, KindTraits, Strategy};
use crate::validation::names::{is_dns1123_label, is_dns1123_subdomain, is_qualified_name};
use crate::validation::object_meta::NameRule;
use crate::validation::{ErrorType, FieldError, FieldErrors};

/// `v1.DefaultClientIPServiceAffinitySeconds`.
const DEFAULT_AFFINITY_SECONDS: i64 = 10800;
/// `core.MaxClientIPServiceAffinitySeconds`.
const MAX_AFFINITY_SECONDS: i64 = 86400;

/// The Service strategy, with the allocator of its ranges.
#[derive(Debug, Default)]
pub struct ServiceStrategy {
    pub allocator: ServiceAllocator,
}

fn spec(svc: &Object) -> Option<&Value> {
    svc.get("spec")
}

fn svc_type(svc: &Object) -> &str {
    match str_of(spec(svc), "type") {
        "" => "ClusterIP",
        t => t,
    }
}

fn cluster_ip(svc: &Object) -> &str {
    str_of(spec(svc), "clusterIP")
}

fn string_list(v: Option<&Value>, field: &str) -> Vec<String> {
    arr_of(v, field)
        .iter()
        .map(|s| s.as_str().unwrap_or("").to_string())
        .collect()
}

fn has_selector(svc: &Object) -> bool {
    obj_of(spec(svc), "selector").is_some_and(|s| !s.is_empty())
}

/// `isHeadlessService`: exactly one clusterIP, `None`.
fn is_headless(svc: &Object) -> bool {
    string_list(spec(svc), "clusterIPs") == ["None"]
}

/// `ExternallyAccessible`.
fn externally_accessible(svc: &Object) -> bool {
    match svc_type(svc) {
        "LoadBalancer" | "NodePort" => true,
        "ClusterIP" => !arr_of(spec(svc), "externalIPs").is_empty(),
        _ => false,
    }
}

/// `SetDefaults_Service` (v1).
fn set_v1_defaults(svc: &mut Object) {
    let external = externally_accessible(svc);
    let Some(spec) = spec_mut(svc) else { return };
    set_default(spec, "sessionAffinity", json!("None"));
    if spec.get("sessionAffinity").and_then(Value::as_str) == Some("None") {
        spec.remove("sessionAffinityConfig");
    }
    if spec.get("sessionAffinity").and_then(Value::as_str) == Some("ClientIP")
        && spec
            .get("sessionAffinityConfig")
            .and_then(|c| c.get("clientIP"))
            .and_then(|c| c.get("timeoutSeconds"))
            .is_none_or(Value::is_null)
    {
        spec.insert(
            "sessionAffinityConfig".into(),
            json!({"clientIP": {"timeoutSeconds": DEFAULT_AFFINITY_SECONDS}}),
        );
    }
    set_default(spec, "type", json!("ClusterIP"));
    let ty = spec.get("type").and_then(Value::as_str).unwrap_or("").to_string();
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(p, "protocol", json!("TCP"));
            let unset = match p.get("targetPort") {
                None | Some(Value::Null) => true,
                Some(Value::Number(n)) => n.as_i64() == Some(0),
                Some(Value::String(s)) => s.is_empty(),
                _ => false,
            };
            if unset && let Some(port) = p.get("port").cloned() {
                p.insert("targetPort".into(), port);
            }
        }
    }
    if external
        && spec
            .get("externalTrafficPolicy")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
    {
        spec.insert("externalTrafficPolicy".into(), json!("Cluster"));
    }
    if matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
}

fn same(a: &Object, b: &Object, field: &str) -> bool {
    spec(a).and_then(|s| s.get(field)) == spec(b).and_then(|s| s.get(field))
}

fn node_ports(svc: &Object) -> Vec<i64> {
    arr_of(spec(svc), "ports")
        .iter()
        .map(|p| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0))
        .collect()
}

/// `normalizeClusterIPs`: keeps `clusterIP` and `clusterIPs` in step.
fn normalize_cluster_ips(new: &mut Object, old: Option<&Object>) {
    let ip = cluster_ip(new).to_string();
    let ips = string_list(spec(new), "clusterIPs");
    let Some(old) = old else {
        if !ip.is_empty()
            && ips.is_empty()
            && let Some(s) = spec_mut(new)
        {
            s.insert("clusterIPs".into(), json!([ip]));
        }
        return;
    };
    let old_ip = cluster_ip(old).to_string();
    let old_ips = string_list(spec(old), "clusterIPs");
    let Some(s) = spec_mut(new) else { return };
    if !old_ips.is_empty() && ips.is_empty() && old_ip == ip {
        s.insert("clusterIPs".into(), json!(old_ips));
    }
    let ips_now = s.get("clusterIPs").cloned();
    let same_ips = ips_now.as_ref().map_or(old_ips.is_empty(), |v| v == &json!(old_ips));
    if old_ip != ip {
        if !old_ip.is_empty() && ip.is_empty() && same_ips {
            s.remove("clusterIPs");
        }
        if !ip.is_empty() && same_ips {
            s.insert("clusterIPs".into(), json!([ip]));
        }
    }
}

/// `patchAllocatedValues`: a replace that leaves allocated values out keeps them.
fn patch_allocated_values(new: &mut Object, old: &Object) {
    if needs_cluster_ip(old) && needs_cluster_ip(new) {
        let old_ip = cluster_ip(old).to_string();
        let old_ips = spec(old).and_then(|s| s.get("clusterIPs")).cloned();
        if let Some(s) = spec_mut(new) {
            if s.get("clusterIP").and_then(Value::as_str).unwrap_or("").is_empty() && !old_ip.is_empty() {
                s.insert("clusterIP".into(), json!(old_ip));
            }
            if s.get("clusterIPs").and_then(Value::as_array).is_none_or(Vec::is_empty)
                && let Some(ips) = old_ips.filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
            {
                s.insert("clusterIPs".into(), ips);
            }
        }
    }
    if needs_node_port(old) && needs_node_port(new) {
        let old_ports: HashSet<i64> = node_ports(old).into_iter().filter(|&p| p != 0).collect();
        let new_ports: HashSet<i64> = node_ports(new).into_iter().filter(|&p| p != 0).collect();
        let used: HashSet<i64> = old_ports.intersection(&new_ports).copied().collect();
        let by_name: std::collections::HashMap<String, i64> = arr_of(spec(old), "ports")
            .iter()
            .map(|p| {
                (
                    p.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                    p.get("nodePort").and_then(Value::as_i64).unwrap_or(0),
                )
            })
            .collect();
        if let Some(Value::Array(ports)) = spec_mut(new).and_then(|s| s.get_mut("ports")) {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                if p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) == 0 {
                    let name = p.get("name").and_then(Value::as_str).unwrap_or("");
                    if let Some(&np) = by_name.get(name)
                        && np != 0
                        && !used.contains(&np)
                    {
                        p.insert("nodePort".into(), json!(np));
                    }
                }
            }
        }
    }
    if needs_health_check(old) && needs_health_check(new) {
        let old_hc = spec(old).and_then(|s| s.get("healthCheckNodePort")).cloned();
        if let Some(s) = spec_mut(new)
            && s.get("healthCheckNodePort").and_then(Value::as_i64).unwrap_or(0) == 0
            && let Some(hc) = old_hc
        {
            s.insert("healthCheckNodePort".into(), hc);
        }
    }
}

/// `dropTypeDependentFields`: values that no longer apply after a type
/// change, when the client did not change them too.
fn drop_type_dependent_fields(new: &mut Object, old: &Object) {
    let drop_ips = needs_cluster_ip(old) && !needs_cluster_ip(new);
    let same_ips = same(old, new, "clusterIP") && same(old, new, "clusterIPs");
    let same_families = same(old, new, "ipFamilies");
    let same_policy = same(old, new, "ipFamilyPolicy");
    let drop_ports = needs_node_port(old) && !needs_node_port(new) && node_ports(old) == node_ports(new);
    let drop_hc = needs_health_check(old) && !needs_health_check(new) && same(old, new, "healthCheckNodePort");
    let drop_alloc_lb = svc_type(old) == "LoadBalancer"
        && svc_type(new) != "LoadBalancer"
        && same(old, new, "allocateLoadBalancerNodePorts");
    let drop_lb_class =
        svc_type(old) == "LoadBalancer" && svc_type(new) != "LoadBalancer" && same(old, new, "loadBalancerClass");
    let drop_etp = externally_accessible(old) && !externally_accessible(new) && same(old, new, "externalTrafficPolicy");
    let Some(s) = spec_mut(new) else { return };
    if drop_ips {
        if same_ips {
            s.remove("clusterIP");
            s.remove("clusterIPs");
        }
        if same_families {
            s.remove("ipFamilies");
        }
        if same_policy {
            s.remove("ipFamilyPolicy");
        }
    }
    if drop_ports && let Some(Value::Array(ports)) = s.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            p.remove("nodePort");
        }
    }
    if drop_hc {
        s.remove("healthCheckNodePort");
    }
    if drop_alloc_lb {
        s.remove("allocateLoadBalancerNodePorts");
    }
    if drop_lb_class {
        s.remove("loadBalancerClass");
    }
    if drop_etp {
        s.remove("externalTrafficPolicy");
    }
}

/// `initIPFamilyFields` on this single-stack IPv4 cluster: the policy and
/// families a Service gets when it leaves them out. Errors are reported by
/// validation.
fn init_ip_family_fields(new: &mut Object, old: Option<&Object>) {
    if svc_type(new) == "ExternalName" {
        return;
    }
    let headless_selectorless = cluster_ip(new) == "None" && !has_selector(new);
    let old_policy = old.and_then(|o| spec(o)).and_then(|s| s.get("ipFamilyPolicy")).cloned();
    let ips = string_list(spec(new), "clusterIPs");
    let Some(s) = spec_mut(new) else { return };
    if s.get("ipFamilyPolicy").is_none_or(Value::is_null) {
        let policy = match old_policy {
            Some(p) if !p.is_null() => p,
            _ if headless_selectorless => json!("RequireDualStack"),
            _ => json!("SingleStack"),
        };
        s.insert("ipFamilyPolicy".into(), policy);
    }
    let policy = s
        .get("ipFamilyPolicy")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut families: Vec<String> = string_list(Some(&Value::Object(s.clone())), "ipFamilies");
    for (i, ip) in ips.iter().enumerate() {
        if ip == "None" {
            break;
        }
        if i >= families.len() && ip.parse::<std::net::Ipv4Addr>().is_ok() {
            families.push("IPv4".into());
        }
    }
    if families.is_empty() {
        families.push("IPv4".into());
    }
    if headless_selectorless && families.len() < 2 && policy != "SingleStack" {
        let alt = if families[0] == "IPv4" { "IPv6" } else { "IPv4" };
        families.push(alt.into());
    }
    s.insert("ipFamilies".into(), json!(families));
}

fn go_families(f: &[String]) -> String {
    go_string_slice(f).replacen("[]string", "[]core.IPFamily", 1)
}

/// `ValidateServiceClusterIPsRelatedFields` plus the family checks of
/// `initIPFamilyFields` for a single-stack IPv4 cluster.
fn validate_cluster_ips_related(svc: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if svc_type(svc) == "ExternalName" {
        return errs;
    }
    let s = spec(svc);
    let ip = cluster_ip(svc);
    let ips = string_list(s, "clusterIPs");
    let shown = go_string_slice(&ips);
    if !ip.is_empty() {
        if ips.is_empty() {
            errs.push(FieldError::required("spec.clusterIPs", ""));
        } else if ips[0] != ip {
            errs.push(verbatim(
                ErrorType::Invalid,
                "spec.clusterIPs",
                &shown,
                "first value must match `clusterIP`",
            ));
        }
    } else if !ips.is_empty() {
        errs.push(verbatim(
            ErrorType::Invalid,
            "spec.clusterIPs",
            &shown,
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let families = string_list(s, "ipFamilies");
    let mut seen = HashSet::new();
    for (i, f) in families.iter().enumerate() {
        if !matches!(f.as_str(), "IPv4" | "IPv6") {
            errs.push(FieldError::not_supported(
                format!("spec.ipFamilies[{i}]"),
                f.as_str(),
                &["IPv4", "IPv6"],
            ));
        }
        if !seen.insert(f.clone()) {
            errs.push(FieldError::duplicate(format!("spec.ipFamilies[{i}]"), f.as_str()));
        }
    }
    let policy = str_of(s, "ipFamilyPolicy");
    if !policy.is_empty() && !matches!(policy, "SingleStack" | "PreferDualStack" | "RequireDualStack") {
        errs.push(FieldError::not_supported(
            "spec.ipFamilyPolicy",
            policy,
            &["PreferDualStack", "RequireDualStack", "SingleStack"],
        ));
    }
    let mut bad_ips = false;
    for (i, v) in ips.iter().enumerate() {
        if i == 0 && v == "None" {
            if ips.len() > 1 {
                bad_ips = true;
                errs.push(verbatim(
                    ErrorType::Invalid,
                    "spec.clusterIPs",
                    &shown,
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        let e = validate_ip(v, &format!("spec.clusterIPs[{i}]"));
        bad_ips |= !e.is_empty();
        errs.extend(e);
    }
    if ips.len() > 2 {
        errs.push(verbatim(
            ErrorType::Invalid,
            "spec.clusterIPs",
            &shown,
            "may only hold up to 2 values",
        ));
    }
    if bad_ips {
        return errs;
    }
    if ips.len() > 1 {
        let v6 = ips.iter().filter(|i| i.contains(':')).count();
        if v6 != 1 {
            errs.push(verbatim(
                ErrorType::Invalid,
                "spec.clusterIPs",
                &shown,
                "may specify no more than one IP for each IP family",
            ));
        }
    }
    if !is_headless(svc) {
        for (i, v) in ips.iter().enumerate().take(families.len()) {
            let is6 = v.contains(':');
            if families[i] == "IPv4" && is6 {
                errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    v.as_str(),
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if families[i] == "IPv6" && !is6 {
                errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    v.as_str(),
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    if !errs.is_empty() {
        return errs;
    }
    // What this single-stack IPv4 cluster can serve.
    if policy == "SingleStack" && families.len() == 2 {
        errs.push(FieldError::invalid(
            "spec.ipFamilyPolicy",
            policy,
            "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
        ));
    }
    for (i, v) in ips.iter().enumerate() {
        if v != "None" && v.contains(':') && i >= families.len() {
            errs.push(verbatim(
                ErrorType::Invalid,
                format!("spec.clusterIPs[{i}]"),
                &shown,
                "IPv6 is not configured on this cluster",
            ));
        }
    }
    if ip == "None" && !has_selector(svc) {
        return errs;
    }
    if policy == "RequireDualStack" {
        errs.push(FieldError::invalid(
            "spec.ipFamilyPolicy",
            policy,
            "this cluster is not configured for dual-stack services",
        ));
    }
    for (i, f) in families.iter().enumerate() {
        if f != "IPv4" {
            errs.push(FieldError::invalid(
                format!("spec.ipFamilies[{i}]"),
                f.as_str(),
                "not configured on this cluster",
            ));
        }
    }
    errs
}

/// `core.ServicePort` as Go's `%#v` prints it (the value of a duplicate
/// port error).
fn go_service_port(protocol: &str, port: i64) -> String {
    format!(
        "core.ServicePort{{Name:\"\", Protocol:\"{protocol}\", AppProtocol:(*string)(nil), Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}"
    )
}

fn validate_port(p: &Value, require_name: bool, names: &mut HashSet<String>, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let pv = Some(p);
    let name = str_of(pv, "name");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else if !name.is_empty() {
        for m in is_dns1123_label(name) {
            errs.push(FieldError::invalid(format!("{path}.name"), name, m));
        }
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(format!("{path}.name"), name));
        }
    }
    let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
    for m in port_num_errors(port) {
        errs.push(FieldError::invalid(format!("{path}.port"), port, m));
    }
    let protocol = str_of(pv, "protocol");
    if protocol.is_empty() {
        errs.push(FieldError::required(format!("{path}.protocol"), ""));
    } else if !matches!(protocol, "TCP" | "UDP" | "SCTP") {
        errs.push(FieldError::not_supported(
            format!("{path}.protocol"),
            protocol,
            &["SCTP", "TCP", "UDP"],
        ));
    }
    if let Some(t) = p.get("targetPort") {
        errs.extend(validate_port_num_or_name(t, &format!("{path}.targetPort")));
    }
    if let Some(app) = p.get("appProtocol").and_then(Value::as_str) {
        for m in is_qualified_name(app) {
            errs.push(FieldError::invalid(format!("{path}.appProtocol"), app, m));
        }
    }
    errs
}

/// `ValidateService` (metadata is the generic store's).
pub fn validate_service(svc: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let s = spec(svc);
    let ty = str_of(s, "type");
    let ports = arr_of(s, "ports");
    let headless = is_headless(svc);
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    match ty {
        "LoadBalancer" | "NodePort" if headless => errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            "None",
            format!("may not be set to 'None' for {ty} services"),
        )),
        "ExternalName" => {
            if !arr_of(s, "clusterIPs").is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
            if !arr_of(s, "ipFamilies").is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                ));
            }
            if s.and_then(|s| s.get("ipFamilyPolicy")).is_some_and(|v| !v.is_null()) {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                ));
            }
            let cname = str_of(s, "externalName");
            let cname = cname.strip_suffix('.').unwrap_or(cname);
            if cname.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            } else {
                for m in is_dns1123_subdomain(cname) {
                    errs.push(FieldError::invalid("spec.externalName", cname, m));
                }
            }
        }
        _ => {}
    }
    let mut names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        errs.extend(validate_port(
            p,
            ports.len() > 1,
            &mut names,
            &format!("spec.ports[{i}]"),
        ));
    }
    if let Some(sel) = obj_of(s, "selector") {
        errs.extend(validate_labels(sel, "spec.selector"));
    }
    let affinity = str_of(s, "sessionAffinity");
    if affinity.is_empty() {
        errs.push(FieldError::required("spec.sessionAffinity", ""));
    } else if !matches!(affinity, "ClientIP" | "None") {
        errs.push(FieldError::not_supported(
            "spec.sessionAffinity",
            affinity,
            &["ClientIP", "None"],
        ));
    }
    let config = s.and_then(|s| s.get("sessionAffinityConfig")).filter(|v| !v.is_null());
    if affinity == "ClientIP" {
        let when = "when session affinity type is ClientIP";
        let client = config.and_then(|c| c.get("clientIP")).filter(|v| !v.is_null());
        match (config, client, client.and_then(|c| c.get("timeoutSeconds"))) {
            (None, _, _) => errs.push(FieldError::required("spec.sessionAffinityConfig", when)),
            (_, None, _) => errs.push(FieldError::required("spec.sessionAffinityConfig.clientIP", when)),
            (_, _, None) => errs.push(FieldError::required(
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                when,
            )),
            (_, _, Some(t)) => {
                let t = t.as_i64().unwrap_or(0);
                if t <= 0 || t > MAX_AFFINITY_SECONDS {
                    errs.push(FieldError::invalid(
                        "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                        t,
                        format!("must be greater than 0 and less than {MAX_AFFINITY_SECONDS}"),
                    ));
                }
            }
        }
    } else if affinity == "None" && config.is_some() {
        errs.push(FieldError::forbidden(
            "spec.sessionAffinityConfig",
            "must not be set when session affinity is None",
        ));
    }
    errs.extend(validate_cluster_ips_related(svc));
    for (i, ip) in arr_of(s, "externalIPs").iter().enumerate() {
        let ip = ip.as_str().unwrap_or("");
        let path = format!("spec.externalIPs[{i}]");
        let e = validate_ip(ip, &path);
        if e.is_empty() {
            errs.extend(validate_non_special_ip(ip, &path));
        } else {
            errs.extend(e);
        }
    }
    if ty.is_empty() {
        errs.push(FieldError::required("spec.type", ""));
    } else if !matches!(ty, "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName") {
        errs.push(FieldError::not_supported(
            "spec.type",
            ty,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ));
    }
    if ty == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    format!("spec.ports[{i}].nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = HashSet::new();
    let mut seen_ports = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let protocol = str_of(Some(p), "protocol");
        let np = p.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
        if np != 0 && !node_ports.insert((protocol.to_string(), np)) {
            errs.push(FieldError::duplicate(format!("spec.ports[{i}].nodePort"), np));
        }
    }
    for (i, p) in ports.iter().enumerate() {
        let protocol = str_of(Some(p), "protocol");
        let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
        if !seen_ports.insert((protocol.to_string(), port)) {
            errs.push(verbatim(
                ErrorType::Duplicate,
                format!("spec.ports[{i}]"),
                &go_service_port(protocol, port),
                "",
            ));
        }
    }
    let ranges = arr_of(s, "loadBalancerSourceRanges");
    if !ranges.is_empty() {
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                "spec.LoadBalancerSourceRanges",
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        for (i, r) in ranges.iter().enumerate() {
            errs.extend(validate_cidr(
                r.as_str().unwrap_or("").trim(),
                &format!("spec.LoadBalancerSourceRanges[{i}]"),
            ));
        }
    }
    let alloc_lb = s
        .and_then(|s| s.get("allocateLoadBalancerNodePorts"))
        .filter(|v| !v.is_null());
    if alloc_lb.is_some() && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if ty == "LoadBalancer" && alloc_lb.is_none() {
        errs.push(FieldError::required("allocateLoadBalancerNodePorts", ""));
    }
    if let Some(class) = s.and_then(|s| s.get("loadBalancerClass")).and_then(Value::as_str) {
        if ty == "LoadBalancer" {
            for m in is_qualified_name(class) {
                errs.push(FieldError::invalid("spec.loadBalancerClass", class, m));
            }
        } else {
            errs.push(FieldError::forbidden(
                "spec.loadBalancerClass",
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
    }
    let etp = str_of(s, "externalTrafficPolicy");
    if !externally_accessible(svc) {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                "spec.externalTrafficPolicy",
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required("spec.externalTrafficPolicy", ""));
    } else if !matches!(etp, "Cluster" | "Local") {
        errs.push(FieldError::not_supported(
            "spec.externalTrafficPolicy",
            etp,
            &["Cluster", "Local"],
        ));
    }
    let hc = s
        .and_then(|s| s.get("healthCheckNodePort"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if !needs_health_check(svc) {
        if hc != 0 {
            errs.push(FieldError::invalid(
                "spec.healthCheckNodePort",
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if hc != 0 {
        for m in port_num_errors(hc) {
            errs.push(FieldError::invalid("spec.healthCheckNodePort", hc, m));
        }
    }
    let itp = s.and_then(|s| s.get("internalTrafficPolicy")).filter(|v| !v.is_null());
    match itp.map(|v| v.as_str().unwrap_or("")) {
        None if matches!(ty, "NodePort" | "LoadBalancer" | "ClusterIP") => {
            errs.push(FieldError::required("spec.internalTrafficPolicy", ""));
        }
        Some(v) if !matches!(v, "Cluster" | "Local") => errs.push(FieldError::not_supported(
            "spec.internalTrafficPolicy",
            v,
            &["Cluster", "Local"],
        )),
        _ => {}
    }
    if let Some(td) = s.and_then(|s| s.get("trafficDistribution")).and_then(Value::as_str)
        && !matches!(td, "PreferClose" | "PreferSameZone" | "PreferSameNode")
    {
        errs.push(FieldError::not_supported(
            "spec.trafficDistribution",
            td,
            &["PreferClose", "PreferSameZone", "PreferSameNode"],
        ));
    }
    errs
}

/// `validateUpgradeDowngradeClusterIPs` and `...IPFamilies` for a
/// single-stack cluster: the primary ClusterIP and family never change.
fn validate_cluster_ips_update(new: &Object, old: &Object) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if svc_type(new) == "ExternalName" || svc_type(old) == "ExternalName" {
        return errs;
    }
    let (new_ips, old_ips) = (
        string_list(spec(new), "clusterIPs"),
        string_list(spec(old), "clusterIPs"),
    );
    let (new_headless, old_headless) = (is_headless(new), is_headless(old));
    let shown = go_string_slice(&new_ips);
    if !(new_headless && old_headless) {
        use std::cmp::Ordering;
        match old_ips.len().cmp(&new_ips.len()) {
            Ordering::Equal => {
                for (i, ip) in old_ips.iter().enumerate() {
                    if *ip != new_ips[i] {
                        errs.push(verbatim(
                            ErrorType::Invalid,
                            format!("spec.clusterIPs[{i}]"),
                            &shown,
                            "may not change once set",
                        ));
                    }
                }
            }
            Ordering::Greater => {
                if new_ips.is_empty() {
                    errs.push(verbatim(
                        ErrorType::Invalid,
                        "spec.clusterIPs[0]",
                        &shown,
                        "primary clusterIP can not be unset",
                    ));
                } else if !old_ips.is_empty() && new_ips[0] != old_ips[0] {
                    errs.push(verbatim(
                        ErrorType::Invalid,
                        "spec.clusterIPs[0]",
                        &shown,
                        "may not change once set",
                    ));
                }
            }
            Ordering::Less => {
                if !old_ips.is_empty() && new_ips[0] != old_ips[0] {
                    errs.push(verbatim(
                        ErrorType::Invalid,
                        "spec.clusterIPs[0]",
                        &shown,
                        "may not change once set",
                    ));
                }
            }
        }
    }
    if new_headless == old_headless && !new_headless {
        let (nf, of) = (
            string_list(spec(new), "ipFamilies"),
            string_list(spec(old), "ipFamilies"),
        );
        if nf.len() == of.len() && nf != of {
            errs.push(verbatim(
                ErrorType::Invalid,
                "spec.ipFamilies[0]",
                &go_families(&nf),
                "may not change once set",
            ));
        } else if !nf.is_empty() && !of.is_empty() && nf[0] != of[0] {
            errs.push(verbatim(
                ErrorType::Invalid,
                "spec.ipFamilies[0]",
                &shown,
                "may not change once set",
            ));
        }
    }
    if svc_type(new) == "LoadBalancer" && svc_type(old) == "LoadBalancer" && !same(new, old, "loadBalancerClass") {
        let class = str_of(spec(new), "loadBalancerClass");
        errs.push(FieldError::invalid(
            "spec.loadBalancerClass",
            class,
            "may not change once set",
        ));
    }
    if needs_health_check(old) && needs_health_check(new) && !same(new, old, "healthCheckNodePort") {
        errs.push(FieldError::forbidden("spec.healthCheckNodePort", "field is immutable"));
    }
    errs
}

impl Strategy for ServiceStrategy {
    fn traits(&self) -> KindTraits {
        KindTraits {
            name_rule: NameRule::Dns1035Label,
            tracks_generation: false,
        }
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        obj.insert("status".into(), json!({"loadBalancer": {}}));
        set_v1_defaults(obj);
        normalize_cluster_ips(obj, None);
        init_ip_family_fields(obj, None);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_service(obj)
    }

    fn prepare_for_update(&self, new: &mut Object, old: &Object) {
        set_v1_defaults(new);
        patch_allocated_values(new, old);
        normalize_cluster_ips(new, Some(old));
        drop_type_dependent_fields(new, old);
        init_ip_family_fields(new, Some(old));
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = validate_cluster_ips_update(new, old);
        errs.extend(validate_service(new));
        errs
    }

    fn allocator(&self) -> Option<&dyn Allocator> {
        Some(&self.allocator)
    }
}

/// A Service body from JSON (tests and bootstrap).
pub fn service_object(v: Value) -> Object {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
