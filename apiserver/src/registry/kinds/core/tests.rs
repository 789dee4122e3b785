//! HTTP-level tests of the core kinds' strategies and Service allocation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::testing::TestServer;

const SVCS: &str = "/api/v1/namespaces/default/services";

fn svc(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})
}

fn web_spec() -> Value {
    json!({"selector": {"app": "web"}, "ports": [{"port": 80}]})
}

/// The IPAddress objects, but the `default/kubernetes` Service's.
async fn ip_objects(server: &TestServer) -> Vec<String> {
    let (code, list) = server.get("/apis/networking.k8s.io/v1/ipaddresses").await;
    assert_eq!(code, StatusCode::OK, "{list}");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .filter(|ip| ip != "10.96.0.1")
        .collect()
}

#[tokio::test]
async fn services_get_defaults_and_distinct_cluster_ips() {
    let server = TestServer::new().await;
    let (code, a) = server.post(SVCS, svc("a", web_spec())).await;
    assert_eq!(code, StatusCode::CREATED, "{a}");
    let spec = &a["spec"];
    assert_eq!(spec["type"], "ClusterIP");
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(
        spec["ports"][0],
        json!({"port": 80, "protocol": "TCP", "targetPort": 80})
    );
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert_eq!(a["status"], json!({"loadBalancer": {}}));
    let ip_a = spec["clusterIP"].as_str().unwrap().to_string();
    assert_eq!(spec["clusterIPs"], json!([ip_a]));
    assert!(ip_a.starts_with("10.9") || ip_a.starts_with("10.1"), "{ip_a}");
    let (_, b) = server.post(SVCS, svc("b", web_spec())).await;
    let ip_b = b["spec"]["clusterIP"].as_str().unwrap().to_string();
    assert_ne!(ip_a, ip_b);

    // Each allocation is an IPAddress object naming its Service.
    let (code, rec) = server
        .get(&format!("/apis/networking.k8s.io/v1/ipaddresses/{ip_a}"))
        .await;
    assert_eq!(code, StatusCode::OK, "{rec}");
    assert_eq!(
        rec["spec"]["parentRef"],
        json!({"group": "", "resource": "services", "namespace": "default", "name": "a"})
    );
    assert_eq!(
        rec["metadata"]["labels"]["ipaddress.kubernetes.io/managed-by"],
        "ipallocator.k8s.io"
    );

    // A requested address that is taken is refused with upstream's words.
    let mut spec = web_spec();
    spec["clusterIP"] = json!(ip_a);
    let (code, err) = server.post(SVCS, svc("c", spec.clone())).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(
        err["message"],
        format!(
            "Service \"c\" is invalid: spec.clusterIPs: Invalid value: []string{{\"{ip_a}\"}}: failed to allocate IP {ip_a}: provided IP is already allocated"
        )
    );
    assert_eq!(err["details"]["causes"][0]["field"], "spec.clusterIPs");

    // Out of range.
    let mut out = web_spec();
    out["clusterIP"] = json!("192.168.0.1");
    let (code, err) = server.post(SVCS, svc("d", out)).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        err["message"],
        "Service \"d\" is invalid: spec.clusterIPs: Invalid value: []string{\"192.168.0.1\"}: failed to allocate IP 192.168.0.1: provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12"
    );

    // Deleting a frees its address for c.
    let (code, _) = server.delete(&format!("{SVCS}/a")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(!ip_objects(&server).await.contains(&ip_a));
    let (code, c) = server.post(SVCS, svc("c", spec)).await;
    assert_eq!(code, StatusCode::CREATED, "{c}");
    assert_eq!(c["spec"]["clusterIP"], json!(ip_a));
}

#[tokio::test]
async fn dry_run_and_invalid_creates_leave_nothing_behind() {
    let server = TestServer::new().await;
    let (code, dry) = server.post(&format!("{SVCS}?dryRun=All"), svc("dry", web_spec())).await;
    assert_eq!(code, StatusCode::CREATED, "{dry}");
    assert_eq!(dry["spec"]["clusterIP"], "10.96.0.0");
    let mut np = web_spec();
    np["type"] = json!("NodePort");
    let (code, dry) = server.post(&format!("{SVCS}?dryRun=All"), svc("dry", np)).await;
    assert_eq!(code, StatusCode::CREATED, "{dry}");
    assert!(dry["spec"]["ports"][0]["nodePort"].as_i64().unwrap() >= 30000);
    // Dry run still checks a requested address.
    let mut bad = web_spec();
    bad["clusterIP"] = json!("10.200.0.1");
    let (code, _) = server.post(&format!("{SVCS}?dryRun=All"), svc("dry", bad)).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    // An invalid service allocates nothing.
    let (code, err) = server
        .post(SVCS, svc("bad", json!({"type": "NodePort", "ports": [{"port": 0}]})))
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    // A name clash after allocation releases what was allocated.
    server.post(SVCS, svc("dup", web_spec())).await;
    let mut np = web_spec();
    np["type"] = json!("NodePort");
    let (code, _) = server.post(SVCS, svc("dup", np)).await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert_eq!(ip_objects(&server).await.len(), 1);
    let store = server.registry().store("", "services").unwrap().storage().clone();
    let recs = store
        .list(crate::registry::alloc::NODE_PORT_PREFIX, Default::default())
        .await
        .unwrap();
    assert!(recs.items.is_empty(), "{:?}", recs.items);
}

#[tokio::test]
async fn node_ports_follow_the_type() {
    let server = TestServer::new().await;
    let store = server.registry().store("", "services").unwrap().storage().clone();
    let node_port_records = || async {
        store
            .list(crate::registry::alloc::NODE_PORT_PREFIX, Default::default())
            .await
            .unwrap()
            .items
            .len()
    };
    let mut spec = web_spec();
    spec["type"] = json!("NodePort");
    let (code, s) = server.post(SVCS, svc("np", spec)).await;
    assert_eq!(code, StatusCode::CREATED, "{s}");
    let port = s["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&port), "{port}");
    assert_eq!(s["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(node_port_records().await, 1);

    // The same node port for another service is refused.
    let mut taken = json!({"type": "NodePort", "selector": {"a": "b"}, "ports": [{"port": 81, "nodePort": port}]});
    let (code, err) = server.post(SVCS, svc("np2", taken.clone())).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        err["message"],
        format!(
            "Service \"np2\" is invalid: spec.ports[0].nodePort: Invalid value: {port}: provided port is already allocated"
        )
    );
    taken["ports"][0]["nodePort"] = json!(8080);
    let (_, err) = server.post(SVCS, svc("np2", taken)).await;
    assert_eq!(
        err["message"],
        "Service \"np2\" is invalid: spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767"
    );

    // A replace that leaves the node port out keeps it.
    let mut put = s.clone();
    put["spec"]["ports"][0].as_object_mut().unwrap().remove("nodePort");
    let (code, kept) = server.put(&format!("{SVCS}/np"), put).await;
    assert_eq!(code, StatusCode::OK, "{kept}");
    assert_eq!(kept["spec"]["ports"][0]["nodePort"], json!(port));

    // NodePort -> ClusterIP releases it; back to NodePort allocates again.
    let mut to_cip = kept.clone();
    to_cip["spec"]["type"] = json!("ClusterIP");
    let (code, cip) = server.put(&format!("{SVCS}/np"), to_cip).await;
    assert_eq!(code, StatusCode::OK, "{cip}");
    assert!(cip["spec"]["ports"][0].get("nodePort").is_none(), "{cip}");
    assert!(cip["spec"].get("externalTrafficPolicy").is_none(), "{cip}");
    assert_eq!(node_port_records().await, 0);
    let mut back = cip.clone();
    back["spec"]["type"] = json!("NodePort");
    let (code, np) = server.put(&format!("{SVCS}/np"), back).await;
    assert_eq!(code, StatusCode::OK, "{np}");
    assert!(np["spec"]["ports"][0]["nodePort"].as_i64().unwrap() >= 30000);
    assert_eq!(node_port_records().await, 1);
    assert_eq!(np["spec"]["clusterIP"], s["spec"]["clusterIP"]);

    // The ClusterIP may not change.
    let mut moved = np.clone();
    moved["spec"]["clusterIP"] = json!("10.96.0.77");
    moved["spec"].as_object_mut().unwrap().remove("clusterIPs");
    let (code, err) = server.put(&format!("{SVCS}/np"), moved).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        err["message"],
        "Service \"np\" is invalid: spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.77\"}: may not change once set"
    );

    server.delete(&format!("{SVCS}/np")).await;
    assert_eq!(node_port_records().await, 0);
    assert!(ip_objects(&server).await.is_empty());
}

#[tokio::test]
async fn service_validation_messages() {
    let server = TestServer::new().await;
    let cases = [
        (
            json!({"ports": [{"port": 80}, {"port": 80}]}),
            "Service \"v\" is invalid: [spec.ports[0].name: Required value, spec.ports[1].name: Required value, spec.ports[1]: Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}]",
        ),
        (
            json!({"selector": {"a": "b"}}),
            "Service \"v\" is invalid: spec.ports: Required value",
        ),
        (
            json!({"type": "ExternalName"}),
            "Service \"v\" is invalid: spec.externalName: Required value",
        ),
        (
            json!({"type": "Weird", "ports": [{"port": 70000}]}),
            "Service \"v\" is invalid: [spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive, spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive, spec.type: Unsupported value: \"Weird\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"]",
        ),
        (
            json!({"ports": [{"port": 80, "nodePort": 30001}]}),
            "Service \"v\" is invalid: spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
        ),
        (
            json!({"ports": [{"port": 80}], "ipFamilyPolicy": "RequireDualStack"}),
            "Service \"v\" is invalid: spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services",
        ),
    ];
    for (spec, want) in cases {
        let (code, err) = server.post(SVCS, svc("v", spec.clone())).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{spec}: {err}");
        assert_eq!(err["message"], want, "{spec}");
    }
    assert!(ip_objects(&server).await.is_empty());

    // Headless and ExternalName services get no address.
    let (code, h) = server
        .post(SVCS, svc("h", json!({"clusterIP": "None", "ports": [{"port": 80}]})))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{h}");
    assert_eq!(h["spec"]["clusterIPs"], json!(["None"]));
    assert_eq!(h["spec"]["ipFamilyPolicy"], "RequireDualStack");
    assert_eq!(h["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
    let (code, e) = server
        .post(
            SVCS,
            svc("e", json!({"type": "ExternalName", "externalName": "example.com"})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{e}");
    assert!(
        e["spec"].get("clusterIP").is_none() && e["spec"].get("ipFamilies").is_none(),
        "{e}"
    );
    assert!(ip_objects(&server).await.is_empty());
}

#[tokio::test]
async fn kubernetes_service_and_service_cidr_at_start() {
    let server = TestServer::new().await;
    crate::bootstrap::ensure_kubernetes_service(server.registry(), 6443)
        .await
        .unwrap();
    // Idempotent.
    crate::bootstrap::ensure_kubernetes_service(server.registry(), 6443)
        .await
        .unwrap();
    let (code, k) = server.get(&format!("{SVCS}/kubernetes")).await;
    assert_eq!(code, StatusCode::OK, "{k}");
    assert_eq!(k["spec"]["clusterIP"], "10.96.0.1");
    assert_eq!(
        k["spec"]["ports"],
        json!([{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}])
    );
    let (_, ips) = server.get("/apis/networking.k8s.io/v1/ipaddresses/10.96.0.1").await;
    assert_eq!(ips["spec"]["parentRef"]["name"], "kubernetes");
    assert!(ip_objects(&server).await.is_empty());
    let (code, cidr) = server.get("/apis/networking.k8s.io/v1/servicecidrs/kubernetes").await;
    assert_eq!(code, StatusCode::OK, "{cidr}");
    assert_eq!(cidr["spec"]["cidrs"], json!(["10.96.0.0/12"]));
    assert_eq!(cidr["status"]["conditions"][0]["type"], "Ready");
    // A new secure port is reconciled.
    crate::bootstrap::ensure_kubernetes_service(server.registry(), 8443)
        .await
        .unwrap();
    let (_, k) = server.get(&format!("{SVCS}/kubernetes")).await;
    assert_eq!(k["spec"]["ports"][0]["targetPort"], 8443);
    assert_eq!(k["spec"]["clusterIP"], "10.96.0.1");
}

#[tokio::test]
async fn secrets_and_config_maps() {
    let server = TestServer::new().await;
    let (code, s) = server
        .post(
            "/api/v1/namespaces/default/secrets",
            json!({"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{s}");
    assert_eq!(s["data"], json!({"password": "aHVudGVyMg=="}));
    assert_eq!(s["type"], "Opaque");
    assert!(s.get("stringData").is_none());
    let (_, stored) = server.get("/api/v1/namespaces/default/secrets/s").await;
    assert!(stored.get("stringData").is_none());
    let mut put = stored.clone();
    put["stringData"] = json!({"user": "admin"});
    let (code, updated) = server.put("/api/v1/namespaces/default/secrets/s", put).await;
    assert_eq!(code, StatusCode::OK, "{updated}");
    assert_eq!(updated["data"]["user"], "YWRtaW4=");

    let cms = "/api/v1/namespaces/default/configmaps";
    let (code, cm) = server
        .post(
            cms,
            json!({"metadata": {"name": "frozen"}, "data": {"a": "1"}, "immutable": true}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{cm}");
    let mut change = cm.clone();
    change["data"]["a"] = json!("2");
    let (code, err) = server.put(&format!("{cms}/frozen"), change).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(
        err["message"],
        "ConfigMap \"frozen\" is invalid: data: Forbidden: field is immutable when `immutable` is set"
    );
    let (code, err) = server
        .post(cms, json!({"metadata": {"name": "bad"}, "data": {"..": "x"}}))
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        err["message"],
        "ConfigMap \"bad\" is invalid: data[..]: Invalid value: \"..\": must not be '..'"
    );
}
