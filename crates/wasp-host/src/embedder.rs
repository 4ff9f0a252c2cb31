//! The seam between the host and the proxy that embeds it.
//!
//! The host never touches a socket. Whatever a plugin asks of the outside world (an HTTP
//! callout, a gRPC call, a log line, an attribute of the node) goes through [`Embedder`];
//! whatever a plugin asks of its stream (resume, reset, answer locally, re-arm a timer) comes
//! back as an [`Effect`] for the embedder to carry out after the guest call has returned, so
//! the guest is never re-entered from inside a hostcall.

use std::time::Duration;

use crate::abi::{LogLevel, StreamType};
use crate::codec::property::PropertyValue;
use crate::headers::HeaderMap;
use crate::log::LogRecord;

/// An outgoing HTTP callout (`proxy_http_call`), validated by the host.
#[derive(Debug, Clone)]
pub struct HttpCallRequest {
    /// Identifies the call; hand it back with [`crate::Vm::on_http_call_response`].
    pub token: u32,
    /// The root context the response is delivered to.
    pub root_context: u32,
    /// The cluster (upstream) name the plugin addressed.
    pub cluster: String,
    /// Contains `:method`, `:path` and `:authority` (the host rejects calls without them).
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
    /// `None` when the plugin passed 0 (no timeout).
    pub timeout: Option<Duration>,
}

/// The answer to an HTTP callout. A failed call (reset, timeout, no upstream) is delivered as
/// `None` instead, which plugins see as a response with zero headers.
#[derive(Debug, Clone, Default)]
pub struct HttpCallResponse {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
}

/// Which gRPC service a call addresses: Envoy accepts a cluster name or a serialized
/// `envoy.config.core.v3.GrpcService`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrpcTarget {
    Cluster(String),
    GrpcServiceProto(Vec<u8>),
}

/// An outgoing gRPC unary call (`message` is `Some`) or stream (`message` is `None`).
#[derive(Debug, Clone)]
pub struct GrpcCallRequest {
    pub token: u32,
    pub root_context: u32,
    pub target: GrpcTarget,
    pub service: String,
    pub method: String,
    pub initial_metadata: HeaderMap,
    pub message: Option<Vec<u8>>,
    pub timeout: Option<Duration>,
}

/// Why the embedder could not start a callout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalloutError {
    /// The named cluster does not exist (the plugin gets `BAD_ARGUMENT` for an HTTP call and
    /// `PARSE_FAILURE` for gRPC, as in Envoy).
    #[error("unknown cluster {0:?}")]
    UnknownCluster(String),
    /// The target could not be understood (`BAD_ARGUMENT` for HTTP, `PARSE_FAILURE` for
    /// gRPC, as in Envoy).
    #[error("unparsable callout target")]
    BadTarget,
    /// Anything else (`INTERNAL_FAILURE`).
    #[error("callout failed: {0}")]
    Failed(String),
}

/// Services the proxy provides to one VM. All methods run inside a hostcall: they must not
/// block and must not call back into the VM; start the work and report later.
pub trait Embedder: Send {
    /// Starts an HTTP callout. The default refuses: the embedder has no clusters.
    fn http_call(&mut self, request: HttpCallRequest) -> Result<(), CalloutError> {
        Err(CalloutError::UnknownCluster(request.cluster))
    }

    /// Starts a gRPC unary call or opens a stream.
    fn grpc_call(&mut self, request: GrpcCallRequest) -> Result<(), CalloutError> {
        let _ = request;
        Err(CalloutError::BadTarget)
    }

    /// Sends a message on an open gRPC stream.
    fn grpc_send(&mut self, token: u32, message: Vec<u8>, end_stream: bool) {
        let _ = (token, message, end_stream);
    }

    /// Cancels a gRPC call or resets a stream.
    fn grpc_cancel(&mut self, token: u32) {
        let _ = token;
    }

    /// Half-closes a gRPC stream (or cancels a unary call).
    fn grpc_close(&mut self, token: u32) {
        let _ = token;
    }

    /// Attributes that are the same for every stream of this VM (`xds.*`, `node`, listener
    /// and cluster names…). `None` = `NOT_FOUND`.
    fn property(&self, path: &[&[u8]]) -> Option<PropertyValue> {
        let _ = path;
        None
    }

    /// Where plugin log lines go. The default writes them to `tracing` under the target
    /// `wasp::plugin`.
    fn log(&self, record: LogRecord<'_>) {
        crate::log::to_tracing(record);
    }

    /// The level `proxy_get_log_level` reports; plugins skip formatting below it.
    fn log_level(&self) -> LogLevel {
        crate::log::tracing_level()
    }
}

/// An embedder with no clusters and default logging: enough for tools and tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopEmbedder;

impl Embedder for NoopEmbedder {}

/// Something a plugin asked for that the embedder carries out after the guest call returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Resume a paused direction of the stream context (`proxy_continue_stream`).
    Continue { context: u32, stream: StreamType },
    /// Reset the stream / close the connection (`proxy_close_stream`).
    Close { context: u32, stream: StreamType },
    /// Answer the stream locally (`proxy_send_local_response`).
    LocalResponse {
        context: u32,
        response: LocalResponse,
    },
    /// The timer of a root context was (re)armed; `None` stops it.
    TickPeriod {
        root_context: u32,
        period: Option<Duration>,
    },
    /// `clear_route_cache` (0.1.0 hostcall or foreign function).
    ClearRouteCache { context: u32 },
    /// A root context whose `on_done` returned false has now called `proxy_done`.
    RootDone { root_context: u32 },
}

/// A response generated by a plugin instead of the upstream's.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalResponse {
    pub status: u32,
    /// Envoy's response code details; whitespace replaced by `_` as Envoy does.
    pub details: String,
    pub body: Vec<u8>,
    /// Headers to add to the response.
    pub headers: HeaderMap,
    /// `None` for plain HTTP; the gRPC status to send in `grpc-status` otherwise.
    pub grpc_status: Option<u32>,
}
