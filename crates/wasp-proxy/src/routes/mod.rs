//! Listeners as a worker sees them: the plugin chain and the route table (an HTTP
//! listener's routes, or a TCP listener's [`tcp::TcpRoutes`]), resolved against the clusters
//! of one configuration generation.

mod hosts;
pub(crate) mod plugins;
pub(crate) mod tcp;

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use wasp_host::HeaderMap;

use crate::generation::ListenerShared;
use crate::plugins::set::PluginSet;
use crate::spec::{
    ClusterSpec, ListenerSpec, PathMatch, RetryPolicy, RouteAction, RouteSpec, VirtualHostSpec,
};
use crate::upstream::ClusterId;

pub(crate) struct Listener {
    pub spec: ListenerSpec,
    /// What the workers share of it: socket, TLS, counters, access logs, connection epoch.
    pub shared: ListenerShared,
    /// Its plugin chain in the plugin set of this version, computed on first use.
    chain: RefCell<Option<(u64, Arc<[usize]>)>>,
    /// The default host's routes (`spec.routes`), their clusters resolved.
    targets: Vec<Option<ClusterId>>,
    /// The virtual hosts (`spec.virtual_hosts`): which one an authority picks, and the
    /// clusters of each one's routes.
    hosts: hosts::Hosts,
    host_targets: Vec<Vec<Option<ClusterId>>>,
    /// Whether any route or host gives a plugin a setting (if none does, a stream's chain is
    /// the listener's as it is).
    pub has_plugin_settings: bool,
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

/// The route a request matched, and the virtual host it is in (`None`: the default host).
pub(crate) struct Matched<'a> {
    pub target: Target<'a>,
    pub route: &'a RouteSpec,
    pub host: Option<&'a VirtualHostSpec>,
}

fn targets_of(routes: &[RouteSpec], clusters: &[ClusterSpec]) -> Vec<Option<ClusterId>> {
    routes
        .iter()
        .map(|route| match &route.action {
            RouteAction::Cluster { name, .. } => ClusterId::of(clusters, name),
            RouteAction::Direct { .. } => None,
        })
        .collect()
}

impl Listener {
    /// `spec`, its routes resolved against `clusters` (of the same generation).
    pub fn new(spec: ListenerSpec, shared: ListenerShared, clusters: &[ClusterSpec]) -> Listener {
        let targets = targets_of(&spec.routes, clusters);
        let host_targets = spec
            .virtual_hosts
            .iter()
            .map(|h| targets_of(&h.routes, clusters))
            .collect();
        let hosts = hosts::Hosts::new(&spec.virtual_hosts);
        let has_plugin_settings = spec.routes.iter().any(|r| !r.plugins.is_empty())
            || spec
                .virtual_hosts
                .iter()
                .any(|h| !h.plugins.is_empty() || h.routes.iter().any(|r| !r.plugins.is_empty()));
        let tcp = spec.tcp.as_ref().map(|t| tcp::TcpRoutes::new(t, clusters));
        Listener {
            spec,
            shared,
            chain: RefCell::new(None),
            targets,
            hosts,
            host_targets,
            has_plugin_settings,
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

    /// Where the first route that matches sends the request.
    pub fn route(&self, headers: &HeaderMap) -> Option<Target<'_>> {
        self.matched(headers).map(|m| m.target)
    }

    /// The first route whose path and headers match, in the virtual host the request's
    /// authority picks (Envoy's route table), with that host.
    pub fn matched(&self, headers: &HeaderMap) -> Option<Matched<'_>> {
        // Envoy's route matcher reads the scheme from `x-forwarded-proto` (added before the
        // filters run) and matches nothing without it, as after a plugin replaced every
        // request header with `proxy_set_header_map_pairs`.
        if headers
            .get(b"x-forwarded-proto")
            .is_none_or(<[u8]>::is_empty)
        {
            return None;
        }
        let (routes, targets, host) = match self.hosts.pick(headers.get(b":authority")) {
            Some(i) => (
                &self.spec.virtual_hosts[i].routes,
                &self.host_targets[i],
                Some(&self.spec.virtual_hosts[i]),
            ),
            None => (&self.spec.routes, &self.targets, None),
        };
        let path = headers.get_str(":path").unwrap_or("/");
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        let i = routes
            .iter()
            .position(|route| matches(route, path, headers))?;
        let route = &routes[i];
        let target = match &route.action {
            RouteAction::Cluster {
                timeout,
                retry,
                hash_header,
                ..
            } => Target::Cluster {
                id: targets[i],
                timeout: *timeout,
                retry: retry.as_ref(),
                hash_header: hash_header.as_deref(),
            },
            RouteAction::Direct { status, body } => Target::Direct {
                status: *status,
                body,
            },
        };
        Some(Matched {
            target,
            route,
            host,
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
