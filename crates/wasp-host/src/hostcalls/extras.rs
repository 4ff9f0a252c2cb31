//! Imports that are not `proxy_*` but that real toolchains emit: AssemblyScript's
//! `env.abort`, emscripten's `env.emscripten_notify_memory_growth` and `env.pthread_equal`
//! (cpp-host provides the latter two for C++ SDK modules), and Envoy's `envoy_resolve_dns`.

use wasmtime::Linker;

use super::{Caller, guest_memory};
use crate::abi::Status;
use crate::memory;
use crate::state::VmState;

/// Raised when an AssemblyScript module aborts.
#[derive(Debug, thiserror::Error)]
#[error("plugin aborted: {message} at {file}:{line}:{column}")]
pub struct Abort {
    pub message: String,
    pub file: String,
    pub line: u32,
    pub column: u32,
}

pub(super) fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "abort",
        |mut c: Caller<'_>, msg: u32, file: u32, line: u32, column: u32| -> wasmtime::Result<()> {
            let message = as_string(&mut c, msg);
            let file = as_string(&mut c, file);
            Err(Abort {
                message,
                file,
                line,
                column,
            }
            .into())
        },
    )?;
    linker.func_wrap(
        "env",
        "emscripten_notify_memory_growth",
        |_c: Caller<'_>, _index: u32| {},
    )?;
    linker.func_wrap("env", "pthread_equal", |_c: Caller<'_>, a: u32, b: u32| {
        u32::from(a == b)
    })?;
    // DNS is the embedder's business and Envoy-specific; refuse it cleanly.
    linker.func_wrap(
        "env",
        "envoy_resolve_dns",
        |_c: Caller<'_>, _p: u32, _l: u32, _t: u32| Status::Unimplemented.code(),
    )?;
    Ok(())
}

/// Reads an AssemblyScript string: UTF-16LE, its byte length stored 4 bytes before it.
fn as_string(c: &mut Caller<'_>, ptr: u32) -> String {
    if ptr < 4 {
        return String::from("<no message>");
    }
    let Ok(memory) = guest_memory(c) else {
        return String::new();
    };
    let data = memory.data(&c);
    let Ok(len) = memory::read_u32(data, ptr - 4) else {
        return String::from("<bad pointer>");
    };
    let Ok(bytes) = memory::slice(data, ptr, len.min(4096)) else {
        return String::from("<bad pointer>");
    };
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}
