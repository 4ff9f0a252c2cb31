//! Shared data, shared queues and metrics: thin adapters over [`crate::shared`].

use wasmtime::Linker;

use super::{
    Caller, HostResult, finish, not_in_allocator, read_bytes, return_bytes, write_u32, write_u64,
};
use crate::abi::{MetricType, Status};
use crate::shared::{MetricError, QueueError, SharedDataError};
use crate::state::VmState;

pub(super) fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: Caller<'_>,
         key_ptr: u32,
         key_len: u32,
         ret_ptr: u32,
         ret_len: u32,
         cas_ptr: u32| {
            finish(get_shared_data(
                &mut c, key_ptr, key_len, ret_ptr, ret_len, cas_ptr,
            ))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut c: Caller<'_>, key_ptr: u32, key_len: u32, val_ptr: u32, val_len: u32, cas: u32| {
            finish(set_shared_data(
                &mut c, key_ptr, key_len, val_ptr, val_len, cas,
            ))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_register_shared_queue",
        |mut c: Caller<'_>, name_ptr: u32, name_len: u32, id_ptr: u32| {
            finish(register_queue(&mut c, name_ptr, name_len, id_ptr))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        |mut c: Caller<'_>, vm_ptr: u32, vm_len: u32, name_ptr: u32, name_len: u32, id_ptr: u32| {
            finish(resolve_queue(
                &mut c, vm_ptr, vm_len, name_ptr, name_len, id_ptr,
            ))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_enqueue_shared_queue",
        |mut c: Caller<'_>, id: u32, ptr: u32, len: u32| finish(enqueue(&mut c, id, ptr, len)),
    )?;
    linker.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        |mut c: Caller<'_>, id: u32, ret_ptr: u32, ret_len: u32| {
            finish(dequeue(&mut c, id, ret_ptr, ret_len))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_define_metric",
        |mut c: Caller<'_>, kind: u32, name_ptr: u32, name_len: u32, id_ptr: u32| {
            finish(define_metric(&mut c, kind, name_ptr, name_len, id_ptr))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_increment_metric",
        |c: Caller<'_>, id: u32, offset: i64| {
            finish(
                c.data()
                    .shared
                    .metrics
                    .increment(id, offset)
                    .map_err(|e| metric_status(e).into()),
            )
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_record_metric",
        |c: Caller<'_>, id: u32, value: i64| {
            finish(
                c.data()
                    .shared
                    .metrics
                    .record(id, value as u64)
                    .map_err(|e| metric_status(e).into()),
            )
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_metric",
        |mut c: Caller<'_>, id: u32, ret: u32| {
            let value = c.data().shared.metrics.get(id).map_err(metric_status);
            finish(
                value
                    .map_err(Into::into)
                    .and_then(|v| write_u64(&mut c, ret, v)),
            )
        },
    )?;
    Ok(())
}

fn get_shared_data(
    c: &mut Caller<'_>,
    key_ptr: u32,
    key_len: u32,
    ret_ptr: u32,
    ret_len: u32,
    cas_ptr: u32,
) -> HostResult {
    not_in_allocator(c)?;
    let key = read_bytes(c, key_ptr, key_len)?;
    let state = c.data();
    let (value, cas) = state
        .shared
        .data
        .get(&state.vm_id, &key)
        .ok_or(Status::NotFound)?;
    write_u32(c, cas_ptr, cas)?;
    return_bytes(c, &value, ret_ptr, ret_len)
}

fn set_shared_data(
    c: &mut Caller<'_>,
    key_ptr: u32,
    key_len: u32,
    val_ptr: u32,
    val_len: u32,
    cas: u32,
) -> HostResult {
    not_in_allocator(c)?;
    let key = read_bytes(c, key_ptr, key_len)?;
    let value = read_bytes(c, val_ptr, val_len)?;
    let state = c.data();
    state
        .shared
        .data
        .set(&state.vm_id, &key, &value, cas)
        .map_err(|SharedDataError::CasMismatch| Status::CasMismatch.into())
}

fn register_queue(c: &mut Caller<'_>, name_ptr: u32, name_len: u32, id_ptr: u32) -> HostResult {
    not_in_allocator(c)?;
    let name = read_bytes(c, name_ptr, name_len)?;
    let state = c.data();
    let active = state.active_context();
    let root = state
        .contexts
        .get(&active)
        .map(|ctx| ctx.root)
        .ok_or(Status::BadArgument)?;
    let id = state
        .shared
        .queues
        .register(&state.vm_id, &name, root, state.queue_notifier.clone());
    write_u32(c, id_ptr, id)
}

fn resolve_queue(
    c: &mut Caller<'_>,
    vm_ptr: u32,
    vm_len: u32,
    name_ptr: u32,
    name_len: u32,
    id_ptr: u32,
) -> HostResult {
    not_in_allocator(c)?;
    let vm_id = super::read_string(c, vm_ptr, vm_len)?;
    let name = read_bytes(c, name_ptr, name_len)?;
    let state = c.data();
    // An empty vm_id means the caller's own.
    let vm_id = if vm_id.is_empty() {
        state.vm_id.to_string()
    } else {
        vm_id
    };
    let id = state
        .shared
        .queues
        .resolve(&vm_id, &name)
        .ok_or(Status::NotFound)?;
    write_u32(c, id_ptr, id)
}

fn enqueue(c: &mut Caller<'_>, id: u32, ptr: u32, len: u32) -> HostResult {
    not_in_allocator(c)?;
    let value = read_bytes(c, ptr, len)?;
    c.data()
        .shared
        .queues
        .enqueue(id, value)
        .map_err(|QueueError::NotFound| Status::NotFound.into())
}

fn dequeue(c: &mut Caller<'_>, id: u32, ret_ptr: u32, ret_len: u32) -> HostResult {
    not_in_allocator(c)?;
    match c.data().shared.queues.dequeue(id) {
        Ok(Some(value)) => return_bytes(c, &value, ret_ptr, ret_len),
        Ok(None) => Err(Status::Empty.into()),
        Err(QueueError::NotFound) => Err(Status::NotFound.into()),
    }
}

fn define_metric(
    c: &mut Caller<'_>,
    kind: u32,
    name_ptr: u32,
    name_len: u32,
    id_ptr: u32,
) -> HostResult {
    not_in_allocator(c)?;
    let kind = MetricType::from_u32(kind).ok_or(Status::BadArgument)?;
    let name = super::read_string(c, name_ptr, name_len)?;
    let id = c.data().shared.metrics.define(kind, &name);
    write_u32(c, id_ptr, id)
}

fn metric_status(error: MetricError) -> Status {
    match error {
        MetricError::NotFound => Status::NotFound,
        MetricError::BadArgument => Status::BadArgument,
    }
}
