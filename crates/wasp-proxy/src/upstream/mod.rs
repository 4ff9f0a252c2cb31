//! Clusters: per-worker connection pools to upstream endpoints, HTTP/1.1 or HTTP/2.

mod balancer;
pub(crate) mod callout;
pub(crate) mod checker;
pub(crate) mod grpc;
pub(crate) mod health;
mod limit;

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::body::ChannelBody;
use crate::spec::{ClusterSpec, UpstreamProtocol};

use self::balancer::Balancer;
use self::health::ClusterState;

/// Why an upstream request got no response.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("unknown cluster {0:?}")]
    UnknownCluster(String),
    /// The reason in Envoy's words (`connection termination`, `remote connection failure,
    /// transport failure reason: ...`), as its local replies and callout answers show it.
    #[error("upstream connect error or disconnect/reset before headers. reset reason: {0}")]
    Connect(String),
    /// The connection ended before a response (Envoy's "connection termination").
    #[error("upstream connect error or disconnect/reset before headers. reset reason: {0}")]
    Reset(String),
    #[error("upstream request timeout")]
    Timeout,
    /// A circuit breaker refused a connection (too many waiting for one).
    #[error("upstream connect error or disconnect/reset before headers. reset reason: overflow")]
    Overflow,
}

/// A cluster the proxy cannot reach as configured (no endpoints, unusable TLS settings).
#[derive(Debug, thiserror::Error)]
#[error("cluster {cluster}: {reason}")]
pub struct ClusterError {
    /// The cluster's name.
    pub cluster: String,
    /// What is wrong with it.
    pub reason: String,
}

type Pool = Client<HttpsConnector<limit::Limited>, ChannelBody>;

/// A cluster's place in the spec's cluster list: routes are resolved to it once, when a
/// worker builds its listeners, so a request finds its pool without a lookup by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterId(pub(crate) usize);

impl ClusterId {
    /// The cluster named `name` in `clusters` (the spec's list, in its order).
    pub fn of(clusters: &[ClusterSpec], name: &str) -> Option<ClusterId> {
        clusters.iter().position(|c| c.name == name).map(ClusterId)
    }
}

/// Where one request goes: the cluster and the endpoint picked, shared (not copied) with
/// the stream's record, which properties read.
pub struct Picked {
    /// The cluster's name.
    pub cluster: Arc<str>,
    /// `host:port` of the endpoint.
    pub endpoint: Arc<str>,
    /// The URI scheme to reach it with (`https` for a TLS cluster).
    pub scheme: &'static str,
    /// The endpoint's place in the cluster (for its shared state).
    pub index: usize,
}

struct Cluster {
    name: Arc<str>,
    endpoints: Vec<Arc<str>>,
    spec: ClusterSpec,
    client: Pool,
    /// gRPC needs HTTP/2 whatever the cluster's protocol for plain requests.
    grpc: Pool,
    balancer: Balancer,
    /// Shared with the other workers: ejections, health, requests in flight.
    state: Arc<ClusterState>,
}

/// The clusters as one worker reaches them; each worker pools its own connections, as
/// Envoy's workers do.
#[derive(Default)]
pub struct Upstreams {
    /// In the spec's order: a [`ClusterId`] indexes it. Shared with the worker's next
    /// generation where a reload left the cluster as it was (its pools stay warm).
    clusters: Vec<Rc<Cluster>>,
    /// For callouts, which name their cluster.
    by_name: HashMap<Arc<str>, ClusterId>,
}

/// Envoy's HTTP/1 codec gives a request without a body `content-length: 0` unless its method
/// is one that has no body (GET, HEAD, DELETE, TRACE, CONNECT): upstreams see a POST with an
/// empty body as from Envoy.
fn add_empty_length(req: &mut Request<ChannelBody>) {
    use http::Method;
    use http_body::Body as _;
    let bodiless = [
        Method::GET,
        Method::HEAD,
        Method::DELETE,
        Method::TRACE,
        Method::CONNECT,
    ];
    if req.body().is_end_stream()
        && !bodiless.contains(req.method())
        && !req.headers().contains_key(http::header::CONTENT_LENGTH)
        && !req.headers().contains_key(http::header::TRANSFER_ENCODING)
    {
        req.headers_mut().insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from_static("0"),
        );
    }
}

impl Upstreams {
    /// Builds every cluster's pools over the clusters' shared `states` (one per spec, in its
    /// order); fails on unusable TLS settings (unreadable CA file).
    pub fn new(
        specs: &[ClusterSpec],
        states: &[Arc<ClusterState>],
    ) -> Result<Upstreams, ClusterError> {
        Upstreams::after(specs, states, None)
    }

    /// As [`Upstreams::new`], reusing the clusters (and their pooled connections) of
    /// `previous` whose settings and shared state are the same.
    pub fn after(
        specs: &[ClusterSpec],
        states: &[Arc<ClusterState>],
        previous: Option<&Upstreams>,
    ) -> Result<Upstreams, ClusterError> {
        let mut clusters = Vec::with_capacity(specs.len());
        let mut by_name = HashMap::with_capacity(specs.len());
        for (spec, state) in specs.iter().zip(states) {
            let kept = previous.and_then(|p| {
                p.clusters
                    .iter()
                    .find(|c| c.spec == *spec && Arc::ptr_eq(&c.state, state))
            });
            if let Some(kept) = kept {
                by_name.insert(kept.name.clone(), ClusterId(clusters.len()));
                clusters.push(kept.clone());
                continue;
            }
            let error = |reason| ClusterError {
                cluster: spec.name.clone(),
                reason,
            };
            if spec.endpoints.is_empty() {
                return Err(error("no endpoints".into()));
            }
            // One configuration (and one set of watched certificate files) for both pools.
            // A plain cluster never starts TLS (https_or_http on http:// URIs), but the
            // connector wants a configuration all the same.
            let tls = wasp_tls::client_config(&spec.tls.clone().unwrap_or_default())
                .map_err(|e| error(e.to_string()))?;
            let http2 = spec.protocol == UpstreamProtocol::Http2;
            let client = pool(spec, state, tls.clone(), http2).map_err(error)?;
            let grpc = pool(spec, state, tls, true).map_err(error)?;
            let name: Arc<str> = Arc::from(spec.name.as_str());
            by_name.insert(name.clone(), ClusterId(clusters.len()));
            clusters.push(Rc::new(Cluster {
                name,
                endpoints: spec
                    .endpoints
                    .iter()
                    .map(|e| Arc::from(e.as_str()))
                    .collect(),
                balancer: Balancer::new(spec.lb_policy, &spec.endpoints),
                state: state.clone(),
                spec: spec.clone(),
                client,
                grpc,
            }));
        }
        Ok(Upstreams { clusters, by_name })
    }

    /// The cluster a callout names.
    pub fn find(&self, name: &str) -> Result<ClusterId, UpstreamError> {
        self.by_name
            .get(name)
            .copied()
            .ok_or_else(|| UpstreamError::UnknownCluster(name.into()))
    }

    /// The next endpoint of `cluster` by its balancer; `None` when this worker has no such
    /// cluster (it could not build its clusters and serves without them).
    pub fn pick(&self, cluster: ClusterId) -> Option<Picked> {
        self.pick_for(cluster, None, None)
    }

    /// [`Upstreams::pick`] for a request: `key` is its hash header's value (ring hash),
    /// `avoid` the endpoint its previous attempt failed on.
    pub fn pick_for(
        &self,
        cluster: ClusterId,
        key: Option<&[u8]>,
        avoid: Option<usize>,
    ) -> Option<Picked> {
        let c = self.clusters.get(cluster.0)?;
        let i = c.balancer.pick(&c.state, key, avoid);
        Some(Picked {
            cluster: c.name.clone(),
            endpoint: c.endpoints[i].clone(),
            scheme: if c.spec.tls.is_some() {
                "https"
            } else {
                "http"
            },
            index: i,
        })
    }

    /// The shared state of `cluster`.
    pub fn state(&self, cluster: ClusterId) -> Option<&Arc<ClusterState>> {
        Some(&self.clusters.get(cluster.0)?.state)
    }

    /// How long a connection to `cluster` may take to open.
    pub fn connect_timeout(&self, cluster: ClusterId) -> Duration {
        self.clusters
            .get(cluster.0)
            .map_or(Duration::from_secs(5), |c| c.spec.connect_timeout)
    }

    /// The name of `cluster`, shared.
    pub fn name(&self, cluster: ClusterId) -> Option<Arc<str>> {
        Some(self.clusters.get(cluster.0)?.name.clone())
    }

    /// Sends `req` (whose URI already names the endpoint) on `cluster`'s pool.
    pub async fn send(
        &self,
        cluster: ClusterId,
        req: Request<ChannelBody>,
        timeout: Option<Duration>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        self.send_on(cluster, req, timeout, false).await
    }

    /// Sends a gRPC request (always HTTP/2).
    pub async fn send_grpc(
        &self,
        cluster: ClusterId,
        req: Request<ChannelBody>,
        timeout: Option<Duration>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        self.send_on(cluster, req, timeout, true).await
    }

    async fn send_on(
        &self,
        cluster: ClusterId,
        mut req: Request<ChannelBody>,
        timeout: Option<Duration>,
        grpc: bool,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let c = self
            .clusters
            .get(cluster.0)
            .ok_or_else(|| UpstreamError::UnknownCluster(format!("#{}", cluster.0)))?;
        if !grpc && c.spec.protocol != UpstreamProtocol::Http2 {
            add_empty_length(&mut req);
        }
        let fut = limit::ForRequest::new(if grpc {
            c.grpc.request(req)
        } else {
            c.client.request(req)
        });
        let result = match timeout {
            Some(t) => tokio::time::timeout(t, fut)
                .await
                .map_err(|_| UpstreamError::Timeout)?,
            None => fut.await,
        };
        result.map_err(|e| {
            tracing::debug!(cluster = %c.name, "upstream request failed: {}", describe(&e));
            if is_overflow(&e) {
                UpstreamError::Overflow
            } else if e.is_connect() {
                UpstreamError::Connect(format!(
                    "remote connection failure, transport failure reason: {}",
                    describe(&e)
                ))
            } else {
                UpstreamError::Reset("connection termination".to_string())
            }
        })
    }
}

/// A pool for one cluster: plain or TLS (wasp-tls: the cluster's CA or the web PKI roots, its
/// SNI, the SANs the server must have, the client certificate for mTLS), HTTP/1.1 or HTTP/2. The error says what is wrong; the caller names the cluster.
fn pool(
    spec: &ClusterSpec,
    state: &Arc<ClusterState>,
    tls: rustls::ClientConfig,
    http2: bool,
) -> Result<Pool, String> {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(spec.connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    let mut builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    if let Some(sni) = spec.tls.as_ref().and_then(|t| t.sni.clone()) {
        let name = rustls_pki_types::ServerName::try_from(sni.clone())
            .map_err(|e| format!("bad sni {sni:?}: {e}"))?;
        builder =
            builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name));
    }
    let http = limit::Limited {
        inner: http,
        state: state.clone(),
    };
    let connector = if http2 {
        builder.enable_http2().wrap_connector(http)
    } else {
        builder.enable_http1().wrap_connector(http)
    };
    let mut client = Client::builder(TokioExecutor::new());
    client.pool_idle_timeout(Duration::from_secs(60));
    if http2 {
        client.http2_only(true);
    }
    Ok(client.build(connector))
}

fn is_overflow(e: &hyper_util::client::legacy::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<limit::Overflow>() {
            return true;
        }
        source = s.source();
    }
    false
}

fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
