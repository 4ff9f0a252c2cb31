//! An HTTP listener's timeouts and limits (Envoy's HttpConnectionManager fields of the same
//! names), and the check that a TCP listener carries none of them.

use std::time::Duration;

use serde_saphyr::Spanned;
use wasp_spec::HttpOptions;

use crate::raw::RawListener;

use super::{Builder, Result};

impl Builder<'_> {
    pub(super) fn http_options(&self, l: &RawListener, path: &str) -> Result<HttpOptions> {
        let d = HttpOptions::default();
        // `0s` turns a timeout off, as in Envoy.
        let timeout = |v: Option<&Spanned<String>>, field: &str, default: Option<Duration>| {
            Ok::<_, crate::error::ConfigError>(
                match self.duration(v, &format!("{path}.{field}"))? {
                    Some(t) if t.is_zero() => None,
                    Some(t) => Some(t),
                    None => default,
                },
            )
        };
        let count = |v: &Option<Spanned<i64>>, field: &str, max: i64| -> Result<Option<i64>> {
            match v {
                Some(n) if n.value < 1 || n.value > max => Err(self.errs.at(
                    &n.referenced,
                    format!("{path}.{field}"),
                    format!("must be between 1 and {max}"),
                )),
                Some(n) => Ok(Some(n.value)),
                None => Ok(None),
            }
        };
        Ok(HttpOptions {
            request_headers_timeout: timeout(
                l.request_headers_timeout.as_ref(),
                "request_headers_timeout",
                d.request_headers_timeout,
            )?,
            idle_timeout: timeout(l.idle_timeout.as_ref(), "idle_timeout", d.idle_timeout)?,
            stream_idle_timeout: timeout(
                l.stream_idle_timeout.as_ref(),
                "stream_idle_timeout",
                d.stream_idle_timeout,
            )?,
            request_timeout: timeout(
                l.request_timeout.as_ref(),
                "request_timeout",
                d.request_timeout,
            )?,
            // Envoy's bound: 8 MiB (8192 KiB).
            max_request_headers_bytes: count(
                &l.max_request_headers_kb,
                "max_request_headers_kb",
                8192,
            )?
            .map_or(d.max_request_headers_bytes, |kb| kb as usize * 1024),
            max_headers_count: count(&l.max_headers_count, "max_headers_count", 65_535)?
                .map_or(d.max_headers_count, |n| n as usize),
            max_concurrent_streams: count(
                &l.max_concurrent_streams,
                "max_concurrent_streams",
                i64::from(i32::MAX),
            )?
            .map_or(d.max_concurrent_streams, |n| n as u32),
        })
    }

    /// A TCP listener must not carry the HTTP fields (they would silently do nothing).
    pub(super) fn no_http_fields(&self, l: &RawListener, path: &str) -> Result<()> {
        let given = [
            (
                "request_headers_timeout",
                l.request_headers_timeout.as_ref().map(|v| &v.referenced),
            ),
            (
                "stream_idle_timeout",
                l.stream_idle_timeout.as_ref().map(|v| &v.referenced),
            ),
            (
                "request_timeout",
                l.request_timeout.as_ref().map(|v| &v.referenced),
            ),
            (
                "max_request_headers_kb",
                l.max_request_headers_kb.as_ref().map(|v| &v.referenced),
            ),
            (
                "max_headers_count",
                l.max_headers_count.as_ref().map(|v| &v.referenced),
            ),
            (
                "max_concurrent_streams",
                l.max_concurrent_streams.as_ref().map(|v| &v.referenced),
            ),
        ];
        match given.into_iter().find_map(|(field, at)| Some((field, at?))) {
            Some((field, at)) => Err(self.errs.at(
                at,
                format!("{path}.{field}"),
                format!("`{field}` is for HTTP listeners; a `protocol: tcp` listener relays bytes"),
            )),
            None => Ok(()),
        }
    }
}
