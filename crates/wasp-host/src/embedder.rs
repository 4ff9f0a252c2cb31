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
    /// The request body, possibly empty.
    pub body: Vec<u8>,
    /// Trailers to send after the body; empty for none.
    pub trailers: HeaderMap,
    /// `None` when the plugin passed 0 (no timeout).
    pub timeout: Option<Duration>,
}

/// The answer to an HTTP callout. A failed call (reset, timeout, no upstream) is delivered as
/// `None` instead, which plugins see as a response with zero headers.
#[derive(Debug, Clone, Default)]
pub struct HttpCallResponse {
    /// Response headers, `:status` included.
    pub headers: HeaderMap,
    /// The whole response body.
    pub body: Vec<u8>,
    /// Response trailers; empty if there were none.
    pub trailers: HeaderMap,
}

/// Which gRPC service a call addresses: Envoy accepts a cluster name or a serialized
/// `envoy.config.core.v3.GrpcService`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrpcTarget {
    /// The plain cluster name the SDKs send, or `envoy_grpc.cluster_name` read from a
    /// `GrpcService`.
    Cluster(String),
    /// A serialized `GrpcService` naming no Envoy cluster (e.g. a `google_grpc` target), passed
    /// on untouched for the embedder to interpret or refuse.
    GrpcServiceProto(Vec<u8>),
}

/// An outgoing gRPC unary call (`message` is `Some`) or stream (`message` is `None`).
#[derive(Debug, Clone)]
pub struct GrpcCallRequest {
    /// Identifies the call; the embedder passes it back to the `Vm::on_grpc_*` deliveries and the
    /// host passes it to [`Embedder::grpc_send`], `grpc_cancel` and `grpc_close`.
    pub token: u32,
    /// The root context the answer is delivered to.
    pub root_context: u32,
    /// The service's cluster, or the `GrpcService` message naming it.
    pub target: GrpcTarget,
    /// The fully qualified service name, e.g. `helloworld.Greeter`.
    pub service: String,
    /// The method name within the service, e.g. `SayHello`.
    pub method: String,
    /// Metadata to send with the request headers.
    pub initial_metadata: HeaderMap,
    /// The serialized request message of a unary call; `None` opens a stream.
    pub message: Option<Vec<u8>>,
    /// `None` when the plugin passed 0 (no timeout); streams never have one.
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
    Continue {
        /// The stream context (HTTP or TCP) that asked.
        context: u32,
        /// Which direction to resume.
        stream: StreamType,
    },
    /// Reset the stream / close the connection (`proxy_close_stream`).
    Close {
        /// The stream context (HTTP or TCP) that asked.
        context: u32,
        /// Which direction the plugin named; Envoy resets the whole stream (closes the whole
        /// connection) either way.
        stream: StreamType,
    },
    /// Answer the stream locally (`proxy_send_local_response`).
    LocalResponse {
        /// The HTTP stream context that asked.
        context: u32,
        /// What to send downstream.
        response: LocalResponse,
    },
    /// The timer of a root context was (re)armed; `None` stops it.
    TickPeriod {
        /// The root context whose timer it is.
        root_context: u32,
        /// The new period between `proxy_on_tick` calls.
        period: Option<Duration>,
    },
    /// `clear_route_cache` (0.1.0 hostcall or foreign function).
    ClearRouteCache {
        /// The context that was active when it was asked.
        context: u32,
    },
    /// A root context whose `on_done` returned false has now called `proxy_done`.
    RootDone {
        /// The root context, now ready for [`crate::Vm::delete_root`].
        root_context: u32,
    },
}

/// A response generated by a plugin instead of the upstream's.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalResponse {
    /// The HTTP status code to send.
    pub status: u32,
    /// Envoy's response code details; whitespace replaced by `_` as Envoy does.
    pub details: String,
    /// The response body; empty for none.
    pub body: Vec<u8>,
    /// Headers to add to the response.
    pub headers: HeaderMap,
    /// `None` for plain HTTP; the gRPC status to send in `grpc-status` otherwise.
    pub grpc_status: Option<u32>,
}
