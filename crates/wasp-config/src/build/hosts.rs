//! A listener's virtual hosts (Envoy's `virtual_hosts`): names, domains with Envoy's wildcard
//! rules, and their routes.

use std::collections::HashMap;

use serde_saphyr::Spanned;
use wasp_spec::{ClusterSpec, RouteSpec, VirtualHostSpec};

use crate::raw::{RawRoute, RawVirtualHost};

use super::{Builder, Result};

impl Builder<'_> {
    /// A list of routes at `path`.
    pub(super) fn routes(
        &self,
        raw: &[Spanned<RawRoute>],
        path: &str,
        clusters: &[ClusterSpec],
    ) -> Result<Vec<RouteSpec>> {
        raw.iter()
            .enumerate()
            .map(|(j, r)| self.route(r, &format!("{path}[{j}]"), clusters))
            .collect()
    }

    /// The `virtual_hosts` of the listener at `path`; `default_routes`: whether the listener
    /// has `routes:` of its own (the host `*`, which no virtual host may then claim).
    pub(super) fn virtual_hosts(
        &self,
        raw: &[Spanned<RawVirtualHost>],
        path: &str,
        clusters: &[ClusterSpec],
        default_routes: bool,
    ) -> Result<Vec<VirtualHostSpec>> {
        let mut names: HashMap<String, usize> = HashMap::new();
        // Every domain once per listener, as Envoy requires of a route configuration.
        let mut domains: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::with_capacity(raw.len());
        for (i, h) in raw.iter().enumerate() {
            let h = &h.value;
            let at = format!("{path}.virtual_hosts[{i}]");
            let name = self.name(&h.name, &format!("{at}.name"))?;
            if let Some(first) = names.insert(name.clone(), i) {
                return Err(self.errs.at(
                    &h.name.referenced,
                    format!("{at}.name"),
                    format!("duplicate virtual host name `{name}` (also virtual_hosts[{first}])"),
                ));
            }
            if h.domains.value.is_empty() {
                return Err(self.errs.at(
                    &h.domains.referenced,
                    format!("{at}.domains"),
                    "at least one domain is required (`*` for every host)",
                ));
            }
            let mut list = Vec::with_capacity(h.domains.value.len());
            for (k, d) in h.domains.value.iter().enumerate() {
                let field = format!("{at}.domains[{k}]");
                let domain =
                    check_domain(&d.value).map_err(|m| self.errs.at(&d.referenced, &field, m))?;
                if domain == "*" && default_routes {
                    return Err(self.errs.at(
                        &d.referenced,
                        field,
                        "the listener's `routes:` already serve `*` (every other host): move them here, or drop this domain",
                    ));
                }
                if let Some(first) = domains.insert(domain.clone(), i) {
                    return Err(self.errs.at(
                        &d.referenced,
                        field,
                        format!("domain `{domain}` is also in virtual_hosts[{first}] (Envoy rejects a domain twice)"),
                    ));
                }
                list.push(domain);
            }
            let routes = self.routes(
                h.routes.as_deref().unwrap_or_default(),
                &format!("{at}.routes"),
                clusters,
            )?;
            out.push(VirtualHostSpec {
                name,
                domains: list,
                routes,
                plugins: Default::default(),
            });
        }
        Ok(out)
    }
}

/// A domain as Envoy accepts it, lower-cased: a name (with a port if requests carry one), or a
/// single `*` at its start (`*.example.com`, `*-api.example.com`) or end (`shop.*`), or `*`.
fn check_domain(text: &str) -> std::result::Result<String, String> {
    let domain = text.trim().to_ascii_lowercase();
    if domain.is_empty() {
        return Err("must not be empty".into());
    }
    if domain.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{text}` is not a domain (whitespace)"));
    }
    let stars = domain.matches('*').count();
    let placed = domain == "*" || domain.starts_with('*') || domain.ends_with('*');
    if stars > 1 || (stars == 1 && !placed) {
        return Err(format!(
            "`{text}`: a wildcard is one `*` at the start (`*.example.com`) or the end (`shop.*`), or `*` alone"
        ));
    }
    Ok(domain)
}
