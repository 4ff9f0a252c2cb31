//! TCP listeners (`protocol: tcp`): the cluster they relay to, SNI routes (TLS passthrough)
//! and the idle timeout — Envoy's `tcp_proxy` as a listener's fields.

use std::time::Duration;

use serde_saphyr::Spanned;
use wasp_spec::{ClusterSpec, SniRoute, TcpProxySpec};

use crate::raw::RawListener;

use super::{Builder, Result};

/// Envoy's tcp_proxy closes a connection idle for an hour unless told otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

impl Builder<'_> {
    /// The TCP proxy of listener `l` (at `path`).
    pub(super) fn tcp_proxy(
        &self,
        l: &RawListener,
        path: &str,
        clusters: &[ClusterSpec],
    ) -> Result<TcpProxySpec> {
        if let Some(routes) = &l.routes
            && let Some(first) = routes.first()
        {
            return Err(self.errs.at(
                &first.referenced,
                format!("{path}.routes"),
                "a tcp listener has no HTTP routes: give it `cluster:` (and `sni:` to choose by \
                 server name)",
            ));
        }
        if let Some(first) = l.virtual_hosts.as_ref().and_then(|h| h.first()) {
            return Err(self.errs.at(
                &first.referenced,
                format!("{path}.virtual_hosts"),
                "a tcp listener has no HTTP virtual hosts: give it `cluster:` (and `sni:` to choose by \
                 server name)",
            ));
        }
        let cluster = l
            .cluster
            .as_ref()
            .map(|c| self.tcp_cluster(c, &format!("{path}.cluster"), clusters))
            .transpose()?;
        let mut sni_routes = Vec::new();
        for (i, route) in l.sni.as_deref().unwrap_or_default().iter().enumerate() {
            let at = format!("{path}.sni[{i}]");
            let names = &route.value.server_names;
            if names.value.is_empty() {
                return Err(self.errs.at(
                    &names.referenced,
                    format!("{at}.server_names"),
                    "at least one server name is required",
                ));
            }
            let mut server_names = Vec::new();
            for (j, name) in names.value.iter().enumerate() {
                server_names.push(self.server_name(name, &format!("{at}.server_names[{j}]"))?);
            }
            sni_routes.push(SniRoute {
                server_names,
                cluster: self.tcp_cluster(
                    &route.value.cluster,
                    &format!("{at}.cluster"),
                    clusters,
                )?,
            });
        }
        if cluster.is_none() && sni_routes.is_empty() {
            return Err(self.errs.at(
                &l.name.referenced,
                path,
                "a tcp listener needs `cluster:` or `sni:` routes: where its connections go",
            ));
        }
        if !sni_routes.is_empty()
            && let Some(tls) = &l.tls
        {
            return Err(self.errs.at(
                &tls.cert_file.referenced,
                format!("{path}.tls"),
                "`sni:` routes read the client's TLS server name and pass TLS through; a listener \
                 that terminates TLS (`tls:`) routes by `cluster:` only",
            ));
        }
        let idle_timeout = self
            .duration(l.idle_timeout.as_ref(), &format!("{path}.idle_timeout"))?
            .unwrap_or(DEFAULT_IDLE_TIMEOUT);
        Ok(TcpProxySpec {
            cluster,
            sni_routes,
            idle_timeout: (!idle_timeout.is_zero()).then_some(idle_timeout),
        })
    }

    /// An HTTP listener must not carry the TCP fields (a forgotten `protocol: tcp`).
    pub(super) fn no_tcp_fields(&self, l: &RawListener, path: &str) -> Result<()> {
        let given = [
            ("cluster", l.cluster.as_ref().map(|c| &c.referenced)),
            (
                "sni",
                l.sni
                    .as_ref()
                    .and_then(|s| s.first())
                    .map(|s| &s.referenced),
            ),
        ];
        match given.into_iter().find_map(|(field, at)| Some((field, at?))) {
            Some((field, at)) => Err(self.errs.at(
                at,
                format!("{path}.{field}"),
                format!("`{field}` is for tcp listeners: add `protocol: tcp`, or route HTTP with `routes:`"),
            )),
            None => Ok(()),
        }
    }

    /// A cluster a TCP listener can relay to: defined, and reached over plain TCP.
    fn tcp_cluster(
        &self,
        cluster: &Spanned<String>,
        path: &str,
        clusters: &[ClusterSpec],
    ) -> Result<String> {
        let name = self.known_cluster(cluster, path, clusters)?;
        if clusters.iter().any(|c| c.name == name && c.tls.is_some()) {
            return Err(self.errs.at(
                &cluster.referenced,
                path,
                format!(
                    "cluster `{name}` originates TLS, which tcp listeners do not do yet: relay to a \
                     cluster without `tls:` (TLS from the client passes through untouched)"
                ),
            ));
        }
        Ok(name)
    }

    /// A cluster name that `clusters` defines.
    pub(super) fn known_cluster(
        &self,
        cluster: &Spanned<String>,
        path: &str,
        clusters: &[ClusterSpec],
    ) -> Result<String> {
        let name = cluster.value.trim();
        if clusters.iter().any(|c| c.name == name) {
            return Ok(name.to_string());
        }
        let known: Vec<&str> = clusters.iter().map(|c| c.name.as_str()).collect();
        let known = if known.is_empty() {
            "no clusters are defined".to_string()
        } else {
            format!("clusters: {}", known.join(", "))
        };
        Err(self.errs.at(
            &cluster.referenced,
            path,
            format!("unknown cluster `{name}` ({known})"),
        ))
    }

    /// A server name to match: DNS labels, optionally `*.` in front; kept lower-case.
    fn server_name(&self, name: &Spanned<String>, path: &str) -> Result<String> {
        let text = name.value.trim().to_ascii_lowercase();
        let labels = text.strip_prefix("*.").unwrap_or(&text);
        let valid = !labels.is_empty()
            && labels.len() <= 253
            && labels.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if valid {
            Ok(text)
        } else {
            Err(self.errs.at(
                &name.referenced,
                path,
                format!(
                    "`{}` is not a server name (`db.example.com` or `*.example.com`)",
                    name.value
                ),
            ))
        }
    }
}
