//! The restricted checks (`k8s.io/pod-security-admission/policy/check_*.go`
//! at level restricted), run after the baseline checks at restricted.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::baseline::{capabilities, seccomp_type, setters, valid_seccomp};
use super::evaluate::{CheckFn, PodView, Violation, before, containers_phrase, join_quote, pluralize, sorted};
use super::policy::LevelVersion;

/// The restricted checks, in upstream's order.
pub const CHECKS: &[CheckFn] = &[
    allow_privilege_escalation,
    capabilities_restricted,
    restricted_volumes,
    run_as_non_root,
    run_as_user,
    seccomp_profile_restricted,
];

/// From v1.25 a Windows pod (`spec.os.name: windows`) is exempt from the
/// Linux-only fields.
fn windows_exempt(pod: &PodView<'_>, lv: LevelVersion) -> bool {
    lv.version.at_least(25) && pod.is_windows()
}

/// allowPrivilegeEscalation (v1.8+): every container must set it to false.
pub fn allow_privilege_escalation(pod: &PodView<'_>, lv: LevelVersion) -> Option<Violation> {
    if before(lv.version, 8) || windows_exempt(pod, lv) {
        return None;
    }
    let bad: Vec<&str> = pod
        .containers()
        .filter(|c| c.sc_bool("allowPrivilegeEscalation") != Some(false))
        .map(|c| c.name())
        .collect();
    if bad.is_empty() {
        return None;
    }
    Violation::new(
        "allowPrivilegeEscalation != false",
        format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_phrase(&bad)
        ),
    )
}

/// capabilities_restricted (v1.22+): every container drops ALL and adds at
/// most NET_BIND_SERVICE.
pub fn capabilities_restricted(pod: &PodView<'_>, lv: LevelVersion) -> Option<Violation> {
    if before(lv.version, 22) || windows_exempt(pod, lv) {
        return None;
    }
    let mut missing_drop_all = Vec::new();
    let mut adding = Vec::new();
    let mut forbidden = BTreeSet::new();
    for c in pod.containers() {
        if c.sc("capabilities").is_none_or(Value::is_null) {
            missing_drop_all.push(c.name());
            continue;
        }
        if !capabilities(&c, "drop").contains(&"ALL") {
            missing_drop_all.push(c.name());
        }
        let mut added_forbidden = false;
        for cap in capabilities(&c, "add") {
            if cap != "NET_BIND_SERVICE" {
                added_forbidden = true;
                forbidden.insert(cap.to_string());
            }
        }
        if added_forbidden {
            adding.push(c.name());
        }
    }
    let mut details = Vec::new();
    if !missing_drop_all.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&missing_drop_all)
        ));
    }
    if !adding.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding),
            join_quote(&sorted(&forbidden))
        ));
    }
    if details.is_empty() {
        return None;
    }
    Violation::new("unrestricted capabilities", details.join("; "))
}

/// The volume sources restricted allows.
const ALLOWED_VOLUME_TYPES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// A volume's source type: its one field besides the name.
fn volume_type(v: &Map<String, Value>) -> &str {
    v.iter()
        .find(|(k, val)| k.as_str() != "name" && !val.is_null())
        .map_or("unknown", |(k, _)| k.as_str())
}

/// restrictedVolumes: only configMap, csi, downwardAPI, emptyDir,
/// ephemeral, persistentVolumeClaim, projected and secret volumes.
pub fn restricted_volumes(pod: &PodView<'_>, _: LevelVersion) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for v in pod.volumes() {
        let ty = volume_type(v);
        if !ALLOWED_VOLUME_TYPES.contains(&ty) {
            bad.push(v.get("name").and_then(Value::as_str).unwrap_or(""));
            types.insert(ty.to_string());
        }
    }
    if bad.is_empty() {
        return None;
    }
    Violation::new(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("restricted volume type", "restricted volume types", types.len()),
            join_quote(&sorted(&types))
        ),
    )
}

/// runAsNonRoot: the pod, or else every container, sets runAsNonRoot=true,
/// and none sets false.
pub fn run_as_non_root(pod: &PodView<'_>, _: LevelVersion) -> Option<Violation> {
    let pod_value = pod.pod_sc("runAsNonRoot").and_then(Value::as_bool);
    let bad_pod = pod_value == Some(false);
    let pod_non_root = pod_value == Some(true);
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in pod.containers() {
        match c.sc_bool("runAsNonRoot") {
            Some(false) => explicit.push(c.name()),
            Some(true) => {}
            None if !pod_non_root => implicit.push(c.name()),
            None => {}
        }
    }
    if bad_pod || !explicit.is_empty() {
        return Violation::new(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters(bad_pod, &explicit)
            ),
        );
    }
    if !implicit.is_empty() {
        return Violation::new(
            "runAsNonRoot != true",
            format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                containers_phrase(&implicit)
            ),
        );
    }
    None
}

/// runAsUser (v1.23+): neither the pod nor a container sets runAsUser=0.
pub fn run_as_user(pod: &PodView<'_>, lv: LevelVersion) -> Option<Violation> {
    if before(lv.version, 23) {
        return None;
    }
    let root = |v: Option<&Value>| v.and_then(Value::as_i64) == Some(0);
    let bad_pod = root(pod.pod_sc("runAsUser"));
    let bad: Vec<&str> = pod
        .containers()
        .filter(|c| root(c.sc("runAsUser")))
        .map(|c| c.name())
        .collect();
    if !bad_pod && bad.is_empty() {
        return None;
    }
    Violation::new(
        "runAsUser=0",
        format!("{} must not set runAsUser=0", setters(bad_pod, &bad)),
    )
}

/// seccompProfile_restricted (v1.19+): the pod, or else every container,
/// sets RuntimeDefault or Localhost, and none sets another type.
pub fn seccomp_profile_restricted(pod: &PodView<'_>, lv: LevelVersion) -> Option<Violation> {
    if before(lv.version, 19) || windows_exempt(pod, lv) {
        return None;
    }
    let mut bad_values = BTreeSet::new();
    let pod_profile = pod.pod_sc("seccompProfile").filter(|p| !p.is_null());
    let bad_pod = pod_profile.is_some_and(|p| !valid_seccomp(p));
    let pod_set = pod_profile.is_some() && !bad_pod;
    if let Some(p) = pod_profile.filter(|_| bad_pod) {
        bad_values.insert(seccomp_type(p));
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in pod.containers() {
        match c.sc("seccompProfile").filter(|p| !p.is_null()) {
            Some(p) if !valid_seccomp(p) => {
                explicit.push(c.name());
                bad_values.insert(seccomp_type(p));
            }
            Some(_) => {}
            None if !pod_set => implicit.push(c.name()),
            None => {}
        }
    }
    if bad_pod || !explicit.is_empty() {
        return Violation::new(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                setters(bad_pod, &explicit),
                join_quote(&sorted(&bad_values))
            ),
        );
    }
    if !implicit.is_empty() {
        return Violation::new(
            "seccompProfile",
            format!(
                "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                containers_phrase(&implicit)
            ),
        );
    }
    None
}
