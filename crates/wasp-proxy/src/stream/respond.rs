//! The response's way to the client: its headers through the chain (last filter first),
//! then its body, whole or streamed.

use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use http::Response;
use http_body::{Body, Frame};
use hyper::body::Incoming;
use wasp_host::HeaderMap;

use crate::body::ChannelBody;
use crate::convert;
use crate::filter::Stop;
use crate::filter::chain::Chain;
use crate::filter::signals::Direction;

use super::left::{failed_body, settle_length, whole_body};
use super::pump::{BodyEnd, pass_whole_response, pump_response, ready_frame};

/// Where the response body comes from.
pub(super) enum Source {
    Upstream(Incoming, BodyEnd),
    Full(Vec<u8>),
}

/// The response phase: headers through the chain (last plugin first), then the body: passed
/// through the chain at once when all of it is here already (the common small response),
/// else streamed on in a task of its own that owns the stream until its last byte.
pub(super) async fn respond(
    run: &Rc<Chain>,
    headers: HeaderMap,
    source: Source,
) -> Result<Response<ChannelBody>, Stop> {
    let end_of_stream = match &source {
        Source::Upstream(body, _) => body.is_end_stream(),
        Source::Full(bytes) => bytes.is_empty(),
    };
    run.cx.exchange.set_response_headers(headers);
    run.headers(Direction::Response, end_of_stream)
        .await
        .map_err(Stop::direct)?;
    let (mut upstream, body_end) = match source {
        Source::Upstream(upstream, body_end) => (upstream, body_end),
        Source::Full(bytes) => return respond_full(run, bytes, end_of_stream).await,
    };
    let mut headers = run.cx.exchange.headers(Direction::Response);
    if run.len() == 0 {
        // No filter sees the body: it goes to the client as it arrives.
        run.cx.exchange.mark_sent(Direction::Response);
        let body = passthrough(upstream, end_of_stream);
        return convert::downstream_response(&headers, body)
            .map_err(|e| Stop::proxy(500, "invalid_response_headers", &e.to_string(), 0));
    }
    let whole_body_wanted = !end_of_stream && run.wants_whole_body(Direction::Response);
    let has_length = headers.get(b"content-length").is_some();
    // What hyper has of the body now: a small body usually came with the headers.
    let first = if end_of_stream || whole_body_wanted || !has_length {
        None
    } else {
        ready_frame(&mut upstream)
    };
    if let Some(Some(Ok(frame))) = &first
        && frame.is_data()
        && upstream.is_end_stream()
    {
        // All of it is here: through the chain now, and out with its real length (as
        // `settle_length` would find it), without a task and a channel for the stream.
        let frames = pass_whole_response(run, (upstream, body_end), first.flatten())
            .await
            .map_err(|_| passed_stop(run))?;
        let body = settled(run, &mut headers, frames)?;
        run.cx.exchange.mark_sent(Direction::Response);
        return convert::downstream_response(&headers, body).map_err(|e| invalid_headers(run, &e));
    }
    let (tx, mut body) = ChannelBody::channel();
    tokio::task::spawn_local(pump_response(
        run.clone(),
        (upstream, body_end),
        first.flatten(),
        tx,
        end_of_stream,
    ));
    if whole_body_wanted {
        // A Lua filter holds the response headers until it has the whole body.
        let (len, whole) = whole_body(run, body).await.map_err(Stop::direct)?;
        body = whole;
        headers = run.cx.exchange.headers(Direction::Response);
        headers.replace(b"content-length", len.to_string().as_bytes());
    } else if !end_of_stream && has_length {
        // As for requests: a whole body that left the chain goes out with its real length.
        body = settle_length(run, &mut headers, body)
            .await
            .map_err(Stop::direct)?;
    }
    run.cx.exchange.mark_sent(Direction::Response);
    convert::downstream_response(&headers, body).map_err(|e| invalid_headers(run, &e))
}

/// The upstream's body as it arrives, with what hyper has of it already in front: hyper
/// then writes the response head and that first data in one `writev`, where a body still to
/// be polled made it flush the head alone first (a second write per response).
fn passthrough(mut upstream: Incoming, end_of_stream: bool) -> ChannelBody {
    if end_of_stream {
        return ChannelBody::passthrough(upstream);
    }
    match ready_frame(&mut upstream) {
        None => ChannelBody::passthrough(upstream),
        Some(None) => ChannelBody::frames(Vec::new()),
        Some(Some(Ok(frame))) if frame.is_data() && upstream.is_end_stream() => {
            ChannelBody::full(frame.into_data().unwrap_or_default())
        }
        Some(Some(Ok(frame))) => ChannelBody::passthrough(upstream).ahead_of(frame),
        Some(Some(Err(e))) => ChannelBody::failed(e.into()),
    }
}

/// A stop in the response body phase, as `settle_length` answers it — in Envoy the headers
/// are gone by then (wasp held them only to send the body's real length), so it is sent as
/// it is.
fn passed_stop(run: &Chain) -> Stop {
    failed_body(run).direct()
}

/// The frames that left the chain as the client's body: data only (the usual case) makes a
/// whole body with its real length; anything else (trailers a plugin added, an error) goes
/// as it came.
fn settled(
    run: &Chain,
    headers: &mut HeaderMap,
    frames: Vec<Result<Frame<Bytes>, crate::body::BoxError>>,
) -> Result<ChannelBody, Stop> {
    if frames.iter().any(Result::is_err) {
        return Err(passed_stop(run));
    }
    let mut frames: Vec<Frame<Bytes>> = frames.into_iter().flatten().collect();
    if !frames.iter().all(Frame::is_data) {
        return Ok(ChannelBody::frames(frames));
    }
    // Usually one chunk left the chain, passed on as it is; more are joined.
    let whole = match frames.len() {
        1 => frames
            .pop()
            .and_then(|f| f.into_data().ok())
            .unwrap_or_default(),
        _ => frames
            .into_iter()
            .filter_map(|f| f.into_data().ok())
            .flatten()
            .collect(),
    };
    headers.replace(b"content-length", whole.len().to_string().as_bytes());
    Ok(ChannelBody::full(whole))
}

/// The chain left response headers HTTP cannot carry (a plugin added a header named
/// `{"a":1}`, say): 500, sent as it is — the plugins' response phase is over, and running it
/// again would show them a second set of response headers, which never happens in Envoy.
fn invalid_headers(run: &Chain, e: &convert::ConvertError) -> Stop {
    tracing::warn!("the plugins left response headers that cannot be sent: {e}");
    Stop::proxy(500, "invalid_response_headers", &e.to_string(), run.len()).direct()
}

/// A body known in full (a direct response) goes through the chain before anything is sent,
/// so the client gets it with its exact length, as from Envoy.
async fn respond_full(
    run: &Rc<Chain>,
    bytes: Vec<u8>,
    end_of_stream: bool,
) -> Result<Response<ChannelBody>, Stop> {
    run.cx
        .info
        .response_body_bytes
        .store(bytes.len() as u64, Relaxed);
    run.cx.info.set_code_details("direct_response");
    let body = match end_of_stream {
        true => Bytes::new(),
        false => run
            .data(Direction::Response, 0, bytes.into(), true)
            .await?
            .unwrap_or_default(),
    };
    let mut headers = run.cx.exchange.send_headers(Direction::Response);
    headers.remove(b"content-length");
    convert::downstream_response(&headers, ChannelBody::full(body))
        .map_err(|e| invalid_headers(run, &e))
}
