//! Export end to end, against an OTLP/HTTP collector stand-in: a hyper server on 127.0.0.1
//! that takes `POST /v1/traces` with `application/x-protobuf` and keeps what it got.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span as ProtoSpan, span, status};
use prost::Message;
use wasp_trace::{ExportOptions, Tracer, TracingConfig, keys};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";
const FLUSH: Duration = Duration::from_secs(10);

struct Received {
    method: String,
    path: String,
    content_type: Option<String>,
    body: Bytes,
}

struct Collector {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Collector {
    /// Starts the stand-in on its own thread and runtime; it lives as long as the test binary.
    /// With `answer: false` it accepts connections and never answers (a hung collector).
    fn start(answer: bool) -> Collector {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&received);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let mut held = Vec::new();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    if !answer {
                        held.push(stream);
                        continue;
                    }
                    let sink = Arc::clone(&sink);
                    tokio::spawn(async move {
                        let service = service_fn(move |req| handle(req, Arc::clone(&sink)));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        Collector { addr, received }
    }

    fn endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    fn requests(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// Every span received, in order.
    fn spans(&self) -> Vec<ProtoSpan> {
        self.decoded()
            .into_iter()
            .flat_map(|r| r.resource_spans)
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .collect()
    }

    fn decoded(&self) -> Vec<ExportTraceServiceRequest> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|r| ExportTraceServiceRequest::decode(r.body.clone()).unwrap())
            .collect()
    }
}

async fn handle(
    req: Request<Incoming>,
    sink: Arc<Mutex<Vec<Received>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    let content_type = parts
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let ok = parts.method == hyper::Method::POST
        && parts.uri.path() == "/v1/traces"
        && content_type.as_deref() == Some("application/x-protobuf");
    sink.lock().unwrap().push(Received {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        content_type,
        body,
    });
    let answer = ExportTraceServiceResponse::default().encode_to_vec();
    Ok(Response::builder()
        .status(if ok {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        })
        .header(hyper::header::CONTENT_TYPE, "application/x-protobuf")
        .body(Full::new(Bytes::from(answer)))
        .unwrap())
}

fn options() -> ExportOptions {
    ExportOptions {
        // Tests send with flush(): a partial batch must not leave on its own meanwhile.
        flush_interval: Duration::from_secs(600),
        request_timeout: Duration::from_secs(2),
        ..ExportOptions::default()
    }
}

fn tracer(endpoint: String, sampling_percent: f64) -> Tracer {
    Tracer::with_options(
        TracingConfig {
            otlp_endpoint: Some(endpoint),
            service_name: "productpage.default".into(),
            sampling_percent,
            propagate_b3: false,
        },
        &options(),
    )
    .unwrap()
}

fn getter<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
    move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

fn string(s: &str) -> any_value::Value {
    any_value::Value::StringValue(s.to_owned())
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

#[test]
fn a_span_is_exported_with_everything_it_recorded() {
    let collector = Collector::start(true);
    let tracer = tracer(collector.endpoint(), 100.0);
    let traceparent = format!("00-{TRACE}-{SPAN}-01");
    let pairs = [
        ("traceparent", traceparent.as_str()),
        ("tracestate", "congo=t61rcWkgMzE"),
    ];
    let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut span = tracer.start(&getter(&pairs), "ingress", start);
    span.set_name("reviews.default.svc.cluster.local:9080/*");
    span.set_attribute(keys::HTTP_REQUEST_METHOD, "GET");
    span.set_attribute(keys::URL_PATH, "/reviews/1");
    span.set_attribute(keys::SERVER_ADDRESS, "reviews");
    span.set_attribute(keys::USER_AGENT_ORIGINAL, "curl/8.0");
    span.set_attribute(keys::UPSTREAM_CLUSTER, "outbound|9080||reviews");
    span.set_attribute(keys::URL_PATH, "/reviews/2");
    span.set_attribute("wasp.cached", true);
    let phases = [
        "plugin my-plugin on_http_request_headers",
        "plugin my-plugin on_http_response_headers",
        "plugin other on_log",
    ];
    for (i, phase) in phases.iter().enumerate() {
        let at = start + Duration::from_millis(i as u64 + 1);
        span.add_event(*phase, at, &[("plugin.root_id", format!("root-{i}"))]);
    }
    span.set_status_code(503);
    let context = span.context().clone();
    let end = start + Duration::from_millis(25);
    span.end(end);

    tracer.flush(FLUSH);
    assert_eq!(tracer.exported(), 1);
    assert_eq!((tracer.export_failures(), tracer.dropped()), (0, 0));

    {
        let received = collector.received.lock().unwrap();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].method, "POST");
        assert_eq!(received[0].path, "/v1/traces");
        assert_eq!(
            received[0].content_type.as_deref(),
            Some("application/x-protobuf")
        );
    }
    let request = collector.decoded().remove(0);
    let resource = request.resource_spans[0].resource.as_ref().unwrap();
    assert_eq!(
        attribute(&resource.attributes, "service.name"),
        Some(&string("productpage.default"))
    );
    assert_eq!(
        request.resource_spans[0].scope_spans[0]
            .scope
            .as_ref()
            .unwrap()
            .name,
        "wasp"
    );

    let spans = collector.spans();
    assert_eq!(spans.len(), 1);
    let s = &spans[0];
    assert_eq!(s.name, "reviews.default.svc.cluster.local:9080/*");
    assert_eq!(hex(&s.trace_id), TRACE);
    assert_eq!(hex(&s.parent_span_id), SPAN);
    assert_eq!(s.span_id, context.span_id);
    assert_eq!(s.trace_state, "congo=t61rcWkgMzE");
    assert_eq!(s.kind, span::SpanKind::Server as i32);
    assert_eq!(s.start_time_unix_nano, nanos(start));
    assert_eq!(s.end_time_unix_nano, nanos(end));
    // Sampled, and a remote parent.
    assert_eq!(s.flags, 0x301);
    assert_eq!(
        s.status.as_ref().unwrap().code,
        status::StatusCode::Error as i32
    );

    let attr = |k| attribute(&s.attributes, k);
    assert_eq!(attr("http.request.method"), Some(&string("GET")));
    // Set twice: the last value, once.
    assert_eq!(attr("url.path"), Some(&string("/reviews/2")));
    assert_eq!(
        s.attributes
            .iter()
            .filter(|kv| kv.key == "url.path")
            .count(),
        1
    );
    assert_eq!(attr("server.address"), Some(&string("reviews")));
    assert_eq!(attr("user_agent.original"), Some(&string("curl/8.0")));
    assert_eq!(
        attr("upstream_cluster"),
        Some(&string("outbound|9080||reviews"))
    );
    assert_eq!(
        attr("http.response.status_code"),
        Some(&any_value::Value::IntValue(503))
    );
    assert_eq!(
        attr("wasp.cached"),
        Some(&any_value::Value::BoolValue(true))
    );

    let events: Vec<&str> = s.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(events, phases);
    for (i, e) in s.events.iter().enumerate() {
        assert_eq!(e.time_unix_nano, nanos(start) + (i as u64 + 1) * 1_000_000);
        assert_eq!(
            attribute(&e.attributes, "plugin.root_id"),
            Some(&string(&format!("root-{i}")))
        );
    }
}

#[test]
fn spans_are_batched_into_one_request_and_a_root_span_has_no_parent() {
    let collector = Collector::start(true);
    let tracer = tracer(collector.endpoint(), 100.0);
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut span = tracer.start(&getter(&[]), "ingress", SystemTime::now());
        span.set_status_code(200 + i);
        ids.push(span.context().span_id);
        span.end(SystemTime::now());
    }
    tracer.flush(FLUSH);
    assert_eq!(tracer.exported(), 5);
    assert_eq!(collector.requests(), 1);
    let spans = collector.spans();
    let got: Vec<[u8; 8]> = spans
        .iter()
        .map(|s| s.span_id.clone().try_into().unwrap())
        .collect();
    assert_eq!(got, ids);
    for s in &spans {
        assert!(s.parent_span_id.is_empty());
        assert_eq!(s.flags, 0x101);
        assert_eq!(s.status, None, "2xx is not an error");
        assert_eq!(s.name, "ingress");
    }
}

#[test]
fn a_full_batch_leaves_without_flush() {
    let collector = Collector::start(true);
    let tracer = Tracer::with_options(
        TracingConfig {
            otlp_endpoint: Some(collector.endpoint()),
            ..TracingConfig::default()
        },
        &ExportOptions {
            max_batch: 3,
            ..options()
        },
    )
    .unwrap();
    for _ in 0..3 {
        tracer
            .start(&getter(&[]), "ingress", SystemTime::now())
            .end(SystemTime::now());
    }
    let deadline = std::time::Instant::now() + FLUSH;
    while tracer.exported() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(tracer.exported(), 3);
    assert_eq!(collector.requests(), 1);
}

#[test]
fn unsampled_parent_is_not_exported() {
    let collector = Collector::start(true);
    let tracer = tracer(collector.endpoint(), 100.0);
    let traceparent = format!("00-{TRACE}-{SPAN}-00");
    let pairs = [("traceparent", traceparent.as_str())];
    let mut span = tracer.start(&getter(&pairs), "ingress", SystemTime::now());
    span.add_event("plugin p on_http_request_headers", SystemTime::now(), &[]);
    span.end(SystemTime::now());
    tracer.flush(FLUSH);
    assert_eq!((tracer.exported(), collector.requests()), (0, 0));
}

#[test]
fn new_trace_at_0_percent_is_not_exported_at_100_it_is() {
    let collector = Collector::start(true);
    let never = tracer(collector.endpoint(), 0.0);
    never
        .start(&getter(&[]), "ingress", SystemTime::now())
        .end(SystemTime::now());
    never.flush(FLUSH);
    assert_eq!((never.exported(), collector.requests()), (0, 0));

    let always = tracer(collector.endpoint(), 100.0);
    always
        .start(&getter(&[]), "ingress", SystemTime::now())
        .end(SystemTime::now());
    always.flush(FLUSH);
    assert_eq!(always.exported(), 1);
    assert_eq!(collector.spans().len(), 1);
}

#[test]
fn collector_down_counts_failures_and_keeps_going() {
    // A port that was just free: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tracer = tracer(format!("http://127.0.0.1:{port}/v1/traces"), 100.0);
    tracer
        .start(&getter(&[]), "ingress", SystemTime::now())
        .end(SystemTime::now());
    tracer.flush(FLUSH);
    assert_eq!(tracer.export_failures(), 1);
    tracer
        .start(&getter(&[]), "ingress", SystemTime::now())
        .end(SystemTime::now());
    tracer.flush(FLUSH);
    assert_eq!(tracer.export_failures(), 2);
    assert_eq!(tracer.exported(), 0);
}

#[test]
fn a_hung_collector_times_out_and_a_full_queue_drops_spans() {
    let collector = Collector::start(false);
    let tracer = Tracer::with_options(
        TracingConfig {
            otlp_endpoint: Some(collector.endpoint()),
            ..TracingConfig::default()
        },
        &ExportOptions {
            queue_capacity: 1,
            max_batch: 1,
            request_timeout: Duration::from_millis(500),
            ..options()
        },
    )
    .unwrap();
    // The first span is being sent (and hangs), one more waits in the queue: of 10, at least
    // 8 are dropped, and ending them does not block.
    let started = std::time::Instant::now();
    for _ in 0..10 {
        tracer
            .start(&getter(&[]), "ingress", SystemTime::now())
            .end(SystemTime::now());
    }
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "end() blocked"
    );
    assert!(tracer.dropped() >= 8, "dropped {}", tracer.dropped());
    tracer.flush(FLUSH);
    assert!(tracer.export_failures() >= 1);
    assert_eq!(tracer.exported(), 0);
}

#[test]
fn disabled_tracer_sends_nothing() {
    let collector = Collector::start(true);
    let disabled = Tracer::new(TracingConfig {
        otlp_endpoint: None,
        ..TracingConfig::default()
    })
    .unwrap();
    let traceparent = format!("00-{TRACE}-{SPAN}-01");
    let pairs = [("traceparent", traceparent.as_str())];
    for tracer in [disabled, Tracer::disabled()] {
        let mut span = tracer.start(&getter(&pairs), "ingress", SystemTime::now());
        span.set_attribute(keys::HTTP_REQUEST_METHOD, "GET");
        span.end(SystemTime::now());
        tracer.flush(FLUSH);
        assert_eq!(tracer.exported(), 0);
    }
    // Give a stray request time to arrive, were there one.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(collector.requests(), 0);
}

#[test]
fn endpoint_without_a_path_gets_v1_traces() {
    let collector = Collector::start(true);
    let tracer = tracer(format!("http://{}", collector.addr), 100.0);
    tracer
        .start(&getter(&[]), "ingress", SystemTime::now())
        .end(SystemTime::now());
    tracer.flush(FLUSH);
    assert_eq!(tracer.exported(), 1);
    assert_eq!(collector.received.lock().unwrap()[0].path, "/v1/traces");
}
