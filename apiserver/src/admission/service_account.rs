//! ServiceAccount (`plugin/pkg/admission/serviceaccount`), on pod create:
//! `spec.serviceAccountName` defaults to `default`; the account must exist
//! (a missing `default` is looked up ten times, as the controller creates
//! it); unless the pod or the account opts out
//! (`automountServiceAccountToken: false`), a projected volume
//! `kube-api-access-<5 random>` (a 3607 s bound token, the
//! `kube-root-ca.crt` ConfigMap's `ca.crt`, the namespace from the downward
//! API) is added and mounted read-only at
//! `/var/run/secrets/kubernetes.io/serviceaccount` in every container and
//! init container that mounts nothing there; the account's
//! imagePullSecrets are copied when the pod names none. Mirror pods may not
//! reference service accounts, secrets or token projections.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::registry::Registry;
use crate::registry::object::{self, Object};
use crate::status::ApiError;

use super::{Attributes, Operation, forbidden, str_at};

pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// Where the token, CA and namespace files are mounted.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Prefix of the projected volume's generated name.
const VOLUME_PREFIX: &str = "kube-api-access-";
/// Lifetime of the projected token (`WarnOnlyBoundTokenExpirationSeconds`).
const TOKEN_EXPIRATION_SECONDS: i64 = 3607;
const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

fn applies(attrs: &Attributes<'_>) -> bool {
    attrs.operation == Operation::Create && attrs.is("", "pods")
}

fn is_mirror_pod(pod: &Object) -> bool {
    object::meta(pod)
        .get("annotations")
        .and_then(|a| a.get(MIRROR_POD_ANNOTATION))
        .is_some()
}

pub async fn admit(registry: &Registry, attrs: &Attributes<'_>, pod: &mut Object) -> Result<(), ApiError> {
    if !applies(attrs) || is_mirror_pod(pod) {
        return Ok(());
    }
    let mut account_name = str_at(pod, &["spec", "serviceAccountName"]).to_string();
    if account_name.is_empty() {
        // The deprecated alias, as conversion copies it.
        account_name = match str_at(pod, &["spec", "serviceAccount"]) {
            "" => DEFAULT_SERVICE_ACCOUNT.to_string(),
            alias => alias.to_string(),
        };
    }
    let account = lookup(registry, attrs.namespace, &account_name).await.map_err(|why| {
        forbidden(
            attrs,
            Some(pod),
            &format!(
                "error looking up service account {}/{account_name}: {why}",
                attrs.namespace
            ),
        )
    })?;
    let Some(Value::Object(spec)) = pod.get_mut("spec") else {
        return Ok(());
    };
    spec.insert("serviceAccountName".into(), Value::String(account_name));
    if should_automount(&account, spec) {
        mount_token(spec);
    }
    let pod_has_pull_secrets = spec
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    if !pod_has_pull_secrets
        && let Some(secrets) = &account.image_pull_secrets
        && !secrets.is_empty()
    {
        let names: Vec<Value> = secrets
            .iter()
            .map(|s| json!({"name": s.get("name").cloned().unwrap_or(json!(""))}))
            .collect();
        spec.insert("imagePullSecrets".into(), Value::Array(names));
    }
    Ok(())
}

/// The fields of a ServiceAccount the plugin reads (from the watch cache,
/// without decoding the whole object).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct AccountView {
    automount_service_account_token: Option<bool>,
    image_pull_secrets: Option<Vec<Value>>,
}

/// The account, or why it cannot be had (upstream's lookup error text).
async fn lookup(registry: &Registry, namespace: &str, name: &str) -> Result<Arc<AccountView>, String> {
    let Some(accounts) = registry.store("", "serviceaccounts") else {
        return Err(format!("serviceaccount {name:?} not found"));
    };
    // From the watch cache (upstream's lister), else storage. The
    // controller creates `default` shortly after the namespace: wait for it
    // a little, like upstream's ten live lookups.
    let attempts = if name == DEFAULT_SERVICE_ACCOUNT { 10 } else { 1 };
    let pause = Duration::from_millis(rand::random_range(100..200));
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(pause).await;
        }
        match accounts.get_cached_as(namespace, name).await {
            Ok(sa) => return Ok(sa),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e.message),
        }
    }
    Err(format!("serviceaccount {name:?} not found"))
}

/// The pod's `automountServiceAccountToken` wins, then the account's; true by default.
fn should_automount(account: &AccountView, spec: &serde_json::Map<String, Value>) -> bool {
    spec.get("automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or(account.automount_service_account_token)
        .unwrap_or(true)
}

/// The projected volume upstream's `TokenVolumeSource` describes, but
/// for its name: built once, copied for each pod.
static TOKEN_VOLUME: LazyLock<Map<String, Value>> = LazyLock::new(|| {
    let volume = json!({
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace",
                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
        },
    });
    match volume {
        Value::Object(m) => m,
        _ => Map::new(),
    }
});

/// The token volume's mount, but for the volume's name.
static TOKEN_MOUNT: LazyLock<Map<String, Value>> = LazyLock::new(|| {
    let mut mount = Map::new();
    mount.insert("mountPath".into(), Value::String(TOKEN_MOUNT_PATH.into()));
    mount.insert("readOnly".into(), Value::Bool(true));
    mount
});

/// `template` with `name`.
fn named(template: &Map<String, Value>, name: &str) -> Value {
    let mut m = template.clone();
    m.insert("name".into(), Value::String(name.into()));
    Value::Object(m)
}

/// The projected volume upstream's `TokenVolumeSource` describes.
fn token_volume(name: &str) -> Value {
    named(&TOKEN_VOLUME, name)
}

/// Adds the token volume (unless one is there) and mounts it in every
/// container and init container that has nothing at the mount path.
fn mount_token(spec: &mut serde_json::Map<String, Value>) {
    let existing = spec
        .get("volumes")
        .and_then(Value::as_array)
        .and_then(|vs| {
            vs.iter()
                .filter_map(|v| v.get("name").and_then(Value::as_str))
                .find(|n| n.starts_with(VOLUME_PREFIX))
        })
        .map(str::to_string);
    let volume_name = existing.clone().unwrap_or_else(|| object::generate_name(VOLUME_PREFIX));
    let mount = named(&TOKEN_MOUNT, &volume_name);
    let mut needs_volume = false;
    for field in ["initContainers", "containers"] {
        let Some(Value::Array(containers)) = spec.get_mut(field) else {
            continue;
        };
        for c in containers.iter_mut().filter_map(Value::as_object_mut) {
            let mounts = c.entry("volumeMounts").or_insert_with(|| Value::Array(Vec::new()));
            if !mounts.is_array() {
                *mounts = Value::Array(Vec::new());
            }
            let Value::Array(mounts) = mounts else { continue };
            if mounts
                .iter()
                .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(TOKEN_MOUNT_PATH))
            {
                continue;
            }
            mounts.push(mount.clone());
            needs_volume = true;
        }
    }
    if existing.is_none() && needs_volume {
        let volumes = spec.entry("volumes").or_insert_with(|| Value::Array(Vec::new()));
        if !volumes.is_array() {
            *volumes = Value::Array(Vec::new());
        }
        if let Value::Array(volumes) = volumes {
            volumes.push(token_volume(&volume_name));
        }
    }
}

/// Whether a pod spec refers to a Secret anywhere (`VisitPodSecretNames`).
fn references_secrets(spec: &Value) -> bool {
    let volumes = spec.get("volumes").and_then(Value::as_array);
    let in_volumes = volumes.is_some_and(|vs| {
        vs.iter().any(|v| {
            v.get("secret").is_some()
                || v.get("projected")
                    .and_then(|p| p.get("sources"))
                    .and_then(Value::as_array)
                    .is_some_and(|s| s.iter().any(|s| s.get("secret").is_some()))
                || [
                    "azureFile",
                    "cephfs",
                    "cinder",
                    "flexVolume",
                    "rbd",
                    "iscsi",
                    "scaleIO",
                    "storageos",
                    "csi",
                ]
                .iter()
                .any(|k| {
                    v.get(*k)
                        .is_some_and(|s| s.get("secretRef").is_some() || s.get("secretName").is_some())
                })
        })
    });
    let pull = spec
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    let in_containers = ["initContainers", "containers", "ephemeralContainers"].iter().any(|f| {
        spec.get(*f).and_then(Value::as_array).is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("envFrom")
                    .and_then(Value::as_array)
                    .is_some_and(|e| e.iter().any(|e| e.get("secretRef").is_some()))
                    || c.get("env").and_then(Value::as_array).is_some_and(|e| {
                        e.iter()
                            .any(|e| e.get("valueFrom").and_then(|v| v.get("secretKeyRef")).is_some())
                    })
            })
        })
    });
    in_volumes || pull || in_containers
}

/// The validating half: mirror pods' restrictions, and every other pod
/// names its service account.
pub fn validate(attrs: &Attributes<'_>, pod: &Object) -> Result<(), ApiError> {
    if !applies(attrs) {
        return Ok(());
    }
    if is_mirror_pod(pod) {
        let spec = pod.get("spec").unwrap_or(&Value::Null);
        if !str_at(pod, &["spec", "serviceAccountName"]).is_empty() {
            return Err(forbidden(
                attrs,
                Some(pod),
                "a mirror pod may not reference service accounts",
            ));
        }
        if references_secrets(spec) {
            return Err(forbidden(attrs, Some(pod), "a mirror pod may not reference secrets"));
        }
        let projects_token = spec.get("volumes").and_then(Value::as_array).is_some_and(|vs| {
            vs.iter().any(|v| {
                v.get("projected")
                    .and_then(|p| p.get("sources"))
                    .and_then(Value::as_array)
                    .is_some_and(|s| s.iter().any(|s| s.get("serviceAccountToken").is_some()))
            })
        });
        if projects_token {
            return Err(forbidden(
                attrs,
                Some(pod),
                "a mirror pod may not use ServiceAccountToken volume projections",
            ));
        }
        return Ok(());
    }
    if str_at(pod, &["spec", "serviceAccountName"]).is_empty() {
        return Err(forbidden(
            attrs,
            Some(pod),
            &format!(
                "no service account specified for pod {}/{}",
                attrs.namespace,
                object::name(pod)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn token_volume_and_mount_are_upstreams() {
        assert_eq!(
            token_volume("kube-api-access-x2b4z"),
            json!({
                "name": "kube-api-access-x2b4z",
                "projected": {
                    "defaultMode": 420,
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        {"downwardAPI": {"items": [{"path": "namespace",
                            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
                    ],
                },
            })
        );
        let mut spec = json!({"containers": [{"name": "a"}, {"name": "b", "volumeMounts": [
            {"name": "own", "mountPath": TOKEN_MOUNT_PATH}]}], "initContainers": [{"name": "i"}]});
        let Value::Object(spec) = &mut spec else { unreachable!() };
        mount_token(spec);
        let volume = spec["volumes"][0]["name"].as_str().unwrap_or("").to_string();
        assert!(
            volume.starts_with(VOLUME_PREFIX) && volume.len() == VOLUME_PREFIX.len() + 5,
            "{volume}"
        );
        let mount = json!({"name": volume, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
        assert_eq!(spec["containers"][0]["volumeMounts"], json!([mount]));
        assert_eq!(spec["initContainers"][0]["volumeMounts"], json!([mount]));
        assert_eq!(spec["containers"][1]["volumeMounts"].as_array().map(Vec::len), Some(1));
        assert_eq!(spec["volumes"].as_array().map(Vec::len), Some(1));
    }
}
