//! A Lua script as configured: checked once, then loaded into every worker's state.

use crate::error::LuaError;
use crate::loaded::LoadedState;
use crate::sandbox::Limits;

/// A checked script. Cheap to clone and `Send + Sync`: the data plane compiles once and
/// hands it to every worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LuaScript {
    name: String,
    code: std::sync::Arc<str>,
    on_request: bool,
    on_response: bool,
}

impl LuaScript {
    /// Checks the syntax and that the script defines `envoy_on_request` and/or
    /// `envoy_on_response`. The top level runs once here, in a throw-away sandboxed state with
    /// the default [`Limits`], as Envoy runs it when loading the filter; errors name the
    /// script and line (`lua script 'ns.name': [string "..."]:3: ...`).
    pub fn compile(name: &str, code: &str) -> Result<LuaScript, LuaError> {
        let mut script = LuaScript {
            name: name.to_string(),
            code: code.into(),
            on_request: false,
            on_response: false,
        };
        let probe = LoadedState::load(name, code, Limits::default())?;
        script.on_request = probe.on_request.is_some();
        script.on_response = probe.on_response.is_some();
        Ok(script)
    }

    /// The name the script was compiled under, as errors and log lines show it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The script's source text.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Whether the script has `envoy_on_request` (the chain may skip request phases if not).
    pub fn has_on_request(&self) -> bool {
        self.on_request
    }

    /// Whether the script has `envoy_on_response`.
    pub fn has_on_response(&self) -> bool {
        self.on_response
    }
}
