//! A body sent as given pieces, 50 ms apart, optionally followed by trailers: how clients
//! and upstreams produce streamed (chunked) bodies whose pieces the proxies see separately.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

/// The pause between pieces: long enough that each arrives as its own read.
pub const PIECE_GAP: Duration = Duration::from_millis(50);

pub struct FrameBody {
    pieces: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
    /// The exact length is announced (content-length) instead of streaming.
    sized: Option<u64>,
    gap: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl FrameBody {
    pub fn new(pieces: Vec<Bytes>, trailers: Option<HeaderMap>, sized: bool) -> FrameBody {
        let pieces: VecDeque<Bytes> = pieces.into_iter().filter(|b| !b.is_empty()).collect();
        let len = pieces.iter().map(|b| b.len() as u64).sum();
        FrameBody {
            pieces,
            trailers,
            sized: sized.then_some(len),
            gap: None,
        }
    }
}

impl Body for FrameBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(gap) = self.gap.as_mut() {
            if gap.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.gap = None;
        }
        if let Some(data) = self.pieces.pop_front() {
            // The first piece goes at once; the others after a pause each.
            if !self.pieces.is_empty() || self.trailers.is_some() {
                self.gap = Some(Box::pin(tokio::time::sleep(PIECE_GAP)));
            }
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        match self.trailers.take() {
            Some(t) => Poll::Ready(Some(Ok(Frame::trailers(t)))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.sized {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
