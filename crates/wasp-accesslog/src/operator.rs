//! The command operators wasp renders and what each takes: an operator is checked and
//! resolved once, when the format is parsed.
//!
//! Names and syntax follow Envoy's `stream_info_formatter.cc` and `http_specific_formatter.cc`
//! (their `CommandSyntaxChecker` flags); what each yields is in the `value` module.

use crate::error::FormatError;
use crate::time::TimeFormat;

/// One operator, parsed: everything it needs at render time is resolved here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Operator {
    RequestHeader(HeaderLookup),
    ResponseHeader(HeaderLookup),
    ResponseTrailer(HeaderLookup),
    StartTime(TimeFormat),
    Protocol,
    ResponseCode,
    ResponseCodeDetails {
        allow_whitespace: bool,
    },
    ConnectionTerminationDetails,
    ResponseFlags,
    BytesReceived,
    BytesSent,
    Duration,
    RequestDuration,
    ResponseDuration,
    UpstreamHost,
    /// `UPSTREAM_CLUSTER` and `UPSTREAM_CLUSTER_RAW`: Envoy differs only by `alt_stat_name`,
    /// which wasp clusters do not have.
    UpstreamCluster,
    UpstreamLocalAddress(AddressPart),
    UpstreamTransportFailureReason,
    UpstreamRequestAttemptCount,
    /// `DOWNSTREAM_LOCAL_*` and `DOWNSTREAM_DIRECT_LOCAL_*`: wasp restores no original
    /// destination, so the listener's address is both.
    DownstreamLocalAddress(AddressPart),
    /// `DOWNSTREAM_REMOTE_*` and `DOWNSTREAM_DIRECT_REMOTE_*`: wasp takes the peer address
    /// from neither PROXY protocol nor x-forwarded-for, so the two are the same.
    DownstreamRemoteAddress(AddressPart),
    RequestedServerName,
    RouteName,
    Hostname,
    ConnectionId,
    DownstreamPeerUriSan,
    DownstreamLocalUriSan,
    DownstreamPeerSubject,
    DownstreamTlsVersion,
    /// Read (and truncated) when the format is parsed, as Envoy does; `-` when unset.
    Environment(String),
}

/// `%REQ(X?Y):Z%` and its kin: header X, else Y, at most Z bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeaderLookup {
    /// Lower case.
    pub(crate) main: String,
    /// Lower case; `None` for `X` and `X?`.
    pub(crate) alternative: Option<String>,
    /// Bytes, at most.
    pub(crate) max_length: Option<usize>,
}

/// Which part of a socket address an operator prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddressPart {
    /// `ip:port` (`[ip]:port` for IPv6).
    Full,
    /// The IP alone.
    WithoutPort,
    /// The port alone (a number in JSON).
    Port,
}

/// Operators Envoy has that wasp does not render: named as such in the error, so that a
/// configuration written for Envoy fails with a clear reason rather than "unknown".
const ENVOY_ONLY: &[&str] = &[
    "ACCESS_LOG_TYPE",
    "BYTES_RETRANSMITTED",
    "CEL",
    "CLUSTER_METADATA",
    "COMMON_DURATION",
    "CUSTOM_FLAGS",
    "DOWNSTREAM_DECOMPRESSED_HEADER_BYTES_RECEIVED",
    "DOWNSTREAM_DECOMPRESSED_HEADER_BYTES_SENT",
    "DOWNSTREAM_HANDSHAKE_DURATION",
    "DOWNSTREAM_HEADER_BYTES_RECEIVED",
    "DOWNSTREAM_HEADER_BYTES_SENT",
    "DOWNSTREAM_LOCAL_DNS_SAN",
    "DOWNSTREAM_LOCAL_EMAIL_SAN",
    "DOWNSTREAM_LOCAL_IP_SAN",
    "DOWNSTREAM_LOCAL_OTHERNAME_SAN",
    "DOWNSTREAM_LOCAL_SUBJECT",
    "DOWNSTREAM_PEER_CERT",
    "DOWNSTREAM_PEER_CERT_V_END",
    "DOWNSTREAM_PEER_CERT_V_START",
    "DOWNSTREAM_PEER_CHAIN_FINGERPRINTS_1",
    "DOWNSTREAM_PEER_CHAIN_FINGERPRINTS_256",
    "DOWNSTREAM_PEER_CHAIN_SERIALS",
    "DOWNSTREAM_PEER_DNS_SAN",
    "DOWNSTREAM_PEER_EMAIL_SAN",
    "DOWNSTREAM_PEER_FINGERPRINT_1",
    "DOWNSTREAM_PEER_FINGERPRINT_256",
    "DOWNSTREAM_PEER_IP_SAN",
    "DOWNSTREAM_PEER_ISSUER",
    "DOWNSTREAM_PEER_OTHERNAME_SAN",
    "DOWNSTREAM_PEER_SERIAL",
    "DOWNSTREAM_TLS_CIPHER",
    "DOWNSTREAM_TLS_SESSION_ID",
    "DOWNSTREAM_TRANSPORT_FAILURE_REASON",
    "DOWNSTREAM_WIRE_BYTES_RECEIVED",
    "DOWNSTREAM_WIRE_BYTES_SENT",
    "DYNAMIC_METADATA",
    "EMIT_TIME",
    "EMIT_TIME_LOCAL",
    "FILTER_CHAIN_NAME",
    "FILTER_STATE",
    "GRPC_STATUS",
    "GRPC_STATUS_NUMBER",
    "LOCAL_REPLY_BODY",
    "METADATA",
    "PACKETS_RETRANSMITTED",
    "PATH",
    "QUERY_PARAM",
    "REQUEST_HEADERS_BYTES",
    "REQUEST_TX_DURATION",
    "REQ_WITHOUT_QUERY",
    "RESPONSE_FLAGS_LONG",
    "RESPONSE_HEADERS_BYTES",
    "RESPONSE_TRAILERS_BYTES",
    "RESPONSE_TX_DURATION",
    "ROUNDTRIP_DURATION",
    "START_TIME_LOCAL",
    "STREAM_ID",
    "TLS_JA3_FINGERPRINT",
    "TLS_JA4_FINGERPRINT",
    "TRACE_ID",
    "UNIQUE_ID",
    "UPSTREAM_CONNECTION_ID",
    "UPSTREAM_CONNECTION_POOL_READY_DURATION",
    "UPSTREAM_DECOMPRESSED_HEADER_BYTES_RECEIVED",
    "UPSTREAM_DECOMPRESSED_HEADER_BYTES_SENT",
    "UPSTREAM_FILTER_STATE",
    "UPSTREAM_HEADER_BYTES_RECEIVED",
    "UPSTREAM_HEADER_BYTES_SENT",
    "UPSTREAM_HOST_NAME",
    "UPSTREAM_HOST_NAME_WITHOUT_PORT",
    "UPSTREAM_LOCAL_DNS_SAN",
    "UPSTREAM_LOCAL_IP_SAN",
    "UPSTREAM_LOCAL_URI_SAN",
    "UPSTREAM_METADATA",
    "UPSTREAM_PEER_CERT",
    "UPSTREAM_PEER_CERT_V_END",
    "UPSTREAM_PEER_CERT_V_START",
    "UPSTREAM_PEER_DNS_SAN",
    "UPSTREAM_PEER_IP_SAN",
    "UPSTREAM_PEER_ISSUER",
    "UPSTREAM_PEER_SUBJECT",
    "UPSTREAM_PEER_URI_SAN",
    "UPSTREAM_PROTOCOL",
    "UPSTREAM_REMOTE_ADDRESS",
    "UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
    "UPSTREAM_REMOTE_PORT",
    "UPSTREAM_TLS_CIPHER",
    "UPSTREAM_TLS_SESSION_ID",
    "UPSTREAM_TLS_VERSION",
    "UPSTREAM_WIRE_BYTES_RECEIVED",
    "UPSTREAM_WIRE_BYTES_SENT",
    "VIRTUAL_CLUSTER_NAME",
];

/// What an operator accepts besides its name (Envoy's `CommandSyntaxChecker` flags).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Syntax {
    /// `%NAME%` only.
    Bare,
    /// `%NAME%` or `%NAME(ARG)%`.
    OptionalArgument,
    /// `%NAME(ARG)%` or `%NAME(ARG):N%`.
    ArgumentAndLength,
}

impl Operator {
    /// Builds the operator `%name(argument):length%` found at byte `position`.
    pub(crate) fn parse(
        name: &str,
        argument: Option<&str>,
        length: Option<usize>,
        position: usize,
    ) -> Result<Operator, FormatError> {
        use AddressPart::{Full, Port, WithoutPort};
        // Envoy treats `%NAME()%` like `%NAME%`.
        let argument = argument.filter(|argument| !argument.is_empty());
        let bare = |operator: Operator| {
            check(name, argument, length, position, Syntax::Bare).map(|()| operator)
        };
        match name {
            "REQ" | "RESP" | "TRAILER" => {
                check(name, argument, length, position, Syntax::ArgumentAndLength)?;
                let lookup = HeaderLookup::parse(name, argument.unwrap_or(""), length, position)?;
                Ok(match name {
                    "REQ" => Operator::RequestHeader(lookup),
                    "RESP" => Operator::ResponseHeader(lookup),
                    _ => Operator::ResponseTrailer(lookup),
                })
            }
            "START_TIME" => {
                check(name, argument, length, position, Syntax::OptionalArgument)?;
                match argument {
                    None => Ok(Operator::StartTime(TimeFormat::default_format())),
                    Some(format) => TimeFormat::parse(format)
                        .map(Operator::StartTime)
                        .map_err(|reason| invalid(name, format, position, reason)),
                }
            }
            "RESPONSE_CODE_DETAILS" => {
                check(name, argument, length, position, Syntax::OptionalArgument)?;
                // Envoy accepts any argument and only acts on this one.
                let allow_whitespace = argument == Some("ALLOW_WHITESPACES");
                Ok(Operator::ResponseCodeDetails { allow_whitespace })
            }
            "ENVIRONMENT" => {
                check(name, argument, length, position, Syntax::ArgumentAndLength)?;
                let variable = argument.unwrap_or("");
                let value = std::env::var_os(variable).map_or_else(
                    || "-".to_owned(),
                    |value| truncate(&value.to_string_lossy(), length).to_owned(),
                );
                Ok(Operator::Environment(value))
            }
            "PROTOCOL" => bare(Operator::Protocol),
            "RESPONSE_CODE" => bare(Operator::ResponseCode),
            "CONNECTION_TERMINATION_DETAILS" => bare(Operator::ConnectionTerminationDetails),
            "RESPONSE_FLAGS" => bare(Operator::ResponseFlags),
            "BYTES_RECEIVED" => bare(Operator::BytesReceived),
            "BYTES_SENT" => bare(Operator::BytesSent),
            "DURATION" => bare(Operator::Duration),
            "REQUEST_DURATION" => bare(Operator::RequestDuration),
            "RESPONSE_DURATION" => bare(Operator::ResponseDuration),
            "UPSTREAM_HOST" => bare(Operator::UpstreamHost),
            "UPSTREAM_CLUSTER" | "UPSTREAM_CLUSTER_RAW" => bare(Operator::UpstreamCluster),
            "UPSTREAM_LOCAL_ADDRESS" => bare(Operator::UpstreamLocalAddress(Full)),
            "UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT" => {
                bare(Operator::UpstreamLocalAddress(WithoutPort))
            }
            "UPSTREAM_LOCAL_PORT" => bare(Operator::UpstreamLocalAddress(Port)),
            "UPSTREAM_TRANSPORT_FAILURE_REASON" => bare(Operator::UpstreamTransportFailureReason),
            "UPSTREAM_REQUEST_ATTEMPT_COUNT" => bare(Operator::UpstreamRequestAttemptCount),
            "DOWNSTREAM_LOCAL_ADDRESS" | "DOWNSTREAM_DIRECT_LOCAL_ADDRESS" => {
                bare(Operator::DownstreamLocalAddress(Full))
            }
            "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT"
            | "DOWNSTREAM_DIRECT_LOCAL_ADDRESS_WITHOUT_PORT" => {
                bare(Operator::DownstreamLocalAddress(WithoutPort))
            }
            "DOWNSTREAM_LOCAL_PORT" | "DOWNSTREAM_DIRECT_LOCAL_PORT" => {
                bare(Operator::DownstreamLocalAddress(Port))
            }
            "DOWNSTREAM_REMOTE_ADDRESS" | "DOWNSTREAM_DIRECT_REMOTE_ADDRESS" => {
                bare(Operator::DownstreamRemoteAddress(Full))
            }
            "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT"
            | "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT" => {
                bare(Operator::DownstreamRemoteAddress(WithoutPort))
            }
            "DOWNSTREAM_REMOTE_PORT" | "DOWNSTREAM_DIRECT_REMOTE_PORT" => {
                bare(Operator::DownstreamRemoteAddress(Port))
            }
            "REQUESTED_SERVER_NAME" => bare(Operator::RequestedServerName),
            "ROUTE_NAME" => bare(Operator::RouteName),
            "HOSTNAME" => bare(Operator::Hostname),
            "CONNECTION_ID" => bare(Operator::ConnectionId),
            "DOWNSTREAM_PEER_URI_SAN" => bare(Operator::DownstreamPeerUriSan),
            "DOWNSTREAM_LOCAL_URI_SAN" => bare(Operator::DownstreamLocalUriSan),
            "DOWNSTREAM_PEER_SUBJECT" => bare(Operator::DownstreamPeerSubject),
            "DOWNSTREAM_TLS_VERSION" => bare(Operator::DownstreamTlsVersion),
            _ if ENVOY_ONLY.contains(&name) => Err(FormatError::Unsupported {
                name: name.to_owned(),
                position,
            }),
            _ => Err(FormatError::Unknown {
                name: name.to_owned(),
                position,
            }),
        }
    }
}

impl HeaderLookup {
    fn parse(
        name: &str,
        argument: &str,
        max_length: Option<usize>,
        position: usize,
    ) -> Result<HeaderLookup, FormatError> {
        let mut names = argument.split('?');
        let main = names.next().unwrap_or("");
        // `X?` is `X` for Envoy: an empty alternative is none.
        let alternative = names.next().filter(|alternative| !alternative.is_empty());
        if names.next().is_some() {
            return Err(invalid(
                name,
                argument,
                position,
                "only one alternative header is allowed (X?Y)",
            ));
        }
        for header in std::iter::once(main).chain(alternative) {
            if !valid_header_name(header) {
                return Err(invalid(
                    name,
                    argument,
                    position,
                    format!("{header:?} is not a valid header name"),
                ));
            }
        }
        // Headers are matched case-insensitively; lower-casing once here lets every lookup
        // be an exact match on the lower-case name.
        Ok(HeaderLookup {
            main: main.to_ascii_lowercase(),
            alternative: alternative.map(str::to_ascii_lowercase),
            max_length,
        })
    }
}

/// Checks an operator's argument and length against what it accepts.
fn check(
    name: &str,
    argument: Option<&str>,
    length: Option<usize>,
    position: usize,
    syntax: Syntax,
) -> Result<(), FormatError> {
    let owned = || name.to_owned();
    match (syntax, argument, length) {
        (Syntax::Bare, Some(_), _) => Err(FormatError::UnexpectedArgument {
            name: owned(),
            position,
        }),
        (Syntax::ArgumentAndLength, None, _) => Err(FormatError::MissingArgument {
            name: owned(),
            position,
            what: if name == "ENVIRONMENT" {
                "a variable name"
            } else {
                "a header name"
            },
            example: match name {
                "ENVIRONMENT" => "%ENVIRONMENT(NAME)%",
                "RESP" => "%RESP(X)%",
                "TRAILER" => "%TRAILER(X)%",
                _ => "%REQ(X)%",
            },
        }),
        (Syntax::Bare | Syntax::OptionalArgument, _, Some(_)) => {
            Err(FormatError::UnexpectedLength {
                name: owned(),
                position,
            })
        }
        _ => Ok(()),
    }
}

fn invalid(name: &str, argument: &str, position: usize, reason: impl Into<String>) -> FormatError {
    FormatError::InvalidArgument {
        name: name.to_owned(),
        argument: argument.to_owned(),
        position,
        reason: reason.into(),
    }
}

/// An HTTP header name (RFC 9110 token), or a pseudo-header (`:path`).
fn valid_header_name(name: &str) -> bool {
    let token = name.strip_prefix(':').unwrap_or(name);
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// At most `max_length` bytes of `value`, cut back to a character boundary: Envoy cuts bytes
/// and can split a UTF-8 character, which would leave invalid UTF-8 in the log.
pub(crate) fn truncate(value: &str, max_length: Option<usize>) -> &str {
    match max_length {
        Some(max) if max < value.len() => &value[..value.floor_char_boundary(max)],
        _ => value,
    }
}
