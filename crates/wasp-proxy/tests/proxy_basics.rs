//! The proxy over real sockets with real plugins: forwarding, headers, local replies.

mod support;

use support::*;

#[test]
fn forwards_and_plugins_edit_headers_both_ways() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    let a = get(
        addr,
        "/hello?x=1",
        &[
            ("x-scenario", "headers"),
            ("x-replace", "old"),
            ("x-remove", "gone"),
        ],
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-echo-path"), Some("/hello?x=1"));
    assert_eq!(a.header("x-echo-h-x-added"), Some("yes"));
    assert_eq!(a.header("x-echo-h-x-replace"), Some("replaced"));
    assert_eq!(a.header("x-echo-h-x-remove"), None);
    assert_eq!(a.header("x-echo-h-x-forwarded-proto"), Some("http"));
    assert!(
        a.header("x-echo-h-x-request-id")
            .is_some_and(|id| id.len() == 36)
    );
    assert_eq!(a.header("x-hostcalls-response"), Some("1"));
    proxy.shutdown();
}

#[test]
fn local_reply_and_direct_response() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    let a = get(addr, "/", &[("x-scenario", "local-reply")]);
    assert_eq!(a.status, 418);
    assert_eq!(a.body, "teapot");
    assert_eq!(a.header("x-local"), Some("1"));
    let d = get(addr, "/direct", &[]);
    assert_eq!(d.status, 200);
    assert_eq!(d.body, "direct\n");
    assert_eq!(d.header("x-hostcalls-response"), Some("1"));
    proxy.shutdown();
}
