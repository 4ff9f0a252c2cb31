//! `httpCall()` and `respond()`: argument checks and conversions between Lua tables and
//! header lists.

use std::time::Duration;

use mlua::{Lua, Table, Value};

use crate::access::{HeaderAccess, Headers};
use crate::outcome::{CallRequest, CallResponse, LocalReply};

/// A Lua headers table (`{[":path"] = "/", ["x"] = {"a", "b"}}`) as a header list. Values may
/// be strings, numbers or arrays of them (repeated headers).
pub(crate) fn headers_from_table(table: &Table) -> mlua::Result<Headers> {
    let mut headers = Headers::new();
    for pair in table.pairs::<mlua::LuaString, Value>() {
        let (key, value) = pair?;
        let key = key.as_bytes().to_ascii_lowercase();
        match value {
            Value::Table(values) => {
                for v in values.sequence_values::<mlua::LuaString>() {
                    headers.add(&key, &v?.as_bytes());
                }
            }
            Value::String(s) => headers.add(&key, &s.as_bytes()),
            Value::Integer(i) => headers.add(&key, i.to_string().as_bytes()),
            Value::Number(n) => headers.add(&key, n.to_string().as_bytes()),
            other => {
                return Err(mlua::Error::runtime(format!(
                    "header value for '{}' must be a string or a table of strings, got {}",
                    String::from_utf8_lossy(&key),
                    other.type_name()
                )));
            }
        }
    }
    Ok(headers)
}

fn optional_body(body: Option<mlua::LuaString>) -> Vec<u8> {
    body.map(|b| b.as_bytes().to_vec()).unwrap_or_default()
}

/// Parses `httpCall(cluster, headers, body, timeout_ms[, asynchronous])` and
/// `httpCall(cluster, headers, body, options)`. Returns the request and whether the answer's
/// repeated headers are returned as arrays (`return_duplicate_headers`).
pub(crate) fn parse_call(
    cluster: String,
    headers: Table,
    body: Option<mlua::LuaString>,
    timeout_or_options: Value,
    asynchronous: Option<bool>,
) -> mlua::Result<(CallRequest, bool)> {
    let headers = headers_from_table(&headers)?;
    for required in [":path", ":method", ":authority"] {
        if headers.get(required).is_none() {
            return Err(mlua::Error::runtime(
                "http call headers must include ':path', ':method', and ':authority'",
            ));
        }
    }
    let mut request = CallRequest {
        cluster,
        headers,
        body: optional_body(body),
        timeout: None,
        asynchronous: asynchronous.unwrap_or(false),
        send_xff: true,
        trace_sampled: None,
    };
    let mut duplicates = false;
    let timeout_ms = match timeout_or_options {
        Value::Table(options) => {
            request.asynchronous = options
                .get::<Option<bool>>("asynchronous")?
                .unwrap_or(false);
            request.send_xff = options.get::<Option<bool>>("send_xff")?.unwrap_or(true);
            request.trace_sampled = options.get::<Option<bool>>("trace_sampled")?;
            duplicates = options
                .get::<Option<bool>>("return_duplicate_headers")?
                .unwrap_or(false);
            options.get::<Option<f64>>("timeout_ms")?.unwrap_or(0.0)
        }
        Value::Integer(i) => i as f64,
        Value::Number(n) => n,
        Value::Nil => 0.0,
        other => {
            return Err(mlua::Error::runtime(format!(
                "http call timeout must be a number or an options table, got {}",
                other.type_name()
            )));
        }
    };
    // NaN is rejected too.
    if timeout_ms.is_nan() || timeout_ms < 0.0 {
        return Err(mlua::Error::runtime("http call timeout must be >= 0"));
    }
    if timeout_ms > 0.0 {
        request.timeout = Some(Duration::from_millis(timeout_ms as u64));
    }
    Ok((request, duplicates))
}

/// The values `httpCall` returns: a headers table and the body (nil when empty). A failed
/// call is answered as Envoy does: `:status` 503 and body "upstream failure".
pub(crate) fn call_result(
    lua: &Lua,
    response: Option<CallResponse>,
    duplicates: bool,
) -> mlua::Result<(Table, Value)> {
    let response = response.unwrap_or_else(|| CallResponse {
        headers: Headers::from_pairs([(":status", "503")]),
        body: b"upstream failure".to_vec(),
    });
    let table = lua.create_table()?;
    for (k, v) in response.headers.entries() {
        let key = lua.create_string(k)?;
        let value = lua.create_string(v)?;
        if duplicates {
            match table.raw_get::<Value>(&key)? {
                Value::Nil => table.raw_set(key, value)?,
                Value::Table(list) => list.raw_push(value)?,
                first => table.raw_set(
                    key,
                    lua.create_sequence_from([first, Value::String(value)])?,
                )?,
            }
        } else {
            table.raw_set(key, value)?;
        }
    }
    let body = if response.body.is_empty() {
        Value::Nil
    } else {
        Value::String(lua.create_string(&response.body)?)
    };
    Ok((table, body))
}

/// Parses `respond(headers, body)`: `:status` must be a number in 200..=599, as Envoy.
pub(crate) fn parse_respond(
    headers: Table,
    body: Option<mlua::LuaString>,
) -> mlua::Result<LocalReply> {
    let all = headers_from_table(&headers)?;
    let status = all
        .get(":status")
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (200..600).contains(s))
        .ok_or_else(|| mlua::Error::runtime(":status must be between 200-599"))?;
    let headers = Headers::from_pairs(
        all.into_entries()
            .into_iter()
            .filter(|(k, _)| k.as_slice() != b":status"),
    );
    Ok(LocalReply {
        status,
        headers,
        body: optional_body(body),
    })
}
