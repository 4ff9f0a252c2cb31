//! The upstream: an echo server that reflects what it received, a blackhole, generated bodies.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::*;

/// An upstream (HTTP/1.1 and HTTP/2, prior knowledge) that echoes what it received:
/// `x-echo-method`, `x-echo-path`, `x-echo-version`, every request header as
/// `x-echo-h-<name>` (repeated headers repeated), request trailers as `x-echo-t-<name>` in
/// the response trailers, and the request body as the response body.
///
/// Special paths: `/status/<n>` answers with that status; `/slow` waits 2 s; `/trailers`
/// adds the response trailer `x-up-trailer: 1`; `/big/<n>` streams `n` bytes of `a` in
/// 64 KiB chunks without a content-length; `/sink` consumes the request body chunk by chunk
/// without keeping it and answers with its length.
pub struct Upstream {
    pub address: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    _runtime: tokio::runtime::Runtime,
}

/// A request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub version: Version,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Upstream {
    /// Every request received so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The requests received for `path` (without query).
    pub fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path.split('?').next() == Some(path))
            .collect()
    }
}

pub fn upstream() -> Upstream {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    runtime.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    log.lock().unwrap().push(Seen {
                        method: req.method().to_string(),
                        path: req
                            .uri()
                            .path_and_query()
                            .map_or("/", |p| p.as_str())
                            .to_owned(),
                        version: req.version(),
                        headers: pairs(req.headers()),
                    });
                    echo(req)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    Upstream {
        address,
        seen,
        _runtime: runtime,
    }
}

/// A TCP server that accepts connections and never answers, until dropped.
pub struct Blackhole {
    pub address: SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub fn blackhole() -> Blackhole {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut held = Vec::new();
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok((tcp, _)) = listener.accept() {
                held.push(tcp);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    Blackhole {
        address,
        stop,
        thread: Some(thread),
    }
}

impl Blackhole {
    /// Closes every connection it holds and stops listening.
    pub fn close(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.shut();
    }
}

type UpBody = BoxBody<Bytes, Infallible>;

async fn echo(req: Request<Incoming>) -> Result<Response<UpBody>, Infallible> {
    let path = req.uri().path().to_owned();
    let mut builder = Response::builder()
        .header("x-echo-method", req.method().as_str())
        .header(
            "x-echo-path",
            req.uri().path_and_query().map_or("/", |p| p.as_str()),
        )
        .header("x-echo-version", format!("{:?}", req.version()));
    for (name, value) in req.headers() {
        builder = builder.header(format!("x-echo-h-{}", name.as_str()), value.clone());
    }
    if let Some(code) = path.strip_prefix("/status/") {
        builder = builder.status(code.parse::<u16>().unwrap_or(500));
    }
    if path == "/slow" {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    if let Some(n) = path.strip_prefix("/big/") {
        let n = n.parse().unwrap_or(0);
        return Ok(builder
            .body(Generated::new(n, 64 << 10, false).boxed())
            .unwrap());
    }
    let mut body = req.into_body();
    if path == "/sink" {
        let mut n = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                n += data.len();
            }
        }
        return Ok(builder
            .body(Full::new(Bytes::from(n.to_string())).boxed())
            .unwrap());
    }
    let collected = body.collect().await.ok();
    let mut trailers = collected
        .as_ref()
        .and_then(|c| c.trailers().cloned())
        .map(|t| {
            let mut out = HeaderMap::new();
            for (k, v) in &t {
                out.append(
                    http::HeaderName::from_bytes(format!("x-echo-t-{}", k.as_str()).as_bytes())
                        .unwrap(),
                    v.clone(),
                );
            }
            out
        })
        .unwrap_or_default();
    let bytes = collected
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    if path == "/trailers" {
        trailers.insert("x-up-trailer", "1".parse().unwrap());
    }
    let body = Full::new(bytes);
    let body = if trailers.is_empty() {
        body.boxed()
    } else {
        body.with_trailers(async move { Some(Ok(trailers)) })
            .boxed()
    };
    Ok(builder.body(body).unwrap())
}

/// A body of `total` bytes of `a`, produced `chunk` bytes at a time (nothing is kept).
pub struct Generated {
    left: usize,
    chunk: Bytes,
    sized: bool,
}

impl Generated {
    /// `sized`: announce the exact length (content-length) instead of streaming (chunked).
    pub fn new(total: usize, chunk: usize, sized: bool) -> Generated {
        Generated {
            left: total,
            chunk: Bytes::from(vec![b'a'; chunk]),
            sized,
        }
    }
}

impl Body for Generated {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(self.chunk.len());
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        if self.sized {
            SizeHint::with_exact(self.left as u64)
        } else {
            SizeHint::default()
        }
    }
}
