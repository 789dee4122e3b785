//! Per-kind behaviour plugged into the generic store, named after
//! upstream's `RESTCreateStrategy`/`RESTUpdateStrategy`: defaulting and
//! resets before create and update, validation, and graceful deletion.
//!
//! Most kinds need only data ([`KindTraits`]); kinds with more behaviour
//! implement [`Strategy`] themselves in `registry/kinds/`.

use futures::future::BoxFuture;
use rkube_storage::Store;

use crate::status::ApiError;
use crate::validation::FieldErrors;
use crate::validation::object_meta::NameRule;

use super::object::Object;

/// Data-only facts about a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindTraits {
    /// How names are validated.
    pub name_rule: NameRule,
    /// Whether `metadata.generation` is set to 1 on create and bumped when
    /// anything but metadata and status changes.
    pub tracks_generation: bool,
}

impl Default for KindTraits {
    fn default() -> Self {
        KindTraits {
            name_rule: NameRule::Dns1123Subdomain,
            tracks_generation: false,
        }
    }
}

/// Per-kind behaviour. Every method has the generic default.
pub trait Strategy: Send + Sync + 'static {
    /// Data-only facts.
    fn traits(&self) -> KindTraits {
        KindTraits::default()
    }

    /// Defaults and resets fields of a new object (after the generic store
    /// has filled uid, timestamps and reset status).
    fn prepare_for_create(&self, _obj: &mut Object) {}

    /// Whether `status` sent with a create is dropped (most kinds); a Node
    /// registers with its status.
    fn resets_status_on_create(&self) -> bool {
        true
    }

    /// Kind-specific validation of a new object (metadata is validated by
    /// the generic store).
    fn validate(&self, _obj: &Object) -> FieldErrors {
        FieldErrors::new()
    }

    /// Defaults and resets fields of an updated object; `old` is the stored one.
    fn prepare_for_update(&self, _new: &mut Object, _old: &Object) {}

    /// Kind-specific validation of an update.
    fn validate_update(&self, new: &Object, _old: &Object) -> FieldErrors {
        self.validate(new)
    }

    /// Validation of an update through `target` (the main resource or a
    /// subresource); the kinds with subresource rules of their own
    /// (ephemeral containers, CSR approval) override it.
    fn validate_update_of(&self, _target: super::store::UpdateTarget, new: &Object, old: &Object) -> FieldErrors {
        self.validate_update(new, old)
    }

    /// Whether a marked object must stay until something else finishes it
    /// (a namespace with `spec.finalizers` left), beyond its metadata
    /// finalizers.
    fn pending_finalization(&self, _obj: &Object) -> bool {
        false
    }

    /// Changes made when deletion of an object begins (a namespace's phase
    /// becomes Terminating).
    fn prepare_for_delete(&self, _obj: &mut Object) {}

    /// Graceful deletion: `Some(seconds)` when the object should only be
    /// marked for deletion with that grace period (pods on a node); `None`
    /// to delete it at once. `requested` is the client's gracePeriodSeconds.
    fn graceful_delete_period(&self, _obj: &Object, _requested: Option<i64>) -> Option<i64> {
        None
    }

    /// Resources the kind's objects hold outside themselves (a Service's
    /// ClusterIP and node ports), reserved and released by the generic
    /// store around its storage writes.
    fn allocator(&self) -> Option<&dyn Allocator> {
        None
    }
}

/// What an [`Allocator`] reserved for one write: storage keys it created,
/// removed again by [`Allocator::revert`] when the write fails.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub keys: Vec<String>,
}

/// Allocation of resources outside the object (upstream's service REST
/// allocation transactions). The generic store calls [`allocate`] after
/// validation and before the storage write, [`revert`] when that write
/// fails, and [`release`] after a successful update or delete.
///
/// [`allocate`]: Allocator::allocate
/// [`revert`]: Allocator::revert
/// [`release`]: Allocator::release
pub trait Allocator: Send + Sync {
    /// Reserves what `new` needs and fills the fields it left empty; `old`
    /// is the stored object on update. With `dry_run`, requests are checked
    /// and fields filled but nothing is reserved.
    fn allocate<'a>(
        &'a self,
        storage: &'a dyn Store,
        new: &'a mut Object,
        old: Option<&'a Object>,
        dry_run: bool,
    ) -> BoxFuture<'a, Result<Reservation, ApiError>>;

    /// Undoes a reservation whose write failed.
    fn revert<'a>(&'a self, storage: &'a dyn Store, reservation: Reservation) -> BoxFuture<'a, ()>;

    /// After a successful write: releases what `old` held that `new` no
    /// longer holds (`new` is `None` when the object is gone).
    fn release<'a>(&'a self, storage: &'a dyn Store, old: &'a Object, new: Option<&'a Object>) -> BoxFuture<'a, ()>;
}

/// A strategy made only of [`KindTraits`].
#[derive(Debug, Clone, Copy, Default)]
pub struct GenericStrategy(pub KindTraits);

impl Strategy for GenericStrategy {
    fn traits(&self) -> KindTraits {
        self.0
    }
}

/// Helpers for the kinds' strategy tests.
#[cfg(test)]
pub mod testing {
    use serde_json::Value;

    use super::Strategy;
    use crate::registry::object::Object;

    /// `body` (a JSON object) as a new object after `strategy`'s create
    /// defaults.
    pub fn prepared<S: Strategy + ?Sized>(strategy: &S, body: Value) -> Object {
        let Value::Object(mut obj) = body else {
            panic!("a test body must be a JSON object, got {body}");
        };
        strategy.prepare_for_create(&mut obj);
        obj
    }

    /// The create validation messages of `body` after its defaults.
    pub fn create_messages<S: Strategy + ?Sized>(strategy: &S, body: Value) -> Vec<String> {
        let obj = prepared(strategy, body);
        strategy.validate(&obj).iter().map(ToString::to_string).collect()
    }
}
