//! What a TCP connection looks like to the network plugins of its chain.
//!
//! One [`TcpConnection`] exists per proxied connection and is shared (through
//! [`SharedConnection`]) by every network plugin of the chain. The embedder places the bytes a
//! plugin should see in `downstream_data` before `on_downstream_data` (everything read from
//! the client and not yet passed on) and in `upstream_data` before `on_upstream_data`; what the
//! buffers hold after the callback is what goes on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::codec::property::PropertyValue;

/// A connection shared by the host and the embedder.
pub type SharedConnection = Arc<Mutex<TcpConnection>>;

/// Attributes of a connection that only the embedder knows (addresses, TLS, the upstream).
///
/// `path` is the property path split into segments (`["source", "address"]`); return `None`
/// for anything unknown so the plugin gets `NOT_FOUND`.
pub trait ConnectionProperties: Send + Sync {
    /// The value of the attribute at `path`, or `None`. Called from inside a hostcall: must
    /// not block.
    fn property(&self, path: &[&[u8]], connection: &TcpConnection) -> Option<PropertyValue>;
}

/// The data of one TCP connection as network plugins see it.
#[derive(Default)]
pub struct TcpConnection {
    /// Bytes from the client not yet passed on (the DOWNSTREAM_DATA buffer).
    pub downstream_data: Vec<u8>,
    /// Bytes from the upstream not yet passed on (the UPSTREAM_DATA buffer).
    pub upstream_data: Vec<u8>,
    /// Values written with `proxy_set_property`, keyed by their NUL-joined path (the
    /// connection's filter state, visible to every plugin of the chain).
    pub filter_state: HashMap<Vec<u8>, Vec<u8>>,
    /// Embedder-supplied attributes of this connection.
    pub properties: Option<Arc<dyn ConnectionProperties>>,
}

impl TcpConnection {
    /// A fresh shared connection with these attributes.
    pub fn shared(properties: Option<Arc<dyn ConnectionProperties>>) -> SharedConnection {
        Arc::new(Mutex::new(TcpConnection {
            properties,
            ..TcpConnection::default()
        }))
    }
}

impl std::fmt::Debug for TcpConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpConnection")
            .field("downstream_data_len", &self.downstream_data.len())
            .field("upstream_data_len", &self.upstream_data.len())
            .field("filter_state", &self.filter_state.len())
            .finish_non_exhaustive()
    }
}
