//! `proxy_get_buffer_bytes`, `proxy_set_buffer_bytes`, `proxy_get_buffer_status`.

use wasmtime::Linker;

use super::{Caller, HostResult, finish, not_in_allocator, read_bytes, return_bytes, write_u32};
use crate::abi::{BufferType, Status};
use crate::state::{Phase, VmState};

pub(super) fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: Caller<'_>, buffer: u32, start: u32, max: u32, ret_ptr: u32, ret_len: u32| {
            finish(get_buffer_bytes(
                &mut c, buffer, start, max, ret_ptr, ret_len,
            ))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut c: Caller<'_>, buffer: u32, start: u32, size: u32, ptr: u32, len: u32| {
            finish(set_buffer_bytes(&mut c, buffer, start, size, ptr, len))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_buffer_status",
        |mut c: Caller<'_>, buffer: u32, len_ptr: u32, flags_ptr: u32| {
            finish(get_buffer_status(&mut c, buffer, len_ptr, flags_ptr))
        },
    )?;
    Ok(())
}

/// Runs `f` over the bytes of `buffer` as the active context sees them.
fn with_buffer<R>(
    state: &VmState,
    buffer: BufferType,
    f: impl FnOnce(&[u8]) -> R,
) -> HostResult<R> {
    match buffer {
        BufferType::RequestBody | BufferType::ResponseBody => {
            let stream = state.active_stream().ok_or(Status::NotFound)?;
            let stream = stream
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Ok(f(if buffer == BufferType::RequestBody {
                &stream.request_body
            } else {
                &stream.response_body
            }))
        }
        BufferType::HttpCallResponseBody | BufferType::GrpcReceiveBuffer => {
            let body = state.delivery.body.as_deref().ok_or(Status::NotFound)?;
            Ok(f(body))
        }
        BufferType::VmConfiguration => Ok(f(&state.vm_configuration)),
        BufferType::PluginConfiguration => {
            let config = state
                .plugin_configuration
                .as_deref()
                .ok_or(Status::NotFound)?;
            Ok(f(config))
        }
        BufferType::CallData => {
            let data = state
                .delivery
                .call_data
                .as_deref()
                .ok_or(Status::NotFound)?;
            Ok(f(data))
        }
        BufferType::DownstreamData | BufferType::UpstreamData => {
            let connection = state.active_connection().ok_or(Status::NotFound)?;
            let connection = connection
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Ok(f(if buffer == BufferType::DownstreamData {
                &connection.downstream_data
            } else {
                &connection.upstream_data
            }))
        }
    }
}

fn get_buffer_bytes(
    c: &mut Caller<'_>,
    buffer: u32,
    start: u32,
    max: u32,
    ret_ptr: u32,
    ret_len: u32,
) -> HostResult {
    not_in_allocator(c)?;
    let buffer = BufferType::from_u32(buffer).ok_or(Status::BadArgument)?;
    // 64-bit arithmetic: start + max cannot wrap.
    let (start, end) = (start as usize, start as usize + max as usize);
    let bytes = with_buffer(c.data(), buffer, |bytes| {
        if start >= bytes.len() {
            Vec::new()
        } else {
            bytes[start..end.min(bytes.len())].to_vec()
        }
    })?;
    return_bytes(c, &bytes, ret_ptr, ret_len)
}

fn get_buffer_status(c: &mut Caller<'_>, buffer: u32, len_ptr: u32, flags_ptr: u32) -> HostResult {
    let buffer = BufferType::from_u32(buffer).ok_or(Status::BadArgument)?;
    let len = with_buffer(c.data(), buffer, <[u8]>::len)?;
    write_u32(c, len_ptr, len as u32)?;
    // cpp-host always reports no flags.
    write_u32(c, flags_ptr, 0)
}

/// Replaces `size` bytes at `start` with the data: (0, 0) prepends, a start at or past the
/// end appends, (0, len) replaces everything. Envoy refuses edits in the middle of a body
/// with BAD_ARGUMENT, which makes the Rust SDK panic; wasp splices them in.
fn set_buffer_bytes(
    c: &mut Caller<'_>,
    buffer: u32,
    start: u32,
    size: u32,
    ptr: u32,
    len: u32,
) -> HostResult {
    not_in_allocator(c)?;
    let buffer = BufferType::from_u32(buffer).ok_or(Status::BadArgument)?;
    let data = read_bytes(c, ptr, len)?;
    let state = c.data();
    if state.phase == Phase::Log {
        return Err(Status::BadArgument.into());
    }
    let stream = match buffer {
        BufferType::RequestBody | BufferType::ResponseBody => {
            state.active_stream().ok_or(Status::NotFound)?
        }
        BufferType::DownstreamData | BufferType::UpstreamData => {
            let connection = state.active_connection().ok_or(Status::NotFound)?;
            let mut connection = connection
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let target = if buffer == BufferType::DownstreamData {
                &mut connection.downstream_data
            } else {
                &mut connection.upstream_data
            };
            splice(target, start as usize, size as usize, &data);
            return Ok(());
        }
        // Callout responses and configurations are immutable.
        _ => return Err(Status::BadArgument.into()),
    };
    let mut stream = stream
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let body = if buffer == BufferType::RequestBody {
        &mut stream.request_body
    } else {
        &mut stream.response_body
    };
    splice(body, start as usize, size as usize, &data);
    Ok(())
}

fn splice(body: &mut Vec<u8>, start: usize, size: usize, data: &[u8]) {
    let start = start.min(body.len());
    let end = start.saturating_add(size).min(body.len());
    body.splice(start..end, data.iter().copied());
}

#[cfg(test)]
mod tests {
    use super::splice;

    #[test]
    fn splice_covers_envoys_cases_and_the_middle() {
        let edit = |start, size, data: &[u8]| {
            let mut body = b"hello".to_vec();
            splice(&mut body, start, size, data);
            String::from_utf8(body).unwrap()
        };
        assert_eq!(edit(0, 0, b">"), ">hello");
        assert_eq!(edit(5, 0, b"!"), "hello!");
        assert_eq!(edit(99, 3, b"!"), "hello!");
        assert_eq!(edit(0, 5, b"bye"), "bye");
        assert_eq!(edit(0, 99, b"bye"), "bye");
        assert_eq!(edit(1, 2, b"XY"), "hXYlo");
        assert_eq!(edit(1, 3, b""), "ho");
    }
}
