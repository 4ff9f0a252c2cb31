//! `proxy_get_property` and `proxy_set_property`.

use wasmtime::Linker;

use super::{Caller, HostResult, finish, not_in_allocator, read_bytes, return_bytes};
use crate::abi::Status;
use crate::codec::property::split_path;
use crate::state::VmState;

pub(super) fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: Caller<'_>, path_ptr: u32, path_len: u32, ret_ptr: u32, ret_len: u32| {
            finish(get_property(&mut c, path_ptr, path_len, ret_ptr, ret_len))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_property",
        |mut c: Caller<'_>, path_ptr: u32, path_len: u32, val_ptr: u32, val_len: u32| {
            finish(set_property(&mut c, path_ptr, path_len, val_ptr, val_len))
        },
    )?;
    Ok(())
}

fn get_property(
    c: &mut Caller<'_>,
    path_ptr: u32,
    path_len: u32,
    ret_ptr: u32,
    ret_len: u32,
) -> HostResult {
    not_in_allocator(c)?;
    let path = read_bytes(c, path_ptr, path_len)?;
    let segments = split_path(&path);
    let value = crate::properties::get(c.data(), &segments).ok_or(Status::NotFound)?;
    return_bytes(c, &value, ret_ptr, ret_len)
}

/// Stores the value in the stream's filter state, where every plugin of the chain can read
/// it back. Root contexts have no stream: `NOT_FOUND`, as in Envoy. A property declared
/// read-only (`declare_property`) can be written once.
fn set_property(
    c: &mut Caller<'_>,
    path_ptr: u32,
    path_len: u32,
    val_ptr: u32,
    val_len: u32,
) -> HostResult {
    not_in_allocator(c)?;
    let path = read_bytes(c, path_ptr, path_len)?;
    let value = read_bytes(c, val_ptr, val_len)?;
    let state = c.data();
    let readonly = std::str::from_utf8(&path)
        .ok()
        .and_then(|name| state.declared_properties.get(name))
        .is_some_and(|d| d.readonly);
    state
        .with_filter_state(|filter_state| {
            if readonly && filter_state.contains_key(&path) {
                return Err(Status::BadArgument.into());
            }
            filter_state.insert(path, value);
            Ok(())
        })
        .ok_or(Status::NotFound)?
}
