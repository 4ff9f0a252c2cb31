//! What every worker and the admin endpoint share: the spec, the host, the published plugin
//! set, the counters, and facts computed once from the spec.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use wasp_host::{Host, PropertyValue};

use crate::plugins::set::{PluginStatus, Published};
use crate::spec::ProxySpec;
use crate::stats::Stats;

/// Everything workers and the admin endpoint share.
pub(crate) struct Shared {
    pub spec: ProxySpec,
    pub host: Host,
    /// The current plugin set, and news of the next.
    pub plugins: Published,
    pub stats: Stats,
    pub cluster_names: Arc<HashSet<String>>,
    pub node_properties: Arc<HashMap<String, PropertyValue>>,
    pub workers_started: AtomicUsize,
    /// False from `Proxy::start_unready` until `Proxy::declare_ready`.
    pub declared_ready: AtomicBool,
    /// Metrics of other layers (plugin fetching, ...), appended to /stats/prometheus.
    pub metric_sources: std::sync::Mutex<Vec<MetricSource>>,
    /// Each cluster's endpoint health and circuit-breaker counts, in the spec's order.
    pub clusters: Vec<Arc<crate::upstream::health::ClusterState>>,
    /// Each listener's access logs, in the spec's order.
    pub access_logs: crate::access_log::ListenerLogs,
    /// Spans per request when tracing is configured (disabled otherwise).
    pub tracer: wasp_trace::Tracer,
}

/// Gives the metrics of another layer at each scrape: a collector, usually a snapshot of that
/// layer's counters, which `/stats/prometheus` encodes after the proxy's own.
pub type MetricSource =
    Arc<dyn Fn() -> Box<dyn prometheus_client::collector::Collector> + Send + Sync>;

impl Shared {
    pub fn workers_started(&self) -> bool {
        self.workers_started.load(Ordering::Acquire) == self.spec.workers
    }

    /// What `/ready` answers.
    pub fn ready(&self) -> bool {
        self.workers_started() && self.declared_ready.load(Ordering::Acquire)
    }

    pub fn plugin_statuses(&self) -> Vec<PluginStatus> {
        self.plugins.current().statuses()
    }
}
