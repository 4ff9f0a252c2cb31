//! The upstream proxies send to: a real HTTP server (HTTP/1.1 and HTTP/2 with prior knowledge,
//! on 127.0.0.1) that records every request it receives and either echoes it or answers as
//! scripted; plus the two broken kinds callout failures need (never answering, resetting).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::body::{FrameBody, Generated};
use crate::{Pair, pairs, trailer_map};

/// How an upstream behaves.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Echoes what it received: `x-echo-method`, `x-echo-path`, `x-echo-version`, every
    /// request header as `x-echo-h-<name>` (repeated headers repeated), request trailers as
    /// `x-echo-t-<name>` in the response trailers, and the request body as the response body.
    ///
    /// Special paths: `/status/<n>` answers with that status; `/slow` waits 2 s; `/trailers`
    /// adds the response trailer `x-up-trailer: 1`; `/big/<n>` streams `n` bytes of `a` in
    /// 64 KiB chunks without a content-length; `/sink` consumes the request body chunk by
    /// chunk without keeping it and answers with its length.
    ///
    /// Requests are recorded on arrival, without body and trailers (the echo returns them).
    Echo,
    /// Answers every request as the [`Reply`] says. Requests are recorded once their body
    /// ended, with body and trailers.
    Reply(Reply),
    /// Accepts connections and never answers; they stay open until the upstream is dropped.
    Blackhole,
    /// Reads what arrives first (for up to 200 ms, so that the request was really sent), then
    /// closes the connection without a response.
    Reset,
}

/// A scripted answer; the default is 200 with the request body.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    /// The status (default 200).
    pub status: Option<u16>,
    /// Response headers, in order.
    pub headers: Vec<Pair>,
    /// The body; without it (and without `chunks`) the request body is echoed.
    pub body: Option<String>,
    /// Send the body in these pieces, 50 ms apart, without a content-length; replaces `body`.
    pub chunks: Vec<String>,
    /// Response trailers; with them the body streams (no content-length).
    pub trailers: Vec<Pair>,
}

/// A request as an upstream received it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path with its query.
    pub path: String,
    /// The HTTP version the request came in (`{:?}` prints `HTTP/1.1`, `HTTP/2.0`).
    pub version: Version,
    /// In arrival order, repeated headers repeated.
    pub headers: Vec<Pair>,
    /// Empty for [`Behaviour::Echo`], which does not keep it.
    pub body: Vec<u8>,
    /// Empty for [`Behaviour::Echo`], which does not keep them.
    pub trailers: Vec<Pair>,
}

impl Received {
    /// The first value of a request header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The method, path, version and headers of `req` (no body yet).
    fn head(req: &Request<Incoming>) -> Received {
        Received {
            method: req.method().to_string(),
            path: req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
            version: req.version(),
            headers: pairs(req.headers()),
            ..Received::default()
        }
    }
}

type Log = Arc<Mutex<Vec<Received>>>;

/// A running upstream on 127.0.0.1; it stops listening when dropped.
pub struct Upstream {
    /// Where it listens.
    pub address: SocketAddr,
    seen: Log,
    task: tokio::task::JoinHandle<()>,
    /// The runtime of an upstream from [`Upstream::spawn`]; dropped (shut down) last.
    _runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An echo upstream ([`Behaviour::Echo`]) on a runtime of its own.
pub fn upstream() -> Upstream {
    Upstream::spawn(Behaviour::Echo)
}

/// A server that accepts connections and never answers ([`Behaviour::Blackhole`]), on a
/// runtime of its own, until dropped or closed.
pub fn blackhole() -> Upstream {
    Upstream::spawn(Behaviour::Blackhole)
}

impl Upstream {
    /// Starts an upstream on a free port of 127.0.0.1 in the current runtime.
    pub async fn start(behaviour: Behaviour) -> std::io::Result<Upstream> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let seen: Log = Arc::default();
        let log = seen.clone();
        let reply = match &behaviour {
            Behaviour::Reply(reply) => Some(Arc::new(reply.clone())),
            _ => None,
        };
        let task = tokio::spawn(async move {
            // A blackhole's connections stay open until the upstream is dropped.
            let mut held = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                match behaviour {
                    Behaviour::Blackhole => held.push(tcp),
                    Behaviour::Reset => {
                        tokio::spawn(reset(tcp));
                    }
                    Behaviour::Echo | Behaviour::Reply(_) => {
                        tokio::spawn(serve(tcp, log.clone(), reply.clone()));
                    }
                }
            }
        });
        Ok(Upstream {
            address,
            seen,
            task,
            _runtime: None,
        })
    }

    /// Starts an upstream on a runtime of its own (one worker thread), for synchronous tests;
    /// dropping it shuts the runtime down, closing every connection at once.
    ///
    /// # Panics
    /// When called from async code, or when no port is free.
    pub fn spawn(behaviour: Behaviour) -> Upstream {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the upstream");
        let mut upstream = runtime
            .block_on(Upstream::start(behaviour))
            .expect("an upstream listening on 127.0.0.1");
        upstream._runtime = Some(runtime);
        upstream
    }

    /// Stops listening and closes the connections it holds (at once for an upstream from
    /// [`Upstream::spawn`]).
    pub fn close(self) {}

    /// Every request received so far, in the order they were recorded.
    pub fn seen(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    /// The requests received for `path` (compared without the query).
    pub fn seen_at(&self, path: &str) -> Vec<Received> {
        self.seen()
            .into_iter()
            .filter(|s| s.path.split('?').next() == Some(path))
            .collect()
    }
}

async fn reset(mut tcp: TcpStream) {
    // Read what arrives first so the request was really sent.
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut buf)).await;
    drop(tcp);
}

type UpBody = BoxBody<Bytes, Infallible>;
type Answering = Pin<Box<dyn Future<Output = Result<Response<UpBody>, Infallible>> + Send>>;

/// Serves one connection: echoes when `reply` is `None`, else answers as it says.
async fn serve(tcp: TcpStream, log: Log, reply: Option<Arc<Reply>>) {
    let service = service_fn(move |req: Request<Incoming>| -> Answering {
        match &reply {
            Some(reply) => {
                let (log, reply) = (log.clone(), reply.clone());
                Box::pin(async move { answer(req, &log, &reply).await })
            }
            None => {
                log.lock().unwrap().push(Received::head(&req));
                Box::pin(echo(req))
            }
        }
    });
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(tcp), service)
        .await;
}

/// [`Behaviour::Echo`]'s answer.
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

/// [`Behaviour::Reply`]'s answer, recording the request once its body ended.
async fn answer(
    req: Request<Incoming>,
    log: &Mutex<Vec<Received>>,
    reply: &Reply,
) -> Result<Response<UpBody>, Infallible> {
    let mut received = Received::head(&req);
    let collected = req.into_body().collect().await.ok();
    received.trailers = collected
        .as_ref()
        .and_then(|c| c.trailers().map(pairs))
        .unwrap_or_default();
    let body = collected
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    received.body = body.to_vec();
    log.lock().unwrap().push(received);

    let mut response = Response::builder().status(reply.status.unwrap_or(200));
    for (k, v) in &reply.headers {
        response = response.header(k.as_str(), v.as_str());
    }
    let pieces = if reply.chunks.is_empty() {
        let body = reply.body.as_ref().map_or(body, |b| Bytes::from(b.clone()));
        vec![body]
    } else {
        reply
            .chunks
            .iter()
            .map(|c| Bytes::from(c.clone()))
            .collect()
    };
    let sized = reply.chunks.is_empty() && reply.trailers.is_empty();
    let body = FrameBody::new(pieces, trailer_map(&reply.trailers), sized);
    Ok(response.body(body.boxed()).expect("a valid upstream reply"))
}
