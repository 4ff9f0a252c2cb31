//! Errors of loading a script. Errors of running one are not Rust errors: they end the stream
//! phase with [`crate::Outcome::Error`], as Envoy answers them.

/// Why a script could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LuaError {
    /// Syntax error, or an error while running the script's top level. The message starts with
    /// `lua script '<name>':<line>:` like every Lua error of the script.
    #[error("{0}")]
    Script(String),
    /// The script defines neither `envoy_on_request` nor `envoy_on_response`.
    #[error("lua script '{0}' defines neither envoy_on_request nor envoy_on_response")]
    NoEntryPoint(String),
    /// The Lua state could not be set up (out of memory, say).
    #[error("lua state for script '{script}': {message}")]
    State { script: String, message: String },
}

/// The chunk name scripts are loaded under; Lua prefixes error positions with it, so errors
/// read `lua script 'ns.name':3: ...`.
pub(crate) fn chunk_name(script: &str) -> String {
    format!("=lua script '{script}'")
}

/// The text of a Lua failure, always naming the script and, where Lua knows it, the line.
pub(crate) fn describe(script: &str, error: &mlua::Error) -> String {
    let prefix = format!("lua script '{script}'");
    match error {
        mlua::Error::SyntaxError { message, .. } => with_prefix(&prefix, None, message),
        mlua::Error::RuntimeError(message) => with_prefix(&prefix, None, message),
        mlua::Error::MemoryError(_) => format!("{prefix}: memory limit exceeded"),
        mlua::Error::CallbackError { traceback, cause } => {
            // Errors raised by the Rust side of the API carry no position; the traceback has
            // the script's frames, the first of which is where the API was called.
            let line = line_in_traceback(&prefix, traceback);
            match innermost(cause) {
                mlua::Error::MemoryError(_) => format!("{prefix}: memory limit exceeded"),
                mlua::Error::RuntimeError(message) => with_prefix(&prefix, line, message),
                other => with_prefix(&prefix, line, &other.to_string()),
            }
        }
        other => with_prefix(&prefix, None, &other.to_string()),
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
        None => format!("{prefix}: {message}"),
    }
}

/// The first `lua script 'x':N:` position in a traceback.
fn line_in_traceback(prefix: &str, traceback: &str) -> Option<usize> {
    let at = traceback.find(&format!("{prefix}:"))? + prefix.len() + 1;
    let digits: String = traceback[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}
