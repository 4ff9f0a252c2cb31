//! What an HTTP stream looks like to the plugins in its chain.
//!
//! One [`HttpStream`] exists per request/response pair and is shared (through
//! [`SharedHttpStream`]) by every plugin of the chain, as Envoy's filters share one header map:
//! a header added by the first plugin is seen by the second. The embedder decides what is
//! visible when: it fills the request headers before `on_request_headers`, places the chunk (or
//! the buffered body) a plugin should see in `request_body` before `on_request_body`, and marks
//! what has already left the proxy so that plugins can no longer change it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::codec::property::PropertyValue;
use crate::headers::HeaderMap;

/// A stream shared by the host and the embedder.
pub type SharedHttpStream = Arc<Mutex<HttpStream>>;

/// Attributes of a stream that only the embedder knows (addresses, TLS, protocol, timings…).
///
/// `path` is the property path split into segments (`["source", "address"]`); return `None`
/// for anything unknown so the plugin gets `NOT_FOUND`. Header-derived `request.*` and
/// `response.*` attributes are answered by the host itself before this is asked.
pub trait StreamProperties: Send + Sync {
    /// The value of the attribute at `path` for `stream`, or `None` if this embedder does not
    /// know it. Called from inside a hostcall: must not block.
    fn property(&self, path: &[&[u8]], stream: &HttpStream) -> Option<PropertyValue>;
}

/// The request and response of one HTTP stream as plugins see them.
#[derive(Default)]
pub struct HttpStream {
    /// The request headers once the embedder placed them (`None` before); read-only once sent
    /// upstream.
    pub request_headers: Option<HeaderMap>,
    /// The body bytes the plugin being called may see and change: the current chunk, or the
    /// whole buffered body after a plugin asked for buffering.
    pub request_body: Vec<u8>,
    /// The request trailers, if the request has any and they arrived.
    pub request_trailers: Option<HeaderMap>,
    /// The response headers (upstream's or a local reply's) once the embedder placed them;
    /// read-only once sent downstream.
    pub response_headers: Option<HeaderMap>,
    /// The response body bytes the plugin being called may see and change (as `request_body`).
    pub response_body: Vec<u8>,
    /// The response trailers, if the response has any and they arrived.
    pub response_trailers: Option<HeaderMap>,
    /// Set once request headers were sent upstream: from then on they are read-only.
    pub request_headers_sent: bool,
    /// Set once response headers were sent downstream: no more edits, no local replies.
    pub response_headers_sent: bool,
    /// Values written with `proxy_set_property`, keyed by their NUL-joined path (Envoy keeps
    /// them in the stream's filter state, visible to every filter of the chain).
    pub filter_state: HashMap<Vec<u8>, Vec<u8>>,
    /// Embedder-supplied attributes of this stream.
    pub properties: Option<Arc<dyn StreamProperties>>,
}

impl HttpStream {
    /// An empty stream: no headers yet, empty bodies.
    pub fn new() -> HttpStream {
        HttpStream::default()
    }

    /// A fresh shared stream whose request headers are `headers`.
    pub fn shared(headers: HeaderMap) -> SharedHttpStream {
        Arc::new(Mutex::new(HttpStream {
            request_headers: Some(headers),
            ..HttpStream::default()
        }))
    }
}

impl std::fmt::Debug for HttpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpStream")
            .field("request_headers", &self.request_headers)
            .field("request_body_len", &self.request_body.len())
            .field("request_trailers", &self.request_trailers)
            .field("response_headers", &self.response_headers)
            .field("response_body_len", &self.response_body.len())
            .field("response_trailers", &self.response_trailers)
            .finish_non_exhaustive()
    }
}
