//! Real sockets: an echo upstream, a wasp proxy built from a spec, and an HTTP client.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use wasp_host::{Host, HostConfig};
use wasp_proxy::Proxy;
use wasp_proxy::spec::*;

/// An upstream that echoes what it received: `x-echo-method`, `x-echo-path`, every request
/// header as `x-echo-h-<name>`, and the request body as the response body. `/status/<n>`
/// answers with that status; `/slow` waits 2 s; `/trailers` adds a trailer.
pub struct Upstream {
    pub address: SocketAddr,
    _runtime: tokio::runtime::Runtime,
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
    runtime.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service_fn(echo))
                    .await;
            });
        }
    });
    Upstream {
        address,
        _runtime: runtime,
    }
}

async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let mut builder = Response::builder()
        .header("x-echo-method", req.method().as_str())
        .header(
            "x-echo-path",
            req.uri().path_and_query().map_or("/", |p| p.as_str()),
        );
    for (name, value) in req.headers() {
        builder = builder.header(format!("x-echo-h-{}", name.as_str()), value.clone());
    }
    if let Some(code) = path.strip_prefix("/status/") {
        builder = builder.status(code.parse::<u16>().unwrap_or(500));
    }
    if path == "/slow" {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Ok(builder.body(Full::new(body)).unwrap())
}

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
        listeners: vec![ListenerSpec {
            name: "main".into(),
            address: "127.0.0.1:0".parse().unwrap(),
            direction: Direction::Inbound,
            tls: None,
            routes: vec![
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
            ],
        }],
        clusters: vec![cluster("backend", upstream), cluster("callout", upstream)],
        plugins,
        buffer_limit_bytes: 1 << 20,
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

pub fn plugin(module: &str, configuration: &str) -> PluginSpec {
    PluginSpec {
        name: module.into(),
        root_id: module.into(),
        url: format!("file://{}", wasp_test_plugins::path(module).display()),
        wasm: Arc::from(wasp_test_plugins::bytes(module)),
        configuration: configuration.as_bytes().to_vec(),
        vm_configuration: Vec::new(),
        vm_id: module.into(),
        env: Vec::new(),
        fail_strategy: FailStrategy::FailClose,
        phase: None,
        priority: None,
        listeners: Vec::new(),
    }
}

pub fn start(spec: ProxySpec) -> Proxy {
    let host = Host::new(HostConfig {
        pooling_instances: Some(64),
        callback_deadline: Duration::from_millis(300),
        ..HostConfig::default()
    })
    .unwrap();
    let proxy = Proxy::start(spec, host).unwrap();
    for _ in 0..500 {
        if proxy.is_ready() {
            return proxy;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("proxy not ready");
}

/// A response as the test sees it.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Sends one HTTP/1.1 request.
pub fn send(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .build_http::<Full<Bytes>>();
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://{address}{path}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let response = client
            .request(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap())
            .await
            .expect("request");
        let status = response.status();
        let mut map = BTreeMap::new();
        for (k, v) in response.headers() {
            map.insert(k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned());
        }
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Answer {
            status,
            headers: map,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    })
}

pub fn get(address: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    send(address, "GET", path, headers, "")
}
