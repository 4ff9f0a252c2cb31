//! The request's exchange with its cluster: one attempt, or more under the route's retry
//! policy, with Envoy's semantics — what is retried (`retry_on`), a per-try timeout inside the
//! route's timeout, fully jittered exponential backoff, the next endpoint picked by the
//! cluster's balancer (away from the one that failed), every outcome reported to outlier
//! detection, and the circuit breakers on requests and retries in flight.

use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Response;
use http_body::Frame;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use wasp_host::HeaderMap;

use crate::body::ChannelBody;
use crate::convert;
use crate::filter::chain::Chain;
use crate::filter::{Stop, stop_for};
use crate::flags;
use crate::spec::RetryPolicy;
use crate::upstream::health::{ClusterState, Outcome, Slot};
use crate::upstream::{ClusterId, UpstreamError};

/// What the route says about sending.
pub(super) struct Route<'a> {
    pub cluster: ClusterId,
    pub timeout: Option<Duration>,
    pub retry: Option<&'a RetryPolicy>,
    pub hash_header: Option<&'a str>,
}

/// The request body as attempts send it: kept whole to be sent again, or streamed once.
pub(super) enum Replay {
    Whole(Vec<Bytes>, Option<http::HeaderMap>),
    Once(Option<ChannelBody>),
}

impl Replay {
    /// Reads `body` up to `limit` bytes to keep it for retries (Envoy buffers a retried
    /// request's body likewise, up to the buffer limit); a larger body is sent once.
    pub async fn keep(run: &Chain, mut body: ChannelBody, limit: usize) -> Result<Replay, Stop> {
        let mut data = Vec::new();
        let mut size = 0;
        loop {
            let frame = tokio::select! {
                f = body.frame() => f,
                i = run.cx.signals.interrupted() => return Err(stop_for(i)),
            };
            match frame {
                None => return Ok(Replay::Whole(data, None)),
                Some(Err(_)) => {
                    return Err(run.cx.signals.interrupt().map_or(Stop::Reset, stop_for));
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(bytes) => {
                        size += bytes.len();
                        data.push(bytes);
                        if size > limit {
                            body.put_back(data.into_iter().map(Frame::data).collect());
                            return Ok(Replay::Once(Some(body)));
                        }
                    }
                    Err(frame) => return Ok(Replay::Whole(data, frame.into_trailers().ok())),
                },
            }
        }
    }

    fn can_repeat(&self) -> bool {
        matches!(self, Replay::Whole(..))
    }

    fn body(&mut self) -> ChannelBody {
        match self {
            Replay::Whole(data, trailers) => {
                let mut body = ChannelBody::empty();
                body.put_back(data.iter().cloned().map(Frame::data).collect());
                match trailers {
                    Some(t) => body.with_trailers(t.clone()),
                    None => body,
                }
            }
            Replay::Once(body) => body.take().unwrap_or_else(ChannelBody::empty),
        }
    }
}

/// Why an attempt got no usable answer.
enum Failed {
    Timeout { per_try: bool },
    Connect(String),
    Reset(String),
}

fn retriable_status(policy: &RetryPolicy, status: u16) -> bool {
    let on = policy.retry_on;
    (on.five_xx && status >= 500)
        || (on.gateway_error && matches!(status, 502..=504))
        || (on.retriable_status_codes && policy.retriable_status_codes.contains(&status))
}

fn retriable_failure(policy: &RetryPolicy, failed: &Failed) -> bool {
    let on = policy.retry_on;
    match failed {
        Failed::Timeout { per_try } => *per_try && (on.five_xx || on.gateway_error || on.reset),
        Failed::Connect(_) => on.five_xx || on.gateway_error || on.connect_failure || on.reset,
        Failed::Reset(_) => on.five_xx || on.gateway_error || on.reset,
    }
}

/// A random backoff before retry `n` (1-based): up to `base × 2^(n-1)`, capped.
fn backoff(policy: &RetryPolicy, n: u32) -> Duration {
    let ceiling = policy
        .base_interval
        .saturating_mul(1u32 << (n - 1).min(16))
        .min(policy.max_interval);
    let mut seed = [0u8; 8];
    let _ = getrandom::fill(&mut seed);
    ceiling.mul_f64((u64::from_le_bytes(seed) >> 11) as f64 / (1u64 << 53) as f64)
}

/// Sends the request (headers as they left the chain) until an answer the policy accepts;
/// the local reply (with Envoy's flags and details) when there is none.
pub(super) async fn send(
    run: &Rc<Chain>,
    route: &Route<'_>,
    headers: &HeaderMap,
    mut body: Replay,
) -> Result<Response<Incoming>, Stop> {
    let cx = &run.cx;
    let n = run.len();
    let stats = &cx.shared.stats;
    let state = cx
        .upstreams
        .state(route.cluster)
        .ok_or_else(|| Stop::proxy(503, "cluster_not_found", "", n))?
        .clone();
    let Some(_request) = Slot::take(&state.active_requests, state.limits.max_requests) else {
        state.overflows.fetch_add(1, Relaxed);
        return Err(overflow(run));
    };
    let deadline = route.timeout.map(|t| Instant::now() + t);
    let key = route
        .hash_header
        .and_then(|h| headers.get(h.as_bytes()))
        .map(<[u8]>::to_vec);
    let retries = match route.retry {
        Some(p) if body.can_repeat() => p.num_retries,
        _ => 0,
    };
    // The proxy's span context goes upstream (the router's injection in Envoy: after the
    // filters, so plugins do not see it).
    let traced;
    let headers = match cx.info.trace_headers() {
        trace if trace.is_empty() => headers,
        trace => {
            let mut with = headers.clone();
            for (name, value) in trace {
                with.replace(name.as_bytes(), value.as_bytes());
            }
            traced = with;
            &traced
        }
    };
    let mut avoid = None;
    let mut attempt = 0;
    // The circuit breaker's retry slot, held through the retry it was taken for.
    let mut _retry: Option<Slot<'_>> = None;
    loop {
        if attempt > 0 {
            let policy = route.retry.expect("retries only with a policy");
            tokio::select! {
                () = tokio::time::sleep(backoff(policy, attempt)) => {}
                i = cx.signals.interrupted() => return Err(stop_for(i)),
            }
        }
        let picked = cx
            .upstreams
            .pick_for(route.cluster, key.as_deref(), avoid)
            .ok_or_else(|| Stop::proxy(503, "cluster_not_found", "", n))?;
        let (endpoint, scheme, index) = (picked.endpoint.clone(), picked.scheme, picked.index);
        *cx.info
            .upstream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(picked);
        cx.info.attempts.fetch_add(1, Relaxed);
        let request = convert::upstream_request(headers, body.body(), scheme, Some(&endpoint))
            .map_err(|e| Stop::proxy(400, "invalid_request_headers", &e.to_string(), n))?;
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let per_try = route.retry.and_then(|p| p.per_try_timeout);
        let (timeout, per_try_bound) = match (per_try, left) {
            (Some(p), Some(l)) if p < l => (Some(p), true),
            (Some(p), None) => (Some(p), true),
            (_, l) => (l, false),
        };
        stats.upstream_requests.fetch_add(1, Relaxed);
        let started = Instant::now();
        let endpoint_state = &state.endpoints[index];
        endpoint_state.active.fetch_add(1, Relaxed);
        let result = tokio::select! {
            r = cx.upstreams.send(route.cluster, request, timeout) => r,
            i = cx.signals.interrupted() => {
                endpoint_state.active.fetch_sub(1, Relaxed);
                return Err(stop_for(i));
            }
        };
        endpoint_state.active.fetch_sub(1, Relaxed);
        if result.is_err()
            && let Some(fault) = super::client_fault::found(cx)
        {
            // The client's body failed the attempt (bad framing, too slow): its fault, not
            // the upstream's, and not worth a retry.
            return Err(super::client_fault::reply(fault, cx, n));
        }
        let more = attempt < retries && deadline.is_none_or(|d| Instant::now() < d);
        let failed = match result {
            Ok(response) => {
                let status = response.status().as_u16();
                state.report(
                    index,
                    if status >= 500 {
                        Outcome::Status(status)
                    } else {
                        Outcome::Success
                    },
                );
                stats
                    .upstream_latency
                    .record(started.elapsed().as_micros() as u64);
                if route.retry.is_some_and(|p| retriable_status(p, status)) {
                    match next_retry(run, &state, more) {
                        Some(slot) => {
                            _retry = Some(slot);
                            avoid = Some(index);
                            attempt += 1;
                            continue;
                        }
                        // No retry left: the upstream's answer goes to the client, flagged as
                        // Envoy flags it (URX, or UO when the retry budget ran out).
                        None => return Ok(response),
                    }
                }
                return Ok(response);
            }
            Err(UpstreamError::Timeout) => Failed::Timeout {
                per_try: per_try_bound,
            },
            Err(UpstreamError::Connect(reason)) => Failed::Connect(reason),
            Err(UpstreamError::Reset(reason)) => Failed::Reset(reason),
            Err(UpstreamError::UnknownCluster(_)) => {
                return Err(Stop::proxy(503, "cluster_not_found", "", n));
            }
            Err(UpstreamError::Overflow) => return Err(overflow(run)),
        };
        state.report(index, Outcome::Failure);
        if route.retry.is_some_and(|p| retriable_failure(p, &failed))
            && let Some(slot) = next_retry(run, &state, more)
        {
            _retry = Some(slot);
            avoid = Some(index);
            attempt += 1;
            continue;
        }
        return Err(give_up(run, failed));
    }
}

/// A retriable outcome: the slot for one more attempt, or `None` with the reason flagged —
/// `URX` when the policy's retries (or the route's time) are used up, `UO` when the cluster's
/// retry budget (`max_retries` in flight) is.
fn next_retry<'s>(run: &Chain, state: &'s ClusterState, more: bool) -> Option<Slot<'s>> {
    if !more {
        run.cx.info.add_flags(flags::UPSTREAM_RETRY_LIMIT_EXCEEDED);
        return None;
    }
    match Slot::take(&state.active_retries, state.limits.max_retries) {
        Some(slot) => {
            state.retries.fetch_add(1, Relaxed);
            Some(slot)
        }
        None => {
            state.overflows.fetch_add(1, Relaxed);
            run.cx.info.add_flags(flags::UPSTREAM_OVERFLOW);
            None
        }
    }
}

/// Envoy's answer when a circuit breaker is open: 503, `UO`.
fn overflow(run: &Chain) -> Stop {
    run.cx.info.add_flags(flags::UPSTREAM_OVERFLOW);
    Stop::proxy(
        503,
        "upstream_reset_before_response_started{overflow}",
        &UpstreamError::Overflow.to_string(),
        run.len(),
    )
}

/// The local reply for a failure that is not retried (any more).
fn give_up(run: &Chain, failed: Failed) -> Stop {
    let cx = &run.cx;
    let n = run.len();
    let stats = &cx.shared.stats;
    match failed {
        Failed::Timeout { .. } => {
            stats.upstream_timeouts.fetch_add(1, Relaxed);
            cx.info.add_flags(flags::UPSTREAM_REQUEST_TIMEOUT);
            Stop::proxy(
                504,
                "upstream_response_timeout",
                "upstream request timeout",
                n,
            )
        }
        Failed::Connect(reason) => {
            stats.upstream_errors.fetch_add(1, Relaxed);
            cx.info.add_flags(flags::UPSTREAM_CONNECTION_FAILURE);
            let e = UpstreamError::Connect(reason);
            Stop::proxy(
                503,
                "upstream_reset_before_response_started",
                &e.to_string(),
                n,
            )
        }
        Failed::Reset(reason) => {
            stats.upstream_errors.fetch_add(1, Relaxed);
            cx.info.add_flags(flags::UPSTREAM_CONNECTION_TERMINATION);
            let e = UpstreamError::Reset(reason);
            Stop::proxy(
                503,
                "upstream_reset_before_response_started",
                &e.to_string(),
                n,
            )
        }
    }
}
