//! An in-memory MVCC store, for unit tests of code above the storage layer.
//! Same semantics as the durable backends (it passes the same conformance
//! suite) but nothing survives the process.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{Result, StorageError};
use crate::store::{Event, EventType, KeyValue, ListOptions, ListResult, Revision, Store, WatchStream, validate_key};
use crate::watch_hub::{History, WatchHub, spawn_watcher};

/// One version of a key: its value, or a deletion marker.
#[derive(Debug, Clone)]
struct Version {
    revision: Revision,
    kv: Option<KeyValue>,
}

#[derive(Debug)]
struct State {
    revision: Revision,
    compacted: Revision,
    /// Every key's versions, oldest first.
    keys: BTreeMap<String, Vec<Version>>,
    /// Every event after `compacted`, oldest first.
    log: VecDeque<Event>,
}

impl State {
    fn latest(&self, key: &str) -> Option<&KeyValue> {
        self.keys.get(key)?.last()?.kv.as_ref()
    }

    fn at(&self, key: &str, revision: Revision) -> Option<&KeyValue> {
        let versions = self.keys.get(key)?;
        let idx = versions.partition_point(|v| v.revision <= revision);
        versions[..idx].last()?.kv.as_ref()
    }

    fn check_revision(&self, revision: Revision) -> Result<()> {
        if revision < self.compacted {
            return Err(StorageError::Compacted {
                requested: revision,
                compacted: self.compacted,
            });
        }
        if revision > self.revision {
            return Err(StorageError::FutureRevision {
                requested: revision,
                current: self.revision,
            });
        }
        Ok(())
    }
}

struct Shared {
    state: Mutex<State>,
    hub: WatchHub,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied write
        // (each write mutates only after all checks), so poison is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies one event under the lock and publishes it.
    fn commit(&self, state: &mut State, event: Event) {
        let rev = event.revision();
        state.revision = rev;
        let kv = match event.event_type {
            EventType::Deleted => None,
            _ => Some(event.kv.clone()),
        };
        state
            .keys
            .entry(event.kv.key.clone())
            .or_default()
            .push(Version { revision: rev, kv });
        state.log.push_back(event.clone());
        self.hub.publish(Arc::from(vec![event]));
    }
}

impl History for Shared {
    fn events_after(&self, prefix: &str, after: Revision, max: usize) -> Result<(Vec<Event>, Revision)> {
        let state = self.lock();
        if after < state.compacted {
            return Err(StorageError::Compacted {
                requested: after,
                compacted: state.compacted,
            });
        }
        let start = state.log.partition_point(|e| e.revision() <= after);
        let mut out = Vec::new();
        let mut scanned = state.revision;
        for ev in state.log.range(start..) {
            if out.len() >= max {
                scanned = out.last().map_or(after, Event::revision);
                break;
            }
            if ev.kv.key.starts_with(prefix) {
                out.push(ev.clone());
            }
        }
        Ok((out, scanned))
    }
}

/// The in-memory backend.
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store at revision 1.
    pub fn new() -> Self {
        MemoryStore {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    revision: 1,
                    compacted: 0,
                    keys: BTreeMap::new(),
                    log: VecDeque::new(),
                }),
                hub: WatchHub::new(),
            }),
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn backend_name(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<Option<KeyValue>> {
        let state = self.shared.lock();
        match revision {
            None => Ok(state.latest(key).cloned()),
            Some(rev) => {
                state.check_revision(rev)?;
                Ok(state.at(key, rev).cloned())
            }
        }
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        let state = self.shared.lock();
        let revision = match options.revision {
            None | Some(0) => state.revision,
            Some(rev) => {
                state.check_revision(rev)?;
                rev
            }
        };
        let start = match &options.start {
            Some(s) if !s.starts_with(prefix) => {
                return Err(StorageError::InvalidArgument(format!(
                    "start key {s:?} is outside prefix {prefix:?}"
                )));
            }
            Some(s) => s.as_str(),
            None => prefix,
        };
        let mut items = Vec::new();
        let mut remaining = 0i64;
        for (key, versions) in state.keys.range::<str, _>((Bound::Included(start), Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            let idx = versions.partition_point(|v| v.revision <= revision);
            let Some(kv) = versions[..idx].last().and_then(|v| v.kv.as_ref()) else {
                continue;
            };
            if options.limit == 0 || items.len() < options.limit {
                items.push(kv.clone());
            } else {
                remaining += 1;
            }
        }
        Ok(ListResult {
            items,
            revision,
            more: remaining > 0,
            remaining,
        })
    }

    async fn count(&self, prefix: &str) -> Result<i64> {
        let state = self.shared.lock();
        let n = state
            .keys
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, v)| v.last().is_some_and(|v| v.kv.is_some()))
            .count();
        Ok(n as i64)
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision> {
        validate_key(key)?;
        let mut state = self.shared.lock();
        if state.latest(key).is_some() {
            return Err(StorageError::AlreadyExists { key: key.to_string() });
        }
        let rev = state.revision + 1;
        let kv = KeyValue {
            key: key.to_string(),
            value,
            create_revision: rev,
            mod_revision: rev,
        };
        self.shared.commit(
            &mut state,
            Event {
                event_type: EventType::Added,
                kv,
                prev: None,
            },
        );
        Ok(rev)
    }

    async fn update(&self, key: &str, value: Bytes, expected_mod_revision: Revision) -> Result<Revision> {
        validate_key(key)?;
        let mut state = self.shared.lock();
        let Some(prev) = state.latest(key).cloned() else {
            return Err(StorageError::NotFound { key: key.to_string() });
        };
        if prev.mod_revision != expected_mod_revision {
            return Err(StorageError::Conflict {
                key: key.to_string(),
                expected: expected_mod_revision,
                current: Some(Box::new(prev)),
            });
        }
        let rev = state.revision + 1;
        let kv = KeyValue {
            key: key.to_string(),
            value,
            create_revision: prev.create_revision,
            mod_revision: rev,
        };
        self.shared.commit(
            &mut state,
            Event {
                event_type: EventType::Modified,
                kv,
                prev: Some(prev),
            },
        );
        Ok(rev)
    }

    async fn delete(&self, key: &str, expected_mod_revision: Option<Revision>) -> Result<(Revision, KeyValue)> {
        let mut state = self.shared.lock();
        let Some(prev) = state.latest(key).cloned() else {
            return Err(StorageError::NotFound { key: key.to_string() });
        };
        if let Some(expected) = expected_mod_revision
            && prev.mod_revision != expected
        {
            return Err(StorageError::Conflict {
                key: key.to_string(),
                expected,
                current: Some(Box::new(prev)),
            });
        }
        let rev = state.revision + 1;
        let kv = KeyValue {
            key: key.to_string(),
            value: Bytes::new(),
            create_revision: prev.create_revision,
            mod_revision: rev,
        };
        self.shared.commit(
            &mut state,
            Event {
                event_type: EventType::Deleted,
                kv,
                prev: Some(prev.clone()),
            },
        );
        Ok((rev, prev))
    }

    async fn watch(&self, prefix: &str, after: Option<Revision>) -> Result<WatchStream> {
        let rx = self.shared.hub.subscribe();
        let after = {
            let state = self.shared.lock();
            let after = after.unwrap_or(state.revision);
            if after < state.compacted {
                return Err(StorageError::Compacted {
                    requested: after,
                    compacted: state.compacted,
                });
            }
            after
        };
        Ok(spawn_watcher(self.shared.clone(), rx, prefix.to_string(), after))
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.shared.lock().revision)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let mut state = self.shared.lock();
        if revision > state.revision {
            return Err(StorageError::FutureRevision {
                requested: revision,
                current: state.revision,
            });
        }
        if revision <= state.compacted {
            return Ok(());
        }
        state.compacted = revision;
        state.keys.retain(|_, versions| {
            // Keep the newest version at or below `revision` (the state at
            // that revision) unless it is a deletion, and everything newer.
            let idx = versions.partition_point(|v| v.revision <= revision);
            let keep_from = match versions[..idx].last() {
                Some(v) if v.kv.is_some() => idx - 1,
                _ => idx,
            };
            versions.drain(..keep_from);
            !versions.is_empty()
        });
        while state.log.front().is_some_and(|e| e.revision() <= revision) {
            state.log.pop_front();
        }
        Ok(())
    }
}
