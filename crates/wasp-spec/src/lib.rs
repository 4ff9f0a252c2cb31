//! What the data plane runs: listeners, routes, clusters and plugins, already validated.
//!
//! The configuration layer (`wasp-config`) turns YAML and WasmPlugin resources into a
//! [`ProxySpec`]; the data plane (`wasp-proxy`) runs it and never parses text. This crate is
//! the contract between the two, with no dependency on either.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The whole proxy.
#[derive(Debug, Clone)]
pub struct ProxySpec {
    pub admin: Option<SocketAddr>,
    /// Worker threads, each with its own event loop and its own VM of every plugin.
    pub workers: usize,
    pub node: NodeSpec,
    pub listeners: Vec<ListenerSpec>,
    pub clusters: Vec<ClusterSpec>,
    /// Plugins in chain order (requests pass them first to last, responses last to first).
    pub plugins: Vec<PluginSpec>,
    /// Per-stream limit on buffered body bytes (Envoy's per-connection buffer limit).
    pub buffer_limit_bytes: usize,
}

/// Identity of this proxy (`node.*` / `xds.node.*` properties).
#[derive(Debug, Clone, Default)]
pub struct NodeSpec {
    pub id: String,
    pub cluster: String,
    /// Free-form metadata, as Envoy's node metadata Struct.
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// Which way a listener's traffic goes (Envoy's `traffic_direction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrafficDirection {
    Inbound,
    Outbound,
}

#[derive(Debug, Clone)]
pub struct ListenerSpec {
    pub name: String,
    pub address: SocketAddr,
    pub direction: TrafficDirection,
    pub tls: Option<ServerTls>,
    pub routes: Vec<RouteSpec>,
}

#[derive(Debug, Clone)]
pub struct ServerTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub path: PathMatch,
    /// Every header matcher must match.
    pub headers: Vec<HeaderMatch>,
    pub action: RouteAction,
}

#[derive(Debug, Clone)]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    Regex(regex::Regex),
}

#[derive(Debug, Clone)]
pub struct HeaderMatch {
    pub name: String,
    /// `None`: the header must be present; `Some`: it must have exactly this value.
    pub value: Option<String>,
}

#[derive(Debug, Clone)]
pub enum RouteAction {
    Cluster {
        name: String,
        /// Whole-request timeout (Envoy's route timeout); `None` disables it.
        timeout: Option<Duration>,
    },
    Direct {
        status: u16,
        body: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    Http1,
    Http2,
}

#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub name: String,
    /// `host:port` endpoints, used round-robin.
    pub endpoints: Vec<String>,
    pub protocol: UpstreamProtocol,
    pub connect_timeout: Duration,
    pub tls: Option<ClientTls>,
}

#[derive(Debug, Clone)]
pub struct ClientTls {
    /// Server name to send and verify; defaults to the endpoint's host.
    pub sni: Option<String>,
    /// Roots to trust; `None` uses the web PKI roots.
    pub ca_file: Option<PathBuf>,
}

/// What happens to requests when a plugin cannot serve them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailStrategy {
    /// Failed to load: requests get 403 (Istio's stand-in); trapped: 503.
    FailClose,
    /// Skip the plugin.
    FailOpen,
    /// Trapped: replace the VM with a fresh one (with backoff), as Envoy's FAIL_RELOAD.
    FailReload,
}

/// One plugin of the chain.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    /// Unique name (Istio: namespace.name), the `plugin_name` property.
    pub name: String,
    /// Where the code came from (for /plugins).
    pub url: String,
    /// What the plugin runs.
    pub kind: PluginKind,
    pub fail_strategy: FailStrategy,
    /// Istio phase and priority, for display.
    pub phase: Option<String>,
    pub priority: Option<i64>,
    /// Which listeners the plugin applies to; empty = all.
    pub listeners: Vec<String>,
    /// Why the code could not be obtained (fetch failed, ...): the plugin is then unavailable
    /// and its failure strategy applies.
    pub load_error: Option<String>,
    /// Facts about the code's delivery (digest, fetched at, ...), shown by /plugins.
    pub origin: Origin,
}

/// What a plugin runs.
#[derive(Debug, Clone)]
pub enum PluginKind {
    /// A Proxy-Wasm module.
    Wasm(WasmSpec),
    /// An Envoy-style Lua script (Envoy's Lua filter API), loaded on each worker.
    Lua(LuaSpec),
}

/// A Proxy-Wasm plugin: its module and how its VM and root context are set up.
#[derive(Clone, Default)]
pub struct WasmSpec {
    /// The root id (Istio's pluginName).
    pub root_id: String,
    /// The module's bytes; empty when it could not be obtained (`load_error`).
    pub module: Arc<[u8]>,
    /// The plugin configuration (`proxy_on_configure`).
    pub configuration: Vec<u8>,
    /// The VM configuration (`proxy_on_vm_start`).
    pub vm_configuration: Vec<u8>,
    /// Plugins with the same vm_id, module, VM configuration and environment share a VM (and
    /// shared data).
    pub vm_id: String,
    pub env: Vec<(String, String)>,
}

impl std::fmt::Debug for WasmSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmSpec")
            .field("root_id", &self.root_id)
            .field("module_bytes", &self.module.len())
            .field("vm_id", &self.vm_id)
            .finish_non_exhaustive()
    }
}

/// A Lua filter: the script's source, as the configuration gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LuaSpec {
    pub source: String,
}

impl PluginSpec {
    /// A plugin with the defaults of everything but its name and code: fail closed, every
    /// listener, no phase or priority.
    pub fn new(name: impl Into<String>, kind: PluginKind) -> PluginSpec {
        PluginSpec {
            name: name.into(),
            url: String::new(),
            kind,
            fail_strategy: FailStrategy::FailClose,
            phase: None,
            priority: None,
            listeners: Vec::new(),
            load_error: None,
            origin: Origin::new(),
        }
    }

    /// The Wasm side of the plugin; `None` for a Lua filter.
    pub fn wasm(&self) -> Option<&WasmSpec> {
        match &self.kind {
            PluginKind::Wasm(w) => Some(w),
            PluginKind::Lua(_) => None,
        }
    }

    /// The Wasm side of the plugin, to edit; `None` for a Lua filter.
    pub fn wasm_mut(&mut self) -> Option<&mut WasmSpec> {
        match &mut self.kind {
            PluginKind::Wasm(w) => Some(w),
            PluginKind::Lua(_) => None,
        }
    }

    /// The Lua side of the plugin; `None` for a Wasm plugin.
    pub fn lua(&self) -> Option<&LuaSpec> {
        match &self.kind {
            PluginKind::Lua(l) => Some(l),
            PluginKind::Wasm(_) => None,
        }
    }

    pub fn is_lua(&self) -> bool {
        matches!(self.kind, PluginKind::Lua(_))
    }

    /// The root id a Wasm plugin's root context has; empty for a Lua filter.
    pub fn root_id(&self) -> &str {
        self.wasm().map_or("", |w| w.root_id.as_str())
    }
}

/// Free-form facts about where a plugin's module came from, shown by /plugins as they are.
pub type Origin = BTreeMap<String, serde_json::Value>;

/// Extra metadata shown by /config_dump.
pub type Labels = BTreeMap<String, String>;
