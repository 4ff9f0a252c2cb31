//! Attributes of a stream that come from its connection and routing, with Envoy's names
//! and encodings (header-derived `request.*`/`response.*` are answered by the host).

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use wasp_host::{HttpStream, PropertyValue, StreamProperties};
use wasp_tls::{CertInfo, Session};

use crate::body::client::{ClientFault, NotesClientFault};
use crate::spec::TrafficDirection;
use crate::upstream::Picked;

/// One downstream connection.
#[derive(Debug)]
pub struct ConnInfo {
    pub id: u64,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub listener: String,
    pub direction: TrafficDirection,
    /// The TLS server name: from wasp's own handshake, or read from the ClientHello of a
    /// connection a TCP listener passes through.
    pub sni: Option<String>,
    /// The TLS session wasp terminated, if any.
    pub tls: Option<Arc<Session>>,
}

/// The live record of one stream beyond its headers (Envoy's stream info): what properties,
/// Lua's `streamInfo()` and the access log read.
pub struct StreamRecord {
    pub conn: std::sync::Arc<ConnInfo>,
    pub protocol: &'static str,
    pub start: SystemTime,
    /// Set once the route picked a cluster and an endpoint.
    pub upstream: Mutex<Option<Picked>>,
    /// The cluster of the route the request matched as it arrived (`xds.cluster_name` before
    /// the upstream is picked: Envoy routes before the filters run).
    pub route_cluster: Mutex<Option<Arc<str>>>,
    /// The name of that route, if it has one (Lua's `streamInfo():routeName()`).
    pub route_name: Mutex<Option<Arc<str>>>,
    /// Body bytes received from the client / sent to it.
    pub request_body_bytes: AtomicU64,
    pub response_body_bytes: AtomicU64,
    /// Envoy's `response.code_details`: `via_upstream`, or the local reply's details.
    pub code_details: Mutex<Option<String>>,
    /// The client's request has ended (its last body byte or trailers arrived).
    pub request_complete: std::sync::atomic::AtomicBool,
    /// Envoy's response flags (`crate::flags`).
    pub flags: std::sync::atomic::AtomicU32,
    /// Upstream attempts made (`upstream.request_attempt_count`).
    pub attempts: std::sync::atomic::AtomicU32,
    /// Why the client's body failed, when it was the client's fault (a
    /// [`ClientFault`] as a number; 0: none).
    client_fault: std::sync::atomic::AtomicU8,
    /// The stream's span, when tracing is on: plugin phases add events to it, the upstream
    /// request carries its context, and it ends with the response. `None` without tracing,
    /// so the hot path takes no lock for it.
    span: Option<Mutex<Option<wasp_trace::Span>>>,
    /// The client's address as Envoy's connection manager sees it with `use_remote_address:
    /// false` (its default, and Istio's sidecars'): the last `x-forwarded-for` entry, port 0;
    /// the socket's peer without the header.
    pub remote: SocketAddr,
}

impl StreamRecord {
    pub fn new(
        conn: std::sync::Arc<ConnInfo>,
        protocol: &'static str,
        forwarded_for: Option<&str>,
        span: Option<wasp_trace::Span>,
    ) -> StreamRecord {
        let remote = forwarded_for
            .and_then(|xff| xff.rsplit(',').next())
            .and_then(|last| last.trim().parse::<std::net::IpAddr>().ok())
            .map_or(conn.peer, |ip| SocketAddr::new(ip, 0));
        StreamRecord {
            span: span.map(|s| Mutex::new(Some(s))),
            remote,
            conn,
            protocol,
            start: SystemTime::now(),
            upstream: Mutex::default(),
            route_cluster: Mutex::default(),
            route_name: Mutex::default(),
            request_body_bytes: AtomicU64::new(0),
            response_body_bytes: AtomicU64::new(0),
            code_details: Mutex::default(),
            request_complete: Default::default(),
            flags: Default::default(),
            attempts: Default::default(),
            client_fault: Default::default(),
        }
    }

    fn span(&self) -> Option<std::sync::MutexGuard<'_, Option<wasp_trace::Span>>> {
        let span = self.span.as_ref()?;
        Some(
            span.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Adds an event to the stream's span (nothing without one).
    pub fn trace_event(&self, name: impl FnOnce() -> String) {
        if let Some(span) = self.span().as_mut().and_then(|s| s.as_mut()) {
            span.add_event(name(), SystemTime::now(), &[]);
        }
    }

    /// The trace headers the upstream request carries (none without a span).
    pub fn trace_headers(&self) -> Vec<(&'static str, String)> {
        self.span()
            .and_then(|s| s.as_ref().map(wasp_trace::Span::propagation_headers))
            .unwrap_or_default()
    }

    /// The span, to end it (once).
    pub fn take_span(&self) -> Option<wasp_trace::Span> {
        self.span()?.take()
    }

    /// The fault the client's body was found with, if any.
    pub fn client_fault(&self) -> Option<ClientFault> {
        ClientFault::from_u8(self.client_fault.load(Relaxed))
    }

    pub fn add_flags(&self, bits: u32) {
        self.flags.fetch_or(bits, Relaxed);
    }

    pub fn set_code_details(&self, details: &str) {
        *self
            .code_details
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(details.to_string());
    }
}

/// Envoy's `connection.*` attributes of a TLS session (`extractSslInfo`): the subjects are
/// always there (empty without a certificate), the first SAN of each kind and the digest only
/// when the certificate has them.
fn tls_attribute(tls: &Session, attribute: &[u8]) -> Option<PropertyValue> {
    let subject = |c: Option<&Arc<CertInfo>>| c.map(|c| c.subject.clone()).unwrap_or_default();
    let first = |names: &[String]| names.first().cloned().map(PropertyValue::from);
    match attribute {
        b"tls_version" => Some(tls.version.clone().into()),
        b"subject_local_certificate" => Some(subject(tls.local.as_ref()).into()),
        b"subject_peer_certificate" => Some(subject(tls.peer.as_ref()).into()),
        b"uri_san_local_certificate" => first(&tls.local.as_ref()?.uri_sans),
        b"uri_san_peer_certificate" => first(&tls.peer.as_ref()?.uri_sans),
        b"dns_san_local_certificate" => first(&tls.local.as_ref()?.dns_sans),
        b"dns_san_peer_certificate" => first(&tls.peer.as_ref()?.dns_sans),
        b"sha256_peer_certificate_digest" => Some(tls.peer.as_ref()?.sha256.clone().into()),
        _ => None,
    }
}

/// Approximate size of a header map as Envoy counts it for `*.total_size`: names and values.
fn header_bytes(headers: Option<&wasp_host::HeaderMap>) -> u64 {
    headers.map_or(0, |h| {
        h.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum()
    })
}

/// Envoy's `Grpc::Utility::httpToGrpcStatus`, for responses without a grpc-status.
fn grpc_status_of_http(status: u64) -> i64 {
    match status {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502 | 503 | 504 => 14,
        _ => 2,
    }
}

impl ConnInfo {
    /// The connection's own attributes (`source.*`, `destination.*`, `connection.*`), for
    /// HTTP streams and TCP connections alike.
    pub fn property(&self, path: &[&[u8]]) -> Option<PropertyValue> {
        Some(match path {
            [b"source", b"address"] => self.peer.to_string().into(),
            [b"source", b"port"] => PropertyValue::Int(self.peer.port().into()),
            [b"destination", b"address"] => self.local.to_string().into(),
            [b"destination", b"port"] => PropertyValue::Int(self.local.port().into()),
            [b"connection", b"id"] | [b"connection_id"] => PropertyValue::UInt(self.id),
            [b"connection", b"mtls"] => {
                PropertyValue::Bool(self.tls.as_ref().is_some_and(|t| t.mtls()))
            }
            [b"connection", b"requested_server_name"] => {
                if self.tls.is_none() && self.sni.is_none() {
                    return None;
                }
                self.sni.clone().unwrap_or_default().into()
            }
            [b"connection", attribute] => {
                return self
                    .tls
                    .as_deref()
                    .and_then(|t| tls_attribute(t, attribute));
            }
            [b"xds", b"listener_direction"] => PropertyValue::Int(match self.direction {
                TrafficDirection::Inbound => 1,
                TrafficDirection::Outbound => 2,
            }),
            [b"xds", b"filter_chain_name"] => self.listener.clone().into(),
            _ => return None,
        })
    }
}

impl StreamProperties for StreamRecord {
    fn property(&self, path: &[&[u8]], stream: &HttpStream) -> Option<PropertyValue> {
        match path {
            [b"source", b"address"] => return Some(self.remote.to_string().into()),
            [b"source", b"port"] => return Some(PropertyValue::Int(self.remote.port().into())),
            _ => {}
        }
        if let Some(value) = self.conn.property(path) {
            return Some(value);
        }
        Some(match path {
            [b"request", b"protocol"] => self.protocol.into(),
            [b"request", b"time"] => PropertyValue::Timestamp(self.start),
            [b"request", b"duration"] => {
                PropertyValue::Duration(self.start.elapsed().unwrap_or_default())
            }
            [b"upstream", b"address"] => self
                .upstream
                .lock()
                .ok()?
                .as_ref()?
                .endpoint
                .to_string()
                .into(),
            [b"xds", b"cluster_name"] => match self.upstream.lock().ok()?.as_ref() {
                Some(picked) => picked.cluster.to_string().into(),
                None => self
                    .route_cluster
                    .lock()
                    .ok()?
                    .as_deref()?
                    .to_string()
                    .into(),
            },
            [b"request", b"size"] => {
                PropertyValue::Int(self.request_body_bytes.load(Relaxed) as i64)
            }
            [b"request", b"total_size"] => PropertyValue::Int(
                (self.request_body_bytes.load(Relaxed)
                    + header_bytes(stream.request_headers.as_ref())) as i64,
            ),
            [b"response", b"size"] => {
                stream.response_headers.as_ref()?;
                PropertyValue::Int(self.response_body_bytes.load(Relaxed) as i64)
            }
            [b"response", b"total_size"] => PropertyValue::Int(
                (self.response_body_bytes.load(Relaxed)
                    + header_bytes(stream.response_headers.as_ref())) as i64,
            ),
            [b"response", b"code_details"] => self.code_details.lock().ok()?.clone()?.into(),
            // Envoy's response flags bit field.
            [b"response", b"flags"] => {
                stream.response_headers.as_ref()?;
                PropertyValue::UInt(u64::from(self.flags.load(Relaxed)))
            }
            [b"upstream", b"request_attempt_count"] => {
                PropertyValue::UInt(u64::from(self.attempts.load(Relaxed)))
            }
            [b"response", b"grpc_status"] => {
                let from = |h: Option<&wasp_host::HeaderMap>| {
                    h.and_then(|h| h.get_str("grpc-status"))
                        .and_then(|v| v.parse::<i64>().ok())
                };
                let status = from(stream.response_trailers.as_ref())
                    .or_else(|| from(stream.response_headers.as_ref()))
                    .or_else(|| {
                        let code = stream.response_headers.as_ref()?.get_str(":status")?;
                        Some(grpc_status_of_http(code.parse().ok()?))
                    })?;
                PropertyValue::Int(status)
            }
            _ => return None,
        })
    }
}

impl NotesClientFault for StreamRecord {
    fn note(&self, fault: ClientFault) {
        self.client_fault.store(fault.as_u8(), Relaxed);
    }
}
