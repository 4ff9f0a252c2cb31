//! A Proxy-Wasm ABI 0.2.0 plugin written against the raw ABI (no SDK): three-argument
//! proxy_on_request_headers and configuration read through proxy_get_buffer_bytes.

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_log(level: u32, ptr: *const u8, len: usize) -> u32;
    fn proxy_get_buffer_bytes(
        buffer: u32,
        start: usize,
        max_size: usize,
        ret_ptr: *mut *mut u8,
        ret_len: *mut usize,
    ) -> u32;
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
}

const LOG_INFO: u32 = 2;
const REQUEST_HEADERS: u32 = 0;
const VM_CONFIGURATION: u32 = 6;
const PLUGIN_CONFIGURATION: u32 = 7;

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

fn buffer(buffer: u32, size: usize) -> String {
    let mut ptr = std::ptr::null_mut();
    let mut len = 0;
    unsafe {
        proxy_get_buffer_bytes(buffer, 0, size, &mut ptr, &mut len);
    }
    String::from_utf8_lossy(&take(ptr, len)).into_owned()
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_abi_version_0_2_0() {}

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
pub extern "C" fn proxy_on_vm_start(_context_id: u32, vm_configuration_size: usize) -> u32 {
    let config = buffer(VM_CONFIGURATION, vm_configuration_size);
    log_info(&format!("v020 vm_start config={config}"));
    1
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_configure(_context_id: u32, plugin_configuration_size: usize) -> u32 {
    let config = buffer(PLUGIN_CONFIGURATION, plugin_configuration_size);
    log_info(&format!("v020 configure config={config}"));
    1
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_request_headers(
    _context_id: u32,
    num_headers: u32,
    end_of_stream: u32,
) -> u32 {
    let key = "x-missing";
    let mut ptr = std::ptr::null_mut();
    let mut len = 0;
    let status = unsafe {
        proxy_get_header_map_value(REQUEST_HEADERS, key.as_ptr(), key.len(), &mut ptr, &mut len)
    };
    log_info(&format!("v020 missing status={status}"));
    drop(take(ptr, len));

    let (name, value) = ("x-abi", "0.2.0");
    unsafe {
        proxy_add_header_map_value(
            REQUEST_HEADERS,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        );
    }

    // Printed as true/false, like the SDK-based plugins do.
    let eos = end_of_stream != 0;
    log_info(&format!("v020 request_headers n={num_headers} eos={eos}"));
    0 // Continue
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_response_headers(
    _context_id: u32,
    _num_headers: u32,
    _end_of_stream: u32,
) -> u32 {
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
