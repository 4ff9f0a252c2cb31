//! Why the proxy could not start.

use std::net::SocketAddr;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listener {name}: cannot bind {address}: {source}")]
    Bind {
        name: String,
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("listener {name}: TLS: {reason}")]
    Tls { name: String, reason: String },
    #[error("{0}")]
    Cluster(String),
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
}
