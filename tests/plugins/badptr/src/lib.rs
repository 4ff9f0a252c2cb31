//! Calls hostcalls with pointers and lengths outside linear memory (or wrapping around
//! 4 GiB). The host must answer with an error status or trap the plugin, never read or
//! write outside the sandbox. After each call the status is logged as
//! `badptr <name>=<status>` through a well-formed proxy_log.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(BadPtrRoot) });
}}

// The SDK imports the same functions with its own (ABI-identical) types; Rust warns about
// the differing Rust-level signatures, which is expected here.
#[allow(clashing_extern_declarations)]
#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_log(level: u32, ptr: *const u8, len: usize) -> u32;
    fn proxy_get_header_map_pairs(map: u32, ret_ptr: *mut *const u8, ret_len: *mut usize) -> u32;
    fn proxy_get_buffer_bytes(
        buf: u32,
        start: usize,
        max: usize,
        ret_ptr: *mut *const u8,
        ret_len: *mut usize,
    ) -> u32;
    fn proxy_get_property(
        path_ptr: *const u8,
        path_len: usize,
        ret_ptr: *mut *const u8,
        ret_len: *mut usize,
    ) -> u32;
    fn proxy_set_header_map_pairs(map: u32, ptr: *const u8, len: usize) -> u32;
    fn proxy_add_header_map_value(
        map: u32,
        kp: *const u8,
        kl: usize,
        vp: *const u8,
        vl: usize,
    ) -> u32;
}

const REQUEST_HEADERS: u32 = 0;
const PLUGIN_CONFIGURATION: u32 = 7;
const LOG_INFO: u32 = 2;

/// Input data that runs off the end of memory (and past 4 GiB).
const BAD_DATA: usize = 0xFFFF_FF00;
const BAD_DATA_LEN: usize = 4096;
/// Where the host is asked to store returned pointers/lengths.
const BAD_RET: usize = 0xFFFF_FFF0;

fn report(name: &str, status: u32) {
    let _ = hostcalls::log(LogLevel::Info, &format!("badptr {name}={status}"));
}

struct BadPtrRoot;

impl Context for BadPtrRoot {}

impl RootContext for BadPtrRoot {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(BadPtr))
    }
}

struct BadPtr;

impl Context for BadPtr {}

impl HttpContext for BadPtr {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let bad_ret_ptr = BAD_RET as *mut *const u8;
        let bad_ret_len = BAD_RET as *mut usize;
        let valid_value = b"v";
        // A well-formed path (request.path), so the host gets as far as writing the result.
        let path = b"request\0path";

        let status = unsafe { proxy_log(LOG_INFO, BAD_DATA as *const u8, BAD_DATA_LEN) };
        report("log", status);

        let status =
            unsafe { proxy_get_header_map_pairs(REQUEST_HEADERS, bad_ret_ptr, bad_ret_len) };
        report("get_pairs", status);

        // Plugin configuration: a buffer the test can make non-empty.
        let status = unsafe {
            proxy_get_buffer_bytes(PLUGIN_CONFIGURATION, 0, 4096, bad_ret_ptr, bad_ret_len)
        };
        report("get_buffer", status);

        let status =
            unsafe { proxy_get_property(path.as_ptr(), path.len(), bad_ret_ptr, bad_ret_len) };
        report("get_property", status);

        // ptr + len == 2^32 exactly: one past the last addressable byte of a 4 GiB memory.
        let status = unsafe {
            proxy_set_header_map_pairs(REQUEST_HEADERS, 0xFFFF_0000 as *const u8, 0x1_0000)
        };
        report("set_pairs", status);

        // ptr + len wraps to 0x10 in 32-bit arithmetic.
        let status =
            unsafe { proxy_set_header_map_pairs(REQUEST_HEADERS, BAD_RET as *const u8, 0x20) };
        report("set_pairs_wrap", status);

        let status = unsafe {
            proxy_add_header_map_value(
                REQUEST_HEADERS,
                BAD_DATA as *const u8,
                BAD_DATA_LEN,
                valid_value.as_ptr(),
                valid_value.len(),
            )
        };
        report("add_value", status);

        Action::Continue
    }
}
