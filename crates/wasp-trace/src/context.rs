//! Trace and span identifiers, the context a request carries in, and the ids the proxy makes.

use std::cell::Cell;
use std::fmt::Write as _;

/// The identity of a span and what travels with it to the next hop.
///
/// For the proxy's own span ([`Span::context`](crate::Span::context)): `span_id` is new,
/// `trace_id` is the caller's (or new for a root), and `parent_span_id` is the caller's span.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceContext {
    /// 128-bit trace id; a 64-bit B3 trace id is left-padded with zeros.
    pub trace_id: [u8; 16],
    /// 64-bit span id.
    pub span_id: [u8; 8],
    /// The span this one is a child of, when there is one.
    pub parent_span_id: Option<[u8; 8]>,
    /// Whether the trace is recorded (W3C `sampled` flag, B3 `1` or debug).
    pub sampled: bool,
    /// W3C `tracestate`, passed through untouched.
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// The trace id as 32 lower-case hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The span id as 16 lower-case hex digits.
    pub fn span_id_hex(&self) -> String {
        hex(&self.span_id)
    }

    /// Ids are valid when neither is all zeros (both specs reserve zero for "absent"). The
    /// context of a span from a disabled tracer is all zeros, so this tells them apart.
    pub fn is_valid(&self) -> bool {
        self.trace_id != [0; 16] && self.span_id != [0; 8]
    }
}

/// The header format a trace context came in with (and goes out with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// W3C `traceparent` (and `tracestate`).
    W3c,
    /// B3 multi-header: `x-b3-traceid`, `x-b3-spanid`, `x-b3-parentspanid`, `x-b3-sampled`,
    /// `x-b3-flags`.
    B3Multi,
    /// B3 single header `b3`.
    B3Single,
}

/// The caller's sampling decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// None came (B3 without a sampled header): the proxy decides, by its sampling ratio.
    Defer,
    /// Record the trace.
    Accept,
    /// Do not record it.
    Deny,
    /// B3 debug (`x-b3-flags: 1`, `b3: …-d`): an accept that is propagated as debug.
    Debug,
}

impl Decision {
    /// `Some(sampled)` when the caller decided, `None` when it deferred.
    pub fn sampled(self) -> Option<bool> {
        match self {
            Decision::Defer => None,
            Decision::Accept | Decision::Debug => Some(true),
            Decision::Deny => Some(false),
        }
    }
}

/// The caller's span, as its headers named it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteSpan {
    /// Trace id (a 64-bit B3 one left-padded with zeros).
    pub trace_id: [u8; 16],
    /// The caller's span id: the parent of the proxy's span.
    pub span_id: [u8; 8],
    /// The caller's own parent (`x-b3-parentspanid`); W3C does not carry it.
    pub parent_span_id: Option<[u8; 8]>,
    /// The trace id came as 16 hex digits (64-bit B3): B3 goes out the same width.
    pub short_trace_id: bool,
}

/// The trace context a request came in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// Which headers it was read from.
    pub format: Format,
    /// The caller's span; `None` when B3 carried only a sampling decision (`b3: 0`).
    pub parent: Option<RemoteSpan>,
    /// The caller's sampling decision.
    pub decision: Decision,
    /// W3C `tracestate`, only with a valid `traceparent`.
    pub tracestate: Option<String>,
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

/// Appends the lower-case hex of `bytes` to `out`.
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
}

/// Parses exactly `2 * N` lower-case hex digits. Upper case is rejected: both W3C
/// (`HEXDIGLC`) and B3 ("lower-hex") define the ids as lower-case only.
pub(crate) fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

thread_local! {
    // Ids are made on every worker thread for every traced request: a per-thread generator
    // seeded once from the OS avoids a syscall (and any lock) per id.
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let mut buf = [0u8; 8];
    if getrandom::fill(&mut buf).is_ok() {
        return u64::from_le_bytes(buf);
    }
    // No OS randomness (very unusual): ids only need to be unique, not secret, so time and
    // the thread's stack address are enough to keep threads and processes apart.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let local = 0u8;
    nanos ^ ((&raw const local as usize as u64) << 17) ^ u64::from(std::process::id())
}

/// A random u64 (SplitMix64: fast, full period, well mixed; not for secrets).
pub(crate) fn random_u64() -> u64 {
    RNG.with(|state| {
        let next = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// A new span id, never all zeros (invalid in both formats).
pub(crate) fn new_span_id() -> [u8; 8] {
    loop {
        let id = random_u64();
        if id != 0 {
            return id.to_be_bytes();
        }
    }
}

/// A new 128-bit trace id, never all zeros.
pub(crate) fn new_trace_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&random_u64().to_be_bytes());
    id[8..].copy_from_slice(&new_span_id());
    id
}
