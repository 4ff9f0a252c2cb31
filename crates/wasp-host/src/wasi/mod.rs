//! WASI preview1, the way Envoy's proxy-wasm-cpp-host (`src/exports.cc`) provides it.
//!
//! A Proxy-Wasm plugin is not a program: it has no files, no sockets, no arguments. But every
//! toolchain that targets `wasm32-wasip1` (Rust, Go, TinyGo, AssemblyScript's WASI shim,
//! emscripten) links its standard library against WASI, so a host must define *all* of
//! preview1 for those modules to instantiate, and must answer the few calls a runtime makes at
//! start-up (environment, clocks, random seed, stdio) the way those runtimes expect.
//!
//! What is real here:
//! - `fd_write`/`fd_pwrite` on fd 1 and 2, which become log lines of the plugin
//!   ([`WasiView::wasi_stdio`]);
//! - the environment (`vmConfig.env`), clocks, `random_get`, and `proc_exit` (a trap);
//!
//! everything else is a stub that returns the errno cpp-host returns, so that a plugin behaves
//! the same under this host as under Envoy. Every guest pointer goes through
//! [`crate::memory`]: a bad pointer is answered with `EFAULT`, never a panic.
//!
//! All functions are registered under both `wasi_snapshot_preview1` and the older
//! `wasi_unstable` (snapshot 0), whose function signatures are the same for everything defined
//! here.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use wasmtime::{Caller, IntoFunc, Linker};

use crate::memory::{self, OutOfBounds};

/// Implemented by the host's per-VM store data.
pub(crate) trait WasiView {
    /// The VM's environment (from `vmConfig.env`), in order, as KEY/VALUE pairs.
    fn wasi_env(&self) -> &[(String, String)];
    /// A write to fd 1 (stdout) or 2 (stderr): the host logs it tagged with the plugin (stdout →
    /// info, stderr → error). Called once per `fd_write` call with all iovecs concatenated and
    /// ONE trailing `'\n'` stripped.
    fn wasi_stdio(&mut self, fd: u32, bytes: &[u8]);
}

/// Every preview1 function name this module defines (used by `wasp plugin inspect` to say which
/// imports are provided).
pub(crate) const FUNCTIONS: &[&str] = &[
    "args_get",
    "args_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "environ_get",
    "environ_sizes_get",
    "fd_advise",
    "fd_allocate",
    "fd_close",
    "fd_datasync",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_fdstat_set_rights",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_prestat_dir_name",
    "fd_prestat_get",
    "fd_pwrite",
    "fd_read",
    "fd_readdir",
    "fd_renumber",
    "fd_seek",
    "fd_sync",
    "fd_tell",
    "fd_write",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_open",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "poll_oneoff",
    "proc_exit",
    "proc_raise",
    "random_get",
    "sched_yield",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
];

/// The two module names everything is registered under.
pub(crate) const MODULES: [&str; 2] = ["wasi_snapshot_preview1", "wasi_unstable"];

/// Trap payload when the guest calls `proc_exit`: the host treats it as a VM failure with a
/// clear message.
#[derive(Debug, thiserror::Error)]
#[error("plugin called proc_exit({0})")]
pub struct ProcExit(pub i32);

/// A WASI errno, as the `i32` every preview1 function returns.
type Errno = i32;

const SUCCESS: Errno = 0;
const BADF: Errno = 8;
const FAULT: Errno = 21;
const INVAL: Errno = 28;
const IO: Errno = 29;
const NOENT: Errno = 44;
const NOSYS: Errno = 52;
const NOTDIR: Errno = 54;
const NOTSUP: Errno = 58;

/// An errno to return early with; `?` turns a bad guest pointer into `EFAULT`.
struct WasiError(Errno);

impl From<OutOfBounds> for WasiError {
    fn from(_: OutOfBounds) -> Self {
        WasiError(FAULT)
    }
}

fn errno(result: Result<(), WasiError>) -> Errno {
    match result {
        Ok(()) => SUCCESS,
        Err(WasiError(errno)) => errno,
    }
}

/// At most this many bytes of one `fd_write` reach the log; the guest is told about the short
/// write and its libc writes the rest in further calls.
const MAX_STDIO_WRITE: usize = 1 << 20;

/// `random_get` refuses larger requests with `EINVAL`, bounding the host's work per call
/// (runtimes ask for a few bytes to seed a PRNG; they do not stream entropy).
const MAX_RANDOM_GET: u32 = 64 * 1024;

/// `fdstat.fs_filetype` of stdout/stderr.
const FILETYPE_CHARACTER_DEVICE: u8 = 2;
/// `rights::fd_write`, the only right stdout/stderr have.
const RIGHTS_FD_WRITE: u64 = 64;

/// Runs `f` over the instance's exported memory and its store data. A module without a `memory`
/// export gets `EFAULT`: it cannot have passed a valid pointer.
fn with_memory<T: 'static>(
    caller: &mut Caller<'_, T>,
    f: impl FnOnce(&mut [u8], &mut T) -> Result<(), WasiError>,
) -> Errno {
    let Some(memory) = memory::exported_memory(caller) else {
        return FAULT;
    };
    let (data, state) = memory.data_and_store_mut(caller);
    errno(f(data, state))
}

/// Best-effort zeroing of an out-parameter of a stub that fails anyway: a bad pointer there
/// does not change the answer.
fn zero_u32<T: 'static>(caller: &mut Caller<'_, T>, ptr: u32) {
    with_memory(caller, |data, _| Ok(memory::write_u32(data, ptr, 0)?));
}

fn is_stdio(fd: u32) -> bool {
    fd == 1 || fd == 2
}

/// `fd_write`/`fd_pwrite`: gathers the iovecs written to stdout/stderr and hands them to
/// [`WasiView::wasi_stdio`].
fn write_stdio<T: WasiView + 'static>(
    caller: &mut Caller<'_, T>,
    fd: u32,
    iovs: u32,
    iovs_len: u32,
    nwritten: u32,
) -> Errno {
    if !is_stdio(fd) {
        return BADF;
    }
    with_memory(caller, |data, state| {
        // Each ciovec is { buf: u32, buf_len: u32 }.
        let array_len = u32::try_from(u64::from(iovs_len) * 8).map_err(|_| WasiError(FAULT))?;
        let array = memory::slice(data, iovs, array_len)?;
        let mut bytes = Vec::new();
        for iovec in array.chunks_exact(8) {
            let buf = memory::read_u32(iovec, 0)?;
            let len = memory::read_u32(iovec, 4)?;
            if len == 0 {
                // Like cpp-host: an empty iovec's pointer is never looked at.
                continue;
            }
            let room = MAX_STDIO_WRITE - bytes.len();
            let take = len.min(u32::try_from(room).unwrap_or(u32::MAX));
            bytes.extend_from_slice(memory::slice(data, buf, take)?);
            if bytes.len() == MAX_STDIO_WRITE {
                break;
            }
        }
        let written = bytes.len();
        if written > 0 {
            let line = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
            state.wasi_stdio(fd, line);
        }
        memory::write_u32(data, nwritten, written as u32)?;
        Ok(())
    })
}

/// Registers `func` as `name` under both [`MODULES`].
fn define<T: 'static, Params, Results>(
    linker: &mut Linker<T>,
    name: &str,
    func: impl IntoFunc<T, Params, Results> + Clone,
) -> wasmtime::Result<()> {
    debug_assert!(FUNCTIONS.contains(&name), "{name} missing from FUNCTIONS");
    for module in MODULES {
        linker.func_wrap(module, name, func.clone())?;
    }
    Ok(())
}

/// Registers functions that only return `$errno`, given their wasm parameter types.
macro_rules! stubs {
    ($linker:expr, $errno:expr, { $($name:literal ($($ty:ty),*);)* }) => {
        $(
            define($linker, $name, |_: Caller<'_, T>, $(_: $ty),*| -> Errno {
                tracing::debug!(function = $name, errno = $errno, "WASI stub called");
                $errno
            })?;
        )*
    };
}

/// The origin of the monotonic clock, shared by every VM of the process so that values are
/// comparable across plugins; fixed by the first [`add_to_linker`].
static MONOTONIC_ORIGIN: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since [`MONOTONIC_ORIGIN`], plus one: never zero, because Go's runtime throws
/// "nanotime returning zero" if its first reading is 0.
fn monotonic_nanos() -> u64 {
    let origin = *MONOTONIC_ORIGIN.get_or_init(Instant::now);
    u64::try_from(origin.elapsed().as_nanos())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

fn realtime_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Defines every function in [`FUNCTIONS`] under both [`MODULES`].
pub(crate) fn add_to_linker<T: WasiView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    MONOTONIC_ORIGIN.get_or_init(Instant::now);

    // ---- stdio -------------------------------------------------------------------------------

    define(
        linker,
        "fd_write",
        |mut caller: Caller<'_, T>, fd: u32, iovs: u32, iovs_len: u32, nwritten: u32| -> Errno {
            write_stdio(&mut caller, fd, iovs, iovs_len, nwritten)
        },
    )?;
    // stdout/stderr are not seekable: the offset is meaningless and ignored.
    define(
        linker,
        "fd_pwrite",
        |mut caller: Caller<'_, T>,
         fd: u32,
         iovs: u32,
         iovs_len: u32,
         _offset: i64,
         nwritten: u32|
         -> Errno { write_stdio(&mut caller, fd, iovs, iovs_len, nwritten) },
    )?;
    define(
        linker,
        "fd_fdstat_get",
        |mut caller: Caller<'_, T>, fd: u32, stat: u32| -> Errno {
            if !is_stdio(fd) {
                return BADF;
            }
            // fdstat: { fs_filetype: u8 @0, fs_flags: u16 @2, fs_rights_base: u64 @8,
            //           fs_rights_inheriting: u64 @16 }, 24 bytes.
            let mut fdstat = [0u8; 24];
            fdstat[0] = FILETYPE_CHARACTER_DEVICE;
            fdstat[8..16].copy_from_slice(&RIGHTS_FD_WRITE.to_le_bytes());
            with_memory(&mut caller, |data, _| {
                Ok(memory::write(data, stat, &fdstat)?)
            })
        },
    )?;
    define(
        linker,
        "fd_tell",
        |mut caller: Caller<'_, T>, fd: u32, offset: u32| -> Errno {
            if !is_stdio(fd) {
                return BADF;
            }
            with_memory(&mut caller, |data, _| {
                Ok(memory::write_u64(data, offset, 0)?)
            })
        },
    )?;
    // cpp-host accepts (and logs) any seek, so plugins tested under Envoy may depend on it.
    define(
        linker,
        "fd_seek",
        |mut caller: Caller<'_, T>, fd: u32, offset: i64, whence: u32, newoffset: u32| -> Errno {
            tracing::debug!(fd, offset, whence, "WASI fd_seek ignored");
            // Not in cpp-host, which leaves it unwritten: report offset 0 rather than garbage.
            with_memory(&mut caller, |data, _| {
                Ok(memory::write_u64(data, newoffset, 0)?)
            });
            SUCCESS
        },
    )?;
    define(linker, "fd_close", |_: Caller<'_, T>, fd: u32| -> Errno {
        tracing::debug!(fd, "WASI fd_close ignored");
        SUCCESS
    })?;
    define(
        linker,
        "fd_advise",
        |_: Caller<'_, T>, _fd: u32, _offset: i64, _len: i64, _advice: u32| -> Errno { SUCCESS },
    )?;

    // No-ops that succeed on stdout/stderr and answer EBADF for any other descriptor.
    define(
        linker,
        "fd_datasync",
        |_: Caller<'_, T>, fd: u32| -> Errno { stdio_noop(fd) },
    )?;
    define(linker, "fd_sync", |_: Caller<'_, T>, fd: u32| -> Errno {
        stdio_noop(fd)
    })?;
    define(
        linker,
        "fd_fdstat_set_rights",
        |_: Caller<'_, T>, fd: u32, _base: i64, _inheriting: i64| -> Errno { stdio_noop(fd) },
    )?;
    define(
        linker,
        "fd_allocate",
        |_: Caller<'_, T>, fd: u32, _offset: i64, _len: i64| -> Errno { stdio_noop(fd) },
    )?;
    define(
        linker,
        "fd_filestat_set_size",
        |_: Caller<'_, T>, fd: u32, _size: i64| -> Errno { stdio_noop(fd) },
    )?;
    define(
        linker,
        "fd_filestat_set_times",
        |_: Caller<'_, T>, fd: u32, _atim: i64, _mtim: i64, _flags: u32| -> Errno {
            stdio_noop(fd)
        },
    )?;
    // stdout/stderr exist but cannot be renumbered; nothing else exists.
    define(
        linker,
        "fd_renumber",
        |_: Caller<'_, T>, fd: u32, _to: u32| -> Errno { if is_stdio(fd) { NOTSUP } else { BADF } },
    )?;

    // ---- no file system ----------------------------------------------------------------------

    // There are no files to read, not even stdin.
    stubs!(linker, NOSYS, {
        "fd_read"(u32, u32, u32, u32);
        "fd_pread"(u32, u32, u32, i64, u32);
        "fd_fdstat_set_flags"(u32, u32);
        "fd_prestat_dir_name"(u32, u32, u32);
        "proc_raise"(u32);
    });
    // EBADF from fd_prestat_get ends libc's scan for preopened directories (it starts at fd 3
    // and stops at the first EBADF): there are none.
    stubs!(linker, BADF, {
        "fd_prestat_get"(u32, u32);
        "fd_filestat_get"(u32, u32);
    });
    define(
        linker,
        "fd_readdir",
        |mut caller: Caller<'_, T>, _fd: u32, _buf: u32, _len: u32, _cookie: i64, bufused: u32| {
            zero_u32(&mut caller, bufused);
            NOTDIR
        },
    )?;
    stubs!(linker, NOENT, {
        "path_open"(u32, u32, u32, u32, u32, i64, i64, u32, u32);
    });
    stubs!(linker, NOTSUP, {
        "path_create_directory"(u32, u32, u32);
        "path_filestat_get"(u32, u32, u32, u32, u32);
        "path_filestat_set_times"(u32, u32, u32, u32, i64, i64, u32);
        "path_link"(u32, u32, u32, u32, u32, u32, u32);
        "path_remove_directory"(u32, u32, u32);
        "path_rename"(u32, u32, u32, u32, u32, u32);
        "path_symlink"(u32, u32, u32, u32, u32);
        "path_unlink_file"(u32, u32, u32);
        "sock_accept"(u32, u32, u32);
        "sock_shutdown"(u32, u32);
    });
    define(
        linker,
        "path_readlink",
        |mut caller: Caller<'_, T>,
         _fd: u32,
         _path: u32,
         _path_len: u32,
         _buf: u32,
         _buf_len: u32,
         bufused: u32|
         -> Errno {
            zero_u32(&mut caller, bufused);
            NOTSUP
        },
    )?;
    define(
        linker,
        "sock_recv",
        |mut caller: Caller<'_, T>,
         _fd: u32,
         _iovs: u32,
         _iovs_len: u32,
         _flags: u32,
         datalen: u32,
         roflags: u32|
         -> Errno {
            zero_u32(&mut caller, datalen);
            // roflags is a u16.
            with_memory(&mut caller, |data, _| {
                Ok(memory::write(data, roflags, &[0, 0])?)
            });
            NOTSUP
        },
    )?;
    define(
        linker,
        "sock_send",
        |mut caller: Caller<'_, T>,
         _fd: u32,
         _iovs: u32,
         _iovs_len: u32,
         _flags: u32,
         datalen: u32|
         -> Errno {
            zero_u32(&mut caller, datalen);
            NOTSUP
        },
    )?;

    // ---- environment and arguments -----------------------------------------------------------

    define(
        linker,
        "environ_sizes_get",
        |mut caller: Caller<'_, T>, count: u32, buf_size: u32| -> Errno {
            with_memory(&mut caller, |data, state| {
                let env = state.wasi_env();
                // Each variable is stored as "KEY=VALUE\0".
                let size: usize = env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
                let size = u32::try_from(size).map_err(|_| WasiError(INVAL))?;
                memory::write_u32(data, count, env.len() as u32)?;
                memory::write_u32(data, buf_size, size)?;
                Ok(())
            })
        },
    )?;
    define(
        linker,
        "environ_get",
        |mut caller: Caller<'_, T>, environ: u32, environ_buf: u32| -> Errno {
            with_memory(&mut caller, |data, state| {
                if state.wasi_env().is_empty() {
                    // Like cpp-host: nothing to write, and the pointers are not looked at.
                    return Ok(());
                }
                let mut pointers = Vec::new();
                let mut strings = Vec::new();
                for (key, value) in state.wasi_env() {
                    let offset = u32::try_from(strings.len()).map_err(|_| WasiError(INVAL))?;
                    pointers.extend_from_slice(&environ_buf.wrapping_add(offset).to_le_bytes());
                    strings.extend_from_slice(key.as_bytes());
                    strings.push(b'=');
                    strings.extend_from_slice(value.as_bytes());
                    strings.push(0);
                }
                memory::write(data, environ_buf, &strings)?;
                memory::write(data, environ, &pointers)?;
                Ok(())
            })
        },
    )?;
    // A plugin has no command line.
    define(
        linker,
        "args_sizes_get",
        |mut caller: Caller<'_, T>, argc: u32, argv_buf_size: u32| -> Errno {
            with_memory(&mut caller, |data, _| {
                memory::write_u32(data, argc, 0)?;
                memory::write_u32(data, argv_buf_size, 0)?;
                Ok(())
            })
        },
    )?;
    define(
        linker,
        "args_get",
        |_: Caller<'_, T>, _argv: u32, _argv_buf: u32| -> Errno { SUCCESS },
    )?;

    // ---- clocks, randomness, scheduling ------------------------------------------------------

    // Realtime and monotonic only; cpp-host answers ENOTSUP for the CPU-time clocks.
    define(
        linker,
        "clock_time_get",
        |mut caller: Caller<'_, T>, id: u32, _precision: i64, time: u32| -> Errno {
            let now = match id {
                0 => realtime_nanos(),
                1 => monotonic_nanos(),
                _ => return NOTSUP,
            };
            with_memory(&mut caller, |data, _| {
                Ok(memory::write_u64(data, time, now)?)
            })
        },
    )?;
    define(
        linker,
        "clock_res_get",
        |mut caller: Caller<'_, T>, id: u32, resolution: u32| -> Errno {
            if id > 1 {
                return NOTSUP;
            }
            with_memory(&mut caller, |data, _| {
                Ok(memory::write_u64(data, resolution, 1)?)
            })
        },
    )?;
    define(
        linker,
        "random_get",
        |mut caller: Caller<'_, T>, buf: u32, len: u32| -> Errno {
            if len > MAX_RANDOM_GET {
                return INVAL;
            }
            with_memory(&mut caller, |data, _| {
                let out = memory::slice_mut(data, buf, len)?;
                getrandom::fill(out).map_err(|error| {
                    tracing::error!(%error, "random_get: the host has no entropy");
                    WasiError(IO)
                })
            })
        },
    )?;
    define(linker, "sched_yield", |_: Caller<'_, T>| -> Errno {
        SUCCESS
    })?;
    // No subscription ever fires, and we say so without sleeping: a plugin must not block the
    // proxy. Failing is not an option: Go's runtime aborts ("fatal error: poll_oneoff failed")
    // on any errno, golang/go#78513.
    define(
        linker,
        "poll_oneoff",
        |mut caller: Caller<'_, T>, _in: u32, _out: u32, _nsubscriptions: u32, nevents: u32| {
            with_memory(&mut caller, |data, _| {
                Ok(memory::write_u32(data, nevents, 0)?)
            })
        },
    )?;

    // ---- process -----------------------------------------------------------------------------

    // There is no process to end: unwinding the guest with a trap is the only faithful answer,
    // and the host reports the VM as failed.
    define(
        linker,
        "proc_exit",
        |_: Caller<'_, T>, code: i32| -> wasmtime::Result<()> {
            Err(wasmtime::Error::new(ProcExit(code)))
        },
    )?;

    Ok(())
}

/// Syncing, resizing, advising stdout/stderr: nothing to do. Any other fd does not exist.
fn stdio_noop(fd: u32) -> Errno {
    if is_stdio(fd) { SUCCESS } else { BADF }
}

#[cfg(test)]
mod tests;
