//! The proxy's span for one request: its context, what goes upstream, and what is recorded.

use std::sync::Arc;
use std::time::SystemTime;

use crate::context::TraceContext;
use crate::export::Queue;
use crate::record::{AttributeValue, Event, FinishedSpan, SpanKind};
use crate::{b3, w3c};

/// Attribute keys: OpenTelemetry's HTTP semantic conventions, plus Envoy's own tag names
/// (`upstream_cluster`, `guid:x-request-id`, `response_flags`; Envoy's
/// `source/common/tracing/common_values.h`).
pub mod keys {
    /// `GET`, `POST`…
    pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
    /// The response's status code (an integer).
    pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
    /// The request path, without the query.
    pub const URL_PATH: &str = "url.path";
    /// The query, without the `?`.
    pub const URL_QUERY: &str = "url.query";
    /// `http` or `https`.
    pub const URL_SCHEME: &str = "url.scheme";
    /// The `:authority`/`Host`, without the port.
    pub const SERVER_ADDRESS: &str = "server.address";
    /// The port of `:authority`, or the listener's (an integer).
    pub const SERVER_PORT: &str = "server.port";
    /// The downstream peer's address.
    pub const CLIENT_ADDRESS: &str = "client.address";
    /// `User-Agent`.
    pub const USER_AGENT_ORIGINAL: &str = "user_agent.original";
    /// `1.1`, `2`.
    pub const NETWORK_PROTOCOL_VERSION: &str = "network.protocol.version";
    /// The cluster the request was routed to (Envoy's tag name).
    pub const UPSTREAM_CLUSTER: &str = "upstream_cluster";
    /// The `x-request-id` (Envoy's `guid:x-request-id` tag).
    pub const REQUEST_ID: &str = "guid:x-request-id";
    /// Why a request failed (Envoy's response flags, e.g. `UF`).
    pub const RESPONSE_FLAGS: &str = "response_flags";
}

/// How the span's context goes upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outgoing {
    /// Tracing is off: no headers.
    None,
    /// `traceparent`/`tracestate`, and the B3 multi headers when `b3` is set.
    W3c { b3: bool },
    /// B3 multi-header, as it came in.
    B3Multi,
    /// B3 single header, as it came in.
    B3Single,
}

/// What a sampled span records; unsampled and disabled spans have none, so they cost no
/// allocation.
#[derive(Debug)]
struct Recording {
    queue: Arc<Queue>,
    name: String,
    kind: SpanKind,
    start: SystemTime,
    attributes: Vec<(&'static str, AttributeValue)>,
    events: Vec<Event>,
    error: bool,
}

/// The proxy's span for one request. [`end`](Span::end) it when the response is done; a span
/// dropped without `end` is not exported.
#[derive(Debug)]
pub struct Span {
    context: TraceContext,
    outgoing: Outgoing,
    short_trace_id: bool,
    debug: bool,
    recording: Option<Box<Recording>>,
}

/// What [`Tracer::start`](crate::Tracer::start) decided, to build a span from.
pub(crate) struct SpanStart<'a> {
    pub(crate) context: TraceContext,
    pub(crate) outgoing: Outgoing,
    pub(crate) short_trace_id: bool,
    pub(crate) debug: bool,
    pub(crate) queue: &'a Arc<Queue>,
    pub(crate) name: &'a str,
    pub(crate) start: SystemTime,
}

impl Span {
    /// The span of a disabled tracer: an all-zero context, no headers, nothing recorded.
    pub(crate) fn disabled() -> Span {
        Span {
            context: TraceContext::default(),
            outgoing: Outgoing::None,
            short_trace_id: false,
            debug: false,
            recording: None,
        }
    }

    pub(crate) fn new(s: SpanStart<'_>) -> Span {
        let recording = s.context.sampled.then(|| {
            Box::new(Recording {
                queue: Arc::clone(s.queue),
                name: s.name.to_owned(),
                kind: SpanKind::Server,
                start: s.start,
                attributes: Vec::new(),
                events: Vec::new(),
                error: false,
            })
        });
        Span {
            context: s.context,
            outgoing: s.outgoing,
            short_trace_id: s.short_trace_id,
            debug: s.debug,
            recording,
        }
    }

    /// The span's context: the trace id, its new span id, the caller's span as parent.
    pub fn context(&self) -> &TraceContext {
        &self.context
    }

    /// Whether the span is recorded and exported when it ends (sampled, tracer enabled).
    pub fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    /// Headers to set on the upstream request, replacing any of the same name: the format the
    /// request came in with (W3C when none came, plus B3 multi when the tracer propagates
    /// B3). Empty when tracing is disabled. Unsampled spans still propagate, with the flag off,
    /// so the next hops do not record the trace either.
    pub fn propagation_headers(&self) -> Vec<(&'static str, String)> {
        let c = &self.context;
        let parent = c.parent_span_id.as_ref();
        let mut out = Vec::new();
        match self.outgoing {
            Outgoing::None => {}
            Outgoing::W3c { b3: also_b3 } => {
                out.push((
                    w3c::TRACEPARENT,
                    w3c::format_traceparent(&c.trace_id, &c.span_id, c.sampled),
                ));
                if let Some(state) = &c.tracestate {
                    out.push((w3c::TRACESTATE, state.clone()));
                }
                if also_b3 {
                    b3::inject_multi(
                        &c.trace_id,
                        false,
                        &c.span_id,
                        parent,
                        c.sampled,
                        self.debug,
                        &mut out,
                    );
                }
            }
            Outgoing::B3Multi => b3::inject_multi(
                &c.trace_id,
                self.short_trace_id,
                &c.span_id,
                parent,
                c.sampled,
                self.debug,
                &mut out,
            ),
            Outgoing::B3Single => out.push((
                b3::SINGLE,
                b3::format_single(
                    &c.trace_id,
                    self.short_trace_id,
                    &c.span_id,
                    parent,
                    c.sampled,
                    self.debug,
                ),
            )),
        }
        out
    }

    /// Renames the span, e.g. to the route's decorator once the route is known (Envoy's
    /// `setOperation`).
    pub fn set_name(&mut self, name: impl Into<String>) {
        if let Some(r) = &mut self.recording {
            r.name = name.into();
        }
    }

    /// Sets the span's kind (server by default).
    pub fn set_kind(&mut self, kind: SpanKind) {
        if let Some(r) = &mut self.recording {
            r.kind = kind;
        }
    }

    /// Records an event at `at`, e.g. `plugin my-plugin on_http_request_headers`. Events are
    /// exported in the order they were added.
    pub fn add_event(
        &mut self,
        name: impl Into<String>,
        at: SystemTime,
        attributes: &[(&str, String)],
    ) {
        if let Some(r) = &mut self.recording {
            r.events.push(Event {
                name: name.into(),
                at,
                attributes: attributes
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone()))
                    .collect(),
            });
        }
    }

    /// Sets an attribute, replacing an earlier value of the same key (as Envoy's `setTag`).
    pub fn set_attribute(&mut self, key: &'static str, value: impl Into<AttributeValue>) {
        let Some(r) = &mut self.recording else {
            return;
        };
        let value = value.into();
        match r.attributes.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => r.attributes.push((key, value)),
        }
    }

    /// Marks the span as failed (OTLP status `ERROR`) or not (status unset).
    pub fn set_error(&mut self, error: bool) {
        if let Some(r) = &mut self.recording {
            r.error = error;
        }
    }

    /// Sets `http.response.status_code`, and the error status for a 5xx: a server span's 4xx
    /// is the client's error, not the server's (OpenTelemetry HTTP semantic conventions).
    pub fn set_status_code(&mut self, status: u16) {
        self.set_attribute(keys::HTTP_RESPONSE_STATUS_CODE, status);
        self.set_error(status >= 500);
    }

    /// Ends the span at `at` and queues it for export when it is recording. Never blocks: a
    /// full queue drops the span and counts it ([`Tracer::dropped`](crate::Tracer::dropped)).
    pub fn end(self, at: SystemTime) {
        let Some(r) = self.recording else {
            return;
        };
        let r = *r;
        let finished = FinishedSpan {
            context: self.context,
            name: r.name,
            kind: r.kind,
            start: r.start,
            end: at,
            attributes: r.attributes,
            events: r.events,
            error: r.error,
        };
        r.queue.push(finished);
    }
}
