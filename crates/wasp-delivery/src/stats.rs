//! Counters for the proxy to export (istio-agent's `wasm_remote_fetch_count{result}` and
//! `wasm_cache_lookup_count{hit}`, plus what this crate adds).

use std::sync::atomic::{AtomicU64, Ordering};

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
    /// The counters in the Prometheus text format (`wasp_plugin_fetches_total{result}`,
    /// cache hits, misses and entries).
    pub fn prometheus_text(&self) -> String {
        let stats = self;
        let mut out = String::new();
        out.push_str("# HELP wasp_plugin_fetches_total Plugin module fetches by result.\n");
        out.push_str("# TYPE wasp_plugin_fetches_total counter\n");
        out.push_str(&format!(
            "wasp_plugin_fetches_total{{result=\"success\"}} {}\n",
            stats.success
        ));
        for (kind, n) in &stats.failures {
            out.push_str(&format!(
                "wasp_plugin_fetches_total{{result=\"{kind}\"}} {n}\n"
            ));
        }
        for (name, help, value) in [
            (
                "wasp_plugin_cache_hits_total",
                "Remote fetches served from the module cache.",
                stats.cache_hits,
            ),
            (
                "wasp_plugin_cache_misses_total",
                "Remote fetches that downloaded the module.",
                stats.cache_misses,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
            ));
        }
        out.push_str(&format!(
            "# HELP wasp_plugin_cache_entries Modules in the cache.\n# TYPE wasp_plugin_cache_entries gauge\nwasp_plugin_cache_entries {}\n",
            stats.cache_entries
        ));
        out
    }

    /// The count for one failure kind (0 when none happened).
    pub fn failures_of(&self, kind: &str) -> u64 {
        self.failures
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
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
