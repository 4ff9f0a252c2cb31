//! What every worker and the admin endpoint share: the host, the published plugin set and
//! configuration generation, the counters, and the process-wide settings a reload does not
//! change.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use wasp_host::{Host, PropertyValue};

use crate::generation::Generations;
use crate::plugins::set::{PluginStatus, Published};
use crate::stats::Stats;

/// Everything workers and the admin endpoint share.
pub(crate) struct Shared {
    /// Worker threads (fixed for the process).
    pub workers: usize,
    /// Where the admin endpoint listens (fixed for the process).
    pub admin: Option<SocketAddr>,
    pub host: Host,
    /// The current plugin set, and news of the next.
    pub plugins: Published,
    /// The current listeners and clusters, and news of the next.
    pub generations: Arc<Generations>,
    /// How the last reload went, for /config_dump.
    pub last_reload: Mutex<Option<ReloadRecord>>,
    pub stats: Stats,
    pub node_properties: Arc<HashMap<String, PropertyValue>>,
    pub workers_started: AtomicUsize,
    /// False from `Proxy::start_unready` until `Proxy::declare_ready`.
    pub declared_ready: AtomicBool,
    /// Metrics of other layers (plugin fetching, ...), appended to /stats/prometheus.
    pub metric_sources: Mutex<Vec<MetricSource>>,
    /// Spans per request when tracing is configured (disabled otherwise).
    pub tracer: wasp_trace::Tracer,
}

/// What became of the last configuration reload.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ReloadRecord {
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// The generation in service after it.
    pub version: u64,
    /// `None`: applied; otherwise why the configuration was refused (the previous one stays).
    pub error: Option<String>,
    /// Settings that changed but apply only after a restart.
    pub needs_restart: Vec<String>,
}

/// Gives the metrics of another layer at each scrape: a collector, usually a snapshot of that
/// layer's counters, which `/stats/prometheus` encodes after the proxy's own.
pub type MetricSource =
    Arc<dyn Fn() -> Box<dyn prometheus_client::collector::Collector> + Send + Sync>;

impl Shared {
    pub fn workers_started(&self) -> bool {
        self.workers_started.load(Ordering::Acquire) == self.workers
    }

    /// What `/ready` answers.
    pub fn ready(&self) -> bool {
        self.workers_started() && self.declared_ready.load(Ordering::Acquire)
    }

    pub fn plugin_statuses(&self) -> Vec<PluginStatus> {
        self.plugins.current().statuses()
    }

    pub fn record_reload(&self, record: ReloadRecord) {
        *self
            .last_reload
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(record);
    }
}
