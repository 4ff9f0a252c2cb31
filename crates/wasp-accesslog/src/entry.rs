//! What one finished request (or TCP connection) looked like, as the operators read it.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A header map, as `%REQ(X)%`, `%RESP(X)%` and `%TRAILER(X)%` read it.
///
/// The data plane implements this for its own header type (through a newtype if the type is
/// another crate's); tests can use a slice or `Vec` of `(name, value)` pairs.
pub trait Headers {
    /// The first value of the header named `lowercase_name` (always lower case, pseudo-headers
    /// with their `:`), or `None` when it is absent.
    ///
    /// The first, not all joined: Envoy's header formatter logs `header[0]` when a header
    /// repeats (`http_specific_formatter.cc`, a TODO there for logging all values).
    fn get(&self, lowercase_name: &str) -> Option<&str>;
}

/// No headers at all: what a TCP connection, or a request that never got a response, has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoHeaders;

impl Headers for NoHeaders {
    fn get(&self, _lowercase_name: &str) -> Option<&str> {
        None
    }
}

/// Pairs of `(name, value)`; names compared ignoring ASCII case, the first match wins.
impl<K: AsRef<str>, V: AsRef<str>> Headers for [(K, V)] {
    fn get(&self, lowercase_name: &str) -> Option<&str> {
        self.iter()
            .find(|(name, _)| name.as_ref().eq_ignore_ascii_case(lowercase_name))
            .map(|(_, value)| value.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for Vec<(K, V)> {
    fn get(&self, lowercase_name: &str) -> Option<&str> {
        Headers::get(self.as_slice(), lowercase_name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Headers for [(K, V); N] {
    fn get(&self, lowercase_name: &str) -> Option<&str> {
        Headers::get(self.as_slice(), lowercase_name)
    }
}

/// What one finished request (or TCP connection) looked like. Everything is borrowed, so the
/// data plane builds one cheaply from what it already holds.
///
/// Start from [`Entry::new`] and set what is known:
///
/// ```
/// # use std::time::SystemTime;
/// # use wasp_accesslog::Entry;
/// let headers = [(":method", "GET"), (":path", "/status?verbose=1")];
/// let entry = Entry {
///     request_headers: &headers,
///     response_code: Some(200),
///     ..Entry::new(SystemTime::now())
/// };
/// # let _ = entry;
/// ```
#[derive(Clone, Copy)]
pub struct Entry<'a> {
    /// When the request's first byte (or the connection) arrived: `%START_TIME%`.
    pub start_time: SystemTime,
    /// The request headers, pseudo-headers included (`:method`, `:path` with its query,
    /// `:authority`, `:scheme`): `%REQ(X)%`.
    pub request_headers: &'a dyn Headers,
    /// The response headers sent downstream: `%RESP(X)%`.
    pub response_headers: &'a dyn Headers,
    /// The response trailers sent downstream: `%TRAILER(X)%`.
    pub response_trailers: &'a dyn Headers,
    /// `HTTP/1.0`, `HTTP/1.1`, `HTTP/2`; `None` for TCP: `%PROTOCOL%`.
    pub protocol: Option<&'a str>,
    /// The status sent downstream; `None` (no response began) logs as 0: `%RESPONSE_CODE%`.
    pub response_code: Option<u16>,
    /// Short response flags, comma-separated (`UF,URX`); empty logs as `-`: `%RESPONSE_FLAGS%`.
    pub response_flags: &'a str,
    /// Who set the response code and why (`via_upstream`): `%RESPONSE_CODE_DETAILS%`.
    pub response_code_details: Option<&'a str>,
    /// Why the connection was closed, for L4 reasons: `%CONNECTION_TERMINATION_DETAILS%`.
    pub connection_termination_details: Option<&'a str>,
    /// Why the upstream connection failed in its transport (TLS):
    /// `%UPSTREAM_TRANSPORT_FAILURE_REASON%`.
    pub upstream_transport_failure_reason: Option<&'a str>,
    /// Body bytes received (TCP: all bytes received): `%BYTES_RECEIVED%`.
    pub bytes_received: u64,
    /// Body bytes sent (TCP: all bytes sent): `%BYTES_SENT%`.
    pub bytes_sent: u64,
    /// From the start to the last byte sent downstream: `%DURATION%`.
    pub duration: Option<Duration>,
    /// From the start to the last request byte received: `%REQUEST_DURATION%`.
    pub request_duration: Option<Duration>,
    /// From the start to the first response byte from upstream: `%RESPONSE_DURATION%`.
    pub response_duration: Option<Duration>,
    /// The upstream host's `ip:port`: `%UPSTREAM_HOST%`.
    pub upstream_host: Option<&'a str>,
    /// The cluster's name: `%UPSTREAM_CLUSTER%`, `%UPSTREAM_CLUSTER_RAW%`.
    pub upstream_cluster: Option<&'a str>,
    /// The upstream connection's local `ip:port`: `%UPSTREAM_LOCAL_ADDRESS%`.
    pub upstream_local_address: Option<&'a str>,
    /// Upstream attempts (1 + retries); `None` logs as 0: `%UPSTREAM_REQUEST_ATTEMPT_COUNT%`.
    pub upstream_request_attempt_count: Option<u32>,
    /// The listener's address the client connected to: `%DOWNSTREAM_LOCAL_ADDRESS%`.
    pub downstream_local_address: Option<SocketAddr>,
    /// The client's address: `%DOWNSTREAM_REMOTE_ADDRESS%`.
    pub downstream_remote_address: Option<SocketAddr>,
    /// The TLS SNI: `%REQUESTED_SERVER_NAME%`.
    pub requested_server_name: Option<&'a str>,
    /// The matched route's name: `%ROUTE_NAME%`.
    pub route_name: Option<&'a str>,
    /// The downstream connection's id; `None` logs as 0: `%CONNECTION_ID%`.
    pub connection_id: Option<u64>,
    /// The client certificate's URI SANs, comma-separated: `%DOWNSTREAM_PEER_URI_SAN%`.
    pub downstream_peer_uri_san: Option<&'a str>,
    /// The server certificate's URI SANs, comma-separated: `%DOWNSTREAM_LOCAL_URI_SAN%`.
    pub downstream_local_uri_san: Option<&'a str>,
    /// The client certificate's subject: `%DOWNSTREAM_PEER_SUBJECT%`.
    pub downstream_peer_subject: Option<&'a str>,
    /// `TLSv1.3` and the like: `%DOWNSTREAM_TLS_VERSION%`.
    pub downstream_tls_version: Option<&'a str>,
    /// This machine's host name (empty logs as `-`): `%HOSTNAME%`.
    pub hostname: &'a str,
}

impl Entry<'_> {
    /// An entry that started at `start_time` and knows nothing else: no headers, no response,
    /// no addresses, zero bytes.
    pub fn new(start_time: SystemTime) -> Self {
        Entry {
            start_time,
            request_headers: &NoHeaders,
            response_headers: &NoHeaders,
            response_trailers: &NoHeaders,
            protocol: None,
            response_code: None,
            response_flags: "",
            response_code_details: None,
            connection_termination_details: None,
            upstream_transport_failure_reason: None,
            bytes_received: 0,
            bytes_sent: 0,
            duration: None,
            request_duration: None,
            response_duration: None,
            upstream_host: None,
            upstream_cluster: None,
            upstream_local_address: None,
            upstream_request_attempt_count: None,
            downstream_local_address: None,
            downstream_remote_address: None,
            requested_server_name: None,
            route_name: None,
            connection_id: None,
            downstream_peer_uri_san: None,
            downstream_local_uri_san: None,
            downstream_peer_subject: None,
            downstream_tls_version: None,
            hostname: "",
        }
    }
}

/// [`Entry::new`] at the Unix epoch.
impl Default for Entry<'_> {
    fn default() -> Self {
        Entry::new(UNIX_EPOCH)
    }
}

impl std::fmt::Debug for Entry<'_> {
    // The header maps are trait objects without Debug; everything else is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("start_time", &self.start_time)
            .field("protocol", &self.protocol)
            .field("response_code", &self.response_code)
            .field("response_flags", &self.response_flags)
            .field("bytes_received", &self.bytes_received)
            .field("bytes_sent", &self.bytes_sent)
            .field("duration", &self.duration)
            .field("upstream_host", &self.upstream_host)
            .field("upstream_cluster", &self.upstream_cluster)
            .field("downstream_remote_address", &self.downstream_remote_address)
            .field("route_name", &self.route_name)
            .finish_non_exhaustive()
    }
}
