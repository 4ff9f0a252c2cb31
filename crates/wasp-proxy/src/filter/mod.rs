//! The filter chain a stream passes, and the one seam its filters share.
//!
//! A filter is a Wasm plugin ([`wasm::WasmFilter`]) or an Envoy-style Lua script
//! ([`lua::LuaFilter`]); both implement [`StreamFilter`], and the chain ([`chain::Chain`])
//! drives a list of them without asking which kind it holds. A phase hands a filter the
//! exchange as it stands (headers, the body chunk in the body buffer, trailers); the filter
//! edits it in place and answers how the stream goes on, or stops it ([`Stop`]). Waiting for
//! a filter to resume (a callout answer, a timer) happens inside the filter's phase. A
//! network (L4) chain is the same shape with data in place of headers and bodies.

pub(crate) mod chain;
pub(crate) mod exchange;
mod lua;
pub(crate) mod lua_access;
pub(crate) mod properties;
pub(crate) mod signals;
mod stop;
mod wasm;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

pub(crate) use stop::Stop;

use crate::filter::exchange::Exchange;
use crate::filter::properties::StreamRecord;
use crate::filter::signals::{Direction, Interrupt, StreamSignals};
use crate::plugins::vms::WorkerVms;
use crate::shared::Shared;
use crate::spec::PluginSetting;
use crate::upstream::Upstreams;

/// What the filters of one stream share.
pub(crate) struct StreamCx {
    pub exchange: Exchange,
    /// Where plugin effects for this stream (resume, reply, reset) arrive.
    pub signals: Rc<StreamSignals>,
    pub info: Arc<StreamRecord>,
    /// The VMs of the plugin set the stream started with.
    pub vms: Rc<WorkerVms>,
    /// The clusters of the configuration the stream started with.
    pub upstreams: Rc<Upstreams>,
    /// The names of those clusters (Lua's `httpCall` checks them).
    pub cluster_names: Arc<std::collections::HashSet<String>>,
    /// Per-stream limit on buffered body bytes, of the same configuration.
    pub buffer_limit: usize,
    pub shared: Arc<Shared>,
    /// The stream's dynamic metadata (Envoy's stream info metadata), shared by its Lua filters.
    pub metadata: Rc<RefCell<wasp_lua::DynamicMetadata>>,
    /// Filters in the chain (proxy replies pass all of them); set by `Chain::new`.
    pub len: usize,
}

impl StreamCx {
    /// The stop a pending interrupt (a reply or a reset from any callback) asks for.
    pub fn interrupted(&self) -> Result<(), Stop> {
        match self.signals.interrupt() {
            None => Ok(()),
            Some(i) => Err(stop_for(i)),
        }
    }

    /// Waits until the filter at `pos` resumes `direction`.
    pub async fn wait(&self, pos: usize, direction: Direction) -> Result<(), Stop> {
        self.signals.wait(pos, direction).await.map_err(stop_for)
    }

    /// A plugin that cannot serve the stream fails it with `code`: 403 when it could not be
    /// loaded (Istio's stand-in), 503 when it failed (Envoy's `wasm_fail_stream`).
    pub fn fail(&self, code: u16) -> Stop {
        let details = if code == 403 {
            "wasm_plugin_unavailable"
        } else {
            "wasm_fail_stream"
        };
        Stop::proxy(code, details, "", self.len)
    }

    /// The buffer limit was exceeded: 413 for requests, 500 for responses, as Envoy.
    pub fn too_large(&self, direction: Direction) -> Stop {
        match direction {
            Direction::Request => Stop::proxy(
                413,
                "request_payload_too_large",
                "Payload Too Large",
                self.len,
            ),
            Direction::Response => Stop::proxy(
                500,
                "response_payload_too_large",
                "Internal Server Error",
                self.len,
            ),
        }
    }

    pub fn buffer_limit(&self) -> usize {
        self.buffer_limit
    }
}

pub(crate) fn stop_for(interrupt: Interrupt) -> Stop {
    match interrupt {
        Interrupt::Reset => Stop::Reset,
        Interrupt::LocalReply(position, response) => Stop::Reply { response, position },
    }
}

/// How a headers phase let the stream go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadersFlow {
    Continue,
    /// The filter stopped the headers and resumed them later: the body that arrived
    /// meanwhile reaches the next body phase in one piece, as Envoy buffers it.
    Resumed,
    /// The filter holds the headers until the whole body of this direction has passed it
    /// (Lua's `body()` from the headers phase).
    WholeBody,
}

/// How a body phase let the stream go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataFlow {
    /// What is in the body buffer goes on.
    Continue,
    /// The filter buffers: it sees this chunk again with the next ones (until the end of the
    /// stream, when it must let the body go on).
    Buffer,
}

/// One filter of one stream. `pos` is its place in the chain (what plugin effects name).
pub(crate) trait StreamFilter {
    /// The headers of `direction` are in the exchange.
    async fn headers(
        &self,
        cx: &StreamCx,
        pos: usize,
        direction: Direction,
        end_of_stream: bool,
    ) -> Result<HeadersFlow, Stop>;

    /// A body chunk of `direction` is in the body buffer (after what this filter buffered).
    async fn data(
        &self,
        cx: &StreamCx,
        pos: usize,
        direction: Direction,
        end_of_stream: bool,
    ) -> Result<DataFlow, Stop>;

    /// The trailers of `direction` are in the exchange; `held` is the body this filter
    /// buffered. Returns the body that goes on before the trailers.
    async fn trailers(
        &self,
        cx: &StreamCx,
        pos: usize,
        direction: Direction,
        held: Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, Stop>;

    /// A locally generated response passes on its way out; what the filter asks for meanwhile
    /// is ignored (the answer is decided).
    fn local_reply(&self, cx: &StreamCx, pos: usize, has_body: bool);

    /// Whether the filter saw the stream (it has state for it).
    fn saw_stream(&self) -> bool;

    /// The stream is over (Wasm: `on_log`, `on_done`, `on_delete`).
    fn end(&self, cx: &StreamCx, pos: usize);
}

/// A filter of either kind; the chain holds these.
pub(crate) enum Filter {
    Wasm(wasm::WasmFilter),
    Lua(lua::LuaFilter),
}

impl Filter {
    /// The filter for plugin `plugin` of the stream's set, as `setting` (the request's route,
    /// host or rule) has it run.
    pub fn new(vms: &WorkerVms, plugin: usize, setting: &PluginSetting) -> Filter {
        let configuration = match setting {
            PluginSetting::Configuration(c) => Some(c.clone()),
            _ => None,
        };
        let script = match setting {
            PluginSetting::LuaSource(s) => Some(s.clone()),
            _ => None,
        };
        if vms.plugin(plugin).spec.is_lua() {
            Filter::Lua(lua::LuaFilter::new(plugin, script))
        } else {
            Filter::Wasm(wasm::WasmFilter::new(plugin, configuration))
        }
    }
}

impl Filter {
    /// The filter's plugin in the stream's set.
    pub fn plugin(&self) -> usize {
        match self {
            Filter::Wasm(f) => f.plugin,
            Filter::Lua(f) => f.plugin,
        }
    }
}

/// Calls the same method on whichever kind of filter `$filter` is.
macro_rules! on_either {
    ($filter:expr, $f:ident => $call:expr) => {
        match $filter {
            Filter::Wasm($f) => $call,
            Filter::Lua($f) => $call,
        }
    };
}

impl StreamFilter for Filter {
    async fn headers(
        &self,
        cx: &StreamCx,
        pos: usize,
        direction: Direction,
        end_of_stream: bool,
    ) -> Result<HeadersFlow, Stop> {
        on_either!(self, f => f.headers(cx, pos, direction, end_of_stream).await)
    }

    async fn data(
        &self,
        cx: &StreamCx,
        pos: usize,
        direction: Direction,
        end_of_stream: bool,
    ) -> Result<DataFlow, Stop> {
        on_either!(self, f => f.data(cx, pos, direction, end_of_stream).await)
    }

    async fn trailers(
        &self,
        cx: &StreamCx,
        pos: usize,
        direction: Direction,
        held: Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, Stop> {
        on_either!(self, f => f.trailers(cx, pos, direction, held).await)
    }

    fn local_reply(&self, cx: &StreamCx, pos: usize, has_body: bool) {
        on_either!(self, f => f.local_reply(cx, pos, has_body));
    }

    fn saw_stream(&self) -> bool {
        on_either!(self, f => f.saw_stream())
    }

    fn end(&self, cx: &StreamCx, pos: usize) {
        on_either!(self, f => f.end(cx, pos));
    }
}
