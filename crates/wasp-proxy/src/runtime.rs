//! Starting and stopping the proxy: plugins compiled once, listeners bound, one thread per
//! worker, the admin endpoint on a thread of its own.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::watch;
use wasp_host::{Host, PropertyValue};

use crate::error::StartError;
use crate::generation::{Generation, Generations};
use crate::plugins::set::{PluginSet, PluginStatus, Published};
use crate::shared::{MetricSource, Shared};
use crate::spec::{PluginSpec, ProxySpec};
use crate::stats::Stats;
use crate::upstream::checker::HealthChecker;
use crate::worker::Worker;

/// A running proxy.
pub struct Proxy {
    pub(crate) shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    admin: Option<SocketAddr>,
    /// The health checks of the current clusters; replaced by a reload that changes them.
    /// The lock also keeps reloads one at a time.
    pub(crate) checker: Mutex<Option<HealthChecker>>,
}

impl Proxy {
    /// Compiles the plugins, binds every listener and starts the workers and the admin
    /// endpoint. Plugins that fail to load do not stop the proxy: their failure policy
    /// applies to the requests they would have served. `/ready` answers 200 once every worker
    /// has started.
    pub fn start(spec: ProxySpec, host: Host) -> Result<Proxy, StartError> {
        Proxy::start_gated(spec, host, true)
    }

    /// As [`Proxy::start`], but `/ready` answers 503 until [`Proxy::declare_ready`]: for an
    /// embedder that judges the started plugins before traffic may be sent (`wasp run` exits
    /// when an inline plugin failed to start, as Envoy refuses such a configuration, and must
    /// not have looked ready meanwhile).
    pub fn start_unready(spec: ProxySpec, host: Host) -> Result<Proxy, StartError> {
        Proxy::start_gated(spec, host, false)
    }

    /// Lets `/ready` answer 200 (once the workers have started) after [`Proxy::start_unready`].
    pub fn declare_ready(&self) {
        self.shared.declared_ready.store(true, Ordering::Release);
    }

    fn start_gated(spec: ProxySpec, host: Host, declared_ready: bool) -> Result<Proxy, StartError> {
        let started = Instant::now();
        let workers = spec.workers.max(1);
        let tracer = match &spec.tracing {
            Some(t) => wasp_trace::Tracer::new(wasp_trace::TracingConfig {
                otlp_endpoint: Some(t.otlp_endpoint.clone()),
                service_name: t.service_name.clone(),
                sampling_percent: t.sampling_percent,
                propagate_b3: t.propagate_b3,
            })
            .map_err(|e| StartError::Tracing(e.to_string()))?,
            None => wasp_trace::Tracer::disabled(),
        };
        let plugins = Published::new(PluginSet::build(&host, &spec.plugins, None, 1));
        let node_properties = Arc::new(node_properties(&spec));
        let admin = spec.admin;
        let first = Generation::build(ProxySpec { workers, ..spec }, None, workers, 1)?;
        let shared = Arc::new(Shared {
            workers,
            admin,
            host,
            plugins,
            generations: Arc::new(Generations::new(first)),
            last_reload: Default::default(),
            stats: Stats::default(),
            node_properties,
            workers_started: AtomicUsize::new(0),
            declared_ready: AtomicBool::new(declared_ready),
            metric_sources: Default::default(),
            tracer,
        });
        let (shutdown, _) = watch::channel(false);
        let mut threads = Vec::new();
        for id in 0..workers {
            let shared = shared.clone();
            let shutdown = shutdown.subscribe();
            let thread = std::thread::Builder::new()
                .name(format!("wasp-worker-{id}"))
                .spawn(move || run_worker(id, shared, shutdown))
                .map_err(StartError::Thread)?;
            threads.push(thread);
        }
        let first = shared.generations.current();
        let checker = HealthChecker::start(&first.spec.clusters, &first.clusters);
        let admin = match admin {
            Some(address) => {
                let (addr, thread) =
                    crate::admin::start(address, shared.clone(), shutdown.subscribe())?;
                threads.push(thread);
                Some(addr)
            }
            None => None,
        };
        tracing::info!(
            workers,
            plugins = shared.plugins.current().plugins.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "wasp started"
        );
        Ok(Proxy {
            shared,
            shutdown,
            threads,
            admin,
            checker: Mutex::new(checker),
        })
    }

    /// The bound address of each listener of the current configuration (useful with port 0).
    pub fn addresses(&self) -> Vec<(String, SocketAddr)> {
        let generation = self.shared.generations.current();
        generation
            .spec
            .listeners
            .iter()
            .zip(&generation.listeners)
            .map(|(spec, l)| (spec.name.clone(), l.socket.local))
            .collect()
    }

    /// The bound address of the listener named `listener`.
    pub fn address(&self, listener: &str) -> Option<SocketAddr> {
        self.addresses()
            .into_iter()
            .find(|(n, _)| n == listener)
            .map(|(_, a)| a)
    }

    /// The bound address of the admin endpoint, if it was configured.
    pub fn admin_address(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// True once every worker runs with its plugins started (whether or not `/ready` says so
    /// yet: see [`Proxy::start_unready`]).
    pub fn workers_started(&self) -> bool {
        self.shared.workers_started()
    }

    /// What `/ready` answers: the workers started and, after [`Proxy::start_unready`], the
    /// embedder declared the proxy ready.
    pub fn is_ready(&self) -> bool {
        self.shared.ready()
    }

    /// What `/plugins` shows: each plugin of the current set and its state.
    pub fn plugin_statuses(&self) -> Vec<PluginStatus> {
        self.shared.plugin_statuses()
    }

    /// Replaces the plugins (a configuration reload). Modules are compiled here, on the
    /// caller's thread, reusing those of plugins that did not change; then every worker
    /// instantiates the new set and gives it to new streams, while streams in flight finish
    /// on the plugins they started with. Returns the new set's plugin statuses.
    pub fn update_plugins(&self, plugins: &[PluginSpec]) -> Vec<PluginStatus> {
        let old = self.shared.plugins.current();
        let new = self.shared.plugins.publish(&self.shared.host, plugins);
        let (added, changed, removed) = crate::plugins::set::diff(&old, &new);
        tracing::info!(
            version = new.version,
            ?added,
            ?changed,
            ?removed,
            "publishing a new plugin set"
        );
        new.statuses()
    }

    /// Waits until every worker has instantiated the current plugin set (so that
    /// [`Proxy::plugin_statuses`] includes VMs that failed to start), up to `within`. Returns
    /// whether they all did.
    pub fn wait_plugins_started(&self, within: std::time::Duration) -> bool {
        let deadline = Instant::now() + within;
        let set = self.shared.plugins.current();
        loop {
            if set.started_on.load(Ordering::Acquire) >= self.shared.workers {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// Adds metrics of another layer (e.g. plugin fetches) to /stats/prometheus.
    pub fn add_metric_source(&self, source: MetricSource) {
        self.shared
            .metric_sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(source);
    }

    /// Stops accepting, lets in-flight requests finish, joins every thread, and sends the
    /// spans still queued.
    pub fn shutdown(self) {
        let _ = self.shutdown.send(true);
        // The workers' accept loops let go of their descriptors as they stop; these are the
        // last ones, so the ports close now while in-flight requests finish.
        for listener in &self.shared.generations.current().listeners {
            listener.socket.close();
        }
        let checker = self
            .checker
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(checker) = checker {
            checker.stop(true);
        }
        for thread in self.threads {
            let _ = thread.join();
        }
        self.shared.tracer.flush(std::time::Duration::from_secs(2));
    }
}

/// `xds.node.*` as Envoy 1.40 exposes the bootstrap node (it no longer answers the older
/// top-level `node.*`).
fn node_properties(spec: &ProxySpec) -> HashMap<String, PropertyValue> {
    let mut props = HashMap::new();
    props.insert(
        "xds.node.id".to_string(),
        PropertyValue::from(spec.node.id.as_str()),
    );
    props.insert(
        "xds.node.cluster".to_string(),
        PropertyValue::from(spec.node.cluster.as_str()),
    );
    for (k, v) in &spec.node.metadata {
        let value = match v {
            serde_json::Value::String(s) => PropertyValue::from(s.as_str()),
            other => PropertyValue::from(other.to_string()),
        };
        props.insert(format!("xds.node.metadata.{k}"), value);
    }
    props
}

fn run_worker(id: usize, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(worker = id, "cannot start the worker's event loop: {e}");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let worker = Worker::start(id, shared.clone());
        tokio::task::spawn_local(crate::listener::accept_all(worker, shutdown.clone()));
        shared.workers_started.fetch_add(1, Ordering::AcqRel);
        let _ = shutdown.changed().await;
        // Drain: connections finish their in-flight requests (they watch the same signal).
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while shared.stats.active_connections.load(Ordering::Relaxed) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
}
