//! The VMs of one plugin set on one worker, and every call into them.
//!
//! Plugins that Envoy would put in one VM share one here too (see `plugins::VmGroup`): each
//! has its own root context in that VM, and a trap fails the VM and with it every plugin in
//! it, as in Envoy. Streams hold the `WorkerVms` they started with, so a new plugin set
//! never pulls VMs from under a running stream; the old VMs go when their last stream ends.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use wasp_host::{CallError, Effect, PluginConfig, QueueNotifier, StreamType, Vm, VmConfig};

mod recover;

use crate::filter::signals::{Direction, StreamSignals};
use crate::plugins::embedder::{WorkerEmbedder, WorkerLink, WorkerQueues};
use crate::plugins::set::{PluginSet, PluginShared};

/// One VM, shared by the plugins of one `VmGroup`.
enum VmSlot {
    Ready {
        // Boxed: a VM's store is large and the other variant is empty.
        vm: Box<Vm>,
        /// Each member plugin's root context; `None`: that plugin refused to start.
        roots: Vec<Option<u32>>,
        /// Root contexts of members with another configuration (a route's or a rule's), by
        /// member and configuration, created on first use; `None`: refused.
        variants: HashMap<(usize, Arc<[u8]>), Option<u32>>,
        generation: u64,
    },
    /// The module could not be loaded or the VM did not start.
    Unavailable,
}

/// How a callback into a plugin ended, from the stream's point of view.
pub(crate) enum Step<T> {
    Done(T),
    /// The plugin is skipped for this stream (fail open).
    Skip,
    /// The stream must be answered with this status (fail closed).
    Fail(u16),
}

/// Where a VM's effects for stream contexts go: context id → the stream's signals and the
/// plugin's position in its chain.
type StreamRoutes = HashMap<(usize, u32), (Weak<StreamSignals>, usize)>;

/// Lua states of per-route scripts, by plugin and script.
type RouteLuas = HashMap<(usize, Arc<str>), Option<Rc<wasp_lua::LuaWorker>>>;

/// The VMs of one plugin set on one worker.
pub(crate) struct WorkerVms {
    pub set: Arc<PluginSet>,
    link: WorkerLink,
    vms: Vec<RefCell<VmSlot>>,
    /// Per plugin: the index of its VM and its place among that VM's members.
    placement: Vec<(usize, usize)>,
    streams: RefCell<StreamRoutes>,
    timers: RefCell<HashMap<(usize, u32), tokio::task::JoinHandle<()>>>,
    /// Per VM slot: its failures and when its replacement is due.
    recovery: RefCell<HashMap<usize, crate::plugins::recovery::Recovery>>,
    /// The last VM generation built here (each replacement takes the next).
    next_generation: std::cell::Cell<u64>,
    /// Per plugin: its Lua state on this worker, for Lua filters (one per worker, as Envoy).
    luas: Vec<Option<Rc<wasp_lua::LuaWorker>>>,
    /// Lua states of scripts routes run instead of a filter's own (Envoy's `LuaPerRoute`),
    /// by plugin and script, created on first use; `None`: the script did not load.
    route_luas: RefCell<RouteLuas>,
    me: Weak<WorkerVms>,
}

impl WorkerVms {
    /// Instantiates every VM of `set` and starts its plugins. Runs on the worker thread.
    pub fn start(link: WorkerLink, set: Arc<PluginSet>) -> Rc<WorkerVms> {
        let mut placement = vec![(0, 0); set.plugins.len()];
        for (v, group) in set.vm_groups.iter().enumerate() {
            for (m, &plugin) in group.members.iter().enumerate() {
                placement[plugin] = (v, m);
            }
        }
        let luas = set
            .plugins
            .iter()
            .map(|p| {
                let script = p.script()?;
                match wasp_lua::LuaWorker::new(script, wasp_lua::Limits::default()) {
                    Ok(lua) => Some(Rc::new(lua)),
                    Err(e) => {
                        p.set_failed(&e.to_string());
                        tracing::error!(plugin = %p.spec.name, worker = link.id, "Lua filter failed to start: {e}");
                        None
                    }
                }
            })
            .collect();
        let vms = Rc::new_cyclic(|me| WorkerVms {
            luas,
            route_luas: RefCell::default(),
            vms: (0..set.vm_groups.len())
                .map(|_| RefCell::new(VmSlot::Unavailable))
                .collect(),
            set,
            link,
            placement,
            streams: RefCell::default(),
            timers: RefCell::default(),
            recovery: RefCell::default(),
            next_generation: std::cell::Cell::new(1),
            me: me.clone(),
        });
        for v in 0..vms.vms.len() {
            let slot = vms.build_vm(v, 1);
            *vms.vms[v].borrow_mut() = slot;
            // Timers armed during start-up (on_configure) are applied now.
            vms.after_call(v);
        }
        vms
    }

    pub fn plugin(&self, plugin: usize) -> &PluginShared {
        &self.set.plugins[plugin]
    }

    /// The worker's Lua state of a Lua filter, or of the script a route runs instead
    /// (`None`: it failed to start).
    pub fn lua(&self, plugin: usize, script: Option<&Arc<str>>) -> Option<Rc<wasp_lua::LuaWorker>> {
        let Some(script) = script else {
            return self.luas[plugin].clone();
        };
        let key = (plugin, script.clone());
        if let Some(lua) = self.route_luas.borrow().get(&key) {
            return lua.clone();
        }
        let name = &self.plugin(plugin).spec.name;
        let lua = wasp_lua::LuaScript::compile(name, script)
            .and_then(|s| wasp_lua::LuaWorker::new(&s, wasp_lua::Limits::default()))
            .map(Rc::new)
            .map_err(|e| {
                tracing::error!(plugin = %name, worker = self.link.id, "a route's Lua script failed to start: {e}");
            })
            .ok();
        self.route_luas.borrow_mut().insert(key, lua.clone());
        lua
    }

    /// The plugin whose root context `root` is in VM `v`.
    pub fn owner(&self, v: usize, root: u32) -> Option<usize> {
        match &*self.vms.get(v)?.borrow() {
            VmSlot::Ready {
                roots, variants, ..
            } => {
                let member = roots.iter().position(|r| *r == Some(root)).or_else(|| {
                    variants
                        .iter()
                        .find(|(_, r)| **r == Some(root))
                        .map(|((member, _), _)| *member)
                })?;
                Some(self.set.vm_groups[v].members[member])
            }
            VmSlot::Unavailable => None,
        }
    }

    /// Creates a stream context in `plugin`'s VM, under the root context of `configuration`
    /// (a route's; `None`: the plugin's own), and registers where its effects go.
    pub fn open_stream(
        &self,
        plugin: usize,
        configuration: Option<&Arc<[u8]>>,
        stream: &wasp_host::SharedHttpStream,
        signals: &Rc<StreamSignals>,
        position: usize,
    ) -> Step<(u32, u64)> {
        match self.open(plugin, configuration, signals, position, |vm, root| {
            vm.create_http_stream(root, stream.clone())
                .map(|ctx| (ctx, ()))
        }) {
            Step::Done((ctx, generation, ())) => Step::Done((ctx, generation)),
            Step::Skip => Step::Skip,
            Step::Fail(status) => Step::Fail(status),
        }
    }

    /// Creates a TCP stream context in `plugin`'s VM (`on_new_connection` included) and
    /// registers where its effects go; also returns what `on_new_connection` answered.
    pub fn open_connection(
        &self,
        plugin: usize,
        connection: &wasp_host::SharedConnection,
        signals: &Rc<StreamSignals>,
        position: usize,
    ) -> Step<(u32, u64, wasp_host::NetworkAction)> {
        self.open(plugin, None, signals, position, |vm, root| {
            vm.create_tcp_stream(root, connection.clone())
        })
    }

    /// Ends a TCP stream's context (on_done, on_log, on_delete) and forgets where it was.
    pub fn close_connection(&self, plugin: usize, ctx: u32, generation: u64) {
        self.end_context(plugin, ctx, generation, Vm::finish_tcp_stream);
    }

    /// Creates a context with `create` under `plugin`'s root context, registers where its
    /// effects go, and returns it with the VM's generation and what `create` gave besides.
    fn open<T>(
        &self,
        plugin: usize,
        configuration: Option<&Arc<[u8]>>,
        signals: &Rc<StreamSignals>,
        position: usize,
        create: impl FnOnce(&mut Vm, u32) -> Result<(u32, T), CallError>,
    ) -> Step<(u32, u64, T)> {
        self.maybe_recover(plugin);
        let v = self.placement[plugin].0;
        let result = {
            let mut slot = self.vms[v].borrow_mut();
            match &mut *slot {
                VmSlot::Ready {
                    vm,
                    roots,
                    variants,
                    generation,
                } if vm.failure().is_none() => {
                    match self.root_for(vm, roots, variants, plugin, configuration) {
                        Some(root) => {
                            let generation = *generation;
                            create(vm, root).map(|(ctx, extra)| (ctx, generation, extra))
                        }
                        None => Err(CallError::Failed("the plugin did not start".into())),
                    }
                }
                VmSlot::Ready { vm, .. } => {
                    Err(CallError::Failed(vm.failure().unwrap_or_default().into()))
                }
                VmSlot::Unavailable => Err(CallError::Failed("no VM".into())),
            }
        };
        match result {
            Ok((ctx, generation, extra)) => {
                self.streams
                    .borrow_mut()
                    .insert((v, ctx), (Rc::downgrade(signals), position));
                self.after_call(v);
                Step::Done((ctx, generation, extra))
            }
            Err(_) if !self.can_run(plugin) => self.unavailable(plugin),
            Err(e) => self.failed(plugin, e),
        }
    }

    /// The root context a stream of `plugin` goes under: its own, or the one of
    /// `configuration`, started on first use (`proxy_on_context_create`, `on_configure`) as
    /// Higress starts a root context per distinct configuration.
    fn root_for(
        &self,
        vm: &mut Vm,
        roots: &[Option<u32>],
        variants: &mut HashMap<(usize, Arc<[u8]>), Option<u32>>,
        plugin: usize,
        configuration: Option<&Arc<[u8]>>,
    ) -> Option<u32> {
        let member = self.placement[plugin].1;
        let p = self.plugin(plugin);
        let wasm = p.spec.wasm()?;
        let Some(configuration) = configuration.filter(|c| ***c != *wasm.configuration) else {
            return roots[member];
        };
        let key = (member, configuration.clone());
        if let Some(root) = variants.get(&key) {
            return *root;
        }
        let started = vm.start_plugin(&PluginConfig {
            name: p.spec.name.clone(),
            root_id: wasm.root_id.clone(),
            configuration: configuration.to_vec(),
            allow_headers_stop_iteration: false,
        });
        let root = match started {
            Ok(root) => {
                self.link.gauges.root_contexts.fetch_add(1, Relaxed);
                Some(root)
            }
            Err(e) => {
                tracing::error!(plugin = %p.spec.name, worker = self.link.id, "the plugin refused a route's configuration: {e}");
                None
            }
        };
        variants.insert(key, root);
        root
    }

    /// Runs one callback of `plugin` in its VM.
    pub fn call<T>(
        &self,
        plugin: usize,
        generation: u64,
        f: impl FnOnce(&mut Vm) -> Result<T, CallError>,
    ) -> Step<T> {
        let stats = &self.set.plugins[plugin].stats;
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
                VmSlot::Unavailable => Err(CallError::Failed("no VM".into())),
            }
        };
        stats.calls.fetch_add(1, Relaxed);
        stats
            .call_time_us
            .fetch_add(started.elapsed().as_micros() as u64, Relaxed);
        self.after_call(v);
        match result {
            Ok(v) => Step::Done(v),
            Err(_) if !self.can_run(plugin) => self.unavailable(plugin),
            Err(e) => self.failed(plugin, e),
        }
    }

    /// Ends a stream's context (on_log, on_done, on_delete) and forgets where it was.
    pub fn close_stream(&self, plugin: usize, ctx: u32, generation: u64) {
        self.end_context(plugin, ctx, generation, Vm::finish_stream);
    }

    /// Forgets where a context's effects go, then ends it with `finish`.
    fn end_context(
        &self,
        plugin: usize,
        ctx: u32,
        generation: u64,
        finish: fn(&mut Vm, u32) -> Result<(), CallError>,
    ) {
        let v = self.placement[plugin].0;
        self.streams.borrow_mut().remove(&(v, ctx));
        let _ = self.call(plugin, generation, |vm| finish(vm, ctx));
    }

    /// A call on a root context of VM `v` (timers, queues, callout answers), counted for the
    /// plugin that owns the root context.
    pub fn root_call(&self, v: usize, root: u32, f: impl FnOnce(&mut Vm) -> Result<(), CallError>) {
        let generation = match &*self.vms[v].borrow() {
            VmSlot::Ready { generation, .. } => *generation,
            VmSlot::Unavailable => return,
        };
        if let Some(plugin) = self.owner(v, root) {
            let _ = self.call(plugin, generation, f);
        }
    }

    /// Takes a VM that goes away out of the gauges.
    fn uncount(&self, slot: &VmSlot) {
        if let VmSlot::Ready {
            roots, variants, ..
        } = slot
        {
            let gauges = &self.link.gauges;
            gauges.vms.fetch_sub(1, Relaxed);
            let n = roots.iter().chain(variants.values()).flatten().count();
            gauges.root_contexts.fetch_sub(n as i64, Relaxed);
        }
    }

    /// Carries out what the plugins of VM `v` asked for during the call that just returned.
    fn after_call(&self, v: usize) {
        let effects = match &mut *self.vms[v].borrow_mut() {
            VmSlot::Ready { vm, .. } => vm.take_effects(),
            VmSlot::Unavailable => return,
        };
        for effect in effects {
            self.apply(v, effect);
        }
    }

    fn apply(&self, v: usize, effect: Effect) {
        match effect {
            Effect::Continue { context, stream } => {
                // A TCP connection's downstream side reads as a request.
                let direction = match stream {
                    StreamType::HttpResponse | StreamType::Upstream => Direction::Response,
                    StreamType::HttpRequest | StreamType::Downstream => Direction::Request,
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
            // Routes are chosen after the plugins' request headers phase, so a cleared route
            // cache has nothing to clear.
            Effect::ClearRouteCache { .. } => {}
            Effect::RootDone { root_context } => {
                if let VmSlot::Ready { vm, .. } = &mut *self.vms[v].borrow_mut() {
                    let _ = vm.delete_root(root_context);
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
                // The set was retired and its last stream ended: the timer goes with it.
                let Some(vms) = weak.upgrade() else { return };
                vms.root_call(v, root, |vm| vm.on_tick(root));
            }
        });
        self.timers.borrow_mut().insert((v, root), handle);
    }

    /// Instantiates VM `v` and starts each of its plugins in it, in chain order.
    fn build_vm(&self, v: usize, generation: u64) -> VmSlot {
        let members = &self.set.vm_groups[v].members;
        let first = &self.set.plugins[members[0]];
        // A module that did not load is already reported as unavailable (PluginShared::load).
        let (Some(module), Some(wasm)) = (first.module(), first.spec.wasm()) else {
            return VmSlot::Unavailable;
        };
        let embedder = WorkerEmbedder::new(&self.link, self.set.version, v, generation, first);
        let notifier: Arc<dyn QueueNotifier> =
            Arc::new(WorkerQueues::new(&self.link, self.set.version, v));
        let config = VmConfig {
            vm_id: wasm.vm_id.clone(),
            configuration: wasm.vm_configuration.clone(),
            env: wasm.env.clone(),
            queue_notifier: Some(notifier),
        };
        let fail_all = |error: &str| {
            for &m in members {
                self.set.plugins[m].set_failed(error);
            }
            tracing::error!(plugin = %first.spec.name, worker = self.link.id, "plugin failed to start: {error}");
            VmSlot::Unavailable
        };
        let mut vm = match Vm::new(module, config, Box::new(embedder)) {
            Ok(vm) => vm,
            Err(e) => return fail_all(&e.to_string()),
        };
        let mut roots = Vec::with_capacity(members.len());
        for &m in members {
            let p = &self.set.plugins[m];
            let Some(spec) = p.spec.wasm() else {
                roots.push(None);
                continue;
            };
            let started = vm.start_plugin(&PluginConfig {
                name: p.spec.name.clone(),
                root_id: spec.root_id.clone(),
                configuration: spec.configuration.clone(),
                allow_headers_stop_iteration: false,
            });
            match started {
                Ok(root) => roots.push(Some(root)),
                // A trap fails the VM: no plugin in it can run.
                Err(e @ CallError::Trap { .. }) => return fail_all(&e.to_string()),
                // One plugin refusing its configuration leaves the others of the VM running.
                Err(e) => {
                    p.set_failed(&e.to_string());
                    tracing::error!(plugin = %p.spec.name, worker = self.link.id, "plugin failed to start: {e}");
                    roots.push(None);
                }
            }
        }
        let gauges = &self.link.gauges;
        gauges.vms.fetch_add(1, Relaxed);
        gauges
            .root_contexts
            .fetch_add(roots.iter().flatten().count() as i64, Relaxed);
        VmSlot::Ready {
            vm: Box::new(vm),
            roots,
            variants: HashMap::new(),
            generation,
        }
    }
}

impl Drop for WorkerVms {
    /// The set was replaced and its last stream ended: its root contexts end as Envoy ends
    /// a removed plugin's (`on_done`, then `on_delete`), and its timers stop.
    fn drop(&mut self) {
        for (_, timer) in self.timers.get_mut().drain() {
            timer.abort();
        }
        for slot in &self.vms {
            self.uncount(&slot.borrow());
        }
        for slot in &mut self.vms {
            if let VmSlot::Ready {
                vm,
                roots,
                variants,
                ..
            } = slot.get_mut()
                && vm.failure().is_none()
            {
                for root in roots.iter().chain(variants.values()).flatten() {
                    let _ = vm.shutdown_plugin(*root);
                }
            }
        }
    }
}
