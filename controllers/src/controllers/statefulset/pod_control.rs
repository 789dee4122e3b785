//! Carrying out a round's [`PodAction`]s through the API (upstream
//! `StatefulPodControl`): claims before pods, retention-policy owners on
//! claims, identity repairs retried on conflict, and an event on the set
//! for each creation, update and deletion.

use std::sync::Arc;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};

use super::identity::{claims_for, identity_matches, ordinal, storage_matches, update_identity, update_storage};
use super::plan::PodAction;
use super::retention::{claim_owner_up_to_date, has_unexpected_controller, updated_claim_refs};
use crate::cached_pod::CachedPod;
use crate::controllers::controller_ref::owner_refs_patch;
use crate::controllers::events::{EventRecorder, EventType, reference};
use crate::error::{Error, is_already_exists, is_conflict, is_not_found};
use crate::informer::Informer;

/// Creates, updates and deletes a StatefulSet's pods and claims.
pub struct PodControl {
    pub client: kube::Client,
    pub claims: Informer<PersistentVolumeClaim>,
    pub recorder: EventRecorder,
}

fn title(verb: &str) -> String {
    let mut c = verb.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

impl PodControl {
    fn pods(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    fn claims_api(&self, ns: &str) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// `SuccessfulCreate` "create Pod web-0 in StatefulSet web successful",
    /// or `FailedCreate` with the error.
    fn pod_event(&self, verb: &str, set: &StatefulSet, pod: &str, err: Option<&Error>) {
        let set_name = set.name_any();
        let (type_, reason, note) = match err {
            None => (
                EventType::Normal,
                format!("Successful{}", title(verb)),
                format!("{verb} Pod {pod} in StatefulSet {set_name} successful"),
            ),
            Some(e) => (
                EventType::Warning,
                format!("Failed{}", title(verb)),
                format!("{verb} Pod {pod} in StatefulSet {set_name} failed error: {e}"),
            ),
        };
        self.recorder.record(reference(set), type_, &reason, &title(verb), note);
    }

    fn claim_event(&self, set: &StatefulSet, pod: &str, claim: &str, err: Option<&Error>) {
        let set_name = set.name_any();
        let (type_, reason, note) = match err {
            None => (
                EventType::Normal,
                "SuccessfulCreate",
                format!("create Claim {claim} Pod {pod} in StatefulSet {set_name} success"),
            ),
            Some(e) => (
                EventType::Warning,
                "FailedCreate",
                format!("create Claim {claim} for Pod {pod} in StatefulSet {set_name} failed error: {e}"),
            ),
        };
        self.recorder.record(reference(set), type_, reason, "Create", note);
    }

    /// Runs one action.
    pub async fn run(&self, set: &StatefulSet, action: &PodAction) -> Result<(), Error> {
        match action {
            PodAction::Create(pod) => self.create_pod(set, pod).await,
            PodAction::CreateMissingClaims(pod) => {
                self.create_claims(set, pod).await?;
                self.fix_claims(set, pod).await
            }
            PodAction::Repair(pod) => self.repair_pod(set, pod).await,
            PodAction::FixClaims(pod) => self.fix_claims(set, pod).await,
            PodAction::DeleteFinished(pod) | PodAction::DeleteCondemned(pod) | PodAction::DeleteForUpdate(pod) => {
                self.delete_pod(set, pod).await
            }
        }
    }

    /// Runs actions one by one (`sequential`) or in slow-start batches
    /// (1, 2, 4, ...), stopping at the first failure.
    pub async fn run_all(&self, set: &StatefulSet, actions: &[PodAction], sequential: bool) -> Result<(), Error> {
        if sequential {
            for a in actions {
                self.run(set, a).await?;
            }
            return Ok(());
        }
        let mut rest = actions;
        let mut batch = 1usize;
        while !rest.is_empty() {
            let (now, later) = rest.split_at(batch.min(rest.len()));
            let results = join_all(now.iter().map(|a| self.run(set, a))).await;
            if let Some(e) = results.into_iter().find_map(Result::err) {
                return Err(e);
            }
            rest = later;
            batch = batch.saturating_mul(2).min(super::MAX_BATCH);
        }
        Ok(())
    }

    async fn create_pod(&self, set: &StatefulSet, pod: &Pod) -> Result<(), Error> {
        let ns = set.namespace().unwrap_or_default();
        let name = pod.name_any();
        if let Err(e) = self.create_claims(set, &CachedPod::from(pod)).await {
            self.pod_event("create", set, &name, Some(&e));
            return Err(e);
        }
        let created = match self.pods(&ns).create(&PostParams::default(), pod).await {
            Ok(p) => p,
            // Already there (a stale cache): nothing to report.
            Err(e) if is_already_exists(&e) => return Err(e.into()),
            Err(e) => {
                let e = Error::from(e);
                self.pod_event("create", set, &name, Some(&e));
                return Err(e);
            }
        };
        if let Err(e) = self.fix_claims(set, &CachedPod::from(created)).await {
            self.pod_event("update", set, &name, Some(&e));
            return Err(e);
        }
        self.pod_event("create", set, &name, None);
        Ok(())
    }

    /// Creates the pod's claims that do not exist; a claim being deleted
    /// is an error (the pod must wait for it to go).
    async fn create_claims(&self, set: &StatefulSet, pod: &CachedPod) -> Result<(), Error> {
        let Some(ord) = ordinal(pod) else { return Ok(()) };
        let ns = set.namespace().unwrap_or_default();
        let pod_name = pod.name_any();
        let mut errors = Vec::new();
        for (_, claim) in claims_for(set, ord) {
            let claim_name = claim.name_any();
            match self.claims.get(&ns, &claim_name) {
                Some(existing) if existing.metadata.deletion_timestamp.is_some() => {
                    errors.push(format!("pvc {claim_name} is being deleted"));
                }
                Some(_) => {}
                None => match self.claims_api(&ns).create(&PostParams::default(), &claim).await {
                    Ok(_) => self.claim_event(set, &pod_name, &claim_name, None),
                    Err(e) if is_already_exists(&e) => {
                        errors.push(format!("failed to create PVC {claim_name}: {e}"));
                    }
                    Err(e) => {
                        let e = Error::from(e);
                        self.claim_event(set, &pod_name, &claim_name, Some(&e));
                        errors.push(format!("failed to create PVC {claim_name}: {e}"));
                    }
                },
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::other(errors.join(", ")))
        }
    }

    /// Makes the pod's claims' owners follow the retention policy.
    async fn fix_claims(&self, set: &StatefulSet, pod: &CachedPod) -> Result<(), Error> {
        let Some(ord) = ordinal(pod) else { return Ok(()) };
        let ns = set.namespace().unwrap_or_default();
        for (_, template) in claims_for(set, ord) {
            let name = template.name_any();
            let Some(claim) = self.claims.get(&ns, &name) else {
                // Not seen yet: the next round picks it up.
                continue;
            };
            if has_unexpected_controller(&claim, set, pod) {
                self.recorder.record(
                    reference(set),
                    EventType::Warning,
                    "ConflictingController",
                    "Update",
                    format!(
                        "PersistentVolumeClaim {name} has a conflicting OwnerReference that acts as a manging controller, the retention policy is ignored for this claim"
                    ),
                );
            }
            if claim_owner_up_to_date(&claim, set, pod) {
                continue;
            }
            let refs = updated_claim_refs(&claim, set, pod);
            let patch = owner_refs_patch(&claim.metadata, &refs);
            self.claims_api(&ns)
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| {
                    Error::other(format!(
                        "could not update claim {name} for delete policy ownerRefs: {e}"
                    ))
                })?;
        }
        Ok(())
    }

    /// Restores the pod's identity and storage (and its claims' owners),
    /// retrying on conflict with a fresh read. The update writes the whole
    /// pod, so it starts from a live read, not the cached pod (which holds
    /// only what controllers read).
    async fn repair_pod(&self, set: &StatefulSet, pod: &Arc<CachedPod>) -> Result<(), Error> {
        let ns = set.namespace().unwrap_or_default();
        let name = pod.name_any();
        let api = self.pods(&ns);
        let mut current = match api.get(&name).await {
            Ok(p) => p,
            // Gone since the cache saw it: the next sync replaces it.
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut attempted = false;
        let mut result = Ok(());
        for _ in 0..5 {
            let mut changed = false;
            if !identity_matches(set, &CachedPod::from(&current)) {
                update_identity(set, &mut current);
                changed = true;
            }
            if !storage_matches(set, &CachedPod::from(&current)) {
                update_storage(set, &mut current);
                changed = true;
                if let Err(e) = self.create_claims(set, &CachedPod::from(&current)).await {
                    self.pod_event("update", set, &name, Some(&e));
                    return Err(e);
                }
            }
            if let Err(e) = self.fix_claims(set, &CachedPod::from(&current)).await {
                self.pod_event("update", set, &name, Some(&e));
                return Err(e);
            }
            if !changed {
                return Ok(());
            }
            attempted = true;
            match api.replace(&name, &PostParams::default(), &current).await {
                Ok(_) => {
                    result = Ok(());
                    break;
                }
                Err(e) if is_conflict(&e) => {
                    result = Err(Error::from(e));
                    match api.get(&name).await {
                        Ok(fresh) => current = fresh,
                        Err(e) => {
                            result = Err(e.into());
                            break;
                        }
                    }
                }
                Err(e) => {
                    result = Err(e.into());
                    break;
                }
            }
        }
        if attempted {
            self.pod_event("update", set, &name, result.as_ref().err());
        }
        result
    }

    async fn delete_pod(&self, set: &StatefulSet, pod: &CachedPod) -> Result<(), Error> {
        let ns = set.namespace().unwrap_or_default();
        let name = pod.name_any();
        match self.pods(&ns).delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                self.pod_event("delete", set, &name, None);
                Ok(())
            }
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => {
                let e = Error::from(e);
                self.pod_event("delete", set, &name, Some(&e));
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::title;

    #[test]
    fn verbs_become_reasons() {
        assert_eq!(format!("Successful{}", title("create")), "SuccessfulCreate");
        assert_eq!(format!("Failed{}", title("delete")), "FailedDelete");
        assert_eq!(title(""), "");
    }
}
