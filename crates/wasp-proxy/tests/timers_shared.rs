//! Timers, shared data and queues across the workers' VMs, plugin metrics, and the admin
//! endpoint (/ready, /stats/prometheus, /plugins, /config_dump).

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use support::*;

#[test]
fn tick_pause_is_resumed_by_the_timer() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    for proto in [Proto::H1, Proto::H2] {
        let started = Instant::now();
        let a = exchange(
            addr,
            proto,
            "GET",
            "/paused",
            &[("x-scenario", "tick-pause")],
            empty(),
        );
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.header("x-echo-path"), Some("/paused"));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    // Several paused at once: one tick resumes them all.
    let threads: Vec<_> = (0..6)
        .map(|_| std::thread::spawn(move || get(addr, "/", &[("x-scenario", "tick-pause")]).status))
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 200);
    }
    proxy.shutdown();
}

#[test]
fn timers_armed_at_start_tick_on_every_worker() {
    logs::capture();
    let up = upstream();
    let p = with_wasm(hostcalls_named("ticker"), |w| {
        w.configuration = b"tick=20".to_vec();
    });
    let proxy = start(spec(up.address, vec![p]));
    // 2 workers, each VM ticking every 20 ms from on_configure on.
    assert!(
        eventually(Duration::from_secs(2), || logs::count("ticker", "tick")
            >= 2 * 8),
        "ticks: {}",
        logs::count("ticker", "tick")
    );
    proxy.shutdown();
    // The timers stop with the proxy.
    let after = logs::count("ticker", "tick");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(logs::count("ticker", "tick"), after);
}

#[test]
fn shared_data_is_consistent_across_workers() {
    logs::capture();
    let up = upstream();
    let proxy = start(spec(up.address, vec![hostcalls_named("shared")]));
    let addr = proxy.address("main").unwrap();
    let n: usize = 24;
    for i in 0..n {
        // A connection each, so that the kernel spreads them over both workers.
        let a = get(
            addr,
            "/",
            &[("x-scenario", "shared-data"), ("x-key", "k-shared")],
        );
        assert_eq!(
            a.header("x-echo-h-x-shared"),
            Some("absent,set1=ok,v=v1,stale=CasMismatch,fresh=ok,v=v2,del=ok,after-del=absent"),
            "request {i}"
        );
    }
    // Context ids count per VM: the same id twice means two workers' VMs served.
    assert!(eventually(Duration::from_secs(1), || logs::count(
        "shared", "on_done"
    ) == n));
    let ids: HashSet<String> = logs::lines("shared", "on_done").into_iter().collect();
    assert!(
        ids.len() < n,
        "all {n} requests were served by one worker: {ids:?}"
    );
    // Not observable here: that a value set on one worker is read on the other (the
    // scenario deletes its key before it ends); the host's own tests cover the shared store.
    proxy.shutdown();
}

#[test]
fn queue_messages_are_delivered_once_to_on_queue_ready() {
    logs::capture();
    let up = upstream();
    let proxy = start(spec(up.address, vec![hostcalls_named("queued")]));
    let addr = proxy.address("main").unwrap();
    let n: usize = 10;
    for _ in 0..n {
        let a = get(addr, "/", &[("x-scenario", "queue")]);
        assert_eq!(a.header("x-echo-h-x-queue"), Some("ok"), "{a:?}");
        assert_eq!(a.header("x-echo-h-x-queue-missing"), Some("none"));
    }
    // Each enqueue (from either worker) wakes the registered root, which dequeues it.
    assert!(
        eventually(Duration::from_secs(2), || logs::count(
            "queued",
            "queue_ready"
        ) == n),
        "{:?}",
        logs::lines("queued", "queue_ready")
    );
    for line in logs::lines("queued", "queue_ready") {
        assert!(line.ends_with("msg=hello-queue"), "{line}");
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(logs::count("queued", "queue_ready"), n, "delivered twice");
    proxy.shutdown();
}

#[test]
fn a_queue_carries_messages_from_one_plugin_to_another() {
    logs::capture();
    let up = upstream();
    // Two plugins in two VMs (their VM configurations differ) with one vm_id, so one queue
    // namespace: only the receiver registers `hostcalls_queue`, only the sender enqueues.
    let sender = with_wasm(hostcalls_named("q-sender"), |w| {
        w.vm_id = "queue-pair".into();
        w.vm_configuration = b"sender".to_vec();
        w.configuration = b"no-queue".to_vec();
    });
    let receiver = with_wasm(hostcalls_named("q-receiver"), |w| {
        w.vm_id = "queue-pair".into();
        w.vm_configuration = b"receiver".to_vec();
    });
    let proxy = start(spec(up.address, vec![sender, receiver]));
    let addr = proxy.address("main").unwrap();
    let n: usize = 6;
    for _ in 0..n {
        // Both plugins run the scenario (each sets `x-queue` to its enqueue's outcome).
        let a = get(addr, "/", &[("x-scenario", "queue")]);
        assert_eq!(a.header("x-echo-h-x-queue"), Some("ok"), "{a:?}");
    }
    // Both plugins enqueue (the scenario runs in each), and every message reaches the
    // receiver's root context: none is lost, none goes to the sender.
    assert!(
        eventually(Duration::from_secs(2), || logs::count(
            "q-receiver",
            "queue_ready"
        ) == 2 * n),
        "{:?}",
        logs::lines("q-receiver", "queue_ready")
    );
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(logs::count("q-receiver", "queue_ready"), 2 * n);
    assert_eq!(logs::count("q-sender", "queue_ready"), 0);
    assert_eq!(logs::count("q-sender", "queue registered"), 0);
    proxy.shutdown();
}

#[test]
fn plugins_with_one_vm_key_share_a_vm_on_each_worker() {
    let up = upstream();
    // a and b: same module, vm_id, VM configuration and environment: one VM, two root
    // contexts. c: another vm_id, so a VM of its own.
    let c = with_wasm(hostcalls_named("vm-c"), |w| w.vm_id = "other".into());
    let mut spec = spec(
        up.address,
        vec![hostcalls_named("vm-a"), hostcalls_named("vm-b"), c],
    );
    spec.workers = 1;
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    // Each plugin appends the count of requests its VM has seen so far.
    let first = get(addr, "/", &[("x-scenario", "vm-shared")]);
    assert_eq!(
        first.all("x-echo-h-x-vm-requests"),
        ["1", "2", "1"],
        "{first:?}"
    );
    let second = get(addr, "/", &[("x-scenario", "vm-shared")]);
    assert_eq!(second.all("x-echo-h-x-vm-requests"), ["3", "4", "2"]);
    // Each plugin still started with its own configuration in its own root context.
    let plugins = admin(&proxy, "/plugins").body;
    for name in ["vm-a", "vm-b", "vm-c"] {
        assert!(plugins.contains(&format!("\"{name}\"")), "{plugins}");
    }
    assert!(!plugins.contains("failed"), "{plugins}");
    proxy.shutdown();
}

#[test]
fn a_trap_fails_every_plugin_of_the_shared_vm() {
    let up = upstream();
    let mut spec = spec(
        up.address,
        vec![hostcalls_named("trap-a"), hostcalls_named("trap-b")],
    );
    spec.workers = 1;
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    let a = get(addr, "/", &[("x-scenario", "panic-request-headers")]);
    assert_eq!(a.status, 503, "{a:?}");
    // The VM failed for both plugins (the failure is theirs on /plugins; a first failure is
    // replaced at once, possibly while the failed request's reply still passes the chain).
    let plugins = admin(&proxy, "/plugins").body;
    assert_eq!(
        plugins.matches("\"last_failure\": \"plugin").count(),
        2,
        "{plugins}"
    );
    // One fresh VM replaces it for both (vm_recovery.rs): the next request passes both.
    let b = get(addr, "/", &[]);
    assert_eq!(b.status, 200, "{b:?}");
    assert_eq!(b.all("x-hostcalls-response").len(), 2, "{b:?}");
    let plugins = admin(&proxy, "/plugins").body;
    assert_eq!(plugins.matches("\"ready\"").count(), 2, "{plugins}");
    proxy.shutdown();
}

#[test]
fn metrics_count_requests_responses_and_plugin_calls() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    for _ in 0..5 {
        assert_eq!(get(addr, "/", &[]).status, 200);
    }
    assert_eq!(get(addr, "/status/404", &[]).status, 404);
    let m = get(addr, "/", &[("x-scenario", "metrics")]);
    // The plugin reads its own metrics back.
    assert_eq!(m.header("x-echo-h-x-gauge"), Some("42"));
    assert_eq!(m.header("x-echo-h-x-counter"), Some("9"), "7 requests, +2");
    let text = stats(&proxy);
    // 7 requests, each counted once in on_http_request_headers, plus the scenario's 2.
    assert_eq!(
        metric(&text, "hostcalls_requests_total"),
        Some(9.0),
        "{text}"
    );
    assert_eq!(metric(&text, "hostcalls_gauge"), Some(42.0));
    assert_eq!(metric(&text, "hostcalls_histogram_count"), Some(1.0));
    assert_eq!(metric(&text, "wasp_downstream_requests_total"), Some(7.0));
    assert_eq!(
        metric(&text, "wasp_downstream_responses_total{code_class=\"2xx\"}"),
        Some(6.0)
    );
    assert_eq!(
        metric(&text, "wasp_downstream_responses_total{code_class=\"4xx\"}"),
        Some(1.0)
    );
    assert_eq!(metric(&text, "wasp_upstream_requests_total"), Some(7.0));
    assert_eq!(
        metric(&text, "wasp_upstream_latency_seconds_count"),
        Some(7.0)
    );
    assert_eq!(
        metric(&text, "wasp_downstream_connections_total"),
        Some(7.0)
    );
    // Per request at least: request headers, response headers and the context's end
    // (which comes after the response went out, hence the wait).
    let calls = || {
        metric(
            &stats(&proxy),
            "wasp_plugin_calls_total{plugin=\"hostcalls\"}",
        )
    };
    assert!(
        eventually(Duration::from_secs(1), || calls() >= Some(7.0 * 3.0)),
        "{:?}",
        calls()
    );
    assert_eq!(
        metric(&text, "wasp_plugin_failures_total{plugin=\"hostcalls\"}"),
        Some(0.0)
    );
    // Every sample line is `name[{labels}] value`.
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (_, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
    // Histograms: cumulative buckets ending in +Inf = count, typed once, HELP before TYPE.
    let inf = metric(&text, "wasp_upstream_latency_seconds_bucket{le=\"+Inf\"}");
    assert_eq!(inf, Some(7.0), "{text}");
    let buckets: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("wasp_upstream_latency_seconds_bucket{"))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
        .collect();
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert!(
        text.contains(
            "# HELP wasp_upstream_latency_seconds Time to upstream response headers.\n\
             # TYPE wasp_upstream_latency_seconds histogram\n"
        ),
        "{text}"
    );
    let scraped = admin(&proxy, "/stats/prometheus");
    assert_eq!(
        scraped.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    proxy.shutdown();
}

#[test]
fn admin_ready_plugins_and_config_dump() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let ready = admin(&proxy, "/ready");
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body, "LIVE\n");

    let plugins = admin(&proxy, "/plugins");
    assert_eq!(plugins.status, 200);
    assert_eq!(plugins.header("content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_str(&plugins.body).unwrap();
    let list = json.as_array().unwrap();
    assert_eq!(list.len(), 1);
    let p = &list[0];
    assert_eq!(p["name"], "hostcalls");
    assert_eq!(p["root_id"], "hostcalls");
    assert_eq!(p["state"], "ready");
    assert_eq!(p["error"], serde_json::Value::Null);
    assert_eq!(p["fail_strategy"], "FailClose");
    let host = wasp_host::Host::new(wasp_host::HostConfig::default()).unwrap();
    let module = host
        .load_module(&wasp_test_plugins::bytes("hostcalls"))
        .unwrap();
    assert_eq!(p["sha256"], module.info().sha256.as_str());
    assert_eq!(p["sha256"].as_str().unwrap().len(), 64);

    let dump = admin(&proxy, "/config_dump");
    assert_eq!(dump.status, 200);
    let json: serde_json::Value = serde_json::from_str(&dump.body).unwrap();
    assert_eq!(json["node"]["id"], "test-node");
    assert_eq!(json["workers"], 2);
    let listener = &json["listeners"][0];
    assert_eq!(listener["name"], "main");
    assert_eq!(listener["tls"], false);
    assert_eq!(listener["routes"][0]["match"]["path"], "/direct");
    assert_eq!(listener["routes"][1]["match"]["prefix"], "/");
    assert_eq!(listener["routes"][1]["action"]["cluster"], "backend");
    assert_eq!(listener["routes"][1]["action"]["timeout_ms"], 1000);
    let clusters: Vec<&str> = json["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(clusters, ["backend", "callout"]);
    assert_eq!(json["plugins"][0]["state"], "ready");

    assert_eq!(admin(&proxy, "/nope").status, 404);
    proxy.shutdown();
}
