//! One request from arrival to the last response byte: forwarding headers, the plugin chain,
//! routing, the upstream exchange, and local replies.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response, Version};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use wasp_host::{HeaderMap, HttpStream};

use crate::body::{BodySender, BoxError, ChannelBody};
use crate::chain::{Stop, StreamRun};
use crate::convert;
use crate::properties::{ConnInfo, StreamInfo};
use crate::routes::Listener;
use crate::signals::Direction;
use crate::spec::RouteAction;
use crate::upstream::UpstreamError;
use crate::worker::Worker;

/// Serves one request. An `Err` resets the stream (HTTP/2) or closes the connection (HTTP/1).
pub(crate) async fn handle(
    worker: Rc<Worker>,
    listener: Rc<Listener>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Result<Response<ChannelBody>, BoxError> {
    let shared = worker.shared.clone();
    shared.stats.downstream_requests.fetch_add(1, Relaxed);
    let scheme = if conn.tls.is_some() { "https" } else { "http" };
    let protocol = match req.version() {
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let body_end = BodyEnd::of(req.version());
    let (parts, body) = req.into_parts();
    let mut headers = convert::request_headers(&Request::from_parts(parts, ()), scheme);
    // Envoy adds these before the filter chain runs, so plugins read them.
    // In Envoy's order: x-forwarded-proto, then x-request-id.
    headers.replace(b"x-forwarded-proto", scheme.as_bytes());
    if headers.get(b"x-request-id").is_none() {
        headers.add(b"x-request-id", request_id().as_bytes());
    }
    let end_of_stream = body.is_end_stream();
    // The plugin set current now serves this stream to its end, whatever is published
    // meanwhile.
    let vms = worker.vms();
    let chain = vms.chain(listener.index);
    let info = Arc::new(StreamInfo::new(conn, protocol));
    // Envoy picks the route before the filters run; plugins read it as xds.cluster_name.
    // Without plugins nobody asks, and the route is looked up once, after the chain.
    if !chain.is_empty()
        && let Some(RouteAction::Cluster { name, .. }) = listener.route(&headers)
    {
        *info.route_cluster.lock().unwrap_or_else(|e| e.into_inner()) = Some(name.clone());
    }
    info.request_complete.store(end_of_stream, Relaxed);
    let stream = HttpStream::shared(headers);
    stream.lock().unwrap_or_else(|e| e.into_inner()).properties = Some(info.clone());
    let run = Rc::new(StreamRun::new(worker, vms, chain, stream, info));
    let result = match forward(&run, &listener, (body, body_end), end_of_stream).await {
        Ok(response) => Ok(response),
        Err(stop) => reply(&run, stop),
    };
    if let Ok(response) = &result {
        shared.stats.response(response.status().as_u16());
    }
    result
}

/// A version 4 UUID, as Envoy generates for `x-request-id`.
/// A UUID v4 from a per-thread generator seeded once from the OS: a request id needs to be
/// unique, not secret, and a getrandom syscall per request showed in profiles.
fn request_id() -> String {
    thread_local! {
        static STATE: std::cell::Cell<(u64, u64)> = std::cell::Cell::new({
            let mut seed = [0u8; 16];
            let _ = getrandom::fill(&mut seed);
            let a = u64::from_le_bytes(seed[..8].try_into().unwrap_or_default()) | 1;
            let b = u64::from_le_bytes(seed[8..].try_into().unwrap_or_default()) | 1;
            (a, b)
        });
    }
    // xorshift128+
    let next = || {
        STATE.with(|s| {
            let (mut x, y) = s.get();
            x ^= x << 23;
            x ^= x >> 17;
            x ^= y ^ (y >> 26);
            s.set((y, x));
            x.wrapping_add(y)
        })
    };
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&next().to_le_bytes());
    b[8..].copy_from_slice(&next().to_le_bytes());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

async fn forward(
    run: &Rc<StreamRun>,
    listener: &Listener,
    body: (Incoming, BodyEnd),
    end_of_stream: bool,
) -> Result<Response<ChannelBody>, Stop> {
    let n = run.len();
    run.headers(Direction::Request, end_of_stream).await?;
    let headers = run
        .stream
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .request_headers
        .clone()
        .unwrap_or_default();
    let (cluster, timeout) = match listener.route(&headers) {
        None => return Err(Stop::proxy(404, "route_not_found", "", n)),
        Some(RouteAction::Direct { status, body }) => {
            let mut response = HeaderMap::from_pairs([(":status", status.to_string().as_str())]);
            if !body.is_empty() {
                response.add(b"content-type", b"text/plain");
            }
            return respond(run, response, Source::Full(body.clone().into_bytes())).await;
        }
        Some(RouteAction::Cluster { name, timeout }) => (name.clone(), *timeout),
    };
    let worker = &run.worker;
    let (endpoint, scheme) = worker
        .upstreams
        .pick(&cluster)
        .map_err(|_| Stop::proxy(503, "cluster_not_found", "", n))?;
    *run.info.upstream.lock().unwrap_or_else(|e| e.into_inner()) =
        Some((cluster.clone(), endpoint.clone()));

    let holding = run.wants_whole_body(Direction::Request);
    if !holding {
        run.stream
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .request_headers_sent = true;
    }
    let mut headers = headers;
    let upstream_body = if end_of_stream {
        ChannelBody::empty()
    } else {
        let (tx, upstream_body) = ChannelBody::channel();
        tokio::task::spawn_local(pump_request(run.clone(), body, tx));
        if holding {
            // A Lua filter holds the headers until it has the whole body: they leave with it,
            // as the script left them.
            let body = whole_body(run, upstream_body).await?;
            let mut s = run.stream.lock().unwrap_or_else(|e| e.into_inner());
            s.request_headers_sent = true;
            headers = s.request_headers.clone().unwrap_or_default();
            drop(s);
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

    let stats = &worker.shared.stats;
    stats.upstream_requests.fetch_add(1, Relaxed);
    let started = Instant::now();
    let response = tokio::select! {
        r = worker.upstreams.send(&cluster, request, timeout) => r,
        i = run.signals.interrupted() => return Err(stop_for(i)),
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
    run.info.set_code_details("via_upstream");
    respond(run, headers, Source::Upstream(body, body_end)).await
}

/// Plugins may change the length of a body after its headers passed them (appending, say),
/// and the connection enforces the content-length it is given: a stale one would cut or
/// stall the body. So before headers leave (upstream for a request, to the client for a
/// response), the proxy looks at what left the chain: when that is the whole body (a small
/// body, or one a plugin buffered), its real length is sent. A body still streaming keeps
/// its length, as in Envoy, where a plugin that changes the length of a streamed body
/// removes the header itself. (Envoy sends the stale length of a buffered body too; see
/// docs/compatibility.md.)
async fn settle_length(
    run: &Rc<StreamRun>,
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
    run: &StreamRun,
    body: &mut ChannelBody,
) -> Result<Option<http_body::Frame<bytes::Bytes>>, Stop> {
    let next = tokio::select! {
        next = body.recv() => next,
        i = run.signals.interrupted() => return Err(stop_for(i)),
    };
    match next {
        None => Ok(None),
        // The peer went away mid-body; a plugin's stop also raises a signal first.
        Some(Err(_)) => Err(run.signals.interrupt().map_or(Stop::Reset, stop_for)),
        Some(Ok(frame)) => Ok(Some(frame)),
    }
}

/// The whole body that left the chain (and its trailers), with its length.
async fn whole_body(
    run: &Rc<StreamRun>,
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

fn stop_for(interrupt: crate::signals::Interrupt) -> Stop {
    match interrupt {
        crate::signals::Interrupt::Reset => Stop::Reset,
        crate::signals::Interrupt::LocalReply(position, response) => {
            Stop::Reply { response, position }
        }
    }
}

/// Where the response body comes from.
enum Source {
    Upstream(Incoming, BodyEnd),
    Full(Vec<u8>),
}

/// How the end of a body reaches the plugins, which follows the transport as in Envoy: its
/// HTTP/1 codec delivers the last data with `end_of_stream = false` and then the end as a
/// callback of its own with no data (whether the length came from `content-length` or
/// chunking); its HTTP/2 codec marks the DATA frame that carries END_STREAM.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyEnd {
    OwnCallback,
    WithLastData,
}

impl BodyEnd {
    fn of(version: Version) -> BodyEnd {
        match version {
            Version::HTTP_2 | Version::HTTP_3 => BodyEnd::WithLastData,
            _ => BodyEnd::OwnCallback,
        }
    }
}

/// The response phase: headers through the chain (last plugin first), then the body streams
/// on in a task of its own that owns the stream until its last byte.
async fn respond(
    run: &Rc<StreamRun>,
    headers: HeaderMap,
    source: Source,
) -> Result<Response<ChannelBody>, Stop> {
    let end_of_stream = match &source {
        Source::Upstream(body, _) => body.is_end_stream(),
        Source::Full(bytes) => bytes.is_empty(),
    };
    run.stream
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .response_headers = Some(headers);
    run.headers(Direction::Response, end_of_stream)
        .await
        .map_err(Stop::direct)?;
    // A body known in full (a direct response) goes through the chain before anything is
    // sent, so the client gets it with its exact length, as from Envoy.
    if let Source::Full(bytes) = source {
        run.info
            .response_body_bytes
            .store(bytes.len() as u64, Relaxed);
        run.info.set_code_details("direct_response");
        let body = match end_of_stream {
            true => Vec::new(),
            false => run
                .data(Direction::Response, 0, bytes, true)
                .await?
                .unwrap_or_default(),
        };
        let mut headers = {
            let mut s = run.stream.lock().unwrap_or_else(|e| e.into_inner());
            s.response_headers_sent = true;
            s.response_headers.clone().unwrap_or_default()
        };
        headers.remove(b"content-length");
        return convert::downstream_response(&headers, ChannelBody::full(body))
            .map_err(|e| Stop::proxy(500, "invalid_response_headers", &e.to_string(), run.len()));
    }
    let mut headers = run
        .stream
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .response_headers
        .clone()
        .unwrap_or_default();
    let (tx, mut body) = ChannelBody::channel();
    if let Source::Upstream(upstream, body_end) = source {
        tokio::task::spawn_local(pump_response(
            run.clone(),
            (upstream, body_end),
            tx,
            end_of_stream,
        ));
    }
    if !end_of_stream && run.wants_whole_body(Direction::Response) {
        // A Lua filter holds the response headers until it has the whole body.
        let (len, whole) = whole_body(run, body).await.map_err(Stop::direct)?;
        body = whole;
        headers = run
            .stream
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .response_headers
            .clone()
            .unwrap_or_default();
        headers.replace(b"content-length", len.to_string().as_bytes());
    } else if !end_of_stream && run.len() > 0 && headers.get(b"content-length").is_some() {
        // As for requests: a whole body that left the chain goes out with its real length.
        body = settle_length(run, &mut headers, body)
            .await
            .map_err(Stop::direct)?;
    }
    run.stream
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .response_headers_sent = true;
    convert::downstream_response(&headers, body)
        .map_err(|e| Stop::proxy(500, "invalid_response_headers", &e.to_string(), run.len()))
}

/// Streams the request body from the client through the chain to the upstream.
async fn pump_request(run: Rc<StreamRun>, body: (Incoming, BodyEnd), tx: BodySender) {
    if let Err(stop) = pass_body(&run, Direction::Request, body, &tx).await {
        // Tell the main task (waiting for the upstream) and abort the upstream body.
        match stop {
            Stop::Reset => run.signals.reset(),
            Stop::Reply { response, position } => run.signals.local_reply(position, response),
            // Not made in the request phase.
            Stop::Direct(_) => run.signals.reset(),
        }
        let _ = tx.send(Err("request stopped by a plugin".into())).await;
    }
}

/// Streams the response body from the upstream through the chain to the client. Owns the
/// stream: when it ends (or the client goes away), the plugins' contexts end.
async fn pump_response(
    run: Rc<StreamRun>,
    body: (Incoming, BodyEnd),
    tx: BodySender,
    end_of_stream: bool,
) {
    if end_of_stream {
        return;
    }
    if pass_body(&run, Direction::Response, body, &tx)
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

/// Passes one direction's body frames through the chain into `tx`: data chunks, then the end
/// of the stream or the (plugin-edited) trailers. A failure of the sending side (the peer went
/// away mid-body) is passed on as an error frame, so the other side is aborted too.
async fn pass_body(
    run: &StreamRun,
    direction: Direction,
    (mut body, body_end): (Incoming, BodyEnd),
    tx: &BodySender,
) -> Result<(), Stop> {
    let mut first = true;
    let mut leftover: Leftover = None;
    loop {
        let next = match leftover.take() {
            Some(frame) => Some(frame),
            None => body.frame().await,
        };
        match next {
            None => {
                if direction == Direction::Request {
                    run.info.request_complete.store(true, Relaxed);
                }
                let rest = run.finish_body(direction).await?;
                send_data(tx, rest).await;
                return Ok(());
            }
            Some(Err(e)) => {
                let _ = tx.send(Err(Box::new(e))).await;
                return Ok(());
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    let counter = match direction {
                        Direction::Request => &run.info.request_body_bytes,
                        Direction::Response => &run.info.response_body_bytes,
                    };
                    let mut data = data.to_vec();
                    let mut end = body_end == BodyEnd::WithLastData && body.is_end_stream();
                    if std::mem::take(&mut first) && run.headers_waited(direction) {
                        // While a plugin held the headers, Envoy buffered what arrived and
                        // hands it on as one chunk, with the end if that arrived too.
                        (end, leftover) = gather_ready(&mut body, &mut data);
                    }
                    counter.fetch_add(data.len() as u64, Relaxed);
                    if end && direction == Direction::Request {
                        run.info.request_complete.store(true, Relaxed);
                    }
                    if let Some(out) = run.data(direction, 0, data, end).await?
                        && !send_data(tx, out).await
                    {
                        return Ok(());
                    }
                    if end {
                        return Ok(());
                    }
                }
                Err(frame) => {
                    if direction == Direction::Request {
                        run.info.request_complete.store(true, Relaxed);
                    }
                    if let Ok(trailers) = frame.into_trailers() {
                        let out = run
                            .trailers(direction, convert::trailers(&trailers))
                            .await?;
                        send_data(tx, out).await;
                        let trailers = {
                            let s = run.stream.lock().unwrap_or_else(|e| e.into_inner());
                            match direction {
                                Direction::Request => s.request_trailers.clone(),
                                Direction::Response => s.response_trailers.clone(),
                            }
                        };
                        if let Some(t) =
                            trailers.and_then(|t| convert::to_http_headers(&t, false).ok())
                        {
                            let _ = tx.send(Ok(Frame::trailers(t))).await;
                        }
                    }
                    return Ok(());
                }
            },
        }
    }
}

/// What [`gather_ready`] found after the data it took.
type Leftover = Option<Result<http_body::Frame<bytes::Bytes>, hyper::Error>>;

/// Appends to `data` the data frames `body` has ready now. Returns whether the body's end is
/// reached, and a frame that is not data (trailers, an error) for the caller to handle next.
fn gather_ready(body: &mut Incoming, data: &mut Vec<u8>) -> (bool, Leftover) {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if body.is_end_stream() {
            return (true, None);
        }
        let mut next = std::pin::pin!(body.frame());
        match next.as_mut().poll(&mut cx) {
            std::task::Poll::Pending => return (false, None),
            std::task::Poll::Ready(None) => return (true, None),
            std::task::Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(bytes) => data.extend_from_slice(&bytes),
                Err(frame) => return (false, Some(Ok(frame))),
            },
            std::task::Poll::Ready(Some(Err(e))) => return (false, Some(Err(e))),
        }
    }
}

/// Sends a data frame; false when the receiver is gone.
async fn send_data(tx: &BodySender, data: Vec<u8>) -> bool {
    if data.is_empty() {
        return true;
    }
    tx.send(Ok(Frame::data(Bytes::from(data)))).await.is_ok()
}

/// Answers the stream locally.
fn reply(run: &Rc<StreamRun>, stop: Stop) -> Result<Response<ChannelBody>, BoxError> {
    let (local, position) = match stop {
        Stop::Reset => return Err("stream reset by a plugin".into()),
        Stop::Reply { response, position } => (response, Some(position)),
        Stop::Direct(response) => (response, None),
    };
    run.worker.shared.stats.local_replies.fetch_add(1, Relaxed);
    run.info.set_code_details(if local.details.is_empty() {
        "via_local_reply"
    } else {
        &local.details
    });
    run.info
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
    {
        let mut s = run.stream.lock().unwrap_or_else(|e| e.into_inner());
        s.response_headers = Some(headers);
        s.response_body = body.clone();
    }
    if let Some(position) = position {
        run.encode_local_reply(position, !body.is_empty());
    }
    let (mut headers, body) = {
        let mut s = run.stream.lock().unwrap_or_else(|e| e.into_inner());
        s.response_headers_sent = true;
        (
            s.response_headers.clone().unwrap_or_default(),
            std::mem::take(&mut s.response_body),
        )
    };
    // The length is the body's own; a stale header would corrupt the response.
    headers.remove(b"content-length");
    let mut response = convert::downstream_response(&headers, ChannelBody::full(body))?;
    // Answering an HTTP/1 request whose body was not read to its end: the connection cannot
    // be reused, and Envoy says so (hyper then closes it after the response).
    if run.info.protocol != "HTTP/2" && !run.info.request_complete.load(Relaxed) {
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    Ok(response)
}
