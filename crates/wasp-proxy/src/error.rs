//! Why the proxy could not start.

use std::net::SocketAddr;

use crate::upstream::ClusterError;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener's (or the admin endpoint's) address cannot be bound.
    #[error("listener {name}: cannot bind {address}: {source}")]
    Bind {
        /// The listener's name (`admin` for the admin endpoint).
        name: String,
        /// The address asked for.
        address: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A listener's TLS settings are unusable (unreadable or mismatched certificate and key).
    #[error("listener {name}: TLS: {reason}")]
    Tls {
        /// The listener's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A cluster cannot be reached as configured.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// An access log cannot be opened or its format is not understood.
    #[error("access log {}: {reason}", path.display())]
    AccessLog {
        /// The log's file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The tracing settings are unusable.
    #[error("tracing: {0}")]
    Tracing(String),
    /// A worker or the admin thread could not be spawned.
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
}
