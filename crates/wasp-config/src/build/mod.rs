//! From the raw YAML types to a validated [`ProxySpec`]: defaults, cross references, files.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_saphyr::Spanned;
use wasp_spec::{NodeSpec, ProxySpec};

use crate::error::{ConfigError, Errors};
use crate::raw::{RawConfig, RawPlugins};
use crate::sources::{KubernetesSettings, PluginSources};
use crate::values::{parse_byte_size, parse_duration, parse_socket_addr, resolve};
use crate::{DEFAULT_BUFFER_LIMIT, Workload};

mod access_log;
mod clusters;
mod hosts;
mod http_options;
mod listeners;
mod plugins;
mod resilience;
mod route_plugins;
mod tcp;
mod tls;
mod tracing;

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
            Some(admin) => Some(self.admin_address(&admin.value.address)?),
            None => None,
        };
        let admin_read_only = raw
            .admin
            .as_ref()
            .and_then(|a| a.value.read_only)
            .unwrap_or(false);
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
        // What `workload:` leaves out comes from the downward API, as in a pod.
        let (namespace, labels) = match raw.workload {
            Some(w) => (w.namespace, w.labels),
            None => (None, None),
        };
        let workload = Workload {
            namespace: namespace
                .or_else(crate::downward::namespace)
                .unwrap_or_else(|| Workload::default().namespace),
            labels: labels.or_else(crate::downward::labels).unwrap_or_default(),
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
        let mut listeners = self.listeners(raw.listeners.as_ref(), &clusters)?;

        let mut plugins = Vec::new();
        let mut sources = None;
        if let Some(raw_plugins) = &raw.plugins {
            sources = self.plugin_sources(raw_plugins)?;
            if let Some(inline) = &raw_plugins.inline {
                plugins = self.plugins(inline, &listeners)?;
            }
        }
        if let Some(raw_listeners) = &raw.listeners {
            let known = route_plugins::KnownPlugins {
                specs: &plugins,
                raw: raw
                    .plugins
                    .as_ref()
                    .and_then(|p| p.inline.as_deref())
                    .unwrap_or_default(),
                open: sources.is_some(),
            };
            self.route_plugins(&raw_listeners.value, &mut listeners, &known)?;
        }

        let spec = ProxySpec {
            admin,
            admin_read_only,
            workers,
            node,
            listeners,
            clusters,
            plugins,
            buffer_limit_bytes,
            tracing: match &raw.tracing {
                Some(t) => Some(self.tracing(t)?),
                None => None,
            },
            plugin_recovery: match &raw.plugin_recovery {
                Some(r) => self.recovery(&r.value)?,
                None => Default::default(),
            },
            max_connections: match &raw.max_connections {
                Some(n) if n.value < 1 => {
                    return Err(self.errs.at(
                        &n.referenced,
                        "max_connections",
                        "must be at least 1 (leave it out for no limit)",
                    ));
                }
                Some(n) => Some(n.value as usize),
                None => None,
            },
        };
        Ok((spec, workload, sources))
    }

    fn recovery(&self, r: &crate::raw::RawRecovery) -> Result<wasp_spec::RecoveryPolicy> {
        let d = wasp_spec::RecoveryPolicy::default();
        let positive =
            |v: Option<&Spanned<String>>, field: &str, default: Duration| -> Result<Duration> {
                match self.duration(v, &format!("plugin_recovery.{field}"))? {
                    Some(d) if d.is_zero() => Err(self.errs.at(
                        &v.expect("parsed").referenced,
                        format!("plugin_recovery.{field}"),
                        "must be greater than 0s",
                    )),
                    Some(d) => Ok(d),
                    None => Ok(default),
                }
            };
        let policy = wasp_spec::RecoveryPolicy {
            backoff_base: positive(r.backoff_base.as_ref(), "backoff_base", d.backoff_base)?,
            backoff_max: positive(r.backoff_max.as_ref(), "backoff_max", d.backoff_max)?,
            park_after: match &r.park_after {
                Some(n) if n.value == 0 => {
                    return Err(self.errs.at(
                        &n.referenced,
                        "plugin_recovery.park_after",
                        "must be at least 1",
                    ));
                }
                Some(n) => n.value,
                None => d.park_after,
            },
            park_window: positive(r.park_window.as_ref(), "park_window", d.park_window)?,
            park_for: positive(r.park_for.as_ref(), "park_for", d.park_for)?,
        };
        if policy.backoff_max < policy.backoff_base {
            let at = r.backoff_max.as_ref().map(|v| &v.referenced);
            if let Some(at) = at {
                return Err(self.errs.at(
                    at,
                    "plugin_recovery.backoff_max",
                    "must not be less than backoff_base",
                ));
            }
        }
        Ok(policy)
    }

    /// The admin address: a bare port (`15000` or `:15000`) listens on loopback only, which is
    /// where an endpoint that shows the whole configuration belongs unless said otherwise.
    fn admin_address(&self, text: &Spanned<String>) -> Result<std::net::SocketAddr> {
        let port = text.value.trim();
        let port = port.strip_prefix(':').unwrap_or(port);
        if let Ok(port) = port.parse::<u16>() {
            return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
        }
        self.socket_addr(text, "admin.address")
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
        let kubernetes = match &raw.kubernetes {
            None => None,
            Some(k) => Some(KubernetesSettings {
                kubeconfig: match &k.value.kubeconfig {
                    None => None,
                    Some(file) => Some(self.existing_file(file, "plugins.kubernetes.kubeconfig")?),
                },
                report_status: k.value.report_status.as_ref().is_none_or(|r| r.value),
            }),
        };
        if sources.is_empty() && kubernetes.is_none() {
            return Ok(None);
        }
        Ok(Some(PluginSources {
            sources,
            secrets,
            root_namespace,
            insecure_registries,
            kubernetes,
        }))
    }
}

pub(crate) fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}
