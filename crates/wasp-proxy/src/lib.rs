//! wasp-proxy: the data plane. Listeners, routes and clusters; worker threads that each run
//! their own event loop and their own VM of every plugin; the plugin filter chain with
//! Envoy's semantics; HTTP and gRPC callouts; the admin endpoint and metrics.
//!
//! It takes a validated [`spec::ProxySpec`] (the configuration layer builds it) and a
//! [`wasp_host::Host`], and runs until [`Proxy::shutdown`].
//!
//! The folders follow a request: `listener/` accepts connections (TLS, HTTP/1.1 and HTTP/2)
//! and hands each request to `stream/`, which routes it, drives it through its `filter/`
//! chain (Wasm plugins and Lua scripts behind one seam) and exchanges it with `upstream/`
//! (connection pools, callouts). `plugins/` holds the published plugin set and each worker's
//! VMs of it, `worker/` the per-thread loop that carries out what plugins ask for, and
//! `admin/` the admin endpoint. `runtime.rs` starts and stops it all.

#![deny(missing_docs)]

mod access_log;
mod admin;
mod body;
pub mod convert;
mod error;
mod filter;
mod flags;
mod generation;
mod listener;
mod plugins;
mod reload;
mod routes;
mod runtime;
mod shared;
mod stats;
mod stream;
mod tcp;
mod upstream;
mod worker;

/// The spec types, which the configuration layer builds (`wasp-spec`).
pub use wasp_spec as spec;

pub use admin::{LogLevelSetter, set_log_level_setter};
pub use error::StartError;
pub use plugins::set::PluginStatus;
pub use reload::Reloaded;
pub use runtime::Proxy;
pub use shared::MetricSource;
pub use upstream::ClusterError;
