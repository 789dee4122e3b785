//! The generic store: create, get, update and delete for any kind, over
//! [`rkube_storage::Store`], with the per-kind [`Strategy`] plugged in
//! (upstream's `registry/generic/registry/store.go`, our own code).
//!
//! Objects are stored as JSON without `metadata.resourceVersion`; on every
//! read the resourceVersion is the storage `mod_revision`.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use rkube_storage::{KeyValue, StorageError, Store};
use serde_json::Value;

use crate::resources::ResourceInfo;
use crate::status::{ApiError, GroupResource};
use crate::validation::object_meta;

use super::cache::{Cache, ResourceCache};
use super::object::{self, Object};
use super::stored_form;
use super::strategy::{Reservation, Strategy};

/// How often a conflicting read-modify-write is retried.
const MAX_UPDATE_RETRIES: usize = 16;
/// How often a create with `generateName` is retried on a name clash.
const MAX_GENERATE_NAME_RETRIES: usize = 8;

/// Options of create.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub dry_run: bool,
}

/// Which part of an object an update may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpdateTarget {
    /// The main resource: `status` changes are ignored.
    #[default]
    Main,
    /// The `status` subresource: only `status` changes.
    Status,
    /// The namespaces' `finalize` subresource: only `spec.finalizers` changes.
    Finalize,
    /// The pods' `ephemeralcontainers` subresource: only
    /// `spec.ephemeralContainers` changes.
    EphemeralContainers,
    /// The CertificateSigningRequests' `approval` subresource: only
    /// `status.conditions` changes.
    Approval,
}

/// What a create wrote.
#[derive(Debug)]
pub struct Created {
    /// The object, with its resourceVersion.
    pub object: Object,
    /// Its stored encoding (none on a dry run).
    pub stored: Option<stored_form::Encoded>,
}

impl Created {
    /// The object's JSON as stored with its resourceVersion set: what
    /// serializing [`Created::object`] gives, from the stored bytes.
    pub fn json(&self) -> Option<Vec<u8>> {
        let rv = object::meta_str(&self.object, "resourceVersion");
        self.stored.as_ref()?.with_resource_version(rv).ok()
    }
}

/// Options of update.
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    pub dry_run: bool,
    pub target: UpdateTarget,
}

/// Options of delete (`metav1.DeleteOptions`).
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub dry_run: bool,
    pub grace_period_seconds: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    /// `Orphan`, `Background` or `Foreground`.
    pub propagation_policy: Option<String>,
}

/// What a delete did.
#[derive(Debug, Clone)]
pub enum DeleteOutcome {
    /// The object is gone; this was its last state.
    Deleted(Object),
    /// The object was marked for deletion (finalizers or a grace period)
    /// and still exists in this state.
    Pending(Object),
}

/// Validating admission of a write (upstream's `createValidation` /
/// `updateValidation`): called with the object about to be written, and
/// the stored one on update, after the strategy prepared and validated it
/// and before anything is reserved or written.
pub trait WriteAdmission: Send + Sync {
    fn validate<'a>(
        &'a self,
        new: &'a Object,
        old: Option<&'a Object>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ApiError>> + Send + 'a>>;

    /// Mutating admission of an update inside the retry loop (upstream runs
    /// it as one of the update's object transformers): `new` is the object
    /// computed from the stored `old` (a PATCH's result), and may be
    /// changed. Runs again on every conflict retry, against the new stored
    /// object. The default does nothing.
    fn admit<'a>(
        &'a self,
        new: &'a mut Object,
        old: &'a Object,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ApiError>> + Send + 'a>> {
        let _ = (new, old);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// The generic store of one resource.
pub struct GenericStore {
    pub info: Arc<ResourceInfo>,
    storage: Arc<dyn Store>,
    strategy: Arc<dyn Strategy>,
    prefix: String,
    has_status: bool,
    cache: OnceLock<(Arc<Cache>, Arc<ResourceCache>)>,
}

impl GenericStore {
    pub fn new(info: Arc<ResourceInfo>, storage: Arc<dyn Store>, strategy: Arc<dyn Strategy>) -> Self {
        let group = if info.group.is_empty() {
            "core"
        } else {
            info.group.as_str()
        };
        let prefix = format!("/{group}/{}/", info.resource);
        let has_status = info.subresource("status").is_some();
        GenericStore {
            info,
            storage,
            strategy,
            prefix,
            has_status,
            cache: OnceLock::new(),
        }
    }

    /// The storage prefix of every object of this resource (`/apps/deployments/`).
    pub fn storage_prefix(&self) -> &str {
        &self.prefix
    }

    /// Serves lists and watches from `cache` from now on.
    pub fn set_cache(&self, root: Arc<Cache>, cache: Arc<ResourceCache>) {
        let _ = self.cache.set((root, cache));
    }

    /// The watch cache, once it is filled.
    pub fn cache(&self) -> Option<(Arc<Cache>, Arc<ResourceCache>)> {
        self.cache.get().filter(|(root, _)| root.is_ready()).cloned()
    }

    /// `group/resource` for messages.
    pub fn gr(&self) -> GroupResource<'_> {
        GroupResource {
            group: &self.info.group,
            resource: &self.info.resource,
        }
    }

    /// The storage prefix of all objects (`/apps/deployments/`), or of one
    /// namespace's objects.
    pub fn prefix(&self, namespace: &str) -> String {
        if self.info.namespaced && !namespace.is_empty() {
            format!("{}{namespace}/", self.prefix)
        } else {
            self.prefix.clone()
        }
    }

    /// The storage key of one object.
    pub fn key(&self, namespace: &str, name: &str) -> String {
        if self.info.namespaced {
            format!("{}{namespace}/{name}", self.prefix)
        } else {
            format!("{}{name}", self.prefix)
        }
    }

    pub fn storage(&self) -> &Arc<dyn Store> {
        &self.storage
    }

    /// Decodes a stored value and sets its resourceVersion.
    pub fn decode(&self, kv: &KeyValue) -> Result<Object, ApiError> {
        let mut obj: Object =
            serde_json::from_slice(&kv.value).map_err(|e| ApiError::internal(format!("decoding {}: {e}", kv.key)))?;
        object::set_meta(
            &mut obj,
            "resourceVersion",
            Some(Value::String(kv.mod_revision.to_string())),
        );
        Ok(obj)
    }

    fn encode(&self, obj: &Object) -> Result<Bytes, ApiError> {
        stored_form::to_vec(obj).map(Bytes::from).map_err(ApiError::internal)
    }

    fn storage_err(&self, e: StorageError, name: &str) -> ApiError {
        ApiError::from_storage(e, self.gr(), name)
    }

    /// Reads one object.
    pub async fn get(&self, namespace: &str, name: &str) -> Result<Object, ApiError> {
        match self.storage.get(&self.key(namespace, name), None).await {
            Ok(Some(kv)) => self.decode(&kv),
            Ok(None) => Err(ApiError::not_found(self.gr(), name)),
            Err(e) => Err(self.storage_err(e, name)),
        }
    }

    fn invalid(&self, obj: &Object, errs: &crate::validation::FieldErrors) -> ApiError {
        ApiError::invalid(&self.info.group, &self.info.kind, object::name(obj), errs)
    }

    /// Creates an object in `namespace` (ignored for cluster-scoped kinds).
    pub async fn create(&self, namespace: &str, obj: Object, opts: &CreateOptions) -> Result<Object, ApiError> {
        self.create_admitted(namespace, obj, opts, None).await
    }

    /// [`Self::create`] with validating admission before the write.
    pub async fn create_admitted(
        &self,
        namespace: &str,
        obj: Object,
        opts: &CreateOptions,
        admission: Option<&dyn WriteAdmission>,
    ) -> Result<Object, ApiError> {
        self.create_encoded(namespace, obj, opts, admission)
            .await
            .map(|c| c.object)
    }

    /// [`Self::create_admitted`], also giving the stored encoding of what
    /// it wrote (a create response is that encoding with the
    /// resourceVersion spliced in, not a second encoding of the object).
    pub async fn create_encoded(
        &self,
        namespace: &str,
        mut obj: Object,
        opts: &CreateOptions,
        admission: Option<&dyn WriteAdmission>,
    ) -> Result<Created, ApiError> {
        // Namespace: from the URL; the body may repeat it but not contradict it.
        if self.info.namespaced {
            let body_ns = object::namespace(&obj).to_string();
            if !body_ns.is_empty() && body_ns != namespace {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            object::set_meta(&mut obj, "namespace", Some(Value::String(namespace.to_string())));
        } else {
            object::set_meta(&mut obj, "namespace", None);
        }
        obj.insert("apiVersion".into(), Value::String(self.info.api_version()));
        obj.insert("kind".into(), Value::String(self.info.kind.clone()));

        // System fields are the server's.
        let traits = self.strategy.traits();
        for field in [
            "uid",
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            object::set_meta(&mut obj, field, None);
        }
        object::set_meta(
            &mut obj,
            "creationTimestamp",
            Some(Value::String(object::now_rfc3339())),
        );
        object::set_meta(&mut obj, "uid", Some(Value::String(object::new_uid())));
        if traits.tracks_generation {
            object::set_meta(&mut obj, "generation", Some(Value::from(1)));
        } else {
            object::set_meta(&mut obj, "generation", None);
        }
        if self.has_status && self.strategy.resets_status_on_create() {
            obj.remove("status");
        }

        // Like upstream, a generated name is chosen before the strategy
        // prepares and validates the object (a Job's labels carry it), and
        // a clash starts over from the request with a new name.
        let generate = object::name(&obj).is_empty() && !object::meta_str(&obj, "generateName").is_empty();
        let mut request = obj;
        let allocator = self.strategy.allocator();
        for attempt in 0.. {
            // Only a generated name is retried (from the request): else
            // the one attempt takes the request itself.
            let mut obj = if generate {
                request.clone()
            } else {
                std::mem::take(&mut request)
            };
            if generate {
                let name = object::generate_name(object::meta_str(&obj, "generateName"));
                object::set_meta(&mut obj, "name", Some(Value::String(name)));
            }
            self.strategy.prepare_for_create(&mut obj);
            let mut errs = object_meta::validate(object::meta(&obj), self.info.namespaced, traits.name_rule);
            errs.extend(self.strategy.validate(&obj));
            if !errs.is_empty() {
                return Err(self.invalid(&obj, &errs));
            }
            if let Some(admission) = admission {
                admission.validate(&obj, None).await?;
            }
            let name = object::name(&obj).to_string();
            // `obj` is this attempt's own copy: a retry starts from the request.
            let mut candidate = obj;
            let reservation = match allocator {
                Some(a) => a.allocate(&*self.storage, &mut candidate, None, opts.dry_run).await?,
                None => Reservation::default(),
            };
            if opts.dry_run {
                return Ok(Created {
                    object: candidate,
                    stored: None,
                });
            }
            let key = self.key(namespace, &name);
            let (written, stored) = match stored_form::encode(&candidate) {
                Ok(stored) => (self.storage.create(&key, stored.bytes.clone()).await, stored),
                Err(e) => {
                    self.revert(reservation).await;
                    return Err(ApiError::internal(e));
                }
            };
            match written {
                Ok(rev) => {
                    object::set_meta(&mut candidate, "resourceVersion", Some(Value::String(rev.to_string())));
                    return Ok(Created {
                        object: candidate,
                        stored: Some(stored),
                    });
                }
                Err(StorageError::AlreadyExists { .. }) if generate && attempt + 1 < MAX_GENERATE_NAME_RETRIES => {
                    self.revert(reservation).await;
                    continue;
                }
                Err(e) => {
                    self.revert(reservation).await;
                    return Err(self.storage_err(e, &name));
                }
            }
        }
        unreachable!("the loop returns")
    }

    /// Kinds whose status updates may not change labels upstream.
    fn status_keeps_labels(&self) -> bool {
        self.info.group == "apps"
            && matches!(
                self.info.resource.as_str(),
                "deployments" | "replicasets" | "statefulsets" | "daemonsets"
            )
    }

    /// Undoes an allocation whose write failed.
    async fn revert(&self, reservation: Reservation) {
        if let Some(a) = self.strategy.allocator()
            && reservation != Reservation::default()
        {
            a.revert(&*self.storage, reservation).await;
        }
    }

    /// Releases what `old` held and `new` (None: deleted) no longer holds.
    async fn release(&self, old: &Object, new: Option<&Object>) {
        if let Some(a) = self.strategy.allocator() {
            a.release(&*self.storage, old, new).await;
        }
    }

    /// Applies the generic update rules to `new` given the stored `old`:
    /// system fields kept, status or main fields kept depending on the
    /// target, generation bumped on spec changes, then the strategy.
    fn prepare_update(&self, new: &mut Object, old: &Object, target: UpdateTarget) -> Result<(), ApiError> {
        new.insert("apiVersion".into(), Value::String(self.info.api_version()));
        new.insert("kind".into(), Value::String(self.info.kind.clone()));
        // Fields a client cannot change through update.
        let old_meta = object::meta(old);
        for field in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            object::set_meta(new, field, old_meta.get(field).cloned());
        }
        if object::namespace(new).is_empty() && self.info.namespaced {
            object::set_meta(new, "namespace", old_meta.get("namespace").cloned());
        }
        match target {
            UpdateTarget::Main => {
                if self.has_status {
                    match old.get("status") {
                        Some(s) => new.insert("status".into(), s.clone()),
                        None => new.remove("status"),
                    };
                }
            }
            // A subresource changes only its part of the stored object.
            UpdateTarget::Finalize => only_from_request(new, old, &[&["spec", "finalizers"]]),
            UpdateTarget::Approval => only_from_request(new, old, &[&["status", "conditions"]]),
            UpdateTarget::EphemeralContainers => only_from_request(new, old, &[&["spec", "ephemeralContainers"]]),
            // Status changes through the status subresource, and, as
            // upstream's status strategies allow, annotations and labels
            // (workload controllers record revisions there); the apps
            // workloads keep their labels, like upstream.
            UpdateTarget::Status if self.status_keeps_labels() => {
                only_from_request(new, old, &[&["status"], &["metadata", "annotations"]])
            }
            UpdateTarget::Status => only_from_request(
                new,
                old,
                &[&["status"], &["metadata", "annotations"], &["metadata", "labels"]],
            ),
        }
        // The strategy defaults first, so that leaving out defaulted fields
        // is not a change; then any change outside metadata and status bumps
        // the generation once (unless the strategy already did).
        self.strategy.prepare_for_update(new, old);
        if self.strategy.traits().tracks_generation && target == UpdateTarget::Main {
            let old_generation = old_meta.get("generation").and_then(Value::as_i64).unwrap_or(0);
            let new_generation = object::meta(new).get("generation").and_then(Value::as_i64).unwrap_or(0);
            if !generation_fields(new).eq(generation_fields(old)) && new_generation == old_generation {
                object::set_meta(new, "generation", Some(Value::from(old_generation + 1)));
            }
        }
        let mut errs = object_meta::validate_update(object::meta(new), object::meta(old));
        if errs.is_empty() {
            errs.extend(object_meta::validate(
                object::meta(new),
                self.info.namespaced,
                self.strategy.traits().name_rule,
            ));
            errs.extend(self.strategy.validate_update_of(target, new, old));
        }
        if !errs.is_empty() {
            return Err(self.invalid(new, &errs));
        }
        Ok(())
    }

    /// Replaces an object (PUT). A resourceVersion in `new` must match the
    /// stored one (409 Conflict otherwise); without one the update is
    /// unconditional.
    pub async fn update(
        &self,
        namespace: &str,
        name: &str,
        new: Object,
        opts: &UpdateOptions,
    ) -> Result<Object, ApiError> {
        self.update_admitted(namespace, name, new, opts, None).await
    }

    /// [`Self::update`] with validating admission before the write.
    pub async fn update_admitted(
        &self,
        namespace: &str,
        name: &str,
        new: Object,
        opts: &UpdateOptions,
        admission: Option<&dyn WriteAdmission>,
    ) -> Result<Object, ApiError> {
        let body_name = object::name(&new);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if self.info.namespaced {
            let body_ns = object::namespace(&new);
            if !body_ns.is_empty() && body_ns != namespace {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
        let expected_rv = object::resource_version(&new).to_string();
        self.update_with_admitted(
            namespace,
            name,
            opts,
            move |_old| {
                let mut obj = new.clone();
                if object::name(&obj).is_empty() {
                    object::set_meta(&mut obj, "name", Some(Value::String(name.to_string())));
                }
                Ok(obj)
            },
            (!expected_rv.is_empty()).then_some(expected_rv.as_str()),
            admission,
        )
        .await
    }

    /// Read-modify-write with conflict retries (upstream's GuaranteedUpdate):
    /// `mutate` gets the stored object and returns the desired one. With
    /// `expected_rv`, the stored object must be at that version.
    pub async fn update_with<F>(
        &self,
        namespace: &str,
        name: &str,
        opts: &UpdateOptions,
        mutate: F,
        expected_rv: Option<&str>,
    ) -> Result<Object, ApiError>
    where
        F: Fn(&Object) -> Result<Object, ApiError>,
    {
        self.update_with_admitted(namespace, name, opts, mutate, expected_rv, None)
            .await
    }

    /// [`Self::update_with`] with admission in each attempt: its mutating
    /// phase ([`WriteAdmission::admit`]) on `mutate`'s result, its validating
    /// phase before the write (on the object as prepared against that
    /// attempt's stored one).
    pub async fn update_with_admitted<F>(
        &self,
        namespace: &str,
        name: &str,
        opts: &UpdateOptions,
        mutate: F,
        expected_rv: Option<&str>,
        admission: Option<&dyn WriteAdmission>,
    ) -> Result<Object, ApiError>
    where
        F: Fn(&Object) -> Result<Object, ApiError>,
    {
        let key = self.key(namespace, name);
        let mut current = match self.storage.get(&key, None).await {
            Ok(Some(kv)) => kv,
            Ok(None) => return Err(ApiError::not_found(self.gr(), name)),
            Err(e) => return Err(self.storage_err(e, name)),
        };
        for _ in 0..MAX_UPDATE_RETRIES {
            if let Some(rv) = expected_rv
                && rv != current.mod_revision.to_string()
            {
                return Err(ApiError::conflict_modified(self.gr(), name));
            }
            let old = self.decode(&current)?;
            let mut new = mutate(&old)?;
            if let Some(admission) = admission {
                admission.admit(&mut new, &old).await?;
            }
            object::set_meta(&mut new, "resourceVersion", None);
            self.prepare_update(&mut new, &old, opts.target)?;
            let unchanged = stored_form::same_except_resource_version(&new, &old);
            // Removing the last finalizer of an object being deleted
            // finishes the deletion.
            let finish_delete = object::is_terminating(&old)
                && object::finalizers(&new).is_empty()
                && !self.strategy.pending_finalization(&new)
                && object::meta(&old)
                    .get("deletionGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    == Some(0);
            if let Some(admission) = admission
                && !finish_delete
                && !unchanged
            {
                admission.validate(&new, Some(&old)).await?;
            }
            let (reservation, unchanged) = match self.strategy.allocator() {
                Some(a) if !finish_delete => {
                    let reservation = a.allocate(&*self.storage, &mut new, Some(&old), opts.dry_run).await?;
                    // Compared again: the allocator may have filled fields.
                    (reservation, stored_form::same_except_resource_version(&new, &old))
                }
                _ => (Reservation::default(), unchanged),
            };
            if opts.dry_run {
                object::set_meta(
                    &mut new,
                    "resourceVersion",
                    Some(Value::String(current.mod_revision.to_string())),
                );
                return Ok(new);
            }
            if !finish_delete && unchanged {
                // Nothing changed: no write, same resourceVersion.
                self.revert(reservation).await;
                return Ok(old);
            }
            let result = if finish_delete {
                self.storage
                    .delete(&key, Some(current.mod_revision))
                    .await
                    .map(|(rev, _)| rev)
            } else {
                match self.encode(&new) {
                    Ok(value) => self.storage.update(&key, value, current.mod_revision).await,
                    Err(e) => {
                        self.revert(reservation).await;
                        return Err(e);
                    }
                }
            };
            if result.is_err() {
                self.revert(reservation).await;
            }
            match result {
                Ok(rev) => {
                    self.release(&old, (!finish_delete).then_some(&new)).await;
                    object::set_meta(&mut new, "resourceVersion", Some(Value::String(rev.to_string())));
                    return Ok(new);
                }
                Err(StorageError::Conflict { current: Some(kv), .. }) if expected_rv.is_none() => current = *kv,
                Err(StorageError::Conflict { .. }) if expected_rv.is_some() => {
                    return Err(ApiError::conflict_modified(self.gr(), name));
                }
                Err(StorageError::Conflict { current: None, .. }) | Err(StorageError::NotFound { .. }) => {
                    return Err(ApiError::not_found(self.gr(), name));
                }
                Err(e) => return Err(self.storage_err(e, name)),
            }
        }
        Err(ApiError::conflict(
            self.gr(),
            name,
            "too many concurrent updates; please try again",
        ))
    }

    /// Deletes an object: at once, or by marking it when it has finalizers,
    /// a foreground/orphan propagation policy, or a grace period.
    pub async fn delete(&self, namespace: &str, name: &str, opts: &DeleteOptions) -> Result<DeleteOutcome, ApiError> {
        let key = self.key(namespace, name);
        for _ in 0..MAX_UPDATE_RETRIES {
            let kv = match self.storage.get(&key, None).await {
                Ok(Some(kv)) => kv,
                Ok(None) => return Err(ApiError::not_found(self.gr(), name)),
                Err(e) => return Err(self.storage_err(e, name)),
            };
            let mut obj = self.decode(&kv)?;
            if let Some(uid) = &opts.precondition_uid
                && uid != object::uid(&obj)
            {
                return Err(ApiError::conflict(
                    self.gr(),
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        object::uid(&obj)
                    ),
                ));
            }
            if let Some(rv) = &opts.precondition_resource_version
                && *rv != kv.mod_revision.to_string()
            {
                return Err(ApiError::conflict(
                    self.gr(),
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        kv.mod_revision
                    ),
                ));
            }

            let mut finalizers = object::finalizers(&obj);
            match opts.propagation_policy.as_deref() {
                Some("Foreground") if !finalizers.iter().any(|f| f == "foregroundDeletion") => {
                    finalizers.push("foregroundDeletion".into());
                }
                Some("Orphan") if !finalizers.iter().any(|f| f == "orphan") => finalizers.push("orphan".into()),
                _ => {}
            }
            let grace = self.strategy.graceful_delete_period(&obj, opts.grace_period_seconds);
            let already_terminating = object::is_terminating(&obj);
            let pending = self.strategy.pending_finalization(&obj);
            let must_mark = !finalizers.is_empty() || pending || grace.is_some_and(|g| g > 0);
            if must_mark {
                let mut changed = false;
                if !already_terminating {
                    self.strategy.prepare_for_delete(&mut obj);
                    let secs = grace.unwrap_or(0);
                    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(secs);
                    object::set_meta(
                        &mut obj,
                        "deletionTimestamp",
                        Some(Value::String(object::format_time(at))),
                    );
                    object::set_meta(&mut obj, "deletionGracePeriodSeconds", Some(Value::from(secs)));
                    changed = true;
                } else if let Some(g) = grace {
                    // A shorter grace period may replace a longer one.
                    let current = object::meta(&obj)
                        .get("deletionGracePeriodSeconds")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    if g < current {
                        object::set_meta(&mut obj, "deletionGracePeriodSeconds", Some(Value::from(g)));
                        changed = true;
                    }
                }
                if finalizers != object::finalizers(&obj) {
                    object::set_meta(&mut obj, "finalizers", Some(Value::from(finalizers.clone())));
                    changed = true;
                }
                let now_zero = object::meta(&obj)
                    .get("deletionGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    == Some(0);
                if !(finalizers.is_empty() && now_zero && !pending) {
                    if changed && !opts.dry_run {
                        match self.storage.update(&key, self.encode(&obj)?, kv.mod_revision).await {
                            Ok(rev) => {
                                object::set_meta(&mut obj, "resourceVersion", Some(Value::String(rev.to_string())))
                            }
                            Err(StorageError::Conflict { .. }) => continue,
                            Err(e) => return Err(self.storage_err(e, name)),
                        }
                    }
                    return Ok(DeleteOutcome::Pending(obj));
                }
            }
            if opts.dry_run {
                return Ok(DeleteOutcome::Deleted(obj));
            }
            match self.storage.delete(&key, Some(kv.mod_revision)).await {
                Ok(_) => {
                    self.release(&obj, None).await;
                    return Ok(DeleteOutcome::Deleted(obj));
                }
                Err(StorageError::Conflict { .. }) => continue,
                Err(StorageError::NotFound { .. }) => return Err(ApiError::not_found(self.gr(), name)),
                Err(e) => return Err(self.storage_err(e, name)),
            }
        }
        Err(ApiError::conflict(
            self.gr(),
            name,
            "too many concurrent updates; please try again",
        ))
    }
}

/// The fields whose change bumps the generation: all but `metadata`,
/// `status`, `apiVersion` and `kind`. In key order (the map is sorted), so
/// comparing two objects' sequences compares them as maps, without a copy.
fn generation_fields(o: &Object) -> impl Iterator<Item = (&String, &Value)> {
    o.iter()
        .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind"))
}

/// Turns the request `new` into the stored `old` with only `paths` taken
/// from the request (removed where the request has none), keeping the
/// request's resourceVersion precondition: what a subresource may change.
fn only_from_request(new: &mut Object, old: &Object, paths: &[&[&str]]) {
    let mut result = old.clone();
    for path in paths {
        let Some((last, parents)) = path.split_last() else {
            continue;
        };
        let value = parents
            .iter()
            .try_fold(&*new, |m, k| m.get(*k).and_then(Value::as_object))
            .and_then(|parent| parent.get(*last))
            .filter(|v| !v.is_null())
            .cloned();
        let mut target = &mut result;
        for k in parents {
            let child = target
                .entry(k.to_string())
                .or_insert_with(|| Value::Object(Default::default()));
            if !child.is_object() {
                *child = Value::Object(Default::default());
            }
            let Value::Object(child) = child else { return };
            target = child;
        }
        match value {
            Some(v) => target.insert(last.to_string(), v),
            None => target.remove(*last),
        };
    }
    let rv = object::resource_version(new).to_string();
    object::set_meta(
        &mut result,
        "resourceVersion",
        if rv.is_empty() { None } else { Some(Value::String(rv)) },
    );
    *new = result;
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
