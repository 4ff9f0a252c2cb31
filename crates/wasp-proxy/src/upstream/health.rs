//! What all workers know about a cluster's endpoints: outlier ejections (Envoy's passive
//! outlier detection), active health check results, requests in flight (for least-request
//! balancing and the circuit breakers). Shared across workers, as Envoy keeps host health on
//! the main thread and counts circuit-breaker resources per cluster.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::time::{Duration, Instant};

use crate::spec::{CircuitBreakers, ClusterSpec, OutlierDetection};

/// How one upstream attempt ended, as outlier detection counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response that is not a 5xx.
    Success,
    /// A 5xx response with this status.
    Status(u16),
    /// No response: connect failure, reset, timeout (Envoy's local-origin failures count as
    /// gateway errors when `split_external_local_origin_errors` is off, its default).
    Failure,
}

/// One endpoint's state.
#[derive(Debug, Default)]
pub struct EndpointState {
    consecutive_5xx: AtomicU32,
    consecutive_gateway: AtomicU32,
    /// Milliseconds since the cluster state was made; 0: not ejected.
    ejected_until: AtomicU64,
    times_ejected: AtomicU32,
    /// The active health check says unhealthy.
    check_failed: AtomicBool,
    check_fail_run: AtomicU32,
    check_pass_run: AtomicU32,
    /// Requests in flight to this endpoint, across workers.
    pub active: AtomicU32,
}

/// A cluster's shared state; one per cluster of the spec, in its order.
#[derive(Debug)]
pub struct ClusterState {
    pub endpoints: Vec<EndpointState>,
    outlier: Option<OutlierDetection>,
    /// Outlier detection or health checks may take endpoints out; without either every
    /// endpoint is always available (and a pick reads no clock).
    watched: bool,
    pub limits: CircuitBreakers,
    born: Instant,
    /// Requests and retries in flight (circuit breakers).
    pub active_requests: AtomicU32,
    pub active_retries: AtomicU32,
    /// Connections that may still be opened (`max_connections`), and requests waiting for
    /// one (`max_pending_requests`).
    pub connection_permits: Arc<tokio::sync::Semaphore>,
    pub pending: AtomicU32,
    /// Counters for /stats/prometheus.
    pub ejections: AtomicU64,
    pub retries: AtomicU64,
    pub overflows: AtomicU64,
    pub health_check_failures: AtomicU64,
}

impl ClusterState {
    pub fn new(spec: &ClusterSpec) -> ClusterState {
        ClusterState {
            endpoints: spec
                .endpoints
                .iter()
                .map(|_| EndpointState::default())
                .collect(),
            outlier: spec.outlier_detection.clone(),
            watched: spec.outlier_detection.is_some() || spec.health_check.is_some(),
            limits: spec.circuit_breakers,
            born: Instant::now(),
            active_requests: AtomicU32::new(0),
            active_retries: AtomicU32::new(0),
            connection_permits: Arc::new(tokio::sync::Semaphore::new(
                spec.circuit_breakers.max_connections as usize,
            )),
            pending: AtomicU32::new(0),
            ejections: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            overflows: AtomicU64::new(0),
            health_check_failures: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        // +1: 0 means "not ejected".
        self.born.elapsed().as_millis() as u64 + 1
    }

    fn ejected(&self, i: usize, now: u64) -> bool {
        self.endpoints[i].ejected_until.load(Relaxed) > now
    }

    /// Whether requests may go to endpoint `i` now (not ejected, not failing its checks).
    pub fn available(&self, i: usize) -> bool {
        if !self.watched {
            return true;
        }
        let now = self.now_ms();
        !self.ejected(i, now) && !self.endpoints[i].check_failed.load(Relaxed)
    }

    /// How many endpoints are available now.
    pub fn available_count(&self) -> usize {
        if !self.watched {
            return self.endpoints.len();
        }
        (0..self.endpoints.len())
            .filter(|&i| self.available(i))
            .count()
    }

    /// Counts an attempt's outcome against endpoint `i`; ejects it when it fails in a row as
    /// often as the outlier detection allows, unless too many are ejected already.
    pub fn report(&self, i: usize, outcome: Outcome) {
        let Some(outlier) = &self.outlier else { return };
        let e = &self.endpoints[i];
        let (five_xx, gateway) = match outcome {
            Outcome::Success => {
                e.consecutive_5xx.store(0, Relaxed);
                e.consecutive_gateway.store(0, Relaxed);
                return;
            }
            Outcome::Status(status) => (true, matches!(status, 502..=504)),
            Outcome::Failure => (true, true),
        };
        let run_5xx = if five_xx {
            e.consecutive_5xx.fetch_add(1, Relaxed) + 1
        } else {
            0
        };
        let run_gw = if gateway {
            e.consecutive_gateway.fetch_add(1, Relaxed) + 1
        } else {
            e.consecutive_gateway.store(0, Relaxed);
            0
        };
        let trips = (outlier.consecutive_5xx > 0 && run_5xx >= outlier.consecutive_5xx)
            || (outlier.consecutive_gateway_failure > 0
                && run_gw >= outlier.consecutive_gateway_failure);
        if trips {
            self.eject(i, outlier);
        }
    }

    fn eject(&self, i: usize, outlier: &OutlierDetection) {
        let now = self.now_ms();
        if self.ejected(i, now) {
            return;
        }
        let total = self.endpoints.len();
        let ejected = (0..total).filter(|&j| self.ejected(j, now)).count();
        // Envoy ejects at least one host whatever the percentage.
        let allowed = (total * outlier.max_ejection_percent as usize / 100).max(1);
        if ejected >= allowed {
            return;
        }
        let e = &self.endpoints[i];
        let times = e.times_ejected.fetch_add(1, Relaxed) + 1;
        let duration = outlier
            .base_ejection_time
            .saturating_mul(times)
            .min(outlier.max_ejection_time);
        e.ejected_until
            .store(now + duration.as_millis() as u64, Relaxed);
        e.consecutive_5xx.store(0, Relaxed);
        e.consecutive_gateway.store(0, Relaxed);
        self.ejections.fetch_add(1, Relaxed);
        tracing::info!(
            endpoint = i,
            ?duration,
            "outlier detection ejected an endpoint"
        );
    }

    /// Records an active health check of endpoint `i`: `Some(true)` passed, `Some(false)` an
    /// unexpected status (unhealthy at once), `None` no answer (counts toward the threshold).
    pub fn checked(
        &self,
        i: usize,
        passed: Option<bool>,
        unhealthy_after: u32,
        healthy_after: u32,
    ) {
        let e = &self.endpoints[i];
        match passed {
            Some(true) => {
                e.check_fail_run.store(0, Relaxed);
                let run = e.check_pass_run.fetch_add(1, Relaxed) + 1;
                if e.check_failed.load(Relaxed) && run >= healthy_after {
                    e.check_failed.store(false, Relaxed);
                    tracing::info!(endpoint = i, "health check: endpoint healthy again");
                }
            }
            failed => {
                self.health_check_failures.fetch_add(1, Relaxed);
                e.check_pass_run.store(0, Relaxed);
                let run = e.check_fail_run.fetch_add(1, Relaxed) + 1;
                if !e.check_failed.load(Relaxed)
                    && (failed == Some(false) || run >= unhealthy_after)
                {
                    e.check_failed.store(true, Relaxed);
                    tracing::info!(endpoint = i, "health check: endpoint unhealthy");
                }
            }
        }
    }

    /// Whether endpoint `i` is ejected now, and how long until it comes back.
    pub fn ejected_for(&self, i: usize) -> Option<Duration> {
        let now = self.now_ms();
        let until = self.endpoints[i].ejected_until.load(Relaxed);
        (until > now).then(|| Duration::from_millis(until - now))
    }

    /// Whether the active health check holds endpoint `i` unhealthy.
    pub fn check_failed(&self, i: usize) -> bool {
        self.endpoints[i].check_failed.load(Relaxed)
    }
}

/// A slot taken against a circuit-breaker limit, given back when dropped.
pub struct Slot<'a>(&'a AtomicU32);

impl Slot<'_> {
    /// One more of `counter` if it is below `limit`.
    pub fn take(counter: &AtomicU32, limit: u32) -> Option<Slot<'_>> {
        counter
            .fetch_update(Relaxed, Relaxed, |n| (n < limit).then_some(n + 1))
            .ok()
            .map(|_| Slot(counter))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}
