//! A network (L4) filter for the TCP conformance scenarios and tests. It logs every callback
//! with its arguments, counts the bytes each way (metrics `network_connections_total`,
//! `network_downstream_bytes_total`, `network_upstream_bytes_total`), and acts on its
//! configuration, a
//! list of words separated by spaces:
//!
//! - `upper`: upper-cases the client's bytes on their way up;
//! - `tag-upstream`: puts `[wasp]` in front of every chunk from the upstream;
//! - `hold-line`: holds the client's bytes until a newline arrives (StopIteration), then lets
//!   them all go at once;
//! - `close-on=WORD`: closes the connection when the client sends WORD;
//! - `stop-new`: answers StopIteration from `on_new_connection` (and never resumes);
//! - `stop-new-until-tick`: the same, resumed at the root's next tick (100 ms);
//! - `hold-for-tick`: holds the client's first bytes until the root's next tick (100 ms), which
//!   resumes the connection with `proxy_continue_stream(DOWNSTREAM)` from the root context;
//! - `panic-on=WORD`: panics (a trap) when the client sends WORD;
//! - `callout`: holds the client's first bytes while a GET to the `callout` cluster is out, then
//!   logs the answer's status and resumes the connection from the callout's callback.
//!
//! From a WasmPlugin, whose `pluginConfig` arrives as JSON, the words are `{"mode": "..."}`.

use std::cell::RefCell;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, RootContext, StreamContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType, PeerType};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(NetworkRoot { config: String::new(), metrics: None })
    });
}}

thread_local! {
    /// Connections held by `hold-for-tick`, resumed at the next tick.
    static HELD: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };

}

#[derive(Clone, Copy)]
struct Metrics {
    connections: u32,
    downstream_bytes: u32,
    upstream_bytes: u32,
}

struct NetworkRoot {
    config: String,
    metrics: Option<Metrics>,
}

impl Context for NetworkRoot {}

impl RootContext for NetworkRoot {
    fn on_tick(&mut self) {
        let held = HELD.with(|h| std::mem::take(&mut *h.borrow_mut()));
        for ctx in held {
            log::info!("tick resumes ctx={ctx}");
            let _ = hostcalls::set_effective_context(ctx);
            let _ = hostcalls::resume_downstream();
        }
        self.set_tick_period(Duration::ZERO);
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        let raw = self
            .get_plugin_configuration()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        self.config = raw
            .strip_prefix("{\"mode\":\"")
            .and_then(|r| r.strip_suffix("\"}"))
            .unwrap_or(&raw)
            .to_string();
        log::info!("configure config={}", self.config);
        let define = |name| hostcalls::define_metric(MetricType::Counter, name).unwrap_or(0);
        self.metrics = Some(Metrics {
            connections: define("network_connections_total"),
            downstream_bytes: define("network_downstream_bytes_total"),
            upstream_bytes: define("network_upstream_bytes_total"),
        });
        true
    }

    fn create_stream_context(&self, context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(Connection {
            id: context_id,
            config: self.config.clone(),
            metrics: self.metrics?,
            down: 0,
            up: 0,
            released: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::StreamContext)
    }
}

struct Connection {
    id: u32,
    config: String,
    metrics: Metrics,
    down: usize,
    up: usize,
    /// `hold-for-tick`: the first bytes were let go.
    released: bool,
}

impl Connection {
    fn has(&self, word: &str) -> bool {
        self.config.split(' ').any(|w| w == word)
    }

    fn close_word(&self) -> Option<&str> {
        self.config.split(' ').find_map(|w| w.strip_prefix("close-on="))
    }

    fn panic_word(&self) -> Option<&str> {
        self.config.split(' ').find_map(|w| w.strip_prefix("panic-on="))
    }
}

impl Context for Connection {
    /// `callout`: the SDK delivers the answer to the connection that sent it.
    fn on_http_call_response(&mut self, _: u32, _: usize, body_size: usize, _: usize) {
        let status = self
            .get_http_call_response_header(":status")
            .unwrap_or_default();
        log::info!("callout answered status={status} body={body_size}");
        self.resume_downstream();
    }
}

impl StreamContext for Connection {
    fn on_new_connection(&mut self) -> Action {
        log::info!("new_connection ctx={}", self.id);
        let _ = hostcalls::increment_metric(self.metrics.connections, 1);
        if self.has("stop-new") {
            return Action::Pause;
        }
        if self.has("stop-new-until-tick") {
            HELD.with(|h| h.borrow_mut().push(self.id));
            let _ = hostcalls::set_tick_period(Duration::from_millis(100));
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_downstream_data(&mut self, size: usize, end_of_stream: bool) -> Action {
        let data = self.get_downstream_data(0, size).unwrap_or_default();
        log::info!(
            "downstream_data size={size} eos={end_of_stream} data={:?}",
            String::from_utf8_lossy(&data)
        );
        if let Some(word) = self.close_word()
            && String::from_utf8_lossy(&data).contains(word)
        {
            log::info!("closing on {word}");
            self.close_downstream();
            return Action::Pause;
        }
        if let Some(word) = self.panic_word()
            && String::from_utf8_lossy(&data).contains(word)
        {
            panic!("the client sent {word}");
        }
        if self.has("hold-line") && !data.contains(&b'\n') && !end_of_stream {
            return Action::Pause;
        }
        if self.has("callout") && !self.released && size > 0 {
            self.released = true;
            let headers = vec![(":method", "GET"), (":path", "/check"), (":authority", "callout")];
            match self.dispatch_http_call("callout", headers, None, vec![], Duration::from_secs(5)) {
                Ok(_) => {
                    log::info!("callout sent");
                    return Action::Pause;
                }
                Err(status) => log::info!("callout refused: {status:?}"),
            }
        }
        if self.has("hold-for-tick") && !self.released && size > 0 {
            self.released = true;
            HELD.with(|h| h.borrow_mut().push(self.id));
            let _ = hostcalls::set_tick_period(Duration::from_millis(100));
            log::info!("holding until the next tick");
            return Action::Pause;
        }
        if self.has("upper") {
            self.set_downstream_data(0, size, &data.to_ascii_uppercase());
        }
        self.down += size;
        let _ = hostcalls::increment_metric(self.metrics.downstream_bytes, size as i64);
        Action::Continue
    }

    fn on_downstream_close(&mut self, peer_type: PeerType) {
        log::info!("downstream_close peer={}", peer_type as u32);
    }

    fn on_upstream_data(&mut self, size: usize, end_of_stream: bool) -> Action {
        let data = self.get_upstream_data(0, size).unwrap_or_default();
        log::info!(
            "upstream_data size={size} eos={end_of_stream} data={:?}",
            String::from_utf8_lossy(&data)
        );
        if self.has("tag-upstream") && size > 0 {
            self.set_upstream_data(0, 0, b"[wasp]");
        }
        self.up += size;
        let _ = hostcalls::increment_metric(self.metrics.upstream_bytes, size as i64);
        Action::Continue
    }

    fn on_upstream_close(&mut self, peer_type: PeerType) {
        log::info!("upstream_close peer={}", peer_type as u32);
    }

    fn on_log(&mut self) {
        log::info!("log down={} up={}", self.down, self.up);
    }
}
