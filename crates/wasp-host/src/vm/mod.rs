//! A VM: one instance of a plugin module, with its contexts, driven callback by callback.
//!
//! The embedder owns each `Vm` on one thread (a worker) and calls it sequentially; nothing in
//! here blocks. Every guest call runs under a CPU deadline; a trap marks the VM failed (all
//! later calls answer [`CallError::Failed`] without entering the guest) so the embedder can
//! apply the plugin's failure policy and build a fresh VM.

mod callbacks;
mod events;
mod http;
mod tcp;

use std::sync::Arc;

use wasmtime::{Store, Trap};

use crate::abi::{AbiVersion, LogLevel};
use crate::embedder::{Effect, Embedder};
use crate::engine::Host;
use crate::log::LogRecord;
use crate::module::PluginModule;
use crate::shared::QueueNotifier;
use crate::state::{Context, ContextKind, Phase, RootContext, VmState};
use crate::wasi::ProcExit;
use callbacks::Callbacks;

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
    /// A guest call trapped (panic, bad memory access, CPU deadline, `proc_exit`…); the VM is
    /// now failed and the failure has been logged at critical level.
    #[error("plugin {plugin:?} (vm {vm_id:?}) trapped in {callback}: {message}")]
    Trap {
        /// The `vm_id` of the failed VM.
        vm_id: String,
        /// The root id of the plugin whose context was active; empty during start-up.
        plugin: String,
        /// The export that was running, e.g. `proxy_on_request_headers`.
        callback: &'static str,
        /// What happened, in words (deadline, memory limit, exit code or the trap with backtrace).
        message: String,
    },
    /// The VM failed in an earlier call (the message of that failure) and was not entered.
    #[error("the VM failed earlier and can no longer be called: {0}")]
    Failed(Arc<str>),
    /// No context, or no pending callout token, with this id in this VM.
    #[error("no context {0} in this VM")]
    UnknownContext(u32),
    /// `proxy_on_vm_start` or `proxy_on_configure` returned false: the plugin refused its
    /// configuration.
    #[error("{callback} returned false: the plugin refused to start")]
    Refused {
        /// The callback that returned false.
        callback: &'static str,
    },
    /// The module could not be instantiated, or lacks an exported memory or an allocator.
    #[error("cannot instantiate the module: {0}")]
    Instantiate(String),
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
            host.parts(),
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

        let callbacks = Callbacks::resolve(&instance, &mut store, module.abi());
        let mut vm = Vm {
            store,
            callbacks,
            module: module.clone(),
            failed: None,
            callback_ticks: host.ticks(host.config().callback_deadline),
        };
        vm.run_start_functions()?;
        Ok(vm)
    }

    /// The module this VM is an instance of.
    pub fn module(&self) -> &Arc<PluginModule> {
        &self.module
    }

    /// The ABI version the module was built for.
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

    /// `_initialize` then `main(0, 0)` (or `__main_void`), or `_start` for a WASI command, as
    /// cpp-host does.
    fn run_start_functions(&mut self) -> Result<(), CallError> {
        let cb = &self.callbacks;
        let (initialize, start, main, main_void) = (
            cb.initialize.clone(),
            cb.start.clone(),
            cb.main.clone(),
            cb.main_void.clone(),
        );
        if let Some(init) = initialize {
            self.start_call("_initialize", |s| init.call(s, ()))?;
            if let Some(main) = main {
                self.start_call("main", |s| main.call(s, (0, 0)).map(drop))?;
            } else if let Some(main_void) = main_void {
                self.start_call("__main_void", |s| main_void.call(s, ()).map(drop))?;
            }
        } else if let Some(start) = start {
            self.start_call("_start", |s| start.call(s, ()))?;
        }
        Ok(())
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
