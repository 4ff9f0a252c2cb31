//! Istio `EnvoyFilter` resources, in the form most Istio users run Lua with: configPatches
//! that insert an `envoy.filters.http.lua` HTTP filter with inline code (each becomes a Lua
//! plugin of the chain), and `HTTP_ROUTE` patches that set its per-route settings
//! (`typed_per_filter_config`: `LuaPerRoute` or `FilterConfig`; `route_patch.rs`). Anything
//! else an EnvoyFilter can do (patch clusters, listeners, other filters) is refused with a
//! message that says what is supported, because wasp has no Envoy configuration to patch.
//!
//! Placement: `INSERT_BEFORE` the router puts the script after every WasmPlugin (Istio applies
//! EnvoyFilters to the configuration it generated, so the script lands right before the
//! router); `INSERT_FIRST` puts it before every WasmPlugin. EnvoyFilter `priority` orders
//! patches as Istio applies them: lower first.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use serde_saphyr::Spanned;

use super::resource::{Checker, RawMetadata, RawTargetRef};
use super::{
    Attachment, LuaDecl, PluginPhase, Resource, ResourceBody, ResourceKind, RoutePatch, Source,
    TrafficMatcher, TrafficSelector, WorkloadMode,
};
use crate::error::ConfigError;

type S<T> = Spanned<T>;
type Result<T> = std::result::Result<T, ConfigError>;

/// The apiVersions Istio serves EnvoyFilter under.
pub const API_VERSIONS: [&str; 2] = ["networking.istio.io/v1alpha3", "networking.istio.io/v1"];

pub(super) const LUA_FILTER_NAMES: [&str; 2] = ["envoy.filters.http.lua", "envoy.lua"];
const LUA_TYPES: [&str; 2] = [
    "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
    "type.googleapis.com/envoy.config.filter.http.lua.v2.Lua",
];
const ROUTER_NAMES: [&str; 2] = ["envoy.filters.http.router", "envoy.router"];
const HCM_NAMES: [&str; 2] = [
    "envoy.filters.network.http_connection_manager",
    "envoy.http_connection_manager",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawEnvoyFilter {
    pub api_version: S<String>,
    #[allow(dead_code)]
    pub kind: S<String>,
    pub metadata: S<RawMetadata>,
    pub spec: Option<S<RawEnvoyFilterSpec>>,
    #[allow(dead_code)]
    pub status: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawEnvoyFilterSpec {
    workload_selector: Option<S<RawWorkloadSelector>>,
    target_refs: Option<S<Vec<S<RawTargetRef>>>>,
    priority: Option<S<i64>>,
    config_patches: Option<S<Vec<S<RawPatch>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkloadSelector {
    labels: Option<BTreeMap<String, S<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawPatch {
    pub(super) apply_to: Option<S<String>>,
    #[serde(rename = "match")]
    pub(super) matcher: Option<S<RawPatchMatch>>,
    pub(super) patch: Option<S<RawPatchBody>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawPatchMatch {
    pub(super) context: Option<S<String>>,
    /// Proxy version / metadata conditions: there is one proxy, it matches.
    #[allow(dead_code)]
    pub(super) proxy: Option<IgnoredAny>,
    pub(super) listener: Option<S<RawListenerMatch>>,
    pub(super) route_configuration: Option<S<RawRouteConfigurationMatch>>,
    pub(super) cluster: Option<S<IgnoredAny>>,
}

/// `match.routeConfiguration` of an `HTTP_ROUTE` patch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawRouteConfigurationMatch {
    pub(super) port_number: Option<S<u32>>,
    pub(super) port_name: Option<S<String>>,
    pub(super) gateway: Option<S<String>>,
    pub(super) vhost: Option<S<RawVhostMatch>>,
    pub(super) name: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawVhostMatch {
    pub(super) name: Option<S<String>>,
    pub(super) domain_name: Option<S<String>>,
    pub(super) route: Option<S<RawRouteMatch>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRouteMatch {
    pub(super) name: Option<S<String>>,
    /// ANY, ROUTE, REDIRECT, DIRECT_RESPONSE: any route by its name here.
    #[allow(dead_code)]
    pub(super) action: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawListenerMatch {
    port_number: Option<S<u32>>,
    filter_chain: Option<S<RawFilterChainMatch>>,
    name: Option<S<String>>,
    port_name: Option<S<String>>,
    listener_filter: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawFilterChainMatch {
    filter: Option<S<RawFilterMatch>>,
    name: Option<S<String>>,
    sni: Option<S<String>>,
    transport_protocol: Option<S<String>>,
    application_protocols: Option<S<String>>,
    destination_port: Option<S<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawFilterMatch {
    name: Option<S<String>>,
    sub_filter: Option<S<RawSubFilter>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSubFilter {
    name: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawPatchBody {
    pub(super) operation: Option<S<String>>,
    pub(super) value: Option<S<Value>>,
    pub(super) filter_class: Option<S<String>>,
}

impl Checker<'_> {
    /// The Lua plugins an EnvoyFilter inserts (one per `HTTP_FILTER` patch), and the per-route
    /// settings its `HTTP_ROUTE` patches give Lua filters.
    pub fn envoy_filter(&self, raw: RawEnvoyFilter) -> Result<(Vec<Resource>, Vec<RoutePatch>)> {
        let (meta, spec) =
            self.head_for(&API_VERSIONS, &raw.api_version, &raw.metadata, raw.spec)?;
        let spec_at = spec.referenced;
        let spec = spec.value;
        let attachment = match (&spec.workload_selector, &spec.target_refs) {
            (Some(_), Some(refs)) => {
                return Err(self.err(
                    &refs.referenced,
                    "spec.targetRefs",
                    "only one of workloadSelector or targetRefs can be set",
                ));
            }
            (Some(sel), None) => Attachment::Selector(
                sel.value
                    .labels
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.value.clone()))
                    .collect(),
            ),
            (None, Some(refs)) => self.target_refs(refs, "spec.targetRefs")?,
            (None, None) => Attachment::All,
        };
        // Istio: lower priority is applied first; the default is 0.
        let applied = spec.priority.as_ref().map_or(0, |p| p.value);
        let applied = i32::try_from(applied).map_err(|_| {
            let p = spec.priority.as_ref().expect("set when out of range");
            self.err(
                &p.referenced,
                "spec.priority",
                "out of range (a 32-bit integer)",
            )
        })?;
        let patches = spec
            .config_patches
            .ok_or_else(|| self.err(&spec_at, "spec.configPatches", "is required"))?;
        if patches.value.is_empty() {
            return Err(self.err(
                &patches.referenced,
                "spec.configPatches",
                "must hold at least one patch",
            ));
        }
        let inserting = patches
            .value
            .iter()
            .filter(|p| {
                p.value
                    .apply_to
                    .as_ref()
                    .is_none_or(|a| a.value != "HTTP_ROUTE")
            })
            .count();
        let single = inserting == 1;
        let mut out = Vec::new();
        let mut routes = Vec::new();
        for (i, patch) in patches.value.into_iter().enumerate() {
            let field = format!("spec.configPatches[{i}]");
            if patch
                .value
                .apply_to
                .as_ref()
                .is_some_and(|a| a.value == "HTTP_ROUTE")
            {
                for p in self.route_patch(patch, &field)? {
                    routes.push(RoutePatch {
                        namespace: meta.namespace.clone(),
                        attachment: attachment.clone(),
                        filter_name: p.filter_name,
                        routes: p.routes,
                        virtual_hosts: p.virtual_hosts,
                        setting: p.setting,
                        source: Source {
                            file: self.file.to_path_buf(),
                            line: self.start.0,
                        },
                    });
                }
                continue;
            }
            let lua = self.lua_patch(patch, &field)?;
            out.push(Resource {
                kind: ResourceKind::EnvoyFilter,
                namespace: meta.namespace.clone(),
                name: if single {
                    meta.name.clone()
                } else {
                    format!("{}-{i}", meta.name)
                },
                creation_timestamp: meta.creation_timestamp,
                resource_version: meta.resource_version.clone(),
                attachment: attachment.clone(),
                routing: Default::default(),
                phase: lua.phase,
                // Our chain puts higher priorities first. Before the router, a patch applied
                // later (higher EnvoyFilter priority) lands later: negate. Inserted first, it
                // lands earlier: keep.
                priority: Some(match lua.phase {
                    PluginPhase::First => applied,
                    _ => applied.checked_neg().unwrap_or(i32::MAX),
                }),
                matcher: lua.matcher,
                body: ResourceBody::Lua(LuaDecl {
                    inline_code: lua.code.code,
                    filter_name: lua.code.filter_name,
                    source_codes: lua.code.source_codes,
                }),
                source: Source {
                    file: self.file.to_path_buf(),
                    line: self.start.0,
                },
            });
        }
        Ok((out, routes))
    }

    fn lua_patch(&self, patch: S<RawPatch>, field: &str) -> Result<LuaPatch> {
        let at = patch.referenced;
        let patch = patch.value;
        let apply_to = patch
            .apply_to
            .ok_or_else(|| self.err(&at, &format!("{field}.applyTo"), "is required"))?;
        if apply_to.value != "HTTP_FILTER" {
            return Err(self.err(
                &apply_to.referenced,
                &format!("{field}.applyTo"),
                format!(
                    "{} patches are not supported: wasp runs EnvoyFilters that insert an \
                     envoy.filters.http.lua filter (applyTo: HTTP_FILTER) and set its per-route \
                     settings (applyTo: HTTP_ROUTE); it has no Envoy configuration to patch \
                     otherwise",
                    apply_to.value
                ),
            ));
        }
        let (matcher, sub_filter) = match &patch.matcher {
            Some(m) => self.patch_match(m, field)?,
            None => (TrafficMatcher::default(), None),
        };
        let body = patch
            .patch
            .ok_or_else(|| self.err(&at, &format!("{field}.patch"), "is required"))?;
        let body_at = body.referenced;
        let body = body.value;
        if let Some(class) = &body.filter_class {
            return Err(self.err(
                &class.referenced,
                &format!("{field}.patch.filterClass"),
                "filterClass is not supported; use operation INSERT_BEFORE (router) or INSERT_FIRST",
            ));
        }
        let operation = body.operation.ok_or_else(|| {
            self.err(&body_at, &format!("{field}.patch.operation"), "is required")
        })?;
        let phase = match (operation.value.as_str(), sub_filter.as_deref()) {
            ("INSERT_FIRST", _) => PluginPhase::First,
            ("INSERT_BEFORE", None) => PluginPhase::BeforeRouter,
            ("INSERT_BEFORE", Some(name)) if ROUTER_NAMES.contains(&name) => {
                PluginPhase::BeforeRouter
            }
            ("INSERT_BEFORE", Some(name)) => {
                return Err(self.err(
                    &operation.referenced,
                    &format!("{field}.patch.operation"),
                    format!(
                        "INSERT_BEFORE {name}: wasp has none of Envoy's built-in filters to \
                         insert before; insert before envoy.filters.http.router, or INSERT_FIRST"
                    ),
                ));
            }
            (other, _) => {
                return Err(self.err(
                    &operation.referenced,
                    &format!("{field}.patch.operation"),
                    format!(
                        "operation {other} is not supported; use INSERT_BEFORE (with subFilter \
                         envoy.filters.http.router) or INSERT_FIRST"
                    ),
                ));
            }
        };
        let value = body
            .value
            .ok_or_else(|| self.err(&body_at, &format!("{field}.patch.value"), "is required"))?;
        let code = self.lua_code(&value, &format!("{field}.patch.value"))?;
        Ok(LuaPatch {
            phase,
            matcher,
            code,
        })
    }

    /// `match`: the context (inbound, outbound) and listener port, and the subFilter the patch
    /// is placed against.
    fn patch_match(
        &self,
        m: &S<RawPatchMatch>,
        field: &str,
    ) -> Result<(TrafficMatcher, Option<String>)> {
        let m = &m.value;
        for (present, name) in [
            (
                m.route_configuration.as_ref().map(|r| r.referenced),
                "routeConfiguration",
            ),
            (m.cluster.as_ref().map(|c| c.referenced), "cluster"),
        ] {
            if let Some(at) = present {
                return Err(self.err(
                    &at,
                    &format!("{field}.match.{name}"),
                    "an HTTP_FILTER patch matches a listener; this field does not apply",
                ));
            }
        }
        let mode = match m.context.as_ref().map(|c| (c.value.as_str(), c.referenced)) {
            None | Some(("ANY", _)) => WorkloadMode::Undefined,
            Some(("SIDECAR_INBOUND", _)) => WorkloadMode::Server,
            // A gateway's traffic is outbound traffic, as for WasmPlugin's CLIENT mode.
            Some(("SIDECAR_OUTBOUND" | "GATEWAY", _)) => WorkloadMode::Client,
            Some((other, at)) => {
                return Err(self.err(
                    &at,
                    &format!("{field}.match.context"),
                    format!(
                        "unknown context `{other}`, expected ANY, SIDECAR_INBOUND, \
                         SIDECAR_OUTBOUND or GATEWAY"
                    ),
                ));
            }
        };
        let mut ports = Vec::new();
        let mut sub_filter = None;
        if let Some(listener) = &m.listener {
            let l = &listener.value;
            for (present, name) in [
                (l.name.as_ref().map(|x| x.referenced), "name"),
                (l.port_name.as_ref().map(|x| x.referenced), "portName"),
                (
                    l.listener_filter.as_ref().map(|x| x.referenced),
                    "listenerFilter",
                ),
            ] {
                if let Some(at) = present {
                    return Err(self.unsupported_match(&at, field, &format!("listener.{name}")));
                }
            }
            if let Some(port) = &l.port_number {
                let port = u16::try_from(port.value).map_err(|_| {
                    self.err(
                        &port.referenced,
                        &format!("{field}.match.listener.portNumber"),
                        "must be a port (1 to 65535)",
                    )
                })?;
                ports.push(port);
            }
            if let Some(chain) = &l.filter_chain {
                let c = &chain.value;
                for (present, name) in [
                    (c.name.as_ref().map(|x| x.referenced), "name"),
                    (c.sni.as_ref().map(|x| x.referenced), "sni"),
                    (
                        c.transport_protocol.as_ref().map(|x| x.referenced),
                        "transportProtocol",
                    ),
                    (
                        c.application_protocols.as_ref().map(|x| x.referenced),
                        "applicationProtocols",
                    ),
                    (
                        c.destination_port.as_ref().map(|x| x.referenced),
                        "destinationPort",
                    ),
                ] {
                    if let Some(at) = present {
                        return Err(self.unsupported_match(
                            &at,
                            field,
                            &format!("listener.filterChain.{name}"),
                        ));
                    }
                }
                if let Some(filter) = &c.filter {
                    if let Some(name) = &filter.value.name
                        && !HCM_NAMES.contains(&name.value.as_str())
                    {
                        return Err(self.err(
                            &name.referenced,
                            &format!("{field}.match.listener.filterChain.filter.name"),
                            format!("`{}`: HTTP filters live in {}", name.value, HCM_NAMES[0]),
                        ));
                    }
                    sub_filter = filter
                        .value
                        .sub_filter
                        .as_ref()
                        .and_then(|s| s.value.name.as_ref())
                        .map(|n| n.value.clone());
                }
            }
        }
        let matcher = match (mode, ports.is_empty()) {
            (WorkloadMode::Undefined, true) => TrafficMatcher::default(),
            _ => TrafficMatcher {
                selectors: vec![TrafficSelector { mode, ports }],
            },
        };
        Ok((matcher, sub_filter))
    }

    fn unsupported_match(
        &self,
        at: &serde_saphyr::Location,
        field: &str,
        what: &str,
    ) -> ConfigError {
        self.err(
            at,
            &format!("{field}.match.{what}"),
            "not supported: a patch selects listeners by context and portNumber only",
        )
    }

    /// The inline code, name and named scripts of an `envoy.filters.http.lua` filter value.
    fn lua_code(&self, value: &S<Value>, field: &str) -> Result<LuaCode> {
        let at = &value.referenced;
        let err = |path: &str, message: String| self.err(at, &format!("{field}{path}"), message);
        let name = value
            .value
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !LUA_FILTER_NAMES.contains(&name) {
            return Err(err(
                ".name",
                format!(
                    "`{name}`: only {} filters are supported (wasp runs Lua scripts and \
                     Wasm plugins; declare Wasm plugins as WasmPlugin resources)",
                    LUA_FILTER_NAMES[0]
                ),
            ));
        }
        let config = match (
            value.value.get("typed_config"),
            value.value.get("typedConfig"),
        ) {
            (Some(c), _) | (None, Some(c)) => {
                let ty = c.get("@type").and_then(Value::as_str).unwrap_or("");
                if !LUA_TYPES.contains(&ty) {
                    return Err(err(
                        ".typed_config.@type",
                        format!("`{ty}` is not the Lua filter's type ({})", LUA_TYPES[0]),
                    ));
                }
                c
            }
            (None, None) => {
                return Err(err(".typed_config", "is required".to_string()));
            }
        };
        let mut source_codes = BTreeMap::new();
        for key in ["source_codes", "sourceCodes"] {
            let Some(codes) = config.get(key) else {
                continue;
            };
            let Some(codes) = codes.as_object() else {
                return Err(err(
                    &format!(".typed_config.{key}"),
                    "must be a mapping of names to sources".to_string(),
                ));
            };
            for (name, source) in codes {
                let code = inline_string(source).ok_or_else(|| {
                    err(
                        &format!(".typed_config.{key}.{name}"),
                        "no inline_string (files and other data sources are not supported)"
                            .to_string(),
                    )
                })?;
                source_codes.insert(name.clone(), code.to_string());
            }
        }
        let inline = ["inlineCode", "inline_code"]
            .iter()
            .find_map(|k| config.get(*k).and_then(Value::as_str))
            .or_else(|| inline_source(config, ["default_source_code", "defaultSourceCode"]));
        match inline {
            Some(code) if !code.trim().is_empty() => Ok(LuaCode {
                code: code.to_string(),
                filter_name: name.to_string(),
                source_codes,
            }),
            Some(_) => Err(err(".typed_config", "the inline code is empty".to_string())),
            None => Err(err(
                ".typed_config",
                "no inline code: give inline_code or default_source_code.inline_string (files \
                 and data sources other than inline strings are not supported)"
                    .to_string(),
            )),
        }
    }
}

/// A Lua filter's code as an `HTTP_FILTER` patch gives it.
struct LuaCode {
    code: String,
    /// The filter's name in the patch (`envoy.filters.http.lua` or `envoy.lua`).
    filter_name: String,
    source_codes: BTreeMap<String, String>,
}

/// A DataSource's `inline_string`.
fn inline_string(source: &Value) -> Option<&str> {
    ["inline_string", "inlineString"]
        .iter()
        .find_map(|k| source.get(*k).and_then(Value::as_str))
}

/// The `inline_string` of the DataSource under either spelling of a field (`source_code` /
/// `sourceCode`).
pub(super) fn inline_source<'a>(config: &'a Value, field: [&str; 2]) -> Option<&'a str> {
    field
        .iter()
        .filter_map(|k| config.get(*k))
        .find_map(inline_string)
}

struct LuaPatch {
    phase: PluginPhase,
    matcher: TrafficMatcher,
    code: LuaCode,
}
