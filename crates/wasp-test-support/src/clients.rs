//! HTTP clients: HTTP/1.1 and HTTP/2 with prior knowledge, one request per connection, over
//! plain TCP or any transport (TLS included); request bodies whole, chunked, piped or with
//! trailers; the response collected whole.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Version};
use http_body::{Body, Frame};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::{BoxError, Pair, pairs, trailer_map};

/// The longest any single exchange of [`block_on`] (and so of [`exchange`], [`get`], ...) may
/// take: a hung proxy fails the test instead of hanging it.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// A response as the test sees it.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: StatusCode,
    /// The HTTP version of the response.
    pub version: Version,
    /// In arrival order, repeated headers repeated.
    pub headers: Vec<Pair>,
    /// The body as text (invalid UTF-8 replaced); [`Answer::body_bytes`] has it as received.
    pub body: String,
    /// The body exactly as received.
    pub body_bytes: Bytes,
    /// In arrival order; empty when the response had none.
    pub trailers: Vec<Pair>,
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

    /// The first value of a trailer.
    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
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
        body_bytes: body,
        trailers,
    })
}

/// The body type of every request these clients send.
pub type ReqBody = BoxBody<Bytes, BoxError>;

/// Any body (a [`crate::body::FrameBody`], a [`crate::body::Generated`]) as a [`ReqBody`].
pub fn boxed<B>(body: B) -> ReqBody
where
    B: Body<Data = Bytes, Error = std::convert::Infallible> + Send + Sync + 'static,
{
    body.map_err(|e| match e {}).boxed()
}

/// A body sent whole, with a content-length.
pub fn full(body: impl Into<Bytes>) -> ReqBody {
    boxed(Full::new(body.into()))
}

/// No body.
pub fn empty() -> ReqBody {
    boxed(Empty::new())
}

/// A body sent in these chunks without a length (chunked on HTTP/1.1), without pauses.
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

/// A body with these trailers after `data` (a trailers frame even when the list is empty).
pub fn with_trailers(data: &str, trailers: &[(&str, &str)]) -> ReqBody {
    let map = trailer_map(trailers).unwrap_or_default();
    Full::new(Bytes::from(data.to_owned()))
        .map_err(|e| match e {})
        .with_trailers(async move { Some(Ok(map)) })
        .boxed()
}

/// HTTP/1.1 or HTTP/2 (prior knowledge) on a connection of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// HTTP/1.1.
    H1,
    /// HTTP/2 with prior knowledge (h2c on plain TCP).
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

/// Builds a request for `authority`: HTTP/1 gets it as the Host header, HTTP/2 in an
/// absolute URI (`:authority`). Fails on a method, path or header HTTP does not allow.
pub fn request_for(
    authority: &str,
    proto: Proto,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: ReqBody,
) -> Result<Request<ReqBody>, http::Error> {
    let mut req = Request::builder().method(method);
    req = match proto {
        Proto::H1 => req
            .uri(path)
            .header("host", authority)
            .version(Version::HTTP_11),
        Proto::H2 => req
            .uri(format!("http://{authority}{path}"))
            .version(Version::HTTP_2),
    };
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(body)
}

/// Builds a request whose authority is `address` (see [`request_for`]).
///
/// # Panics
/// On a method, path or header HTTP does not allow.
pub fn request(
    address: SocketAddr,
    proto: Proto,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: ReqBody,
) -> Request<ReqBody> {
    request_for(&address.to_string(), proto, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Runs a future on a fresh runtime, bounded by [`CLIENT_TIMEOUT`].
///
/// # Panics
/// When the future takes longer.
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

/// One request on a new plain-TCP connection.
///
/// # Panics
/// When the exchange failed.
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

/// Sends one HTTP/1.1 request on a new connection (no body when `body` is empty).
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

/// `GET path` over HTTP/1.1 on a new connection.
pub fn get(address: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    send(address, "GET", path, headers, "")
}

/// `GET path` over HTTP/2 (prior knowledge) on a new connection.
pub fn get_h2(address: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    exchange(address, Proto::H2, "GET", path, headers, empty())
}
