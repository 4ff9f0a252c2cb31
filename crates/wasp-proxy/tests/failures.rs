//! When things go wrong: plugins that trap, spin, exhaust memory or cannot be loaded (each
//! fail strategy), malformed or oversized requests, and clients that leave mid-request.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use support::*;
use wasp_proxy::spec::{FailStrategy, PluginSpec};

fn failures(proxy: &wasp_proxy::Proxy, name: &str) -> Option<f64> {
    metric(
        &stats(proxy),
        &format!("wasp_plugin_failures_total{{plugin=\"{name}\"}}"),
    )
}

#[test]
fn failures_in_body_phases() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    // Request body: nothing was sent downstream yet, so the client gets a 503.
    let a = send(
        addr,
        "POST",
        "/",
        &[("x-scenario", "panic-request-body")],
        "body",
    );
    assert_eq!(a.status, 503, "{a:?}");
    proxy.shutdown();

    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    // Response body: the headers are gone already; the stream is reset.
    let r = try_exchange(
        addr,
        Proto::H2,
        "POST",
        "/",
        &[("x-scenario", "panic-response-body")],
        full("body"),
    );
    match r {
        Err(_) => {}
        Ok(a) => panic!("a response body failure was delivered as complete: {a:?}"),
    }
    proxy.shutdown();
}

#[test]
fn spinning_plugin_is_stopped_at_the_callback_deadline() {
    let up = upstream();
    let mut spec = two_listeners(up.address, plugin("spin", ""));
    spec.workers = 2;
    let proxy = start(spec);
    let main = proxy.address("main").unwrap();
    let other = proxy.address("other").unwrap();
    let started = Instant::now();
    let a = get(main, "/", &[]);
    let took = started.elapsed();
    assert_eq!(a.status, 503, "{a:?}");
    // The harness's deadline is 300 ms (epoch ticks round it up a little).
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < Duration::from_millis(1000), "{took:?}");
    // The proxy lives: other listeners, the admin endpoint.
    assert_eq!(get(other, "/", &[]).status, 200);
    assert_eq!(admin(&proxy, "/ready").status, 200);
    // A fresh VM replaces it with the next request (vm_recovery.rs).
    assert_eq!(plugin_status(&proxy, "spin")["state"], "recovering");
    assert_eq!(failures(&proxy, "spin"), Some(1.0));
    proxy.shutdown();
}

#[test]
fn memory_bomb_is_stopped_at_the_memory_cap() {
    let up = upstream();
    let proxy = start_with(
        spec(up.address, vec![plugin("membomb", "")]),
        wasp_host::HostConfig {
            max_memory_bytes: 32 << 20,
            ..host_config()
        },
    );
    let addr = proxy.address("main").unwrap();
    let started = Instant::now();
    let a = get(addr, "/", &[]);
    assert_eq!(a.status, 503, "{a:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(failures(&proxy, "membomb"), Some(1.0));
    assert_eq!(admin(&proxy, "/ready").status, 200);
    proxy.shutdown();
}

fn garbage(strategy: FailStrategy) -> PluginSpec {
    let p = PluginSpec {
        name: "garbage".into(),
        url: "file:///nowhere/garbage.wasm".into(),
        fail_strategy: strategy,
        ..plugin("noop", "")
    };
    with_wasm(p, |w| {
        w.module = Arc::from(&b"\0asm but not really a module"[..]);
    })
}

#[test]
fn a_plugin_that_cannot_be_loaded() {
    let up = upstream();
    // FAIL_CLOSE: the proxy starts (and is ready), the plugin's requests get 403.
    let proxy = start(spec(
        up.address,
        vec![garbage(FailStrategy::FailClose), plugin("headers", "")],
    ));
    let addr = proxy.address("main").unwrap();
    assert_eq!(admin(&proxy, "/ready").status, 200);
    let a = get(addr, "/", &[]);
    assert_eq!(a.status, 403, "{a:?}");
    assert_eq!(a.header("x-echo-method"), None);
    let status = plugin_status(&proxy, "garbage");
    assert_eq!(status["state"], "unavailable");
    assert_eq!(status["sha256"], serde_json::Value::Null);
    assert!(
        !status["error"].as_str().unwrap_or("").is_empty(),
        "{status}"
    );
    assert_eq!(plugin_status(&proxy, "headers")["state"], "ready");
    proxy.shutdown();

    // FAIL_OPEN: the requests go on without it, through the plugins that did load.
    let proxy = start(spec(
        up.address,
        vec![garbage(FailStrategy::FailOpen), plugin("headers", "")],
    ));
    let addr = proxy.address("main").unwrap();
    let a = get(addr, "/", &[]);
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-echo-h-x-wasp-example"), Some("hello"));
    assert_eq!(a.header("x-powered-by"), Some("wasp"));
    assert_eq!(plugin_status(&proxy, "garbage")["state"], "unavailable");
    proxy.shutdown();
}

#[test]
fn a_plugin_that_refuses_to_start() {
    let up = upstream();
    let proxy = start(spec(
        up.address,
        vec![plugin("hostcalls", "fail-configure")],
    ));
    let addr = proxy.address("main").unwrap();
    assert_eq!(get(addr, "/", &[]).status, 403);
    let status = plugin_status(&proxy, "hostcalls");
    assert_eq!(status["state"], "failed");
    assert!(
        !status["error"].as_str().unwrap_or("").is_empty(),
        "{status}"
    );
    proxy.shutdown();
}

#[test]
fn malformed_http_is_400() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    for bad in [
        &b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"NOT-HTTP\r\n\r\n",
        // RFC 9112 §3.2: an HTTP/1.1 request without Host is answered 400, as Envoy does.
        b"GET / HTTP/1.1\r\n\r\n",
    ] {
        let answer = raw(addr, bad, Duration::from_secs(2));
        assert_eq!(
            raw_status(&answer),
            Some(400),
            "{:?} -> {answer:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // None of them reached a plugin or the upstream.
    assert!(up.seen().is_empty());
    // A malformed chunked body is the client's fault: 400 (Envoy's answer), not a 503 that
    // blames the upstream.
    for bad in [
        &b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
    ] {
        let answer = raw(addr, bad, Duration::from_secs(2));
        assert_eq!(
            raw_status(&answer),
            Some(400),
            "{:?} -> {answer:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // Content-Length with Transfer-Encoding (CL.TE / TE.CL smuggling shapes): decoded by the
    // transfer coding, the length dropped, the connection closed after the answer (RFC 9112
    // §6.1's other choice; Envoy answers 400). Nothing past the chunked body is read as a
    // second request.
    let answer = raw(
        addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(2),
    );
    assert_eq!(raw_status(&answer), Some(200), "{answer:?}");
    assert!(answer.contains("connection: close"), "{answer:?}");
    assert!(!answer.contains("x-echo-h-content-length"), "{answer:?}");
    assert_eq!(
        answer.matches("HTTP/1.1 ").count(),
        1,
        "a second answer: {answer:?}"
    );
    assert!(up.seen_at("/smuggled").is_empty());
    // HTTP/1.0 needs no Host.
    let answer = raw(addr, b"GET / HTTP/1.0\r\n\r\n", Duration::from_secs(2));
    assert_eq!(raw_status(&answer), Some(200), "{answer:?}");
    assert_eq!(get(addr, "/", &[]).status, 200);
    proxy.shutdown();
}

#[test]
fn oversized_request_headers_are_431() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    let big = "v".repeat(100 << 10);
    let request = format!("GET / HTTP/1.1\r\nHost: x\r\nx-big: {big}\r\n\r\n");
    let answer = raw(addr, request.as_bytes(), Duration::from_secs(2));
    assert_eq!(raw_status(&answer), Some(431), "{answer:?}");
    // HTTP/2: the header list is refused too (431 or a stream reset).
    match try_exchange(addr, Proto::H2, "GET", "/", &[("x-big", &big)], empty()) {
        Err(_) => {}
        Ok(a) => assert_eq!(a.status, 431),
    }
    // Headers under the limit pass.
    let fine = "v".repeat(40 << 10);
    let a = get(addr, "/", &[("x-fine", &fine)]);
    assert_eq!(a.status, 200);
    assert_eq!(a.header("x-echo-h-x-fine").map(str::len), Some(40 << 10));
    assert!(up.seen_at("/").len() == 1);
    proxy.shutdown();
}

/// Waits until every connection the proxy accepted is closed.
fn all_closed(proxy: &wasp_proxy::Proxy) -> bool {
    eventually(Duration::from_secs(2), || {
        metric(&stats(proxy), "wasp_downstream_connections_active") == Some(0.0)
    })
}

#[test]
fn client_that_leaves_mid_body() {
    logs::capture();
    let up = upstream();
    let proxy = start(spec(up.address, vec![hostcalls_named("midbody")]));
    let addr = proxy.address("main").unwrap();
    for scenario in ["none", "buffer-request"] {
        let before = logs::count("midbody", "on_log");
        // HTTP/1.1: 10 of 100000 announced bytes, then the connection closes.
        let head = format!(
            "POST /sink HTTP/1.1\r\nHost: x\r\nx-scenario: {scenario}\r\nContent-Length: 100000\r\n\r\n0123456789"
        );
        let answer = raw(addr, head.as_bytes(), Duration::from_millis(200));
        assert_eq!(answer, "", "{scenario}");
        assert!(all_closed(&proxy), "{scenario}");
        // The plugin's context was ended (on_log, then on_done) for that request.
        assert!(
            eventually(Duration::from_secs(1), || logs::count("midbody", "on_log")
                == before + 1),
            "{scenario}: on_log {} -> {}",
            before,
            logs::count("midbody", "on_log")
        );
    }
    // HTTP/2: the client sends part of a body, then drops the connection.
    let before = logs::count("midbody", "on_log");
    block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .unwrap();
        let conn = tokio::spawn(conn);
        let (tx, body) = pipe();
        let req = request(addr, Proto::H2, "POST", "/sink", &[], body);
        let pending = tokio::spawn(sender.send_request(req));
        tx.send(Bytes::from_static(b"part of it")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        conn.abort();
        pending.abort();
    });
    assert!(all_closed(&proxy));
    assert!(eventually(Duration::from_secs(1), || logs::count(
        "midbody", "on_log"
    ) == before + 1));
    // And the proxy serves on.
    assert_eq!(get(addr, "/", &[]).status, 200);
    proxy.shutdown();
}

#[test]
fn client_that_leaves_before_the_response() {
    logs::capture();
    let up = upstream();
    let proxy = start(spec(up.address, vec![hostcalls_named("early")]));
    let addr = proxy.address("main").unwrap();
    let started = Instant::now();
    // /slow answers after 2 s; the client leaves after 200 ms.
    let answer = raw(
        addr,
        b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_millis(200),
    );
    assert_eq!(answer, "");
    assert!(all_closed(&proxy));
    // The stream ended when the client left, not when the upstream would have answered.
    assert!(eventually(Duration::from_secs(1), || logs::count(
        "early", "on_log"
    ) == 1));
    assert!(started.elapsed() < Duration::from_millis(1500));
    // Paused in a plugin (a timer that never fires for it): ended all the same.
    let answer = raw(
        addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nx-scenario: pause-headers\r\n\r\n",
        Duration::from_millis(200),
    );
    assert_eq!(answer, "");
    assert!(all_closed(&proxy));
    assert!(eventually(Duration::from_secs(1), || logs::count(
        "early", "on_log"
    ) == 2));
    assert_eq!(logs::count("early", "on_done"), 2);
    assert_eq!(get(addr, "/", &[]).status, 200);
    proxy.shutdown();
}
