//! How requests survive a bad upstream, with Envoy's semantics: retries (a route's
//! `retry_policy`), load balancing, passive outlier detection, active health checks and
//! circuit breakers (a cluster's).

use std::time::Duration;

/// A route's retry policy (Envoy's `RetryPolicy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// What is retried.
    pub retry_on: RetryOn,
    /// How many retries after the first attempt (Envoy's default 1).
    pub num_retries: u32,
    /// Each attempt's own timeout; `None`: only the route's timeout applies.
    pub per_try_timeout: Option<Duration>,
    /// Statuses `retriable-status-codes` retries.
    pub retriable_status_codes: Vec<u16>,
    /// Backoff before the n-th retry: a random time up to `base × 2^(n-1)`, capped at `max`
    /// (Envoy's fully jittered exponential backoff; defaults 25 ms and 10 × base).
    pub base_interval: Duration,
    /// The cap of the backoff.
    pub max_interval: Duration,
}

/// Envoy's `retry_on` conditions this proxy implements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryOn {
    /// Any 5xx response, a connect failure, a reset, a per-try timeout.
    pub five_xx: bool,
    /// 502, 503, 504 responses, a connect failure, a per-try timeout.
    pub gateway_error: bool,
    /// No response at all: disconnect, reset, per-try timeout.
    pub reset: bool,
    /// The connection could not be opened.
    pub connect_failure: bool,
    /// The statuses of `retriable_status_codes`.
    pub retriable_status_codes: bool,
}

/// How a cluster picks an endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LbPolicy {
    /// In turn (Envoy's default).
    #[default]
    RoundRobin,
    /// The less loaded of two random endpoints (Envoy's `LEAST_REQUEST`, choice count 2).
    LeastRequest,
    /// At random.
    Random,
    /// Consistent hashing on a route's `hash_policy` header (Envoy's `RING_HASH`); requests
    /// without it go to a random endpoint.
    RingHash,
}

/// Passive outlier detection (Envoy's `OutlierDetection`): an endpoint that fails in a row
/// is ejected for a while, longer each time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlierDetection {
    /// 5xx responses (and connect failures, resets, timeouts) in a row that eject; 0: never.
    pub consecutive_5xx: u32,
    /// 502/503/504 (and connect failures, resets, timeouts) in a row that eject; 0: never.
    pub consecutive_gateway_failure: u32,
    /// Ejection lasts `base_ejection_time × times ejected` (capped at `max_ejection_time`).
    pub base_ejection_time: Duration,
    /// The longest an ejection lasts.
    pub max_ejection_time: Duration,
    /// At most this share of the endpoints is ejected at once (at least one is allowed).
    pub max_ejection_percent: u32,
}

/// Active HTTP health checking of a cluster's endpoints (Envoy's `HealthCheck` with
/// `http_health_check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// The path requested (`GET`).
    pub path: String,
    /// The `Host`/`:authority` sent; defaults to the cluster's name.
    pub host: Option<String>,
    /// Time between checks of one endpoint.
    pub interval: Duration,
    /// A check without an answer by then failed.
    pub timeout: Duration,
    /// Failed checks in a row (timeouts, connect failures) that mark an endpoint unhealthy;
    /// an answer with an unexpected status marks it unhealthy at once, as Envoy does.
    pub unhealthy_threshold: u32,
    /// Passed checks in a row that mark an unhealthy endpoint healthy again.
    pub healthy_threshold: u32,
    /// Statuses that pass, as half-open ranges `[start, end)` (Envoy's default: 200 only).
    pub expected_statuses: Vec<(u16, u16)>,
}

/// A cluster's circuit breakers (Envoy's `thresholds` at default priority): over a limit, a
/// request is answered 503 at once with the `UO` response flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitBreakers {
    /// Connections open to the cluster's endpoints, across workers.
    pub max_connections: u32,
    /// Requests waiting for a connection.
    pub max_pending_requests: u32,
    /// Requests in flight, across workers.
    pub max_requests: u32,
    /// Retries in flight, across workers.
    pub max_retries: u32,
}

impl Default for CircuitBreakers {
    /// Envoy's defaults.
    fn default() -> CircuitBreakers {
        CircuitBreakers {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            max_retries: 3,
        }
    }
}
