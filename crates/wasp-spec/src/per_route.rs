//! Plugins per route and per host: a route or a virtual host can turn a plugin off or give it
//! a configuration of its own (Envoy's `typed_per_filter_config`, Higress's `matchRules`), and a
//! plugin can carry rules that pick its setting from the request's host, its route's cluster or
//! its route's name.

use std::collections::BTreeMap;
use std::sync::Arc;

/// What a plugin does for the requests of one route, host or rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSetting {
    /// Runs as configured (its own configuration).
    Enabled,
    /// Skipped (Envoy's `FilterConfig { disabled: true }`).
    Disabled,
    /// A Wasm plugin runs with this configuration: a root context of its own in the same VM
    /// (created once per distinct configuration, on each worker), and the request's context
    /// under it.
    Configuration(Arc<[u8]>),
    /// A Lua filter runs this script instead of its own (Envoy's `LuaPerRoute`: a named script
    /// of the filter's `source_codes`, resolved by the configuration layer, or inline code).
    LuaSource(Arc<str>),
}

/// Settings by plugin name, as a route or a virtual host gives them.
pub type PluginSettings = BTreeMap<String, PluginSetting>;

/// A virtual host of a listener (Envoy's `virtual_hosts`): the routes for requests whose
/// authority matches one of its domains.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualHostSpec {
    /// Its name (Lua's `virtualHost()`, logs).
    pub name: String,
    /// Domains as Envoy matches them: exact (`shop.example.com`, with a port if the authority
    /// carries one), suffix wildcard (`*.example.com`), prefix wildcard (`shop.*`) or `*`;
    /// compared without case. Exact names win over suffix wildcards, which win over prefix
    /// wildcards (the longest first), which win over `*`.
    pub domains: Vec<String>,
    /// Tried in order; the first that matches serves the request.
    pub routes: Vec<crate::RouteSpec>,
    /// Plugin settings for every route of the host (a route's own settings win).
    pub plugins: PluginSettings,
}

/// How a plugin's setting for a request is chosen beyond routes and hosts: Higress's
/// `defaultConfigDisable` and `matchRules`, Istio's `targetRefs` of kind `Service`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginRouting {
    /// Off unless a rule (or a route or host setting) turns it on.
    pub default_disabled: bool,
    /// The first rule that matches the request decides.
    pub rules: Vec<MatchRule>,
}

/// One rule of [`PluginRouting`]: it matches when any of its lists has an entry that matches
/// (an empty list matches nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchRule {
    /// Request authorities, as [`VirtualHostSpec::domains`] (exact or wildcard); the port is
    /// ignored.
    pub domains: Vec<String>,
    /// Services: the route's cluster by name, by its host (`reviews.default.svc.cluster.local`),
    /// with or without `:port`, or Istio's `outbound|PORT|SUBSET|HOST` form of it.
    pub services: Vec<String>,
    /// Route names (Higress's `ingress`: `namespace/name` or `name`).
    pub routes: Vec<String>,
    /// Virtual host names (an EnvoyFilter `HTTP_ROUTE` patch's `vhost.name`).
    pub virtual_hosts: Vec<String>,
    /// The setting when the rule matches.
    pub setting: PluginSetting,
}
