//! Metrics: the counter, gauge and histogram the root defines in on_configure, the counter
//! every request increments, and the `metrics` scenario (record, increment, read back).

use proxy_wasm::hostcalls;
use proxy_wasm::traits::HttpContext;
use proxy_wasm::types::{Action, MetricType};
use std::cell::Cell;

use crate::HostcallsHttp;

#[derive(Clone, Copy, Default)]
struct Metrics {
    counter: u32,
    gauge: u32,
    histogram: u32,
}

thread_local! {
    // Defined by the root in on_configure, used by every HTTP context.
    static METRICS: Cell<Metrics> = Cell::new(Metrics::default());
}

fn metrics() -> Metrics {
    METRICS.with(Cell::get)
}

/// From the root's on_configure.
pub(crate) fn define() {
    let define = |kind, name| hostcalls::define_metric(kind, name).unwrap();
    METRICS.with(|m| {
        m.set(Metrics {
            counter: define(MetricType::Counter, "hostcalls_requests_total"),
            gauge: define(MetricType::Gauge, "hostcalls_gauge"),
            histogram: define(MetricType::Histogram, "hostcalls_histogram"),
        })
    });
}

/// First thing in every request's headers callback.
pub(crate) fn count_request() {
    let _ = hostcalls::increment_metric(metrics().counter, 1);
}

impl HostcallsHttp {
    pub(crate) fn metrics(&self) -> Action {
        let m = metrics();
        let _ = hostcalls::record_metric(m.gauge, 42);
        let _ = hostcalls::record_metric(m.histogram, 7);
        let _ = hostcalls::increment_metric(m.counter, 2);
        let value = |id| match hostcalls::get_metric(id) {
            Ok(v) => v.to_string(),
            Err(status) => format!("err:{status:?}"),
        };
        self.set_http_request_header("x-counter", Some(&value(m.counter)));
        self.set_http_request_header("x-gauge", Some(&value(m.gauge)));
        let hist = match hostcalls::get_metric(m.histogram) {
            Ok(_) => "ok".to_string(),
            Err(status) => format!("{status:?}"),
        };
        self.set_http_request_header("x-histogram-get", Some(&hist));
        Action::Continue
    }
}

impl HostcallsHttp {
    /// `x-metric-name`, `x-metric-kind` (counter, gauge, histogram), `x-metric-value`: defines
    /// the metric (or finds it, if defined before) and adds, sets or records the value; for
    /// comparing how each proxy names plugin metrics (Istio-style tagged names included).
    pub(crate) fn named_metric(&self) -> Action {
        let header = |name| self.get_http_request_header(name).unwrap_or_default();
        let kind = match header("x-metric-kind").as_str() {
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            _ => MetricType::Counter,
        };
        let value: u64 = header("x-metric-value").parse().unwrap_or(1);
        let outcome = match hostcalls::define_metric(kind, &header("x-metric-name")) {
            Ok(id) => match kind {
                MetricType::Counter => hostcalls::increment_metric(id, value as i64),
                _ => hostcalls::record_metric(id, value),
            }
            .map_or_else(|status| format!("{status:?}"), |()| "ok".to_string()),
            Err(status) => format!("define: {status:?}"),
        };
        self.set_http_request_header("x-metric-outcome", Some(&outcome));
        Action::Continue
    }
}
