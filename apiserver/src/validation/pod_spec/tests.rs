#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use super::*;

/// A valid, defaulted pod spec with `patch` merged into its first container
/// (`"c"` key) or into the spec itself.
fn spec(patch: Value) -> Value {
    let mut s = json!({
        "containers": [{"name": "app", "image": "nginx", "imagePullPolicy": "Always",
                        "terminationMessagePolicy": "File"}],
        "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
    });
    if let Value::Object(p) = patch {
        for (k, v) in p {
            if k == "c" {
                for (ck, cv) in v.as_object().unwrap() {
                    s["containers"][0][ck] = cv.clone();
                }
            } else {
                s[k] = v;
            }
        }
    }
    s
}

/// Asserts the rendered errors of `patch`.
fn check(patch: Value, expected: &[&str]) {
    let errs = validate_pod_spec(Some(&spec(patch)), "spec");
    let got: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(got, expected);
}

#[test]
fn valid_spec() {
    check(json!({}), &[]);
}

#[test]
fn containers() {
    check(json!({"containers": []}), &["spec.containers: Required value"]);
    check(
        json!({"containers": [{"name": "Bad_Name", "image": " x", "imagePullPolicy": "Sometimes", "terminationMessagePolicy": "File"}]}),
        &[
            "spec.containers[0].name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            "spec.containers[0].image: Invalid value: \" x\": must not have leading or trailing whitespace",
            "spec.containers[0].imagePullPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
        ],
    );
    check(
        json!({"initContainers": [{"name": "app", "image": "x", "imagePullPolicy": "Always", "terminationMessagePolicy": "File"}]}),
        &["spec.containers[0].name: Duplicate value: \"app\""],
    );
}

#[test]
fn ports() {
    check(
        json!({"c": {"ports": [
            {"containerPort": 70000, "protocol": "TCP", "name": "http"},
            {"containerPort": 80, "protocol": "ICMP", "name": "http"},
            {"protocol": "TCP", "name": "Web--"},
        ]}}),
        &[
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.containers[0].ports[1].name: Duplicate value: \"http\"",
            "spec.containers[0].ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            "spec.containers[0].ports[2].name: Invalid value: \"Web--\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            "spec.containers[0].ports[2].name: Invalid value: \"Web--\": must not contain consecutive hyphens",
            "spec.containers[0].ports[2].name: Invalid value: \"Web--\": must not begin or end with a hyphen",
            "spec.containers[0].ports[2].containerPort: Required value",
        ],
    );
}

#[test]
fn env_and_env_from() {
    check(
        json!({"c": {
            "env": [{"name": ""}, {"name": "A=B"}, {"name": "X", "value": "v", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "Y", "valueFrom": {}}],
            "envFrom": [{}, {"configMapRef": {"name": "c"}, "secretRef": {"name": "s"}}],
        }}),
        &[
            "spec.containers[0].env[0].name: Required value",
            "spec.containers[0].env[1].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
            "spec.containers[0].env[2].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty",
            "spec.containers[0].env[3].valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            "spec.containers[0].envFrom[0]: Invalid value: \"\": must specify one of: `configMapRef` or `secretRef`",
            "spec.containers[0].envFrom[1]: Invalid value: \"\": may not have more than one field specified at a time",
        ],
    );
}

#[test]
fn volumes_and_mounts() {
    check(
        json!({
            "volumes": [{"name": "data", "emptyDir": {}}, {"name": "data", "emptyDir": {}},
                        {"name": "two", "emptyDir": {}, "configMap": {"name": "x"}}, {"name": "none"},
                        {"name": "s", "secret": {"secretName": "s", "defaultMode": 1000}}],
            "c": {"volumeMounts": [{"name": "data", "mountPath": "/d"}, {"name": "missing", "mountPath": "/d"}, {"name": "data"}]},
        }),
        &[
            "spec.volumes[1].name: Duplicate value: \"data\"",
            "spec.volumes[2].configMap: Forbidden: may not specify more than 1 volume type",
            "spec.volumes[3]: Required value: must specify a volume type",
            "spec.volumes[4].secret.defaultMode: Invalid value: 1000: must be a number between 0 and 0777 (octal), both inclusive",
            "spec.containers[0].volumeMounts[1].name: Not found: \"missing\"",
            "spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/d\": must be unique",
            "spec.containers[0].volumeMounts[2].mountPath: Required value",
        ],
    );
}

#[test]
fn resources() {
    check(
        json!({"c": {"resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1500m", "memory": "1Gi"}}}}),
        &[
            "spec.containers[0].resources.requests: Invalid value: \"1500m\": must be less than or equal to cpu limit of 1",
        ],
    );
    check(
        json!({"c": {"resources": {"requests": {"foo": "1", "example.com/gpu": "500m"}}}}),
        &[
            "spec.containers[0].resources.requests[example.com/gpu]: Invalid value: \"500m\": must be an integer",
            "spec.containers[0].resources.requests[foo]: Invalid value: \"foo\": must be a standard resource for containers",
            "spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources",
        ],
    );
}

#[test]
fn probes() {
    check(
        json!({"c": {
            "livenessProbe": {"httpGet": {"path": "/", "port": 0, "scheme": "HTTP"}, "tcpSocket": {"port": 80}, "successThreshold": 2},
            "readinessProbe": {"periodSeconds": -1},
        }}),
        &[
            "spec.containers[0].livenessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type",
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
            "spec.containers[0].readinessProbe: Required value: must specify a handler type",
            "spec.containers[0].readinessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0",
        ],
    );
}

#[test]
fn pod_level_fields() {
    check(
        json!({"restartPolicy": "Sometimes", "dnsPolicy": "Google", "terminationGracePeriodSeconds": -1,
               "activeDeadlineSeconds": 0, "hostname": "Host", "nodeSelector": {"bad key!": "v"}}),
        &[
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            "spec.dnsPolicy: Unsupported value: \"Google\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
            "spec.nodeSelector: Invalid value: \"bad key!\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            "spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0",
            "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
            "spec.hostname: Invalid value: \"Host\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ],
    );
}

#[test]
fn tolerations_and_affinity() {
    check(
        json!({
            "tolerations": [{"operator": "Equal", "value": "x"}, {"key": "k", "operator": "Exists", "value": "v"},
                            {"key": "k", "tolerationSeconds": 5, "effect": "NoSchedule"}, {"key": "k", "operator": "Gt"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}},
                         "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 0, "podAffinityTerm": {"topologyKey": ""}}]}},
        }),
        &[
            "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            "spec.tolerations[1].operator: Invalid value: map[string]string{\"key\":\"k\", \"operator\":\"Exists\", \"value\":\"v\"}: value must be empty when `operator` is 'Exists'",
            "spec.tolerations[2].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
            "spec.tolerations[3].operator: Unsupported value: \"Gt\": supported values: \"Equal\", \"Exists\"",
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: must have at least one node selector term",
            "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: must be in the range 1-100",
            "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey: Required value: can not be empty",
        ],
    );
}

#[test]
fn template_metadata() {
    let t = json!({"metadata": {"labels": {"app": "bad value!"}}, "spec": spec(json!({}))});
    let errs = validate_pod_template_spec(Some(&t), "spec.template");
    assert_eq!(
        errs.summary(),
        "spec.template.labels[app]: Invalid value: \"bad value!\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    );
}

#[test]
fn label_selectors() {
    let mut errs = FieldErrors::new();
    label_selector::validate_label_selector(
        Some(
            &json!({"matchExpressions": [{"key": "a", "operator": "In"}, {"key": "b", "operator": "Exists", "values": ["x"]}, {"key": "c", "operator": "Near"}]}),
        ),
        "spec.selector",
        &mut errs,
    );
    let got: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
            "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            "spec.selector.matchExpressions[2].operator: Invalid value: \"Near\": not a valid selector operator",
        ]
    );
}
