//! Tracing over real sockets: a request with a W3C `traceparent` reaches the upstream with the
//! same trace and wasp's span as parent, and the span — with the plugin phases as events —
//! arrives at a local OTLP/HTTP collector stand-in.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
use prost::Message;
use support::*;
use wasp_proxy::spec::TracingSpec;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// An OTLP/HTTP collector: keeps every `POST /v1/traces` body.
fn collector() -> (std::net::SocketAddr, Arc<Mutex<Vec<Bytes>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let sink = bodies.clone();
    std::thread::spawn(move || {
        block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let sink = sink.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let sink = sink.clone();
                        async move {
                            assert_eq!(req.uri().path(), "/v1/traces");
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            sink.lock().unwrap().push(body);
                            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                                Bytes::new(),
                            )))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
    });
    (addr, bodies)
}

fn spans(bodies: &Mutex<Vec<Bytes>>) -> Vec<ProtoSpan> {
    bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| ExportTraceServiceRequest::decode(b.clone()).unwrap())
        .flat_map(|r| r.resource_spans)
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .collect()
}

#[test]
fn traceparent_propagated_and_span_exported() {
    let (otlp, bodies) = collector();
    let up = upstream();
    let mut spec = spec(up.address, vec![plugin("hostcalls", "")]);
    spec.tracing = Some(TracingSpec {
        otlp_endpoint: format!("http://{otlp}/v1/traces"),
        service_name: "wasp-test".into(),
        sampling_percent: 100.0,
        propagate_b3: false,
    });
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    let a = get(addr, "/traced?q=1", &[("traceparent", &traceparent)]);
    assert_eq!(a.status, 200);
    // The upstream saw the same trace, with wasp's span as parent.
    let sent = a.header("x-echo-h-traceparent").unwrap().to_string();
    let parts: Vec<&str> = sent.split('-').collect();
    assert_eq!(
        (parts[0], parts[1], parts[3]),
        ("00", TRACE, "01"),
        "{sent}"
    );
    assert_ne!(parts[2], PARENT);
    // A request without context starts a trace of its own.
    let b = get(addr, "/", &[]);
    assert!(
        b.header("x-echo-h-traceparent")
            .is_some_and(|t| !t.contains(TRACE))
    );
    proxy.shutdown();

    let spans = spans(&bodies);
    assert_eq!(spans.len(), 2, "{spans:?}");
    let span = spans
        .iter()
        .find(|s| hex::encode(&s.trace_id) == TRACE)
        .expect("the traced request's span");
    assert_eq!(hex::encode(&span.span_id), parts[2]);
    assert_eq!(hex::encode(&span.parent_span_id), PARENT);
    assert_eq!(span.name, "ingress");
    let attribute = |key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .map(|v| format!("{:?}", v.value))
    };
    assert!(attribute("url.path").unwrap().contains("/traced"));
    assert!(
        attribute("http.response.status_code")
            .unwrap()
            .contains("200")
    );
    assert!(attribute("upstream_cluster").unwrap().contains("backend"));
    let events: Vec<&str> = span.events.iter().map(|e| e.name.as_str()).collect();
    assert!(
        events.contains(&"plugin hostcalls request_headers"),
        "{events:?}"
    );
    assert!(
        events.contains(&"plugin hostcalls response_headers"),
        "{events:?}"
    );
    std::thread::sleep(Duration::from_millis(10));
}
