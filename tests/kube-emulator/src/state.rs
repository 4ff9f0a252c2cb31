//! The state shared by the HTTP handlers and the test's handle: the store, authentication and
//! authorization, request counters, the log of writes clients made, and the signal that cuts
//! open watches.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use crate::auth::Auth;
use crate::store::Store;

/// One write a client made over HTTP (create, update, patch or delete), for assertions.
#[derive(Debug, Clone)]
pub struct Write {
    /// `create`, `update`, `patch` or `delete`.
    pub verb: String,
    /// The API group of the resource (`""` for core).
    pub group: String,
    /// The resource, `wasmplugins/status` for the status subresource.
    pub resource: String,
    /// The namespace.
    pub namespace: String,
    /// The object as stored after the write (for delete: its last state).
    pub object: Value,
}

/// Everything the handlers share.
#[derive(Debug)]
pub struct Shared {
    /// The objects.
    pub store: Mutex<Store>,
    /// Tokens and RBAC rules.
    pub auth: Mutex<Auth>,
    /// Requests by (verb, resource).
    pub counters: Mutex<HashMap<(String, String), u64>>,
    /// Writes made over HTTP.
    pub writes: Mutex<Vec<Write>>,
    /// Bumped to cut every open watch.
    pub cut: watch::Sender<u64>,
    /// The default watch timeout when the client sets no `timeoutSeconds`.
    pub default_watch_timeout: Duration,
}

/// Locks a mutex, ignoring poisoning (a panicking test thread must not wedge the server).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// A fresh state with one token.
    pub fn new(token: &str, user: &str) -> Shared {
        let mut auth = Auth::default();
        auth.add_token(token, user);
        Shared {
            store: Mutex::new(Store::new()),
            auth: Mutex::new(auth),
            counters: Mutex::new(HashMap::new()),
            writes: Mutex::new(Vec::new()),
            cut: watch::channel(0).0,
            default_watch_timeout: Duration::from_secs(1800),
        }
    }

    /// Counts one request.
    pub fn count(&self, verb: &str, resource: &str) {
        *lock(&self.counters)
            .entry((verb.to_string(), resource.to_string()))
            .or_default() += 1;
    }
}
