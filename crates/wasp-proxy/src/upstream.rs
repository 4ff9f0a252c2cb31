//! Clusters: per-worker connection pools to upstream endpoints, HTTP/1.1 or HTTP/2.

use std::cell::Cell;
use std::collections::HashMap;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::body::ChannelBody;
use crate::spec::{ClusterSpec, UpstreamProtocol};

/// Why an upstream request got no response.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("unknown cluster {0:?}")]
    UnknownCluster(String),
    #[error("upstream connect error or disconnect/reset before headers: {0}")]
    Connect(String),
    #[error("upstream request timeout")]
    Timeout,
}

struct Cluster {
    spec: ClusterSpec,
    client: Client<HttpConnector, ChannelBody>,
    next: Cell<usize>,
}

/// The clusters as one worker reaches them; each worker pools its own connections, as
/// Envoy's workers do.
pub struct Upstreams {
    clusters: HashMap<String, Cluster>,
}

impl Upstreams {
    pub fn new(specs: &[ClusterSpec]) -> Upstreams {
        let clusters = specs
            .iter()
            .map(|spec| {
                let mut connector = HttpConnector::new();
                connector.set_connect_timeout(Some(spec.connect_timeout));
                connector.set_nodelay(true);
                connector.enforce_http(false);
                let mut builder = Client::builder(TokioExecutor::new());
                builder.pool_idle_timeout(Duration::from_secs(60));
                if spec.protocol == UpstreamProtocol::Http2 {
                    builder.http2_only(true);
                }
                let client = builder.build(connector);
                (
                    spec.name.clone(),
                    Cluster {
                        spec: spec.clone(),
                        client,
                        next: Cell::new(0),
                    },
                )
            })
            .collect();
        Upstreams { clusters }
    }

    /// The next endpoint of `cluster`, round-robin.
    pub fn pick(&self, cluster: &str) -> Result<(String, UpstreamProtocol), UpstreamError> {
        let c = self
            .clusters
            .get(cluster)
            .ok_or_else(|| UpstreamError::UnknownCluster(cluster.into()))?;
        let i = c.next.get();
        c.next.set(i.wrapping_add(1));
        Ok((
            c.spec.endpoints[i % c.spec.endpoints.len()].clone(),
            c.spec.protocol,
        ))
    }

    /// Sends `req` (whose URI already names the endpoint) on `cluster`'s pool.
    pub async fn send(
        &self,
        cluster: &str,
        req: Request<ChannelBody>,
        timeout: Option<Duration>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let c = self
            .clusters
            .get(cluster)
            .ok_or_else(|| UpstreamError::UnknownCluster(cluster.into()))?;
        let fut = c.client.request(req);
        let result = match timeout {
            Some(t) => tokio::time::timeout(t, fut)
                .await
                .map_err(|_| UpstreamError::Timeout)?,
            None => fut.await,
        };
        result.map_err(|e| UpstreamError::Connect(describe(&e)))
    }
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
