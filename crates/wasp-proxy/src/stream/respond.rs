//! The response's way to the client: its headers through the chain (last filter first),
//! then its body, whole or streamed.

use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;

use http::Response;
use http_body::Body;
use hyper::body::Incoming;
use wasp_host::HeaderMap;

use crate::body::ChannelBody;
use crate::convert;
use crate::filter::Stop;
use crate::filter::chain::Chain;
use crate::filter::signals::Direction;

use super::left::{settle_length, whole_body};
use super::pump::{BodyEnd, pump_response};

/// Where the response body comes from.
pub(super) enum Source {
    Upstream(Incoming, BodyEnd),
    Full(Vec<u8>),
}

/// The response phase: headers through the chain (last plugin first), then the body streams
/// on in a task of its own that owns the stream until its last byte.
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
    let (upstream, body_end) = match source {
        Source::Upstream(upstream, body_end) => (upstream, body_end),
        Source::Full(bytes) => return respond_full(run, bytes, end_of_stream).await,
    };
    let mut headers = run.cx.exchange.headers(Direction::Response);
    if run.len() == 0 {
        // No filter sees the body: it goes to the client as it arrives.
        run.cx.exchange.mark_sent(Direction::Response);
        return convert::downstream_response(&headers, ChannelBody::passthrough(upstream))
            .map_err(|e| Stop::proxy(500, "invalid_response_headers", &e.to_string(), 0));
    }
    let (tx, mut body) = ChannelBody::channel();
    tokio::task::spawn_local(pump_response(
        run.clone(),
        (upstream, body_end),
        tx,
        end_of_stream,
    ));
    if !end_of_stream && run.wants_whole_body(Direction::Response) {
        // A Lua filter holds the response headers until it has the whole body.
        let (len, whole) = whole_body(run, body).await.map_err(Stop::direct)?;
        body = whole;
        headers = run.cx.exchange.headers(Direction::Response);
        headers.replace(b"content-length", len.to_string().as_bytes());
    } else if !end_of_stream && run.len() > 0 && headers.get(b"content-length").is_some() {
        // As for requests: a whole body that left the chain goes out with its real length.
        body = settle_length(run, &mut headers, body)
            .await
            .map_err(Stop::direct)?;
    }
    run.cx.exchange.mark_sent(Direction::Response);
    convert::downstream_response(&headers, body).map_err(|e| invalid_headers(run, &e))
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
        true => Vec::new(),
        false => run
            .data(Direction::Response, 0, bytes, true)
            .await?
            .unwrap_or_default(),
    };
    let mut headers = run.cx.exchange.send_headers(Direction::Response);
    headers.remove(b"content-length");
    convert::downstream_response(&headers, ChannelBody::full(body))
        .map_err(|e| invalid_headers(run, &e))
}
