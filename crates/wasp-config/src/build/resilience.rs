//! Routes' `retry_policy` and `hash_policy`, clusters' `lb_policy`, `outlier_detection`,
//! `health_check` and `circuit_breakers`, with Envoy's names and defaults.

use std::time::Duration;

use serde_saphyr::Spanned;
use wasp_spec::{CircuitBreakers, HealthCheck, LbPolicy, OutlierDetection, RetryOn, RetryPolicy};

use crate::raw::{
    RawCircuitBreakers, RawCluster, RawHealthCheck, RawOutlierDetection, RawRetryPolicy,
};
use crate::values::check_header_name;

use super::{Builder, Result};

/// Envoy's `retry_on` conditions, and which of them wasp implements.
const RETRY_ON: [&str; 5] = [
    "5xx",
    "gateway-error",
    "reset",
    "connect-failure",
    "retriable-status-codes",
];
const NOT_IMPLEMENTED_RETRY_ON: [&str; 7] = [
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-headers",
    "http3-post-connect-failure",
    "reset-before-request",
    "cancelled",
];

impl Builder<'_> {
    pub(super) fn retry_policy(
        &self,
        raw: &Spanned<RawRetryPolicy>,
        path: &str,
    ) -> Result<RetryPolicy> {
        let r = &raw.value;
        let mut retry_on = RetryOn::default();
        for condition in r.retry_on.value.split(',').map(str::trim) {
            match condition {
                "5xx" => retry_on.five_xx = true,
                "gateway-error" => retry_on.gateway_error = true,
                "reset" => retry_on.reset = true,
                "connect-failure" => retry_on.connect_failure = true,
                "retriable-status-codes" => retry_on.retriable_status_codes = true,
                other => {
                    let msg = if NOT_IMPLEMENTED_RETRY_ON.contains(&other) {
                        format!(
                            "`{other}` is an Envoy retry condition wasp does not implement (it does: {})",
                            RETRY_ON.join(", ")
                        )
                    } else {
                        format!(
                            "unknown retry condition `{other}` (one of: {})",
                            RETRY_ON.join(", ")
                        )
                    };
                    return Err(self.errs.at(
                        &r.retry_on.referenced,
                        format!("{path}.retry_on"),
                        msg,
                    ));
                }
            }
        }
        let codes: Vec<u16> = r
            .retriable_status_codes
            .iter()
            .flatten()
            .map(|c| c.value)
            .collect();
        if let Some(bad) = r
            .retriable_status_codes
            .iter()
            .flatten()
            .find(|c| !(100..=599).contains(&c.value))
        {
            return Err(self.errs.at(
                &bad.referenced,
                format!("{path}.retriable_status_codes"),
                "a status code is 100..=599",
            ));
        }
        let (base_interval, max_interval) = match &r.retry_back_off {
            None => (Duration::from_millis(25), Duration::from_millis(250)),
            Some(b) => {
                let at = format!("{path}.retry_back_off");
                let base = self.positive(&b.value.base_interval, &format!("{at}.base_interval"))?;
                let max = match &b.value.max_interval {
                    Some(m) => self.positive(m, &format!("{at}.max_interval"))?,
                    None => base * 10,
                };
                if max < base {
                    let m = b.value.max_interval.as_ref().map(|m| &m.referenced);
                    return Err(self.errs.at_opt(
                        m,
                        format!("{at}.max_interval"),
                        "must not be shorter than base_interval",
                    ));
                }
                (base, max)
            }
        };
        Ok(RetryPolicy {
            retry_on,
            num_retries: r.num_retries.as_ref().map_or(1, |n| n.value),
            per_try_timeout: match &r.per_try_timeout {
                Some(t) => Some(self.positive(t, &format!("{path}.per_try_timeout"))?),
                None => None,
            },
            retriable_status_codes: codes,
            base_interval,
            max_interval,
        })
    }

    pub(super) fn hash_header(&self, header: &Spanned<String>, path: &str) -> Result<String> {
        check_header_name(header.value.trim())
            .map_err(|msg| self.errs.at(&header.referenced, path, msg))
    }

    pub(super) fn lb_policy(&self, c: &RawCluster, path: &str) -> Result<LbPolicy> {
        let Some(policy) = &c.lb_policy else {
            return Ok(LbPolicy::default());
        };
        // Envoy's enum names, in either case.
        Ok(match policy.value.to_ascii_lowercase().as_str() {
            "round_robin" => LbPolicy::RoundRobin,
            "least_request" => LbPolicy::LeastRequest,
            "random" => LbPolicy::Random,
            "ring_hash" => LbPolicy::RingHash,
            "maglev" => {
                return Err(self.errs.at(&policy.referenced, format!("{path}.lb_policy"),
                    "maglev is not implemented by wasp: ring_hash gives the same consistent hashing"));
            }
            other => {
                return Err(self.errs.at(&policy.referenced, format!("{path}.lb_policy"),
                    format!("unknown lb_policy `{other}` (one of: round_robin, least_request, random, ring_hash)")));
            }
        })
    }

    pub(super) fn outlier_detection(
        &self,
        raw: &RawOutlierDetection,
        path: &str,
    ) -> Result<OutlierDetection> {
        let base = match &raw.base_ejection_time {
            Some(t) => self.positive(t, &format!("{path}.base_ejection_time"))?,
            None => Duration::from_secs(30),
        };
        let max = match &raw.max_ejection_time {
            Some(t) => self.positive(t, &format!("{path}.max_ejection_time"))?,
            None => Duration::from_secs(300),
        };
        let percent = raw.max_ejection_percent.as_ref().map_or(10, |p| p.value);
        if let Some(p) = raw.max_ejection_percent.as_ref().filter(|p| p.value > 100) {
            return Err(self.errs.at(
                &p.referenced,
                format!("{path}.max_ejection_percent"),
                "a percentage is 0..=100",
            ));
        }
        Ok(OutlierDetection {
            consecutive_5xx: raw.consecutive_5xx.as_ref().map_or(5, |n| n.value),
            consecutive_gateway_failure: raw
                .consecutive_gateway_failure
                .as_ref()
                .map_or(0, |n| n.value),
            base_ejection_time: base,
            max_ejection_time: max.max(base),
            max_ejection_percent: percent,
        })
    }

    pub(super) fn health_check(&self, raw: &RawHealthCheck, path: &str) -> Result<HealthCheck> {
        if !raw.path.value.starts_with('/') {
            return Err(self.errs.at(
                &raw.path.referenced,
                format!("{path}.path"),
                "must start with `/`",
            ));
        }
        let interval = match &raw.interval {
            Some(t) => self.positive(t, &format!("{path}.interval"))?,
            None => Duration::from_secs(5),
        };
        let timeout = match &raw.timeout {
            Some(t) => self.positive(t, &format!("{path}.timeout"))?,
            None => Duration::from_secs(1),
        };
        let mut expected_statuses = Vec::new();
        for (i, r) in raw.expected_statuses.iter().flatten().enumerate() {
            let (start, end) = (r.value.start.value, r.value.end.value);
            if !(100..=600).contains(&start) || !(101..=600).contains(&end) || start >= end {
                return Err(self.errs.at(
                    &r.referenced,
                    format!("{path}.expected_statuses[{i}]"),
                    "a range [start, end) of statuses with 100 <= start < end <= 600",
                ));
            }
            expected_statuses.push((start, end));
        }
        if expected_statuses.is_empty() {
            expected_statuses.push((200, 201));
        }
        let threshold = |n: &Option<Spanned<u32>>, field: &str| -> Result<u32> {
            match n {
                Some(n) if n.value == 0 => Err(self.errs.at(
                    &n.referenced,
                    format!("{path}.{field}"),
                    "must be at least 1",
                )),
                Some(n) => Ok(n.value),
                None => Ok(if field == "unhealthy_threshold" { 3 } else { 2 }),
            }
        };
        Ok(HealthCheck {
            path: raw.path.value.clone(),
            host: raw.host.as_ref().map(|h| h.value.clone()),
            interval,
            timeout,
            unhealthy_threshold: threshold(&raw.unhealthy_threshold, "unhealthy_threshold")?,
            healthy_threshold: threshold(&raw.healthy_threshold, "healthy_threshold")?,
            expected_statuses,
        })
    }

    pub(super) fn circuit_breakers(&self, raw: Option<&RawCircuitBreakers>) -> CircuitBreakers {
        let d = CircuitBreakers::default();
        let Some(raw) = raw else { return d };
        let or = |n: &Option<Spanned<u32>>, default| n.as_ref().map_or(default, |n| n.value);
        CircuitBreakers {
            max_connections: or(&raw.max_connections, d.max_connections),
            max_pending_requests: or(&raw.max_pending_requests, d.max_pending_requests),
            max_requests: or(&raw.max_requests, d.max_requests),
            max_retries: or(&raw.max_retries, d.max_retries),
        }
    }

    /// A duration that must be more than zero.
    fn positive(&self, text: &Spanned<String>, path: &str) -> Result<Duration> {
        match self.duration(Some(text), path)? {
            Some(d) if !d.is_zero() => Ok(d),
            _ => Err(self
                .errs
                .at(&text.referenced, path, "must be greater than 0s")),
        }
    }
}
