//! Never returns from on_http_request_headers: the host must interrupt it (epoch/fuel
//! deadline) instead of hanging the worker.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::hint::black_box;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(SpinRoot) });
}}

struct SpinRoot;

impl Context for SpinRoot {}

impl RootContext for SpinRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Spin))
    }
}

struct Spin;

impl Context for Spin {}

impl HttpContext for Spin {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // black_box makes every iteration observable, so the loop cannot be optimised out.
        let mut counter: u64 = 0;
        loop {
            counter = black_box(counter.wrapping_add(1));
        }
    }
}
