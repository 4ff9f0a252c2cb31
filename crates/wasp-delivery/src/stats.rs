//! Counters for the proxy to export (istio-agent's `wasm_remote_fetch_count{result}` and
//! `wasm_cache_lookup_count{hit}`, plus what this crate adds).

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::error::FetchError;

/// A snapshot of the fetcher's counters (monotonic since the `Fetcher` was created, except
/// `cache_entries`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchStats {
    /// `fetch` calls that returned a module.
    pub success: u64,
    /// Failed `fetch` calls by [`FetchError::kind`]: download_failure, manifest_failure,
    /// checksum_mismatched, unauthorized, corrupted_blob, invalid_module, invalid_request,
    /// cache_failure.
    pub failures: Vec<(&'static str, u64)>,
    /// Remote fetches served without downloading the module (for `Always`, after a manifest
    /// check that found the digest unchanged).
    pub cache_hits: u64,
    /// Remote fetches that downloaded the module.
    pub cache_misses: u64,
    /// `fetch` calls that waited for an identical fetch already in flight instead of making
    /// their own requests.
    pub coalesced: u64,
    /// Entries in the cache index now.
    pub cache_entries: u64,
}

impl FetchStats {
    /// The count for one failure kind (0 when none happened).
    pub fn failures_of(&self, kind: &str) -> u64 {
        self.failures
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }
}

/// A snapshot is what the proxy's metrics endpoint encodes: `wasp_plugin_fetches_total{result}`,
/// `wasp_plugin_cache_hits_total`, `wasp_plugin_cache_misses_total` and the gauge
/// `wasp_plugin_cache_entries` (prometheus-client adds the `_total` of counters).
impl Collector for FetchStats {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let mut fetches = encoder.encode_descriptor(
            "wasp_plugin_fetches",
            "Plugin module fetches by result.",
            None,
            MetricType::Counter,
        )?;
        let results =
            std::iter::once(("success", self.success)).chain(self.failures.iter().copied());
        for (result, n) in results {
            ConstCounter::new(n).encode(fetches.encode_family(&[("result", result)])?)?;
        }
        for (name, help, value) in [
            (
                "wasp_plugin_cache_hits",
                "Remote fetches served from the module cache.",
                self.cache_hits,
            ),
            (
                "wasp_plugin_cache_misses",
                "Remote fetches that downloaded the module.",
                self.cache_misses,
            ),
        ] {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        let entries = ConstGauge::new(self.cache_entries);
        entries.encode(encoder.encode_descriptor(
            "wasp_plugin_cache_entries",
            "Modules in the cache.",
            None,
            entries.metric_type(),
        )?)
    }
}

const KINDS: [&str; 8] = [
    "download_failure",
    "manifest_failure",
    "checksum_mismatched",
    "unauthorized",
    "corrupted_blob",
    "invalid_module",
    "invalid_request",
    "cache_failure",
];

#[derive(Default)]
pub(crate) struct Counters {
    success: AtomicU64,
    failures: [AtomicU64; KINDS.len()],
    hits: AtomicU64,
    misses: AtomicU64,
    coalesced: AtomicU64,
}

impl Counters {
    pub(crate) fn success(&self, cache_hit: Option<bool>) {
        self.success.fetch_add(1, Ordering::Relaxed);
        match cache_hit {
            Some(true) => self.hits.fetch_add(1, Ordering::Relaxed),
            Some(false) => self.misses.fetch_add(1, Ordering::Relaxed),
            None => 0,
        };
    }

    pub(crate) fn failure(&self, e: &FetchError) {
        if let Some(i) = KINDS.iter().position(|k| *k == e.kind()) {
            self.failures[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn coalesced(&self) {
        self.coalesced.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, cache_entries: usize) -> FetchStats {
        FetchStats {
            success: self.success.load(Ordering::Relaxed),
            failures: KINDS
                .iter()
                .zip(&self.failures)
                .map(|(k, n)| (*k, n.load(Ordering::Relaxed)))
                .collect(),
            cache_hits: self.hits.load(Ordering::Relaxed),
            cache_misses: self.misses.load(Ordering::Relaxed),
            coalesced: self.coalesced.load(Ordering::Relaxed),
            cache_entries: cache_entries as u64,
        }
    }
}
