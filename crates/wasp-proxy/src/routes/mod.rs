//! Listeners as a worker sees them: the plugin chain and the route table (an HTTP
//! listener's routes, or a TCP listener's [`tcp::TcpRoutes`]), resolved against the clusters
//! of one configuration generation.

pub(crate) mod tcp;

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use wasp_host::HeaderMap;

use crate::generation::ListenerShared;
use crate::plugins::set::PluginSet;
use crate::spec::{ClusterSpec, ListenerSpec, PathMatch, RetryPolicy, RouteAction, RouteSpec};
use crate::upstream::ClusterId;

pub(crate) struct Listener {
    pub spec: ListenerSpec,
    /// What the workers share of it: socket, TLS, counters, access logs, connection epoch.
    pub shared: ListenerShared,
    /// Its plugin chain in the plugin set of this version, computed on first use.
    chain: RefCell<Option<(u64, Arc<[usize]>)>>,
    /// The cluster of each of `spec.routes`, resolved once (`None` for a direct response or
    /// a cluster the spec does not define).
    targets: Vec<Option<ClusterId>>,
    /// A TCP listener's routing (`spec.tcp`), resolved likewise.
    pub tcp: Option<tcp::TcpRoutes>,
}

/// Where a matched route sends the request.
pub(crate) enum Target<'a> {
    /// To a cluster; `None` when the spec names a cluster it does not define.
    Cluster {
        id: Option<ClusterId>,
        timeout: Option<Duration>,
        retry: Option<&'a RetryPolicy>,
        hash_header: Option<&'a str>,
    },
    /// A direct response.
    Direct { status: u16, body: &'a str },
}

impl Listener {
    /// `spec`, its routes resolved against `clusters` (of the same generation).
    pub fn new(spec: ListenerSpec, shared: ListenerShared, clusters: &[ClusterSpec]) -> Listener {
        let targets = spec
            .routes
            .iter()
            .map(|route| match &route.action {
                RouteAction::Cluster { name, .. } => ClusterId::of(clusters, name),
                RouteAction::Direct { .. } => None,
            })
            .collect();
        let tcp = spec.tcp.as_ref().map(|t| tcp::TcpRoutes::new(t, clusters));
        Listener {
            spec,
            shared,
            chain: RefCell::new(None),
            targets,
            tcp,
        }
    }

    /// The plugins of `set` that apply here, in chain order.
    pub fn chain(&self, set: &PluginSet) -> Arc<[usize]> {
        if let Some((version, chain)) = &*self.chain.borrow()
            && *version == set.version
        {
            return chain.clone();
        }
        let chain = set.chain_for(&self.spec);
        *self.chain.borrow_mut() = Some((set.version, chain.clone()));
        chain
    }

    /// The first route whose path and headers match, as Envoy's route table.
    pub fn route(&self, headers: &HeaderMap) -> Option<Target<'_>> {
        // Envoy's route matcher reads the scheme from `x-forwarded-proto` (added before the
        // filters run) and matches nothing without it, as after a plugin replaced every
        // request header with `proxy_set_header_map_pairs`.
        if headers
            .get(b"x-forwarded-proto")
            .is_none_or(<[u8]>::is_empty)
        {
            return None;
        }
        let path = headers.get_str(":path").unwrap_or("/");
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        let i = self
            .spec
            .routes
            .iter()
            .position(|route| matches(route, path, headers))?;
        Some(match &self.spec.routes[i].action {
            RouteAction::Cluster {
                timeout,
                retry,
                hash_header,
                ..
            } => Target::Cluster {
                id: self.targets[i],
                timeout: *timeout,
                retry: retry.as_ref(),
                hash_header: hash_header.as_deref(),
            },
            RouteAction::Direct { status, body } => Target::Direct {
                status: *status,
                body,
            },
        })
    }
}

fn matches(route: &RouteSpec, path: &str, headers: &HeaderMap) -> bool {
    let path_ok = match &route.path {
        PathMatch::Prefix(prefix) => path.starts_with(prefix.as_str()),
        PathMatch::Exact(exact) => path == exact,
        PathMatch::Regex(re) => re
            .find(path)
            .is_some_and(|m| m.start() == 0 && m.end() == path.len()),
    };
    path_ok
        && route
            .headers
            .iter()
            .all(|h| match (&h.value, headers.get(h.name.as_bytes())) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(want), Some(got)) => want.as_bytes() == got,
            })
}
