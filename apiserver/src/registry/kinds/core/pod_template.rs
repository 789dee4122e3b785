//! PodTemplates (`ValidatePodTemplate`, `pkg/registry/core/podtemplate`):
//! the template is defaulted and validated like a workload's pod template,
//! and `metadata.generation` follows template changes.

use crate::registry::kinds::pod::defaults::default_pod_template;
use crate::registry::object::Object;
use crate::registry::strategy::{KindTraits, Strategy};
use crate::validation::FieldErrors;
use crate::validation::pod_spec::validate_pod_template_spec;

#[derive(Debug)]
pub struct PodTemplateStrategy(pub KindTraits);

impl Strategy for PodTemplateStrategy {
    fn traits(&self) -> KindTraits {
        KindTraits {
            tracks_generation: true,
            ..self.0
        }
    }

    fn prepare_for_create(&self, obj: &mut Object) {
        default_pod_template(obj.get_mut("template"));
    }

    fn prepare_for_update(&self, new: &mut Object, _old: &Object) {
        default_pod_template(new.get_mut("template"));
    }

    fn validate(&self, obj: &Object) -> FieldErrors {
        validate_pod_template_spec(obj.get("template"), "template")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn template_is_defaulted_and_validated() {
        let s = PodTemplateStrategy(KindTraits::default());
        let mut ok = json!({"metadata": {"name": "t"}, "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}})
            .as_object()
            .cloned()
            .unwrap();
        s.prepare_for_create(&mut ok);
        assert_eq!(ok["template"]["spec"]["restartPolicy"], "Always");
        assert_eq!(ok["template"]["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert!(s.validate(&ok).is_empty(), "{:?}", s.validate(&ok));
        let mut bad = json!({"metadata": {"name": "t"}, "template": {"spec": {"containers": [{"name": "c"}]}}})
            .as_object()
            .cloned()
            .unwrap();
        s.prepare_for_create(&mut bad);
        assert_eq!(
            s.validate(&bad).summary(),
            "template.spec.containers[0].image: Required value"
        );
    }
}
