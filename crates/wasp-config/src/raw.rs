//! The YAML as written: serde types, unknown fields rejected, values still unchecked.
//!
//! Every value a later check can reject is wrapped in [`Spanned`], which serde-saphyr fills
//! with the line and column of the YAML node, so semantic errors point at the offending value.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub admin: Option<S<RawAdmin>>,
    pub workers: Option<S<i64>>,
    pub node: Option<RawNode>,
    pub workload: Option<RawWorkload>,
    pub buffer_limit: Option<S<String>>,
    pub listeners: Option<S<Vec<S<RawListener>>>>,
    pub clusters: Option<Vec<S<RawCluster>>>,
    pub plugins: Option<RawPlugins>,
    pub tracing: Option<S<RawTracing>>,
    pub plugin_recovery: Option<S<RawRecovery>>,
    /// Most client connections at once, over all listeners (no limit unless set).
    pub max_connections: Option<S<i64>>,
}

/// `plugin_recovery`: how failed plugin VMs are replaced.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecovery {
    pub backoff_base: Option<S<String>>,
    pub backoff_max: Option<S<String>>,
    pub park_after: Option<S<u32>>,
    pub park_window: Option<S<String>>,
    pub park_for: Option<S<String>>,
}

/// `tracing`: spans exported over OTLP/HTTP.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTracing {
    pub otlp_endpoint: S<String>,
    pub service_name: Option<S<String>>,
    pub sampling: Option<S<f64>>,
    pub propagate_b3: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// `IP:port`, or a bare port (`15000`, `:15000`) for loopback.
    pub address: S<String>,
    /// Refuse the endpoints that change the proxy.
    pub read_only: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    pub id: Option<String>,
    pub cluster: Option<String>,
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    pub namespace: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    pub name: S<String>,
    pub address: S<String>,
    pub direction: Option<RawDirection>,
    pub protocol: Option<S<RawListenerProtocol>>,
    pub tls: Option<RawServerTls>,
    pub routes: Option<Vec<S<RawRoute>>>,
    /// Hosts by domain, each with routes of its own (before `routes`, the default host).
    pub virtual_hosts: Option<Vec<S<RawVirtualHost>>>,
    /// TCP listeners: the cluster connections go to (unless an SNI route applies).
    pub cluster: Option<S<String>>,
    /// TCP listeners: clusters by the TLS server name of the ClientHello (passthrough).
    pub sni: Option<Vec<S<RawSniRoute>>>,
    /// Close a connection idle this long (`1h` unless set; `0s`: never): no bytes either way
    /// on a TCP listener, no request in flight on an HTTP one.
    pub idle_timeout: Option<S<String>>,
    /// HTTP listeners: Envoy's HttpConnectionManager timeouts and limits (`http_options.rs`).
    pub request_headers_timeout: Option<S<String>>,
    pub stream_idle_timeout: Option<S<String>>,
    pub request_timeout: Option<S<String>>,
    pub max_request_headers_kb: Option<S<i64>>,
    pub max_headers_count: Option<S<i64>>,
    pub max_concurrent_streams: Option<S<i64>>,
    /// Access logs, each a file and a format.
    pub access_log: Option<Vec<S<RawAccessLog>>>,
}

/// One access log: `path` (default `/dev/stdout`) and at most one of `format` (Envoy's
/// text format, or `envoy` / `istio` for those defaults) and `json_format`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccessLog {
    pub path: Option<S<String>>,
    pub format: Option<S<String>>,
    pub json_format: Option<S<serde_json::Map<String, serde_json::Value>>>,
}

/// One `sni` entry of a TCP listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSniRoute {
    pub server_names: S<Vec<S<String>>>,
    pub cluster: S<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawDirection {
    Inbound,
    Outbound,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawListenerProtocol {
    Http,
    Tcp,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServerTls {
    pub cert_file: S<String>,
    pub key_file: S<String>,
    /// CAs client certificates are verified against (mTLS).
    pub ca_file: Option<S<String>>,
    /// With `ca_file`: refuse clients without a certificate (default true, as Istio's
    /// STRICT mode; false: optional, verified when sent).
    pub require_client_certificate: Option<S<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Envoy's route name.
    pub name: Option<S<String>>,
    #[serde(rename = "match")]
    pub matcher: S<RawMatch>,
    /// Plugin settings for this route's requests, by plugin name.
    pub plugins: Option<BTreeMap<String, S<RawPluginSetting>>>,
    pub cluster: Option<S<String>>,
    pub timeout: Option<S<String>>,
    pub direct_response: Option<S<RawDirectResponse>>,
    pub retry_policy: Option<S<RawRetryPolicy>>,
    pub hash_policy: Option<S<RawHashPolicy>>,
}

/// A virtual host: domains and the routes for requests to them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVirtualHost {
    pub name: S<String>,
    pub domains: S<Vec<S<String>>>,
    pub routes: Option<Vec<S<RawRoute>>>,
    /// Plugin settings for every route of the host, by plugin name.
    pub plugins: Option<BTreeMap<String, S<RawPluginSetting>>>,
}

/// What a plugin does on a route or host: exactly one field. `disabled: true` (Envoy's
/// `FilterConfig`); for a Wasm plugin `pluginConfig` or `configuration`; for a Lua filter
/// `name` (one of its `sourceCodes`) or `source_code` (Envoy's `LuaPerRoute`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPluginSetting {
    pub disabled: Option<S<bool>>,
    #[serde(rename = "pluginConfig")]
    pub plugin_config: Option<S<serde_json::Value>>,
    pub configuration: Option<S<String>>,
    pub name: Option<S<String>>,
    pub source_code: Option<S<String>>,
}

/// A route's `retry_policy`, as Envoy's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetryPolicy {
    pub retry_on: S<String>,
    pub num_retries: Option<S<u32>>,
    pub per_try_timeout: Option<S<String>>,
    pub retriable_status_codes: Option<Vec<S<u16>>>,
    pub retry_back_off: Option<S<RawBackOff>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackOff {
    pub base_interval: S<String>,
    pub max_interval: Option<S<String>>,
}

/// A route's `hash_policy` (for `ring_hash` clusters): the header hashed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHashPolicy {
    pub header: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    pub prefix: Option<S<String>>,
    pub path: Option<S<String>>,
    pub regex: Option<S<String>>,
    pub headers: Option<Vec<S<RawHeaderMatch>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderMatch {
    pub name: S<String>,
    pub value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDirectResponse {
    pub status: S<u16>,
    pub body: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub name: S<String>,
    pub endpoints: S<Vec<S<String>>>,
    pub protocol: Option<RawUpstreamProtocol>,
    pub connect_timeout: Option<S<String>>,
    pub tls: Option<RawClientTls>,
    pub lb_policy: Option<S<String>>,
    pub outlier_detection: Option<S<RawOutlierDetection>>,
    pub health_check: Option<S<RawHealthCheck>>,
    pub circuit_breakers: Option<S<RawCircuitBreakers>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutlierDetection {
    pub consecutive_5xx: Option<S<u32>>,
    pub consecutive_gateway_failure: Option<S<u32>>,
    pub base_ejection_time: Option<S<String>>,
    pub max_ejection_time: Option<S<String>>,
    pub max_ejection_percent: Option<S<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheck {
    pub path: S<String>,
    pub host: Option<S<String>>,
    pub interval: Option<S<String>>,
    pub timeout: Option<S<String>>,
    pub unhealthy_threshold: Option<S<u32>>,
    pub healthy_threshold: Option<S<u32>>,
    pub expected_statuses: Option<Vec<S<RawStatusRange>>>,
}

/// `[start, end)`, as Envoy's `Int64Range`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStatusRange {
    pub start: S<u16>,
    pub end: S<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCircuitBreakers {
    pub max_connections: Option<S<u32>>,
    pub max_pending_requests: Option<S<u32>>,
    pub max_requests: Option<S<u32>>,
    pub max_retries: Option<S<u32>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawUpstreamProtocol {
    Http1,
    Http2,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClientTls {
    pub sni: Option<S<String>>,
    pub ca_file: Option<S<String>>,
    /// The client certificate presented to the endpoints (mTLS), with `key_file`.
    pub cert_file: Option<S<String>>,
    pub key_file: Option<S<String>>,
    /// SANs (URI or DNS) of which the server certificate must carry one.
    pub subject_alt_names: Option<S<Vec<S<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPlugins {
    pub sources: Option<S<Vec<String>>>,
    pub secrets: Option<S<Vec<String>>>,
    pub root_namespace: Option<S<String>>,
    pub insecure_registries: Option<Vec<S<String>>>,
    pub kubernetes: Option<S<RawKubernetes>>,
    pub inline: Option<Vec<S<RawPlugin>>>,
}

/// `plugins.kubernetes`: read the resources from the Kubernetes API.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawKubernetes {
    /// A kubeconfig file; without it, in-cluster configuration or the usual kubeconfig.
    pub kubeconfig: Option<S<String>>,
    /// Events and status conditions on the selected resources (default true).
    pub report_status: Option<S<bool>>,
}

/// An inline plugin: the fields of Istio's WasmPlugin spec that apply to one proxy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPlugin {
    pub name: S<String>,
    pub url: Option<S<String>>,
    /// A Lua filter instead of a Wasm module (Envoy's Lua API).
    pub lua: Option<S<RawLua>>,
    pub sha256: Option<S<String>>,
    pub plugin_name: Option<String>,
    pub configuration: Option<S<String>>,
    pub plugin_config: Option<S<serde_json::Value>>,
    pub vm_configuration: Option<String>,
    pub vm_id: Option<S<String>>,
    pub env: Option<BTreeMap<String, String>>,
    pub fail_strategy: Option<RawFailStrategy>,
    pub phase: Option<RawPhase>,
    pub priority: Option<i64>,
    pub listeners: Option<Vec<S<String>>>,
    /// `HTTP` (default) or `NETWORK`, as Istio's WasmPlugin `type`.
    #[serde(rename = "type")]
    pub plugin_type: Option<S<RawPluginType>>,
}

/// An inline plugin's `type`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum RawPluginType {
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "NETWORK")]
    Network,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawLua {
    pub inline_code: S<String>,
    /// Named scripts routes may run instead (Envoy's `source_codes`, `LuaPerRoute.name`).
    pub source_codes: Option<BTreeMap<String, S<String>>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub enum RawFailStrategy {
    #[serde(rename = "FAIL_CLOSE")]
    Close,
    #[serde(rename = "FAIL_OPEN")]
    Open,
    #[serde(rename = "FAIL_RELOAD")]
    Reload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum RawPhase {
    #[serde(rename = "AUTHN")]
    Authn,
    #[serde(rename = "AUTHZ")]
    Authz,
    #[serde(rename = "STATS")]
    Stats,
    #[serde(rename = "UNSPECIFIED_PHASE")]
    Unspecified,
}
