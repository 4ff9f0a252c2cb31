//! Errors of loading a script. Errors of running one are not Rust errors: they end the stream
//! phase with [`crate::Outcome::Error`], as Envoy answers them.

/// Why a script could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LuaError {
    /// Syntax error, or an error while running the script's top level: Lua's message, which
    /// starts with the script's position as Envoy reports it (`[string "..."]:3:`).
    #[error("lua script '{script}': {message}")]
    Script {
        /// The name the script was compiled under.
        script: String,
        /// Lua's message, position included.
        message: String,
    },
    /// The script defines neither `envoy_on_request` nor `envoy_on_response`.
    #[error("lua script '{0}' defines neither envoy_on_request nor envoy_on_response")]
    NoEntryPoint(String),
    /// The Lua state could not be set up (out of memory, say).
    #[error("lua state for script '{script}': {message}")]
    State {
        /// The name the script was compiled under.
        script: String,
        /// What went wrong.
        message: String,
    },
}

/// The chunk name a script is loaded under: its source, as Envoy's `luaL_dostring` loads it,
/// so that error positions (which a script sees in `pcall`'s result and may pass on) read as
/// in Envoy: `[string "function envoy_on_request(handle)..."]:3: boom`. Lua keeps only the
/// first line. A C string ends at the first NUL, in Envoy too.
pub(crate) fn chunk_name(code: &str) -> &str {
    code.split('\0').next().unwrap_or_default()
}

/// Lua's short form of [`chunk_name`] (`short_src`), the prefix of every error position.
pub(crate) fn chunk_id(lua: &mlua::Lua, code: &str) -> mlua::Result<String> {
    let probe = lua.load("").set_name(chunk_name(code)).into_function()?;
    Ok(probe.info().short_src.unwrap_or_default())
}

/// The text of a Lua failure as Envoy gives it: Lua's message, which starts with the
/// script's position where Lua knows it; errors of the Rust side of the API get the position
/// of the script's line that called it (Envoy raises them with `luaL_error`, which adds it).
/// `chunk_id` is the script's [`chunk_id`].
pub(crate) fn describe(chunk_id: &str, error: &mlua::Error) -> String {
    let prefix = chunk_id;
    match error {
        mlua::Error::SyntaxError { message, .. } => with_prefix(prefix, None, message),
        mlua::Error::RuntimeError(message) => with_prefix(prefix, None, message),
        mlua::Error::MemoryError(_) => format!("{prefix}: memory limit exceeded"),
        mlua::Error::CallbackError { traceback, cause } => {
            // Errors raised by the Rust side of the API carry no position; the traceback has
            // the script's frames, the first of which is where the API was called.
            let line = line_in_traceback(prefix, traceback);
            match innermost(cause) {
                mlua::Error::MemoryError(_) => format!("{prefix}: memory limit exceeded"),
                mlua::Error::RuntimeError(message) => with_prefix(prefix, line, message),
                other => with_prefix(prefix, line, &other.to_string()),
            }
        }
        other => with_prefix(prefix, None, &other.to_string()),
    }
}

fn innermost(error: &mlua::Error) -> &mlua::Error {
    match error {
        mlua::Error::CallbackError { cause, .. } => innermost(cause),
        mlua::Error::WithContext { cause, .. } => innermost(cause),
        other => other,
    }
}

fn with_prefix(prefix: &str, line: Option<usize>, message: &str) -> String {
    // mlua appends Lua's traceback to runtime errors; the first line is the message.
    let message = message
        .split_once("\nstack traceback:")
        .map_or(message, |(m, _)| m);
    if message.starts_with(prefix) {
        return message.to_string();
    }
    match line {
        Some(line) => format!("{prefix}:{line}: {message}"),
        // Raised without a position (`error(msg, 0)`): Envoy's message is the bare text too.
        None => message.to_string(),
    }
}

/// The first `<chunk id>:N:` position in a traceback.
fn line_in_traceback(prefix: &str, traceback: &str) -> Option<usize> {
    let at = traceback.find(&format!("{prefix}:"))? + prefix.len() + 1;
    let digits: String = traceback[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}
