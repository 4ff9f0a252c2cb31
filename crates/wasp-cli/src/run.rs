//! `wasp run`: start the proxy from a config file, or from a one-line try-out.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use wasp_host::{Host, HostConfig};
use wasp_proxy::Proxy;

use wasp_config::follow;
use wasp_proxy::spec::{PluginSpec, ProxySpec};

#[derive(clap::Args)]
pub struct Args {
    /// The configuration file (see docs/configuration.md).
    #[arg(short = 'c', long = "config", conflicts_with_all = ["listen", "upstream", "plugin"])]
    config: Option<PathBuf>,
    /// Try-out: address to listen on.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Try-out: upstream `host:port`; without it, a built-in `200 hello from wasp` answers.
    #[arg(long)]
    upstream: Option<String>,
    /// Try-out: a plugin module (repeat for a chain, in order).
    #[arg(long)]
    plugin: Vec<PathBuf>,
    /// Try-out: the configuration handed to every plugin's proxy_on_configure.
    #[arg(long)]
    plugin_config: Option<String>,
    /// Where plugins are cached across restarts: fetched modules in `modules/`, compiled
    /// ones in `compiled/` (default: ~/.cache/wasp).
    #[arg(long, env = "WASP_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Also read WasmPlugin, TrafficExtension and EnvoyFilter resources (and their pull
    /// secrets) from the Kubernetes API, as `plugins.kubernetes: {}` does: in-cluster
    /// configuration, else the usual kubeconfig.
    #[arg(long)]
    kubernetes: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let kubernetes = args.kubernetes;
    let read_config = |path: &std::path::Path| {
        let mut loaded = wasp_config::load(path)?;
        if kubernetes {
            with_kubernetes(&mut loaded);
        }
        Ok::<_, wasp_config::ConfigError>(loaded)
    };
    let loaded = match (&args.config, args.listen) {
        (Some(path), _) => read_config(path)?,
        (None, Some(listen)) => wasp_config::quick(
            listen,
            args.upstream.as_deref(),
            &args.plugin,
            args.plugin_config.as_deref(),
        )?,
        (None, None) => bail!(
            "give a configuration file (-c wasp.yaml) or a try-out (--listen ADDR [--plugin FILE])"
        ),
    };
    let loaded = if kubernetes && args.config.is_none() {
        let mut loaded = loaded;
        with_kubernetes(&mut loaded);
        loaded
    } else {
        loaded
    };
    let cache_root = args.cache_dir.or_else(default_cache_dir);
    let host = Host::new(HostConfig {
        cache_dir: cache_root.as_ref().map(|root| root.join("compiled")),
        ..HostConfig::default()
    })
    .context("cannot start the plugin host")?;
    // Fetching and reloading run here, off the workers.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut spec = loaded.spec.clone();
    let delivery = match &loaded.plugin_sources {
        Some(sources) => {
            let root = cache_root
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("wasp"));
            let fetcher = follow::fetcher(&root, &sources.insecure_registries)
                .context("cannot open the plugin module cache")?;
            let (plugins, followed) = follow::initial_plugins(&rt, &loaded, sources, &fetcher)
                .context("cannot read plugins from Kubernetes")?;
            spec.plugins = plugins;
            Some((fetcher, followed))
        }
        None => None,
    };
    let proxy = Proxy::start_unready(spec, host)?;
    // Before the proxy can be ready, so that no scrape misses the fetch counters.
    if let Some((fetcher, _)) = &delivery {
        let stats_of = fetcher.clone();
        proxy.add_metric_source(Arc::new(move || Box::new(stats_of.stats())));
    }
    // The workers start their plugins on their own threads: wait for that before judging.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !proxy.workers_started() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    if let Err(e) =
        crate::start_check::check_started(&loaded.spec.plugins, &proxy.plugin_statuses())
    {
        proxy.shutdown();
        return Err(e);
    }
    proxy.declare_ready();
    // The start-up's compile garbage is returned; from now on freed pages may wait a little.
    wasp_alloc::serving();
    return_compiler_code();
    for (name, address) in proxy.addresses() {
        tracing::info!(listener = %name, %address, "listening");
        eprintln!("wasp: listener {name} on http://{address}");
    }
    if let Some(admin) = proxy.admin_address() {
        eprintln!(
            "wasp: admin on http://{admin} (/ready, /stats/prometheus, /plugins, /config_dump)"
        );
        if !admin.ip().is_loopback() {
            tracing::warn!(
                %admin,
                "the admin endpoint listens beyond loopback: whoever reaches it reads the configuration and metrics{}",
                if loaded.spec.admin_read_only { "" } else { " and can change the log level (admin.read_only: true refuses that)" }
            );
        }
    }
    for p in proxy.plugin_statuses() {
        eprintln!(
            "wasp: plugin {} ({}): {}{}",
            p.name,
            p.url,
            p.state,
            p.error.map(|e| format!(": {e}")).unwrap_or_default()
        );
    }
    let stop = AtomicBool::new(false);
    // A try-out has no file to follow and no plugin sources.
    let follows = args.config.is_some() || delivery.is_some();
    std::thread::scope(|scope| {
        if follows {
            let (rt, proxy, stop, read_config) = (&rt, &proxy, &stop, &read_config);
            let config = args.config.clone().unwrap_or_default();
            let (fetcher, followed) = match delivery {
                Some((fetcher, followed)) => (Some(fetcher), followed),
                None => (None, follow::Followed::config_only(&loaded)),
            };
            let inline = loaded.spec.plugins.clone();
            scope.spawn(move || {
                let reread = || read_config(&config);
                let mut target = Running { proxy, inline };
                follow::follow_changes(
                    rt,
                    loaded,
                    &reread,
                    fetcher.as_ref(),
                    followed,
                    stop,
                    &mut target,
                );
            });
        }
        let waited = wait_for_signal();
        stop.store(true, Ordering::Relaxed);
        waited
    })?;
    eprintln!("wasp: shutting down, draining in-flight requests");
    proxy.shutdown();
    Ok(())
}

/// Adds the Kubernetes API to the plugin sources (`--kubernetes`).
fn with_kubernetes(loaded: &mut wasp_config::Loaded) {
    let sources = loaded
        .plugin_sources
        .get_or_insert_with(|| wasp_config::PluginSources {
            sources: Vec::new(),
            secrets: Vec::new(),
            root_namespace: wasp_config::wasmplugin::DEFAULT_ROOT_NAMESPACE.to_string(),
            insecure_registries: Vec::new(),
            kubernetes: None,
        });
    sources.kubernetes.get_or_insert_with(Default::default);
}

/// The proxy as the follower drives it.
struct Running<'a> {
    proxy: &'a Proxy,
    /// The inline plugins of the configuration in service.
    inline: Vec<PluginSpec>,
}

impl follow::Target for Running<'_> {
    fn apply(&mut self, spec: ProxySpec, inline: &[PluginSpec]) -> Result<(), String> {
        // Inline plugins must start, as at start-up (Envoy refuses a listener update whose
        // Wasm filter fails to load): the new or changed ones are tried first, apart.
        let fresh: Vec<PluginSpec> = inline
            .iter()
            .filter(|p| !self.inline.iter().any(|old| same_inline(old, p)))
            .cloned()
            .collect();
        if let Err(e) = crate::start_check::start_inline_plugins(&fresh) {
            let reason = format!("{e:#}");
            self.proxy.refuse_config(&reason);
            return Err(reason);
        }
        let reloaded = self.proxy.reload(spec).map_err(|e| e.to_string())?;
        self.inline = inline.to_vec();
        let names: Vec<String> = self
            .proxy
            .plugin_statuses()
            .iter()
            .map(|s| format!("{} ({})", s.name, s.state))
            .collect();
        tracing::info!(version = reloaded.version, plugins = ?names, "configuration applied");
        eprintln!("wasp: configuration {} applied", reloaded.version);
        // Reported states must include VMs that fail to start on a worker.
        if reloaded.plugins_changed && !self.proxy.wait_plugins_started(Duration::from_secs(30)) {
            tracing::warn!("the workers did not start the new plugins within 30 s");
        }
        if reloaded.plugins_changed {
            return_compiler_code();
        }
        Ok(())
    }

    fn refuse(&mut self, reason: &str) {
        eprintln!(
            "wasp: the configuration file cannot be used, the running configuration stays: {reason}"
        );
        self.proxy.refuse_config(reason);
    }

    fn states(&self) -> Vec<follow::PluginState> {
        self.proxy
            .plugin_statuses()
            .into_iter()
            .map(|s| follow::PluginState {
                running: match s.state.as_str() {
                    "ready" => Ok(()),
                    _ => Err(s.error.unwrap_or_else(|| s.state.clone())),
                },
                name: s.name,
            })
            .collect()
    }
}

/// Whether an inline plugin is the one already running (so it need not be tried again).
fn same_inline(a: &PluginSpec, b: &PluginSpec) -> bool {
    match (a.wasm(), b.wasm()) {
        (Some(x), Some(y)) => {
            a.name == b.name
                && x.module == y.module
                && x.root_id == y.root_id
                && x.configuration == y.configuration
                && x.vm_configuration == y.vm_configuration
                && x.env == y.env
        }
        _ => a.name == b.name && a.url == b.url,
    }
}

pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("wasp"))
}

/// Blocks until SIGTERM or SIGINT.
fn wait_for_signal() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        // Give the log line above a moment to flush before workers start draining.
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok::<(), std::io::Error>(())
    })?;
    Ok(())
}

/// Plugins are compiled (or none needed it): the compiler's code, several MiB of the binary,
/// leaves the resident set; the code the proxy runs comes back as it runs.
fn return_compiler_code() {
    match wasp_alloc::return_code_pages() {
        Ok(bytes) => tracing::debug!(mib = bytes >> 20, "code pages returned"),
        Err(e) => tracing::debug!("cannot return the code pages: {e}"),
    }
}
