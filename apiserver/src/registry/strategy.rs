//! Per-kind behaviour plugged into the generic store, named after
//! upstream's `RESTCreateStrategy`/`RESTUpdateStrategy`: defaulting and
//! resets before create and update, validation, and graceful deletion.
//!
//! Most kinds need only data ([`KindTraits`]); kinds with more behaviour
//! implement [`Strategy`] themselves in `registry/kinds/`.

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
}

/// A strategy made only of [`KindTraits`].
#[derive(Debug, Clone, Copy, Default)]
pub struct GenericStrategy(pub KindTraits);

impl Strategy for GenericStrategy {
    fn traits(&self) -> KindTraits {
        self.0
    }
}
