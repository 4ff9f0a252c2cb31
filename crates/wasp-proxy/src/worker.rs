//! A worker: one thread, one event loop, its own VMs of every plugin, its own upstream pools.
//! Streams never leave the worker that accepted their connection.
//!
//! Plugins that Envoy would put in one VM share one here too: same `vm_id`, VM configuration,
//! environment and module (Envoy's "vm key"). Each plugin has its own root context in that VM;
//! a trap fails the VM and with it every plugin in it, as in Envoy.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use wasp_host::{
    CallError, CalloutError, Effect, Embedder, GrpcCallRequest, HttpCallRequest, HttpCallResponse,
    LogRecord, PluginConfig, PropertyValue, QueueNotifier, StreamType, Vm, VmConfig,
};

use crate::body::ChannelBody;
use crate::runtime::{PluginShared, Shared};
use crate::signals::{Direction, StreamSignals};
use crate::spec::FailStrategy;
use crate::upstream::Upstreams;

/// Work a plugin asked for from inside a hostcall, carried out on the worker's loop. `vm` is
/// the index of the VM (see [`Worker::vms`]) whose plugin asked.
pub(crate) enum Command {
    HttpCall {
        vm: usize,
        generation: u64,
        request: HttpCallRequest,
    },
    GrpcCall {
        vm: usize,
        generation: u64,
        request: GrpcCallRequest,
    },
    GrpcSend {
        vm: usize,
        token: u32,
        message: Vec<u8>,
        end_stream: bool,
    },
    /// Cancel (`true`) or half-close (`false`) a gRPC call or stream.
    GrpcEnd {
        vm: usize,
        token: u32,
        cancel: bool,
    },
    QueueReady {
        vm: usize,
        root: u32,
        queue_id: u32,
    },
}

/// One VM on this worker, shared by the plugins of one [`VmGroup`].
pub(crate) enum VmSlot {
    Ready {
        // Boxed: a VM's store is large and the other variant is empty.
        vm: Box<Vm>,
        /// Each member plugin's root context; `None`: that plugin refused to start.
        roots: Vec<Option<u32>>,
        generation: u64,
    },
    /// The module could not be loaded or the VM did not start.
    Unavailable,
}

/// Which plugins share a VM: indexes into `Shared::plugins`, in chain order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VmGroup {
    pub members: Vec<usize>,
}

/// Groups plugins the way Envoy keys its VMs: equal `vm_id`, VM configuration, environment
/// and module bytes share one VM. (Envoy leaves the environment out of its key, so the first
/// plugin's environment would win; wasp gives differing environments their own VM.)
pub(crate) fn group_plugins(plugins: &[PluginShared]) -> Vec<VmGroup> {
    let mut groups: Vec<VmGroup> = Vec::new();
    for (i, p) in plugins.iter().enumerate() {
        let same_vm = |g: &&mut VmGroup| {
            let first = &plugins[g.members[0]].spec;
            first.vm_id == p.spec.vm_id
                && first.vm_configuration == p.spec.vm_configuration
                && first.env == p.spec.env
                && (Arc::ptr_eq(&first.wasm, &p.spec.wasm) || first.wasm == p.spec.wasm)
        };
        match groups.iter_mut().find(same_vm) {
            Some(g) => g.members.push(i),
            None => groups.push(VmGroup { members: vec![i] }),
        }
    }
    groups
}

/// How a callback into a plugin ended, from the stream's point of view.
pub(crate) enum Step<T> {
    Done(T),
    /// The plugin is skipped for this stream (fail open).
    Skip,
    /// The stream must be answered with this status (fail closed).
    Fail(u16),
}

/// Where a stream context's effects go: (VM, context id) → the stream's signals and the
/// plugin's position in its chain.
type StreamRoutes = HashMap<(usize, u32), (Weak<StreamSignals>, usize)>;

/// Open gRPC callouts by (VM, token): the sender of a stream's messages, and the task.
type GrpcCallouts =
    HashMap<(usize, u32), (Option<crate::body::BodySender>, tokio::task::JoinHandle<()>)>;

pub(crate) struct Worker {
    pub id: usize,
    pub shared: Arc<Shared>,
    pub upstreams: Upstreams,
    vms: Vec<RefCell<VmSlot>>,
    /// Per plugin: the index of its VM and its place among that VM's members.
    placement: Vec<(usize, usize)>,
    streams: RefCell<StreamRoutes>,
    timers: RefCell<HashMap<(usize, u32), tokio::task::JoinHandle<()>>>,
    commands: mpsc::UnboundedSender<Command>,
    next_reload: RefCell<HashMap<usize, Instant>>,
    /// Open gRPC callouts: where a stream's next message goes, and the task to cancel.
    grpc: RefCell<GrpcCallouts>,
    me: Weak<Worker>,
}

impl Worker {
    /// Builds the worker's VMs and starts its command loop. Runs on the worker thread.
    pub fn start(id: usize, shared: Arc<Shared>) -> Rc<Worker> {
        let (commands, rx) = mpsc::unbounded_channel();
        let mut placement = vec![(0, 0); shared.plugins.len()];
        for (v, group) in shared.vm_groups.iter().enumerate() {
            for (m, &plugin) in group.members.iter().enumerate() {
                placement[plugin] = (v, m);
            }
        }
        let vms = (0..shared.vm_groups.len())
            .map(|v| RefCell::new(build_vm(&shared, &commands, id, v, 1)))
            .collect();
        let worker = Rc::new_cyclic(|me| Worker {
            id,
            // Proxy::start already built every cluster once, so this only fails if a CA file
            // vanished since; the worker then serves without clusters and says why.
            upstreams: Upstreams::new(&shared.spec.clusters).unwrap_or_else(|e| {
                tracing::error!(worker = id, "{e}");
                Upstreams::default()
            }),
            shared,
            vms,
            placement,
            streams: RefCell::default(),
            timers: RefCell::default(),
            commands,
            next_reload: RefCell::default(),
            grpc: RefCell::default(),
            me: me.clone(),
        });
        tokio::task::spawn_local(command_loop(Rc::downgrade(&worker), rx));
        // Timers armed during start-up (on_configure) were recorded before the worker existed.
        for v in 0..worker.vms.len() {
            worker.after_call(v);
        }
        worker
    }

    pub fn plugin(&self, plugin: usize) -> &PluginShared {
        &self.shared.plugins[plugin]
    }

    /// The plugin whose root context `root` is in VM `vm`.
    fn owner(&self, vm: usize, root: u32) -> Option<usize> {
        match &*self.vms[vm].borrow() {
            VmSlot::Ready { roots, .. } => {
                let member = roots.iter().position(|r| *r == Some(root))?;
                Some(self.shared.vm_groups[vm].members[member])
            }
            VmSlot::Unavailable => None,
        }
    }

    /// Creates a stream context in `plugin`'s VM and registers where its effects go.
    pub fn open_stream(
        &self,
        plugin: usize,
        stream: &wasp_host::SharedHttpStream,
        signals: &Rc<StreamSignals>,
        position: usize,
    ) -> Step<(u32, u64)> {
        self.maybe_reload(plugin);
        let (v, member) = self.placement[plugin];
        let result = {
            let mut slot = self.vms[v].borrow_mut();
            match &mut *slot {
                VmSlot::Ready {
                    vm,
                    roots,
                    generation,
                } if vm.failure().is_none() => {
                    let Some(root) = roots[member] else {
                        drop(slot);
                        return self.unavailable(plugin);
                    };
                    let generation = *generation;
                    vm.create_http_stream(root, stream.clone())
                        .map(|ctx| (ctx, generation))
                }
                VmSlot::Ready { vm, .. } => {
                    Err(CallError::Failed(vm.failure().unwrap_or_default().into()))
                }
                VmSlot::Unavailable => {
                    drop(slot);
                    return self.unavailable(plugin);
                }
            }
        };
        match result {
            Ok((ctx, generation)) => {
                self.streams
                    .borrow_mut()
                    .insert((v, ctx), (Rc::downgrade(signals), position));
                self.after_call(v);
                Step::Done((ctx, generation))
            }
            Err(e) => self.failed(plugin, e),
        }
    }

    /// Runs one callback of `plugin` in its VM.
    pub fn call<T>(
        &self,
        plugin: usize,
        generation: u64,
        f: impl FnOnce(&mut Vm) -> Result<T, CallError>,
    ) -> Step<T> {
        let stats = &self.shared.plugins[plugin].stats;
        let v = self.placement[plugin].0;
        let started = Instant::now();
        let result = {
            let mut slot = self.vms[v].borrow_mut();
            match &mut *slot {
                VmSlot::Ready {
                    vm, generation: g, ..
                } if *g == generation => f(vm),
                // The VM was replaced (FAIL_RELOAD) after this stream started: its contexts
                // are gone with the old VM.
                VmSlot::Ready { .. } => {
                    Err(CallError::Failed("the plugin's VM was replaced".into()))
                }
                VmSlot::Unavailable => {
                    drop(slot);
                    return self.unavailable(plugin);
                }
            }
        };
        stats.calls.fetch_add(1, Relaxed);
        stats
            .call_time_us
            .fetch_add(started.elapsed().as_micros() as u64, Relaxed);
        self.after_call(v);
        match result {
            Ok(v) => Step::Done(v),
            Err(e) => self.failed(plugin, e),
        }
    }

    /// Ends a stream's context (on_log, on_done, on_delete) and forgets where it was.
    pub fn close_stream(&self, plugin: usize, ctx: u32, generation: u64) {
        let v = self.placement[plugin].0;
        self.streams.borrow_mut().remove(&(v, ctx));
        let _ = self.call(plugin, generation, |vm| vm.finish_stream(ctx));
    }

    fn unavailable<T>(&self, plugin: usize) -> Step<T> {
        match self.plugin(plugin).spec.fail_strategy {
            FailStrategy::FailOpen => Step::Skip,
            // Istio answers requests of a plugin that could not be loaded with 403.
            FailStrategy::FailClose | FailStrategy::FailReload => Step::Fail(403),
        }
    }

    fn failed<T>(&self, plugin: usize, error: CallError) -> Step<T> {
        let p = self.plugin(plugin);
        if matches!(error, CallError::Trap { .. }) {
            p.stats.failures.fetch_add(1, Relaxed);
            // The trap failed the VM, and so every plugin that shares it.
            let v = self.placement[plugin].0;
            for &member in &self.shared.vm_groups[v].members {
                self.plugin(member).set_failed(&error.to_string());
            }
            tracing::error!(plugin = %p.spec.name, worker = self.id, "{error}");
        }
        match p.spec.fail_strategy {
            FailStrategy::FailOpen => Step::Skip,
            // Envoy fails the stream with 503 (wasm_fail_stream).
            FailStrategy::FailClose | FailStrategy::FailReload => Step::Fail(503),
        }
    }

    /// FAIL_RELOAD: a failed VM is replaced by a fresh one (with every plugin that shares it),
    /// at most once per backoff period.
    fn maybe_reload(&self, plugin: usize) {
        if self.plugin(plugin).spec.fail_strategy != FailStrategy::FailReload {
            return;
        }
        let v = self.placement[plugin].0;
        let generation = match &*self.vms[v].borrow() {
            VmSlot::Ready { vm, generation, .. } if vm.failure().is_some() => *generation,
            _ => return,
        };
        let now = Instant::now();
        let mut next = self.next_reload.borrow_mut();
        if next.get(&v).is_some_and(|at| now < *at) {
            return;
        }
        next.insert(v, now + Duration::from_secs(1));
        drop(next);
        tracing::warn!(plugin = %self.plugin(plugin).spec.name, worker = self.id, "replacing the failed VM (FAIL_RELOAD)");
        let slot = build_vm(&self.shared, &self.commands, self.id, v, generation + 1);
        *self.vms[v].borrow_mut() = slot;
        self.after_call(v);
    }

    /// Carries out what the plugins of VM `v` asked for during the call that just returned.
    fn after_call(&self, v: usize) {
        let effects = match &mut *self.vms[v].borrow_mut() {
            VmSlot::Ready { vm, .. } => vm.take_effects(),
            VmSlot::Unavailable => return,
        };
        self.dispatch(v, effects);
    }

    fn dispatch(&self, v: usize, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Continue { context, stream } => {
                    let direction = match stream {
                        StreamType::HttpResponse => Direction::Response,
                        _ => Direction::Request,
                    };
                    if let Some((signals, pos)) = self.stream_signals(v, context) {
                        signals.resume(pos, direction);
                    }
                }
                Effect::Close { context, .. } => {
                    if let Some((signals, _)) = self.stream_signals(v, context) {
                        signals.reset();
                    }
                }
                Effect::LocalResponse { context, response } => {
                    if let Some((signals, pos)) = self.stream_signals(v, context) {
                        signals.local_reply(pos, response);
                    }
                }
                Effect::TickPeriod {
                    root_context,
                    period,
                } => self.set_timer(v, root_context, period),
                // Routes are chosen after the plugins' request headers phase, so a cleared
                // route cache has nothing to clear.
                Effect::ClearRouteCache { .. } => {}
                Effect::RootDone { root_context } => {
                    if let VmSlot::Ready { vm, .. } = &mut *self.vms[v].borrow_mut() {
                        let _ = vm.delete_root(root_context);
                    }
                }
            }
        }
    }

    fn stream_signals(&self, v: usize, context: u32) -> Option<(Rc<StreamSignals>, usize)> {
        let streams = self.streams.borrow();
        let (weak, pos) = streams.get(&(v, context))?;
        Some((weak.upgrade()?, *pos))
    }

    fn set_timer(&self, v: usize, root: u32, period: Option<Duration>) {
        if let Some(old) = self.timers.borrow_mut().remove(&(v, root)) {
            old.abort();
        }
        let Some(period) = period else { return };
        let weak = self.me.clone();
        let handle = tokio::task::spawn_local(async move {
            let mut interval =
                tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                interval.tick().await;
                let Some(worker) = weak.upgrade() else { return };
                worker.root_call(v, root, |vm| vm.on_tick(root));
            }
        });
        self.timers.borrow_mut().insert((v, root), handle);
    }

    /// A call on a root context of VM `v` (timers, queues, callout answers), counted for the
    /// plugin that owns the root context.
    fn root_call(&self, v: usize, root: u32, f: impl FnOnce(&mut Vm) -> Result<(), CallError>) {
        let generation = match &*self.vms[v].borrow() {
            VmSlot::Ready { generation, .. } => *generation,
            VmSlot::Unavailable => return,
        };
        let Some(plugin) = self.owner(v, root) else {
            return;
        };
        let _ = self.call(plugin, generation, f);
    }
}

/// Instantiates VM `v` for a worker and starts each of its plugins in it, in chain order.
fn build_vm(
    shared: &Shared,
    commands: &mpsc::UnboundedSender<Command>,
    worker: usize,
    v: usize,
    generation: u64,
) -> VmSlot {
    let members = &shared.vm_groups[v].members;
    let first = &shared.plugins[members[0]];
    let fail_all = |error: &str| {
        for &m in members {
            shared.plugins[m].set_failed(error);
        }
        tracing::error!(plugin = %first.spec.name, worker, "plugin failed to start: {error}");
        VmSlot::Unavailable
    };
    // A module that did not load is already reported as unavailable (Proxy::start).
    let Ok(module) = &first.module else {
        return VmSlot::Unavailable;
    };
    let embedder = WorkerEmbedder {
        vm: v,
        generation,
        name: first.spec.name.clone(),
        commands: commands.clone(),
        clusters: shared.cluster_names.clone(),
        node: shared.node_properties.clone(),
    };
    let notifier: Arc<dyn QueueNotifier> = Arc::new(WorkerQueues {
        vm: v,
        commands: commands.clone(),
    });
    let config = VmConfig {
        vm_id: first.spec.vm_id.clone(),
        configuration: first.spec.vm_configuration.clone(),
        env: first.spec.env.clone(),
        queue_notifier: Some(notifier),
    };
    let mut vm = match Vm::new(module, config, Box::new(embedder)) {
        Ok(vm) => vm,
        Err(e) => return fail_all(&e.to_string()),
    };
    let mut roots = Vec::with_capacity(members.len());
    for &m in members {
        let p = &shared.plugins[m];
        let started = vm.start_plugin(&PluginConfig {
            name: p.spec.name.clone(),
            root_id: p.spec.root_id.clone(),
            configuration: p.spec.configuration.clone(),
            allow_headers_stop_iteration: false,
        });
        match started {
            Ok(root) => roots.push(Some(root)),
            // A trap fails the VM: no plugin in it can run (Envoy: the VM is failed).
            Err(e @ CallError::Trap { .. }) => return fail_all(&e.to_string()),
            // One plugin refusing its configuration leaves the others of the VM running.
            Err(e) => {
                p.set_failed(&e.to_string());
                tracing::error!(plugin = %p.spec.name, worker, "plugin failed to start: {e}");
                roots.push(None);
            }
        }
    }
    VmSlot::Ready {
        vm: Box::new(vm),
        roots,
        generation,
    }
}

async fn command_loop(worker: Weak<Worker>, mut rx: mpsc::UnboundedReceiver<Command>) {
    while let Some(command) = rx.recv().await {
        let Some(w) = worker.upgrade() else { return };
        match command {
            Command::HttpCall {
                vm,
                generation,
                request,
            } => {
                let Some(plugin) = w.owner(vm, request.root_context) else {
                    continue;
                };
                let weak = worker.clone();
                tokio::task::spawn_local(async move {
                    let Some(w) = weak.upgrade() else { return };
                    let token = request.token;
                    let response = http_callout(&w, request).await;
                    w.call(plugin, generation, |vm| {
                        vm.on_http_call_response(token, response)
                    });
                });
            }
            Command::GrpcCall {
                vm,
                generation,
                request,
            } => {
                let Some(plugin) = w.owner(vm, request.root_context) else {
                    continue;
                };
                let key = (vm, request.token);
                let (sender, body) = match &request.message {
                    Some(message) => (None, ChannelBody::full(crate::grpc::frame(message))),
                    None => {
                        let (tx, body) = ChannelBody::channel();
                        (Some(tx), body)
                    }
                };
                let task = tokio::task::spawn_local(crate::grpc::exchange(
                    w.clone(),
                    plugin,
                    generation,
                    request,
                    body,
                ));
                w.grpc.borrow_mut().insert(key, (sender, task));
            }
            Command::GrpcSend {
                vm,
                token,
                message,
                end_stream,
            } => {
                let sender = w
                    .grpc
                    .borrow_mut()
                    .get_mut(&(vm, token))
                    .and_then(|(tx, _)| if end_stream { tx.take() } else { tx.clone() });
                if let Some(tx) = sender {
                    let _ = tx
                        .send(Ok(http_body::Frame::data(crate::grpc::frame(&message))))
                        .await;
                }
            }
            Command::GrpcEnd { vm, token, cancel } => {
                let mut grpc = w.grpc.borrow_mut();
                if cancel {
                    if let Some((_, task)) = grpc.remove(&(vm, token)) {
                        task.abort();
                    }
                } else if let Some((tx, _)) = grpc.get_mut(&(vm, token)) {
                    // Half-close: the request body ends; answers still arrive.
                    tx.take();
                }
            }
            Command::QueueReady { vm, root, queue_id } => {
                w.root_call(vm, root, |vm| vm.on_queue_ready(root, queue_id));
            }
        }
    }
}

/// Callout bodies are buffered whole; this caps them (Envoy's default buffer limit).
const CALLOUT_BODY_LIMIT: usize = 1 << 20;

async fn http_callout(worker: &Worker, request: HttpCallRequest) -> Option<HttpCallResponse> {
    let (endpoint, scheme) = worker.upstreams.pick(&request.cluster).ok()?;
    let mut body = ChannelBody::full(Bytes::from(request.body));
    // Sent as Envoy's async client does (an HTTP/1 upstream drops them, as Envoy's codec).
    if !request.trailers.is_empty() {
        body = body.with_trailers(crate::convert::to_http_headers(&request.trailers, false).ok()?);
    }
    let req =
        crate::convert::upstream_request(&request.headers, body, scheme, Some(&endpoint)).ok()?;
    let response = match worker
        .upstreams
        .send(&request.cluster, req, request.timeout)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(cluster = %request.cluster, "http callout failed: {e}");
            return None;
        }
    };
    let headers = crate::convert::response_headers(&response);
    let collected = http_body_util::Limited::new(response.into_body(), CALLOUT_BODY_LIMIT)
        .collect()
        .await
        .ok()?;
    let trailers = collected
        .trailers()
        .map(crate::convert::trailers)
        .unwrap_or_default();
    Some(HttpCallResponse {
        headers,
        body: collected.to_bytes().to_vec(),
        trailers,
    })
}

/// The embedder of one VM on one worker.
struct WorkerEmbedder {
    vm: usize,
    generation: u64,
    name: String,
    commands: mpsc::UnboundedSender<Command>,
    clusters: Arc<HashSet<String>>,
    node: Arc<HashMap<String, PropertyValue>>,
}

impl Embedder for WorkerEmbedder {
    fn http_call(&mut self, request: HttpCallRequest) -> Result<(), CalloutError> {
        if !self.clusters.contains(&request.cluster) {
            return Err(CalloutError::UnknownCluster(request.cluster));
        }
        self.commands
            .send(Command::HttpCall {
                vm: self.vm,
                generation: self.generation,
                request,
            })
            .map_err(|_| CalloutError::Failed("worker is shutting down".into()))
    }

    fn grpc_call(&mut self, request: GrpcCallRequest) -> Result<(), CalloutError> {
        match &request.target {
            wasp_host::GrpcTarget::Cluster(c) if self.clusters.contains(c) => {}
            wasp_host::GrpcTarget::Cluster(c) => {
                return Err(CalloutError::UnknownCluster(c.clone()));
            }
            // A serialized GrpcService naming something other than a cluster (Google gRPC).
            wasp_host::GrpcTarget::GrpcServiceProto(_) => return Err(CalloutError::BadTarget),
        }
        self.commands
            .send(Command::GrpcCall {
                vm: self.vm,
                generation: self.generation,
                request,
            })
            .map_err(|_| CalloutError::Failed("worker is shutting down".into()))
    }

    fn grpc_send(&mut self, token: u32, message: Vec<u8>, end_stream: bool) {
        let _ = self.commands.send(Command::GrpcSend {
            vm: self.vm,
            token,
            message,
            end_stream,
        });
    }

    fn grpc_cancel(&mut self, token: u32) {
        let _ = self.commands.send(Command::GrpcEnd {
            vm: self.vm,
            token,
            cancel: true,
        });
    }

    fn grpc_close(&mut self, token: u32) {
        let _ = self.commands.send(Command::GrpcEnd {
            vm: self.vm,
            token,
            cancel: false,
        });
    }

    fn property(&self, path: &[&[u8]]) -> Option<PropertyValue> {
        let key = path
            .iter()
            .map(|s| String::from_utf8_lossy(s))
            .collect::<Vec<_>>()
            .join(".");
        self.node.get(&key).cloned()
    }

    fn log(&self, record: LogRecord<'_>) {
        let plugin = if record.plugin.is_empty() {
            self.name.as_str()
        } else {
            record.plugin
        };
        wasp_host::log::to_tracing(LogRecord { plugin, ..record });
    }
}

struct WorkerQueues {
    vm: usize,
    commands: mpsc::UnboundedSender<Command>,
}

impl QueueNotifier for WorkerQueues {
    fn queue_ready(&self, root_context: u32, queue_id: u32) {
        let _ = self.commands.send(Command::QueueReady {
            vm: self.vm,
            root: root_context,
            queue_id,
        });
    }
}
