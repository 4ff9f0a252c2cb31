//! Envoy's access-log format language, for wasp's access logs.
//!
//! A format is parsed once, when the configuration is loaded ([`Format::text`],
//! [`Format::json`], or the [`Format::envoy_default`] and [`Format::istio_default`] formats),
//! and rendered for each finished request or TCP connection from an [`Entry`] the data plane
//! fills: [`Format::render`] gives the line to append to the log file.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use wasp_accesslog::{Entry, Format};
//!
//! let format = Format::text("%REQ(:METHOD)% %REQ(:PATH):8% %RESPONSE_CODE% %DURATION%ms\n")?;
//! let headers = [(":method", "GET"), (":path", "/status?verbose=1")];
//! let entry = Entry {
//!     request_headers: &headers,
//!     response_code: Some(200),
//!     duration: Some(Duration::from_micros(12_500)),
//!     ..Entry::new(SystemTime::now())
//! };
//! assert_eq!(format.render(&entry), "GET /status? 200 12ms\n");
//! # Ok::<(), wasp_accesslog::FormatError>(())
//! ```
//!
//! # The language, as Envoy defines it
//!
//! - `%%` is a literal `%`; text outside operators is copied as is, not escaped. Any other
//!   `%` must start an operator, `%NAME%`, `%NAME(ARG)%` or `%NAME(ARG):LENGTH%`, or the
//!   format is rejected, as are unknown operators, arguments or lengths an operator does not
//!   take, and the operators Envoy has but wasp does not render ([`FormatError::Unsupported`]).
//! - `%REQ(X?Y):Z%`, `%RESP(X?Y):Z%`, `%TRAILER(X?Y):Z%`: header X, else Y, its first value,
//!   cut to Z bytes (at a character boundary: Envoy cuts bytes and can split a character).
//!   Names are matched case-insensitively.
//! - A missing value prints `-`. `%RESPONSE_CODE%`, `%UPSTREAM_REQUEST_ATTEMPT_COUNT%` and
//!   `%CONNECTION_ID%` print 0 rather than `-`, and `%RESPONSE_FLAGS%` prints `-` for no flags.
//! - Durations are whole milliseconds, truncated. `%START_TIME%` is UTC, RFC 3339 with
//!   milliseconds (`2026-12-06T23:37:12.345Z`); `%START_TIME(FORMAT)%` takes strftime
//!   specifiers and Envoy's `%s` and `%f`/`%1f`..`%9f` (fraction digits, truncated): `%Y %m
//!   %d %e %H %M %S %z %s %f %1f..%9f`, and `%y %j %F %T %D %R %I %p %a %A %b %h %B %u %w %Z
//!   %Ez %E#S %E*S %t %%`, in UTC and the C locale. Any other specifier is copied as written
//!   (Envoy's strftime would interpret it), so an unusual format shows in the log rather than
//!   failing the configuration; `%n` is rejected, as Envoy rejects it.
//! - `%ENVIRONMENT(NAME):Z%` is read when the format is parsed, as Envoy does.
//! - A text format adds no newline: write `\n` at its end, as Envoy requires. A JSON format
//!   writes one compact object per line, keys sorted, values that are a single operator typed
//!   (numbers stay numbers, missing is `null`), mixed values strings with `-` for missing.
//!
//! Where wasp has no notion Envoy distinguishes, the two operators give the same value:
//! `UPSTREAM_CLUSTER_RAW` is `UPSTREAM_CLUSTER`, and the `DOWNSTREAM_DIRECT_*` addresses are the
//! `DOWNSTREAM_*` ones (wasp restores no original destination and trusts neither PROXY
//! protocol nor x-forwarded-for for the peer address).

#![deny(missing_docs)]

mod entry;
mod error;
mod format;
mod json;
mod operator;
mod parse;
mod time;
mod value;

pub use entry::{Entry, Headers, NoHeaders};
pub use error::FormatError;
pub use format::{ENVOY_DEFAULT_FORMAT, Format, ISTIO_DEFAULT_FORMAT};
