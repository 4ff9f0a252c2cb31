//! wasp-proxy: the data plane. Listeners, routes and clusters; worker threads that each run
//! their own event loop and their own VM of every plugin; the plugin filter chain with
//! Envoy's semantics; HTTP and gRPC callouts; the admin endpoint and metrics.
//!
//! It takes a validated [`spec::ProxySpec`] (the configuration layer builds it) and a
//! [`wasp_host::Host`], and runs until [`Proxy::shutdown`].

mod admin;
mod body;
mod chain;
mod convert;
mod grpc;
mod lua;
mod plugins;
mod properties;
mod routes;
mod runtime;
mod serve;
mod server;
mod signals;
pub mod spec;
mod stats;
mod tls;
mod upstream;
mod vms;
mod worker;

pub use admin::{LogLevelSetter, set_log_level_setter};
pub use plugins::PluginStatus;
pub use runtime::{MetricSource, Proxy, StartError};
