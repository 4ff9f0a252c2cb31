//! `listeners` and their routes: addresses, direction, TLS, path and header matches, actions.

use std::collections::HashMap;

use serde_saphyr::Spanned;
use wasp_spec::{
    ClusterSpec, HeaderMatch, ListenerSpec, PathMatch, RouteAction, RouteSpec, TrafficDirection,
};

use crate::DEFAULT_ROUTE_TIMEOUT;
use crate::raw::{RawDirection, RawListener, RawListenerProtocol, RawRoute};
use crate::values::{check_header_name, regex_error_message};

use super::{Builder, Result};

impl Builder<'_> {
    pub(super) fn listeners(
        &self,
        raw: Option<&Spanned<Vec<Spanned<RawListener>>>>,
        clusters: &[ClusterSpec],
    ) -> Result<Vec<ListenerSpec>> {
        let Some(raw) = raw.filter(|l| !l.value.is_empty()) else {
            return Err(self.errs.at_opt(
                raw.map(|l| &l.referenced),
                "listeners",
                "at least one listener is required",
            ));
        };
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut addresses: HashMap<std::net::SocketAddr, usize> = HashMap::new();
        let mut out = Vec::with_capacity(raw.value.len());
        for (i, l) in raw.value.iter().enumerate() {
            let l = &l.value;
            let path = format!("listeners[{i}]");
            let name = self.name(&l.name, &format!("{path}.name"))?;
            if let Some(first) = names.insert(name.clone(), i) {
                return Err(self.errs.at(
                    &l.name.referenced,
                    format!("{path}.name"),
                    format!("duplicate listener name `{name}` (also listeners[{first}])"),
                ));
            }
            let address = self.socket_addr(&l.address, &format!("{path}.address"))?;
            if address.port() != 0
                && let Some(first) = addresses.insert(address, i)
            {
                return Err(self.errs.at(
                    &l.address.referenced,
                    format!("{path}.address"),
                    format!("address {address} is already used by listeners[{first}]"),
                ));
            }
            let is_tcp = l
                .protocol
                .as_ref()
                .is_some_and(|p| matches!(p.value, RawListenerProtocol::Tcp));
            let tcp = if is_tcp {
                self.no_http_fields(l, &path)?;
                Some(self.tcp_proxy(l, &path, clusters)?)
            } else {
                self.no_tcp_fields(l, &path)?;
                None
            };
            let tls = match &l.tls {
                Some(tls) => Some(self.server_tls(tls, &format!("{path}.tls"))?),
                None => None,
            };
            let routes = self.routes(
                l.routes.as_deref().unwrap_or_default(),
                &format!("{path}.routes"),
                clusters,
            )?;
            let virtual_hosts = self.virtual_hosts(
                l.virtual_hosts.as_deref().unwrap_or_default(),
                &path,
                clusters,
                !routes.is_empty(),
            )?;
            out.push(ListenerSpec {
                name,
                address,
                direction: match l.direction {
                    None | Some(RawDirection::Inbound) => TrafficDirection::Inbound,
                    Some(RawDirection::Outbound) => TrafficDirection::Outbound,
                },
                tls,
                routes,
                virtual_hosts,
                tcp,
                access_log: self.access_logs(l.access_log.as_deref().unwrap_or_default(), &path)?,
                http: if is_tcp {
                    wasp_spec::HttpOptions::default()
                } else {
                    self.http_options(l, &path)?
                },
            });
        }
        Ok(out)
    }

    pub(super) fn route(
        &self,
        raw: &Spanned<RawRoute>,
        path: &str,
        clusters: &[ClusterSpec],
    ) -> Result<RouteSpec> {
        let r = &raw.value;
        let m = &r.matcher;
        let match_path = format!("{path}.match");
        let given: Vec<(&str, &Spanned<String>)> = [
            ("prefix", &m.value.prefix),
            ("path", &m.value.path),
            ("regex", &m.value.regex),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
        let path_match = match given.as_slice() {
            [("prefix", v)] => PathMatch::Prefix(v.value.clone()),
            [("path", v)] => PathMatch::Exact(v.value.clone()),
            [(_, v)] => {
                let field = format!("{match_path}.regex");
                if let Err(e) = regex::Regex::new(&v.value) {
                    return Err(self.errs.at(
                        &v.referenced,
                        field,
                        format!("invalid regex `{}`: {}", v.value, regex_error_message(&e)),
                    ));
                }
                // Envoy's safe_regex must match the whole path.
                let anchored = regex::Regex::new(&format!("^(?:{})$", v.value)).map_err(|e| {
                    self.errs.at(
                        &v.referenced,
                        field,
                        format!("invalid regex `{}`: {}", v.value, regex_error_message(&e)),
                    )
                })?;
                PathMatch::Regex(anchored)
            }
            [] => {
                return Err(self.errs.at(
                    &m.referenced,
                    match_path,
                    "exactly one of prefix, path or regex is required",
                ));
            }
            several => {
                let names: Vec<&str> = several.iter().map(|(k, _)| *k).collect();
                return Err(self.errs.at(
                    &m.referenced,
                    match_path,
                    format!(
                        "exactly one of prefix, path or regex is required, found {}",
                        names.join(" and ")
                    ),
                ));
            }
        };
        let mut headers = Vec::new();
        for (k, h) in m
            .value
            .headers
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let name = check_header_name(h.value.name.value.trim()).map_err(|msg| {
                self.errs.at(
                    &h.value.name.referenced,
                    format!("{match_path}.headers[{k}].name"),
                    msg,
                )
            })?;
            headers.push(HeaderMatch {
                name,
                value: h.value.value.clone(),
            });
        }
        let action = match (&r.cluster, &r.direct_response) {
            (Some(cluster), None) => {
                let name = self.known_cluster(cluster, &format!("{path}.cluster"), clusters)?;
                let timeout = self
                    .duration(r.timeout.as_ref(), &format!("{path}.timeout"))?
                    .unwrap_or(DEFAULT_ROUTE_TIMEOUT);
                let retry = match &r.retry_policy {
                    Some(p) => Some(self.retry_policy(p, &format!("{path}.retry_policy"))?),
                    None => None,
                };
                let hash_header = match &r.hash_policy {
                    Some(h) => Some(
                        self.hash_header(&h.value.header, &format!("{path}.hash_policy.header"))?,
                    ),
                    None => None,
                };
                RouteAction::Cluster {
                    name,
                    timeout: (!timeout.is_zero()).then_some(timeout),
                    retry,
                    hash_header,
                }
            }
            (None, Some(direct)) => {
                if let Some(timeout) = &r.timeout {
                    return Err(self.errs.at(
                        &timeout.referenced,
                        format!("{path}.timeout"),
                        "timeout applies only to routes to a cluster",
                    ));
                }
                let status = &direct.value.status;
                if !(200..=599).contains(&status.value) {
                    return Err(self.errs.at(
                        &status.referenced,
                        format!("{path}.direct_response.status"),
                        format!("invalid status {}: expected 200 to 599", status.value),
                    ));
                }
                RouteAction::Direct {
                    status: status.value,
                    body: direct.value.body.clone().unwrap_or_default(),
                }
            }
            (None, None) => {
                return Err(self.errs.at(
                    &raw.referenced,
                    path,
                    "exactly one of cluster or direct_response is required",
                ));
            }
            (Some(_), Some(direct)) => {
                return Err(self.errs.at(
                    &direct.referenced,
                    path,
                    "exactly one of cluster or direct_response is required, found both",
                ));
            }
        };
        let name = match &r.name {
            Some(n) => self.name(n, &format!("{path}.name"))?,
            None => String::new(),
        };
        Ok(RouteSpec {
            name,
            // Filled in once the plugins are known (route_plugins.rs).
            plugins: Default::default(),
            path: path_match,
            headers,
            action,
        })
    }
}
