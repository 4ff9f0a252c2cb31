//! The object store: one global, strictly increasing resourceVersion across every kind (as
//! etcd's revision), the change history watches resume from, compaction, and the broadcast that
//! feeds open watches.
//!
//! History is kept as a base snapshot at the compaction point (`floor`) plus every change after
//! it, so a list can be served at any retained resourceVersion (continue tokens read a consistent
//! snapshot, as the docs require) and a watch can replay exactly the changes after any
//! resourceVersion at or above `floor`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::kinds::{KINDS, KindInfo};
use crate::meta;
use crate::status::{self, ApiError};

/// Identifies an object: (index in [`KINDS`], namespace, name). Ordered as etcd keys are.
pub type Key = (usize, String, String);

/// The type of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The object was created (or, for a watch from "now", already existed).
    Added,
    /// The object was updated.
    Modified,
    /// The object was deleted; the event carries its last state at the deletion's version.
    Deleted,
}

impl EventType {
    /// The wire name (`ADDED`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One committed change.
#[derive(Debug, Clone)]
pub struct Change {
    /// The resourceVersion the change was committed at.
    pub rv: u64,
    /// Index in [`KINDS`].
    pub kind: usize,
    /// Namespace of the object.
    pub namespace: String,
    /// What happened.
    pub ty: EventType,
    /// The object after the change (for a delete: its last state, stamped with the delete's rv).
    pub object: Value,
    /// The object before the change (None for a create), so filtered watches can turn a
    /// MODIFIED that leaves or enters the selector into DELETED or ADDED, as the apiserver does.
    pub prev: Option<Value>,
}

/// What open watches receive, in commit order.
#[derive(Debug, Clone)]
pub enum Msg {
    /// A committed change.
    Change(Arc<Change>),
    /// Every change up to this resourceVersion has been sent before this message.
    Bookmark(u64),
}

/// The store; lives behind a `std::sync::Mutex` (never held across an await).
#[derive(Debug)]
pub struct Store {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    floor: u64,
    base: BTreeMap<Key, Value>,
    history: Vec<Arc<Change>>,
    tx: broadcast::Sender<Msg>,
}

/// Which parts of an object an update writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The main resource: everything but `.status` on kinds with a status subresource.
    Main,
    /// The status subresource: only `.status`.
    Status,
    /// Everything (the test's own writes).
    All,
}

/// What a watch starts with.
pub struct Subscription {
    /// Changes after the requested resourceVersion, or the current state as synthetic ADDED
    /// events for a watch from "now".
    pub replay: Vec<Arc<Change>>,
    /// The resourceVersion the replay brings the watcher to.
    pub start_rv: u64,
    /// Live changes from then on.
    pub rx: broadcast::Receiver<Msg>,
}

fn key_of(kind: usize, obj: &Value) -> Key {
    let s = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (kind, s("/metadata/namespace"), s("/metadata/name"))
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    /// An empty store at resourceVersion 1 (a fresh etcd is at revision 1).
    pub fn new() -> Store {
        let (tx, _) = broadcast::channel(1 << 16);
        Store {
            rv: 1,
            objects: BTreeMap::new(),
            floor: 1,
            base: BTreeMap::new(),
            history: Vec::new(),
            tx,
        }
    }

    /// The current resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// The oldest resourceVersion still served (watches and lists below it get 410).
    pub fn floor(&self) -> u64 {
        self.floor
    }

    fn commit(&mut self, kind: usize, ty: EventType, object: Value, prev: Option<Value>) {
        let key = key_of(kind, &object);
        match ty {
            EventType::Deleted => self.objects.remove(&key),
            _ => self.objects.insert(key.clone(), object.clone()),
        };
        let change = Arc::new(Change {
            rv: self.rv,
            kind,
            namespace: key.1,
            ty,
            object,
            prev,
        });
        self.history.push(change.clone());
        let _ = self.tx.send(Msg::Change(change));
    }

    /// Creates an object of `kind` in `namespace` (the path's namespace wins over the body's),
    /// assigning name (from `generateName`), uid, creationTimestamp, generation, resourceVersion.
    pub fn create(
        &mut self,
        kind: usize,
        namespace: &str,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        let k = &KINDS[kind];
        if !obj.get("metadata").is_some_and(Value::is_object) {
            obj["metadata"] = json!({});
        }
        let md = &mut obj["metadata"];
        if md
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            match md.get("generateName").and_then(Value::as_str) {
                Some(g) if !g.is_empty() => {
                    md["name"] = json!(format!("{g}{}", meta::name_suffix()));
                }
                _ => {
                    return Err(status::invalid(
                        k,
                        "",
                        "metadata.name: Required value: name or generateName is required",
                    ));
                }
            }
        }
        let name = md["name"].as_str().unwrap_or_default().to_string();
        if self
            .objects
            .contains_key(&(kind, namespace.to_string(), name.clone()))
        {
            return Err(status::already_exists(k, &name));
        }
        self.rv += 1;
        md["namespace"] = json!(namespace);
        md["uid"] = json!(meta::new_uid());
        md["creationTimestamp"] = json!(meta::now_rfc3339());
        md["resourceVersion"] = json!(self.rv.to_string());
        if k.generation {
            md["generation"] = json!(1);
        } else if let Some(m) = md.as_object_mut() {
            m.remove("generation");
        }
        obj["apiVersion"] = json!(k.api_version());
        obj["kind"] = json!(k.kind);
        self.commit(kind, EventType::Added, obj.clone(), None);
        Ok(obj)
    }

    /// Replaces an existing object, writing the parts `scope` names. A `metadata.resourceVersion` in `obj` must match (409 Conflict otherwise).
    /// An update that changes nothing commits nothing, as the apiserver's no-op updates.
    pub fn update(
        &mut self,
        kind: usize,
        namespace: &str,
        name: &str,
        obj: &Value,
        scope: Scope,
    ) -> Result<Value, ApiError> {
        let k: &KindInfo = &KINDS[kind];
        let key = (kind, namespace.to_string(), name.to_string());
        let cur = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| status::not_found(k, name))?;
        if let Some(want) = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            && !want.is_empty()
            && Some(want)
                != cur
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
        {
            return Err(status::conflict(k, name));
        }
        let mut next = if scope == Scope::Status {
            let mut n = cur.clone();
            match obj.get("status") {
                Some(s) => n["status"] = s.clone(),
                None => _ = n.as_object_mut().map(|m| m.remove("status")),
            }
            n
        } else {
            let mut n = obj.clone();
            if k.status_subresource && scope == Scope::Main {
                match cur.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => _ = n.as_object_mut().map(|m| m.remove("status")),
                }
            }
            for f in [
                "uid",
                "creationTimestamp",
                "generation",
                "namespace",
                "name",
            ] {
                if let Some(v) = cur["metadata"].get(f) {
                    n["metadata"][f] = v.clone();
                }
            }
            n["apiVersion"] = json!(k.api_version());
            n["kind"] = json!(k.kind);
            n
        };
        if meta::user_part(&next) == meta::user_part(&cur) {
            return Ok(cur);
        }
        self.rv += 1;
        if k.generation && meta::spec_part(&next) != meta::spec_part(&cur) {
            let g = cur
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            next["metadata"]["generation"] = json!(g + 1);
        }
        next["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.commit(kind, EventType::Modified, next.clone(), Some(cur));
        Ok(next)
    }

    /// Deletes an object; returns its last state (stamped with the deletion's resourceVersion).
    pub fn delete(&mut self, kind: usize, namespace: &str, name: &str) -> Result<Value, ApiError> {
        let key = (kind, namespace.to_string(), name.to_string());
        let cur = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| status::not_found(&KINDS[kind], name))?;
        self.rv += 1;
        let mut last = cur.clone();
        last["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.commit(kind, EventType::Deleted, last.clone(), Some(cur));
        Ok(last)
    }

    /// One object.
    pub fn get(&self, kind: usize, namespace: &str, name: &str) -> Option<Value> {
        self.objects
            .get(&(kind, namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// The objects of `kind` (in `namespace`, or all) as of resourceVersion `at` (None: now),
    /// in key order. 410 if `at` is below the compaction floor; 504 if it is in the future.
    pub fn snapshot(
        &self,
        kind: usize,
        namespace: Option<&str>,
        at: Option<u64>,
    ) -> Result<Vec<Value>, ApiError> {
        let in_scope = |k: &Key| k.0 == kind && namespace.is_none_or(|ns| ns == k.1);
        let at = match at {
            None => {
                return Ok(self
                    .objects
                    .iter()
                    .filter(|(k, _)| in_scope(k))
                    .map(|(_, v)| v.clone())
                    .collect());
            }
            Some(at) if at == self.rv => {
                return Ok(self
                    .objects
                    .iter()
                    .filter(|(k, _)| in_scope(k))
                    .map(|(_, v)| v.clone())
                    .collect());
            }
            Some(at) if at > self.rv => return Err(status::too_large_rv(at, self.rv)),
            Some(at) if at < self.floor => {
                return Err(status::expired(&status::too_old_message(at, self.floor)));
            }
            Some(at) => at,
        };
        let mut state: BTreeMap<Key, Value> = self
            .base
            .iter()
            .filter(|(k, _)| in_scope(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for c in self.history.iter().take_while(|c| c.rv <= at) {
            let key = key_of(c.kind, &c.object);
            if !in_scope(&key) {
                continue;
            }
            if c.ty == EventType::Deleted {
                state.remove(&key);
            } else {
                state.insert(key, c.object.clone());
            }
        }
        Ok(state.into_values().collect())
    }

    /// Forgets all history: resourceVersions below the current one give 410 from now on.
    pub fn compact(&mut self) {
        self.base = self.objects.clone();
        self.floor = self.rv;
        self.history.clear();
    }

    /// Starts a watch. `since` None means "from now, current state first" (resourceVersion
    /// unset or "0"); `Some(rv)` replays the changes strictly after `rv`, or fails with 410
    /// Expired if `rv` is older than the retained history.
    pub fn subscribe(
        &self,
        kind: usize,
        namespace: Option<&str>,
        since: Option<u64>,
    ) -> Result<Subscription, ApiError> {
        let rx = self.tx.subscribe();
        let replay = match since {
            None => self
                .objects
                .iter()
                .filter(|(k, _)| k.0 == kind && namespace.is_none_or(|ns| ns == k.1))
                .map(|(k, v)| {
                    Arc::new(Change {
                        rv: self.rv,
                        kind,
                        namespace: k.1.clone(),
                        ty: EventType::Added,
                        object: v.clone(),
                        prev: None,
                    })
                })
                .collect(),
            Some(rv) if rv < self.floor => {
                return Err(status::expired(&status::too_old_message(rv, self.floor)));
            }
            Some(rv) => self.history.iter().filter(|c| c.rv > rv).cloned().collect(),
        };
        Ok(Subscription {
            replay,
            start_rv: self.rv.max(since.unwrap_or(0)),
            rx,
        })
    }

    /// Sends a bookmark at the current resourceVersion to every open watch.
    pub fn bookmark(&self) {
        let _ = self.tx.send(Msg::Bookmark(self.rv));
    }

    /// Every stored object of `kind`, in all namespaces.
    pub fn all_of(&self, kind: usize) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|(k, _)| k.0 == kind)
            .map(|(_, v)| v.clone())
            .collect()
    }
}
