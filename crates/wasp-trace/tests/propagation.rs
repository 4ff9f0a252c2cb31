//! Injection: what the proxy's span sends upstream, and how sampling is decided.

use std::time::SystemTime;

use wasp_trace::{SpanKind, Tracer, TracingConfig, operation_name};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";
const TRACE64: &str = "64fe8b2a57d3eff7";
const PARENT: &str = "05e3ac9a4f6e3b90";

fn getter<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
    move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

/// An enabled tracer; nothing here ends a sampled span, so nothing is sent to the endpoint.
fn tracer(sampling_percent: f64, propagate_b3: bool) -> Tracer {
    Tracer::new(TracingConfig {
        otlp_endpoint: Some("http://127.0.0.1:9/v1/traces".into()),
        service_name: "test".into(),
        sampling_percent,
        propagate_b3,
    })
    .unwrap()
}

fn header<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
}

fn names(headers: &[(&'static str, String)]) -> Vec<&'static str> {
    headers.iter().map(|(k, _)| *k).collect()
}

#[test]
fn w3c_in_w3c_out_with_a_new_span_id() {
    let traceparent = format!("00-{TRACE}-{SPAN}-01");
    let pairs = [
        ("traceparent", traceparent.as_str()),
        ("tracestate", "congo=t61rcWkgMzE"),
    ];
    let span = tracer(0.0, false).start(&getter(&pairs), "ingress", SystemTime::now());
    let c = span.context();
    assert_eq!(c.trace_id_hex(), TRACE);
    assert_ne!(c.span_id_hex(), SPAN);
    assert_ne!(c.span_id, [0; 8]);
    assert_eq!(
        c.parent_span_id,
        Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
    );
    // The caller sampled it: the 0 % ratio does not apply.
    assert!(c.sampled);
    assert!(span.is_recording());
    assert_eq!(c.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));

    let headers = span.propagation_headers();
    assert_eq!(names(&headers), ["traceparent", "tracestate"]);
    assert_eq!(
        header(&headers, "traceparent").unwrap(),
        format!("00-{TRACE}-{}-01", c.span_id_hex())
    );
    assert_eq!(header(&headers, "tracestate"), Some("congo=t61rcWkgMzE"));
}

#[test]
fn each_request_gets_its_own_span_id() {
    let traceparent = format!("00-{TRACE}-{SPAN}-01");
    let pairs = [("traceparent", traceparent.as_str())];
    let tracer = tracer(100.0, false);
    let a = tracer.start(&getter(&pairs), "a", SystemTime::now());
    let b = tracer.start(&getter(&pairs), "b", SystemTime::now());
    assert_ne!(a.context().span_id, b.context().span_id);
    assert_eq!(a.context().trace_id, b.context().trace_id);
}

#[test]
fn no_context_starts_a_w3c_root() {
    let span = tracer(100.0, false).start(&getter(&[]), "ingress", SystemTime::now());
    let c = span.context();
    assert!(c.is_valid());
    assert_eq!(c.parent_span_id, None);
    assert_eq!(c.tracestate, None);
    let headers = span.propagation_headers();
    assert_eq!(names(&headers), ["traceparent"]);
    assert_eq!(
        header(&headers, "traceparent").unwrap(),
        format!("00-{}-{}-01", c.trace_id_hex(), c.span_id_hex())
    );
}

#[test]
fn propagate_b3_adds_the_multi_headers() {
    let traceparent = format!("00-{TRACE}-{SPAN}-00");
    let pairs = [("traceparent", traceparent.as_str())];
    let span = tracer(100.0, true).start(&getter(&pairs), "ingress", SystemTime::now());
    let c = span.context();
    assert!(!c.sampled);
    let headers = span.propagation_headers();
    assert_eq!(
        names(&headers),
        [
            "traceparent",
            "x-b3-traceid",
            "x-b3-spanid",
            "x-b3-parentspanid",
            "x-b3-sampled"
        ]
    );
    assert_eq!(
        header(&headers, "traceparent").unwrap(),
        format!("00-{TRACE}-{}-00", c.span_id_hex())
    );
    assert_eq!(header(&headers, "x-b3-traceid"), Some(TRACE));
    assert_eq!(header(&headers, "x-b3-spanid").unwrap(), c.span_id_hex());
    assert_eq!(header(&headers, "x-b3-parentspanid"), Some(SPAN));
    assert_eq!(header(&headers, "x-b3-sampled"), Some("0"));
}

#[test]
fn b3_multi_in_b3_multi_out() {
    let pairs = [
        ("x-b3-traceid", TRACE),
        ("x-b3-spanid", SPAN),
        ("x-b3-parentspanid", PARENT),
        ("x-b3-sampled", "1"),
    ];
    // propagate_b3 off: B3 still goes back as B3, and W3C is not added.
    let span = tracer(0.0, false).start(&getter(&pairs), "ingress", SystemTime::now());
    let c = span.context();
    assert_eq!(c.trace_id_hex(), TRACE);
    assert!(c.sampled);
    let headers = span.propagation_headers();
    assert_eq!(
        names(&headers),
        [
            "x-b3-traceid",
            "x-b3-spanid",
            "x-b3-parentspanid",
            "x-b3-sampled"
        ]
    );
    assert_eq!(header(&headers, "x-b3-traceid"), Some(TRACE));
    assert_eq!(header(&headers, "x-b3-spanid").unwrap(), c.span_id_hex());
    assert_ne!(header(&headers, "x-b3-spanid"), Some(SPAN));
    // The proxy's parent is the caller's span, not the caller's parent.
    assert_eq!(header(&headers, "x-b3-parentspanid"), Some(SPAN));
    assert_eq!(header(&headers, "x-b3-sampled"), Some("1"));
}

#[test]
fn b3_64_bit_trace_id_keeps_its_width_in_b3() {
    let pairs = [("x-b3-traceid", TRACE64), ("x-b3-spanid", SPAN)];
    let span = tracer(100.0, false).start(&getter(&pairs), "ingress", SystemTime::now());
    assert_eq!(
        span.context().trace_id_hex(),
        format!("0000000000000000{TRACE64}")
    );
    let headers = span.propagation_headers();
    assert_eq!(header(&headers, "x-b3-traceid"), Some(TRACE64));
    // No decision came: the proxy's (100 %) goes out explicitly.
    assert_eq!(header(&headers, "x-b3-sampled"), Some("1"));
}

#[test]
fn b3_debug_is_propagated_as_flags() {
    let pairs = [
        ("x-b3-traceid", TRACE),
        ("x-b3-spanid", SPAN),
        ("x-b3-flags", "1"),
    ];
    let span = tracer(0.0, false).start(&getter(&pairs), "ingress", SystemTime::now());
    assert!(span.context().sampled);
    let headers = span.propagation_headers();
    assert_eq!(header(&headers, "x-b3-flags"), Some("1"));
    assert_eq!(header(&headers, "x-b3-sampled"), None);
}

#[test]
fn b3_single_in_b3_single_out() {
    let b3 = format!("{TRACE64}-{SPAN}-0-{PARENT}");
    let pairs = [("b3", b3.as_str())];
    let span = tracer(100.0, true).start(&getter(&pairs), "ingress", SystemTime::now());
    let c = span.context();
    assert!(!c.sampled);
    assert!(!span.is_recording());
    let headers = span.propagation_headers();
    assert_eq!(names(&headers), ["b3"]);
    assert_eq!(
        header(&headers, "b3").unwrap(),
        format!("{TRACE64}-{}-0-{SPAN}", c.span_id_hex())
    );
}

#[test]
fn b3_sampling_decision_alone_starts_a_trace_with_it() {
    let span = tracer(100.0, false).start(&getter(&[("b3", "0")]), "ingress", SystemTime::now());
    let c = span.context();
    assert!(c.is_valid());
    assert!(!c.sampled);
    assert_eq!(c.parent_span_id, None);
    let headers = span.propagation_headers();
    assert_eq!(
        header(&headers, "b3").unwrap(),
        format!("{}-{}-0", c.trace_id_hex(), c.span_id_hex())
    );
}

#[test]
fn w3c_is_preferred_over_b3_for_the_context_and_the_answer() {
    let traceparent = format!("00-{TRACE}-{SPAN}-01");
    let pairs = [
        ("x-b3-traceid", TRACE64),
        ("x-b3-spanid", PARENT),
        ("x-b3-sampled", "0"),
        ("traceparent", traceparent.as_str()),
    ];
    let span = tracer(0.0, false).start(&getter(&pairs), "ingress", SystemTime::now());
    assert_eq!(span.context().trace_id_hex(), TRACE);
    assert!(span.context().sampled);
    assert_eq!(names(&span.propagation_headers()), ["traceparent"]);
}

#[test]
fn sampling_ratio_applies_to_new_traces_only() {
    let never = tracer(0.0, false);
    let always = tracer(100.0, false);
    for _ in 0..100 {
        assert!(
            !never
                .start(&getter(&[]), "x", SystemTime::now())
                .is_recording()
        );
        assert!(
            always
                .start(&getter(&[]), "x", SystemTime::now())
                .is_recording()
        );
    }
    // An unsampled caller is followed even at 100 %.
    let traceparent = format!("00-{TRACE}-{SPAN}-00");
    let pairs = [("traceparent", traceparent.as_str())];
    assert!(
        !always
            .start(&getter(&pairs), "x", SystemTime::now())
            .is_recording()
    );

    let half = tracer(50.0, false);
    let sampled = (0..4000)
        .filter(|_| {
            half.start(&getter(&[]), "x", SystemTime::now())
                .is_recording()
        })
        .count();
    // Mean 2000, standard deviation ~32: this bound is 15 deviations wide.
    assert!(
        (1500..=2500).contains(&sampled),
        "{sampled} of 4000 sampled at 50 %"
    );
}

#[test]
fn disabled_tracer_does_nothing() {
    let traceparent = format!("00-{TRACE}-{SPAN}-01");
    let pairs = [("traceparent", traceparent.as_str())];
    for tracer in [
        Tracer::disabled(),
        Tracer::new(TracingConfig::default()).unwrap(),
    ] {
        assert!(!tracer.is_enabled());
        let mut span = tracer.start(&getter(&pairs), "ingress", SystemTime::now());
        assert!(!span.context().is_valid());
        assert!(!span.is_recording());
        assert!(span.propagation_headers().is_empty());
        span.set_attribute("k", "v");
        span.add_event("e", SystemTime::now(), &[]);
        span.end(SystemTime::now());
        tracer.flush(std::time::Duration::from_millis(10));
        assert_eq!(
            (
                tracer.dropped(),
                tracer.exported(),
                tracer.export_failures()
            ),
            (0, 0, 0)
        );
    }
}

#[test]
fn configuration_errors() {
    let err = |endpoint: &str| {
        Tracer::new(TracingConfig {
            otlp_endpoint: Some(endpoint.into()),
            ..TracingConfig::default()
        })
        .unwrap_err()
        .to_string()
    };
    for endpoint in [
        "not a url",
        "127.0.0.1:4318",
        "/v1/traces",
        "ftp://collector/v1/traces",
    ] {
        let message = err(endpoint);
        assert!(message.contains(endpoint), "{message}");
    }
    for percent in [-1.0, 100.5, f64::NAN] {
        let result = Tracer::new(TracingConfig {
            sampling_percent: percent,
            ..TracingConfig::default()
        });
        assert!(result.is_err(), "{percent} accepted");
    }
}

#[test]
fn envoy_operation_names() {
    assert_eq!(
        operation_name(None, SpanKind::Server, "example.com"),
        "ingress"
    );
    assert_eq!(
        operation_name(Some(""), SpanKind::Server, "example.com"),
        "ingress"
    );
    assert_eq!(
        operation_name(None, SpanKind::Client, "example.com"),
        "egress example.com"
    );
    assert_eq!(
        operation_name(
            Some("reviews.default.svc.cluster.local:9080/*"),
            SpanKind::Server,
            "x"
        ),
        "reviews.default.svc.cluster.local:9080/*"
    );
}

#[test]
fn tracer_is_shared_and_spans_move_between_threads() {
    fn shared<T: Clone + Send + Sync + 'static>() {}
    fn sendable<T: Send + 'static>() {}
    shared::<Tracer>();
    sendable::<wasp_trace::Span>();

    // Worker threads share one tracer; a span can end on another thread than it started.
    let tracer = tracer(100.0, false);
    let spans: Vec<_> = (0..4)
        .map(|_| {
            let tracer = tracer.clone();
            std::thread::spawn(move || tracer.start(&getter(&[]), "x", SystemTime::now()))
        })
        .map(|t| t.join().unwrap())
        .collect();
    let mut ids: Vec<_> = spans.iter().map(|s| s.context().trace_id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "threads made the same trace id");
}
