//! The request's way upstream: routing after the request headers phase, the request body
//! pumped through the chain, and the exchange with the upstream (`attempts.rs`).

use std::rc::Rc;

use http::Response;
use wasp_host::HeaderMap;

use crate::body::ChannelBody;
use crate::convert;
use crate::filter::Stop;
use crate::filter::chain::Chain;
use crate::filter::signals::Direction;
use crate::flags;
use crate::routes::{Listener, Target};

use super::attempts::{self, Replay, Route};
use super::left::{settle_length, whole_body};
use super::pump::{BodyEnd, pump_request};
use super::respond::{Source, respond};
use crate::body::client::ClientBody;

pub(super) async fn forward(
    run: &Rc<Chain>,
    listener: &Listener,
    body: (ClientBody, BodyEnd),
    end_of_stream: bool,
) -> Result<Response<ChannelBody>, Stop> {
    let n = run.len();
    run.headers(Direction::Request, end_of_stream).await?;
    let headers = run.cx.exchange.headers(Direction::Request);
    let (cluster, timeout, retry, hash_header) = match listener.route(&headers) {
        None => {
            run.cx.info.add_flags(flags::NO_ROUTE_FOUND);
            return Err(Stop::proxy(404, "route_not_found", "", n));
        }
        Some(Target::Direct { status, body }) => {
            let mut response = HeaderMap::from_pairs([(":status", status.to_string().as_str())]);
            if !body.is_empty() {
                response.add(b"content-type", b"text/plain");
            }
            return respond(run, response, Source::Full(body.as_bytes().to_vec())).await;
        }
        Some(Target::Cluster { id: None, .. }) => {
            run.cx.info.add_flags(flags::NO_CLUSTER_FOUND);
            return Err(Stop::proxy(503, "cluster_not_found", "", n));
        }
        Some(Target::Cluster {
            id: Some(id),
            timeout,
            retry,
            hash_header,
        }) => (id, timeout, retry, hash_header),
    };
    let cx = &run.cx;
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);

    let holding = run.wants_whole_body(Direction::Request);
    if !holding {
        cx.exchange.mark_sent(Direction::Request);
    }
    let mut headers = headers;
    let upstream_body = if end_of_stream {
        ChannelBody::empty()
    } else if n == 0 {
        // No filter sees the body: it goes upstream as it arrives (counted on its way, for
        // `request.size` and the access log).
        let info = cx.info.clone();
        ChannelBody::from_client(body.0).on_end(Box::new(move |received| {
            info.request_body_bytes
                .store(received, std::sync::atomic::Ordering::Relaxed);
        }))
    } else {
        let (tx, upstream_body) = ChannelBody::channel();
        tokio::task::spawn_local(pump_request(run.clone(), body, tx));
        if holding {
            // A Lua filter holds the headers until it has the whole body: they leave with it,
            // as the script left them.
            let body = whole_body(run, upstream_body).await?;
            headers = cx.exchange.send_headers(Direction::Request);
            headers.replace(b"content-length", body.0.to_string().as_bytes());
            body.1
        } else if n > 0 && headers.get(b"content-length").is_some() {
            settle_length(run, &mut headers, upstream_body).await?
        } else {
            upstream_body
        }
    };
    // A body that may be sent again is kept (up to the buffer limit) before the first try.
    // Only a body of known length that fits the buffer limit is read before the first try: a
    // streamed one (gRPC streams, chunked uploads) may wait for the response before it ends,
    // so it goes upstream as it comes, once, without retries.
    let limit = cx.buffer_limit;
    let fits = || {
        headers
            .get_str("content-length")
            .and_then(|l| l.parse::<usize>().ok())
            .is_some_and(|l| l <= limit)
    };
    let replay = match (retry.is_some(), end_of_stream) {
        (true, true) => Replay::Whole(Vec::new(), None),
        (true, false) if fits() => Replay::keep(run, upstream_body, limit).await?,
        _ => Replay::Once(Some(upstream_body)),
    };
    let route = Route {
        cluster,
        timeout,
        retry,
        hash_header,
    };
    let response = attempts::send(run, &route, &headers, replay).await?;
    let body_end = BodyEnd::of(response.version());
    let (parts, body) = response.into_parts();
    let headers = convert::response_headers(&Response::from_parts(parts, ()));
    cx.info.set_code_details("via_upstream");
    let response = respond(run, headers, Source::Upstream(body, body_end)).await?;
    // The route's timeout covers the response body too.
    Ok(match deadline {
        Some(deadline) => response.map(|body| body.with_deadline(deadline)),
        None => response,
    })
}
