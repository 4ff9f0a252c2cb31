//! Small handle helpers: `base64Escape`, `timestamp`, `timestampString`.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;

/// `EnvoyTimestampResolution`, defined as a global as Envoy does.
pub(crate) const RESOLUTION_LUA: &str =
    "EnvoyTimestampResolution = { MILLISECOND = 0, MICROSECOND = 1 }";

const MICROSECOND: i64 = 1;

pub(crate) fn base64_escape(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn since_epoch() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// `timestamp([resolution])`: milliseconds since the epoch (only milliseconds, as Envoy).
pub(crate) fn timestamp(resolution: Option<i64>) -> mlua::Result<i64> {
    match resolution {
        None | Some(0) => Ok(i64::try_from(since_epoch().as_millis()).unwrap_or(i64::MAX)),
        Some(_) => Err(mlua::Error::runtime(
            "timestamp format must be MILLISECOND.",
        )),
    }
}

/// `timestampString([resolution])`: milliseconds (default) or microseconds, as a string.
pub(crate) fn timestamp_string(resolution: Option<i64>) -> mlua::Result<String> {
    let now = since_epoch();
    match resolution {
        None | Some(0) => Ok(now.as_millis().to_string()),
        Some(MICROSECOND) => Ok(now.as_micros().to_string()),
        Some(_) => Err(mlua::Error::runtime(
            "timestamp format must be MILLISECOND or MICROSECOND.",
        )),
    }
}
