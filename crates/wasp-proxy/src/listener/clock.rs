//! A connection's clock: which phase an HTTP connection is in (idle, reading a request head,
//! serving requests) and the timeouts that belong to each — `request_headers_timeout` from
//! the first byte of a head to its end (slowloris), `idle_timeout` while no request is in
//! flight. It sits under hyper as a wrapper of the socket, because only the socket sees a
//! head's first byte: hyper's own header timer also runs while a kept-alive connection waits
//! for its next request, which would close idle connections after seconds.

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::stats::ClientLimitStats;

/// Envoy's answer to a head that does not arrive in time (`request_header_timeout`).
const HEADER_TIMEOUT_RESPONSE: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// The start of an HTTP/2 connection preface: such a connection has no HTTP/1 heads to time.
const H2_PREFACE_START: &[u8] = b"PRI * HTTP/2.0";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// No request in flight, none begun.
    Idle,
    /// Bytes of an HTTP/1 request head have arrived; the head is not complete.
    Head,
    /// At least one request is being served.
    Busy,
}

/// Shared by the socket wrapper (which sees bytes arrive) and the connection's service (which
/// sees requests begin and end).
pub(super) struct ConnClock {
    phase: Cell<Phase>,
    /// When the current phase began.
    since: Cell<Instant>,
    in_flight: Cell<u32>,
    /// The connection speaks HTTP/2 (known from its first bytes).
    http2: Cell<bool>,
    seen_bytes: Cell<bool>,
    idle_expired: Cell<bool>,
    /// Wakes the connection's task when it has been idle for `idle_timeout`.
    idle_notice: tokio::sync::Notify,
    headers_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
}

impl ConnClock {
    pub(super) fn new(options: &wasp_spec::HttpOptions) -> Rc<ConnClock> {
        Rc::new(ConnClock {
            phase: Cell::new(Phase::Idle),
            since: Cell::new(Instant::now()),
            in_flight: Cell::new(0),
            http2: Cell::new(false),
            seen_bytes: Cell::new(false),
            idle_expired: Cell::new(false),
            idle_notice: tokio::sync::Notify::new(),
            headers_timeout: options.request_headers_timeout,
            idle_timeout: options.idle_timeout,
        })
    }

    /// A request's head is complete: it is served until the returned guard drops.
    pub(super) fn request_began(self: &Rc<ConnClock>) -> InFlight {
        self.in_flight.set(self.in_flight.get() + 1);
        self.phase.set(Phase::Busy);
        InFlight(self.clone())
    }

    /// Resolves once the connection has been idle for `idle_timeout`.
    pub(super) async fn idle_expired(&self) {
        self.idle_notice.notified().await;
    }

    fn bytes_arrived(&self, bytes: &[u8]) {
        if !self.seen_bytes.replace(true) {
            let n = bytes.len().min(H2_PREFACE_START.len());
            self.http2.set(bytes[..n] == H2_PREFACE_START[..n]);
        }
        if self.phase.get() == Phase::Idle && !self.http2.get() {
            self.phase.set(Phase::Head);
            self.since.set(Instant::now());
        }
    }

    /// When the current phase times out, if it does; `armed`: the timer's current deadline.
    ///
    /// While requests are in flight the timer still runs, a re-check every `idle_timeout`:
    /// hyper does not read again when a request ends (it is already waiting to), so the idle
    /// phase has no read of its own to start its timer — the re-check finds it, and closes
    /// the connection between one and two `idle_timeout`s after its last request.
    fn deadline(&self, armed: Option<Instant>) -> Option<Instant> {
        match self.phase.get() {
            Phase::Head => Some(self.since.get() + self.headers_timeout?),
            Phase::Idle if !self.idle_expired.get() => Some(self.since.get() + self.idle_timeout?),
            Phase::Idle => None,
            Phase::Busy => {
                let idle = self.idle_timeout?;
                match armed {
                    Some(at) if at > Instant::now() => Some(at),
                    _ => Some(Instant::now() + idle),
                }
            }
        }
    }
}

/// A request in flight on the connection; the connection is idle again when the last drops.
pub(super) struct InFlight(Rc<ConnClock>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let clock = &self.0;
        let left = clock.in_flight.get().saturating_sub(1);
        clock.in_flight.set(left);
        if left == 0 {
            clock.phase.set(Phase::Idle);
            clock.since.set(Instant::now());
        }
    }
}

/// The client's socket (after TLS), timed by the connection's clock.
pub(super) struct Timed<S> {
    io: S,
    clock: Rc<ConnClock>,
    shared: std::sync::Arc<crate::shared::Shared>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<S> Timed<S> {
    pub(super) fn new(
        io: S,
        clock: Rc<ConnClock>,
        shared: std::sync::Arc<crate::shared::Shared>,
    ) -> Timed<S> {
        Timed {
            io,
            clock,
            shared,
            timer: None,
        }
    }

    fn limits(&self) -> &ClientLimitStats {
        &self.shared.stats.client_limits
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Timed<S> {
    /// Nothing to read: has the current phase run out of time?
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let armed = self.timer.as_ref().map(|t| t.deadline());
        let Some(deadline) = self.clock.deadline(armed) else {
            return Poll::Pending;
        };
        let timer = match &mut self.timer {
            Some(timer) => {
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                timer
            }
            None => self
                .timer
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        match self.clock.phase.get() {
            Phase::Busy => {
                // The re-check came due while requests are in flight: set the next one.
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Phase::Head => {
                self.limits().header_timeouts.fetch_add(1, Relaxed);
                tracing::debug!("request head not complete in time: 408 (request_header_timeout)");
                // Best effort: the answer fits any socket buffer; a client that does not read
                // it loses nothing it was owed.
                let _ = Pin::new(&mut self.io).poll_write(cx, HEADER_TIMEOUT_RESPONSE);
                let _ = Pin::new(&mut self.io).poll_flush(cx);
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "request headers timeout",
                )))
            }
            Phase::Idle => {
                // The connection's task closes it (with GOAWAY on HTTP/2).
                self.limits().idle_timeouts.fetch_add(1, Relaxed);
                self.clock.idle_expired.set(true);
                self.clock.idle_notice.notify_one();
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Timed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.clock.bytes_arrived(&buf.filled()[before..]);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => self.poll_deadline(cx),
            failed => failed,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Timed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
