//! The connection circuit breakers (Envoy's `max_connections` and `max_pending_requests`): a
//! connector in front of the TCP connector that holds one of the cluster's connection permits
//! for as long as the connection lives. Without a free permit a request waits (pending) for
//! one — or for a pooled connection to come free, which the pool races against the connect —
//! and beyond `max_pending_requests` waiting requests it fails at once as an overflow.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use super::health::ClusterState;

/// Why no connection was opened: the cluster's circuit breaker is open.
#[derive(Debug, thiserror::Error)]
#[error("overflow")]
pub struct Overflow;

/// [`HttpConnector`] under the cluster's connection limits.
#[derive(Clone)]
pub struct Limited {
    pub inner: HttpConnector,
    pub state: Arc<ClusterState>,
}

/// A connection holding its permit.
pub struct Counted {
    io: TokioIo<TcpStream>,
    _permit: OwnedSemaphorePermit,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for Limited {
    type Response = Counted;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Counted, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let mut inner = self.inner.clone();
        let state = self.state.clone();
        Box::pin(async move {
            let permit = match state.connection_permits.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    let waiting = state.pending.fetch_add(1, Relaxed);
                    let _done = Decrement(&state.pending);
                    if waiting >= state.limits.max_pending_requests {
                        state.overflows.fetch_add(1, Relaxed);
                        return Err(Box::new(Overflow) as BoxError);
                    }
                    state
                        .connection_permits
                        .clone()
                        .acquire_owned()
                        .await
                        .map_err(|_| Box::new(Overflow) as BoxError)?
                }
            };
            let io = tower_service::Service::call(&mut inner, uri).await?;
            Ok(Counted {
                io,
                _permit: permit,
            })
        })
    }
}

struct Decrement<'a>(&'a std::sync::atomic::AtomicU32);

impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl Connection for Counted {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}

impl hyper::rt::Read for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}
