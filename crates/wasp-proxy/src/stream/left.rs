//! What left the filter chain, read before headers leave: the whole body when there is one
//! (for its real length), or the frames to put back.

use std::rc::Rc;

use wasp_host::HeaderMap;

use crate::body::ChannelBody;
use crate::filter::chain::Chain;
use crate::filter::{Stop, stop_for};

/// Plugins may change the length of a body after its headers passed them (appending, say),
/// and the connection enforces the content-length it is given: a stale one would cut or
/// stall the body. So before headers leave (upstream for a request, to the client for a
/// response), the proxy looks at what left the chain: when that is the whole body (a small
/// body, or one a plugin buffered), its real length is sent. A body still streaming keeps
/// its length, as in Envoy, where a plugin that changes the length of a streamed body
/// removes the header itself. (Envoy sends the stale length of a buffered body too; see
/// docs/compatibility.md.)
pub(super) async fn settle_length(
    run: &Rc<Chain>,
    headers: &mut HeaderMap,
    mut body: ChannelBody,
) -> Result<ChannelBody, Stop> {
    let mut frames = Vec::new();
    while let Some(frame) = next_frame(run, &mut body).await? {
        let data = frame.is_data();
        frames.push(frame);
        if !data || frames.len() > 1 {
            body.put_back(frames);
            return Ok(body);
        }
    }
    let whole = frames
        .pop()
        .and_then(|f| f.into_data().ok())
        .unwrap_or_default();
    headers.replace(b"content-length", whole.len().to_string().as_bytes());
    Ok(ChannelBody::full(whole))
}

/// The next frame that left the chain; `None` at its end.
async fn next_frame(
    run: &Chain,
    body: &mut ChannelBody,
) -> Result<Option<http_body::Frame<bytes::Bytes>>, Stop> {
    let next = tokio::select! {
        next = body.recv() => next,
        i = run.cx.signals.interrupted() => return Err(stop_for(i)),
    };
    match next {
        None => Ok(None),
        Some(Err(_)) => Err(failed_body(run)),
        Some(Ok(frame)) => Ok(Some(frame)),
    }
}

/// How a body that failed on its way through the chain ends the stream: the peer went away
/// mid-body, or a plugin stopped it (which raises a signal first: its reply or reset wins).
pub(super) fn failed_body(run: &Chain) -> Stop {
    run.cx.signals.interrupt().map_or(Stop::Reset, stop_for)
}

/// The whole body that left the chain (and its trailers), with its length.
pub(super) async fn whole_body(
    run: &Rc<Chain>,
    mut body: ChannelBody,
) -> Result<(usize, ChannelBody), Stop> {
    let mut data = Vec::new();
    let mut trailers = None;
    while let Some(frame) = next_frame(run, &mut body).await? {
        match frame.into_data() {
            Ok(bytes) => data.extend_from_slice(&bytes),
            Err(frame) => trailers = frame.into_trailers().ok(),
        }
    }
    let len = data.len();
    let mut out = ChannelBody::full(data);
    if let Some(t) = trailers {
        out = out.with_trailers(t);
    }
    Ok((len, out))
}
