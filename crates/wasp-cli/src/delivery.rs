//! WasmPlugin resources for `wasp run`: fetch their modules before the proxy starts, export
//! the fetcher's counters, and apply changes to the resource files while it runs.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use wasp_config::{Loaded, PluginSources, Resolved};
use wasp_delivery::{FetchStats, Fetcher, FetcherConfig};
use wasp_proxy::Proxy;
use wasp_proxy::spec::PluginSpec;

/// How often the resource files are checked for changes.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The fetcher for one process: modules cached under `cache_root/modules`.
pub fn fetcher(cache_root: &Path, insecure_registries: &[String]) -> anyhow::Result<Fetcher> {
    let config = FetcherConfig {
        insecure_registries: insecure_registries.to_vec(),
        ..FetcherConfig::new(cache_root.join("modules"))
    };
    Fetcher::new(config).context("cannot open the plugin module cache")
}

/// The plugins of `loaded` (inline and from its resources), with every module fetched.
pub fn initial_plugins(
    rt: &tokio::runtime::Runtime,
    loaded: &Loaded,
    sources: &PluginSources,
    fetcher: &Fetcher,
) -> (Vec<PluginSpec>, Vec<Resolved>) {
    let Some(resources) = &loaded.resources else {
        return (loaded.spec.plugins.clone(), Vec::new());
    };
    log_warnings(resources);
    rt.block_on(wasp_config::resolve(
        loaded,
        sources,
        resources,
        fetcher,
        &[],
    ))
}

/// Re-reads the resources whenever their files change and publishes the new plugins, until
/// `stop`. A file that does not parse leaves the running plugins as they are.
pub fn follow_changes(
    rt: &tokio::runtime::Runtime,
    loaded: &Loaded,
    sources: &PluginSources,
    fetcher: &Fetcher,
    proxy: &Proxy,
    mut resolved: Vec<Resolved>,
    stop: &AtomicBool,
) {
    let mut seen = sources.fingerprint();
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
        let (specs, next) = rt.block_on(wasp_config::resolve(
            loaded, sources, &resources, fetcher, &resolved,
        ));
        resolved = next;
        let statuses = proxy.update_plugins(&specs);
        let names: Vec<String> = statuses
            .iter()
            .map(|s| format!("{} ({})", s.name, s.state))
            .collect();
        tracing::info!(plugins = ?names, "WasmPlugin sources changed: plugins updated");
    }
}

/// Spellings read in place of Istio's (`selector.labels`, a `vmConfig` list, ...).
fn log_warnings(resources: &wasp_config::wasmplugin::ResourceSet) {
    for warning in resources.warnings() {
        tracing::warn!("{warning}");
    }
}

/// The fetcher's counters in the Prometheus text format.
pub fn render_metrics(stats: &FetchStats) -> String {
    let mut out = String::new();
    out.push_str("# HELP wasp_plugin_fetches_total Plugin module fetches by result.\n");
    out.push_str("# TYPE wasp_plugin_fetches_total counter\n");
    out.push_str(&format!(
        "wasp_plugin_fetches_total{{result=\"success\"}} {}\n",
        stats.success
    ));
    for (kind, n) in &stats.failures {
        out.push_str(&format!(
            "wasp_plugin_fetches_total{{result=\"{kind}\"}} {n}\n"
        ));
    }
    for (name, help, value) in [
        (
            "wasp_plugin_cache_hits_total",
            "Remote fetches served from the module cache.",
            stats.cache_hits,
        ),
        (
            "wasp_plugin_cache_misses_total",
            "Remote fetches that downloaded the module.",
            stats.cache_misses,
        ),
    ] {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
        ));
    }
    out.push_str(&format!(
        "# HELP wasp_plugin_cache_entries Modules in the cache.\n# TYPE wasp_plugin_cache_entries gauge\nwasp_plugin_cache_entries {}\n",
        stats.cache_entries
    ));
    out
}
