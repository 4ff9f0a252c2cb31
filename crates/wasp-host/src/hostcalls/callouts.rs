//! HTTP and gRPC callouts: `proxy_http_call`, `proxy_grpc_call`, `proxy_grpc_stream`,
//! `proxy_grpc_send`, `proxy_grpc_cancel`, `proxy_grpc_close`.
//!
//! The host validates the call as Envoy does and hands it to the [`Embedder`]; the answer
//! comes back later through `Vm::on_http_call_response` and friends, delivered to the root
//! context of the context that made the call (cpp-host routes every callout through the root).
//!
//! [`Embedder`]: crate::embedder::Embedder

use std::time::Duration;

use wasmtime::Linker;

use super::{
    Caller, HostResult, finish, guest_memory, not_in_allocator, read_bytes, read_string, write_u32,
};
use crate::abi::Status;
use crate::codec::pairs;
use crate::codec::protobuf::{self, Field};
use crate::embedder::{CalloutError, GrpcCallRequest, GrpcTarget, HttpCallRequest};
use crate::headers::HeaderMap;
use crate::memory;
use crate::state::{CallKind, PendingCall, VmState};

pub(super) fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: Caller<'_>,
         up_ptr: u32,
         up_len: u32,
         hdr_ptr: u32,
         hdr_len: u32,
         body_ptr: u32,
         body_len: u32,
         trl_ptr: u32,
         trl_len: u32,
         timeout_ms: u32,
         token_ptr: u32| {
            finish(http_call(
                &mut c,
                (up_ptr, up_len),
                (hdr_ptr, hdr_len),
                (body_ptr, body_len),
                (trl_ptr, trl_len),
                timeout_ms,
                token_ptr,
            ))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_call",
        |mut c: Caller<'_>,
         svc_ptr: u32,
         svc_len: u32,
         name_ptr: u32,
         name_len: u32,
         method_ptr: u32,
         method_len: u32,
         md_ptr: u32,
         md_len: u32,
         msg_ptr: u32,
         msg_len: u32,
         timeout_ms: u32,
         token_ptr: u32| {
            let target = GrpcArgs {
                service: (svc_ptr, svc_len),
                name: (name_ptr, name_len),
                method: (method_ptr, method_len),
                metadata: (md_ptr, md_len),
            };
            finish(grpc_open(
                &mut c,
                target,
                Some((msg_ptr, msg_len)),
                timeout_ms,
                token_ptr,
            ))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_stream",
        |mut c: Caller<'_>,
         svc_ptr: u32,
         svc_len: u32,
         name_ptr: u32,
         name_len: u32,
         method_ptr: u32,
         method_len: u32,
         md_ptr: u32,
         md_len: u32,
         token_ptr: u32| {
            let target = GrpcArgs {
                service: (svc_ptr, svc_len),
                name: (name_ptr, name_len),
                method: (method_ptr, method_len),
                metadata: (md_ptr, md_len),
            };
            finish(grpc_open(&mut c, target, None, 0, token_ptr))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_send",
        |mut c: Caller<'_>, token: u32, ptr: u32, len: u32, end_stream: u32| {
            finish(grpc_send(&mut c, token, ptr, len, end_stream != 0))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_cancel",
        |mut c: Caller<'_>, token: u32| finish(grpc_end(&mut c, token, true)),
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_close",
        |mut c: Caller<'_>, token: u32| finish(grpc_end(&mut c, token, false)),
    )?;
    Ok(())
}

fn read_map(c: &mut Caller<'_>, (ptr, len): (u32, u32)) -> HostResult<HeaderMap> {
    let bytes = read_bytes(c, ptr, len)?;
    let decoded = pairs::decode(&bytes).map_err(|_| Status::BadArgument)?;
    Ok(HeaderMap::from_pairs(decoded))
}

/// Fails early if the token slot is unusable, so no call is started that nobody can track.
fn check_slot(c: &mut Caller<'_>, ptr: u32) -> HostResult {
    let memory = guest_memory(c)?;
    memory::slice(memory.data(&c), ptr, 4)?;
    Ok(())
}

fn timeout(ms: u32) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(u64::from(ms)))
}

fn http_call(
    c: &mut Caller<'_>,
    upstream: (u32, u32),
    headers: (u32, u32),
    body: (u32, u32),
    trailers: (u32, u32),
    timeout_ms: u32,
    token_ptr: u32,
) -> HostResult {
    not_in_allocator(c)?;
    let cluster = read_string(c, upstream.0, upstream.1)?;
    let headers = read_map(c, headers)?;
    let body = read_bytes(c, body.0, body.1)?;
    let trailers = read_map(c, trailers)?;
    check_slot(c, token_ptr)?;
    // Envoy takes the timeout as a signed int and refuses a negative one.
    if i32::try_from(timeout_ms).is_err() {
        log_refusal(
            c,
            &format!(
                "http call to {cluster:?} refused: timeout {timeout_ms} ms is negative as an int32"
            ),
        );
        return Err(Status::BadArgument.into());
    }
    // Envoy refuses a call that lacks any of these pseudo-headers; it checks presence only,
    // so an empty value is sent as it is (the Go SDK's multiple_dispatches example sends an
    // empty `:authority`).
    for required in [&b":method"[..], b":path", b":authority"] {
        if headers.get(required).is_none() {
            log_refusal(
                c,
                &format!(
                    "http call to {cluster:?} refused: no {} header",
                    String::from_utf8_lossy(required)
                ),
            );
            return Err(Status::BadArgument.into());
        }
    }
    let state = c.data_mut();
    let active = state.active_context();
    let root = state
        .contexts
        .get(&active)
        .map(|ctx| ctx.root)
        .ok_or(Status::BadArgument)?;
    let token = state.new_call_token(CallKind::Http);
    let request = HttpCallRequest {
        token,
        root_context: root,
        cluster: cluster.clone(),
        headers,
        body,
        trailers,
        timeout: timeout(timeout_ms),
    };
    if let Err(e) = state.embedder.http_call(request) {
        log_refusal(c, &format!("http call to {cluster:?} refused: {e}"));
        return Err(callout_status(&e, Status::BadArgument).into());
    }
    c.data_mut().pending_calls.insert(
        token,
        PendingCall {
            root,
            kind: CallKind::Http,
        },
    );
    write_u32(c, token_ptr, token)
}

struct GrpcArgs {
    service: (u32, u32),
    name: (u32, u32),
    method: (u32, u32),
    metadata: (u32, u32),
}

/// The gRPC target: a serialized `GrpcService` whose `envoy_grpc.cluster_name` names the
/// cluster, or else the bytes themselves as a cluster name (what the SDKs send).
fn grpc_target(service: &[u8]) -> GrpcTarget {
    if let Ok(fields) = protobuf::fields(service) {
        for field in fields {
            if let Field::Bytes(1, envoy_grpc) = field
                && let Ok(inner) = protobuf::fields(envoy_grpc)
                && let Some(Field::Bytes(1, cluster)) =
                    inner.into_iter().find(|f| matches!(f, Field::Bytes(1, _)))
            {
                return GrpcTarget::Cluster(String::from_utf8_lossy(cluster).into_owned());
            }
        }
        if !service.is_empty() && std::str::from_utf8(service).is_err() {
            return GrpcTarget::GrpcServiceProto(service.to_vec());
        }
    }
    GrpcTarget::Cluster(String::from_utf8_lossy(service).into_owned())
}

fn grpc_open(
    c: &mut Caller<'_>,
    args: GrpcArgs,
    message: Option<(u32, u32)>,
    timeout_ms: u32,
    token_ptr: u32,
) -> HostResult {
    not_in_allocator(c)?;
    let service_bytes = read_bytes(c, args.service.0, args.service.1)?;
    let service = read_string(c, args.name.0, args.name.1)?;
    let method = read_string(c, args.method.0, args.method.1)?;
    let initial_metadata = read_map(c, args.metadata)?;
    let message = match message {
        Some((ptr, len)) => Some(read_bytes(c, ptr, len)?),
        None => None,
    };
    check_slot(c, token_ptr)?;
    let kind = if message.is_some() {
        CallKind::GrpcCall
    } else {
        CallKind::GrpcStream
    };
    let state = c.data_mut();
    let active = state.active_context();
    let root = state
        .contexts
        .get(&active)
        .map(|ctx| ctx.root)
        .ok_or(Status::BadArgument)?;
    let token = state.new_call_token(kind);
    let request = GrpcCallRequest {
        token,
        root_context: root,
        target: grpc_target(&service_bytes),
        service,
        method,
        initial_metadata,
        message,
        timeout: timeout(timeout_ms),
    };
    if let Err(e) = state.embedder.grpc_call(request) {
        log_refusal(c, &format!("grpc call refused: {e}"));
        return Err(callout_status(&e, Status::ParseFailure).into());
    }
    c.data_mut()
        .pending_calls
        .insert(token, PendingCall { root, kind });
    write_u32(c, token_ptr, token)
}

fn grpc_send(c: &mut Caller<'_>, token: u32, ptr: u32, len: u32, end_stream: bool) -> HostResult {
    not_in_allocator(c)?;
    let message = read_bytes(c, ptr, len)?;
    let state = c.data_mut();
    match state.pending_calls.get(&token) {
        Some(call) if call.kind == CallKind::GrpcStream => {
            state.embedder.grpc_send(token, message, end_stream);
            Ok(())
        }
        Some(_) => Err(Status::BadArgument.into()),
        None => Err(Status::NotFound.into()),
    }
}

fn grpc_end(c: &mut Caller<'_>, token: u32, cancel: bool) -> HostResult {
    not_in_allocator(c)?;
    let state = c.data_mut();
    let Some(call) = state.pending_calls.get(&token).copied() else {
        return Err(Status::NotFound.into());
    };
    if call.kind == CallKind::Http {
        return Err(Status::NotFound.into());
    }
    if cancel || call.kind == CallKind::GrpcCall {
        state.pending_calls.remove(&token);
        state.embedder.grpc_cancel(token);
    } else {
        // Half-close: the stream stays until the remote side closes too.
        state.embedder.grpc_close(token);
    }
    Ok(())
}

/// `unknown`: what an unknown cluster or target is. Envoy answers BAD_ARGUMENT for HTTP
/// calls but PARSE_FAILURE for gRPC (a name that is neither a `GrpcService` nor a cluster),
/// and the Rust SDK panics on BAD_ARGUMENT from `proxy_grpc_call`/`proxy_grpc_stream`.
fn callout_status(error: &CalloutError, unknown: Status) -> Status {
    match error {
        CalloutError::UnknownCluster(_) | CalloutError::BadTarget => unknown,
        CalloutError::Failed(_) => Status::InternalFailure,
    }
}

/// Envoy refuses callouts with a bare status and no word why (envoyproxy/envoy-wasm#634);
/// wasp says why in the plugin's log.
fn log_refusal(c: &Caller<'_>, message: &str) {
    let state = c.data();
    state.embedder.log(crate::log::LogRecord {
        level: crate::abi::LogLevel::Warn,
        vm_id: &state.vm_id,
        plugin: state.active_plugin(),
        message,
    });
}
