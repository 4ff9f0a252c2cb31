//! Replacing the plugin set while the proxy serves: new streams get the new chain, streams in
//! flight finish on the one they started with, unchanged plugins are carried over, retired
//! plugins stop (timers included), and no request fails during repeated reloads under load.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::*;
use wasp_proxy::spec::RouteAction;

#[test]
fn new_streams_get_the_new_chain() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![hostcalls_named("first")]));
    let addr = proxy.address("main").unwrap();
    let a = get(addr, "/", &[]);
    assert_eq!(a.header("x-hostcalls-response"), Some("1"), "{a:?}");

    // No plugins at all.
    let statuses = proxy.update_plugins(&[]);
    assert!(statuses.is_empty());
    assert!(eventually(Duration::from_secs(2), || {
        get(addr, "/", &[]).header("x-hostcalls-response").is_none()
    }));
    let plugins = admin(&proxy, "/plugins").body;
    assert!(!plugins.contains("first"), "{plugins}");

    // Two plugins: the response passes both.
    proxy.update_plugins(&[hostcalls_named("a"), hostcalls_named("b")]);
    assert!(eventually(Duration::from_secs(2), || {
        get(addr, "/", &[]).all("x-hostcalls-response").len() == 2
    }));
    let plugins = admin(&proxy, "/plugins").body;
    assert!(
        plugins.contains("\"a\"") && plugins.contains("\"b\""),
        "{plugins}"
    );
    assert!(proxy.is_ready());
    proxy.shutdown();
}

#[test]
fn a_stream_in_flight_finishes_on_the_chain_it_started_with() {
    let up = upstream();
    let mut spec = spec(up.address, vec![hostcalls_named("old")]);
    for route in &mut spec.listeners[0].routes {
        if let RouteAction::Cluster { timeout, .. } = &mut route.action {
            *timeout = Some(Duration::from_secs(5));
        }
    }
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    // `/slow` answers after 2 s: the reload happens while the request waits upstream.
    let slow = std::thread::spawn(move || get(addr, "/slow", &[]));
    std::thread::sleep(Duration::from_millis(300));
    proxy.update_plugins(&[]);
    assert!(eventually(Duration::from_secs(1), || {
        get(addr, "/", &[]).header("x-hostcalls-response").is_none()
    }));
    let a = slow.join().unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    // The old plugin, retired meanwhile, still saw its stream's response.
    assert_eq!(a.header("x-hostcalls-response"), Some("1"), "{a:?}");
    proxy.shutdown();
}

#[test]
fn unchanged_plugins_are_carried_over_and_changed_ones_reloaded() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![hostcalls_named("keep")]));
    let addr = proxy.address("main").unwrap();
    for _ in 0..3 {
        assert_eq!(get(addr, "/", &[]).status, 200);
    }
    let calls = |proxy: &wasp_proxy::Proxy| {
        let text = stats(proxy);
        metric(&text, "wasp_plugin_calls_total{plugin=\"keep\"}").unwrap_or(0.0)
    };
    let before = calls(&proxy);
    assert!(before > 0.0);
    // Same declaration plus a new plugin: `keep` keeps its counters.
    proxy.update_plugins(&[hostcalls_named("keep"), plugin("headers", "")]);
    assert!(calls(&proxy) >= before, "counters were reset");
    // A changed configuration makes it a new plugin, with fresh counters.
    let changed = with_wasm(hostcalls_named("keep"), |w| {
        w.configuration = b"changed".to_vec();
    });
    proxy.update_plugins(&[changed]);
    assert_eq!(calls(&proxy), 0.0);
    assert!(eventually(Duration::from_secs(2), || {
        get(addr, "/", &[]).header("x-hostcalls-response").is_some() && calls(&proxy) > 0.0
    }));
    proxy.shutdown();
}

#[test]
fn a_retired_plugins_timer_stops() {
    logs::capture();
    let up = upstream();
    let ticker = with_wasm(hostcalls_named("retired-ticker"), |w| {
        w.configuration = b"tick=10".to_vec();
    });
    let proxy = start(spec(up.address, vec![ticker]));
    assert!(eventually(Duration::from_secs(2), || logs::count(
        "retired-ticker",
        "tick"
    ) >= 4));
    proxy.update_plugins(&[]);
    std::thread::sleep(Duration::from_millis(100));
    let after_retire = logs::count("retired-ticker", "tick");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        logs::count("retired-ticker", "tick"),
        after_retire,
        "the retired plugin still ticks"
    );
    proxy.shutdown();
}

#[test]
fn no_request_fails_while_plugins_are_reloaded_under_load() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![hostcalls_named("load-a")]));
    let addr = proxy.address("main").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let proto = if i % 2 == 0 { Proto::H1 } else { Proto::H2 };
                    match try_exchange(addr, proto, "POST", "/", &[], full("payload")) {
                        Ok(a) if a.status == 200 && a.body == "payload" => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        other => failed.lock().unwrap().push(format!("{other:?}")),
                    }
                }
            })
        })
        .collect();
    let sets = [
        vec![hostcalls_named("load-a")],
        vec![hostcalls_named("load-a"), hostcalls_named("load-b")],
        vec![],
        vec![plugin("headers", ""), hostcalls_named("load-c")],
    ];
    for round in 0..20 {
        proxy.update_plugins(&sets[round % sets.len()]);
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let failed = failed.lock().unwrap();
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    assert!(ok.load(Ordering::Relaxed) > 100, "too few requests: {ok:?}");
    eprintln!(
        "reload under load: {} requests, 0 failed, 20 reloads",
        ok.load(Ordering::Relaxed)
    );
    proxy.shutdown();
}
