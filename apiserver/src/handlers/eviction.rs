//! `pods/eviction`: deleting a pod only when its PodDisruptionBudget
//! allows it (upstream's EvictionREST). A pod that is terminal, pending or
//! already terminating goes at once; otherwise the one PDB matching the pod
//! must allow a disruption, which is taken by decrementing
//! `status.disruptionsAllowed` and recording the pod in
//! `status.disruptedPods` before the pod is deleted.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::registry::list::ListOptions;
use crate::registry::object::{self, Object};
use crate::registry::store::{DeleteOptions, UpdateOptions, UpdateTarget};
use crate::selector::labels::Selector;
use crate::status::{ApiError, GroupResource, StatusCause, StatusDetails};

use super::body;
use super::crud::{Ctx, apply_delete_options};
use super::response;

/// Above this many unconfirmed evictions the PDB refuses more.
const MAX_DISRUPTED_POD_SIZE: usize = 2000;
/// How often a PDB status update is retried on conflicts.
const PDB_RETRIES: usize = 20;

const PDB: GroupResource<'static> = GroupResource {
    group: "policy",
    resource: "poddisruptionbudget",
};

pub async fn create(ctx: &Ctx<'_>, req: Request) -> Result<Response, ApiError> {
    let query_dry_run = ctx.params.dry_run()?;
    let headers = req.headers().clone();
    let bytes = body::read(req.into_body()).await?;
    let eviction = body::decode_object(&headers, &bytes)?.object;
    check_kind(&eviction)?;
    if object::name(&eviction) != ctx.info.name {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let mut opts = DeleteOptions::default();
    let body_dry_run = match eviction.get("deleteOptions").and_then(Value::as_object) {
        Some(o) => {
            apply_delete_options(o, &mut opts)?;
            o.get("dryRun").and_then(Value::as_array).is_some_and(|d| !d.is_empty())
        }
        None => false,
    };
    if body_dry_run && query_dry_run != opts.dry_run {
        return Err(ApiError::bad_request(format!(
            "Non-matching dry-run options in request and content: [{}] and [{}]",
            if query_dry_run { "All" } else { "" },
            if opts.dry_run { "All" } else { "" }
        )));
    }
    opts.dry_run |= query_dry_run;

    let pods = ctx.store;
    let name = ctx.info.name.as_str();
    let pod = pods.get(ctx.namespace, name).await?;
    if can_ignore_pdb(&pod) {
        let mut opts = opts.clone();
        if should_enforce_resource_version(&pod) && opts.precondition_resource_version.is_none() {
            opts.precondition_resource_version = Some(object::resource_version(&pod).to_string());
        }
        pods.delete(ctx.namespace, name, &opts).await?;
        return Ok(success());
    }

    let pdbs = matching_pdbs(ctx, &pod).await?;
    if pdbs.len() > 1 {
        return Ok(response::json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                "code": 500,
            }),
        ));
    }
    let mut pin_version = false;
    if let Some(pdb) = pdbs.first() {
        let ready = is_pod_ready(&pod);
        let status = pdb.get("status");
        let int = |f: &str| status.and_then(|s| s.get(f)).and_then(Value::as_i64).unwrap_or(0);
        let always_allow = pdb
            .get("spec")
            .and_then(|s| s.get("unhealthyPodEvictionPolicy"))
            .and_then(Value::as_str)
            == Some("AlwaysAllow");
        if !ready && (always_allow || (int("currentHealthy") >= int("desiredHealthy") && int("desiredHealthy") > 0)) {
            // An unhealthy pod does not count towards the budget.
            pin_version = true;
        } else {
            take_disruption(ctx, object::name(pdb), name, opts.dry_run).await?;
        }
    }
    let mut delete_opts = opts.clone();
    if pin_version && delete_opts.precondition_resource_version.is_none() {
        delete_opts.precondition_resource_version = Some(object::resource_version(&pod).to_string());
    }
    match pods.delete(ctx.namespace, name, &delete_opts).await {
        Ok(_) => Ok(success()),
        Err(e) if e.code == 409 && pin_version && opts.precondition_resource_version.is_none() => {
            Err(still_processing(pdbs.first().map(object::name).unwrap_or("")))
        }
        Err(e) => Err(e),
    }
}

/// The body must be a policy/v1 (or v1beta1) Eviction when it says so.
fn check_kind(eviction: &Object) -> Result<(), ApiError> {
    let kind = eviction.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = eviction.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if !kind.is_empty() && kind != "Eviction" {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type Eviction): kind {kind:?} does not match"
        )));
    }
    if !matches!(api_version, "" | "policy/v1" | "policy/v1beta1") {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version (policy/v1)"
        )));
    }
    Ok(())
}

fn success() -> Response {
    response::json(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    )
}

fn phase(pod: &Object) -> &str {
    pod.get("status")
        .and_then(|s| s.get("phase"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Terminal, pending and terminating pods are evicted without a budget.
fn can_ignore_pdb(pod: &Object) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed" | "Pending") || object::is_terminating(pod)
}

/// Whether the delete must be pinned to the version the decision saw.
fn should_enforce_resource_version(pod: &Object) -> bool {
    !(matches!(phase(pod), "Succeeded" | "Failed") || object::is_terminating(pod))
}

fn is_pod_ready(pod: &Object) -> bool {
    pod.get("status")
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// The PDBs of the pod's namespace whose (non-empty, valid) selector
/// matches the pod.
async fn matching_pdbs(ctx: &Ctx<'_>, pod: &Object) -> Result<Vec<Object>, ApiError> {
    let Some(store) = ctx.state.registry.store("policy", "poddisruptionbudgets") else {
        return Ok(Vec::new());
    };
    let info = store.info.clone();
    let listed = store.list(ctx.namespace, &ListOptions::default()).await?;
    let labels = object::labels(pod);
    Ok(listed
        .items
        .into_iter()
        .map(|i| i.into_object(&info))
        .filter(|pdb| {
            let selector = pdb.get("spec").and_then(|s| s.get("selector"));
            match Selector::from_label_selector_json(selector) {
                Ok(sel) => !sel.is_empty() && !sel.is_nothing() && sel.matches(&labels),
                Err(_) => false,
            }
        })
        .collect())
}

/// 429 while the PDB controller has not caught up with the budget.
fn still_processing(pdb: &str) -> ApiError {
    too_many_requests(
        10,
        format!("The disruption budget {pdb} is still being processed by the server."),
    )
}

fn too_many_requests(retry_after: u32, cause: String) -> ApiError {
    ApiError {
        code: 429,
        reason: "TooManyRequests",
        message: "Cannot evict pod as it would violate the pod's disruption budget.".into(),
        details: Some(Box::new(StatusDetails {
            retry_after_seconds: (retry_after > 0).then_some(retry_after),
            causes: vec![StatusCause {
                reason: "DisruptionBudget".into(),
                message: cause,
                field: String::new(),
            }],
            ..Default::default()
        })),
    }
}

/// Checks the budget allows one more disruption and takes it.
async fn take_disruption(ctx: &Ctx<'_>, pdb_name: &str, pod_name: &str, dry_run: bool) -> Result<(), ApiError> {
    let Some(store) = ctx.state.registry.store("policy", "poddisruptionbudgets") else {
        return Ok(());
    };
    for _ in 0..PDB_RETRIES {
        let pdb = store.get(ctx.namespace, pdb_name).await?;
        let mut status = pdb
            .get("status")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let int = |s: &serde_json::Map<String, Value>, f: &str| s.get(f).and_then(Value::as_i64).unwrap_or(0);
        let generation = object::meta(&pdb)
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if int(&status, "observedGeneration") < generation {
            return Err(still_processing(pdb_name));
        }
        let allowed = int(&status, "disruptionsAllowed");
        if allowed < 0 {
            return Err(ApiError::forbidden(
                PDB,
                pdb_name,
                "pdb disruptions allowed is negative",
            ));
        }
        let disrupted = status
            .get("disruptedPods")
            .and_then(Value::as_object)
            .map_or(0, |m| m.len());
        if disrupted > MAX_DISRUPTED_POD_SIZE {
            return Err(ApiError::forbidden(
                PDB,
                pdb_name,
                "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
            ));
        }
        if allowed == 0 {
            return Err(too_many_requests(
                0,
                format!(
                    "The disruption budget {pdb_name} needs {} healthy pods and has {} currently",
                    int(&status, "desiredHealthy"),
                    int(&status, "currentHealthy")
                ),
            ));
        }
        if dry_run {
            return Ok(());
        }
        status.insert("disruptionsAllowed".into(), Value::from(allowed - 1));
        if allowed - 1 == 0 {
            set_disruption_allowed_condition(&mut status);
        }
        let pods = status
            .entry("disruptedPods")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Value::Object(pods) = pods {
            pods.insert(pod_name.to_string(), Value::String(object::now_rfc3339()));
        }
        let mut updated = pdb.clone();
        updated.insert("status".into(), Value::Object(status));
        let opts = UpdateOptions {
            dry_run: false,
            target: UpdateTarget::Status,
        };
        let rv = object::resource_version(&pdb).to_string();
        match store
            .update_with(ctx.namespace, pdb_name, &opts, |_| Ok(updated.clone()), Some(&rv))
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if e.code == 409 => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::timeout(format!(
        "Timeout: couldn't update PodDisruptionBudget {pdb_name:?} due to conflicts"
    )))
}

/// The `DisruptionAllowed` condition once no disruption is left.
fn set_disruption_allowed_condition(status: &mut serde_json::Map<String, Value>) {
    let observed = status.get("observedGeneration").cloned().unwrap_or(Value::from(0));
    let conditions = status.entry("conditions").or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(conditions) = conditions else { return };
    let now = object::now_rfc3339();
    let new = json!({
        "type": "DisruptionAllowed",
        "status": "False",
        "reason": "InsufficientPods",
        "message": "",
        "observedGeneration": observed,
        "lastTransitionTime": now,
    });
    match conditions
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("DisruptionAllowed"))
    {
        Some(Value::Object(c)) => {
            if c.get("status").and_then(Value::as_str) != Some("False") {
                c.insert("lastTransitionTime".into(), json!(now));
            }
            c.insert("status".into(), json!("False"));
            c.insert("reason".into(), json!("InsufficientPods"));
            c.insert("observedGeneration".into(), observed);
        }
        _ => conditions.push(new),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use axum::http::StatusCode;
    use serde_json::{Value, json};

    use crate::testing::TestServer;

    /// A running, ready (or not) pod labelled app=web.
    async fn running_pod(s: &TestServer, name: &str, ready: bool) {
        let (code, body) = s
            .post(
                "/api/v1/namespaces/default/pods",
                json!({"metadata": {"name": name, "labels": {"app": "web"}},
                       "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        let mut pod = body;
        pod["status"] = json!({"phase": "Running", "conditions": [
            {"type": "Ready", "status": if ready { "True" } else { "False" }}]});
        let (code, body) = s
            .put(&format!("/api/v1/namespaces/default/pods/{name}/status"), pod)
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }

    async fn pdb(s: &TestServer, allowed: i64, current: i64, desired: i64) {
        let (code, body) = s
            .post(
                "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
                json!({"metadata": {"name": "budget"},
                       "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        let mut obj = body;
        obj["status"] = json!({"observedGeneration": 1, "disruptionsAllowed": allowed,
                               "currentHealthy": current, "desiredHealthy": desired, "expectedPods": current});
        let (code, body) = s
            .put(
                "/apis/policy/v1/namespaces/default/poddisruptionbudgets/budget/status",
                obj,
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }

    fn eviction(name: &str) -> Value {
        json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}})
    }

    async fn exists(s: &TestServer, name: &str) -> bool {
        s.get(&format!("/api/v1/namespaces/default/pods/{name}")).await.0 == StatusCode::OK
    }

    #[tokio::test]
    async fn without_budget_the_pod_goes() {
        let s = TestServer::new().await;
        running_pod(&s, "a", true).await;
        let (code, body) = s
            .post("/api/v1/namespaces/default/pods/a/eviction", eviction("a"))
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        assert_eq!(body["status"], "Success");
        // Pods on no node go at once.
        assert!(!exists(&s, "a").await);
    }

    #[tokio::test]
    async fn budget_is_taken_then_refuses() {
        let s = TestServer::new().await;
        running_pod(&s, "a", true).await;
        running_pod(&s, "b", true).await;
        pdb(&s, 1, 2, 1).await;
        let (code, body) = s
            .post("/api/v1/namespaces/default/pods/a/eviction", eviction("a"))
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        assert!(!exists(&s, "a").await);
        let (_, budget) = s
            .get("/apis/policy/v1/namespaces/default/poddisruptionbudgets/budget")
            .await;
        assert_eq!(budget["status"]["disruptionsAllowed"], 0);
        assert!(budget["status"]["disruptedPods"]["a"].is_string());
        let cond = &budget["status"]["conditions"][0];
        assert_eq!(cond["type"], "DisruptionAllowed");
        assert_eq!(cond["status"], "False");

        let (code, body) = s
            .post("/api/v1/namespaces/default/pods/b/eviction", eviction("b"))
            .await;
        assert_eq!(code, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["reason"], "TooManyRequests");
        assert_eq!(
            body["message"],
            "Cannot evict pod as it would violate the pod's disruption budget."
        );
        assert_eq!(body["details"]["causes"][0]["reason"], "DisruptionBudget");
        assert_eq!(
            body["details"]["causes"][0]["message"],
            "The disruption budget budget needs 1 healthy pods and has 2 currently"
        );
        assert!(exists(&s, "b").await);
    }

    #[tokio::test]
    async fn unready_pod_goes_when_budget_is_healthy_and_dry_run_keeps_it() {
        let s = TestServer::new().await;
        running_pod(&s, "a", false).await;
        pdb(&s, 0, 2, 1).await;
        let (code, _) = s
            .post("/api/v1/namespaces/default/pods/a/eviction?dryRun=All", eviction("a"))
            .await;
        assert_eq!(code, StatusCode::CREATED);
        assert!(exists(&s, "a").await);
        let (code, body) = s
            .post("/api/v1/namespaces/default/pods/a/eviction", eviction("a"))
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        assert!(!exists(&s, "a").await);
    }

    #[tokio::test]
    async fn stale_budget_and_bad_requests() {
        let s = TestServer::new().await;
        running_pod(&s, "a", true).await;
        pdb(&s, 1, 2, 1).await;
        // A spec change the controller has not observed yet.
        let (code, body) = s
            .patch(
                "/apis/policy/v1/namespaces/default/poddisruptionbudgets/budget",
                "application/merge-patch+json",
                json!({"spec": {"minAvailable": 2}}),
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
        let (code, body) = s
            .post("/api/v1/namespaces/default/pods/a/eviction", eviction("a"))
            .await;
        assert_eq!(code, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(
            body["details"]["causes"][0]["message"],
            "The disruption budget budget is still being processed by the server."
        );

        let (code, body) = s
            .post("/api/v1/namespaces/default/pods/a/eviction", eviction("zzz"))
            .await;
        assert_eq!(code, StatusCode::BAD_REQUEST);
        assert_eq!(body["message"], "name in URL does not match name in Eviction object");
        let (code, _) = s
            .post("/api/v1/namespaces/default/pods/none/eviction", eviction("none"))
            .await;
        assert_eq!(code, StatusCode::NOT_FOUND);
    }
}
