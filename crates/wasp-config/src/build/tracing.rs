//! `tracing`: the OTLP/HTTP collector spans go to, the service name, the sampling share.

use serde_saphyr::Spanned;
use wasp_spec::TracingSpec;

use crate::raw::RawTracing;

use super::{Builder, Result};

impl Builder<'_> {
    pub(super) fn tracing(&self, raw: &Spanned<RawTracing>) -> Result<TracingSpec> {
        let t = &raw.value;
        let endpoint = t.otlp_endpoint.value.trim();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
            || endpoint.parse::<http::Uri>().is_err()
        {
            return Err(self.errs.at(
                &t.otlp_endpoint.referenced,
                "tracing.otlp_endpoint",
                format!("`{endpoint}` is not an http(s) URL (OTLP/HTTP, e.g. http://collector:4318/v1/traces)"),
            ));
        }
        let sampling = t.sampling.as_ref().map_or(100.0, |s| s.value);
        if let Some(s) = t
            .sampling
            .as_ref()
            .filter(|s| !(0.0..=100.0).contains(&s.value))
        {
            return Err(self
                .errs
                .at(&s.referenced, "tracing.sampling", "a percentage is 0..=100"));
        }
        Ok(TracingSpec {
            otlp_endpoint: endpoint.to_string(),
            service_name: t
                .service_name
                .as_ref()
                .map_or_else(|| "wasp".to_string(), |n| n.value.clone()),
            sampling_percent: sampling,
            propagate_b3: t.propagate_b3.unwrap_or(false),
        })
    }
}
