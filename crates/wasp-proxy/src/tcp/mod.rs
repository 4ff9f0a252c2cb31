//! TCP listeners: each connection relayed to a cluster (Envoy's `tcp_proxy`), the cluster
//! picked by the listener's `cluster`, or by the TLS server name the client sends (SNI routes,
//! TLS passed through), with an idle timeout.

mod relay;
mod sni;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::spec::{ClusterSpec, TcpProxySpec};
use crate::upstream::ClusterId;
use crate::worker::Worker;

/// How long a passthrough listener waits for the ClientHello it routes by.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// A TCP listener's routing, resolved against the clusters once per worker.
pub(crate) struct TcpRoutes {
    spec: TcpProxySpec,
    default: Option<ClusterId>,
    /// Per SNI route, in order.
    by_name: Vec<Option<ClusterId>>,
}

impl TcpRoutes {
    pub fn new(spec: &TcpProxySpec, clusters: &[ClusterSpec]) -> TcpRoutes {
        TcpRoutes {
            spec: spec.clone(),
            default: spec
                .cluster
                .as_deref()
                .and_then(|c| ClusterId::of(clusters, c)),
            by_name: spec
                .sni_routes
                .iter()
                .map(|r| ClusterId::of(clusters, &r.cluster))
                .collect(),
        }
    }

    /// The cluster for a connection that sent `server_name`.
    fn pick(&self, server_name: Option<&str>) -> Option<ClusterId> {
        let by_sni = server_name.and_then(|name| {
            self.spec
                .sni_routes
                .iter()
                .position(|r| r.server_names.iter().any(|p| sni::matches(p, name)))
        });
        match by_sni {
            Some(i) => self.by_name[i],
            None => self.default,
        }
    }
}

/// Serves one accepted connection of a TCP listener.
pub(crate) async fn serve(
    worker: Rc<Worker>,
    routes: &TcpRoutes,
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
) {
    let stats = &worker.shared.stats.tcp;
    stats.connections.fetch_add(1, Relaxed);
    let server_name = if routes.spec.sni_routes.is_empty() {
        None
    } else {
        client_hello_name(&tcp).await
    };
    let Some(cluster) = routes.pick(server_name.as_deref()) else {
        stats.no_route.fetch_add(1, Relaxed);
        tracing::debug!(%peer, ?server_name, "tcp: no cluster for this connection, closing");
        return;
    };
    let idle = routes.spec.idle_timeout;
    let relayed = match tls {
        None => {
            let Some(upstream) = connect(&worker, cluster).await else {
                stats.connect_failures.fetch_add(1, Relaxed);
                return;
            };
            relay::relay(tcp, upstream, idle).await
        }
        // The handshake first: a client that fails it never opens an upstream connection.
        Some(acceptor) => {
            let stream = match acceptor.accept(tcp).await {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                    return;
                }
            };
            let Some(upstream) = connect(&worker, cluster).await else {
                stats.connect_failures.fetch_add(1, Relaxed);
                return;
            };
            relay::relay(stream, upstream, idle).await
        }
    };
    stats.received_bytes.fetch_add(relayed.sent_up, Relaxed);
    stats.sent_bytes.fetch_add(relayed.sent_down, Relaxed);
    if relayed.idle_timeout {
        stats.idle_timeouts.fetch_add(1, Relaxed);
    }
}

/// The server name of the ClientHello the client sends first, peeked (left in the socket
/// for the upstream); `None` when it sends something else or nothing in time.
async fn client_hello_name(tcp: &TcpStream) -> Option<String> {
    let mut buf = vec![0u8; sni::MAX_HELLO];
    let deadline = tokio::time::Instant::now() + HELLO_TIMEOUT;
    let mut seen = 0;
    loop {
        let n = tokio::time::timeout_at(deadline, tcp.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        match sni::parse(&buf[..n]) {
            sni::Hello::Tls(name) => return name,
            sni::Hello::NotTls => return None,
            // Closed before a whole hello, or no new bytes: wait for more.
            sni::Hello::Incomplete if n == 0 || n == buf.len() => return None,
            sni::Hello::Incomplete => {
                if n == seen {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                seen = n;
            }
        }
    }
}

/// A connection to the next endpoint of `cluster`, within its connect timeout.
async fn connect(worker: &Worker, cluster: ClusterId) -> Option<TcpStream> {
    let picked = worker.upstreams.pick(cluster)?;
    let timeout = worker.upstreams.connect_timeout(cluster);
    match tokio::time::timeout(timeout, TcpStream::connect(&*picked.endpoint)).await {
        Ok(Ok(tcp)) => {
            let _ = tcp.set_nodelay(true);
            Some(tcp)
        }
        Ok(Err(e)) => {
            tracing::debug!(cluster = %picked.cluster, endpoint = %picked.endpoint, "tcp: connect failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!(cluster = %picked.cluster, endpoint = %picked.endpoint, "tcp: connect timed out");
            None
        }
    }
}
