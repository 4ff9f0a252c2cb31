//! What a VM's store holds: its contexts, the call in progress, and the effects it produced.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::{Memory, ResourceLimiter, TypedFunc};

use crate::abi::AbiVersion;
use crate::connection::SharedConnection;
use crate::embedder::{Effect, Embedder};
use crate::headers::HeaderMap;
use crate::shared::{QueueNotifier, Shared};
use crate::stream::SharedHttpStream;

/// A plugin's identity and configuration inside a VM.
#[derive(Debug, Clone)]
pub(crate) struct RootContext {
    pub root_id: Arc<str>,
    pub plugin_name: Arc<str>,
    pub allow_headers_stop_iteration: bool,
}

pub(crate) enum ContextKind {
    Root(RootContext),
    Http(SharedHttpStream),
    Tcp(SharedConnection),
}

pub(crate) struct Context {
    /// The root context this one belongs to (itself for roots).
    pub root: u32,
    pub kind: ContextKind,
}

/// Which guest callback is running; decides what the hostcalls may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// `_initialize`, `main`, allocator calls outside a callback.
    Start,
    VmStart,
    Configure,
    RequestHeaders,
    RequestBody,
    RequestTrailers,
    ResponseHeaders,
    ResponseBody,
    ResponseTrailers,
    /// The callbacks of a TCP stream (new connection, data, close).
    Network,
    /// `on_log`, `on_done`, `on_delete`: maps are read-only.
    Log,
    /// Timers, queues, callout deliveries and other root-context events.
    Root,
    Other,
}

/// Data handed to the guest while a callout result or call data is being delivered.
#[derive(Default)]
pub(crate) struct Delivery {
    pub headers: Option<HeaderMap>,
    pub body: Option<Vec<u8>>,
    pub trailers: Option<HeaderMap>,
    /// gRPC status code and message for `proxy_get_status`.
    pub status: Option<(u32, Vec<u8>)>,
    /// Buffer 8: foreign-function arguments.
    pub call_data: Option<Vec<u8>>,
}

/// A callout in flight: who gets the answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingCall {
    pub root: u32,
    pub kind: CallKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallKind {
    Http = 0,
    GrpcCall = 1,
    GrpcStream = 2,
}

/// What a VM's state takes from the host that runs it (handed down, so that this module does
/// not reach up into the engine that stores it).
pub(crate) struct HostParts {
    pub shared: Arc<Shared>,
    pub max_memory_bytes: usize,
}

/// A property declared with `declare_property` (a foreign function).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Declared {
    pub readonly: bool,
}

/// Memory (and table) caps of one VM, and whether a cap was hit (to explain the trap).
pub(crate) struct Limits {
    pub max_memory_bytes: usize,
    pub max_table_elements: usize,
    pub memory_refused: bool,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_memory_bytes;
        if !allowed {
            self.memory_refused = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.max_table_elements)
    }
}

/// The store data of one VM.
pub(crate) struct VmState {
    pub abi: AbiVersion,
    pub vm_id: Arc<str>,
    pub env: Vec<(String, String)>,
    pub vm_configuration: Arc<[u8]>,
    pub memory: Option<Memory>,
    pub allocator: Option<TypedFunc<u32, u32>>,
    pub contexts: HashMap<u32, Context>,
    pub next_context_id: u32,
    /// The context whose callback is running (0 during start-up).
    pub current: u32,
    /// Set by `proxy_set_effective_context`; 0 = use `current`.
    pub effective: u32,
    pub phase: Phase,
    /// The plugin configuration, readable during `on_configure` only (as in Envoy).
    pub plugin_configuration: Option<Arc<[u8]>>,
    pub delivery: Delivery,
    pub effects: Vec<Effect>,
    pub pending_calls: HashMap<u32, PendingCall>,
    pub next_call_id: u32,
    pub limits: Limits,
    pub shared: Arc<Shared>,
    pub embedder: Box<dyn Embedder>,
    pub queue_notifier: Option<Arc<dyn QueueNotifier>>,
    /// Set while the guest allocator runs inside a hostcall: cpp-host allows only logging,
    /// clocks and sleeping then, since the guest is in the middle of a host operation.
    pub in_allocator: bool,
    /// The `end_of_stream` flag of the body callback in progress: only the last body
    /// callback may create trailers.
    pub body_end_of_stream: bool,
    /// Properties declared with the `declare_property` foreign function.
    pub declared_properties: HashMap<String, Declared>,
}

impl VmState {
    /// The context hostcalls act on: the effective one if set, else the running one.
    pub fn active_context(&self) -> u32 {
        if self.effective != 0 {
            self.effective
        } else {
            self.current
        }
    }

    pub fn root_of(&self, context: u32) -> Option<&RootContext> {
        let root = self.contexts.get(&context)?.root;
        match &self.contexts.get(&root)?.kind {
            ContextKind::Root(root) => Some(root),
            _ => None,
        }
    }

    /// The HTTP stream of the active context, if it is one.
    pub fn active_stream(&self) -> Option<&SharedHttpStream> {
        match &self.contexts.get(&self.active_context())?.kind {
            ContextKind::Http(stream) => Some(stream),
            _ => None,
        }
    }

    /// The TCP connection of the active context, if it is one.
    pub fn active_connection(&self) -> Option<&SharedConnection> {
        match &self.contexts.get(&self.active_context())?.kind {
            ContextKind::Tcp(connection) => Some(connection),
            _ => None,
        }
    }

    /// Runs `f` on the filter state of the active stream (HTTP or TCP); `None` for a root
    /// context, which has none.
    pub fn with_filter_state<R>(
        &self,
        f: impl FnOnce(&mut HashMap<Vec<u8>, Vec<u8>>) -> R,
    ) -> Option<R> {
        match &self.contexts.get(&self.active_context())?.kind {
            ContextKind::Http(stream) => Some(f(&mut stream
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .filter_state)),
            ContextKind::Tcp(connection) => Some(f(&mut connection
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .filter_state)),
            ContextKind::Root(_) => None,
        }
    }

    /// The plugin the active context belongs to, for log lines.
    pub fn active_plugin(&self) -> &str {
        self.root_of(self.active_context())
            .map(|r| &*r.root_id)
            .unwrap_or("")
    }

    pub fn new_call_token(&mut self, kind: CallKind) -> u32 {
        // Like cpp-host: one counter per VM, kind in the low two bits, first ids 4/5/6.
        self.next_call_id += 4;
        self.next_call_id | kind as u32
    }
}

impl VmState {
    pub(crate) fn new(
        host: HostParts,
        abi: AbiVersion,
        vm_id: Arc<str>,
        vm_configuration: Arc<[u8]>,
        env: Vec<(String, String)>,
        embedder: Box<dyn Embedder>,
        queue_notifier: Option<Arc<dyn QueueNotifier>>,
    ) -> VmState {
        VmState {
            abi,
            vm_id,
            env,
            vm_configuration,
            memory: None,
            allocator: None,
            contexts: HashMap::new(),
            next_context_id: 0,
            current: 0,
            effective: 0,
            phase: Phase::Start,
            plugin_configuration: None,
            delivery: Delivery::default(),
            effects: Vec::new(),
            pending_calls: HashMap::new(),
            next_call_id: 0,
            limits: Limits {
                max_memory_bytes: host.max_memory_bytes,
                max_table_elements: 1_000_000,
                memory_refused: false,
            },
            shared: host.shared,
            embedder,
            queue_notifier,
            in_allocator: false,
            body_end_of_stream: false,
            declared_properties: HashMap::new(),
        }
    }

    /// A state that belongs to no VM, for inspecting the linker.
    pub(crate) fn detached(host: HostParts) -> VmState {
        VmState::new(
            host,
            AbiVersion::V0_2_1,
            Arc::from(""),
            Arc::from(&[][..]),
            Vec::new(),
            Box::new(crate::embedder::NoopEmbedder),
            None,
        )
    }
}

impl crate::wasi::WasiView for VmState {
    fn wasi_env(&self) -> &[(String, String)] {
        &self.env
    }

    fn wasi_stdio(&mut self, fd: u32, bytes: &[u8]) {
        let message = String::from_utf8_lossy(bytes);
        self.embedder.log(crate::log::LogRecord {
            level: if fd == 2 {
                crate::abi::LogLevel::Error
            } else {
                crate::abi::LogLevel::Info
            },
            vm_id: &self.vm_id,
            plugin: self.active_plugin(),
            message: &message,
        });
    }
}
