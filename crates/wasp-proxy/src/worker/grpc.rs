//! A gRPC callout (`proxy_grpc_call`, `proxy_grpc_stream`) over HTTP/2 to a cluster, from the
//! request to the close, each event delivered to the plugin that made it.

use std::rc::Rc;

use http::Request;
use http_body::Body;
use http_body_util::BodyExt;
use wasp_host::{GrpcCallRequest, HeaderMap};

use crate::body::ChannelBody;
use crate::plugins::vms::WorkerVms;
use crate::upstream::grpc::Decoder;
use crate::upstream::{UpstreamError, Upstreams};

/// gRPC status codes wasp itself reports.
const DEADLINE_EXCEEDED: u32 = 4;
const UNAVAILABLE: u32 = 14;
const INTERNAL: u32 = 13;

/// Runs one call or stream to its end, delivering every event to the plugin.
pub(crate) async fn exchange(
    upstreams: Rc<Upstreams>,
    vms: Rc<WorkerVms>,
    plugin: usize,
    generation: u64,
    request: GrpcCallRequest,
    body: ChannelBody,
) {
    let token = request.token;
    let deliver_close = |status: u32, message: String| {
        vms.call(plugin, generation, |vm| {
            vm.on_grpc_close(token, status, &message)
        });
    };
    let wasp_host::GrpcTarget::Cluster(cluster) = &request.target else {
        return deliver_close(INTERNAL, "unsupported gRPC target".into());
    };
    let Some((id, picked)) = upstreams
        .find(cluster)
        .ok()
        .and_then(|id| Some((id, upstreams.pick(id)?)))
    else {
        return deliver_close(UNAVAILABLE, format!("unknown cluster {cluster}"));
    };
    let mut builder = Request::post(format!(
        "{}://{}/{}/{}",
        picked.scheme, picked.endpoint, request.service, request.method
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers");
    if let Some(t) = request.timeout {
        builder = builder.header("grpc-timeout", format!("{}m", t.as_millis()));
    }
    for (k, v) in request.initial_metadata.iter() {
        if !k.starts_with(b":") {
            builder = builder.header(k, v);
        }
    }
    let Ok(req) = builder.body(body) else {
        return deliver_close(INTERNAL, "invalid gRPC request metadata".into());
    };
    let response = match upstreams.send_grpc(id, req, request.timeout).await {
        Ok(r) => r,
        Err(UpstreamError::Timeout) => {
            return deliver_close(DEADLINE_EXCEEDED, "deadline exceeded".into());
        }
        Err(e) => return deliver_close(UNAVAILABLE, e.to_string()),
    };
    let (parts, mut body) = response.into_parts();
    let headers = crate::convert::trailers(&parts.headers);
    // Trailers-only response: the status is in the headers.
    if let Some(status) = grpc_status(&headers) {
        return deliver_close(status, grpc_message(&headers));
    }
    vms.call(plugin, generation, |vm| {
        vm.on_grpc_initial_metadata(token, headers)
    });
    let mut decoder = Decoder::default();
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => return deliver_close(UNAVAILABLE, format!("stream reset: {e}")),
        };
        match frame.into_data() {
            Ok(data) => {
                for message in decoder.push(&data) {
                    vms.call(plugin, generation, |vm| vm.on_grpc_message(token, message));
                }
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    let trailers = crate::convert::trailers(&trailers);
                    let status = grpc_status(&trailers).unwrap_or(INTERNAL);
                    let message = grpc_message(&trailers);
                    vms.call(plugin, generation, |vm| {
                        vm.on_grpc_trailing_metadata(token, trailers)
                    });
                    return deliver_close(status, message);
                }
            }
        }
        if body.is_end_stream() {
            break;
        }
    }
    deliver_close(INTERNAL, "stream ended without trailers".into());
}

fn grpc_status(headers: &HeaderMap) -> Option<u32> {
    headers.get_str("grpc-status")?.parse().ok()
}

fn grpc_message(headers: &HeaderMap) -> String {
    headers.get_str("grpc-message").unwrap_or("").to_owned()
}
