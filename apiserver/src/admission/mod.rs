//! The admission chain: built-in plugins that see every write after
//! authorization, in upstream's order (`AllOrderedPlugins` in
//! `pkg/kubeapiserver/options/plugins.go`), in two phases like upstream's:
//!
//! - **mutating** ([`Chain::admit`]): run by the handler on a create's
//!   object, and for PUT and PATCH by the store on each attempt's object
//!   with the stored one as old ([`Validation::with_mutation`]), before
//!   the store prepares it (defaults from LimitRanges, the
//!   service account and its token volume, priorities, tolerations, the
//!   default StorageClass, node taints), and the checks upstream makes in
//!   that phase (namespace lifecycle, on create, update and delete);
//! - **validating** ([`Chain::validate`], through [`Validation`], the
//!   store's [`WriteAdmission`]): run by the store on the prepared and
//!   validated object just before the write (LimitRange min/max, the
//!   service account's presence, PodSecurity, whose warnings the handler
//!   returns as `Warning` headers, ResourceQuota, which charges usage to
//!   the quota objects here).
//!
//! Each plugin is one module named for it. Errors are upstream's: mostly
//! `Forbidden` with the plugin's message, built by [`forbidden`] like
//! `admission.NewForbidden` (the object's name, else its generateName).
//! `--enable-admission-plugins` / `--disable-admission-plugins` choose the
//! plugins ([`Chain::from_flags`]); the default set is upstream's.
//!
//! *Architecture Invariant:* plugins read other objects through the
//! registry's stores (lists come from the watch cache), never from storage
//! keys of their own, and write only through a store (ResourceQuota's
//! status).

mod default_storage_class;
mod default_toleration_seconds;
mod limit_ranger;
mod lookups;
mod namespace_lifecycle;
mod namespace_view;
mod node_restriction;
mod pod_security;
mod priority;
pub mod quantity;
mod quota_usage;
mod resource_quota;
mod service_account;
mod taint_nodes_by_condition;
pub mod vap;
pub mod webhook;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

use crate::authn::UserInfo;
use crate::registry::Registry;
use crate::registry::object::{self, Object};
use crate::registry::store::WriteAdmission;
use crate::resources::ResourceInfo;
use crate::status::{ApiError, GroupResource};

pub use lookups::Lookups;

/// The operation a request performs (`admission.Operation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// What a plugin knows about a request (`admission.Attributes`).
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    pub operation: Operation,
    pub user: &'a UserInfo,
    /// The request's namespace; empty for cluster-scoped resources.
    pub namespace: &'a str,
    /// The name in the URL; empty on create.
    pub name: &'a str,
    pub resource: &'a ResourceInfo,
    pub subresource: &'a str,
    /// The stored object, for updates and deletes.
    pub old: Option<&'a Object>,
    pub dry_run: bool,
    /// Reads the plugins share within the request.
    pub lookups: &'a Lookups,
}

impl Attributes<'_> {
    /// Whether the request is about `group`/`resource` itself (no subresource).
    fn is(&self, group: &str, resource: &str) -> bool {
        self.resource.group == group && self.resource.resource == resource && self.subresource.is_empty()
    }

    fn gr(&self) -> GroupResource<'_> {
        GroupResource {
            group: &self.resource.group,
            resource: &self.resource.resource,
        }
    }
}

/// `admission.NewForbidden`: 403 about the request's object, named by the
/// URL's name, else the object's name, else its generateName.
pub fn forbidden(attrs: &Attributes<'_>, obj: Option<&Object>, why: &str) -> ApiError {
    let name = if !attrs.name.is_empty() {
        attrs.name
    } else {
        match obj {
            Some(o) if !object::name(o).is_empty() => object::name(o),
            Some(o) if !object::meta_str(o, "generateName").is_empty() => object::meta_str(o, "generateName"),
            _ => "Unknown",
        }
    };
    ApiError::forbidden(attrs.gr(), name, why)
}

/// The built-in plugins this server has, in upstream's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Plugin {
    NamespaceLifecycle,
    LimitRanger,
    ServiceAccount,
    NodeRestriction,
    TaintNodesByCondition,
    PodSecurity,
    Priority,
    DefaultTolerationSeconds,
    DefaultStorageClass,
    MutatingAdmissionWebhook,
    ValidatingAdmissionPolicy,
    ValidatingAdmissionWebhook,
    ResourceQuota,
}

impl Plugin {
    /// Plugins upstream has off unless `--enable-admission-plugins` names them.
    pub const OFF_BY_DEFAULT: [Plugin; 1] = [Plugin::NodeRestriction];

    /// Every plugin, in the order the chain runs them.
    pub const ALL: [Plugin; 12] = [
        Plugin::NamespaceLifecycle,
        Plugin::LimitRanger,
        Plugin::ServiceAccount,
        Plugin::TaintNodesByCondition,
        Plugin::PodSecurity,
        Plugin::Priority,
        Plugin::DefaultTolerationSeconds,
        Plugin::DefaultStorageClass,
        Plugin::MutatingAdmissionWebhook,
        Plugin::ValidatingAdmissionPolicy,
        Plugin::ValidatingAdmissionWebhook,
        Plugin::ResourceQuota,
    ];

    /// The plugin's upstream name.
    pub fn name(self) -> &'static str {
        match self {
            Plugin::NamespaceLifecycle => "NamespaceLifecycle",
            Plugin::LimitRanger => "LimitRanger",
            Plugin::ServiceAccount => "ServiceAccount",
            Plugin::NodeRestriction => "NodeRestriction",
            Plugin::TaintNodesByCondition => "TaintNodesByCondition",
            Plugin::PodSecurity => "PodSecurity",
            Plugin::Priority => "Priority",
            Plugin::DefaultTolerationSeconds => "DefaultTolerationSeconds",
            Plugin::DefaultStorageClass => "DefaultStorageClass",
            Plugin::MutatingAdmissionWebhook => "MutatingAdmissionWebhook",
            Plugin::ValidatingAdmissionPolicy => "ValidatingAdmissionPolicy",
            Plugin::ValidatingAdmissionWebhook => "ValidatingAdmissionWebhook",
            Plugin::ResourceQuota => "ResourceQuota",
        }
    }
}

/// Upstream plugin names this server accepts in the flags but does not
/// implement (yet); naming them is not an error, as with upstream's
/// registered plugins.
const KNOWN_UNIMPLEMENTED: &[&str] = &[
    "AlwaysAdmit",
    "NamespaceAutoProvision",
    "NamespaceExists",
    "LimitPodHardAntiAffinityTopology",
    "AlwaysPullImages",
    "ImagePolicyWebhook",
    "PodNodeSelector",
    "PodTolerationRestriction",
    "EventRateLimit",
    "ExtendedResourceToleration",
    "StorageObjectInUseProtection",
    "PodGroupProtection",
    "OwnerReferencesPermissionEnforcement",
    "PersistentVolumeClaimResize",
    "RuntimeClass",
    "CertificateApproval",
    "CertificateSigning",
    "ClusterTrustBundleAttest",
    "CertificateSubjectRestriction",
    "DefaultIngressClass",
    "DenyServiceExternalIPs",
    "PodTopologyLabels",
    "MutatingAdmissionPolicy",
    "AlwaysDeny",
];

/// A bad `--enable-admission-plugins` / `--disable-admission-plugins`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainError {
    #[error("enable-admission-plugins plugin {0:?} is unknown")]
    UnknownEnabled(String),
    #[error("disable-admission-plugins plugin {0:?} is unknown")]
    UnknownDisabled(String),
    #[error("{0} in enable-admission-plugins and disable-admission-plugins overlapped")]
    Overlap(String),
}

/// The enabled plugins, in upstream's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    plugins: Vec<Plugin>,
    /// The server's authorizer, for ValidatingAdmissionPolicy's
    /// `authorizer` variable (upstream's plugin initializer hands it over).
    authorizer: vap::AuthorizerSlot,
}

impl Default for Chain {
    /// Upstream's default set: every plugin here is on by default in
    /// kube-apiserver v1.36.
    fn default() -> Self {
        Chain {
            plugins: Plugin::ALL.to_vec(),
            authorizer: Default::default(),
        }
    }
}

impl Chain {
    /// The chain of exactly `plugins` (run in upstream's order whatever the
    /// order given).
    pub fn of(plugins: &[Plugin]) -> Self {
        let mut plugins = plugins.to_vec();
        plugins.sort();
        plugins.dedup();
        Chain {
            plugins,
            authorizer: Default::default(),
        }
    }

    /// This chain with `authorizer` for the policies' `authorizer` checks.
    pub fn with_authorizer(mut self, authorizer: std::sync::Arc<crate::authz::Authorizer>) -> Self {
        self.authorizer = vap::AuthorizerSlot(Some(authorizer));
        self
    }

    /// The default set with `disabled` left out.
    pub fn without(disabled: &[Plugin]) -> Self {
        Chain {
            plugins: Plugin::ALL.into_iter().filter(|p| !disabled.contains(p)).collect(),
            authorizer: Default::default(),
        }
    }

    /// The chain the flags ask for: the default set, plus `enable`, minus
    /// `disable`, like kube-apiserver's (a name in both is an error).
    pub fn from_flags(enable: &[String], disable: &[String]) -> Result<Self, ChainError> {
        let parse = |name: &str, err: fn(String) -> ChainError| -> Result<Option<Plugin>, ChainError> {
            match Plugin::ALL
                .into_iter()
                .chain(Plugin::OFF_BY_DEFAULT)
                .find(|p| p.name() == name)
            {
                Some(p) => Ok(Some(p)),
                None if KNOWN_UNIMPLEMENTED.contains(&name) => Ok(None),
                None => Err(err(name.to_string())),
            }
        };
        for name in enable {
            if disable.contains(name) {
                return Err(ChainError::Overlap(name.clone()));
            }
        }
        let mut disabled = Vec::new();
        for name in disable.iter().filter(|n| !n.is_empty()) {
            disabled.extend(parse(name, ChainError::UnknownDisabled)?);
        }
        let mut chain = Chain::without(&disabled);
        for name in enable.iter().filter(|n| !n.is_empty()) {
            if let Some(p) = parse(name, ChainError::UnknownEnabled)?
                && !chain.plugins.contains(&p)
            {
                chain.plugins.push(p);
            }
        }
        chain.plugins.sort();
        Ok(chain)
    }

    /// The enabled plugins, in order.
    pub fn plugins(&self) -> &[Plugin] {
        &self.plugins
    }

    fn has(&self, p: Plugin) -> bool {
        self.plugins.contains(&p)
    }

    /// The mutating phase on the request object (`None` for deletes), with
    /// upstream's checks of that phase.
    pub async fn admit(
        &self,
        registry: &Registry,
        attrs: &Attributes<'_>,
        mut obj: Option<&mut Object>,
    ) -> Result<(), ApiError> {
        for plugin in &self.plugins {
            let obj = obj.as_deref_mut();
            match (plugin, obj) {
                (Plugin::NamespaceLifecycle, obj) => {
                    namespace_lifecycle::admit(registry, attrs, obj.as_deref()).await?
                }
                (Plugin::LimitRanger, Some(obj)) => limit_ranger::admit(registry, attrs, obj).await?,
                (Plugin::ServiceAccount, Some(obj)) => service_account::admit(registry, attrs, obj).await?,
                // Deletes and evictions here; writes in the validating phase, which knows the old object.
                (Plugin::NodeRestriction, obj) if node_restriction::in_admit_phase(attrs) => {
                    node_restriction::check(registry, attrs, obj.as_deref()).await?
                }
                (Plugin::TaintNodesByCondition, Some(obj)) => taint_nodes_by_condition::admit(attrs, obj),
                (Plugin::Priority, Some(obj)) => priority::admit(registry, attrs, obj).await?,
                (Plugin::DefaultTolerationSeconds, Some(obj)) => default_toleration_seconds::admit(attrs, obj),
                (Plugin::DefaultStorageClass, Some(obj)) => default_storage_class::admit(registry, attrs, obj).await?,
                (Plugin::MutatingAdmissionWebhook, Some(obj)) => webhook::admit(registry, attrs, obj).await?,
                // Deletes have no validating phase in the store.
                (Plugin::ValidatingAdmissionWebhook, None) if attrs.operation == Operation::Delete => {
                    webhook::validate(registry, attrs, None).await?
                }
                (Plugin::ValidatingAdmissionPolicy, None) if attrs.operation == Operation::Delete => {
                    vap::validate(registry, &self.authorizer, attrs, None).await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The validating phase on the object about to be written.
    pub async fn validate(&self, registry: &Registry, attrs: &Attributes<'_>, obj: &Object) -> Result<(), ApiError> {
        self.validate_with_warnings(registry, attrs, obj, &mut Vec::new()).await
    }

    /// The validating phase, adding the plugins' warnings (PodSecurity's)
    /// to `warnings` for the response's `Warning` headers.
    pub async fn validate_with_warnings(
        &self,
        registry: &Registry,
        attrs: &Attributes<'_>,
        obj: &Object,
        warnings: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        if self.has(Plugin::LimitRanger) {
            limit_ranger::validate(registry, attrs, obj).await?;
        }
        if self.has(Plugin::ServiceAccount) {
            service_account::validate(attrs, obj)?;
        }
        if self.has(Plugin::NodeRestriction) && !node_restriction::in_admit_phase(attrs) {
            node_restriction::check(registry, attrs, Some(obj)).await?;
        }
        if self.has(Plugin::PodSecurity) {
            warnings.extend(pod_security::validate(registry, attrs, obj).await?);
        }
        if self.has(Plugin::ValidatingAdmissionPolicy) {
            warnings.extend(vap::validate(registry, &self.authorizer, attrs, Some(obj)).await?);
        }
        if self.has(Plugin::ValidatingAdmissionWebhook) {
            webhook::validate(registry, attrs, Some(obj)).await?;
        }
        if self.has(Plugin::ResourceQuota) {
            resource_quota::validate(registry, attrs, obj).await?;
        }
        Ok(())
    }
}

/// One request's validating phase, handed to the store as its
/// [`WriteAdmission`].
pub struct Validation<'a> {
    pub chain: &'a Chain,
    pub registry: &'a Registry,
    pub attrs: Attributes<'a>,
    /// The warnings of the last run (a store may retry on a conflict).
    warnings: std::sync::Mutex<Vec<String>>,
    /// Whether the store also runs the mutating phase, on each attempt's
    /// object with the stored one as the old object (PUT and PATCH, so a
    /// conflict re-applies it against the new stored object).
    mutating: bool,
}

impl<'a> Validation<'a> {
    pub fn new(chain: &'a Chain, registry: &'a Registry, attrs: Attributes<'a>) -> Self {
        Validation {
            chain,
            registry,
            attrs,
            warnings: Default::default(),
            mutating: false,
        }
    }

    /// Both phases run by the store: [`Chain::admit`] on each update
    /// attempt's object before the strategy prepares it, then
    /// [`Chain::validate`] before the write, like upstream's update and
    /// patch handlers.
    pub fn with_mutation(chain: &'a Chain, registry: &'a Registry, attrs: Attributes<'a>) -> Self {
        Validation {
            mutating: true,
            ..Validation::new(chain, registry, attrs)
        }
    }

    /// The warnings the plugins gave, for the response.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl WriteAdmission for Validation<'_> {
    fn validate<'b>(
        &'b self,
        new: &'b Object,
        old: Option<&'b Object>,
    ) -> Pin<Box<dyn Future<Output = Result<(), ApiError>> + Send + 'b>> {
        Box::pin(async move {
            let mut attrs = self.attrs.clone();
            if old.is_some() {
                attrs.old = old;
            }
            let mut warnings = Vec::new();
            let result = self
                .chain
                .validate_with_warnings(self.registry, &attrs, new, &mut warnings)
                .await;
            *self.warnings.lock().unwrap_or_else(|p| p.into_inner()) = warnings;
            result
        })
    }

    fn admit<'b>(
        &'b self,
        new: &'b mut Object,
        old: &'b Object,
    ) -> Pin<Box<dyn Future<Output = Result<(), ApiError>> + Send + 'b>> {
        Box::pin(async move {
            if !self.mutating {
                return Ok(());
            }
            let mut attrs = self.attrs.clone();
            attrs.old = Some(old);
            self.chain.admit(self.registry, &attrs, Some(new)).await
        })
    }
}

/// `obj[path...]` as a string, or "".
fn str_at<'a>(obj: &'a Object, path: &[&str]) -> &'a str {
    let Some((first, rest)) = path.split_first() else {
        return "";
    };
    rest.iter()
        .try_fold(obj.get(*first), |v, k| Ok::<_, ()>(v.and_then(|v| v.get(*k))))
        .ok()
        .flatten()
        .and_then(Value::as_str)
        .unwrap_or("")
}
