//! The upstreams both proxies send to: real HTTP servers (HTTP/1.1 and h2c) that record every
//! request they receive (method, path, headers, body, trailers) and answer as the case says,
//! plus the two broken kinds callout failures need (never answering, resetting).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncReadExt;

use crate::body::FrameBody;
use crate::scenario::{ClusterKind, Pair, UpstreamReply};

/// A request as an upstream received it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub version: String,
    pub headers: Vec<Pair>,
    pub body: Vec<u8>,
    pub trailers: Vec<Pair>,
}

pub struct Upstream {
    pub address: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    /// Starts an upstream on 127.0.0.1 (a free port) in the current runtime.
    pub async fn start(kind: ClusterKind, reply: UpstreamReply) -> anyhow::Result<Upstream> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = received.clone();
        let reply = Arc::new(reply);
        let task = tokio::spawn(async move {
            // Held connections of a blackhole stay open until the upstream is dropped.
            let mut held = Vec::new();
            while let Ok((mut tcp, _)) = listener.accept().await {
                match kind {
                    ClusterKind::Blackhole => held.push(tcp),
                    ClusterKind::Reset => {
                        tokio::spawn(async move {
                            // Read what arrives first so the request was really sent.
                            let mut buf = [0u8; 4096];
                            let _ = tokio::time::timeout(
                                Duration::from_millis(200),
                                tcp.read(&mut buf),
                            )
                            .await;
                            drop(tcp);
                        });
                    }
                    ClusterKind::Echo => {
                        let log = log.clone();
                        let reply = reply.clone();
                        tokio::spawn(async move {
                            let service = service_fn(move |req| {
                                let log = log.clone();
                                let reply = reply.clone();
                                async move { answer(req, &log, &reply).await }
                            });
                            let _ =
                                hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                                    .serve_connection(TokioIo::new(tcp), service)
                                    .await;
                        });
                    }
                }
            }
        });
        Ok(Upstream {
            address,
            received,
            task,
        })
    }

    /// Every request received so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn answer(
    req: Request<Incoming>,
    log: &Mutex<Vec<Received>>,
    reply: &UpstreamReply,
) -> Result<Response<FrameBody>, Infallible> {
    let (parts, body) = req.into_parts();
    let collected = body.collect().await.ok();
    let trailers = collected
        .as_ref()
        .and_then(|c| c.trailers().map(pairs))
        .unwrap_or_default();
    let body = collected
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    log.lock().unwrap().push(Received {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned(),
        version: format!("{:?}", parts.version),
        headers: pairs(&parts.headers),
        body: body.to_vec(),
        trailers,
    });

    let mut response = Response::builder().status(reply.status.unwrap_or(200));
    for (k, v) in &reply.headers {
        response = response.header(k.as_str(), v.as_str());
    }
    let pieces = if !reply.chunks.is_empty() {
        reply
            .chunks
            .iter()
            .map(|c| Bytes::from(c.clone()))
            .collect()
    } else {
        let body = reply.body.as_ref().map_or(body, |b| Bytes::from(b.clone()));
        vec![body]
    };
    let sized = reply.chunks.is_empty() && reply.trailers.is_empty();
    let body = FrameBody::new(pieces, trailer_map(&reply.trailers), sized);
    Ok(response.body(body).expect("valid upstream reply"))
}

pub fn pairs(headers: &HeaderMap) -> Vec<Pair> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

pub fn trailer_map(trailers: &[Pair]) -> Option<HeaderMap> {
    if trailers.is_empty() {
        return None;
    }
    let mut map = HeaderMap::new();
    for (k, v) in trailers {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).expect("valid trailer name"),
            HeaderValue::from_str(v).expect("valid trailer value"),
        );
    }
    Some(map)
}
