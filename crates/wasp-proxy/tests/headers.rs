//! Request and response headers through the plugin chain: edits, pseudo-headers, repeated
//! headers and the forwarding headers the proxy adds.

mod support;

use support::*;

#[test]
fn add_replace_remove_and_path_rewrite_reach_the_upstream() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    let a = get(
        addr,
        "/original?x=1",
        &[
            ("x-scenario", "headers"),
            ("x-replace", "old"),
            ("x-remove", "gone"),
            ("x-new-path", "/rewritten/path?y=2"),
        ],
    );
    assert_eq!(a.status, 200, "{a:?}");
    // The :path the plugin set is what the upstream is asked for.
    assert_eq!(a.header("x-echo-path"), Some("/rewritten/path?y=2"));
    assert_eq!(a.header("x-echo-h-x-added"), Some("yes"));
    assert_eq!(a.all("x-echo-h-x-replace"), ["replaced"]);
    assert_eq!(a.header("x-echo-h-x-remove"), None);
    assert_eq!(a.header("x-echo-h-x-missing"), Some("none"));
    // What the plugin saw after its own edits: pseudo-headers first, then the regular ones.
    let seen: Vec<&str> = a
        .header("x-echo-h-x-seen-headers")
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(&seen[..4], [":authority", ":path", ":method", ":scheme"]);
    assert!(seen.contains(&"x-added") && seen.contains(&"x-replace"));
    assert!(!seen.contains(&"x-remove"), "{seen:?}");
    assert!(seen.contains(&"x-request-id") && seen.contains(&"x-forwarded-proto"));
    // Pseudo-headers never reach the upstream as regular headers.
    assert!(a.headers.iter().all(|(k, _)| !k.starts_with("x-echo-h-:")));
    proxy.shutdown();
}

#[test]
fn the_route_is_chosen_on_the_path_the_plugins_left() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    // The client asks for an upstream path, the plugin rewrites it to the direct route.
    let a = get(
        addr,
        "/to-upstream",
        &[("x-scenario", "headers"), ("x-new-path", "/direct")],
    );
    assert_eq!(a.status, 200);
    assert_eq!(a.body, "direct\n");
    assert_eq!(a.header("x-echo-path"), None, "must not reach the upstream");
    proxy.shutdown();
}

#[test]
fn repeated_request_headers_reach_the_upstream_in_order() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    for proto in [Proto::H1, Proto::H2] {
        let a = exchange(
            addr,
            proto,
            "GET",
            "/",
            &[
                ("x-rep", "a"),
                ("x-other", "o"),
                ("x-rep", "b"),
                ("x-rep", "c"),
            ],
            empty(),
        );
        assert_eq!(a.status, 200);
        assert_eq!(a.all("x-echo-h-x-rep"), ["a", "b", "c"], "{proto:?}");
        assert_eq!(a.all("x-echo-h-x-other"), ["o"]);
    }
    proxy.shutdown();
}

#[test]
fn set_headers_replaces_the_whole_map_including_pseudo_headers() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    let a = send(
        addr,
        "GET",
        "/before",
        &[("x-scenario", "set-headers"), ("x-gone", "1")],
        "",
    );
    // The plugin's headers have no `x-forwarded-proto`: Envoy's route matcher then finds no
    // route, and so does wasp's.
    assert_eq!(a.status, 404, "{a:?}");
    assert_eq!(a.header("x-echo-path"), None);
    // With `x-forwarded-proto` among the pairs, the new headers are routed and sent as they
    // are.
    let a = send(
        addr,
        "GET",
        "/before",
        &[
            ("x-scenario", "set-headers"),
            ("x-gone", "1"),
            ("x-keep-proto", "1"),
        ],
        "",
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-echo-path"), Some("/replaced"));
    assert_eq!(a.header("x-echo-method"), Some("GET"));
    assert_eq!(a.header("x-echo-h-host"), Some("replaced.local"));
    assert_eq!(a.header("x-echo-h-x-only"), Some("1"));
    assert_eq!(a.header("x-echo-h-x-gone"), None);
    assert_eq!(a.header("x-echo-h-x-scenario"), None);
    proxy.shutdown();
}

#[test]
fn response_headers_added_by_plugins_reach_the_client() {
    let up = upstream();
    let proxy = start(spec(
        up.address,
        vec![plugin("hostcalls", ""), plugin("headers", "cfg-1")],
    ));
    let addr = proxy.address("main").unwrap();
    for path in ["/anything", "/status/404", "/direct"] {
        let a = get(addr, path, &[]);
        assert_eq!(a.header("x-hostcalls-response"), Some("1"), "{path}: {a:?}");
        assert_eq!(a.header("x-powered-by"), Some("wasp"), "{path}");
        assert_eq!(a.header("x-plugin-config"), Some("cfg-1"), "{path}");
    }
    let a = get(addr, "/status/404", &[]);
    assert_eq!(a.status, 404);
    // Both plugins' request edits reach the upstream.
    let a = get(addr, "/", &[("x-scenario", "headers")]);
    assert_eq!(a.header("x-echo-h-x-added"), Some("yes"));
    assert_eq!(a.header("x-echo-h-x-wasp-example"), Some("hello"));
    proxy.shutdown();
}

#[test]
fn request_id_is_generated_once_and_kept_when_sent() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    let a = get(addr, "/", &[("x-request-id", "client-chosen-id")]);
    assert_eq!(a.all("x-echo-h-x-request-id"), ["client-chosen-id"]);
    let generated: Vec<String> = (0..2)
        .map(|_| {
            let a = get(addr, "/", &[]);
            let ids = a.all("x-echo-h-x-request-id");
            assert_eq!(ids.len(), 1, "{a:?}");
            ids[0].to_owned()
        })
        .collect();
    for id in &generated {
        // A version 4 UUID.
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'), "{id}");
        assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }
    assert_ne!(generated[0], generated[1]);
    proxy.shutdown();
}

#[test]
fn x_forwarded_proto_is_the_downstream_scheme() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    let a = get(addr, "/", &[]);
    assert_eq!(a.all("x-echo-h-x-forwarded-proto"), ["http"]);
    // A client's claim is not trusted: the proxy states the scheme it actually served.
    let a = get(addr, "/", &[("x-forwarded-proto", "https")]);
    assert_eq!(a.all("x-echo-h-x-forwarded-proto"), ["http"]);
    // Plugins see it too (it is added before the chain runs).
    let a = get(
        addr,
        "/",
        &[
            ("x-scenario", "properties"),
            (
                "x-properties",
                "request.headers.x-forwarded-proto,request.scheme",
            ),
        ],
    );
    assert_eq!(
        unhex(
            a.header("x-echo-h-x-prop-request-headers-x-forwarded-proto")
                .unwrap()
        ),
        b"http"
    );
    assert_eq!(
        unhex(a.header("x-echo-h-x-prop-request-scheme").unwrap()),
        b"http"
    );
    proxy.shutdown();
}

#[test]
fn http2_authority_becomes_the_upstream_host() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    let a = exchange(
        addr,
        Proto::H2,
        "GET",
        "/h2?q=1",
        &[("x-scenario", "headers")],
        empty(),
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.version, http::Version::HTTP_2);
    assert_eq!(a.header("x-echo-path"), Some("/h2?q=1"));
    assert_eq!(a.header("x-echo-h-host"), Some(addr.to_string().as_str()));
    assert_eq!(a.header("x-echo-h-x-added"), Some("yes"));
    assert_eq!(a.header("x-hostcalls-response"), Some("1"));
    proxy.shutdown();
}
