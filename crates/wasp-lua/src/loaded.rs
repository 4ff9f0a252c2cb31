//! A script loaded into a sandboxed Lua state: its top level run, its entry points found.
//! What one worker's streams share, and what [`LuaScript::compile`](crate::LuaScript::compile)
//! loads once to check a script.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Function, Lua, MultiValue};

use crate::api::log::{self, LogLevel};
use crate::error::{LuaError, chunk_id, chunk_name, describe};
use crate::sandbox::{self, Budget, Limits};
use crate::state::WorkerShared;

/// What streams of a worker share.
pub(crate) struct LoadedState {
    pub lua: Lua,
    pub shared: Rc<WorkerShared>,
    pub budget: Rc<Budget>,
    pub on_request: Option<Function>,
    pub on_response: Option<Function>,
}

impl LoadedState {
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

    /// A sandboxed state with the script `code` loaded (its top level run) and the limits
    /// applied; `name` names the script in errors and log lines.
    pub fn load(name: &str, code: &str, limits: Limits) -> Result<LoadedState, LuaError> {
        let state_error = |e: mlua::Error| LuaError::State {
            script: name.to_string(),
            message: e.to_string(),
        };
        let lua = sandbox::new_state(limits.instructions_per_call > 0).map_err(state_error)?;
        crate::api::register(&lua).map_err(state_error)?;
        let chunk_id = chunk_id(&lua, code).map_err(state_error)?;
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
            .load(code)
            .set_name(chunk_name(code))
            .set_mode(mlua::chunk::ChunkMode::Text)
            .exec();
        let mut inner = LoadedState {
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
        Ok(inner)
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
