//! A compact `ResourceList` (resource name -> quantity) for cached pods.
//!
//! k8s-openapi decodes `requests` and `limits` into B-tree maps whose first
//! node holds eleven slots: about 550 bytes for the usual one or two
//! entries, twice per container. Here the entries sit in one exact-size
//! boxed slice, sorted by name as the map would iterate them.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::{Deserialize, Deserializer};

/// Resource name -> quantity, sorted by name; read like a map.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResourceList(Box<[(String, Quantity)]>);

impl ResourceList {
    /// The quantity of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&Quantity> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// Whether `name` is set.
    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Whether no resource is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many resources are set.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `(name, quantity)` in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Quantity)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// The resource names in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    /// The same entries as the map k8s-openapi uses.
    pub fn to_map(&self) -> BTreeMap<String, Quantity> {
        self.0.iter().cloned().collect()
    }
}

impl<'a> IntoIterator for &'a ResourceList {
    type Item = (&'a String, &'a Quantity);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (String, Quantity)>, fn(&'a (String, Quantity)) -> Self::Item>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl FromIterator<(String, Quantity)> for ResourceList {
    fn from_iter<I: IntoIterator<Item = (String, Quantity)>>(iter: I) -> Self {
        // Through a map: sorted, and a repeated name keeps its last value
        // as decoding a JSON object into a map does.
        let map: BTreeMap<String, Quantity> = iter.into_iter().collect();
        ResourceList(map.into_iter().collect())
    }
}

impl<'de> Deserialize<'de> for ResourceList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Option::<BTreeMap<String, Quantity>>::deserialize(d)?;
        Ok(map.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_like_the_map_it_replaces() {
        let l: ResourceList = serde_json::from_str(r#"{"memory": "1Gi", "cpu": "10m", "cpu": "20m"}"#).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l.get("cpu"), Some(&Quantity("20m".into())));
        assert_eq!(l.get("memory"), Some(&Quantity("1Gi".into())));
        assert_eq!(l.get("gpu"), None);
        assert!(l.contains_key("memory") && !l.contains_key("storage"));
        assert_eq!(l.keys().map(String::as_str).collect::<Vec<_>>(), ["cpu", "memory"]);
        let m = l.to_map();
        assert!(m.iter().eq(l.iter()));
        assert!((&l).into_iter().eq(m.iter()));
        let empty: ResourceList = serde_json::from_str("null").unwrap();
        assert!(empty.is_empty());
    }
}
