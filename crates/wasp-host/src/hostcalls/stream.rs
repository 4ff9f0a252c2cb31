//! Stream control: `proxy_continue_stream`, `proxy_close_stream`,
//! `proxy_send_local_response`, and the 0.1.0 `proxy_continue_request`,
//! `proxy_continue_response`, `proxy_clear_route_cache`.
//!
//! None of these act at once: they become [`Effect`]s the embedder carries out after the
//! guest call has returned (Envoy's "after VM call actions"), so the guest is never re-entered.

use wasmtime::Linker;

use super::{Caller, HostResult, finish, not_in_allocator, read_bytes, read_string};
use crate::abi::{Status, StreamType};
use crate::codec::pairs;
use crate::embedder::{Effect, LocalResponse};
use crate::headers::HeaderMap;
use crate::state::{ContextKind, VmState};

pub(super) fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_continue_stream",
        |mut c: Caller<'_>, stream: u32| finish(continue_stream(&mut c, stream)),
    )?;
    linker.func_wrap(
        "env",
        "proxy_close_stream",
        |mut c: Caller<'_>, stream: u32| finish(close_stream(&mut c, stream)),
    )?;
    linker.func_wrap("env", "proxy_continue_request", |mut c: Caller<'_>| {
        finish(continue_stream(&mut c, StreamType::HttpRequest as u32))
    })?;
    linker.func_wrap("env", "proxy_continue_response", |mut c: Caller<'_>| {
        finish(continue_stream(&mut c, StreamType::HttpResponse as u32))
    })?;
    linker.func_wrap("env", "proxy_clear_route_cache", |mut c: Caller<'_>| {
        let state = c.data_mut();
        let context = state.active_context();
        state.effects.push(Effect::ClearRouteCache { context });
        finish(Ok(()))
    })?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: Caller<'_>,
         status: u32,
         details_ptr: u32,
         details_len: u32,
         body_ptr: u32,
         body_len: u32,
         headers_ptr: u32,
         headers_len: u32,
         grpc_status: i32| {
            finish(send_local_response(
                &mut c,
                status,
                (details_ptr, details_len),
                (body_ptr, body_len),
                (headers_ptr, headers_len),
                grpc_status,
            ))
        },
    )?;
    Ok(())
}

/// The active context if it is an HTTP stream (`tcp`: or a TCP one).
fn stream_context(state: &VmState, tcp: bool) -> HostResult<u32> {
    let context = state.active_context();
    match state.contexts.get(&context).map(|c| &c.kind) {
        Some(ContextKind::Http(_)) => Ok(context),
        Some(ContextKind::Tcp(_)) if tcp => Ok(context),
        _ => Err(Status::NotFound.into()),
    }
}

fn continue_stream(c: &mut Caller<'_>, stream: u32) -> HostResult {
    not_in_allocator(c)?;
    let stream = StreamType::from_u32(stream).ok_or(Status::BadArgument)?;
    // Envoy cannot resume the upstream side of a TCP stream either.
    if stream == StreamType::Upstream {
        return Err(Status::Unimplemented.into());
    }
    let context = stream_context(c.data(), true)?;
    c.data_mut()
        .effects
        .push(Effect::Continue { context, stream });
    Ok(())
}

fn close_stream(c: &mut Caller<'_>, stream: u32) -> HostResult {
    not_in_allocator(c)?;
    let stream = StreamType::from_u32(stream).ok_or(Status::BadArgument)?;
    let context = stream_context(c.data(), true)?;
    c.data_mut().effects.push(Effect::Close { context, stream });
    Ok(())
}

fn send_local_response(
    c: &mut Caller<'_>,
    status: u32,
    details: (u32, u32),
    body: (u32, u32),
    headers: (u32, u32),
    grpc_status: i32,
) -> HostResult {
    not_in_allocator(c)?;
    let details = read_string(c, details.0, details.1)?;
    let body = read_bytes(c, body.0, body.1)?;
    let header_bytes = read_bytes(c, headers.0, headers.1)?;
    let headers =
        HeaderMap::from_pairs(pairs::decode(&header_bytes).map_err(|_| Status::BadArgument)?);
    let context = stream_context(c.data(), false)?;
    let state = c.data_mut();
    // A second local reply for the same stream is ignored: the first one wins, as the
    // response it describes may already be on its way.
    let already = state
        .effects
        .iter()
        .any(|e| matches!(e, Effect::LocalResponse { context: other, .. } if *other == context));
    if !already {
        state.effects.push(Effect::LocalResponse {
            context,
            response: LocalResponse {
                status,
                details: details
                    .chars()
                    .map(|ch| if ch.is_whitespace() { '_' } else { ch })
                    .collect(),
                body,
                headers,
                // -1 (and anything outside gRPC's 0..=16) means "not gRPC", as in Envoy.
                grpc_status: (0..=16)
                    .contains(&grpc_status)
                    .then_some(grpc_status as u32),
            },
        });
    }
    Ok(())
}
