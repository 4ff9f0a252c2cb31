//! One script's Lua state on one worker thread.

use std::rc::Rc;

use crate::access::{StreamAccess, StreamInfo};
use crate::api::log::LogSink;
use crate::error::LuaError;
use crate::loaded::LoadedState;
use crate::sandbox::Limits;
use crate::script::LuaScript;
use crate::state::StreamShared;
use crate::stream::LuaStream;

/// The Lua state of one script on one worker (Envoy keeps one per worker thread; globals a
/// script sets are per worker). Not `Send`: create it on the worker thread that uses it.
pub struct LuaWorker {
    inner: Rc<LoadedState>,
}

impl LuaWorker {
    /// A sandboxed state with the script loaded (its top level run) and the limits applied.
    pub fn new(script: &LuaScript, limits: Limits) -> Result<LuaWorker, LuaError> {
        let inner = LoadedState::load(script.name(), script.code(), limits)?;
        Ok(LuaWorker {
            inner: Rc::new(inner),
        })
    }

    /// The name of the script this state runs, as given to [`LuaScript::compile`].
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

    /// Starts the filter for one stream. `access` is the data plane's view of the stream,
    /// kept (and used) until the [`LuaStream`] is dropped.
    pub fn new_stream(&self, info: StreamInfo, access: Box<dyn StreamAccess>) -> LuaStream {
        let shared = Rc::new(StreamShared::new(self.inner.shared.clone(), info, access));
        LuaStream::new(self.inner.clone(), shared)
    }
}
