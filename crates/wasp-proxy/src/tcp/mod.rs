//! TCP listeners: each connection relayed to a cluster (Envoy's `tcp_proxy`), the cluster
//! picked by the listener's `cluster`, or by the TLS server name the client sends (SNI routes,
//! TLS passed through), with an idle timeout.

mod chain;
mod filtered;
mod relay;
mod sni;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpStream;
use wasp_host::{ConnectionProperties, PeerType, PropertyValue, TcpConnection};

use self::chain::NetworkChain;
use crate::filter::properties::ConnInfo;
use crate::filter::signals::Direction;
use crate::generation::ServerTlsContext;
use crate::routes::Listener;
use crate::routes::tcp::TcpRoutes;
use crate::upstream::{ClusterId, Picked, Upstreams};
use crate::worker::Worker;
use crate::worker::local::LocalGeneration;

/// How long a passthrough listener waits for the ClientHello it routes by.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves one accepted connection of the TCP listener `listener` of `generation`, which it
/// keeps to its end (a reload does not move a relayed connection).
pub(crate) async fn serve(
    worker: &Worker,
    generation: &LocalGeneration,
    listener: &Listener,
    routes: &TcpRoutes,
    tcp: TcpStream,
    mut conn: ConnInfo,
    tls: Option<ServerTlsContext>,
) {
    let stats = &listener.shared.stats.tcp;
    let at = Place {
        worker,
        generation,
        listener,
        routes,
    };
    let server_name = if routes.spec.sni_routes.is_empty() {
        None
    } else {
        client_hello_name(&tcp).await
    };
    let Some(cluster) = routes.pick(server_name.as_deref()) else {
        stats.no_route.fetch_add(1, Relaxed);
        tracing::debug!(peer = %conn.peer, ?server_name, "tcp: no cluster for this connection, closing");
        return;
    };
    let relayed = match tls {
        None => {
            // Passthrough: the name from the ClientHello, no TLS session of wasp's own.
            conn.sni = server_name;
            proxy(&at, cluster, tcp, conn).await
        }
        // The handshake first: a client that fails it never opens an upstream connection.
        Some(context) => {
            let (stream, session) = match crate::listener::tls::accept(&context, tcp).await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::debug!(peer = %conn.peer, "TLS handshake failed: {e}");
                    return;
                }
            };
            conn.sni = session.sni.clone();
            conn.tls = Some(std::sync::Arc::new(session));
            proxy(&at, cluster, stream, conn).await
        }
    };
    let Some(relayed) = relayed else { return };
    stats.received_bytes.fetch_add(relayed.sent_up, Relaxed);
    stats.sent_bytes.fetch_add(relayed.sent_down, Relaxed);
    if relayed.idle_timeout {
        stats.idle_timeouts.fetch_add(1, Relaxed);
    }
}

/// Where a connection is served: its worker, the generation and listener that accepted it.
struct Place<'a> {
    worker: &'a Worker,
    generation: &'a LocalGeneration,
    listener: &'a Listener,
    routes: &'a TcpRoutes,
}

/// The network plugins' contexts (if the listener has any), the upstream connection, and the
/// relay; `None` when the connection ended before the relay (a plugin failed closed, the
/// upstream could not be reached).
async fn proxy<S>(
    at: &Place<'_>,
    cluster: ClusterId,
    client: S,
    conn: ConnInfo,
) -> Option<relay::Relayed>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    let routes = at.routes;
    let vms = at.worker.vms();
    let plugins = at.listener.chain(&vms.set);
    let record = Arc::new(TcpRecord {
        conn,
        upstream: Mutex::new(None),
    });
    let chain = if plugins.is_empty() {
        None
    } else {
        let connection = TcpConnection::shared(Some(record.clone()));
        let chain = NetworkChain::open(vms.clone(), &plugins, connection)?;
        Some(wait_for_new_connection(chain, routes.spec.idle_timeout).await?)
    };
    let Some((upstream, picked)) = connect(&at.generation.upstreams, cluster).await else {
        at.listener
            .shared
            .stats
            .tcp
            .connect_failures
            .fetch_add(1, Relaxed);
        if let Some(mut chain) = chain {
            chain.downstream_closed(PeerType::Local);
            chain.finish();
        }
        return None;
    };
    *record
        .upstream
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(picked);
    let idle = routes.spec.idle_timeout;
    Some(match chain {
        None => relay::relay(client, upstream, idle).await,
        Some(chain) => filtered::relay(client, upstream, idle, chain).await,
    })
}

/// While a plugin holds the connection from `on_new_connection`, nothing else happens to it
/// (no upstream, no reads), as in Envoy, until the plugin resumes it; the plugins after it
/// then get their `on_new_connection`. `None` when the connection is over instead: a plugin
/// closed it or failed closed, or it stayed idle for the idle timeout.
async fn wait_for_new_connection(
    mut chain: NetworkChain,
    idle: Option<Duration>,
) -> Option<NetworkChain> {
    while let Some(position) = chain.held_new {
        let signals = chain.signals.clone();
        let resumed = match idle {
            Some(idle) => tokio::time::timeout(idle, signals.wait(position, Direction::Request))
                .await
                .is_ok_and(|r| r.is_ok()),
            None => signals.wait(position, Direction::Request).await.is_ok(),
        };
        if !resumed {
            chain.downstream_closed(PeerType::Local);
            chain.finish();
            return None;
        }
        if !chain.resume_new(position) {
            return None;
        }
    }
    Some(chain)
}

/// What network plugins read of their connection: its addresses and TLS, and the upstream
/// once connected.
struct TcpRecord {
    conn: ConnInfo,
    upstream: Mutex<Option<Picked>>,
}

impl ConnectionProperties for TcpRecord {
    fn property(&self, path: &[&[u8]], _: &TcpConnection) -> Option<PropertyValue> {
        if let Some(value) = self.conn.property(path) {
            return Some(value);
        }
        let upstream = self.upstream.lock().ok()?;
        let picked = upstream.as_ref()?;
        Some(match path {
            [b"upstream", b"address"] => picked.endpoint.to_string().into(),
            [b"xds", b"cluster_name"] => picked.cluster.to_string().into(),
            _ => return None,
        })
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

/// A connection to the next endpoint of `cluster`, within its connect timeout, and which
/// endpoint it is.
async fn connect(upstreams: &Upstreams, cluster: ClusterId) -> Option<(TcpStream, Picked)> {
    let picked = upstreams.pick(cluster)?;
    let timeout = upstreams.connect_timeout(cluster);
    match tokio::time::timeout(timeout, TcpStream::connect(&*picked.endpoint)).await {
        Ok(Ok(tcp)) => {
            let _ = tcp.set_nodelay(true);
            Some((tcp, picked))
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
