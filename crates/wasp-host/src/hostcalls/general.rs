//! Logging, time, timers, context switching, `proxy_done`, the 0.1.0 configuration call,
//! `proxy_get_status` and foreign functions.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime::Linker;

use super::{
    Caller, HostResult, finish, not_in_allocator, read_bytes, read_string, return_bytes, write_u32,
    write_u64,
};
use crate::abi::{LogLevel, Status};
use crate::embedder::Effect;
use crate::log::LogRecord;
use crate::state::{ContextKind, Phase, VmState};

pub(super) fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_log",
        |mut c: Caller<'_>, level: u32, ptr: u32, len: u32| finish(log(&mut c, level, ptr, len)),
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_log_level",
        |mut c: Caller<'_>, ret: u32| {
            let level = c.data().embedder.log_level() as u32;
            finish(write_u32(&mut c, ret, level))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: Caller<'_>, ret: u32| {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            finish(write_u64(&mut c, ret, now))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut c: Caller<'_>, ms: u32| finish(set_tick_period(&mut c, ms)),
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut c: Caller<'_>, ctx: u32| finish(set_effective_context(&mut c, ctx)),
    )?;
    linker.func_wrap("env", "proxy_done", |mut c: Caller<'_>| {
        finish(done(&mut c))
    })?;
    linker.func_wrap(
        "env",
        "proxy_get_configuration",
        |mut c: Caller<'_>, ret_ptr: u32, ret_len: u32| {
            finish(get_configuration(&mut c, ret_ptr, ret_len))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_status",
        |mut c: Caller<'_>, code: u32, ptr: u32, len: u32| {
            finish(get_status(&mut c, code, ptr, len))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |mut c: Caller<'_>,
         name_ptr: u32,
         name_len: u32,
         args_ptr: u32,
         args_len: u32,
         ret_ptr: u32,
         ret_len: u32| {
            finish(call_foreign_function(
                &mut c, name_ptr, name_len, args_ptr, args_len, ret_ptr, ret_len,
            ))
        },
    )?;
    Ok(())
}

fn log(c: &mut Caller<'_>, level: u32, ptr: u32, len: u32) -> HostResult {
    let level = LogLevel::from_u32(level).ok_or(Status::BadArgument)?;
    let message = read_string(c, ptr, len)?;
    let state = c.data();
    state.embedder.log(LogRecord {
        level,
        vm_id: &state.vm_id,
        plugin: state.active_plugin(),
        message: &message,
    });
    Ok(())
}

fn set_tick_period(c: &mut Caller<'_>, ms: u32) -> HostResult {
    not_in_allocator(c)?;
    let state = c.data_mut();
    // The timer belongs to the root of whichever context is active (Envoy arms it per root
    // context, per worker VM).
    let active = state.active_context();
    let root_context = state
        .contexts
        .get(&active)
        .map(|ctx| ctx.root)
        .ok_or(Status::BadArgument)?;
    let period = (ms > 0).then(|| Duration::from_millis(u64::from(ms)));
    state.effects.push(Effect::TickPeriod {
        root_context,
        period,
    });
    Ok(())
}

fn set_effective_context(c: &mut Caller<'_>, ctx: u32) -> HostResult {
    let state = c.data_mut();
    if !state.contexts.contains_key(&ctx) {
        return Err(Status::BadArgument.into());
    }
    state.effective = ctx;
    Ok(())
}

fn done(c: &mut Caller<'_>) -> HostResult {
    let state = c.data_mut();
    let active = state.active_context();
    // Only a root context that deferred its shutdown (on_done returned false) can be done.
    match state.contexts.get(&active) {
        Some(ctx) if matches!(ctx.kind, ContextKind::Root(_)) => {
            state.effects.push(Effect::RootDone {
                root_context: active,
            });
            Ok(())
        }
        _ => Err(Status::NotFound.into()),
    }
}

/// 0.1.0: the plugin configuration inside `on_configure`, the VM configuration otherwise.
fn get_configuration(c: &mut Caller<'_>, ret_ptr: u32, ret_len: u32) -> HostResult {
    not_in_allocator(c)?;
    let state = c.data();
    let bytes = match (&state.plugin_configuration, state.phase) {
        (Some(config), Phase::Configure) => config.clone(),
        _ => state.vm_configuration.clone(),
    };
    return_bytes(c, &bytes, ret_ptr, ret_len)
}

/// The status of the callout being delivered: gRPC status and message, or Envoy's
/// (BrokenConnection, "reset") for a failed HTTP call.
fn get_status(c: &mut Caller<'_>, code_ptr: u32, msg_ptr: u32, msg_len: u32) -> HostResult {
    not_in_allocator(c)?;
    let (code, message) = c.data().delivery.status.clone().unwrap_or((0, Vec::new()));
    write_u32(c, code_ptr, code)?;
    return_bytes(c, &message, msg_ptr, msg_len)
}

fn call_foreign_function(
    c: &mut Caller<'_>,
    name_ptr: u32,
    name_len: u32,
    args_ptr: u32,
    args_len: u32,
    ret_ptr: u32,
    ret_len: u32,
) -> HostResult {
    not_in_allocator(c)?;
    let name = read_string(c, name_ptr, name_len)?;
    let args = read_bytes(c, args_ptr, args_len)?;
    let result = crate::foreign::call(c.data_mut(), &name, &args)?;
    // A null result pointer means the plugin does not want the result.
    if ret_ptr == 0 {
        return Ok(());
    }
    return_bytes(c, &result, ret_ptr, ret_len)
}
