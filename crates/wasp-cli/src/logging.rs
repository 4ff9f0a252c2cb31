//! Structured logs on stderr: text or JSON, with a level that the admin endpoint can change
//! at run time (`POST /logging?level=debug`).

use std::sync::Arc;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, reload};

/// Installs the subscriber. `WASP_LOG` (an `EnvFilter`, e.g. `info,wasp::plugin=debug`)
/// overrides `default`.
pub fn init(default: &str, json: bool) {
    let filter = EnvFilter::try_from_env("WASP_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let (filter, handle) = reload::Layer::new(filter);
    let format = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed()
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(format)
        .init();
    wasp_proxy::set_log_level_setter(Arc::new(move |level: &str| {
        let filter =
            EnvFilter::try_new(level).map_err(|e| format!("bad log filter {level:?}: {e}"))?;
        handle.reload(filter).map_err(|e| e.to_string())
    }));
}
