//! Lua filters in the chain: what `wasp-lua` needs from a stream (its headers, bodies and
//! metadata, read and written in place), and the conversions between its callouts and the
//! worker's.

use wasp_host::{HeaderMap, HttpCallRequest, HttpCallResponse};
use wasp_lua::{
    CallRequest, CallResponse, DynamicMetadata, HeaderAccess, HeaderBlock, Headers, StreamAccess,
};

use crate::filter::exchange::Exchange;
use crate::filter::properties::StreamRecord;
use crate::filter::signals::Direction;

/// A stream as a Lua script sees it: the same headers and bodies the Wasm plugins see.
pub(crate) struct LuaAccess {
    exchange: Exchange,
    pub clusters: std::sync::Arc<std::collections::HashSet<String>>,
    /// The stream's dynamic metadata, the same for every Lua filter of the stream.
    metadata: std::rc::Rc<std::cell::RefCell<DynamicMetadata>>,
}

impl LuaAccess {
    pub fn new(
        exchange: Exchange,
        clusters: std::sync::Arc<std::collections::HashSet<String>>,
        metadata: std::rc::Rc<std::cell::RefCell<DynamicMetadata>>,
    ) -> LuaAccess {
        LuaAccess {
            exchange,
            clusters,
            metadata,
        }
    }
}

/// `HeaderAccess` over the host's header map.
struct Map<'a>(&'a mut HeaderMap);

impl HeaderAccess for Map<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn entry(&self, index: usize) -> Option<(&[u8], &[u8])> {
        self.0
            .entries()
            .get(index)
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    fn add(&mut self, key: &[u8], value: &[u8]) {
        self.0.add(key, value);
    }

    fn replace(&mut self, key: &[u8], value: &[u8]) {
        self.0.replace(key, value);
    }

    fn remove(&mut self, key: &[u8]) {
        self.0.remove(key);
    }
}

impl StreamAccess for LuaAccess {
    fn headers(&mut self, block: HeaderBlock, f: &mut dyn FnMut(Option<&mut dyn HeaderAccess>)) {
        let (direction, trailers) = match block {
            HeaderBlock::RequestHeaders => (Direction::Request, false),
            HeaderBlock::RequestTrailers => (Direction::Request, true),
            HeaderBlock::ResponseHeaders => (Direction::Response, false),
            HeaderBlock::ResponseTrailers => (Direction::Response, true),
        };
        self.exchange.map_mut(direction, trailers, |map| match map {
            Some(map) => f(Some(&mut Map(map))),
            None => f(None),
        });
    }

    fn body(&mut self, direction: wasp_lua::Direction, f: &mut dyn FnMut(&mut Vec<u8>)) {
        let direction = match direction {
            wasp_lua::Direction::Request => Direction::Request,
            wasp_lua::Direction::Response => Direction::Response,
        };
        self.exchange.body_mut(direction, f);
    }

    fn dynamic_metadata(&mut self, f: &mut dyn FnMut(&mut DynamicMetadata)) {
        f(&mut self.metadata.borrow_mut());
    }

    fn has_cluster(&self, cluster: &str) -> bool {
        self.clusters.contains(cluster)
    }
}

/// What `streamInfo()` and `connection()` answer.
pub(crate) fn stream_info(info: &StreamRecord) -> wasp_lua::StreamInfo {
    let c = &info.conn;
    wasp_lua::StreamInfo {
        protocol: info.protocol.to_string(),
        downstream_local_address: c.local.to_string(),
        downstream_direct_local_address: c.local.to_string(),
        downstream_remote_address: c.peer.to_string(),
        downstream_direct_remote_address: c.peer.to_string(),
        requested_server_name: c.sni.clone().unwrap_or_default(),
        route_name: info
            .route_name
            .lock()
            .ok()
            .and_then(|n| n.as_deref().map(str::to_string))
            .unwrap_or_default(),
        ssl: c.tls.as_deref().map(ssl_info),
        ..Default::default()
    }
}

/// A TLS session as Lua's `ssl()` object shows it.
fn ssl_info(tls: &wasp_tls::Session) -> wasp_lua::SslInfo {
    let peer = tls.peer.as_deref().cloned().unwrap_or_default();
    let local = tls.local.as_deref().cloned().unwrap_or_default();
    wasp_lua::SslInfo {
        peer_certificate_presented: tls.peer.is_some(),
        peer_certificate_validated: tls.peer_validated,
        tls_version: tls.version.clone(),
        ciphersuite_id: tls.cipher_id,
        ciphersuite_string: tls.cipher_name.clone(),
        session_id: String::new(),
        sha256_peer_certificate_digest: peer.sha256,
        serial_number_peer_certificate: peer.serial,
        issuer_peer_certificate: peer.issuer,
        subject_peer_certificate: peer.subject,
        subject_local_certificate: local.subject,
        uri_san_peer_certificate: peer.uri_sans,
        uri_san_local_certificate: local.uri_sans,
        dns_sans_peer_certificate: peer.dns_sans,
        dns_sans_local_certificate: local.dns_sans,
    }
}

/// A script's `httpCall` as a worker callout.
pub(crate) fn callout(call: CallRequest, downstream: &str) -> HttpCallRequest {
    let mut headers = HeaderMap::new();
    for (k, v) in call.headers.entries() {
        headers.add(k, v);
    }
    if call.send_xff {
        headers.add(b"x-forwarded-for", downstream.as_bytes());
    }
    HttpCallRequest {
        token: 0,
        root_context: 0,
        cluster: call.cluster,
        headers,
        body: call.body,
        trailers: HeaderMap::new(),
        timeout: call.timeout,
    }
}

/// A callout's answer as the script gets it.
pub(crate) fn call_response(response: HttpCallResponse) -> CallResponse {
    CallResponse {
        headers: Headers::from_pairs(response.headers.iter()),
        body: response.body,
    }
}
