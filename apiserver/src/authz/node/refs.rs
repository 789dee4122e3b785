//! What a pod or a PersistentVolume refers to, as upstream's node graph
//! records it (`podutil.VisitPodSecretNames`, `VisitPodConfigmapNames`,
//! `VisitPVSecretNames`): the edges from secrets, config maps, claims and
//! service accounts to a pod, and from secrets to a volume.

use serde_json::Value;

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

fn items<'a>(v: &'a Value, path: &[&str]) -> impl Iterator<Item = &'a Value> {
    let mut cur = Some(v);
    for p in path {
        cur = cur.and_then(|c| c.get(p));
    }
    cur.and_then(Value::as_array).into_iter().flatten()
}

/// Every container of a pod spec (init, regular and ephemeral).
fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    items(spec, &["initContainers"])
        .chain(items(spec, &["containers"]))
        .chain(items(spec, &["ephemeralContainers"]))
}

/// The objects one pod refers to in its own namespace.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PodRefs<'a> {
    pub secrets: Vec<&'a str>,
    pub config_maps: Vec<&'a str>,
    /// Claim names; generic ephemeral volumes are `<pod>-<volume>`.
    pub claims: Vec<String>,
    pub resource_claims: Vec<&'a str>,
    pub service_account: Option<&'a str>,
}

impl<'a> PodRefs<'a> {
    pub fn of(pod: &'a Value) -> PodRefs<'a> {
        let mut r = PodRefs::default();
        let Some(spec) = pod.get("spec") else {
            return r;
        };
        let pod_name = str_at(pod, &["metadata", "name"]).unwrap_or("");
        r.service_account = str_at(spec, &["serviceAccountName"]);
        r.secrets
            .extend(items(spec, &["imagePullSecrets"]).filter_map(|s| str_at(s, &["name"])));
        for c in containers(spec) {
            for e in items(c, &["env"]) {
                r.secrets.extend(str_at(e, &["valueFrom", "secretKeyRef", "name"]));
                r.config_maps
                    .extend(str_at(e, &["valueFrom", "configMapKeyRef", "name"]));
            }
            for e in items(c, &["envFrom"]) {
                r.secrets.extend(str_at(e, &["secretRef", "name"]));
                r.config_maps.extend(str_at(e, &["configMapRef", "name"]));
            }
        }
        for v in items(spec, &["volumes"]) {
            r.secrets.extend(str_at(v, &["secret", "secretName"]));
            r.secrets.extend(str_at(v, &["azureFile", "secretName"]));
            for kind in ["cephfs", "rbd", "flexVolume", "iscsi", "scaleIO", "storageos"] {
                r.secrets.extend(str_at(v, &[kind, "secretRef", "name"]));
            }
            r.secrets.extend(str_at(v, &["csi", "nodePublishSecretRef", "name"]));
            r.config_maps.extend(str_at(v, &["configMap", "name"]));
            for s in items(v, &["projected", "sources"]) {
                r.secrets.extend(str_at(s, &["secret", "name"]));
                r.config_maps.extend(str_at(s, &["configMap", "name"]));
            }
            if let Some(claim) = str_at(v, &["persistentVolumeClaim", "claimName"]) {
                r.claims.push(claim.to_string());
            }
            if v.get("ephemeral").is_some_and(|e| !e.is_null())
                && let Some(volume) = str_at(v, &["name"])
            {
                r.claims.push(format!("{pod_name}-{volume}"));
            }
        }
        r.resource_claims
            .extend(items(spec, &["resourceClaims"]).filter_map(|c| str_at(c, &["resourceClaimName"])));
        r.resource_claims
            .extend(items(pod, &["status", "resourceClaimStatuses"]).filter_map(|c| str_at(c, &["resourceClaimName"])));
        r
    }
}

/// The secrets (namespace, name) a PersistentVolume refers to; a reference
/// without a namespace means the claim's.
pub fn pv_secrets(pv: &Value) -> Vec<(String, String)> {
    let Some(spec) = pv.get("spec") else {
        return Vec::new();
    };
    let claim_ns = str_at(spec, &["claimRef", "namespace"]).unwrap_or("");
    let mut out = Vec::new();
    let mut add = |r: Option<&Value>| {
        if let Some(r) = r
            && let Some(name) = str_at(r, &["name"])
        {
            let ns = str_at(r, &["namespace"]).unwrap_or(claim_ns);
            out.push((ns.to_string(), name.to_string()));
        }
    };
    for kind in ["cephfs", "rbd", "flexVolume", "iscsi", "scaleIO", "storageos"] {
        add(spec.get(kind).and_then(|v| v.get("secretRef")));
    }
    if let Some(csi) = spec.get("csi") {
        for r in [
            "nodePublishSecretRef",
            "nodeStageSecretRef",
            "controllerPublishSecretRef",
            "controllerExpandSecretRef",
            "nodeExpandSecretRef",
        ] {
            add(csi.get(r));
        }
    }
    if let Some(name) = str_at(spec, &["azureFile", "secretName"]) {
        let ns = str_at(spec, &["azureFile", "secretNamespace"]).unwrap_or(claim_ns);
        out.push((ns.to_string(), name.to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_references() {
        let pod = json!({"metadata": {"name": "web"}, "spec": {
            "serviceAccountName": "robot",
            "imagePullSecrets": [{"name": "pull"}],
            "initContainers": [{"envFrom": [{"secretRef": {"name": "init-env"}}]}],
            "containers": [{"env": [
                {"name": "A", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "k"}}},
                {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "k"}}},
                {"name": "C", "value": "plain"}],
                "envFrom": [{"configMapRef": {"name": "from-cm"}}]}],
            "volumes": [
                {"name": "s", "secret": {"secretName": "vol-secret"}},
                {"name": "c", "configMap": {"name": "vol-cm"}},
                {"name": "p", "projected": {"sources": [{"secret": {"name": "proj-secret"}}, {"configMap": {"name": "kube-root-ca.crt"}}]}},
                {"name": "d", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}},
                {"name": "x", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "csi-secret"}}}],
            "resourceClaims": [{"name": "gpu", "resourceClaimName": "gpu-claim"}]},
            "status": {"resourceClaimStatuses": [{"name": "t", "resourceClaimName": "web-t-abc"}]}});
        let r = PodRefs::of(&pod);
        assert_eq!(
            r.secrets,
            [
                "pull",
                "init-env",
                "env-secret",
                "vol-secret",
                "proj-secret",
                "csi-secret"
            ]
        );
        assert_eq!(r.config_maps, ["env-cm", "from-cm", "vol-cm", "kube-root-ca.crt"]);
        assert_eq!(r.claims, ["data", "web-scratch"]);
        assert_eq!(r.resource_claims, ["gpu-claim", "web-t-abc"]);
        assert_eq!(r.service_account, Some("robot"));
        assert_eq!(PodRefs::of(&json!({})), PodRefs::default());
    }

    #[test]
    fn volume_secrets() {
        let pv = json!({"spec": {"claimRef": {"namespace": "team", "name": "data"},
            "csi": {"driver": "d", "nodeStageSecretRef": {"name": "stage", "namespace": "storage"},
                    "nodePublishSecretRef": {"name": "publish"}},
            "rbd": {"secretRef": {"name": "ceph"}}}});
        assert_eq!(
            pv_secrets(&pv),
            [
                ("team".to_string(), "ceph".to_string()),
                ("team".to_string(), "publish".to_string()),
                ("storage".to_string(), "stage".to_string()),
            ]
        );
    }
}
