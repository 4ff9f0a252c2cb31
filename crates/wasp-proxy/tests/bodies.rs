//! Request and response bodies through the plugin chain: buffering plugins that edit the
//! whole body, streaming of bodies larger than any buffer, trailers and the buffer limit.

mod support;

use std::sync::RwLock;
use std::time::Duration;

use http_body_util::BodyExt;
use support::*;

/// The memory test measures the whole process: it runs alone, the others share.
static EXCLUSIVE: RwLock<()> = RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    EXCLUSIVE
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The upstream's view of the request's framing: its content-length, or `chunked`.
fn framing(a: &Answer) -> String {
    match (
        a.header("x-echo-h-content-length"),
        a.header("x-echo-h-transfer-encoding"),
    ) {
        (Some(n), None) => n.to_owned(),
        (None, Some(te)) => te.to_owned(),
        other => panic!("bad framing {other:?}"),
    }
}

/// The body reached the upstream whole and with framing that matches it.
fn assert_upstream_body(a: &Answer, expected: &str) {
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body, expected);
    let framing = framing(a);
    assert!(
        framing == "chunked" || framing == expected.len().to_string(),
        "upstream framing {framing} for a body of {}",
        expected.len()
    );
}

#[test]
fn a_large_response_without_plugins_arrives_whole_with_its_length() {
    // hyper has the head and the first part of the body at once: that part leaves with the
    // head and the rest follows. The length the client is given must count both.
    const SIZE: usize = 1 << 20;
    let _g = shared();
    let up = Upstream::spawn(wasp_test_support::upstream::Behaviour::Reply(
        wasp_test_support::upstream::Reply {
            body: Some("x".repeat(SIZE)),
            ..Default::default()
        },
    ));
    let proxy = start(spec(up.address, vec![]));
    let addr = proxy.address("main").unwrap();
    for round in 0..3 {
        for a in [get(addr, "/", &[]), get_h2(addr, "/", &[])] {
            assert_eq!(a.status, 200, "round {round}: {a:?}");
            assert_eq!(a.body_bytes.len(), SIZE, "round {round}, {:?}", a.version);
            if a.version == http::Version::HTTP_11 {
                assert_eq!(a.header("content-length"), Some("1048576"));
            }
        }
    }
    proxy.shutdown();
}

#[test]
fn buffer_request_uppercases_a_body_sent_with_content_length() {
    let _g = shared();
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    let a = send(
        addr,
        "POST",
        "/",
        &[("x-scenario", "buffer-request")],
        "hello world",
    );
    assert_upstream_body(&a, "HELLO WORLD");
    proxy.shutdown();
}

#[test]
fn buffer_request_uppercases_a_chunked_body() {
    let _g = shared();
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    for proto in [Proto::H1, Proto::H2] {
        let a = exchange(
            addr,
            proto,
            "POST",
            "/",
            &[("x-scenario", "buffer-request")],
            chunked(&["hello ", "chunked ", "world"]),
        );
        assert_upstream_body(&a, "HELLO CHUNKED WORLD");
    }
    proxy.shutdown();
}

#[test]
fn buffer_response_uppercases_the_response_with_a_matching_length() {
    let _g = shared();
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    for proto in [Proto::H1, Proto::H2] {
        // The echo answers with a content-length.
        let a = exchange(
            addr,
            proto,
            "POST",
            "/",
            &[("x-scenario", "buffer-response")],
            full("make me loud"),
        );
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.body, "MAKE ME LOUD");
        if let Some(n) = a.header("content-length") {
            assert_eq!(n, "12", "{proto:?}");
        }
        // A streamed response in many chunks (no content-length), buffered whole.
        let a = exchange(
            addr,
            proto,
            "GET",
            "/big/300000",
            &[("x-scenario", "buffer-response")],
            empty(),
        );
        assert_eq!(a.status, 200);
        assert_eq!(a.body.len(), 300000);
        assert!(a.body.bytes().all(|b| b == b'A'));
    }
    proxy.shutdown();
}

#[test]
fn a_response_body_that_grows_is_sent_with_its_real_length() {
    let _g = shared();
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    for proto in [Proto::H1, Proto::H2] {
        // The echo answers "payload" with `content-length: 7`; the plugin buffers it and
        // appends, leaving the header as it was.
        let a = exchange(
            addr,
            proto,
            "POST",
            "/",
            &[("x-scenario", "response-append")],
            full("payload"),
        );
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.body, "payload-appended", "{proto:?}");
        assert_eq!(a.header("content-length"), Some("16"), "{proto:?}");
    }
    // The connection is still usable: the length was exact, nothing was left over.
    let a = get(addr, "/", &[]);
    assert_eq!(a.status, 200);
    proxy.shutdown();
}

#[test]
fn body_append_and_prepend_change_the_length_of_the_request_body() {
    let _g = shared();
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    for (scenario, expected) in [
        ("body-append", "payload-appended"),
        ("body-prepend", "prepended-payload"),
        ("body-splice", "pXYload"),
    ] {
        // With a content-length the plugin's edit makes the original length wrong.
        let a = send(addr, "POST", "/", &[("x-scenario", scenario)], "payload");
        assert_upstream_body(&a, expected);
        let a = exchange(
            addr,
            Proto::H1,
            "POST",
            "/",
            &[("x-scenario", scenario)],
            chunked(&["pay", "load"]),
        );
        assert_upstream_body(&a, expected);
        let a = exchange(
            addr,
            Proto::H2,
            "POST",
            "/",
            &[("x-scenario", scenario)],
            full("payload"),
        );
        assert_upstream_body(&a, expected);
    }
    proxy.shutdown();
}

#[test]
fn trailers_pass_both_ways_and_plugins_add_to_them() {
    let _g = shared();
    let up = upstream();
    // Trailers need HTTP/2 on both sides (HTTP/1 drops undeclared trailers, as Envoy does
    // unless told otherwise).
    let mut spec = spec(up.address, vec![plugin("hostcalls", "")]);
    spec.clusters[0].protocol = wasp_proxy::spec::UpstreamProtocol::Http2;
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    let a = exchange(
        addr,
        Proto::H2,
        "POST",
        "/trailers",
        &[("x-scenario", "trailers")],
        with_trailers("with trailers", &[("x-client-trailer", "c")]),
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body, "with trailers");
    // Request trailers, echoed back by the upstream as response trailers.
    assert_eq!(a.trailer("x-echo-t-x-client-trailer"), Some("c"));
    assert_eq!(a.trailer("x-echo-t-x-trailer-added"), Some("1"));
    // Response trailers: the upstream's and the plugin's.
    assert_eq!(a.trailer("x-up-trailer"), Some("1"));
    assert_eq!(a.trailer("x-resp-trailer-added"), Some("1"));
    proxy.shutdown();
}

#[test]
fn a_request_body_over_the_buffer_limit_gets_413() {
    let _g = shared();
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    let body = "x".repeat((1 << 20) + 4096);
    for proto in [Proto::H1, Proto::H2] {
        let a = exchange(
            addr,
            proto,
            "POST",
            "/",
            &[("x-scenario", "buffer-request")],
            full(body.clone()),
        );
        assert_eq!(a.status, 413, "{proto:?}");
        assert_eq!(a.header("x-echo-method"), None, "no upstream answer");
    }
    // The same body streams through a plugin that does not buffer it.
    let a = send(addr, "POST", "/sink", &[], &body);
    assert_eq!(a.status, 200);
    assert_eq!(a.body, body.len().to_string());
    proxy.shutdown();
}

#[test]
fn a_response_body_over_the_buffer_limit_is_not_delivered_whole() {
    let _g = shared();
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    // Headers are on their way already when the limit is hit: Envoy resets the stream.
    let result = try_exchange(
        addr,
        Proto::H2,
        "GET",
        "/big/2000000",
        &[("x-scenario", "buffer-response")],
        empty(),
    );
    match result {
        Err(_) => {}
        Ok(a) => assert!(a.status == 500 || a.body.len() < 2000000, "{:?}", a.status),
    }
    // The proxy goes on serving.
    assert_eq!(get(addr, "/", &[]).status, 200);
    proxy.shutdown();
}

/// Resident memory and its peak since the last reset, in KiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[test]
fn large_bodies_stream_through_without_being_held() {
    const SIZE: usize = 16 << 20;
    let _g = EXCLUSIVE
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    let transfer = |size: usize| {
        block_on(async move {
            // Upload to the sink, then download from the generator, counting bytes only.
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let req = request(
                addr,
                Proto::H1,
                "POST",
                "/sink",
                &[],
                Generated::new(size, 64 << 10, true)
                    .map_err(|e| match e {})
                    .boxed(),
            );
            let a = answer(exchange_on(tcp, Proto::H1, req).await.unwrap())
                .await
                .unwrap();
            assert_eq!(a.status, 200);
            assert_eq!(a.body, size.to_string());
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let req = request(
                addr,
                Proto::H1,
                "GET",
                &format!("/big/{size}"),
                &[],
                empty(),
            );
            let response = exchange_on(tcp, Proto::H1, req).await.unwrap();
            assert_eq!(response.status(), 200);
            let mut body = response.into_body();
            let mut n = 0;
            while let Some(frame) = body.frame().await {
                if let Some(d) = frame.unwrap().data_ref() {
                    n += d.len();
                }
            }
            assert_eq!(n, size);
        });
    };
    // Warm up: pools, VMs and buffers exist before the baseline.
    transfer(1 << 20);
    let (before, _) = memory();
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(memory().0);
                std::thread::sleep(Duration::from_millis(1));
            }
            peak
        })
    };
    let started = std::time::Instant::now();
    transfer(SIZE);
    let took = started.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let sampled = sampler.join().unwrap();
    let (after, hwm) = memory();
    let peak = if reset { hwm.max(sampled) } else { sampled };
    let growth = peak.saturating_sub(before);
    eprintln!(
        "rss before {before} KiB, peak {peak} KiB (hwm reset: {reset}), after {after} KiB; {} MiB each way in {took:?}",
        SIZE >> 20
    );
    // Holding either body would add at least its size.
    assert!(
        growth < (SIZE as u64 / 1024) / 4,
        "resident memory grew by {growth} KiB while {} MiB streamed each way",
        SIZE >> 20
    );
    assert!(took < Duration::from_secs(4), "{took:?}");
    proxy.shutdown();
}
