//! Plugin log lines: the default sink and the level plugins are told about.

use crate::abi::LogLevel;

/// One line a plugin logged, with where it came from.
#[derive(Debug, Clone, Copy)]
pub struct LogRecord<'a> {
    /// The severity the plugin gave.
    pub level: LogLevel,
    /// The `vm_id` of the VM the plugin runs in (may be empty).
    pub vm_id: &'a str,
    /// The plugin (root id) whose context was active, empty during VM start-up.
    pub plugin: &'a str,
    /// The text, lossily decoded as UTF-8.
    pub message: &'a str,
}

/// Writes a plugin's log line to `tracing` (target `wasp::plugin`), tagged with the VM and
/// plugin it came from, as Envoy prefixes `wasm log <plugin> <root_id> <vm_id>:`.
pub fn to_tracing(record: LogRecord<'_>) {
    let LogRecord {
        level,
        vm_id,
        plugin,
        message,
    } = record;
    match level {
        LogLevel::Trace => tracing::trace!(target: "wasp::plugin", vm = vm_id, plugin, "{message}"),
        LogLevel::Debug => tracing::debug!(target: "wasp::plugin", vm = vm_id, plugin, "{message}"),
        LogLevel::Info => tracing::info!(target: "wasp::plugin", vm = vm_id, plugin, "{message}"),
        LogLevel::Warn => tracing::warn!(target: "wasp::plugin", vm = vm_id, plugin, "{message}"),
        // `tracing` has no level above error: a critical line is an error marked `critical`,
        // so the plugin's severity is kept in the record (text and JSON).
        LogLevel::Error => tracing::error!(target: "wasp::plugin", vm = vm_id, plugin, "{message}"),
        LogLevel::Critical => {
            tracing::error!(target: "wasp::plugin", vm = vm_id, plugin, critical = true, "{message}");
        }
    }
}

/// The most verbose level `tracing` would record for plugin lines.
pub fn tracing_level() -> LogLevel {
    use tracing::level_filters::LevelFilter;
    match LevelFilter::current() {
        LevelFilter::TRACE => LogLevel::Trace,
        LevelFilter::DEBUG => LogLevel::Debug,
        LevelFilter::INFO => LogLevel::Info,
        LevelFilter::WARN => LogLevel::Warn,
        // ERROR and OFF: plugins still report errors through the host.
        _ => LogLevel::Error,
    }
}
