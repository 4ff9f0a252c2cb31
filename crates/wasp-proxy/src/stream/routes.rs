//! Listeners as a worker sees them: the plugin chain and the route table.

use wasp_host::HeaderMap;

use crate::spec::{ListenerSpec, PathMatch, RouteAction, RouteSpec};

pub(crate) struct Listener {
    pub spec: ListenerSpec,
    /// The listener's place in the spec (its chain in each plugin set).
    pub index: usize,
}

impl Listener {
    /// The first route whose path and headers match, as Envoy's route table.
    pub fn route(&self, headers: &HeaderMap) -> Option<&RouteAction> {
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
        self.spec
            .routes
            .iter()
            .find(|route| matches(route, path, headers))
            .map(|route| &route.action)
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
