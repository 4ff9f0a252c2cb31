//! Live configuration (the whole spec; `reload.rs` has the plugin-set swaps): `Proxy::reload` applies a new spec while clients keep sending requests,
//! with no failed request; what cannot be applied leaves the running configuration.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use support::*;
use wasp_proxy::spec::{ProxySpec, RouteAction, TrafficDirection};

/// The `/direct` route's body in `spec`.
fn set_direct_body(spec: &mut ProxySpec, body: &str) {
    spec.listeners[0].routes[0].action = RouteAction::Direct {
        status: 200,
        body: body.to_string(),
    };
}

/// What the load clients saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    /// Requests resent after a GOAWAY refused them unprocessed.
    resent: AtomicU64,
    /// The first few failures, for the assertion message.
    reasons: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, reason: String) {
        self.failed.fetch_add(1, Relaxed);
        let mut reasons = self.reasons.lock().unwrap();
        if reasons.len() < 10 {
            reasons.push(reason);
        }
    }
}

/// Keep-alive clients (pooled connections, as a load generator or a service mesh peer keeps
/// them), HTTP/1.1 and HTTP/2, sending to `/direct` and to the upstream until `stop`.
///
/// An HTTP/2 connection drains with GOAWAY: a request the client's pool hands to it at that
/// moment is either refused by the client itself (hyper: canceled, or h2's GoAway error at
/// send) or, sent above the GOAWAY's last stream id, not processed by the server; RFC 9113
/// §8.7 makes both safe to resend, and mesh clients do. The clients here resend those (and
/// count them); any other error, any status but 200, fails the test.
fn load(
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut tasks = Vec::new();
            for (i, http2) in [false, false, true, true].into_iter().enumerate() {
                let client: Client<HttpConnector, Empty<Bytes>> =
                    Client::builder(TokioExecutor::new())
                        .http2_only(http2)
                        .build_http();
                let (stop, tally) = (stop.clone(), tally.clone());
                tasks.push(tokio::spawn(async move {
                    let path = if i % 2 == 0 { "/direct" } else { "/echo" };
                    let uri: http::Uri = format!("http://{address}{path}").parse().unwrap();
                    while !stop.load(Relaxed) {
                        let sent = tokio::time::timeout(Duration::from_secs(5), async {
                            let mut tries = 0;
                            let response = loop {
                                match client.get(uri.clone()).await {
                                    Err(e) if http2 && tries < 3 && unprocessed(&e) => {
                                        tally.resent.fetch_add(1, Relaxed);
                                        tries += 1;
                                    }
                                    r => break r?,
                                }
                            };
                            let status = response.status();
                            let body = response.into_body().collect().await?.to_bytes();
                            Ok::<_, BoxError>((status, body))
                        })
                        .await;
                        match sent {
                            Ok(Ok((status, _))) if status == 200 => {
                                tally.ok.fetch_add(1, Relaxed);
                            }
                            Ok(Ok((status, body))) => tally.fail(format!(
                                "{path} (h2: {http2}): {status} {}",
                                String::from_utf8_lossy(&body)
                            )),
                            Ok(Err(e)) => tally.fail(format!("{path} (h2: {http2}): {e:?}")),
                            Err(_) => tally.fail(format!("{path} (h2: {http2}): timed out")),
                        }
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
    })
}

/// Whether the client's error says the server did not process the request (see [`load`]).
fn unprocessed(e: &hyper_util::client::legacy::Error) -> bool {
    let text = format!("{e:?}");
    text.contains("Canceled") || (text.contains("GoAway(") && text.contains("NO_ERROR"))
}

#[test]
fn a_hundred_reloads_under_load_fail_no_request() {
    let up = upstream();
    let base = spec(up.address, vec![plugin("headers", "v0")]);
    let proxy = start(base.clone());
    let address = proxy.address("main").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients = load(address, stop.clone(), tally.clone());
    assert!(eventually(Duration::from_secs(5), || tally
        .ok
        .load(Relaxed)
        > 100));
    let mut last = base.clone();
    for i in 1..=100u32 {
        let mut next = base.clone();
        // Every reload changes a route (seen by open connections at their next request).
        set_direct_body(&mut next, &format!("direct {i}\n"));
        // Every 3rd changes the cluster the catch-all route goes to (new pools).
        if i % 3 == 0 {
            next.clusters[0].connect_timeout = Duration::from_millis(900 + u64::from(i));
        }
        // Every 5th adds a second listener, which the next one removes again.
        if i % 5 == 0 {
            next.listeners.push(listener("extra", routes()));
        }
        // Every 7th changes the plugin's configuration (a new plugin set).
        if i % 7 == 0 {
            next.plugins = vec![plugin("headers", &format!("v{i}"))];
        } else {
            next.plugins = last.plugins.clone();
        }
        // Every 10th changes the listener's direction: its connections drain (HTTP/1
        // `connection: close`, HTTP/2 GOAWAY) and the clients reconnect.
        if i % 20 == 10 {
            next.listeners[0].direction = TrafficDirection::Outbound;
        }
        let reloaded = proxy.reload(next.clone()).expect("the reload applies");
        assert_eq!(reloaded.version, u64::from(i) + 1);
        assert!(reloaded.needs_restart.is_empty(), "{reloaded:?}");
        last = next;
        std::thread::sleep(Duration::from_millis(20));
    }
    // Load goes on a moment on the last configuration, then stops.
    let before = tally.ok.load(Relaxed);
    assert!(eventually(Duration::from_secs(5), || tally
        .ok
        .load(Relaxed)
        > before + 100));
    stop.store(true, Relaxed);
    clients.join().unwrap();
    let failed = tally.failed.load(Relaxed);
    let ok = tally.ok.load(Relaxed);
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed: {:?}",
        ok + failed,
        tally.reasons.lock().unwrap()
    );
    assert!(ok > 1000, "only {ok} requests under load");
    eprintln!(
        "{ok} requests, 0 failed, across 100 reloads ({} resent after a GOAWAY)",
        tally.resent.load(Relaxed)
    );
    // The last configuration is the one in service: its route, its plugin, its listeners.
    let answer = get(address, "/direct", &[]);
    assert_eq!(answer.body, "direct 100\n");
    assert_eq!(answer.header("x-plugin-config"), Some("v98"));
    let extra = proxy.address("extra").expect("reload 100 added `extra`");
    // Both listen on port 0: each keeps a port of its own.
    assert_ne!(extra, address);
    assert_eq!(get(extra, "/direct", &[]).body, "direct\n");
    let dump: serde_json::Value =
        serde_json::from_str(&admin(&proxy, "/config_dump").body).unwrap();
    assert_eq!(dump["version"], 101);
    assert_eq!(dump["last_reload"]["error"], serde_json::Value::Null);
    proxy.shutdown();
}

#[test]
fn a_route_change_reaches_an_open_connection_and_a_listener_change_drains_it() {
    let up = upstream();
    let mut base = spec(up.address, vec![]);
    set_direct_body(&mut base, "before\n");
    let proxy = start(base.clone());
    let address = proxy.address("main").unwrap();
    block_on(async {
        let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .unwrap();
        let connection = tokio::spawn(conn);
        let send = |sender: &mut hyper::client::conn::http1::SendRequest<ReqBody>| {
            sender.send_request(request(address, Proto::H1, "GET", "/direct", &[], empty()))
        };
        let first = answer(send(&mut sender).await.unwrap()).await.unwrap();
        assert_eq!(first.body, "before\n");
        // A route change: the same connection sees it on its next request, and stays open.
        let mut routes_changed = base.clone();
        set_direct_body(&mut routes_changed, "after\n");
        proxy.reload(routes_changed.clone()).unwrap();
        let second = answer(send(&mut sender).await.unwrap()).await.unwrap();
        assert_eq!(second.body, "after\n");
        assert_eq!(second.header("connection"), None);
        // A change the connection cannot follow (its listener's direction): its next request
        // is served on the configuration it was accepted with and told to close.
        let mut moved = routes_changed.clone();
        moved.listeners[0].direction = TrafficDirection::Outbound;
        set_direct_body(&mut moved, "outbound\n");
        proxy.reload(moved).unwrap();
        let third = answer(send(&mut sender).await.unwrap()).await.unwrap();
        assert_eq!(third.body, "after\n");
        assert_eq!(third.header("connection"), Some("close"));
        tokio::time::timeout(Duration::from_secs(2), connection)
            .await
            .expect("the drained connection closes after its response")
            .unwrap()
            .unwrap();
    });
    // A new connection gets the new configuration.
    assert_eq!(get(address, "/direct", &[]).body, "outbound\n");
    proxy.shutdown();
}

#[test]
fn a_removed_listener_stops_accepting_and_an_added_one_starts() {
    let up = upstream();
    let mut base = spec(up.address, vec![]);
    base.listeners.push(listener("second", routes()));
    let proxy = start(base.clone());
    let second = proxy.address("second").unwrap();
    assert_eq!(get(second, "/direct", &[]).status, 200);
    let mut without = base.clone();
    without.listeners.pop();
    let mut third = listener("third", routes());
    third.address = closed_port();
    without.listeners.push(third.clone());
    proxy.reload(without).unwrap();
    assert_eq!(proxy.address("second"), None);
    assert!(
        eventually(Duration::from_secs(2), || std::net::TcpStream::connect(
            second
        )
        .is_err()),
        "the removed listener's port still accepts"
    );
    assert_eq!(get(third.address, "/direct", &[]).status, 200);
    assert_eq!(
        get(proxy.address("main").unwrap(), "/direct", &[]).status,
        200
    );
    proxy.shutdown();
}

#[test]
fn a_configuration_that_cannot_apply_leaves_the_running_one() {
    let up = upstream();
    let mut base = spec(up.address, vec![]);
    set_direct_body(&mut base, "running\n");
    let proxy = start(base.clone());
    let address = proxy.address("main").unwrap();
    // An address another process holds (no SO_REUSEPORT): the new listener cannot bind.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut bad = base.clone();
    set_direct_body(&mut bad, "never\n");
    let mut blocked = listener("blocked", routes());
    blocked.address = taken.local_addr().unwrap();
    bad.listeners.push(blocked);
    let error = proxy.reload(bad).unwrap_err().to_string();
    assert!(error.contains("listener blocked: cannot bind"), "{error}");
    assert_eq!(get(address, "/direct", &[]).body, "running\n");
    let dump: serde_json::Value =
        serde_json::from_str(&admin(&proxy, "/config_dump").body).unwrap();
    assert_eq!(dump["version"], 1);
    assert!(
        dump["last_reload"]["error"]
            .as_str()
            .unwrap()
            .contains("cannot bind"),
        "{dump}"
    );
    // A reload of settings only a restart changes applies the rest and says which.
    let mut more_workers = base.clone();
    more_workers.workers = 7;
    set_direct_body(&mut more_workers, "applied\n");
    let reloaded = proxy.reload(more_workers).unwrap();
    assert_eq!(reloaded.needs_restart, vec!["workers".to_string()]);
    assert_eq!(get(address, "/direct", &[]).body, "applied\n");
    proxy.shutdown();
}
