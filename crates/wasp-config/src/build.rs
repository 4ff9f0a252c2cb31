//! From the raw YAML types to a validated [`ProxySpec`]: defaults, cross references, files.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};
use wasp_spec::{
    ClientTls, ClusterSpec, FailStrategy, HeaderMatch, ListenerSpec, LuaSpec, NodeSpec, PathMatch,
    PluginKind, PluginSpec, ProxySpec, RouteAction, RouteSpec, ServerTls, TrafficDirection,
    UpstreamProtocol, WasmSpec,
};

use crate::error::{ConfigError, Errors};
use crate::raw::{
    RawCluster, RawConfig, RawDirection, RawFailStrategy, RawListener, RawListenerProtocol,
    RawPhase, RawPlugin, RawPlugins, RawRoute, RawUpstreamProtocol,
};
use crate::sources::PluginSources;
use crate::values::{
    canonical_json, check_endpoint, check_header_name, check_server_name, file_url,
    parse_byte_size, parse_duration, parse_module_file, parse_socket_addr, regex_error_message,
    resolve,
};
use crate::{DEFAULT_BUFFER_LIMIT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_ROUTE_TIMEOUT, Workload};

type Result<T> = std::result::Result<T, ConfigError>;

pub(crate) struct Builder<'a> {
    errs: Errors<'a>,
    /// The configuration file's folder, absolute: relative paths resolve against it.
    base: PathBuf,
    /// Modules read so far, by path: plugins sharing a file share the bytes.
    modules: HashMap<PathBuf, Arc<[u8]>>,
}

impl<'a> Builder<'a> {
    pub fn new(errs: Errors<'a>, base: PathBuf) -> Self {
        Builder {
            errs,
            base,
            modules: HashMap::new(),
        }
    }

    pub fn build(mut self, raw: RawConfig) -> Result<(ProxySpec, Workload, Option<PluginSources>)> {
        let admin = match &raw.admin {
            Some(admin) => Some(self.socket_addr(&admin.value.address, "admin.address")?),
            None => None,
        };
        let workers = match &raw.workers {
            Some(w) => match usize::try_from(w.value) {
                Ok(n) if n >= 1 => n,
                _ => return Err(self.errs.at(&w.referenced, "workers", "must be at least 1")),
            },
            None => default_workers(),
        };
        let node = match raw.node {
            Some(node) => NodeSpec {
                id: node.id.unwrap_or_default(),
                cluster: node.cluster.unwrap_or_default(),
                metadata: node.metadata.unwrap_or_default(),
            },
            None => NodeSpec::default(),
        };
        let workload = match raw.workload {
            Some(w) => Workload {
                namespace: w.namespace.unwrap_or_else(|| Workload::default().namespace),
                labels: w.labels.unwrap_or_default(),
            },
            None => Workload::default(),
        };
        let buffer_limit_bytes = match &raw.buffer_limit {
            Some(limit) => match parse_byte_size(&limit.value) {
                Ok(0) => {
                    return Err(self.errs.at(
                        &limit.referenced,
                        "buffer_limit",
                        "must be greater than 0",
                    ));
                }
                Ok(n) => n,
                Err(msg) => return Err(self.errs.at(&limit.referenced, "buffer_limit", msg)),
            },
            None => DEFAULT_BUFFER_LIMIT,
        };

        let clusters = self.clusters(raw.clusters.as_deref().unwrap_or_default())?;
        let listeners = self.listeners(raw.listeners.as_ref(), &clusters)?;

        let mut plugins = Vec::new();
        let mut sources = None;
        if let Some(raw_plugins) = &raw.plugins {
            sources = self.plugin_sources(raw_plugins)?;
            if let Some(inline) = &raw_plugins.inline {
                plugins = self.plugins(inline, &listeners)?;
            }
        }

        let spec = ProxySpec {
            admin,
            workers,
            node,
            listeners,
            clusters,
            plugins,
            buffer_limit_bytes,
        };
        Ok((spec, workload, sources))
    }

    fn socket_addr(&self, text: &Spanned<String>, path: &str) -> Result<std::net::SocketAddr> {
        parse_socket_addr(&text.value).map_err(|msg| self.errs.at(&text.referenced, path, msg))
    }

    fn name(&self, name: &Spanned<String>, path: &str) -> Result<String> {
        let value = name.value.trim();
        if value.is_empty() {
            return Err(self.errs.at(&name.referenced, path, "must not be empty"));
        }
        if value.chars().any(char::is_control) {
            return Err(self.errs.at(
                &name.referenced,
                path,
                "must not contain control characters",
            ));
        }
        Ok(value.to_string())
    }

    /// Duration field: `None` when absent, zero allowed.
    fn duration(&self, text: Option<&Spanned<String>>, path: &str) -> Result<Option<Duration>> {
        text.map(|t| parse_duration(&t.value).map_err(|msg| self.errs.at(&t.referenced, path, msg)))
            .transpose()
    }

    /// A file the data plane will read later (certificates, keys, CAs): it must exist now.
    fn existing_file(&self, text: &Spanned<String>, path: &str) -> Result<PathBuf> {
        if text.value.trim().is_empty() {
            return Err(self.errs.at(&text.referenced, path, "empty path"));
        }
        let file = resolve(&self.base, text.value.trim());
        let check = std::fs::metadata(&file).and_then(|meta| {
            if meta.is_dir() {
                Err(std::io::Error::other("it is a directory"))
            } else {
                std::fs::File::open(&file).map(drop)
            }
        });
        match check {
            Ok(()) => Ok(file),
            Err(e) => Err(self.errs.at(
                &text.referenced,
                path,
                format!("cannot read {}: {e}", file.display()),
            )),
        }
    }

    /// `plugins.sources`, `secrets`, `rootNamespace` and `insecureRegistries`: where the
    /// WasmPlugin resources are and how to fetch their modules. `None` without sources.
    fn plugin_sources(&self, raw: &RawPlugins) -> Result<Option<PluginSources>> {
        let paths = |list: &Option<Spanned<Vec<String>>>, field: &str| -> Result<Vec<PathBuf>> {
            let Some(list) = list else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for (i, text) in list.value.iter().enumerate() {
                let text = text.trim();
                if text.is_empty() {
                    return Err(self.errs.at(
                        &list.referenced,
                        format!("plugins.{field}[{i}]"),
                        "empty path",
                    ));
                }
                let path = resolve(&self.base, text);
                if let Err(e) = std::fs::metadata(&path) {
                    return Err(self.errs.at(
                        &list.referenced,
                        format!("plugins.{field}[{i}]"),
                        format!("cannot read {}: {e}", path.display()),
                    ));
                }
                out.push(path);
            }
            Ok(out)
        };
        let sources = paths(&raw.sources, "sources")?;
        let secrets = paths(&raw.secrets, "secrets")?;
        let root_namespace = match &raw.root_namespace {
            Some(ns) if ns.value.trim().is_empty() => {
                return Err(self.errs.at(
                    &ns.referenced,
                    "plugins.rootNamespace",
                    "must not be empty",
                ));
            }
            Some(ns) => ns.value.trim().to_string(),
            None => crate::wasmplugin::DEFAULT_ROOT_NAMESPACE.to_string(),
        };
        let mut insecure_registries = Vec::new();
        for (i, host) in raw
            .insecure_registries
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let value = host.value.trim();
            if value.is_empty() || value.contains('/') || value.chars().any(char::is_whitespace) {
                return Err(self.errs.at(
                    &host.referenced,
                    format!("plugins.insecureRegistries[{i}]"),
                    format!("`{value}` is not a registry host[:port] (or *)"),
                ));
            }
            insecure_registries.push(value.to_string());
        }
        if sources.is_empty() {
            return Ok(None);
        }
        Ok(Some(PluginSources {
            sources,
            secrets,
            root_namespace,
            insecure_registries,
        }))
    }

    fn clusters(&self, raw: &[Spanned<RawCluster>]) -> Result<Vec<ClusterSpec>> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::with_capacity(raw.len());
        for (i, c) in raw.iter().enumerate() {
            let c = &c.value;
            let path = format!("clusters[{i}]");
            let name = self.name(&c.name, &format!("{path}.name"))?;
            if let Some(first) = seen.insert(name.clone(), i) {
                return Err(self.errs.at(
                    &c.name.referenced,
                    format!("{path}.name"),
                    format!("duplicate cluster name `{name}` (also clusters[{first}])"),
                ));
            }
            if c.endpoints.value.is_empty() {
                return Err(self.errs.at(
                    &c.endpoints.referenced,
                    format!("{path}.endpoints"),
                    "at least one endpoint (host:port) is required",
                ));
            }
            let mut endpoints = Vec::with_capacity(c.endpoints.value.len());
            for (j, e) in c.endpoints.value.iter().enumerate() {
                let endpoint = check_endpoint(&e.value).map_err(|msg| {
                    self.errs
                        .at(&e.referenced, format!("{path}.endpoints[{j}]"), msg)
                })?;
                endpoints.push(endpoint);
            }
            let connect_timeout = match self.duration(
                c.connect_timeout.as_ref(),
                &format!("{path}.connect_timeout"),
            )? {
                Some(Duration::ZERO) => {
                    let at = c.connect_timeout.as_ref().map(|t| &t.referenced);
                    return Err(self.errs.at_opt(
                        at,
                        format!("{path}.connect_timeout"),
                        "must be greater than 0s",
                    ));
                }
                Some(d) => d,
                None => DEFAULT_CONNECT_TIMEOUT,
            };
            let tls = match &c.tls {
                Some(tls) => Some(ClientTls {
                    sni: match &tls.sni {
                        Some(sni) if sni.value.trim().is_empty() => {
                            return Err(self.errs.at(
                                &sni.referenced,
                                format!("{path}.tls.sni"),
                                "must not be empty (leave it out to use the endpoint's host)",
                            ));
                        }
                        Some(sni) => Some(check_server_name(sni.value.trim()).map_err(|msg| {
                            self.errs
                                .at(&sni.referenced, format!("{path}.tls.sni"), msg)
                        })?),
                        None => None,
                    },
                    ca_file: tls
                        .ca_file
                        .as_ref()
                        .map(|f| self.existing_file(f, &format!("{path}.tls.ca_file")))
                        .transpose()?,
                }),
                None => None,
            };
            out.push(ClusterSpec {
                name,
                endpoints,
                protocol: match c.protocol {
                    None | Some(RawUpstreamProtocol::Http1) => UpstreamProtocol::Http1,
                    Some(RawUpstreamProtocol::Http2) => UpstreamProtocol::Http2,
                },
                connect_timeout,
                tls,
            });
        }
        Ok(out)
    }

    fn listeners(
        &self,
        raw: Option<&Spanned<Vec<Spanned<RawListener>>>>,
        clusters: &[ClusterSpec],
    ) -> Result<Vec<ListenerSpec>> {
        let Some(raw) = raw.filter(|l| !l.value.is_empty()) else {
            return Err(self.errs.at_opt(
                raw.map(|l| &l.referenced),
                "listeners",
                "at least one listener is required",
            ));
        };
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut addresses: HashMap<std::net::SocketAddr, usize> = HashMap::new();
        let mut out = Vec::with_capacity(raw.value.len());
        for (i, l) in raw.value.iter().enumerate() {
            let l = &l.value;
            let path = format!("listeners[{i}]");
            let name = self.name(&l.name, &format!("{path}.name"))?;
            if let Some(first) = names.insert(name.clone(), i) {
                return Err(self.errs.at(
                    &l.name.referenced,
                    format!("{path}.name"),
                    format!("duplicate listener name `{name}` (also listeners[{first}])"),
                ));
            }
            let address = self.socket_addr(&l.address, &format!("{path}.address"))?;
            if address.port() != 0
                && let Some(first) = addresses.insert(address, i)
            {
                return Err(self.errs.at(
                    &l.address.referenced,
                    format!("{path}.address"),
                    format!("address {address} is already used by listeners[{first}]"),
                ));
            }
            if let Some(protocol) = &l.protocol
                && let RawListenerProtocol::Tcp = protocol.value
            {
                return Err(self.errs.at(
                    &protocol.referenced,
                    format!("{path}.protocol"),
                    "tcp listeners are not supported yet",
                ));
            }
            let tls = match &l.tls {
                Some(tls) => Some(ServerTls {
                    cert_file: self
                        .existing_file(&tls.cert_file, &format!("{path}.tls.cert_file"))?,
                    key_file: self.existing_file(&tls.key_file, &format!("{path}.tls.key_file"))?,
                }),
                None => None,
            };
            let mut routes = Vec::new();
            for (j, r) in l.routes.as_deref().unwrap_or_default().iter().enumerate() {
                routes.push(self.route(r, &format!("{path}.routes[{j}]"), clusters)?);
            }
            out.push(ListenerSpec {
                name,
                address,
                direction: match l.direction {
                    None | Some(RawDirection::Inbound) => TrafficDirection::Inbound,
                    Some(RawDirection::Outbound) => TrafficDirection::Outbound,
                },
                tls,
                routes,
            });
        }
        Ok(out)
    }

    fn route(
        &self,
        raw: &Spanned<RawRoute>,
        path: &str,
        clusters: &[ClusterSpec],
    ) -> Result<RouteSpec> {
        let r = &raw.value;
        let m = &r.matcher;
        let match_path = format!("{path}.match");
        let given: Vec<(&str, &Spanned<String>)> = [
            ("prefix", &m.value.prefix),
            ("path", &m.value.path),
            ("regex", &m.value.regex),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
        let path_match = match given.as_slice() {
            [("prefix", v)] => PathMatch::Prefix(v.value.clone()),
            [("path", v)] => PathMatch::Exact(v.value.clone()),
            [(_, v)] => {
                let field = format!("{match_path}.regex");
                if let Err(e) = regex::Regex::new(&v.value) {
                    return Err(self.errs.at(
                        &v.referenced,
                        field,
                        format!("invalid regex `{}`: {}", v.value, regex_error_message(&e)),
                    ));
                }
                // Envoy's safe_regex must match the whole path.
                let anchored = regex::Regex::new(&format!("^(?:{})$", v.value)).map_err(|e| {
                    self.errs.at(
                        &v.referenced,
                        field,
                        format!("invalid regex `{}`: {}", v.value, regex_error_message(&e)),
                    )
                })?;
                PathMatch::Regex(anchored)
            }
            [] => {
                return Err(self.errs.at(
                    &m.referenced,
                    match_path,
                    "exactly one of prefix, path or regex is required",
                ));
            }
            several => {
                let names: Vec<&str> = several.iter().map(|(k, _)| *k).collect();
                return Err(self.errs.at(
                    &m.referenced,
                    match_path,
                    format!(
                        "exactly one of prefix, path or regex is required, found {}",
                        names.join(" and ")
                    ),
                ));
            }
        };
        let mut headers = Vec::new();
        for (k, h) in m
            .value
            .headers
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let name = check_header_name(h.value.name.value.trim()).map_err(|msg| {
                self.errs.at(
                    &h.value.name.referenced,
                    format!("{match_path}.headers[{k}].name"),
                    msg,
                )
            })?;
            headers.push(HeaderMatch {
                name,
                value: h.value.value.clone(),
            });
        }
        let action = match (&r.cluster, &r.direct_response) {
            (Some(cluster), None) => {
                let name = cluster.value.trim();
                if !clusters.iter().any(|c| c.name == name) {
                    let known: Vec<&str> = clusters.iter().map(|c| c.name.as_str()).collect();
                    let known = if known.is_empty() {
                        "no clusters are defined".to_string()
                    } else {
                        format!("clusters: {}", known.join(", "))
                    };
                    return Err(self.errs.at(
                        &cluster.referenced,
                        format!("{path}.cluster"),
                        format!("unknown cluster `{name}` ({known})"),
                    ));
                }
                let timeout = self
                    .duration(r.timeout.as_ref(), &format!("{path}.timeout"))?
                    .unwrap_or(DEFAULT_ROUTE_TIMEOUT);
                RouteAction::Cluster {
                    name: name.to_string(),
                    timeout: (!timeout.is_zero()).then_some(timeout),
                }
            }
            (None, Some(direct)) => {
                if let Some(timeout) = &r.timeout {
                    return Err(self.errs.at(
                        &timeout.referenced,
                        format!("{path}.timeout"),
                        "timeout applies only to routes to a cluster",
                    ));
                }
                let status = &direct.value.status;
                if !(200..=599).contains(&status.value) {
                    return Err(self.errs.at(
                        &status.referenced,
                        format!("{path}.direct_response.status"),
                        format!("invalid status {}: expected 200 to 599", status.value),
                    ));
                }
                RouteAction::Direct {
                    status: status.value,
                    body: direct.value.body.clone().unwrap_or_default(),
                }
            }
            (None, None) => {
                return Err(self.errs.at(
                    &raw.referenced,
                    path,
                    "exactly one of cluster or direct_response is required",
                ));
            }
            (Some(_), Some(direct)) => {
                return Err(self.errs.at(
                    &direct.referenced,
                    path,
                    "exactly one of cluster or direct_response is required, found both",
                ));
            }
        };
        Ok(RouteSpec {
            path: path_match,
            headers,
            action,
        })
    }

    fn module(&mut self, url: &Spanned<String>, path: &str) -> Result<(String, Arc<[u8]>)> {
        let file = parse_module_file(&url.value, &self.base)
            .map_err(|msg| self.errs.at(&url.referenced, path, msg))?;
        if let Some(bytes) = self.modules.get(&file) {
            return Ok((file_url(&file), bytes.clone()));
        }
        let bytes: Arc<[u8]> = std::fs::read(&file)
            .map_err(|e| {
                self.errs.at(
                    &url.referenced,
                    path,
                    format!("cannot read {}: {e}", file.display()),
                )
            })?
            .into();
        self.modules.insert(file.clone(), bytes.clone());
        Ok((file_url(&file), bytes))
    }

    fn plugins(
        &mut self,
        raw: &[Spanned<RawPlugin>],
        listeners: &[ListenerSpec],
    ) -> Result<Vec<PluginSpec>> {
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut specs: Vec<PluginSpec> = Vec::with_capacity(raw.len());
        for (i, p) in raw.iter().enumerate() {
            let p = &p.value;
            let path = format!("plugins.inline[{i}]");
            let name = self.name(&p.name, &format!("{path}.name"))?;
            if let Some(first) = names.insert(name.clone(), i) {
                return Err(self.errs.at(
                    &p.name.referenced,
                    format!("{path}.name"),
                    format!("duplicate plugin name `{name}` (also plugins.inline[{first}])"),
                ));
            }
            let (url, wasm, lua) = match (&p.url, &p.lua) {
                (Some(url), None) => {
                    let (url, wasm) = self.module(url, &format!("{path}.url"))?;
                    (url, wasm, None)
                }
                (None, Some(lua)) => {
                    let code = &lua.value.inline_code;
                    // Checked here, so that a bad script is an error at its line of the file;
                    // the data plane loads it again on each worker.
                    wasp_lua::LuaScript::compile(&name, &code.value).map_err(|e| {
                        self.errs.at(
                            &code.referenced,
                            format!("{path}.lua.inlineCode"),
                            e.to_string(),
                        )
                    })?;
                    (
                        format!("lua:{name}"),
                        Arc::from(Vec::new()),
                        Some(code.value.clone()),
                    )
                }
                (Some(_), Some(lua)) => {
                    return Err(self.errs.at(
                        &lua.referenced,
                        format!("{path}.lua"),
                        "url and lua are mutually exclusive (a plugin is a Wasm module or a Lua script)",
                    ));
                }
                (None, None) => {
                    return Err(self.errs.at(
                        &p.name.referenced,
                        path.clone(),
                        "one of url (a Wasm module) or lua (a Lua script) is required",
                    ));
                }
            };
            if let Some(expected) = &p.sha256
                && lua.is_none()
            {
                let field = format!("{path}.sha256");
                let want = expected.value.trim().to_ascii_lowercase();
                if want.len() != 64 || !want.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(self.errs.at(
                        &expected.referenced,
                        field,
                        format!("`{}` is not a sha256 (64 hex digits)", expected.value),
                    ));
                }
                let actual = hex::encode(Sha256::digest(&wasm));
                if actual != want {
                    return Err(self.errs.at(
                        &expected.referenced,
                        field,
                        format!("sha256 mismatch for {url}: expected {want}, actual {actual}"),
                    ));
                }
            }
            let configuration = match (&p.configuration, &p.plugin_config) {
                (Some(_), Some(pc)) => {
                    return Err(self.errs.at(
                        &pc.referenced,
                        format!("{path}.pluginConfig"),
                        "configuration and pluginConfig are mutually exclusive",
                    ));
                }
                (Some(c), None) => c.value.clone().into_bytes(),
                (None, Some(pc)) => match &pc.value {
                    Value::Null => Vec::new(),
                    Value::Object(m) if m.is_empty() => Vec::new(),
                    v @ Value::Object(_) => canonical_json(v).into_bytes(),
                    _ => {
                        return Err(self.errs.at(
                            &pc.referenced,
                            format!("{path}.pluginConfig"),
                            "must be a mapping (use configuration for a plain string)",
                        ));
                    }
                },
                (None, None) => Vec::new(),
            };
            // Empty, as Envoy's default: plugins with the same module, VM configuration and
            // environment then share a VM (and their shared data), and `plugin_vm_id` is "".
            let vm_id = p
                .vm_id
                .as_ref()
                .map(|v| v.value.clone())
                .unwrap_or_default();
            let env: Vec<(String, String)> =
                p.env.clone().unwrap_or_default().into_iter().collect();
            let vm_configuration = p.vm_configuration.clone().unwrap_or_default().into_bytes();
            let mut plugin_listeners: Vec<String> = Vec::new();
            for (k, l) in p
                .listeners
                .as_deref()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let wanted = l.value.trim();
                if !listeners.iter().any(|x| x.name == wanted) {
                    let known: Vec<&str> = listeners.iter().map(|x| x.name.as_str()).collect();
                    return Err(self.errs.at(
                        &l.referenced,
                        format!("{path}.listeners[{k}]"),
                        format!(
                            "unknown listener `{wanted}` (listeners: {})",
                            known.join(", ")
                        ),
                    ));
                }
                if !plugin_listeners.iter().any(|x| x == wanted) {
                    plugin_listeners.push(wanted.to_string());
                }
            }
            let phase = match p.phase {
                Some(RawPhase::Authn) => Some("AUTHN"),
                Some(RawPhase::Authz) => Some("AUTHZ"),
                Some(RawPhase::Stats) => Some("STATS"),
                Some(RawPhase::Unspecified) | None => None,
            };
            let kind = match lua {
                Some(source) => PluginKind::Lua(LuaSpec { source }),
                None => PluginKind::Wasm(WasmSpec {
                    root_id: p.plugin_name.clone().unwrap_or_else(|| name.clone()),
                    module: wasm,
                    configuration,
                    vm_configuration,
                    vm_id: vm_id.clone(),
                    env,
                }),
            };
            let spec = PluginSpec {
                name: name.clone(),
                url,
                kind,
                fail_strategy: match p.fail_strategy {
                    None | Some(RawFailStrategy::Close) => FailStrategy::FailClose,
                    Some(RawFailStrategy::Open) => FailStrategy::FailOpen,
                    Some(RawFailStrategy::Reload) => FailStrategy::FailReload,
                },
                phase: phase.map(str::to_string),
                priority: p.priority,
                listeners: plugin_listeners,
                load_error: None,
                origin: Default::default(),
            };
            specs.push(spec);
        }
        crate::sources::sort_chain(&mut specs);
        Ok(specs)
    }
}

pub(crate) fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}
