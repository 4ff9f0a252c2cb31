//! `logTrace` … `logCritical` and where their lines go.

use std::rc::Rc;

/// Envoy's log levels, as the script names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// `handle:logTrace()`.
    Trace,
    /// `handle:logDebug()`.
    Debug,
    /// `handle:logInfo()`.
    Info,
    /// `handle:logWarn()`.
    Warn,
    /// `handle:logErr()`.
    Error,
    /// `handle:logCritical()`; the default sink logs it as a `tracing` error marked `critical`.
    Critical,
}

/// Receives every line a script logs: level, script name, message. One per worker state
/// ([`crate::LuaWorker::set_log_sink`]); the default writes to `tracing` (target `wasp::lua`).
pub type LogSink = Rc<dyn Fn(LogLevel, &str, &str)>;

/// The default sink.
pub(crate) fn to_tracing() -> LogSink {
    Rc::new(|level, script, message| match level {
        LogLevel::Trace => tracing::trace!(target: "wasp::lua", script, "{message}"),
        LogLevel::Debug => tracing::debug!(target: "wasp::lua", script, "{message}"),
        LogLevel::Info => tracing::info!(target: "wasp::lua", script, "{message}"),
        LogLevel::Warn => tracing::warn!(target: "wasp::lua", script, "{message}"),
        LogLevel::Error | LogLevel::Critical => {
            tracing::error!(target: "wasp::lua", script, critical = level == LogLevel::Critical, "{message}");
        }
    })
}

/// The handle's method names for each level.
pub(crate) const METHODS: [(&str, LogLevel); 6] = [
    ("logTrace", LogLevel::Trace),
    ("logDebug", LogLevel::Debug),
    ("logInfo", LogLevel::Info),
    ("logWarn", LogLevel::Warn),
    ("logErr", LogLevel::Error),
    ("logCritical", LogLevel::Critical),
];
