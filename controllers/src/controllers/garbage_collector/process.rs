//! The collector's two workers (upstream `attemptToDeleteItem` and
//! `attemptToOrphanWorker`), deciding on live reads of the item and of
//! each of its owners.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::core::PartialObjectMeta;
use serde_json::json;

use super::graph::{FOREGROUND_DELETION, Identity, ORPHAN};
use super::{GarbageCollector, GraphEvent, NAME};
use crate::error::{Error, is_conflict, is_not_found};
use crate::runner::Action;

/// How an item's owner reference resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OwnerState {
    /// The owner exists and is not waiting for its dependents.
    Solid,
    /// The owner is gone (or replaced by another object of the same name).
    Dangling,
    /// The owner is being deleted in the foreground.
    WaitingForDependents,
}

const MAX_CONFLICT_RETRIES: usize = 5;

impl GarbageCollector {
    /// The dynamic API and whether the resource is namespaced.
    fn api_for(&self, id: &Identity) -> Result<Api<DynamicObject>, Error> {
        let mapper = self.mapper();
        let r = mapper.resource_for(&id.api_version, &id.kind).ok_or_else(|| {
            Error::other(format!(
                "unable to map {}, Kind={} to a resource",
                id.api_version, id.kind
            ))
        })?;
        Ok(if r.namespaced {
            Api::namespaced_with(self.client.clone(), &id.namespace, &r.resource)
        } else {
            Api::all_with(self.client.clone(), &r.resource)
        })
    }

    async fn get_live(&self, id: &Identity) -> Result<Option<PartialObjectMeta<DynamicObject>>, Error> {
        match self.api_for(id)?.get_metadata(&id.name).await {
            Ok(o) => Ok(Some(o)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn classify(&self, item: &Identity, owner: &OwnerReference) -> Result<OwnerState, Error> {
        let id = Identity {
            api_version: owner.api_version.clone(),
            kind: owner.kind.clone(),
            namespace: item.namespace.clone(),
            name: owner.name.clone(),
            uid: owner.uid.clone(),
        };
        let live = self.get_live(&id).await?;
        Ok(match live {
            Some(o) if o.metadata.uid.as_deref() == Some(owner.uid.as_str()) => {
                let foreground = o.metadata.finalizers.iter().flatten().any(|f| f == FOREGROUND_DELETION);
                if o.metadata.deletion_timestamp.is_some() && foreground {
                    OwnerState::WaitingForDependents
                } else {
                    OwnerState::Solid
                }
            }
            _ => OwnerState::Dangling,
        })
    }

    /// Re-examines one node: deletes it when none of its owners remain
    /// (or they wait for it), drops references to owners that are gone,
    /// and finishes foreground deletions.
    pub async fn attempt_to_delete_item(&self, uid: &str) -> Result<Action, Error> {
        let Some(node) = self.graph().get(uid).cloned() else {
            return Ok(Action::Done);
        };
        if node.being_deleted && !node.deleting_dependents {
            return Ok(Action::Done);
        }
        let latest = match self.get_live(&node.identity).await? {
            Some(l) if l.metadata.uid.as_deref() == Some(uid) => l,
            _ => {
                // Gone (or replaced): as if its delete event arrived.
                self.handle(GraphEvent::Delete(uid.to_string()));
                return Ok(Action::Done);
            }
        };
        if node.virtual_node {
            // It exists; its monitor will report it.
            return Ok(Action::Done);
        }
        if node.deleting_dependents {
            return self.process_deleting_dependents(&node.identity).await;
        }
        let owners = latest.metadata.owner_references.clone().unwrap_or_default();
        if owners.is_empty() {
            return Ok(Action::Done);
        }
        let mut solid = Vec::new();
        let mut dangling = Vec::new();
        let mut waiting = Vec::new();
        for o in &owners {
            match self.classify(&node.identity, o).await? {
                OwnerState::Solid => solid.push(o.clone()),
                OwnerState::Dangling => dangling.push(o.clone()),
                OwnerState::WaitingForDependents => waiting.push(o.clone()),
            }
        }
        let api = self.api_for(&node.identity)?;
        if !solid.is_empty() {
            if dangling.is_empty() && waiting.is_empty() {
                return Ok(Action::Done);
            }
            // Keep the item for its solid owners; forget the others.
            let gone: Vec<&str> = dangling.iter().chain(&waiting).map(|o| o.uid.as_str()).collect();
            let kept: Vec<OwnerReference> = owners
                .iter()
                .filter(|o| !gone.contains(&o.uid.as_str()))
                .cloned()
                .collect();
            self.patch_owner_refs(&api, &node.identity.name, &latest, &kept).await?;
            return Ok(Action::Done);
        }
        let has_dependents = !self.graph().dependents(uid).is_empty();
        let policy = if !waiting.is_empty() && has_dependents {
            PropagationPolicy::Foreground
        } else if latest.metadata.finalizers.iter().flatten().any(|f| f == ORPHAN) {
            PropagationPolicy::Orphan
        } else if latest
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == FOREGROUND_DELETION)
        {
            PropagationPolicy::Foreground
        } else {
            PropagationPolicy::Background
        };
        tracing::info!(controller = NAME, kind = %node.identity.kind, namespace = %node.identity.namespace,
            name = %node.identity.name, ?policy, "deleting object whose owners are gone or waiting");
        let dp = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&node.identity.name, &dp).await {
            Ok(_) => Ok(Action::Done),
            Err(e) if is_not_found(&e) => Ok(Action::Done),
            Err(e) => Err(e.into()),
        }
    }

    /// A foreground deletion: once no dependent blocks it, remove the
    /// `foregroundDeletion` finalizer; until then, make sure they are
    /// being deleted.
    async fn process_deleting_dependents(&self, id: &Identity) -> Result<Action, Error> {
        let blocking: Vec<(String, bool)> = self
            .graph()
            .blocking_dependents(&id.uid)
            .iter()
            .map(|d| (d.identity.uid.clone(), d.deleting_dependents))
            .collect();
        if blocking.is_empty() {
            self.remove_finalizer(id, FOREGROUND_DELETION).await?;
            return Ok(Action::Done);
        }
        for (uid, deleting) in blocking {
            if !deleting {
                self.attempt_to_delete.add(uid);
            }
        }
        Ok(Action::Done)
    }

    /// Orphans the dependents of an owner with the `orphan` finalizer,
    /// then removes the finalizer.
    pub async fn attempt_to_orphan_item(&self, uid: &str) -> Result<Action, Error> {
        let Some(node) = self.graph().get(uid).cloned() else {
            return Ok(Action::Done);
        };
        let dependents: Vec<Identity> = self
            .graph()
            .dependents(uid)
            .iter()
            .map(|d| d.identity.clone())
            .collect();
        tracing::debug!(controller = NAME, owner = %node.identity.name, dependents = dependents.len(), "orphaning dependents");
        for dep in dependents {
            self.remove_owner_ref(&dep, uid).await?;
        }
        self.remove_finalizer(&node.identity, ORPHAN).await?;
        Ok(Action::Done)
    }

    async fn patch_owner_refs(
        &self,
        api: &Api<DynamicObject>,
        name: &str,
        latest: &PartialObjectMeta<DynamicObject>,
        refs: &[OwnerReference],
    ) -> Result<(), Error> {
        let patch = json!({"metadata": {
            "ownerReferences": refs,
            "uid": latest.metadata.uid,
            "resourceVersion": latest.metadata.resource_version,
        }});
        match api
            .patch_metadata(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn remove_owner_ref(&self, dep: &Identity, owner_uid: &str) -> Result<(), Error> {
        let api = self.api_for(dep)?;
        for _ in 0..MAX_CONFLICT_RETRIES {
            let Some(latest) = self.get_live(dep).await? else {
                return Ok(());
            };
            let refs = latest.metadata.owner_references.clone().unwrap_or_default();
            if !refs.iter().any(|r| r.uid == owner_uid) {
                return Ok(());
            }
            let kept: Vec<OwnerReference> = refs.into_iter().filter(|r| r.uid != owner_uid).collect();
            match self.patch_owner_refs(&api, &dep.name, &latest, &kept).await {
                Err(Error::Api(e)) if is_conflict(&e) => continue,
                other => return other,
            }
        }
        Err(Error::other(format!(
            "too many conflicts orphaning {}/{}",
            dep.namespace, dep.name
        )))
    }

    async fn remove_finalizer(&self, id: &Identity, finalizer: &str) -> Result<(), Error> {
        let api = self.api_for(id)?;
        for _ in 0..MAX_CONFLICT_RETRIES {
            let Some(latest) = self.get_live(id).await? else {
                return Ok(());
            };
            if latest.metadata.uid.as_deref() != Some(id.uid.as_str()) {
                return Ok(());
            }
            let finalizers = latest.metadata.finalizers.clone().unwrap_or_default();
            if !finalizers.iter().any(|f| f == finalizer) {
                return Ok(());
            }
            let kept: Vec<String> = finalizers.into_iter().filter(|f| f != finalizer).collect();
            let patch = json!({"metadata": {"finalizers": kept, "resourceVersion": latest.metadata.resource_version}});
            match api
                .patch_metadata(&id.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    tracing::info!(controller = NAME, kind = %id.kind, namespace = %id.namespace, name = %id.name, finalizer, "removed finalizer");
                    return Ok(());
                }
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(e) if is_conflict(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::other(format!(
            "too many conflicts removing {finalizer} from {}/{}",
            id.namespace, id.name
        )))
    }
}
