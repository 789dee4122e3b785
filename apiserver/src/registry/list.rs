//! LIST for the generic store: selectors, pagination with continue tokens,
//! and resourceVersion semantics (unset and "0": latest; NotOlderThan;
//! Exact: the list at that revision, 410 once compacted).

use std::sync::Arc;

use rkube_storage::continue_token;
use rkube_storage::{ListOptions as StorageListOptions, Revision};

use bytes::Bytes;

use crate::resources::ResourceInfo;
use crate::status::ApiError;

use super::cache::CachedObject;
use super::object::Object;
use super::selection::{ObjectAttrs, attrs_of};
use super::store::GenericStore;

/// Storage items read per round when a selector filters a page.
const FILTERED_PAGE: usize = 500;

/// Which objects a list or watch wants: a test over an object's labels
/// and selectable fields ([`ObjectAttrs`]).
#[derive(Clone, Default)]
pub struct Predicate {
    info: Option<Arc<ResourceInfo>>,
    test: Option<AttrsTest>,
}

/// A test over an object's attributes.
type AttrsTest = Arc<dyn Fn(&ObjectAttrs) -> bool + Send + Sync>;

impl std::fmt::Debug for Predicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Predicate")
            .field("everything", &self.is_everything())
            .finish()
    }
}

impl Predicate {
    /// Matches every object.
    pub fn everything() -> Self {
        Predicate::default()
    }

    /// Matches objects of `info`'s kind whose attributes pass `test`.
    pub fn new(info: Arc<ResourceInfo>, test: impl Fn(&ObjectAttrs) -> bool + Send + Sync + 'static) -> Self {
        Predicate {
            info: Some(info),
            test: Some(Arc::new(test)),
        }
    }

    /// Whether an object matches.
    pub fn matches(&self, obj: &Object) -> bool {
        match (&self.test, &self.info) {
            (Some(test), Some(info)) => test(&attrs_of(info, obj)),
            _ => true,
        }
    }

    /// Whether precomputed attributes match.
    pub fn matches_attrs(&self, attrs: &ObjectAttrs) -> bool {
        self.test.as_ref().is_none_or(|t| t(attrs))
    }

    pub fn is_everything(&self) -> bool {
        self.test.is_none()
    }
}

/// `resourceVersionMatch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionMatch {
    NotOlderThan,
    Exact,
}

/// Options of a list.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub predicate: Predicate,
    pub limit: usize,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<VersionMatch>,
}

/// One listed object: decoded (from storage) or pre-encoded (from the
/// watch cache).
#[derive(Debug, Clone)]
pub enum ListItem {
    Decoded(Object),
    Cached(Arc<CachedObject>),
}

impl ListItem {
    /// The object's JSON without `kind` and `apiVersion`.
    pub fn body(&self) -> Bytes {
        match self {
            ListItem::Decoded(o) => {
                let mut o = o.clone();
                o.remove("kind");
                o.remove("apiVersion");
                Bytes::from(serde_json::to_vec(&o).unwrap_or_default())
            }
            ListItem::Cached(c) => c.body.clone(),
        }
    }

    /// The object as a map.
    pub fn into_object(self, info: &ResourceInfo) -> Object {
        match self {
            ListItem::Decoded(o) => o,
            ListItem::Cached(c) => c.decode(info),
        }
    }
}

/// A list result.
#[derive(Debug, Clone)]
pub struct ListOutcome {
    pub items: Vec<ListItem>,
    pub resource_version: Revision,
    pub continue_token: Option<String>,
    pub remaining_item_count: Option<i64>,
}

/// Parses a resourceVersion parameter.
pub fn parse_resource_version(rv: &str) -> Result<Revision, ApiError> {
    rv.parse::<Revision>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {rv:?}")))
}

impl GenericStore {
    /// Lists objects in `namespace` ("" = all namespaces, or cluster-scoped).
    pub async fn list(&self, namespace: &str, opts: &ListOptions) -> Result<ListOutcome, ApiError> {
        let prefix = self.prefix(namespace);
        let rv = opts.resource_version.as_deref().filter(|s| !s.is_empty());
        if let Some((root, cache)) = self.cache()
            && opts.continue_token.is_none()
            && opts.resource_version_match != Some(VersionMatch::Exact)
        {
            match rv {
                None => {
                    root.sync_to_storage().await?;
                }
                Some("0") => {}
                Some(rv) => root.wait_for(parse_resource_version(rv)?).await?,
            }
            let limit = if rv == Some("0") { 0 } else { opts.limit };
            let snap = cache.list(&prefix, &opts.predicate, limit, root.revision());
            return Ok(ListOutcome {
                continue_token: snap
                    .next_key
                    .as_deref()
                    .map(|k| continue_token::encode(&prefix, k, snap.revision)),
                items: snap.items.into_iter().map(ListItem::Cached).collect(),
                resource_version: snap.revision,
                remaining_item_count: snap.remaining,
            });
        }
        // Later pages of a list the cache served come from its snapshot.
        if let (Some(token), None, Some((_, cache))) = (&opts.continue_token, rv, self.cache())
            && let Ok((start, revision)) = continue_token::decode(&prefix, token)
            && let Some(snap) = cache.continue_list(&prefix, &start, revision, &opts.predicate, opts.limit)
        {
            return Ok(ListOutcome {
                continue_token: snap
                    .next_key
                    .as_deref()
                    .map(|k| continue_token::encode(&prefix, k, snap.revision)),
                items: snap.items.into_iter().map(ListItem::Cached).collect(),
                resource_version: snap.revision,
                remaining_item_count: snap.remaining,
            });
        }
        let (mut start, revision) = match (&opts.continue_token, rv) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "specifying resource version is not allowed when using continue",
                ));
            }
            (Some(token), None) => {
                let (start, rev) = continue_token::decode(&prefix, token).map_err(|e| {
                    ApiError::bad_request(e.to_string().trim_start_matches("invalid argument: ").to_string())
                })?;
                (Some(start), Some(rev))
            }
            (None, None) => (None, None),
            (None, Some(rv)) => {
                let wanted = parse_resource_version(rv)?;
                match opts.resource_version_match {
                    Some(VersionMatch::Exact) => {
                        if wanted == 0 {
                            return Err(ApiError::bad_request(
                                "resourceVersionMatch=Exact requires a non-zero resourceVersion",
                            ));
                        }
                        (None, Some(wanted))
                    }
                    _ => {
                        let current = self
                            .storage()
                            .current_revision()
                            .await
                            .map_err(|e| ApiError::from_storage(e, self.gr(), ""))?;
                        if wanted > current {
                            return Err(ApiError::timeout(format!(
                                "Too large resource version: {wanted}, current: {current}"
                            )));
                        }
                        (None, None)
                    }
                }
            }
        };
        let limit = if rv == Some("0") && opts.continue_token.is_none() {
            0
        } else {
            opts.limit
        };
        let mut items = Vec::new();
        let mut served_at = revision;
        loop {
            let want = if limit == 0 {
                0
            } else if opts.predicate.is_everything() {
                limit - items.len()
            } else {
                FILTERED_PAGE.max(limit)
            };
            let page = self
                .storage()
                .list(&prefix, StorageListOptions { revision: served_at, limit: want, start: start.clone() })
                .await
                .map_err(|e| match e {
                    rkube_storage::StorageError::Compacted { .. } if opts.continue_token.is_some() => ApiError::expired(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                    ),
                    rkube_storage::StorageError::Compacted { requested, compacted } => {
                        ApiError::expired(format!("too old resource version: {requested} ({compacted})"))
                    }
                    e => ApiError::from_storage(e, self.gr(), ""),
                })?;
            served_at = Some(page.revision);
            let mut last_key = None;
            let mut stopped_early = false;
            for (i, kv) in page.items.iter().enumerate() {
                let obj = self.decode(kv)?;
                last_key = Some(kv.key.clone());
                if opts.predicate.matches(&obj) {
                    items.push(ListItem::Decoded(obj));
                }
                if limit > 0 && items.len() >= limit && i + 1 < page.items.len() {
                    stopped_early = true;
                    break;
                }
            }
            let more = page.more || stopped_early;
            let full = limit > 0 && items.len() >= limit;
            if !more {
                return Ok(ListOutcome {
                    items,
                    resource_version: page.revision,
                    continue_token: None,
                    remaining_item_count: None,
                });
            }
            let next = last_key.map(|k| format!("{k}\0"));
            if full {
                let token = next
                    .as_deref()
                    .map(|n| continue_token::encode(&prefix, n, page.revision));
                let remaining = (opts.predicate.is_everything() && !stopped_early).then_some(page.remaining);
                return Ok(ListOutcome {
                    items,
                    resource_version: page.revision,
                    continue_token: token,
                    remaining_item_count: remaining,
                });
            }
            start = next;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use axum::http::StatusCode;
    use serde_json::json;

    use crate::testing::TestServer;

    const CMS: &str = "/api/v1/namespaces/default/configmaps";

    async fn names_of(body: &serde_json::Value) -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// Later pages come from the cache's snapshot of the first page's
    /// revision: consistent with it even after the storage history is
    /// compacted away.
    #[tokio::test]
    async fn paginated_list_is_served_from_the_cache_snapshot() {
        let s = TestServer::new().await;
        for i in 0..25 {
            let (code, _) = s.post(CMS, json!({"metadata": {"name": format!("cm-{i:02}")}})).await;
            assert_eq!(code, StatusCode::CREATED);
        }
        s.registry().cache.wait_ready().await;
        let (code, first) = s.get(&format!("{CMS}?limit=10")).await;
        assert_eq!(code, StatusCode::OK);
        let rv = first["metadata"]["resourceVersion"].as_str().unwrap().to_string();
        assert_eq!(first["metadata"]["remainingItemCount"], 15);
        let mut names = names_of(&first).await;

        // Change the world and forget the history of the first page's revision.
        s.delete(&format!("{CMS}/cm-24")).await;
        s.post(CMS, json!({"metadata": {"name": "cm-99"}})).await;
        let store = s.state.store.clone();
        let now = store.current_revision().await.unwrap();
        store.compact(now).await.unwrap();

        let mut token = first["metadata"]["continue"].as_str().unwrap().to_string();
        loop {
            let (code, page) = s.get(&format!("{CMS}?limit=10&continue={token}")).await;
            assert_eq!(code, StatusCode::OK, "{page}");
            assert_eq!(page["metadata"]["resourceVersion"], rv.as_str());
            names.extend(names_of(&page).await);
            match page["metadata"]["continue"].as_str() {
                Some(t) if !t.is_empty() => {
                    assert_eq!(page["metadata"]["remainingItemCount"], 5);
                    token = t.to_string();
                }
                _ => break,
            }
        }
        let expected: Vec<String> = (0..25).map(|i| format!("cm-{i:02}")).collect();
        assert_eq!(names, expected);
    }

    /// A selector on later pages filters the snapshot.
    #[tokio::test]
    async fn paginated_list_with_selector() {
        let s = TestServer::new().await;
        for i in 0..12 {
            let labels = if i % 2 == 0 { json!({"even": "yes"}) } else { json!({}) };
            s.post(
                CMS,
                json!({"metadata": {"name": format!("cm-{i:02}"), "labels": labels}}),
            )
            .await;
        }
        s.registry().cache.wait_ready().await;
        let mut names = Vec::new();
        let mut url = format!("{CMS}?limit=2&labelSelector=even%3Dyes");
        loop {
            let (code, page) = s.get(&url).await;
            assert_eq!(code, StatusCode::OK, "{page}");
            assert!(page["metadata"].get("remainingItemCount").is_none());
            names.extend(names_of(&page).await);
            match page["metadata"]["continue"].as_str() {
                Some(t) if !t.is_empty() => url = format!("{CMS}?limit=2&labelSelector=even%3Dyes&continue={t}"),
                _ => break,
            }
        }
        let expected: Vec<String> = (0..12).step_by(2).map(|i| format!("cm-{i:02}")).collect();
        assert_eq!(names, expected);
    }
}
