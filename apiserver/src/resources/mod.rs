//! The table of API resources the server knows: group, version, kind,
//! plural and singular names, scope, verbs, short names, categories and
//! subresources.
//!
//! The built-in entries come from `builtin.json`, generated from upstream
//! v1.36's discovery documents by `hack/gen/builtin_resources.py` and
//! committed (the product never reads `../shared`).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;

/// A subresource of a resource (`status`, `scale`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SubresourceInfo {
    pub name: String,
    /// Response kind; empty group/version mean "the parent's".
    pub group: String,
    pub version: String,
    pub kind: String,
    pub verbs: Vec<String>,
}

/// One resource at one group/version.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInfo {
    pub group: String,
    pub version: String,
    pub kind: String,
    /// Plural name, as in the URL (`deployments`).
    pub resource: String,
    pub singular: String,
    pub namespaced: bool,
    pub verbs: Vec<String>,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub subresources: Vec<SubresourceInfo>,
}

impl ResourceInfo {
    /// `apiVersion` of objects of this resource (`v1`, `apps/v1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `group/resource` as upstream spells it in messages (`deployments.apps`,
    /// or `pods` for the core group).
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// Whether the resource supports a verb.
    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// A subresource by name.
    pub fn subresource(&self, name: &str) -> Option<&SubresourceInfo> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// Base64 of the first 8 bytes of SHA-256 of `group/version/kind` of the
    /// storage version, as upstream computes `storageVersionHash`.
    pub fn storage_version_hash(&self) -> String {
        use base64::Engine;
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("{}/{}/{}", self.group, self.version, self.kind).as_bytes());
        base64::engine::general_purpose::STANDARD.encode(&digest[..8])
    }
}

/// All resources, indexed for the lookups request handling needs.
#[derive(Debug)]
pub struct ResourceTable {
    all: Vec<Arc<ResourceInfo>>,
    by_path: HashMap<(String, String, String), Arc<ResourceInfo>>,
}

impl ResourceTable {
    /// Builds a table from entries (in discovery order).
    pub fn new(entries: Vec<ResourceInfo>) -> Self {
        let all: Vec<Arc<ResourceInfo>> = entries.into_iter().map(Arc::new).collect();
        let by_path = all
            .iter()
            .map(|r| ((r.group.clone(), r.version.clone(), r.resource.clone()), r.clone()))
            .collect();
        ResourceTable { all, by_path }
    }

    /// The built-in resources of Kubernetes v1.36.
    pub fn builtin() -> &'static ResourceTable {
        static TABLE: OnceLock<ResourceTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            // The file is generated and committed; a parse failure is caught
            // by this module's tests, not by users.
            let entries: Vec<ResourceInfo> = serde_json::from_str(include_str!("builtin.json")).unwrap_or_default();
            ResourceTable::new(entries)
        })
    }

    /// A resource by group, version and plural name.
    pub fn get(&self, group: &str, version: &str, resource: &str) -> Option<&Arc<ResourceInfo>> {
        self.by_path
            .get(&(group.to_string(), version.to_string(), resource.to_string()))
    }

    /// Every resource, in discovery order.
    pub fn all(&self) -> &[Arc<ResourceInfo>] {
        &self.all
    }

    /// Groups in discovery order, each with its versions (preferred first).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in &self.all {
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) => {
                    if !versions.contains(&r.version) {
                        versions.push(r.version.clone());
                    }
                }
                None => out.push((r.group.clone(), vec![r.version.clone()])),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_parses_and_indexes() {
        let t = ResourceTable::builtin();
        assert_eq!(t.all().len(), 68);
        let pods = t.get("", "v1", "pods").unwrap();
        assert_eq!(
            (pods.kind.as_str(), pods.namespaced, pods.short_names.as_slice()),
            ("Pod", true, &["po".to_string()][..])
        );
        assert!(pods.subresource("status").is_some());
        let deploy = t.get("apps", "v1", "deployments").unwrap();
        assert_eq!(deploy.api_version(), "apps/v1");
        assert_eq!(deploy.group_resource(), "deployments.apps");
        let groups = t.groups();
        assert_eq!(groups[0], ("".to_string(), vec!["v1".to_string()]));
        let autoscaling = groups.iter().find(|(g, _)| g == "autoscaling").unwrap();
        assert_eq!(autoscaling.1, ["v2", "v1"], "preferred version first");
    }

    #[test]
    fn storage_version_hash_matches_upstream() {
        // Upstream v1.36 publishes these for configmaps and endpoints.
        let t = ResourceTable::builtin();
        assert_eq!(
            t.get("", "v1", "configmaps").unwrap().storage_version_hash(),
            "qFsyl6wFWjQ="
        );
        assert_eq!(
            t.get("", "v1", "endpoints").unwrap().storage_version_hash(),
            "fWeeMqaN/OA="
        );
    }
}
