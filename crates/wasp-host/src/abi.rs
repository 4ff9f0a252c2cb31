//! The numbers of the Proxy-Wasm ABI: statuses, enums and versions (spec 0.1.0, 0.2.0, 0.2.1).
//!
//! Values are fixed by the spec and by what the SDKs compile in; never renumber them.

use std::fmt;

/// `proxy_status_t`, called `WasmResult` in Envoy. Every hostcall answers with one of these,
/// and SDKs panic on a status they do not expect for that call, so each hostcall returns
/// exactly the codes Envoy returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Status {
    /// The call succeeded.
    Ok = 0,
    /// What was asked for does not exist: a header, property, queue, shared key or buffer.
    NotFound = 1,
    /// An argument is invalid: an unknown enum value, a bad range, a malformed encoding.
    BadArgument = 2,
    /// The host could not serialise a value for the guest.
    SerializationFailure = 3,
    /// The host could not parse what the guest passed (also Envoy's answer for an unknown
    /// gRPC target).
    ParseFailure = 4,
    /// A property path or expression could not be evaluated; defined by the spec, unused here.
    BadExpression = 5,
    /// A pointer and length fall outside the guest's linear memory, or the guest allocator failed.
    InvalidMemoryAccess = 6,
    /// Nothing to return yet: `proxy_dequeue_shared_queue` on an empty queue.
    Empty = 7,
    /// `proxy_set_shared_data` with a compare-and-swap value that is no longer current.
    CasMismatch = 8,
    /// Defined by the spec for a result of the wrong type; unused here.
    ResultMismatch = 9,
    /// The host failed, or refused the call at this point (e.g. while the guest allocator runs).
    InternalFailure = 10,
    /// The peer went away; passed as the status of an HTTP call that got no response.
    BrokenConnection = 11,
    /// This host does not implement the call, or not for these arguments.
    Unimplemented = 12,
}

impl Status {
    /// The number the guest sees for this status.
    pub fn code(self) -> u32 {
        self as u32
    }
}

/// The ABI a module was built for, read from its `proxy_abi_version_*` marker export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AbiVersion {
    /// Proxy-Wasm 0.1.0, the ABI of older SDKs (header callbacks without `end_of_stream`).
    V0_1_0,
    /// Proxy-Wasm 0.2.0.
    V0_2_0,
    /// Proxy-Wasm 0.2.1, the version current SDKs build for; handled exactly as 0.2.0.
    V0_2_1,
}

impl AbiVersion {
    /// Every supported version, oldest first.
    pub const ALL: [AbiVersion; 3] = [AbiVersion::V0_1_0, AbiVersion::V0_2_0, AbiVersion::V0_2_1];

    /// The export that marks a module as built for this version.
    pub fn marker(self) -> &'static str {
        match self {
            AbiVersion::V0_1_0 => "proxy_abi_version_0_1_0",
            AbiVersion::V0_2_0 => "proxy_abi_version_0_2_0",
            AbiVersion::V0_2_1 => "proxy_abi_version_0_2_1",
        }
    }

    /// The version a marker export names; `None` for a name that is no supported marker.
    pub fn from_marker(name: &str) -> Option<AbiVersion> {
        AbiVersion::ALL.into_iter().find(|v| v.marker() == name)
    }

    /// 0.1.0 header callbacks take no `end_of_stream`, missing headers read as empty values,
    /// and the configuration is fetched with `proxy_get_configuration`.
    pub fn is_v0_1(self) -> bool {
        self == AbiVersion::V0_1_0
    }
}

impl fmt::Display for AbiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AbiVersion::V0_1_0 => "0.1.0",
            AbiVersion::V0_2_0 => "0.2.0",
            AbiVersion::V0_2_1 => "0.2.1",
        })
    }
}

/// `proxy_log_level_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u32)]
pub enum LogLevel {
    /// Finest-grained diagnostics.
    Trace = 0,
    /// Debugging detail.
    Debug = 1,
    /// Normal operation worth noting.
    Info = 2,
    /// Something unexpected that the plugin recovered from.
    Warn = 3,
    /// A failure.
    Error = 4,
    /// A failure that needs attention now.
    Critical = 5,
}

impl LogLevel {
    /// Decodes the level a guest passed to `proxy_log`; `None` if out of range.
    pub fn from_u32(value: u32) -> Option<LogLevel> {
        Some(match value {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }

    /// The lower-case name (`"trace"` … `"critical"`), for printing plugin log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
        }
    }
}

/// `proxy_map_type_t`: which header map a hostcall addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MapType {
    /// The downstream request's headers.
    RequestHeaders = 0,
    /// The downstream request's trailers.
    RequestTrailers = 1,
    /// The upstream response's headers.
    ResponseHeaders = 2,
    /// The upstream response's trailers.
    ResponseTrailers = 3,
    /// Initial metadata of the gRPC stream being delivered to the guest.
    GrpcReceiveInitialMetadata = 4,
    /// Trailing metadata of the gRPC call or stream being delivered to the guest.
    GrpcReceiveTrailingMetadata = 5,
    /// Headers of the HTTP call response being delivered in `proxy_on_http_call_response`.
    HttpCallResponseHeaders = 6,
    /// Trailers of the HTTP call response being delivered in `proxy_on_http_call_response`.
    HttpCallResponseTrailers = 7,
}

impl MapType {
    /// Decodes the map type a guest passed to a map hostcall; `None` if out of range.
    pub fn from_u32(value: u32) -> Option<MapType> {
        Some(match value {
            0 => MapType::RequestHeaders,
            1 => MapType::RequestTrailers,
            2 => MapType::ResponseHeaders,
            3 => MapType::ResponseTrailers,
            4 => MapType::GrpcReceiveInitialMetadata,
            5 => MapType::GrpcReceiveTrailingMetadata,
            6 => MapType::HttpCallResponseHeaders,
            7 => MapType::HttpCallResponseTrailers,
            _ => return None,
        })
    }
}

/// `proxy_buffer_type_t`: which byte buffer a hostcall addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BufferType {
    /// The request body buffered so far (or the chunk being delivered).
    RequestBody = 0,
    /// The response body buffered so far (or the chunk being delivered).
    ResponseBody = 1,
    /// Bytes from the downstream peer of a TCP stream not yet passed on.
    DownstreamData = 2,
    /// Bytes from the upstream peer of a TCP stream not yet passed on.
    UpstreamData = 3,
    /// Body of the HTTP call response being delivered.
    HttpCallResponseBody = 4,
    /// A gRPC message being delivered (`proxy_on_grpc_receive`).
    GrpcReceiveBuffer = 5,
    /// The VM configuration, given to `proxy_on_vm_start`.
    VmConfiguration = 6,
    /// The plugin configuration, given to `proxy_on_configure`.
    PluginConfiguration = 7,
    /// Arguments of a host-initiated `proxy_on_foreign_function` call; nothing sets them yet,
    /// so reads answer `NOT_FOUND`.
    CallData = 8,
}

impl BufferType {
    /// Decodes the buffer type a guest passed to a buffer hostcall; `None` if out of range.
    pub fn from_u32(value: u32) -> Option<BufferType> {
        Some(match value {
            0 => BufferType::RequestBody,
            1 => BufferType::ResponseBody,
            2 => BufferType::DownstreamData,
            3 => BufferType::UpstreamData,
            4 => BufferType::HttpCallResponseBody,
            5 => BufferType::GrpcReceiveBuffer,
            6 => BufferType::VmConfiguration,
            7 => BufferType::PluginConfiguration,
            8 => BufferType::CallData,
            _ => return None,
        })
    }
}

/// `proxy_stream_type_t`: the direction `proxy_continue_stream`/`proxy_close_stream` act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    /// The request direction of an HTTP stream.
    HttpRequest = 0,
    /// The response direction of an HTTP stream.
    HttpResponse = 1,
    /// The downstream side of a TCP connection.
    Downstream = 2,
    /// The upstream side of a TCP connection (cannot be resumed, as in Envoy).
    Upstream = 3,
}

impl StreamType {
    /// Decodes the stream type a guest passed; `None` if out of range.
    pub fn from_u32(value: u32) -> Option<StreamType> {
        Some(match value {
            0 => StreamType::HttpRequest,
            1 => StreamType::HttpResponse,
            2 => StreamType::Downstream,
            3 => StreamType::Upstream,
            _ => return None,
        })
    }
}

/// `proxy_metric_type_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// Only goes up: increments must be positive, and recording adds.
    Counter = 0,
    /// Goes up and down: increments take any sign, and recording sets the value.
    Gauge = 1,
    /// Records samples into buckets; cannot be read back by the guest.
    Histogram = 2,
}

impl MetricType {
    /// Decodes the metric type a guest passed to `proxy_define_metric`; `None` if out of range.
    pub fn from_u32(value: u32) -> Option<MetricType> {
        Some(match value {
            0 => MetricType::Counter,
            1 => MetricType::Gauge,
            2 => MetricType::Histogram,
            _ => return None,
        })
    }
}

/// `proxy_peer_type_t`: who closed a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerType {
    /// Not known who closed the connection.
    Unknown = 0,
    /// The proxy closed the connection.
    Local = 1,
    /// The peer closed the connection.
    Remote = 2,
}

/// What a header callback asked for, decoded as Envoy decodes it (`FilterHeadersStatus`).
///
/// The Rust and Go SDKs return 0 (Continue) or 1 (Pause); the C++ SDK returns Envoy's own
/// codes, so the number is interpreted per callback exactly as cpp-host does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadersAction {
    /// Go on: pass the headers to the next filter.
    Continue,
    /// Headers are held; body chunks are still delivered (Envoy's opt-in
    /// `allow_on_headers_stop_iteration`, and the C++ SDK's explicit code 1 when enabled).
    StopIteration,
    /// Code 2: go on, treating the headers as the end of the stream (Envoy drops any body).
    ContinueAndEndStream,
    /// Hold headers and body; buffer the body up to the limit and fail the stream beyond it
    /// (code 3).
    StopAllIterationAndBuffer,
    /// What Pause (1) means by default: hold everything, deliver nothing more until resumed.
    StopAllIterationAndWatermark,
}

impl HeadersAction {
    /// Decodes a header callback's return value; `allow_stop_iteration` is Envoy's
    /// `allow_on_headers_stop_iteration` and makes code 1 mean [`HeadersAction::StopIteration`].
    pub fn from_guest(value: u32, allow_stop_iteration: bool) -> HeadersAction {
        match value {
            0 => HeadersAction::Continue,
            1 if allow_stop_iteration => HeadersAction::StopIteration,
            2 => HeadersAction::ContinueAndEndStream,
            3 => HeadersAction::StopAllIterationAndBuffer,
            _ => HeadersAction::StopAllIterationAndWatermark,
        }
    }

    /// Whether the stream waits for the plugin to resume it (any action but the two continues).
    pub fn is_stop(self) -> bool {
        !matches!(
            self,
            HeadersAction::Continue | HeadersAction::ContinueAndEndStream
        )
    }
}

/// What a body callback asked for (`FilterDataStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataAction {
    /// Go on: pass the chunk to the next filter.
    Continue,
    /// Keep this chunk and the following ones; call again with the whole buffered body.
    StopIterationAndBuffer,
    /// Hold this chunk and the following ones, with flow control instead of a size limit.
    StopIterationAndWatermark,
    /// Hold this chunk without buffering later ones.
    StopIterationNoBuffer,
}

impl DataAction {
    /// Decodes a body callback's return value; codes above 2 mean
    /// [`DataAction::StopIterationNoBuffer`].
    pub fn from_guest(value: u32) -> DataAction {
        match value {
            0 => DataAction::Continue,
            1 => DataAction::StopIterationAndBuffer,
            2 => DataAction::StopIterationAndWatermark,
            _ => DataAction::StopIterationNoBuffer,
        }
    }

    /// Whether the stream waits (the chunk is held) rather than going on.
    pub fn is_stop(self) -> bool {
        self != DataAction::Continue
    }
}

/// What a trailers callback asked for (`FilterTrailersStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrailersAction {
    /// Go on: pass the trailers to the next filter.
    Continue,
    /// Hold the trailers until the plugin resumes the stream.
    StopIteration,
}

impl TrailersAction {
    /// Decodes a trailers callback's return value: 0 continues, anything else stops.
    pub fn from_guest(value: u32) -> TrailersAction {
        if value == 0 {
            TrailersAction::Continue
        } else {
            TrailersAction::StopIteration
        }
    }
}

/// What an L4 callback asked for (`FilterStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkAction {
    /// Go on: pass the data to the next filter.
    Continue,
    /// Hold the data until the plugin resumes the connection.
    StopIteration,
}

impl NetworkAction {
    /// Decodes an L4 callback's return value: 0 continues, anything else stops.
    pub fn from_guest(value: u32) -> NetworkAction {
        if value == 0 {
            NetworkAction::Continue
        } else {
            NetworkAction::StopIteration
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip() {
        for v in AbiVersion::ALL {
            assert_eq!(AbiVersion::from_marker(v.marker()), Some(v));
        }
        assert_eq!(AbiVersion::from_marker("proxy_abi_version_0_3_0"), None);
    }

    #[test]
    fn pause_on_headers_stops_everything_unless_allowed() {
        assert_eq!(
            HeadersAction::from_guest(1, false),
            HeadersAction::StopAllIterationAndWatermark
        );
        assert_eq!(
            HeadersAction::from_guest(1, true),
            HeadersAction::StopIteration
        );
        assert_eq!(
            HeadersAction::from_guest(9, true),
            HeadersAction::StopAllIterationAndWatermark
        );
        assert_eq!(DataAction::from_guest(7), DataAction::StopIterationNoBuffer);
    }
}
