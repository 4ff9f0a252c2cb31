//! Bodies that stream through the proxy: a bounded channel of frames, so a slow reader
//! slows the writer down (backpressure) instead of growing a buffer.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Frames in flight per body: enough to keep both sides busy, small enough to bound memory.
const FRAMES_IN_FLIGHT: usize = 4;

/// The receiving end of a streamed body.
pub struct ChannelBody {
    /// Frames taken off the channel early (to look ahead), delivered first.
    ahead: VecDeque<Frame<Bytes>>,
    /// `None` for a body known in full: no channel to make (a per-response cost otherwise).
    rx: Option<mpsc::Receiver<Result<Frame<Bytes>, BoxError>>>,
    /// Known length, when the whole body is known up front.
    exact: Option<u64>,
}

/// The sending end of a streamed body.
pub type BodySender = mpsc::Sender<Result<Frame<Bytes>, BoxError>>;

impl ChannelBody {
    pub fn channel() -> (BodySender, ChannelBody) {
        let (tx, rx) = mpsc::channel(FRAMES_IN_FLIGHT);
        (
            tx,
            ChannelBody {
                ahead: VecDeque::new(),
                rx: Some(rx),
                exact: None,
            },
        )
    }

    /// A body with all its bytes known now.
    pub fn full(bytes: impl Into<Bytes>) -> ChannelBody {
        let bytes = bytes.into();
        let exact = Some(bytes.len() as u64);
        let mut ahead = VecDeque::new();
        if !bytes.is_empty() {
            ahead.push_back(Frame::data(bytes));
        }
        ChannelBody {
            ahead,
            rx: None,
            exact,
        }
    }

    /// This (full) body followed by trailers.
    pub fn with_trailers(mut self, trailers: http::HeaderMap) -> ChannelBody {
        self.ahead.push_back(Frame::trailers(trailers));
        self
    }

    pub fn empty() -> ChannelBody {
        ChannelBody::full(Bytes::new())
    }

    /// The next frame from the channel (not from the look-ahead).
    pub async fn recv(&mut self) -> Option<Result<Frame<Bytes>, BoxError>> {
        self.rx.as_mut()?.recv().await
    }

    /// Puts frames taken with [`ChannelBody::recv`] back, to be delivered first.
    pub fn put_back(&mut self, frames: Vec<Frame<Bytes>>) {
        self.ahead.extend(frames);
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(frame) = self.ahead.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        match self.rx.as_mut() {
            Some(rx) => rx.poll_recv(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ahead.is_empty() && (self.rx.is_none() || self.exact == Some(0))
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
