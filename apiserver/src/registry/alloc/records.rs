//! What the ClusterIP and NodePort allocators share: the order free values
//! are tried in, the values already recorded in storage, and releasing a
//! record only while it still names its Service.

use std::collections::HashSet;
use std::hash::Hash;
use std::str::FromStr;

use rkube_storage::{ListOptions, StorageError, Store};
use serde_json::Value;

/// The values of `first..=last` in the order upstream tries them: from a
/// random point of the upper (dynamic) band `first + static_band..=last`,
/// wrapping around, then likewise in the lower (static) band. Nothing when
/// `last < first`.
pub fn allocation_order(first: u32, last: u32, static_band: u32) -> impl Iterator<Item = u32> {
    let split = first.saturating_add(static_band).min(last.saturating_add(1));
    let mut bands = vec![(split, last)];
    if split > first {
        bands.push((first, split - 1));
    }
    bands.into_iter().filter(|(lo, hi)| lo <= hi).flat_map(|(lo, hi)| {
        let span = u64::from(hi - lo) + 1;
        let start = rand::random_range(0..span);
        (0..span).map(move |i| lo + ((start + i) % span) as u32)
    })
}

/// The values recorded under `prefix` (each key is `prefix` + value).
pub async fn recorded<T: FromStr + Eq + Hash>(storage: &dyn Store, prefix: &str) -> Result<HashSet<T>, StorageError> {
    let list = storage.list(prefix, ListOptions::default()).await?;
    Ok(list
        .items
        .iter()
        .filter_map(|kv| kv.key.strip_prefix(prefix)?.parse().ok())
        .collect())
}

/// Deletes the record at `key` if `owned` says its JSON value still names
/// the releasing Service; a missing or unreadable record is left alone.
pub async fn release_owned(storage: &dyn Store, key: &str, owned: impl Fn(&Value) -> bool) -> Result<(), StorageError> {
    let Ok(Some(kv)) = storage.get(key, None).await else {
        return Ok(());
    };
    if serde_json::from_slice::<Value>(&kv.value)
        .ok()
        .is_some_and(|v| owned(&v))
    {
        storage.delete(key, Some(kv.mod_revision)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(first: u32, last: u32, band: u32) -> Vec<u32> {
        allocation_order(first, last, band).collect()
    }

    #[test]
    fn upper_band_first_then_lower_each_value_once() {
        for _ in 0..20 {
            let got = order(10, 29, 5);
            assert_eq!(got.len(), 20);
            let (upper, lower) = got.split_at(15);
            let mut upper = upper.to_vec();
            upper.sort_unstable();
            assert_eq!(upper, (15..=29).collect::<Vec<_>>());
            let mut lower = lower.to_vec();
            lower.sort_unstable();
            assert_eq!(lower, (10..=14).collect::<Vec<_>>());
            // Each band is one rotation of its values.
            assert!(
                got[..15]
                    .windows(2)
                    .all(|w| w[1] == w[0] + 1 || (w[0], w[1]) == (29, 15))
            );
        }
        assert_eq!(order(5, 5, 0), [5]);
        assert_eq!(order(5, 7, 10).len(), 3);
        assert!(order(6, 5, 0).is_empty());
        assert_eq!(order(u32::MAX, u32::MAX, 1), [u32::MAX]);
    }
}
