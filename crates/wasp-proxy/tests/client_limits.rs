//! The listener's timeouts and limits stop slow and greedy clients, with real sockets and
//! clocks: a request head dribbled byte by byte (slowloris) is answered 408 and closed, while
//! a kept-alive connection waiting for its next request is not; an idle connection is closed
//! after `idle_timeout`; a body that stalls or takes too long is answered 408 — with or
//! without plugins on the body — and never blamed on the upstream; too many headers get 431;
//! connections past `max_connections` are closed on arrival.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::*;
use wasp_proxy::spec::{HttpOptions, ProxySpec};

fn with_options(
    up: &Upstream,
    plugins: Vec<wasp_proxy::spec::PluginSpec>,
    http: HttpOptions,
) -> ProxySpec {
    let mut spec = spec(up.address, plugins);
    spec.workers = 1;
    spec.listeners[0].http = http;
    spec
}

fn short(http: impl FnOnce(&mut HttpOptions)) -> HttpOptions {
    let mut options = HttpOptions {
        request_headers_timeout: Some(Duration::from_millis(600)),
        idle_timeout: Some(Duration::from_secs(30)),
        stream_idle_timeout: Some(Duration::from_millis(600)),
        request_timeout: None,
        ..HttpOptions::default()
    };
    http(&mut options);
    options
}

fn connect(address: SocketAddr) -> TcpStream {
    let tcp = TcpStream::connect(address).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp
}

/// Reads what the proxy sends until it closes (or 5 s pass).
fn read_to_close(tcp: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = tcp.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one response with a `content-length` (the echo upstream's) from a kept-alive
/// connection.
fn read_response(tcp: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tcp.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "closed before a response: {}",
            String::from_utf8_lossy(&out)
        );
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
    }
}

fn metric_value(proxy: &wasp_proxy::Proxy, name: &str) -> f64 {
    metric(&stats(proxy), name).unwrap_or(0.0)
}

#[test]
fn a_dribbled_head_is_answered_408_but_an_idle_keep_alive_connection_is_not_closed() {
    let up = upstream();
    let proxy = start(with_options(&up, Vec::new(), short(|_| {})));
    let main = proxy.address("main").unwrap();

    // Slowloris: a header line every 200 ms, never the blank line.
    let mut slow = connect(main);
    let started = Instant::now();
    slow.write_all(b"GET / HTTP/1.1\r\nhost: test\r\n").unwrap();
    let mut answer = String::new();
    for i in 0..20 {
        std::thread::sleep(Duration::from_millis(200));
        if slow
            .write_all(format!("x-slow-{i}: y\r\n").as_bytes())
            .is_err()
        {
            break;
        }
        slow.set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        let mut buf = [0u8; 512];
        if let Ok(n) = slow.read(&mut buf) {
            answer = String::from_utf8_lossy(&buf[..n]).into_owned();
            break;
        }
    }
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert!(up.seen().is_empty(), "nothing reached the upstream");
    assert_eq!(
        metric_value(&proxy, "wasp_downstream_rq_header_timeout_total"),
        1.0
    );

    // A kept-alive connection waits for its next request longer than the head timeout.
    let mut kept = connect(main);
    kept.write_all(b"GET /a HTTP/1.1\r\nhost: test\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut kept).starts_with("HTTP/1.1 200"));
    std::thread::sleep(Duration::from_millis(1200));
    kept.write_all(b"GET /b HTTP/1.1\r\nhost: test\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut kept).starts_with("HTTP/1.1 200"));
    assert_eq!(
        metric_value(&proxy, "wasp_downstream_rq_header_timeout_total"),
        1.0
    );
    proxy.shutdown();
}

#[test]
fn an_idle_connection_is_closed_after_idle_timeout() {
    let up = upstream();
    let options = short(|o| o.idle_timeout = Some(Duration::from_millis(700)));
    let proxy = start(with_options(&up, Vec::new(), options));
    let main = proxy.address("main").unwrap();
    let mut tcp = connect(main);
    tcp.write_all(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut tcp).starts_with("HTTP/1.1 200"));
    let idle_from = Instant::now();
    assert_eq!(read_to_close(&mut tcp), "", "closed without a word");
    let idle = idle_from.elapsed();
    assert!(
        idle >= Duration::from_millis(600) && idle < Duration::from_secs(3),
        "{idle:?}"
    );
    assert_eq!(
        metric_value(&proxy, "wasp_downstream_cx_idle_timeout_total"),
        1.0
    );

    // HTTP/2: the connection is told to go (GOAWAY) and closed.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(main).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .unwrap();
        let driven = tokio::spawn(conn);
        let req = http::Request::get(format!("http://{main}/"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        assert_eq!(send.send_request(req).await.unwrap().status(), 200);
        let ended = tokio::time::timeout(Duration::from_secs(5), driven).await;
        assert!(
            ended.is_ok(),
            "the HTTP/2 connection ended after idle_timeout"
        );
    });
    assert_eq!(
        metric_value(&proxy, "wasp_downstream_cx_idle_timeout_total"),
        2.0
    );
    proxy.shutdown();
}

/// A POST announcing 10 bytes that sends 3 and stalls.
fn stalled_post(address: SocketAddr) -> (String, Duration) {
    let mut tcp = connect(address);
    let started = Instant::now();
    tcp.write_all(b"POST / HTTP/1.1\r\nhost: test\r\ncontent-length: 10\r\n\r\nabc")
        .unwrap();
    (read_to_close(&mut tcp), started.elapsed())
}

#[test]
fn a_stalled_body_is_answered_408_with_or_without_plugins_on_it() {
    let up = upstream();
    for plugins in [Vec::new(), vec![plugin("hostcalls", "")]] {
        let with_plugin = !plugins.is_empty();
        let proxy = start(with_options(&up, plugins, short(|_| {})));
        let main = proxy.address("main").unwrap();
        let (answer, took) = stalled_post(main);
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "plugin: {with_plugin}: {answer:?}"
        );
        assert!(answer.contains("stream timeout"), "{answer:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
        assert_eq!(
            metric_value(&proxy, "wasp_downstream_rq_idle_timeout_total"),
            1.0
        );
        // Not counted against the upstream.
        assert_eq!(metric_value(&proxy, "wasp_upstream_errors_total"), 0.0);
        proxy.shutdown();
    }
}

#[test]
fn a_body_that_trickles_past_request_timeout_is_answered_408() {
    let up = upstream();
    let options = short(|o| {
        o.stream_idle_timeout = Some(Duration::from_secs(5));
        o.request_timeout = Some(Duration::from_millis(800));
    });
    let proxy = start(with_options(&up, Vec::new(), options));
    let main = proxy.address("main").unwrap();
    let mut tcp = connect(main);
    let started = Instant::now();
    tcp.write_all(b"POST / HTTP/1.1\r\nhost: test\r\ncontent-length: 40\r\n\r\n")
        .unwrap();
    // A byte every 150 ms: never idle, always late.
    for _ in 0..12 {
        std::thread::sleep(Duration::from_millis(150));
        if tcp.write_all(b"x").is_err() {
            break;
        }
    }
    let answer = read_to_close(&mut tcp);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("request timeout"), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(
        metric_value(&proxy, "wasp_downstream_rq_timeout_total"),
        1.0
    );
    proxy.shutdown();
}

#[test]
fn more_headers_than_max_headers_count_get_431_on_both_protocols() {
    let up = upstream();
    let proxy = start(with_options(
        &up,
        Vec::new(),
        short(|o| o.max_headers_count = 20),
    ));
    let main = proxy.address("main").unwrap();
    let mut head = String::from("GET / HTTP/1.1\r\nhost: test\r\n");
    for i in 0..25 {
        head.push_str(&format!("x-h-{i}: v\r\n"));
    }
    head.push_str("\r\n");
    let answer = raw(main, head.as_bytes(), Duration::from_secs(2));
    assert_eq!(raw_status(&answer), Some(431), "{answer}");
    let headers: Vec<(String, String)> = (0..25)
        .map(|i| (format!("x-h-{i}"), "v".to_string()))
        .collect();
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let h2 = get_h2(main, "/", &pairs);
    assert_eq!(h2.status, 431, "{h2:?}");
    // Within the limit: served.
    assert_eq!(get_h2(main, "/", &pairs[..10]).status, 200);
    assert!(
        up.seen().len() == 1,
        "only the request within the limit went upstream"
    );
    proxy.shutdown();
}

#[test]
fn connections_past_max_connections_are_closed_on_arrival() {
    let up = upstream();
    let mut spec = with_options(&up, Vec::new(), short(|_| {}));
    spec.max_connections = Some(2);
    let proxy = start(spec);
    let main = proxy.address("main").unwrap();
    let mut held: Vec<TcpStream> = Vec::new();
    for _ in 0..2 {
        let mut tcp = connect(main);
        tcp.write_all(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n")
            .unwrap();
        assert!(read_response(&mut tcp).starts_with("HTTP/1.1 200"));
        held.push(tcp);
    }
    let mut third = connect(main);
    let _ = third.write_all(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n");
    assert_eq!(read_to_close(&mut third), "", "closed on arrival");
    assert_eq!(
        metric_value(&proxy, "wasp_downstream_global_cx_overflow_total"),
        1.0
    );
    // Room again once one goes.
    drop(held.pop());
    assert!(eventually(Duration::from_secs(3), || {
        let answer = raw(
            main,
            b"GET / HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n",
            Duration::from_secs(2),
        );
        raw_status(&answer) == Some(200)
    }));
    proxy.shutdown();
}

#[test]
fn http2_connections_are_told_max_concurrent_streams() {
    let up = upstream();
    let proxy = start(with_options(
        &up,
        Vec::new(),
        short(|o| o.max_concurrent_streams = 7),
    ));
    let main = proxy.address("main").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let advertised = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(main).await.unwrap();
        let (client, mut connection) = h2::client::handshake(tcp).await.unwrap();
        let mut client = client.ready().await.unwrap();
        let request = http::Request::get(format!("http://{main}/"))
            .body(())
            .unwrap();
        let (response, _) = client.send_request(request, true).unwrap();
        // The connection is driven until the response: the server's SETTINGS came first.
        let response = tokio::select! {
            r = response => r.unwrap(),
            e = &mut connection => panic!("connection ended: {e:?}"),
        };
        assert_eq!(response.status(), 200);
        connection.max_concurrent_send_streams()
    });
    assert_eq!(advertised, 7);
    proxy.shutdown();
}
