//! wasp-host: a Proxy-Wasm host on wasmtime.
//!
//! It loads plugin modules built for the Proxy-Wasm ABI (0.1.0, 0.2.0, 0.2.1) by any SDK,
//! runs them in wasmtime's sandbox under CPU and memory limits, and drives them callback by
//! callback with Envoy's semantics. It knows nothing about sockets: the proxy that embeds it
//! supplies streams ([`HttpStream`]), carries out what plugins ask for ([`Effect`]) and
//! performs callouts ([`Embedder`]).
//!
//! ```no_run
//! use wasp_host::{Host, HostConfig, HttpStream, HeaderMap, NoopEmbedder, PluginConfig, Vm, VmConfig};
//! let host = Host::new(HostConfig::default())?;
//! let module = host.load_module(&std::fs::read("plugin.wasm")?)?;
//! let mut vm = Vm::new(&module, VmConfig::default(), Box::new(NoopEmbedder))?;
//! let root = vm.start_plugin(&PluginConfig { root_id: "my_root".into(), ..Default::default() })?;
//! let stream = HttpStream::shared(HeaderMap::from_pairs([(":method", "GET"), (":path", "/")]));
//! let ctx = vm.create_http_stream(root, stream.clone())?;
//! let action = vm.on_request_headers(ctx, true)?;
//! for effect in vm.take_effects() { /* resume, reply locally, arm timers… */ }
//! vm.finish_stream(ctx)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

pub mod abi;
mod cache;
pub mod codec;
mod connection;
mod embedder;
mod engine;
mod foreign;
mod headers;
mod hostcalls;
pub mod log;
mod memory;
mod module;
mod properties;
pub mod shared;
mod state;
mod stream;
mod vm;
pub(crate) mod wasi;

pub use abi::{
    AbiVersion, DataAction, HeadersAction, LogLevel, NetworkAction, PeerType, Status, StreamType,
    TrailersAction,
};
pub use cache::ModuleCache;
pub use codec::property::PropertyValue;
pub use connection::{ConnectionProperties, SharedConnection, TcpConnection};
pub use embedder::{
    CalloutError, Effect, Embedder, GrpcCallRequest, GrpcTarget, HttpCallRequest, HttpCallResponse,
    LocalResponse, NoopEmbedder,
};
pub use engine::{Host, HostConfig, HostError};
pub use foreign::NAMES as FOREIGN_FUNCTIONS;
pub use headers::HeaderMap;
pub use log::LogRecord;
pub use memory::OutOfBounds;
pub use module::{CodeSource, ImportInfo, LoadError, ModuleInfo, PluginModule};
pub use properties::from_headers as header_property;
pub use shared::{QueueNotifier, Shared};
pub use stream::{HttpStream, SharedHttpStream, StreamProperties};
pub use vm::{CallError, PluginConfig, Vm, VmConfig};
pub use wasi::ProcExit;
