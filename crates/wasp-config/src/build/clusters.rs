//! `clusters`: endpoints, protocol, connect timeout, TLS (in `tls.rs`).

use std::collections::HashMap;
use std::time::Duration;

use serde_saphyr::Spanned;
use wasp_spec::{ClusterSpec, UpstreamProtocol};

use crate::DEFAULT_CONNECT_TIMEOUT;
use crate::raw::{RawCluster, RawUpstreamProtocol};
use crate::values::check_endpoint;

use super::{Builder, Result};

impl Builder<'_> {
    pub(super) fn clusters(&self, raw: &[Spanned<RawCluster>]) -> Result<Vec<ClusterSpec>> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::with_capacity(raw.len());
        for (i, c) in raw.iter().enumerate() {
            let c = &c.value;
            let path = format!("clusters[{i}]");
            let name = self.name(&c.name, &format!("{path}.name"))?;
            if let Some(first) = seen.insert(name.clone(), i) {
                return Err(self.errs.at(
                    &c.name.referenced,
                    format!("{path}.name"),
                    format!("duplicate cluster name `{name}` (also clusters[{first}])"),
                ));
            }
            if c.endpoints.value.is_empty() {
                return Err(self.errs.at(
                    &c.endpoints.referenced,
                    format!("{path}.endpoints"),
                    "at least one endpoint (host:port) is required",
                ));
            }
            let mut endpoints = Vec::with_capacity(c.endpoints.value.len());
            for (j, e) in c.endpoints.value.iter().enumerate() {
                let endpoint = check_endpoint(&e.value).map_err(|msg| {
                    self.errs
                        .at(&e.referenced, format!("{path}.endpoints[{j}]"), msg)
                })?;
                endpoints.push(endpoint);
            }
            let connect_timeout = match self.duration(
                c.connect_timeout.as_ref(),
                &format!("{path}.connect_timeout"),
            )? {
                Some(Duration::ZERO) => {
                    let at = c.connect_timeout.as_ref().map(|t| &t.referenced);
                    return Err(self.errs.at_opt(
                        at,
                        format!("{path}.connect_timeout"),
                        "must be greater than 0s",
                    ));
                }
                Some(d) => d,
                None => DEFAULT_CONNECT_TIMEOUT,
            };
            let tls = match &c.tls {
                Some(tls) => Some(self.client_tls(tls, &format!("{path}.tls"))?),
                None => None,
            };
            let outlier_detection = match &c.outlier_detection {
                Some(o) => {
                    Some(self.outlier_detection(&o.value, &format!("{path}.outlier_detection"))?)
                }
                None => None,
            };
            let health_check = match &c.health_check {
                Some(h) => Some(self.health_check(&h.value, &format!("{path}.health_check"))?),
                None => None,
            };
            out.push(ClusterSpec {
                lb_policy: self.lb_policy(c, &path)?,
                outlier_detection,
                health_check,
                circuit_breakers: self
                    .circuit_breakers(c.circuit_breakers.as_ref().map(|b| &b.value)),
                name,
                endpoints,
                protocol: match c.protocol {
                    None | Some(RawUpstreamProtocol::Http1) => UpstreamProtocol::Http1,
                    Some(RawUpstreamProtocol::Http2) => UpstreamProtocol::Http2,
                },
                connect_timeout,
                tls,
            });
        }
        Ok(out)
    }
}
