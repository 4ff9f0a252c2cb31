//! The client's request body as the stream reads it: timed by the listener's
//! `stream_idle_timeout` (no bytes for that long) and `request_timeout` (the whole request
//! within that), and its failures sorted into the client's faults — which the stream answers
//! 4xx, never blaming the upstream (`crate::stream::client_fault`) — and the client simply
//! going away.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

/// The same as `super::BoxError` (spelled out: this file does not import its parent).
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the client did wrong with its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum ClientFault {
    /// Bad framing (a malformed or overflowing chunk size): 400, Envoy's `DPE`.
    Malformed = 1,
    /// Nothing sent for `stream_idle_timeout`: 408, Envoy's `SI`.
    Stalled = 2,
    /// Not all sent within `request_timeout`: 408.
    TooSlow = 3,
}

impl ClientFault {
    /// The fault a number stored by [`ClientFault::as_u8`] stands for.
    pub(crate) fn from_u8(n: u8) -> Option<ClientFault> {
        match n {
            1 => Some(ClientFault::Malformed),
            2 => Some(ClientFault::Stalled),
            3 => Some(ClientFault::TooSlow),
            _ => None,
        }
    }

    pub(crate) fn as_u8(self) -> u8 {
        self as u8
    }
}

/// Where a body's fault is noted for the stream to answer it (the stream's record).
pub(crate) trait NotesClientFault: Send + Sync {
    fn note(&self, fault: ClientFault);
}

/// The client's request body, timed.
pub(crate) struct ClientBody {
    body: Incoming,
    record: Arc<dyn NotesClientFault>,
    stall: Option<Duration>,
    /// The end of `request_timeout`, counted from the request's arrival.
    deadline: Option<Instant>,
    /// When the body stalls, counted from its last frame (set when it next has to wait).
    stalled_at: Option<Instant>,
    /// Made the first time the body has to wait (most bodies never do).
    timer: Option<Pin<Box<Sleep>>>,
    /// A frame came since `stalled_at` was set: the stall is counted from now.
    moved: bool,
}

impl ClientBody {
    pub(crate) fn new(
        body: Incoming,
        record: Arc<dyn NotesClientFault>,
        options: &wasp_spec::HttpOptions,
    ) -> ClientBody {
        ClientBody {
            body,
            record,
            stall: options.stream_idle_timeout,
            deadline: options.request_timeout.map(|t| Instant::now() + t),
            stalled_at: None,
            timer: None,
            moved: true,
        }
    }

    fn fail(
        &mut self,
        fault: ClientFault,
        what: &'static str,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.record.note(fault);
        tracing::debug!("request body: {what}");
        self.stall = None;
        self.stalled_at = None;
        self.deadline = None;
        Poll::Ready(Some(Err(what.into())))
    }

    /// The body has nothing now: has it waited too long?
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.moved {
            self.moved = false;
            self.stalled_at = self.stall.map(|stall| Instant::now() + stall);
        }
        let due = match (self.stalled_at, self.deadline) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(due) => due,
                None => return Poll::Pending,
            },
        };
        let timer = match &mut self.timer {
            Some(timer) => {
                if timer.deadline() != due {
                    timer.as_mut().reset(due);
                }
                timer
            }
            None => self.timer.insert(Box::pin(tokio::time::sleep_until(due))),
        };
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        if self.deadline == Some(due) {
            self.fail(ClientFault::TooSlow, "request_timeout reached")
        } else {
            self.fail(ClientFault::Stalled, "stream_idle_timeout reached")
        }
    }
}

/// Whether a body error is the client's malformed framing (hyper reports it as invalid
/// data), rather than the client going away mid-body.
fn malformed(e: &hyper::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
            );
        }
        source = s.source();
    }
    e.is_parse()
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                self.moved = true;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                if malformed(&e) {
                    self.record.note(ClientFault::Malformed);
                }
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => self.poll_timer(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
