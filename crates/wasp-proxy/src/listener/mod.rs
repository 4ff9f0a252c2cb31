//! Accepting connections and serving HTTP/1.1 and HTTP/2 (prior knowledge, or ALPN over
//! TLS) on a worker.

pub(crate) mod tls;

use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::filter::properties::ConnInfo;
use crate::listener::tls::ServerTlsContext;
use crate::stream::routes::Listener;
use crate::worker::Worker;

/// Envoy's default limit on request headers (60 KiB); larger ones get 431.
const MAX_HEADER_BYTES: usize = 60 * 1024;

static CONNECTION_IDS: AtomicU64 = AtomicU64::new(1);

/// Runs futures on the worker's own thread: streams never move between workers, and the
/// request futures hold the worker's (non-`Send`) VMs.
#[derive(Clone, Copy)]
pub(crate) struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: Future + 'static,
{
    fn execute(&self, fut: F) {
        tokio::task::spawn_local(fut);
    }
}

pub(crate) async fn accept_loop(
    worker: Rc<Worker>,
    listener: Rc<Listener>,
    socket: TcpListener,
    tls: Option<ServerTlsContext>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = socket.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    let local = tcp.local_addr().unwrap_or(peer);
                    tokio::task::spawn_local(serve_connection(
                        worker.clone(), listener.clone(), tcp, peer, local, tls.clone(), shutdown.clone(),
                    ));
                }
                Err(e) => {
                    tracing::warn!(listener = %listener.spec.name, "accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

async fn serve_connection(
    worker: Rc<Worker>,
    listener: Rc<Listener>,
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    local: std::net::SocketAddr,
    tls: Option<ServerTlsContext>,
    shutdown: watch::Receiver<bool>,
) {
    let stats = &worker.shared.stats;
    stats.connections.fetch_add(1, Relaxed);
    stats.active_connections.fetch_add(1, Relaxed);
    let own = &stats.listeners[listener.index];
    own.connections.fetch_add(1, Relaxed);
    own.active.fetch_add(1, Relaxed);
    let id = CONNECTION_IDS.fetch_add(1, Relaxed);
    if let Some(routes) = &listener.tcp {
        let conn = ConnInfo {
            id,
            peer,
            local,
            listener: listener.spec.name.clone(),
            direction: listener.spec.direction,
            sni: None,
            tls: None,
        };
        crate::tcp::serve(worker.clone(), listener.index, routes, tcp, conn, tls).await;
        stats.active_connections.fetch_sub(1, Relaxed);
        own.active.fetch_sub(1, Relaxed);
        return;
    }
    match tls {
        None => {
            let conn = Arc::new(ConnInfo {
                id,
                peer,
                local,
                listener: listener.spec.name.clone(),
                direction: listener.spec.direction,
                sni: None,
                tls: None,
            });
            serve_http(worker.clone(), listener, conn, TokioIo::new(tcp), shutdown).await;
        }
        Some(context) => match tls::accept(&context, tcp).await {
            Ok((stream, session)) => {
                let conn = Arc::new(ConnInfo {
                    id,
                    peer,
                    local,
                    listener: listener.spec.name.clone(),
                    direction: listener.spec.direction,
                    sni: session.sni.clone(),
                    tls: Some(Arc::new(session)),
                });
                serve_http(
                    worker.clone(),
                    listener,
                    conn,
                    TokioIo::new(stream),
                    shutdown,
                )
                .await;
            }
            Err(e) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
        },
    }
    stats.active_connections.fetch_sub(1, Relaxed);
    own.active.fetch_sub(1, Relaxed);
}

async fn serve_http<I>(
    worker: Rc<Worker>,
    listener: Rc<Listener>,
    conn: Arc<ConnInfo>,
    io: I,
    mut shutdown: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    let service = service_fn(move |req| {
        crate::stream::handle(worker.clone(), listener.clone(), conn.clone(), req)
    });
    let mut builder = auto::Builder::new(LocalExec);
    builder
        .http1()
        .max_buf_size(MAX_HEADER_BYTES.max(8192))
        .timer(hyper_util::rt::TokioTimer::new());
    builder
        .http2()
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!("connection ended: {e}");
            }
        }
        _ = shutdown.changed() => {
            // Finish in-flight requests, refuse new ones, then close.
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}
