//! Objects the server ensures at every start: the system namespaces.

use serde_json::json;

use crate::registry::Registry;
use crate::registry::object::Object;
use crate::registry::store::CreateOptions;
use crate::status::ApiError;

/// Namespaces kube-apiserver creates at start.
pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates the system namespaces that do not exist yet.
pub async fn ensure_system_namespaces(registry: &Registry) -> Result<(), ApiError> {
    let Some(namespaces) = registry.store("", "namespaces") else {
        return Ok(());
    };
    for name in SYSTEM_NAMESPACES {
        let obj: Object = match json!({"metadata": {"name": name}}) {
            serde_json::Value::Object(m) => m,
            _ => continue,
        };
        match namespaces.create("", obj, &CreateOptions::default()).await {
            Ok(_) => tracing::info!(namespace = name, "created system namespace"),
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Name of the default ServiceCIDR and of the apiserver's Service.
pub const KUBERNETES: &str = "kubernetes";

fn object_of(v: serde_json::Value) -> Object {
    match v {
        serde_json::Value::Object(m) => m,
        _ => Object::new(),
    }
}

/// Creates the default ServiceCIDR `kubernetes` (the Service ClusterIP
/// range) with its Ready condition, and the `default/kubernetes` Service
/// (the range's first address, port 443 to `secure_port`), like
/// kube-apiserver's bootstrap controllers. An existing Service whose port
/// no longer matches is updated.
pub async fn ensure_kubernetes_service(registry: &Registry, secure_port: u16) -> Result<(), ApiError> {
    use crate::registry::store::{UpdateOptions, UpdateTarget};

    let ranges = crate::registry::alloc::ServiceRanges::default();
    if let Some(cidrs) = registry.store("networking.k8s.io", "servicecidrs") {
        let cidr = object_of(json!({
            "metadata": {"name": KUBERNETES},
            "spec": {"cidrs": [ranges.cluster_ips.to_string()]},
        }));
        match cidrs.create("", cidr, &CreateOptions::default()).await {
            Ok(_) => tracing::info!(cidr = %ranges.cluster_ips, "created the default ServiceCIDR"),
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
        let opts = UpdateOptions {
            dry_run: false,
            target: UpdateTarget::Status,
        };
        cidrs
            .update_with(
                "",
                KUBERNETES,
                &opts,
                |old| {
                    let mut new = old.clone();
                    let ready = old
                        .get("status")
                        .and_then(|s| s.get("conditions"))
                        .and_then(serde_json::Value::as_array)
                        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready"));
                    if !ready {
                        new.insert(
                            "status".into(),
                            json!({"conditions": [{
                                "type": "Ready",
                                "status": "True",
                                "lastTransitionTime": crate::registry::object::now_rfc3339(),
                                "message": "Kubernetes default Service CIDR is ready",
                            }]}),
                        );
                    }
                    Ok(new)
                },
                None,
            )
            .await?;
    }
    let Some(services) = registry.store("", "services") else {
        return Ok(());
    };
    let ports = json!([{"name": "https", "port": 443, "protocol": "TCP", "targetPort": secure_port}]);
    let svc = object_of(json!({
        "metadata": {
            "name": KUBERNETES,
            "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": ranges.kubernetes_service_ip().to_string(),
            "ports": ports,
            "sessionAffinity": "None",
        },
    }));
    // Look first: creating an existing Service with its address would fail
    // allocation ("already allocated") before the name clash.
    let current = match services.get("default", KUBERNETES).await {
        Ok(current) => current,
        Err(e) if e.code == 404 => {
            return match services.create("default", svc, &CreateOptions::default()).await {
                Ok(_) => {
                    tracing::info!(ip = %ranges.kubernetes_service_ip(), "created the kubernetes service");
                    Ok(())
                }
                Err(e) if e.code == 409 => Ok(()),
                Err(e) => Err(e),
            };
        }
        Err(e) => return Err(e),
    };
    if current.get("spec").and_then(|s| s.get("ports")) == Some(&ports) {
        return Ok(());
    }
    services
        .update_with(
            "default",
            KUBERNETES,
            &UpdateOptions::default(),
            |old| {
                let mut new = old.clone();
                if let Some(serde_json::Value::Object(spec)) = new.get_mut("spec") {
                    spec.insert("ports".into(), ports.clone());
                }
                Ok(new)
            },
            None,
        )
        .await
        .map(|_| ())
}
