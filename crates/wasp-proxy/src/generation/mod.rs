//! Configuration generations: what the workers serve — listeners with their sockets, TLS and
//! access logs, clusters with their shared state — built whole from a spec and published at
//! once.
//!
//! A reload builds the next generation beside the current one, carrying over whatever did not
//! change (bound sockets, TLS contexts, cluster health and breaker counts, log writers,
//! counters), and publishes it. New connections and new requests take it; a request in flight
//! finishes on the generation it started with. A listener whose connection-level settings
//! changed (address, TLS, protocol, direction, name) gets a new [`ConnectionEpoch`], and the
//! connections of the old one drain: HTTP/1 answers its next request with
//! `connection: close`, HTTP/2 sends GOAWAY, as Envoy drains a listener it replaces.

pub(crate) mod sockets;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use crate::access_log::{AccessLog, LogWriters};
use crate::error::StartError;
use crate::spec::{ListenerSpec, ProxySpec, ServerTls};
use crate::stats::ListenerStats;
use crate::upstream::health::ClusterState;

pub(crate) use self::sockets::BoundSocket;

/// A listener's TLS, shared by the workers.
pub(crate) type ServerTlsContext = Arc<wasp_tls::ServerContext>;

/// One version of the configuration.
pub(crate) struct Generation {
    /// Starts at 1, one more per reload.
    pub version: u64,
    /// The spec it was built from (its `plugins` are served by the plugin set, not here).
    pub spec: ProxySpec,
    /// In the spec's order of listeners.
    pub listeners: Vec<ListenerShared>,
    /// Each cluster's endpoint health and circuit-breaker counts, in the spec's order.
    pub clusters: Vec<Arc<ClusterState>>,
    /// The clusters callouts may name.
    pub cluster_names: Arc<HashSet<String>>,
}

/// What every worker shares of one listener.
#[derive(Clone)]
pub(crate) struct ListenerShared {
    pub socket: Arc<BoundSocket>,
    pub tls: Option<ServerTlsContext>,
    /// Kept by name across generations, so counters do not restart with a reload.
    pub stats: Arc<ListenerStats>,
    pub logs: Arc<[Arc<AccessLog>]>,
    pub epoch: Arc<ConnectionEpoch>,
}

/// The connection-level settings of a listener for as long as they stay the same: the same
/// `Arc` across generations until a reload changes them, when its connections are told to
/// drain.
pub(crate) struct ConnectionEpoch {
    drain: watch::Sender<bool>,
}

impl ConnectionEpoch {
    fn new() -> ConnectionEpoch {
        ConnectionEpoch {
            drain: watch::channel(false).0,
        }
    }

    /// Fires once, when the settings are replaced.
    pub fn drained(&self) -> watch::Receiver<bool> {
        self.drain.subscribe()
    }

    fn retire(&self) {
        self.drain.send_replace(true);
    }

    /// Whether the settings were replaced (read on each request, so a request that arrives
    /// before its connection's task has seen the news is told to close all the same).
    pub fn is_retired(&self) -> bool {
        *self.drain.borrow()
    }
}

/// Whether a connection accepted under `a` can go on serving under `b`.
fn same_connection_settings(a: &ListenerSpec, b: &ListenerSpec) -> bool {
    a.name == b.name
        && a.address == b.address
        && a.direction == b.direction
        && a.tls == b.tls
        && a.tcp.is_some() == b.tcp.is_some()
        && a.http == b.http
}

impl Generation {
    /// Builds generation `version` of `spec` for `workers` workers, reusing what `previous`
    /// has of it. Fails (and binds, opens and retires nothing the previous one uses) when a
    /// socket cannot be bound, a TLS file or a cluster cannot be used, or a log cannot be
    /// opened.
    pub fn build(
        spec: ProxySpec,
        previous: Option<&Generation>,
        workers: usize,
        version: u64,
    ) -> Result<Generation, StartError> {
        let clusters: Vec<Arc<ClusterState>> = spec
            .clusters
            .iter()
            .map(|c| {
                previous
                    .and_then(|p| p.cluster_state(c))
                    .unwrap_or_else(|| Arc::new(ClusterState::new(c)))
            })
            .collect();
        // Bad TLS settings stop here with a clear error instead of surfacing on a worker.
        crate::upstream::Upstreams::new(&spec.clusters, &clusters)?;
        let mut writers = LogWriters::from_previous(previous.map(Generation::all_logs));
        let mut listeners = Vec::with_capacity(spec.listeners.len());
        for l in &spec.listeners {
            let before = previous.and_then(|p| p.listener_named(&l.name));
            let (epoch, tls) = match before {
                Some((old_spec, old)) if same_connection_settings(old_spec, l) => {
                    (old.epoch.clone(), old.tls.clone())
                }
                _ => (Arc::new(ConnectionEpoch::new()), tls_context(l)?),
            };
            let taken = |s: &Arc<BoundSocket>| {
                listeners
                    .iter()
                    .any(|l: &ListenerShared| Arc::ptr_eq(&l.socket, s))
            };
            let socket = match previous.and_then(|p| p.socket_at(l)).filter(|s| !taken(s)) {
                Some(socket) => socket,
                None => Arc::new(BoundSocket::bind(l, workers)?),
            };
            listeners.push(ListenerShared {
                socket,
                tls,
                stats: before.map_or_else(Default::default, |(_, old)| old.stats.clone()),
                logs: writers.open(&l.access_log)?,
                epoch,
            });
        }
        let cluster_names = Arc::new(spec.clusters.iter().map(|c| c.name.clone()).collect());
        Ok(Generation {
            version,
            spec,
            listeners,
            clusters,
            cluster_names,
        })
    }

    /// The state of the previous generation's cluster of the same name and settings.
    fn cluster_state(&self, spec: &crate::spec::ClusterSpec) -> Option<Arc<ClusterState>> {
        self.spec
            .clusters
            .iter()
            .position(|c| c == spec)
            .map(|i| self.clusters[i].clone())
    }

    fn listener_named(&self, name: &str) -> Option<(&ListenerSpec, &ListenerShared)> {
        self.spec
            .listeners
            .iter()
            .zip(&self.listeners)
            .find(|(l, _)| l.name == name)
    }

    /// The socket bound for `listener`'s configured address, whichever listener had it; for
    /// port 0 (any free port), only the same listener's, since every such listener got a port
    /// of its own.
    fn socket_at(&self, listener: &ListenerSpec) -> Option<Arc<BoundSocket>> {
        self.spec
            .listeners
            .iter()
            .zip(&self.listeners)
            .find(|(spec, l)| {
                l.socket.configured == listener.address
                    && (listener.address.port() != 0 || spec.name == listener.name)
            })
            .map(|(_, l)| l.socket.clone())
    }

    fn all_logs(&self) -> impl Iterator<Item = &Arc<AccessLog>> {
        self.listeners.iter().flat_map(|l| l.logs.iter())
    }

    /// Whether `next` keeps every cluster of this generation as it was (same names,
    /// settings and shared state), so health checking can go on as it is.
    pub fn same_clusters(&self, next: &Generation) -> bool {
        self.clusters.len() == next.clusters.len()
            && self
                .clusters
                .iter()
                .zip(&next.clusters)
                .all(|(a, b)| Arc::ptr_eq(a, b))
    }

    /// Ends what `next` does not carry over: the connections of replaced listener settings
    /// drain, and sockets no listener of `next` uses stop accepting.
    pub fn retire_into(&self, next: &Generation) {
        for old in &self.listeners {
            if !next
                .listeners
                .iter()
                .any(|l| Arc::ptr_eq(&l.epoch, &old.epoch))
            {
                old.epoch.retire();
            }
            if !next
                .listeners
                .iter()
                .any(|l| Arc::ptr_eq(&l.socket, &old.socket))
            {
                old.socket.close();
            }
        }
    }
}

/// The TLS context of `listener`, if it terminates TLS: ALPN h2 and http/1.1 for an HTTP
/// listener, nothing for a TCP one.
fn tls_context(listener: &ListenerSpec) -> Result<Option<ServerTlsContext>, StartError> {
    let Some(tls) = &listener.tls else {
        return Ok(None);
    };
    server_context(tls, listener.tcp.is_none())
        .map(Some)
        .map_err(|reason| StartError::Tls {
            name: listener.name.clone(),
            reason,
        })
}

fn server_context(tls: &ServerTls, http: bool) -> Result<ServerTlsContext, String> {
    let alpn: &[&[u8]] = if http { &[b"h2", b"http/1.1"] } else { &[] };
    wasp_tls::ServerContext::new(tls, alpn)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// The current generation, and news of the next.
pub(crate) struct Generations {
    current: RwLock<Arc<Generation>>,
    /// The current version, read on every accepted connection and every request: cheaper
    /// than the lock.
    version: AtomicU64,
    changed: watch::Sender<u64>,
}

impl Generations {
    pub fn new(first: Generation) -> Generations {
        Generations {
            version: AtomicU64::new(first.version),
            changed: watch::channel(first.version).0,
            current: RwLock::new(Arc::new(first)),
        }
    }

    pub fn current(&self) -> Arc<Generation> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether the current generation has a cluster of this name (callouts name theirs).
    pub fn has_cluster(&self, name: &str) -> bool {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .cluster_names
            .contains(name)
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Fires with the new version whenever a generation is published.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Makes `next` current; returns the generation it replaces.
    pub fn publish(&self, next: Generation) -> Arc<Generation> {
        let version = next.version;
        let old = std::mem::replace(
            &mut *self
                .current
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            Arc::new(next),
        );
        self.version.store(version, Ordering::Release);
        self.changed.send_replace(version);
        old
    }
}
