//! Clients: HTTP/1.1, HTTP/2 with prior knowledge, TLS with ALPN, raw TCP.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body::{Body, Frame};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::{BoxError, CLIENT_TIMEOUT};

/// A response as the test sees it.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub version: Version,
    /// In arrival order, repeated headers repeated.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub trailers: Vec<(String, String)>,
}

impl Answer {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub(super) fn pairs(headers: &HeaderMap) -> Vec<(String, String)> {
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

/// Collects a response (body and trailers).
pub async fn answer(response: Response<Incoming>) -> Result<Answer, BoxError> {
    let status = response.status();
    let version = response.version();
    let headers = pairs(response.headers());
    let collected = response.into_body().collect().await?;
    let trailers = collected.trailers().map(pairs).unwrap_or_default();
    let body = collected.to_bytes();
    Ok(Answer {
        status,
        version,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        trailers,
    })
}

pub type ReqBody = BoxBody<Bytes, BoxError>;

pub fn full(body: impl Into<Bytes>) -> ReqBody {
    Full::new(body.into()).map_err(|e| match e {}).boxed()
}

pub fn empty() -> ReqBody {
    Empty::new().map_err(|e| match e {}).boxed()
}

/// A body sent in these chunks without a length (chunked on HTTP/1.1).
pub fn chunked(chunks: &[&str]) -> ReqBody {
    let chunks: Vec<Bytes> = chunks.iter().map(|c| Bytes::from(c.to_string())).collect();
    let n = chunks.len();
    let body = Chunks { chunks, next: 0 };
    debug_assert!(n > 0);
    body.boxed()
}

struct Chunks {
    chunks: Vec<Bytes>,
    next: usize,
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let i = self.next;
        self.next += 1;
        Poll::Ready(self.chunks.get(i).cloned().map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.chunks.len()
    }
}

/// A request body fed by the test, chunk by chunk; it ends when the sender is dropped.
pub fn pipe() -> (tokio::sync::mpsc::Sender<Bytes>, ReqBody) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    (tx, Pipe(rx).boxed())
}

struct Pipe(tokio::sync::mpsc::Receiver<Bytes>);

impl Body for Pipe {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.0.poll_recv(cx).map(|c| c.map(|c| Ok(Frame::data(c))))
    }
}

/// A body with these trailers after `data`.
pub fn with_trailers(data: &str, trailers: &[(&str, &str)]) -> ReqBody {
    let mut map = HeaderMap::new();
    for (k, v) in trailers {
        map.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    Full::new(Bytes::from(data.to_owned()))
        .map_err(|e| match e {})
        .with_trailers(async move { Some(Ok(map)) })
        .boxed()
}

/// HTTP/1.1 or HTTP/2 (prior knowledge) on a connection of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    H1,
    H2,
}

/// One request on a connection of its own, over any transport.
pub async fn exchange_on<I>(
    io: I,
    proto: Proto,
    req: Request<ReqBody>,
) -> Result<Response<Incoming>, BoxError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    match proto {
        Proto::H1 => {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
            tokio::spawn(conn);
            Ok(sender.send_request(req).await?)
        }
        Proto::H2 => {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(conn);
            Ok(sender.send_request(req).await?)
        }
    }
}

/// Builds a request; HTTP/1 gets a Host header, HTTP/2 an absolute URI (:authority).
pub fn request(
    address: SocketAddr,
    proto: Proto,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: ReqBody,
) -> Request<ReqBody> {
    let mut req = Request::builder().method(method);
    req = match proto {
        Proto::H1 => req
            .uri(path)
            .header("host", address.to_string())
            .version(Version::HTTP_11),
        Proto::H2 => req
            .uri(format!("http://{address}{path}"))
            .version(Version::HTTP_2),
    };
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(body).unwrap()
}

/// Runs a future on a fresh runtime, bounded by [`CLIENT_TIMEOUT`].
pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(CLIENT_TIMEOUT, f)
            .await
            .expect("the exchange took longer than the client timeout")
    })
}

/// One request on a new plain-TCP connection; `Err` when the exchange failed.
pub fn try_exchange(
    address: SocketAddr,
    proto: Proto,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: ReqBody,
) -> Result<Answer, BoxError> {
    block_on(async {
        let tcp = tokio::net::TcpStream::connect(address).await?;
        let req = request(address, proto, method, path, headers, body);
        let response = exchange_on(tcp, proto, req).await?;
        answer(response).await
    })
}

pub fn exchange(
    address: SocketAddr,
    proto: Proto,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: ReqBody,
) -> Answer {
    try_exchange(address, proto, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e:?}"))
}

/// Sends one HTTP/1.1 request on a new connection.
pub fn send(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let body = if body.is_empty() {
        empty()
    } else {
        full(body.to_owned())
    };
    exchange(address, Proto::H1, method, path, headers, body)
}

pub fn get(address: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    send(address, "GET", path, headers, "")
}

pub fn get_h2(address: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    exchange(address, Proto::H2, "GET", path, headers, empty())
}

/// Writes `bytes` on a raw TCP connection and reads until the peer closes or `wait` passes.
pub fn raw(address: SocketAddr, bytes: &[u8], wait: Duration) -> String {
    let mut tcp = std::net::TcpStream::connect(address).unwrap();
    tcp.set_read_timeout(Some(wait)).unwrap();
    // The proxy may answer and close before it read everything (e.g. 431): a failed write
    // is not the test's concern, the answer is.
    let _ = tcp.write_all(bytes);
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of a raw HTTP/1 answer (`HTTP/1.1 400 Bad Request` → 400).
pub fn raw_status(answer: &str) -> Option<u16> {
    answer.split_whitespace().nth(1)?.parse().ok()
}
