//! HTTP callouts (`proxy_http_call`): the request paused until the answer, what the plugin
//! reads from the answer, unknown clusters, unreachable ones, and answers that come after
//! the stream is gone.

mod support;

use std::time::Duration;

use support::*;
use wasp_proxy::spec::UpstreamProtocol;

#[test]
fn http_call_answer_is_read_and_the_request_resumes() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    for proto in [Proto::H1, Proto::H2] {
        let a = exchange(
            addr,
            proto,
            "GET",
            "/after-callout",
            &[("x-scenario", "http-call")],
            empty(),
        );
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.header("x-echo-path"), Some("/after-callout"));
        assert_eq!(a.header("x-echo-h-x-callout-status"), Some("200"));
        // The echo answers with the callout's own body.
        assert_eq!(a.header("x-echo-h-x-callout-body"), Some("ping"));
        let count: usize = a
            .header("x-echo-h-x-callout-header-count")
            .unwrap()
            .parse()
            .unwrap();
        assert!(count >= 5, "{count}");
        assert_eq!(a.header("x-echo-h-x-call-error"), None);
    }
    // The callout as the upstream received it.
    let calls = up.seen_at("/callout");
    assert_eq!(calls.len(), 2, "{calls:?}");
    for call in calls {
        assert_eq!(call.method, "POST");
        assert_eq!(call.header("host"), Some("callout.local"));
        assert_eq!(call.header("x-from"), Some("hostcalls"));
        assert_eq!(call.header("content-length"), Some("4"));
        // Callouts are not client requests: no forwarding headers are made up for them.
        assert_eq!(call.header("x-forwarded-proto"), None);
    }
    proxy.shutdown();
}

#[test]
fn http_call_over_http2_carries_trailers_both_ways() {
    let up = upstream();
    let mut spec = spec(up.address, vec![plugin("hostcalls", "")]);
    spec.clusters[1].protocol = UpstreamProtocol::Http2;
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    let a = get(addr, "/", &[("x-scenario", "http-call")]);
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-echo-h-x-callout-status"), Some("200"));
    assert_eq!(a.header("x-echo-h-x-callout-body"), Some("ping"));
    let calls = up.seen_at("/callout");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].version, http::Version::HTTP_2);
    // The plugin sent the trailer `x-call-trailer: t`; the echo returns it as a trailer.
    assert_eq!(a.header("x-echo-h-x-callout-trailer-count"), Some("1"));
    proxy.shutdown();
}

#[test]
fn many_callouts_at_once() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    let threads: Vec<_> = (0..16)
        .map(|i| {
            std::thread::spawn(move || {
                let proto = if i % 2 == 0 { Proto::H1 } else { Proto::H2 };
                exchange(
                    addr,
                    proto,
                    "GET",
                    &format!("/n/{i}"),
                    &[("x-scenario", "http-call")],
                    empty(),
                )
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        let a = t.join().unwrap();
        assert_eq!(a.status, 200);
        assert_eq!(a.header("x-echo-path"), Some(format!("/n/{i}").as_str()));
        assert_eq!(a.header("x-echo-h-x-callout-body"), Some("ping"));
    }
    assert_eq!(up.seen_at("/callout").len(), 16);
    proxy.shutdown();
}

#[test]
fn callout_to_an_unknown_cluster_is_refused_at_dispatch() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    let a = get(addr, "/", &[("x-scenario", "http-call-bad-cluster")]);
    assert_eq!(a.status, 200, "{a:?}");
    // Envoy answers BAD_ARGUMENT; the plugin goes on with the status as a header.
    assert_eq!(a.header("x-echo-h-x-call-error"), Some("BadArgument"));
    assert_eq!(a.header("x-echo-h-x-callout-status"), None);
    // A callout without :path is refused too.
    let a = get(addr, "/", &[("x-scenario", "http-call-no-path")]);
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-echo-h-x-call-error"), Some("BadArgument"));
    assert!(up.seen_at("/callout").is_empty());
    proxy.shutdown();
}

#[test]
fn callout_to_an_unreachable_cluster_answers_the_plugin_with_a_failure() {
    let up = upstream();
    let mut spec = spec(up.address, vec![plugin("hostcalls", "")]);
    spec.clusters[1] = cluster("callout", closed_port());
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    let started = std::time::Instant::now();
    let a = get(addr, "/", &[("x-scenario", "http-call")]);
    // As Envoy's async client: the plugin gets the router's 503 with headers and a body
    // naming the reset reason (the plugin then forwards it as x-callout-*).
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-echo-h-x-callout-status"), Some("503"));
    assert!(
        a.header("x-echo-h-x-callout-body").unwrap_or("").starts_with(
            "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure"
        ),
        "{a:?}"
    );
    assert_eq!(a.header("x-echo-h-x-callout-header-count"), Some("3"));
    assert!(started.elapsed() < Duration::from_secs(2));
    // Not a plugin failure: the next request is served normally.
    assert_eq!(get(addr, "/", &[]).status, 200);
    let text = stats(&proxy);
    assert_eq!(
        metric(&text, "wasp_plugin_failures_total{plugin=\"hostcalls\"}"),
        Some(0.0)
    );
    proxy.shutdown();
}

#[test]
fn a_callout_answer_for_a_stream_that_is_gone_is_dropped() {
    let up = upstream();
    let hole = blackhole();
    let mut spec = spec(up.address, vec![plugin("hostcalls", "")]);
    spec.workers = 1;
    spec.clusters[1] = cluster("callout", hole.address);
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    // The request waits on a callout that does not answer; the client gives up.
    let gone = raw(
        addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nx-scenario: http-call\r\n\r\n",
        Duration::from_millis(300),
    );
    assert_eq!(gone, "");
    // Its context is ended when the client leaves, not when the callout ends.
    assert!(
        eventually(Duration::from_secs(2), || {
            metric(&stats(&proxy), "wasp_downstream_connections_active") == Some(0.0)
        }),
        "the abandoned stream was not cleaned up"
    );
    // The callout now fails; its answer has no stream to go to.
    hole.close();
    std::thread::sleep(Duration::from_millis(100));
    let a = get(addr, "/", &[]);
    assert_eq!(a.status, 200);
    let text = stats(&proxy);
    assert_eq!(
        metric(&text, "wasp_plugin_failures_total{plugin=\"hostcalls\"}"),
        Some(0.0)
    );
    proxy.shutdown();
}
