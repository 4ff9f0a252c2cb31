//! Plugin sources while the proxy runs: their modules fetched before it starts, and changes to
//! the resource files and the Kubernetes API's objects applied while it runs (`wasp run`).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasp_delivery::{FetchError, Fetcher, FetcherConfig};
use wasp_spec::PluginSpec;

use crate::Loaded;
use crate::kubernetes::{self, KubernetesError, KubernetesSource};
use crate::sources::{PluginSources, Resolved, resolve};
use crate::wasmplugin::ResourceSet;

/// How often the resource files are checked for changes.
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
    resolved: Vec<Resolved>,
    kubernetes: Option<KubernetesSource>,
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
    let kubernetes = match &sources.kubernetes {
        None => None,
        Some(settings) => Some(rt.block_on(async {
            let client = kubernetes::client(settings).await?;
            let namespaces = [loaded.workload.namespace.clone(), sources.root_namespace.clone()];
            let source = KubernetesSource::start(client, &namespaces);
            if !source.wait_listed(FIRST_LIST_WAIT).await {
                tracing::warn!(
                    "the Kubernetes API did not list every plugin resource within {FIRST_LIST_WAIT:?}: \
                     starting with what it gave; the rest is applied when it comes"
                );
            }
            Ok::<_, KubernetesError>(source)
        })?),
    };
    let files = match (&loaded.resources, &kubernetes) {
        (Some(files), _) => files.clone(),
        (None, Some(_)) => ResourceSet::default(),
        (None, None) => {
            let followed = Followed {
                seen,
                resolved: Vec::new(),
                kubernetes,
            };
            return Ok((loaded.spec.plugins.clone(), followed));
        }
    };
    let resources = with_kubernetes(files, kubernetes.as_ref());
    log_warnings(&resources);
    let (specs, resolved) = rt.block_on(resolve(loaded, sources, &resources, fetcher, &[]));
    let followed = Followed {
        seen,
        resolved,
        kubernetes,
    };
    Ok((specs, followed))
}

/// The resources of the files and those of the API server together. Objects from the API
/// that do not parse are reported and left out.
fn with_kubernetes(mut files: ResourceSet, kubernetes: Option<&KubernetesSource>) -> ResourceSet {
    if let Some(source) = kubernetes {
        let (set, errors) = source.resources();
        for e in errors {
            tracing::error!("a Kubernetes resource cannot be used and is left out: {e}");
        }
        files.extend(set);
    }
    files
}

/// Re-reads the resources whenever their files or (with `plugins.kubernetes`) the API
/// server's objects change, and hands the new plugins to `publish`, until `stop`. A file that
/// does not parse leaves the running plugins as they are; so does the API server going away.
pub fn follow_changes(
    rt: &tokio::runtime::Runtime,
    loaded: &Loaded,
    sources: &PluginSources,
    fetcher: &Fetcher,
    followed: Followed,
    stop: &AtomicBool,
    publish: &mut dyn FnMut(Vec<PluginSpec>),
) {
    let Followed {
        mut seen,
        mut resolved,
        kubernetes,
    } = followed;
    let mut api_changes = kubernetes.as_ref().map(KubernetesSource::changed);
    // The watches run on this runtime: the loop stays inside it.
    rt.block_on(async {
        while !stop.load(Ordering::Relaxed) {
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
            let now = sources.fingerprint();
            if now == seen && !api_changed {
                continue;
            }
            seen = now;
            let files = match sources.read() {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(
                        "WasmPlugin sources changed but cannot be used (the running plugins stay): {e}"
                    );
                    continue;
                }
            };
            let resources = with_kubernetes(files, kubernetes.as_ref());
            log_warnings(&resources);
            let (specs, next) = resolve(loaded, sources, &resources, fetcher, &resolved).await;
            resolved = next;
            publish(specs);
        }
    });
}

/// Spellings read in place of Istio's (`selector.labels`, a `vmConfig` list, ...).
fn log_warnings(resources: &ResourceSet) {
    for warning in resources.warnings() {
        tracing::warn!("{warning}");
    }
}
