//! The listeners: HTTPS (rustls, HTTP/1.1 and HTTP/2 by ALPN, like the apiserver) and
//! optionally plain HTTP, each an accept loop that can be stopped — closing the listener and
//! every open connection, as when the apiserver goes away — and started again on the same port.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::api;
use crate::state::Shared;

/// A running accept loop.
#[derive(Debug)]
pub struct Listener {
    /// The bound address.
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

async fn serve_conn<S>(shared: Arc<Shared>, io: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, std::convert::Infallible>(api::handle(shared, req).await) }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    if let Err(e) = builder.serve_connection(TokioIo::new(io), svc).await {
        tracing::debug!("connection ended: {e}");
    }
}

async fn handle_stream(shared: Arc<Shared>, tls: Option<TlsAcceptor>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    match tls {
        Some(acceptor) => match acceptor.accept(stream).await {
            Ok(s) => serve_conn(shared, s).await,
            Err(e) => tracing::debug!("TLS handshake failed: {e}"),
        },
        None => serve_conn(shared, stream).await,
    }
}

impl Listener {
    /// Binds `addr` and serves until stopped.
    pub async fn start(
        shared: Arc<Shared>,
        addr: SocketAddr,
        tls: Option<TlsAcceptor>,
    ) -> std::io::Result<Listener> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            // Dropping the set at the end aborts every connection task.
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    r = listener.accept() => match r {
                        Ok((stream, _)) => {
                            conns.spawn(handle_stream(shared.clone(), tls.clone(), stream));
                        }
                        Err(e) => tracing::warn!("accept failed: {e}"),
                    },
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
            conns.abort_all();
            while conns.join_next().await.is_some() {}
        });
        Ok(Listener { addr, stop, task })
    }

    /// Closes the listener and every connection, and waits until they are gone.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        let _ = (&mut self.task).await;
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
