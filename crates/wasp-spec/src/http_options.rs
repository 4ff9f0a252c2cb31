//! How an HTTP listener treats its clients: the timeouts and limits of Envoy's
//! HttpConnectionManager, which keep slow or greedy clients from holding the proxy's memory,
//! sockets and upstream connections.

use std::time::Duration;

/// An HTTP listener's timeouts and limits. Defaults are Envoy's, except where Envoy's default
/// is "none" and its edge-proxy guidance names a value (`request_headers_timeout`,
/// `max_concurrent_streams`): a proxy facing clients it does not trust needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpOptions {
    /// From the first byte of a request's head to its last (slowloris); `None`: no limit.
    /// Answered 408 and the connection closed. Envoy: disabled unless set; edge guidance 10 s.
    pub request_headers_timeout: Option<Duration>,
    /// A connection with no request in flight this long is closed (HTTP/2: GOAWAY). Envoy: 1 h.
    pub idle_timeout: Option<Duration>,
    /// A request whose body sends nothing for this long is answered 408 (reset once the
    /// response has started). Envoy: 5 min.
    pub stream_idle_timeout: Option<Duration>,
    /// The whole request (head and body) must arrive within this; 408 otherwise. Envoy: none.
    pub request_timeout: Option<Duration>,
    /// Largest request head (HTTP/1.1) or header list (HTTP/2); larger ones get 431. Envoy: 60 KiB.
    pub max_request_headers_bytes: usize,
    /// Most headers in one request; more get 431. Envoy: 100.
    pub max_headers_count: usize,
    /// Streams one HTTP/2 connection may have open at once. Envoy: 2³¹−1; edge guidance 100.
    pub max_concurrent_streams: u32,
}

impl Default for HttpOptions {
    fn default() -> HttpOptions {
        HttpOptions {
            request_headers_timeout: Some(Duration::from_secs(10)),
            idle_timeout: Some(Duration::from_secs(3600)),
            stream_idle_timeout: Some(Duration::from_secs(300)),
            request_timeout: None,
            max_request_headers_bytes: 60 * 1024,
            max_headers_count: 100,
            max_concurrent_streams: 100,
        }
    }
}
