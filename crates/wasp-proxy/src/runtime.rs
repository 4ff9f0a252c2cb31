//! Starting and stopping the proxy: plugins compiled once, listeners bound, one thread per
//! worker, the admin endpoint on a thread of its own.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::watch;
use wasp_host::{Host, PropertyValue};

use crate::error::StartError;
use crate::plugins::set::{PluginSet, PluginStatus, Published};
use crate::shared::{MetricSource, Shared};
use crate::spec::{ListenerSpec, PluginSpec, ProxySpec};
use crate::stats::Stats;
use crate::stream::routes::Listener;
use crate::upstream::health::ClusterState;
use crate::worker::Worker;

/// A running proxy.
pub struct Proxy {
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    addresses: Vec<(String, SocketAddr)>,
    admin: Option<SocketAddr>,
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
        // Build every cluster once here so that bad TLS settings stop the start with a clear
        // error instead of surfacing on a worker.
        let cluster_states: Vec<Arc<ClusterState>> = spec
            .clusters
            .iter()
            .map(|c| Arc::new(ClusterState::new(c)))
            .collect();
        crate::upstream::Upstreams::new(&spec.clusters, &cluster_states)?;
        let access_logs = crate::access_log::open(&spec.listeners)?;
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
        let plugins = Published::new(PluginSet::build(
            &host,
            &spec.plugins,
            &spec.listeners,
            None,
            1,
        ));
        let node_properties = Arc::new(node_properties(&spec));
        let cluster_names = Arc::new(spec.clusters.iter().map(|c| c.name.clone()).collect());
        let workers = spec.workers.max(1);
        // Every worker gets its own socket for every listener (SO_REUSEPORT): the kernel
        // spreads connections and a connection stays on the worker that accepted it.
        let mut sockets: Vec<Vec<std::net::TcpListener>> =
            (0..workers).map(|_| Vec::new()).collect();
        let mut addresses = Vec::new();
        let mut tls = Vec::new();
        for l in &spec.listeners {
            let bound = bind_reuseport(l, workers)?;
            addresses.push((
                l.name.clone(),
                bound[0]
                    .local_addr()
                    .map_err(|source| bind_error(l, source))?,
            ));
            for (w, socket) in bound.into_iter().enumerate() {
                sockets[w].push(socket);
            }
            tls.push(match &l.tls {
                Some(t) => Some(crate::listener::tls::context(t, l.tcp.is_none()).map_err(
                    |reason| StartError::Tls {
                        name: l.name.clone(),
                        reason,
                    },
                )?),
                None => None,
            });
        }
        let listener_stats = spec.listeners.iter().map(|_| Default::default()).collect();
        let shared = Arc::new(Shared {
            spec: ProxySpec { workers, ..spec },
            host,
            plugins,
            stats: Stats {
                listeners: listener_stats,
                ..Stats::default()
            },
            cluster_names,
            node_properties,
            workers_started: AtomicUsize::new(0),
            declared_ready: AtomicBool::new(declared_ready),
            metric_sources: Default::default(),
            clusters: cluster_states,
            access_logs,
            tracer,
        });
        let (shutdown, _) = watch::channel(false);
        let mut threads = Vec::new();
        for (id, sockets) in sockets.into_iter().enumerate() {
            let shared = shared.clone();
            let shutdown = shutdown.subscribe();
            let tls = tls.clone();
            let thread = std::thread::Builder::new()
                .name(format!("wasp-worker-{id}"))
                .spawn(move || run_worker(id, shared, sockets, tls, shutdown))
                .map_err(StartError::Thread)?;
            threads.push(thread);
        }
        if let Some(thread) = crate::upstream::checker::start(
            &shared.spec.clusters,
            &shared.clusters,
            shutdown.subscribe(),
        ) {
            threads.push(thread);
        }
        let admin = match shared.spec.admin {
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
            addresses,
            admin,
        })
    }

    /// The bound address of each listener (useful with port 0).
    pub fn addresses(&self) -> &[(String, SocketAddr)] {
        &self.addresses
    }

    /// The bound address of the listener named `listener`.
    pub fn address(&self, listener: &str) -> Option<SocketAddr> {
        self.addresses
            .iter()
            .find(|(n, _)| n == listener)
            .map(|(_, a)| *a)
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
        let new =
            self.shared
                .plugins
                .publish(&self.shared.host, plugins, &self.shared.spec.listeners);
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
            if set.started_on.load(Ordering::Acquire) >= self.shared.spec.workers {
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

fn bind_error(l: &ListenerSpec, source: std::io::Error) -> StartError {
    StartError::Bind {
        name: l.name.clone(),
        address: l.address,
        source,
    }
}

fn bind_reuseport(
    l: &ListenerSpec,
    count: usize,
) -> Result<Vec<std::net::TcpListener>, StartError> {
    let mut address = l.address;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let domain = if address.is_ipv4() {
            socket2::Domain::IPV4
        } else {
            socket2::Domain::IPV6
        };
        let socket =
            socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))
                .map_err(|e| bind_error(l, e))?;
        socket
            .set_reuse_address(true)
            .map_err(|e| bind_error(l, e))?;
        socket.set_reuse_port(true).map_err(|e| bind_error(l, e))?;
        socket.bind(&address.into()).map_err(|e| bind_error(l, e))?;
        socket.listen(1024).map_err(|e| bind_error(l, e))?;
        let listener: std::net::TcpListener = socket.into();
        // Port 0: the first socket picks the port, the others join it.
        address = listener.local_addr().map_err(|e| bind_error(l, e))?;
        out.push(listener);
    }
    Ok(out)
}

fn run_worker(
    id: usize,
    shared: Arc<Shared>,
    sockets: Vec<std::net::TcpListener>,
    tls: Vec<Option<crate::listener::tls::ServerTlsContext>>,
    shutdown: watch::Receiver<bool>,
) {
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
        let mut loops = Vec::new();
        for (i, socket) in sockets.into_iter().enumerate() {
            let spec = shared.spec.listeners[i].clone();
            let listener = Rc::new(Listener::new(spec, i, &shared.spec.clusters));
            let socket = match socket
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpListener::from_std(socket))
            {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(worker = id, "cannot use listener socket: {e}");
                    continue;
                }
            };
            loops.push(tokio::task::spawn_local(crate::listener::accept_loop(
                worker.clone(),
                listener,
                socket,
                tls[i].clone(),
                shutdown.clone(),
            )));
        }
        shared.workers_started.fetch_add(1, Ordering::AcqRel);
        for l in loops {
            let _ = l.await;
        }
        // Drain: connections finish their in-flight requests (they watch the same signal).
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while shared.stats.active_connections.load(Ordering::Relaxed) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
}
