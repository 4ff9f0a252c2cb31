//! The HTTP client every fetch goes through: hyper 1 + hyper-util's pooled client +
//! hyper-rustls on the ring provider.
//!
//! Why not oci-client (measured with 0.18.0, which sits on reqwest 0.13): its `rustls-tls`
//! feature brings in aws-lc-rs; `rustls-tls-no-provider` avoids it but then needs a process-wide
//! ring provider installed before any client exists (reqwest panics otherwise), and either way
//! adds about 140 crates (reqwest, rustls-platform-verifier, oci-spec, chrono, …) beside the
//! hyper + rustls(ring) stack the proxy already links. It covers the OCI protocol (bearer and
//! basic auth challenges, manifests and indexes, digest-checked blobs, push, plain HTTP per
//! host) but has no retry policy or overall deadline, which istio-agent's behaviour needs. What
//! is needed here is small — GET / HEAD / POST / PUT with a size-capped body, redirects, Istio's
//! retry policy — so it is written on the hyper stack, and the OCI flows on it in `oci/`.
//!
//! Retry policy (istio-agent's `HTTPFetcher`): at most `max_attempts` attempts, backoff starting at
//! `initial_backoff` and doubling, retried only on connection errors, per-attempt timeouts and 5xx
//! answers other than 501/505/511; every attempt bounded by `attempt_timeout`, all of them by the
//! caller's deadline.

use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, LOCATION};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

use crate::tls;

/// Timeouts and retries for every request a fetch makes.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Total attempts per request (Istio: 5). 1 disables retries.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles after each failed attempt (Istio: 500 ms).
    pub initial_backoff: Duration,
    /// Limit for one attempt, body included (Istio: 15 s).
    pub attempt_timeout: Duration,
    /// Limit for a whole fetch: manifest, blobs, retries and backoff (Istio: 30 s).
    pub overall_timeout: Duration,
    /// Redirects followed for GET/HEAD (Go's default, which Istio relies on: 10).
    pub max_redirects: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            attempt_timeout: Duration::from_secs(15),
            overall_timeout: Duration::from_secs(30),
            max_redirects: 10,
        }
    }
}

/// The `insecure_registries` list: `host[:port]` entries, or `*` for every host. An entry without
/// a port matches the host on any port.
#[derive(Debug, Clone, Default)]
pub(crate) struct InsecureHosts(Vec<String>);

impl InsecureHosts {
    pub(crate) fn new(list: &[String]) -> Self {
        InsecureHosts(
            list.iter()
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
        )
    }

    /// `authority` is `host[:port]` as it appears in a URL.
    pub(crate) fn contains(&self, authority: &str) -> bool {
        let authority = authority.to_ascii_lowercase();
        let host = split_host(&authority);
        self.0
            .iter()
            .any(|e| e == "*" || *e == authority || (split_host(e) == e && e == host))
    }
}

/// `host[:port]` → `host` (IPv6 literals in brackets kept whole).
fn split_host(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.find(']').map_or(authority, |i| &authority[..=i]);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// One request, cheap to clone for retries and redirects.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    /// Retry on transport errors and 5xx (false for uploads).
    pub retry: bool,
}

impl Req {
    pub(crate) fn new(method: Method, url: impl Into<String>) -> Self {
        Req {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Bytes::new(),
            retry: true,
        }
    }

    pub(crate) fn header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }

    pub(crate) fn set_header(&mut self, name: HeaderName, value: &str) {
        self.headers.retain(|(n, _)| *n != name);
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
    }

    /// `GET https://host/path` for messages, credentials in the URL hidden.
    pub(crate) fn describe(&self) -> String {
        format!("{} {}", self.method, crate::url::redact_url(&self.url))
    }
}

/// A response with its body read (up to the caller's limit).
#[derive(Debug)]
pub(crate) struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The URL that answered, after redirects.
    pub url: String,
    pub attempts: u32,
}

impl Resp {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("{0}")]
    Transport(String),
    #[error("body larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("{0}")]
    BadUrl(String),
}

type HyperClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

pub(crate) struct HttpClient {
    verified: HyperClient,
    unverified: HyperClient,
    insecure: InsecureHosts,
    pub(crate) config: HttpConfig,
}

fn build(tls: rustls::ClientConfig) -> HyperClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

impl HttpClient {
    pub(crate) fn new(config: HttpConfig, insecure: InsecureHosts) -> Self {
        HttpClient {
            verified: build(tls::verified()),
            unverified: build(tls::unverified()),
            insecure,
            config,
        }
    }

    pub(crate) fn insecure(&self) -> &InsecureHosts {
        &self.insecure
    }

    /// Sends `req` with retries and redirects, reads at most `limit` body bytes. Non-2xx answers
    /// are returned as responses (after retries for retryable ones), not as errors.
    pub(crate) async fn send(
        &self,
        req: &Req,
        limit: u64,
        deadline: Instant,
    ) -> Result<Resp, HttpError> {
        let attempts = if req.retry {
            self.config.max_attempts.max(1)
        } else {
            1
        };
        let mut backoff = self.config.initial_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let now = Instant::now();
            if now >= deadline {
                return Err(HttpError::Transport(format!(
                    "{}: overall deadline of {:?} exceeded after {} attempt(s)",
                    req.describe(),
                    self.config.overall_timeout,
                    attempt - 1
                )));
            }
            let budget = self.config.attempt_timeout.min(deadline - now);
            let outcome = match tokio::time::timeout(budget, self.follow(req, limit)).await {
                Ok(r) => r,
                Err(_) => Err(HttpError::Transport(format!(
                    "{}: no complete answer within {budget:?}",
                    req.describe()
                ))),
            };
            let retryable = match &outcome {
                Ok(resp) => is_retryable_status(resp.status),
                Err(HttpError::Transport(_)) => true,
                Err(_) => false,
            };
            if !retryable || attempt >= attempts || Instant::now() + backoff >= deadline {
                return match outcome {
                    Ok(mut resp) => {
                        resp.attempts = attempt;
                        Ok(resp)
                    }
                    Err(HttpError::Transport(e)) if attempt > 1 => Err(HttpError::Transport(
                        format!("{e} (gave up after {attempt} attempts)"),
                    )),
                    Err(e) => Err(e),
                };
            }
            match &outcome {
                Ok(resp) => tracing::debug!(
                    url = %crate::url::redact_url(&req.url), status = resp.status.as_u16(), attempt, "retrying after server error"
                ),
                Err(e) => {
                    tracing::debug!(url = %crate::url::redact_url(&req.url), error = %e, attempt, "retrying after transport error");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }

    /// One attempt, following redirects for GET/HEAD.
    async fn follow(&self, req: &Req, limit: u64) -> Result<Resp, HttpError> {
        let mut current = req.clone();
        let mut redirects = 0;
        loop {
            let resp = self.once(&current, limit).await?;
            let follow = matches!(current.method, Method::GET | Method::HEAD)
                && matches!(resp.status.as_u16(), 301 | 302 | 303 | 307 | 308);
            if !follow {
                return Ok(resp);
            }
            redirects += 1;
            if redirects > self.config.max_redirects {
                return Err(HttpError::BadUrl(format!(
                    "{}: more than {} redirects",
                    req.describe(),
                    self.config.max_redirects
                )));
            }
            let location = resp.header(LOCATION.as_str()).ok_or_else(|| {
                HttpError::BadUrl(format!(
                    "{}: redirect {} without a Location",
                    current.describe(),
                    resp.status
                ))
            })?;
            let next = resolve(&current.url, location).map_err(HttpError::BadUrl)?;
            let (from, to): (Uri, Uri) = (parse_uri(&current.url)?, parse_uri(&next)?);
            if from.scheme_str() == Some("https") && to.scheme_str() != Some("https") {
                return Err(HttpError::BadUrl(format!(
                    "{}: refusing a redirect from https to {next}",
                    current.describe()
                )));
            }
            // Credentials are for the host they were issued for: a redirect to blob storage
            // elsewhere (S3, a CDN) must not carry the registry's Authorization header.
            if from.authority() != to.authority() {
                current.headers.retain(|(n, _)| *n != AUTHORIZATION);
            }
            current.url = next;
        }
    }

    async fn once(&self, req: &Req, limit: u64) -> Result<Resp, HttpError> {
        let uri = parse_uri(&req.url)?;
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .ok_or_else(|| {
                HttpError::BadUrl(format!("{}: no host", crate::url::redact_url(&req.url)))
            })?;
        let mut builder = http::Request::builder()
            .method(req.method.clone())
            .uri(uri.clone());
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        builder = builder.header(http::header::USER_AGENT, "wasp-delivery");
        let request = builder
            .body(Full::new(req.body.clone()))
            .map_err(|e| HttpError::BadUrl(format!("{}: {e}", crate::url::redact_url(&req.url))))?;
        let client = if uri.scheme_str() == Some("https") && self.insecure.contains(&authority) {
            &self.unverified
        } else {
            &self.verified
        };
        let resp = client.request(request).await.map_err(|e| {
            HttpError::Transport(format!("{}: {}", req.describe(), error_chain(&e)))
        })?;
        let (parts, mut body) = resp.into_parts();
        // Error bodies are only read for their message; cap them small.
        let limit = if parts.status.is_success() {
            limit
        } else {
            limit.min(64 * 1024)
        };
        if parts.status.is_success()
            && let Some(len) = parts
                .headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
            && len > limit
            && req.method != Method::HEAD
        {
            return Err(HttpError::TooLarge { limit });
        }
        let mut buf = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                HttpError::Transport(format!(
                    "{}: reading the body: {}",
                    req.describe(),
                    error_chain(&e)
                ))
            })?;
            if let Ok(data) = frame.into_data() {
                if (buf.len() + data.len()) as u64 > limit {
                    if parts.status.is_success() {
                        return Err(HttpError::TooLarge { limit });
                    }
                    buf.extend_from_slice(&data[..(limit as usize - buf.len())]);
                    break;
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(Resp {
            status: parts.status,
            headers: parts.headers,
            body: Bytes::from(buf),
            url: req.url.clone(),
            attempts: 1,
        })
    }
}

/// 5xx is worth another try, except the ones that say the request itself can never work.
fn is_retryable_status(status: StatusCode) -> bool {
    status.is_server_error() && !matches!(status.as_u16(), 501 | 505 | 511)
}

fn parse_uri(url: &str) -> Result<Uri, HttpError> {
    let uri: Uri = url
        .parse()
        .map_err(|e| HttpError::BadUrl(format!("{}: {e}", crate::url::redact_url(url))))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.authority().is_some() => Ok(uri),
        _ => Err(HttpError::BadUrl(format!(
            "{}: only absolute http:// and https:// URLs can be fetched",
            crate::url::redact_url(url)
        ))),
    }
}

/// Resolves a `Location` (or a registry's upload `Location`) against the URL that returned it.
pub(crate) fn resolve(base: &str, location: &str) -> Result<String, String> {
    if location.contains("://") {
        return Ok(location.to_string());
    }
    let uri: Uri = base.parse().map_err(|e| format!("{base}: {e}"))?;
    let scheme = uri.scheme_str().unwrap_or("https");
    let authority = uri
        .authority()
        .map(http::uri::Authority::as_str)
        .unwrap_or("");
    if let Some(rest) = location.strip_prefix("//") {
        return Ok(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Ok(format!("{scheme}://{authority}{location}"));
    }
    let path = uri.path();
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    Ok(format!("{scheme}://{authority}{dir}{location}"))
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_matching() {
        let l = InsecureHosts::new(&["reg.local:5000".into(), "other.local".into()]);
        assert!(l.contains("reg.local:5000"));
        assert!(!l.contains("reg.local:5001"));
        assert!(!l.contains("reg.local"));
        assert!(l.contains("other.local:443"));
        assert!(l.contains("OTHER.local"));
        assert!(!l.contains("x.io"));
        assert!(InsecureHosts::new(&["*".into()]).contains("x.io"));
        assert!(!InsecureHosts::new(&[]).contains("127.0.0.1:5000"));
    }

    #[test]
    fn resolving_locations() {
        assert_eq!(
            resolve(
                "http://h:1/v2/r/blobs/uploads/",
                "/v2/r/blobs/uploads/u?_state=x"
            )
            .unwrap(),
            "http://h:1/v2/r/blobs/uploads/u?_state=x"
        );
        assert_eq!(resolve("http://h/a/b", "c").unwrap(), "http://h/a/c");
        assert_eq!(resolve("https://h/a", "//o/x").unwrap(), "https://o/x");
        assert_eq!(resolve("https://h/a", "http://o/x").unwrap(), "http://o/x");
    }
}
