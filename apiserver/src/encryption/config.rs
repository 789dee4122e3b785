//! `--encryption-provider-config`: upstream's `EncryptionConfiguration`
//! (`apiserver.config.k8s.io/v1`), read into the transformer of each
//! configured resource.
//!
//! ```yaml
//! apiVersion: apiserver.config.k8s.io/v1
//! kind: EncryptionConfiguration
//! resources:
//!   - resources: [secrets, "*.apps"]
//!     providers:
//!       - aesgcm: {keys: [{name: key2, secret: <base64>}, {name: key1, secret: <base64>}]}
//!       - identity: {}
//! ```
//!
//! Resources are `resource.group` (`secrets` is core), `*.group` (every
//! resource of a group; `*.` is the core group) or `*.*`; the first entry
//! naming a resource decides, and an explicit name must not follow a
//! wildcard that already covers it (upstream's rule).

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use serde::Deserialize;

use super::provider::{Cipher, PrefixedCipher, Transformer};

/// Why the configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("error reading encryption provider configuration file {path:?}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("error decoding encryption provider configuration file {path:?}: {message}")]
    Decode { path: String, message: String },
    #[error("error validating encryption provider configuration file {path:?}: {}", .errors.join(", "))]
    Invalid { path: String, errors: Vec<String> },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EncryptionConfiguration {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    resources: Vec<ResourceConfiguration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceConfiguration {
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    providers: Vec<ProviderConfiguration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderConfiguration {
    aesgcm: Option<KeysConfig>,
    aescbc: Option<KeysConfig>,
    secretbox: Option<KeysConfig>,
    identity: Option<serde_json::Value>,
    kms: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysConfig {
    #[serde(default)]
    keys: Vec<Key>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Key {
    #[serde(default)]
    name: String,
    #[serde(default)]
    secret: String,
}

/// Which resources an entry covers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selector {
    /// One resource (`secrets`, `deployments.apps`), as (resource, group).
    Exact(String, String),
    /// Every resource of a group (`*.apps`; `*.` for core).
    Group(String),
    /// Every resource (`*.*`).
    All,
}

impl Selector {
    fn parse(s: &str) -> Selector {
        match s {
            "*.*" => Selector::All,
            _ => match s.strip_prefix("*.") {
                Some(group) => Selector::Group(group.to_string()),
                None => match s.split_once('.') {
                    Some((r, g)) => Selector::Exact(r.to_string(), g.to_string()),
                    None => Selector::Exact(s.to_string(), String::new()),
                },
            },
        }
    }

    fn matches(&self, resource: &str, group: &str) -> bool {
        match self {
            Selector::Exact(r, g) => r == resource && g == group,
            Selector::Group(g) => g == group,
            Selector::All => true,
        }
    }
}

/// The transformers of every configured resource.
#[derive(Debug, Default)]
pub struct EncryptionConfig {
    entries: Vec<(Selector, Arc<Transformer>)>,
}

impl EncryptionConfig {
    /// Reads and validates the file.
    pub fn load(path: &Path) -> Result<EncryptionConfig, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: p.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ParseError::Decode(message) => ConfigError::Decode { path: p, message },
            ParseError::Invalid(errors) => ConfigError::Invalid { path: p, errors },
        })
    }

    fn parse(text: &str) -> Result<EncryptionConfig, ParseError> {
        let cfg: EncryptionConfiguration =
            serde_saphyr::from_str(text).map_err(|e| ParseError::Decode(e.to_string()))?;
        if cfg.kind != "EncryptionConfiguration" || cfg.api_version != "apiserver.config.k8s.io/v1" {
            return Err(ParseError::Decode(format!(
                "no kind \"{}\" is registered for version \"{}\"",
                cfg.kind, cfg.api_version
            )));
        }
        let mut errors = Vec::new();
        let mut entries = Vec::new();
        if cfg.resources.is_empty() {
            errors.push("resources: Required value: resources is a required field".to_string());
        }
        for (i, rc) in cfg.resources.iter().enumerate() {
            let path = format!("resources[{i}]");
            if rc.resources.is_empty() {
                errors.push(format!(
                    "{path}.resources: Required value: resources is a required field"
                ));
            }
            if rc.providers.is_empty() {
                errors.push(format!(
                    "{path}.providers: Required value: providers is a required field"
                ));
            }
            let transformer = Arc::new(Transformer {
                keys: providers(&rc.providers, &path, &mut errors),
            });
            for (j, r) in rc.resources.iter().enumerate() {
                let rpath = format!("{path}.resources[{j}]");
                if r.is_empty() || r == "*" || r.chars().any(|c| c.is_ascii_uppercase()) {
                    errors.push(format!(
                        "{rpath}: Invalid value: {r:?}: resource name must be lowercase and \
                         use '*.' for all resources in the core group or '*.*' for all resources"
                    ));
                    continue;
                }
                let sel = Selector::parse(r);
                if let Selector::Exact(res, grp) = &sel
                    && let Some((earlier, _)) = entries
                        .iter()
                        .find(|(s, _): &&(Selector, Arc<Transformer>)| s != &sel && s.matches(res, grp))
                {
                    errors.push(format!(
                        "{rpath}: Invalid value: {r:?}: resource {r:?} is masked by earlier rule {earlier:?}"
                    ));
                }
                entries.push((sel, transformer.clone()));
            }
        }
        if errors.is_empty() {
            Ok(EncryptionConfig { entries })
        } else {
            Err(ParseError::Invalid(errors))
        }
    }

    /// The transformer of `resource` in `group` (`""` for core), if the
    /// configuration names it.
    pub fn transformer(&self, resource: &str, group: &str) -> Option<&Arc<Transformer>> {
        self.entries
            .iter()
            .find(|(s, _)| s.matches(resource, group))
            .map(|(_, t)| t)
    }
}

/// Builds a cipher from a key, if the key has a valid length.
type MakeCipher = fn(&[u8]) -> Option<Cipher>;

enum ParseError {
    Decode(String),
    Invalid(Vec<String>),
}

fn providers(list: &[ProviderConfiguration], path: &str, errors: &mut Vec<String>) -> Vec<PrefixedCipher> {
    let mut out = Vec::new();
    for (i, p) in list.iter().enumerate() {
        let ppath = format!("{path}.providers[{i}]");
        let set = [
            p.aesgcm.is_some(),
            p.aescbc.is_some(),
            p.secretbox.is_some(),
            p.identity.is_some(),
            p.kms.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if set != 1 {
            errors.push(format!(
                "{ppath}: Invalid value: \"{set}\": more than one provider specified in a single element, \
                 should split into different list elements"
            ));
            continue;
        }
        if p.kms.is_some() {
            errors.push(format!(
                "{ppath}.kms: Unsupported value: kms providers are not supported by this server"
            ));
            continue;
        }
        if p.identity.is_some() {
            out.push(PrefixedCipher::new("identity", "", Cipher::Identity));
            continue;
        }
        let (name, keys, make, sizes): (&str, _, MakeCipher, &str) = if let Some(k) = &p.aesgcm {
            ("aesgcm", k, Cipher::aes_gcm, "[16 24 32]")
        } else if let Some(k) = &p.aescbc {
            ("aescbc", k, Cipher::aes_cbc, "[16 24 32]")
        } else if let Some(k) = &p.secretbox {
            ("secretbox", k, Cipher::secretbox, "[32]")
        } else {
            continue;
        };
        if keys.keys.is_empty() {
            errors.push(format!("{ppath}.{name}.keys: Required value: keys is a required field"));
        }
        let mut seen = std::collections::HashSet::new();
        for (j, key) in keys.keys.iter().enumerate() {
            let kpath = format!("{ppath}.{name}.keys[{j}]");
            if key.name.is_empty() {
                errors.push(format!("{kpath}.name: Required value: key name is required"));
                continue;
            }
            if key.name.contains(':') {
                errors.push(format!(
                    "{kpath}.name: Invalid value: {:?}: should not contain ':'",
                    key.name
                ));
                continue;
            }
            if !seen.insert(key.name.as_str()) {
                errors.push(format!("{kpath}.name: Duplicate value: {:?}", key.name));
                continue;
            }
            let Ok(secret) = base64::engine::general_purpose::STANDARD.decode(key.secret.trim()) else {
                errors.push(format!(
                    "{kpath}.secret: Invalid value: \"REDACTED\": secret is not a valid base64 string"
                ));
                continue;
            };
            match make(&secret) {
                Some(cipher) => out.push(PrefixedCipher::new(name, &key.name, cipher)),
                None => errors.push(format!(
                    "{kpath}.secret: Invalid value: \"REDACTED\": secret is not of the expected length, \
                     got {}, expected one of {sizes}",
                    secret.len()
                )),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY32: &str = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE="; // 32 bytes

    fn parse(resources: &str) -> Result<EncryptionConfig, Vec<String>> {
        let text =
            format!("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n{resources}");
        EncryptionConfig::parse(&text).map_err(|e| match e {
            ParseError::Decode(m) => vec![m],
            ParseError::Invalid(v) => v,
        })
    }

    #[test]
    fn resources_and_wildcards() {
        let c = parse(&format!(
            "- resources: [secrets, deployments.apps]\n  providers: [{{aesgcm: {{keys: [{{name: k, secret: {KEY32}}}]}}}}]\n\
             - resources: ['*.batch']\n  providers: [{{secretbox: {{keys: [{{name: k, secret: {KEY32}}}]}}}}]\n\
             - resources: ['*.']\n  providers: [{{aescbc: {{keys: [{{name: k, secret: {KEY32}}}]}}}}]\n"
        ))
        .unwrap();
        let prefix = |r: &str, g: &str| {
            c.transformer(r, g)
                .map(|t| String::from_utf8_lossy(&t.keys[0].prefix).into_owned())
        };
        assert_eq!(prefix("secrets", "").as_deref(), Some("k8s:enc:aesgcm:v1:k:"));
        assert_eq!(prefix("deployments", "apps").as_deref(), Some("k8s:enc:aesgcm:v1:k:"));
        assert_eq!(prefix("jobs", "batch").as_deref(), Some("k8s:enc:secretbox:v1:k:"));
        assert_eq!(prefix("configmaps", "").as_deref(), Some("k8s:enc:aescbc:v1:k:"));
        assert_eq!(prefix("replicasets", "apps"), None);
        let all = parse("- resources: ['*.*']\n  providers: [{identity: {}}]\n").unwrap();
        assert!(all.transformer("anything", "example.com").is_some());
    }

    #[test]
    fn invalid_configurations() {
        let check = |resources: &str, want: &str| {
            let errs = parse(resources).err().unwrap_or_default();
            assert!(errs.iter().any(|e| e.contains(want)), "{errs:?} lacks {want:?}");
        };
        check(
            "- resources: [secrets]\n  providers: [{aesgcm: {keys: [{name: k, secret: c2hvcnQ=}]}}]\n",
            "resources[0].providers[0].aesgcm.keys[0].secret: Invalid value: \"REDACTED\": secret is not of the expected length, got 5, expected one of [16 24 32]",
        );
        check(
            "- resources: [secrets]\n  providers: [{secretbox: {keys: [{name: k, secret: c2hvcnQ=}]}}]\n",
            "expected one of [32]",
        );
        check(
            &format!(
                "- resources: [secrets]\n  providers: [{{identity: {{}}, aesgcm: {{keys: [{{name: k, secret: {KEY32}}}]}}}}]\n"
            ),
            "more than one provider specified in a single element",
        );
        check(
            "- resources: [secrets]\n  providers: []\n",
            "resources[0].providers: Required value",
        );
        check(
            "- resources: ['*']\n  providers: [{identity: {}}]\n",
            "use '*.' for all resources",
        );
        check(
            "- resources: ['*.*', secrets]\n  providers: [{identity: {}}]\n",
            "resources[0].resources[1]: Invalid value: \"secrets\": resource \"secrets\" is masked by earlier rule",
        );
        check(
            "- resources: [secrets]\n  providers: [{aesgcm: {keys: [{name: 'a:b', secret: x}]}}]\n",
            "should not contain ':'",
        );
        assert!(parse("- resources: [secrets]\n  providers: [{aesgcm: {bogus: 1}}]\n").is_err());
        assert!(EncryptionConfig::parse("kind: Other\n").is_err());
    }
}
