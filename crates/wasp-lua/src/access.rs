//! What a Lua filter needs from the data plane: the stream's headers, bodies and trailers of
//! both directions, a few attributes, and the per-stream dynamic metadata store.
//!
//! The library owns no copy of the stream: the data plane implements [`StreamAccess`] over its
//! own stream object (wasp-proxy over `SharedHttpStream`, locking per access) and hands it to
//! [`crate::LuaWorker::new_stream`]. Access goes through closures so that an implementation
//! can hold a lock only for the duration of one Lua API call. [`MemoryStream`] is a plain
//! in-memory implementation for tests and tools.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

/// The two directions of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Downstream to upstream: `envoy_on_request`.
    Request,
    /// Upstream to downstream: `envoy_on_response`.
    Response,
}

/// One of the four header maps of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderBlock {
    /// Headers of the request.
    RequestHeaders,
    /// Trailers of the request, if it has any.
    RequestTrailers,
    /// Headers of the response (upstream's or a local reply's).
    ResponseHeaders,
    /// Trailers of the response, if it has any.
    ResponseTrailers,
}

impl HeaderBlock {
    /// The header block of `direction`.
    pub fn headers(direction: Direction) -> HeaderBlock {
        match direction {
            Direction::Request => HeaderBlock::RequestHeaders,
            Direction::Response => HeaderBlock::ResponseHeaders,
        }
    }

    /// The trailer block of `direction`.
    pub fn trailers(direction: Direction) -> HeaderBlock {
        match direction {
            Direction::Request => HeaderBlock::RequestTrailers,
            Direction::Response => HeaderBlock::ResponseTrailers,
        }
    }
}

/// An ordered, multi-valued header map the script reads and edits. Keys passed in are already
/// lower-cased (Envoy lower-cases every key a script passes); implementations compare keys
/// ASCII-case-insensitively anyway.
pub trait HeaderAccess {
    /// Number of entries (a repeated key counts once per value).
    fn len(&self) -> usize;
    /// The entry at `index` in order, `None` past the end.
    fn entry(&self, index: usize) -> Option<(&[u8], &[u8])>;
    /// Appends a value, keeping existing ones.
    fn add(&mut self, key: &[u8], value: &[u8]);
    /// Sets `key` to `value` alone (adds it when absent).
    fn replace(&mut self, key: &[u8], value: &[u8]);
    /// Removes every value of `key`.
    fn remove(&mut self, key: &[u8]);

    /// Whether the map has no entries.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The data plane's side of one stream, owned by the [`crate::LuaStream`] for its lifetime.
///
/// Bodies follow the chain's model: `body(direction)` is the chunk the filter is being called
/// with, or the whole body buffered so far after the filter answered
/// [`crate::Outcome::StopAndBuffer`]. Edits made through it are what the chain passes on.
pub trait StreamAccess {
    /// Calls `f` with a header map, or with `None` when it does not exist (yet): trailers of a
    /// stream without trailers, response headers before the response.
    fn headers(&mut self, block: HeaderBlock, f: &mut dyn FnMut(Option<&mut dyn HeaderAccess>));
    /// Calls `f` with the body bytes of `direction` (see the trait docs).
    fn body(&mut self, direction: Direction, f: &mut dyn FnMut(&mut Vec<u8>));
    /// Calls `f` with the stream's dynamic metadata (shared by every filter of the stream).
    fn dynamic_metadata(&mut self, f: &mut dyn FnMut(&mut DynamicMetadata));
    /// Whether an `httpCall` may address `cluster`; Envoy raises a script error for an unknown
    /// cluster. The default accepts every name (the call then fails at the data plane).
    fn has_cluster(&self, cluster: &str) -> bool {
        let _ = cluster;
        true
    }
}

/// A value of dynamic or route metadata (a `google.protobuf.Value`).
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataValue {
    /// JSON-style null; reads as `nil` in Lua.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number (protobuf has only doubles); integral values below 9e15 read as Lua integers.
    Number(f64),
    /// A string.
    String(String),
    /// An ordered list; a Lua sequence.
    List(Vec<MetadataValue>),
    /// A struct of named fields; a Lua table with string keys.
    Map(BTreeMap<String, MetadataValue>),
}

/// Envoy's dynamic metadata: per filter name (namespace), a struct of fields.
pub type DynamicMetadata = BTreeMap<String, BTreeMap<String, MetadataValue>>;

/// Attributes of the stream that do not change while it runs.
#[derive(Debug, Clone, Default)]
pub struct StreamInfo {
    /// `"HTTP/1.0"`, `"HTTP/1.1"`, `"HTTP/2"` or `"HTTP/3"`, as Envoy's `protocol()`.
    pub protocol: String,
    /// `ip:port` strings, as Envoy prints addresses.
    pub downstream_local_address: String,
    /// The local address the connection was accepted on, before any original-destination
    /// restoration (`downstreamDirectLocalAddress()`).
    pub downstream_direct_local_address: String,
    /// The client's address (`downstreamRemoteAddress()`), which a PROXY-protocol header may
    /// have replaced.
    pub downstream_remote_address: String,
    /// The address of the peer actually connected to the proxy (`downstreamDirectRemoteAddress()`).
    pub downstream_direct_remote_address: String,
    /// SNI of the downstream TLS connection, empty without.
    pub requested_server_name: String,
    /// Name of the route the request matched, empty if none (`streamInfo():routeName()`).
    pub route_name: String,
    /// `None` for plain-text connections: `connection():ssl()` returns nil.
    pub ssl: Option<SslInfo>,
    /// The route's filter metadata for this filter, answered by `handle:metadata():get(k)`.
    pub route_metadata: Arc<BTreeMap<String, MetadataValue>>,
    /// `LuaPerRoute.filter_context`, answered by `handle:filterContext()`.
    pub filter_context: Arc<BTreeMap<String, MetadataValue>>,
}

/// What a script can learn about the downstream TLS connection. Empty strings / lists mean
/// "not available", as Envoy answers them.
#[derive(Debug, Clone, Default)]
pub struct SslInfo {
    /// Whether the client sent a certificate.
    pub peer_certificate_presented: bool,
    /// Whether the client's certificate was verified against the configured trust.
    pub peer_certificate_validated: bool,
    /// `"TLSv1.2"`, `"TLSv1.3"`.
    pub tls_version: String,
    /// The IANA cipher suite number; the script sees it as a `0x%04x` string.
    pub ciphersuite_id: u16,
    /// The cipher suite's OpenSSL-style name, e.g. `ECDHE-RSA-AES128-GCM-SHA256`.
    pub ciphersuite_string: String,
    /// The TLS session id, hex-encoded.
    pub session_id: String,
    /// Hex SHA-256 of the client certificate (DER).
    pub sha256_peer_certificate_digest: String,
    /// The client certificate's serial number, hex.
    pub serial_number_peer_certificate: String,
    /// The client certificate's issuer distinguished name.
    pub issuer_peer_certificate: String,
    /// The client certificate's subject distinguished name.
    pub subject_peer_certificate: String,
    /// The subject distinguished name of the proxy's own certificate.
    pub subject_local_certificate: String,
    /// URI subject alternative names of the client certificate.
    pub uri_san_peer_certificate: Vec<String>,
    /// URI subject alternative names of the proxy's own certificate.
    pub uri_san_local_certificate: Vec<String>,
    /// DNS subject alternative names of the client certificate.
    pub dns_sans_peer_certificate: Vec<String>,
    /// DNS subject alternative names of the proxy's own certificate.
    pub dns_sans_local_certificate: Vec<String>,
}

/// A plain ordered header list with lower-cased keys, used for callouts and local replies and
/// as the header map of [`MemoryStream`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Headers {
    /// An empty list.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Builds a list from pairs, lower-casing keys.
    pub fn from_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Headers {
        let mut headers = Headers::new();
        for (k, v) in pairs {
            HeaderAccess::add(&mut headers, k.as_ref(), v.as_ref());
        }
        headers
    }

    /// The entries in order, keys lower-cased.
    pub fn entries(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.entries
    }

    /// Takes the entries out, in order.
    pub fn into_entries(self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.entries
    }

    /// The first value of `key` as UTF-8, if any (a test and tooling convenience).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key.as_bytes()))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

impl HeaderAccess for Headers {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn entry(&self, index: usize) -> Option<(&[u8], &[u8])> {
        self.entries
            .get(index)
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    fn add(&mut self, key: &[u8], value: &[u8]) {
        self.entries
            .push((key.to_ascii_lowercase(), value.to_vec()));
    }

    fn replace(&mut self, key: &[u8], value: &[u8]) {
        // Envoy's setCopy: the first entry keeps its place, later ones go.
        let mut found = false;
        self.entries.retain_mut(|(k, v)| {
            if !k.eq_ignore_ascii_case(key) {
                return true;
            }
            if found {
                return false;
            }
            found = true;
            *v = value.to_vec();
            true
        });
        if !found {
            self.add(key, value);
        }
    }

    fn remove(&mut self, key: &[u8]) {
        self.entries.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
    }
}

/// A stream held in memory: what tests and tools hand to [`crate::LuaWorker::new_stream`]
/// (wrapped in `Rc<RefCell<_>>` so the caller can look at it between phases).
#[derive(Debug, Clone, Default)]
pub struct MemoryStream {
    /// `None` until set; the request headers are usually set before the stream starts.
    pub request_headers: Option<Headers>,
    /// The request body the filter sees (the chunk or the buffered body).
    pub request_body: Vec<u8>,
    /// `Some` once the request has trailers.
    pub request_trailers: Option<Headers>,
    /// `None` until the response starts.
    pub response_headers: Option<Headers>,
    /// The response body the filter sees (the chunk or the buffered body).
    pub response_body: Vec<u8>,
    /// `Some` once the response has trailers.
    pub response_trailers: Option<Headers>,
    /// Dynamic metadata shared by the stream's filters (`streamInfo():dynamicMetadata()`).
    pub dynamic_metadata: DynamicMetadata,
    /// Clusters `httpCall` may address; empty = any.
    pub clusters: Vec<String>,
}

impl MemoryStream {
    fn block(&mut self, block: HeaderBlock) -> &mut Option<Headers> {
        match block {
            HeaderBlock::RequestHeaders => &mut self.request_headers,
            HeaderBlock::RequestTrailers => &mut self.request_trailers,
            HeaderBlock::ResponseHeaders => &mut self.response_headers,
            HeaderBlock::ResponseTrailers => &mut self.response_trailers,
        }
    }
}

impl StreamAccess for Rc<RefCell<MemoryStream>> {
    fn headers(&mut self, block: HeaderBlock, f: &mut dyn FnMut(Option<&mut dyn HeaderAccess>)) {
        let mut s = self.borrow_mut();
        match s.block(block) {
            Some(h) => f(Some(h)),
            None => f(None),
        }
    }

    fn body(&mut self, direction: Direction, f: &mut dyn FnMut(&mut Vec<u8>)) {
        let mut s = self.borrow_mut();
        match direction {
            Direction::Request => f(&mut s.request_body),
            Direction::Response => f(&mut s.response_body),
        }
    }

    fn dynamic_metadata(&mut self, f: &mut dyn FnMut(&mut DynamicMetadata)) {
        f(&mut self.borrow_mut().dynamic_metadata);
    }

    fn has_cluster(&self, cluster: &str) -> bool {
        let s = self.borrow();
        s.clusters.is_empty() || s.clusters.iter().any(|c| c == cluster)
    }
}
