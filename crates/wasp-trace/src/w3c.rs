//! W3C Trace Context: the `traceparent` and `tracestate` headers.
//!
//! `traceparent: {version}-{trace-id}-{parent-id}-{trace-flags}`, e.g.
//! `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`: 2, 32, 16 and 2 lower-case hex
//! digits. The rules applied (W3C Trace Context, "traceparent Header"), each making the
//! header ignored:
//! - version `ff` is invalid; version `00` is exactly 55 characters; a later version is at
//!   least 55 and, when longer, has a `-` after the flags (fields it may add are skipped);
//! - trace id and parent id all zeros are invalid; any non lower-case hex digit is invalid;
//! - only the `sampled` bit (0x01) of the flags is used.
//!
//! `tracestate` is only read with a valid `traceparent` (a lone one must be discarded) and is
//! passed through unchanged. Envoy's OpenTelemetry tracer (`span_context_extractor.cc`) does
//! the same, except that it also accepts upper-case hex and version `ff`.

use crate::context::{Decision, Format, Incoming, RemoteSpan, parse_hex, push_hex};

/// The `traceparent` header name.
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` header name.
pub const TRACESTATE: &str = "tracestate";

/// Length of a version-00 `traceparent`: 2 + 1 + 32 + 1 + 16 + 1 + 2.
const LEN: usize = 55;

/// Reads `traceparent`/`tracestate`; `None` when `traceparent` is absent or invalid.
pub fn extract<'h>(get: &dyn Fn(&str) -> Option<&'h str>) -> Option<Incoming> {
    let (trace_id, span_id, sampled) = parse_traceparent(get(TRACEPARENT)?)?;
    let tracestate = get(TRACESTATE)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    Some(Incoming {
        format: Format::W3c,
        parent: Some(RemoteSpan {
            trace_id,
            span_id,
            parent_span_id: None,
            short_trace_id: false,
        }),
        decision: if sampled {
            Decision::Accept
        } else {
            Decision::Deny
        },
        tracestate,
    })
}

/// Parses a `traceparent` value into (trace id, parent id, sampled).
pub fn parse_traceparent(value: &str) -> Option<([u8; 16], [u8; 8], bool)> {
    // Header values arrive with optional whitespace around them (RFC 9110 OWS).
    let value = value.trim_matches([' ', '\t']);
    if value.len() < LEN || !value.is_ascii() {
        return None;
    }
    let version = parse_hex::<1>(&value[0..2])?[0];
    match version {
        0xff => return None,
        0x00 if value.len() != LEN => return None,
        // A future version may append fields, after a `-`.
        _ if value.len() > LEN && value.as_bytes()[LEN] != b'-' => return None,
        _ => {}
    }
    let bytes = value.as_bytes();
    if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
        return None;
    }
    let trace_id = parse_hex::<16>(&value[3..35])?;
    let span_id = parse_hex::<8>(&value[36..52])?;
    let flags = parse_hex::<1>(&value[53..55])?[0];
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    Some((trace_id, span_id, flags & 0x01 != 0))
}

/// The `traceparent` value for a span: version 00, only the `sampled` flag (the others must
/// be sent as zero).
pub fn format_traceparent(trace_id: &[u8; 16], span_id: &[u8; 8], sampled: bool) -> String {
    let mut out = String::with_capacity(LEN);
    out.push_str("00-");
    push_hex(&mut out, trace_id);
    out.push('-');
    push_hex(&mut out, span_id);
    out.push_str(if sampled { "-01" } else { "-00" });
    out
}
