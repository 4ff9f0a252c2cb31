//! The callout plugin of the benchmarks: for every request, an HTTP callout (`GET /small`) to
//! the cluster named by the plugin configuration (default `callout`); the request waits for
//! the answer, then goes on, and the response carries `x-bench-callout: <callout status>`.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::rc::Rc;
use std::time::Duration;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root { cluster: Rc::from("callout") })
    });
}}

struct Root {
    cluster: Rc<str>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        if let Some(config) = self.get_plugin_configuration() {
            let name = String::from_utf8_lossy(&config).trim().to_string();
            if !name.is_empty() {
                self.cluster = Rc::from(name.as_str());
            }
        }
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            cluster: Rc::clone(&self.cluster),
            status: String::new(),
        }))
    }
}

struct Stream {
    cluster: Rc<str>,
    status: String,
}

impl Context for Stream {
    fn on_http_call_response(&mut self, _token: u32, _headers: usize, _body: usize, _trailers: usize) {
        self.status = self
            .get_http_call_response_header(":status")
            .unwrap_or_else(|| "none".to_string());
        self.resume_http_request();
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        match self.dispatch_http_call(
            &self.cluster,
            vec![(":method", "GET"), (":path", "/small"), (":authority", "callout")],
            None,
            vec![],
            Duration::from_secs(5),
        ) {
            Ok(_) => Action::Pause,
            Err(_) => {
                self.status = "dispatch-failed".to_string();
                Action::Continue
            }
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let status = if self.status.is_empty() { "none" } else { &self.status };
        self.add_http_response_header("x-bench-callout", status);
        Action::Continue
    }
}
