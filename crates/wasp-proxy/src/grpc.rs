//! gRPC callouts (`proxy_grpc_call`, `proxy_grpc_stream`) over HTTP/2 to a cluster: the
//! length-prefixed message framing and the exchange that reports back to the plugin.

use std::rc::Rc;

use bytes::{Buf, Bytes, BytesMut};
use http::Request;
use http_body::Body;
use http_body_util::BodyExt;
use wasp_host::{GrpcCallRequest, HeaderMap};

use crate::body::ChannelBody;
use crate::upstream::UpstreamError;
use crate::vms::WorkerVms;
use crate::worker::Worker;

/// gRPC status codes wasp itself reports.
const DEADLINE_EXCEEDED: u32 = 4;
const UNAVAILABLE: u32 = 14;
const INTERNAL: u32 = 13;

/// One length-prefixed, uncompressed message.
pub fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.extend_from_slice(&[0]);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out.freeze()
}

/// Splits a byte stream into messages.
#[derive(Default)]
pub struct Decoder {
    buf: BytesMut,
}

impl Decoder {
    pub fn push(&mut self, data: &[u8]) -> Vec<Vec<u8>> {
        self.buf.extend_from_slice(data);
        let mut messages = Vec::new();
        while self.buf.len() >= 5 {
            let len =
                u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
            if self.buf.len() < 5 + len {
                break;
            }
            self.buf.advance(5);
            messages.push(self.buf.split_to(len).to_vec());
        }
        messages
    }
}

/// Runs one call or stream to its end, delivering every event to the plugin.
pub(crate) async fn exchange(
    worker: Rc<Worker>,
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
    let Ok((endpoint, scheme)) = worker.upstreams.pick(cluster) else {
        return deliver_close(UNAVAILABLE, format!("unknown cluster {cluster}"));
    };
    let mut builder = Request::post(format!(
        "{scheme}://{endpoint}/{}/{}",
        request.service, request.method
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
    let response = match worker
        .upstreams
        .send_grpc(cluster, req, request.timeout)
        .await
    {
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
    deliver_close(INTERNAL, "stream ended without trailers".into())
}

fn grpc_status(headers: &HeaderMap) -> Option<u32> {
    headers.get_str("grpc-status")?.parse().ok()
}

fn grpc_message(headers: &HeaderMap) -> String {
    headers.get_str("grpc-message").unwrap_or("").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_across_chunk_boundaries() {
        let mut wire = frame(b"hello").to_vec();
        wire.extend_from_slice(&frame(b""));
        wire.extend_from_slice(&frame(b"world"));
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for chunk in wire.chunks(3) {
            got.extend(d.push(chunk));
        }
        assert_eq!(got, vec![b"hello".to_vec(), vec![], b"world".to_vec()]);
    }
}
