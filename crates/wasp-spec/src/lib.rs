//! What the data plane runs: listeners, routes, clusters and plugins, already validated.
//!
//! The configuration layer (`wasp-config`) turns YAML and WasmPlugin resources into a
//! [`ProxySpec`]; the data plane (`wasp-proxy`) runs it and never parses text. This crate is
//! the contract between the two, with no dependency on either.

#![deny(missing_docs)]

mod http_options;
mod per_route;
mod resilience;

pub use http_options::HttpOptions;

pub use per_route::{MatchRule, PluginRouting, PluginSetting, PluginSettings, VirtualHostSpec};
pub use resilience::{
    CircuitBreakers, HealthCheck, LbPolicy, OutlierDetection, RetryOn, RetryPolicy,
};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The whole proxy.
#[derive(Debug, Clone)]
pub struct ProxySpec {
    /// Where the admin endpoint listens; `None`: no admin endpoint.
    pub admin: Option<SocketAddr>,
    /// The admin endpoint refuses what would change the running proxy (`POST /logging`) and
    /// only reports.
    pub admin_read_only: bool,
    /// Worker threads, each with its own event loop and its own VM of every plugin.
    pub workers: usize,
    /// Who this proxy is.
    pub node: NodeSpec,
    /// Where clients connect.
    pub listeners: Vec<ListenerSpec>,
    /// Where requests and callouts go.
    pub clusters: Vec<ClusterSpec>,
    /// Plugins in chain order (requests pass them first to last, responses last to first).
    pub plugins: Vec<PluginSpec>,
    /// Per-stream limit on buffered body bytes (Envoy's per-connection buffer limit).
    pub buffer_limit_bytes: usize,
    /// Distributed tracing; `None`: no spans, no trace headers added.
    pub tracing: Option<TracingSpec>,
    /// How failed plugin VMs are replaced.
    pub plugin_recovery: RecoveryPolicy,
    /// Most client connections open at once, over all listeners; more are closed as they are
    /// accepted (Envoy's `global_downstream_max_connections`). `None`: no limit, as in Envoy.
    pub max_connections: Option<usize>,
}

/// How a plugin VM that failed (a trap, the CPU deadline, the memory cap) is replaced, whatever
/// the plugin's failure strategy: the first replacement comes with the next request, later ones
/// after a backoff that doubles from `backoff_base` up to `backoff_max` (with ±20 % jitter); a VM
/// that fails `park_after` times within `park_window` is parked — no replacement for
/// `park_for` — and then tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryPolicy {
    /// The wait before the second replacement of a run of failures.
    pub backoff_base: Duration,
    /// The longest wait between replacements.
    pub backoff_max: Duration,
    /// Failures within `park_window` that park the VM.
    pub park_after: u32,
    /// The window failures are counted in.
    pub park_window: Duration,
    /// How long a parked VM stays down before it is tried again.
    pub park_for: Duration,
}

impl Default for RecoveryPolicy {
    fn default() -> RecoveryPolicy {
        RecoveryPolicy {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            park_after: 10,
            park_window: Duration::from_secs(60),
            park_for: Duration::from_secs(60),
        }
    }
}

/// Distributed tracing: a span per request, exported over OTLP/HTTP.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingSpec {
    /// The collector's OTLP/HTTP traces endpoint (`http://collector:4318/v1/traces`).
    pub otlp_endpoint: String,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// Share of new traces sampled (Envoy's `random_sampling`), 0–100.
    pub sampling_percent: f64,
    /// Send B3 headers upstream as well as W3C `traceparent` (for Zipkin-era services).
    pub propagate_b3: bool,
}

/// Identity of this proxy (`node.*` / `xds.node.*` properties).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeSpec {
    /// `node.id` (`xds.node.id`).
    pub id: String,
    /// `node.cluster` (`xds.node.cluster`).
    pub cluster: String,
    /// Free-form metadata, as Envoy's node metadata Struct.
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// Which way a listener's traffic goes (Envoy's `traffic_direction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrafficDirection {
    /// Traffic into the workload (Istio's sidecar inbound listeners).
    Inbound,
    /// Traffic out of the workload.
    Outbound,
}

/// A listener: where clients connect, and how their requests are routed.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerSpec {
    /// Unique name (the `xds.listener_name` property).
    pub name: String,
    /// Where it listens.
    pub address: SocketAddr,
    /// Which way its traffic goes (WasmPlugin `match` selects on it).
    pub direction: TrafficDirection,
    /// TLS termination; `None`: plain TCP.
    pub tls: Option<ServerTls>,
    /// Tried in order; the first that matches serves the request (HTTP listeners; empty
    /// for a TCP one). These are the routes of the default host (domain `*`): requests whose
    /// authority no [`ListenerSpec::virtual_hosts`] entry matches.
    pub routes: Vec<RouteSpec>,
    /// Hosts by domain, each with its routes, matched before the default routes.
    pub virtual_hosts: Vec<VirtualHostSpec>,
    /// `Some`: a TCP listener (Envoy's `tcp_proxy`), which relays each connection's bytes to
    /// a cluster instead of serving HTTP.
    pub tcp: Option<TcpProxySpec>,
    /// Where and how each finished request is logged (Envoy's file access loggers).
    pub access_log: Vec<AccessLogSpec>,
    /// Timeouts and limits for HTTP clients (unused by a TCP listener).
    pub http: HttpOptions,
}

/// One access log of a listener: a line per finished request, in Envoy's format language.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessLogSpec {
    /// The file appended to (`/dev/stdout` and `/dev/stderr` included).
    pub path: PathBuf,
    /// What a line says.
    pub format: AccessLogFormat,
}

/// An access log's format, as configured (the data plane parses it with wasp-accesslog; the
/// configuration layer has checked that it parses).
#[derive(Debug, Clone, PartialEq)]
pub enum AccessLogFormat {
    /// Envoy's default text format.
    EnvoyDefault,
    /// Istio's default text format (meshConfig `accessLogFormat` unset).
    IstioDefault,
    /// Envoy's `text_format`.
    Text(String),
    /// Envoy's `json_format`.
    Json(serde_json::Map<String, serde_json::Value>),
}

/// What a TCP listener does with a connection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TcpProxySpec {
    /// Where connections go when no SNI route applies; `None`: such a connection is closed.
    pub cluster: Option<String>,
    /// By the TLS server name the client sends (passthrough: the listener does not terminate
    /// TLS, it reads the name from the ClientHello); the first route that matches wins.
    pub sni_routes: Vec<SniRoute>,
    /// A connection with no bytes either way for this long is closed; `None`: never
    /// (Envoy's tcp_proxy default is 1 hour).
    pub idle_timeout: Option<Duration>,
}

/// One SNI route of a TCP listener.
#[derive(Debug, Clone, PartialEq)]
pub struct SniRoute {
    /// Server names: exact (`db.example.com`) or a wildcard for one or more leading labels
    /// (`*.example.com`), compared without case.
    pub server_names: Vec<String>,
    /// The cluster a matching connection goes to.
    pub cluster: String,
}

/// TLS a listener terminates. The files are re-read when they change (certificate
/// rotation), without closing a connection.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerTls {
    /// The certificate chain (PEM).
    pub cert_file: PathBuf,
    /// The private key (PEM).
    pub key_file: PathBuf,
    /// CAs client certificates are verified against (Envoy's `validation_context.trusted_ca`);
    /// `None`: no client certificate is asked for.
    pub ca_file: Option<PathBuf>,
    /// With `ca_file`: refuse clients without a certificate (Envoy's
    /// `require_client_certificate`); otherwise a certificate is optional but verified when
    /// sent.
    pub require_client_certificate: bool,
}

/// One route of a listener.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSpec {
    /// Envoy's route `name` (Lua's `streamInfo():routeName()`, Higress's `ingress` rules);
    /// empty: none.
    pub name: String,
    /// Plugin settings for requests of this route (Envoy's `typed_per_filter_config`).
    pub plugins: PluginSettings,
    /// How the path must match.
    pub path: PathMatch,
    /// Every header matcher must match.
    pub headers: Vec<HeaderMatch>,
    /// What a matching request gets.
    pub action: RouteAction,
}

/// How a route matches the path (without the query).
#[derive(Debug, Clone)]
pub enum PathMatch {
    /// The path starts with this.
    Prefix(String),
    /// The path is exactly this.
    Exact(String),
    /// The whole path matches this expression.
    Regex(regex::Regex),
}

impl PartialEq for PathMatch {
    fn eq(&self, other: &PathMatch) -> bool {
        match (self, other) {
            (PathMatch::Prefix(a), PathMatch::Prefix(b))
            | (PathMatch::Exact(a), PathMatch::Exact(b)) => a == b,
            // Same expression text, same matcher.
            (PathMatch::Regex(a), PathMatch::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

/// A header a route requires.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderMatch {
    /// The header's name (lowercase).
    pub name: String,
    /// `None`: the header must be present; `Some`: it must have exactly this value.
    pub value: Option<String>,
}

/// What a matching request gets.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteAction {
    /// Forward to a cluster.
    Cluster {
        /// The cluster's name.
        name: String,
        /// Whole-request timeout (Envoy's route timeout: until the response's last byte);
        /// `None` disables it.
        timeout: Option<Duration>,
        /// Retries; `None`: one attempt.
        retry: Option<RetryPolicy>,
        /// The request header a `RingHash` cluster hashes (Envoy's route `hash_policy`).
        hash_header: Option<String>,
    },
    /// Answer directly, without an upstream.
    Direct {
        /// The status code.
        status: u16,
        /// The body (`text/plain` when not empty).
        body: String,
    },
}

/// The protocol spoken to a cluster's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// HTTP/1.1.
    Http1,
    /// HTTP/2 (h2c, or over TLS with ALPN).
    Http2,
}

/// A cluster: endpoints requests and callouts go to.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSpec {
    /// Unique name, which routes and callouts use.
    pub name: String,
    /// `host:port` endpoints.
    pub endpoints: Vec<String>,
    /// The protocol spoken to the endpoints.
    pub protocol: UpstreamProtocol,
    /// How long a connection may take to open.
    pub connect_timeout: Duration,
    /// TLS to the endpoints; `None`: plain TCP.
    pub tls: Option<ClientTls>,
    /// How an endpoint is picked.
    pub lb_policy: LbPolicy,
    /// Passive outlier detection; `None`: off (Envoy's default).
    pub outlier_detection: Option<OutlierDetection>,
    /// Active health checking; `None`: off.
    pub health_check: Option<HealthCheck>,
    /// Limits on connections, requests and retries.
    pub circuit_breakers: CircuitBreakers,
}

/// TLS to a cluster's endpoints. The files are re-read when they change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientTls {
    /// Server name to send and verify; defaults to the endpoint's host.
    pub sni: Option<String>,
    /// Roots to trust; `None` uses the web PKI roots.
    pub ca_file: Option<PathBuf>,
    /// The client certificate (chain, PEM) and key presented to the endpoints (mTLS).
    pub client_certificate: Option<CertificateFiles>,
    /// When not empty, the server certificate must carry one of these subject alternative
    /// names (URI, e.g. a SPIFFE id, or DNS), and this check replaces the host-name check
    /// (Envoy's `match_typed_subject_alt_names`, as Istio sets it).
    pub subject_alt_names: Vec<String>,
}

/// A certificate chain and its private key, as PEM files.
#[derive(Debug, Clone, PartialEq)]
pub struct CertificateFiles {
    /// The certificate chain (PEM), leaf first.
    pub cert_file: PathBuf,
    /// The private key (PEM).
    pub key_file: PathBuf,
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
    /// What requests get when the plugin cannot serve them.
    pub fail_strategy: FailStrategy,
    /// Istio phase and priority, for display.
    pub phase: Option<String>,
    /// Higher runs earlier within a phase (Istio's `priority`).
    pub priority: Option<i64>,
    /// Which listeners the plugin applies to; empty = all.
    pub listeners: Vec<String>,
    /// Why the code could not be obtained (fetch failed, ...): the plugin is then unavailable
    /// and its failure strategy applies.
    pub load_error: Option<String>,
    /// Facts about the code's delivery (digest, fetched at, ...), shown by /plugins.
    pub origin: Origin,
    /// Which requests it serves, and with which configuration, beyond its listeners.
    pub routing: PluginRouting,
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
    /// Environment variables the module sees (WASI `environ_get`).
    pub env: Vec<(String, String)>,
    /// A network (L4) plugin (Istio's `type: NETWORK`): it runs on the connections of TCP
    /// listeners, not on HTTP requests.
    pub network: bool,
}

impl std::fmt::Debug for WasmSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmSpec")
            .field("root_id", &self.root_id)
            .field("module_bytes", &self.module.len())
            .field("vm_id", &self.vm_id)
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

/// A Lua filter: the script's source, as the configuration gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LuaSpec {
    /// The script (it defines `envoy_on_request` and/or `envoy_on_response`).
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
            routing: PluginRouting::default(),
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

    /// Whether the plugin is a Lua filter.
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
