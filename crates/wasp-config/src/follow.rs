//! Plugin sources while the proxy runs: their modules fetched before it starts, and changes to
//! the resource files applied while it runs (`wasp run`).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasp_delivery::{FetchError, Fetcher, FetcherConfig};
use wasp_spec::PluginSpec;

use crate::Loaded;
use crate::sources::{PluginSources, Resolved, resolve};

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

/// What the follower knows of the sources: the fingerprint of the files last read and the
/// modules they resolved to (kept so that an unchanged reference is not fetched again).
pub struct Followed {
    seen: u64,
    resolved: Vec<Resolved>,
}

/// The plugins of `loaded` (inline and from its resources), with every module fetched, and
/// what [`follow_changes`] starts from.
///
/// The follower starts from the fingerprint taken when `loaded` read the files, before the
/// proxy started: an edit made as soon as the proxy is ready is then a change, however late the
/// follower's thread runs. (Taken by the follower, it could include the edit and never apply it.)
pub fn initial_plugins(
    rt: &tokio::runtime::Runtime,
    loaded: &Loaded,
    sources: &PluginSources,
    fetcher: &Fetcher,
) -> (Vec<PluginSpec>, Followed) {
    let seen = loaded.sources_fingerprint;
    let Some(resources) = &loaded.resources else {
        let followed = Followed {
            seen,
            resolved: Vec::new(),
        };
        return (loaded.spec.plugins.clone(), followed);
    };
    log_warnings(resources);
    let (specs, resolved) = rt.block_on(resolve(loaded, sources, resources, fetcher, &[]));
    (specs, Followed { seen, resolved })
}

/// Re-reads the resources whenever their files change and hands the new plugins to
/// `publish`, until `stop`. A file that does not parse leaves the running plugins as they are.
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
    } = followed;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(POLL_INTERVAL);
        let now = sources.fingerprint();
        if now == seen {
            continue;
        }
        seen = now;
        let resources = match sources.read() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(
                    "WasmPlugin sources changed but cannot be used (the running plugins stay): {e}"
                );
                continue;
            }
        };
        log_warnings(&resources);
        let (specs, next) = rt.block_on(resolve(loaded, sources, &resources, fetcher, &resolved));
        resolved = next;
        publish(specs);
    }
}

/// Spellings read in place of Istio's (`selector.labels`, a `vmConfig` list, ...).
fn log_warnings(resources: &crate::wasmplugin::ResourceSet) {
    for warning in resources.warnings() {
        tracing::warn!("{warning}");
    }
}
