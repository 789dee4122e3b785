//! The baseline checks (`k8s.io/pod-security-admission/policy/check_*.go`
//! at level baseline), with upstream's reasons and details. Versions before
//! a check's first version skip it.

use std::collections::BTreeSet;

use serde_json::Value;

use super::evaluate::{PodView, Violation, before, containers_phrase, join_quote, pluralize, sorted};
use super::policy::{Level, LevelVersion};

/// Checks run at baseline and restricted, in upstream's order.
pub const CHECKS: &[super::evaluate::CheckFn] = &[
    app_armor_profile,
    host_namespaces,
    host_ports,
    host_probes_and_host_lifecycle,
    privileged,
    proc_mount,
    se_linux_options,
    sysctls,
    windows_host_process,
];

/// Baseline checks a restricted check replaces: run at baseline only.
pub const OVERLAPPING: &[super::evaluate::CheckFn] =
    &[capabilities_baseline, host_path_volumes, seccomp_profile_baseline];

/// `pod` and `containers "a", "b"` joined by " and ", as upstream names the
/// setters of a forbidden value.
pub(super) fn setters(pod: bool, containers: &[&str]) -> String {
    let mut out = Vec::new();
    if pod {
        out.push("pod".to_string());
    }
    if !containers.is_empty() {
        out.push(containers_phrase(containers));
    }
    out.join(" and ")
}

/// Go's `%q` for a plain string.
pub(super) fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

/// appArmorProfile: the profile type may only be RuntimeDefault or
/// Localhost, and the deprecated annotations only runtime/default or
/// localhost/*.
pub fn app_armor_profile(pod: &PodView<'_>, _: LevelVersion) -> Option<Violation> {
    let allowed_type = |v: Option<&Value>| {
        matches!(
            v.and_then(|p| p.get("type")).and_then(Value::as_str),
            Some("RuntimeDefault" | "Localhost")
        )
    };
    let type_of = |v: Option<&Value>| {
        v.and_then(|p| p.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut bad_values = BTreeSet::new();
    let mut setters_list = Vec::new();
    let pod_profile = pod.pod_sc("appArmorProfile").filter(|v| !v.is_null());
    if pod_profile.is_some() && !allowed_type(pod_profile) {
        setters_list.push("pod".to_string());
        bad_values.insert(type_of(pod_profile));
    }
    let mut bad_containers = Vec::new();
    for c in pod.containers() {
        let profile = c.sc("appArmorProfile").filter(|v| !v.is_null());
        if profile.is_some() && !allowed_type(profile) {
            bad_containers.push(c.name());
            bad_values.insert(type_of(profile));
        }
    }
    if !bad_containers.is_empty() {
        setters_list.push(containers_phrase(&bad_containers));
    }
    let mut annotations: Vec<String> = pod
        .annotations()
        .filter(|(k, v)| {
            k.starts_with(APPARMOR_ANNOTATION_PREFIX)
                && !(v.is_empty() || *v == "runtime/default" || v.starts_with("localhost/"))
        })
        .map(|(k, v)| format!("{k}={}", quote(v)))
        .collect();
    annotations.sort();
    let mut values: Vec<String> = bad_values.into_iter().collect();
    if !annotations.is_empty() {
        setters_list.push(pluralize("annotation", "annotations", annotations.len()).to_string());
        values.extend(annotations);
    }
    if setters_list.is_empty() {
        return None;
    }
    Violation::new(
        pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            values.len(),
        ),
        format!(
            "{} must not set AppArmor profile type to {}",
            setters_list.join(" and "),
            join_quote(&values)
        ),
    )
}

/// hostNamespaces: hostNetwork, hostPID and hostIPC must be unset or false.
pub fn host_namespaces(pod: &PodView<'_>, _: LevelVersion) -> Option<Violation> {
    let set: BTreeSet<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .into_iter()
        .filter(|k| pod.spec(k).and_then(Value::as_bool) == Some(true))
        .map(String::from)
        .collect();
    if set.is_empty() {
        return None;
    }
    Violation::new("host namespaces", sorted(&set).join(", "))
}

/// hostPorts: no container port may set a hostPort.
pub fn host_ports(pod: &PodView<'_>, _: LevelVersion) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut ports = BTreeSet::new();
    for c in pod.containers() {
        let mut valid = true;
        for p in c.get("ports").and_then(Value::as_array).into_iter().flatten() {
            let host_port = p.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
            if host_port != 0 {
                valid = false;
                ports.insert(host_port.to_string());
            }
        }
        if !valid {
            bad.push(c.name());
        }
    }
    if bad.is_empty() {
        return None;
    }
    Violation::new(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            sorted(&ports).join(", ")
        ),
    )
}

/// hostProbesAndHostLifecycle (v1.34+): probes and lifecycle handlers may
/// not name a host.
pub fn host_probes_and_host_lifecycle(pod: &PodView<'_>, lv: LevelVersion) -> Option<Violation> {
    if before(lv.version, 34) {
        return None;
    }
    let mut bad = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    let host_of = |handler: Option<&Value>| -> Vec<String> {
        ["httpGet", "tcpSocket"]
            .into_iter()
            .filter_map(|k| handler?.get(k)?.get("host")?.as_str())
            .filter(|h| !h.is_empty())
            .map(String::from)
            .collect()
    };
    for c in pod.containers() {
        let lifecycle = c.get("lifecycle");
        let handlers = [
            c.get("livenessProbe"),
            c.get("readinessProbe"),
            c.get("startupProbe"),
            lifecycle.and_then(|l| l.get("postStart")),
            lifecycle.and_then(|l| l.get("preStop")),
        ];
        for h in handlers {
            let found = host_of(h);
            if !found.is_empty() {
                bad.insert(c.name().to_string());
                hosts.extend(found);
            }
        }
    }
    if bad.is_empty() {
        return None;
    }
    let bad = sorted(&bad);
    Violation::new(
        "probe or lifecycle host",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("probe or lifecycle host", "probe or lifecycle hosts", hosts.len()),
            join_quote(&sorted(&hosts))
        ),
    )
}

/// privileged: no container may be privileged.
pub fn privileged(pod: &PodView<'_>, _: LevelVersion) -> Option<Violation> {
    let bad: Vec<&str> = pod
        .containers()
        .filter(|c| c.sc_bool("privileged") == Some(true))
        .map(|c| c.name())
        .collect();
    if bad.is_empty() {
        return None;
    }
    Violation::new(
        "privileged",
        format!(
            "{} must not set securityContext.privileged=true",
            containers_phrase(&bad)
        ),
    )
}

/// procMount: only the Default proc mount; from v1.35 baseline allows any
/// in a user namespace (`hostUsers: false`), restricted never does.
pub fn proc_mount(pod: &PodView<'_>, lv: LevelVersion) -> Option<Violation> {
    if lv.level == Level::Baseline && lv.version.at_least(35) && pod.in_user_namespace() {
        return None;
    }
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for c in pod.containers() {
        if let Some(t) = c.sc("procMount").and_then(Value::as_str)
            && t != "Default"
        {
            bad.push(c.name());
            types.insert(t.to_string());
        }
    }
    if bad.is_empty() {
        return None;
    }
    Violation::new(
        "procMount",
        format!(
            "{} must not set securityContext.procMount to {}",
            containers_phrase(&bad),
            join_quote(&sorted(&types))
        ),
    )
}

/// seLinuxOptions: type only container_t, container_init_t or
/// container_kvm_t; no user or role.
pub fn se_linux_options(pod: &PodView<'_>, _: LevelVersion) -> Option<Violation> {
    let mut bad_types = BTreeSet::new();
    let (mut set_user, mut set_role) = (false, false);
    let mut check = |opts: &Value| {
        let s = |k: &str| opts.get(k).and_then(Value::as_str).unwrap_or("");
        let mut valid = true;
        let ty = s("type");
        if !matches!(ty, "" | "container_t" | "container_init_t" | "container_kvm_t") {
            valid = false;
            bad_types.insert(ty.to_string());
        }
        if !s("user").is_empty() {
            valid = false;
            set_user = true;
        }
        if !s("role").is_empty() {
            valid = false;
            set_role = true;
        }
        valid
    };
    let bad_pod = pod
        .pod_sc("seLinuxOptions")
        .filter(|o| o.is_object())
        .is_some_and(|o| !check(o));
    let bad: Vec<&str> = pod
        .containers()
        .filter(|c| {
            c.sc("seLinuxOptions")
                .filter(|o| o.is_object())
                .is_some_and(|o| !check(o))
        })
        .map(|c| c.name())
        .collect();
    if !bad_pod && bad.is_empty() {
        return None;
    }
    let mut data = Vec::new();
    if !bad_types.is_empty() {
        data.push(format!(
            "{} {}",
            pluralize("type", "types", bad_types.len()),
            join_quote(&sorted(&bad_types))
        ));
    }
    if set_user {
        data.push("user may not be set".to_string());
    }
    if set_role {
        data.push("role may not be set".to_string());
    }
    Violation::new(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters(bad_pod, &bad),
            data.join("; ")
        ),
    )
}

/// The sysctls baseline allows, by the version that allowed them.
const SYSCTLS: &[(u32, &str)] = &[
    (0, "kernel.shm_rmid_forced"),
    (0, "net.ipv4.ip_local_port_range"),
    (0, "net.ipv4.tcp_syncookies"),
    (0, "net.ipv4.ping_group_range"),
    (0, "net.ipv4.ip_unprivileged_port_start"),
    (27, "net.ipv4.ip_local_reserved_ports"),
    (29, "net.ipv4.tcp_keepalive_time"),
    (29, "net.ipv4.tcp_fin_timeout"),
    (29, "net.ipv4.tcp_keepalive_intvl"),
    (29, "net.ipv4.tcp_keepalive_probes"),
    (32, "net.ipv4.tcp_rmem"),
    (32, "net.ipv4.tcp_wmem"),
];

/// sysctls: only the safe set of the version.
pub fn sysctls(pod: &PodView<'_>, lv: LevelVersion) -> Option<Violation> {
    let allowed = |name: &str| SYSCTLS.iter().any(|(v, n)| *n == name && lv.version.at_least(*v));
    let bad: Vec<&str> = pod
        .pod_sc("sysctls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| s.get("name").and_then(Value::as_str).unwrap_or(""))
        .filter(|n| !allowed(n))
        .collect();
    if bad.is_empty() {
        return None;
    }
    Violation::new("forbidden sysctls", bad.join(", "))
}

/// windowsHostProcess: no HostProcess pod or container.
pub fn windows_host_process(pod: &PodView<'_>, _: LevelVersion) -> Option<Violation> {
    let host_process =
        |opts: Option<&Value>| opts.and_then(|o| o.get("hostProcess")).and_then(Value::as_bool) == Some(true);
    let bad: Vec<&str> = pod
        .containers()
        .filter(|c| host_process(c.sc("windowsOptions")))
        .map(|c| c.name())
        .collect();
    let bad_pod = host_process(pod.pod_sc("windowsOptions"));
    if !bad_pod && bad.is_empty() {
        return None;
    }
    Violation::new(
        "hostProcess",
        format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters(bad_pod, &bad)
        ),
    )
}

/// The capabilities a container may add at baseline (the runtime default
/// set).
const DEFAULT_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// The strings of `securityContext.capabilities[which]`.
pub fn capabilities<'a>(c: &super::evaluate::Container<'a>, which: &str) -> Vec<&'a str> {
    c.sc("capabilities")
        .and_then(|caps| caps.get(which))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// capabilities_baseline: only default capabilities may be added.
pub fn capabilities_baseline(pod: &PodView<'_>, _: LevelVersion) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut caps = BTreeSet::new();
    for c in pod.containers() {
        let mut valid = true;
        for cap in capabilities(&c, "add") {
            if !DEFAULT_CAPABILITIES.contains(&cap) {
                valid = false;
                caps.insert(cap.to_string());
            }
        }
        if !valid {
            bad.push(c.name());
        }
    }
    if bad.is_empty() {
        return None;
    }
    Violation::new(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&bad),
            join_quote(&sorted(&caps))
        ),
    )
}

/// hostPathVolumes: no hostPath volumes.
pub fn host_path_volumes(pod: &PodView<'_>, _: LevelVersion) -> Option<Violation> {
    let bad: Vec<&str> = pod
        .volumes()
        .filter(|v| v.get("hostPath").is_some_and(|h| !h.is_null()))
        .map(|v| v.get("name").and_then(Value::as_str).unwrap_or(""))
        .collect();
    if bad.is_empty() {
        return None;
    }
    Violation::new(
        "hostPath volumes",
        format!("{} {}", pluralize("volume", "volumes", bad.len()), join_quote(&bad)),
    )
}

/// Whether a seccomp profile type is RuntimeDefault or Localhost.
pub fn valid_seccomp(profile: &Value) -> bool {
    matches!(
        profile.get("type").and_then(Value::as_str),
        Some("RuntimeDefault" | "Localhost")
    )
}

/// The type of a seccomp profile, as a string.
pub fn seccomp_type(profile: &Value) -> String {
    profile.get("type").and_then(Value::as_str).unwrap_or("").to_string()
}

const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_ANNOTATION_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// seccompProfile_baseline: a set profile must be RuntimeDefault or
/// Localhost (before v1.19: the alpha annotations, runtime/default,
/// docker/default or localhost/*).
pub fn seccomp_profile_baseline(pod: &PodView<'_>, lv: LevelVersion) -> Option<Violation> {
    if before(lv.version, 19) {
        let valid = |v: &str| v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/");
        let annotations: Vec<(&str, &str)> = pod.annotations().collect();
        let value = |k: &str| annotations.iter().find(|(ak, _)| *ak == k).map(|(_, v)| *v);
        let mut bad = BTreeSet::new();
        if let Some(v) = value(SECCOMP_POD_ANNOTATION).filter(|v| !valid(v)) {
            bad.insert(format!("{SECCOMP_POD_ANNOTATION}={}", quote(v)));
        }
        for c in pod.containers() {
            let key = format!("{SECCOMP_CONTAINER_ANNOTATION_PREFIX}{}", c.name());
            if let Some(v) = value(&key).filter(|v| !valid(v)) {
                bad.insert(format!("{key}={}", quote(v)));
            }
        }
        if bad.is_empty() {
            return None;
        }
        return Violation::new(
            "seccompProfile",
            format!(
                "forbidden {} {}",
                pluralize("annotation", "annotations", bad.len()),
                sorted(&bad).join(", ")
            ),
        );
    }
    let mut bad_values = BTreeSet::new();
    let pod_profile = pod.pod_sc("seccompProfile").filter(|p| !p.is_null());
    let bad_pod = pod_profile.is_some_and(|p| !valid_seccomp(p));
    if let Some(p) = pod_profile.filter(|_| bad_pod) {
        bad_values.insert(seccomp_type(p));
    }
    let mut bad = Vec::new();
    for c in pod.containers() {
        if let Some(p) = c.sc("seccompProfile").filter(|p| !p.is_null())
            && !valid_seccomp(p)
        {
            bad.push(c.name());
            bad_values.insert(seccomp_type(p));
        }
    }
    if !bad_pod && bad.is_empty() {
        return None;
    }
    Violation::new(
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            setters(bad_pod, &bad),
            join_quote(&sorted(&bad_values))
        ),
    )
}
