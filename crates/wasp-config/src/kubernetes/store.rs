//! The objects the watches last saw, and a counter that moves whenever they change.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use kube::api::DynamicObject;
use tokio::sync::watch;

/// Where an object sits: its kind's plural, namespace and name (sorted, so that a snapshot
/// reads objects in one stable order).
pub type ObjectKey = (&'static str, String, String);

/// What one watch sees: a kind in a namespace, or one named object of it (a Secret).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Scope {
    /// The kind's plural.
    pub plural: &'static str,
    /// The namespace watched.
    pub namespace: String,
    /// Only this object (`fieldSelector=metadata.name=`), or all of the namespace.
    pub name: Option<String>,
}

impl Scope {
    fn holds(&self, (plural, namespace, name): &ObjectKey) -> bool {
        *plural == self.plural
            && *namespace == self.namespace
            && self.name.as_ref().is_none_or(|n| n == name)
    }
}

/// One object as last seen, and the resourceVersion it had when something other than its
/// status last changed.
///
/// Status writes (wasp's own conditions, or another controller's) give an object a new
/// resourceVersion without changing what it declares: they are not news, and with
/// `imagePullPolicy: Always` they must not look like an edit that asks for a new pull.
#[derive(Clone)]
struct Entry {
    object: DynamicObject,
    content_version: Option<String>,
}

/// Why a watch cannot read what it should: kept from its first error until it lists again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchFailure {
    /// What the watch reads.
    pub scope: Scope,
    /// The apiserver answered 403: RBAC does not grant it (retrying will not help until it
    /// does).
    pub forbidden: bool,
    /// The error, as the client reports it.
    pub message: String,
}

/// The objects of every watch, by key; each watch replaces its own part on a re-list.
pub struct Objects {
    objects: Mutex<BTreeMap<ObjectKey, Entry>>,
    failures: Mutex<Vec<WatchFailure>>,
    changed: watch::Sender<u64>,
    /// Watches that completed their first list.
    listed: watch::Sender<BTreeSet<Scope>>,
}

impl Default for Objects {
    fn default() -> Objects {
        Objects {
            objects: Mutex::default(),
            failures: Mutex::default(),
            changed: watch::Sender::new(0),
            listed: watch::Sender::new(BTreeSet::new()),
        }
    }
}

impl Objects {
    /// A receiver that sees the counter move on every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// A receiver of the watches that completed their first list.
    pub fn listed(&self) -> watch::Receiver<BTreeSet<Scope>> {
        self.listed.subscribe()
    }

    /// The watch of `scope` completed its first list.
    pub fn first_list_done(&self, scope: &Scope) {
        self.listed.send_modify(|listed| {
            listed.insert(scope.clone());
        });
    }

    /// A watch's request failed. A failure of a new kind (or of a scope that was fine) is news:
    /// a pull secret that cannot be read changes the reason its plugin's fetch fails.
    pub fn failed(&self, failure: WatchFailure) {
        let mut failures = lock(&self.failures);
        let news = match failures.iter_mut().find(|f| f.scope == failure.scope) {
            Some(f) if f.forbidden == failure.forbidden => {
                f.message = failure.message;
                false
            }
            Some(f) => {
                *f = failure;
                true
            }
            None => {
                failures.push(failure);
                true
            }
        };
        drop(failures);
        if news {
            self.bump();
        }
    }

    /// A watch listed: its failure, if any, is over.
    pub fn recovered(&self, scope: &Scope) {
        let mut failures = lock(&self.failures);
        let before = failures.len();
        failures.retain(|f| f.scope != *scope);
        let news = failures.len() != before;
        drop(failures);
        if news {
            self.bump();
        }
    }

    /// The watches failing now.
    pub fn failures(&self) -> Vec<WatchFailure> {
        lock(&self.failures).clone()
    }

    /// The objects now, in key order, each with `metadata.resourceVersion` set to the version
    /// of its last change other than to its status.
    pub fn snapshot(&self) -> Vec<(ObjectKey, DynamicObject)> {
        self.lock()
            .iter()
            .map(|(k, entry)| {
                let mut object = entry.object.clone();
                object.metadata.resource_version = entry.content_version.clone();
                (k.clone(), object)
            })
            .collect()
    }

    /// Adds or replaces one object.
    pub fn apply(&self, plural: &'static str, object: DynamicObject) {
        let Some(key) = key(plural, &object) else {
            return;
        };
        let mut objects = self.lock();
        let entry = match objects.get(&key) {
            // A watch that resumes may repeat an object unchanged, and a status write changes
            // only the status: no news then.
            Some(old) if same_content(&old.object, &object) => Entry {
                content_version: old.content_version.clone(),
                object,
            },
            _ => Entry {
                content_version: object.metadata.resource_version.clone(),
                object,
            },
        };
        let news = objects
            .insert(key, entry.clone())
            .is_none_or(|old| old.content_version != entry.content_version);
        drop(objects);
        if news {
            self.bump();
        }
    }

    /// Removes one object.
    pub fn delete(&self, plural: &'static str, object: &DynamicObject) {
        if let Some(key) = key(plural, object)
            && self.lock().remove(&key).is_some()
        {
            self.bump();
        }
    }

    /// Replaces everything one watch holds (its `scope`) by a fresh list.
    pub fn replace(&self, scope: &Scope, listed: Vec<DynamicObject>) {
        let mut objects = self.lock();
        let old: BTreeMap<ObjectKey, Entry> =
            objects.extract_if(.., |k, _| scope.holds(k)).collect();
        let before: Vec<(ObjectKey, Option<String>)> = old
            .iter()
            .map(|(k, v)| (k.clone(), v.content_version.clone()))
            .collect();
        let mut after = Vec::with_capacity(listed.len());
        for object in listed {
            if let Some(key) = key(scope.plural, &object) {
                let content_version = match old.get(&key) {
                    Some(o) if same_content(&o.object, &object) => o.content_version.clone(),
                    _ => object.metadata.resource_version.clone(),
                };
                after.push((key.clone(), content_version.clone()));
                objects.insert(
                    key,
                    Entry {
                        object,
                        content_version,
                    },
                );
            }
        }
        drop(objects);
        after.sort();
        if before != after {
            self.bump();
        }
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<ObjectKey, Entry>> {
        lock(&self.objects)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn key(plural: &'static str, object: &DynamicObject) -> Option<ObjectKey> {
    let namespace = object.metadata.namespace.clone().unwrap_or_default();
    Some((plural, namespace, object.metadata.name.clone()?))
}

/// Whether two versions of an object differ at most in their status and in what the apiserver
/// keeps up to date by itself (resourceVersion, managedFields).
fn same_content(a: &DynamicObject, b: &DynamicObject) -> bool {
    let strip = |o: &DynamicObject| {
        let mut metadata = o.metadata.clone();
        metadata.resource_version = None;
        metadata.managed_fields = None;
        let mut data = o.data.clone();
        if let Some(map) = data.as_object_mut() {
            map.remove("status");
        }
        (metadata, data)
    };
    strip(a) == strip(b)
}
