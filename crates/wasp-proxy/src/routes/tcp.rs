//! A TCP listener's routing: the cluster for each connection, by the TLS server name it sends
//! (SNI routes) or the listener's default.

use crate::spec::{ClusterSpec, TcpProxySpec};
use crate::upstream::ClusterId;

/// A TCP listener's routing, resolved against the clusters once per worker.
pub(crate) struct TcpRoutes {
    pub spec: TcpProxySpec,
    default: Option<ClusterId>,
    /// Per SNI route, in order.
    by_name: Vec<Option<ClusterId>>,
}

impl TcpRoutes {
    pub fn new(spec: &TcpProxySpec, clusters: &[ClusterSpec]) -> TcpRoutes {
        TcpRoutes {
            spec: spec.clone(),
            default: spec
                .cluster
                .as_deref()
                .and_then(|c| ClusterId::of(clusters, c)),
            by_name: spec
                .sni_routes
                .iter()
                .map(|r| ClusterId::of(clusters, &r.cluster))
                .collect(),
        }
    }

    /// The cluster for a connection that sent `server_name`.
    pub fn pick(&self, server_name: Option<&str>) -> Option<ClusterId> {
        let by_sni = server_name.and_then(|name| {
            self.spec
                .sni_routes
                .iter()
                .position(|r| r.server_names.iter().any(|p| matches(p, name)))
        });
        match by_sni {
            Some(i) => self.by_name[i],
            None => self.default,
        }
    }
}

/// Whether `name` matches `pattern`: equal, or `*.suffix` with one or more labels before the
/// suffix (both lower-case).
pub fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => name
            .strip_suffix(suffix)
            .and_then(|head| head.strip_suffix('.'))
            .is_some_and(|head| !head.is_empty()),
        None => pattern == name,
    }
}
