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
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use wasmtime::{Engine, Module, Store};

    #[derive(Default)]
    struct TestState {
        env: Vec<(String, String)>,
        stdio: Vec<(u32, String)>,
    }

    impl WasiView for TestState {
        fn wasi_env(&self) -> &[(String, String)] {
            &self.env
        }
        fn wasi_stdio(&mut self, fd: u32, bytes: &[u8]) {
            self.stdio
                .push((fd, String::from_utf8_lossy(bytes).into_owned()));
        }
    }

    /// The preview1 signatures, written out independently of the implementation (from the
    /// witx): `I` is i32, `L` is i64. A result of `""` means no result (`proc_exit`).
    const SIGNATURES: &[(&str, &str, &str)] = &[
        ("args_get", "II", "I"),
        ("args_sizes_get", "II", "I"),
        ("clock_res_get", "II", "I"),
        ("clock_time_get", "ILI", "I"),
        ("environ_get", "II", "I"),
        ("environ_sizes_get", "II", "I"),
        ("fd_advise", "ILLI", "I"),
        ("fd_allocate", "ILL", "I"),
        ("fd_close", "I", "I"),
        ("fd_datasync", "I", "I"),
        ("fd_fdstat_get", "II", "I"),
        ("fd_fdstat_set_flags", "II", "I"),
        ("fd_fdstat_set_rights", "ILL", "I"),
        ("fd_filestat_get", "II", "I"),
        ("fd_filestat_set_size", "IL", "I"),
        ("fd_filestat_set_times", "ILLI", "I"),
        ("fd_pread", "IIILI", "I"),
        ("fd_prestat_dir_name", "III", "I"),
        ("fd_prestat_get", "II", "I"),
        ("fd_pwrite", "IIILI", "I"),
        ("fd_read", "IIII", "I"),
        ("fd_readdir", "IIILI", "I"),
        ("fd_renumber", "II", "I"),
        ("fd_seek", "ILII", "I"),
        ("fd_sync", "I", "I"),
        ("fd_tell", "II", "I"),
        ("fd_write", "IIII", "I"),
        ("path_create_directory", "III", "I"),
        ("path_filestat_get", "IIIII", "I"),
        ("path_filestat_set_times", "IIIILLI", "I"),
        ("path_link", "IIIIIII", "I"),
        ("path_open", "IIIIILLII", "I"),
        ("path_readlink", "IIIIII", "I"),
        ("path_remove_directory", "III", "I"),
        ("path_rename", "IIIIII", "I"),
        ("path_symlink", "IIIII", "I"),
        ("path_unlink_file", "III", "I"),
        ("poll_oneoff", "IIII", "I"),
        ("proc_exit", "I", ""),
        ("proc_raise", "I", "I"),
        ("random_get", "II", "I"),
        ("sched_yield", "", "I"),
        ("sock_accept", "III", "I"),
        ("sock_recv", "IIIIII", "I"),
        ("sock_send", "IIIII", "I"),
        ("sock_shutdown", "II", "I"),
    ];

    fn wat_types(code: &str) -> String {
        code.chars()
            .map(|c| match c {
                'I' => " i32",
                'L' => " i64",
                other => panic!("bad type code {other}"),
            })
            .collect()
    }

    fn import(module: &str, name: &str, local: &str) -> String {
        let (_, params, results) = SIGNATURES
            .iter()
            .find(|(n, _, _)| *n == name)
            .unwrap_or_else(|| panic!("no signature for {name}"));
        let results = if results.is_empty() {
            String::new()
        } else {
            format!("(result{})", wat_types(results))
        };
        format!(
            "(import \"{module}\" \"{name}\" (func ${local} (param{}) {results}))",
            wat_types(params)
        )
    }

    fn linker(engine: &Engine) -> Linker<TestState> {
        let mut linker = Linker::new(engine);
        add_to_linker(&mut linker).unwrap();
        linker
    }

    /// Instantiates a module made of `imports` (from `wasi_snapshot_preview1`, each as `$name`),
    /// one page of memory initialised with `data` segments, and `run` with `body`.
    struct Guest {
        store: Store<TestState>,
        instance: wasmtime::Instance,
    }

    impl Guest {
        fn new(imports: &[&str], data: &str, run: &str, env: &[(&str, &str)]) -> Guest {
            let imports: String = imports
                .iter()
                .map(|name| import("wasi_snapshot_preview1", name, name))
                .collect::<Vec<_>>()
                .join("\n");
            let wat = format!("(module\n{imports}\n(memory (export \"memory\") 1)\n{data}\n{run})");
            let engine = Engine::default();
            let module = Module::new(&engine, wat::parse_str(&wat).unwrap()).unwrap();
            let state = TestState {
                env: env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..TestState::default()
            };
            let mut store = Store::new(&engine, state);
            let instance = linker(&engine).instantiate(&mut store, &module).unwrap();
            Guest { store, instance }
        }

        fn run(&mut self) -> i32 {
            self.try_run().unwrap()
        }

        fn try_run(&mut self) -> wasmtime::Result<i32> {
            let run = self
                .instance
                .get_typed_func::<(), i32>(&mut self.store, "run")?;
            run.call(&mut self.store, ())
        }

        fn memory(&mut self) -> &[u8] {
            let memory = self.instance.get_memory(&mut self.store, "memory").unwrap();
            memory.data(&self.store)
        }

        fn u32_at(&mut self, ptr: usize) -> u32 {
            u32::from_le_bytes(self.memory()[ptr..ptr + 4].try_into().unwrap())
        }

        fn u64_at(&mut self, ptr: usize) -> u64 {
            u64::from_le_bytes(self.memory()[ptr..ptr + 8].try_into().unwrap())
        }
    }

    /// iovecs at 0: {100, 6} {200, 7}; "hello " at 100, "world!\n" at 200.
    const TWO_IOVECS: &str = r#"
        (data (i32.const 0) "\64\00\00\00\06\00\00\00\c8\00\00\00\07\00\00\00")
        (data (i32.const 100) "hello ")
        (data (i32.const 200) "world!\n")"#;

    fn fd_write_run(fd: u32) -> String {
        format!(
            "(func (export \"run\") (result i32)
                (call $fd_write (i32.const {fd}) (i32.const 0) (i32.const 2) (i32.const 300)))"
        )
    }

    #[test]
    fn fd_write_to_stdout_and_stderr_is_collected() {
        for fd in [1, 2] {
            let mut guest = Guest::new(&["fd_write"], TWO_IOVECS, &fd_write_run(fd), &[]);
            assert_eq!(guest.run(), SUCCESS);
            assert_eq!(
                guest.store.data().stdio,
                vec![(fd, "hello world!".to_string())]
            );
            assert_eq!(
                guest.u32_at(300),
                13,
                "nwritten counts the stripped newline"
            );
        }
    }

    #[test]
    fn fd_write_strips_only_one_newline_and_pwrite_works() {
        let data = r#"
            (data (i32.const 0) "\64\00\00\00\04\00\00\00")
            (data (i32.const 100) "a\n\n\n")"#;
        let run = "(func (export \"run\") (result i32)
            (call $fd_pwrite (i32.const 2) (i32.const 0) (i32.const 1) (i64.const 99) (i32.const 300)))";
        let mut guest = Guest::new(&["fd_pwrite"], data, run, &[]);
        assert_eq!(guest.run(), SUCCESS);
        assert_eq!(guest.store.data().stdio, vec![(2, "a\n\n".to_string())]);
        assert_eq!(guest.u32_at(300), 4);
    }

    #[test]
    fn fd_write_to_other_fds_is_ebadf() {
        for fd in [0, 3, 100] {
            let mut guest = Guest::new(&["fd_write"], TWO_IOVECS, &fd_write_run(fd), &[]);
            assert_eq!(guest.run(), BADF);
            assert!(guest.store.data().stdio.is_empty());
        }
    }

    #[test]
    fn fd_write_with_bad_pointers_is_efault() {
        // An iovec pointing past the end of the 64 KiB memory.
        let data = r#"(data (i32.const 0) "\f0\ff\00\00\20\00\00\00")"#;
        let cases = [
            (data, "(i32.const 0) (i32.const 1) (i32.const 300)"),
            // The iovec array itself out of bounds, and one whose size wraps 32 bits.
            (data, "(i32.const 65532) (i32.const 1) (i32.const 300)"),
            (data, "(i32.const 0) (i32.const 0x20000000) (i32.const 300)"),
            // Good iovec, bad nwritten.
            (TWO_IOVECS, "(i32.const 0) (i32.const 2) (i32.const 65534)"),
        ];
        for (data, args) in cases {
            let run = format!(
                "(func (export \"run\") (result i32) (call $fd_write (i32.const 1) {args}))"
            );
            let mut guest = Guest::new(&["fd_write"], data, &run, &[]);
            assert_eq!(guest.run(), FAULT, "{args}");
        }
    }

    #[test]
    fn fd_write_bounds_what_reaches_the_log() {
        // One iovec claiming the whole 2 MiB memory.
        let data = r#"(data (i32.const 0) "\00\00\00\00\00\00\20\00")"#;
        let run = "(func (export \"run\") (result i32)
            (drop (memory.grow (i32.const 31)))
            (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))";
        let mut guest = Guest::new(&["fd_write"], data, run, &[]);
        assert_eq!(guest.run(), SUCCESS);
        assert_eq!(guest.store.data().stdio[0].1.len(), MAX_STDIO_WRITE);
        assert_eq!(guest.u32_at(16), MAX_STDIO_WRITE as u32);
    }

    #[test]
    fn fd_fdstat_get_describes_stdio_only() {
        let run = "(func (export \"run\") (result i32)
            (i32.store (i32.const 400) (call $fd_fdstat_get (i32.const 0) (i32.const 100)))
            (i32.store (i32.const 404) (call $fd_fdstat_get (i32.const 3) (i32.const 100)))
            (i32.store (i32.const 408) (call $fd_fdstat_get (i32.const 2) (i32.const 65530)))
            (call $fd_fdstat_get (i32.const 1) (i32.const 100)))";
        let mut guest = Guest::new(&["fd_fdstat_get"], "", run, &[]);
        assert_eq!(guest.run(), SUCCESS);
        assert_eq!(guest.u32_at(400), BADF as u32);
        assert_eq!(guest.u32_at(404), BADF as u32);
        assert_eq!(guest.u32_at(408), FAULT as u32);
        let mut expected = [0u8; 24];
        expected[0] = 2;
        expected[8] = 64;
        assert_eq!(&guest.memory()[100..124], &expected);
    }

    #[test]
    fn environ_round_trips() {
        let run = "(func (export \"run\") (result i32)
            (drop (call $environ_sizes_get (i32.const 0) (i32.const 4)))
            (call $environ_get (i32.const 16) (i32.const 100)))";
        let env = [("A", "1"), ("PATH_LIKE", "x=y")];
        let mut guest = Guest::new(&["environ_sizes_get", "environ_get"], "", run, &env);
        assert_eq!(guest.run(), SUCCESS);
        assert_eq!(guest.u32_at(0), 2);
        assert_eq!(guest.u32_at(4), 4 + 14);
        assert_eq!(guest.u32_at(16), 100);
        assert_eq!(guest.u32_at(20), 104);
        assert_eq!(&guest.memory()[100..119], b"A=1\0PATH_LIKE=x=y\0\0");
    }

    #[test]
    fn environ_get_with_bad_pointer_is_efault() {
        let run = "(func (export \"run\") (result i32)
            (call $environ_get (i32.const 16) (i32.const 65533)))";
        let mut guest = Guest::new(&["environ_get"], "", run, &[("KEY", "VALUE")]);
        assert_eq!(guest.run(), FAULT);
        // With no environment there is nothing to write, so nothing to fault on.
        let mut guest = Guest::new(&["environ_get"], "", run, &[]);
        assert_eq!(guest.run(), SUCCESS);
    }

    #[test]
    fn args_are_empty() {
        let data = r#"(data (i32.const 0) "\ff\ff\ff\ff\ff\ff\ff\ff")"#;
        let run = "(func (export \"run\") (result i32)
            (drop (call $args_get (i32.const 16) (i32.const 32)))
            (call $args_sizes_get (i32.const 0) (i32.const 4)))";
        let mut guest = Guest::new(&["args_sizes_get", "args_get"], data, run, &[]);
        assert_eq!(guest.run(), SUCCESS);
        assert_eq!(guest.u32_at(0), 0);
        assert_eq!(guest.u32_at(4), 0);
    }

    #[test]
    fn clocks() {
        let run = "(func (export \"run\") (result i32)
            (i32.store (i32.const 100) (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 0)))
            (i32.store (i32.const 104) (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 8)))
            (i32.store (i32.const 108) (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 16)))
            (i32.store (i32.const 112) (call $clock_res_get (i32.const 1) (i32.const 24)))
            (i32.store (i32.const 116) (call $clock_res_get (i32.const 3) (i32.const 24)))
            (i32.store (i32.const 120) (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 65535)))
            (call $clock_time_get (i32.const 2) (i64.const 1) (i32.const 32)))";
        let mut guest = Guest::new(&["clock_time_get", "clock_res_get"], "", run, &[]);
        assert_eq!(guest.run(), NOTSUP);
        for (at, errno) in [
            (100, 0),
            (104, 0),
            (108, 0),
            (112, 0),
            (116, NOTSUP),
            (120, FAULT),
        ] {
            assert_eq!(guest.u32_at(at), errno as u32, "result stored at {at}");
        }
        let now = realtime_nanos();
        let realtime = guest.u64_at(0);
        assert!(
            now.abs_diff(realtime) < 1_000_000_000,
            "{realtime} vs {now}"
        );
        assert!(
            guest.u64_at(8) > 0,
            "Go's runtime rejects a monotonic reading of 0"
        );
        assert!(guest.u64_at(8) <= guest.u64_at(16));
        assert_eq!(guest.u64_at(24), 1);
        assert_eq!(guest.u64_at(32), 0, "unsupported clock writes nothing");
    }

    #[test]
    fn random_get() {
        let run = "(func (export \"run\") (result i32)
            (i32.store (i32.const 100) (call $random_get (i32.const 0) (i32.const 65537)))
            (i32.store (i32.const 104) (call $random_get (i32.const 65530) (i32.const 16)))
            (call $random_get (i32.const 0) (i32.const 16)))";
        let mut guest = Guest::new(&["random_get"], "", run, &[]);
        assert_eq!(guest.run(), SUCCESS);
        assert_eq!(guest.u32_at(100), INVAL as u32);
        assert_eq!(guest.u32_at(104), FAULT as u32);
        let bytes = &guest.memory()[..16];
        assert!(
            bytes.iter().filter(|b| **b != 0).count() >= 8,
            "16 random bytes with 8 or more zeros: {bytes:?}"
        );
    }

    #[test]
    fn poll_oneoff_reports_no_events() {
        let data = r#"(data (i32.const 300) "\ff\ff\ff\ff")"#;
        let run = "(func (export \"run\") (result i32)
            (call $poll_oneoff (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 300)))";
        let mut guest = Guest::new(&["poll_oneoff"], data, run, &[]);
        assert_eq!(guest.run(), SUCCESS);
        assert_eq!(guest.u32_at(300), 0);
    }

    #[test]
    fn proc_exit_traps_with_its_code() {
        let run = "(func (export \"run\") (result i32)
            (call $proc_exit (i32.const 3))
            (i32.const 0))";
        let mut guest = Guest::new(&["proc_exit"], "", run, &[]);
        let error = guest.try_run().unwrap_err();
        let exit = error.downcast_ref::<ProcExit>().expect("a ProcExit trap");
        assert_eq!(exit.0, 3);
        assert_eq!(exit.to_string(), "plugin called proc_exit(3)");
    }

    #[test]
    fn stubs_answer_like_cpp_host() {
        // (function, call arguments, errno)
        let cases: &[(&str, &str, i32)] = &[
            (
                "fd_read",
                "(i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)",
                NOSYS,
            ),
            (
                "fd_seek",
                "(i32.const 1) (i64.const 5) (i32.const 0) (i32.const 0)",
                SUCCESS,
            ),
            ("fd_close", "(i32.const 1)", SUCCESS),
            ("fd_sync", "(i32.const 1)", SUCCESS),
            ("fd_sync", "(i32.const 3)", BADF),
            (
                "fd_advise",
                "(i32.const 9) (i64.const 0) (i64.const 0) (i32.const 0)",
                SUCCESS,
            ),
            ("fd_tell", "(i32.const 2) (i32.const 0)", SUCCESS),
            ("fd_tell", "(i32.const 4) (i32.const 0)", BADF),
            ("fd_prestat_get", "(i32.const 3) (i32.const 0)", BADF),
            (
                "fd_readdir",
                "(i32.const 3) (i32.const 0) (i32.const 0) (i64.const 0) (i32.const 0)",
                NOTDIR,
            ),
            ("fd_renumber", "(i32.const 1) (i32.const 5)", NOTSUP),
            ("fd_renumber", "(i32.const 5) (i32.const 1)", BADF),
            (
                "path_open",
                "(i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0)",
                NOENT,
            ),
            (
                "path_unlink_file",
                "(i32.const 3) (i32.const 0) (i32.const 0)",
                NOTSUP,
            ),
            (
                "sock_send",
                "(i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)",
                NOTSUP,
            ),
            ("sched_yield", "", SUCCESS),
            ("proc_raise", "(i32.const 9)", NOSYS),
        ];
        for (name, args, errno) in cases {
            // Out-parameters at 0 hold garbage that the stubs zero.
            let data = r#"(data (i32.const 0) "\ff\ff\ff\ff\ff\ff\ff\ff")"#;
            let run = format!("(func (export \"run\") (result i32) (call ${name} {args}))");
            let mut guest = Guest::new(&[name], data, &run, &[]);
            assert_eq!(guest.run(), *errno, "{name} {args}");
            if ["fd_tell", "fd_readdir", "fd_seek", "sock_send"].contains(name) && *errno != BADF {
                assert_eq!(guest.u32_at(0), 0, "{name} zeroes its out-parameter");
            }
        }
    }

    #[test]
    fn every_function_links_under_both_module_names() {
        let defined: BTreeSet<&str> = FUNCTIONS.iter().copied().collect();
        let specified: BTreeSet<&str> = SIGNATURES.iter().map(|(name, _, _)| *name).collect();
        assert_eq!(defined, specified);
        assert_eq!(defined.len(), FUNCTIONS.len(), "duplicates in FUNCTIONS");

        let mut imports = String::new();
        for module in MODULES {
            for (i, name) in FUNCTIONS.iter().enumerate() {
                imports.push_str(&import(module, name, &format!("{module}_{i}")));
                imports.push('\n');
            }
        }
        let wat = format!("(module {imports} (memory (export \"memory\") 1))");
        let engine = Engine::default();
        let module = Module::new(&engine, wat::parse_str(&wat).unwrap()).unwrap();
        let mut store = Store::new(&engine, TestState::default());
        let linker = linker(&engine);
        linker.instantiate(&mut store, &module).unwrap();

        // And the linker defines nothing beyond FUNCTIONS.
        let registered: BTreeSet<(String, String)> = linker
            .iter(&mut store)
            .map(|(module, name, _)| (module.to_string(), name.to_string()))
            .collect();
        let expected: BTreeSet<(String, String)> = MODULES
            .iter()
            .flat_map(|m| FUNCTIONS.iter().map(|f| (m.to_string(), f.to_string())))
            .collect();
        assert_eq!(registered, expected);
    }
}
