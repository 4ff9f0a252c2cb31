//! Exercises every Proxy-Wasm hostcall. The request header `x-scenario` picks what an
//! HTTP context does; the host tests assert on the headers it sets and grep the log
//! lines, so keep every header name and log text stable.
//!
//! This file registers the root context and dispatches each HTTP context callback to its
//! scenario; the scenarios live in modules by concept: `headers`, `bodies`, `callouts` (HTTP
//! and gRPC), `shared` (shared data, queues, per-VM state), `metrics`, `properties`,
//! `system` (foreign functions, logging, time, randomness, env, stdio), `timers`
//! (`tick-pause`) and `conformance`; `root` is the root context.

use log::{debug, info};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, Bytes, GrpcStatusCode, LogLevel};

mod bodies;
mod callouts;
// Scenarios added for the Envoy conformance suite (tests/conformance).
mod conformance;
mod headers;
mod metrics;
mod properties;
mod root;
mod shared;
mod system;
mod timers;

proxy_wasm::main! {{
    // Trace: the host does the filtering. This also installs the SDK's panic hook, which
    // logs the panic message at critical level before the `unreachable` trap.
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(root::HostcallsRoot::new(context_id))
    });
}}

fn lossy(bytes: Option<Bytes>) -> String {
    String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) struct HostcallsHttp {
    context_id: u32,
    /// Value of `x-scenario`, remembered for the later callbacks.
    scenario: String,
    /// Messages received on the `grpc-stream` scenario's stream.
    grpc_messages: Vec<String>,
    /// Token of the pending `http-call` callout.
    callout_token: Option<u32>,
    /// `multiple-dispatches`: callouts still out, and the statuses of those back.
    dispatches_out: u32,
    dispatch_statuses: Vec<String>,
    /// `x-log-properties`: attributes read again in on_log (response.*, upstream.*).
    log_properties: String,
}

impl HostcallsHttp {
    fn is(&self, scenario: &str) -> bool {
        self.scenario == scenario
    }
}

impl Context for HostcallsHttp {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        num_trailers: usize,
    ) {
        self.http_call_returned(token_id, num_headers, body_size, num_trailers);
    }

    fn on_grpc_call_response(&mut self, token_id: u32, status_code: u32, response_size: usize) {
        self.grpc_call_returned(token_id, status_code, response_size);
    }

    fn on_grpc_stream_initial_metadata(&mut self, _token_id: u32, num_elements: u32) {
        info!("grpc initial metadata n={num_elements}");
    }

    fn on_grpc_stream_message(&mut self, _token_id: u32, message_size: usize) {
        self.grpc_stream_received(message_size);
    }

    fn on_grpc_stream_trailing_metadata(&mut self, _token_id: u32, num_elements: u32) {
        info!("grpc trailing metadata n={num_elements}");
    }

    fn on_grpc_stream_close(&mut self, _token_id: u32, status_code: u32) {
        self.grpc_stream_closed(status_code);
    }

    fn on_done(&mut self) -> bool {
        info!("on_done ctx={}", self.context_id);
        timers::forget_paused(self.context_id);
        true
    }
}

impl HttpContext for HostcallsHttp {
    fn on_http_request_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        metrics::count_request();
        debug!("request_headers n={num_headers} eos={end_of_stream}");
        self.scenario = self
            .get_http_request_header("x-scenario")
            .unwrap_or_default();
        self.log_properties = self
            .get_http_request_header("x-log-properties")
            .unwrap_or_default();
        if let Some(action) = self.conformance_request_headers() {
            return action;
        }

        match self.scenario.as_str() {
            "headers" => self.headers(),
            "set-headers" => self.set_headers(),
            "local-reply" => {
                self.send_http_response(418, vec![("x-local", "1")], Some(b"teapot"));
                Action::Pause
            }
            // Wrong on purpose: the host must stop the chain after a local reply anyway.
            "local-reply-continue" => {
                self.send_http_response(418, vec![("x-local", "1")], Some(b"teapot"));
                Action::Continue
            }
            "local-reply-grpc" => {
                self.send_grpc_response(GrpcStatusCode::PermissionDenied, Some("nope"), vec![]);
                Action::Pause
            }
            "http-call" | "panic-callout-response" => self.http_call(),
            "multiple-dispatches" => self.multiple_dispatches(),
            "http-call-bad-cluster" => self.http_call_bad_cluster(),
            "http-call-no-path" => self.http_call_no_path(),
            "grpc-call" => self.grpc_call(),
            "grpc-stream" => self.grpc_stream(),
            "tick-pause" => self.tick_pause(),
            "shared-data" => self.shared_data(),
            "queue" => self.queue(),
            "metrics" => self.metrics(),
            "named-metric" => self.named_metric(),
            "properties" => self.properties(),
            "set-property" => self.set_property_scenario(),
            "foreign" => self.foreign(),
            "log-levels" => self.log_levels(),
            "time" => self.time(),
            "random" => self.random(),
            "env" => self.env(),
            "stdio" => self.stdio(),
            "panic-request-headers" => panic!("boom in request headers"),
            "reset" => {
                self.reset_http_request();
                Action::Pause
            }
            "pause-headers" => Action::Pause,
            "vm-shared" => self.vm_shared(),
            _ => Action::Continue,
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        debug!("request_body size={body_size} eos={end_of_stream}");
        if let Some(action) = self.conformance_request_body(body_size, end_of_stream) {
            return action;
        }
        match self.scenario.as_str() {
            "panic-request-body" => panic!("boom in request body"),
            "local-reply-body" if end_of_stream => {
                self.send_http_response(418, vec![("x-local", "body")], Some(b"from body"));
                Action::Pause
            }
            "local-reply-body" => Action::Pause,
            "buffer-request" | "body-append" | "body-prepend" | "body-splice" => {
                self.edit_request_body(body_size, end_of_stream)
            }
            _ => Action::Continue,
        }
    }

    fn on_http_request_trailers(&mut self, num_trailers: usize) -> Action {
        debug!("request_trailers n={num_trailers}");
        if self.is("panic-request-trailers") {
            panic!("boom in request trailers");
        }
        if self.is("trailers") {
            self.add_http_request_trailer("x-trailer-added", "1");
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        debug!("response_headers n={num_headers} eos={end_of_stream}");
        if self.is("panic-response-headers") {
            panic!("boom in response headers");
        }
        if self.is("local-reply-response") {
            self.send_http_response(418, vec![("x-local", "response")], Some(b"from response"));
            return Action::Pause;
        }
        if let Some(action) = self.conformance_response_headers() {
            return action;
        }
        self.add_http_response_header("x-hostcalls-response", "1");
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        debug!("response_body size={body_size} eos={end_of_stream}");
        if self.is("panic-response-body") {
            panic!("boom in response body");
        }
        if let Some(action) = self.conformance_response_body(body_size, end_of_stream) {
            return action;
        }
        self.edit_response_body(body_size, end_of_stream)
    }

    fn on_http_response_trailers(&mut self, num_trailers: usize) -> Action {
        debug!("response_trailers n={num_trailers}");
        if self.is("panic-response-trailers") {
            panic!("boom in response trailers");
        }
        if self.is("trailers") {
            self.add_http_response_trailer("x-resp-trailer-added", "1");
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        info!("on_log ctx={}", self.context_id);
        self.log_properties();
        if self.is("panic-log") {
            panic!("boom in log");
        }
    }
}
