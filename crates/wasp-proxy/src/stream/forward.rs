//! The request's way upstream: routing after the request headers phase, the request body
//! pumped through the chain, and the exchange with the upstream.

use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use http::Response;
use hyper::body::Incoming;
use wasp_host::HeaderMap;

use crate::body::ChannelBody;
use crate::convert;
use crate::filter::chain::Chain;
use crate::filter::signals::Direction;
use crate::filter::{Stop, stop_for};
use crate::stream::routes::{Listener, Target};
use crate::upstream::UpstreamError;

use super::left::{settle_length, whole_body};
use super::pump::{BodyEnd, pump_request};
use super::respond::{Source, respond};

pub(super) async fn forward(
    run: &Rc<Chain>,
    listener: &Listener,
    body: (Incoming, BodyEnd),
    end_of_stream: bool,
) -> Result<Response<ChannelBody>, Stop> {
    let n = run.len();
    run.headers(Direction::Request, end_of_stream).await?;
    let headers = run.cx.exchange.headers(Direction::Request);
    let (cluster, timeout) = match listener.route(&headers) {
        None => return Err(Stop::proxy(404, "route_not_found", "", n)),
        Some(Target::Direct { status, body }) => {
            let mut response = HeaderMap::from_pairs([(":status", status.to_string().as_str())]);
            if !body.is_empty() {
                response.add(b"content-type", b"text/plain");
            }
            return respond(run, response, Source::Full(body.as_bytes().to_vec())).await;
        }
        Some(Target::Cluster { id: None, .. }) => {
            return Err(Stop::proxy(503, "cluster_not_found", "", n));
        }
        Some(Target::Cluster {
            id: Some(id),
            timeout,
            ..
        }) => (id, timeout),
    };
    let cx = &run.cx;
    let picked = cx
        .upstreams
        .pick(cluster)
        .ok_or_else(|| Stop::proxy(503, "cluster_not_found", "", n))?;
    let (endpoint, scheme) = (picked.endpoint.clone(), picked.scheme);
    *cx.info
        .upstream
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(picked);

    let holding = run.wants_whole_body(Direction::Request);
    if !holding {
        cx.exchange.mark_sent(Direction::Request);
    }
    let mut headers = headers;
    let upstream_body = if end_of_stream {
        ChannelBody::empty()
    } else if n == 0 {
        // No filter sees the body: it goes upstream as it arrives.
        ChannelBody::passthrough(body.0)
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
    let request = convert::upstream_request(&headers, upstream_body, scheme, Some(&endpoint))
        .map_err(|e| Stop::proxy(400, "invalid_request_headers", &e.to_string(), n))?;

    let stats = &cx.shared.stats;
    stats.upstream_requests.fetch_add(1, Relaxed);
    let started = Instant::now();
    let response = tokio::select! {
        r = cx.upstreams.send(cluster, request, timeout) => r,
        i = cx.signals.interrupted() => return Err(stop_for(i)),
    };
    let response = match response {
        Ok(r) => r,
        Err(UpstreamError::Timeout) => {
            stats.upstream_timeouts.fetch_add(1, Relaxed);
            return Err(Stop::proxy(
                504,
                "upstream_response_timeout",
                "upstream request timeout",
                n,
            ));
        }
        Err(e) => {
            stats.upstream_errors.fetch_add(1, Relaxed);
            return Err(Stop::proxy(
                503,
                "upstream_reset_before_response_started",
                &e.to_string(),
                n,
            ));
        }
    };
    stats
        .upstream_latency
        .record(started.elapsed().as_micros() as u64);
    let body_end = BodyEnd::of(response.version());
    let (parts, body) = response.into_parts();
    let headers = convert::response_headers(&Response::from_parts(parts, ()));
    cx.info.set_code_details("via_upstream");
    respond(run, headers, Source::Upstream(body, body_end)).await
}
