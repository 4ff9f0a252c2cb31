//! [`Format`]: a parsed access-log format, text or JSON.

use serde_json::{Map, Value};

use crate::entry::Entry;
use crate::error::FormatError;
use crate::json::JsonFormat;
use crate::parse::{self, Part};

/// Envoy's format when an access log configures none (`SubstitutionFormatUtils::DEFAULT_FORMAT`
/// in Envoy's `substitution_formatter.cc`; the docs' "Default Format String").
pub const ENVOY_DEFAULT_FORMAT: &str = "[%START_TIME%] \"%REQ(:METHOD)% \
    %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% \
    %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \
    \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \
    \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

/// Istio's format when `meshConfig.accessLogFormat` is unset (what istiod puts in every
/// sidecar's `text_format_source`).
pub const ISTIO_DEFAULT_FORMAT: &str = "[%START_TIME%] \"%REQ(:METHOD)% \
    %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% \
    %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% \
    \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% \
    %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \
    \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% \
    %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% \
    %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

/// An access-log format, parsed once from configuration and rendered per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Text(Vec<Part>),
    Json(JsonFormat),
}

impl Format {
    /// Envoy's `text_format` / `text_format_source.inline_string`: text with operators.
    ///
    /// Nothing is added to the text: Envoy's docs say the formatter "does not make any
    /// assumptions about a new line separator, so one has to be specified as part of the
    /// format string", and its file logger writes the line as formatted. A format without a
    /// trailing `\n` therefore runs its lines together, as it does in Envoy.
    ///
    /// # Errors
    ///
    /// A `%` that starts no well-formed operator, an unknown operator, one wasp does not
    /// render, or an operator given an argument or length it does not take.
    pub fn text(format: &str) -> Result<Format, FormatError> {
        Ok(Format {
            kind: Kind::Text(parse::parse(format)?),
        })
    }

    /// Envoy's `json_format`: an object whose string values may contain operators, nested
    /// objects and arrays allowed. Keys come out sorted; a value that is exactly one operator
    /// keeps that operator's type (`null` when missing); see the crate docs.
    ///
    /// # Errors
    ///
    /// As [`Format::text`] for any string value, wrapped in [`FormatError::Json`] with the
    /// value's path.
    pub fn json(format: &Map<String, Value>) -> Result<Format, FormatError> {
        Ok(Format {
            kind: Kind::Json(JsonFormat::parse(format)?),
        })
    }

    /// Envoy's default format ([`ENVOY_DEFAULT_FORMAT`]).
    pub fn envoy_default() -> Format {
        Format::constant(ENVOY_DEFAULT_FORMAT)
    }

    /// Istio's default format ([`ISTIO_DEFAULT_FORMAT`]).
    pub fn istio_default() -> Format {
        Format::constant(ISTIO_DEFAULT_FORMAT)
    }

    /// Whether the format writes JSON lines.
    pub fn is_json(&self) -> bool {
        matches!(self.kind, Kind::Json(_))
    }

    /// One log line for `entry`: a text format's line exactly as the format says (no newline
    /// of its own); a JSON format's object followed by `\n`, as Envoy writes it.
    pub fn render(&self, entry: &Entry<'_>) -> String {
        let mut line = String::with_capacity(256);
        self.render_into(entry, &mut line);
        line
    }

    /// As [`Format::render`], appended to `out` (a writer can reuse one buffer).
    pub fn render_into(&self, entry: &Entry<'_>, out: &mut String) {
        match &self.kind {
            Kind::Text(parts) => {
                for part in parts {
                    match part {
                        Part::Literal(text) => out.push_str(text),
                        Part::Operator(operator) => operator.value(entry).write_text(out),
                    }
                }
            }
            Kind::Json(json) => json.render(entry, out),
        }
    }

    fn constant(format: &str) -> Format {
        // The defaults are constants that parse (tests render both); should one ever fail,
        // logging its text beats taking the proxy down.
        Format::text(format).unwrap_or_else(|_| Format {
            kind: Kind::Text(vec![Part::Literal(format.to_owned())]),
        })
    }
}
