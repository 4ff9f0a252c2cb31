//! The tracer: configuration, the sampling decision, and starting spans.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use crate::context::{self, Decision, Format, TraceContext};
use crate::error::TraceError;
use crate::export::{self, ExportOptions, Queue};
use crate::span::{Outgoing, Span, SpanStart};

/// What to trace and where to send it.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingConfig {
    /// The OTLP/HTTP traces endpoint, e.g. `http://127.0.0.1:4318/v1/traces` (without a path,
    /// `/v1/traces` is used). `None` disables tracing altogether: no span, no header, no
    /// thread.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute of every exported span.
    pub service_name: String,
    /// Share of new traces to record, from 0 to 100: Envoy's `random_sampling`. It only
    /// applies when the caller made no decision; a caller's `sampled` flag is followed.
    pub sampling_percent: f64,
    /// Also send the B3 multi headers along with W3C's (as Envoy's Zipkin tracer with
    /// `USE_B3_WITH_W3C_PROPAGATION` does), for upstreams that only read B3. A request that
    /// came in with B3 gets B3 back whatever this says.
    pub propagate_b3: bool,
}

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig {
            otlp_endpoint: None,
            service_name: "wasp".to_owned(),
            // Envoy's default for `random_sampling` is 100 %.
            sampling_percent: 100.0,
            propagate_b3: false,
        }
    }
}

/// What the tracer and its recording spans share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) queue: Arc<Queue>,
    sampler: Sampler,
    propagate_b3: bool,
}

/// The random part of the sampling decision.
#[derive(Debug, Clone, Copy)]
enum Sampler {
    Always,
    Never,
    /// Sampled when a random u64 is below this.
    Below(u64),
}

impl Sampler {
    fn new(percent: f64) -> Result<Sampler, TraceError> {
        if !(0.0..=100.0).contains(&percent) {
            return Err(TraceError::InvalidSampling(percent));
        }
        Ok(if percent >= 100.0 {
            Sampler::Always
        } else if percent <= 0.0 {
            Sampler::Never
        } else {
            // The f64 → u64 cast saturates; precision beyond 2^-53 does not matter here.
            Sampler::Below((percent / 100.0 * 18_446_744_073_709_551_616.0) as u64)
        })
    }

    fn sample(self) -> bool {
        match self {
            Sampler::Always => true,
            Sampler::Never => false,
            Sampler::Below(threshold) => context::random_u64() < threshold,
        }
    }
}

/// Starts the proxy's spans and exports them. Cheap to clone (an `Arc`): built once, shared
/// by the worker threads.
#[derive(Debug, Clone)]
pub struct Tracer {
    shared: Option<Arc<Shared>>,
}

impl Tracer {
    /// Builds a tracer, and its export thread when an endpoint is configured. Fails on an
    /// endpoint that is not an `http(s)://` URL (the error names it) or a sampling
    /// percentage outside 0..=100.
    pub fn new(config: TracingConfig) -> Result<Tracer, TraceError> {
        Tracer::with_options(config, &ExportOptions::default())
    }

    /// [`Tracer::new`] with non-default batching and timeouts.
    pub fn with_options(
        config: TracingConfig,
        options: &ExportOptions,
    ) -> Result<Tracer, TraceError> {
        let sampler = Sampler::new(config.sampling_percent)?;
        let Some(endpoint) = &config.otlp_endpoint else {
            return Ok(Tracer::disabled());
        };
        let endpoint = export::parse_endpoint(endpoint)?;
        // OpenTelemetry's resource conventions name a service that did not say.
        let service_name = match config.service_name.trim() {
            "" => "unknown_service",
            name => name,
        };
        let queue = export::start(endpoint, service_name, options)?;
        Ok(Tracer {
            shared: Some(Arc::new(Shared {
                queue: Arc::new(queue),
                sampler,
                propagate_b3: config.propagate_b3,
            })),
        })
    }

    /// A tracer that does nothing: its spans have no ids, set no header and are not kept.
    pub fn disabled() -> Tracer {
        Tracer { shared: None }
    }

    /// Whether spans are made and exported (an endpoint is configured).
    pub fn is_enabled(&self) -> bool {
        self.shared.is_some()
    }

    /// Starts the proxy's span for a request whose headers are read through `get`
    /// (lower-case names; for a repeated `tracestate`, join the values with `,`).
    ///
    /// The span continues the caller's trace (W3C, else B3: see [`crate::extract()`]) with a
    /// new span id and the caller's span as parent, and follows the caller's sampling
    /// decision; without one, `sampling_percent` decides. `name` is the operation name: see
    /// [`crate::operation_name`] for Envoy's.
    pub fn start<'h>(
        &self,
        get: &dyn Fn(&str) -> Option<&'h str>,
        name: &str,
        start: SystemTime,
    ) -> Span {
        let Some(shared) = &self.shared else {
            return Span::disabled();
        };
        let incoming = crate::extract::extract(get);
        let (format, parent, decision, tracestate) = match incoming {
            Some(i) => (Some(i.format), i.parent, i.decision, i.tracestate),
            None => (None, None, Decision::Defer, None),
        };
        let sampled = decision
            .sampled()
            .unwrap_or_else(|| shared.sampler.sample());
        let outgoing = match format {
            Some(Format::B3Multi) => Outgoing::B3Multi,
            Some(Format::B3Single) => Outgoing::B3Single,
            Some(Format::W3c) | None => Outgoing::W3c {
                b3: shared.propagate_b3,
            },
        };
        let context = TraceContext {
            trace_id: parent.map_or_else(context::new_trace_id, |p| p.trace_id),
            span_id: context::new_span_id(),
            parent_span_id: parent.map(|p| p.span_id),
            sampled,
            tracestate,
        };
        Span::new(SpanStart {
            context,
            outgoing,
            short_trace_id: parent.is_some_and(|p| p.short_trace_id),
            debug: decision == Decision::Debug,
            queue: &shared.queue,
            name,
            start,
        })
    }

    /// Blocks up to `timeout` to send what is queued (for shutdown and tests).
    pub fn flush(&self, timeout: Duration) {
        if let Some(shared) = &self.shared {
            shared.queue.flush(timeout);
        }
    }

    /// Spans dropped because the export queue was full.
    pub fn dropped(&self) -> u64 {
        self.counter(|s| s.dropped.load(Ordering::Relaxed))
    }

    /// Export requests (batches) that failed: collector unreachable, timed out, or not 2xx.
    /// Their spans are lost (not retried).
    pub fn export_failures(&self) -> u64 {
        self.counter(|s| s.failures.load(Ordering::Relaxed))
    }

    /// Spans the collector accepted.
    pub fn exported(&self) -> u64 {
        self.counter(|s| s.exported.load(Ordering::Relaxed))
    }

    fn counter(&self, read: impl Fn(&export::Stats) -> u64) -> u64 {
        self.shared.as_ref().map_or(0, |s| read(&s.queue.stats))
    }
}
