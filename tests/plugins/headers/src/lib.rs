//! The README example, modelled on the Rust SDK's http_headers example: logs every
//! request header and adds a few headers on the way in and out.

use log::info;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(HeadersRoot { config: Rc::from(""), trust_domain: None })
    });
}}

struct HeadersRoot {
    config: Rc<str>,
    /// `TRUST_DOMAIN` from the VM's environment (WasmPlugin `vmConfig.env`), if set.
    trust_domain: Option<Rc<str>>,
}

impl Context for HeadersRoot {}

impl RootContext for HeadersRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        self.config = Rc::from(String::from_utf8_lossy(&config).as_ref());
        self.trust_domain = std::env::var("TRUST_DOMAIN").ok().map(Rc::from);
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Headers {
            context_id,
            config: Rc::clone(&self.config),
            trust_domain: self.trust_domain.clone(),
        }))
    }
}

struct Headers {
    context_id: u32,
    config: Rc<str>,
    trust_domain: Option<Rc<str>>,
}

impl Context for Headers {}

impl HttpContext for Headers {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        for (name, value) in &self.get_http_request_headers() {
            info!("#{} -> {}: {}", self.context_id, name, value);
        }
        self.add_http_request_header("x-wasp-example", "hello");
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        for (name, value) in &self.get_http_response_headers() {
            info!("#{} <- {}: {}", self.context_id, name, value);
        }
        self.add_http_response_header("x-powered-by", "wasp");
        if !self.config.is_empty() {
            self.add_http_response_header("x-plugin-config", &self.config);
        }
        if let Some(domain) = &self.trust_domain {
            self.add_http_response_header("x-trust-domain", domain);
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        info!("#{} completed.", self.context_id);
    }
}
