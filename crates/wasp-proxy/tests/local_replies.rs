//! Answers that do not come from the upstream: plugin local replies (HTTP and gRPC), resets,
//! and the proxy's own 404, 503 and 504.
//!
//! A plugin answers from three phases here: request headers, request body (end of stream)
//! and response headers. Envoy's rule decides which plugins see the reply on its way out:
//! while no response headers exist yet it is encoded through the chain; once the upstream's
//! headers are being processed it goes straight to the client.

mod support;

use std::time::{Duration, Instant};

use support::*;
use wasp_proxy::spec::{PathMatch, RouteAction, RouteSpec};

#[test]
fn local_reply_from_request_headers() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    for proto in [Proto::H1, Proto::H2] {
        let a = exchange(
            addr,
            proto,
            "GET",
            "/",
            &[("x-scenario", "local-reply")],
            empty(),
        );
        assert_eq!(a.status, 418, "{a:?}");
        assert_eq!(a.body, "teapot");
        assert_eq!(a.header("x-local"), Some("1"));
        if let Some(n) = a.header("content-length") {
            assert_eq!(n, "6");
        }
        // The reply passes the plugin's response callbacks on its way out, as in Envoy.
        assert_eq!(a.header("x-hostcalls-response"), Some("1"));
        assert_eq!(
            a.header("x-echo-method"),
            None,
            "the upstream must not be asked"
        );
    }
    // Answering and returning Continue still stops the chain; a pending request body is
    // never forwarded.
    let a = send(
        addr,
        "POST",
        "/sink",
        &[("x-scenario", "local-reply-continue")],
        "body",
    );
    assert_eq!(a.status, 418);
    assert_eq!(a.body, "teapot");
    let text = stats(&proxy);
    assert_eq!(metric(&text, "wasp_upstream_requests_total"), Some(0.0));
    assert_eq!(metric(&text, "wasp_local_replies_total"), Some(3.0));
    proxy.shutdown();
}

#[test]
fn local_reply_from_the_request_body_phase() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    for proto in [Proto::H1, Proto::H2] {
        let a = exchange(
            addr,
            proto,
            "POST",
            "/upload",
            &[("x-scenario", "local-reply-body")],
            chunked(&["part one,", "part two"]),
        );
        assert_eq!(a.status, 418, "{a:?}");
        assert_eq!(a.body, "from body");
        assert_eq!(a.header("x-local"), Some("body"));
        // No response existed yet, so the reply is encoded through the chain.
        assert_eq!(a.header("x-hostcalls-response"), Some("1"));
    }
    // The headers had passed the chain, so (as in Envoy) the upstream request may have
    // started; its answer never reaches the client.
    let text = stats(&proxy);
    assert_eq!(metric(&text, "wasp_local_replies_total"), Some(2.0));
    proxy.shutdown();
}

#[test]
fn local_reply_from_the_response_headers_phase_replaces_the_upstream_answer() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    for proto in [Proto::H1, Proto::H2] {
        let a = exchange(
            addr,
            proto,
            "GET",
            "/",
            &[("x-scenario", "local-reply-response")],
            empty(),
        );
        assert_eq!(a.status, 418, "{a:?}");
        assert_eq!(a.body, "from response");
        assert_eq!(a.header("x-local"), Some("response"));
        // Nothing of the upstream's answer leaks, and the reply goes straight to the
        // client (Envoy's sendDirectLocalReply): the plugin's own response edits are gone.
        assert_eq!(a.header("x-echo-method"), None);
        assert_eq!(a.header("x-hostcalls-response"), None);
    }
    assert_eq!(up.seen().len(), 2, "the upstream was asked both times");
    proxy.shutdown();
}

#[test]
fn grpc_local_reply_is_a_trailers_only_grpc_answer() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    for proto in [Proto::H1, Proto::H2] {
        let a = exchange(
            addr,
            proto,
            "POST",
            "/pkg.Service/Method",
            &[
                ("x-scenario", "local-reply-grpc"),
                ("content-type", "application/grpc"),
            ],
            empty(),
        );
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.header("grpc-status"), Some("7"));
        assert_eq!(a.header("grpc-message"), Some("nope"));
        assert_eq!(a.header("content-type"), Some("application/grpc"));
        assert_eq!(a.body, "");
    }
    proxy.shutdown();
}

#[test]
fn a_failure_in_the_response_headers_phase_replaces_the_upstream_answer() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    let a = get(addr, "/", &[("x-scenario", "panic-response-headers")]);
    assert_eq!(a.status, 503, "{a:?}");
    // Nothing of the upstream's answer leaks: its headers had not been sent yet.
    assert_eq!(a.header("x-echo-method"), None);
    let text = stats(&proxy);
    assert_eq!(metric(&text, "wasp_upstream_requests_total"), Some(1.0));
    proxy.shutdown();
}

#[test]
fn reset_gives_the_client_a_broken_exchange() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    for proto in [Proto::H1, Proto::H2] {
        let r = try_exchange(addr, proto, "GET", "/", &[("x-scenario", "reset")], empty());
        assert!(r.is_err(), "{proto:?}: expected a reset, got {r:?}");
    }
    // Raw HTTP/1: the connection is closed without a response.
    let raw_answer = raw(
        addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nx-scenario: reset\r\n\r\n",
        Duration::from_secs(2),
    );
    assert_eq!(raw_answer, "");
    assert_eq!(get(addr, "/", &[]).status, 200);
    proxy.shutdown();
}

#[test]
fn unknown_route_is_404() {
    let up = upstream();
    let mut spec = spec(up.address, vec![plugin("hostcalls", "")]);
    spec.listeners[0].routes = vec![RouteSpec {
        name: String::new(),
        plugins: Default::default(),
        path: PathMatch::Exact("/only".into()),
        headers: vec![],
        action: RouteAction::Cluster {
            name: "backend".into(),
            timeout: None,
            retry: None,
            hash_header: None,
        },
    }];
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    assert_eq!(get(addr, "/only", &[]).status, 200);
    let a = get(addr, "/only/not", &[]);
    assert_eq!(a.status, 404, "{a:?}");
    assert_eq!(a.header("x-echo-method"), None);
    assert_eq!(a.header("x-hostcalls-response"), Some("1"));
    let a = get_h2(addr, "/elsewhere", &[]);
    assert_eq!(a.status, 404);
    proxy.shutdown();
}

#[test]
fn header_matchers_pick_routes() {
    let up = upstream();
    let mut spec = spec(up.address, vec![]);
    spec.listeners[0].routes.insert(
        0,
        RouteSpec {
            name: String::new(),
            plugins: Default::default(),
            path: PathMatch::Prefix("/".into()),
            headers: vec![wasp_proxy::spec::HeaderMatch {
                name: "x-direct".into(),
                value: Some("yes".into()),
            }],
            action: RouteAction::Direct {
                status: 202,
                body: String::new(),
            },
        },
    );
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    let a = get(addr, "/x", &[("x-direct", "yes")]);
    assert_eq!(a.status, 202);
    assert_eq!(a.body, "");
    assert_eq!(get(addr, "/x", &[("x-direct", "no")]).status, 200);
    assert_eq!(get(addr, "/x", &[]).status, 200);
    proxy.shutdown();
}

#[test]
fn unreachable_upstream_is_503() {
    let up = upstream();
    let mut spec = spec(up.address, vec![plugin("hostcalls", "")]);
    spec.clusters[0] = cluster("backend", closed_port());
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    for proto in [Proto::H1, Proto::H2] {
        let started = Instant::now();
        let a = exchange(addr, proto, "GET", "/", &[], empty());
        assert_eq!(a.status, 503, "{a:?}");
        assert!(a.body.contains("upstream connect error"), "{}", a.body);
        assert_eq!(a.header("x-hostcalls-response"), Some("1"));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    let text = stats(&proxy);
    assert_eq!(metric(&text, "wasp_upstream_errors_total"), Some(2.0));
    assert_eq!(
        metric(&text, "wasp_downstream_responses_total{code_class=\"5xx\"}"),
        Some(2.0)
    );
    proxy.shutdown();
}

#[test]
fn slow_upstream_hits_the_route_timeout_with_504() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    let started = Instant::now();
    let a = get(addr, "/slow", &[]);
    let took = started.elapsed();
    assert_eq!(a.status, 504, "{a:?}");
    assert_eq!(a.body, "upstream request timeout");
    assert_eq!(a.header("x-hostcalls-response"), Some("1"));
    // The route timeout is 1 s; the upstream would have answered after 2 s.
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(1900),
        "{took:?}"
    );
    assert_eq!(
        metric(&stats(&proxy), "wasp_upstream_timeouts_total"),
        Some(1.0)
    );
    proxy.shutdown();
}
