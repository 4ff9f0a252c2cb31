//! WasmPlugin resources as a running proxy uses them: read from `plugins.sources`, selected
//! for this workload, their modules fetched (`wasp-delivery`), and turned into the
//! [`PluginSpec`]s of the data plane, merged with the inline plugins in chain order.
//!
//! A plugin whose module cannot be fetched is kept, with the error: the data plane then
//! applies its failure strategy (FAIL_CLOSE: 403, FAIL_OPEN: skipped), as Istio does, and the
//! proxy still becomes ready.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use wasp_delivery::{Credentials, FetchRequest, Fetcher};
use wasp_spec::{ListenerSpec, LuaSpec, PluginKind, PluginSpec, WasmSpec};

use crate::error::ConfigError;
use crate::wasmplugin::{
    self, PluginBody, PluginDecl, PluginPhase, PluginType, PullSecret, ResourceSet,
};
use crate::{Loaded, Workload};

/// Where the WasmPlugin resources are, and how their modules are fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSources {
    /// Files and folders of WasmPlugin / TrafficExtension YAML.
    pub sources: Vec<PathBuf>,
    /// Files and folders of `kubernetes.io/dockerconfigjson` Secrets (pull secrets).
    pub secrets: Vec<PathBuf>,
    /// Plugins in this namespace apply to every workload (Istio's root namespace).
    pub root_namespace: String,
    /// Registries reached over plain HTTP (`host[:port]`, or `*`).
    pub insecure_registries: Vec<String>,
    /// Also read the resources (and pull secrets) from the Kubernetes API.
    pub kubernetes: Option<KubernetesSettings>,
}

/// `plugins.kubernetes` (or `wasp run --kubernetes`): how to reach the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesSettings {
    /// A kubeconfig file; `None`: in-cluster configuration (service account), else the usual
    /// kubeconfig (`KUBECONFIG`, `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// Whether each selected resource gets Events and a status condition saying whether it
    /// loaded (`reportStatus`, default true).
    pub report_status: bool,
}

impl Default for KubernetesSettings {
    fn default() -> KubernetesSettings {
        KubernetesSettings {
            kubeconfig: None,
            report_status: true,
        }
    }
}

impl PluginSources {
    /// Reads and validates every resource (and Secret).
    pub fn read(&self) -> Result<ResourceSet, ConfigError> {
        wasmplugin::load_resources(&self.all_paths())
    }

    /// A hash of the names and contents of every file the sources hold: it changes when a
    /// resource file is added, edited or removed (also through Kubernetes' ConfigMap
    /// symlink swaps, which keep modification times).
    pub fn fingerprint(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        for path in self.all_paths() {
            for file in yaml_files(&path) {
                file.hash(&mut hasher);
                std::fs::read(&file).ok().hash(&mut hasher);
            }
        }
        hasher.finish()
    }

    fn all_paths(&self) -> Vec<PathBuf> {
        self.sources.iter().chain(&self.secrets).cloned().collect()
    }
}

/// The files a source path stands for: itself, or a folder's `*.yaml` / `*.yml` (sorted, not
/// hidden), as `wasmplugin::load_resources` reads them.
fn yaml_files(path: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(path) else {
        return vec![path.to_path_buf()];
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| wasmplugin::is_resource_file(p))
        .collect();
    files.sort();
    files
}

/// One resource plugin as last resolved: its declaration and what it became. A reload
/// reuses the result for declarations that did not change, so an unchanged `Always` plugin
/// is not pulled again (istio-agent re-pulls only when the resource changes).
#[derive(Clone)]
pub struct Resolved {
    /// The declaration as [`ResourceSet::plugins_for`] returned it; compared on reload.
    pub decl: PluginDecl,
    /// The plugin as the chain runs it (a failed fetch recorded as its `load_error`); `None`
    /// when its `match` excludes every listener of this proxy or it is a NETWORK plugin.
    pub spec: Option<PluginSpec>,
}

/// The plugins of `resources` that apply to `loaded`'s workload and listeners, with their
/// modules fetched, merged with `loaded`'s inline plugins in chain order. `previous` is the
/// last resolution (for reuse); the new one is returned alongside.
pub async fn resolve(
    loaded: &Loaded,
    sources: &PluginSources,
    resources: &ResourceSet,
    fetcher: &Fetcher,
    previous: &[Resolved],
) -> (Vec<PluginSpec>, Vec<Resolved>) {
    let decls = resources.plugins_for(&loaded.workload, &sources.root_namespace, &|name| {
        std::env::var(name).ok()
    });
    let mut resolved = Vec::with_capacity(decls.len());
    for decl in decls {
        let attached = attachment(&decl, &loaded.spec.listeners);
        let old = previous.iter().find(|r| r.decl == decl);
        let spec = match (attached, old.and_then(|r| r.spec.as_ref())) {
            (None, _) => None,
            // The module as fetched before; the listeners as they are now (a reload of the
            // configuration file may have changed them).
            (Some(listeners), Some(old)) => Some(PluginSpec {
                listeners,
                ..old.clone()
            }),
            (Some(listeners), None) => {
                Some(plugin_spec(&decl, listeners, &loaded.workload, fetcher).await)
            }
        };
        resolved.push(Resolved { decl, spec });
    }
    let specs = merge(
        &loaded.spec.plugins,
        resolved.iter().filter_map(|r| r.spec.clone()),
    );
    (specs, resolved)
}

/// Inline and resource plugins in one chain: by phase (AUTHN, AUTHZ, STATS, none), then
/// higher priority first, unset last; inline plugins first among equals.
pub(crate) fn merge(
    inline: &[PluginSpec],
    resources: impl Iterator<Item = PluginSpec>,
) -> Vec<PluginSpec> {
    let mut all: Vec<PluginSpec> = inline.iter().cloned().chain(resources).collect();
    sort_chain(&mut all);
    all
}

/// Istio's chain order: by phase (EnvoyFilter `INSERT_FIRST`, AUTHN, AUTHZ, STATS, none,
/// EnvoyFilter `INSERT_BEFORE` the router), then higher priority first, an unset priority as
/// `i32::MIN` (Istio's `math.MinInt32`: after every explicit priority, tied with an explicit
/// `-2147483648`), the rule of [`crate::wasmplugin`]'s own ordering.
/// Stable: ties keep the order they came in (the file's, inline plugins before resources).
pub(crate) fn sort_chain(plugins: &mut [PluginSpec]) {
    plugins.sort_by_key(|p| {
        let phase = match p.phase.as_deref() {
            Some("INSERT_FIRST") => 0,
            Some("AUTHN") => 1,
            Some("AUTHZ") => 2,
            Some("STATS") => 3,
            Some("INSERT_BEFORE_ROUTER") => 5,
            _ => 4,
        };
        (
            phase,
            std::cmp::Reverse(p.priority.unwrap_or(i32::MIN.into())),
        )
    });
}

/// The listeners a declaration attaches to (empty: every listener of its kind), or `None`
/// when it attaches to none of this proxy: an HTTP plugin attaches to HTTP listeners, a
/// NETWORK one to TCP listeners, each where its `match` (direction, ports) allows.
fn attachment(decl: &PluginDecl, listeners: &[ListenerSpec]) -> Option<Vec<String>> {
    let network = decl.plugin_type() == PluginType::Network;
    let candidates: Vec<&ListenerSpec> = listeners
        .iter()
        .filter(|l| l.tcp.is_some() == network)
        .collect();
    let attached: Vec<String> = candidates
        .iter()
        .filter(|l| decl.matcher.applies_to(l.direction, l.address.port()))
        .map(|l| l.name.clone())
        .collect();
    if attached.is_empty() {
        if network && candidates.is_empty() {
            tracing::warn!(plugin = %decl.key, "a NETWORK plugin runs on TCP listeners (protocol: tcp), and this proxy has none; skipped");
        }
        return None;
    }
    // Every listener of its kind when it applies to all of them, so the chain reads as before.
    Some(if attached.len() == candidates.len() {
        Vec::new()
    } else {
        attached
    })
}

/// One declaration as the PluginSpec of the chain, attached to `attached` (see
/// [`attachment`]), its module fetched.
async fn plugin_spec(
    decl: &PluginDecl,
    attached: Vec<String>,
    workload: &Workload,
    fetcher: &Fetcher,
) -> PluginSpec {
    let network = decl.plugin_type() == PluginType::Network;
    let phase = match decl.phase {
        PluginPhase::Unspecified => None,
        p => Some(p.as_str().to_string()),
    };
    let wasm = match &decl.body {
        PluginBody::Wasm(wasm) => wasm,
        PluginBody::Lua(lua) => return lua_spec(decl, &lua.inline_code, phase, attached),
    };
    let mut origin = decl_origin(decl);
    let (wasm_bytes, load_error) = match fetch(decl, wasm, workload, fetcher).await {
        Ok(fetched) => {
            origin.insert("digest".into(), format!("sha256:{}", fetched.digest).into());
            if let Some(m) = &fetched.manifest_digest {
                origin.insert("manifest_digest".into(), m.clone().into());
            }
            let at = fetched
                .fetched_at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            origin.insert("fetched_at".into(), at.into());
            origin.insert("cache_hit".into(), fetched.cache_hit.into());
            (fetched.bytes, None)
        }
        Err(e) => {
            tracing::error!(plugin = %decl.key, url = %wasp_delivery::redact_url(&wasm.url), "cannot fetch the module: {e}");
            (Arc::from(Vec::new()), Some(e.to_string()))
        }
    };
    PluginSpec {
        name: decl.name.clone(),
        // Shown on /plugins and in logs: without credentials.
        url: wasp_delivery::redact_url(&wasm.url),
        kind: PluginKind::Wasm(WasmSpec {
            root_id: wasm.root_id.clone(),
            module: wasm_bytes,
            configuration: wasm.configuration.clone(),
            vm_configuration: Vec::new(),
            // Istio sets no vm_id: Envoy then shares a VM (and shared data) between plugins
            // with the same module, VM configuration and environment.
            vm_id: String::new(),
            env: wasm.env.clone(),
            network,
        }),
        fail_strategy: wasm.fail_strategy,
        phase,
        priority: decl.priority.map(i64::from),
        listeners: attached,
        load_error,
        origin,
        routing: decl.routing.clone(),
    }
}

/// A Lua TrafficExtension or EnvoyFilter as a Lua filter. A script that does not compile is
/// kept with the error, as a module that cannot be fetched: FAIL_CLOSE answers 403.
fn lua_spec(
    decl: &PluginDecl,
    code: &str,
    phase: Option<String>,
    listeners: Vec<String>,
) -> PluginSpec {
    let load_error = match wasp_lua::LuaScript::compile(&decl.name, code) {
        Ok(_) => None,
        Err(e) => {
            tracing::error!(plugin = %decl.key, "Lua script rejected: {e}");
            Some(e.to_string())
        }
    };
    let origin = decl_origin(decl);
    PluginSpec {
        name: decl.name.clone(),
        url: format!("lua:{}", decl.key),
        kind: PluginKind::Lua(LuaSpec {
            source: code.to_string(),
        }),
        fail_strategy: wasp_spec::FailStrategy::FailClose,
        phase,
        priority: decl.priority.map(i64::from),
        listeners,
        load_error,
        origin,
        routing: decl.routing.clone(),
    }
}

/// Where a resource plugin was declared, for /plugins.
fn decl_origin(decl: &PluginDecl) -> BTreeMap<String, serde_json::Value> {
    BTreeMap::from([
        (
            "resource".to_string(),
            format!("{} {}", decl.kind.as_str(), decl.key).into(),
        ),
        (
            "source".to_string(),
            format!("{}:{}", decl.source.file.display(), decl.source.line).into(),
        ),
    ])
}

async fn fetch(
    decl: &PluginDecl,
    wasm: &wasmplugin::WasmDecl,
    workload: &Workload,
    fetcher: &Fetcher,
) -> Result<wasp_delivery::Fetched, FetchFailed> {
    let pull_secret = match &wasm.pull_secret {
        None => None,
        Some(PullSecret::Found {
            name,
            dockerconfigjson,
        }) => {
            let text = String::from_utf8_lossy(dockerconfigjson);
            Some(
                Credentials::from_docker_config_json(&text).map_err(|e| FetchFailed::Secret {
                    name: name.clone(),
                    reason: e.to_string(),
                })?,
            )
        }
        // Never an anonymous pull instead (Istio fails the fetch too).
        Some(PullSecret::Unresolved { name, reason }) => {
            return Err(FetchFailed::Secret {
                name: name.clone(),
                reason: reason.clone(),
            });
        }
    };
    let source = wasm.module.clone()?;
    let request = FetchRequest {
        sha256: wasm.sha256.clone(),
        pull_policy: wasm.pull_policy.effective(&source, wasm.sha256.as_deref()),
        source,
        pull_secret,
        resource: format!(
            "{} {} (workload {})",
            decl.kind.as_str(),
            decl.key,
            workload.namespace
        ),
    };
    Ok(fetcher.fetch(&request).await?)
}

/// Why a resource's module could not be had; the message becomes the plugin's load error.
#[derive(Debug, thiserror::Error)]
enum FetchFailed {
    #[error("imagePullSecret {name}: {reason}")]
    Secret { name: String, reason: String },
    #[error(transparent)]
    Url(#[from] wasp_delivery::UrlError),
    #[error(transparent)]
    Fetch(#[from] wasp_delivery::FetchError),
}
