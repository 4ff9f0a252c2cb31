//! Exercises every Proxy-Wasm hostcall. The request header `x-scenario` picks what an
//! HTTP context does; the host tests assert on the headers it sets and grep the log
//! lines, so keep every header name and log text stable.

use log::{debug, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, Bytes, ContextType, GrpcStatusCode, LogLevel, MetricType, Status};
use std::cell::{Cell, RefCell};
use std::time::{Duration, UNIX_EPOCH};

// Scenarios added for the Envoy conformance suite (tests/conformance).
mod conformance;

proxy_wasm::main! {{
    // Trace: the host does the filtering. This also installs the SDK's panic hook, which
    // logs the panic message at critical level before the `unreachable` trap.
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(HostcallsRoot { context_id, tick_configured: false })
    });
}}

#[derive(Clone, Copy, Default)]
struct Metrics {
    counter: u32,
    gauge: u32,
    histogram: u32,
}

thread_local! {
    // Defined by the root in on_configure, used by every HTTP context.
    static METRICS: Cell<Metrics> = Cell::new(Metrics::default());
    // Contexts paused by the `tick-pause` scenario; the root's next on_tick resumes them.
    static TICK_PAUSED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    // Requests seen by every plugin of this VM (`vm-shared`): plugins that share a VM share it.
    static VM_REQUESTS: Cell<u32> = const { Cell::new(0) };
}

fn metrics() -> Metrics {
    METRICS.with(Cell::get)
}

fn lossy(bytes: Option<Bytes>) -> String {
    String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `ok` or the Debug form of the error status (e.g. `CasMismatch`).
fn outcome(result: Result<(), Status>) -> String {
    match result {
        Ok(()) => "ok".to_string(),
        Err(status) => format!("{status:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Root context
// ---------------------------------------------------------------------------------------

struct HostcallsRoot {
    context_id: u32,
    /// The plugin configuration was `tick=<ms>`: keep ticking after a `tick-pause` resume.
    tick_configured: bool,
}

impl Context for HostcallsRoot {}

impl RootContext for HostcallsRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        let config = lossy(self.get_vm_configuration());
        info!("vm_start config={config}");
        config != "fail-vm-start"
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let config = lossy(self.get_plugin_configuration());
        info!("configure config={config}");
        if config == "fail-configure" {
            return false;
        }

        self.tick_configured = false;
        if let Some(Ok(ms)) = config.strip_prefix("tick=").map(str::parse::<u64>) {
            self.set_tick_period(Duration::from_millis(ms));
            self.tick_configured = true;
        }

        let define = |kind, name| hostcalls::define_metric(kind, name).unwrap();
        METRICS.with(|m| {
            m.set(Metrics {
                counter: define(MetricType::Counter, "hostcalls_requests_total"),
                gauge: define(MetricType::Gauge, "hostcalls_gauge"),
                histogram: define(MetricType::Histogram, "hostcalls_histogram"),
            })
        });

        // `no-queue`: leave the queue to another plugin (the last to register it gets its
        // on_queue_ready, as in Envoy).
        if config != "no-queue" {
            let queue_id = self.register_shared_queue("hostcalls_queue");
            info!("queue registered id={queue_id}");
        }
        true
    }

    fn on_tick(&mut self) {
        info!("tick");
        // Take the list first: resuming may re-enter the module for the paused request.
        let paused = TICK_PAUSED.with(|p| std::mem::take(&mut *p.borrow_mut()));
        let switched = !paused.is_empty();
        for id in paused {
            // Hostcalls act on the effective context, so point it at the paused request.
            if hostcalls::set_effective_context(id).is_ok() {
                let _ = hostcalls::resume_http_request();
            }
        }
        if switched {
            let _ = hostcalls::set_effective_context(self.context_id);
        }
        if !self.tick_configured {
            self.set_tick_period(Duration::ZERO);
        }
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        while let Ok(Some(msg)) = self.dequeue_shared_queue(queue_id) {
            info!(
                "queue_ready id={queue_id} msg={}",
                String::from_utf8_lossy(&msg)
            );
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(HostcallsHttp {
            context_id,
            scenario: String::new(),
            grpc_messages: Vec::new(),
            callout_token: None,
            dispatches_out: 0,
            dispatch_statuses: Vec::new(),
            log_properties: String::new(),
        }))
    }
}

// ---------------------------------------------------------------------------------------
// HTTP context
// ---------------------------------------------------------------------------------------

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

const CALLOUT_BODY: &[u8] = b"ping";

impl HostcallsHttp {
    fn is(&self, scenario: &str) -> bool {
        self.scenario == scenario
    }

    /// On a failed dispatch the request goes on, carrying the status for the test to see.
    fn call_error(&self, status: Status) -> Action {
        self.set_http_request_header("x-call-error", Some(&format!("{status:?}")));
        Action::Continue
    }

    fn dispatch_callout(&mut self, cluster: &str, headers: Vec<(&str, &str)>) -> Action {
        // The conformance suite points callouts at other clusters (timeouts, resets).
        let cluster = self
            .get_http_request_header("x-callout-cluster")
            .unwrap_or_else(|| cluster.to_string());
        let timeout = self
            .get_http_request_header("x-callout-timeout-ms")
            .and_then(|ms| ms.parse().ok())
            .map_or(Duration::from_secs(5), Duration::from_millis);
        match self.dispatch_http_call(
            &cluster,
            headers,
            Some(CALLOUT_BODY),
            vec![("x-call-trailer", "t")],
            timeout,
        ) {
            Ok(token) => {
                self.callout_token = Some(token);
                Action::Pause
            }
            Err(status) => self.call_error(status),
        }
    }

    /// The Go SDK's multiple_dispatches example: several callouts from one callback, with an
    /// empty `:authority` (present, so Envoy accepts it); the stream resumes when all are back.
    fn multiple_dispatches(&mut self) -> Action {
        for _ in 0..3 {
            match self.dispatch_http_call(
                "callout",
                vec![(":path", "/"), (":method", "GET"), (":authority", "")],
                None,
                vec![],
                Duration::from_secs(5),
            ) {
                Ok(_) => self.dispatches_out += 1,
                Err(status) => return self.call_error(status),
            }
        }
        Action::Pause
    }

    fn dispatch_returned(&mut self, num_headers: usize) {
        let status = self
            .get_http_call_response_headers()
            .into_iter()
            .find(|(name, _)| name == ":status")
            .map_or_else(|| "none".to_string(), |(_, value)| value);
        self.dispatch_statuses
            .push(format!("{status}/{num_headers}"));
        self.dispatches_out -= 1;
        if self.dispatches_out == 0 {
            self.dispatch_statuses.sort();
            let statuses = self.dispatch_statuses.join(",");
            info!("all dispatches returned: {statuses}");
            self.set_http_request_header("x-dispatch-statuses", Some(&statuses));
            self.resume_http_request();
        }
    }

    fn headers(&self) -> Action {
        self.add_http_request_header("x-added", "yes");
        self.set_http_request_header("x-replace", Some("replaced"));
        self.remove_http_request_header("x-remove");
        // Taken after the three edits above, so it shows their effect.
        let names: Vec<String> = self
            .get_http_request_headers()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        self.set_http_request_header("x-seen-headers", Some(&names.join(",")));
        if self.get_http_request_header("x-missing").is_none() {
            self.set_http_request_header("x-missing", Some("none"));
        }
        if let Some(path) = self.get_http_request_header("x-new-path") {
            self.set_http_request_header(":path", Some(&path));
        }
        let pairs = self.get_http_request_headers_bytes().len();
        self.set_http_request_header("x-pairs", Some(&pairs.to_string()));
        Action::Continue
    }

    fn shared_data(&self) -> Action {
        let key = self.get_http_request_header("x-key").unwrap_or_default();
        let value = |v: Option<Bytes>| v.map_or("absent".to_string(), |v| lossy(Some(v)));
        let mut steps = Vec::new();

        let (v, _) = self.get_shared_data(&key);
        steps.push(if v.is_some() { "present" } else { "absent" }.to_string());
        let r = self.set_shared_data(&key, Some(b"v1"), None);
        steps.push(format!("set1={}", outcome(r)));
        let (v, cas) = self.get_shared_data(&key);
        steps.push(format!("v={}", value(v)));
        // A CAS the host never handed out must be rejected...
        let stale = cas.unwrap_or(0).wrapping_add(1000);
        let r = self.set_shared_data(&key, Some(b"v2"), Some(stale));
        steps.push(format!("stale={}", outcome(r)));
        // ...and the current one accepted.
        let r = self.set_shared_data(&key, Some(b"v2"), cas);
        steps.push(format!("fresh={}", outcome(r)));
        let (v, _) = self.get_shared_data(&key);
        steps.push(format!("v={}", value(v)));
        let r = self.remove_shared_data(&key, None);
        steps.push(format!("del={}", outcome(r)));
        let (v, _) = self.get_shared_data(&key);
        steps.push(match v {
            None => "after-del=absent".to_string(),
            Some(v) => format!("after-del=present:{}", v.len()),
        });

        self.set_http_request_header("x-shared", Some(&steps.join(",")));
        Action::Continue
    }

    fn queue(&self) -> Action {
        let result = match hostcalls::resolve_shared_queue("", "hostcalls_queue") {
            Ok(Some(id)) => outcome(self.enqueue_shared_queue(id, Some(b"hello-queue"))),
            Ok(None) => "not-found".to_string(),
            Err(status) => format!("{status:?}"),
        };
        self.set_http_request_header("x-queue", Some(&result));
        let missing = match hostcalls::resolve_shared_queue("", "no-such-queue") {
            Ok(Some(_)) => "some",
            _ => "none",
        };
        self.set_http_request_header("x-queue-missing", Some(missing));
        Action::Continue
    }

    fn metrics(&self) -> Action {
        let m = metrics();
        let _ = hostcalls::record_metric(m.gauge, 42);
        let _ = hostcalls::record_metric(m.histogram, 7);
        let _ = hostcalls::increment_metric(m.counter, 2);
        let value = |id| match hostcalls::get_metric(id) {
            Ok(v) => v.to_string(),
            Err(status) => format!("err:{status:?}"),
        };
        self.set_http_request_header("x-counter", Some(&value(m.counter)));
        self.set_http_request_header("x-gauge", Some(&value(m.gauge)));
        let hist = match hostcalls::get_metric(m.histogram) {
            Ok(_) => "ok".to_string(),
            Err(status) => format!("{status:?}"),
        };
        self.set_http_request_header("x-histogram-get", Some(&hist));
        Action::Continue
    }

    fn properties(&self) -> Action {
        let list = self
            .get_http_request_header("x-properties")
            .unwrap_or_default();
        for path in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let value = match hostcalls::get_property(path.split('.').collect()) {
                Ok(Some(bytes)) => format!("hex:{}", hex(&bytes)),
                Ok(None) => "none".to_string(),
                Err(status) => format!("err:{status:?}"),
            };
            let name = format!("x-prop-{}", path.replace('.', "-"));
            self.set_http_request_header(&name, Some(&value));
        }
        Action::Continue
    }

    fn set_property_scenario(&self) -> Action {
        let _ = hostcalls::set_property(vec!["wasp", "test"], Some(b"value-1"));
        let value = match hostcalls::get_property(vec!["wasp", "test"]) {
            Ok(Some(bytes)) => lossy(Some(bytes)),
            Ok(None) => "none".to_string(),
            Err(status) => format!("err:{status:?}"),
        };
        self.set_http_request_header("x-set-property", Some(&value));
        Action::Continue
    }

    fn foreign(&self) -> Action {
        let input: &[u8] = b"hello hello hello hello";
        let roundtrip = match self.call_foreign_function("compress", Some(input)) {
            Ok(compressed) => {
                let compressed = compressed.unwrap_or_default();
                match self.call_foreign_function("uncompress", Some(&compressed)) {
                    Ok(plain) => lossy(plain),
                    Err(status) => format!("err:uncompress:{status:?}"),
                }
            }
            Err(status) => format!("err:compress:{status:?}"),
        };
        self.set_http_request_header("x-foreign", Some(&roundtrip));
        let missing = match self.call_foreign_function("no_such_function", None) {
            Ok(_) => "ok".to_string(),
            Err(status) => format!("{status:?}"),
        };
        self.set_http_request_header("x-foreign-missing", Some(&missing));
        Action::Continue
    }

    fn log_levels(&self) -> Action {
        for (level, text) in [
            (LogLevel::Trace, "level trace"),
            (LogLevel::Debug, "level debug"),
            (LogLevel::Info, "level info"),
            (LogLevel::Warn, "level warn"),
            (LogLevel::Error, "level error"),
            (LogLevel::Critical, "level critical"),
        ] {
            let _ = hostcalls::log(level, text);
        }
        let level = match hostcalls::get_log_level() {
            Ok(level) => format!("{level:?}"),
            Err(status) => format!("err:{status:?}"),
        };
        self.set_http_request_header("x-log-level", Some(&level));
        Action::Continue
    }

    fn time(&self) -> Action {
        let nanos = self
            .get_current_time()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        self.set_http_request_header("x-time-ns", Some(&nanos.to_string()));
        Action::Continue
    }

    fn random(&self) -> Action {
        let mut buf = [0u8; 16];
        let value = match getrandom::fill(&mut buf) {
            Ok(()) => hex(&buf),
            Err(e) => format!("err:{e}"),
        };
        self.set_http_request_header("x-random", Some(&value));
        Action::Continue
    }

    fn env(&self) -> Action {
        let value = self
            .get_http_request_header("x-env-name")
            .and_then(|name| std::env::var(name).ok())
            .unwrap_or_else(|| "missing".to_string());
        self.set_http_request_header("x-env-value", Some(&value));
        Action::Continue
    }

    /// Shared by the body scenarios: buffer until end of stream, then edit the body once.
    fn edit_request_body(&self, body_size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        match self.scenario.as_str() {
            "buffer-request" => {
                let body = self.get_http_request_body(0, body_size).unwrap_or_default();
                self.set_http_request_body(0, body_size, &body.to_ascii_uppercase());
            }
            "body-append" => self.set_http_request_body(body_size, 0, b"-appended"),
            "body-prepend" => self.set_http_request_body(0, 0, b"prepended-"),
            "body-splice" => self.set_http_request_body(1, 2, b"XY"),
            _ => {}
        }
        Action::Continue
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
        // Several callouts come back in any order: that scenario logs once, when all are back.
        if self.is("multiple-dispatches") {
            self.dispatch_returned(num_headers);
            return;
        }
        debug!(
            "http_call_response token={token_id} headers={num_headers} body_size={body_size} trailers={num_trailers}"
        );
        if self.callout_token.take() != Some(token_id) {
            warn!("http_call_response for unexpected token={token_id}");
        }
        if self.is("panic-callout-response") {
            panic!("boom in http call response");
        }
        // No headers means the callout failed (timeout, reset, ...).
        if num_headers == 0 {
            self.send_http_response(503, vec![("x-callout-failed", "1")], None);
            return;
        }
        let status = self
            .get_http_call_response_headers()
            .into_iter()
            .find(|(name, _)| name == ":status")
            .map(|(_, value)| value)
            .unwrap_or_default();
        self.add_http_request_header("x-callout-status", &status);
        let body = lossy(self.get_http_call_response_body(0, body_size));
        self.add_http_request_header("x-callout-body", &body);
        self.add_http_request_header("x-callout-header-count", &num_headers.to_string());
        self.add_http_request_header("x-callout-trailer-count", &num_trailers.to_string());
        if let Some(echo) = self.get_http_call_response_header("x-echo") {
            self.add_http_request_header("x-callout-echo", &echo);
        }
        self.resume_http_request();
    }

    fn on_grpc_call_response(&mut self, token_id: u32, status_code: u32, response_size: usize) {
        debug!("grpc_call_response token={token_id} status={status_code} size={response_size}");
        let body = lossy(self.get_grpc_call_response_body(0, response_size));
        self.add_http_request_header("x-grpc-status", &status_code.to_string());
        self.add_http_request_header("x-grpc-body", &body);
        self.resume_http_request();
    }

    fn on_grpc_stream_initial_metadata(&mut self, _token_id: u32, num_elements: u32) {
        info!("grpc initial metadata n={num_elements}");
    }

    fn on_grpc_stream_message(&mut self, _token_id: u32, message_size: usize) {
        let msg = lossy(self.get_grpc_stream_message(0, message_size));
        info!("grpc message {msg}");
        self.grpc_messages.push(msg);
    }

    fn on_grpc_stream_trailing_metadata(&mut self, _token_id: u32, num_elements: u32) {
        info!("grpc trailing metadata n={num_elements}");
    }

    fn on_grpc_stream_close(&mut self, _token_id: u32, status_code: u32) {
        let value = format!("{};status={status_code}", self.grpc_messages.join(","));
        self.add_http_request_header("x-grpc-stream", &value);
        self.resume_http_request();
    }

    fn on_done(&mut self) -> bool {
        info!("on_done ctx={}", self.context_id);
        // A request that ended while paused must not be resumed by a later tick.
        let id = self.context_id;
        TICK_PAUSED.with(|p| p.borrow_mut().retain(|&paused| paused != id));
        true
    }
}

impl HttpContext for HostcallsHttp {
    fn on_http_request_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        let _ = hostcalls::increment_metric(metrics().counter, 1);
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
            "set-headers" => {
                let mut pairs = vec![
                    (":method", "GET"),
                    (":path", "/replaced"),
                    (":authority", "replaced.local"),
                    (":scheme", "http"),
                    ("x-only", "1"),
                ];
                // Keeping Envoy's x-forwarded-proto keeps the request routable.
                if self.get_http_request_header("x-keep-proto").is_some() {
                    pairs.push(("x-forwarded-proto", "http"));
                }
                self.set_http_request_headers(pairs);
                Action::Continue
            }
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
            "http-call" | "panic-callout-response" => self.dispatch_callout(
                "callout",
                vec![
                    (":method", "POST"),
                    (":path", "/callout"),
                    (":authority", "callout.local"),
                    ("x-from", "hostcalls"),
                ],
            ),
            "multiple-dispatches" => self.multiple_dispatches(),
            "http-call-bad-cluster" => self.dispatch_callout(
                "no-such-cluster",
                vec![
                    (":method", "POST"),
                    (":path", "/callout"),
                    (":authority", "callout.local"),
                    ("x-from", "hostcalls"),
                ],
            ),
            "http-call-no-path" => self.dispatch_callout(
                "callout",
                vec![
                    (":method", "POST"),
                    (":authority", "callout.local"),
                    ("x-from", "hostcalls"),
                ],
            ),
            "grpc-call" => match self.dispatch_grpc_call(
                "grpc",
                "wasp.Echo",
                "Say",
                vec![("x-md", b"1")],
                Some(b"hello-grpc"),
                Duration::from_secs(5),
            ) {
                Ok(_token) => Action::Pause,
                Err(status) => self.call_error(status),
            },
            "grpc-stream" => match self.open_grpc_stream("grpc", "wasp.Echo", "Chat", vec![]) {
                Ok(token) => {
                    if let Err(status) =
                        hostcalls::send_grpc_stream_message(token, Some(b"m1"), false)
                    {
                        self.set_http_request_header(
                            "x-grpc-send-error",
                            Some(&format!("{status:?}")),
                        );
                    }
                    Action::Pause
                }
                Err(status) => self.call_error(status),
            },
            "tick-pause" => {
                TICK_PAUSED.with(|p| p.borrow_mut().push(self.context_id));
                // RootContext::set_tick_period is not reachable from an HTTP context; the
                // host applies the raw hostcall to the effective context's root.
                let _ = hostcalls::set_tick_period(Duration::from_millis(10));
                Action::Pause
            }
            "shared-data" => self.shared_data(),
            "queue" => self.queue(),
            "metrics" => self.metrics(),
            "properties" => self.properties(),
            "set-property" => self.set_property_scenario(),
            "foreign" => self.foreign(),
            "log-levels" => self.log_levels(),
            "time" => self.time(),
            "random" => self.random(),
            "env" => self.env(),
            "stdio" => {
                println!("stdout line from hostcalls");
                eprintln!("stderr line from hostcalls");
                Action::Continue
            }
            "panic-request-headers" => panic!("boom in request headers"),
            "reset" => {
                self.reset_http_request();
                Action::Pause
            }
            "pause-headers" => Action::Pause,
            "vm-shared" => {
                let n = VM_REQUESTS.with(|c| {
                    c.set(c.get() + 1);
                    c.get()
                });
                self.add_http_request_header("x-vm-requests", &n.to_string());
                Action::Continue
            }
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
        // The length changes while the upstream's content-length is left in place: the host
        // must not send a stale length.
        if self.is("response-append") {
            if !end_of_stream {
                return Action::Pause;
            }
            self.set_http_response_body(body_size, 0, b"-appended");
        }
        if self.is("buffer-response") {
            if !end_of_stream {
                return Action::Pause;
            }
            let body = self
                .get_http_response_body(0, body_size)
                .unwrap_or_default();
            self.set_http_response_body(0, body_size, &body.to_ascii_uppercase());
        }
        Action::Continue
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
