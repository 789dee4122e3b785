//! Data-driven cases for every rule and the table's coverage of the
//! built-in resources.

use serde_json::{Map, Value, json};

use super::table::{DefKind, Table};
use super::*;

pub(super) const fn gvk<'a>(group: &'a str, version: &'a str, kind: &'a str) -> GroupVersionKind<'a> {
    GroupVersionKind { group, version, kind }
}

pub(super) const POD: GroupVersionKind<'static> = gvk("", "v1", "Pod");
pub(super) const CONFIG_MAP: GroupVersionKind<'static> = gvk("", "v1", "ConfigMap");
pub(super) const SECRET: GroupVersionKind<'static> = gvk("", "v1", "Secret");
pub(super) const SERVICE: GroupVersionKind<'static> = gvk("", "v1", "Service");
pub(super) const DEPLOYMENT: GroupVersionKind<'static> = gvk("apps", "v1", "Deployment");
pub(super) const REVISION: GroupVersionKind<'static> = gvk("apps", "v1", "ControllerRevision");
pub(super) const EVENT: GroupVersionKind<'static> = gvk("events.k8s.io", "v1", "Event");
pub(super) const CRD: GroupVersionKind<'static> = gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition");
pub(super) const WIDGET: GroupVersionKind<'static> = gvk("example.com", "v1", "Widget");

/// What decoding a body must give.
enum Want<'a> {
    /// This object, with these strict errors (as upstream prints them).
    Object(Value, &'a [&'a str]),
    /// This 400 message.
    Error(&'a str),
}

/// Decodes `body` as `kind` with `duplicates` and compares with `want`.
fn check(name: &str, kind: &GroupVersionKind<'_>, body: Value, duplicates: &[&str], want: Want<'_>) {
    let duplicates: Vec<String> = duplicates.iter().map(|d| d.to_string()).collect();
    let got = decode(kind, body, &duplicates);
    match (got, want) {
        (Ok(decoded), Want::Object(object, errors)) => {
            assert_eq!(decoded.object, object, "{name}: object");
            let got: Vec<String> = decoded.strict_errors.iter().map(ToString::to_string).collect();
            assert_eq!(got, errors, "{name}: strict errors");
        }
        (Err(e), Want::Error(message)) => {
            assert_eq!(e.to_string(), message, "{name}: message");
            let api = ApiError::from(e);
            assert_eq!((api.code, api.reason), (400, "BadRequest"), "{name}: status");
        }
        (Ok(decoded), Want::Error(message)) => panic!("{name}: decoded {decoded:?}, want error {message}"),
        (Err(e), Want::Object(..)) => panic!("{name}: error {e}, want an object"),
    }
}

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
}

fn pod_with_container(container: Value) -> Value {
    pod(json!({"containers": [container]}))
}

fn deployment(spec: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": spec})
}

#[test]
fn table_loads_and_covers_the_builtin_resources() {
    let table = match Table::parse(table::SCHEMA_JSON) {
        Ok(t) => t,
        Err(e) => panic!("schema.json: {e}"),
    };
    assert_eq!(table.kind_count(), 311);
    for r in crate::resources::ResourceTable::builtin().all() {
        let kind = gvk(&r.group, &r.version, &r.kind);
        assert!(
            table.kind(&kind).is_some(),
            "no schema for {}/{} {}",
            r.group,
            r.version,
            r.kind
        );
        assert!(has_schema(&kind));
    }
    assert!(!has_schema(&WIDGET));
    let special = |name: &str| table.by_name(name).and_then(|i| table.def(i)).map(|d| d.kind.clone());
    assert_eq!(
        special("io.k8s.apimachinery.pkg.api.resource.Quantity"),
        Some(DefKind::Quantity)
    );
    assert_eq!(
        special("io.k8s.apimachinery.pkg.runtime.RawExtension"),
        Some(DefKind::Any)
    );
    assert!(matches!(
        special("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"),
        Some(DefKind::Struct { .. })
    ));
}

const _: () = assert!(table::SCHEMA_JSON.len() < 300 * 1024, "schema.json grew past 300 KB");

#[test]
fn unknown_fields_are_dropped_and_reported_with_their_paths() {
    check(
        "nested in a pod",
        &POD,
        json!({
            "apiVersion": "v1", "kind": "Pod", "extra": 1,
            "metadata": {"name": "p", "labelz": {"a": "b"}},
            "spec": {
                "bogus": true,
                "containers": [
                    {"name": "a", "image": "nginx"},
                    {"name": "b", "image": "nginx", "imagePullPolice": "Always", "ports": [{"containerPort": 80, "hostPortt": 1}]}
                ]
            }
        }),
        &[],
        Want::Object(
            pod(json!({"containers": [
                {"name": "a", "image": "nginx"},
                {"name": "b", "image": "nginx", "ports": [{"containerPort": 80}]}
            ]})),
            &[
                r#"unknown field "extra""#,
                r#"unknown field "metadata.labelz""#,
                r#"unknown field "spec.bogus""#,
                r#"unknown field "spec.containers[1].imagePullPolice""#,
                r#"unknown field "spec.containers[1].ports[0].hostPortt""#,
            ],
        ),
    );
    check(
        "field names are case-sensitive",
        &CONFIG_MAP,
        json!({"Data": {"a": "b"}, "data": {"a": "b"}}),
        &[],
        Want::Object(json!({"data": {"a": "b"}}), &[r#"unknown field "Data""#]),
    );
    check(
        "map keys are never unknown",
        &CONFIG_MAP,
        json!({"data": {"anything.at/all": "x"}, "metadata": {"annotations": {"k": "v"}}}),
        &[],
        Want::Object(
            json!({"data": {"anything.at/all": "x"}, "metadata": {"annotations": {"k": "v"}}}),
            &[],
        ),
    );
}

#[test]
fn wrong_types_are_rejected_with_go_messages() {
    let cases: Vec<(&str, GroupVersionKind<'_>, Value, &str)> = vec![
        (
            "bool in a map of strings",
            CONFIG_MAP,
            json!({"data": {"x": true}}),
            r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal bool into Go struct field ConfigMap.data of type string"#,
        ),
        (
            "number in a map of strings",
            CONFIG_MAP,
            json!({"metadata": {"labels": {"port": 80}}}),
            r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"#,
        ),
        (
            "array for a map",
            CONFIG_MAP,
            json!({"metadata": {"labels": []}}),
            r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal array into Go struct field ObjectMeta.metadata.labels of type map[string]string"#,
        ),
        (
            "string for an int32",
            DEPLOYMENT,
            deployment(json!({"replicas": "3"})),
            r#"Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"#,
        ),
        (
            "deep int32 in an array of objects",
            DEPLOYMENT,
            deployment(
                json!({"template": {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": "80"}]}]}}}),
            ),
            r#"Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field ContainerPort.spec.template.spec.containers.ports.containerPort of type int32"#,
        ),
        (
            "number for a string",
            DEPLOYMENT,
            deployment(
                json!({"template": {"spec": {"containers": [{"name": "a", "env": [{"name": "PORT", "value": 8080}]}]}}}),
            ),
            r#"Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal number into Go struct field EnvVar.spec.template.spec.containers.env.value of type string"#,
        ),
        (
            "fraction in an int32",
            DEPLOYMENT,
            deployment(json!({"replicas": 1.5})),
            r#"Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32"#,
        ),
        (
            "int32 overflow",
            DEPLOYMENT,
            deployment(json!({"replicas": 3_000_000_000u64})),
            r#"Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal number 3000000000 into Go struct field DeploymentSpec.spec.replicas of type int32"#,
        ),
        (
            "int64 overflow",
            POD,
            pod(json!({"activeDeadlineSeconds": 9_223_372_036_854_775_808u64})),
            r#"Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal number 9223372036854775808 into Go struct field PodSpec.spec.activeDeadlineSeconds of type int64"#,
        ),
        (
            "string for a bool",
            POD,
            pod(json!({"hostNetwork": "true"})),
            r#"Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string into Go struct field PodSpec.spec.hostNetwork of type bool"#,
        ),
        (
            "string for a struct",
            POD,
            pod(json!("x")),
            r#"Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string into Go struct field Pod.spec of type v1.PodSpec"#,
        ),
        (
            "object for an array",
            POD,
            pod(json!({"containers": {}})),
            r#"Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal object into Go struct field PodSpec.spec.containers of type []v1.Container"#,
        ),
        (
            "string for an array element",
            POD,
            pod(json!({"containers": ["x"]})),
            r#"Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string into Go struct field PodSpec.spec.containers of type v1.Container"#,
        ),
        (
            "string for an array of strings",
            POD,
            pod_with_container(json!({"name": "a", "command": "sleep 1"})),
            r#"Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string into Go struct field Container.spec.containers.command of type []string"#,
        ),
        (
            "named map type",
            POD,
            pod_with_container(json!({"name": "a", "resources": {"limits": "1"}})),
            r#"Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string into Go struct field ResourceRequirements.spec.containers.resources.limits of type v1.ResourceList"#,
        ),
        (
            "not an object at all",
            POD,
            json!([1]),
            r#"Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal array into Go value of type v1.Pod"#,
        ),
        (
            "the first error in walk order wins",
            POD,
            pod_with_container(json!({"name": 1, "image": 2})),
            r#"Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal number into Go struct field Container.spec.containers.image of type string"#,
        ),
        (
            "a special type's own error wins over an earlier type error",
            POD,
            pod_with_container(json!({"image": 2, "resources": {"limits": {"cpu": "abc"}}})),
            r#"Pod in version "v1" cannot be handled as a Pod: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"#,
        ),
    ];
    for (name, kind, body, message) in cases {
        check(name, &kind, body, &[], Want::Error(message));
    }
}

#[test]
fn quantities_accept_strings_and_numbers() {
    check(
        "numbers become strings",
        &POD,
        pod_with_container(
            json!({"name": "a", "resources": {"limits": {"cpu": 1, "memory": "128Mi"}, "requests": {"cpu": 0.5, "memory": " 64Mi "}}}),
        ),
        &[],
        Want::Object(
            pod_with_container(
                json!({"name": "a", "resources": {"limits": {"cpu": "1", "memory": "128Mi"}, "requests": {"cpu": "0.5", "memory": "64Mi"}}}),
            ),
            &[],
        ),
    );
    check(
        "null in a resource list is a zero quantity",
        &POD,
        pod_with_container(json!({"name": "a", "resources": {"limits": {"cpu": null}}})),
        &[],
        Want::Object(
            pod_with_container(json!({"name": "a", "resources": {"limits": {"cpu": "0"}}})),
            &[],
        ),
    );
    for (value, message) in [
        (json!("32MMi"), "unable to parse quantity's suffix"),
        (
            json!(true),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ),
        (
            json!(""),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ),
        (
            json!({"number": 1}),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ),
    ] {
        let body = pod_with_container(json!({"name": "a", "resources": {"requests": {"memory": value}}}));
        let want = format!("Pod in version \"v1\" cannot be handled as a Pod: {message}");
        check("bad quantity", &POD, body, &[], Want::Error(&want));
    }
}

#[test]
fn int_or_string_accepts_both() {
    let service = |target: Value| json!({"spec": {"ports": [{"port": 80, "targetPort": target}]}});
    for ok in [json!(8080), json!("http")] {
        check(
            "int or string",
            &SERVICE,
            service(ok.clone()),
            &[],
            Want::Object(service(ok), &[]),
        );
    }
    for (bad, message) in [
        (
            json!(1.5),
            "json: cannot unmarshal number 1.5 into Go value of type int32",
        ),
        (
            json!(4_294_967_296u64),
            "json: cannot unmarshal number 4294967296 into Go value of type int32",
        ),
        (json!(true), "json: cannot unmarshal bool into Go value of type int32"),
        (json!({}), "json: cannot unmarshal object into Go value of type int32"),
    ] {
        let want = format!("Service in version \"v1\" cannot be handled as a Service: {message}");
        check("bad int or string", &SERVICE, service(bad), &[], Want::Error(&want));
    }
    let surge = deployment(json!({"strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}}}));
    check(
        "pointer int or string",
        &DEPLOYMENT,
        surge.clone(),
        &[],
        Want::Object(surge, &[]),
    );
}

#[test]
fn times_are_rfc3339_strings_or_null() {
    let meta = |ts: Value| json!({"metadata": {"name": "c", "creationTimestamp": ts}});
    check(
        "time",
        &CONFIG_MAP,
        meta(json!("2024-01-02T03:04:05Z")),
        &[],
        Want::Object(meta(json!("2024-01-02T03:04:05Z")), &[]),
    );
    check(
        "null time",
        &CONFIG_MAP,
        meta(Value::Null),
        &[],
        Want::Object(json!({"metadata": {"name": "c"}}), &[]),
    );
    check(
        "bad time",
        &CONFIG_MAP,
        meta(json!("yesterday")),
        &[],
        Want::Error(
            r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006""#,
        ),
    );
    check(
        "number time",
        &CONFIG_MAP,
        meta(json!(0)),
        &[],
        Want::Error(
            r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal number into Go value of type string"#,
        ),
    );
    let event = |t: &str| json!({"metadata": {"name": "e"}, "eventTime": t});
    check(
        "micro time",
        &EVENT,
        event("2024-01-02T03:04:05.123456Z"),
        &[],
        Want::Object(event("2024-01-02T03:04:05.123456Z"), &[]),
    );
    check(
        "micro time needs six digits",
        &EVENT,
        event("2024-01-02T03:04:05Z"),
        &[],
        Want::Error(
            r#"Event in version "v1" cannot be handled as a Event: parsing time "2024-01-02T03:04:05Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "Z" as ".000000""#,
        ),
    );
}

#[test]
fn free_form_json_passes_through() {
    let revision = json!({"metadata": {"name": "r"}, "revision": 1, "data": {"spec": {"anything": [1, {"x": null}], "unknown": true}}});
    check(
        "raw extension",
        &REVISION,
        revision.clone(),
        &["data.spec.anything[1].x", "data.spec.unknown"],
        Want::Object(revision, &[]),
    );
    let managed =
        json!({"metadata": {"name": "c", "managedFields": [{"manager": "m", "fieldsV1": {"f:data": {".": {}}}}]}});
    check(
        "fields v1",
        &CONFIG_MAP,
        managed.clone(),
        &[],
        Want::Object(managed, &[]),
    );
}

#[test]
fn bytes_are_base64() {
    check(
        "canonical base64",
        &SECRET,
        json!({"data": {"a": "aGVs\nbG8=", "b": [104, 105]}, "stringData": {"c": "plain"}}),
        &[],
        Want::Object(
            json!({"data": {"a": "aGVsbG8=", "b": "aGk="}, "stringData": {"c": "plain"}}),
            &[],
        ),
    );
    check(
        "bad base64",
        &SECRET,
        json!({"data": {"a": "hello world"}}),
        &[],
        Want::Error(r#"Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 5"#),
    );
    check(
        "number for bytes",
        &SECRET,
        json!({"data": {"a": 5}}),
        &[],
        Want::Error(
            r#"Secret in version "v1" cannot be handled as a Secret: json: cannot unmarshal number into Go struct field Secret.data of type []uint8"#,
        ),
    );
    check(
        "byte out of range",
        &SECRET,
        json!({"data": {"a": [256]}}),
        &[],
        Want::Error(
            r#"Secret in version "v1" cannot be handled as a Secret: json: cannot unmarshal number 256 into Go struct field Secret.data of type uint8"#,
        ),
    );
}

#[test]
fn nulls_mean_unset() {
    check(
        "null fields are dropped, null elements and map values are zero",
        &POD,
        pod(json!({
            "nodeName": null,
            "nodeSelector": {"disk": null},
            "containers": [{"name": "a", "command": [null, "sleep"], "ports": [null], "env": null}],
            "volumes": null
        })),
        &[],
        Want::Object(
            pod(json!({
                "nodeSelector": {"disk": ""},
                "containers": [{"name": "a", "command": ["", "sleep"], "ports": [{}]}]
            })),
            &[],
        ),
    );
    check(
        "a null body is an empty object",
        &POD,
        Value::Null,
        &[],
        Want::Object(json!({}), &[]),
    );
}

#[test]
fn duplicates_join_unknown_fields_where_upstream_reports_them() {
    check(
        "typed duplicates in walk order, none inside unknown or free-form fields",
        &DEPLOYMENT,
        deployment(json!({
            "paused": false,
            "replicas": 2,
            "foo": {"a": 1},
            "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "a", "unknownNested": 1}]}}
        })),
        &[
            "metadata.name",
            "spec.foo",
            "spec.foo.a",
            "spec.paused",
            "spec.template.metadata.labels.app",
            "spec.paused",
        ],
        Want::Object(
            deployment(json!({
                "paused": false,
                "replicas": 2,
                "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "a"}]}}
            })),
            &[
                r#"duplicate field "metadata.name""#,
                r#"unknown field "spec.foo""#,
                r#"duplicate field "spec.paused""#,
                r#"duplicate field "spec.template.metadata.labels.app""#,
                r#"unknown field "spec.template.spec.containers[0].unknownNested""#,
            ],
        ),
    );
    check(
        "custom resources pass through with every duplicate",
        &WIDGET,
        json!({"spec": {"anything": 1}, "weird": [null]}),
        &["spec.anything", "weird", "spec.anything"],
        Want::Object(
            json!({"spec": {"anything": 1}, "weird": [null]}),
            &[r#"duplicate field "spec.anything""#, r#"duplicate field "weird""#],
        ),
    );
    let many: Vec<String> = (0..150).map(|i| format!("data.k{i}")).collect();
    let data: Map<String, Value> = (0..150).map(|i| (format!("k{i}"), json!("v"))).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let decoded = decode(
        &CONFIG_MAP,
        json!({ "data": data }),
        &many.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    );
    assert_eq!(decoded.map(|d| d.strict_errors.len()).ok(), Some(MAX_STRICT_ERRORS));
}

#[test]
fn strict_message_matches_upstream() {
    let errors = [
        StrictError::UnknownField("spec.foo".into()),
        StrictError::DuplicateField("metadata.name".into()),
    ];
    let e = DecodeError::strict(&DEPLOYMENT, &errors);
    assert_eq!(
        e.to_string(),
        r#"Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.foo", duplicate field "metadata.name""#
    );
    assert_eq!(ApiError::from(e).code, 400);
    assert_eq!(
        StrictError::UnknownField("a\"b".into()).to_string(),
        r#"unknown field "a\"b""#
    );
}

#[test]
fn custom_resource_definitions_check_schemas_like_upstream() {
    let crd = |schema: Value| json!({"metadata": {"name": "widgets.example.com"}, "spec": {"group": "example.com", "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": schema}}]}});
    check(
        "unknown keywords in the top schema are strict errors; in lenient wrappers they are dropped",
        &CRD,
        crd(json!({
            "type": "object",
            "bogus": 1,
            "properties": {"spec": {"type": "object", "x-unknown": 2, "properties": {"n": {"type": "integer"}}}},
            "additionalProperties": {"type": "string", "nope": 3},
            "items": [{"type": "string", "nope": 4}],
            "default": {"anything": [1]}
        })),
        &[],
        Want::Object(
            crd(json!({
                "type": "object",
                "properties": {"spec": {"type": "object", "properties": {"n": {"type": "integer"}}}},
                "additionalProperties": {"type": "string"},
                "items": [{"type": "string"}],
                "default": {"anything": [1]}
            })),
            &[
                r#"unknown field "spec.versions[0].schema.openAPIV3Schema.bogus""#,
                r#"unknown field "spec.versions[0].schema.openAPIV3Schema.properties.spec.x-unknown""#,
            ],
        ),
    );
    check(
        "a wrapper's own error",
        &CRD,
        crd(json!({"additionalProperties": "yes"})),
        &[],
        Want::Error(
            r#"CustomResourceDefinition in version "v1" cannot be handled as a CustomResourceDefinition: boolean or JSON schema expected"#,
        ),
    );
    check(
        "errors inside a wrapper have the inner decoder's context",
        &CRD,
        crd(json!({"items": {"type": 5}})),
        &[],
        Want::Error(
            r#"CustomResourceDefinition in version "v1" cannot be handled as a CustomResourceDefinition: json: cannot unmarshal number into Go struct field JSONSchemaProps.type of type string"#,
        ),
    );
}
