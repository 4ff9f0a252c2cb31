//! OTLP/HTTP export: a bounded queue in front of a thread of its own, which batches spans
//! and POSTs them as protobuf (`ExportTraceServiceRequest`, `application/x-protobuf`).
//!
//! The request path only does a `try_send` on the queue: a full queue drops the span and
//! counts it. The thread runs a single-threaded tokio runtime for the hyper client, sends a
//! batch when it holds `max_batch` spans or `flush_interval` after the last send, and does
//! not retry a failed batch (neither does Envoy's exporter): it counts the failure and logs
//! it, at most once per [`LOG_INTERVAL`]. When the last [`Tracer`](crate::Tracer) and
//! [`Span`](crate::Span) are gone, the thread sends what it holds and ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;

use crate::error::TraceError;
use crate::otlp;
use crate::record::FinishedSpan;

/// At most one warning per this interval for failed exports and dropped spans.
pub const LOG_INTERVAL: Duration = Duration::from_secs(30);

/// How the exporter batches and sends; the defaults are the OpenTelemetry batch span
/// processor's (queue 2048, batch 512, 5 s delay) and the OTLP exporter's 10 s timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// Spans waiting for the exporter; past that, spans are dropped.
    pub queue_capacity: usize,
    /// Spans per request at most; a full batch is sent at once.
    pub max_batch: usize,
    /// The longest a span waits in a partial batch.
    pub flush_interval: Duration,
    /// The limit for one export request, connection included.
    pub request_timeout: Duration,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            queue_capacity: 2048,
            max_batch: 512,
            flush_interval: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
        }
    }
}

enum Message {
    Span(Box<FinishedSpan>),
    /// Send everything received so far, then answer.
    Flush(std::sync::mpsc::Sender<()>),
}

/// Counters shared by the request path and the export thread.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) dropped: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) exported: AtomicU64,
}

/// The request path's end of the exporter.
#[derive(Debug)]
pub(crate) struct Queue {
    sender: SyncSender<Message>,
    pub(crate) stats: Arc<Stats>,
}

impl Queue {
    /// Queues a span without blocking; drops and counts it when the queue is full.
    pub(crate) fn push(&self, span: FinishedSpan) {
        match self.sender.try_send(Message::Span(Box::new(span))) {
            Ok(()) => {}
            // Disconnected only if the thread died; the span is lost either way.
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits up to `timeout` for the spans queued so far to be sent (or to fail).
    pub(crate) fn flush(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let (done, wait) = std::sync::mpsc::channel();
        let mut message = Message::Flush(done);
        // The queue may be full: retry until the deadline rather than block without bound.
        loop {
            match self.sender.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                    message = m;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => return,
            }
        }
        let _ = wait.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }
}

/// Checks the endpoint: an absolute `http`/`https` URL. Without a path, OTLP's
/// `/v1/traces` is used (as OpenTelemetry does for its generic endpoint setting); a path is
/// kept as is.
pub(crate) fn parse_endpoint(endpoint: &str) -> Result<Uri, TraceError> {
    let bad = |reason: &str| TraceError::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = endpoint
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(_) => return Err(bad("the scheme must be http or https")),
        None => {
            return Err(bad(
                "expected an absolute URL such as http://127.0.0.1:4318/v1/traces",
            ));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if matches!(uri.path(), "" | "/") && uri.query().is_none() {
        let mut parts = uri.into_parts();
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/v1/traces"));
        return Uri::from_parts(parts).map_err(|e| bad(&e.to_string()));
    }
    Ok(uri)
}

/// Starts the export thread for `endpoint`.
pub(crate) fn start(
    endpoint: Uri,
    service_name: &str,
    options: &ExportOptions,
) -> Result<Queue, TraceError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| TraceError::Exporter(format!("tokio runtime: {e}")))?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    // ring, as the rest of wasp's TLS stack; Mozilla's roots, as a collector behind a public
    // certificate is the https case that needs no configuration.
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))
        .map_err(|e| TraceError::Exporter(format!("TLS: {e}")))?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let client = Client::builder(TokioExecutor::new()).build(https);

    let (sender, receiver) = std::sync::mpsc::sync_channel(options.queue_capacity.max(1));
    let stats = Arc::new(Stats::default());
    let worker = Worker {
        receiver,
        runtime,
        client,
        endpoint,
        resource: otlp::resource(service_name),
        options: options.clone(),
        stats: Arc::clone(&stats),
        last_warning: None,
        suppressed: 0,
        dropped_seen: 0,
    };
    std::thread::Builder::new()
        .name("wasp-trace-otlp".to_owned())
        .spawn(move || worker.run())
        .map_err(|e| TraceError::Exporter(format!("thread: {e}")))?;
    Ok(Queue { sender, stats })
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

struct Worker {
    receiver: Receiver<Message>,
    runtime: tokio::runtime::Runtime,
    client: HttpClient,
    endpoint: Uri,
    resource: Resource,
    options: ExportOptions,
    stats: Arc<Stats>,
    last_warning: Option<Instant>,
    suppressed: u64,
    dropped_seen: u64,
}

impl Worker {
    fn run(mut self) {
        let mut batch = Vec::new();
        let mut deadline = Instant::now() + self.options.flush_interval;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.receiver.recv_timeout(wait) {
                Ok(Message::Span(span)) => {
                    batch.push(*span);
                    if batch.len() >= self.options.max_batch.max(1) {
                        self.send(&mut batch);
                        deadline = Instant::now() + self.options.flush_interval;
                    }
                }
                Ok(Message::Flush(done)) => {
                    self.send(&mut batch);
                    let _ = done.send(());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.send(&mut batch);
                    return;
                }
            }
            // Checked after every message too: under steady traffic the receive never times
            // out, and a partial batch must still leave within the interval.
            if Instant::now() >= deadline {
                self.send(&mut batch);
                deadline = Instant::now() + self.options.flush_interval;
            }
        }
    }

    /// Sends `batch` (emptying it) and accounts for the result.
    fn send(&mut self, batch: &mut Vec<FinishedSpan>) {
        self.report_drops();
        if batch.is_empty() {
            return;
        }
        let count = batch.len() as u64;
        let request = otlp::request(&self.resource, batch.drain(..));
        let body = Bytes::from(request.encode_to_vec());
        let post = post(&self.client, &self.endpoint, body);
        let result = match self
            .runtime
            .block_on(async { tokio::time::timeout(self.options.request_timeout, post).await })
        {
            Ok(result) => result,
            Err(_) => Err(format!(
                "no answer within {:?}",
                self.options.request_timeout
            )),
        };
        match result {
            Ok(rejected) => {
                let rejected = rejected.min(count);
                self.stats
                    .exported
                    .fetch_add(count - rejected, Ordering::Relaxed);
                if rejected > 0 {
                    self.warn(&format!(
                        "the collector rejected {rejected} of {count} spans"
                    ));
                }
            }
            Err(reason) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                self.warn(&format!("cannot export {count} spans: {reason}"));
            }
        }
    }

    fn report_drops(&mut self) {
        let dropped = self.stats.dropped.load(Ordering::Relaxed);
        if dropped > self.dropped_seen {
            let new = dropped - self.dropped_seen;
            self.dropped_seen = dropped;
            self.warn(&format!(
                "the trace export queue was full: {new} spans dropped"
            ));
        }
    }

    /// Logs at most once per [`LOG_INTERVAL`]: a dead collector must not flood the log.
    fn warn(&mut self, message: &str) {
        let now = Instant::now();
        if self
            .last_warning
            .is_some_and(|last| now.duration_since(last) < LOG_INTERVAL)
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(
            endpoint = %self.endpoint,
            suppressed = self.suppressed,
            "OTLP trace export: {message}"
        );
        self.last_warning = Some(now);
        self.suppressed = 0;
    }
}

/// POSTs one request; `Ok(rejected spans)` on a 2xx.
async fn post(client: &HttpClient, endpoint: &Uri, body: Bytes) -> Result<u64, String> {
    let request = http::Request::post(endpoint.clone())
        .header(http::header::CONTENT_TYPE, "application/x-protobuf")
        .header(
            http::header::USER_AGENT,
            concat!("wasp-trace/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let response = client.request(request).await.map_err(|e| chain(&e))?;
    let status = response.status();
    // Read the whole answer: it frees the connection for the next batch, and it carries the
    // collector's partial-success count or error message.
    let answer = response
        .into_body()
        .collect()
        .await
        .map_err(|e| chain(&e))?
        .to_bytes();
    if !status.is_success() {
        let text = String::from_utf8_lossy(&answer[..answer.len().min(200)]).into_owned();
        return Err(format!("the collector answered {status}: {text}"));
    }
    let rejected = ExportTraceServiceResponse::decode(answer)
        .ok()
        .and_then(|r| r.partial_success)
        .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0));
    Ok(rejected)
}

/// An error with its causes: hyper's top-level message alone ("client error (Connect)")
/// hides the useful part ("Connection refused").
fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
