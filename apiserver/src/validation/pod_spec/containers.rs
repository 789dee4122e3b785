//! Container validation: names, image, ports, env, envFrom, volume
//! mounts, resources, probes and the enums of one container.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::validation::names::{is_dns1123_label, is_dns1123_subdomain, is_qualified_name};
use crate::validation::{FieldError, FieldErrors, child, index, key};

use super::fields::{arr, has, int, nonnegative, not_found, obj, str_at};
use super::quantity;

/// `IsValidPortNum`'s message.
pub const PORT_RANGE: &str = "must be between 1 and 65535, inclusive";

/// Upstream's `IsValidPortName`.
pub fn port_name_errors(name: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if name.len() > 15 {
        errs.push("must be no more than 15 characters".to_string());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string());
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if name.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if name.starts_with('-') || name.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

/// A port given as a number or a name (`validatePortNumOrName`).
pub fn validate_port_num_or_name(port: Option<&Value>, path: &str, errs: &mut FieldErrors) {
    match port {
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or(0);
            if !(1..=65535).contains(&n) {
                errs.push(FieldError::invalid(path, n, PORT_RANGE));
            }
        }
        Some(Value::String(s)) => {
            for m in port_name_errors(s) {
                errs.push(FieldError::invalid(path, s.as_str(), m));
            }
        }
        _ => errs.push(FieldError::required(path, "")),
    }
}

/// The relaxed environment variable name check (`IsRelaxedEnvVarName`).
pub fn env_var_name_errors(name: &str) -> Vec<String> {
    if name.is_empty() {
        return vec!["environment variable name must be non-empty".to_string()];
    }
    if name.bytes().all(|b| (32..=126).contains(&b) && b != b'=') {
        Vec::new()
    } else {
        vec!["a valid environment variable name must consist only of printable ASCII characters other than '='".into()]
    }
}

/// Validates one container (`validateContainerCommon` and friends).
pub fn validate_container(
    c: &Value,
    path: &str,
    init: bool,
    volumes: &BTreeSet<String>,
    names: &mut BTreeSet<String>,
    errs: &mut FieldErrors,
) {
    let c = Some(c);
    let name = str_at(c, "name");
    if name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    } else {
        for m in is_dns1123_label(name) {
            errs.push(FieldError::invalid(child(path, "name"), name, m));
        }
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(child(path, "name"), name));
        }
    }
    let image = str_at(c, "image");
    if image.is_empty() {
        errs.push(FieldError::required(child(path, "image"), ""));
    } else if image.trim() != image {
        errs.push(FieldError::invalid(
            child(path, "image"),
            image,
            "must not have leading or trailing whitespace",
        ));
    }
    validate_ports(arr(c, "ports"), &child(path, "ports"), errs);
    validate_env(arr(c, "env"), &child(path, "env"), errs);
    validate_env_from(arr(c, "envFrom"), &child(path, "envFrom"), errs);
    validate_volume_mounts(arr(c, "volumeMounts"), volumes, &child(path, "volumeMounts"), errs);
    validate_resources(c.and_then(|c| c.get("resources")), &child(path, "resources"), errs);

    let sidecar = init && str_at(c, "restartPolicy") == "Always";
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let Some(p) = c.and_then(|c| c.get(probe)).filter(|p| !p.is_null()) else {
            continue;
        };
        let p_path = child(path, probe);
        if init && !sidecar {
            errs.push(FieldError::forbidden(
                p_path,
                "may not be set for init containers without restartPolicy=Always",
            ));
            continue;
        }
        validate_probe(p, &p_path, probe != "readinessProbe", errs);
    }
    if let Some(rp) = c.and_then(|c| c.get("restartPolicy")).and_then(Value::as_str) {
        if !init {
            errs.push(FieldError::forbidden(
                child(path, "restartPolicy"),
                "may not be set for non-init containers",
            ));
        } else if rp != "Always" {
            errs.push(FieldError::not_supported(child(path, "restartPolicy"), rp, &["Always"]));
        }
    }
    match str_at(c, "imagePullPolicy") {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(FieldError::required(child(path, "imagePullPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            child(path, "imagePullPolicy"),
            other,
            &["Always", "IfNotPresent", "Never"],
        )),
    }
    match str_at(c, "terminationMessagePolicy") {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(
            child(path, "terminationMessagePolicy"),
            "must be 'File' or 'FallbackToLogsOnError'",
        )),
        other => errs.push(FieldError::not_supported(
            child(path, "terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
}

fn validate_ports(ports: &[Value], path: &str, errs: &mut FieldErrors) {
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = index(path, i);
        let port = Some(port);
        let name = str_at(port, "name");
        if !name.is_empty() {
            let msgs = port_name_errors(name);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(FieldError::invalid(child(&p, "name"), name, m));
                }
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(child(&p, "name"), name));
            }
        }
        match int(port, "containerPort") {
            None | Some(0) => errs.push(FieldError::required(child(&p, "containerPort"), "")),
            Some(n) if !(1..=65535).contains(&n) => {
                errs.push(FieldError::invalid(child(&p, "containerPort"), n, PORT_RANGE))
            }
            Some(_) => {}
        }
        if let Some(n) = int(port, "hostPort")
            && n != 0
            && !(1..=65535).contains(&n)
        {
            errs.push(FieldError::invalid(child(&p, "hostPort"), n, PORT_RANGE));
        }
        match str_at(port, "protocol") {
            "" => errs.push(FieldError::required(child(&p, "protocol"), "")),
            "TCP" | "UDP" | "SCTP" => {}
            other => errs.push(FieldError::not_supported(
                child(&p, "protocol"),
                other,
                &["SCTP", "TCP", "UDP"],
            )),
        }
    }
}

fn validate_key_ref(r: &Value, path: &str, errs: &mut FieldErrors) {
    let r = Some(r);
    if str_at(r, "name").is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    }
    let k = str_at(r, "key");
    if k.is_empty() {
        errs.push(FieldError::required(child(path, "key"), ""));
    }
}

fn validate_env(env: &[Value], path: &str, errs: &mut FieldErrors) {
    for (i, ev) in env.iter().enumerate() {
        let p = index(path, i);
        let ev = Some(ev);
        let name = str_at(ev, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        } else {
            for m in env_var_name_errors(name) {
                errs.push(FieldError::invalid(child(&p, "name"), name, m));
            }
        }
        let Some(from) = obj(ev, "valueFrom") else { continue };
        let from_path = child(&p, "valueFrom");
        let sources: Vec<&str> = [
            "fieldRef",
            "resourceFieldRef",
            "configMapKeyRef",
            "secretKeyRef",
            "fileKeyRef",
        ]
        .into_iter()
        .filter(|k| from.get(*k).is_some_and(|v| !v.is_null()))
        .collect();
        match sources.len() {
            0 => errs.push(FieldError::invalid(
                &from_path,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            )),
            1 => {}
            _ => errs.push(FieldError::invalid(
                &from_path,
                "",
                "may not have more than one field specified at a time",
            )),
        }
        if !str_at(ev, "value").is_empty() && !sources.is_empty() {
            errs.push(FieldError::invalid(
                &from_path,
                "",
                "may not be specified when `value` is not empty",
            ));
        }
        for s in sources {
            let sp = child(&from_path, s);
            let Some(src) = from.get(s) else { continue };
            match s {
                "fieldRef" if str_at(Some(src), "fieldPath").is_empty() => {
                    errs.push(FieldError::required(child(&sp, "fieldPath"), ""));
                }
                "resourceFieldRef" if str_at(Some(src), "resource").is_empty() => {
                    errs.push(FieldError::required(child(&sp, "resource"), ""));
                }
                "configMapKeyRef" | "secretKeyRef" => validate_key_ref(src, &sp, errs),
                _ => {}
            }
        }
    }
}

fn validate_env_from(env_from: &[Value], path: &str, errs: &mut FieldErrors) {
    for (i, ef) in env_from.iter().enumerate() {
        let p = index(path, i);
        let ef = Some(ef);
        let prefix = str_at(ef, "prefix");
        if !prefix.is_empty() {
            for m in env_var_name_errors(prefix) {
                errs.push(FieldError::invalid(child(&p, "prefix"), prefix, m));
            }
        }
        let sources: Vec<&str> = ["configMapRef", "secretRef"]
            .into_iter()
            .filter(|k| has(ef, k))
            .collect();
        match sources.len() {
            0 => errs.push(FieldError::invalid(
                &p,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            )),
            1 => {}
            _ => errs.push(FieldError::invalid(
                &p,
                "",
                "may not have more than one field specified at a time",
            )),
        }
        for s in sources {
            let name = str_at(ef.and_then(|e| e.get(s)), "name");
            let np = format!("{p}.{s}.name");
            if name.is_empty() {
                errs.push(FieldError::required(np, ""));
            } else {
                for m in is_dns1123_subdomain(name) {
                    errs.push(FieldError::invalid(&np, name, m));
                }
            }
        }
    }
}

fn validate_volume_mounts(mounts: &[Value], volumes: &BTreeSet<String>, path: &str, errs: &mut FieldErrors) {
    let mut points = BTreeSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let p = index(path, i);
        let m = Some(m);
        let name = str_at(m, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        }
        if !volumes.contains(name) {
            errs.push(not_found(&child(&p, "name"), name));
        }
        let mount_path = str_at(m, "mountPath");
        if mount_path.is_empty() {
            errs.push(FieldError::required(child(&p, "mountPath"), ""));
        }
        if !points.insert(mount_path) {
            errs.push(FieldError::invalid(
                child(&p, "mountPath"),
                mount_path,
                "must be unique",
            ));
        }
        let sub_path = str_at(m, "subPath");
        if !sub_path.is_empty() {
            if sub_path.starts_with('/') {
                errs.push(FieldError::invalid(
                    child(&p, "subPath"),
                    sub_path,
                    "must be a relative path",
                ));
            }
            if sub_path.split('/').any(|s| s == "..") {
                errs.push(FieldError::invalid(
                    child(&p, "subPath"),
                    sub_path,
                    "must not contain '..'",
                ));
            }
        }
        if let Some(mp) = m.and_then(|m| m.get("mountPropagation")).and_then(Value::as_str)
            && !matches!(mp, "None" | "HostToContainer" | "Bidirectional")
        {
            errs.push(FieldError::not_supported(
                child(&p, "mountPropagation"),
                mp,
                &["Bidirectional", "HostToContainer", "None"],
            ));
        }
    }
}

/// Native resources (no domain, or a `kubernetes.io/` one).
fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

fn validate_resource_list(list: &serde_json::Map<String, Value>, path: &str, errs: &mut FieldErrors) {
    for (name, q) in list {
        let kp = key(path, name);
        for m in is_qualified_name(name) {
            errs.push(FieldError::invalid(&kp, name.as_str(), m));
        }
        if is_native(name) && !is_standard_container_resource(name) {
            errs.push(FieldError::invalid(
                &kp,
                name.as_str(),
                "must be a standard resource for containers",
            ));
        }
        let q = q.as_str().map(str::to_string).unwrap_or_else(|| q.to_string());
        if quantity::nano_value(&q).is_some_and(|v| v < 0) {
            errs.push(FieldError::invalid(&kp, q.as_str(), super::fields::NONNEGATIVE));
        } else if !is_native(name) && !quantity::is_integer(&q) {
            errs.push(FieldError::invalid(&kp, q.as_str(), "must be an integer"));
        }
    }
}

fn quantity_str(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
}

/// `ValidateResourceRequirements` of a container.
pub fn validate_resources(resources: Option<&Value>, path: &str, errs: &mut FieldErrors) {
    let limits = obj(resources, "limits");
    let requests = obj(resources, "requests");
    let lim_path = child(path, "limits");
    let req_path = child(path, "requests");
    if let Some(l) = limits {
        validate_resource_list(l, &lim_path, errs);
    }
    let Some(requests) = requests else { return };
    validate_resource_list(requests, &req_path, errs);
    for (name, q) in requests {
        let q = quantity_str(q);
        let overcommit = is_native(name) && !name.starts_with("hugepages-");
        match limits.and_then(|l| l.get(name)) {
            Some(l) => {
                let l = quantity_str(l);
                let ord = quantity::cmp(&q, &l);
                if !overcommit && ord.is_some_and(|o| o.is_ne()) {
                    errs.push(FieldError::invalid(
                        &req_path,
                        q.as_str(),
                        format!("must be equal to {name} limit of {l}"),
                    ));
                } else if ord.is_some_and(|o| o.is_gt()) {
                    errs.push(FieldError::invalid(
                        &req_path,
                        q.as_str(),
                        format!("must be less than or equal to {name} limit of {l}"),
                    ));
                }
            }
            None if !overcommit => errs.push(FieldError::required(
                &lim_path,
                "Limit must be set for non overcommitable resources",
            )),
            None => {}
        }
    }
}

/// `validateProbe` with its handler.
fn validate_probe(probe: &Value, path: &str, success_must_be_one: bool, errs: &mut FieldErrors) {
    let p = Some(probe);
    validate_handler(probe, path, errs);
    for f in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        if let Some(v) = int(p, f) {
            nonnegative(v, &child(path, f), errs);
        }
    }
    if success_must_be_one
        && let Some(v) = int(p, "successThreshold")
        && v != 1
    {
        errs.push(FieldError::invalid(child(path, "successThreshold"), v, "must be 1"));
    }
    if let Some(v) = int(p, "terminationGracePeriodSeconds")
        && v <= 0
    {
        errs.push(FieldError::invalid(
            child(path, "terminationGracePeriodSeconds"),
            v,
            "must be greater than 0",
        ));
    }
}

/// `validateHandler`: exactly one of exec, httpGet, tcpSocket, grpc.
fn validate_handler(h: &Value, path: &str, errs: &mut FieldErrors) {
    let h = Some(h);
    let mut found = 0;
    for kind in ["exec", "httpGet", "tcpSocket", "grpc"] {
        if !has(h, kind) {
            continue;
        }
        found += 1;
        let kp = child(path, kind);
        if found > 1 {
            errs.push(FieldError::forbidden(kp, "may not specify more than 1 handler type"));
            continue;
        }
        let src = h.and_then(|h| h.get(kind));
        match kind {
            "exec" => {
                if arr(src, "command").is_empty() {
                    errs.push(FieldError::required(child(&kp, "command"), ""));
                }
            }
            "httpGet" => {
                if str_at(src, "path").is_empty() {
                    errs.push(FieldError::required(child(&kp, "path"), ""));
                }
                validate_port_num_or_name(src.and_then(|s| s.get("port")), &child(&kp, "port"), errs);
                match str_at(src, "scheme") {
                    "HTTP" | "HTTPS" => {}
                    other => errs.push(FieldError::not_supported(
                        child(&kp, "scheme"),
                        other,
                        &["HTTP", "HTTPS"],
                    )),
                }
            }
            "tcpSocket" => {
                validate_port_num_or_name(src.and_then(|s| s.get("port")), &child(&kp, "port"), errs);
            }
            _ => {
                if let Some(port) = int(src, "port")
                    && !(1..=65535).contains(&port)
                {
                    errs.push(FieldError::invalid(child(&kp, "port"), port, PORT_RANGE));
                }
            }
        }
    }
    if found == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
}
