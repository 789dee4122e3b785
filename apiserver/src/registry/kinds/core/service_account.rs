//! ServiceAccounts (`pkg/registry/core/serviceaccount/strategy.go`): only
//! metadata is validated upstream; references to Secrets keep only their
//! name (`cleanSecretReferences`).

use serde_json::{Map, Value};

use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};

#[derive(Debug)]
pub struct ServiceAccountStrategy(pub KindTraits);

/// `cleanSecretReferences`: each `secrets[]` entry becomes `{name}`.
fn clean_secret_references(obj: &mut Object) {
    if let Some(Value::Array(secrets)) = obj.get_mut("secrets") {
        for s in secrets.iter_mut() {
            let mut only_name = Map::new();
            if let Some(name) = s.get("name").filter(|n| n.as_str().is_some_and(|n| !n.is_empty())) {
                only_name.insert("name".into(), name.clone());
            }
            *s = Value::Object(only_name);
        }
    }
}

impl Strategy for ServiceAccountStrategy {
    fn traits(&self) -> KindTraits {
        self.0
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        clean_secret_references(obj);
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        clean_secret_references(new);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_references_keep_only_names() {
        let mut sa =
            json!({"secrets": [{"name": "tok", "namespace": "x", "uid": "u", "kind": "Secret"}, {"kind": "Secret"}],
                            "imagePullSecrets": [{"name": "reg"}]})
            .as_object()
            .cloned()
            .unwrap();
        ServiceAccountStrategy(KindTraits::default()).prepare_for_create(&mut sa);
        assert_eq!(sa["secrets"], json!([{"name": "tok"}, {}]));
        assert_eq!(sa["imagePullSecrets"], json!([{"name": "reg"}]));
    }
}
