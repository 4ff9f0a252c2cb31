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

use crate::spec::{ListenerSpec, Origin, PluginSpec};
use crate::stats::PluginStats;

/// What /plugins reports about a plugin.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginStatus {
    pub name: String,
    pub root_id: String,
    pub url: String,
    pub sha256: Option<String>,
    pub phase: Option<String>,
    pub priority: Option<i64>,
    pub fail_strategy: String,
    /// `ready`, `failed` (trapped or refused to start on some worker) or `unavailable`
    /// (could not be loaded).
    pub state: String,
    pub error: Option<String>,
    /// Seconds since the epoch when the module was loaded.
    pub loaded_at: u64,
    /// Where the module came from and when, as the delivery layer reported it.
    #[serde(flatten)]
    pub origin: Origin,
}

/// The `module` of a Lua filter, which has none.
const NOT_WASM: &str = "a Lua filter has no Wasm module";

/// A plugin as every worker shares it: the compiled module, its status and its counters.
pub(crate) struct PluginShared {
    pub spec: PluginSpec,
    pub module: Result<Arc<PluginModule>, String>,
    pub stats: PluginStats,
    pub status: Mutex<PluginStatus>,
}

impl PluginShared {
    pub fn load(host: &Host, spec: &PluginSpec) -> PluginShared {
        let module = match (&spec.load_error, &spec.lua) {
            (Some(e), _) => Err(e.clone()),
            (None, Some(_)) => Err(NOT_WASM.to_string()),
            (None, None) => host.load_module(&spec.wasm).map_err(|e| e.to_string()),
        };
        let (state, error, sha256) = match &module {
            Ok(m) => ("ready", None, Some(m.info().sha256.clone())),
            Err(_) if spec.lua.is_some() && spec.load_error.is_none() => ("ready", None, None),
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
                root_id: spec.root_id.clone(),
                url: spec.url.clone(),
                sha256,
                phase: spec.phase.clone(),
                priority: spec.priority,
                fail_strategy: format!("{:?}", spec.fail_strategy),
                state: state.into(),
                error,
                loaded_at,
                origin: spec.origin.clone(),
            }),
            spec: spec.clone(),
            module,
            stats: PluginStats::default(),
        }
    }

    pub fn set_failed(&self, error: &str) {
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status.state = "failed".into();
        status.error = Some(error.to_owned());
    }

    pub fn status(&self) -> PluginStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
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
    /// Per listener (in the spec's order), the plugins that apply, in chain order.
    pub chains: Vec<Arc<[usize]>>,
}

impl PluginSet {
    /// Loads `specs` (compiling what `previous` does not already have) for `listeners`.
    pub fn build(
        host: &Host,
        specs: &[PluginSpec],
        listeners: &[ListenerSpec],
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
        let chains = listeners
            .iter()
            .map(|l| {
                plugins
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| {
                        p.spec.listeners.is_empty() || p.spec.listeners.contains(&l.name)
                    })
                    .map(|(i, _)| i)
                    .collect()
            })
            .collect();
        PluginSet {
            version,
            vm_groups: group_plugins(&plugins),
            plugins,
            chains,
        }
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
    for (i, p) in plugins
        .iter()
        .enumerate()
        .filter(|(_, p)| p.spec.lua.is_none())
    {
        let same_vm = |g: &&mut VmGroup| {
            let first = &plugins[g.members[0]].spec;
            first.vm_id == p.spec.vm_id
                && first.vm_configuration == p.spec.vm_configuration
                && first.env == p.spec.env
                && same_bytes(&first.wasm, &p.spec.wasm)
        };
        match groups.iter_mut().find(same_vm) {
            Some(g) => g.members.push(i),
            None => groups.push(VmGroup { members: vec![i] }),
        }
    }
    groups
}

fn same_bytes(a: &Arc<[u8]>, b: &Arc<[u8]>) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

/// Whether a plugin can be carried over to a new set unchanged.
fn same_plugin(a: &PluginSpec, b: &PluginSpec) -> bool {
    a.name == b.name
        && a.root_id == b.root_id
        && a.url == b.url
        && same_bytes(&a.wasm, &b.wasm)
        && a.configuration == b.configuration
        && a.vm_configuration == b.vm_configuration
        && a.vm_id == b.vm_id
        && a.env == b.env
        && a.fail_strategy == b.fail_strategy
        && a.phase == b.phase
        && a.priority == b.priority
        && a.listeners == b.listeners
        && a.load_error == b.load_error
        && a.origin == b.origin
        && a.lua.as_ref().map(|l| l.code()) == b.lua.as_ref().map(|l| l.code())
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
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Fires with the new version whenever a set is published.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Builds and publishes the next set; returns it.
    pub fn publish(
        &self,
        host: &Host,
        specs: &[PluginSpec],
        listeners: &[ListenerSpec],
    ) -> Arc<PluginSet> {
        // One publisher at a time: the write lock is held while building so that two
        // concurrent reloads cannot both build on the same previous set.
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let next = Arc::new(PluginSet::build(
            host,
            specs,
            listeners,
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
