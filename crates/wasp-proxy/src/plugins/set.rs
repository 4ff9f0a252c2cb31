//! The plugins every worker runs, as one immutable, versioned set.
//!
//! A configuration change builds a new [`PluginSet`] off the workers (modules are compiled
//! there) and publishes it; each worker then instantiates the new set's VMs and gives new
//! streams the new chains, while streams already running finish on the set they started
//! with. Plugins whose declaration did not change are carried over with their compiled
//! module, status and counters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use tokio::sync::watch;
use wasp_host::{Host, PluginModule};

use crate::spec::{ListenerSpec, Origin, PluginKind, PluginSpec, WasmSpec};
use crate::stats::PluginStats;

/// What /plugins reports about a plugin.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginStatus {
    /// The plugin's name (a resource's `namespace.name`, or the inline plugin's name).
    pub name: String,
    /// The root id its root context was started with (Wasm; empty for Lua).
    pub root_id: String,
    /// Where its code came from, as configured.
    pub url: String,
    /// The sha256 the configuration pinned, if any.
    pub sha256: Option<String>,
    /// Istio's phase (`AUTHN`, `AUTHZ`, `STATS`), if set.
    pub phase: Option<String>,
    /// Istio's priority within the phase, if set.
    pub priority: Option<i64>,
    /// `FAIL_CLOSE` or `FAIL_OPEN`: what a request meets when the plugin cannot serve it.
    pub fail_strategy: String,
    /// `ready`, `failed` (trapped or refused to start on some worker) or `unavailable`
    /// (could not be loaded).
    pub state: String,
    /// Why it failed or is unavailable (none while it runs).
    pub error: Option<String>,
    /// The last failure, kept after a fresh VM replaced the failed one.
    pub last_failure: Option<String>,
    /// Seconds since the epoch when the module was loaded.
    pub loaded_at: u64,
    /// Where the module came from and when, as the delivery layer reported it.
    #[serde(flatten)]
    pub origin: Origin,
}

/// A plugin's code, ready for every worker to instantiate.
pub(crate) enum Code {
    /// A compiled Wasm module.
    Wasm(Arc<PluginModule>),
    /// A checked Lua script (each worker loads it into its own Lua state).
    Lua(wasp_lua::LuaScript),
}

/// A plugin as every worker shares it: its code, its status and its counters.
pub(crate) struct PluginShared {
    pub spec: PluginSpec,
    /// The code, or why there is none (the plugin is unavailable).
    pub code: Result<Code, String>,
    pub stats: PluginStats,
    pub status: Mutex<PluginStatus>,
}

impl PluginShared {
    pub fn load(host: &Host, spec: &PluginSpec) -> PluginShared {
        let code = match (&spec.load_error, &spec.kind) {
            (Some(e), _) => Err(e.clone()),
            (None, PluginKind::Wasm(wasm)) => host
                .load_module(&wasm.module)
                .map(Code::Wasm)
                .map_err(|e| e.to_string()),
            (None, PluginKind::Lua(lua)) => wasp_lua::LuaScript::compile(&spec.name, &lua.source)
                .map(Code::Lua)
                .map_err(|e| e.to_string()),
        };
        let (state, error, sha256) = match &code {
            Ok(Code::Wasm(m)) => ("ready", None, Some(m.info().sha256.clone())),
            Ok(Code::Lua(_)) => ("ready", None, None),
            Err(e) => {
                tracing::error!(plugin = %spec.name, url = %spec.url, "plugin cannot be loaded: {e}");
                ("unavailable", Some(e.clone()), None)
            }
        };
        let loaded_at = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        PluginShared {
            status: Mutex::new(PluginStatus {
                name: spec.name.clone(),
                root_id: spec.root_id().to_owned(),
                url: spec.url.clone(),
                sha256,
                phase: spec.phase.clone(),
                priority: spec.priority,
                fail_strategy: format!("{:?}", spec.fail_strategy),
                state: state.into(),
                last_failure: error.clone(),
                error,
                loaded_at,
                origin: spec.origin.clone(),
            }),
            spec: spec.clone(),
            code,
            stats: PluginStats::default(),
        }
    }

    /// The compiled module of a Wasm plugin that loaded.
    pub fn module(&self) -> Option<&Arc<PluginModule>> {
        match &self.code {
            Ok(Code::Wasm(module)) => Some(module),
            _ => None,
        }
    }

    /// The script of a Lua filter that loaded.
    pub fn script(&self) -> Option<&wasp_lua::LuaScript> {
        match &self.code {
            Ok(Code::Lua(script)) => Some(script),
            _ => None,
        }
    }

    pub fn set_failed(&self, error: &str) {
        self.set_state("failed", Some(error));
    }

    /// `ready`, `failed`, `recovering` (a failed VM awaits its replacement) or `parked` (it
    /// kept failing); `error` says why (none when ready).
    pub fn set_state(&self, state: &str, error: Option<&str>) {
        let mut status = self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        status.state = state.into();
        if let Some(e) = error {
            status.last_failure = Some(e.to_owned());
        }
        status.error = error.map(str::to_owned);
    }

    pub fn status(&self) -> PluginStatus {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Which plugins share a VM: indexes into [`PluginSet::plugins`], in chain order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VmGroup {
    pub members: Vec<usize>,
}

/// One version of the plugin configuration.
pub(crate) struct PluginSet {
    /// Starts at 1 and grows by one per published set.
    pub version: u64,
    pub plugins: Vec<Arc<PluginShared>>,
    /// Which plugins share a VM (on every worker).
    pub vm_groups: Vec<VmGroup>,
    /// How many workers have instantiated this set (their VMs started or failed).
    pub started_on: std::sync::atomic::AtomicUsize,
    /// Whether a plugin has rules or is off by default (if none is, and a listener gives no
    /// plugin a setting, a stream runs the listener's chain as it is).
    pub has_routing: bool,
}

impl PluginSet {
    /// Loads `specs` (compiling what `previous` does not already have).
    pub fn build(
        host: &Host,
        specs: &[PluginSpec],
        previous: Option<&PluginSet>,
        version: u64,
    ) -> PluginSet {
        let plugins: Vec<Arc<PluginShared>> = specs
            .iter()
            .map(|spec| {
                previous
                    .and_then(|p| p.plugins.iter().find(|old| same_plugin(&old.spec, spec)))
                    .cloned()
                    .unwrap_or_else(|| Arc::new(PluginShared::load(host, spec)))
            })
            .collect();
        PluginSet {
            version,
            vm_groups: group_plugins(&plugins),
            has_routing: plugins
                .iter()
                .any(|p| p.spec.routing != crate::spec::PluginRouting::default()),
            plugins,
            started_on: Default::default(),
        }
    }

    /// The plugins that apply to `listener`, in chain order: HTTP plugins on HTTP listeners,
    /// network plugins on TCP ones, each where its `listeners` list (if any) names it.
    pub fn chain_for(&self, listener: &ListenerSpec) -> Arc<[usize]> {
        self.plugins
            .iter()
            .enumerate()
            .filter(|(_, p)| p.spec.wasm().is_some_and(|w| w.network) == listener.tcp.is_some())
            .filter(|(_, p)| {
                p.spec.listeners.is_empty() || p.spec.listeners.contains(&listener.name)
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Whether `specs` are this set's plugins, unchanged (nothing to publish).
    pub fn serves(&self, specs: &[PluginSpec]) -> bool {
        self.plugins.len() == specs.len()
            && self
                .plugins
                .iter()
                .zip(specs)
                .all(|(p, spec)| same_plugin(&p.spec, spec))
    }

    pub fn statuses(&self) -> Vec<PluginStatus> {
        self.plugins.iter().map(|p| p.status()).collect()
    }
}

/// Groups plugins the way Envoy keys its VMs: equal `vm_id`, VM configuration, environment
/// and module bytes share one VM. (Envoy leaves the environment out of its key, so the first
/// plugin's environment would win; wasp gives differing environments their own VM.)
fn group_plugins(plugins: &[Arc<PluginShared>]) -> Vec<VmGroup> {
    let mut groups: Vec<VmGroup> = Vec::new();
    // Lua filters run in the worker's Lua states, not in a VM.
    for (i, wasm) in plugins
        .iter()
        .enumerate()
        .filter_map(|(i, p)| Some((i, p.spec.wasm()?)))
    {
        let same_vm = |g: &&mut VmGroup| {
            plugins[g.members[0]]
                .spec
                .wasm()
                .is_some_and(|first| same_vm(first, wasm))
        };
        match groups.iter_mut().find(same_vm) {
            Some(g) => g.members.push(i),
            None => groups.push(VmGroup { members: vec![i] }),
        }
    }
    groups
}

fn same_vm(a: &WasmSpec, b: &WasmSpec) -> bool {
    a.vm_id == b.vm_id
        && a.vm_configuration == b.vm_configuration
        && a.env == b.env
        && same_bytes(&a.module, &b.module)
}

fn same_bytes(a: &Arc<[u8]>, b: &Arc<[u8]>) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

/// Whether a plugin can be carried over to a new set unchanged.
fn same_plugin(a: &PluginSpec, b: &PluginSpec) -> bool {
    let same_code = match (&a.kind, &b.kind) {
        (PluginKind::Wasm(a), PluginKind::Wasm(b)) => {
            same_vm(a, b) && a.root_id == b.root_id && a.configuration == b.configuration
        }
        (PluginKind::Lua(a), PluginKind::Lua(b)) => a == b,
        _ => false,
    };
    same_code
        && a.name == b.name
        && a.url == b.url
        && a.fail_strategy == b.fail_strategy
        && a.phase == b.phase
        && a.priority == b.priority
        && a.listeners == b.listeners
        && a.load_error == b.load_error
        && a.origin == b.origin
        && a.routing == b.routing
}

/// The current set and a way for workers to hear of the next one.
pub(crate) struct Published {
    current: RwLock<Arc<PluginSet>>,
    changed: watch::Sender<u64>,
}

impl Published {
    pub fn new(set: PluginSet) -> Published {
        let (changed, _) = watch::channel(set.version);
        Published {
            current: RwLock::new(Arc::new(set)),
            changed,
        }
    }

    pub fn current(&self) -> Arc<PluginSet> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Fires with the new version whenever a set is published.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Builds and publishes the next set; returns it.
    pub fn publish(&self, host: &Host, specs: &[PluginSpec]) -> Arc<PluginSet> {
        // One publisher at a time: the write lock is held while building so that two
        // concurrent reloads cannot both build on the same previous set.
        let mut current = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let next = Arc::new(PluginSet::build(
            host,
            specs,
            Some(&current),
            current.version + 1,
        ));
        *current = next.clone();
        drop(current);
        self.changed.send_replace(next.version);
        next
    }
}

/// Plugins compared by name between two sets, for logs: (added, changed, removed).
pub(crate) fn diff(old: &PluginSet, new: &PluginSet) -> (Vec<String>, Vec<String>, Vec<String>) {
    let old_by_name: HashMap<&str, &Arc<PluginShared>> = old
        .plugins
        .iter()
        .map(|p| (p.spec.name.as_str(), p))
        .collect();
    let new_names: Vec<&str> = new.plugins.iter().map(|p| p.spec.name.as_str()).collect();
    let mut added = Vec::new();
    let mut changed = Vec::new();
    for p in &new.plugins {
        match old_by_name.get(p.spec.name.as_str()) {
            None => added.push(p.spec.name.clone()),
            Some(o) if !Arc::ptr_eq(o, p) => changed.push(p.spec.name.clone()),
            Some(_) => {}
        }
    }
    let removed = old
        .plugins
        .iter()
        .filter(|p| !new_names.contains(&p.spec.name.as_str()))
        .map(|p| p.spec.name.clone())
        .collect();
    (added, changed, removed)
}
