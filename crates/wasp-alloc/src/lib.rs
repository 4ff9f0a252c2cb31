//! The allocator of the `wasp` binary: mimalloc, set up to give memory back.
//!
//! mimalloc replaced glibc's malloc because glibc's showed as ~13 % of a request's CPU in
//! profiles (`BENCHMARKS.md`). Left at its defaults it keeps what it frees: compiling a plugin
//! allocates tens of MiB (cranelift's IR, on several threads) that stayed resident for the
//! life of the process, so a cold start (empty compiled-module cache) ended 2–4× above a warm
//! one. Two options fix that, set here in the binary rather than left to environment
//! variables a user would have to know about:
//!
//! - `arena_eager_commit = 0`: arenas are committed as they are used, so freed pages can be
//!   decommitted (with eager commit, mimalloc only resets them, and they stay counted);
//! - `purge_delay = 0`: free pages are returned (`MADV_DONTNEED`) as soon as they are free
//!   instead of after a delay that only ever passes if the thread allocates again — the
//!   compiler's threads go idle right after compiling.
//!
//! Returning pages at once has a price under load, though: a page freed between two requests
//! is faulted in and its free list rebuilt by the next one (page faults were 8.7 % of a
//! request's CPU in profiles, `BENCHMARKS.md`). So once the proxy is
//! ready — the start-up's compilations are over, and their threads gone — [`serving`] sets a
//! short delay ([`SERVING_PURGE_DELAY_MS`]): the workers allocate all the time, so what they
//! free is still returned within milliseconds, but not between a request and the next.
//!
//! An explicit `MIMALLOC_ARENA_EAGER_COMMIT` or `MIMALLOC_PURGE_DELAY` in the environment
//! still wins, for experiments.
//!
//! The arena option only affects arenas created after it is set, and the first one is created
//! by the first allocation: so on Linux the options are set by a constructor in
//! `.init_array`, which the dynamic loader runs before Rust's runtime allocates anything.
//! [`tune`] does the same for other platforms, as early as `main` can.
//!
//! The compiler also leaves the binary's own code resident: [`return_code_pages`] (module
//! `code`) drops it once the compiling is over.

mod code;

use std::sync::atomic::{AtomicBool, Ordering};

pub use code::return_code_pages;

use libmimalloc_sys as sys;

pub use mimalloc::MiMalloc as Allocator;

/// `mi_option_arena_eager_commit` in mimalloc 3's `mi_option_t` (the Rust bindings name the
/// options of mimalloc 2, whose numbering differs).
const ARENA_EAGER_COMMIT: sys::mi_option_t = 4;
/// `mi_option_purge_delay` in mimalloc 3.
const PURGE_DELAY: sys::mi_option_t = 15;

/// Whether the options were set before the first allocation (by the constructor).
static TUNED_BEFORE_MAIN: AtomicBool = AtomicBool::new(false);

#[cfg(target_os = "linux")]
#[used]
#[allow(unsafe_code)]
// SAFETY: a function pointer in `.init_array` is what the loader calls before `main`; the
// function makes plain C calls that need nothing initialised (mimalloc initialises itself on
// its first call).
#[unsafe(link_section = ".init_array")]
static TUNE_BEFORE_MAIN: extern "C" fn() = {
    extern "C" fn tune_before_main() {
        set_options();
        TUNED_BEFORE_MAIN.store(true, Ordering::Relaxed);
    }
    tune_before_main
};

/// Sets the options above if the constructor has not (other platforms than Linux). Call it
/// first thing in `main`.
pub fn tune() {
    if !TUNED_BEFORE_MAIN.load(Ordering::Relaxed) {
        set_options();
    }
}

/// Whether the options were set before anything was allocated (the Linux constructor ran).
pub fn tuned_before_main() -> bool {
    TUNED_BEFORE_MAIN.load(Ordering::Relaxed)
}

/// The purge delay once serving, in milliseconds (mimalloc 2's default).
pub const SERVING_PURGE_DELAY_MS: std::ffi::c_long = 10;

/// The start-up is over: freed pages may wait [`SERVING_PURGE_DELAY_MS`] before they are
/// returned (see the module's documentation).
pub fn serving() {
    set(PURGE_DELAY, "MIMALLOC_PURGE_DELAY", SERVING_PURGE_DELAY_MS);
}

/// The purge delay in force, in milliseconds (`None` under another mimalloc than 3).
pub fn purge_delay() -> Option<std::ffi::c_long> {
    #[allow(unsafe_code)]
    // SAFETY: plain C calls with no pointers.
    unsafe {
        (sys::mi_version() / 10_000 == 3).then(|| sys::mi_option_get(PURGE_DELAY))
    }
}

fn set_options() {
    set(ARENA_EAGER_COMMIT, "MIMALLOC_ARENA_EAGER_COMMIT", 0);
    set(PURGE_DELAY, "MIMALLOC_PURGE_DELAY", 0);
}

/// Sets `option` unless `env` sets it. The numbering above is mimalloc 3's: on another major
/// version the defaults stay rather than the wrong option being set.
fn set(option: sys::mi_option_t, env: &str, value: std::ffi::c_long) {
    #[allow(unsafe_code)]
    // SAFETY: plain C calls with no pointers; mimalloc reads its options when it uses them.
    unsafe {
        if sys::mi_version() / 10_000 == 3 && std::env::var_os(env).is_none() {
            sys::mi_option_set(option, value);
        }
    }
}

#[cfg(test)]
mod tests {
    #[global_allocator]
    static ALLOCATOR: super::Allocator = super::Allocator;

    #[test]
    fn the_options_take() {
        // An upgrade to another major version must re-check the option numbers above.
        #[allow(unsafe_code)]
        // SAFETY: a plain C call.
        let version = unsafe { libmimalloc_sys::mi_version() };
        assert_eq!(version / 10_000, 3, "mimalloc {version}");
        if cfg!(target_os = "linux") {
            assert!(super::tuned_before_main());
        }
        super::tune();
        #[allow(unsafe_code)]
        // SAFETY: reads of mimalloc's options.
        let (commit, delay) = unsafe {
            (
                libmimalloc_sys::mi_option_get(super::ARENA_EAGER_COMMIT),
                libmimalloc_sys::mi_option_get(super::PURGE_DELAY),
            )
        };
        if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_none() {
            assert_eq!(commit, 0);
        }
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(delay, 0);
            super::serving();
            assert_eq!(super::purge_delay(), Some(super::SERVING_PURGE_DELAY_MS));
        }
    }
}
