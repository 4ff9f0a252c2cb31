//! An EMULATOR of the Kubernetes apiserver's list/watch protocol, for tests. It is not an
//! apiserver: no etcd, no admission, no schemas, no real RBAC objects — only the wire behaviour
//! a client of the list/watch API depends on, built from the Kubernetes API reference
//! (<https://kubernetes.io/docs/reference/using-api/api-concepts/>):
//!
//! - lists (`<Kind>List` with `metadata.resourceVersion`), `limit`/`continue` pagination over a
//!   consistent snapshot, `410 Expired` for a compacted continue token;
//! - watches: a chunked stream of `{"type","object"}` lines strictly after a resourceVersion
//!   (unset or `"0"`: the current state as ADDED first), bookmarks, `timeoutSeconds`, and an
//!   `ERROR` event carrying a 410 `Status` ("too old resource version") for a compacted one;
//! - one global, strictly increasing resourceVersion across kinds (etcd's revision);
//! - bearer-token authentication (401) and an RBAC-like rule table (403), with `Status` bodies
//!   shaped as the apiserver's;
//! - get, create, update, merge-patch, delete, the `status` subresource, Events (an
//!   events.k8s.io/v1 Event validated on create as the apiserver does), discovery and
//!   kubectl's `Table` output.
//!
//! Tests drive it through [`KubeEmulator`]: add, change and delete objects, cut watches, compact
//! history, set rules, stop and restart the server, and read counters and the writes made.

pub mod api;
pub mod auth;
pub mod discovery;
pub mod fixtures;
pub mod kinds;
pub mod meta;
pub mod router;
pub mod selectors;
pub mod server;
pub mod state;
pub mod status;
pub mod store;
pub mod tls;
pub mod validate;
pub mod watch;

mod handle;

pub use auth::Rule;
pub use handle::{Error, KubeEmulator, Options};
pub use state::Write;
pub use status::ApiError;
