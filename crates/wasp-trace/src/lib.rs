//! Distributed tracing for wasp's data plane, as Envoy does it for Istio users.
//!
//! One [`Tracer`] is built from a [`TracingConfig`] and shared by the worker threads. For each
//! request the data plane calls [`Tracer::start`] with the request headers, which gives the
//! proxy's [`Span`]: it sets [`Span::propagation_headers`] on the request it sends upstream,
//! records attributes and one event per plugin phase, and [`Span::end`]s it when the response
//! is done. Ended, sampled spans go through a bounded queue to a thread that batches them and
//! POSTs them to an OTLP/HTTP collector.
//!
//! ```
//! use std::time::SystemTime;
//! use wasp_trace::{Tracer, TracingConfig, keys};
//!
//! let tracer = Tracer::new(TracingConfig {
//!     otlp_endpoint: Some("http://127.0.0.1:4318/v1/traces".into()),
//!     service_name: "ingress.wasp".into(),
//!     ..TracingConfig::default()
//! })?;
//! let headers = [("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")];
//! let get = |name: &str| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
//! let mut span = tracer.start(&get, "ingress", SystemTime::now());
//! assert_eq!(span.context().trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
//! assert_eq!(span.context().parent_span_id, Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]));
//! let upstream = span.propagation_headers(); // traceparent with the span's own id
//! assert_eq!(upstream[0].0, "traceparent");
//! span.set_attribute(keys::HTTP_REQUEST_METHOD, "GET");
//! span.add_event("plugin my-plugin on_http_request_headers", SystemTime::now(), &[]);
//! span.set_status_code(200);
//! span.end(SystemTime::now());
//! # Ok::<(), wasp_trace::TraceError>(())
//! ```
//!
//! # Envoy's behaviour, followed here
//!
//! - **Ids and sampling** (`source/extensions/tracers/opentelemetry/tracer.cc`): the proxy's
//!   span keeps the caller's trace id, gets a new random span id, has the caller's span as
//!   parent, and "respects the previous span's sampled flag"; `tracestate` is passed on. A
//!   request without a (valid) context starts a new trace with a random 128-bit id, sampled
//!   by `random_sampling` (here [`TracingConfig::sampling_percent`], 100 % by default).
//!   Unsampled spans still propagate their context, with the flag off; only sampled spans
//!   are exported.
//! - **Formats**: Envoy's OpenTelemetry tracer reads and writes W3C only, its Zipkin tracer
//!   B3 (multi headers out, plus W3C with `USE_B3_WITH_W3C_PROPAGATION`). wasp reads both,
//!   W3C first, and answers in the format that came in: see [`Span::propagation_headers`].
//!   The parsing rules are in [`w3c`] and [`b3`]; invalid headers are ignored, never an
//!   error.
//! - **Span name**: Envoy names the downstream span after the route's `decorator` operation
//!   and otherwise `ingress` (`egress <host>` for a client span;
//!   `source/common/tracing/tracer_impl.cc`). Istio sets every route's decorator to
//!   `<host>:<port><path match>`, e.g. `reviews.default.svc.cluster.local:9080/*`. See
//!   [`operation_name`].
//! - **Kind and status**: the downstream span is `SERVER` (Envoy's tracer makes `CLIENT` only
//!   for egress). The status is `ERROR` for a 5xx response ([`Span::set_status_code`]) and
//!   unset otherwise: OpenTelemetry's HTTP conventions leave a server span's 4xx unset.
//! - **Export**: one `ResourceSpans` with `service.name`, one `ScopeSpans`, sent in batches
//!   (Envoy: every 5 s or 5 spans; here OpenTelemetry's batch defaults, [`ExportOptions`]),
//!   without retries; failures are counted ([`Tracer::export_failures`]) and logged at most
//!   once per [`export::LOG_INTERVAL`].
//!
//! With no endpoint the tracer is disabled: [`Tracer::start`] returns an empty span
//! without reading a header or allocating, and no thread runs.

#![deny(missing_docs)]

pub mod b3;
pub mod context;
mod error;
pub mod export;
mod extract;
mod otlp;
mod record;
mod span;
mod tracer;
pub mod w3c;

pub use context::{Decision, Format, Incoming, RemoteSpan, TraceContext};
pub use error::TraceError;
pub use export::ExportOptions;
pub use extract::extract;
pub use record::{AttributeValue, SpanKind};
pub use span::{Span, keys};
pub use tracer::{Tracer, TracingConfig};

/// Envoy's name for a span: the route's decorator operation when there is one, else
/// `ingress` for the downstream (server) span and `egress <host>` for a client span.
pub fn operation_name(decorator: Option<&str>, kind: SpanKind, host: &str) -> String {
    match decorator.filter(|d| !d.is_empty()) {
        Some(operation) => operation.to_owned(),
        None => match kind {
            SpanKind::Server => "ingress".to_owned(),
            SpanKind::Client => format!("egress {host}"),
        },
    }
}
