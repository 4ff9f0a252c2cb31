//! wasp's configuration layer: a YAML file (or the one-line `wasp run` try-out) into the
//! validated runtime model of the data plane, [`spec::ProxySpec`].
//!
//! Everything that can be checked before starting is checked here, and every error says where:
//! `wasp.yaml:12:9: listeners[0].routes[1].match: exactly one of prefix, path or regex is
//! required`. The format is documented in `docs/configuration.md`.
//!
//! Locations come from serde-saphyr: deserialization errors carry the line and column, and the
//! values later checks can reject are deserialized as [`serde_saphyr::Spanned`], which records
//! where each came from. Field paths of semantic errors are built while walking the model; for
//! deserialization errors (unknown field, wrong type, ...) they are recovered by replaying the
//! document through serde-saphyr's YAML event parser up to the error's offset.

#![deny(missing_docs)]

mod build;
mod downward;
mod error;
pub mod follow;
pub mod kubernetes;
mod locate;
mod raw;
mod sources;
mod values;
pub mod wasmplugin;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_saphyr::{MessageFormatter as _, UserMessageFormatter};
pub use wasp_spec as spec;
use wasp_spec::{
    ClusterSpec, ListenerSpec, NodeSpec, PathMatch, PluginKind, PluginSpec, ProxySpec, RouteAction,
    RouteSpec, TrafficDirection, UpstreamProtocol, WasmSpec,
};

pub use crate::error::ConfigError;
use crate::error::Errors;
pub use crate::sources::{KubernetesSettings, PluginSources, Resolved, resolve};
pub use crate::values::format_duration;

/// Per-stream body buffer limit when `buffer_limit` is not set: Envoy's default, 1 MiB.
pub const DEFAULT_BUFFER_LIMIT: usize = 1 << 20;
/// Route timeout when `timeout` is not set: Envoy's default, 15 s.
pub const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);
/// Cluster `connect_timeout` when not set: Envoy's default, 5 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The body of the direct response `quick` serves when there is no upstream.
pub const QUICK_DIRECT_BODY: &str = "hello from wasp\n";

/// Who this proxy is, for matching WasmPlugin selectors (`selector.matchLabels`) and for the
/// namespace part of plugin names once WasmPlugin resources are supported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Default: `default`.
    pub namespace: String,
    /// The workload's (pod's) labels, matched against `selector.matchLabels`; the Gateway API
    /// `gateway.networking.k8s.io/gateway-name` label also enables `targetRefs`.
    pub labels: BTreeMap<String, String>,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            namespace: "default".to_string(),
            labels: BTreeMap::new(),
        }
    }
}

/// A loaded configuration: what the data plane runs, and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// With the inline plugins only: WasmPlugin resources are added by [`resolve`], which
    /// fetches their modules.
    pub spec: ProxySpec,
    /// The file's `workload` section (defaults if absent): which WasmPlugin resources apply.
    pub workload: Workload,
    /// The configuration file, absolute; empty for [`quick`].
    pub source: PathBuf,
    /// `plugins.sources` and how to fetch their modules, if the file names any.
    pub plugin_sources: Option<PluginSources>,
    /// The resources as read (and validated) by [`load`].
    pub resources: Option<wasmplugin::ResourceSet>,
    /// [`PluginSources::fingerprint`] of the files, taken just before [`load`] read them, so
    /// that an edit made at any time after that is seen as a change.
    pub sources_fingerprint: u64,
    /// [`config_fingerprint`] of the configuration text this was read from (0 for [`quick`]).
    pub config_fingerprint: u64,
}

/// A hash of a configuration file's content (0 when it cannot be read): it changes when the
/// file is edited, replaced or swapped in through a Kubernetes ConfigMap symlink.
pub fn config_fingerprint(path: &Path) -> u64 {
    std::fs::read(path).map_or(0, |bytes| text_fingerprint(&bytes))
}

fn text_fingerprint(text: &[u8]) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::hash::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// Reads and validates the configuration file `path`, and reads (and checks the sha256 of) every
/// plugin module it names. Modules are not compiled.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(Some(path), None, "", format!("cannot read the file: {e}"))
    })?;
    parse(&text, path)
}

/// As [`load`], with the text already read: `file` names it in errors and is the base of
/// relative paths (its folder; the current directory if it has none).
pub fn parse(text: &str, file: &Path) -> Result<Loaded, ConfigError> {
    let raw: raw::RawConfig =
        serde_saphyr::from_str(text).map_err(|e| yaml_error(&e, text, file))?;
    let source = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let base = source
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let errs = Errors { file: Some(file) };
    let (spec, workload, plugin_sources) = build::Builder::new(errs, base).build(raw)?;
    let sources_fingerprint = plugin_sources
        .as_ref()
        .map_or(0, PluginSources::fingerprint);
    let resources = plugin_sources
        .as_ref()
        .map(PluginSources::read)
        .transpose()?;
    Ok(Loaded {
        spec,
        workload,
        source,
        plugin_sources,
        resources,
        sources_fingerprint,
        config_fingerprint: text_fingerprint(text.as_bytes()),
    })
}

/// A serde-saphyr error as a [`ConfigError`]: its location, plus the field path found by
/// replaying the document up to that location.
pub(crate) fn yaml_error(err: &serde_saphyr::Error, text: &str, file: &Path) -> ConfigError {
    let mut inner = err;
    while let serde_saphyr::Error::WithSnippet { error, .. }
    | serde_saphyr::Error::AliasError { error, .. } = inner
    {
        inner = error;
    }
    let message: String = UserMessageFormatter
        .format_message(inner)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let message = plain_words(inner, message);
    let prefer = match inner {
        serde_saphyr::Error::SerdeUnknownField { .. }
        | serde_saphyr::Error::DuplicateMappingKey { .. } => locate::Prefer::Innermost,
        serde_saphyr::Error::SerdeMissingField { .. } => locate::Prefer::EnclosingMapping,
        _ => locate::Prefer::Outermost,
    };
    let Some(location) = err.location().filter(|l| l.line() > 0) else {
        return ConfigError::new(Some(file), None, "", message);
    };
    match locate::path_at(text, location.span().offset(), prefer) {
        Some(found) => {
            ConfigError::with_position(Some(file), found.line, found.column, found.path, message)
        }
        None => ConfigError::new(Some(file), Some(&location), "", message),
    }
}

/// serde-saphyr's wording for type mismatches, in the words of this file's documentation.
fn plain_words(err: &serde_saphyr::Error, message: String) -> String {
    if let serde_saphyr::Error::SerdeUnknownField {
        field, expected, ..
    } = err
    {
        return match error::nearest(field, expected) {
            Some(near) => format!("{message} (did you mean `{near}`?)"),
            None => message,
        };
    }
    if let serde_saphyr::Error::InvalidScalar { ty, .. } = err {
        return match *ty {
            "u8" | "u16" | "u32" | "u64" | "usize" => {
                format!("expected a non-negative integer ({ty})")
            }
            "i8" | "i16" | "i32" | "i64" | "isize" => format!("expected an integer ({ty})"),
            _ => message,
        };
    }
    match message.as_str() {
        "expected mapping start" => "expected a mapping (key: value)".to_string(),
        "expected sequence start" => "expected a list".to_string(),
        "expected string scalar" => "expected a string".to_string(),
        _ => message,
    }
}

/// The one-line try-out, `wasp run --listen A --upstream B --plugin P [--plugin-config S]`:
/// one inbound listener `main` whose route `/` goes to cluster `upstream` (HTTP/1.1 to
/// `upstream`), or answers 200 `hello from wasp` when there is no upstream; one plugin per file
/// (named after the file stem, FAIL_CLOSE, configuration = `plugin_config`), in the order given.
pub fn quick(
    listen: SocketAddr,
    upstream: Option<&str>,
    plugins: &[PathBuf],
    plugin_config: Option<&str>,
) -> Result<Loaded, ConfigError> {
    let err = |path: &str, msg: String| ConfigError::new(None, None, path, msg);
    let mut clusters = Vec::new();
    let action = match upstream {
        Some(upstream) => {
            let endpoint =
                values::check_endpoint(upstream).map_err(|msg| err("--upstream", msg))?;
            clusters.push(ClusterSpec {
                name: "upstream".to_string(),
                endpoints: vec![endpoint],
                protocol: UpstreamProtocol::Http1,
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                tls: None,
                lb_policy: Default::default(),
                outlier_detection: None,
                health_check: None,
                circuit_breakers: Default::default(),
            });
            RouteAction::Cluster {
                name: "upstream".to_string(),
                timeout: Some(DEFAULT_ROUTE_TIMEOUT),
                retry: None,
                hash_header: None,
            }
        }
        None => RouteAction::Direct {
            status: 200,
            body: QUICK_DIRECT_BODY.to_string(),
        },
    };
    let mut specs: Vec<PluginSpec> = Vec::with_capacity(plugins.len());
    for file in plugins {
        let name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                err(
                    "--plugin",
                    format!("`{}` is not a file name", file.display()),
                )
            })?;
        if specs.iter().any(|p| p.name == name) {
            return Err(err(
                "--plugin",
                format!(
                    "two plugins are named `{name}` (a plugin is named after its file stem); \
                     use a configuration file to run the same module twice"
                ),
            ));
        }
        let absolute = std::path::absolute(file).unwrap_or_else(|_| file.clone());
        let wasm: Arc<[u8]> = std::fs::read(&absolute)
            .map_err(|e| {
                err(
                    "--plugin",
                    format!("cannot read {}: {e}", absolute.display()),
                )
            })?
            .into();
        let kind = PluginKind::Wasm(WasmSpec {
            root_id: name.clone(),
            module: wasm,
            configuration: plugin_config.unwrap_or_default().as_bytes().to_vec(),
            ..WasmSpec::default()
        });
        specs.push(PluginSpec {
            url: values::file_url(&absolute),
            ..PluginSpec::new(name, kind)
        });
    }
    let spec = ProxySpec {
        admin: None,
        admin_read_only: false,
        workers: build::default_workers(),
        node: NodeSpec::default(),
        listeners: vec![ListenerSpec {
            name: "main".to_string(),
            address: listen,
            direction: TrafficDirection::Inbound,
            tls: None,
            virtual_hosts: Vec::new(),
            routes: vec![RouteSpec {
                name: String::new(),
                plugins: Default::default(),
                path: PathMatch::Prefix("/".to_string()),
                headers: Vec::new(),
                action,
            }],
            tcp: None,
            access_log: Vec::new(),
            http: Default::default(),
        }],
        clusters,
        plugins: specs,
        buffer_limit_bytes: DEFAULT_BUFFER_LIMIT,
        tracing: None,
        plugin_recovery: Default::default(),
        max_connections: None,
    };
    Ok(Loaded {
        spec,
        workload: Workload::default(),
        source: PathBuf::new(),
        plugin_sources: None,
        resources: None,
        sources_fingerprint: 0,
        config_fingerprint: 0,
    })
}
