//! The `env.proxy_*` functions plugins import, one module per group.
//!
//! Each hostcall is a plain function over a [`Caller`] that returns `Result<(), HostError>`:
//! `HostError::Status` becomes the status code the guest sees, `HostError::Trap` (only from a
//! trap inside the guest's own allocator) unwinds the guest call. Nothing here panics on guest
//! input, and nothing here calls back into the guest except its allocator.

mod buffers;
mod callouts;
mod extras;
mod general;
mod maps;
mod properties;
mod shared;
mod stream;

use wasmtime::{Linker, Memory};

use crate::abi::Status;
use crate::memory::{self, OutOfBounds};
use crate::state::VmState;

pub(crate) type Caller<'a> = wasmtime::Caller<'a, VmState>;

/// Why a hostcall did not succeed.
pub(crate) enum HostError {
    Status(Status),
    Trap(wasmtime::Error),
}

impl From<Status> for HostError {
    fn from(status: Status) -> Self {
        HostError::Status(status)
    }
}

impl From<OutOfBounds> for HostError {
    fn from(_: OutOfBounds) -> Self {
        HostError::Status(Status::InvalidMemoryAccess)
    }
}

pub(crate) type HostResult<T = ()> = Result<T, HostError>;

/// Turns a hostcall's result into what the guest receives.
pub(crate) fn finish(result: HostResult) -> wasmtime::Result<u32> {
    match result {
        Ok(()) => Ok(Status::Ok.code()),
        Err(HostError::Status(status)) => Ok(status.code()),
        Err(HostError::Trap(trap)) => Err(trap),
    }
}

/// Registers every hostcall (all ABI versions) and the WASI functions.
pub(crate) fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    general::add_to_linker(linker)?;
    buffers::add_to_linker(linker)?;
    maps::add_to_linker(linker)?;
    stream::add_to_linker(linker)?;
    callouts::add_to_linker(linker)?;
    shared::add_to_linker(linker)?;
    properties::add_to_linker(linker)?;
    extras::add_to_linker(linker)?;
    crate::wasi::add_to_linker(linker)?;
    Ok(())
}

/// The guest's memory. Every plugin exports one; a module without it fails at load time, so
/// this only fails for a VM that is being torn down.
pub(crate) fn guest_memory(caller: &mut Caller<'_>) -> HostResult<Memory> {
    if let Some(memory) = caller.data().memory {
        return Ok(memory);
    }
    let memory = memory::exported_memory(caller).ok_or(Status::InvalidMemoryAccess)?;
    caller.data_mut().memory = Some(memory);
    Ok(memory)
}

/// Copies `len` bytes at `ptr` out of the guest.
pub(crate) fn read_bytes(caller: &mut Caller<'_>, ptr: u32, len: u32) -> HostResult<Vec<u8>> {
    let memory = guest_memory(caller)?;
    Ok(memory::slice(memory.data(&caller), ptr, len)?.to_vec())
}

/// Reads a guest string (lossy: plugins may send anything).
pub(crate) fn read_string(caller: &mut Caller<'_>, ptr: u32, len: u32) -> HostResult<String> {
    let bytes = read_bytes(caller, ptr, len)?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

pub(crate) fn write_u32(caller: &mut Caller<'_>, ptr: u32, value: u32) -> HostResult {
    let memory = guest_memory(caller)?;
    memory::write_u32(memory.data_mut(caller), ptr, value)?;
    Ok(())
}

pub(crate) fn write_u64(caller: &mut Caller<'_>, ptr: u32, value: u64) -> HostResult {
    let memory = guest_memory(caller)?;
    memory::write_u64(memory.data_mut(caller), ptr, value)?;
    Ok(())
}

/// Calls the guest's allocator for exactly `len` (> 0) bytes.
fn allocate(caller: &mut Caller<'_>, len: u32) -> HostResult<u32> {
    let allocator = caller
        .data()
        .allocator
        .clone()
        .ok_or(Status::InvalidMemoryAccess)?;
    caller.data_mut().in_allocator = true;
    let result = allocator.call(&mut *caller, len);
    caller.data_mut().in_allocator = false;
    match result {
        Ok(0) => Err(Status::InvalidMemoryAccess.into()),
        Ok(ptr) => Ok(ptr),
        Err(trap) => Err(HostError::Trap(trap)),
    }
}

/// Hands `bytes` to the guest: allocates exactly their size with the guest's allocator,
/// copies them, and writes pointer and length into the guest's return slots. Nothing is
/// allocated for empty data: the slots get 0 and 0, as cpp-host does (some allocators panic
/// on size 0).
pub(crate) fn return_bytes(
    caller: &mut Caller<'_>,
    bytes: &[u8],
    ret_ptr: u32,
    ret_len: u32,
) -> HostResult {
    // Check the return slots first so a bad slot does not leak a guest allocation.
    {
        let memory = guest_memory(caller)?;
        let data = memory.data(&caller);
        memory::slice(data, ret_ptr, 4)?;
        memory::slice(data, ret_len, 4)?;
    }
    let len = u32::try_from(bytes.len()).map_err(|_| Status::InvalidMemoryAccess)?;
    let ptr = if len == 0 { 0 } else { allocate(caller, len)? };
    // The allocator may have grown memory: take a fresh view.
    let memory = guest_memory(caller)?;
    let data = memory.data_mut(&mut *caller);
    if len > 0 {
        memory::write(data, ptr, bytes)?;
    }
    memory::write_u32(data, ret_ptr, ptr)?;
    memory::write_u32(data, ret_len, len)?;
    Ok(())
}

/// Refuses hostcalls other than logging while the guest allocator runs inside a hostcall.
pub(crate) fn not_in_allocator(caller: &Caller<'_>) -> HostResult {
    if caller.data().in_allocator {
        return Err(Status::InternalFailure.into());
    }
    Ok(())
}
