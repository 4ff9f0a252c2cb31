//! Metrics plugins define at run time (`proxy_define_metric` …), shared process-wide.
//!
//! Defining the same name and type twice, from any VM on any worker, yields the same metric,
//! as Envoy's stats scope does. Ids carry the type in their low two bits like cpp-host's
//! (the first counter, gauge and histogram get 4, 5 and 6).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::abi::MetricType;

/// Histogram bucket upper bounds (Envoy's default buckets).
pub const HISTOGRAM_BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// Why a metric operation failed; hostcalls turn it into the status of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MetricError {
    /// The id names no defined metric (or its type bits do not match).
    #[error("no such metric")]
    NotFound,
    /// The operation does not apply to this metric type (e.g. reading a histogram, a
    /// non-positive counter increment).
    #[error("operation not allowed on this metric type")]
    BadArgument,
}

/// Every metric plugins defined in this host, keyed by (name, type) and shared by all VMs.
#[derive(Default)]
pub struct Metrics {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    ids: HashMap<(String, u32), u32>,
    cells: Vec<Arc<Cell>>,
}

struct Cell {
    name: String,
    kind: MetricType,
    counter: AtomicU64,
    gauge: AtomicI64,
    histogram: Mutex<Histogram>,
}

/// A histogram's samples, summarised.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// How many samples were recorded.
    pub count: u64,
    /// The sum of all samples.
    pub sum: f64,
    /// Cumulative counts per [`HISTOGRAM_BUCKETS`] bound.
    pub buckets: [u64; HISTOGRAM_BUCKETS.len()],
}

/// A metric's current value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricValue {
    /// A counter's total.
    Counter(u64),
    /// A gauge's current value.
    Gauge(i64),
    /// A histogram's summary.
    Histogram(Histogram),
}

/// One metric as the admin endpoint reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSnapshot {
    /// The name the plugin defined it with.
    pub name: String,
    /// Its current value.
    pub value: MetricValue,
}

impl Metrics {
    /// `proxy_define_metric`: the id of the metric `name` of type `kind`, created on first use;
    /// the same (name, type) always gets the same id.
    pub fn define(&self, kind: MetricType, name: &str) -> u32 {
        let key = (name.to_owned(), kind as u32);
        if let Some(id) = self.read().ids.get(&key) {
            return *id;
        }
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(id) = inner.ids.get(&key) {
            return *id;
        }
        inner.cells.push(Arc::new(Cell {
            name: name.to_owned(),
            kind,
            counter: AtomicU64::new(0),
            gauge: AtomicI64::new(0),
            histogram: Mutex::new(Histogram::default()),
        }));
        let id = ((inner.cells.len() as u32) << 2) | kind as u32;
        inner.ids.insert(key, id);
        id
    }

    /// `proxy_increment_metric`: counters take positive offsets, gauges any.
    pub fn increment(&self, id: u32, offset: i64) -> Result<(), MetricError> {
        let cell = self.cell(id)?;
        match cell.kind {
            MetricType::Counter if offset > 0 => {
                cell.counter.fetch_add(offset as u64, Ordering::Relaxed);
                Ok(())
            }
            MetricType::Gauge => {
                cell.gauge.fetch_add(offset, Ordering::Relaxed);
                Ok(())
            }
            _ => Err(MetricError::BadArgument),
        }
    }

    /// `proxy_record_metric`: a counter adds (as Envoy does), a gauge is set, a histogram
    /// records a sample.
    pub fn record(&self, id: u32, value: u64) -> Result<(), MetricError> {
        let cell = self.cell(id)?;
        match cell.kind {
            MetricType::Counter => {
                cell.counter.fetch_add(value, Ordering::Relaxed);
            }
            MetricType::Gauge => cell.gauge.store(value as i64, Ordering::Relaxed),
            MetricType::Histogram => {
                let mut h = cell
                    .histogram
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                h.count += 1;
                h.sum += value as f64;
                for (bound, bucket) in HISTOGRAM_BUCKETS.iter().zip(h.buckets.iter_mut()) {
                    if value as f64 <= *bound {
                        *bucket += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// `proxy_get_metric`: histograms cannot be read back (`BAD_ARGUMENT`, as Envoy).
    pub fn get(&self, id: u32) -> Result<u64, MetricError> {
        let cell = self.cell(id)?;
        match cell.kind {
            MetricType::Counter => Ok(cell.counter.load(Ordering::Relaxed)),
            MetricType::Gauge => Ok(cell.gauge.load(Ordering::Relaxed) as u64),
            MetricType::Histogram => Err(MetricError::BadArgument),
        }
    }

    /// Every metric, in definition order.
    pub fn snapshot(&self) -> Vec<MetricSnapshot> {
        self.read()
            .cells
            .iter()
            .map(|cell| MetricSnapshot {
                name: cell.name.clone(),
                value: match cell.kind {
                    MetricType::Counter => {
                        MetricValue::Counter(cell.counter.load(Ordering::Relaxed))
                    }
                    MetricType::Gauge => MetricValue::Gauge(cell.gauge.load(Ordering::Relaxed)),
                    MetricType::Histogram => MetricValue::Histogram(
                        cell.histogram
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .clone(),
                    ),
                },
            })
            .collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cell(&self, id: u32) -> Result<Arc<Cell>, MetricError> {
        let index = (id >> 2) as usize;
        let inner = self.read();
        let cell = index
            .checked_sub(1)
            .and_then(|i| inner.cells.get(i))
            .ok_or(MetricError::NotFound)?;
        if cell.kind as u32 != id & 3 {
            return Err(MetricError::NotFound);
        }
        Ok(cell.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_semantics() {
        let m = Metrics::default();
        let c = m.define(MetricType::Counter, "c");
        let g = m.define(MetricType::Gauge, "g");
        let h = m.define(MetricType::Histogram, "h");
        assert_eq!((c, g, h), (4, 9, 14));
        assert_eq!(m.define(MetricType::Counter, "c"), c);
        assert_ne!(m.define(MetricType::Gauge, "c"), c);

        m.increment(c, 2).unwrap();
        m.record(c, 3).unwrap();
        assert_eq!(m.get(c), Ok(5));
        assert_eq!(m.increment(c, 0), Err(MetricError::BadArgument));
        assert_eq!(m.increment(c, -1), Err(MetricError::BadArgument));

        m.record(g, 10).unwrap();
        m.increment(g, -3).unwrap();
        assert_eq!(m.get(g), Ok(7));

        m.record(h, 7).unwrap();
        assert_eq!(m.get(h), Err(MetricError::BadArgument));
        assert_eq!(m.increment(h, 1), Err(MetricError::BadArgument));

        assert_eq!(m.get(0), Err(MetricError::NotFound));
        assert_eq!(m.get(c | 1), Err(MetricError::NotFound));
        assert_eq!(m.get(1000), Err(MetricError::NotFound));

        let snap = m.snapshot();
        let MetricValue::Histogram(hist) = &snap[2].value else {
            panic!("not a histogram")
        };
        assert_eq!(hist.count, 1);
        assert_eq!(hist.buckets[3], 1); // 7 <= 10
        assert_eq!(hist.buckets[2], 0); // 7 > 5
    }
}
