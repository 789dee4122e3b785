//! RoleBinding and ClusterRoleBinding: roleRef (defaulted apiGroup,
//! immutable) and subjects.

use serde_json::{Map, Value, json};

use crate::registry::kinds::default_traits;
use crate::registry::kinds::networking::values::{each_object_mut, go_quote, invalid_raw, object_mut, str_at};
use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::names::{is_dns1123_subdomain, is_path_segment_name};
use crate::validation::{FieldError, FieldErrors, child, index};

use super::GROUP;

/// The strategy of RoleBindings (`cluster: false`) and ClusterRoleBindings.
#[derive(Debug)]
pub struct BindingStrategy {
    pub cluster: bool,
}

fn default_group(m: &mut Map<String, Value>, group: &str) {
    if m.get("apiGroup").and_then(Value::as_str).is_none_or(str::is_empty) {
        m.insert("apiGroup".into(), json!(group));
    }
}

fn apply_defaults(obj: &mut Object) {
    if obj.get("roleRef").is_some_and(Value::is_object) {
        default_group(object_mut(obj, "roleRef"), GROUP);
    }
    each_object_mut(obj, "subjects", |s| match s.get("kind").and_then(Value::as_str) {
        Some("User" | "Group") => default_group(s, GROUP),
        Some("ServiceAccount") => default_group(s, ""),
        _ => {}
    });
}

/// Go's `%#v` of an `rbac.RoleRef`.
fn render_role_ref(r: Option<&Value>) -> String {
    format!(
        "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
        go_quote(str_at(r, "apiGroup")),
        go_quote(str_at(r, "kind")),
        go_quote(str_at(r, "name"))
    )
}

impl Strategy for BindingStrategy {
    fn traits(&self) -> KindTraits {
        default_traits(
            GROUP,
            if self.cluster {
                "clusterrolebindings"
            } else {
                "rolebindings"
            },
        )
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        apply_defaults(obj);
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        apply_defaults(new);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        self.validate_binding(obj)
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = self.validate_binding(new);
        let (n, o) = (new.get("roleRef"), old.get("roleRef"));
        if ["apiGroup", "kind", "name"]
            .iter()
            .any(|f| str_at(n, f) != str_at(o, f))
        {
            errs.push(invalid_raw("roleRef", &render_role_ref(n), "cannot change roleRef"));
        }
        errs
    }
}

impl BindingStrategy {
    fn validate_binding(&self, obj: &Object) -> FieldErrors {
        let mut errs = FieldErrors::new();
        let role_ref = obj.get("roleRef");
        let group = str_at(role_ref, "apiGroup");
        if group != GROUP {
            errs.push(FieldError::not_supported("roleRef.apiGroup", group, &[GROUP]));
        }
        let kind = str_at(role_ref, "kind");
        let kinds: &[&str] = if self.cluster {
            &["ClusterRole"]
        } else {
            &["Role", "ClusterRole"]
        };
        if !kinds.contains(&kind) {
            errs.push(FieldError::not_supported("roleRef.kind", kind, kinds));
        }
        let name = str_at(role_ref, "name");
        if name.is_empty() {
            errs.push(FieldError::required("roleRef.name", ""));
        } else {
            for m in is_path_segment_name(name) {
                errs.push(FieldError::invalid("roleRef.name", name, m));
            }
        }
        for (i, s) in obj
            .get("subjects")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            errs.extend(validate_subject(s, !self.cluster, &index("subjects", i)));
        }
        errs
    }
}

/// Upstream's `ValidateRoleBindingSubject`.
pub fn validate_subject(subject: &Value, namespaced: bool, path: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let s = Some(subject);
    let name = str_at(s, "name");
    if name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    }
    let group = str_at(s, "apiGroup");
    match str_at(s, "kind") {
        "ServiceAccount" => {
            if !name.is_empty() {
                for m in is_dns1123_subdomain(name) {
                    errs.push(FieldError::invalid(child(path, "name"), name, m));
                }
            }
            if !group.is_empty() {
                errs.push(FieldError::not_supported(child(path, "apiGroup"), group, &[""]));
            }
            if !namespaced && str_at(s, "namespace").is_empty() {
                errs.push(FieldError::required(child(path, "namespace"), ""));
            }
        }
        "User" | "Group" => {
            if group != GROUP {
                errs.push(FieldError::not_supported(child(path, "apiGroup"), group, &[GROUP]));
            }
        }
        other => errs.push(FieldError::not_supported(
            child(path, "kind"),
            other,
            &["ServiceAccount", "User", "Group"],
        )),
    }
    errs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testing::TestServer;
    use axum::http::StatusCode;

    fn binding(cluster: bool, body: Value) -> (BindingStrategy, Object) {
        let mut o = match body {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let s = BindingStrategy { cluster };
        s.prepare_for_create(&mut o);
        (s, o)
    }

    fn check(cluster: bool, body: Value, expected: &[&str]) {
        let (s, o) = binding(cluster, body);
        let got: Vec<String> = s.validate(&o).iter().map(ToString::to_string).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn defaults() {
        let (_, o) = binding(
            false,
            json!({"roleRef": {"kind": "Role", "name": "r"}, "subjects": [
                {"kind": "User", "name": "u"}, {"kind": "Group", "name": "g"}, {"kind": "ServiceAccount", "name": "sa"}]}),
        );
        assert_eq!(o["roleRef"]["apiGroup"], GROUP);
        assert_eq!(o["subjects"][0]["apiGroup"], GROUP);
        assert_eq!(o["subjects"][1]["apiGroup"], GROUP);
        assert_eq!(o["subjects"][2]["apiGroup"], "");
    }

    #[test]
    fn role_ref_and_subjects() {
        check(false, json!({"roleRef": {"kind": "Role", "name": "r"}}), &[]);
        check(
            true,
            json!({"roleRef": {"apiGroup": "example.com", "kind": "Role", "name": ""}}),
            &[
                "roleRef.apiGroup: Unsupported value: \"example.com\": supported values: \"rbac.authorization.k8s.io\"",
                "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
                "roleRef.name: Required value",
            ],
        );
        check(
            true,
            json!({"roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [
                {"kind": "ServiceAccount", "name": "sa"},
                {"kind": "User", "name": "u", "apiGroup": "x"},
                {"kind": "Robot", "name": "r"},
                {"kind": "ServiceAccount", "name": "sa", "namespace": "ns", "apiGroup": "v1"}]}),
            &[
                "subjects[0].namespace: Required value",
                "subjects[1].apiGroup: Unsupported value: \"x\": supported values: \"rbac.authorization.k8s.io\"",
                "subjects[2].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
                "subjects[3].apiGroup: Unsupported value: \"v1\": supported values: \"\"",
            ],
        );
        check(
            false,
            json!({"roleRef": {"kind": "Role", "name": "r"}, "subjects": [{"kind": "ServiceAccount", "name": "sa"}]}),
            &[],
        );
    }

    #[tokio::test]
    async fn http_role_ref_is_immutable() {
        let s = TestServer::new().await;
        let path = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings";
        let (code, body) = s
            .post(
                path,
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "rb"},
                    "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": "reader"},
                    "subjects": [{"kind": "User", "name": "alice"}]}),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        assert_eq!(body["subjects"][0]["apiGroup"], GROUP);
        let (code, body) = s
            .patch(
                &format!("{path}/rb"),
                "application/merge-patch+json",
                json!({"roleRef": {"kind": "ClusterRole", "name": "admin"}}),
            )
            .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.ends_with(
                "\"rb\" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"admin\"}: cannot change roleRef"
            ),
            "{message}"
        );
        assert_eq!(body["details"]["causes"][0]["field"], "roleRef");
        // Subjects may change.
        let (code, body) = s
            .patch(
                &format!("{path}/rb"),
                "application/merge-patch+json",
                json!({"subjects": [{"kind": "Group", "name": "devs"}]}),
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }

    #[tokio::test]
    async fn http_cluster_role_nonresource_urls() {
        let s = TestServer::new().await;
        let (code, body) = s
            .post(
                "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"},
                    "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]}),
            )
            .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let (code, body) = s
            .post(
                "/apis/rbac.authorization.k8s.io/v1/clusterroles",
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:r"},
                    "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]}),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
}
