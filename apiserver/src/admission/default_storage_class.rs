//! DefaultStorageClass (`plugin/pkg/admission/storage/storageclass/setdefault`):
//! a new PersistentVolumeClaim that names no class (no
//! `spec.storageClassName`, not even "", and no beta class annotation) gets
//! the default StorageClass: the newest one annotated
//! `storageclass.kubernetes.io/is-default-class: "true"` (or the beta
//! annotation). Without a default class the claim is left as it is.

use serde_json::{Value, json};

use crate::registry::Registry;
use crate::registry::object::{self, Object};
use crate::status::ApiError;

use super::{Attributes, Operation};

const IS_DEFAULT: &str = "storageclass.kubernetes.io/is-default-class";
const IS_DEFAULT_BETA: &str = "storageclass.beta.kubernetes.io/is-default-class";
const BETA_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

fn annotation<'a>(obj: &'a Object, key: &str) -> Option<&'a str> {
    object::meta(obj)
        .get("annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// `GetDefaultClass`: the newest default class (by creation time, then name).
pub fn default_class(classes: Vec<Object>) -> Option<String> {
    classes
        .into_iter()
        .filter(|c| annotation(c, IS_DEFAULT) == Some("true") || annotation(c, IS_DEFAULT_BETA) == Some("true"))
        .max_by(|a, b| {
            let created = |o: &Object| object::meta_str(o, "creationTimestamp").to_string();
            created(a)
                .cmp(&created(b))
                .then_with(|| object::name(b).cmp(object::name(a)))
        })
        .map(|c| object::name(&c).to_string())
}

pub async fn admit(registry: &Registry, attrs: &Attributes<'_>, claim: &mut Object) -> Result<(), ApiError> {
    if attrs.operation != Operation::Create || !attrs.is("", "persistentvolumeclaims") {
        return Ok(());
    }
    let named = claim
        .get("spec")
        .and_then(|s| s.get("storageClassName"))
        .is_some_and(|c| !c.is_null());
    if named || annotation(claim, BETA_CLASS_ANNOTATION).is_some() {
        return Ok(());
    }
    let Some(store) = registry.store("storage.k8s.io", "storageclasses") else {
        return Ok(());
    };
    let info = store.info.clone();
    let class = store
        .list_cached_derived("admission.default-storage-class", "", |items| {
            default_class(items.into_iter().map(|i| i.into_object(&info)).collect())
        })
        .await?;
    if let Some(class) = class.as_deref()
        && let Some(Value::Object(spec)) = claim.get_mut("spec")
    {
        spec.insert("storageClassName".into(), json!(class));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn class(name: &str, created: &str, default: bool) -> Object {
        let v = json!({"metadata": {"name": name, "creationTimestamp": created,
                       "annotations": {IS_DEFAULT: if default { "true" } else { "false" }}}});
        match v {
            Value::Object(m) => m,
            _ => Object::new(),
        }
    }

    #[test]
    fn newest_default_wins() {
        assert_eq!(default_class(vec![class("a", "2024-01-01T00:00:00Z", false)]), None);
        assert_eq!(
            default_class(vec![
                class("old", "2024-01-01T00:00:00Z", true),
                class("new", "2024-02-01T00:00:00Z", true),
                class("other", "2024-03-01T00:00:00Z", false),
            ]),
            Some("new".into())
        );
    }
}
