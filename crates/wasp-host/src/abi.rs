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
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    SerializationFailure = 3,
    ParseFailure = 4,
    BadExpression = 5,
    InvalidMemoryAccess = 6,
    Empty = 7,
    CasMismatch = 8,
    ResultMismatch = 9,
    InternalFailure = 10,
    BrokenConnection = 11,
    Unimplemented = 12,
}

impl Status {
    pub fn code(self) -> u32 {
        self as u32
    }
}

/// The ABI a module was built for, read from its `proxy_abi_version_*` marker export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AbiVersion {
    V0_1_0,
    V0_2_0,
    V0_2_1,
}

impl AbiVersion {
    pub const ALL: [AbiVersion; 3] = [AbiVersion::V0_1_0, AbiVersion::V0_2_0, AbiVersion::V0_2_1];

    /// The export that marks a module as built for this version.
    pub fn marker(self) -> &'static str {
        match self {
            AbiVersion::V0_1_0 => "proxy_abi_version_0_1_0",
            AbiVersion::V0_2_0 => "proxy_abi_version_0_2_0",
            AbiVersion::V0_2_1 => "proxy_abi_version_0_2_1",
        }
    }

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
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl LogLevel {
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
    RequestHeaders = 0,
    RequestTrailers = 1,
    ResponseHeaders = 2,
    ResponseTrailers = 3,
    GrpcReceiveInitialMetadata = 4,
    GrpcReceiveTrailingMetadata = 5,
    HttpCallResponseHeaders = 6,
    HttpCallResponseTrailers = 7,
}

impl MapType {
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
    RequestBody = 0,
    ResponseBody = 1,
    DownstreamData = 2,
    UpstreamData = 3,
    HttpCallResponseBody = 4,
    GrpcReceiveBuffer = 5,
    VmConfiguration = 6,
    PluginConfiguration = 7,
    CallData = 8,
}

impl BufferType {
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
    HttpRequest = 0,
    HttpResponse = 1,
    Downstream = 2,
    Upstream = 3,
}

impl StreamType {
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
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

impl MetricType {
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
    Unknown = 0,
    Local = 1,
    Remote = 2,
}

/// What a header callback asked for, decoded as Envoy decodes it (`FilterHeadersStatus`).
///
/// The Rust and Go SDKs return 0 (Continue) or 1 (Pause); the C++ SDK returns Envoy's own
/// codes, so the number is interpreted per callback exactly as cpp-host does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadersAction {
    Continue,
    /// Headers are held; body chunks are still delivered (Envoy's opt-in
    /// `allow_on_headers_stop_iteration`, and the C++ SDK's explicit code 1 when enabled).
    StopIteration,
    ContinueAndEndStream,
    StopAllIterationAndBuffer,
    /// What Pause (1) means by default: hold everything, deliver nothing more until resumed.
    StopAllIterationAndWatermark,
}

impl HeadersAction {
    pub fn from_guest(value: u32, allow_stop_iteration: bool) -> HeadersAction {
        match value {
            0 => HeadersAction::Continue,
            1 if allow_stop_iteration => HeadersAction::StopIteration,
            2 => HeadersAction::ContinueAndEndStream,
            3 => HeadersAction::StopAllIterationAndBuffer,
            _ => HeadersAction::StopAllIterationAndWatermark,
        }
    }

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
    Continue,
    /// Keep this chunk and the following ones; call again with the whole buffered body.
    StopIterationAndBuffer,
    StopIterationAndWatermark,
    /// Hold this chunk without buffering later ones.
    StopIterationNoBuffer,
}

impl DataAction {
    pub fn from_guest(value: u32) -> DataAction {
        match value {
            0 => DataAction::Continue,
            1 => DataAction::StopIterationAndBuffer,
            2 => DataAction::StopIterationAndWatermark,
            _ => DataAction::StopIterationNoBuffer,
        }
    }

    pub fn is_stop(self) -> bool {
        self != DataAction::Continue
    }
}

/// What a trailers callback asked for (`FilterTrailersStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrailersAction {
    Continue,
    StopIteration,
}

impl TrailersAction {
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
    Continue,
    StopIteration,
}

impl NetworkAction {
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
