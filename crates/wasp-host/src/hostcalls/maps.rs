//! Header, trailer and metadata maps: `proxy_{get,set}_header_map_pairs`,
//! `proxy_{get,add,replace,remove}_header_map_value`, `proxy_get_header_map_size`.
//!
//! Request/response maps belong to the active HTTP stream; callout and gRPC maps to the
//! delivery in progress (read-only). A map that does not exist yet (response headers during
//! the request) reads as empty; writing it is `BAD_ARGUMENT`, as in Envoy. So is writing
//! headers that already left the proxy, or anything during `on_log`.

use wasmtime::Linker;

use super::{Caller, HostResult, finish, not_in_allocator, read_bytes, return_bytes, write_u32};
use crate::abi::{MapType, Status};
use crate::codec::pairs;
use crate::headers::HeaderMap;
use crate::state::{Phase, VmState};
use crate::stream::HttpStream;

pub(super) fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: Caller<'_>, map: u32, ret_ptr: u32, ret_len: u32| {
            finish(get_pairs(&mut c, map, ret_ptr, ret_len))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut c: Caller<'_>, map: u32, ptr: u32, len: u32| finish(set_pairs(&mut c, map, ptr, len)),
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: Caller<'_>, map: u32, key_ptr: u32, key_len: u32, ret_ptr: u32, ret_len: u32| {
            finish(get_value(&mut c, map, key_ptr, key_len, ret_ptr, ret_len))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |mut c: Caller<'_>, map: u32, key_ptr: u32, key_len: u32, val_ptr: u32, val_len: u32| {
            finish(edit(
                &mut c,
                map,
                key_ptr,
                key_len,
                Some((val_ptr, val_len)),
                Edit::Add,
            ))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut c: Caller<'_>, map: u32, key_ptr: u32, key_len: u32, val_ptr: u32, val_len: u32| {
            finish(edit(
                &mut c,
                map,
                key_ptr,
                key_len,
                Some((val_ptr, val_len)),
                Edit::Replace,
            ))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut c: Caller<'_>, map: u32, key_ptr: u32, key_len: u32| {
            finish(edit(&mut c, map, key_ptr, key_len, None, Edit::Remove))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_size",
        |mut c: Caller<'_>, map: u32, ret: u32| finish(get_size(&mut c, map, ret)),
    )?;
    Ok(())
}

#[derive(Clone, Copy)]
enum Edit {
    Add,
    Replace,
    Remove,
}

fn map_type(map: u32) -> HostResult<MapType> {
    Ok(MapType::from_u32(map).ok_or(Status::BadArgument)?)
}

/// Reads a map as the active context sees it; `None` when it does not exist.
fn read_map<R>(state: &VmState, map: MapType, f: impl FnOnce(Option<&HeaderMap>) -> R) -> R {
    match map {
        MapType::RequestHeaders
        | MapType::RequestTrailers
        | MapType::ResponseHeaders
        | MapType::ResponseTrailers => match state.active_stream() {
            Some(stream) => {
                let stream = stream
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                f(stream_map(&stream, map))
            }
            None => f(None),
        },
        MapType::HttpCallResponseHeaders | MapType::GrpcReceiveInitialMetadata => {
            f(state.delivery.headers.as_ref())
        }
        MapType::HttpCallResponseTrailers | MapType::GrpcReceiveTrailingMetadata => {
            f(state.delivery.trailers.as_ref())
        }
    }
}

fn stream_map(stream: &HttpStream, map: MapType) -> Option<&HeaderMap> {
    match map {
        MapType::RequestHeaders => stream.request_headers.as_ref(),
        MapType::RequestTrailers => stream.request_trailers.as_ref(),
        MapType::ResponseHeaders => stream.response_headers.as_ref(),
        MapType::ResponseTrailers => stream.response_trailers.as_ref(),
        _ => None,
    }
}

/// Edits a map of the active stream if it may still change.
fn write_map(state: &VmState, map: MapType, f: impl FnOnce(&mut HeaderMap)) -> HostResult {
    if state.phase == Phase::Log {
        return Err(Status::BadArgument.into());
    }
    let stream = state.active_stream().ok_or(Status::BadArgument)?;
    let mut stream = stream
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let phase = state.phase;
    let last_body = state.body_end_of_stream;
    let target = match map {
        MapType::RequestHeaders if !stream.request_headers_sent => stream.request_headers.as_mut(),
        MapType::ResponseHeaders if !stream.response_headers_sent => {
            stream.response_headers.as_mut()
        }
        // Trailers may be created by the last body callback, as Envoy's addDecodedTrailers.
        MapType::RequestTrailers => {
            if stream.request_trailers.is_none() && phase == Phase::RequestBody && last_body {
                stream.request_trailers = Some(HeaderMap::new());
            }
            stream.request_trailers.as_mut()
        }
        MapType::ResponseTrailers => {
            if stream.response_trailers.is_none() && phase == Phase::ResponseBody && last_body {
                stream.response_trailers = Some(HeaderMap::new());
            }
            stream.response_trailers.as_mut()
        }
        _ => None,
    };
    f(target.ok_or(Status::BadArgument)?);
    Ok(())
}

fn get_pairs(c: &mut Caller<'_>, map: u32, ret_ptr: u32, ret_len: u32) -> HostResult {
    not_in_allocator(c)?;
    let map = map_type(map)?;
    let bytes = read_map(c.data(), map, |m| match m {
        Some(m) if !m.is_empty() => pairs::encode(m.entries()),
        _ => Vec::new(),
    });
    return_bytes(c, &bytes, ret_ptr, ret_len)
}

fn set_pairs(c: &mut Caller<'_>, map: u32, ptr: u32, len: u32) -> HostResult {
    not_in_allocator(c)?;
    let map = map_type(map)?;
    let bytes = read_bytes(c, ptr, len)?;
    let decoded = pairs::decode(&bytes).map_err(|_| Status::BadArgument)?;
    let replacement = HeaderMap::from_pairs(decoded);
    write_map(c.data(), map, |m| *m = replacement)
}

fn get_value(
    c: &mut Caller<'_>,
    map: u32,
    key_ptr: u32,
    key_len: u32,
    ret_ptr: u32,
    ret_len: u32,
) -> HostResult {
    not_in_allocator(c)?;
    let map = map_type(map)?;
    let key = read_bytes(c, key_ptr, key_len)?;
    let value = read_map(c.data(), map, |m| {
        m.and_then(|m| m.get(&key)).map(<[u8]>::to_vec)
    });
    match value {
        Some(value) => return_bytes(c, &value, ret_ptr, ret_len),
        // 0.1.0 answered a missing header with an empty value.
        None if c.data().abi.is_v0_1() => return_bytes(c, &[], ret_ptr, ret_len),
        None => Err(Status::NotFound.into()),
    }
}

fn edit(
    c: &mut Caller<'_>,
    map: u32,
    key_ptr: u32,
    key_len: u32,
    value: Option<(u32, u32)>,
    edit: Edit,
) -> HostResult {
    not_in_allocator(c)?;
    let map = map_type(map)?;
    let key = read_bytes(c, key_ptr, key_len)?;
    let value = match value {
        Some((ptr, len)) => read_bytes(c, ptr, len)?,
        None => Vec::new(),
    };
    write_map(c.data(), map, |m| match edit {
        Edit::Add => m.add(&key, &value),
        Edit::Replace => m.replace(&key, &value),
        Edit::Remove => m.remove(&key),
    })
}

fn get_size(c: &mut Caller<'_>, map: u32, ret: u32) -> HostResult {
    let map = map_type(map)?;
    let size = read_map(c.data(), map, |m| m.map_or(0, HeaderMap::byte_size));
    write_u32(c, ret, size as u32)
}
