//! StorageClass (`storage.k8s.io/v1`): reclaimPolicy (default Delete) and
//! volumeBindingMode (default Immediate); provisioner, parameters,
//! reclaimPolicy and volumeBindingMode cannot change.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::{validate_parameters, validate_provisioner};
use crate::registry::kinds::default_traits;
use crate::registry::kinds::networking::values::{arr, differs, immutable, set_default, str_at, strs};
use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::label_selector::validate_label_name;
use crate::validation::{FieldError, FieldErrors, child, index};

#[derive(Debug, Default)]
pub struct StorageClassStrategy;

fn apply_defaults(obj: &mut Object) {
    set_default(obj, "reclaimPolicy", json!("Delete"));
    set_default(obj, "volumeBindingMode", json!("Immediate"));
}

fn field<'a>(obj: &'a Object, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

impl Strategy for StorageClassStrategy {
    fn traits(&self) -> KindTraits {
        default_traits("storage.k8s.io", "storageclasses")
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        apply_defaults(obj);
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        apply_defaults(new);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        let mut errs = validate_provisioner(field(obj, "provisioner").unwrap_or(""), "provisioner");
        errs.extend(validate_parameters(obj.get("parameters"), true, "parameters"));
        if let Some(p) = field(obj, "reclaimPolicy")
            && !p.is_empty()
            && !matches!(p, "Delete" | "Retain")
        {
            errs.push(FieldError::not_supported("reclaimPolicy", p, &["Delete", "Retain"]));
        }
        match field(obj, "volumeBindingMode") {
            None => errs.push(FieldError::required("volumeBindingMode", "")),
            Some("Immediate" | "WaitForFirstConsumer") => {}
            Some(m) => errs.push(FieldError::not_supported(
                "volumeBindingMode",
                m,
                &["Immediate", "WaitForFirstConsumer"],
            )),
        }
        errs.extend(validate_allowed_topologies(obj.get("allowedTopologies")));
        errs
    }

    fn validate_update(&self, new: &Object, old: &Object) -> FieldErrors {
        let mut errs = self.validate(new);
        if differs(new.get("parameters"), old.get("parameters")) {
            errs.push(FieldError::forbidden(
                "parameters",
                "updates to parameters are forbidden.",
            ));
        }
        if field(new, "provisioner") != field(old, "provisioner") {
            errs.push(FieldError::forbidden(
                "provisioner",
                "updates to provisioner are forbidden.",
            ));
        }
        if field(new, "reclaimPolicy") != field(old, "reclaimPolicy") {
            errs.push(FieldError::forbidden(
                "reclaimPolicy",
                "updates to reclaimPolicy are forbidden.",
            ));
        }
        let mode = field(new, "volumeBindingMode");
        if mode != field(old, "volumeBindingMode") {
            errs.push(immutable("volumeBindingMode", mode.unwrap_or("null")));
        }
        errs
    }
}

/// `allowedTopologies[]`: topology selector terms (upstream's
/// `ValidateTopologySelectorTerm`), no two alike.
fn validate_allowed_topologies(terms: Option<&Value>) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let mut seen: Vec<BTreeMap<&str, BTreeSet<&str>>> = Vec::new();
    for (i, term) in terms.and_then(Value::as_array).into_iter().flatten().enumerate() {
        let p = index("allowedTopologies", i);
        let ep = child(&p, "matchLabelExpressions");
        let mut exprs: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (j, req) in arr(Some(term), "matchLabelExpressions").iter().enumerate() {
            let rp = index(&ep, j);
            let vp = child(&rp, "values");
            let values = strs(Some(req), "values");
            if values.is_empty() {
                errs.push(FieldError::required(&vp, ""));
            }
            let mut set = BTreeSet::new();
            for (k, v) in values.into_iter().enumerate() {
                if !set.insert(v) {
                    errs.push(FieldError::duplicate(index(&vp, k), v));
                }
            }
            let key = str_at(Some(req), "key");
            errs.extend(validate_label_name(key, &child(&rp, "key")));
            if exprs.contains_key(key) {
                errs.push(FieldError::duplicate(child(&rp, "key"), key));
            }
            exprs.insert(key, set);
        }
        if seen.contains(&exprs) {
            errs.push(FieldError::duplicate(&ep, ""));
        }
        seen.push(exprs);
    }
    errs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::registry::strategy::testing::{create_messages, prepared};
    use crate::testing::TestServer;
    use axum::http::StatusCode;

    fn sc(body: Value) -> Object {
        prepared(&StorageClassStrategy, body)
    }

    fn check(body: Value, expected: &[&str]) {
        assert_eq!(create_messages(&StorageClassStrategy, body), expected);
    }

    #[test]
    fn create() {
        check(json!({"provisioner": "kubernetes.io/no-provisioner"}), &[]);
        check(json!({}), &["provisioner: Required value"]);
        check(
            json!({"provisioner": "a b", "reclaimPolicy": "Recycle", "volumeBindingMode": "Later"}),
            &[
                "provisioner: Invalid value: \"a b\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                "reclaimPolicy: Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\"",
                "volumeBindingMode: Unsupported value: \"Later\": supported values: \"Immediate\", \"WaitForFirstConsumer\"",
            ],
        );
        check(
            json!({"provisioner": "p", "parameters": {"": "x"}}),
            &["parameters: Invalid value: \"\": field can not be empty."],
        );
        check(
            json!({"provisioner": "p", "allowedTopologies": [
                {"matchLabelExpressions": [{"key": "zone", "values": ["a", "a"]}, {"key": "zone", "values": []}]},
                {"matchLabelExpressions": [{"key": "z", "values": ["a"]}]},
                {"matchLabelExpressions": [{"key": "z", "values": ["a"]}]}]}),
            &[
                "allowedTopologies[0].matchLabelExpressions[0].values[1]: Duplicate value: \"a\"",
                "allowedTopologies[0].matchLabelExpressions[1].values: Required value",
                "allowedTopologies[0].matchLabelExpressions[1].key: Duplicate value: \"zone\"",
                "allowedTopologies[2].matchLabelExpressions: Duplicate value: \"\"",
            ],
        );
    }

    #[test]
    fn update_forbids_changes() {
        let old = sc(json!({"provisioner": "p", "parameters": {"a": "b"}}));
        let new = sc(
            json!({"provisioner": "q", "parameters": {"a": "c"}, "reclaimPolicy": "Retain",
            "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": true}),
        );
        let got: Vec<String> = StorageClassStrategy
            .validate_update(&new, &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            [
                "parameters: Forbidden: updates to parameters are forbidden.",
                "provisioner: Forbidden: updates to provisioner are forbidden.",
                "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden.",
                "volumeBindingMode: Invalid value: \"WaitForFirstConsumer\": field is immutable",
            ]
        );
        let ok = sc(json!({"provisioner": "p", "parameters": {"a": "b"}, "allowVolumeExpansion": true}));
        assert!(StorageClassStrategy.validate_update(&ok, &old).is_empty());
    }

    #[tokio::test]
    async fn http_defaults_visible_on_get() {
        let s = TestServer::new().await;
        let path = "/apis/storage.k8s.io/v1/storageclasses";
        let (code, body) = s
            .post(
                path,
                json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "standard"},
                    "provisioner": "example.com/csi"}),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        let (code, body) = s.get(&format!("{path}/standard")).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body["reclaimPolicy"], "Delete");
        assert_eq!(body["volumeBindingMode"], "Immediate");
        let (code, body) = s
            .patch(
                &format!("{path}/standard"),
                "application/merge-patch+json",
                json!({"parameters": {"type": "ssd"}}),
            )
            .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.ends_with("\"standard\" is invalid: parameters: Forbidden: updates to parameters are forbidden."),
            "{message}"
        );
    }
}
