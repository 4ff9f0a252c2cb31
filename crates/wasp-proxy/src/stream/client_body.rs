//! The client's request body as the stream reads it: timed by the listener's
//! `stream_idle_timeout` (no bytes for that long) and `request_timeout` (the whole request
//! within that), and its failures sorted into the client's faults — which are answered 4xx,
//! never blamed on the upstream — and the client simply going away.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::body::BoxError;
use crate::filter::Stop;
use crate::filter::properties::StreamRecord;
use crate::flags;

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
    pub(crate) fn of(record: &StreamRecord) -> Option<ClientFault> {
        match record.client_fault.load(Relaxed) {
            1 => Some(ClientFault::Malformed),
            2 => Some(ClientFault::Stalled),
            3 => Some(ClientFault::TooSlow),
            _ => None,
        }
    }

    /// The local reply for the fault, flagged and counted as Envoy does.
    pub(crate) fn reply(self, cx: &crate::filter::StreamCx, chain_len: usize) -> Stop {
        let limits = &cx.shared.stats.client_limits;
        match self {
            ClientFault::Malformed => {
                cx.info.add_flags(flags::DOWNSTREAM_PROTOCOL_ERROR);
                Stop::proxy(400, "http1.codec_error", "Bad Request", chain_len)
            }
            ClientFault::Stalled => {
                limits.stream_idle_timeouts.fetch_add(1, Relaxed);
                cx.info.add_flags(flags::STREAM_IDLE_TIMEOUT);
                Stop::proxy(408, "stream_idle_timeout", "stream timeout", chain_len)
            }
            ClientFault::TooSlow => {
                limits.request_timeouts.fetch_add(1, Relaxed);
                Stop::proxy(408, "request_overall_timeout", "request timeout", chain_len)
            }
        }
    }
}

/// The client's request body, timed.
pub(crate) struct ClientBody {
    body: Incoming,
    record: Arc<StreamRecord>,
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
        record: Arc<StreamRecord>,
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
        self.record.client_fault.store(fault as u8, Relaxed);
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
                    self.record
                        .client_fault
                        .store(ClientFault::Malformed as u8, Relaxed);
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
