//! Upstream's v1 defaults for pods and pod templates
//! (`pkg/apis/core/v1/defaults.go`): `SetDefaults_PodSpec`,
//! `SetDefaults_Container`, probes, handlers, volumes and field selectors,
//! plus the pod-only `SetDefaults_Pod`.

use serde_json::{Map, Value, json};

/// Default `terminationGracePeriodSeconds`.
pub const DEFAULT_GRACE_SECONDS: i64 = 30;

/// Sets `key` to `value` when it is absent or null.
pub fn set_default(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), value);
    }
}

/// [`set_default`] with the value built only when it is needed (most
/// requests already carry most defaults: the allocations of the values they
/// do not need were a share of defaulting).
fn default_with(m: &mut Map<String, Value>, key: &str, make: impl FnOnce() -> Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), make());
    }
}

/// `imagePullPolicy` default: Always for `:latest` or untagged images,
/// IfNotPresent otherwise (digests count as tagged).
pub fn default_pull_policy(image: &str) -> &'static str {
    let name = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') {
        return "IfNotPresent";
    }
    match name.rsplit_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn each_object(v: Option<&mut Value>) -> impl Iterator<Item = &mut Map<String, Value>> {
    v.and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// `SetDefaults_HTTPGetAction`.
fn default_handler(h: &mut Map<String, Value>) {
    if let Some(Value::Object(get)) = h.get_mut("httpGet") {
        default_with(get, "path", || json!("/"));
        default_with(get, "scheme", || json!("HTTP"));
    }
}

/// `SetDefaults_Probe` and its handler.
fn default_probe(p: &mut Map<String, Value>) {
    default_with(p, "timeoutSeconds", || json!(1));
    default_with(p, "periodSeconds", || json!(10));
    default_with(p, "successThreshold", || json!(1));
    default_with(p, "failureThreshold", || json!(3));
    default_handler(p);
}

/// `SetDefaults_ObjectFieldSelector` on a `fieldRef`.
fn default_field_ref(holder: Option<&mut Value>) {
    if let Some(Value::Object(r)) = holder.and_then(|h| h.get_mut("fieldRef")) {
        default_with(r, "apiVersion", || json!("v1"));
    }
}

fn default_container(c: &mut Map<String, Value>) {
    let pull_policy = default_pull_policy(c.get("image").and_then(Value::as_str).unwrap_or(""));
    default_with(c, "terminationMessagePath", || json!("/dev/termination-log"));
    default_with(c, "terminationMessagePolicy", || json!("File"));
    default_with(c, "imagePullPolicy", || json!(pull_policy));
    default_with(c, "resources", || json!({}));
    for p in each_object(c.get_mut("ports")) {
        default_with(p, "protocol", || json!("TCP"));
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(Value::Object(p)) = c.get_mut(probe) {
            default_probe(p);
        }
    }
    if let Some(Value::Object(lifecycle)) = c.get_mut("lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(Value::Object(h)) = lifecycle.get_mut(hook) {
                default_handler(h);
            }
        }
    }
    for e in each_object(c.get_mut("env")) {
        default_field_ref(e.get_mut("valueFrom"));
    }
}

/// Every volume source key (`volumes[*]` without one becomes `emptyDir`).
fn has_source(v: &Map<String, Value>) -> bool {
    crate::validation::pod_spec::volume_sources()
        .iter()
        .any(|s| v.get(*s).is_some_and(|x| !x.is_null()))
}

fn default_volume(v: &mut Map<String, Value>) {
    if !has_source(v) {
        v.insert("emptyDir".into(), json!({}));
    }
    for (source, mode) in [
        ("secret", 420),
        ("configMap", 420),
        ("downwardAPI", 420),
        ("projected", 420),
    ] {
        if let Some(Value::Object(s)) = v.get_mut(source) {
            default_with(s, "defaultMode", || json!(mode));
        }
    }
    if let Some(Value::Object(h)) = v.get_mut("hostPath") {
        default_with(h, "type", || json!(""));
    }
    if let Some(Value::Object(d)) = v.get_mut("downwardAPI") {
        for item in each_object(d.get_mut("items")) {
            if let Some(Value::Object(r)) = item.get_mut("fieldRef") {
                default_with(r, "apiVersion", || json!("v1"));
            }
        }
    }
    if let Some(Value::Object(p)) = v.get_mut("projected") {
        for src in each_object(p.get_mut("sources")) {
            if let Some(Value::Object(d)) = src.get_mut("downwardAPI") {
                for item in each_object(d.get_mut("items")) {
                    if let Some(Value::Object(r)) = item.get_mut("fieldRef") {
                        default_with(r, "apiVersion", || json!("v1"));
                    }
                }
            }
            if let Some(Value::Object(t)) = src.get_mut("serviceAccountToken") {
                default_with(t, "expirationSeconds", || json!(3600));
            }
        }
    }
    if let Some(Value::Object(e)) = v.get_mut("ephemeral")
        && let Some(Value::Object(t)) = e.get_mut("volumeClaimTemplate")
        && let Some(Value::Object(s)) = t.get_mut("spec")
    {
        default_with(s, "volumeMode", || json!("Filesystem"));
    }
}

/// Applies upstream's v1 pod spec defaults (pods and every pod template).
pub fn default_pod_spec(spec: &mut Map<String, Value>) {
    default_with(spec, "restartPolicy", || json!("Always"));
    default_with(spec, "terminationGracePeriodSeconds", || json!(DEFAULT_GRACE_SECONDS));
    default_with(spec, "dnsPolicy", || json!("ClusterFirst"));
    default_with(spec, "securityContext", || json!({}));
    default_with(spec, "schedulerName", || json!("default-scheduler"));
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for c in each_object(spec.get_mut(list)) {
            default_container(c);
        }
    }
    for v in each_object(spec.get_mut("volumes")) {
        default_volume(v);
    }
}

/// The defaults of a pod template (`template.spec`), when there is one.
pub fn default_pod_template(template: Option<&mut Value>) {
    if let Some(Value::Object(spec)) = template.and_then(|t| t.get_mut("spec")) {
        default_pod_spec(spec);
    }
}

/// `SetDefaults_Pod` on top of the spec defaults: requests default to
/// limits, `enableServiceLinks` is true, and host-network pods' ports get
/// `hostPort = containerPort`.
pub fn default_pod(spec: &mut Map<String, Value>) {
    default_pod_spec(spec);
    default_with(spec, "enableServiceLinks", || json!(true));
    let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    for list in ["containers", "initContainers"] {
        for c in each_object(spec.get_mut(list)) {
            if let Some(Value::Object(resources)) = c.get_mut("resources") {
                default_requests_to_limits(resources);
            }
            if host_network {
                for p in each_object(c.get_mut("ports")) {
                    if let Some(port) = p.get("containerPort").cloned() {
                        set_default(p, "hostPort", port);
                    }
                }
            }
        }
    }
}

/// Requests default to limits: each limit without a request becomes one
/// (copied only when one is missing, the common case being none).
fn default_requests_to_limits(resources: &mut Map<String, Value>) {
    let Some(limits) = resources.get("limits").and_then(Value::as_object) else {
        return;
    };
    let requests = resources.get("requests");
    let missing: Vec<(String, Value)> = limits
        .iter()
        .filter(|(k, _)| requests.and_then(|r| r.get(k.as_str())).is_none())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if missing.is_empty() && requests.is_some() {
        return;
    }
    let requests = resources.entry("requests").or_insert_with(|| json!({}));
    if let Value::Object(requests) = requests {
        requests.extend(missing);
    }
}
