//! One script's Lua state on one worker thread.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Function, Lua, MultiValue};

use crate::access::{StreamAccess, StreamInfo};
use crate::api::log::{self, LogLevel, LogSink};
use crate::error::{LuaError, chunk_id, chunk_name, describe};
use crate::sandbox::{self, Budget};
use crate::script::LuaScript;
use crate::state::{StreamShared, WorkerShared};
use crate::stream::LuaStream;

/// Resource limits of one Lua state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Memory the state may allocate in total (all streams of the worker); 0 = unlimited.
    /// An allocation past it fails the script that made it.
    pub memory_bytes: usize,
    /// VM instructions one call into the script may run (a phase, a resume after a callout,
    /// the script's top level), checked every 1000 instructions. Time spent inside one
    /// library function (`string.rep` of a huge string) is not counted; the memory limit
    /// bounds those. 0 = unlimited (no hook at all, see the crate README for its cost).
    pub instructions_per_call: u64,
}

impl Default for Limits {
    /// 64 MiB and 10 million instructions (tens of milliseconds): far above what header and
    /// body filters use, low enough that a runaway script cannot stall a worker for long.
    fn default() -> Limits {
        Limits {
            memory_bytes: 64 << 20,
            instructions_per_call: 10_000_000,
        }
    }
}

/// What streams of a worker share.
pub(crate) struct WorkerInner {
    pub lua: Lua,
    pub shared: Rc<WorkerShared>,
    pub budget: Rc<Budget>,
    pub on_request: Option<Function>,
    pub on_response: Option<Function>,
}

impl WorkerInner {
    /// Logs through the worker's sink.
    pub fn log(&self, level: LogLevel, message: &str) {
        let sink = self.shared.log.borrow().clone();
        sink(level, &self.shared.script, message);
    }

    /// The error text of a call that ran out of instructions.
    pub fn budget_error(&self, line: Option<usize>) -> String {
        let at = line.map(|l| format!(":{l}")).unwrap_or_default();
        format!(
            "{}{at}: instruction limit exceeded ({} instructions per call)",
            self.shared.chunk_id,
            self.budget.per_call()
        )
    }
}

/// The Lua state of one script on one worker (Envoy keeps one per worker thread; globals a
/// script sets are per worker). Not `Send`: create it on the worker thread that uses it.
pub struct LuaWorker {
    inner: Rc<WorkerInner>,
}

impl LuaWorker {
    /// A sandboxed state with the script loaded (its top level run) and the limits applied.
    pub fn new(script: &LuaScript, limits: Limits) -> Result<LuaWorker, LuaError> {
        let name = script.name();
        let state_error = |e: mlua::Error| LuaError::State {
            script: name.to_string(),
            message: e.to_string(),
        };
        let lua = sandbox::new_state(limits.instructions_per_call > 0).map_err(state_error)?;
        crate::api::register(&lua).map_err(state_error)?;
        let chunk_id = chunk_id(&lua, script.code()).map_err(state_error)?;
        let shared = Rc::new(WorkerShared {
            script: name.to_string(),
            chunk_id,
            log: RefCell::new(log::to_tracing()),
        });
        install_print(&lua, &shared).map_err(state_error)?;
        let budget = sandbox::apply_limits(&lua, limits.memory_bytes, limits.instructions_per_call)
            .map_err(state_error)?;

        budget.reset();
        let loaded = lua
            .load(script.code())
            .set_name(chunk_name(script.code()))
            .set_mode(mlua::chunk::ChunkMode::Text)
            .exec();
        let mut inner = WorkerInner {
            lua,
            shared,
            budget,
            on_request: None,
            on_response: None,
        };
        let script_error = |message| LuaError::Script {
            script: name.to_string(),
            message,
        };
        if let Some(line) = inner.budget.exceeded() {
            return Err(script_error(inner.budget_error(line)));
        }
        loaded.map_err(|e| script_error(describe(&inner.shared.chunk_id, &e)))?;

        let globals = inner.lua.globals();
        inner.on_request = globals
            .raw_get::<Option<Function>>("envoy_on_request")
            .ok()
            .flatten();
        inner.on_response = globals
            .raw_get::<Option<Function>>("envoy_on_response")
            .ok()
            .flatten();
        if inner.on_request.is_none() && inner.on_response.is_none() {
            return Err(LuaError::NoEntryPoint(name.to_string()));
        }
        Ok(LuaWorker {
            inner: Rc::new(inner),
        })
    }

    pub fn script_name(&self) -> &str {
        &self.inner.shared.script
    }

    /// Where `log*()` and `print()` lines go (default: `tracing`, target `wasp::lua`).
    pub fn set_log_sink(&self, sink: LogSink) {
        *self.inner.shared.log.borrow_mut() = sink;
    }

    /// Bytes the state currently uses (all streams).
    pub fn memory_used(&self) -> usize {
        self.inner.lua.used_memory()
    }

    pub(crate) fn has_on_request(&self) -> bool {
        self.inner.on_request.is_some()
    }

    pub(crate) fn has_on_response(&self) -> bool {
        self.inner.on_response.is_some()
    }

    /// Starts the filter for one stream. `access` is the data plane's view of the stream,
    /// kept (and used) until the [`LuaStream`] is dropped.
    pub fn new_stream(&self, info: StreamInfo, access: Box<dyn StreamAccess>) -> LuaStream {
        let shared = Rc::new(StreamShared::new(self.inner.shared.clone(), info, access));
        LuaStream::new(self.inner.clone(), shared)
    }
}

/// `print()` writes to the log sink (info) instead of the proxy's stdout.
fn install_print(lua: &Lua, shared: &Rc<WorkerShared>) -> mlua::Result<()> {
    let shared = shared.clone();
    let print = lua.create_function(move |_, args: MultiValue| {
        let parts = args
            .iter()
            .map(mlua::Value::to_string)
            .collect::<mlua::Result<Vec<_>>>()?;
        let sink = shared.log.borrow().clone();
        sink(LogLevel::Info, &shared.script, &parts.join("\t"));
        Ok(())
    })?;
    lua.globals().raw_set("print", print)
}
