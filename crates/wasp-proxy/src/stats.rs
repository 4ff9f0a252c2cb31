//! The proxy's own counters, shared by all workers (the admin endpoint renders them).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Latency histogram bounds in milliseconds.
const LATENCY_MS: [u64; 12] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000];

#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_MS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn record(&self, micros: u64) {
        for (bound, bucket) in LATENCY_MS.iter().zip(&self.buckets) {
            if micros <= bound * 1000 {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(micros, Relaxed);
    }

    /// The samples so far: sum in seconds, count, and the cumulative count at each upper
    /// bound (in seconds).
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let buckets = LATENCY_MS
            .iter()
            .zip(&self.buckets)
            .map(|(bound, bucket)| (*bound as f64 / 1000.0, bucket.load(Relaxed)))
            .collect();
        let sum = self.sum_us.load(Relaxed) as f64 / 1e6;
        (sum, self.count.load(Relaxed), buckets)
    }
}

/// Counters of one plugin.
#[derive(Default)]
pub struct PluginStats {
    pub calls: AtomicU64,
    pub failures: AtomicU64,
    /// Failed VMs replaced by fresh ones.
    pub replacements: AtomicU64,
    pub call_time_us: AtomicU64,
}

/// Wasm VMs and root contexts alive on all workers (a root context per plugin per VM, and one
/// per distinct route configuration).
#[derive(Default)]
pub struct VmGauges {
    pub vms: std::sync::atomic::AtomicI64,
    pub root_contexts: std::sync::atomic::AtomicI64,
}

#[derive(Default)]
pub struct Stats {
    pub downstream_requests: AtomicU64,
    /// Responses by class: 1xx … 5xx.
    pub responses: [AtomicU64; 5],
    pub active_connections: AtomicU64,
    pub connections: AtomicU64,
    pub upstream_requests: AtomicU64,
    pub upstream_errors: AtomicU64,
    pub upstream_timeouts: AtomicU64,
    pub upstream_latency: Histogram,
    pub local_replies: AtomicU64,
    pub vm_gauges: std::sync::Arc<VmGauges>,
    /// What stopped slow or greedy clients (Envoy's `http.<prefix>.*` names in /metrics).
    pub client_limits: ClientLimitStats,
}

/// Clients stopped by a listener's timeouts and the connection limit.
#[derive(Default)]
pub struct ClientLimitStats {
    /// Request heads not complete within `request_headers_timeout` (408, closed).
    pub header_timeouts: AtomicU64,
    /// Connections closed after `idle_timeout` with no request in flight.
    pub idle_timeouts: AtomicU64,
    /// Requests whose body stalled for `stream_idle_timeout`.
    pub stream_idle_timeouts: AtomicU64,
    /// Requests not received in full within `request_timeout`.
    pub request_timeouts: AtomicU64,
    /// Connections closed on arrival because `max_connections` were open.
    pub overflows: AtomicU64,
}

/// Counters of one listener (Envoy's `listener.<address>.*`, and `tcp.<prefix>.*` for a TCP
/// one, whose stat prefix is the listener's name).
#[derive(Default)]
pub struct ListenerStats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections open now.
    pub active: AtomicU64,
    /// A TCP listener's relay.
    pub tcp: TcpStats,
}

/// Counters of a TCP listener's relay.
#[derive(Default)]
pub struct TcpStats {
    /// Connections closed for want of a cluster (no SNI route matched, no default).
    pub no_route: AtomicU64,
    /// Connections whose upstream could not be reached.
    pub connect_failures: AtomicU64,
    /// Bytes from clients relayed upstream.
    pub received_bytes: AtomicU64,
    /// Bytes from upstreams relayed to clients.
    pub sent_bytes: AtomicU64,
    /// Connections closed for being idle.
    pub idle_timeouts: AtomicU64,
}

impl Stats {
    pub fn response(&self, status: u16) {
        if let Some(class) = (status / 100)
            .checked_sub(1)
            .and_then(|c| self.responses.get(c as usize))
        {
            class.fetch_add(1, Relaxed);
        }
    }
}
