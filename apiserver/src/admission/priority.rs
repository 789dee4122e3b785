//! Priority (`plugin/pkg/admission/priority`): a new pod's
//! `priorityClassName` resolved to `spec.priority` and
//! `spec.preemptionPolicy`, the global default class applied when it names
//! none; a priority or policy given in the pod must match the class.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::registry::Registry;
use crate::registry::object::Object;
use crate::status::ApiError;

use super::{Attributes, Operation, forbidden};

/// The fields of a PriorityClass the plugin reads.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ClassView {
    metadata: ClassMeta,
    value: i64,
    global_default: Option<bool>,
    preemption_policy: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
struct ClassMeta {
    name: String,
}

/// Upstream's Priority admission for a new pod.
pub async fn admit(registry: &Registry, attrs: &Attributes<'_>, pod: &mut Object) -> Result<(), ApiError> {
    if attrs.operation != Operation::Create || !attrs.is("", "pods") {
        return Ok(());
    }
    let Some(classes) = registry.store("scheduling.k8s.io", "priorityclasses") else {
        return Ok(());
    };
    let spec = pod.get("spec");
    let class_name = spec
        .and_then(|s| s.get("priorityClassName"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let class: Option<ClassView> = if class_name.is_empty() {
        // The global default, if any (the lowest value wins a tie, like
        // upstream). From the cache, like upstream's lister, and read into
        // views: no storage round trip and no full decode per pod.
        classes
            .list_cached_as::<ClassView>("")
            .await?
            .iter()
            .filter(|c| c.global_default == Some(true))
            .min_by_key(|c| c.value)
            .cloned()
    } else {
        match classes.get_cached_as::<ClassView>("", &class_name).await {
            Ok(c) => Some((*c).clone()),
            Err(e) if e.code == 404 => {
                return Err(forbidden(
                    attrs,
                    Some(&*pod),
                    &format!("no PriorityClass with name {class_name} was found"),
                ));
            }
            Err(e) => return Err(e),
        }
    };
    let (priority, policy, resolved_name) = match &class {
        Some(c) => (
            c.value,
            c.preemption_policy
                .clone()
                .unwrap_or_else(|| "PreemptLowerPriority".to_string()),
            c.metadata.name.clone(),
        ),
        None => (0, "PreemptLowerPriority".to_string(), String::new()),
    };
    let given = spec.and_then(|s| s.get("priority")).and_then(Value::as_i64);
    if let Some(given) = given
        && given != priority
    {
        return Err(forbidden(
            attrs,
            Some(&*pod),
            &format!(
                "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
            ),
        ));
    }
    let given_policy = spec
        .and_then(|s| s.get("preemptionPolicy"))
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(given) = &given_policy
        && class.is_some()
        && *given != policy
    {
        return Err(forbidden(
            attrs,
            Some(&*pod),
            &format!(
                "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
            ),
        ));
    }
    if let Some(Value::Object(spec)) = pod.get_mut("spec") {
        spec.insert("priority".into(), json!(priority));
        if class.is_some() || given_policy.is_none() {
            spec.insert("preemptionPolicy".into(), json!(policy));
        }
        if !resolved_name.is_empty() {
            spec.insert("priorityClassName".into(), json!(resolved_name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use axum::http::StatusCode;
    use serde_json::json;

    use crate::testing::TestServer;

    const PODS: &str = "/api/v1/namespaces/default/pods";

    fn pod(name: &str, spec_extra: serde_json::Value) -> serde_json::Value {
        let mut spec = json!({"containers": [{"name": "c", "image": "busybox"}]});
        for (k, v) in spec_extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        json!({"metadata": {"name": name}, "spec": spec})
    }

    #[tokio::test]
    async fn priority_from_the_class() {
        let s = TestServer::new().await;
        let (code, p) = s
            .post(
                PODS,
                pod("crit", json!({"priorityClassName": "system-cluster-critical"})),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{p}");
        assert_eq!(p["spec"]["priority"], 2_000_000_000);
        assert_eq!(p["spec"]["preemptionPolicy"], "PreemptLowerPriority");

        let (code, p) = s.post(PODS, pod("plain", json!({}))).await;
        assert_eq!(code, StatusCode::CREATED, "{p}");
        assert_eq!(p["spec"]["priority"], 0);

        let (code, err) = s.post(PODS, pod("x", json!({"priorityClassName": "foo"}))).await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        assert_eq!(
            err["message"],
            "pods \"x\" is forbidden: no PriorityClass with name foo was found"
        );
        let (code, err) = s
            .post(
                PODS,
                pod("y", json!({"priorityClassName": "system-node-critical", "priority": 5})),
            )
            .await;
        assert_eq!(code, StatusCode::FORBIDDEN, "{err}");
    }

    #[tokio::test]
    async fn global_default_class() {
        let s = TestServer::new().await;
        let (code, c) = s
            .post(
                "/apis/scheduling.k8s.io/v1/priorityclasses",
                json!({"metadata": {"name": "everyday"}, "value": 1000, "globalDefault": true,
                       "preemptionPolicy": "Never"}),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{c}");
        let (code, p) = s.post(PODS, pod("d", json!({}))).await;
        assert_eq!(code, StatusCode::CREATED, "{p}");
        assert_eq!(p["spec"]["priority"], 1000);
        assert_eq!(p["spec"]["priorityClassName"], "everyday");
        assert_eq!(p["spec"]["preemptionPolicy"], "Never");
    }
}
