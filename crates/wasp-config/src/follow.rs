//! The configuration while the proxy runs (`wasp run`): plugin modules fetched before it
//! starts; then changes to the configuration file, the resource files and the Kubernetes
//! API's objects applied while it runs. A change that cannot be used leaves the running
//! configuration as it is, and says why.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasp_delivery::{FetchError, Fetcher, FetcherConfig};
use wasp_spec::{PluginSpec, ProxySpec};

use crate::kubernetes::{
    self, ApiResources, KubernetesError, KubernetesSource, ObjectRef, Outcome, StatusReporter,
};
use crate::sources::{PluginSources, Resolved, resolve};
use crate::wasmplugin::ResourceSet;
use crate::{ConfigError, Loaded};

/// The running proxy, as the follower drives it.
pub trait Target {
    /// Applies a whole configuration, its plugins included (`inline`: those of the
    /// configuration file, which must start); returns once every worker runs it, or why it
    /// was refused (the running configuration then stays).
    fn apply(&mut self, spec: ProxySpec, inline: &[PluginSpec]) -> Result<(), String>;
    /// Records that a new configuration file cannot be used (the running one stays).
    fn refuse(&mut self, reason: &str);
    /// Each plugin's state now, as `/plugins` shows it.
    fn states(&self) -> Vec<PluginState>;
}

/// One plugin of the running set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginState {
    /// The plugin's name ([`PluginSpec::name`]).
    pub name: String,
    /// Runs, or why not (its module did not load, its VM did not start, it trapped).
    pub running: Result<(), String>,
}

/// How often the configuration and resource files are checked for changes.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The fetcher for one process: modules cached under `cache_root/modules`.
pub fn fetcher(
    cache_root: &Path,
    insecure_registries: &[String],
) -> Result<Fetcher, Box<FetchError>> {
    let config = FetcherConfig {
        insecure_registries: insecure_registries.to_vec(),
        ..FetcherConfig::new(cache_root.join("modules"))
    };
    Fetcher::new(config).map_err(Box::new)
}

/// What the follower knows of the sources: the fingerprint of the files last read, the
/// Kubernetes watches (if the sources include the API), and the modules they resolved to
/// (kept so that an unchanged reference is not fetched again).
pub struct Followed {
    seen: u64,
    /// The configuration file's fingerprint when last read.
    config_seen: u64,
    resolved: Vec<Resolved>,
    kubernetes: Option<Api>,
}

impl Followed {
    /// For a configuration without plugin sources: only its file is followed.
    pub fn config_only(loaded: &Loaded) -> Followed {
        Followed {
            seen: 0,
            config_seen: loaded.config_fingerprint,
            resolved: Vec::new(),
            kubernetes: None,
        }
    }
}

/// The Kubernetes side of the follower: the watches, what they gave last, and the reporting
/// of outcomes back to the cluster.
struct Api {
    source: KubernetesSource,
    resources: ApiResources,
    reporter: Option<StatusReporter>,
}

/// How long the first lists from the API server may take before the proxy starts with what
/// it has (the watches go on; what they bring later is applied as a change).
const FIRST_LIST_WAIT: Duration = Duration::from_secs(10);

/// Changes from the API server that come within this of each other are applied together.
const SETTLE: Duration = Duration::from_millis(50);

/// The plugins of `loaded` (inline and from its resources), with every module fetched, and
/// what [`follow_changes`] starts from. With `plugins.kubernetes`, the watches start here and
/// their first lists are waited for (up to 10 s).
///
/// The follower starts from the fingerprint taken when `loaded` read the files, before the
/// proxy started: an edit made as soon as the proxy is ready is then a change, however late the
/// follower's thread runs. (Taken by the follower, it could include the edit and never apply it.)
pub fn initial_plugins(
    rt: &tokio::runtime::Runtime,
    loaded: &Loaded,
    sources: &PluginSources,
    fetcher: &Fetcher,
) -> Result<(Vec<PluginSpec>, Followed), KubernetesError> {
    let seen = loaded.sources_fingerprint;
    let mut kubernetes = match &sources.kubernetes {
        None => None,
        Some(settings) => Some(rt.block_on(async {
            let client = kubernetes::client(settings).await?;
            let namespaces = [loaded.workload.namespace.clone(), sources.root_namespace.clone()];
            let source = KubernetesSource::start(client.clone(), &namespaces);
            if !source.first_lists(FIRST_LIST_WAIT).await? {
                tracing::warn!(
                    "the Kubernetes API did not list every plugin resource within {FIRST_LIST_WAIT:?}: \
                     starting with what it gave; the rest is applied when it comes"
                );
            }
            let reporter = settings
                .report_status
                .then(|| StatusReporter::start(client, crate::downward::instance()));
            Ok::<_, KubernetesError>(Api {
                source,
                resources: ApiResources::default(),
                reporter,
            })
        })?),
    };
    let files = match (&loaded.resources, &kubernetes) {
        (Some(files), _) => files.clone(),
        (None, Some(_)) => ResourceSet::default(),
        (None, None) => {
            let followed = Followed {
                seen,
                config_seen: loaded.config_fingerprint,
                resolved: Vec::new(),
                kubernetes,
            };
            return Ok((loaded.spec.plugins.clone(), followed));
        }
    };
    let resources = with_kubernetes(files, kubernetes.as_mut());
    log_warnings(&resources);
    let (specs, resolved) = rt.block_on(resolve(loaded, sources, &resources, fetcher, &[]));
    let followed = Followed {
        seen,
        config_seen: loaded.config_fingerprint,
        resolved,
        kubernetes,
    };
    Ok((specs, followed))
}

/// The resources of the files and those of the API server together (kept in `kubernetes`
/// for the report). Objects from the API that do not parse are logged and left out.
fn with_kubernetes(mut files: ResourceSet, kubernetes: Option<&mut Api>) -> ResourceSet {
    if let Some(api) = kubernetes {
        api.resources = api.source.resources();
        for e in api.resources.errors() {
            tracing::error!("a Kubernetes resource cannot be used and is left out: {e}");
        }
        files.extend(api.resources.set.clone());
    }
    files
}

/// What became of each API object this proxy selected: its plugins' fetch and VM states (the
/// worst of them, when it declares several), or why it is invalid. Resources from files and
/// those that attach to no listener here are not reported.
fn outcomes(
    api: &ApiResources,
    resolved: &[Resolved],
    states: &[PluginState],
) -> Vec<(ObjectRef, Outcome)> {
    let mut by_object: BTreeMap<ObjectRef, Outcome> = BTreeMap::new();
    for r in resolved {
        let (Some(object), Some(spec)) = (api.origins.get(&r.decl.source.file), &r.spec) else {
            continue;
        };
        let outcome = match (&spec.load_error, r.decl.wasm()) {
            (Some(e), Some(_)) => Outcome::FetchFailed(e.clone()),
            (Some(e), None) => Outcome::VmFailed(e.clone()),
            (None, _) => match states.iter().find(|s| s.name == spec.name) {
                Some(PluginState {
                    running: Ok(()), ..
                }) => Outcome::Loaded,
                Some(PluginState {
                    running: Err(e), ..
                }) => Outcome::VmFailed(e.clone()),
                None => continue,
            },
        };
        let merged = match by_object.remove(object) {
            Some(before) => before.worse(outcome),
            None => outcome,
        };
        by_object.insert(object.clone(), merged);
    }
    for (object, error) in &api.invalid {
        by_object.insert(object.clone(), Outcome::Invalid(error.to_string()));
    }
    by_object.into_iter().collect()
}

/// Hands the current outcomes to the reporter (which writes only what changed).
fn report(kubernetes: Option<&Api>, resolved: &[Resolved], target: &dyn Target) {
    if let Some(Api {
        resources,
        reporter: Some(reporter),
        ..
    }) = kubernetes
    {
        reporter.report(outcomes(resources, resolved, &target.states()));
    }
}

/// Follows the configuration until `stop`: re-reads the configuration file (with `reread`)
/// when it changes, and the resources whenever their files or (with `plugins.kubernetes`) the
/// API server's objects change, and hands the whole configuration to `target`. A file that
/// does not parse, or a configuration the proxy refuses, leaves the running one as it is; so
/// does the API server going away. Plugin sources are followed when the proxy started with
/// them (`fetcher`); adding them, or changing how they are reached, takes a restart. With
/// `plugins.kubernetes`, what became of each selected object is reported to the cluster after
/// each change, and whenever a plugin's state changes (checked every second).
pub fn follow_changes(
    rt: &tokio::runtime::Runtime,
    loaded: Loaded,
    reread: &dyn Fn() -> Result<Loaded, ConfigError>,
    fetcher: Option<&Fetcher>,
    followed: Followed,
    stop: &AtomicBool,
    target: &mut dyn Target,
) {
    let Followed {
        mut seen,
        mut config_seen,
        mut resolved,
        mut kubernetes,
    } = followed;
    let mut loaded = loaded;
    let mut api_changes = kubernetes.as_ref().map(|api| api.source.changed());
    // The watches run on this runtime: the loop stays inside it.
    rt.block_on(async {
        while !stop.load(Ordering::Relaxed) {
            report(kubernetes.as_ref(), &resolved, target);
            let api_changed = match api_changes.as_mut() {
                Some(changes) => tokio::select! {
                    r = changes.changed() => {
                        tokio::time::sleep(SETTLE).await;
                        changes.borrow_and_update();
                        r.is_ok()
                    }
                    () = tokio::time::sleep(POLL_INTERVAL) => false,
                },
                None => {
                    tokio::time::sleep(POLL_INTERVAL).await;
                    false
                }
            };
            let mut next = None;
            if !loaded.source.as_os_str().is_empty() {
                let now = crate::config_fingerprint(&loaded.source);
                if now != config_seen {
                    config_seen = now;
                    match reread() {
                        Ok(n) => {
                            warn_restart_only(&loaded, &n);
                            next = Some(n);
                        }
                        Err(e) => {
                            tracing::error!("the configuration file changed but cannot be used (the running configuration stays): {e}");
                            target.refuse(&e.to_string());
                        }
                    }
                }
            }
            let candidate = next.as_ref().unwrap_or(&loaded);
            let sources = candidate
                .plugin_sources
                .as_ref()
                .zip(fetcher)
                .filter(|_| loaded.plugin_sources.is_some());
            let now = sources.map_or(0, |(s, _)| s.fingerprint());
            if now == seen && !api_changed && next.is_none() {
                continue;
            }
            seen = now;
            let plugins = match sources {
                None => candidate.spec.plugins.clone(),
                Some((sources, fetcher)) => match sources.read() {
                    Ok(files) => {
                        let resources = with_kubernetes(files, kubernetes.as_mut());
                        log_warnings(&resources);
                        let (specs, again) =
                            resolve(candidate, sources, &resources, fetcher, &resolved).await;
                        resolved = again;
                        specs
                    }
                    Err(e) if next.is_some() => {
                        tracing::error!("WasmPlugin sources cannot be used (their plugins stay as they were): {e}");
                        crate::sources::merge(
                            &candidate.spec.plugins,
                            resolved.iter().filter_map(|r| r.spec.clone()),
                        )
                    }
                    Err(e) => {
                        tracing::error!(
                            "WasmPlugin sources changed but cannot be used (the running plugins stay): {e}"
                        );
                        continue;
                    }
                },
            };
            let spec = ProxySpec {
                plugins,
                ..candidate.spec.clone()
            };
            if let Err(e) = target.apply(spec, &candidate.spec.plugins) {
                tracing::error!("the new configuration was refused (the running one stays): {e}");
                continue;
            }
            if let Some(n) = next {
                loaded = n;
            }
        }
    });
}

/// Changes to how plugin sources are reached apply after a restart: says so.
fn warn_restart_only(running: &Loaded, next: &Loaded) {
    let Some(sources) = &next.plugin_sources else {
        return;
    };
    let reach = |l: &Loaded| {
        l.plugin_sources
            .as_ref()
            .map(|s| (s.kubernetes.clone(), s.insecure_registries.clone()))
    };
    let watched_namespace_changed =
        sources.kubernetes.is_some() && running.workload.namespace != next.workload.namespace;
    if running.plugin_sources.is_none() {
        tracing::warn!("plugins.sources was added: it is followed after a restart");
    } else if reach(running) != reach(next) || watched_namespace_changed {
        tracing::warn!(
            "plugins.kubernetes, plugins.insecure_registries and the watched namespace apply after a restart; the other changes apply now"
        );
    }
}

/// Spellings read in place of Istio's (`selector.labels`, a `vmConfig` list, ...).
fn log_warnings(resources: &ResourceSet) {
    for warning in resources.warnings() {
        tracing::warn!("{warning}");
    }
}
