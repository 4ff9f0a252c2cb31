//! Active HTTP health checks (Envoy's `http_health_check`): one thread for the whole proxy
//! checks every endpoint of every cluster that asks for it, each on its own interval, over the
//! cluster's own connection settings (TLS included), and records the verdicts in the shared
//! [`ClusterState`], which every worker's balancer reads.

use std::rc::Rc;
use std::sync::Arc;

use http::Request;
use tokio::sync::watch;

use crate::body::ChannelBody;
use crate::spec::{ClusterSpec, HealthCheck};

use super::health::ClusterState;
use super::{ClusterId, Upstreams};

/// The checker thread of one set of clusters; a reload that changes the clusters stops it and
/// starts another (the verdicts so far stay in the clusters' shared state).
pub(crate) struct HealthChecker {
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<()>,
}

impl HealthChecker {
    /// Starts checking `specs` (with their shared `states`) when one has a health check;
    /// `None` when none has.
    pub fn start(specs: &[ClusterSpec], states: &[Arc<ClusterState>]) -> Option<HealthChecker> {
        let (stop, shutdown) = watch::channel(false);
        let thread = spawn(specs, states, shutdown)?;
        Some(HealthChecker { stop, thread })
    }

    /// Stops the checks; `join`: and waits for the thread to end.
    pub fn stop(self, join: bool) {
        self.stop.send_replace(true);
        if join {
            let _ = self.thread.join();
        }
    }
}

fn spawn(
    specs: &[ClusterSpec],
    states: &[Arc<ClusterState>],
    mut shutdown: watch::Receiver<bool>,
) -> Option<std::thread::JoinHandle<()>> {
    if specs.iter().all(|c| c.health_check.is_none()) {
        return None;
    }
    let specs = specs.to_vec();
    let states = states.to_vec();
    std::thread::Builder::new()
        .name("wasp-health".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                tracing::error!("cannot start the health check event loop");
                return;
            };
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                let upstreams = match Upstreams::new(&specs, &states) {
                    Ok(u) => Rc::new(u),
                    Err(e) => {
                        tracing::error!("health checks cannot reach the clusters: {e}");
                        return;
                    }
                };
                for (c, spec) in specs.iter().enumerate() {
                    let Some(check) = &spec.health_check else {
                        continue;
                    };
                    for (i, endpoint) in spec.endpoints.iter().enumerate() {
                        tokio::task::spawn_local(check_loop(
                            upstreams.clone(),
                            ClusterId(c),
                            states[c].clone(),
                            check.clone(),
                            (i, endpoint.clone(), spec.name.clone()),
                            spec.tls.is_some(),
                        ));
                    }
                }
                let _ = shutdown.changed().await;
            });
        })
        .ok()
}

async fn check_loop(
    upstreams: Rc<Upstreams>,
    cluster: ClusterId,
    state: Arc<ClusterState>,
    check: HealthCheck,
    (index, endpoint, cluster_name): (usize, String, String),
    tls: bool,
) {
    let host = check.host.clone().unwrap_or(cluster_name);
    let scheme = if tls { "https" } else { "http" };
    loop {
        let request = Request::get(format!("{scheme}://{endpoint}{}", check.path))
            .header(http::header::HOST, host.as_str())
            .header("user-agent", "Envoy/HC")
            .body(ChannelBody::empty());
        let verdict = match request {
            Err(_) => None,
            Ok(request) => match upstreams.send(cluster, request, Some(check.timeout)).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    Some(
                        check
                            .expected_statuses
                            .iter()
                            .any(|(from, to)| (*from..*to).contains(&status)),
                    )
                }
                Err(_) => None,
            },
        };
        state.checked(
            index,
            verdict,
            check.unhealthy_threshold,
            check.healthy_threshold,
        );
        tokio::time::sleep(check.interval).await;
    }
}
