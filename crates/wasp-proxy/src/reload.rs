//! Reloading the configuration while serving: the next generation is built beside the
//! current one (see `generation`), the plugins republished only if they changed, and what the
//! new generation does not carry over is retired: connections of replaced listener settings
//! drain, sockets of removed listeners close, health checks of changed clusters restart.
//! A configuration that cannot be applied leaves the running one as it is.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::StartError;
use crate::generation::Generation;
use crate::runtime::Proxy;
use crate::shared::{ReloadRecord, Shared};
use crate::spec::ProxySpec;
use crate::upstream::checker::HealthChecker;

/// What a reload applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// The configuration generation now in service (the first is 1).
    pub version: u64,
    /// Settings that changed but apply only after a restart (`workers`, `admin`, `node`,
    /// `tracing`); the running values stay.
    pub needs_restart: Vec<String>,
    /// Whether the plugins changed (a new plugin set was published).
    pub plugins_changed: bool,
}

impl Proxy {
    /// Applies `spec` (its plugins included) without a restart: new connections and new
    /// requests take it, requests in flight finish as they started, and connections of a
    /// listener whose address, TLS, protocol, direction or name changed drain. On an error
    /// (an address that cannot be bound, an unusable TLS file or cluster, a log that cannot
    /// be opened) nothing changes and `/config_dump` shows why.
    pub fn reload(&self, spec: ProxySpec) -> Result<Reloaded, StartError> {
        // One reload at a time.
        let mut checker = self
            .checker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let shared = &self.shared;
        let current = shared.generations.current();
        let (spec, needs_restart) = keep_process_settings(spec, &current.spec, shared);
        let next =
            match Generation::build(spec, Some(&current), shared.workers, current.version + 1) {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(
                        "the new configuration cannot be applied (the running one stays): {e}"
                    );
                    shared.record_reload(record(
                        current.version,
                        Some(e.to_string()),
                        needs_restart,
                    ));
                    return Err(e);
                }
            };
        let plugins_changed = !shared.plugins.current().serves(&next.spec.plugins);
        if plugins_changed {
            self.update_plugins(&next.spec.plugins);
        }
        let restart_checks = !current.same_clusters(&next);
        let version = next.version;
        shared.generations.publish(next);
        let next = shared.generations.current();
        current.retire_into(&next);
        if restart_checks {
            if let Some(old) = checker.take() {
                old.stop(false);
            }
            *checker = HealthChecker::start(&next.spec.clusters, &next.clusters);
        }
        if !needs_restart.is_empty() {
            tracing::warn!(settings = ?needs_restart, "changed settings apply after a restart");
        }
        tracing::info!(version, plugins_changed, "configuration reloaded");
        shared.record_reload(record(version, None, needs_restart.clone()));
        Ok(Reloaded {
            version,
            needs_restart,
            plugins_changed,
        })
    }

    /// Records that a new configuration was refused before it reached the proxy (it does not
    /// parse, a file it names cannot be read): `/config_dump` shows `reason`, and the running
    /// configuration stays.
    pub fn refuse_config(&self, reason: &str) {
        let version = self.shared.generations.version();
        self.shared
            .record_reload(record(version, Some(reason.to_string()), Vec::new()));
    }
}

/// `spec` with the settings that only a restart changes set back to the running ones, and
/// the names of those that differed.
fn keep_process_settings(
    mut spec: ProxySpec,
    running: &ProxySpec,
    shared: &Shared,
) -> (ProxySpec, Vec<String>) {
    let mut differs = Vec::new();
    if spec.workers.max(1) != shared.workers {
        differs.push("workers".to_string());
    }
    spec.workers = shared.workers;
    if spec.admin != shared.admin {
        differs.push("admin".to_string());
    }
    spec.admin = shared.admin;
    if spec.node != running.node {
        differs.push("node".to_string());
        spec.node = running.node.clone();
    }
    if spec.tracing != running.tracing {
        differs.push("tracing".to_string());
        spec.tracing = running.tracing.clone();
    }
    (spec, differs)
}

fn record(version: u64, error: Option<String>, needs_restart: Vec<String>) -> ReloadRecord {
    ReloadRecord {
        at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        version,
        error,
        needs_restart,
    }
}
