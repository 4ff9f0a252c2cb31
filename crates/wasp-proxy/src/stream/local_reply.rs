//! Local replies: a response the proxy or a filter makes, encoded through the filters that
//! saw the request, as Envoy's.

use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;

use http::Response;
use wasp_host::HeaderMap;

use crate::body::{BoxError, ChannelBody};
use crate::convert;
use crate::filter::Stop;
use crate::filter::chain::Chain;
use crate::filter::signals::Direction;

/// Answers the stream locally.
pub(super) fn reply(run: &Rc<Chain>, stop: Stop) -> Result<Response<ChannelBody>, BoxError> {
    let (local, position) = match stop {
        Stop::Reset => return Err("stream reset by a plugin".into()),
        Stop::Reply { response, position } => (response, Some(position)),
        Stop::Direct(response) => (response, None),
    };
    run.cx.shared.stats.local_replies.fetch_add(1, Relaxed);
    // As given: a plugin's local reply without details has empty details in Envoy too.
    run.cx.info.set_code_details(&local.details);
    run.cx
        .info
        .response_body_bytes
        .store(local.body.len() as u64, Relaxed);
    // Envoy's local reply: the status, the body's length, `content-type: text/plain` when
    // there is a body, then the headers the plugin (or the proxy) gave.
    let mut headers = HeaderMap::from_pairs([(":status", local.status.to_string().as_str())]);
    if local.grpc_status.is_none() && !local.body.is_empty() {
        headers.add(b"content-length", local.body.len().to_string().as_bytes());
        if local.headers.get(b"content-type").is_none() {
            headers.add(b"content-type", b"text/plain");
        }
    }
    for (k, v) in local.headers.iter() {
        headers.add(k, v);
    }
    if let Some(grpc) = local.grpc_status {
        headers.replace(b"content-type", b"application/grpc");
        headers.replace(b"grpc-status", grpc.to_string().as_bytes());
        if !local.body.is_empty() {
            headers.replace(b"grpc-message", &local.body);
        }
    }
    let body = if local.grpc_status.is_some() {
        Vec::new()
    } else {
        local.body
    };
    let has_body = !body.is_empty();
    run.cx.exchange.set_response_headers(headers);
    run.cx.exchange.set_body(Direction::Response, body);
    if let Some(position) = position {
        run.encode_local_reply(position, has_body);
    }
    let mut headers = run.cx.exchange.send_headers(Direction::Response);
    let body = run.cx.exchange.take_body(Direction::Response);
    // The length is the body's own; a stale header would corrupt the response.
    headers.remove(b"content-length");
    let mut response = convert::downstream_response(&headers, ChannelBody::full(body))?;
    // Answering an HTTP/1 request whose body was not read to its end: the connection cannot
    // be reused, and Envoy says so (hyper then closes it after the response).
    if run.cx.info.protocol != "HTTP/2" && !run.cx.info.request_complete.load(Relaxed) {
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    Ok(response)
}
