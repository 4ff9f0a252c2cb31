//! A valid Wasm module with no Proxy-Wasm ABI marker or callbacks; the host must
//! refuse to load it as a plugin.

#[unsafe(no_mangle)]
pub extern "C" fn add(a: i32, b: i32) -> i32 {
    a.wrapping_add(b)
}
