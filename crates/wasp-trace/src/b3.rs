//! B3 propagation (openzipkin/b3-propagation), multi-header and single-header.
//!
//! Multi: `x-b3-traceid` (32 or 16 lower-hex), `x-b3-spanid` (16), `x-b3-parentspanid` (16,
//! optional), `x-b3-sampled` (`1`/`0`, and the legacy `true`/`false` that the spec allows a
//! lenient reader and Envoy's Zipkin tracer accepts), `x-b3-flags: 1` (debug, implies
//! sampled). Single: `b3: {traceid}-{spanid}[-{sampling}[-{parentspanid}]]` with sampling
//! `1`, `0` or `d`, or `b3: {sampling}` alone. The single header takes precedence over the
//! multi ones (spec); an invalid one is ignored, so valid multi headers still count.
//!
//! Ignored as invalid: wrong lengths, non lower-case hex, all-zero trace or span ids, an
//! unknown sampling state in `b3`, a parent without a sampling state in `b3` (as Envoy's
//! `span_context_extractor.cc`). An all-zero parent span id means "no parent", as in Envoy.
//! Without both ids, a sampling decision alone (`x-b3-sampled: 0`, `b3: 0`) still counts,
//! as in Envoy's Zipkin tracer: the proxy starts a new trace with that decision.

use crate::context::{Decision, Format, Incoming, RemoteSpan, hex, parse_hex, push_hex};

/// `x-b3-traceid`.
pub const TRACE_ID: &str = "x-b3-traceid";
/// `x-b3-spanid`.
pub const SPAN_ID: &str = "x-b3-spanid";
/// `x-b3-parentspanid`.
pub const PARENT_SPAN_ID: &str = "x-b3-parentspanid";
/// `x-b3-sampled`.
pub const SAMPLED: &str = "x-b3-sampled";
/// `x-b3-flags`.
pub const FLAGS: &str = "x-b3-flags";
/// The single header, `b3`.
pub const SINGLE: &str = "b3";

/// Reads B3, the single header first; `None` when neither form gave ids or a decision.
pub fn extract<'h>(get: &dyn Fn(&str) -> Option<&'h str>) -> Option<Incoming> {
    get(SINGLE)
        .and_then(parse_single)
        .or_else(|| extract_multi(get))
}

fn trim(value: &str) -> &str {
    value.trim_matches([' ', '\t'])
}

/// A 32- or 16-digit trace id, the latter left-padded; all zeros is invalid.
/// Returns the id and whether it was 64-bit.
fn parse_trace_id(s: &str) -> Option<([u8; 16], bool)> {
    let (id, short) = match s.len() {
        32 => (parse_hex::<16>(s)?, false),
        16 => {
            let mut id = [0u8; 16];
            id[8..].copy_from_slice(&parse_hex::<8>(s)?);
            (id, true)
        }
        _ => return None,
    };
    (id != [0; 16]).then_some((id, short))
}

fn parse_span_id(s: &str) -> Option<[u8; 8]> {
    parse_hex::<8>(s).filter(|id| *id != [0; 8])
}

/// A parent span id: `Some(None)` when all zeros (no parent), `None` when malformed.
fn parse_parent_id(s: &str) -> Option<Option<[u8; 8]>> {
    parse_hex::<8>(s).map(|id| (id != [0; 8]).then_some(id))
}

/// Reads the multi-header form.
pub fn extract_multi<'h>(get: &dyn Fn(&str) -> Option<&'h str>) -> Option<Incoming> {
    let debug = get(FLAGS).is_some_and(|f| trim(f) == "1");
    let decision = if debug {
        Decision::Debug
    } else {
        match get(SAMPLED).map(trim) {
            Some("1" | "true") => Decision::Accept,
            Some("0" | "false") => Decision::Deny,
            // Absent or unreadable: the receiver decides.
            _ => Decision::Defer,
        }
    };
    let parent = match (get(TRACE_ID), get(SPAN_ID)) {
        (Some(trace), Some(span)) => {
            let (trace_id, short_trace_id) = parse_trace_id(trim(trace))?;
            let span_id = parse_span_id(trim(span))?;
            let parent_span_id = match get(PARENT_SPAN_ID).map(trim) {
                None | Some("") => None,
                Some(p) => parse_parent_id(p)?,
            };
            Some(RemoteSpan {
                trace_id,
                span_id,
                parent_span_id,
                short_trace_id,
            })
        }
        _ => None,
    };
    if parent.is_none() && decision == Decision::Defer {
        return None;
    }
    Some(Incoming {
        format: Format::B3Multi,
        parent,
        decision,
        tracestate: None,
    })
}

fn parse_sampling(s: &str) -> Option<Decision> {
    match s {
        "1" => Some(Decision::Accept),
        "0" => Some(Decision::Deny),
        "d" => Some(Decision::Debug),
        _ => None,
    }
}

/// Parses a `b3` single-header value.
pub fn parse_single(value: &str) -> Option<Incoming> {
    let value = trim(value);
    let mut fields = value.split('-');
    let first = fields.next()?;
    let Some(second) = fields.next() else {
        // Only a sampling state.
        return Some(Incoming {
            format: Format::B3Single,
            parent: None,
            decision: parse_sampling(first)?,
            tracestate: None,
        });
    };
    let (trace_id, short_trace_id) = parse_trace_id(first)?;
    let span_id = parse_span_id(second)?;
    let decision = match fields.next() {
        None => Decision::Defer,
        Some(s) => parse_sampling(s)?,
    };
    let parent_span_id = match fields.next() {
        None => None,
        Some(p) => parse_parent_id(p)?,
    };
    if fields.next().is_some() {
        return None;
    }
    Some(Incoming {
        format: Format::B3Single,
        parent: Some(RemoteSpan {
            trace_id,
            span_id,
            parent_span_id,
            short_trace_id,
        }),
        decision,
        tracestate: None,
    })
}

/// The trace id as B3 writes it: 16 digits when it came in 64-bit, else 32.
fn trace_id_hex(trace_id: &[u8; 16], short: bool) -> String {
    if short {
        hex(&trace_id[8..])
    } else {
        hex(trace_id)
    }
}

/// The multi headers for a span. Debug goes as `x-b3-flags: 1` without `x-b3-sampled`
/// ("Debug implies an accept decision, so don't also send the X-B3-Sampled header").
pub fn inject_multi(
    trace_id: &[u8; 16],
    short_trace_id: bool,
    span_id: &[u8; 8],
    parent_span_id: Option<&[u8; 8]>,
    sampled: bool,
    debug: bool,
    out: &mut Vec<(&'static str, String)>,
) {
    out.push((TRACE_ID, trace_id_hex(trace_id, short_trace_id)));
    out.push((SPAN_ID, hex(span_id)));
    if let Some(parent) = parent_span_id {
        out.push((PARENT_SPAN_ID, hex(parent)));
    }
    if debug {
        out.push((FLAGS, "1".to_owned()));
    } else {
        out.push((SAMPLED, if sampled { "1" } else { "0" }.to_owned()));
    }
}

/// The `b3` single-header value for a span.
pub fn format_single(
    trace_id: &[u8; 16],
    short_trace_id: bool,
    span_id: &[u8; 8],
    parent_span_id: Option<&[u8; 8]>,
    sampled: bool,
    debug: bool,
) -> String {
    let mut out = trace_id_hex(trace_id, short_trace_id);
    out.reserve(16 + 3 + 17);
    out.push('-');
    push_hex(&mut out, span_id);
    out.push_str(match (debug, sampled) {
        (true, _) => "-d",
        (false, true) => "-1",
        (false, false) => "-0",
    });
    if let Some(parent) = parent_span_id {
        out.push('-');
        push_hex(&mut out, parent);
    }
    out
}
