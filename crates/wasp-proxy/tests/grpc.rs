//! gRPC callouts from a plugin to a real HTTP/2 gRPC server: a unary call and a stream.

mod support;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::*;
use tokio::sync::mpsc;

/// A response body fed frame by frame (data, then trailers).
struct Frames(mpsc::Receiver<Frame<Bytes>>);

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|f| f.map(Ok))
    }
}

fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    out.extend_from_slice(&[0]);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out.freeze()
}

fn trailers(status: u32) -> Frame<Bytes> {
    let mut t = http::HeaderMap::new();
    t.insert("grpc-status", status.to_string().parse().unwrap());
    Frame::trailers(t)
}

/// `/wasp.Echo/Say` answers `echo:<message>`; `/wasp.Echo/Chat` echoes the first message,
/// adds `m2`, and ends with status 0 without waiting for the client to finish.
async fn grpc(req: Request<Incoming>) -> Result<Response<Frames>, Infallible> {
    let (tx, rx) = mpsc::channel(8);
    let path = req.uri().path().to_owned();
    let metadata = req
        .headers()
        .get("x-md")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    let mut body = req.into_body();
    tokio::spawn(async move {
        let mut buf = BytesMut::new();
        while let Some(Ok(f)) = body.frame().await {
            if let Ok(data) = f.into_data() {
                buf.extend_from_slice(&data);
            }
            if buf.len() >= 5 {
                let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
                if buf.len() >= 5 + len {
                    buf.advance(5);
                    let message = buf.split_to(len);
                    if path == "/wasp.Echo/Say" {
                        let reply = format!(
                            "echo:{}:{}",
                            String::from_utf8_lossy(&message),
                            metadata.clone().unwrap_or_default()
                        );
                        let _ = tx.send(Frame::data(frame(reply.as_bytes()))).await;
                    } else {
                        let _ = tx.send(Frame::data(frame(&message))).await;
                        let _ = tx.send(Frame::data(frame(b"m2"))).await;
                    }
                    let _ = tx.send(trailers(0)).await;
                    return;
                }
            }
        }
    });
    Ok(Response::builder()
        .header("content-type", "application/grpc")
        .body(Frames(rx))
        .unwrap())
}

fn grpc_upstream(rt: &tokio::runtime::Runtime) -> std::net::SocketAddr {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service_fn(grpc))
                    .await;
            });
        }
    });
    address
}

#[test]
fn unary_call_and_stream_reach_a_real_grpc_server() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let grpc_address = grpc_upstream(&rt);
    let up = upstream();
    let mut spec = spec(up.address, vec![plugin("hostcalls", "")]);
    let mut grpc_cluster = cluster("grpc", grpc_address);
    grpc_cluster.protocol = wasp_proxy::spec::UpstreamProtocol::Http2;
    spec.clusters.push(grpc_cluster);
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();

    let a = get(addr, "/", &[("x-scenario", "grpc-call")]);
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-echo-h-x-grpc-status"), Some("0"));
    assert_eq!(a.header("x-echo-h-x-grpc-body"), Some("echo:hello-grpc:1"));

    let s = get(addr, "/", &[("x-scenario", "grpc-stream")]);
    assert_eq!(s.status, 200, "{s:?}");
    assert_eq!(s.header("x-echo-h-x-grpc-stream"), Some("m1,m2;status=0"));
    proxy.shutdown();
}

#[test]
fn grpc_call_to_an_unreachable_cluster_reports_unavailable() {
    let up = upstream();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut spec = spec(up.address, vec![plugin("hostcalls", "")]);
    spec.clusters.push(cluster("grpc", closed));
    let proxy = start(spec);
    let a = get(
        proxy.address("main").unwrap(),
        "/",
        &[("x-scenario", "grpc-call")],
    );
    assert_eq!(a.status, 200, "{a:?}");
    // 14 = UNAVAILABLE, delivered to the plugin through on_grpc_close.
    assert_eq!(a.header("x-echo-h-x-grpc-status"), Some("14"));
    proxy.shutdown();
}
