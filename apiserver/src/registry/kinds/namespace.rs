//! Namespaces: `spec.finalizers` holds `kubernetes` until the namespace
//! controller has emptied the namespace; deletion moves the phase to
//! Terminating; the `kubernetes.io/metadata.name` label always carries the
//! name.

use serde_json::{Value, json};

use crate::registry::object::{self, Object};
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::object_meta::NameRule;
use crate::validation::{FieldError, FieldErrors};

/// The finalizer the namespace controller removes.
pub const KUBERNETES_FINALIZER: &str = "kubernetes";
/// The label holding the namespace's name.
pub const NAME_LABEL: &str = "kubernetes.io/metadata.name";

#[derive(Debug, Default)]
pub struct NamespaceStrategy;

fn set_name_label(obj: &mut Object) {
    let name = object::name(obj).to_string();
    if name.is_empty() {
        return;
    }
    let meta = object::meta_mut(obj);
    let labels = meta.entry("labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    if let Value::Object(l) = labels {
        l.insert(NAME_LABEL.into(), Value::String(name));
    }
}

fn spec_finalizers(obj: &Object) -> Vec<String> {
    obj.get("spec")
        .and_then(|s| s.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

impl Strategy for NamespaceStrategy {
    fn traits(&self) -> KindTraits {
        KindTraits {
            name_rule: NameRule::Dns1123Label,
            tracks_generation: false,
        }
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        let mut finalizers = spec_finalizers(obj);
        if !finalizers.iter().any(|f| f == KUBERNETES_FINALIZER) {
            finalizers.push(KUBERNETES_FINALIZER.into());
        }
        obj.insert("spec".into(), json!({"finalizers": finalizers}));
        obj.insert("status".into(), json!({"phase": "Active"}));
        set_name_label(obj);
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        let mut errs = FieldErrors::new();
        for (i, f) in spec_finalizers(obj).iter().enumerate() {
            for m in crate::validation::names::is_qualified_name(f) {
                errs.push(FieldError::invalid(format!("spec.finalizers[{i}]"), f.as_str(), m));
            }
        }
        errs
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        set_name_label(new);
    }

    fn pending_finalization(&self, obj: &Object) -> bool {
        !spec_finalizers(obj).is_empty()
    }

    fn prepare_for_delete(&self, obj: &mut Object) {
        let status = obj.entry("status").or_insert_with(|| json!({}));
        if let Value::Object(s) = status {
            s.insert("phase".into(), json!("Terminating"));
        }
    }
}
