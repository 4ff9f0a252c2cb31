//! What an operator yields for an [`Entry`].
//!
//! As Envoy's formatters (`stream_info_formatter.cc`, `http_specific_formatter.cc`): a value
//! is missing (`-` in text, `null` as a whole JSON value) exactly when Envoy's formatter yields
//! none, and the counters Envoy reads with `value_or(0)` (response code, attempt count,
//! connection id) are 0 instead.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::SocketAddr;

use crate::entry::{Entry, Headers};
use crate::operator::{AddressPart, HeaderLookup, Operator, truncate};

/// What an operator yields for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    /// Not set: `-` in text, `null` as a whole JSON value.
    Missing,
    /// A string (a JSON string).
    Text(Cow<'a, str>),
    /// A number (a JSON number).
    Number(u64),
}

impl Value<'_> {
    /// Appends the value as a text format prints it.
    pub(crate) fn write_text(&self, out: &mut String) {
        match self {
            Value::Missing => out.push('-'),
            Value::Text(text) => out.push_str(text),
            // Writing to a String cannot fail.
            Value::Number(number) => {
                let _ = write!(out, "{number}");
            }
        }
    }
}

impl Operator {
    /// The operator's value for `entry`.
    pub(crate) fn value<'v>(&'v self, entry: &Entry<'v>) -> Value<'v> {
        match self {
            Operator::RequestHeader(lookup) => lookup.value(entry.request_headers),
            Operator::ResponseHeader(lookup) => lookup.value(entry.response_headers),
            Operator::ResponseTrailer(lookup) => lookup.value(entry.response_trailers),
            Operator::StartTime(format) => {
                let mut text = String::with_capacity(32);
                format.render(entry.start_time, &mut text);
                Value::Text(Cow::Owned(text))
            }
            Operator::Protocol => text(entry.protocol),
            Operator::ResponseCode => Value::Number(entry.response_code.map_or(0, u64::from)),
            Operator::ResponseCodeDetails { allow_whitespace } => match entry.response_code_details
            {
                // Envoy turns whitespace into `_` so that the detail stays one field.
                Some(details) if !allow_whitespace && details.contains(is_space) => {
                    Value::Text(Cow::Owned(details.replace(is_space, "_")))
                }
                details => text(details),
            },
            Operator::ConnectionTerminationDetails => text(entry.connection_termination_details),
            // Envoy prints `-` for no flags, in JSON too (a string, not null).
            Operator::ResponseFlags if entry.response_flags.is_empty() => text(Some("-")),
            Operator::ResponseFlags => text(Some(entry.response_flags)),
            Operator::BytesReceived => Value::Number(entry.bytes_received),
            Operator::BytesSent => Value::Number(entry.bytes_sent),
            Operator::Duration => millis(entry.duration),
            Operator::RequestDuration => millis(entry.request_duration),
            Operator::ResponseDuration => millis(entry.response_duration),
            Operator::UpstreamHost => text(entry.upstream_host),
            Operator::UpstreamCluster => non_empty(entry.upstream_cluster),
            Operator::UpstreamLocalAddress(part) => match entry.upstream_local_address {
                None => Value::Missing,
                Some(address) => match (address.parse::<SocketAddr>(), part) {
                    (Ok(address), _) => socket_address(Some(address), *part),
                    // Not `ip:port` (a pipe, say): the whole of it, and no port.
                    (Err(_), AddressPart::Port) => Value::Missing,
                    (Err(_), _) => text(Some(address)),
                },
            },
            Operator::UpstreamTransportFailureReason => {
                match non_empty(entry.upstream_transport_failure_reason) {
                    // Envoy replaces spaces with `_` here (only spaces).
                    Value::Text(reason) if reason.contains(' ') => {
                        Value::Text(Cow::Owned(reason.replace(' ', "_")))
                    }
                    value => value,
                }
            }
            Operator::UpstreamRequestAttemptCount => {
                Value::Number(entry.upstream_request_attempt_count.map_or(0, u64::from))
            }
            Operator::DownstreamLocalAddress(part) => {
                socket_address(entry.downstream_local_address, *part)
            }
            Operator::DownstreamRemoteAddress(part) => {
                socket_address(entry.downstream_remote_address, *part)
            }
            Operator::RequestedServerName => non_empty(entry.requested_server_name),
            Operator::RouteName => non_empty(entry.route_name),
            Operator::Hostname => non_empty(Some(entry.hostname)),
            Operator::ConnectionId => Value::Number(entry.connection_id.unwrap_or(0)),
            // Envoy's TLS operators print `-` for an empty value as for no TLS at all.
            Operator::DownstreamPeerUriSan => non_empty(entry.downstream_peer_uri_san),
            Operator::DownstreamLocalUriSan => non_empty(entry.downstream_local_uri_san),
            Operator::DownstreamPeerSubject => non_empty(entry.downstream_peer_subject),
            Operator::DownstreamTlsVersion => non_empty(entry.downstream_tls_version),
            Operator::Environment(value) => Value::Text(Cow::Borrowed(value)),
        }
    }
}

impl HeaderLookup {
    fn value<'v>(&self, headers: &'v dyn Headers) -> Value<'v> {
        let found = headers.get(&self.main).or_else(|| {
            self.alternative
                .as_deref()
                .and_then(|alternative| headers.get(alternative))
        });
        match found {
            Some(value) => Value::Text(Cow::Borrowed(truncate(value, self.max_length))),
            None => Value::Missing,
        }
    }
}

fn is_space(c: char) -> bool {
    // Envoy's StringUtil::WhitespaceChars.
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

fn text(value: Option<&str>) -> Value<'_> {
    value.map_or(Value::Missing, |value| Value::Text(Cow::Borrowed(value)))
}

/// For the fields Envoy treats an empty string as unset.
fn non_empty(value: Option<&str>) -> Value<'_> {
    text(value.filter(|value| !value.is_empty()))
}

/// Whole milliseconds, truncated (Envoy's `duration_cast<milliseconds>`).
fn millis(duration: Option<std::time::Duration>) -> Value<'static> {
    duration.map_or(Value::Missing, |duration| {
        Value::Number(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    })
}

fn socket_address(address: Option<SocketAddr>, part: AddressPart) -> Value<'static> {
    match (address, part) {
        (None, _) => Value::Missing,
        (Some(address), AddressPart::Full) => Value::Text(Cow::Owned(address.to_string())),
        (Some(address), AddressPart::WithoutPort) => {
            Value::Text(Cow::Owned(address.ip().to_string()))
        }
        (Some(address), AddressPart::Port) => Value::Number(u64::from(address.port())),
    }
}
