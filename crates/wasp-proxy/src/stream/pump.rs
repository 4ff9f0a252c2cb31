//! Bodies in motion: each direction's frames through the chain, chunk by chunk, to the other
//! side, with the end of the stream and the trailers as Envoy's codecs deliver them.

use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use http::Version;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::client_fault;
use crate::body::client::ClientBody;
use crate::body::{BodySender, BoxError};
use crate::convert;
use crate::filter::Stop;
use crate::filter::chain::Chain;
use crate::filter::signals::Direction;

/// How the end of a body reaches the plugins, which follows the transport as in Envoy: its
/// HTTP/1 codec delivers the last data with `end_of_stream = false` and then the end as a
/// callback of its own with no data (whether the length came from `content-length` or
/// chunking); its HTTP/2 codec marks the DATA frame that carries END_STREAM.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyEnd {
    OwnCallback,
    WithLastData,
}

impl BodyEnd {
    pub(super) fn of(version: Version) -> BodyEnd {
        match version {
            Version::HTTP_2 | Version::HTTP_3 => BodyEnd::WithLastData,
            _ => BodyEnd::OwnCallback,
        }
    }
}

/// Streams the request body from the client through the chain to the upstream.
pub(super) async fn pump_request(run: Rc<Chain>, body: (ClientBody, BodyEnd), tx: BodySender) {
    let out = &mut Outlet::Channel(&tx);
    if let Err(stop) = pass_body(&run, Direction::Request, body, None, out).await {
        // Tell the main task (waiting for the upstream) and abort the upstream body.
        match stop {
            Stop::Reset => run.cx.signals.reset(),
            Stop::Reply { response, position } => run.cx.signals.local_reply(position, response),
            // Not made in the request phase.
            Stop::Direct(_) => run.cx.signals.reset(),
        }
        let _ = tx.send(Err("request stopped by a plugin".into())).await;
    }
}

/// Streams the response body from the upstream through the chain to the client. Owns the
/// stream: when it ends (or the client goes away), the plugins' contexts end.
/// `first`: a frame already taken from the body, passed first.
pub(super) async fn pump_response(
    run: Rc<Chain>,
    body: (Incoming, BodyEnd),
    first: Leftover<hyper::Error>,
    tx: BodySender,
    end_of_stream: bool,
) {
    if end_of_stream {
        return;
    }
    let out = &mut Outlet::Channel(&tx);
    if pass_body(&run, Direction::Response, body, first, out)
        .await
        .is_err()
    {
        // Headers are gone already: all that is left is to reset the stream, as Envoy does.
        let _ = tx
            .send(Err(
                "response stopped by a plugin after headers were sent".into()
            ))
            .await;
    }
}

/// The response body through the chain at once, for a body that is all here already (a
/// small one usually arrives with its headers): no task, no channel. `first` is the frame
/// taken from it. Returns the frames that left the chain.
pub(super) async fn pass_whole_response(
    run: &Chain,
    body: (Incoming, BodyEnd),
    first: Leftover<hyper::Error>,
) -> Result<Vec<Result<Frame<Bytes>, BoxError>>, Stop> {
    let mut frames = Vec::new();
    let out = &mut Outlet::Collect(&mut frames);
    pass_body(run, Direction::Response, body, first, out).await?;
    Ok(frames)
}

/// Where a body's frames go: the channel to the other side, or a list (a body passed at once).
pub(super) enum Outlet<'a> {
    Channel(&'a BodySender),
    Collect(&'a mut Vec<Result<Frame<Bytes>, BoxError>>),
}

impl Outlet<'_> {
    /// False when the receiver is gone.
    async fn send(&mut self, item: Result<Frame<Bytes>, BoxError>) -> bool {
        match self {
            Outlet::Channel(tx) => tx.send(item).await.is_ok(),
            Outlet::Collect(frames) => {
                frames.push(item);
                true
            }
        }
    }
}

/// The body's first frame if it is there now, without waiting (`None`: not yet).
pub(super) fn ready_frame<B: Body<Data = Bytes> + Unpin>(
    body: &mut B,
) -> Option<Option<Result<Frame<Bytes>, B::Error>>> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(body.frame()).as_mut().poll(&mut cx) {
        std::task::Poll::Pending => None,
        std::task::Poll::Ready(frame) => Some(frame),
    }
}

/// Passes one direction's body frames through the chain into `out`: data chunks, then the end
/// of the stream or the (plugin-edited) trailers. A failure of the sending side (the peer went
/// away mid-body) is passed on as an error frame, so the other side is aborted too. `first`:
/// a frame already taken from `body`, passed before the rest.
async fn pass_body<B>(
    run: &Chain,
    direction: Direction,
    (mut body, body_end): (B, BodyEnd),
    first_frame: Leftover<B::Error>,
    out: &mut Outlet<'_>,
) -> Result<(), Stop>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<crate::body::BoxError>,
{
    let mut first = true;
    let mut leftover: Leftover<B::Error> = first_frame;
    loop {
        let next = match leftover.take() {
            Some(frame) => Some(frame),
            None => body.frame().await,
        };
        match next {
            None => {
                if direction == Direction::Request {
                    run.cx.info.request_complete.store(true, Relaxed);
                }
                let rest = run.finish_body(direction).await?;
                send_data(out, rest).await;
                return Ok(());
            }
            Some(Err(e)) if direction == Direction::Request => {
                // The client's fault (bad framing, too slow) is answered as Envoy answers
                // it, not blamed on the upstream; a client gone mid-body aborts the upstream.
                if let Some(fault) = client_fault::found(&run.cx) {
                    return Err(client_fault::reply(fault, &run.cx, run.len()));
                }
                let _ = out.send(Err(e.into())).await;
                return Ok(());
            }
            Some(Err(e)) => {
                let _ = out.send(Err(e.into())).await;
                return Ok(());
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(mut data) => {
                    let counter = match direction {
                        Direction::Request => &run.cx.info.request_body_bytes,
                        Direction::Response => &run.cx.info.response_body_bytes,
                    };
                    let mut end = body_end == BodyEnd::WithLastData && body.is_end_stream();
                    if std::mem::take(&mut first) && run.headers_waited(direction) {
                        // While a plugin held the headers, Envoy buffered what arrived and
                        // hands it on as one chunk, with the end if that arrived too.
                        (end, leftover) = gather_ready(&mut body, &mut data);
                    }
                    counter.fetch_add(data.len() as u64, Relaxed);
                    if end && direction == Direction::Request {
                        run.cx.info.request_complete.store(true, Relaxed);
                    }
                    if let Some(chunk) = run.data(direction, 0, data, end).await?
                        && !send_data(out, chunk).await
                    {
                        return Ok(());
                    }
                    if end {
                        return Ok(());
                    }
                }
                Err(frame) => {
                    if direction == Direction::Request {
                        run.cx.info.request_complete.store(true, Relaxed);
                    }
                    if let Ok(trailers) = frame.into_trailers() {
                        let chunk = run
                            .trailers(direction, convert::trailers(&trailers))
                            .await?;
                        send_data(out, Bytes::from(chunk)).await;
                        let trailers = run.cx.exchange.trailers(direction);
                        if let Some(t) =
                            trailers.and_then(|t| convert::to_http_headers(&t, false).ok())
                        {
                            let _ = out.send(Ok(Frame::trailers(t))).await;
                        }
                    }
                    return Ok(());
                }
            },
        }
    }
}

/// What [`gather_ready`] found after the data it took.
pub(super) type Leftover<E> = Option<Result<http_body::Frame<bytes::Bytes>, E>>;

/// Appends to `data` the data frames `body` has ready now. Returns whether the body's end is
/// reached, and a frame that is not data (trailers, an error) for the caller to handle next.
fn gather_ready<B: Body<Data = Bytes> + Unpin>(
    body: &mut B,
    data: &mut Bytes,
) -> (bool, Leftover<B::Error>) {
    // Joined only if a second frame is there (a copy either way: the first is hyper's).
    let mut joined: Option<Vec<u8>> = None;
    let found = loop {
        if body.is_end_stream() {
            break (true, None);
        }
        match ready_frame(body) {
            None => break (false, None),
            Some(None) => break (true, None),
            Some(Some(Ok(frame))) => match frame.into_data() {
                Ok(bytes) => joined
                    .get_or_insert_with(|| data.to_vec())
                    .extend_from_slice(&bytes),
                Err(frame) => break (false, Some(Ok(frame))),
            },
            Some(Some(Err(e))) => break (false, Some(Err(e))),
        }
    };
    if let Some(joined) = joined {
        *data = Bytes::from(joined);
    }
    found
}

/// Sends a data frame; false when the receiver is gone.
async fn send_data(out: &mut Outlet<'_>, data: Bytes) -> bool {
    if data.is_empty() {
        return true;
    }
    out.send(Ok(Frame::data(data))).await
}
