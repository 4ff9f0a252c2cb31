//! A Proxy-Wasm ABI 0.1.0 plugin written against the raw ABI (no SDK), to check that the
//! host still speaks 0.1.0: two-argument proxy_on_request_headers, configuration read via
//! proxy_get_configuration, and proxy_continue_request instead of proxy_continue_stream.

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_log(level: u32, ptr: *const u8, len: usize) -> u32;
    fn proxy_get_configuration(ret_ptr: *mut *mut u8, ret_len: *mut usize) -> u32;
    fn proxy_get_header_map_value(
        map: u32,
        key_ptr: *const u8,
        key_len: usize,
        ret_ptr: *mut *mut u8,
        ret_len: *mut usize,
    ) -> u32;
    fn proxy_add_header_map_value(
        map: u32,
        key_ptr: *const u8,
        key_len: usize,
        value_ptr: *const u8,
        value_len: usize,
    ) -> u32;
    fn proxy_continue_request() -> u32;
}

const LOG_INFO: u32 = 2;
const REQUEST_HEADERS: u32 = 0;

fn log_info(msg: &str) {
    unsafe {
        proxy_log(LOG_INFO, msg.as_ptr(), msg.len());
    }
}

/// Takes ownership of a buffer the host allocated through proxy_on_memory_allocate.
fn take(ptr: *mut u8, len: usize) -> Vec<u8> {
    if ptr.is_null() {
        return Vec::new();
    }
    // SAFETY: the host got `ptr` from proxy_on_memory_allocate(len), i.e. a leaked
    // Vec<u8> with capacity `len`, and filled all of it.
    unsafe { Vec::from_raw_parts(ptr, len, len) }
}

fn configuration() -> String {
    let mut ptr = std::ptr::null_mut();
    let mut len = 0;
    unsafe {
        proxy_get_configuration(&mut ptr, &mut len);
    }
    String::from_utf8_lossy(&take(ptr, len)).into_owned()
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_abi_version_0_1_0() {}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut buf = Vec::<u8>::with_capacity(size);
    let ptr = buf.as_mut_ptr();
    std::mem::forget(buf);
    ptr
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_context_create(_context_id: u32, _parent_context_id: u32) {}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_vm_start(_context_id: u32, _vm_configuration_size: u32) -> u32 {
    log_info(&format!("v010 vm_start config={}", configuration()));
    1
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_configure(_context_id: u32, _plugin_configuration_size: u32) -> u32 {
    log_info(&format!("v010 configure config={}", configuration()));
    1
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_request_headers(_context_id: u32, num_headers: u32) -> u32 {
    let key = "x-missing";
    let mut ptr = std::ptr::null_mut();
    let mut len = 0;
    let status = unsafe {
        proxy_get_header_map_value(REQUEST_HEADERS, key.as_ptr(), key.len(), &mut ptr, &mut len)
    };
    log_info(&format!("v010 missing status={status} len={len}"));
    drop(take(ptr, len));

    let (name, value) = ("x-abi", "0.1.0");
    unsafe {
        proxy_add_header_map_value(
            REQUEST_HEADERS,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        );
    }

    let status = unsafe { proxy_continue_request() };
    log_info(&format!("v010 continue_request={status}"));
    log_info(&format!("v010 request_headers n={num_headers}"));
    0 // Continue
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_response_headers(_context_id: u32, _num_headers: u32) -> u32 {
    0
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_log(_context_id: u32) {}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_done(_context_id: u32) -> u32 {
    1
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_delete(_context_id: u32) {}
