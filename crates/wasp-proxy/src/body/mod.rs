//! Bodies that stream through the proxy: a bounded channel of frames, so a slow reader
//! slows the writer down (backpressure) instead of growing a buffer; or, when no filter looks
//! at a body, the peer's body itself, passed on as it arrives (no channel, no task, no copy).

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

pub(crate) mod client;

use self::client::ClientBody;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Frames in flight per body: enough to keep both sides busy, small enough to bound memory.
const FRAMES_IN_FLIGHT: usize = 4;

/// The receiving end of a streamed body.
pub struct ChannelBody {
    /// Frames taken off the channel early (to look ahead), delivered first.
    ahead: VecDeque<Frame<Bytes>>,
    rest: Rest,
    /// Known length, when the whole body is known up front.
    exact: Option<u64>,
    /// The route's timeout, which covers the whole response (Envoy's route timeout): the
    /// body ends in an error (a reset of the client's stream) when it is reached.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Told the data bytes that went out when the body ends (its last frame, an error, or
    /// the reader dropping it): the access log's moment.
    on_end: Option<OnEnd>,
    sent: u64,
}

/// What runs when a body ends, with the data bytes delivered.
pub type OnEnd = Box<dyn FnOnce(u64) + Send>;

/// Where the frames after `ahead` come from.
enum Rest {
    /// Nowhere: the body is known in full (no channel to make, a per-response cost otherwise).
    Nothing,
    Channel(mpsc::Receiver<Result<Frame<Bytes>, BoxError>>),
    /// The peer's body, passed on untouched.
    Peer(hyper::body::Incoming),
    /// The client's request body, passed on untouched but timed.
    Client(ClientBody),
    /// The source failed: its error, delivered once.
    Failed(Option<BoxError>),
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
                rest: Rest::Channel(rx),
                exact: None,
                deadline: None,
                on_end: None,
                sent: 0,
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
            rest: Rest::Nothing,
            exact,
            deadline: None,
            on_end: None,
            sent: 0,
        }
    }

    /// A peer's body passed on as it arrives, for a stream no filter sees the body of.
    pub fn passthrough(body: hyper::body::Incoming) -> ChannelBody {
        ChannelBody {
            ahead: VecDeque::new(),
            rest: Rest::Peer(body),
            exact: None,
            deadline: None,
            on_end: None,
            sent: 0,
        }
    }

    /// The client's request body passed upstream as it arrives, for a stream no filter sees
    /// the body of.
    pub fn from_client(body: ClientBody) -> ChannelBody {
        ChannelBody {
            ahead: VecDeque::new(),
            rest: Rest::Client(body),
            exact: None,
            deadline: None,
            on_end: None,
            sent: 0,
        }
    }

    /// A body of these frames, all known now (its length is not: it may end in trailers).
    pub fn frames(frames: Vec<Frame<Bytes>>) -> ChannelBody {
        ChannelBody {
            ahead: frames.into(),
            rest: Rest::Nothing,
            exact: None,
            deadline: None,
            on_end: None,
            sent: 0,
        }
    }

    /// A body that fails with `error` when read (the peer's body failed before it was passed).
    pub fn failed(error: BoxError) -> ChannelBody {
        let mut body = ChannelBody::frames(Vec::new());
        body.rest = Rest::Failed(Some(error));
        body
    }

    /// `frame` (taken from this body's source) delivered first.
    pub fn ahead_of(mut self, frame: Frame<Bytes>) -> ChannelBody {
        self.ahead.push_front(frame);
        self
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
        match &mut self.rest {
            Rest::Channel(rx) => rx.recv().await,
            Rest::Nothing | Rest::Peer(_) | Rest::Client(_) | Rest::Failed(_) => None,
        }
    }

    /// The body ends with an error at `deadline` if it has not ended before.
    pub fn with_deadline(mut self, deadline: tokio::time::Instant) -> ChannelBody {
        if !self.is_end_stream() {
            self.deadline = Some(Box::pin(tokio::time::sleep_until(deadline)));
        }
        self
    }

    /// Calls `f` with the data bytes delivered when the body ends.
    pub fn on_end(mut self, f: OnEnd) -> ChannelBody {
        self.on_end = Some(f);
        self
    }

    fn ended(&mut self) {
        if let Some(f) = self.on_end.take() {
            f(self.sent);
        }
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
        let polled = self.as_mut().poll_inner(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.sent += data.len() as u64;
                }
            }
            Poll::Ready(None | Some(Err(_))) => self.ended(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ahead.is_empty()
            && match &self.rest {
                Rest::Nothing => true,
                Rest::Channel(_) => self.exact == Some(0),
                Rest::Peer(body) => body.is_end_stream(),
                Rest::Client(body) => body.is_end_stream(),
                Rest::Failed(error) => error.is_none(),
            }
    }

    fn size_hint(&self) -> SizeHint {
        let peer = match (&self.rest, self.exact) {
            (Rest::Peer(body), _) => body.size_hint(),
            (Rest::Client(body), _) => body.size_hint(),
            (_, Some(n)) => return SizeHint::with_exact(n),
            (_, None) => return SizeHint::default(),
        };
        // A peer's hint counts what it has still to give: the frames taken from it ahead are
        // no longer in it. (Without them, hyper framed a 64 KiB response whose first chunk
        // was taken early by that chunk's length less, and cut the body there.)
        let ahead: u64 = self
            .ahead
            .iter()
            .filter_map(Frame::data_ref)
            .map(|d| d.len() as u64)
            .sum();
        let mut hint = SizeHint::new();
        hint.set_lower(peer.lower() + ahead);
        if let Some(upper) = peer.upper() {
            hint.set_upper(upper + ahead);
        }
        hint
    }
}

impl Drop for ChannelBody {
    fn drop(&mut self) {
        self.ended();
    }
}

impl ChannelBody {
    fn poll_inner(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(frame) = self.ahead.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(deadline) = &mut self.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            self.deadline = None;
            self.rest = Rest::Nothing;
            return Poll::Ready(Some(Err("upstream request timeout".into())));
        }
        match &mut self.rest {
            Rest::Nothing => Poll::Ready(None),
            Rest::Channel(rx) => rx.poll_recv(cx),
            Rest::Peer(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|f| f.map_err(BoxError::from))),
            Rest::Client(body) => Pin::new(body).poll_frame(cx),
            Rest::Failed(error) => Poll::Ready(error.take().map(Err)),
        }
    }
}
