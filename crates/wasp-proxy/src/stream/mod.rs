//! One request from arrival to the last response byte: forwarding headers, the plugin chain,
//! routing, the upstream exchange, and local replies.

mod attempts;
mod client_fault;
mod forward;
mod left;
mod local_reply;
mod pump;
mod respond;

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use http::{Request, Response, Version};
use http_body::Body;
use hyper::body::Incoming;

use crate::body::{BoxError, ChannelBody};
use crate::convert;
use crate::filter::chain::Chain;
use crate::filter::exchange::Exchange;
use crate::filter::properties::{ConnInfo, StreamRecord};
use crate::filter::{self, StreamCx};
use crate::routes::plugins::{RequestFacts, plan as plugins_plan};
use crate::routes::{Listener, Matched, Target};
use crate::spec::PluginSetting;
use crate::worker::Worker;
use crate::worker::local::LocalGeneration;

use self::pump::BodyEnd;

/// Serves one request. An `Err` resets the stream (HTTP/2) or closes the connection (HTTP/1).
pub(crate) async fn handle(
    worker: Rc<Worker>,
    generation: Rc<LocalGeneration>,
    listener: Rc<Listener>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Result<Response<ChannelBody>, BoxError> {
    let shared = worker.shared.clone();
    let started = std::time::Instant::now();
    shared.stats.downstream_requests.fetch_add(1, Relaxed);
    if let Some(refused) = refuse_malformed(&req, &listener.spec.http) {
        shared.stats.response(refused.status().as_u16());
        return Ok(refused);
    }
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
    let chain = listener.chain(&vms.set);
    let span = shared
        .tracer
        .is_enabled()
        .then(|| start_span(&shared.tracer, &headers, protocol));
    let info = Arc::new(StreamRecord::new(
        conn,
        protocol,
        headers.get_str("x-forwarded-for"),
        span,
    ));
    // Envoy picks the route before the filters run; plugins read it as xds.cluster_name, and
    // it decides which plugins run and how (route and host settings, plugin rules). Without
    // plugins nobody asks, and the route is looked up once, after the chain.
    // `None`: the listener's chain as it is, every plugin on its own configuration.
    let plan = if chain.is_empty() {
        None
    } else {
        let matched = listener.matched(&headers);
        if let Some(m) = matched.as_ref().filter(|m| !m.route.name.is_empty()) {
            *info
                .route_name
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some(Arc::from(m.route.name.as_str()));
        }
        if let Some(Matched {
            target: Target::Cluster { id: Some(id), .. },
            ..
        }) = &matched
        {
            *info
                .route_cluster
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                generation.upstreams.name(*id);
        }
        if listener.has_plugin_settings || vms.set.has_routing {
            let request = RequestFacts {
                authority: headers.get_str(":authority").unwrap_or_default(),
                matched: matched.as_ref(),
            };
            Some(plugins_plan(&vms.set, &chain, &request))
        } else {
            None
        }
    };
    info.request_complete.store(end_of_stream, Relaxed);
    let cx = StreamCx {
        exchange: Exchange::new(headers, info.clone()),
        signals: Default::default(),
        info,
        vms,
        upstreams: generation.upstreams.clone(),
        buffer_limit: generation.shared.spec.buffer_limit_bytes,
        cluster_names: generation.shared.cluster_names.clone(),
        shared: worker.shared.clone(),
        metadata: Default::default(),
        len: 0,
    };
    let run = Rc::new(match plan {
        Some(plan) => Chain::new(cx, plan),
        None => Chain::new(cx, chain.iter().map(|&p| (p, PluginSetting::Enabled))),
    });
    let body = crate::body::client::ClientBody::new(body, run.cx.info.clone(), &listener.spec.http);
    let result = match forward::forward(&run, &listener, (body, body_end), end_of_stream).await {
        Ok(response) => Ok(response),
        Err(stop) => local_reply::reply(&run, stop),
    };
    let Ok(response) = result else { return result };
    shared.stats.response(response.status().as_u16());
    let logs = &listener.shared.logs;
    let traced = shared.tracer.is_enabled();
    if logs.is_empty() && !traced {
        return Ok(response);
    }
    // Logged (and the span ended) when the response's last byte has gone to the client.
    let pending = crate::access_log::Pending {
        logs: logs.clone(),
        record: run.cx.info.clone(),
        started,
        // Only the access log reads headers; a span alone needs none copied.
        request_headers: if logs.is_empty() {
            wasp_host::HeaderMap::new()
        } else {
            run.cx.exchange.headers(filter::signals::Direction::Request)
        },
        response_headers: if logs.is_empty() {
            wasp_host::HeaderMap::new()
        } else {
            response_header_map(&response)
        },
        status: response.status().as_u16(),
    };
    Ok(response.map(|body| body.on_end(Box::new(move |sent| pending.finish(sent)))))
}

/// What HTTP/1 requires that hyper lets through, answered as Envoy's codec answers it, before
/// any plugin runs, and the connection closed: an HTTP/1.1 request needs a `Host` (RFC 9112
/// §3.2: "A server MUST respond with a 400"), unless its target carries the authority
/// (absolute form).
///
/// (`Content-Length` with `Transfer-Encoding` is hyper's to handle before this: it decodes by
/// the transfer coding, drops the length and closes the connection after the response — the
/// other behaviour RFC 9112 §6.1 allows; Envoy answers 400. Neither lets a length-reading front
/// proxy smuggle a second request through. Equal repeated `Content-Length`s reach wasp as one,
/// as RFC 9110 §8.6 allows; differing ones are refused by hyper with 400.)
fn refuse_malformed(
    req: &Request<Incoming>,
    options: &wasp_spec::HttpOptions,
) -> Option<Response<ChannelBody>> {
    // hyper counts an HTTP/1 head's headers itself; HTTP/2's are counted here.
    if req.headers().len() > options.max_headers_count {
        tracing::debug!(
            "request with more than {} headers: 431 (too_many_headers)",
            options.max_headers_count
        );
        return Response::builder()
            .status(431)
            .header(http::header::CONTENT_TYPE, "text/plain")
            .body(ChannelBody::full("Request Header Fields Too Large"))
            .ok();
    }
    let missing_host = req.version() == Version::HTTP_11
        && !req.headers().contains_key(http::header::HOST)
        && req.uri().authority().is_none();
    if !missing_host {
        return None;
    }
    tracing::debug!("HTTP/1.1 request without Host: 400 (missing_host_header)");
    Response::builder()
        .status(400)
        .header(http::header::CONTENT_TYPE, "text/plain")
        .header(http::header::CONNECTION, "close")
        .body(ChannelBody::full("Bad Request"))
        .ok()
}

/// The proxy's span for a request (Envoy's `ingress` operation), with OpenTelemetry's HTTP
/// attributes.
fn start_span(
    tracer: &wasp_trace::Tracer,
    headers: &wasp_host::HeaderMap,
    protocol: &str,
) -> wasp_trace::Span {
    use wasp_trace::keys;
    let get = |name: &str| headers.get_str(name);
    let mut span = tracer.start(&get, "ingress", std::time::SystemTime::now());
    let path = headers.get_str(":path").unwrap_or("/");
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut set = |key, value: Option<&str>| {
        if let Some(v) = value {
            span.set_attribute(key, v.to_string());
        }
    };
    set(keys::HTTP_REQUEST_METHOD, headers.get_str(":method"));
    set(keys::URL_PATH, Some(path));
    set(keys::URL_QUERY, (!query.is_empty()).then_some(query));
    set(keys::URL_SCHEME, headers.get_str(":scheme"));
    set(keys::SERVER_ADDRESS, headers.get_str(":authority"));
    set(keys::USER_AGENT_ORIGINAL, headers.get_str("user-agent"));
    set(keys::REQUEST_ID, headers.get_str("x-request-id"));
    set(
        keys::NETWORK_PROTOCOL_VERSION,
        protocol.strip_prefix("HTTP/"),
    );
    span
}

/// The headers of a response about to go to the client, as the access log reads them.
fn response_header_map(response: &Response<ChannelBody>) -> wasp_host::HeaderMap {
    let mut map = wasp_host::HeaderMap::with_capacity(response.headers().len() + 1);
    map.add(b":status", response.status().as_str().as_bytes());
    for (name, value) in response.headers() {
        map.add(name.as_str().as_bytes(), value.as_bytes());
    }
    map
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
