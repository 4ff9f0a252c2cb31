//! What a span is made of, as plain data: its attribute values, kind and events, and the
//! finished span the exporter turns into OTLP. No behaviour lives here, so that the span, the
//! export queue and the OTLP encoding all depend on it and not on each other.

use std::time::SystemTime;

use crate::context::TraceContext;

/// An attribute value: OTLP's string, integer and boolean kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    /// A string.
    String(String),
    /// A signed integer.
    I64(i64),
    /// A boolean.
    Bool(bool),
}

impl From<String> for AttributeValue {
    fn from(v: String) -> Self {
        AttributeValue::String(v)
    }
}
impl From<&str> for AttributeValue {
    fn from(v: &str) -> Self {
        AttributeValue::String(v.to_owned())
    }
}
impl From<i64> for AttributeValue {
    fn from(v: i64) -> Self {
        AttributeValue::I64(v)
    }
}
impl From<u16> for AttributeValue {
    fn from(v: u16) -> Self {
        AttributeValue::I64(v.into())
    }
}
impl From<u32> for AttributeValue {
    fn from(v: u32) -> Self {
        AttributeValue::I64(v.into())
    }
}
impl From<bool> for AttributeValue {
    fn from(v: bool) -> Self {
        AttributeValue::Bool(v)
    }
}

/// The span's role, as OTLP's `SpanKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpanKind {
    /// The request as received (Envoy's ingress span; the default).
    #[default]
    Server,
    /// A request the proxy sends (Envoy's egress spans).
    Client,
}

/// A timestamped, named event, e.g. one per plugin phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) name: String,
    pub(crate) at: SystemTime,
    pub(crate) attributes: Vec<(String, String)>,
}

/// A span that ended, waiting for export.
#[derive(Debug)]
pub(crate) struct FinishedSpan {
    pub(crate) context: TraceContext,
    pub(crate) name: String,
    pub(crate) kind: SpanKind,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
    pub(crate) attributes: Vec<(&'static str, AttributeValue)>,
    pub(crate) events: Vec<Event>,
    pub(crate) error: bool,
}
