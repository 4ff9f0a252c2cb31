//! Attributes of a stream that come from its connection and routing, with Envoy's names
//! and encodings (header-derived `request.*`/`response.*` are answered by the host).

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::SystemTime;

use wasp_host::{HttpStream, PropertyValue, StreamProperties};

use crate::spec::Direction;

/// One downstream connection.
#[derive(Debug)]
pub struct ConnInfo {
    pub id: u64,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub listener: String,
    pub direction: Direction,
    pub tls: Option<TlsInfo>,
}

#[derive(Debug, Clone)]
pub struct TlsInfo {
    pub sni: Option<String>,
    pub version: String,
}

/// What is known about one stream beyond its headers.
pub struct StreamInfo {
    pub conn: std::sync::Arc<ConnInfo>,
    pub protocol: &'static str,
    pub start: SystemTime,
    /// Set once the route picked a cluster and an endpoint.
    pub upstream: Mutex<Option<(String, String)>>,
}

impl StreamProperties for StreamInfo {
    fn property(&self, path: &[&[u8]], _stream: &HttpStream) -> Option<PropertyValue> {
        let c = &self.conn;
        Some(match path {
            [b"source", b"address"] => c.peer.to_string().into(),
            [b"source", b"port"] => PropertyValue::Int(c.peer.port().into()),
            [b"destination", b"address"] => c.local.to_string().into(),
            [b"destination", b"port"] => PropertyValue::Int(c.local.port().into()),
            [b"connection", b"id"] | [b"connection_id"] => PropertyValue::UInt(c.id),
            [b"connection", b"mtls"] => PropertyValue::Bool(false),
            [b"connection", b"requested_server_name"] => {
                c.tls.as_ref()?.sni.clone().unwrap_or_default().into()
            }
            [b"connection", b"tls_version"] => c.tls.as_ref()?.version.clone().into(),
            [b"request", b"protocol"] => self.protocol.into(),
            [b"request", b"time"] => PropertyValue::Timestamp(self.start),
            [b"request", b"duration"] => {
                PropertyValue::Duration(self.start.elapsed().unwrap_or_default())
            }
            [b"upstream", b"address"] => self.upstream.lock().ok()?.as_ref()?.1.clone().into(),
            [b"xds", b"cluster_name"] | [b"cluster_name"] => {
                self.upstream.lock().ok()?.as_ref()?.0.clone().into()
            }
            [b"xds", b"listener_direction"] | [b"listener_direction"] => {
                PropertyValue::Int(match c.direction {
                    Direction::Inbound => 1,
                    Direction::Outbound => 2,
                })
            }
            [b"xds", b"filter_chain_name"] => c.listener.clone().into(),
            _ => return None,
        })
    }
}
