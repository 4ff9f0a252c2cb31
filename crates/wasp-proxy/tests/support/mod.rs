//! Real sockets: an echo upstream, a wasp proxy built from a spec, and HTTP clients
//! (HTTP/1.1, HTTP/2 with prior knowledge, TLS with ALPN, raw TCP).
//!
//! Every client call is bounded by [`CLIENT_TIMEOUT`] so that a hung proxy fails the test
//! instead of hanging it; all traffic stays on 127.0.0.1.

#![allow(dead_code)]

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use wasp_host::{Host, HostConfig};
use wasp_proxy::Proxy;
use wasp_proxy::spec::*;

/// The longest any single client exchange may take.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

// ---------------------------------------------------------------------------------------
// The upstream
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// The proxy
// ---------------------------------------------------------------------------------------

/// A listener with one catch-all route to the `backend` cluster.
pub fn spec(upstream: SocketAddr, plugins: Vec<PluginSpec>) -> ProxySpec {
    ProxySpec {
        admin: Some("127.0.0.1:0".parse().unwrap()),
        workers: 2,
        node: NodeSpec {
            id: "test-node".into(),
            cluster: "test-cluster".into(),
            metadata: Default::default(),
        },
        listeners: vec![listener("main", routes())],
        clusters: vec![cluster("backend", upstream), cluster("callout", upstream)],
        plugins,
        buffer_limit_bytes: 1 << 20,
    }
}

/// `/direct` answered by the proxy, everything else to `backend` with a 1 s timeout.
pub fn routes() -> Vec<RouteSpec> {
    vec![
        RouteSpec {
            path: PathMatch::Exact("/direct".into()),
            headers: vec![],
            action: RouteAction::Direct {
                status: 200,
                body: "direct\n".into(),
            },
        },
        RouteSpec {
            path: PathMatch::Prefix("/".into()),
            headers: vec![],
            action: RouteAction::Cluster {
                name: "backend".into(),
                timeout: Some(Duration::from_secs(1)),
            },
        },
    ]
}

pub fn listener(name: &str, routes: Vec<RouteSpec>) -> ListenerSpec {
    ListenerSpec {
        name: name.into(),
        address: "127.0.0.1:0".parse().unwrap(),
        direction: TrafficDirection::Inbound,
        tls: None,
        routes,
    }
}

pub fn route_to(prefix: &str, cluster: &str) -> RouteSpec {
    RouteSpec {
        path: PathMatch::Prefix(prefix.into()),
        headers: vec![],
        action: RouteAction::Cluster {
            name: cluster.into(),
            timeout: Some(Duration::from_secs(1)),
        },
    }
}

pub fn cluster(name: &str, address: SocketAddr) -> ClusterSpec {
    ClusterSpec {
        name: name.into(),
        endpoints: vec![address.to_string()],
        protocol: UpstreamProtocol::Http1,
        connect_timeout: Duration::from_secs(1),
        tls: None,
    }
}

/// An address nothing listens on (bound, then closed).
pub fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

pub fn plugin(module: &str, configuration: &str) -> PluginSpec {
    let kind = PluginKind::Wasm(WasmSpec {
        root_id: module.into(),
        module: Arc::from(wasp_test_plugins::bytes(module)),
        configuration: configuration.as_bytes().to_vec(),
        vm_id: module.into(),
        ..WasmSpec::default()
    });
    PluginSpec {
        url: format!("file://{}", wasp_test_plugins::path(module).display()),
        ..PluginSpec::new(module, kind)
    }
}

/// `p` with its Wasm side edited by `edit`.
pub fn with_wasm(mut p: PluginSpec, edit: impl FnOnce(&mut WasmSpec)) -> PluginSpec {
    edit(p.wasm_mut().expect("a Wasm plugin"));
    p
}

/// The host the tests run plugins on: 300 ms per callback.
pub fn host_config() -> HostConfig {
    HostConfig {
        pooling_instances: Some(64),
        callback_deadline: Duration::from_millis(300),
        ..HostConfig::default()
    }
}

pub fn start(spec: ProxySpec) -> Proxy {
    start_with(spec, host_config())
}

/// Starts the proxy on a host of its own and waits until it is ready.
pub fn start_with(spec: ProxySpec, config: HostConfig) -> Proxy {
    let host = Host::new(config).unwrap();
    let proxy = Proxy::start(spec, host).unwrap();
    for _ in 0..500 {
        if proxy.is_ready() {
            return proxy;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("proxy not ready");
}

// ---------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------

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

fn pairs(headers: &HeaderMap) -> Vec<(String, String)> {
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

// ---------------------------------------------------------------------------------------
// Admin
// ---------------------------------------------------------------------------------------

pub fn admin(proxy: &Proxy, path: &str) -> Answer {
    get(proxy.admin_address().unwrap(), path, &[])
}

/// A sample of the Prometheus text: `name` exactly (with its labels, if given in `name`).
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        // An empty label set may be written `name{}`.
        let key = key.strip_suffix("{}").unwrap_or(key);
        (key == name).then(|| value.parse().ok()).flatten()
    })
}

pub fn stats(proxy: &Proxy) -> String {
    admin(proxy, "/stats/prometheus").body
}

/// Polls `f` every 10 ms until it holds or `within` passes.
pub fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Decodes the `hex:<hex>` values of the hostcalls `properties` scenario.
pub fn unhex(value: &str) -> Vec<u8> {
    let hex = value
        .strip_prefix("hex:")
        .unwrap_or_else(|| panic!("{value}"));
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Plugin logs
// ---------------------------------------------------------------------------------------

/// Plugin log lines (target `wasp::plugin`) as (plugin name, message), for the whole test
/// process. Give each test's plugin a name of its own to count only its lines.
pub mod logs {
    use std::sync::Mutex;

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Level, Metadata, Subscriber};

    static LINES: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

    struct Capture;

    #[derive(Default)]
    struct Fields {
        plugin: String,
        message: String,
    }

    impl Visit for Fields {
        fn record_str(&mut self, field: &Field, value: &str) {
            match field.name() {
                "plugin" => self.plugin = value.to_owned(),
                "message" => self.message = value.to_owned(),
                _ => {}
            }
        }

        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            match field.name() {
                "plugin" => self.plugin = format!("{value:?}"),
                "message" => self.message = format!("{value:?}"),
                _ => {}
            }
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            metadata.target() == "wasp::plugin" && *metadata.level() <= Level::INFO
        }

        fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
            Some(tracing::level_filters::LevelFilter::INFO)
        }

        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }

        fn record(&self, _: &Id, _: &Record<'_>) {}

        fn record_follows_from(&self, _: &Id, _: &Id) {}

        fn event(&self, event: &Event<'_>) {
            let mut fields = Fields::default();
            event.record(&mut fields);
            LINES
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((fields.plugin, fields.message));
        }

        fn enter(&self, _: &Id) {}

        fn exit(&self, _: &Id) {}
    }

    /// Starts capturing (idempotent); call before starting the proxy.
    pub fn capture() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            tracing::subscriber::set_global_default(Capture).expect("a global subscriber");
        });
    }

    /// How many lines of `plugin` start with `prefix`.
    pub fn count(plugin: &str, prefix: &str) -> usize {
        LINES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|(p, m)| p == plugin && m.starts_with(prefix))
            .count()
    }

    /// The lines of `plugin` that start with `prefix`.
    pub fn lines(plugin: &str, prefix: &str) -> Vec<String> {
        LINES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|(p, m)| p == plugin && m.starts_with(prefix))
            .map(|(_, m)| m.clone())
            .collect()
    }
}

/// The hostcalls plugin under a name and root id of its own, so that its log lines (which
/// carry the root id) can be told apart from other tests'.
pub fn hostcalls_named(name: &str) -> PluginSpec {
    let p = PluginSpec {
        name: name.into(),
        ..plugin("hostcalls", "")
    };
    with_wasm(p, |w| w.root_id = name.into())
}
