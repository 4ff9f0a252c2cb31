//! The OTLP messages for finished spans (`opentelemetry-proto`'s prost types).

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status, span, status};

use crate::context::TraceContext;
use crate::record::{AttributeValue, FinishedSpan, SpanKind};

/// The resource every span is sent with: the service's name, as Envoy sends it.
pub(crate) fn resource(service_name: &str) -> Resource {
    Resource {
        attributes: vec![key_value("service.name".to_owned(), service_name.into())],
        ..Default::default()
    }
}

/// One request for a batch: one `ResourceSpans`, one `ScopeSpans` (scope `wasp`).
pub(crate) fn request(
    resource: &Resource,
    spans: impl Iterator<Item = FinishedSpan>,
) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource.clone()),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "wasp".to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..Default::default()
                }),
                spans: spans.map(to_proto).collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn key_value(key: String, value: AttributeValue) -> KeyValue {
    let value = match value {
        AttributeValue::String(s) => any_value::Value::StringValue(s),
        AttributeValue::I64(i) => any_value::Value::IntValue(i),
        AttributeValue::Bool(b) => any_value::Value::BoolValue(b),
    };
    KeyValue {
        key,
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// OTLP span flags: the W3C flags byte (sampled) and whether the parent is known to be
/// remote (`SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK`, `SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK`):
/// the parent of the proxy's span always came from the caller.
fn flags(context: &TraceContext) -> u32 {
    let mut flags = u32::from(context.sampled) | 0x100;
    if context.parent_span_id.is_some() {
        flags |= 0x200;
    }
    flags
}

fn to_proto(s: FinishedSpan) -> opentelemetry_proto::tonic::trace::v1::Span {
    let kind = match s.kind {
        SpanKind::Server => span::SpanKind::Server,
        SpanKind::Client => span::SpanKind::Client,
    };
    opentelemetry_proto::tonic::trace::v1::Span {
        trace_id: s.context.trace_id.to_vec(),
        span_id: s.context.span_id.to_vec(),
        trace_state: s.context.tracestate.clone().unwrap_or_default(),
        parent_span_id: s
            .context
            .parent_span_id
            .map(|p| p.to_vec())
            .unwrap_or_default(),
        flags: flags(&s.context),
        name: s.name,
        kind: kind as i32,
        start_time_unix_nano: unix_nanos(s.start),
        end_time_unix_nano: unix_nanos(s.end),
        attributes: s
            .attributes
            .into_iter()
            .map(|(k, v)| key_value(k.to_owned(), v))
            .collect(),
        events: s
            .events
            .into_iter()
            .map(|e| span::Event {
                time_unix_nano: unix_nanos(e.at),
                name: e.name,
                attributes: e
                    .attributes
                    .into_iter()
                    .map(|(k, v)| key_value(k, AttributeValue::String(v)))
                    .collect(),
                dropped_attributes_count: 0,
            })
            .collect(),
        status: s.error.then(|| Status {
            code: status::StatusCode::Error as i32,
            message: String::new(),
        }),
        ..Default::default()
    }
}
