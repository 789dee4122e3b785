//! `clientConfig.service`: where a Service's webhook is reached. The
//! certificate must be valid for `<name>.<namespace>.svc`; the address is
//! the first ready endpoint of the Service's Endpoints for the webhook's
//! port, else the Service's cluster IP and port.

use std::time::Duration;

use serde_json::Value;

use crate::registry::Registry;
use crate::registry::object::Object;

use super::client::{Target, with_timeout};

/// The target of a service reference.
pub async fn target(registry: &Registry, svc: &Value, timeout: Duration, ca_bundle: Vec<u8>) -> Result<Target, String> {
    let ns = svc.get("namespace").and_then(Value::as_str).unwrap_or("");
    let name = svc.get("name").and_then(Value::as_str).unwrap_or("");
    let port = svc.get("port").and_then(Value::as_i64).unwrap_or(443);
    let path = with_timeout(svc.get("path").and_then(Value::as_str).unwrap_or("/"), timeout);
    let host = format!("{name}.{ns}.svc");
    let service = get(registry, "services", ns, name)
        .await
        .ok_or_else(|| format!("service \"{name}\" not found"))?;
    let endpoints = get(registry, "endpoints", ns, name).await;
    let address = address(&service, endpoints.as_ref(), port)
        .ok_or_else(|| format!("service {ns}/{name} has no address for port {port}"))?;
    Ok(Target {
        url: format!("https://{host}:{port}{path}"),
        address,
        server_name: host,
        path,
        ca_bundle,
    })
}

async fn get(registry: &Registry, resource: &str, ns: &str, name: &str) -> Option<Object> {
    registry.store("", resource)?.get(ns, name).await.ok()
}

fn host_port(ip: &str, port: i64) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// A ready endpoint for the service port `port`, else the cluster IP.
pub fn address(service: &Object, endpoints: Option<&Object>, port: i64) -> Option<String> {
    let spec = service.get("spec")?;
    let svc_port = spec
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|p| p.get("port").and_then(Value::as_i64) == Some(port))?;
    let port_name = svc_port.get("name").and_then(Value::as_str).unwrap_or("");
    let subsets = endpoints
        .and_then(|e| e.get("subsets"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for subset in subsets {
        let ep_port = subset
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("name").and_then(Value::as_str).unwrap_or("") == port_name)
            .and_then(|p| p.get("port").and_then(Value::as_i64));
        let ip = subset
            .get("addresses")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|a| a.get("ip"))
            .and_then(Value::as_str);
        if let (Some(ip), Some(p)) = (ip, ep_port) {
            return Some(host_port(ip, p));
        }
    }
    let cluster_ip = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .filter(|ip| !ip.is_empty() && *ip != "None")?;
    Some(host_port(cluster_ip, port))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Object {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn addresses() {
        let svc = obj(
            json!({"spec": {"clusterIP": "10.0.0.7", "ports": [{"name": "https", "port": 443, "targetPort": 8443}]}}),
        );
        assert_eq!(address(&svc, None, 443).as_deref(), Some("10.0.0.7:443"));
        assert_eq!(address(&svc, None, 444), None);
        let eps = obj(json!({"subsets": [
            {"notReadyAddresses": [{"ip": "10.1.0.1"}], "ports": [{"name": "https", "port": 8443}]},
            {"addresses": [{"ip": "10.1.0.2"}], "ports": [{"name": "https", "port": 8443}]}]}));
        assert_eq!(address(&svc, Some(&eps), 443).as_deref(), Some("10.1.0.2:8443"));
        let headless = obj(json!({"spec": {"clusterIP": "None", "ports": [{"port": 443}]}}));
        assert_eq!(address(&headless, None, 443), None);
        let v6 = obj(json!({"spec": {"clusterIP": "fd00::1", "ports": [{"port": 443}]}}));
        assert_eq!(address(&v6, None, 443).as_deref(), Some("[fd00::1]:443"));
    }
}
