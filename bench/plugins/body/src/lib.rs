//! The body plugin of the benchmarks: buffers the whole response body, upper-cases its ASCII
//! letters and writes it back (same length, so Content-Length stays right in both proxies), and
//! adds `x-bench-body: 1` to the response headers. bench/run checks both.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream))
    }
}

struct Stream;

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.add_http_response_header("x-bench-body", "1");
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause; // StopIterationAndBuffer: wait for the whole body
        }
        if let Some(mut body) = self.get_http_response_body(0, body_size) {
            body.make_ascii_uppercase();
            self.set_http_response_body(0, body_size, &body);
        }
        Action::Continue
    }
}
