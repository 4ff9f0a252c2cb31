//! Istio `WasmPlugin` and `TrafficExtension` resources (`extensions.istio.io/v1alpha1`), read
//! from YAML files and folders as users keep them, validated as Istio validates them, and turned
//! into the ordered list of plugin declarations one workload gets.
//!
//! Pure functions: nothing here fetches a module or opens a socket.
//!
//! - [`load_resources`] / [`parse_resources`]: files and folders → a [`ResourceSet`] (every
//!   resource validated; errors name the file, line, resource and field).
//! - [`ResourceSet::plugins_for`]: the [`PluginDecl`]s that apply to a [`Workload`], in chain
//!   order (selection in `select.rs`, ordering in `order.rs`).
//!
//! The behaviour follows `/work/shared/reference/istio-wasmplugin.md` (§1.2 fields, §1.4
//! validation, §1.5 selection and ordering, §1.9 TrafficExtension, §3.4 field mapping).

mod envoy_filter;
mod load;
mod order;
mod resource;
mod route_patch;
mod select;
mod url;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use wasp_delivery::{ModuleSource, PullPolicy, UrlError};
pub use wasp_spec::{FailStrategy, TrafficDirection};

pub(crate) use self::load::is_resource_file;
pub use self::load::{load_resources, parse_resources};
use crate::Workload;
use crate::error::ConfigError;

/// The namespace whose resources apply to every workload when no other is configured: Istio's
/// MeshConfig `rootNamespace` default.
pub const DEFAULT_ROOT_NAMESPACE: &str = "istio-system";

/// Every resource read from the plugin sources, validated; and the Secrets found next to them
/// (for `imagePullSecret`).
#[derive(Debug, Clone, Default)]
pub struct ResourceSet {
    pub(crate) resources: Vec<Resource>,
    /// EnvoyFilter `HTTP_ROUTE` patches: per-route settings of Lua filters.
    pub(crate) route_patches: Vec<RoutePatch>,
    pub(crate) secrets: Vec<SecretDoc>,
    pub(crate) warnings: Vec<ConfigError>,
}

/// One Lua filter setting an EnvoyFilter `HTTP_ROUTE` patch gives the routes it matches
/// (`typed_per_filter_config` of `envoy.filters.http.lua`: `LuaPerRoute` or `FilterConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePatch {
    /// The EnvoyFilter's namespace.
    pub namespace: String,
    /// Its `workloadSelector` / `targetRefs`.
    pub attachment: Attachment,
    /// The key of the setting: the name the Lua filter was inserted under.
    pub filter_name: String,
    /// `routeConfiguration.vhost.route.name`; none: every route (of the host, if given).
    pub routes: Vec<String>,
    /// `routeConfiguration.vhost.name`.
    pub virtual_hosts: Vec<String>,
    /// What the filter does on those routes.
    pub setting: LuaRouteSetting,
    /// Where the patch was read, for messages.
    pub source: Source,
}

/// What a route patch does with a Lua filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LuaRouteSetting {
    /// `disabled: true` (`LuaPerRoute` or `FilterConfig`).
    Disabled,
    /// `LuaPerRoute.name`: one of the filter's `source_codes`.
    Named(String),
    /// `LuaPerRoute.source_code.inline_string`.
    Source(String),
}

impl ResourceSet {
    /// What was accepted but not written as Istio spells it (`selector.labels` for
    /// `selector.matchLabels`, ...): each names the file, line and field like an error, and
    /// says the canonical spelling.
    pub fn warnings(&self) -> &[ConfigError] {
        &self.warnings
    }

    /// Adds what another read found (one Kubernetes object at a time is read on its own).
    pub(crate) fn extend(&mut self, other: ResourceSet) {
        self.resources.extend(other.resources);
        self.route_patches.extend(other.route_patches);
        self.secrets.extend(other.secrets);
        self.warnings.extend(other.warnings);
    }

    /// The Secrets the resources name as `imagePullSecret`: `(namespace, name)`, each once,
    /// resolved as [`ResourceSet::plugins_for`] resolves them (in the resource's namespace).
    pub fn pull_secret_names(&self) -> Vec<(String, String)> {
        let mut names: Vec<(String, String)> = self
            .resources
            .iter()
            .filter_map(|r| match &r.body {
                ResourceBody::Wasm(w) => w
                    .pull_secret
                    .as_deref()
                    .map(|name| (r.namespace.clone(), secret_name(name).to_string())),
                ResourceBody::Lua(_) => None,
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The WasmPlugin and TrafficExtension resources, in the order they were read.
    pub fn resources(&self) -> &[Resource] {
        &self.resources
    }

    /// The plugins that apply to `workload`, in chain order (requests pass them first to last).
    ///
    /// `root_namespace` is Istio's root namespace ([`DEFAULT_ROOT_NAMESPACE`] usually): its
    /// resources apply to workloads of every namespace. `host_env` answers `valueFrom: HOST`
    /// environment variables from wasp's own environment (`|k| std::env::var(k).ok()`); a
    /// variable it does not know is left out, as Envoy does.
    ///
    /// `match` is not applied here (it depends on the listener): see [`PluginDecl::matcher`].
    /// NETWORK plugins are returned too (see [`PluginDecl::plugin_type`]).
    pub fn plugins_for(
        &self,
        workload: &Workload,
        root_namespace: &str,
        host_env: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<PluginDecl> {
        let selected = select::select(&self.resources, workload, root_namespace);
        order::order(selected)
            .into_iter()
            .map(|r| {
                let mut decl = r.declare(&self.secrets, host_env);
                self.apply_route_patches(&mut decl, workload, root_namespace);
                if let Some(services) = select::service_targets(r, workload) {
                    // Off, except on the routes to these services.
                    decl.routing.default_disabled = true;
                    decl.routing.rules.insert(
                        0,
                        wasp_spec::MatchRule {
                            virtual_hosts: Vec::new(),
                            domains: Vec::new(),
                            services,
                            routes: Vec::new(),
                            setting: wasp_spec::PluginSetting::Enabled,
                        },
                    );
                }
                decl
            })
            .collect()
    }
}

impl ResourceSet {
    /// The settings of the `HTTP_ROUTE` patches that apply to `workload`, as rules of the
    /// EnvoyFilter Lua filter `decl` (keyed by the name it was inserted under).
    fn apply_route_patches(&self, decl: &mut PluginDecl, workload: &Workload, root: &str) {
        let PluginBody::Lua(lua) = &decl.body else {
            return;
        };
        if lua.filter_name.is_empty() {
            return;
        }
        for patch in &self.route_patches {
            let namespace_ok = patch.namespace == workload.namespace || patch.namespace == root;
            if !namespace_ok
                || patch.filter_name != lua.filter_name
                || !select::attachment_applies(&patch.attachment, &patch.namespace, workload)
            {
                continue;
            }
            let setting = match &patch.setting {
                LuaRouteSetting::Disabled => wasp_spec::PluginSetting::Disabled,
                LuaRouteSetting::Source(code) => {
                    wasp_spec::PluginSetting::LuaSource(std::sync::Arc::from(code.as_str()))
                }
                LuaRouteSetting::Named(name) => match lua.source_codes.get(name) {
                    Some(code) => {
                        wasp_spec::PluginSetting::LuaSource(std::sync::Arc::from(code.as_str()))
                    }
                    None => {
                        tracing::warn!(
                            plugin = %decl.key,
                            "an HTTP_ROUTE patch ({}:{}) names the script `{name}`, which the filter's source_codes lack: left out",
                            patch.source.file.display(),
                            patch.source.line
                        );
                        continue;
                    }
                },
            };
            let everywhere = patch.routes.is_empty() && patch.virtual_hosts.is_empty();
            decl.routing.rules.push(wasp_spec::MatchRule {
                virtual_hosts: if patch.routes.is_empty() {
                    patch.virtual_hosts.clone()
                } else {
                    Vec::new()
                },
                domains: if everywhere {
                    vec!["*".to_string()]
                } else {
                    Vec::new()
                },
                services: Vec::new(),
                routes: patch.routes.clone(),
                setting,
            });
        }
    }
}

/// Which resource type a declaration came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// An Istio `WasmPlugin` (`extensions.istio.io/v1alpha1`).
    WasmPlugin,
    /// An Istio `TrafficExtension`: a `wasm` or a `lua` body.
    TrafficExtension,
    /// An Istio EnvoyFilter inserting an `envoy.filters.http.lua` filter.
    EnvoyFilter,
}

impl ResourceKind {
    /// The Kubernetes `kind`, as error messages and a plugin's origin on /plugins name it.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::WasmPlugin => "WasmPlugin",
            ResourceKind::TrafficExtension => "TrafficExtension",
            ResourceKind::EnvoyFilter => "EnvoyFilter",
        }
    }
}

impl std::fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where in the chain a plugin goes. The variants are in chain order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PluginPhase {
    /// An EnvoyFilter patch with `INSERT_FIRST`: before every other plugin.
    First,
    /// Before Istio's authentication filters.
    Authn,
    /// After authentication, before authorization (RBAC).
    Authz,
    /// After authorization, before Istio's stats.
    Stats,
    /// No phase (`UNSPECIFIED_PHASE`, or nothing): after the STATS plugins, near the router.
    Unspecified,
    /// An EnvoyFilter patch with `INSERT_BEFORE` the router: after every WasmPlugin.
    BeforeRouter,
}

impl PluginPhase {
    /// The WasmPlugin spelling (`AUTHN`, ..., `UNSPECIFIED_PHASE`).
    pub fn as_str(self) -> &'static str {
        match self {
            PluginPhase::Authn => "AUTHN",
            PluginPhase::Authz => "AUTHZ",
            PluginPhase::Stats => "STATS",
            PluginPhase::Unspecified => "UNSPECIFIED_PHASE",
            PluginPhase::First => "INSERT_FIRST",
            PluginPhase::BeforeRouter => "INSERT_BEFORE_ROUTER",
        }
    }
}

/// `type`: which chain the plugin belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginType {
    /// `HTTP` or `UNSPECIFIED_PLUGIN_TYPE`: an HTTP filter.
    Http,
    /// `NETWORK`: an L4 filter, for TCP listeners (which wasp does not have yet).
    Network,
}

/// `match[].mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkloadMode {
    /// `UNDEFINED` or nothing: all traffic.
    Undefined,
    /// Outbound traffic (and gateways).
    Client,
    /// Inbound traffic.
    Server,
    /// All traffic.
    ClientAndServer,
}

impl WorkloadMode {
    fn matches(self, direction: TrafficDirection) -> bool {
        match self {
            WorkloadMode::Undefined | WorkloadMode::ClientAndServer => true,
            WorkloadMode::Client => direction == TrafficDirection::Outbound,
            WorkloadMode::Server => direction == TrafficDirection::Inbound,
        }
    }
}

/// One `match` entry: a mode and ports (empty: any port).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    /// `mode`: the traffic direction the entry matches.
    pub mode: WorkloadMode,
    /// `ports[].number`: the listener ports the entry matches (1 to 65535, no duplicates).
    pub ports: Vec<u16>,
}

/// A plugin's `match`: which listeners it applies to, evaluated per listener.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TrafficMatcher {
    /// Empty: every listener.
    pub selectors: Vec<TrafficSelector>,
}

impl TrafficMatcher {
    /// Whether the plugin applies to a listener with this direction and port: with no `match`,
    /// always; otherwise when any entry matches both the direction (SERVER = inbound, CLIENT =
    /// outbound, CLIENT_AND_SERVER/UNDEFINED = both) and the port (no ports = any port).
    pub fn applies_to(&self, direction: TrafficDirection, port: u16) -> bool {
        self.selectors.is_empty()
            || self.selectors.iter().any(|s| {
                s.mode.matches(direction) && (s.ports.is_empty() || s.ports.contains(&port))
            })
    }
}

/// Which workloads a resource attaches to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attachment {
    /// No `selector` and no `targetRefs`: every workload of its namespace (of every namespace
    /// for the root namespace).
    All,
    /// `selector.matchLabels`: workloads carrying all these labels (an empty map selects all).
    Selector(BTreeMap<String, String>),
    /// `targetRefs` (or the legacy `targetRef`).
    TargetRefs(Vec<TargetRef>),
}

/// A `targetRefs` entry. `group` is canonical: `""` is written `core`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRef {
    /// The API group: `gateway.networking.k8s.io`, `core` or `networking.istio.io`.
    pub group: String,
    /// `Gateway`, `GatewayClass`, `Service` or `ServiceEntry`; only `Gateway` refs attach to a
    /// wasp workload (the others target waypoints).
    pub kind: String,
    /// The target's name, in the resource's own namespace (cross-namespace refs are rejected).
    pub name: String,
}

/// `creationTimestamp`, as seconds and nanoseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Whole seconds since the epoch (negative before 1970).
    pub seconds: i64,
    /// The fraction of the second, in nanoseconds (less than one second).
    pub nanos: u32,
}

/// Where a resource was read: the file and the line its document (or List item) starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The YAML file the resource was read from.
    pub file: PathBuf,
    /// The 1-based line the document or List item starts on.
    pub line: u64,
}

/// A `vmConfig.env` entry as declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvVar {
    /// `valueFrom: INLINE` (the default): this value.
    Inline {
        /// The variable's name.
        name: String,
        /// The value the module sees.
        value: String,
    },
    /// `valueFrom: HOST`: the value of wasp's own environment variable of that name.
    Host {
        /// The variable's name, in wasp's environment and as the module sees it.
        name: String,
    },
}

/// The Wasm part of a resource (a WasmPlugin's spec, a TrafficExtension's `wasm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmSpec {
    /// The URL with Istio's default scheme: `oci://` added when there is none.
    pub url: String,
    /// `url` parsed, or why its image reference cannot be pulled.
    pub module: Result<ModuleSource, UrlError>,
    /// Lowercase hex; `None` when empty or absent.
    pub sha256: Option<String>,
    /// `imagePullPolicy`; `Unspecified` when absent.
    pub pull_policy: PullPolicy,
    /// `imagePullSecret` as written: a Secret name, resolved in the resource's namespace by
    /// [`ResourceSet::plugins_for`].
    pub pull_secret: Option<String>,
    /// `pluginConfig` as compact JSON with sorted keys; empty when absent or `{}`.
    pub configuration: Vec<u8>,
    /// `pluginName`; empty when absent.
    pub root_id: String,
    /// `failStrategy`; `FAIL_CLOSE` when absent.
    pub fail_strategy: FailStrategy,
    /// Declared order; `ISTIO_META_*` inline entries are already removed (istio-agent strips
    /// them before Envoy sees them).
    pub env: Vec<EnvVar>,
    /// `type`; HTTP when absent.
    pub plugin_type: PluginType,
}

/// What a resource runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceBody {
    // Boxed: the Wasm fields are large and the Lua variant is one string.
    /// A Wasm module: a WasmPlugin, or a TrafficExtension's `wasm`.
    Wasm(Box<WasmSpec>),
    /// A Lua script: a TrafficExtension's `lua`, or an EnvoyFilter's Lua filter.
    Lua(LuaDecl),
}

/// A validated WasmPlugin or TrafficExtension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The resource type it was read as.
    pub kind: ResourceKind,
    /// `metadata.namespace`; `default` when absent (as `kubectl apply` would do).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.creationTimestamp`: breaks ties in chain order (oldest first, absent first).
    pub creation_timestamp: Option<Timestamp>,
    /// `metadata.resourceVersion`, as text.
    pub resource_version: Option<String>,
    /// `selector` / `targetRefs`: which workloads it applies to.
    pub attachment: Attachment,
    /// `phase`; `Unspecified` when absent.
    pub phase: PluginPhase,
    /// `priority`: higher runs first within a phase; `None` when unset.
    pub priority: Option<i32>,
    /// `match`: which listeners it applies to.
    pub matcher: TrafficMatcher,
    /// The Wasm module or Lua script it runs.
    pub body: ResourceBody,
    /// Where it was read, for messages and /plugins.
    pub source: Source,
    /// Per-host, per-service and per-route settings (Higress `matchRules`, Istio `targetRefs`
    /// of kind Service).
    pub routing: wasp_spec::PluginRouting,
}

impl Resource {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    fn declare(
        &self,
        secrets: &[SecretDoc],
        host_env: &dyn Fn(&str) -> Option<String>,
    ) -> PluginDecl {
        let body = match &self.body {
            ResourceBody::Lua(lua) => PluginBody::Lua(lua.clone()),
            ResourceBody::Wasm(w) => PluginBody::Wasm(Box::new(WasmDecl {
                url: w.url.clone(),
                module: w.module.clone(),
                sha256: w.sha256.clone(),
                pull_policy: w.pull_policy,
                pull_secret: w
                    .pull_secret
                    .as_ref()
                    .map(|name| resolve_secret(secrets, &self.namespace, name)),
                root_id: w.root_id.clone(),
                configuration: w.configuration.clone(),
                env: w
                    .env
                    .iter()
                    .filter_map(|e| match e {
                        EnvVar::Inline { name, value } => Some((name.clone(), value.clone())),
                        EnvVar::Host { name } => host_env(name).map(|v| (name.clone(), v)),
                    })
                    .collect(),
                fail_strategy: w.fail_strategy,
                plugin_type: w.plugin_type,
            })),
        };
        PluginDecl {
            key: self.key(),
            name: format!("{}.{}", self.namespace, self.name),
            kind: self.kind,
            phase: self.phase,
            priority: self.priority,
            matcher: self.matcher.clone(),
            resource_version: self.resource_version.clone(),
            source: self.source.clone(),
            body,
            routing: self.routing.clone(),
        }
    }
}

/// One plugin as a workload runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginDecl {
    /// `namespace/name`: unique in a [`ResourceSet`], stable across reloads.
    pub key: String,
    /// `namespace.name`: the plugin's name (Envoy `PluginConfig.name`, the `plugin_name`
    /// property).
    pub name: String,
    /// The resource type it was declared by.
    pub kind: ResourceKind,
    /// Its place in the chain, before `priority`.
    pub phase: PluginPhase,
    /// `None` when unset (ordered after every explicit priority).
    pub priority: Option<i32>,
    /// Which listeners the plugin applies to: [`TrafficMatcher::applies_to`].
    pub matcher: TrafficMatcher,
    /// `metadata.resourceVersion`, if the file has one: with `imagePullPolicy: Always`, a
    /// changed value means "re-resolve the module".
    pub resource_version: Option<String>,
    /// Where the resource was read.
    pub source: Source,
    /// The Wasm module or Lua script to run.
    pub body: PluginBody,
    /// Which requests it serves with which configuration, beyond its listeners.
    pub routing: wasp_spec::PluginRouting,
}

impl PluginDecl {
    /// HTTP or NETWORK (Lua is always HTTP).
    pub fn plugin_type(&self) -> PluginType {
        match &self.body {
            PluginBody::Wasm(w) => w.plugin_type,
            PluginBody::Lua(_) => PluginType::Http,
        }
    }

    /// The Wasm part; `None` for a Lua plugin.
    pub fn wasm(&self) -> Option<&WasmDecl> {
        match &self.body {
            PluginBody::Wasm(w) => Some(w),
            PluginBody::Lua(_) => None,
        }
    }
}

/// What a plugin runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginBody {
    // Boxed: the Wasm fields are large and the Lua variant is one string.
    /// A Wasm module, to fetch and run in a VM.
    Wasm(Box<WasmDecl>),
    /// A TrafficExtension with a `lua:` body.
    Lua(LuaDecl),
}

/// A Lua TrafficExtension's script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LuaDecl {
    /// `lua.inlineCode`, 1 to 65536 bytes.
    pub inline_code: String,
    /// The HTTP filter name an EnvoyFilter inserted it under (what `HTTP_ROUTE` patches key
    /// their settings by); empty for a TrafficExtension.
    pub filter_name: String,
    /// An EnvoyFilter Lua filter's named scripts (`source_codes`), for `LuaPerRoute.name`.
    pub source_codes: BTreeMap<String, String>,
}

/// A Wasm plugin, with everything resolved for one workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmDecl {
    /// The URL as written, with `oci://` added when it has no scheme: the plugin's `url`.
    pub url: String,
    /// `url` parsed once (Istio's default scheme applied), or why the image reference cannot
    /// be pulled: Istio accepts such a resource and fails the fetch, and so does wasp.
    pub module: Result<ModuleSource, UrlError>,
    /// `sha256`, lowercase hex: the module's hash for http and files, the manifest digest for
    /// OCI (Istio's meaning).
    pub sha256: Option<String>,
    /// `imagePullPolicy` as declared; the fetch applies [`PullPolicy::effective`].
    pub pull_policy: PullPolicy,
    /// `imagePullSecret`, looked up among the loaded Secrets of the plugin's namespace.
    pub pull_secret: Option<PullSecret>,
    /// `pluginName`, or empty.
    pub root_id: String,
    /// Handed to `proxy_on_configure`: `pluginConfig` as compact JSON with sorted keys, or
    /// nothing.
    pub configuration: Vec<u8>,
    /// The environment the module sees: inline values, and host values wasp's environment has.
    pub env: Vec<(String, String)>,
    /// `failStrategy`: what requests get when the plugin cannot be fetched, loaded or run.
    pub fail_strategy: FailStrategy,
    /// HTTP or NETWORK; only HTTP plugins are run.
    pub plugin_type: PluginType,
}

/// A resolved `imagePullSecret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullSecret {
    /// The Secret's `.dockerconfigjson`, decoded: `{"auths": {"host": {...}}}`.
    Found {
        /// `imagePullSecret` as written.
        name: String,
        /// The decoded `.dockerconfigjson` bytes.
        dockerconfigjson: Vec<u8>,
    },
    /// The Secret is not among the loaded documents, or is not usable. Istio then fails the
    /// fetch (it does not pull anonymously): the plugin's `failStrategy` decides.
    Unresolved {
        /// `imagePullSecret` as written.
        name: String,
        /// Why it could not be used, naming the Secret (and where it was read, if found).
        reason: String,
    },
}

/// A `kind: Secret` document found in the sources.
#[derive(Debug, Clone)]
pub(crate) struct SecretDoc {
    pub namespace: String,
    pub name: String,
    /// The decoded `.dockerconfigjson`, or why it cannot be used.
    pub dockerconfigjson: Result<Vec<u8>, String>,
    pub source: Source,
}

/// The Secret an `imagePullSecret` names, without `kubernetes://` and a namespace.
fn secret_name(written: &str) -> &str {
    let bare = written.strip_prefix("kubernetes://").unwrap_or(written);
    bare.rsplit('/').next().unwrap_or(bare)
}

/// Istio resolves `imagePullSecret` in the plugin's namespace; `kubernetes://[ns/]name` is
/// accepted with the namespace forced to the plugin's (reference §1.2, `imagePullSecret`).
fn resolve_secret(secrets: &[SecretDoc], namespace: &str, name: &str) -> PullSecret {
    let bare = secret_name(name);
    let found = secrets
        .iter()
        .rev()
        .find(|s| s.namespace == namespace && s.name == bare);
    match found {
        Some(secret) => match &secret.dockerconfigjson {
            Ok(bytes) => PullSecret::Found {
                name: name.to_string(),
                dockerconfigjson: bytes.clone(),
            },
            Err(reason) => PullSecret::Unresolved {
                name: name.to_string(),
                reason: format!(
                    "Secret {namespace}/{bare} ({}:{}) {reason}",
                    secret.source.file.display(),
                    secret.source.line
                ),
            },
        },
        None => PullSecret::Unresolved {
            name: name.to_string(),
            reason: format!("Secret {namespace}/{bare} is not among the plugin sources"),
        },
    }
}
