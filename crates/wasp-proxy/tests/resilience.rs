//! Upstream resilience over real sockets, with Envoy's semantics: retries hide a failing
//! endpoint, outlier detection ejects it, active health checks take a silent one out, the
//! circuit breaker answers 503 at once, balancing policies spread or pin requests, and the
//! route timeout covers the response body.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::StatusCode;
use support::*;
use wasp_proxy::spec::*;
use wasp_test_support::upstream::{Behaviour, Reply};

fn failing() -> Upstream {
    Upstream::spawn(Behaviour::Reply(Reply {
        status: Some(503),
        body: Some("down".into()),
        ..Reply::default()
    }))
}

fn retry(on: RetryOn, num_retries: u32) -> RetryPolicy {
    RetryPolicy {
        retry_on: on,
        num_retries,
        per_try_timeout: None,
        retriable_status_codes: vec![],
        base_interval: Duration::from_millis(5),
        max_interval: Duration::from_millis(20),
    }
}

fn route_to_backend(spec: &mut ProxySpec, policy: Option<RetryPolicy>, timeout: Duration) {
    spec.listeners[0].routes[1].action = RouteAction::Cluster {
        name: "backend".into(),
        timeout: Some(timeout),
        retry: policy,
        hash_header: None,
    };
}

#[test]
fn retries_and_outlier_detection_hide_a_failing_endpoint() {
    let good = upstream();
    let bad = failing();
    let mut spec = spec(good.address, vec![]);
    spec.workers = 1;
    spec.clusters[0].endpoints = vec![bad.address.to_string(), good.address.to_string()];
    spec.clusters[0].outlier_detection = Some(OutlierDetection {
        consecutive_5xx: 3,
        consecutive_gateway_failure: 0,
        base_ejection_time: Duration::from_secs(30),
        max_ejection_time: Duration::from_secs(300),
        max_ejection_percent: 50,
    });
    let on_5xx = RetryOn {
        five_xx: true,
        ..RetryOn::default()
    };
    route_to_backend(&mut spec, Some(retry(on_5xx, 2)), Duration::from_secs(2));
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    for i in 0..40 {
        let a = get(addr, "/", &[]);
        assert_eq!(a.status, StatusCode::OK, "request {i}: {a:?}");
    }
    // Ejected after three 5xx in a row: it saw three requests, no more.
    assert_eq!(bad.seen().len(), 3);
    let text = stats(&proxy);
    assert_eq!(
        metric(&text, "wasp_upstream_ejections_total{cluster=\"backend\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "wasp_upstream_retries_total{cluster=\"backend\"}"),
        Some(3.0)
    );
    proxy.shutdown();
}

#[test]
fn connect_failures_and_resets_are_retried_elsewhere() {
    let good = upstream();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let resetting = Upstream::spawn(Behaviour::Reset);
    let mut spec = spec(good.address, vec![]);
    spec.workers = 1;
    spec.clusters[0].endpoints = vec![
        closed.to_string(),
        resetting.address.to_string(),
        good.address.to_string(),
    ];
    let on = RetryOn {
        connect_failure: true,
        reset: true,
        ..RetryOn::default()
    };
    route_to_backend(&mut spec, Some(retry(on, 2)), Duration::from_secs(3));
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    for _ in 0..6 {
        let a = send(addr, "POST", "/", &[], "payload");
        assert_eq!(a.status, StatusCode::OK, "{a:?}");
        // The body is sent again on the retry.
        assert_eq!(a.body_bytes, "payload".as_bytes());
    }
    proxy.shutdown();

    // Without a retry policy the same cluster fails a client now and then.
    let mut spec = support::spec(good.address, vec![]);
    spec.workers = 1;
    spec.clusters[0].endpoints = vec![closed.to_string(), good.address.to_string()];
    let proxy = start(spec);
    let statuses: Vec<u16> = (0..4)
        .map(|_| {
            get(proxy.address("main").unwrap(), "/", &[])
                .status
                .as_u16()
        })
        .collect();
    assert!(
        statuses.contains(&503) && statuses.contains(&200),
        "{statuses:?}"
    );
    proxy.shutdown();
}

#[test]
fn retries_stop_at_the_limit_and_the_last_answer_stands() {
    let bad = failing();
    let mut spec = spec(bad.address, vec![]);
    let on = RetryOn {
        gateway_error: true,
        ..RetryOn::default()
    };
    route_to_backend(&mut spec, Some(retry(on, 2)), Duration::from_secs(2));
    let proxy = start(spec);
    let a = get(proxy.address("main").unwrap(), "/", &[]);
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        a.body_bytes,
        "down".as_bytes(),
        "the upstream's own answer, not a local reply"
    );
    assert_eq!(bad.seen().len(), 3, "one try and two retries");
    proxy.shutdown();
}

#[test]
fn per_try_timeout_moves_on_and_route_timeout_covers_the_body() {
    let good = upstream();
    let silent = blackhole();
    let mut spec = spec(good.address, vec![]);
    spec.workers = 1;
    spec.clusters[0].endpoints = vec![silent.address.to_string(), good.address.to_string()];
    let mut policy = retry(
        RetryOn {
            reset: true,
            ..RetryOn::default()
        },
        1,
    );
    policy.per_try_timeout = Some(Duration::from_millis(200));
    route_to_backend(&mut spec, Some(policy), Duration::from_secs(2));
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    for _ in 0..2 {
        assert_eq!(get(addr, "/", &[]).status, StatusCode::OK);
    }
    proxy.shutdown();

    // A body that takes longer than the route's timeout is cut: the client sees the stream end
    // in an error, not a complete response.
    let trickle = Upstream::spawn(Behaviour::Reply(Reply {
        chunks: vec!["chunk".to_string(); 20],
        ..Reply::default()
    }));
    let mut spec = support::spec(trickle.address, vec![]);
    route_to_backend(&mut spec, None, Duration::from_millis(300));
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    let slow_body = block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = request(addr, Proto::H1, "GET", "/", &[], empty());
        let response = exchange_on(tcp, Proto::H1, req).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        answer(response).await
    });
    assert!(slow_body.is_err(), "20 chunks 50 ms apart within 300 ms?");
    proxy.shutdown();
}

#[test]
fn health_checks_take_a_silent_endpoint_out() {
    let good = upstream();
    let silent = blackhole();
    let mut spec = spec(good.address, vec![]);
    spec.workers = 1;
    spec.clusters[0].endpoints = vec![silent.address.to_string(), good.address.to_string()];
    spec.clusters[0].health_check = Some(HealthCheck {
        path: "/healthz".into(),
        host: None,
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(100),
        unhealthy_threshold: 2,
        healthy_threshold: 1,
        expected_statuses: vec![(200, 201)],
    });
    route_to_backend(&mut spec, None, Duration::from_millis(500));
    let proxy = start(spec);
    std::thread::sleep(Duration::from_millis(600));
    let addr = proxy.address("main").unwrap();
    for _ in 0..10 {
        assert_eq!(get(addr, "/", &[]).status, StatusCode::OK);
    }
    let checks = good.seen_at("/healthz");
    assert!(checks.len() >= 2, "{}", checks.len());
    assert_eq!(checks[0].header("user-agent"), Some("Envoy/HC"));
    assert_eq!(checks[0].header("host"), Some("backend"));
    let text = stats(&proxy);
    assert!(
        metric(
            &text,
            "wasp_upstream_health_check_failures_total{cluster=\"backend\"}"
        )
        .unwrap()
            >= 2.0
    );
    proxy.shutdown();
}

#[test]
fn circuit_breaker_answers_503_at_once() {
    let silent = blackhole();
    let mut spec = spec(silent.address, vec![]);
    spec.workers = 1;
    spec.clusters[0].circuit_breakers.max_requests = 2;
    route_to_backend(&mut spec, None, Duration::from_secs(2));
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let hung: Vec<_> = (0..2)
        .map(|_| {
            let done = done.clone();
            std::thread::spawn(move || {
                let a = get(addr, "/", &[]);
                done.fetch_add(1, Ordering::SeqCst);
                a.status
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let a = get(addr, "/", &[]);
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        String::from_utf8_lossy(&a.body_bytes).contains("overflow"),
        "{a:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(done.load(Relaxed), 0);
    for h in hung {
        assert_eq!(h.join().unwrap(), StatusCode::GATEWAY_TIMEOUT);
    }
    let text = stats(&proxy);
    assert_eq!(
        metric(&text, "wasp_upstream_overflows_total{cluster=\"backend\"}"),
        Some(1.0)
    );
    proxy.shutdown();
}

#[test]
fn balancing_policies() {
    let ups: Vec<Upstream> = (0..3).map(|_| upstream()).collect();
    let counts = |ups: &[Upstream]| ups.iter().map(|u| u.seen().len()).collect::<Vec<_>>();
    // Ring hash pins a user to one endpoint.
    let mut spec = spec(ups[0].address, vec![]);
    spec.clusters[0].endpoints = ups.iter().map(|u| u.address.to_string()).collect();
    spec.clusters[0].lb_policy = LbPolicy::RingHash;
    spec.listeners[0].routes[1].action = RouteAction::Cluster {
        name: "backend".into(),
        timeout: Some(Duration::from_secs(1)),
        retry: None,
        hash_header: Some("x-user".into()),
    };
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    for _ in 0..12 {
        assert_eq!(
            get(addr, "/", &[("x-user", "alice")]).status,
            StatusCode::OK
        );
    }
    let after_alice = counts(&ups);
    assert_eq!(
        after_alice.iter().filter(|&&n| n == 12).count(),
        1,
        "{after_alice:?}"
    );
    for i in 0..30 {
        let user = format!("user-{i}");
        assert_eq!(
            get(addr, "/", &[("x-user", user.as_str())]).status,
            StatusCode::OK
        );
    }
    let spread = counts(&ups);
    assert!(
        spread
            .iter()
            .zip(&after_alice)
            .all(|(now, before)| now > before),
        "{spread:?}"
    );
    proxy.shutdown();

    // Random and least request reach every endpoint.
    for policy in [LbPolicy::Random, LbPolicy::LeastRequest] {
        let before = counts(&ups);
        let mut spec = support::spec(ups[0].address, vec![]);
        spec.clusters[0].endpoints = ups.iter().map(|u| u.address.to_string()).collect();
        spec.clusters[0].lb_policy = policy;
        let proxy = start(spec);
        let addr = proxy.address("main").unwrap();
        for _ in 0..60 {
            assert_eq!(get(addr, "/", &[]).status, StatusCode::OK);
        }
        let after = counts(&ups);
        assert!(
            after.iter().zip(&before).all(|(a, b)| a > b),
            "{policy:?}: {after:?}"
        );
        proxy.shutdown();
    }
}

#[test]
fn connection_limits_queue_then_overflow() {
    let silent = blackhole();
    let mut spec = spec(silent.address, vec![]);
    spec.workers = 1;
    spec.clusters[0].circuit_breakers.max_connections = 1;
    spec.clusters[0].circuit_breakers.max_pending_requests = 1;
    route_to_backend(&mut spec, None, Duration::from_secs(1));
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    // One request holds the only connection, a second waits for it (pending), a third is
    // refused at once.
    let held: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || get(addr, "/", &[]).status))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let a = get(addr, "/", &[]);
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{a:?}");
    assert!(
        String::from_utf8_lossy(&a.body_bytes).contains("overflow"),
        "{a:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(500));
    for h in held {
        assert_eq!(h.join().unwrap(), StatusCode::GATEWAY_TIMEOUT);
    }
    proxy.shutdown();
}

#[test]
fn a_request_served_by_a_pooled_connection_leaves_no_pending_connect_behind() {
    // Each response streams for ~300 ms (6 chunks 50 ms apart): the one connection is busy.
    let busy = Upstream::spawn(Behaviour::Reply(Reply {
        chunks: vec!["chunk".to_string(); 6],
        ..Reply::default()
    }));
    let mut spec = spec(busy.address, vec![]);
    spec.workers = 1;
    spec.clusters[0].circuit_breakers.max_connections = 1;
    spec.clusters[0].circuit_breakers.max_pending_requests = 1;
    route_to_backend(&mut spec, None, Duration::from_secs(5));
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    let later = |delay_ms: u64| {
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(delay_ms));
            let r = get(addr, "/", &[]);
            (
                r.status,
                String::from_utf8_lossy(&r.body_bytes).into_owned(),
            )
        })
    };
    // The second request finds no idle connection and no permit: its connect waits, and the
    // first one's connection, pooled again, serves it. That connect must not stay pending.
    for (status, body) in [later(0), later(100)].map(|h| h.join().unwrap()) {
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // One request takes the pooled connection; the next waits for it (one pending place):
    // with the earlier connect still pending it would be refused as an overflow.
    for (status, body) in [later(0), later(100)].map(|h| h.join().unwrap()) {
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    proxy.shutdown();
}
