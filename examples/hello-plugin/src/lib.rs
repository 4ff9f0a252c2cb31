//! wasp's example plugin.
//!
//! - adds `x-hello: <greeting>` to every response (the greeting is the plugin configuration,
//!   JSON `{"greeting": "..."}`), and `x-request-id-seen` with the request id wasp generated;
//! - answers `403 denied by the hello plugin` itself when the request has `x-deny`;
//! - counts requests in the metric `hello_requests_total` (see /stats/prometheus).

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| Box::new(HelloRoot { greeting: "hello".into(), counter: 0 }));
}}

struct HelloRoot {
    greeting: String,
    counter: u32,
}

impl Context for HelloRoot {}

impl RootContext for HelloRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        if let Some(config) = self.get_plugin_configuration() {
            // A tiny reader for {"greeting":"..."}: no JSON crate needed for one field.
            let text = String::from_utf8_lossy(&config);
            if let Some(value) = text.split("\"greeting\":\"").nth(1).and_then(|rest| rest.split('"').next()) {
                self.greeting = value.to_owned();
            }
        }
        self.counter = hostcalls::define_metric(MetricType::Counter, "hello_requests_total").unwrap_or(0);
        log::info!("hello plugin configured, greeting {:?}", self.greeting);
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Hello { greeting: self.greeting.clone(), counter: self.counter, request_id: None }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Hello {
    greeting: String,
    counter: u32,
    request_id: Option<String>,
}

impl Context for Hello {}

impl HttpContext for Hello {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let _ = hostcalls::increment_metric(self.counter, 1);
        self.request_id = self.get_http_request_header("x-request-id");
        let path = self.get_http_request_header(":path").unwrap_or_default();
        log::info!("request for {path}");
        if self.get_http_request_header("x-deny").is_some() {
            self.send_http_response(403, vec![("content-type", "text/plain")], Some(b"denied by the hello plugin\n"));
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        self.set_http_response_header("x-hello", Some(&self.greeting));
        if let Some(id) = &self.request_id {
            self.set_http_response_header("x-request-id-seen", Some(id));
        }
        Action::Continue
    }
}
