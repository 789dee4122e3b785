//! Strategic merge patch cases: upstream's fixtures (`patch_test.go`)
//! restated on real fields of built-in kinds, the documented `kubectl patch`
//! examples, and the patches kubectl's client-side apply sends.

use serde_json::{Value, json};

use crate::patch::{GroupVersionKind, PatchError, strategic_merge_patch};

const POD: GroupVersionKind<'static> = GroupVersionKind {
    group: "",
    version: "v1",
    kind: "Pod",
};
const DEPLOYMENT: GroupVersionKind<'static> = GroupVersionKind {
    group: "apps",
    version: "v1",
    kind: "Deployment",
};

fn patch(gvk: &GroupVersionKind<'_>, original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let body = serde_json::to_vec(patch).unwrap_or_default();
    strategic_merge_patch(original, &body, gvk)
}

/// Applies `p` to a Pod `original` and compares with `want`.
fn check(original: Value, p: Value, want: Value) {
    check_kind(&POD, original, p, want);
}

fn check_kind(gvk: &GroupVersionKind<'_>, original: Value, p: Value, want: Value) {
    match patch(gvk, &original, &p) {
        Ok(got) => assert_eq!(got, want, "\npatch: {p}\noriginal: {original}"),
        Err(e) => panic!("patch {p} failed: {e:?}"),
    }
}

fn check_err(original: Value, p: Value, code: u16, message: &str) {
    match patch(&POD, &original, &p) {
        Ok(got) => panic!("patch {p} applied: {got}"),
        Err(e) => assert_eq!(
            (e.code(), e.status_message().as_str()),
            (code, message),
            "patch {p}: {e:?}"
        ),
    }
}

fn containers(list: Value) -> Value {
    json!({"spec": {"containers": list}})
}

#[test]
fn containers_merge_by_name() {
    check(
        containers(json!([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}])),
        containers(json!([{"name": "b", "image": "z"}])),
        containers(json!([{"name": "a", "image": "x"}, {"name": "b", "image": "z"}])),
    );
    // A new container goes before the server's (the documented
    // `kubectl patch` example shows the added redis container first).
    check(
        containers(json!([{"name": "patch-demo-ctr", "image": "nginx"}])),
        containers(json!([{"name": "patch-demo-ctr-2", "image": "redis"}])),
        containers(
            json!([{"name": "patch-demo-ctr-2", "image": "redis"}, {"name": "patch-demo-ctr", "image": "nginx"}]),
        ),
    );
    // initContainers too.
    check(
        json!({"spec": {"initContainers": [{"name": "i", "image": "x", "args": ["a"]}]}}),
        json!({"spec": {"initContainers": [{"name": "i", "args": ["b"]}]}}),
        json!({"spec": {"initContainers": [{"name": "i", "image": "x", "args": ["b"]}]}}),
    );
}

#[test]
fn patch_delete_removes_list_element() {
    check(
        containers(json!([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}])),
        containers(json!([{"name": "a", "$patch": "delete"}])),
        containers(json!([{"name": "b", "image": "y"}])),
    );
    // Every element with that key goes (upstream: "delete all duplicate entries").
    check(
        containers(json!([{"name": "1"}, {"name": "1"}, {"name": "2", "image": "a"}, {"name": "3"}, {"name": "3"}])),
        containers(json!([{"name": "1", "$patch": "delete"}, {"name": "3", "$patch": "delete"}])),
        containers(json!([{"name": "2", "image": "a"}])),
    );
}

#[test]
fn patch_replace_and_delete_on_maps_and_lists() {
    // `$patch: replace` as a list element replaces the list.
    check(
        containers(json!([{"name": "a", "image": "x"}, {"name": "b"}])),
        containers(json!([{"name": "z", "image": "q"}, {"$patch": "replace"}])),
        containers(json!([{"name": "z", "image": "q"}])),
    );
    check(
        containers(json!([{"name": "a"}, {"name": "b"}])),
        containers(json!([{"$patch": "replace"}])),
        containers(json!([])),
    );
    // In a map, it replaces the map; at the top, the object.
    check(
        json!({"spec": {"nodeSelector": {"a": "1", "b": "2"}}}),
        json!({"spec": {"nodeSelector": {"$patch": "replace", "c": "3"}}}),
        json!({"spec": {"nodeSelector": {"c": "3"}}}),
    );
    check(
        json!({"name": "1", "value": "1"}),
        json!({"other": "a", "$patch": "replace"}),
        json!({"other": "a"}),
    );
    // `$patch: delete` empties a map.
    check(
        json!({"metadata": {"labels": {"a": "1"}, "name": "p"}}),
        json!({"metadata": {"labels": {"$patch": "delete"}}}),
        json!({"metadata": {"labels": {}, "name": "p"}}),
    );
}

#[test]
fn set_element_order_reorders() {
    check(
        containers(json!([{"name": "a"}, {"name": "b"}])),
        json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}),
        containers(json!([{"name": "b"}, {"name": "a"}])),
    );
    // Items named in the order but absent from the list are ignored.
    check(
        containers(json!([{"name": "1"}, {"name": "3"}])),
        json!({"spec": {
            "$setElementOrder/containers": [{"name": "3"}, {"name": "2"}, {"name": "1"}],
            "containers": [{"name": "3", "image": "3"}, {"name": "1", "image": "1"}],
        }}),
        containers(json!([{"name": "3", "image": "3"}, {"name": "1", "image": "1"}])),
    );
    check(
        json!({"metadata": {"finalizers": ["1", "3"]}}),
        json!({"metadata": {"$setElementOrder/finalizers": ["3", "2", "1"]}}),
        json!({"metadata": {"finalizers": ["3", "1"]}}),
    );
    // Server-only elements keep their place relative to the others.
    check(
        containers(json!([{"name": "a"}, {"name": "injected"}, {"name": "b"}])),
        json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}),
        containers(json!([{"name": "injected"}, {"name": "b"}, {"name": "a"}])),
    );
}

#[test]
fn set_element_order_must_match_patch_order() {
    check_err(
        containers(json!([{"name": "1"}, {"name": "3"}, {"name": "2"}])),
        json!({"spec": {
            "$setElementOrder/containers": [{"name": "1"}, {"name": "2"}, {"name": "3"}],
            "containers": [{"name": "3", "image": "3"}, {"name": "1", "image": "1"}],
        }}),
        400,
        "the order in patch list:\n[map[image:3 name:3] map[image:1 name:1]]\n doesn't match $setElementOrder list:\n\
         [map[name:1] map[name:2] map[name:3]]",
    );
}

#[test]
fn merging_list_keeps_patch_order() {
    check(
        containers(json!([{"name": "1"}, {"name": "2", "image": "b"}, {"name": "3"}])),
        containers(json!([{"name": "3", "image": "c"}, {"name": "1", "image": "a"}, {"name": "2", "args": ["x"]}])),
        containers(json!([
            {"name": "3", "image": "c"},
            {"name": "1", "image": "a"},
            {"name": "2", "image": "b", "args": ["x"]},
        ])),
    );
    check(
        containers(json!([{"name": "1"}, {"name": "2", "image": "b"}, {"name": "3"}])),
        containers(json!([{"name": "3", "image": "c"}, {"name": "1", "image": "a"}])),
        containers(json!([{"name": "2", "image": "b"}, {"name": "3", "image": "c"}, {"name": "1", "image": "a"}])),
    );
    check(
        json!({"metadata": {"finalizers": ["1", "2", "3"]}}),
        json!({"metadata": {"finalizers": ["3", "1"]}}),
        json!({"metadata": {"finalizers": ["2", "3", "1"]}}),
    );
}

#[test]
fn retain_keys_clears_other_keys() {
    let deployment =
        json!({"spec": {"replicas": 1, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
    check_kind(
        &DEPLOYMENT,
        deployment.clone(),
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
        json!({"spec": {"replicas": 1, "strategy": {"type": "Recreate"}}}),
    );
    // Without the directive the map merges.
    check_kind(
        &DEPLOYMENT,
        deployment,
        json!({"spec": {"strategy": {"type": "Recreate"}}}),
        json!({"spec": {"replicas": 1, "strategy": {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}}}),
    );
    // Volumes are merged by name, each retaining keys: the volume source
    // switches from emptyDir to hostPath.
    check(
        json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}, {"name": "w", "secret": {"secretName": "s"}}]}}),
        json!({"spec": {"volumes": [{"$retainKeys": ["hostPath", "name"], "name": "v", "hostPath": {"path": "/x"}}]}}),
        json!({"spec": {"volumes": [{"name": "v", "hostPath": {"path": "/x"}}, {"name": "w", "secret": {"secretName": "s"}}]}}),
    );
    // Patch keys must be retained.
    check_err(
        json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}}),
        json!({"spec": {"volumes": [{"$retainKeys": ["name"], "name": "v", "hostPath": {"path": "/x"}}]}}),
        400,
        "invalid patch format of retainKeys",
    );
    check_err(
        json!({"spec": {}}),
        json!({"spec": {"$retainKeys": "name"}}),
        400,
        "invalid patch format of retainKeys",
    );
}

#[test]
fn primitive_lists() {
    let meta = |f: Value| json!({"metadata": {"finalizers": f}});
    check(
        meta(json!(["a", "b", "c"])),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}),
        meta(json!(["a", "c"])),
    );
    // Deleting what is not there adds nothing; no list, no list.
    check(
        meta(json!(["a"])),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
        meta(json!(["a"])),
    );
    check(
        json!({"metadata": {}}),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
        json!({"metadata": {}}),
    );
    // Finalizers merge as a set: new ones go first, duplicates collapse.
    check(
        meta(json!(["a", "b"])),
        json!({"metadata": {"finalizers": ["b", "c"]}}),
        meta(json!(["a", "b", "c"])),
    );
    check(
        meta(json!(["a"])),
        json!({"metadata": {"finalizers": ["d"]}}),
        meta(json!(["d", "a"])),
    );
    // A deletion list works on lists without the merge strategy too.
    check(
        containers(json!([{"name": "c", "args": ["1", "2", "3"]}])),
        containers(json!([{"name": "c", "$deleteFromPrimitiveList/args": ["2"]}])),
        containers(json!([{"name": "c", "args": ["1", "3"]}])),
    );
    check_err(
        json!({"metadata": {}}),
        json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["x"]}}),
        400,
        "invalid patch format of primitive list",
    );
}

#[test]
fn env_by_name_ports_by_container_port_mounts_by_path() {
    check(
        containers(json!([{"name": "c", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}])),
        containers(json!([{"name": "c", "env": [{"name": "B", "value": "3"}]}])),
        containers(json!([{"name": "c", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]}])),
    );
    check(
        containers(json!([{"name": "c", "ports": [{"containerPort": 80, "name": "http"}]}])),
        containers(json!([{"name": "c", "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}]}])),
        containers(
            json!([{"name": "c", "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 443}]}]),
        ),
    );
    check(
        containers(json!([{"name": "c", "volumeMounts": [{"mountPath": "/a", "name": "v"}]}])),
        containers(json!([{"name": "c", "volumeMounts": [{"mountPath": "/a", "readOnly": true}]}])),
        containers(json!([{"name": "c", "volumeMounts": [{"mountPath": "/a", "name": "v", "readOnly": true}]}])),
    );
}

#[test]
fn lists_without_merge_strategy_are_replaced() {
    check(
        json!({"spec": {"tolerations": [{"key": "a", "operator": "Exists"}]}}),
        json!({"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}}),
        json!({"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}}),
    );
    check(
        containers(json!([{"name": "c", "args": ["1", "2"]}])),
        containers(json!([{"name": "c", "args": ["3"]}])),
        containers(json!([{"name": "c", "args": ["3"]}])),
    );
    // An empty patch list changes nothing in a merging list.
    check(
        containers(json!([{"name": "a"}])),
        containers(json!([])),
        containers(json!([{"name": "a"}])),
    );
}

#[test]
fn maps_merge_and_null_deletes() {
    check(
        json!({"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}}),
        json!({"metadata": {"labels": {"a": null, "c": "3"}}}),
        json!({"metadata": {"name": "p", "labels": {"b": "2", "c": "3"}}}),
    );
    // New values lose their null members and directives.
    check(
        json!({"metadata": {"name": "p"}}),
        json!({"metadata": {"annotations": {"a": "1", "b": null}}, "spec": {"containers": [{"name": "c", "image": null}]}}),
        json!({"metadata": {"name": "p", "annotations": {"a": "1"}}, "spec": {"containers": [{"name": "c"}]}}),
    );
    // Conditions by type, owner references by uid.
    check(
        json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Initialized", "status": "True"}]}}),
        json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        json!({"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}]}}),
    );
    check(
        json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}}),
        json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}}),
        json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}, {"uid": "1", "name": "a"}]}}),
    );
}

#[test]
fn replace_strategy_struct() {
    let pdb = GroupVersionKind {
        group: "policy",
        version: "v1",
        kind: "PodDisruptionBudget",
    };
    check_kind(
        &pdb,
        json!({"spec": {"selector": {"matchLabels": {"a": "1"}}, "minAvailable": 1}}),
        json!({"spec": {"selector": {"matchLabels": {"b": "2"}}}}),
        json!({"spec": {"selector": {"matchLabels": {"b": "2"}}, "minAvailable": 1}}),
    );
}

/// The patch `kubectl apply` (client-side) sends when a Deployment's
/// configuration bumps one container's image, adds a sidecar, drops an
/// environment variable and removes a label; computed as kubectl's
/// three-way diff does.
#[test]
fn kubectl_client_side_apply_deployment() {
    let live = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": {"app": "web", "tier": "old"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...old...}\n", "deployment.kubernetes.io/revision": "1"},
            "resourceVersion": "10",
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "nginx",
                        "image": "nginx:1.26",
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "imagePullPolicy": "IfNotPresent",
                    }],
                    "restartPolicy": "Always",
                },
            },
        },
        "status": {"replicas": 2},
    });
    let body = json!({
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...new...}\n"},
            "labels": {"tier": null},
        },
        "spec": {
            "strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null},
            "template": {"spec": {
                "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
                "containers": [
                    {
                        "$setElementOrder/env": [{"name": "A"}],
                        "env": [{"$patch": "delete", "name": "B"}],
                        "image": "nginx:1.27",
                        "name": "nginx",
                    },
                    {"image": "busybox", "name": "sidecar", "args": ["sleep", "infinity"]},
                ],
            }},
        },
    });
    let mut want = live.clone();
    want["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = json!("{...new...}\n");
    want["metadata"]["labels"] = json!({"app": "web"});
    want["spec"]["strategy"] = json!({"type": "Recreate"});
    want["spec"]["template"]["spec"]["containers"] = json!([
        {
            "name": "nginx",
            "image": "nginx:1.27",
            "env": [{"name": "A", "value": "1"}],
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "imagePullPolicy": "IfNotPresent",
        },
        {"name": "sidecar", "image": "busybox", "args": ["sleep", "infinity"]},
    ]);
    check_kind(&DEPLOYMENT, live.clone(), body, want.clone());

    // The next apply removes the sidecar again.
    let body = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "nginx"}],
        "containers": [{"$patch": "delete", "name": "sidecar"}],
    }}}});
    let mut without_sidecar = want.clone();
    if let Some(list) = without_sidecar["spec"]["template"]["spec"]["containers"].as_array_mut() {
        list.truncate(1);
    }
    check_kind(&DEPLOYMENT, want, body, without_sidecar);
}

#[test]
fn upstream_errors() {
    let original = containers(json!([{"name": "a"}]));
    check_err(
        original.clone(),
        containers(json!([{"name": "a", "$patch": "foo"}])),
        400,
        "unknown patch type: foo in map: map[$patch:foo name:a]",
    );
    check_err(
        original.clone(),
        json!({"spec": {"$patch": "merge", "x": 1}}),
        400,
        "unknown patch type: merge in map: map[$patch:merge x:1]",
    );
    check_err(
        original.clone(),
        containers(json!([{"$patch": "merge"}])),
        400,
        "merging lists cannot yet be specified in the patch",
    );
    check_err(
        original.clone(),
        containers(json!([{"image": "b"}])),
        400,
        "map: map[image:b] does not contain declared merge key: name",
    );
    check_err(
        original.clone(),
        containers(json!(["a"])),
        400,
        "list element types are not identical: [[map[name:a]] [a]]",
    );
    check_err(
        json!({"metadata": {"finalizers": [["a"]]}}),
        json!({"metadata": {"finalizers": [["b"]]}}),
        422,
        "the server rejected our request due to an error in our request",
    );
    check_err(
        original.clone(),
        json!({"spec": {"$setElementOrder/containers": {}}}),
        400,
        "expected a []interface {}, but received a map[string]interface {}",
    );
    check_err(
        original.clone(),
        json!({"spec": {"$setElementOrderX": []}}),
        400,
        "invalid patch format of setElementOrder list",
    );
    check_err(
        original.clone(),
        json!([]),
        400,
        "json: cannot unmarshal array into Go value of type map[string]interface {}",
    );
    let body = b"{\"spec\": x}";
    let err = strategic_merge_patch(&original, body, &POD).err();
    assert_eq!(
        err.map(|e| (e.code(), e.status_message())),
        Some((400, "invalid character 'x' looking for beginning of value".to_string()))
    );
}

#[test]
fn custom_resources_are_415() {
    let widget = GroupVersionKind {
        group: "example.com",
        version: "v1",
        kind: "Widget",
    };
    let err = patch(&widget, &json!({}), &json!({})).err();
    assert_eq!(
        err.as_ref().map(|e| (e.code(), e.reason())),
        Some((415, "UnsupportedMediaType")),
    );
    assert_eq!(
        err.map(|e| e.status_message()).as_deref(),
        Some(
            "the body of the request was in an unknown format - accepted media types include: \
             application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
        )
    );
    assert!(!crate::patch::supports_strategic_merge_patch(&widget));
    assert!(crate::patch::supports_strategic_merge_patch(&DEPLOYMENT));
}

#[test]
fn null_body_changes_nothing() {
    let original = containers(json!([{"name": "a"}]));
    assert_eq!(strategic_merge_patch(&original, b"null", &POD).ok(), Some(original));
}
