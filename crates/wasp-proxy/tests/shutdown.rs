//! Graceful shutdown: in-flight requests finish, new connections are refused.

mod support;

use std::time::{Duration, Instant};

use support::*;
use wasp_proxy::spec::RouteAction;

/// The catch-all route waits up to 3 s, longer than `/slow` takes (2 s).
fn patient_spec(up: &Upstream) -> wasp_proxy::spec::ProxySpec {
    let mut spec = spec(up.address, vec![plugin("hostcalls", "")]);
    spec.listeners[0].routes[1].action = RouteAction::Cluster {
        name: "backend".into(),
        timeout: Some(Duration::from_secs(3)),
        retry: None,
        hash_header: None,
    };
    spec
}

#[test]
fn in_flight_requests_finish_and_new_connections_are_refused() {
    let up = upstream();
    let proxy = start(patient_spec(&up));
    let addr = proxy.address("main").unwrap();
    let admin_addr = proxy.admin_address().unwrap();
    let in_flight: Vec<_> = [Proto::H1, Proto::H2]
        .into_iter()
        .map(|proto| {
            std::thread::spawn(move || {
                try_exchange(addr, proto, "GET", "/slow", &[], empty())
                    .map(|a| (a.status, a.header("x-echo-path").map(str::to_owned)))
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    // Both requests are at the upstream before the shutdown starts.
    assert!(eventually(Duration::from_secs(1), || up
        .seen_at("/slow")
        .len()
        == 2));
    let started = Instant::now();
    let stopper = std::thread::spawn(move || proxy.shutdown());
    std::thread::sleep(Duration::from_millis(200));
    // Draining: the listeners are closed already.
    let refused = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500));
    assert!(
        refused.is_err(),
        "a new connection was accepted while draining"
    );
    for t in in_flight {
        let r = t.join().unwrap();
        assert_eq!(r, Ok((http::StatusCode::OK, Some("/slow".to_owned()))));
    }
    stopper.join().unwrap();
    let took = started.elapsed();
    // It waited for the in-flight requests, and not much longer.
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert!(std::net::TcpStream::connect(addr).is_err());
    assert!(std::net::TcpStream::connect(admin_addr).is_err());
}

#[test]
fn idle_connections_do_not_hold_the_shutdown() {
    let up = upstream();
    let proxy = start(patient_spec(&up));
    let addr = proxy.address("main").unwrap();
    // A keep-alive HTTP/1.1 connection and an HTTP/2 connection, both idle after a request.
    let (h1_closed, h2_closed) = block_on(async move {
        let mut closed = Vec::new();
        for proto in [Proto::H1, Proto::H2] {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let io = hyper_util::rt::TokioIo::new(tcp);
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            match proto {
                Proto::H1 => {
                    let (mut s, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
                    tokio::spawn(async move {
                        let _ = conn.await;
                        let _ = tx.send(());
                    });
                    let req = request(addr, proto, "GET", "/", &[], empty());
                    assert_eq!(s.send_request(req).await.unwrap().status(), 200);
                    // Keep the sender: the connection stays open from the client's side.
                    std::mem::forget(s);
                }
                Proto::H2 => {
                    let (mut s, conn) = hyper::client::conn::http2::handshake(
                        hyper_util::rt::TokioExecutor::new(),
                        io,
                    )
                    .await
                    .unwrap();
                    tokio::spawn(async move {
                        let _ = conn.await;
                        let _ = tx.send(());
                    });
                    let req = request(addr, proto, "GET", "/", &[], empty());
                    assert_eq!(s.send_request(req).await.unwrap().status(), 200);
                    std::mem::forget(s);
                }
            }
            closed.push(rx);
        }
        let started = Instant::now();
        let stopper = std::thread::spawn(move || proxy.shutdown());
        let h2 = closed.pop().unwrap();
        let h1 = closed.pop().unwrap();
        let h1 = tokio::time::timeout(Duration::from_secs(2), h1)
            .await
            .is_ok();
        let h2 = tokio::time::timeout(Duration::from_secs(2), h2)
            .await
            .is_ok();
        while !stopper.is_finished() {
            assert!(started.elapsed() < Duration::from_secs(2), "shutdown hangs");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (h1, h2)
    });
    assert!(h1_closed, "the idle HTTP/1.1 connection was not closed");
    assert!(h2_closed, "the idle HTTP/2 connection was not closed");
}
