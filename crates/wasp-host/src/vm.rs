//! A VM: one instance of a plugin module, with its contexts, driven callback by callback.
//!
//! The embedder owns each `Vm` on one thread (a worker) and calls it sequentially; nothing in
//! here blocks. Every guest call runs under a CPU deadline; a trap marks the VM failed (all
//! later calls answer [`CallError::Failed`] without entering the guest) so the embedder can
//! apply the plugin's failure policy and build a fresh VM.

use std::sync::Arc;

use wasmtime::{Store, Trap, TypedFunc};

use crate::abi::{AbiVersion, DataAction, HeadersAction, LogLevel, NetworkAction, TrailersAction};
use crate::embedder::{Effect, Embedder, HttpCallResponse, LogRecord};
use crate::engine::Host;
use crate::headers::HeaderMap;
use crate::module::PluginModule;
use crate::shared::QueueNotifier;
use crate::state::{Context, ContextKind, Delivery, Phase, RootContext, VmState};
use crate::stream::SharedHttpStream;
use crate::wasi::ProcExit;

/// How a VM is set up: Envoy's `vm_config`.
#[derive(Clone, Default)]
pub struct VmConfig {
    /// Plugins with the same vm_id share shared data and queues.
    pub vm_id: String,
    /// Handed to `proxy_on_vm_start`.
    pub configuration: Vec<u8>,
    /// The environment the plugin sees through WASI.
    pub env: Vec<(String, String)>,
    /// Schedules `on_queue_ready` for queues this VM registers.
    pub queue_notifier: Option<Arc<dyn QueueNotifier>>,
}

/// One plugin (root context) inside a VM.
#[derive(Debug, Clone, Default)]
pub struct PluginConfig {
    /// The plugin's name (`plugin_name` property).
    pub name: String,
    /// The root id the SDK dispatches on (Istio's `pluginName`).
    pub root_id: String,
    /// Handed to `proxy_on_configure`.
    pub configuration: Vec<u8>,
    /// Envoy's `allow_on_headers_stop_iteration`: Pause from a headers callback holds the
    /// headers but keeps delivering body chunks, instead of stopping everything.
    pub allow_headers_stop_iteration: bool,
}

/// Why a call into a VM did not complete.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("plugin {plugin:?} (vm {vm_id:?}) trapped in {callback}: {message}")]
    Trap {
        vm_id: String,
        plugin: String,
        callback: &'static str,
        message: String,
    },
    #[error("the VM failed earlier and can no longer be called: {0}")]
    Failed(Arc<str>),
    #[error("no context {0} in this VM")]
    UnknownContext(u32),
    #[error("{callback} returned false: the plugin refused to start")]
    Refused { callback: &'static str },
    #[error("cannot instantiate the module: {0}")]
    Instantiate(String),
}

enum HeadersFn {
    V1(TypedFunc<(u32, u32), u32>),
    V2(TypedFunc<(u32, u32, u32), u32>),
}

type F1 = TypedFunc<u32, ()>;
type F2 = TypedFunc<(u32, u32), ()>;
type F3 = TypedFunc<(u32, u32, u32), ()>;
type F1R = TypedFunc<u32, u32>;
type F2R = TypedFunc<(u32, u32), u32>;
type F3R = TypedFunc<(u32, u32, u32), u32>;
type F5 = TypedFunc<(u32, u32, u32, u32, u32), ()>;

/// The callbacks the module exports, resolved once.
struct Callbacks {
    context_create: Option<F2>,
    vm_start: Option<F2R>,
    configure: Option<F2R>,
    tick: Option<F1>,
    queue_ready: Option<F2>,
    request_headers: Option<HeadersFn>,
    request_body: Option<F3R>,
    request_trailers: Option<F2R>,
    response_headers: Option<HeadersFn>,
    response_body: Option<F3R>,
    response_trailers: Option<F2R>,
    http_call_response: Option<F5>,
    grpc_initial_metadata: Option<F3>,
    grpc_receive: Option<F3>,
    grpc_trailing_metadata: Option<F3>,
    grpc_close: Option<F3>,
    new_connection: Option<F1R>,
    done: Option<F1R>,
    log: Option<F1>,
    delete: Option<F1>,
}

/// A running instance of a plugin module.
pub struct Vm {
    store: Store<VmState>,
    callbacks: Callbacks,
    module: Arc<PluginModule>,
    failed: Option<Arc<str>>,
    callback_ticks: u64,
}

impl Vm {
    /// Instantiates the module and runs its start functions (`_initialize` then `main`, or
    /// `_start`), as cpp-host does.
    pub fn new(
        module: &Arc<PluginModule>,
        config: VmConfig,
        embedder: Box<dyn Embedder>,
    ) -> Result<Vm, CallError> {
        let host: &Host = &module.host;
        let state = VmState::new(
            host,
            module.abi(),
            Arc::from(config.vm_id.as_str()),
            Arc::from(config.configuration.as_slice()),
            config.env,
            embedder,
            config.queue_notifier,
        );
        let mut store = Store::new(host.engine(), state);
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(host.ticks(host.config().start_deadline));
        let instance = module
            .pre
            .instantiate(&mut store)
            .map_err(|e| CallError::Instantiate(format!("{e:#}")))?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| CallError::Instantiate("no exported memory".into()))?;
        // cpp-host and Kong look up malloc first; modules exporting both were tested that way.
        let allocator = instance
            .get_typed_func::<u32, u32>(&mut store, "malloc")
            .or_else(|_| {
                instance.get_typed_func::<u32, u32>(&mut store, "proxy_on_memory_allocate")
            })
            .map_err(|_| CallError::Instantiate("no allocator export".into()))?;
        store.data_mut().memory = Some(memory);
        store.data_mut().allocator = Some(allocator);

        let abi = module.abi();
        let get = |name: &str| instance.get_func(&mut store, name);
        let headers = |f: Option<wasmtime::Func>, store: &Store<VmState>| -> Option<HeadersFn> {
            let f = f?;
            if abi.is_v0_1() {
                f.typed(store).ok().map(HeadersFn::V1)
            } else {
                f.typed(store).ok().map(HeadersFn::V2)
            }
        };
        let funcs = [
            "proxy_on_context_create",
            "proxy_on_vm_start",
            "proxy_on_configure",
            "proxy_on_tick",
            "proxy_on_queue_ready",
            "proxy_on_request_headers",
            "proxy_on_request_body",
            "proxy_on_request_trailers",
            "proxy_on_response_headers",
            "proxy_on_response_body",
            "proxy_on_response_trailers",
            "proxy_on_http_call_response",
            "proxy_on_grpc_receive_initial_metadata",
            "proxy_on_grpc_receive",
            "proxy_on_grpc_receive_trailing_metadata",
            "proxy_on_grpc_close",
            "proxy_on_new_connection",
            "proxy_on_done",
            "proxy_on_log",
            "proxy_on_delete",
            "_initialize",
            "_start",
            "main",
            "__main_void",
        ]
        .map(get);
        let [
            context_create,
            vm_start,
            configure,
            tick,
            queue_ready,
            request_headers,
            request_body,
            request_trailers,
            response_headers,
            response_body,
            response_trailers,
            http_call_response,
            grpc_initial_metadata,
            grpc_receive,
            grpc_trailing_metadata,
            grpc_close,
            new_connection,
            done,
            log,
            delete,
            initialize,
            start,
            main,
            main_void,
        ] = funcs;
        // Signatures were checked when the module was loaded, so `typed` cannot fail here.
        macro_rules! typed {
            ($f:expr) => {
                $f.and_then(|f| f.typed(&store).ok())
            };
        }
        let callbacks = Callbacks {
            context_create: typed!(context_create),
            vm_start: typed!(vm_start),
            configure: typed!(configure),
            tick: typed!(tick),
            queue_ready: typed!(queue_ready),
            request_headers: headers(request_headers, &store),
            request_body: typed!(request_body),
            request_trailers: typed!(request_trailers),
            response_headers: headers(response_headers, &store),
            response_body: typed!(response_body),
            response_trailers: typed!(response_trailers),
            http_call_response: typed!(http_call_response),
            grpc_initial_metadata: typed!(grpc_initial_metadata),
            grpc_receive: typed!(grpc_receive),
            grpc_trailing_metadata: typed!(grpc_trailing_metadata),
            grpc_close: typed!(grpc_close),
            new_connection: typed!(new_connection),
            done: typed!(done),
            log: typed!(log),
            delete: typed!(delete),
        };
        let mut vm = Vm {
            store,
            callbacks,
            module: module.clone(),
            failed: None,
            callback_ticks: host.ticks(host.config().callback_deadline),
        };
        let initialize: Option<TypedFunc<(), ()>> =
            initialize.and_then(|f| f.typed(&vm.store).ok());
        let start: Option<TypedFunc<(), ()>> = start.and_then(|f| f.typed(&vm.store).ok());
        let main: Option<F2R> = main.and_then(|f| f.typed(&vm.store).ok());
        let main_void: Option<TypedFunc<(), u32>> = main_void.and_then(|f| f.typed(&vm.store).ok());
        if let Some(init) = initialize {
            vm.start_call("_initialize", |s| init.call(s, ()))?;
            if let Some(main) = main {
                vm.start_call("main", |s| main.call(s, (0, 0)).map(drop))?;
            } else if let Some(main_void) = main_void {
                vm.start_call("__main_void", |s| main_void.call(s, ()).map(drop))?;
            }
        } else if let Some(start) = start {
            vm.start_call("_start", |s| start.call(s, ()))?;
        }
        Ok(vm)
    }

    pub fn module(&self) -> &Arc<PluginModule> {
        &self.module
    }

    pub fn abi(&self) -> AbiVersion {
        self.module.abi()
    }

    /// Why the VM failed, if it did.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// Bytes of linear memory the VM uses now.
    pub fn memory_bytes(&mut self) -> usize {
        match self.store.data().memory {
            Some(memory) => memory.data_size(&self.store),
            None => 0,
        }
    }

    /// Takes the effects plugins asked for since the last call.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.store.data_mut().effects)
    }

    /// Creates a plugin's root context: `on_context_create(root, 0)`, `on_vm_start`,
    /// `on_configure`. Returns the root context id.
    pub fn start_plugin(&mut self, plugin: &PluginConfig) -> Result<u32, CallError> {
        let id = self.new_context_id();
        let root = RootContext {
            root_id: Arc::from(plugin.root_id.as_str()),
            plugin_name: Arc::from(plugin.name.as_str()),
            allow_headers_stop_iteration: plugin.allow_headers_stop_iteration,
        };
        self.store.data_mut().contexts.insert(
            id,
            Context {
                root: id,
                kind: ContextKind::Root(root),
            },
        );
        let start_ticks = self
            .module
            .host
            .ticks(self.module.host.config().start_deadline);
        if let Some(f) = self.callbacks.context_create.clone() {
            self.call_with(
                "proxy_on_context_create",
                id,
                Phase::VmStart,
                start_ticks,
                |s| f.call(s, (id, 0)),
            )?;
        }
        let vm_config_len = self.store.data().vm_configuration.len() as u32;
        if let Some(f) = self.callbacks.vm_start.clone() {
            let ok = self.call_with("proxy_on_vm_start", id, Phase::VmStart, start_ticks, |s| {
                f.call(s, (id, vm_config_len))
            })?;
            if ok == 0 {
                return Err(CallError::Refused {
                    callback: "proxy_on_vm_start",
                });
            }
        }
        let configuration: Arc<[u8]> = Arc::from(plugin.configuration.as_slice());
        if let Some(f) = self.callbacks.configure.clone() {
            let len = configuration.len() as u32;
            self.store.data_mut().plugin_configuration = Some(configuration);
            let result = self.call_with(
                "proxy_on_configure",
                id,
                Phase::Configure,
                start_ticks,
                |s| f.call(s, (id, len)),
            );
            self.store.data_mut().plugin_configuration = None;
            if result? == 0 {
                return Err(CallError::Refused {
                    callback: "proxy_on_configure",
                });
            }
        }
        Ok(id)
    }

    /// Creates an HTTP stream context under `root` (`on_context_create(id, root)`).
    pub fn create_http_stream(
        &mut self,
        root: u32,
        stream: SharedHttpStream,
    ) -> Result<u32, CallError> {
        self.check_root(root)?;
        let id = self.new_context_id();
        self.store.data_mut().contexts.insert(
            id,
            Context {
                root,
                kind: ContextKind::Http(stream),
            },
        );
        if let Some(f) = self.callbacks.context_create.clone() {
            self.call("proxy_on_context_create", id, Phase::Other, |s| {
                f.call(s, (id, root))
            })?;
        }
        Ok(id)
    }

    /// `proxy_on_request_headers`: the stream's request headers are in place.
    pub fn on_request_headers(
        &mut self,
        context: u32,
        end_of_stream: bool,
    ) -> Result<HeadersAction, CallError> {
        self.headers_callback(context, end_of_stream, true)
    }

    /// `proxy_on_response_headers`.
    pub fn on_response_headers(
        &mut self,
        context: u32,
        end_of_stream: bool,
    ) -> Result<HeadersAction, CallError> {
        self.headers_callback(context, end_of_stream, false)
    }

    /// `proxy_on_request_body`: `request_body` holds what the plugin should see.
    pub fn on_request_body(
        &mut self,
        context: u32,
        end_of_stream: bool,
    ) -> Result<DataAction, CallError> {
        self.body_callback(context, end_of_stream, true)
    }

    /// `proxy_on_response_body`.
    pub fn on_response_body(
        &mut self,
        context: u32,
        end_of_stream: bool,
    ) -> Result<DataAction, CallError> {
        self.body_callback(context, end_of_stream, false)
    }

    /// `proxy_on_request_trailers`.
    pub fn on_request_trailers(&mut self, context: u32) -> Result<TrailersAction, CallError> {
        self.trailers_callback(context, true)
    }

    /// `proxy_on_response_trailers`.
    pub fn on_response_trailers(&mut self, context: u32) -> Result<TrailersAction, CallError> {
        self.trailers_callback(context, false)
    }

    /// Ends a stream the way Envoy does for HTTP: `on_log`, `on_done`, `on_delete`, then
    /// forgets the context. Call it exactly once per stream, also when the client or the
    /// upstream went away. On a failed VM the context is just forgotten.
    pub fn finish_stream(&mut self, context: u32) -> Result<(), CallError> {
        if !self.store.data().contexts.contains_key(&context) {
            return Err(CallError::UnknownContext(context));
        }
        let result = self.end_context(context, true);
        self.store.data_mut().contexts.remove(&context);
        result
    }

    /// Shuts a root context down: `on_done`; if it returns true, `on_delete` and the root is
    /// gone (returns true). If it returns false the plugin will call `proxy_done` later
    /// ([`Effect::RootDone`]); then call [`Vm::delete_root`].
    pub fn shutdown_plugin(&mut self, root: u32) -> Result<bool, CallError> {
        self.check_root(root)?;
        let done = match self.callbacks.done.clone() {
            Some(f) => self.call("proxy_on_done", root, Phase::Log, |s| f.call(s, root))? != 0,
            None => true,
        };
        if done {
            self.delete_root(root)?;
        }
        Ok(done)
    }

    /// `on_delete` for a root context, which is then forgotten.
    pub fn delete_root(&mut self, root: u32) -> Result<(), CallError> {
        self.check_root(root)?;
        let result = match self.callbacks.delete.clone() {
            Some(f) => self.call("proxy_on_delete", root, Phase::Log, |s| f.call(s, root)),
            None => Ok(()),
        };
        self.store.data_mut().contexts.remove(&root);
        result
    }

    /// `proxy_on_tick` for a root context whose timer fired.
    pub fn on_tick(&mut self, root: u32) -> Result<(), CallError> {
        self.check_root(root)?;
        match self.callbacks.tick.clone() {
            Some(f) => self.call("proxy_on_tick", root, Phase::Root, |s| f.call(s, root)),
            None => Ok(()),
        }
    }

    /// `proxy_on_queue_ready` for a queue `root` registered.
    pub fn on_queue_ready(&mut self, root: u32, queue_id: u32) -> Result<(), CallError> {
        self.check_root(root)?;
        match self.callbacks.queue_ready.clone() {
            Some(f) => self.call("proxy_on_queue_ready", root, Phase::Root, |s| {
                f.call(s, (root, queue_id))
            }),
            None => Ok(()),
        }
    }

    /// Delivers the answer to an HTTP callout; `None` = the call failed (reset, timeout, no
    /// upstream), which the plugin sees as zero headers and, through `proxy_get_status`,
    /// Envoy's (BrokenConnection, "reset").
    pub fn on_http_call_response(
        &mut self,
        token: u32,
        response: Option<HttpCallResponse>,
    ) -> Result<(), CallError> {
        let Some(call) = self.store.data_mut().pending_calls.remove(&token) else {
            return Err(CallError::UnknownContext(token));
        };
        let Some(f) = self.callbacks.http_call_response.clone() else {
            return Ok(());
        };
        if !self.store.data().contexts.contains_key(&call.root) {
            return Ok(());
        }
        let (headers, body_len, trailers) = match &response {
            Some(r) => (
                r.headers.len() as u32,
                r.body.len() as u32,
                r.trailers.len() as u32,
            ),
            None => (0, 0, 0),
        };
        self.store.data_mut().delivery = match response {
            Some(r) => Delivery {
                headers: Some(r.headers),
                body: Some(r.body),
                trailers: Some(r.trailers),
                ..Delivery::default()
            },
            None => Delivery {
                status: Some((
                    crate::abi::Status::BrokenConnection.code(),
                    b"reset".to_vec(),
                )),
                ..Delivery::default()
            },
        };
        let root = call.root;
        let result = self.call("proxy_on_http_call_response", root, Phase::Root, |s| {
            f.call(s, (root, token, headers, body_len, trailers))
        });
        self.store.data_mut().delivery = Delivery::default();
        result
    }

    /// Delivers gRPC initial metadata.
    pub fn on_grpc_initial_metadata(
        &mut self,
        token: u32,
        metadata: HeaderMap,
    ) -> Result<(), CallError> {
        let f = self.callbacks.grpc_initial_metadata.clone();
        let n = metadata.len() as u32;
        let delivery = Delivery {
            headers: Some(metadata),
            ..Delivery::default()
        };
        self.grpc_event(
            "proxy_on_grpc_receive_initial_metadata",
            token,
            f,
            n,
            delivery,
            false,
        )
    }

    /// Delivers one gRPC message (buffer `GRPC_RECEIVE_BUFFER`).
    pub fn on_grpc_message(&mut self, token: u32, message: Vec<u8>) -> Result<(), CallError> {
        let f = self.callbacks.grpc_receive.clone();
        let n = message.len() as u32;
        let delivery = Delivery {
            body: Some(message),
            ..Delivery::default()
        };
        self.grpc_event("proxy_on_grpc_receive", token, f, n, delivery, false)
    }

    /// Delivers gRPC trailing metadata.
    pub fn on_grpc_trailing_metadata(
        &mut self,
        token: u32,
        metadata: HeaderMap,
    ) -> Result<(), CallError> {
        let f = self.callbacks.grpc_trailing_metadata.clone();
        let n = metadata.len() as u32;
        let delivery = Delivery {
            trailers: Some(metadata),
            ..Delivery::default()
        };
        self.grpc_event(
            "proxy_on_grpc_receive_trailing_metadata",
            token,
            f,
            n,
            delivery,
            false,
        )
    }

    /// Ends a gRPC call or stream with its status; the message is read with `proxy_get_status`.
    pub fn on_grpc_close(
        &mut self,
        token: u32,
        status: u32,
        message: &str,
    ) -> Result<(), CallError> {
        let f = self.callbacks.grpc_close.clone();
        let delivery = Delivery {
            status: Some((status, message.as_bytes().to_vec())),
            ..Delivery::default()
        };
        self.grpc_event("proxy_on_grpc_close", token, f, status, delivery, true)
    }

    /// `proxy_on_new_connection` for a TCP stream context.
    pub fn on_new_connection(&mut self, context: u32) -> Result<NetworkAction, CallError> {
        match self.callbacks.new_connection.clone() {
            Some(f) => Ok(NetworkAction::from_guest(self.call(
                "proxy_on_new_connection",
                context,
                Phase::Other,
                |s| f.call(s, context),
            )?)),
            None => Ok(NetworkAction::Continue),
        }
    }

    fn grpc_event(
        &mut self,
        callback: &'static str,
        token: u32,
        f: Option<F3>,
        arg: u32,
        delivery: Delivery,
        last: bool,
    ) -> Result<(), CallError> {
        let call = if last {
            self.store.data_mut().pending_calls.remove(&token)
        } else {
            self.store.data().pending_calls.get(&token).copied()
        };
        let Some(call) = call else {
            return Err(CallError::UnknownContext(token));
        };
        let Some(f) = f else { return Ok(()) };
        self.store.data_mut().delivery = delivery;
        let root = call.root;
        let result = self.call(callback, root, Phase::Root, |s| {
            f.call(s, (root, token, arg))
        });
        self.store.data_mut().delivery = Delivery::default();
        result
    }

    fn headers_callback(
        &mut self,
        context: u32,
        end_of_stream: bool,
        request: bool,
    ) -> Result<HeadersAction, CallError> {
        let (stream, allow) = self.stream_of(context)?;
        let f = if request {
            &self.callbacks.request_headers
        } else {
            &self.callbacks.response_headers
        };
        let Some(f) = f.as_ref().map(|f| match f {
            HeadersFn::V1(f) => HeadersFn::V1(f.clone()),
            HeadersFn::V2(f) => HeadersFn::V2(f.clone()),
        }) else {
            return Ok(HeadersAction::Continue);
        };
        let count = {
            let stream = stream.lock().unwrap_or_else(|e| e.into_inner());
            let map = if request {
                &stream.request_headers
            } else {
                &stream.response_headers
            };
            map.as_ref().map_or(0, HeaderMap::len) as u32
        };
        let (name, phase) = if request {
            ("proxy_on_request_headers", Phase::RequestHeaders)
        } else {
            ("proxy_on_response_headers", Phase::ResponseHeaders)
        };
        let eos = u32::from(end_of_stream);
        let value = self.call(name, context, phase, |s| match &f {
            HeadersFn::V1(f) => f.call(s, (context, count)),
            HeadersFn::V2(f) => f.call(s, (context, count, eos)),
        })?;
        if self.replied_locally(context) {
            // As cpp-host: stop everything, so no body chunk reaches a replied stream.
            return Ok(HeadersAction::StopAllIterationAndWatermark);
        }
        Ok(HeadersAction::from_guest(value, allow))
    }

    fn body_callback(
        &mut self,
        context: u32,
        end_of_stream: bool,
        request: bool,
    ) -> Result<DataAction, CallError> {
        let (stream, _) = self.stream_of(context)?;
        let f = if request {
            &self.callbacks.request_body
        } else {
            &self.callbacks.response_body
        };
        let Some(f) = f.clone() else {
            return Ok(DataAction::Continue);
        };
        let size = {
            let stream = stream.lock().unwrap_or_else(|e| e.into_inner());
            (if request {
                stream.request_body.len()
            } else {
                stream.response_body.len()
            }) as u32
        };
        let (name, phase) = if request {
            ("proxy_on_request_body", Phase::RequestBody)
        } else {
            ("proxy_on_response_body", Phase::ResponseBody)
        };
        self.store.data_mut().body_end_of_stream = end_of_stream;
        let value = self.call(name, context, phase, |s| {
            f.call(s, (context, size, u32::from(end_of_stream)))
        });
        self.store.data_mut().body_end_of_stream = false;
        let value = value?;
        if self.replied_locally(context) {
            return Ok(DataAction::StopIterationNoBuffer);
        }
        Ok(DataAction::from_guest(value))
    }

    fn trailers_callback(
        &mut self,
        context: u32,
        request: bool,
    ) -> Result<TrailersAction, CallError> {
        let (stream, _) = self.stream_of(context)?;
        let f = if request {
            &self.callbacks.request_trailers
        } else {
            &self.callbacks.response_trailers
        };
        let Some(f) = f.clone() else {
            return Ok(TrailersAction::Continue);
        };
        let count = {
            let stream = stream.lock().unwrap_or_else(|e| e.into_inner());
            let map = if request {
                &stream.request_trailers
            } else {
                &stream.response_trailers
            };
            map.as_ref().map_or(0, HeaderMap::len) as u32
        };
        let (name, phase) = if request {
            ("proxy_on_request_trailers", Phase::RequestTrailers)
        } else {
            ("proxy_on_response_trailers", Phase::ResponseTrailers)
        };
        let value = self.call(name, context, phase, |s| f.call(s, (context, count)))?;
        if self.replied_locally(context) {
            return Ok(TrailersAction::StopIteration);
        }
        Ok(TrailersAction::from_guest(value))
    }

    /// Envoy turns the callback's answer into "stop" once it asked for a local reply.
    fn replied_locally(&self, context: u32) -> bool {
        self.store
            .data()
            .effects
            .iter()
            .any(|e| matches!(e, Effect::LocalResponse { context: c, .. } if *c == context))
    }

    /// on_log, on_done, on_delete in Envoy's HTTP order (log first since envoy#12850).
    fn end_context(&mut self, context: u32, log_first: bool) -> Result<(), CallError> {
        if self.failed.is_some() {
            return Ok(());
        }
        let log = self.callbacks.log.clone();
        let done = self.callbacks.done.clone();
        let delete = self.callbacks.delete.clone();
        if log_first && let Some(f) = &log {
            self.call("proxy_on_log", context, Phase::Log, |s| f.call(s, context))?;
        }
        if let Some(f) = done {
            // A stream's on_done answer is ignored, as in Envoy.
            self.call("proxy_on_done", context, Phase::Log, |s| f.call(s, context))?;
        }
        if !log_first && let Some(f) = &log {
            self.call("proxy_on_log", context, Phase::Log, |s| f.call(s, context))?;
        }
        if let Some(f) = delete {
            self.call("proxy_on_delete", context, Phase::Log, |s| {
                f.call(s, context)
            })?;
        }
        Ok(())
    }

    fn stream_of(&self, context: u32) -> Result<(SharedHttpStream, bool), CallError> {
        let state = self.store.data();
        match state.contexts.get(&context) {
            Some(Context {
                kind: ContextKind::Http(stream),
                root,
            }) => {
                let allow = state
                    .root_of(*root)
                    .is_some_and(|r| r.allow_headers_stop_iteration);
                Ok((stream.clone(), allow))
            }
            _ => Err(CallError::UnknownContext(context)),
        }
    }

    fn check_root(&self, root: u32) -> Result<(), CallError> {
        match self.store.data().contexts.get(&root) {
            Some(Context {
                kind: ContextKind::Root(_),
                ..
            }) => Ok(()),
            _ => Err(CallError::UnknownContext(root)),
        }
    }

    fn new_context_id(&mut self) -> u32 {
        // Ids start at 1 and are never reused while the VM lives (0 is the VM itself).
        let state = self.store.data_mut();
        state.next_context_id += 1;
        state.next_context_id
    }

    fn start_call(
        &mut self,
        callback: &'static str,
        f: impl FnOnce(&mut Store<VmState>) -> wasmtime::Result<()>,
    ) -> Result<(), CallError> {
        let ticks = self
            .module
            .host
            .ticks(self.module.host.config().start_deadline);
        self.call_with(callback, 0, Phase::Start, ticks, f)
    }

    fn call<R>(
        &mut self,
        callback: &'static str,
        context: u32,
        phase: Phase,
        f: impl FnOnce(&mut Store<VmState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let ticks = self.callback_ticks;
        self.call_with(callback, context, phase, ticks, f)
    }

    /// Runs one guest call: sets the active context and phase, arms the CPU deadline, and
    /// turns a trap into a failed VM with a message that says what happened.
    fn call_with<R>(
        &mut self,
        callback: &'static str,
        context: u32,
        phase: Phase,
        ticks: u64,
        f: impl FnOnce(&mut Store<VmState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        if let Some(reason) = &self.failed {
            return Err(CallError::Failed(reason.clone()));
        }
        let state = self.store.data_mut();
        state.current = context;
        state.effective = 0;
        state.phase = phase;
        self.store.set_epoch_deadline(ticks);
        let result = f(&mut self.store);
        let state = self.store.data_mut();
        state.current = 0;
        state.effective = 0;
        state.phase = Phase::Other;
        result.map_err(|error| self.fail(callback, context, ticks, error))
    }

    fn fail(
        &mut self,
        callback: &'static str,
        context: u32,
        ticks: u64,
        error: wasmtime::Error,
    ) -> CallError {
        let host = &self.module.host;
        let state = self.store.data();
        let plugin = state
            .root_of(context)
            .map(|r| r.root_id.to_string())
            .unwrap_or_default();
        let mut message = if let Some(Trap::Interrupt) = error.downcast_ref::<Trap>() {
            let limit = host.config().epoch_tick * ticks as u32;
            format!("exceeded its CPU time limit of {limit:?} and was stopped")
        } else if let Some(ProcExit(code)) = error.downcast_ref::<ProcExit>() {
            format!("called proc_exit({code})")
        } else {
            format!("{error:?}")
        };
        if state.limits.memory_refused {
            message = format!(
                "reached its memory limit of {} MiB; {message}",
                state.limits.max_memory_bytes >> 20
            );
        }
        state.embedder.log(LogRecord {
            level: LogLevel::Critical,
            vm_id: &state.vm_id,
            plugin: &plugin,
            message: &format!("VM failed in {callback}: {message}"),
        });
        self.failed = Some(Arc::from(message.as_str()));
        CallError::Trap {
            vm_id: state.vm_id.to_string(),
            plugin,
            callback,
            message,
        }
    }
}
