//! HTTP callouts (`proxy_http_call`, Lua's `httpCall`): sent to a cluster, answered whole, with
//! Envoy's async-client answers when they fail.

use bytes::Bytes;
use http_body_util::BodyExt;
use wasp_host::{HttpCallRequest, HttpCallResponse};

use crate::body::ChannelBody;
use crate::upstream::{UpstreamError, Upstreams};

/// Callout bodies are buffered whole; this caps them (Envoy's default buffer limit).
const CALLOUT_BODY_LIMIT: usize = 1 << 20;

/// Sends an HTTP callout and collects its answer; `None` when it could not be sent.
pub(crate) async fn http_callout(
    upstreams: &Upstreams,
    request: HttpCallRequest,
) -> Option<HttpCallResponse> {
    let cluster = upstreams.find(&request.cluster).ok()?;
    let picked = upstreams.pick(cluster)?;
    let mut body = ChannelBody::full(Bytes::from(request.body));
    // Sent as Envoy's async client does (an HTTP/1 upstream drops them, as Envoy's codec).
    if !request.trailers.is_empty() {
        body = body.with_trailers(crate::convert::to_http_headers(&request.trailers, false).ok()?);
    }
    let req = crate::convert::upstream_request(
        &request.headers,
        body,
        picked.scheme,
        Some(&picked.endpoint),
    )
    .ok()?;
    let started = std::time::Instant::now();
    let response = match upstreams.send(cluster, req, request.timeout).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(cluster = %request.cluster, "http callout failed: {e}");
            return Some(failed_callout(&e));
        }
    };
    let mut headers = crate::convert::response_headers(&response);
    // Envoy's async client runs its router, which adds this header (suppress_envoy_headers is
    // off there): plugins that count or list a callout's headers see it in Envoy.
    headers.add(
        b"x-envoy-upstream-service-time",
        started.elapsed().as_millis().to_string().as_bytes(),
    );
    let collected = http_body_util::Limited::new(response.into_body(), CALLOUT_BODY_LIMIT)
        .collect()
        .await
        .ok()?;
    let trailers = collected
        .trailers()
        .map(crate::convert::trailers)
        .unwrap_or_default();
    Some(HttpCallResponse {
        headers,
        body: collected.to_bytes().to_vec(),
        trailers,
    })
}

/// What Envoy's async client hands a plugin when its callout fails after dispatch: the
/// router's local reply (504 on timeout, 503 on a connection failure or reset), with headers
/// and body, not an empty answer.
fn failed_callout(error: &UpstreamError) -> HttpCallResponse {
    let (status, body) = match error {
        UpstreamError::Timeout => ("504", "upstream request timeout".to_string()),
        UpstreamError::Connect(_) | UpstreamError::Reset(_) | UpstreamError::Overflow => {
            ("503", error.to_string())
        }
        UpstreamError::UnknownCluster(_) => ("503", "no healthy upstream".to_string()),
    };
    let length = body.len().to_string();
    HttpCallResponse {
        headers: wasp_host::HeaderMap::from_pairs([
            (":status", status),
            ("content-length", length.as_str()),
            ("content-type", "text/plain"),
        ]),
        body: body.into_bytes(),
        trailers: wasp_host::HeaderMap::new(),
    }
}
