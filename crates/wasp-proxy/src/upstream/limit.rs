//! The connection circuit breakers (Envoy's `max_connections` and `max_pending_requests`): a
//! connector in front of the TCP connector that holds one of the cluster's connection permits
//! for as long as the connection lives. Without a free permit a request waits (pending) for
//! one — or for a pooled connection to come free, which the pool races against the connect —
//! and beyond `max_pending_requests` waiting requests it fails at once as an overflow.
//!
//! The pool's race outlives the request: when a pooled connection wins, hyper-util lets the
//! connect finish in the background (to pool its socket). A background connect still waiting
//! for a permit would hold its pending place for nothing — for as long as idle connections
//! hold every permit, 60 s — and enough of them made every later request that found no idle
//! connection at once an overflow (seen at 1,000 client connections with the default limits,
//! where Envoy answers every request). So a connect waits for its permit only while the
//! request it was started for waits: requests are sent under [`ForRequest`], and the
//! connector, which runs inside that request's poll, takes its end as a signal to give up.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};

use super::health::ClusterState;

/// Why no connection was opened: the cluster's circuit breaker is open.
#[derive(Debug, thiserror::Error)]
#[error("overflow")]
pub struct Overflow;

/// Why a connect waiting for a permit stopped: the request it was for no longer waits.
#[derive(Debug, thiserror::Error)]
#[error("the request no longer waits for a connection")]
struct NotWanted;

thread_local! {
    /// While a request's future is polled on this thread (workers run one per thread):
    /// `Some`, with the sender whose drop signals the request's end to its waiting connects
    /// (made only when a connect must wait). hyper-util calls the connector inside that poll.
    static REQUEST: std::cell::RefCell<Option<Option<watch::Sender<()>>>> =
        const { std::cell::RefCell::new(None) };
}

/// A request to a pooled client whose connect, if one is started for it, waits for a
/// connection permit no longer than the request itself.
pub struct ForRequest<F> {
    inner: F,
    /// Dropped with the request; `None` until a connect waits.
    ended: Option<watch::Sender<()>>,
}

impl<F> ForRequest<F> {
    pub fn new(inner: F) -> ForRequest<F> {
        ForRequest { inner, ended: None }
    }
}

impl<F: Future + Unpin> Future for ForRequest<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let outer = REQUEST.with(|r| r.replace(Some(this.ended.take())));
        let polled = Pin::new(&mut this.inner).poll(cx);
        this.ended = REQUEST.with(|r| r.replace(outer)).flatten();
        polled
    }
}

/// The end of the request being polled, for a connect about to wait for it (`None` outside
/// a [`ForRequest`]).
fn request_end() -> Option<watch::Receiver<()>> {
    REQUEST.with(|r| {
        let mut r = r.borrow_mut();
        let ended = r.as_mut()?;
        Some(
            ended
                .get_or_insert_with(|| watch::channel(()).0)
                .subscribe(),
        )
    })
}

/// Waits for a connection permit, giving up when `request` ends (`None`: not started for a
/// request, waits as long as it takes).
async fn permit_while(
    permits: Arc<tokio::sync::Semaphore>,
    request: Option<watch::Receiver<()>>,
) -> Result<OwnedSemaphorePermit, BoxError> {
    let acquire = permits.acquire_owned();
    let Some(mut request) = request else {
        return acquire.await.map_err(|_| Box::new(Overflow) as BoxError);
    };
    tokio::select! {
        permit = acquire => permit.map_err(|_| Box::new(Overflow) as BoxError),
        // Only the sender's drop ends this: nothing is ever sent.
        _ = request.changed() => Err(Box::new(NotWanted)),
    }
}

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
        // Decided here, inside the request's poll: the returned future may finish in the
        // background, polled by another task.
        let permit = state.connection_permits.clone().try_acquire_owned();
        let request = permit.is_err().then(request_end).flatten();
        Box::pin(async move {
            let permit = match permit {
                Ok(permit) => permit,
                Err(_) => {
                    let waiting = state.pending.fetch_add(1, Relaxed);
                    let _done = Decrement(&state.pending);
                    if waiting >= state.limits.max_pending_requests {
                        state.overflows.fetch_add(1, Relaxed);
                        return Err(Box::new(Overflow) as BoxError);
                    }
                    permit_while(state.connection_permits.clone(), request).await?
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
