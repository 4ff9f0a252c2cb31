//! `_initialize` panics, so instantiating the module traps before any context exists.
//! No log level is set, so the panic message goes to stderr through WASI, not proxy_log.

proxy_wasm::main! {{
    panic!("start trap");
}}
