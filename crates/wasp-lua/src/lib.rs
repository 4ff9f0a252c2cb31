//! Envoy's Lua HTTP filter (`envoy.filters.http.lua`) as a library that knows nothing about
//! sockets, so the data plane can put Lua scripts into the same chain as Proxy-Wasm plugins.
//!
//! - [`LuaScript::compile`] checks a script once (syntax, `envoy_on_request` /
//!   `envoy_on_response`).
//! - [`LuaWorker::new`] makes the one sandboxed Lua state a worker thread keeps per script
//!   (globals are per worker, as in Envoy), with a memory limit and an instruction budget.
//! - [`LuaWorker::new_stream`] starts a [`LuaStream`] over the data plane's [`StreamAccess`];
//!   each filter phase is a method that returns an [`Outcome`] for the chain to carry out.
//!
//! `envoy_on_request(handle)` / `envoy_on_response(handle)` run as Lua coroutines: the
//! handle's blocking calls (`body()`, `bodyChunks()`, `trailers()`, `httpCall()`,
//! `respond()`) yield back to Rust, which turns the yield into an [`Outcome`] and resumes the
//! coroutine when the chain calls the next phase (or [`LuaStream::on_http_call_response`]).

#![deny(missing_docs)]

mod access;
mod api;
mod error;
mod loaded;
mod outcome;
mod sandbox;
mod script;
mod state;
mod stream;
mod worker;

pub use access::{
    Direction, DynamicMetadata, HeaderAccess, HeaderBlock, Headers, MemoryStream, MetadataValue,
    SslInfo, StreamAccess, StreamInfo,
};
pub use api::log::{LogLevel, LogSink};
pub use error::LuaError;
pub use outcome::{CallRequest, CallResponse, LocalReply, Outcome};
pub use sandbox::Limits;
pub use script::LuaScript;
pub use stream::LuaStream;
pub use worker::LuaWorker;

/// The Lua flavour this build runs (`"Lua 5.4"` or `"LuaJIT"`), chosen by the crate features.
pub const LUA_FLAVOUR: &str = if cfg!(feature = "luajit") {
    "LuaJIT"
} else {
    "Lua 5.4"
};
